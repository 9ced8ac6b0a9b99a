//! The `Simd` kernels against their `Naive` twins (f32), and against `Naive` in f64 as an
//! independent reference: first every method of the `Kernels` trait on many (odd) shapes, then
//! whole one-layer models of every cell (`Model::forward_with`, `backward_with`, `step_with`)
//! for H in {1, 3, 8, 32, 128} and I in {1, 5, 28, 40}.
//!
//! Tolerance: `|simd - naive| <= TOL * max(1, |naive|)` with `TOL = 1e-5`, i.e. absolute for
//! values of order 1 and relative for large ones (long dot products, gradient sums). Both sides
//! round at 6e-8 per operation but in different orders (8-lane partial sums, FMA) and `wide`'s
//! exp/tanh are within a few ulp of libm's, so differences of ~1e-6 are expected at the largest
//! sizes; an indexing or tail-handling bug produces errors of order 1.

use tinyrnn::cell::CellKind;
use tinyrnn::{Kernels, Lstm, LstmState, Naive, Outputs, Params, Real, Rnn, Simd, Spec, rng};
use tinyrnn_tests::{
    Problem, assert_bits_eq, assert_close, boxed_random, boxed_zeroed, rand_rows, rand_vec,
};

const TOL: f64 = 1e-5;

fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

// ---------------------------------------------------------------------------------------------
// Kernel level

/// The signature of the three gemm kernels for f32.
type GemmFn = fn(usize, usize, usize, &[f32], &[f32], &mut [f32]);

#[derive(Clone, Copy, Debug)]
enum Gemm {
    Nt,
    Nn,
    Tn,
}

/// Runs one gemm shape through Simd<f32>, Naive<f32> and Naive<f64> on the same values and
/// compares. The operands have NaN-filled tails beyond what the shape covers (a kernel that
/// reads past its operand poisons its output) and C a sentinel tail (a kernel that writes past
/// its output is caught); C starts non-zero because every kernel accumulates.
fn check_gemm(kind: Gemm, m: usize, n: usize, k: usize, seed: u64) {
    const PAD: usize = 9;
    let mut r = rng(seed);
    let (la, lb) = match kind {
        Gemm::Nt => (m * k, n * k),
        Gemm::Nn => (m * k, k * n),
        Gemm::Tn => (k * m, k * n),
    };
    let mut a: Vec<f32> = rand_vec(&mut r, la, -1.0, 1.0);
    let mut b: Vec<f32> = rand_vec(&mut r, lb, -1.0, 1.0);
    let mut c0: Vec<f32> = rand_vec(&mut r, m * n, -1.0, 1.0);
    a.extend([f32::NAN; PAD]);
    b.extend([f32::NAN; PAD]);
    c0.extend([12345.0; PAD]);
    let run32 = |f: GemmFn| {
        let mut c = c0.clone();
        f(m, n, k, &a, &b, &mut c);
        c
    };
    let (simd, naive) = match kind {
        Gemm::Nt => (
            run32(<Simd as Kernels<f32>>::gemm_nt),
            run32(<Naive as Kernels<f32>>::gemm_nt),
        ),
        Gemm::Nn => (
            run32(<Simd as Kernels<f32>>::gemm_nn),
            run32(<Naive as Kernels<f32>>::gemm_nn),
        ),
        Gemm::Tn => (
            run32(<Simd as Kernels<f32>>::gemm_tn),
            run32(<Naive as Kernels<f32>>::gemm_tn),
        ),
    };
    let (a64, b64) = (widen(&a[..la]), widen(&b[..lb]));
    let mut exact = widen(&c0[..m * n]);
    match kind {
        Gemm::Nt => <Naive as Kernels<f64>>::gemm_nt(m, n, k, &a64, &b64, &mut exact),
        Gemm::Nn => <Naive as Kernels<f64>>::gemm_nn(m, n, k, &a64, &b64, &mut exact),
        Gemm::Tn => <Naive as Kernels<f64>>::gemm_tn(m, n, k, &a64, &b64, &mut exact),
    }
    let what = format!("{kind:?} m={m} n={n} k={k}");
    assert_close(
        &format!("{what} simd vs naive"),
        &simd[..m * n],
        &naive[..m * n],
        TOL,
    );
    // Against the f64 product the error grows with k: bound it by the sum of the magnitudes of
    // the terms, `|got - exact| <= 1e-6 * (1 + |c0| + Σ_p |a||b|)` (~16 f32 ulps of that sum;
    // observed: up to 1.1e-5 absolute for the naive k = 512 sums, i.e. 1e-7 of the magnitude).
    let (aa, ba) = (
        a64.iter().map(|v| v.abs()).collect::<Vec<_>>(),
        b64.iter().map(|v| v.abs()).collect::<Vec<_>>(),
    );
    let mut mag = widen(&c0[..m * n])
        .iter()
        .map(|v| v.abs())
        .collect::<Vec<_>>();
    match kind {
        Gemm::Nt => <Naive as Kernels<f64>>::gemm_nt(m, n, k, &aa, &ba, &mut mag),
        Gemm::Nn => <Naive as Kernels<f64>>::gemm_nn(m, n, k, &aa, &ba, &mut mag),
        Gemm::Tn => <Naive as Kernels<f64>>::gemm_tn(m, n, k, &aa, &ba, &mut mag),
    }
    for (name, got) in [("simd", &simd), ("naive", &naive)] {
        for (j, ((&g, &e), &s)) in got.iter().zip(&exact).zip(&mag).enumerate() {
            let d = (g as f64 - e).abs();
            assert!(
                d <= 1e-6 * (1.0 + s),
                "{what} {name} vs f64 [{j}]: got {g:e}, want {e:e}, |diff| {d:e}, magnitude {s:e}"
            );
        }
    }
    assert!(
        simd[m * n..].iter().all(|&v| v == 12345.0),
        "{what}: wrote past C"
    );
}

