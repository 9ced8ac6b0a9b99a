//! Structural identities of the recurrent layers and the parameter tables.
//!
//! * `step` x T == one `forward` over T steps (outputs and final state);
//! * backward over chained chunks (each with its own cache, the carry handed from one to the
//!   next) == one backward over the whole sequence: length-1 chunks, and two TBPTT chunks;
//! * the forward pass implements the documented equations (independent scalar reference);
//! * the cache's pre-activations are `W_ih x_t + b_ih + W_hh h_{t-1} + b_hh` (recomputed in f64
//!   from the cache's own `h`) and its gates / `h` are their activations, for both kernel sets;
//! * `LstmModel::step` / `RnnModel::step` == layer step then head step;
//! * `Params::TENSORS` are PyTorch's names, offsets and shapes, and they address the fields;
//! * shape errors are reported as `Err`, not panics.
//!
//! Tolerances: [`tol`] is 1e-5 for `f32` and 1e-12 for `f64`, as `|a - b| <= tol * max(1, |b|)`.
//! Chunked and full computations do the same arithmetic except for how the weight-gradient sums
//! are split, so they differ by rounding only (observed ~1e-7 in f32, ~1e-16 in f64).

use tinyrnn::{
    Error, Kernels, Linear, Lstm, LstmCache, LstmModel, LstmState, Naive, Params, Real, Rnn,
    RnnCache, RnnModel, Simd, TensorInfo, rng,
};
use tinyrnn_tests::{
    assert_bits_eq, assert_close, assert_tensors_close, boxed_random, boxed_zeroed, rand_rows,
};

const I: usize = 4;
const H: usize = 11; // 8 SIMD lanes + a remainder of 3
const B: usize = 3;

/// 1e-5 for f32, 1e-12 for f64.
fn tol<F: Real>() -> f64 {
    if core::mem::size_of::<F>() == 4 {
        1e-5
    } else {
        1e-12
    }
}

fn flat<F: Real, const N: usize>(x: &[[F; N]]) -> &[F] {
    x.as_flattened()
}

// ---------------------------------------------------------------------------------------------
// (a) T single steps == one forward

fn lstm_steps_equal_forward<F: Real>(seed: u64) {
    const T: usize = 6;
    let lstm: Box<Lstm<I, H, F>> = boxed_random(seed, 0.7);
    let mut r = rng(seed + 1);
    let x: Vec<[F; I]> = rand_rows(&mut r, T * B, -1.0, 1.0);
    let h0: Vec<[F; H]> = rand_rows(&mut r, B, -0.5, 0.5);
    let c0: Vec<[F; H]> = rand_rows(&mut r, B, -1.0, 1.0);

    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut buf = vec![F::ZERO; LstmCache::<H, F>::len(T, B)];
    let mut cache = LstmCache::new(&mut buf, T, B).unwrap();
    lstm.forward(&x, &mut h, &mut c, &mut cache).unwrap();
    assert_eq!(cache.h0(), &h0[..]);
    assert_eq!(cache.c0(), &c0[..]);

    for b in 0..B {
        let mut s = LstmState { h: h0[b], c: c0[b] };
        for t in 0..T {
            lstm.step(&x[t * B + b], &mut s);
            let what = format!("lstm step t={t} b={b}");
            assert_close(
                &format!("{what} h"),
                &s.h,
                &cache.h()[t * B + b],
                tol::<F>(),
            );
            assert_close(
                &format!("{what} c"),
                &s.c,
                &cache.c()[t * B + b],
                tol::<F>(),
            );
        }
        assert_close("lstm final h", &s.h, &h[b], tol::<F>());
        assert_close("lstm final c", &s.c, &c[b], tol::<F>());
    }
}

#[test]
fn lstm_steps_equal_forward_f32() {
    lstm_steps_equal_forward::<f32>(100);
}

#[test]
fn lstm_steps_equal_forward_f64() {
    lstm_steps_equal_forward::<f64>(101);
}

fn rnn_steps_equal_forward<F: Real>(seed: u64) {
    const T: usize = 6;
    let rnn: Box<Rnn<I, H, F>> = boxed_random(seed, 0.6);
    let mut r = rng(seed + 1);
    let x: Vec<[F; I]> = rand_rows(&mut r, T * B, -1.0, 1.0);
    let h0: Vec<[F; H]> = rand_rows(&mut r, B, -0.5, 0.5);

    let mut h = h0.clone();
    let mut buf = vec![F::ZERO; RnnCache::<H, F>::len(T, B)];
    let mut cache = RnnCache::new(&mut buf, T, B).unwrap();
    rnn.forward(&x, &mut h, &mut cache).unwrap();
    assert_eq!(cache.h0(), &h0[..]);

    for b in 0..B {
        let mut s = h0[b];
        for t in 0..T {
            rnn.step(&x[t * B + b], &mut s);
            assert_close(
                &format!("rnn step t={t} b={b}"),
                &s,
                &cache.h()[t * B + b],
                tol::<F>(),
            );
        }
        assert_close("rnn final h", &s, &h[b], tol::<F>());
    }
}

#[test]
fn rnn_steps_equal_forward_f32() {
    rnn_steps_equal_forward::<f32>(110);
}

