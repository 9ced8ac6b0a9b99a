//! The whole-model engine (`Spec`, `Model`, `Cache`) for every cell (LSTM, GRU, tanh and ReLU
//! RNN), 1 to 3 stacked layers, one or two directions:
//!
//! * f64 finite differences (naive kernels) of every parameter, the input, the initial state
//!   `h0` (and `c0`), for a loss with terms in every output and in the final state (so the
//!   carried-in state gradient is non-zero); gradient and dx buffers start non-zero, so
//!   backward must accumulate.
//! * step == sequence (unidirectional stacks), chunked TBPTT == full BPTT (carries passed),
//!   `Outputs::LastStep` == the last rows of `EveryStep`.
//! * The forward pass == the documented equations written out in scalar f64 (every model), and
//!   in f32 with both kernel sets at shapes that take every path of the SIMD steps.
//! * A softmax cross-entropy loss through the model against finite differences.
//! * SIMD == naive in f32; the typed `LstmModel` / `RnnModel` step == the engine's, bit for bit.
//! * Wrong lengths are errors, not panics.
//! * The tensor table: PyTorch's names and order, tiling the buffer.

use tinyrnn::cell::{Cell, CellKind, LstmCell};
use tinyrnn::loss::{self, Reduction};
use tinyrnn::{
    Cache, Error, LstmModel, LstmState, Model, Naive, Outputs, Params, Real, RnnModel, Simd, Spec,
    rng,
};
use tinyrnn_tests::{
    Problem, assert_bits_eq, assert_close, assert_grad, boxed_random, fd_gradient, max_abs_diff,
    rand_vec,
};

const EPS: f64 = 1e-6;
const FD_TOL: f64 = 1e-6;
const I: usize = 3;
const H: usize = 5;
const O: usize = 2;
const B: usize = 2;
const T: usize = 4;

fn specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for cell in CellKind::ALL {
        for layers in 1..=3 {
            for bidirectional in [false, true] {
                v.push(Spec {
                    cell,
                    input: I,
                    hidden: H,
                    layers,
                    bidirectional,
                    output: O,
                });
            }
        }
    }
    v
}

fn name(s: &Spec) -> String {
    format!(
        "{} x{}{}",
        s.cell,
        s.layers,
        if s.bidirectional { " bi" } else { "" }
    )
}

fn problem(spec: Spec, seed: u64) -> Problem<f64> {
    Problem::new(spec, T, B, seed)
}

#[test]
fn gradients_match_finite_differences_for_every_model() {
    for (n, spec) in specs().into_iter().enumerate() {
        let what = name(&spec);
        let mut prob = problem(spec, 100 + n as u64);
        let run = prob.run::<Naive>(Outputs::EveryStep, true);
        let loss = |p: &Problem<f64>| p.loss(&p.run::<Naive>(Outputs::EveryStep, false));
        let num = fd_gradient(&mut prob, |p| &mut p.params, EPS, loss);
        for t in spec.tensors() {
            let r = t.offset..t.offset + t.len();
            assert_grad(
                &format!("{what} {}", t.name),
                &run.grad[r.clone()],
                &num[r],
                FD_TOL,
            );
        }
        let num = fd_gradient(&mut prob, |p| &mut p.x, EPS, loss);
        assert_grad(&format!("{what} dx"), &run.dx, &num, FD_TOL);
        let num = fd_gradient(&mut prob, |p| &mut p.h0, EPS, loss);
        assert_grad(&format!("{what} dh0"), &run.dh0, &num, FD_TOL);
        if spec.cell.has_c() {
            let num = fd_gradient(&mut prob, |p| &mut p.c0, EPS, loss);
            assert_grad(&format!("{what} dc0"), &run.dc0, &num, FD_TOL);
        }
    }
}

#[test]
fn last_step_outputs_are_the_last_rows_of_every_step() {
    for (n, spec) in specs().into_iter().enumerate() {
        let mut prob = problem(spec, 300 + n as u64);
        // Only the last step's dy: then both modes must give the same gradients.
        prob.p[..(T - 1) * B * O].fill(0.0);
        let every = prob.run::<Naive>(Outputs::EveryStep, true);
        let last = prob.run::<Naive>(Outputs::LastStep, true);
        let what = name(&spec);
        assert_eq!(last.y, every.y[(T - 1) * B * O..], "{what} y");
        assert_close(&format!("{what} grad"), &last.grad, &every.grad, 1e-14);
        assert_close(&format!("{what} dx"), &last.dx, &every.dx, 1e-14);
    }
}