const MS: [usize; 8] = [1, 2, 3, 4, 5, 7, 9, 13];
// 70, 128: `gemm_tn` packs A from 64 columns on.
const NS: [usize; 14] = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24, 33, 70, 128];
// 300: more than one k block of `gemm_tn` (256).
const KS: [usize; 12] = [1, 2, 3, 5, 7, 8, 9, 13, 16, 28, 33, 300];

fn sweep(kind: Gemm) {
    let mut seed = 0;
    for m in MS {
        for n in NS {
            for k in KS {
                seed += 1;
                check_gemm(kind, m, n, k, seed);
            }
        }
    }
}

#[test]
fn gemm_nt_odd_shapes() {
    sweep(Gemm::Nt);
}

#[test]
fn gemm_nn_odd_shapes() {
    sweep(Gemm::Nn);
}

#[test]
fn gemm_tn_odd_shapes() {
    sweep(Gemm::Tn);
}

const HS: [usize; 5] = [1, 3, 8, 32, 128];
const IS: [usize; 3] = [1, 5, 28];

/// The exact shapes the LSTM and RNN use (G = 4H or H rows of gates, B = 3, T·B = 12).
#[test]
fn gemm_and_col_sum_layer_shapes() {
    let (b, n) = (3, 12);
    let mut seed = 1000;
    for h in HS {
        for i in IS {
            for g in [4 * h, h] {
                for (kind, m, nn, k) in [
                    (Gemm::Nt, n, g, i), // input projection
                    (Gemm::Nt, b, g, h), // recurrent projection
                    (Gemm::Nt, 1, g, i), // step
                    (Gemm::Nt, 1, g, h),
                    (Gemm::Nn, b, h, g), // dh_{t-1} = W_hhᵀ da
                    (Gemm::Nn, n, i, g), // dx
                    (Gemm::Tn, g, h, b), // dW_hh
                    (Gemm::Tn, g, i, n), // dW_ih
                ] {
                    seed += 1;
                    check_gemm(kind, m, nn, k, seed);
                }
                seed += 1;
                let mut r = rng(seed);
                let a: Vec<f32> = rand_vec(&mut r, n * g, -1.0, 1.0);
                let y0: Vec<f32> = rand_vec(&mut r, g, -1.0, 1.0);
                let (mut ys, mut yn) = (y0.clone(), y0.clone());
                <Simd as Kernels<f32>>::col_sum(n, g, &a, &mut ys);
                <Naive as Kernels<f32>>::col_sum(n, g, &a, &mut yn);
                let want: Vec<f64> = (0..g)
                    .map(|j| y0[j] as f64 + (0..n).map(|r| a[r * g + j] as f64).sum::<f64>())
                    .collect();
                assert_close("col_sum simd vs naive", &ys, &yn, TOL);
                assert_close("col_sum vs f64", &ys, &want, TOL);
            }
        }
    }
}