#[test]
fn rnn_steps_equal_forward_f64() {
    rnn_steps_equal_forward::<f64>(111);
}

// ---------------------------------------------------------------------------------------------
// The forward pass against the documented equations, written out in scalar f64.

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn lstm_forward_matches_reference_equations() {
    const T: usize = 3;
    let lstm: Box<Lstm<I, H, f64>> = boxed_random(120, 0.7);
    let mut r = rng(121);
    let x: Vec<[f64; I]> = rand_rows(&mut r, T * B, -1.0, 1.0);
    let h0: Vec<[f64; H]> = rand_rows(&mut r, B, -0.5, 0.5);
    let c0: Vec<[f64; H]> = rand_rows(&mut r, B, -1.0, 1.0);
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut buf = vec![0.0; LstmCache::<H, f64>::len(T, B)];
    let mut cache = LstmCache::new(&mut buf, T, B).unwrap();
    lstm.forward(&x, &mut h, &mut c, &mut cache).unwrap();

    // PyTorch's rows of weight_ih [4H, I] are gates i, f, g, o, each H rows.
    let wih = lstm.tensor("weight_ih").unwrap();
    let whh = lstm.tensor("weight_hh").unwrap();
    let bih = lstm.tensor("bias_ih").unwrap();
    let bhh = lstm.tensor("bias_hh").unwrap();
    for b in 0..B {
        let (mut hp, mut cp) = (h0[b], c0[b]);
        for t in 0..T {
            let xt = &x[t * B + b];
            let a: Vec<f64> = (0..4 * H)
                .map(|row| {
                    let mut s = bih[row] + bhh[row];
                    for k in 0..I {
                        s += wih[row * I + k] * xt[k];
                    }
                    for k in 0..H {
                        s += whh[row * H + k] * hp[k];
                    }
                    s
                })
                .collect();
            let mut hn = [0.0; H];
            let mut cn = [0.0; H];
            for j in 0..H {
                let i = sigmoid(a[j]);
                let f = sigmoid(a[H + j]);
                let g = a[2 * H + j].tanh();
                let o = sigmoid(a[3 * H + j]);
                cn[j] = f * cp[j] + i * g;
                hn[j] = o * cn[j].tanh();
                let gates = cache.gates()[t * B + b];
                assert_close(
                    "gates",
                    &[gates[0][j], gates[1][j], gates[2][j], gates[3][j]],
                    &[i, f, g, o],
                    1e-13,
                );
            }
            assert_close("lstm h vs equations", &cache.h()[t * B + b], &hn, 1e-13);
            assert_close("lstm c vs equations", &cache.c()[t * B + b], &cn, 1e-13);
            (hp, cp) = (hn, cn);
        }
    }
}

