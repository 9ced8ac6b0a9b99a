//! The SIMD kernels' fast activations against the exact functions (libm in f64) on dense grids.
//!
//! The `Simd` kernels evaluate tanh with a clamped 13/6 rational approximation and the sigmoid
//! as `1 / (1 + e^-x)` with a branch-free polynomial `exp`; the `Naive` kernels use libm. This
//! file pins the maximum errors the SIMD versions are documented with (`core/src/kernels/simd/math.rs`):
//!
//! | function | absolute error | relative error |
//! |---|---|---|
//! | tanh    | <= 4e-7 everywhere | <= 4e-7 for every x != 0 (about 6 ulp near ±1) |
//! | sigmoid | <= 1.2e-7 everywhere | <= 2.5e-7 for x >= -87 (the input is clamped to ±87) |
//!
//! Measured on these grids: tanh 3.2e-7 absolute and relative (at x = ±5.985), sigmoid 8.9e-8
//! absolute (x = 8.67) and 1.9e-7 relative (x = -16.7). libm (the naive twins): 1.6e-7 relative.
//!
//! They are reached through the public kernels: `tanh_pointwise` is tanh on a slice, and the
//! input gate of `lstm_pointwise` (`gates[0..H] = σ(pre[0..H])`) is the sigmoid on a slice.
//! Every lane position and the scalar tail are exercised (the grids are not multiples of 8).

use tinyrnn::{Kernels, Naive, Simd};

/// Measured worst cases, with the documented bounds.
const TANH_ABS: f64 = 4e-7;
const TANH_REL: f64 = 4e-7;
const SIGMOID_ABS: f64 = 1.2e-7;
const SIGMOID_REL: f64 = 2.5e-7;

fn simd_tanh(x: &[f32]) -> Vec<f32> {
    let mut y = vec![f32::NAN; x.len()];
    <Simd as Kernels<f32>>::tanh_pointwise(x, &mut y);
    y
}

/// σ(x) through the input gate of the LSTM pointwise kernel (the other gates see zeros).
fn sigmoid_with<K: Kernels<f32>>(x: &[f32]) -> Vec<f32> {
    let hs = x.len();
    let mut pre = vec![0.0f32; 4 * hs];
    pre[..hs].copy_from_slice(x);
    let c_prev = vec![0.0f32; hs];
    let mut gates = vec![f32::NAN; 4 * hs];
    let (mut c, mut tc, mut h) = (vec![0.0; hs], vec![0.0; hs], vec![0.0; hs]);
    K::lstm_pointwise(&pre, &c_prev, &mut gates, &mut c, &mut tc, &mut h);
    gates.truncate(hs);
    gates
}

fn sigmoid64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `n + 1` evenly spaced points over [lo, hi], plus the values around every power of two and the
/// special values, in slices of an odd length so that every lane sees every kind of input.
fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..=n)
        .map(|i| lo + (hi - lo) * (i as f64 / n as f64) as f32)
        .collect();
    for e in -40..8 {
        let p = 2f32.powi(e);
        for x in [p, p.next_up(), p.next_down()] {
            v.extend([x, -x]);
        }
    }
    v.extend([
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        1e-30,
        1e-10,
        7.905,
        7.906,
        9.0,
        87.0,
        87.5,
    ]);
    v.extend([
        88.0,
        100.0,
        1e10,
        f32::MAX,
        -87.0,
        -87.5,
        -88.0,
        -100.0,
        -1e10,
        -f32::MAX,
    ]);
    v.extend([f32::INFINITY, f32::NEG_INFINITY]);
    v
}

struct Worst {
    abs: f64,
    abs_at: f32,
    rel: f64,
    rel_at: f32,
}

fn worst(x: &[f32], got: &[f32], exact: impl Fn(f64) -> f64, rel_from: f32) -> Worst {
    let mut w = Worst {
        abs: 0.0,
        abs_at: 0.0,
        rel: 0.0,
        rel_at: 0.0,
    };
    for (&x, &y) in x.iter().zip(got) {
        let e = exact(x as f64);
        assert!(y.is_finite(), "f({x:e}) = {y}, not finite");
        let d = (y as f64 - e).abs();
        if d > w.abs {
            (w.abs, w.abs_at) = (d, x);
        }
        if x >= rel_from && e != 0.0 && d / e.abs() > w.rel {
            (w.rel, w.rel_at) = (d / e.abs(), x);
        }
    }
    w
}