/// Sizes for the pointwise kernels: every lane remainder, plus the layer sizes.
const PW: [usize; 12] = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 32, 128];

/// Pre-activations: mostly moderate, plus saturating and extreme values and exact zeros.
fn pre_values(seed: u64, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = rand_vec(&mut rng(seed), n, -6.0, 6.0);
    let special = [0.0, -0.0, 30.0, -30.0, 100.0, -100.0, 9.5, -9.5, 1e-5, 0.3];
    for (j, s) in special.iter().enumerate() {
        if (3 * j + 1) < n {
            v[3 * j + 1] = *s;
        }
    }
    v
}

struct LstmFwd {
    gates: Vec<f32>,
    c: Vec<f32>,
    tanh_c: Vec<f32>,
    h: Vec<f32>,
}

fn lstm_fwd<K: Kernels<f32>>(pre: &[f32], c_prev: &[f32]) -> LstmFwd {
    let hs = c_prev.len();
    let mut o = LstmFwd {
        gates: vec![f32::NAN; 4 * hs],
        c: vec![f32::NAN; hs],
        tanh_c: vec![f32::NAN; hs],
        h: vec![f32::NAN; hs],
    };
    K::lstm_pointwise(pre, c_prev, &mut o.gates, &mut o.c, &mut o.tanh_c, &mut o.h);
    o
}

#[test]
fn lstm_pointwise_forward_and_backward() {
    for (s, hs) in PW.into_iter().enumerate() {
        let s = 2000 + 10 * s as u64;
        let pre = pre_values(s, 4 * hs);
        let c_prev: Vec<f32> = rand_vec(&mut rng(s + 1), hs, -3.0, 3.0);
        let simd = lstm_fwd::<Simd>(&pre, &c_prev);
        let naive = lstm_fwd::<Naive>(&pre, &c_prev);
        let what = format!("lstm_pointwise H={hs}");
        assert_close(&format!("{what} gates"), &simd.gates, &naive.gates, TOL);
        assert_close(&format!("{what} c"), &simd.c, &naive.c, TOL);
        assert_close(&format!("{what} tanh_c"), &simd.tanh_c, &naive.tanh_c, TOL);
        assert_close(&format!("{what} h"), &simd.h, &naive.h, TOL);
        // Against the definitions in f64.
        let sig = |x: f32| 1.0 / (1.0 + (-(x as f64)).exp());
        for j in 0..hs {
            let (i, f) = (sig(pre[j]), sig(pre[hs + j]));
            let (g, o) = ((pre[2 * hs + j] as f64).tanh(), sig(pre[3 * hs + j]));
            let c = f * c_prev[j] as f64 + i * g;
            let want = [i, f, g, o, c, c.tanh(), o * c.tanh()];
            let got = [
                simd.gates[j],
                simd.gates[hs + j],
                simd.gates[2 * hs + j],
                simd.gates[3 * hs + j],
                simd.c[j],
                simd.tanh_c[j],
                simd.h[j],
            ];
            assert_close(&format!("{what} [{j}] vs f64"), &got, &want, TOL);
        }

        // Backward from the naive forward's values.
        let mut r = rng(s + 2);
        let dh_ext: Vec<f32> = rand_vec(&mut r, hs, -1.0, 1.0);
        let dh_rec: Vec<f32> = rand_vec(&mut r, hs, -1.0, 1.0);
        let dc0: Vec<f32> = rand_vec(&mut r, hs, -1.0, 1.0);
        let bwd = |simd: bool| {
            let mut dc = dc0.clone();
            let mut dpre = vec![f32::NAN; 4 * hs]; // set, not accumulated
            let f = if simd {
                <Simd as Kernels<f32>>::lstm_pointwise_backward
            } else {
                <Naive as Kernels<f32>>::lstm_pointwise_backward
            };
            f(
                &naive.gates,
                &c_prev,
                &naive.tanh_c,
                &dh_ext,
                &dh_rec,
                &mut dc,
                &mut dpre,
            );
            (dc, dpre)
        };
        let ((dc_s, dpre_s), (dc_n, dpre_n)) = (bwd(true), bwd(false));
        assert_close(&format!("{what} backward dc"), &dc_s, &dc_n, TOL);
        assert_close(&format!("{what} backward dpre"), &dpre_s, &dpre_n, TOL);
        for j in 0..hs {
            let g = |q: usize| naive.gates[q * hs + j] as f64;
            let tc = naive.tanh_c[j] as f64;
            let dh = dh_ext[j] as f64 + dh_rec[j] as f64;
            let dct = dc0[j] as f64 + dh * g(3) * (1.0 - tc * tc);
            let want = [
                dct * g(2) * g(0) * (1.0 - g(0)),
                dct * c_prev[j] as f64 * g(1) * (1.0 - g(1)),
                dct * g(0) * (1.0 - g(2) * g(2)),
                dh * tc * g(3) * (1.0 - g(3)),
                dct * g(1),
            ];
            let got = [
                dpre_s[j],
                dpre_s[hs + j],
                dpre_s[2 * hs + j],
                dpre_s[3 * hs + j],
                dc_s[j],
            ];
            assert_close(&format!("{what} backward [{j}] vs f64"), &got, &want, TOL);
        }
    }
}

