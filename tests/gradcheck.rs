//! Gradient checks of the pieces below the recurrent models (those are in `tests/models.rs`,
//! every cell, stack and direction): the linear layer, every loss and the sigmoid output.
//!
//! * `f64`: every analytic gradient against central finite differences, step `EPS = 1e-6`. The
//!   error measure is [`grad_error`]: the largest absolute deviation over a tensor divided by the
//!   tensor's largest numeric gradient. In `f64` the finite differences are good to ~1e-10
//!   absolute (rounding `|L|·1e-16 / EPS`, truncation `EPS²·L'''`), so the bound `FD_TOL = 1e-6`
//!   has a wide margin yet catches any real error.
//! * `f32`: the same problems, rounded to `f32` and run with the default (`Simd`) kernels; their
//!   analytic gradients are compared to the `f64` analytic gradients of the *same* (rounded)
//!   values, see [`F32_TOL`]. Gradient and `dx` buffers start non-zero, to check that backward
//!   accumulates.

use tinyrnn::loss::{self, Reduction};
use tinyrnn::{Error, Linear, Params, Real, TensorInfo, rng};
use tinyrnn_tests::{
    assert_f32_matches_f64, assert_grad, boxed_random, cast_params, cast_rows, fd_gradient,
    grad_error, rand_rows, rand_vec, to_f64,
};

/// Finite-difference step.
const EPS: f64 = 1e-6;
/// Bound on [`grad_error`] in `f64` (the acceptance criterion).
const FD_TOL: f64 = 1e-6;
/// `f32` analytic vs `f64` analytic: `max|g32 - g64| <= F32_TOL * max(max|g64|, 1)` per tensor.
/// `f32` rounds at 6e-8 relative; the recurrences sum ~H + I products per step over 4 steps and
/// the `wide` exp/tanh are within a few ulp, so errors of a few 1e-7 of the gradient scale are
/// expected (observed: at most 2e-7). 1e-5 leaves a 50x margin for other targets/FMA choices while
/// staying far below what any real bug produces (an error in one term is ~1e-2 of the scale or
/// more).
const F32_TOL: f64 = 1e-5;

fn dot<F: Real, const N: usize>(a: &[[F; N]], b: &[[F; N]]) -> f64 {
    a.as_flattened()
        .iter()
        .zip(b.as_flattened())
        .map(|(a, b)| a.to_f64() * b.to_f64())
        .sum()
}

/// Checks every tensor of a parameter buffer: `analytic` (accumulated on top of `start`) against
/// the finite differences `numeric` of the flat buffer.
#[track_caller]
fn check_tensors<P: Params<f64>>(what: &str, analytic: &P, start: &P, numeric: &[f64]) {
    let acc: Vec<f64> = analytic
        .as_flat()
        .iter()
        .zip(start.as_flat())
        .map(|(a, s)| a - s)
        .collect();
    for t in P::TENSORS {
        let r = t.offset..t.offset + t.len();
        assert_grad(
            &format!("{what} {}", t.name),
            &acc[r.clone()],
            &numeric[r],
            FD_TOL,
        );
    }
}

/// Per-tensor f32 vs f64 comparison of two parameter buffers.
#[track_caller]
fn check_tensors_f32<P32: Params<f32>, P64: Params<f64>>(what: &str, g32: &P32, g64: &P64) {
    let table: &[TensorInfo] = P64::TENSORS;
    for t in table {
        let r = t.offset..t.offset + t.len();
        assert_f32_matches_f64(
            &format!("{what} {}", t.name),
            &g32.as_flat()[r.clone()],
            &g64.as_flat()[r],
            F32_TOL,
        );
    }
}

