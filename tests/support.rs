//! Shared helpers for tinyrnn's correctness tests: deterministic random data, boxed parameter
//! buffers, finite differences and comparisons.
//!
//! Every random value comes from [`tinyrnn::rng`] with a fixed seed, so a failure reproduces
//! bit for bit on every run and platform.

use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
use std::path::Path;

use tinyrnn::init::{fill_uniform, uniform01};
use tinyrnn::{Kernels, Lstm, LstmCache, Params, Real, Rnn, RnnCache, SeededRng, rng};

/// A zeroed parameter buffer on the heap.
///
/// `Params::zeroed()` returns by value, and a model with H = 128 is hundreds of kilobytes: built on
/// a test thread's (2 MiB) stack and then moved into a `Box` it can overflow the stack. This
/// allocates the zeroed memory directly.
///
/// Soundness: `Params<T>` is an `unsafe` trait whose contract is that the type is a `#[repr(C)]`
/// struct made only of arrays of `T` (`f32` or `f64`), so every all-zero bit pattern is a valid
/// value (`0.0` everywhere). The memory comes from the global allocator with exactly
/// `Layout::new::<P>()`, which is what `Box<P>` frees it with.
pub fn boxed_zeroed<T: Real, P: Params<T>>() -> Box<P> {
    // Forces the compile-time check that the tensor table tiles the buffer.
    let _ = P::LEN;
    let layout = Layout::new::<P>();
    if layout.size() == 0 {
        return Box::new(P::zeroed());
    }
    // SAFETY: `layout` has non-zero size.
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<P>();
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `ptr` was allocated by the global allocator with `Layout::new::<P>()`, and all-zero
    // bits are a valid `P` by the `Params` contract (see above).
    unsafe { Box::from_raw(ptr) }
}

/// A boxed parameter buffer with every scalar drawn from U(-scale, scale) (seeded).
pub fn boxed_random<T: Real, P: Params<T>>(seed: u64, scale: f64) -> Box<P> {
    let mut p = boxed_zeroed::<T, P>();
    fill_uniform(
        p.as_flat_mut(),
        T::from_f64(-scale),
        T::from_f64(scale),
        &mut rng(seed),
    );
    p
}

/// `n` values from U(lo, hi), drawn in `f64` and rounded to `T`.
pub fn rand_vec<T: Real>(rng: &mut SeededRng, n: usize, lo: f64, hi: f64) -> Vec<T> {
    (0..n)
        .map(|_| T::from_f64(lo + (hi - lo) * uniform01(rng)))
        .collect()
}

/// `rows` rows of `N` values from U(lo, hi).
pub fn rand_rows<T: Real, const N: usize>(
    rng: &mut SeededRng,
    rows: usize,
    lo: f64,
    hi: f64,
) -> Vec<[T; N]> {
    (0..rows)
        .map(|_| core::array::from_fn(|_| T::from_f64(lo + (hi - lo) * uniform01(rng))))
        .collect()
}

/// A value converted between the two float types through `f64` (exact from `f32` to `f64`).
pub fn cast<A: Real, B: Real>(x: A) -> B {
    B::from_f64(x.to_f64())
}

/// Converts a slice of rows between float types (e.g. `f32` data to the `f64` reference).
pub fn cast_rows<A: Real, B: Real, const N: usize>(x: &[[A; N]]) -> Vec<[B; N]> {
    x.iter().map(|r| r.map(cast::<A, B>)).collect()
}

/// Converts a whole parameter buffer between float types.
pub fn cast_params<A: Real, B: Real, PA: Params<A>, PB: Params<B>>(p: &PA) -> Box<PB> {
    assert_eq!(PA::LEN, PB::LEN);
    let mut out = boxed_zeroed::<B, PB>();
    for (o, &v) in out.as_flat_mut().iter_mut().zip(p.as_flat()) {
        *o = cast(v);
    }
    out
}

/// Any slice of reals as `f64`s.
pub fn to_f64<T: Real>(x: &[T]) -> Vec<f64> {
    x.iter().map(|v| v.to_f64()).collect()
}

/// Largest absolute value (0 for an empty slice).
pub fn max_abs<T: Real>(x: &[T]) -> f64 {
    x.iter().fold(0.0, |m, v| m.max(v.to_f64().abs()))
}

/// Largest absolute difference of two equally long slices.
pub fn max_abs_diff<A: Real, B: Real>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len(), "max_abs_diff: lengths differ");
    a.iter()
        .zip(b)
        .fold(0.0, |m, (a, b)| m.max((a.to_f64() - b.to_f64()).abs()))
}

/// Asserts `|got - want| <= tol * max(1, |want|)` element by element (absolute for small values,
/// relative for large ones), naming the first offending index.
#[track_caller]
pub fn assert_close<A: Real, B: Real>(what: &str, got: &[A], want: &[B], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.to_f64(), w.to_f64());
        let ok = (g - w).abs() <= tol * w.abs().max(1.0);
        assert!(
            ok,
            "{what}[{i}]: got {g:e}, want {w:e} (|diff| {:e} > {tol:e} * max(1, |want|))",
            (g - w).abs()
        );
    }
}