#[test]
fn tanh_pointwise_forward_and_backward() {
    for (s, hs) in PW.into_iter().enumerate() {
        let s = 3000 + 10 * s as u64;
        let pre = pre_values(s, hs);
        let (mut hs_, mut hn) = (vec![f32::NAN; hs], vec![f32::NAN; hs]);
        <Simd as Kernels<f32>>::tanh_pointwise(&pre, &mut hs_);
        <Naive as Kernels<f32>>::tanh_pointwise(&pre, &mut hn);
        let what = format!("tanh_pointwise H={hs}");
        assert_close(&what, &hs_, &hn, TOL);
        let want: Vec<f64> = pre.iter().map(|&x| (x as f64).tanh()).collect();
        assert_close(&format!("{what} vs f64"), &hs_, &want, TOL);

        let mut r = rng(s + 1);
        let dh_ext: Vec<f32> = rand_vec(&mut r, hs, -1.0, 1.0);
        let dh_rec: Vec<f32> = rand_vec(&mut r, hs, -1.0, 1.0);
        let (mut ds, mut dn) = (vec![f32::NAN; hs], vec![f32::NAN; hs]);
        <Simd as Kernels<f32>>::tanh_pointwise_backward(&hn, &dh_ext, &dh_rec, &mut ds);
        <Naive as Kernels<f32>>::tanh_pointwise_backward(&hn, &dh_ext, &dh_rec, &mut dn);
        assert_close(&format!("{what} backward"), &ds, &dn, TOL);
        let want: Vec<f64> = (0..hs)
            .map(|j| {
                (dh_ext[j] as f64 + dh_rec[j] as f64) * (1.0 - (hn[j] as f64) * (hn[j] as f64))
            })
            .collect();
        assert_close(&format!("{what} backward vs f64"), &ds, &want, TOL);
    }
}

