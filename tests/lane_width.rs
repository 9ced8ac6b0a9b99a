//! The 16-lane (AVX-512) and 8-lane paths of the `Simd` kernels give the same bits: the broadcast
//! GEMMs on shapes that cross every column block (64, 32, 16, 8 columns, the n % 8 edge) and k
//! block, and whole LSTM / tanh-RNN / GRU layers forward and backward for batch sizes around the row
//! tiles (6 and 12 rows). On a CPU without AVX-512 both runs take the 8-lane path and the test
//! says so.
//!
//! One test function: the lane width is a process-wide switch (`kernels::allow_avx512`), and
//! this binary holds nothing else that could run beside it.

use tinyrnn::cell::CellKind;
use tinyrnn::kernels::allow_avx512;
use tinyrnn::{Cache, Kernels, Lstm, LstmState, Model, Outputs, Rnn, Simd, Spec, rng};
use tinyrnn_tests::{assert_bits_eq, boxed_random, lstm_run, rand_rows, rand_vec, rnn_run};

/// The computation `embedded/dependent-check` runs outside the workspace (no RUSTFLAGS): the same
/// source, so the same hash, here built with the workspace's settings.
#[allow(dead_code)]
#[path = "../embedded/dependent-check/src/workload.rs"]
mod workload;

/// Runs `f` with the 8-lane path, then with the 16-lane path, and checks the results are equal
/// bit for bit. Returns whether the 16-lane path really ran.
fn both_widths(what: &str, f: impl Fn() -> Vec<f32>) -> bool {
    allow_avx512(false);
    let narrow = f();
    let wide = allow_avx512(true);
    let got = f();
    assert!(narrow.iter().all(|v| v.is_finite()), "{what}: not finite");
    assert_bits_eq(what, &got, &narrow);
    wide
}

fn gemms() -> bool {
    let mut wide = false;
    let mut seed = 0;
    for k in [1, 3, 64, 65, 300] {
        for m in [1, 5, 6, 7, 13] {
            for n in [
                1, 4, 7, 8, 12, 16, 24, 28, 32, 40, 48, 64, 72, 80, 100, 128, 130,
            ] {
                seed += 1;
                let mut r = rng(seed);
                let a: Vec<f32> = rand_vec(&mut r, m * k, -1.0, 1.0);
                let b: Vec<f32> = rand_vec(&mut r, k * n, -1.0, 1.0);
                let c: Vec<f32> = rand_vec(&mut r, m * n, -1.0, 1.0);
                let nn = || {
                    let mut c = c.clone();
                    Simd::gemm_nn(m, n, k, &a, &b, &mut c);
                    c
                };
                let tn = || {
                    let mut c = c.clone();
                    Simd::gemm_tn(m, n, k, &a, &b, &mut c);
                    c
                };
                wide |= both_widths(&format!("gemm_nn m={m} n={n} k={k}"), nn);
                wide |= both_widths(&format!("gemm_tn m={m} n={n} k={k}"), tn);
            }
        }
    }
    wide
}

/// One LSTM layer's forward and backward over 3 steps of `b` sequences with the Simd kernels
/// (everything they produce), then its batch-1 step from the first row's final state.
fn lstm_layer<const I: usize, const H: usize>(b: usize, seed: u64) -> Vec<f32> {
    let lstm = boxed_random::<f32, Lstm<I, H, f32>>(seed, 1.5 / (H as f64).sqrt());
    let run = lstm_run::<Simd, I, H>(&lstm, seed + 1, 3, b);
    let mut out = run.all();
    let mut state = LstmState {
        h: run.h[0],
        c: run.c[0],
    };
    let xs: Vec<[f32; I]> = rand_rows(&mut rng(seed + 2), 3, -1.0, 1.0);
    for x in &xs {
        lstm.step_with::<Simd>(x, &mut state);
        out.extend(state.h);
        out.extend(state.c);
    }
    out
}

/// The same for one tanh-RNN layer (no step: the RNN's batch-1 step has no 16-lane path).
fn rnn_layer<const I: usize, const H: usize>(b: usize, seed: u64) -> Vec<f32> {
    let rnn = boxed_random::<f32, Rnn<I, H, f32>>(seed, 1.5 / (H as f64).sqrt());
    rnn_run::<Simd, I, H>(&rnn, seed + 1, 3, b).all()
}