/// T single steps of batch 1 == one forward over the sequence, for unidirectional stacks.
#[test]
fn step_equals_sequence() {
    for (n, spec) in specs().into_iter().enumerate() {
        if spec.bidirectional {
            continue;
        }
        let prob = problem(spec, 500 + n as u64);
        let seq = prob.run::<Naive>(Outputs::EveryStep, false);
        let what = name(&spec);
        for b in 0..B {
            // Sequence b alone, from its own initial state.
            let (ys, h, c) = prob.steps::<Naive>(b);
            let want: Vec<f64> = seq
                .y
                .chunks_exact(O)
                .skip(b)
                .step_by(B)
                .flatten()
                .copied()
                .collect();
            assert_close(&format!("{what} step y, sequence {b}"), &ys, &want, 1e-12);
            assert_close(
                &format!("{what} step h"),
                &h,
                &prob.state_of(&seq.h, b),
                1e-12,
            );
            assert_close(
                &format!("{what} step c"),
                &c,
                &prob.state_of(&seq.c, b),
                1e-12,
            );
        }
    }
    let bi = Spec {
        bidirectional: true,
        ..Spec::new(CellKind::Gru, I, H, O)
    };
    let params = vec![0.0; bi.param_len()];
    let m = Model::new(bi, &params).unwrap();
    let mut h = vec![0.0; bi.state_len(1)];
    let mut scratch = vec![0.0; m.step_scratch_len()];
    let r = m.step(&[0.0; I], &mut h, &mut [], &mut scratch, &mut [0.0; O]);
    assert!(r.is_err(), "a bidirectional model has no step");
}

/// Consecutive chunks (each with its own cache; the state carried forward, the state gradient
/// handed back as backward runs over them in reverse) give the gradients of one pass over all
/// T steps: two TBPTT chunks, length-1 chunks, and chunks of length 0 (a no-op: state and carry
/// pass through, no gradient).
#[test]
fn chunked_tbptt_equals_full_bptt() {
    for (n, spec) in specs().into_iter().enumerate() {
        if spec.bidirectional {
            continue;
        }
        let prob = problem(spec, 700 + n as u64);
        let full = prob.run::<Naive>(Outputs::EveryStep, true);
        let model = Model::new(spec, &prob.params).unwrap();
        for lengths in [&[2, 2][..], &[1, 1, 1, 1], &[0, 1, 3, 0], &[4, 0]] {
            let what = format!("{} chunks {lengths:?}", name(&spec));
            let mut bufs: Vec<Vec<f64>> = lengths
                .iter()
                .map(|&l| vec![0.0; Cache::<f64>::len(&spec, l, B)])
                .collect();
            let mut caches: Vec<Cache<'_, f64>> = bufs
                .iter_mut()
                .zip(lengths)
                .map(|(buf, &l)| Cache::new(&spec, buf, l, B, Outputs::EveryStep).unwrap())
                .collect();
            let starts: Vec<usize> = lengths
                .iter()
                .scan(0, |at, &l| {
                    *at += l;
                    Some((*at - l) * B)
                })
                .collect();
            let (mut h, mut c) = (prob.h0.clone(), prob.c0.clone());
            for ((cache, &l), &r) in caches.iter_mut().zip(lengths).zip(&starts) {
                let mut y = vec![0.0; l * B * O];
                let x = &prob.x[r * I..(r + l * B) * I];
                model
                    .forward_with::<Naive>(x, &mut h, &mut c, cache, &mut y)
                    .unwrap();
                assert_eq!(y, full.y[r * O..(r + l * B) * O], "{what} y");
            }
            assert_eq!((&h, &c), (&full.h, &full.c), "{what} final state");
            let mut grad = vec![0.0; spec.param_len()];
            let mut dx = vec![0.0; prob.x.len()];
            let (mut dh, mut dc) = (prob.q.clone(), prob.r.clone());
            for ((cache, &l), &r) in caches.iter_mut().zip(lengths).zip(&starts).rev() {
                let x = &prob.x[r * I..(r + l * B) * I];
                let dy = &prob.p[r * O..(r + l * B) * O];
                let dx = &mut dx[r * I..(r + l * B) * I];
                model
                    .backward_with::<Naive>(&mut grad, x, cache, dy, &mut dh, &mut dc, Some(dx))
                    .unwrap();
            }
            assert_close(&format!("{what} grad"), &grad, &full.grad, 1e-12);
            assert_close(&format!("{what} dx"), &dx, &full.dx, 1e-12);
            assert_close(&format!("{what} dh0"), &dh, &full.dh0, 1e-12);
            assert_close(&format!("{what} dc0"), &dc, &full.dc0, 1e-12);
        }
    }
}