/// The GRU pointwise forward and backward over `batch` rows, Simd against Naive and against the
/// definitions (`cell/gru.rs`) in f64.
#[test]
fn gru_pointwise_forward_and_backward() {
    for (s, hs) in PW.into_iter().enumerate() {
        for batch in [1, 3] {
            let s = 4000 + 10 * s as u64 + batch as u64;
            let (g3, n) = (3 * hs, batch * hs);
            let ax = pre_values(s, batch * g3);
            let ah: Vec<f32> = rand_vec(&mut rng(s + 1), batch * g3, -3.0, 3.0);
            let h_prev: Vec<f32> = rand_vec(&mut rng(s + 2), n, -1.0, 1.0);
            let fwd = |simd: bool| {
                let (mut cache, mut h) = (vec![f32::NAN; 4 * n], vec![f32::NAN; n]);
                let f = if simd {
                    <Simd as Kernels<f32>>::gru_pointwise
                } else {
                    <Naive as Kernels<f32>>::gru_pointwise
                };
                f(batch, hs, &ax, &ah, &h_prev, &mut cache, &mut h);
                (cache, h)
            };
            let ((cache_s, h_s), (cache_n, h_n)) = (fwd(true), fwd(false));
            let what = format!("gru_pointwise H={hs} B={batch}");
            assert_close(&format!("{what} cache"), &cache_s, &cache_n, TOL);
            assert_close(&format!("{what} h"), &h_s, &h_n, TOL);
            let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
            for b in 0..batch {
                for j in 0..hs {
                    let (x, a) = (
                        |q: usize| ax[b * g3 + q * hs + j] as f64,
                        |q: usize| ah[b * g3 + q * hs + j] as f64,
                    );
                    let r = sig(x(0) + a(0));
                    let z = sig(x(1) + a(1));
                    let nn = (x(2) + r * a(2)).tanh();
                    let hp = h_prev[b * hs + j] as f64;
                    let want = [r, z, nn, a(2), (1.0 - z) * nn + z * hp];
                    let c = &cache_s[b * 4 * hs..];
                    let got = [c[j], c[hs + j], c[2 * hs + j], c[g3 + j], h_s[b * hs + j]];
                    assert_close(&format!("{what} [{b},{j}] vs f64"), &got, &want, TOL);
                }
            }

            // Backward from the naive forward's cache.
            let mut r = rng(s + 3);
            let dh_ext: Vec<f32> = rand_vec(&mut r, n, -1.0, 1.0);
            let dh0: Vec<f32> = rand_vec(&mut r, n, -1.0, 1.0);
            let bwd = |simd: bool| {
                let mut dh = dh0.clone();
                let (mut dax, mut dah) = (vec![f32::NAN; batch * g3], vec![f32::NAN; batch * g3]);
                let f = if simd {
                    <Simd as Kernels<f32>>::gru_pointwise_backward
                } else {
                    <Naive as Kernels<f32>>::gru_pointwise_backward
                };
                f(
                    batch, hs, &cache_n, &h_prev, &dh_ext, &mut dh, &mut dax, &mut dah,
                );
                (dh, dax, dah)
            };
            let ((dh_s, dax_s, dah_s), (dh_n, dax_n, dah_n)) = (bwd(true), bwd(false));
            assert_close(&format!("{what} backward dh"), &dh_s, &dh_n, TOL);
            assert_close(&format!("{what} backward dax"), &dax_s, &dax_n, TOL);
            assert_close(&format!("{what} backward dah"), &dah_s, &dah_n, TOL);
            for b in 0..batch {
                for j in 0..hs {
                    let c = |q: usize| cache_n[b * 4 * hs + q * hs + j] as f64;
                    let (r, z, nn, hn) = (c(0), c(1), c(2), c(3));
                    let k = b * hs + j;
                    let dh = dh_ext[k] as f64 + dh0[k] as f64;
                    let da_n = dh * (1.0 - z) * (1.0 - nn * nn);
                    let da_r = da_n * hn * r * (1.0 - r);
                    let da_z = dh * (h_prev[k] as f64 - nn) * z * (1.0 - z);
                    let want = [da_r, da_z, da_n, da_r, da_z, da_n * r, dh * z];
                    let (x, a) = (&dax_s[b * g3..], &dah_s[b * g3..]);
                    let got = [
                        x[j],
                        x[hs + j],
                        x[2 * hs + j],
                        a[j],
                        a[hs + j],
                        a[2 * hs + j],
                        dh_s[k],
                    ];
                    assert_close(
                        &format!("{what} backward [{b},{j}] vs f64"),
                        &got,
                        &want,
                        TOL,
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layer level: the same f32 model with `Naive` and with `Simd` kernels.

const B: usize = 3;
const T: usize = 4;

/// One layer of every cell, I -> H, then a head of 3: forward, backward, the caches and the
/// batch-1 steps, Simd against Naive; and the default f32 kernels are the Simd ones, bit for bit.
fn layers_naive_vs_simd(i: usize, h: usize, seed: u64) {
    for cell in CellKind::ALL {
        let spec = Spec::new(cell, i, h, 3);
        let prob = Problem::new(spec, T, B, seed).cast();
        let s = prob.run::<Simd>(Outputs::EveryStep, true);
        let n = prob.run::<Naive>(Outputs::EveryStep, true);
        let what = format!("{cell} I={i} H={h}");
        for (part, a, b) in [
            ("y", &s.y, &n.y),
            ("h", &s.h, &n.h),
            ("c", &s.c, &n.c),
            ("cache", &s.cached, &n.cached),
            ("grad", &s.grad, &n.grad),
            ("dx", &s.dx, &n.dx),
            ("dh0", &s.dh0, &n.dh0),
            ("dc0", &s.dc0, &n.dc0),
        ] {
            assert_close(&format!("{what} {part}"), a, b, TOL);
        }
        let (ys, hs, cs) = prob.steps::<Simd>(1);
        let (yn, hn, cn) = prob.steps::<Naive>(1);
        assert_close(&format!("{what} step y"), &ys, &yn, TOL);
        assert_close(&format!("{what} step h"), &hs, &hn, TOL);
        assert_close(&format!("{what} step c"), &cs, &cn, TOL);
        let default = prob.run::<<f32 as Real>::Kernels>(Outputs::EveryStep, true);
        assert_bits_eq(
            &format!("{what} default kernels are Simd"),
            &default.all(),
            &s.all(),
        );
    }
}

macro_rules! layer_tests {
    ($($name:ident: I = $i:literal, H = $h:literal;)*) => {$(
        #[test]
        fn $name() {
            layers_naive_vs_simd($i, $h, 4000 + 1000 * $i + $h);
        }
    )*};
}

layer_tests! {
    layers_i1_h1: I = 1, H = 1;
    layers_i1_h3: I = 1, H = 3;
    layers_i1_h8: I = 1, H = 8;
    layers_i1_h32: I = 1, H = 32;
    layers_i1_h128: I = 1, H = 128;
    layers_i5_h1: I = 5, H = 1;
    layers_i5_h3: I = 5, H = 3;
    layers_i5_h8: I = 5, H = 8;
    layers_i5_h32: I = 5, H = 32;
    layers_i5_h128: I = 5, H = 128;
    layers_i28_h1: I = 28, H = 1;
    layers_i28_h3: I = 28, H = 3;
    layers_i28_h8: I = 28, H = 8;
    layers_i28_h32: I = 28, H = 32;
    layers_i28_h128: I = 28, H = 128;
    layers_i40_h8: I = 40, H = 8;
    layers_i40_h32: I = 40, H = 32;
}

/// The typed embedded layers' `step` is the engine cells' step: Simd against Naive, and the
/// default one is the Simd one.
#[test]
fn typed_steps_simd_vs_naive() {
    const I: usize = 5;
    const H: usize = 11;
    let lstm = boxed_random::<f32, Lstm<I, H, f32>>(60, 0.4);
    let rnn = boxed_random::<f32, Rnn<I, H, f32>>(61, 0.4);
    let xs: Vec<[f32; I]> = rand_rows(&mut rng(62), T, -1.0, 1.0);
    let init: Vec<[f32; H]> = rand_rows(&mut rng(63), 2, -0.5, 0.5);
    let mut ss = LstmState {
        h: init[0],
        c: init[1],
    };
    let (mut sn, mut sd) = (ss, ss);
    let (mut hs, mut hn, mut hd) = (init[0], init[0], init[0]);
    for x in &xs {
        lstm.step_with::<Simd>(x, &mut ss);
        lstm.step_with::<Naive>(x, &mut sn);
        lstm.step(x, &mut sd);
        assert_close("lstm step_with h", &ss.h, &sn.h, TOL);
        assert_close("lstm step_with c", &ss.c, &sn.c, TOL);
        assert_bits_eq("lstm default step is Simd", &sd.h, &ss.h);
        rnn.step_with::<Simd>(x, &mut hs);
        rnn.step_with::<Naive>(x, &mut hn);
        rnn.step(x, &mut hd);
        assert_close("rnn step_with", &hs, &hn, TOL);
        assert_bits_eq("rnn default step is Simd", &hd, &hs);
    }
}

/// `boxed_zeroed` really gives zeros for the largest model here (and does not touch the stack).
#[test]
fn boxed_zeroed_large_model() {
    let m = boxed_zeroed::<f32, tinyrnn::LstmModel<28, 128, 10, f32>>();
    assert!(m.as_flat().iter().all(|&v| v == 0.0));
    assert_eq!(m.as_flat().len(), 4 * 128 * (28 + 128 + 2) + 10 * 129);
}
