//! Shared helpers for tinyrnn's correctness tests: deterministic random data, boxed parameter
//! buffers, finite differences and comparisons.
//!
//! Every random value comes from [`tinyrnn::rng`] with a fixed seed, so a failure reproduces
//! bit for bit on every run and platform.

use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
use std::path::Path;

use tinyrnn::cell::CellKind;
use tinyrnn::init::{fill_uniform, uniform01};
use tinyrnn::{Cache, Kernels, Model, Outputs, Params, Real, SeededRng, Spec, rng};

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

/// One problem for the run-time engine ([`Model`]): a model of shape `spec`, `t` steps of `b`
/// sequences, an initial state, and a loss `p·y + q·h_T + r·c_T` whose gradients enter backward
/// as non-zero dL/dy at every step and carried-in dL/dh_T, dL/dc_T. In `f64` or `f32` ([`cast`]).
///
/// [`cast`]: Problem::cast
#[derive(Clone)]
pub struct Problem<F> {
    pub spec: Spec,
    pub t: usize,
    pub b: usize,
    pub params: Vec<F>,
    pub x: Vec<F>,  // (T, B, I)
    pub h0: Vec<F>, // (L·D, B, H)
    pub c0: Vec<F>, // (L·D, B, H) or empty
    pub p: Vec<F>,  // dL/dy (T, B, O)
    pub q: Vec<F>,  // dL/dh_T
    pub r: Vec<F>,  // dL/dc_T
}

/// What one [`Problem::run`] gives.
pub struct Run<F> {
    pub y: Vec<F>,
    pub h: Vec<F>,
    pub c: Vec<F>,
    pub grad: Vec<F>,
    pub dx: Vec<F>,
    pub dh0: Vec<F>,
    pub dc0: Vec<F>,
    /// Every layer's and direction's cache as forward left it: `h_t`, `c_t` and the cell's cache.
    pub cached: Vec<F>,
}

impl<F: Real> Run<F> {
    /// All of it in one vector (for bit-for-bit comparisons).
    pub fn all(&self) -> Vec<F> {
        [
            &self.y,
            &self.h,
            &self.c,
            &self.grad,
            &self.dx,
            &self.dh0,
            &self.dc0,
            &self.cached,
        ]
        .into_iter()
        .flatten()
        .copied()
        .collect()
    }
}

impl Problem<f64> {
    /// Weights from U(-w, w) with w = min(0.6, 1.5/√H): wide enough that no gate saturates or
    /// vanishes at small H, PyTorch-like at large H. ReLU RNNs get positive biases, which keep most
    /// units alive through three layers and away from the kink at 0 (where finite differences
    /// mean nothing).
    pub fn new(spec: Spec, t: usize, b: usize, seed: u64) -> Self {
        let mut g = rng(seed);
        let n = spec.state_len(b);
        let nc = if spec.cell.has_c() { n } else { 0 };
        let w = (1.5 / (spec.hidden as f64).sqrt()).min(0.6);
        let mut params: Vec<f64> = rand_vec(&mut g, spec.param_len(), -w, w);
        if spec.cell == CellKind::RnnRelu {
            for t in spec.tensors().filter(|t| t.name.tensor.starts_with("bias")) {
                for v in &mut params[t.offset..t.offset + t.len()] {
                    *v = v.abs();
                }
            }
        }
        Problem {
            spec,
            t,
            b,
            params,
            x: rand_vec(&mut g, t * b * spec.input, -1.0, 1.0),
            h0: rand_vec(&mut g, n, -0.5, 0.5),
            c0: rand_vec(&mut g, nc, -0.5, 0.5),
            p: rand_vec(&mut g, t * b * spec.output, -1.0, 1.0),
            q: rand_vec(&mut g, n, -1.0, 1.0),
            r: rand_vec(&mut g, nc, -1.0, 1.0),
        }
    }

    /// The same problem rounded to `f32`.
    pub fn cast(&self) -> Problem<f32> {
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        Problem {
            spec: self.spec,
            t: self.t,
            b: self.b,
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

fn dot<F: Real>(a: &[F], b: &[F]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a.to_f64() * b.to_f64()).sum()
}

impl<F: Real> Problem<F> {
    /// `p·y + q·h_T + r·c_T`.
    pub fn loss(&self, r: &Run<F>) -> f64 {
        dot(&self.p, &r.y) + dot(&self.q, &r.h) + dot(&self.r, &r.c)
    }

    /// Forward over all steps, then (if `backward`) backward from p, q, r. Gradient and dx
    /// start at 0.25, to check that backward accumulates; the returned ones have it subtracted.
    pub fn run<K: Kernels<F>>(&self, outputs: Outputs, backward: bool) -> Run<F> {
        let (s, t, b) = (&self.spec, self.t, self.b);
        let model = Model::new(*s, &self.params).unwrap();
        let mut buf = vec![F::ZERO; Cache::<F>::len(s, t, b)];
        let mut cache = Cache::new(s, &mut buf, t, b, outputs).unwrap();
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
            cached: vec![],
        };
        for k in 0..s.layers {
            for d in 0..s.directions() {
                let m = model.cached(&cache, k, d).unwrap();
                run.cached.extend(m.h.iter().chain(m.c).chain(m.cell));
            }
        }
        if backward {
            let start = F::from_f64(0.25);
            let mut grad = vec![start; s.param_len()];
            let mut dx = vec![start; self.x.len()];
            let (mut dh, mut dc) = (self.q.clone(), self.r.clone());
            let dy = match outputs {
                Outputs::EveryStep => &self.p[..],
                Outputs::LastStep => &self.p[t.saturating_sub(1) * b * s.output..],
            };
            model
                .backward_with::<K>(
                    &mut grad,
                    &self.x,
                    &mut cache,
                    dy,
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

    /// Sequence `seq`'s rows of a state `v` laid out (L·D, B, H): its H values per layer and
    /// direction, in order.
    pub fn state_of(&self, v: &[F], seq: usize) -> Vec<F> {
        let hs = self.spec.hidden;
        v.chunks_exact(self.b * hs)
            .flat_map(|l| l[seq * hs..(seq + 1) * hs].to_vec())
            .collect()
    }

    /// Sequence `seq` alone, stepped one sample at a time with [`Model::step_with`] from its own
    /// initial state (unidirectional models): every step's output, then the final `h` and `c`.
    pub fn steps<K: Kernels<F>>(&self, seq: usize) -> (Vec<F>, Vec<F>, Vec<F>) {
        let (s, b) = (&self.spec, self.b);
        let model = Model::new(*s, &self.params).unwrap();
        let mut scratch = vec![F::ZERO; model.step_scratch_len()];
        let (mut h, mut c) = (self.state_of(&self.h0, seq), self.state_of(&self.c0, seq));
        let mut ys = Vec::new();
        for t in 0..self.t {
            let x = &self.x[(t * b + seq) * s.input..][..s.input];
            let mut y = vec![F::ZERO; s.output];
            model
                .step_with::<K>(x, &mut h, &mut c, &mut scratch, &mut y)
                .unwrap();
            ys.extend(y);
        }
        (ys, h, c)
    }
}