/// One GRU layer (through the engine) forward and backward over 3 steps of `b` sequences with
/// the Simd kernels (outputs, final state, every gradient, dx, dh0), then its batch-1 step.
fn gru_layer<const I: usize, const H: usize>(b: usize, seed: u64) -> Vec<f32> {
    const T: usize = 3;
    let spec = Spec::new(CellKind::Gru, I, H, 2);
    let mut g = rng(seed);
    let scale = 1.5 / (H as f64).sqrt();
    let params: Vec<f32> = rand_vec(&mut g, spec.param_len(), -scale, scale);
    let x: Vec<f32> = rand_vec(&mut g, T * b * I, -1.0, 1.0);
    let mut h: Vec<f32> = rand_vec(&mut g, spec.state_len(b), -0.5, 0.5);
    let dy: Vec<f32> = rand_vec(&mut g, T * b * spec.output, -1.0, 1.0);
    let model = Model::new(spec, &params).unwrap();
    let mut buf = vec![0.0; Cache::<f32>::len(&spec, T, b)];
    let mut cache = Cache::new(&spec, &mut buf, T, b, Outputs::EveryStep).unwrap();
    let mut y = vec![0.0; T * b * spec.output];
    model
        .forward_with::<Simd>(&x, &mut h, &mut [], &mut cache, &mut y)
        .unwrap();
    let mut out = y;
    out.extend(&h);
    let mut grad = vec![0.0; spec.param_len()];
    let mut dx = vec![0.0; x.len()];
    let mut dh: Vec<f32> = rand_vec(&mut g, h.len(), -1.0, 1.0);
    model
        .backward_with::<Simd>(
            &mut grad,
            &x,
            &mut cache,
            &dy,
            &mut dh,
            &mut [],
            Some(&mut dx),
        )
        .unwrap();
    out.extend(grad);
    out.extend(dx);
    out.extend(&dh);
    let mut h1 = h[..H].to_vec();
    let mut scratch = vec![0.0; model.step_scratch_len()];
    let mut y1 = vec![0.0; spec.output];
    for t in 0..T {
        model
            .step_with::<Simd>(
                &x[t * b * I..][..I],
                &mut h1,
                &mut [],
                &mut scratch,
                &mut y1,
            )
            .unwrap();
        out.extend(&h1);
    }
    out
}

fn layers<const I: usize, const H: usize>() -> bool {
    let mut wide = false;
    for b in [1, 5, 6, 7, 11, 12, 13, 25] {
        let seed = (1000 * I + 10 * H + b) as u64;
        wide |= both_widths(&format!("lstm I={I} H={H} B={b}"), || {
            lstm_layer::<I, H>(b, seed)
        });
        wide |= both_widths(&format!("rnn I={I} H={H} B={b}"), || {
            rnn_layer::<I, H>(b, seed)
        });
        wide |= both_widths(&format!("gru I={I} H={H} B={b}"), || {
            gru_layer::<I, H>(b, seed)
        });
    }
    wide
}

#[test]
fn sixteen_lanes_give_the_same_bits_as_eight() {
    let mut wide = gemms();
    wide |= layers::<1, 3>();
    wide |= layers::<1, 32>();
    wide |= layers::<5, 40>();
    wide |= layers::<28, 128>();
    wide |= layers::<40, 64>();
    wide |= layers::<3, 8>();
    wide |= layers::<2, 24>();
    if !wide {
        eprintln!("this CPU has no AVX-512F: only the 8-lane path ran (compared with itself)");
    }
    // The bits a crate outside the workspace gets (embedded/dependent-check/run.sh checks the
    // same constant there), at both widths; not on CPUs without AVX2 + FMA (portable fallback).
    for allow in [false, true] {
        allow_avx512(allow);
        if tinyrnn::kernels::simd_isa() != "portable" {
            let h = workload::fingerprint();
            assert_eq!(h, workload::EXPECTED, "dependent-check hash: {h:#018x}");
        }
    }
}