/// `a - b` element-wise, flattened, as f64 (strips the non-zero start of an accumulator).
fn minus<F: Real, const N: usize>(a: &[[F; N]], b: &[[F; N]]) -> Vec<f64> {
    a.as_flattened()
        .iter()
        .zip(b.as_flattened())
        .map(|(a, b)| a.to_f64() - b.to_f64())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Linear

const IN: usize = 7;
const OUT: usize = 3;
const N: usize = 5;

struct LinearProblem<F: Real> {
    lin: Box<Linear<IN, OUT, F>>,
    x: Vec<[F; IN]>,
    p: Vec<[F; OUT]>,
    g0: Box<Linear<IN, OUT, F>>,
    dx0: Vec<[F; IN]>,
}

fn linear_problem(seed: u64) -> (LinearProblem<f32>, LinearProblem<f64>) {
    let mut r = rng(seed);
    let p32 = LinearProblem::<f32> {
        lin: boxed_random(seed + 1, 0.5),
        x: rand_rows(&mut r, N, -1.0, 1.0),
        p: rand_rows(&mut r, N, -1.0, 1.0),
        g0: boxed_random(seed + 2, 1.0),
        dx0: rand_rows(&mut r, N, -1.0, 1.0),
    };
    let p64 = LinearProblem::<f64> {
        lin: cast_params(&*p32.lin),
        x: cast_rows(&p32.x),
        p: cast_rows(&p32.p),
        g0: cast_params(&*p32.g0),
        dx0: cast_rows(&p32.dx0),
    };
    (p32, p64)
}

/// L = Σ p·y, plus a quadratic term so that the loss is not linear in every input.
fn linear_loss(p: &LinearProblem<f64>) -> f64 {
    let mut y = vec![[0.0; OUT]; N];
    p.lin.forward(&p.x, &mut y).unwrap();
    dot(&p.p, &y) + 0.5 * dot(&y, &y)
}

fn linear_analytic<F: Real>(p: &LinearProblem<F>) -> (Box<Linear<IN, OUT, F>>, Vec<[F; IN]>) {
    let mut y = vec![[F::ZERO; OUT]; N];
    p.lin.forward(&p.x, &mut y).unwrap();
    // dL/dy = p + y
    let dy: Vec<[F; OUT]> = y
        .iter()
        .zip(&p.p)
        .map(|(y, p)| core::array::from_fn(|j| y[j] + p[j]))
        .collect();
    let mut grad = p.g0.clone();
    let mut dx = p.dx0.clone();
    p.lin.backward(&mut grad, &p.x, &dy, Some(&mut dx)).unwrap();
    (grad, dx)
}

#[test]
fn linear_f64_matches_finite_differences() {
    let (_, mut p) = linear_problem(31);
    let (grad, dx) = linear_analytic(&p);
    let num = fd_gradient(&mut p, |p| p.lin.as_flat_mut(), EPS, linear_loss);
    check_tensors("linear", &*grad, &*p.g0, &num);
    let num = fd_gradient(&mut p, |p| p.x.as_flattened_mut(), EPS, linear_loss);
    assert_grad("linear dx", &minus(&dx, &p.dx0), &num, FD_TOL);
}

#[test]
fn linear_f32_simd_matches_f64() {
    let (p32, p64) = linear_problem(32);
    let (g32, dx32) = linear_analytic(&p32);
    let (g64, dx64) = linear_analytic(&p64);
    check_tensors_f32("linear", &*g32, &*g64);
    assert_f32_matches_f64(
        "linear dx",
        dx32.as_flattened(),
        dx64.as_flattened(),
        F32_TOL,
    );
}

// ---------------------------------------------------------------------------------------------
// Losses and the sigmoid output

/// Every reduction; `MeanOver(40)` divides by a count other than the call's own N (a shard of a
/// batch of 40).
const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::MeanOver(40)];

/// The factor a reduction applies to the summed loss over `n` elements (rows for CE).
fn scale(red: Reduction, n: usize) -> f64 {
    match red {
        Reduction::Mean => 1.0 / n as f64,
        Reduction::Sum => 1.0,
        Reduction::MeanOver(total) => 1.0 / total as f64,
    }
}

/// A vector of inputs for the losses: moderate values plus a few large ones (stability).
fn loss_inputs(seed: u64, n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = rand_vec(&mut rng(seed), n, -3.0, 3.0);
    v[1] = 25.0;
    v[2] = -30.0;
    v
}

struct VecProblem {
    z: Vec<f64>,
    target: Vec<f64>,
}