/// [`assert_close`] on every tensor of `P::TENSORS`, named `"{what} {tensor name}"`.
#[track_caller]
pub fn assert_tensors_close<T: Real, P: Params<T>>(what: &str, got: &P, want: &P, tol: f64) {
    for t in P::TENSORS {
        assert_close(
            &format!("{what} {}", t.name),
            got.tensor(t.name).unwrap(),
            want.tensor(t.name).unwrap(),
            tol,
        );
    }
}

/// Asserts bitwise equality of two float slices (treats equal NaN payloads as equal).
#[track_caller]
pub fn assert_bits_eq<T: Real>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.to_f64().to_bits() == w.to_f64().to_bits(),
            "{what}[{i}]: got {g:?}, want {w:?}"
        );
    }
}

/// Central finite differences `(L(v + eps) - L(v - eps)) / 2 eps` of `loss` with respect to every
/// element of the slice `slice(state)` picks out of `state`; each element is restored after use.
pub fn fd_gradient<S>(
    state: &mut S,
    slice: impl Fn(&mut S) -> &mut [f64],
    eps: f64,
    loss: impl Fn(&S) -> f64,
) -> Vec<f64> {
    let n = slice(state).len();
    (0..n)
        .map(|i| {
            let orig = slice(state)[i];
            slice(state)[i] = orig + eps;
            let plus = loss(state);
            slice(state)[i] = orig - eps;
            let minus = loss(state);
            slice(state)[i] = orig;
            (plus - minus) / (2.0 * eps)
        })
        .collect()
}

/// The gradient-check error of `analytic` against `numeric`:
/// `max_i |a_i - n_i| / max(max_i |n_i|, 1e-8)`, i.e. the worst deviation relative to the
/// tensor's gradient scale. (Per-element relative error would be dominated by the finite
/// differences' rounding noise, about 1e-10 absolute, on elements that happen to be near zero.)
pub fn grad_error(analytic: &[f64], numeric: &[f64]) -> f64 {
    max_abs_diff(analytic, numeric) / max_abs(numeric).max(1e-8)
}

/// Asserts that `analytic` matches `numeric` to `grad_error < tol`, and that the gradient is not
/// trivially small (so that the check cannot pass by both being ~0).
#[track_caller]
pub fn assert_grad(what: &str, analytic: &[f64], numeric: &[f64], tol: f64) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: lengths differ");
    let scale = max_abs(numeric);
    assert!(
        scale > 1e-4,
        "{what}: gradient is trivially small ({scale:e}); the check would be vacuous"
    );
    let err = grad_error(analytic, numeric);
    eprintln!("{what}: gradient error {err:.2e} (scale {scale:.2e})");
    if err >= tol {
        let (i, _) = analytic
            .iter()
            .zip(numeric)
            .map(|(a, n)| (a - n).abs())
            .enumerate()
            .fold((0, -1.0), |b, (i, d)| if d > b.1 { (i, d) } else { b });
        panic!(
            "{what}: gradient error {err:e} >= {tol:e} (scale {scale:e}); worst at [{i}]: \
             analytic {:e}, numeric {:e}",
            analytic[i], numeric[i]
        );
    }
}

/// Asserts that the `f32` gradient `g32` matches the `f64` reference `g64` to
/// `max|g32 - g64| <= tol * max(max|g64|, 1)`.
#[track_caller]
pub fn assert_f32_matches_f64(what: &str, g32: &[f32], g64: &[f64], tol: f64) {
    let scale = max_abs(g64).max(1.0);
    let d = max_abs_diff(g32, g64);
    eprintln!("{what}: f32 vs f64 max |diff| / scale = {:.2e}", d / scale);
    assert!(
        d <= tol * scale,
        "{what}: f32 vs f64 max |diff| {d:e} > {tol:e} * {scale:e}"
    );
}

/// The gradient of one named tensor in a flat parameter buffer.
pub fn tensor<T: Real, P: Params<T>>(p: &P, name: &str) -> Vec<f64> {
    to_f64(
        p.tensor(name)
            .unwrap_or_else(|| panic!("no tensor named {name}")),
    )
}

/// A CSV file read whole: its header and its rows, every field as text. Panics (naming the file)
/// if it cannot be read.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| rec.expect("record").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// Everything one LSTM layer's forward and backward over `t` steps of `b` sequences produce
/// (see [`lstm_run`]).
pub struct LstmRun<const I: usize, const H: usize> {
    pub h: Vec<[f32; H]>,
    pub c: Vec<[f32; H]>,
    pub outs: Vec<[f32; H]>,
    pub cs: Vec<[f32; H]>,
    pub gates: Vec<f32>,
    pub dpre: Vec<f32>,
    pub grad: Box<Lstm<I, H, f32>>,
    pub dx: Vec<[f32; I]>,
    pub dh0: Vec<[f32; H]>,
    pub dc0: Vec<[f32; H]>,
}