#[test]
fn tanh_error_bounds() {
    let x = grid(-20.0, 20.0, 4_000_001);
    let y = simd_tanh(&x);
    let w = worst(&x, &y, f64::tanh, f32::NEG_INFINITY);
    eprintln!(
        "simd tanh: max abs error {:.3e} at {}, max rel error {:.3e} at {}",
        w.abs, w.abs_at, w.rel, w.rel_at
    );
    assert!(
        w.abs <= TANH_ABS,
        "tanh abs error {:e} at {}",
        w.abs,
        w.abs_at
    );
    assert!(
        w.rel <= TANH_REL,
        "tanh rel error {:e} at {}",
        w.rel,
        w.rel_at
    );
    // Odd, bounded by 1, and monotone up to the error bound on the grid's sorted part (the
    // rational function wobbles by an ulp or two near ±1).
    for (&x, &y) in x.iter().zip(&y) {
        assert!(y.abs() <= 1.0, "|tanh({x})| = {} > 1", y.abs());
        let m = simd_tanh(&[-x])[0];
        assert_eq!(m, -y, "tanh(-{x}) != -tanh({x})");
    }
    let sorted = &y[..4_000_002];
    assert!(
        sorted
            .windows(2)
            .all(|w| w[0] as f64 <= w[1] as f64 + TANH_ABS),
        "tanh decreases by more than its error bound"
    );
}

#[test]
fn sigmoid_error_bounds() {
    let x = grid(-100.0, 100.0, 4_000_001);
    let y = sigmoid_with::<Simd>(&x);
    let w = worst(&x, &y, sigmoid64, -87.0);
    eprintln!(
        "simd sigmoid: max abs error {:.3e} at {}, max rel error (x >= -87) {:.3e} at {}",
        w.abs, w.abs_at, w.rel, w.rel_at
    );
    assert!(
        w.abs <= SIGMOID_ABS,
        "sigmoid abs error {:e} at {}",
        w.abs,
        w.abs_at
    );
    assert!(
        w.rel <= SIGMOID_REL,
        "sigmoid rel error {:e} at {}",
        w.rel,
        w.rel_at
    );
    for (&x, &y) in x.iter().zip(&y) {
        assert!(
            (0.0..=1.0).contains(&y),
            "sigmoid({x}) = {y} outside [0, 1]"
        );
    }
    let sorted = &y[..4_000_002];
    assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "sigmoid not monotone"
    );
}

/// The naive twins are libm, correctly rounded or within an ulp of it: far inside the bounds.
#[test]
fn naive_reference_is_libm() {
    let x = grid(-20.0, 20.0, 400_001);
    let mut y = vec![0.0f32; x.len()];
    <Naive as Kernels<f32>>::tanh_pointwise(&x, &mut y);
    let w = worst(&x, &y, f64::tanh, f32::NEG_INFINITY);
    assert!(
        w.abs <= 1.2e-7 && w.rel <= 2.4e-7,
        "libm tanhf: {:e} {:e}",
        w.abs,
        w.rel
    );
    let y = sigmoid_with::<Naive>(&x);
    let w = worst(&x, &y, sigmoid64, -87.0);
    assert!(
        w.abs <= 1.2e-7 && w.rel <= 3e-7,
        "libm sigmoid: {:e} {:e}",
        w.abs,
        w.rel
    );
}

/// A diverged model must show up as NaN, not be clamped into plausible numbers.
#[test]
fn nan_propagates() {
    let x = [
        f32::NAN,
        1.0,
        f32::NAN,
        -3.0,
        0.5,
        f32::NAN,
        2.0,
        7.0,
        f32::NAN,
    ];
    for (i, (&x, &t)) in x.iter().zip(&simd_tanh(&x)).enumerate() {
        assert_eq!(x.is_nan(), t.is_nan(), "tanh lane {i}: {x} -> {t}");
    }
    for (i, (&x, &s)) in x.iter().zip(&sigmoid_with::<Simd>(&x)).enumerate() {
        assert_eq!(x.is_nan(), s.is_nan(), "sigmoid lane {i}: {x} -> {s}");
    }
}
