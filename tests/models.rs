//! The whole-model engine (`Spec`, `Model`, `Cache`) for every cell (LSTM, GRU, tanh and ReLU
//! RNN), 1 to 3 stacked layers, one or two directions:
//!
//! * f64 finite differences (naive kernels) of every parameter, the input, the initial state
//!   `h0` (and `c0`), for a loss with terms in every output and in the final state (so the
//!   carried-in state gradient is non-zero); gradient and dx buffers start non-zero, so
//!   backward must accumulate.
//! * step == sequence (unidirectional stacks), chunked TBPTT == full BPTT (carries passed),
//!   `Outputs::LastStep` == the last rows of `EveryStep`.
//! * SIMD == naive in f32; the LSTM and tanh-RNN engine == the typed `LstmModel` / `RnnModel`
//!   bit for bit.
//! * The tensor table: PyTorch's names and order, tiling the buffer.

use tinyrnn::cell::CellKind;
use tinyrnn::{
    Cache, Kernels, LstmCache, LstmModel, LstmState, Model, Naive, Outputs, Params, Real, RnnCache,
    RnnModel, Simd, Spec, rng,
};
use tinyrnn_tests::{
    assert_bits_eq, assert_close, assert_grad, boxed_random, fd_gradient, max_abs_diff, rand_vec,
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

/// Everything one run needs, in f64 or f32.
#[derive(Clone)]
struct Problem<F> {
    spec: Spec,
    params: Vec<F>,
    x: Vec<F>,  // (T, B, I)
    h0: Vec<F>, // (L·D, B, H)
    c0: Vec<F>, // (L·D, B, H) or empty
    p: Vec<F>,  // dL/dy (T, B, O): the loss is p·y + q·h_T + r·c_T
    q: Vec<F>,
    r: Vec<F>,
}

impl Problem<f64> {
    fn new(spec: Spec, seed: u64) -> Self {
        let mut g = rng(seed);
        let n = spec.state_len(B);
        let nc = if spec.cell.has_c() { n } else { 0 };
        // Wider weights than PyTorch's init so that no gate saturates or vanishes; relu stays
        // away from its kink at 0 (finite differences there would be meaningless).
        let mut params: Vec<f64> = rand_vec(&mut g, spec.param_len(), -0.6, 0.6);
        if spec.cell == CellKind::RnnRelu {
            // Positive biases keep most ReLU units alive through three layers.
            for t in spec.tensors().filter(|t| t.name.tensor.starts_with("bias")) {
                for v in &mut params[t.offset..t.offset + t.len()] {
                    *v = v.abs();
                }
            }
        }
        Problem {
            spec,
            params,
            x: rand_vec(&mut g, T * B * I, -1.0, 1.0),
            h0: rand_vec(&mut g, n, -0.5, 0.5),
            c0: rand_vec(&mut g, nc, -0.5, 0.5),
            p: rand_vec(&mut g, T * B * O, -1.0, 1.0),
            q: rand_vec(&mut g, n, -1.0, 1.0),
            r: rand_vec(&mut g, nc, -1.0, 1.0),
        }
    }

    fn cast(&self) -> Problem<f32> {
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        Problem {
            spec: self.spec,
            params: f(&self.params),
            x: f(&self.x),
            h0: f(&self.h0),
            c0: f(&self.c0),
            p: f(&self.p),
            q: f(&self.q),
            r: f(&self.r),
        }
    }
}

struct Run<F> {
    y: Vec<F>,
    h: Vec<F>,
    c: Vec<F>,
    grad: Vec<F>,
    dx: Vec<F>,
    dh0: Vec<F>,
    dc0: Vec<F>,
}

fn dot<F: Real>(a: &[F], b: &[F]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a.to_f64() * b.to_f64()).sum()
}

impl<F: Real> Problem<F> {
    fn loss(&self, r: &Run<F>) -> f64 {
        dot(&self.p, &r.y) + dot(&self.q, &r.h) + dot(&self.r, &r.c)
    }