/// Runs `lstm` forward and backward with kernels `K` on random inputs, state and output
/// gradients from `seed`, over `t` steps of `b` sequences.
pub fn lstm_run<K: Kernels<f32>, const I: usize, const H: usize>(
    lstm: &Lstm<I, H, f32>,
    seed: u64,
    t: usize,
    b: usize,
) -> LstmRun<I, H> {
    let mut r = rng(seed);
    let x: Vec<[f32; I]> = rand_rows(&mut r, t * b, -1.0, 1.0);
    let mut h: Vec<[f32; H]> = rand_rows(&mut r, b, -0.5, 0.5);
    let mut c: Vec<[f32; H]> = rand_rows(&mut r, b, -1.0, 1.0);
    let dh: Vec<[f32; H]> = rand_rows(&mut r, t * b, -1.0, 1.0);
    let mut dh0: Vec<[f32; H]> = rand_rows(&mut r, b, -1.0, 1.0);
    let mut dc0: Vec<[f32; H]> = rand_rows(&mut r, b, -1.0, 1.0);
    let mut dx: Vec<[f32; I]> = rand_rows(&mut r, t * b, -1.0, 1.0);
    let mut grad = boxed_random::<f32, Lstm<I, H, f32>>(seed + 1, 1.0);
    let mut buf = vec![0.0; LstmCache::<H, f32>::len(t, b)];
    let mut cache = LstmCache::new(&mut buf, t, b).unwrap();
    lstm.forward_with::<K>(&x, &mut h, &mut c, &mut cache)
        .unwrap();
    lstm.backward_with::<K>(
        &mut grad,
        &x,
        &mut cache,
        &dh,
        &mut dh0,
        &mut dc0,
        Some(&mut dx),
    )
    .unwrap();
    LstmRun {
        h,
        c,
        outs: cache.h().to_vec(),
        cs: cache.c().to_vec(),
        gates: cache.gates().as_flattened().as_flattened().to_vec(),
        dpre: cache.dpre().as_flattened().as_flattened().to_vec(),
        grad,
        dx,
        dh0,
        dc0,
    }
}

impl<const I: usize, const H: usize> LstmRun<I, H> {
    /// All of it in one vector (for bit-for-bit comparisons).
    pub fn all(&self) -> Vec<f32> {
        let mut v: Vec<f32> = Vec::new();
        for rows in [&self.h, &self.c, &self.outs, &self.cs, &self.dh0, &self.dc0] {
            v.extend(rows.as_flattened());
        }
        v.extend(&self.gates);
        v.extend(&self.dpre);
        v.extend(self.grad.as_flat());
        v.extend(self.dx.as_flattened());
        v
    }
}

/// Everything one tanh-RNN layer's forward and backward produce (see [`rnn_run`]).
pub struct RnnRun<const I: usize, const H: usize> {
    pub h: Vec<[f32; H]>,
    pub outs: Vec<[f32; H]>,
    pub dpre: Vec<f32>,
    pub grad: Box<Rnn<I, H, f32>>,
    pub dx: Vec<[f32; I]>,
    pub dh0: Vec<[f32; H]>,
}

/// Runs `rnn` forward and backward with kernels `K` as [`lstm_run`] does.
pub fn rnn_run<K: Kernels<f32>, const I: usize, const H: usize>(
    rnn: &Rnn<I, H, f32>,
    seed: u64,
    t: usize,
    b: usize,
) -> RnnRun<I, H> {
    let mut r = rng(seed);
    let x: Vec<[f32; I]> = rand_rows(&mut r, t * b, -1.0, 1.0);
    let mut h: Vec<[f32; H]> = rand_rows(&mut r, b, -0.5, 0.5);
    let dh: Vec<[f32; H]> = rand_rows(&mut r, t * b, -1.0, 1.0);
    let mut dh0: Vec<[f32; H]> = rand_rows(&mut r, b, -1.0, 1.0);
    let mut dx: Vec<[f32; I]> = rand_rows(&mut r, t * b, -1.0, 1.0);
    let mut grad = boxed_random::<f32, Rnn<I, H, f32>>(seed + 1, 1.0);
    let mut buf = vec![0.0; RnnCache::<H, f32>::len(t, b)];
    let mut cache = RnnCache::new(&mut buf, t, b).unwrap();
    rnn.forward_with::<K>(&x, &mut h, &mut cache).unwrap();
    rnn.backward_with::<K>(&mut grad, &x, &mut cache, &dh, &mut dh0, Some(&mut dx))
        .unwrap();
    RnnRun {
        h,
        outs: cache.h().to_vec(),
        dpre: cache.dpre().as_flattened().to_vec(),
        grad,
        dx,
        dh0,
    }
}

impl<const I: usize, const H: usize> RnnRun<I, H> {
    /// All of it in one vector (for bit-for-bit comparisons).
    pub fn all(&self) -> Vec<f32> {
        let mut v: Vec<f32> = Vec::new();
        for rows in [&self.h, &self.outs, &self.dh0] {
            v.extend(rows.as_flattened());
        }
        v.extend(&self.dpre);
        v.extend(self.grad.as_flat());
        v.extend(self.dx.as_flattened());
        v
    }
}