#[test]
fn mse_matches_finite_differences_and_definition() {
    for red in REDUCTIONS {
        let mut p = VecProblem {
            z: loss_inputs(51, 11),
            target: rand_vec(&mut rng(52), 11, -2.0, 2.0),
        };
        let mut dy = vec![0.0; 11];
        let l = loss::mse(&p.z, &p.target, &mut dy, red).unwrap();
        let sum: f64 =
            p.z.iter()
                .zip(&p.target)
                .map(|(y, t)| (y - t).powi(2))
                .sum();
        let want = sum * scale(red, 11);
        assert!(
            (l - want).abs() <= 1e-12 * want.abs(),
            "mse {red:?}: {l} vs {want}"
        );
        let f = |p: &VecProblem| loss::mse(&p.z, &p.target, &mut [0.0; 11], red).unwrap();
        let num = fd_gradient(&mut p, |p| &mut p.z[..], EPS, f);
        assert_grad(&format!("mse {red:?}"), &dy, &num, FD_TOL);
    }
    assert!(matches!(
        loss::mse(&[1.0f64; 3], &[1.0; 2], &mut [0.0; 3], Reduction::Mean),
        Err(Error::Shape { .. })
    ));
}

/// The mean of nothing is 0 (not 0/0): an empty call with `Mean` or `MeanOver(0)` returns 0 and
/// writes nothing; a `MeanOver` total below the call's own count is an error, for every loss.
#[test]
fn empty_means_are_zero_and_short_totals_are_errors() {
    for red in [
        Reduction::Mean,
        Reduction::MeanOver(0),
        Reduction::MeanOver(3),
    ] {
        let empty: [f64; 0] = [];
        assert_eq!(loss::mse(&empty, &empty, &mut [], red).unwrap(), 0.0);
        assert_eq!(
            loss::bce_with_logits(&empty, &empty, &mut [], red).unwrap(),
            0.0
        );
        let rows: [[f64; 3]; 0] = [];
        assert_eq!(
            loss::softmax_cross_entropy(&rows, &[], &mut [], red).unwrap(),
            0.0
        );
    }
    let invalid = |r: Result<f64, Error>| matches!(r, Err(Error::Invalid { .. }));
    for red in [Reduction::MeanOver(0), Reduction::MeanOver(1)] {
        let (y, t) = ([0.5f64, 1.0], [0.0f64, 1.0]);
        assert!(
            invalid(loss::mse(&y, &t, &mut [0.0; 2], red)),
            "mse {red:?}"
        );
        assert!(
            invalid(loss::bce_with_logits(&y, &t, &mut [0.0; 2], red)),
            "bce {red:?}"
        );
        let z = [[0.5f64, 1.0], [0.0, 2.0]];
        let r = loss::softmax_cross_entropy(&z, &[0, 1], &mut [[0.0; 2]; 2], red);
        assert!(invalid(r), "ce {red:?}");
    }
    // A total that counts exactly this call's terms is the mean.
    let mut dy = [0.0; 2];
    let l = loss::mse(&[1.0f64, 3.0], &[0.0, 0.0], &mut dy, Reduction::MeanOver(2)).unwrap();
    assert_eq!((l, dy), (5.0, [1.0, 3.0]));
}

const C: usize = 5;

struct CeProblem {
    z: Vec<[f64; C]>,
    labels: Vec<usize>,
}

fn ce_problem(seed: u64) -> CeProblem {
    let mut z: Vec<[f64; C]> = rand_rows(&mut rng(seed), 6, -3.0, 3.0);
    z[2] = [40.0, -35.0, 10.0, 39.0, 0.0]; // large logits: needs the max subtracted
    CeProblem {
        z,
        labels: vec![0, 3, 4, 1, 2, 3],
    }
}

