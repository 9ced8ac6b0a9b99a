//! The typed embedded models (`LstmModel`, `RnnModel`, their layers `Lstm`, `Rnn`, `Linear`):
//!
//! * `LstmModel::step` / `RnnModel::step` == layer step then head step, and the head is W h + b;
//! * `Params::TENSORS` are PyTorch's names, offsets and shapes, and they address the fields;
//! * initialisation is PyTorch's and reproducible;
//! * the linear layer's shape errors are reported as `Err`, not panics.
//!
//! The run-time engine's structure (step == sequence, chunked TBPTT == full BPTT, the equations)
//! is `tests/models.rs`.
//!
//! Tolerances: [`tol`] is 1e-5 for `f32` and 1e-12 for `f64`, as `|a - b| <= tol * max(1, |b|)`.

use tinyrnn::{Linear, Lstm, LstmModel, LstmState, Params, Real, Rnn, RnnModel, TensorInfo, rng};
use tinyrnn_tests::{assert_bits_eq, assert_close, boxed_random, boxed_zeroed, rand_rows};

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

// ---------------------------------------------------------------------------------------------
// Model step == layer step + head step

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
    // Both signs, across the range (a U(k, k) would pass the bounds above).
    let (lo, hi) = min_max(a.lstm.as_flat().iter().map(|&v| v as f64));
    assert!(
        lo < -0.9 * k as f64 && hi > 0.9 * k as f64,
        "values should fill the range: {lo}..{hi}"
    );
    b.init(&mut rng(6), None);
    assert_ne!(a, b);
    a.init(&mut rng(5), Some(1.0));
    assert_eq!(a.lstm.bias_ih[1], [1.0; H]);
    assert_eq!(a.lstm.bias_hh[1], [0.0; H]);

    let mut lin = boxed_zeroed::<f64, Linear<I, O, f64>>();
    lin.init(&mut rng(7));
    let k = 1.0 / (I as f64).sqrt();
    assert!(lin.as_flat().iter().all(|v| v.abs() <= k));
    let mut wide = boxed_zeroed::<f64, Linear<64, 32, f64>>();
    wide.init(&mut rng(9));
    let (lo, hi) = min_max(wide.as_flat().iter().copied());
    let k = 1.0 / 8.0;
    assert!(
        lo >= -k && hi <= k && lo < -0.9 * k && hi > 0.9 * k,
        "Linear init: {lo}..{hi}"
    );
    let mut rnn = boxed_zeroed::<f64, Rnn<I, H, f64>>();
    rnn.init(&mut rng(8));
    let k = 1.0 / (H as f64).sqrt();
    assert!(rnn.as_flat().iter().all(|v| v.abs() <= k && *v != 0.0));
}

/// The smallest and largest of `v`.
fn min_max(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    })
}

// ---------------------------------------------------------------------------------------------
// Shape errors

#[test]
fn linear_shape_errors_are_reported_not_panics() {
    const T: usize = 2;
    let x = vec![[0.5f32; I]; T * B];
    let lin: Box<Linear<I, O, f32>> = boxed_random(182, 0.5);
    let mut y = vec![[0.0f32; O]; T * B - 1];
    assert!(lin.forward(&x, &mut y).is_err());
    let mut g = boxed_zeroed::<f32, Linear<I, O, f32>>();
    assert!(lin.backward(&mut g, &x, &y, None).is_err());
}