    /// Forward over all T steps, then backward from p, q, r. Gradient and dx start at `start`
    /// (to check accumulation; the returned buffers have it subtracted).
    fn run<K: Kernels<F>>(&self, outputs: Outputs, backward: bool) -> Run<F> {
        let s = &self.spec;
        let model = Model::new(*s, &self.params).unwrap();
        let mut buf = vec![F::ZERO; Cache::<F>::len(s, T, B)];
        let mut cache = Cache::new(s, &mut buf, T, B, outputs).unwrap();
        let (mut h, mut c) = (self.h0.clone(), self.c0.clone());
        let mut y = vec![F::ZERO; cache.output_rows() * s.output];
        model
            .forward_with::<K>(&self.x, &mut h, &mut c, &mut cache, &mut y)
            .unwrap();
        let mut run = Run {
            y,
            h,
            c,
            grad: vec![],
            dx: vec![],
            dh0: vec![],
            dc0: vec![],
        };
        if backward {
            let start = F::from_f64(0.25);
            let mut grad = vec![start; s.param_len()];
            let mut dx = vec![start; self.x.len()];
            let (mut dh, mut dc) = (self.q.clone(), self.r.clone());
            let dy = match outputs {
                Outputs::EveryStep => self.p.clone(),
                Outputs::LastStep => self.p[(T - 1) * B * O..].to_vec(),
            };
            model
                .backward_with::<K>(
                    &mut grad,
                    &self.x,
                    &mut cache,
                    &dy,
                    &mut dh,
                    &mut dc,
                    Some(&mut dx),
                )
                .unwrap();
            let less = |v: Vec<F>| v.into_iter().map(|g| g - start).collect();
            run.grad = less(grad);
            run.dx = less(dx);
            run.dh0 = dh;
            run.dc0 = dc;
        }
        run
    }
}