#[test]
fn rnn_forward_matches_reference_equations() {
    const T: usize = 3;
    let rnn: Box<Rnn<I, H, f64>> = boxed_random(130, 0.6);
    let mut r = rng(131);
    let x: Vec<[f64; I]> = rand_rows(&mut r, T * B, -1.0, 1.0);
    let h0: Vec<[f64; H]> = rand_rows(&mut r, B, -0.5, 0.5);
    let mut h = h0.clone();
    let mut buf = vec![0.0; RnnCache::<H, f64>::len(T, B)];
    let mut cache = RnnCache::new(&mut buf, T, B).unwrap();
    rnn.forward(&x, &mut h, &mut cache).unwrap();
    for b in 0..B {
        let mut hp = h0[b];
        for t in 0..T {
            let xt = &x[t * B + b];
            let hn: [f64; H] = core::array::from_fn(|j| {
                let wx: f64 = rnn.weight_ih[j].iter().zip(xt).map(|(w, x)| w * x).sum();
                let wh: f64 = rnn.weight_hh[j].iter().zip(&hp).map(|(w, h)| w * h).sum();
                (rnn.bias_ih[j] + rnn.bias_hh[j] + wx + wh).tanh()
            });
            assert_close("rnn h vs equations", &cache.h()[t * B + b], &hn, 1e-13);
            hp = hn;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cache's pre-activations, recomputed in f64 from the parameters, the inputs and the cache's
// own h_{t-1} (so each step is checked on its own, without compounding), and the cache's
// activations of them.

/// `|got - want| <= tol · (1 + Σ|terms|)`: the rounding of a sum grows with its terms.
fn assert_sum_close(what: &str, got: f64, want: f64, abs_terms: f64, tol: f64) {
    let bound = tol * (1.0 + abs_terms);
    assert!(
        (got - want).abs() <= bound,
        "{what}: got {got}, want {want} (diff {:e} > {bound:e})",
        (got - want).abs()
    );
}

/// One row `b_ih[j] + b_hh[j] + W_ih[j] · x + W_hh[j] · h` in f64, and the sum of its terms'
/// magnitudes.
fn affine_row<F: Real>(bi: F, bh: F, wi: &[F], x: &[F], wh: &[F], h: &[F]) -> (f64, f64) {
    let terms = [bi.to_f64(), bh.to_f64()]
        .into_iter()
        .chain(wi.iter().zip(x).map(|(w, v)| w.to_f64() * v.to_f64()))
        .chain(wh.iter().zip(h).map(|(w, v)| w.to_f64() * v.to_f64()));
    terms.fold((0.0, 0.0), |(s, a), v| (s + v, a + v.abs()))
}

/// `tol_sum`: for the pre-activations, relative to their terms; `tol_act`: absolute, for the
/// activations of the stored pre-activations.
fn lstm_cache_pre<F: Real, K: Kernels<F>, const I: usize, const H: usize>(
    steps: usize,
    batch: usize,
    seed: u64,
    (tol_sum, tol_act): (f64, f64),
) {
    let lstm: Box<Lstm<I, H, F>> = boxed_random(seed, 1.5 / (H as f64).sqrt());
    let mut r = rng(seed + 1);
    let x: Vec<[F; I]> = rand_rows(&mut r, steps * batch, -1.0, 1.0);
    let h0: Vec<[F; H]> = rand_rows(&mut r, batch, -0.5, 0.5);
    let c0: Vec<[F; H]> = rand_rows(&mut r, batch, -1.0, 1.0);
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut buf = vec![F::ZERO; LstmCache::<H, F>::len(steps, batch)];
    let mut cache = LstmCache::new(&mut buf, steps, batch).unwrap();
    lstm.forward_with::<K>(&x, &mut h, &mut c, &mut cache)
        .unwrap();
    assert_eq!(cache.pre().len(), steps * batch);
    for t in 0..steps {
        for b in 0..batch {
            let row = t * batch + b;
            let hp = if t == 0 {
                &cache.h0()[b]
            } else {
                &cache.h()[row - batch]
            };
            let (pre, gates) = (&cache.pre()[row], &cache.gates()[row]);
            for g in 0..4 {
                for j in 0..H {
                    let what = format!("lstm I={I} H={H} B={batch} t={t} b={b} gate {g} unit {j}");
                    let (want, abs) = affine_row(
                        lstm.bias_ih[g][j],
                        lstm.bias_hh[g][j],
                        &lstm.weight_ih[g][j],
                        &x[row],
                        &lstm.weight_hh[g][j],
                        hp,
                    );
                    let a = pre[g][j].to_f64();
                    assert_sum_close(&format!("{what} pre"), a, want, abs, tol_sum);
                    let act = if g == 2 { a.tanh() } else { sigmoid(a) };
                    let got = gates[g][j].to_f64();
                    assert_sum_close(&format!("{what} activation"), got, act, 0.0, tol_act);
                }
            }
        }
    }
}

fn rnn_cache_pre<F: Real, K: Kernels<F>, const I: usize, const H: usize>(
    steps: usize,
    batch: usize,
    seed: u64,
    (tol_sum, tol_act): (f64, f64),
) {
    let rnn: Box<Rnn<I, H, F>> = boxed_random(seed, 1.5 / (H as f64).sqrt());
    let mut r = rng(seed + 1);
    let x: Vec<[F; I]> = rand_rows(&mut r, steps * batch, -1.0, 1.0);
    let mut h: Vec<[F; H]> = rand_rows(&mut r, batch, -0.5, 0.5);
    let mut buf = vec![F::ZERO; RnnCache::<H, F>::len(steps, batch)];
    let mut cache = RnnCache::new(&mut buf, steps, batch).unwrap();
    rnn.forward_with::<K>(&x, &mut h, &mut cache).unwrap();
    assert_eq!(cache.pre().len(), steps * batch);
    for t in 0..steps {
        for b in 0..batch {
            let row = t * batch + b;
            let hp = if t == 0 {
                &cache.h0()[b]
            } else {
                &cache.h()[row - batch]
            };
            for j in 0..H {
                let what = format!("rnn I={I} H={H} B={batch} t={t} b={b} unit {j}");
                let (want, abs) = affine_row(
                    rnn.bias_ih[j],
                    rnn.bias_hh[j],
                    &rnn.weight_ih[j],
                    &x[row],
                    &rnn.weight_hh[j],
                    hp,
                );
                let a = cache.pre()[row][j].to_f64();
                assert_sum_close(&format!("{what} pre"), a, want, abs, tol_sum);
                let got = cache.h()[row][j].to_f64();
                assert_sum_close(&format!("{what} tanh"), got, a.tanh(), 0.0, tol_act);
            }
        }
    }
}

/// Both cells, both kernel sets in f32 and the naive ones in f64, for one (I, H). The callers'
/// shapes take both paths of the SIMD step: `W_ih` packed once per forward into the dpre rows
/// (when they have room: always with I = 1, for most H with I = 5), and transposed at every step
/// (I = 40 > T·B; the partial sums of the first 32 inputs wait in `pre`). The batches cover a
/// full 6-row tile of the SIMD step plus a remainder, and a remainder alone.
fn cache_pre_all<const I: usize, const H: usize>(steps: usize, batch: usize, seed: u64) {
    // f32: a few roundings of the terms' size per sum (~1e-7 observed); the SIMD sigmoid/tanh
    // are within 4e-7 of libm's (tests/activations.rs).
    let f32_tol = (1e-6, 1e-6);
    let f64_tol = (1e-14, 1e-15);
    lstm_cache_pre::<f32, Simd, I, H>(steps, batch, seed, f32_tol);
    lstm_cache_pre::<f32, Naive, I, H>(steps, batch, seed, f32_tol);
    lstm_cache_pre::<f64, Naive, I, H>(steps, batch, seed, f64_tol);
    rnn_cache_pre::<f32, Simd, I, H>(steps, batch, seed + 2, f32_tol);
    rnn_cache_pre::<f32, Naive, I, H>(steps, batch, seed + 2, f32_tol);
    rnn_cache_pre::<f64, Naive, I, H>(steps, batch, seed + 2, f64_tol);
}

#[test]
fn cache_pre_activations_h1() {
    cache_pre_all::<1, 1>(5, 7, 190);
    cache_pre_all::<5, 1>(4, 7, 190);
    cache_pre_all::<40, 1>(3, 5, 191);
}

#[test]
fn cache_pre_activations_h3() {
    cache_pre_all::<1, 3>(5, 7, 192);
    cache_pre_all::<5, 3>(4, 7, 192);
    cache_pre_all::<40, 3>(3, 5, 193);
}

#[test]
fn cache_pre_activations_h8() {
    cache_pre_all::<1, 8>(5, 7, 194);
    cache_pre_all::<5, 8>(4, 7, 194);
    cache_pre_all::<40, 8>(3, 5, 195);
}

#[test]
fn cache_pre_activations_h32() {
    cache_pre_all::<1, 32>(5, 7, 196);
    cache_pre_all::<5, 32>(4, 7, 196);
    cache_pre_all::<40, 32>(3, 5, 197);
}

// ---------------------------------------------------------------------------------------------
// (b), (c) chained backward chunks == one full backward

/// The first row (t·B) of each chunk of `lengths` steps laid end to end.
fn chunk_starts(lengths: &[usize]) -> Vec<usize> {
    lengths
        .iter()
        .scan(0, |at, &l| {
            let s = *at;
            *at += l;
            Some(s * B)
        })
        .collect()
}

/// Runs the LSTM over `sum(lengths)` steps once in full and once as consecutive chunks of the
/// given lengths (each with its own cache; forward state and backward carry handed across), and
/// compares outputs, final state, every gradient, dx and the carry returned at the start.
fn lstm_full_vs_chunks<F: Real>(seed: u64, lengths: &[usize]) {
    let t_all: usize = lengths.iter().sum();
    let lstm: Box<Lstm<I, H, F>> = boxed_random(seed, 0.7);
    let mut r = rng(seed + 1);
    let x: Vec<[F; I]> = rand_rows(&mut r, t_all * B, -1.0, 1.0);
    let h0: Vec<[F; H]> = rand_rows(&mut r, B, -0.5, 0.5);
    let c0: Vec<[F; H]> = rand_rows(&mut r, B, -1.0, 1.0);
    let dh: Vec<[F; H]> = rand_rows(&mut r, t_all * B, -1.0, 1.0);
    // Non-zero gradient carried in at the very end (as from a chunk after this sequence).
    let dh_end: Vec<[F; H]> = rand_rows(&mut r, B, -1.0, 1.0);
    let dc_end: Vec<[F; H]> = rand_rows(&mut r, B, -1.0, 1.0);

    // Full BPTT.
    let (mut h_full, mut c_full) = (h0.clone(), c0.clone());
    let mut buf = vec![F::ZERO; LstmCache::<H, F>::len(t_all, B)];
    let mut full = LstmCache::new(&mut buf, t_all, B).unwrap();
    lstm.forward(&x, &mut h_full, &mut c_full, &mut full)
        .unwrap();
    let mut g_full = boxed_zeroed::<F, Lstm<I, H, F>>();
    let mut dx_full = vec![[F::ZERO; I]; t_all * B];
    let (mut dh_full, mut dc_full) = (dh_end.clone(), dc_end.clone());
    lstm.backward(
        &mut g_full,
        &x,
        &mut full,
        &dh,
        &mut dh_full,
        &mut dc_full,
        Some(&mut dx_full),
    )
    .unwrap();

    // Chunks.
    let mut bufs: Vec<Vec<F>> = lengths
        .iter()
        .map(|&l| vec![F::ZERO; LstmCache::<H, F>::len(l, B)])
        .collect();
    let mut caches: Vec<LstmCache<'_, H, F>> = bufs
        .iter_mut()
        .zip(lengths)
        .map(|(buf, &l)| LstmCache::new(buf, l, B).unwrap())
        .collect();
    let starts = chunk_starts(lengths);
    let (mut h, mut c) = (h0.clone(), c0.clone());
    for ((cache, &l), &s) in caches.iter_mut().zip(lengths).zip(&starts) {
        lstm.forward(&x[s..s + l * B], &mut h, &mut c, cache)
            .unwrap();
        assert_close(
            "chunk outputs",
            flat(cache.h()),
            flat(&full.h()[s..s + l * B]),
            tol::<F>(),
        );
    }
    assert_close("final h", flat(&h), flat(&h_full), tol::<F>());
    assert_close("final c", flat(&c), flat(&c_full), tol::<F>());

    let mut g = boxed_zeroed::<F, Lstm<I, H, F>>();
    let mut dx = vec![[F::ZERO; I]; t_all * B];
    let (mut dh_c, mut dc_c) = (dh_end.clone(), dc_end.clone());
    for ((cache, &l), &s) in caches.iter_mut().zip(lengths).zip(&starts).rev() {
        let r = s..s + l * B;
        lstm.backward(
            &mut g,
            &x[r.clone()],
            cache,
            &dh[r.clone()],
            &mut dh_c,
            &mut dc_c,
            Some(&mut dx[r]),
        )
        .unwrap();
    }
    assert_tensors_close("chunked grad", &*g, &*g_full, tol::<F>());
    assert_close("chunked dx", flat(&dx), flat(&dx_full), tol::<F>());
    assert_close("chunked dL/dh0", flat(&dh_c), flat(&dh_full), tol::<F>());
    assert_close("chunked dL/dc0", flat(&dc_c), flat(&dc_full), tol::<F>());
    // The comparison is not vacuous.
    assert!(g_full.as_flat().iter().any(|v| v.abs() > F::from_f64(1e-3)));
    assert!(flat(&dc_full).iter().any(|v| v.abs() > F::from_f64(1e-3)));
}

fn rnn_full_vs_chunks<F: Real>(seed: u64, lengths: &[usize]) {
    let t_all: usize = lengths.iter().sum();
    let rnn: Box<Rnn<I, H, F>> = boxed_random(seed, 0.6);
    let mut r = rng(seed + 1);
    let x: Vec<[F; I]> = rand_rows(&mut r, t_all * B, -1.0, 1.0);
    let h0: Vec<[F; H]> = rand_rows(&mut r, B, -0.5, 0.5);
    let dh: Vec<[F; H]> = rand_rows(&mut r, t_all * B, -1.0, 1.0);
    let dh_end: Vec<[F; H]> = rand_rows(&mut r, B, -1.0, 1.0);

    let mut h_full = h0.clone();
    let mut buf = vec![F::ZERO; RnnCache::<H, F>::len(t_all, B)];
    let mut full = RnnCache::new(&mut buf, t_all, B).unwrap();
    rnn.forward(&x, &mut h_full, &mut full).unwrap();
    let mut g_full = boxed_zeroed::<F, Rnn<I, H, F>>();
    let mut dx_full = vec![[F::ZERO; I]; t_all * B];
    let mut dh_full = dh_end.clone();
    rnn.backward(
        &mut g_full,
        &x,
        &mut full,
        &dh,
        &mut dh_full,
        Some(&mut dx_full),
    )
    .unwrap();

    let mut bufs: Vec<Vec<F>> = lengths
        .iter()
        .map(|&l| vec![F::ZERO; RnnCache::<H, F>::len(l, B)])
        .collect();
    let mut caches: Vec<RnnCache<'_, H, F>> = bufs
        .iter_mut()
        .zip(lengths)
        .map(|(buf, &l)| RnnCache::new(buf, l, B).unwrap())
        .collect();
    let starts = chunk_starts(lengths);
    let mut h = h0.clone();
    for ((cache, &l), &s) in caches.iter_mut().zip(lengths).zip(&starts) {
        rnn.forward(&x[s..s + l * B], &mut h, cache).unwrap();
        assert_close(
            "chunk outputs",
            flat(cache.h()),
            flat(&full.h()[s..s + l * B]),
            tol::<F>(),
        );
    }
    assert_close("final h", flat(&h), flat(&h_full), tol::<F>());

    let mut g = boxed_zeroed::<F, Rnn<I, H, F>>();
    let mut dx = vec![[F::ZERO; I]; t_all * B];
    let mut dh_c = dh_end.clone();
    for ((cache, &l), &s) in caches.iter_mut().zip(lengths).zip(&starts).rev() {
        let r = s..s + l * B;
        rnn.backward(
            &mut g,
            &x[r.clone()],
            cache,
            &dh[r.clone()],
            &mut dh_c,
            Some(&mut dx[r]),
        )
        .unwrap();
    }
    assert_tensors_close("chunked grad", &*g, &*g_full, tol::<F>());
    assert_close("chunked dx", flat(&dx), flat(&dx_full), tol::<F>());
    assert_close("chunked dL/dh0", flat(&dh_c), flat(&dh_full), tol::<F>());
    assert!(g_full.as_flat().iter().any(|v| v.abs() > F::from_f64(1e-3)));
}

const T_LEN1: usize = 5;

#[test]
fn lstm_length1_chunks_equal_full_backward_f32() {
    lstm_full_vs_chunks::<f32>(140, &[1; T_LEN1]);
}

#[test]
fn lstm_length1_chunks_equal_full_backward_f64() {
    lstm_full_vs_chunks::<f64>(141, &[1; T_LEN1]);
}

#[test]
fn rnn_length1_chunks_equal_full_backward_f32() {
    rnn_full_vs_chunks::<f32>(142, &[1; T_LEN1]);
}

#[test]
fn rnn_length1_chunks_equal_full_backward_f64() {
    rnn_full_vs_chunks::<f64>(143, &[1; T_LEN1]);
}

#[test]
fn lstm_two_tbptt_chunks_equal_full_bptt_f32() {
    lstm_full_vs_chunks::<f32>(150, &[3, 4]);
}

#[test]
fn lstm_two_tbptt_chunks_equal_full_bptt_f64() {
    lstm_full_vs_chunks::<f64>(151, &[3, 4]);
}

#[test]
fn rnn_two_tbptt_chunks_equal_full_bptt_f32() {
    rnn_full_vs_chunks::<f32>(152, &[3, 4]);
}

#[test]
fn rnn_two_tbptt_chunks_equal_full_bptt_f64() {
    rnn_full_vs_chunks::<f64>(153, &[3, 4]);
}

/// A zero-length chunk is a no-op: state and carry pass through unchanged, no gradient.
#[test]
fn zero_length_chunk_is_identity() {
    let lstm: Box<Lstm<I, H, f32>> = boxed_random(160, 0.7);
    let mut r = rng(161);
    let h0: Vec<[f32; H]> = rand_rows(&mut r, B, -0.5, 0.5);
    let c0: Vec<[f32; H]> = rand_rows(&mut r, B, -1.0, 1.0);
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut buf = vec![0.0; LstmCache::<H, f32>::len(0, B)];
    let mut cache = LstmCache::new(&mut buf, 0, B).unwrap();
    lstm.forward(&[], &mut h, &mut c, &mut cache).unwrap();
    assert_eq!((&h, &c), (&h0, &c0));
    let mut g = boxed_zeroed::<f32, Lstm<I, H, f32>>();
    let (mut dh, mut dc) = (h0.clone(), c0.clone());
    lstm.backward(
        &mut g,
        &[],
        &mut cache,
        &[],
        &mut dh,
        &mut dc,
        Some(&mut []),
    )
    .unwrap();
    assert_eq!((&dh, &dc), (&h0, &c0));
    assert!(g.as_flat().iter().all(|&v| v == 0.0));
}

// ---------------------------------------------------------------------------------------------
// (d) model step == layer step + head step

const O: usize = 3;

fn model_steps<F: Real>(seed: u64) {
    let m: Box<LstmModel<I, H, O, F>> = boxed_random(seed, 0.7);
    let xs: Vec<[F; I]> = rand_rows(&mut rng(seed + 1), 5, -1.0, 1.0);
    let init: Vec<[F; H]> = rand_rows(&mut rng(seed + 2), 2, -0.5, 0.5);
    let mut s_model = LstmState {
        h: init[0],
        c: init[1],
    };
    let mut s_parts = s_model;
    for x in &xs {
        let y = m.step(x, &mut s_model);
        m.lstm.step(x, &mut s_parts);
        let y_parts = m.head.step(&s_parts.h);
        // The same kernels in the same order: bit-identical.
        assert_bits_eq("LstmModel::step output", &y, &y_parts);
        assert_bits_eq("LstmModel::step h", &s_model.h, &s_parts.h);
        assert_bits_eq("LstmModel::step c", &s_model.c, &s_parts.c);
        // And the head really is W h + b.
        let want: Vec<f64> = (0..O)
            .map(|o| {
                m.head.bias[o].to_f64()
                    + (0..H)
                        .map(|j| m.head.weight[o][j].to_f64() * s_parts.h[j].to_f64())
                        .sum::<f64>()
            })
            .collect();
        assert_close("head output", &y, &want, tol::<F>());
    }

    let m: Box<RnnModel<I, H, O, F>> = boxed_random(seed + 3, 0.7);
    let (mut h_model, mut h_parts) = (init[0], init[0]);
    for x in &xs {
        let y = m.step(x, &mut h_model);
        m.rnn.step(x, &mut h_parts);
        let y_parts = m.head.step(&h_parts);
        assert_bits_eq("RnnModel::step output", &y, &y_parts);
        assert_bits_eq("RnnModel::step h", &h_model, &h_parts);
    }
}

#[test]
fn model_step_equals_layer_step_then_head_f32() {
    model_steps::<f32>(170);
}

#[test]
fn model_step_equals_layer_step_then_head_f64() {
    model_steps::<f64>(171);
}

// ---------------------------------------------------------------------------------------------
// Parameter tables

/// `$p`'s tensor table (see [`table`]) is `$want` for `f32` and `f64` alike, and its `f32`
/// parameter count is `$len`.
macro_rules! assert_table {
    ($p:ident<$($g:ident),*>, $want:expr, $len:expr) => {{
        assert_eq!(table(<$p<$($g,)* f32> as Params<f32>>::TENSORS), $want);
        assert_eq!(table(<$p<$($g,)* f64> as Params<f64>>::TENSORS), $want);
        assert_eq!(<$p<$($g,)* f32> as Params<f32>>::LEN, $len);
    }};
}

fn table(t: &[TensorInfo]) -> Vec<(&'static str, usize, Vec<usize>)> {
    t.iter()
        .map(|t| (t.name, t.offset, t.shape.to_vec()))
        .collect()
}

fn row(name: &'static str, offset: usize, shape: &[usize]) -> (&'static str, usize, Vec<usize>) {
    (name, offset, shape.to_vec())
}

/// Expected tables written out by hand for I = 3, H = 5, O = 2 (PyTorch's `state_dict()` order,
/// names and shapes).
#[test]
fn tensor_tables_are_pytorchs() {
    const I: usize = 3;
    const H: usize = 5;
    const O: usize = 2;
    let lstm = vec![
        row("weight_ih", 0, &[20, 3]),
        row("weight_hh", 60, &[20, 5]),
        row("bias_ih", 160, &[20]),
        row("bias_hh", 180, &[20]),
    ];
    assert_table!(Lstm<I, H>, lstm, 200);

    let rnn = vec![
        row("weight_ih", 0, &[5, 3]),
        row("weight_hh", 15, &[5, 5]),
        row("bias_ih", 40, &[5]),
        row("bias_hh", 45, &[5]),
    ];
    assert_table!(Rnn<I, H>, rnn, 50);

    let lin = vec![row("weight", 0, &[2, 5]), row("bias", 10, &[2])];
    assert_table!(Linear<H, O>, lin, 12);

    let lstm_model = vec![
        row("lstm.weight_ih_l0", 0, &[20, 3]),
        row("lstm.weight_hh_l0", 60, &[20, 5]),
        row("lstm.bias_ih_l0", 160, &[20]),
        row("lstm.bias_hh_l0", 180, &[20]),
        row("head.weight", 200, &[2, 5]),
        row("head.bias", 210, &[2]),
    ];
    assert_table!(LstmModel<I, H, O>, lstm_model, 212);

    let rnn_model = vec![
        row("rnn.weight_ih_l0", 0, &[5, 3]),
        row("rnn.weight_hh_l0", 15, &[5, 5]),
        row("rnn.bias_ih_l0", 40, &[5]),
        row("rnn.bias_hh_l0", 45, &[5]),
        row("head.weight", 50, &[2, 5]),
        row("head.bias", 60, &[2]),
    ];
    assert_table!(RnnModel<I, H, O>, rnn_model, 62);

    // TensorInfo::len is the product of the shape.
    let t = <LstmModel<I, H, O, f32> as Params<f32>>::TENSORS;
    assert_eq!(
        t.iter().map(|t| t.len()).collect::<Vec<_>>(),
        [60, 100, 20, 20, 10, 2]
    );
    assert!(!t[0].is_empty());
}

/// The tables address the struct fields: PyTorch's row `gate * H + unit` of `weight_ih` [4H, I]
/// is `weight_ih[gate][unit]`, and the model's tensors are its layers' fields.
#[test]
fn tensor_tables_address_the_fields() {
    const I: usize = 3;
    const H: usize = 5;
    const O: usize = 2;
    let mut m = boxed_zeroed::<f64, LstmModel<I, H, O, f64>>();
    for (i, v) in m.as_flat_mut().iter_mut().enumerate() {
        *v = i as f64;
    }
    for g in 0..4 {
        for u in 0..H {
            let row = g * H + u;
            for k in 0..I {
                assert_eq!(m.lstm.weight_ih[g][u][k], (row * I + k) as f64);
            }
            for k in 0..H {
                assert_eq!(m.lstm.weight_hh[g][u][k], (60 + row * H + k) as f64);
            }
            assert_eq!(m.lstm.bias_ih[g][u], (160 + row) as f64);
            assert_eq!(m.lstm.bias_hh[g][u], (180 + row) as f64);
        }
    }
    for o in 0..O {
        for k in 0..H {
            assert_eq!(m.head.weight[o][k], (200 + o * H + k) as f64);
        }
        assert_eq!(m.head.bias[o], (210 + o) as f64);
    }
    // Named views of the model == the layers' own named views.
    assert_eq!(
        m.tensor("lstm.weight_hh_l0").unwrap(),
        m.lstm.tensor("weight_hh").unwrap()
    );
    assert_eq!(
        m.tensor("head.bias").unwrap(),
        m.head.tensor("bias").unwrap()
    );
    assert_eq!(m.tensor("head.bias").unwrap(), &[210.0, 211.0]);
    assert!(m.tensor("weight_ih").is_none());
    assert!(m.tensor("lstm.weight_ih_l1").is_none());
    m.tensor_mut("lstm.bias_hh_l0").unwrap().fill(-1.0);
    assert_eq!(m.lstm.bias_hh, [[-1.0; H]; 4]);
    m.fill_zero();
    assert!(m.as_flat().iter().all(|&v| v == 0.0));

    let mut r = boxed_zeroed::<f32, RnnModel<I, H, O, f32>>();
    for (i, v) in r.as_flat_mut().iter_mut().enumerate() {
        *v = i as f32;
    }
    assert_eq!(r.rnn.weight_ih[4][2], (4 * I + 2) as f32);
    assert_eq!(r.rnn.weight_hh[1][3], (15 + H + 3) as f32);
    assert_eq!(r.rnn.bias_ih[2], 42.0);
    assert_eq!(r.rnn.bias_hh[2], 47.0);
    assert_eq!(r.head.weight[1][4], 59.0);
    assert_eq!(r.head.bias, [60.0, 61.0]);
    assert_eq!(r.tensor("rnn.bias_ih_l0").unwrap(), &r.rnn.bias_ih);
}

/// Initialisation: U(-1/√fan, 1/√fan) everywhere, reproducible per seed, forget-gate bias option.
#[test]
fn init_is_pytorchs_and_reproducible() {
    const H: usize = 16;
    let k = 1.0 / (H as f32).sqrt();
    let mut a = boxed_zeroed::<f32, LstmModel<I, H, O, f32>>();
    let mut b = boxed_zeroed::<f32, LstmModel<I, H, O, f32>>();
    a.init(&mut rng(5), None);
    b.init(&mut rng(5), None);
    assert_eq!(a, b);
    assert!(a.lstm.as_flat().iter().all(|v| v.abs() <= k));
    assert!(a.head.as_flat().iter().all(|v| v.abs() <= k)); // head fan-in is H as well
    let spread = a.lstm.as_flat().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(spread > 0.9 * k, "values should fill the range: {spread}");
    b.init(&mut rng(6), None);
    assert_ne!(a, b);
    a.init(&mut rng(5), Some(1.0));
    assert_eq!(a.lstm.bias_ih[1], [1.0; H]);
    assert_eq!(a.lstm.bias_hh[1], [0.0; H]);

    let mut lin = boxed_zeroed::<f64, Linear<I, O, f64>>();
    lin.init(&mut rng(7));
    let k = 1.0 / (I as f64).sqrt();
    assert!(lin.as_flat().iter().all(|v| v.abs() <= k));
    let mut rnn = boxed_zeroed::<f64, Rnn<I, H, f64>>();
    rnn.init(&mut rng(8));
    let k = 1.0 / (H as f64).sqrt();
    assert!(rnn.as_flat().iter().all(|v| v.abs() <= k && *v != 0.0));
}

// ---------------------------------------------------------------------------------------------
// Shape errors

#[test]
fn shape_errors_are_reported_not_panics() {
    const T: usize = 2;
    let lstm: Box<Lstm<I, H, f32>> = boxed_random(180, 0.5);
    let mut buf = vec![0.0f32; LstmCache::<H, f32>::len(T, B) + 1];
    assert!(matches!(
        LstmCache::<H, f32>::new(&mut buf, T, B),
        Err(Error::Shape { .. })
    ));
    let mut buf = vec![0.0f32; LstmCache::<H, f32>::len(T, B)];
    let mut cache = LstmCache::new(&mut buf, T, B).unwrap();
    assert_eq!((cache.steps(), cache.batch()), (T, B));
    let x = vec![[0.5f32; I]; T * B];
    let (mut h, mut c) = (vec![[0.0f32; H]; B], vec![[0.0f32; H]; B]);
    assert!(matches!(
        lstm.forward(&x[1..], &mut h, &mut c, &mut cache),
        Err(Error::Shape { what: "x", .. })
    ));
    assert!(matches!(
        lstm.forward(&x, &mut h[1..], &mut c, &mut cache),
        Err(Error::Shape { what: "h", .. })
    ));
    lstm.forward(&x, &mut h, &mut c, &mut cache).unwrap();
    let mut g = boxed_zeroed::<f32, Lstm<I, H, f32>>();
    let dh = vec![[0.0f32; H]; T * B];
    let mut dx = vec![[0.0f32; I]; T * B - 1];
    assert!(matches!(
        lstm.backward(&mut g, &x, &mut cache, &dh, &mut h, &mut c, Some(&mut dx)),
        Err(Error::Shape { what: "dx", .. })
    ));
    assert!(matches!(
        lstm.backward(&mut g, &x, &mut cache, &dh[1..], &mut h, &mut c, None),
        Err(Error::Shape { what: "dh", .. })
    ));
    assert!(matches!(
        lstm.backward(&mut g, &x, &mut cache, &dh, &mut h, &mut c[1..], None),
        Err(Error::Shape {
            what: "dc_carry",
            ..
        })
    ));

    let rnn: Box<Rnn<I, H, f32>> = boxed_random(181, 0.5);
    let mut buf = vec![0.0f32; RnnCache::<H, f32>::len(T, B) - 1];
    assert!(RnnCache::<H, f32>::new(&mut buf, T, B).is_err());
    let mut buf = vec![0.0f32; RnnCache::<H, f32>::len(T, B)];
    let mut cache = RnnCache::new(&mut buf, T, B).unwrap();
    assert!(rnn.forward(&x[..T * B - 1], &mut h, &mut cache).is_err());
    rnn.forward(&x, &mut h, &mut cache).unwrap();
    let mut g = boxed_zeroed::<f32, Rnn<I, H, f32>>();
    assert!(
        rnn.backward(&mut g, &x, &mut cache, &dh, &mut h[1..], None)
            .is_err()
    );

    let lin: Box<Linear<I, O, f32>> = boxed_random(182, 0.5);
    let mut y = vec![[0.0f32; O]; T * B - 1];
    assert!(lin.forward(&x, &mut y).is_err());
    let mut g = boxed_zeroed::<f32, Linear<I, O, f32>>();
    assert!(lin.backward(&mut g, &x, &y, None).is_err());
}