#[test]
fn simd_matches_naive_in_f32() {
    for (n, spec) in specs().into_iter().enumerate() {
        let prob = problem(spec, 900 + n as u64).cast();
        let a = prob.run::<Simd>(Outputs::EveryStep, true);
        let b = prob.run::<Naive>(Outputs::EveryStep, true);
        let what = name(&spec);
        for (part, x, y) in [
            ("y", &a.y, &b.y),
            ("h", &a.h, &b.h),
            ("c", &a.c, &b.c),
            ("grad", &a.grad, &b.grad),
            ("dx", &a.dx, &b.dx),
            ("dh0", &a.dh0, &b.dh0),
            ("dc0", &a.dc0, &b.dc0),
        ] {
            let d = max_abs_diff(x, y);
            assert!(d <= 2e-5, "{what} {part}: SIMD vs naive differ by {d:e}");
        }
    }
}

/// The typed embedded models (`LstmModel`, `RnnModel`: sizes in the types) step like the engine
/// over their flat buffers, bit for bit: same layout, same cell step.
#[test]
fn typed_models_step_like_the_engine() {
    const IH: usize = 28;
    const HH: usize = 20;
    const OH: usize = 10;
    let xs: Vec<f32> = rand_vec(&mut rng(11), 5 * IH, -1.0, 1.0);
    let xs = xs.as_chunks::<IH>().0;

    let lstm = boxed_random::<f32, LstmModel<IH, HH, OH>>(12, 0.3);
    let model = Model::new(Spec::new(CellKind::Lstm, IH, HH, OH), lstm.as_flat()).unwrap();
    let mut state = LstmState::<HH>::zero();
    let (mut h, mut c) = (vec![0.0; HH], vec![0.0; HH]);
    let mut scratch = vec![0.0; model.step_scratch_len()];
    for x in xs {
        let want = lstm.step(x, &mut state);
        let mut got = [0.0; OH];
        model
            .step(x, &mut h, &mut c, &mut scratch, &mut got)
            .unwrap();
        assert_bits_eq("lstm step", &got, &want);
        assert_bits_eq("lstm step c", &c, &state.c);
    }

    let rnn = boxed_random::<f32, RnnModel<IH, HH, OH>>(13, 0.3);
    let model = Model::new(Spec::new(CellKind::RnnTanh, IH, HH, OH), rnn.as_flat()).unwrap();
    let mut state = [0.0; HH];
    let mut h = vec![0.0; HH];
    let mut scratch = vec![0.0; model.step_scratch_len()];
    for x in xs {
        let want = rnn.step(x, &mut state);
        let mut got = [0.0; OH];
        model
            .step(x, &mut h, &mut [], &mut scratch, &mut got)
            .unwrap();
        assert_bits_eq("rnn step", &got, &want);
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The model written out from the documented equations in scalar f64, independently of the
/// engine: every layer and direction over time (the reverse direction from the last step), the
/// directions' outputs side by side as the next layer's input, the head at every step. Returns
/// y (T, B, O), h_T and c_T (L·D, B, H; c empty unless LSTM).
fn reference<F: Real>(p: &Problem<F>) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let s = &p.spec;
    let (steps, batch, hs, dirs) = (p.t, p.b, s.hidden, s.directions());
    let f64s = |v: &[F]| -> Vec<f64> { v.iter().map(|v| v.to_f64()).collect() };
    let w = f64s(&p.params);
    let tensor = |layer: Option<usize>, reverse: bool, name: &str| -> &[f64] {
        let t = s
            .tensors()
            .find(|t| t.name.layer == layer && t.name.reverse == reverse && t.name.tensor == name)
            .unwrap_or_else(|| panic!("no tensor {name} of layer {layer:?}"));
        &w[t.offset..t.offset + t.len()]
    };
    let (h0, c0) = (f64s(&p.h0), f64s(&p.c0));
    let (mut h_n, mut c_n) = (vec![0.0; h0.len()], vec![0.0; c0.len()]);
    let mut input = f64s(&p.x);
    let mut width = s.input;
    for k in 0..s.layers {
        let mut out = vec![0.0; steps * batch * dirs * hs];
        for d in 0..dirs {
            let rev = d == 1;
            let wih = tensor(Some(k), rev, "weight_ih");
            let whh = tensor(Some(k), rev, "weight_hh");
            let bih = tensor(Some(k), rev, "bias_ih");
            let bhh = tensor(Some(k), rev, "bias_hh");
            let slot = (k * dirs + d) * batch * hs;
            for b in 0..batch {
                let at = slot + b * hs..slot + (b + 1) * hs;
                let mut h = h0[at.clone()].to_vec();
                let mut c = if s.cell.has_c() {
                    c0[at.clone()].to_vec()
                } else {
                    vec![0.0; hs]
                };
                let times: Vec<usize> = if rev {
                    (0..steps).rev().collect()
                } else {
                    (0..steps).collect()
                };
                for t in times {
                    let x = &input[(t * batch + b) * width..][..width];
                    let rows = s.cell.gates() * hs;
                    let affine = |wt: &[f64], bias: &[f64], v: &[f64]| -> Vec<f64> {
                        (0..rows)
                            .map(|r| {
                                bias[r]
                                    + (0..v.len())
                                        .map(|q| wt[r * v.len() + q] * v[q])
                                        .sum::<f64>()
                            })
                            .collect()
                    };
                    let (ax, ah) = (affine(wih, bih, x), affine(whh, bhh, &h));
                    let a = |g: usize, j: usize| ax[g * hs + j] + ah[g * hs + j];
                    let mut next = vec![0.0; hs];
                    for j in 0..hs {
                        next[j] = match s.cell {
                            CellKind::Lstm => {
                                let (i, f) = (sigmoid(a(0, j)), sigmoid(a(1, j)));
                                let (g, o) = (a(2, j).tanh(), sigmoid(a(3, j)));
                                c[j] = f * c[j] + i * g;
                                o * c[j].tanh()
                            }
                            CellKind::Gru => {
                                let (r, z) = (sigmoid(a(0, j)), sigmoid(a(1, j)));
                                let n = (ax[2 * hs + j] + r * ah[2 * hs + j]).tanh();
                                (1.0 - z) * n + z * h[j]
                            }
                            CellKind::RnnTanh => a(0, j).tanh(),
                            CellKind::RnnRelu => a(0, j).max(0.0),
                        };
                    }
                    h = next;
                    out[((t * batch + b) * dirs + d) * hs..][..hs].copy_from_slice(&h);
                }
                h_n[at.clone()].copy_from_slice(&h);
                if s.cell.has_c() {
                    c_n[at].copy_from_slice(&c);
                }
            }
        }
        input = out;
        width = dirs * hs;
    }
    let (hw, hb) = (tensor(None, false, "weight"), tensor(None, false, "bias"));
    let o = s.output;
    let y = (0..steps * batch * o)
        .map(|e| {
            let (row, j) = (e / o, e % o);
            hb[j]
                + (0..width)
                    .map(|q| hw[j * width + q] * input[row * width + q])
                    .sum::<f64>()
        })
        .collect();
    (y, h_n, c_n)
}

/// The engine computes the documented equations: in f64 (naive kernels) for every model to
/// 1e-12; in f32 with both kernel sets for one layer of every cell at shapes that take every path
/// of the SIMD steps (`W_ih` packed once when T·B >= I, else transposed at every step; H below,
/// at and past the 8 and 16 lanes) to 1e-5.
#[test]
fn forward_follows_the_equations() {
    for (n, spec) in specs().into_iter().enumerate() {
        let prob = problem(spec, 1100 + n as u64);
        let run = prob.run::<Naive>(Outputs::EveryStep, false);
        let (y, h, c) = reference(&prob);
        let what = name(&spec);
        assert_close(&format!("{what} y vs equations"), &run.y, &y, 1e-12);
        assert_close(&format!("{what} h_T vs equations"), &run.h, &h, 1e-12);
        assert_close(&format!("{what} c_T vs equations"), &run.c, &c, 1e-12);
    }
    for cell in CellKind::ALL {
        for (i, h, t, b) in [
            (1, 1, 5, 7),
            (5, 3, 4, 7),
            (40, 8, 3, 5),
            (5, 32, 4, 7),
            (28, 17, 3, 13),
        ] {
            let spec = Spec::new(cell, i, h, 3);
            let prob = Problem::new(spec, t, b, (1000 * i + h) as u64).cast();
            let (y, hn, cn) = reference(&prob);
            for (kernels, run) in [
                ("simd", prob.run::<Simd>(Outputs::EveryStep, false)),
                ("naive", prob.run::<Naive>(Outputs::EveryStep, false)),
            ] {
                let what = format!("{cell} I={i} H={h} T={t} B={b} f32 {kernels}");
                assert_close(&format!("{what} y"), &run.y, &y, 1e-5);
                assert_close(&format!("{what} h_T"), &run.h, &hn, 1e-5);
                assert_close(&format!("{what} c_T"), &run.c, &cn, 1e-5);
            }
        }
    }
}

/// A whole training loss through the model: softmax cross-entropy (mean over T·B rows) of the
/// head's outputs, its gradient through `backward`, against finite differences of every
/// parameter and the initial state.
#[test]
fn cross_entropy_through_the_model_matches_finite_differences() {
    for spec in [
        Spec::new(CellKind::Lstm, I, H, O),
        Spec {
            layers: 2,
            bidirectional: true,
            ..Spec::new(CellKind::Gru, I, H, O)
        },
    ] {
        let mut prob = problem(spec, 41);
        let labels: Vec<usize> = (0..T * B).map(|r| (r * 7 + 3) % O).collect();
        let loss_and_grad = |p: &Problem<f64>, backward: bool| {
            let model = Model::new(p.spec, &p.params).unwrap();
            let mut buf = vec![0.0; Cache::<f64>::len(&p.spec, T, B)];
            let mut cache = Cache::new(&p.spec, &mut buf, T, B, Outputs::EveryStep).unwrap();
            let (mut h, mut c) = (p.h0.clone(), p.c0.clone());
            let mut y = vec![[0.0; O]; T * B];
            model
                .forward(&p.x, &mut h, &mut c, &mut cache, y.as_flattened_mut())
                .unwrap();
            let mut dy = vec![[0.0; O]; T * B];
            let l = loss::softmax_cross_entropy(&y, &labels, &mut dy, Reduction::Mean).unwrap();
            let mut grad = vec![0.0; p.spec.param_len()];
            let (mut dh, mut dc) = (vec![0.0; p.h0.len()], vec![0.0; p.c0.len()]);
            if backward {
                model
                    .backward(
                        &mut grad,
                        &p.x,
                        &mut cache,
                        dy.as_flattened(),
                        &mut dh,
                        &mut dc,
                        None,
                    )
                    .unwrap();
            }
            (l, grad, dh, dc)
        };
        let (_, grad, dh0, dc0) = loss_and_grad(&prob, true);
        let loss = |p: &Problem<f64>| loss_and_grad(p, false).0;
        let what = name(&spec);
        let num = fd_gradient(&mut prob, |p| &mut p.params, EPS, loss);
        for t in spec.tensors() {
            let r = t.offset..t.offset + t.len();
            assert_grad(
                &format!("{what} CE {}", t.name),
                &grad[r.clone()],
                &num[r],
                FD_TOL,
            );
        }
        let num = fd_gradient(&mut prob, |p| &mut p.h0, EPS, loss);
        assert_grad(&format!("{what} CE dh0"), &dh0, &num, FD_TOL);
        if spec.cell.has_c() {
            let num = fd_gradient(&mut prob, |p| &mut p.c0, EPS, loss);
            assert_grad(&format!("{what} CE dc0"), &dc0, &num, FD_TOL);
        }
    }
}

/// Every wrong length is an `Err` naming the buffer, never a panic.
#[test]
fn shape_errors_are_reported_not_panics() {
    let spec = Spec {
        layers: 2,
        ..Spec::new(CellKind::Lstm, I, H, O)
    };
    let prob = problem(spec, 1300).cast();
    let shape = |r: Result<(), Error>, what: &str| match r {
        Err(Error::Shape { what: w, .. }) => assert_eq!(w, what),
        other => panic!("{what}: expected a shape error, got {other:?}"),
    };
    assert!(Model::new(spec, &prob.params[1..]).is_err());
    let model = Model::new(spec, &prob.params).unwrap();
    let len = Cache::<f32>::len(&spec, T, B);
    let mut buf = vec![0.0; len + 1];
    assert!(Cache::new(&spec, &mut buf, T, B, Outputs::EveryStep).is_err());
    let mut buf = vec![0.0; len];
    let mut cache = Cache::new(&spec, &mut buf, T, B, Outputs::EveryStep).unwrap();
    assert_eq!(
        (cache.steps(), cache.batch(), cache.output_rows()),
        (T, B, T * B)
    );
    let x = &prob.x;
    let (mut h, mut c) = (prob.h0.clone(), prob.c0.clone());
    let mut y = vec![0.0; T * B * O];
    shape(
        model.forward(&x[1..], &mut h, &mut c, &mut cache, &mut y),
        "x",
    );
    shape(
        model.forward(x, &mut h[1..], &mut c, &mut cache, &mut y),
        "h",
    );
    shape(
        model.forward(x, &mut h, &mut c, &mut cache, &mut y[1..]),
        "y",
    );
    model
        .forward(x, &mut h, &mut c, &mut cache, &mut y)
        .unwrap();
    let mut g = vec![0.0; spec.param_len()];
    let mut dx = vec![0.0; x.len() - 1];
    shape(
        model.backward(&mut g, x, &mut cache, &y, &mut h, &mut c, Some(&mut dx)),
        "dx",
    );
    shape(
        model.backward(&mut g, x, &mut cache, &y[1..], &mut h, &mut c, None),
        "dy",
    );
    shape(
        model.backward(&mut g[1..], x, &mut cache, &y, &mut h, &mut c, None),
        "gradient buffer",
    );
    assert!(
        model
            .backward(&mut g, x, &mut cache, &y, &mut h, &mut c[1..], None)
            .is_err()
    );
    let mut scratch = vec![0.0; model.step_scratch_len()];
    let (mut h1, mut c1) = (vec![0.0; 2 * H], vec![0.0; 2 * H]);
    let mut y1 = vec![0.0; O];
    assert!(
        model
            .step(&x[..I - 1], &mut h1, &mut c1, &mut scratch, &mut y1)
            .is_err()
    );
    assert!(
        model
            .step(&x[..I], &mut h1[1..], &mut c1, &mut scratch, &mut y1)
            .is_err()
    );
    assert!(
        model
            .step(&x[..I], &mut h1, &mut c1, &mut scratch[1..], &mut y1)
            .is_err()
    );
    model
        .step(&x[..I], &mut h1, &mut c1, &mut scratch, &mut y1)
        .unwrap();
}

/// A cache is exactly the sum of its parts, for every model and for chunks of 0 and 1 steps: per
/// layer and direction `h_t`, `c_t` (LSTM), the cell's per-step cache, dL/d`ax` (and dL/d`ah` for
/// the GRU), the initial state, the packed weights and a bias-gradient row; per bidirectional
/// layer both directions' outputs side by side and a share of their gradient each; per layer the
/// gradient of its output.
#[test]
fn cache_lengths_are_the_sum_of_their_parts() {
    for spec in specs() {
        for (t, b) in [(T, B), (0, 3), (1, 1), (7, 5)] {
            let (hs, d) = (spec.hidden, spec.directions());
            let n = t * b * hs;
            let want: usize = (0..spec.layers)
                .map(|k| {
                    let direction = tinyrnn::with_cell!(spec.cell, C => {
                        let (with_c, gh) = (usize::from(C::HAS_C), C::GATES * hs);
                        n * (1 + with_c + C::CACHE)
                            + t * b * gh * (1 + usize::from(C::SPLIT))
                            + b * hs * (1 + with_c)
                            + C::packed_len(hs, spec.layer_input(k))
                            + gh
                    });
                    let sides = if spec.bidirectional { 2 * n + 2 * n } else { 0 };
                    d * direction + sides + d * n
                })
                .sum();
            let what = format!("{} T={t} B={b}", name(&spec));
            assert_eq!(Cache::<f32>::len(&spec, t, b), want, "{what}");
        }
    }
    // The ReLU RNN reads the plain weights (no packed copy), the others pack theirs.
    use tinyrnn::cell::{GruCell, ReluCell};
    assert_eq!(ReluCell::packed_len(5, 3), 0);
    assert!(GruCell::packed_len(5, 3) > 0 && LstmCell::packed_len(5, 3) > 0);
}

/// Each cell's names: PyTorch's module, the RNN's nonlinearity, the state it keeps, its gates;
/// and the names lead back to the cell.
#[test]
fn cell_names_round_trip() {
    let want = [
        (CellKind::Lstm, "lstm", None, true, 4, "lstm"),
        (CellKind::Gru, "gru", None, false, 3, "gru"),
        (CellKind::RnnTanh, "rnn", Some("tanh"), false, 1, "rnn-tanh"),
        (CellKind::RnnRelu, "rnn", Some("relu"), false, 1, "rnn-relu"),
    ];
    for (kind, module, nonlinearity, has_c, gates, shown) in want {
        assert_eq!(kind.module(), module);
        assert_eq!(kind.nonlinearity(), nonlinearity);
        assert_eq!(kind.has_c(), has_c, "{kind}");
        assert_eq!(kind.gates(), gates, "{kind}");
        assert_eq!(kind.to_string(), shown);
        assert_eq!(CellKind::from_names(module, nonlinearity), Some(kind));
    }
    assert_eq!(CellKind::from_names("rnn", None), Some(CellKind::RnnTanh));
    assert_eq!(CellKind::from_names("gru", Some("tanh")), None);
    assert_eq!(CellKind::from_names("rnn", Some("sigmoid")), None);
    assert_eq!(CellKind::from_names("lstmx", None), None);
}

#[test]
fn tensor_table_follows_pytorch() {
    let spec = Spec {
        layers: 2,
        bidirectional: true,
        ..Spec::new(CellKind::Gru, I, H, O)
    };
    let names: Vec<String> = spec.tensors().map(|t| t.name.to_string()).collect();
    let want = [
        "gru.weight_ih_l0",
        "gru.weight_hh_l0",
        "gru.bias_ih_l0",
        "gru.bias_hh_l0",
        "gru.weight_ih_l0_reverse",
        "gru.weight_hh_l0_reverse",
        "gru.bias_ih_l0_reverse",
        "gru.bias_hh_l0_reverse",
        "gru.weight_ih_l1",
        "gru.weight_hh_l1",
        "gru.bias_ih_l1",
        "gru.bias_hh_l1",
        "gru.weight_ih_l1_reverse",
        "gru.weight_hh_l1_reverse",
        "gru.bias_ih_l1_reverse",
        "gru.bias_hh_l1_reverse",
        "head.weight",
        "head.bias",
    ];
    assert_eq!(names, want);
    let shapes: Vec<Vec<usize>> = spec.tensors().map(|t| t.shape().to_vec()).collect();
    assert_eq!(shapes[0], [15, 3]);
    assert_eq!(shapes[8], [15, 10]);
    assert_eq!(shapes[16], [2, 10]);
    for s in specs() {
        let mut at = 0;
        for t in s.tensors() {
            assert_eq!(t.offset, at, "{} {}", name(&s), t.name);
            at += t.len();
        }
        assert_eq!(at, s.param_len(), "{}", name(&s));
    }
}