#[test]
fn softmax_cross_entropy_matches_finite_differences_and_definition() {
    for red in REDUCTIONS {
        let mut p = ce_problem(61);
        let mut dz = vec![[0.0; C]; 6];
        let l = loss::softmax_cross_entropy(&p.z, &p.labels, &mut dz, red).unwrap();
        // -log softmax(z)[k] = logsumexp(z) - z_k, in the obvious way (f64 does not overflow here).
        let sum: f64 =
            p.z.iter()
                .zip(&p.labels)
                .map(|(z, &k)| z.iter().map(|v| v.exp()).sum::<f64>().ln() - z[k])
                .sum();
        let want = sum * scale(red, 6);
        assert!(
            (l - want).abs() <= 1e-12 * want.abs(),
            "ce {red:?}: {l} vs {want}"
        );
        let f = |p: &CeProblem| {
            loss::softmax_cross_entropy(&p.z, &p.labels, &mut vec![[0.0; C]; 6], red).unwrap()
        };
        let num = fd_gradient(&mut p, |p| p.z.as_flattened_mut(), EPS, f);
        assert_grad(
            &format!("softmax_cross_entropy {red:?}"),
            &to_f64(dz.as_flattened()),
            &num,
            FD_TOL,
        );
    }
    // Stable where exp overflows: logits ±1000.
    let z = [[1000.0f64, 0.0, -1000.0]];
    let mut dz = [[0.0; 3]];
    let l = loss::softmax_cross_entropy(&z, &[1], &mut dz, Reduction::Sum).unwrap();
    assert!((l - 1000.0).abs() < 1e-9, "{l}");
    assert_eq!(dz, [[1.0, -1.0, 0.0]]);
    // softmax agrees with the gradient of the summed loss (softmax - onehot).
    let p = ce_problem(62);
    let mut probs = vec![[0.0; C]; 6];
    loss::softmax(&p.z, &mut probs).unwrap();
    let mut dz = vec![[0.0; C]; 6];
    loss::softmax_cross_entropy(&p.z, &p.labels, &mut dz, Reduction::Sum).unwrap();
    for ((pr, d), &k) in probs.iter().zip(&dz).zip(&p.labels) {
        assert!((pr.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        for j in 0..C {
            let onehot = if j == k { 1.0 } else { 0.0 };
            assert!((pr[j] - onehot - d[j]).abs() < 1e-15);
        }
    }
    assert_eq!(
        loss::softmax_cross_entropy(&p.z, &[0, 1, 2, 3, 4, 5], &mut dz, Reduction::Sum),
        Err(Error::Label {
            index: 5,
            classes: C
        })
    );
}

#[test]
fn bce_with_logits_matches_finite_differences_and_definition() {
    for red in REDUCTIONS {
        let mut p = VecProblem {
            z: loss_inputs(71, 9),
            target: rand_vec(&mut rng(72), 9, 0.0, 1.0),
        };
        let mut dz = vec![0.0; 9];
        let l = loss::bce_with_logits(&p.z, &p.target, &mut dz, red).unwrap();
        // -[t log σ(z) + (1-t) log(1 - σ(z))], with log σ(z) = -log(1 + e^-z) (f64, |z| <= 30).
        let sum: f64 =
            p.z.iter()
                .zip(&p.target)
                .map(|(&z, &t)| t * (1.0 + (-z).exp()).ln() + (1.0 - t) * (1.0 + z.exp()).ln())
                .sum();
        let want = sum * scale(red, 9);
        assert!(
            (l - want).abs() <= 1e-12 * want.abs(),
            "bce {red:?}: {l} vs {want}"
        );
        let f =
            |p: &VecProblem| loss::bce_with_logits(&p.z, &p.target, &mut [0.0; 9], red).unwrap();
        let num = fd_gradient(&mut p, |p| &mut p.z[..], EPS, f);
        assert_grad(&format!("bce_with_logits {red:?}"), &dz, &num, FD_TOL);
        // ... and with respect to the (soft) targets: dL/dt = -s z.
        let s = scale(red, 9);
        let num = fd_gradient(&mut p, |p| &mut p.target[..], EPS, f);
        let want: Vec<f64> = p.z.iter().map(|z| -s * z).collect();
        assert_grad(
            &format!("bce_with_logits {red:?} d/dtarget"),
            &want,
            &num,
            FD_TOL,
        );
    }
    // Stable where e^|z| overflows.
    let mut dz = [0.0; 2];
    let l =
        loss::bce_with_logits(&[800.0f64, -800.0], &[0.0, 0.0], &mut dz, Reduction::Sum).unwrap();
    assert!((l - 800.0).abs() < 1e-9, "{l}");
    assert_eq!(dz, [1.0, 0.0]);
}

#[test]
fn sigmoid_matches_finite_differences() {
    struct P {
        z: Vec<f64>,
        w: Vec<f64>,
    }
    let mut p = P {
        z: loss_inputs(81, 10),
        w: rand_vec(&mut rng(82), 10, -1.0, 1.0),
    };
    p.z[1] = 8.0; // keep σ' well away from 0 for the finite differences
    p.z[2] = -9.0;
    // L = Σ w · σ(z)
    let f = |p: &P| {
        let mut y = vec![0.0; 10];
        loss::sigmoid_forward(&p.z, &mut y).unwrap();
        y.iter().zip(&p.w).map(|(y, w)| y * w).sum::<f64>()
    };
    let mut y = vec![0.0; 10];
    loss::sigmoid_forward(&p.z, &mut y).unwrap();
    for (&y, &z) in y.iter().zip(&p.z) {
        assert!((y - 1.0 / (1.0 + (-z).exp())).abs() < 1e-15);
    }
    let dz0: Vec<f64> = rand_vec(&mut rng(83), 10, -1.0, 1.0);
    let mut dz = dz0.clone();
    loss::sigmoid_backward(&y, &p.w, &mut dz).unwrap(); // accumulates
    let dz: Vec<f64> = dz.iter().zip(&dz0).map(|(a, b)| a - b).collect();
    let num = fd_gradient(&mut p, |p| &mut p.z[..], EPS, f);
    assert_grad("sigmoid", &dz, &num, FD_TOL);
    // Saturates without overflow or NaN.
    let mut y = [0.0f64; 2];
    loss::sigmoid_forward(&[-1000.0, 1000.0], &mut y).unwrap();
    assert_eq!(y, [0.0, 1.0]);
}

/// The losses in f32 against f64 (elementwise, so their error is a few ulp).
#[test]
fn losses_f32_match_f64() {
    let z64: Vec<f64> = loss_inputs(91, 12)
        .iter()
        .map(|&v| v as f32 as f64)
        .collect();
    let z32: Vec<f32> = z64.iter().map(|&v| v as f32).collect();
    let t32: Vec<f32> = rand_vec(&mut rng(92), 12, 0.0, 1.0);
    let t64: Vec<f64> = to_f64(&t32);
    for red in REDUCTIONS {
        let (mut d32, mut d64) = (vec![0.0f32; 12], vec![0.0f64; 12]);
        let l32 = loss::mse(&z32, &t32, &mut d32, red).unwrap();
        let l64 = loss::mse(&z64, &t64, &mut d64, red).unwrap();
        assert!((l32 as f64 - l64).abs() <= F32_TOL * l64.abs().max(1.0));
        assert_f32_matches_f64("mse dy", &d32, &d64, F32_TOL);

        let l32 = loss::bce_with_logits(&z32, &t32, &mut d32, red).unwrap();
        let l64 = loss::bce_with_logits(&z64, &t64, &mut d64, red).unwrap();
        assert!((l32 as f64 - l64).abs() <= F32_TOL * l64.abs().max(1.0));
        assert_f32_matches_f64("bce dz", &d32, &d64, F32_TOL);

        let zc64 = ce_problem(93);
        let zc32: Vec<[f32; C]> = cast_rows(&zc64.z);
        let zc64: Vec<[f64; C]> = cast_rows(&zc32);
        let (mut d32, mut d64) = (vec![[0.0f32; C]; 6], vec![[0.0f64; C]; 6]);
        let labels = [0, 3, 4, 1, 2, 3];
        let l32 = loss::softmax_cross_entropy(&zc32, &labels, &mut d32, red).unwrap();
        let l64 = loss::softmax_cross_entropy(&zc64, &labels, &mut d64, red).unwrap();
        assert!((l32 as f64 - l64).abs() <= F32_TOL * l64.abs().max(1.0));
        assert_f32_matches_f64("ce dz", d32.as_flattened(), d64.as_flattened(), F32_TOL);
    }
    let (mut y32, mut y64) = (vec![0.0f32; 12], vec![0.0f64; 12]);
    loss::sigmoid_forward(&z32, &mut y32).unwrap();
    loss::sigmoid_forward(&z64, &mut y64).unwrap();
    assert_f32_matches_f64("sigmoid y", &y32, &y64, F32_TOL);
    let (mut d32, mut d64) = (vec![0.0f32; 12], vec![0.0f64; 12]);
    loss::sigmoid_backward(&y32, &t32, &mut d32).unwrap();
    loss::sigmoid_backward(&y64, &t64, &mut d64).unwrap();
    assert_f32_matches_f64("sigmoid dz", &d32, &d64, F32_TOL);
}

/// The error measure itself must be able to fail: a deliberately wrong gradient (one element
/// off by 1e-4 of the scale) is rejected.
#[test]
fn grad_error_detects_a_small_error() {
    let num = vec![1.0, -0.5, 0.25, 1e-3];
    let mut bad = num.clone();
    bad[3] += 1e-4;
    assert!(grad_error(&bad, &num) > FD_TOL);
    assert!(grad_error(&num, &num) == 0.0);
}