#[test]
fn gradients_match_finite_differences_for_every_model() {
    for (n, spec) in specs().into_iter().enumerate() {
        let what = name(&spec);
        let mut prob = Problem::new(spec, 100 + n as u64);
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
        let mut prob = Problem::new(spec, 300 + n as u64);
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
        let prob = Problem::new(spec, 500 + n as u64);
        let model = Model::new(spec, &prob.params).unwrap();
        let mut scratch = vec![0.0; model.step_scratch_len()];
        for b in 0..B {
            // Sequence b alone, from its own initial state.
            let pick = |v: &[f64]| -> Vec<f64> {
                v.chunks_exact(B * H)
                    .flat_map(|l| l[b * H..(b + 1) * H].to_vec())
                    .collect()
            };
            let (mut h, mut c) = (pick(&prob.h0), pick(&prob.c0));
            let mut ys = Vec::new();
            for t in 0..T {
                let x = &prob.x[(t * B + b) * I..][..I];
                let mut y = vec![0.0; O];
                model
                    .step_with::<Naive>(x, &mut h, &mut c, &mut scratch, &mut y)
                    .unwrap();
                ys.extend(y);
            }
            let seq = prob.run::<Naive>(Outputs::EveryStep, false);
            let want: Vec<f64> = seq
                .y
                .chunks_exact(O)
                .skip(b)
                .step_by(B)
                .flatten()
                .copied()
                .collect();
            let what = name(&spec);
            assert_close(&format!("{what} step y, sequence {b}"), &ys, &want, 1e-12);
            assert_close(&format!("{what} step h"), &h, &pick(&seq.h), 1e-12);
            assert_close(&format!("{what} step c"), &c, &pick(&seq.c), 1e-12);
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

/// Two chunks (steps 0..2, 2..4) forward with the state carried, backward in reverse order with
/// the state gradient passed back, give the gradients of one pass over all four steps.
#[test]
fn chunked_tbptt_equals_full_bptt() {
    for (n, spec) in specs().into_iter().enumerate() {
        if spec.bidirectional {
            continue;
        }
        let prob = Problem::new(spec, 700 + n as u64);
        let full = prob.run::<Naive>(Outputs::EveryStep, true);
        let model = Model::new(spec, &prob.params).unwrap();
        let len = Cache::<f64>::len(&spec, 2, B);
        let (mut b1, mut b2) = (vec![0.0; len], vec![0.0; len]);
        let mut c1 = Cache::new(&spec, &mut b1, 2, B, Outputs::EveryStep).unwrap();
        let mut c2 = Cache::new(&spec, &mut b2, 2, B, Outputs::EveryStep).unwrap();
        let (mut h, mut c) = (prob.h0.clone(), prob.c0.clone());
        let half = 2 * B;
        let (x1, x2) = prob.x.split_at(half * I);
        let (p1, p2) = prob.p.split_at(half * O);
        let mut y = vec![0.0; half * O];
        model
            .forward_with::<Naive>(x1, &mut h, &mut c, &mut c1, &mut y)
            .unwrap();
        model
            .forward_with::<Naive>(x2, &mut h, &mut c, &mut c2, &mut y)
            .unwrap();
        let mut grad = vec![0.0; spec.param_len()];
        let mut dx = vec![0.0; prob.x.len()];
        let (dx1, dx2) = dx.split_at_mut(half * I);
        let (mut dh, mut dc) = (prob.q.clone(), prob.r.clone());
        model
            .backward_with::<Naive>(&mut grad, x2, &mut c2, p2, &mut dh, &mut dc, Some(dx2))
            .unwrap();
        model
            .backward_with::<Naive>(&mut grad, x1, &mut c1, p1, &mut dh, &mut dc, Some(dx1))
            .unwrap();
        let what = name(&spec);
        assert_close(&format!("{what} chunked grad"), &grad, &full.grad, 1e-12);
        assert_close(&format!("{what} chunked dx"), &dx, &full.dx, 1e-12);
        assert_close(&format!("{what} chunked dh0"), &dh, &full.dh0, 1e-12);
        assert_close(&format!("{what} chunked dc0"), &dc, &full.dc0, 1e-12);
    }
}

#[test]
fn simd_matches_naive_in_f32() {
    for (n, spec) in specs().into_iter().enumerate() {
        let prob = Problem::new(spec, 900 + n as u64).cast();
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

/// The engine's LSTM and tanh RNN give the typed models' bits (forward, backward, step).
#[test]
fn engine_matches_the_typed_models() {
    const IH: usize = 28;
    const HH: usize = 20;
    const OH: usize = 10;
    const TT: usize = 5;
    const BB: usize = 7;
    let mut g = rng(11);
    let x: Vec<f32> = rand_vec(&mut g, TT * BB * IH, -1.0, 1.0);
    let dy: Vec<f32> = rand_vec(&mut g, TT * BB * OH, -1.0, 1.0);
    let xr: Vec<[f32; IH]> = x.as_chunks::<IH>().0.to_vec();
    let dyr: Vec<[f32; OH]> = dy.as_chunks::<OH>().0.to_vec();
    let flat = |v: &[[f32; HH]]| v.as_flattened().to_vec();

    // Engine run: y, final h, c, grad, dx, dh0, dc0 in one vector.
    let engine = |spec: Spec, params: &[f32]| -> Vec<f32> {
        let model = Model::new(spec, params).unwrap();
        let mut buf = vec![0.0; Cache::<f32>::len(&spec, TT, BB)];
        let mut cache = Cache::new(&spec, &mut buf, TT, BB, Outputs::EveryStep).unwrap();
        let n = spec.state_len(BB);
        let nc = if spec.cell.has_c() { n } else { 0 };
        let (mut h, mut c) = (vec![0.0; n], vec![0.0; nc]);
        let mut y = vec![0.0; TT * BB * OH];
        model
            .forward(&x, &mut h, &mut c, &mut cache, &mut y)
            .unwrap();
        let mut grad = vec![0.0; spec.param_len()];
        let mut dx = vec![0.0; x.len()];
        let (mut dh, mut dc) = (vec![0.0; n], vec![0.0; nc]);
        model
            .backward(
                &mut grad,
                &x,
                &mut cache,
                &dy,
                &mut dh,
                &mut dc,
                Some(&mut dx),
            )
            .unwrap();
        [y, h, c, grad, dx, dh, dc].concat()
    };

    let lstm = boxed_random::<f32, LstmModel<IH, HH, OH>>(12, 0.3);
    let spec = Spec::new(CellKind::Lstm, IH, HH, OH);
    let typed = {
        let mut buf = vec![0.0; LstmCache::<HH>::len(TT, BB)];
        let mut cache = LstmCache::new(&mut buf, TT, BB).unwrap();
        let (mut h, mut c) = (vec![[0.0; HH]; BB], vec![[0.0; HH]; BB]);
        let mut y = vec![[0.0; OH]; TT * BB];
        lstm.lstm.forward(&xr, &mut h, &mut c, &mut cache).unwrap();
        lstm.head.forward(cache.h(), &mut y).unwrap();
        let mut grad = boxed_random::<f32, LstmModel<IH, HH, OH>>(0, 0.0);
        let mut dh = vec![[0.0; HH]; TT * BB];
        let mut dx = vec![[0.0; IH]; TT * BB];
        lstm.head
            .backward(&mut grad.head, cache.h(), &dyr, Some(&mut dh))
            .unwrap();
        let (mut dh0, mut dc0) = (vec![[0.0; HH]; BB], vec![[0.0; HH]; BB]);
        lstm.lstm
            .backward(
                &mut grad.lstm,
                &xr,
                &mut cache,
                &dh,
                &mut dh0,
                &mut dc0,
                Some(&mut dx),
            )
            .unwrap();
        let y = y.as_flattened().to_vec();
        [
            y,
            flat(&h),
            flat(&c),
            grad.as_flat().to_vec(),
            dx.as_flattened().to_vec(),
            flat(&dh0),
            flat(&dc0),
        ]
        .concat()
    };
    assert_bits_eq(
        "lstm engine vs typed",
        &engine(spec, lstm.as_flat()),
        &typed,
    );
    // Batch-1 steps.
    let model = Model::new(spec, lstm.as_flat()).unwrap();
    let mut state = LstmState::<HH>::zero();
    let (mut sh, mut sc) = (vec![0.0; HH], vec![0.0; HH]);
    let mut scratch = vec![0.0; model.step_scratch_len()];
    for t in 0..TT {
        let want = lstm.step(&xr[t * BB], &mut state);
        let mut got = [0.0; OH];
        model
            .step(&xr[t * BB], &mut sh, &mut sc, &mut scratch, &mut got)
            .unwrap();
        assert_bits_eq("lstm step", &got, &want);
    }

    let rnn = boxed_random::<f32, RnnModel<IH, HH, OH>>(13, 0.3);
    let spec = Spec::new(CellKind::RnnTanh, IH, HH, OH);
    let typed = {
        let mut buf = vec![0.0; RnnCache::<HH>::len(TT, BB)];
        let mut cache = RnnCache::new(&mut buf, TT, BB).unwrap();
        let mut h = vec![[0.0; HH]; BB];
        let mut y = vec![[0.0; OH]; TT * BB];
        rnn.rnn.forward(&xr, &mut h, &mut cache).unwrap();
        rnn.head.forward(cache.h(), &mut y).unwrap();
        let mut grad = boxed_random::<f32, RnnModel<IH, HH, OH>>(0, 0.0);
        let mut dh = vec![[0.0; HH]; TT * BB];
        let mut dx = vec![[0.0; IH]; TT * BB];
        rnn.head
            .backward(&mut grad.head, cache.h(), &dyr, Some(&mut dh))
            .unwrap();
        let mut dh0 = vec![[0.0; HH]; BB];
        rnn.rnn
            .backward(&mut grad.rnn, &xr, &mut cache, &dh, &mut dh0, Some(&mut dx))
            .unwrap();
        let y = y.as_flattened().to_vec();
        [
            y,
            flat(&h),
            grad.as_flat().to_vec(),
            dx.as_flattened().to_vec(),
            flat(&dh0),
        ]
        .concat()
    };
    assert_bits_eq("rnn engine vs typed", &engine(spec, rnn.as_flat()), &typed);
    let model = Model::new(spec, rnn.as_flat()).unwrap();
    let mut state = [0.0; HH];
    let mut sh = vec![0.0; HH];
    let mut scratch = vec![0.0; model.step_scratch_len()];
    for t in 0..TT {
        let want = rnn.step(&xr[t * BB], &mut state);
        let mut got = [0.0; OH];
        model
            .step(&xr[t * BB], &mut sh, &mut [], &mut scratch, &mut got)
            .unwrap();
        assert_bits_eq("rnn step", &got, &want);
    }
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
