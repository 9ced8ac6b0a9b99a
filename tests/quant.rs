//! The int8 path (`tinyrnn::quant`; models quantized and owned by the host's `QuantModel`):
//!
//! * the layer step is bit for bit the documented scheme, recomputed here by an independent scalar
//!   reference (i64 sums, f64-free integer formulas) for LSTM and tanh RNN, H with a tail of 4;
//! * a quantized model follows its float model closely (same inputs, calibrated ranges);
//! * `QModel::step` (sizes in the types) == `step_q` on slices;
//! * bad shapes and out-of-range scheme values are errors, not panics.

use host::infer::DynModel;
use host::net::CellKind as Cell;
use host::quant::{QuantModel, Ranges};
use tinyrnn::quant::{QState, c_frac_for, quantize_rows, sigmoid, tanh};
use tinyrnn::{Error, LstmModel, LstmState, Params, RnnModel, rng};
use tinyrnn_tests::boxed_zeroed;

/// The scheme of `quant/mod.rs`, `lstm.rs`, `rnn.rs` written out independently: one step of
/// the layer of `q` (quantized by the host's `QuantModel`, a thin owner of the core's buffers).
fn reference_step(q: &QuantModel, xq: &[i8], h: &mut [i8], c: &mut [i16]) {
    let (is, hs, _) = q.sizes;
    let l = q.shift;
    let round_shift = |v: i64, s: u32| (v + (1i64 << (s - 1))) >> s;
    let sat16 = |v: i64| v.clamp(-32768, 32767);
    let pre = |w: &[i8], k: usize, v: &[i8], m: &[i32], b: &[i32], r: usize| {
        let acc: i64 = (0..k).map(|j| w[r * k + j] as i64 * v[j] as i64).sum();
        let hi = (acc * m[r] as i64 + (1i64 << 31)) >> 32;
        let lim = (1i64 << 24) >> l;
        sat16((hi.clamp(-lim, lim) << l) + b[r] as i64)
    };
    let hp = h.to_vec();
    for u in 0..hs {
        let a = |g: usize| {
            let r = g * hs + u;
            let ax = pre(&q.w_ih, is, xq, &q.mul_ih, &q.b_ih, r);
            let ah = pre(&q.w_hh, hs, &hp, &q.mul_hh, &q.b_hh, r);
            sat16(ax + ah) as i32
        };
        h[u] = match q.cell {
            Cell::Rnn => (round_shift(tanh(a(0)) as i64, 8).clamp(-127, 127)) as i8,
            Cell::Lstm => {
                let (ig, fg, gg, og) = (sigmoid(a(0)), sigmoid(a(1)), tanh(a(2)), sigmoid(a(3)));
                let f = q.c_frac;
                let cn = round_shift(fg as i64 * c[u] as i64, 15)
                    + round_shift(ig as i64 * gg as i64, 30 - f);
                let cn = sat16(cn);
                c[u] = cn as i16;
                let cq = if f > 11 {
                    round_shift(cn, f - 11)
                } else {
                    cn << (11 - f)
                };
                let tc = tanh(sat16(cq) as i32);
                round_shift(og as i64 * tc as i64, 23).clamp(-127, 127) as i8
            }
        };
    }
}

/// Inputs in [-1, 1] from a fixed generator.
fn inputs(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

const I: usize = 3;
const H: usize = 14; // three blocks of 4 units and a tail of 2
const O: usize = 2;
const T: usize = 40;

/// A float model given as its six tensors, and its quantization with the calibrated c range.
fn quantized(cell: Cell, t: [&[f32]; 6], c_max: f32) -> QuantModel {
    let d = DynModel::from_tensors(cell, (I, H, O), t).unwrap();
    QuantModel::quantize(&d, Ranges { x_max: 1.0, c_max }).unwrap()
}

fn lstm_case() -> (Box<LstmModel<I, H, O>>, QuantModel, Vec<f32>) {
    let mut m = boxed_zeroed::<f32, LstmModel<I, H, O>>();
    m.init(&mut rng(7), Some(1.0));
    let xs = inputs(T * I, 3);
    // Calibration: the float model over the same kind of data.
    let mut st = LstmState::<H>::zero();
    let mut c_max = 0f32;
    for x in xs.chunks(I) {
        m.step(x.try_into().unwrap(), &mut st);
        c_max = st.c.iter().fold(c_max, |a, v| a.max(v.abs()));
    }
    let q = quantized(Cell::Lstm, m.tensors(), c_max);
    (m, q, xs)
}

fn rnn_case() -> (Box<RnnModel<I, H, O>>, QuantModel, Vec<f32>) {
    let mut m = boxed_zeroed::<f32, RnnModel<I, H, O>>();
    m.init(&mut rng(8));
    let xs = inputs(T * I, 4);
    let q = quantized(Cell::Rnn, m.tensors(), 0.0);
    (m, q, xs)
}

/// The six tensors of a model in PyTorch's order.
trait Tensors {
    fn tensors(&self) -> [&[f32]; 6];
}
impl<P: Params<f32>> Tensors for P {
    fn tensors(&self) -> [&[f32]; 6] {
        let flat = self.as_flat();
        let mut out: [&[f32]; 6] = [&[]; 6];
        for (o, t) in out.iter_mut().zip(P::TENSORS) {
            let n: usize = t.shape.iter().product();
            *o = &flat[t.offset..t.offset + n];
        }
        out
    }
}

#[test]
fn layer_step_is_the_documented_scheme_bit_for_bit() {
    for q in [lstm_case().1, rnn_case().1] {
        let m = q.view();
        m.check().unwrap();
        let (mut h, mut c) = (vec![0i8; H], vec![0i16; H]);
        let mut scratch = vec![0u32; m.scratch_len()];
        let (mut rh, mut rc) = (vec![0i8; H], vec![0i16; H]);
        let mut xq = vec![0i8; I];
        let mut moved = false;
        for x in inputs(T * I, 11).chunks(I) {
            m.quantize_input(x, &mut xq).unwrap();
            m.layer.step(&xq, &mut h, &mut c, &mut scratch).unwrap();
            reference_step(&q, &xq, &mut rh, &mut rc);
            assert_eq!(h, rh, "{:?} h", q.cell);
            assert_eq!(c, rc, "{:?} c", q.cell);
            moved |= h.iter().any(|&v| v.abs() > 20);
        }
        assert!(moved, "{:?}: the state never left zero", q.cell);
    }
}

#[test]
fn quantized_models_follow_their_float_models() {
    let (fm, q, xs) = lstm_case();
    let m = q.view();
    let mut st = LstmState::<H>::zero();
    let mut qs = QState::<H>::zero();
    let mut worst = 0f32;
    for x in xs.chunks(I) {
        let x: &[f32; I] = x.try_into().unwrap();
        let y = fm.step(x, &mut st);
        let yq: [f32; O] = m.step(x, &mut qs).unwrap();
        for (a, b) in y.iter().zip(yq) {
            worst = worst.max((a - b).abs());
        }
        for (a, &b) in st.h.iter().zip(&qs.h) {
            assert!(
                (a - b as f32 / 128.0).abs() < 0.03,
                "h {a} vs {}",
                b as f32 / 128.0
            );
        }
    }
    assert!(worst < 0.03, "LSTM output error {worst}");

    let (fm, q, xs) = rnn_case();
    let m = q.view();
    let mut h = [0f32; H];
    let mut qs = QState::<H>::zero();
    let mut worst = 0f32;
    for x in xs.chunks(I) {
        let x: &[f32; I] = x.try_into().unwrap();
        let y = fm.step(x, &mut h);
        let yq: [f32; O] = m.step(x, &mut qs).unwrap();
        for (a, b) in y.iter().zip(yq) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 0.03, "RNN output error {worst}");
}

#[test]
fn typed_step_equals_slice_step() {
    let (_, q, xs) = lstm_case();
    let m = q.view();
    let mut st = QState::<H>::zero();
    let (mut h, mut c, mut xq, mut y) = (vec![0i8; H], vec![0i16; H], vec![0i8; I], vec![0f32; O]);
    let mut scratch = vec![0u32; m.scratch_len()];
    for x in xs.chunks(I) {
        let yt: [f32; O] = m.step::<I, H, O>(x.try_into().unwrap(), &mut st).unwrap();
        m.quantize_input(x, &mut xq).unwrap();
        m.step_q(&xq, &mut h, &mut c, &mut scratch, &mut y).unwrap();
        assert_eq!(
            yt.map(f32::to_bits).to_vec(),
            y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(st.h.to_vec(), h);
        assert_eq!(st.c.to_vec(), c);
    }
}

#[test]
fn bad_shapes_and_values_are_errors() {
    let (_, q, _) = lstm_case();
    let good = q.view();
    good.check().unwrap();
    let mut st = QState::<H>::zero();
    // Sizes in the types that do not match the model.
    assert!(matches!(
        good.step::<2, H, O>(&[0.0; 2], &mut st),
        Err(Error::Shape { .. })
    ));
    let mut s2 = QState::<5>::zero();
    assert!(good.step::<I, 5, O>(&[0.0; I], &mut s2).is_err());
    assert!(good.step::<I, H, 3>(&[0.0; I], &mut st).is_err());
    // Each slice one short, and the scheme's values out of range.
    let short_w = &q.w_hh[1..];
    let mut m = good;
    m.layer.w_hh = short_w;
    assert!(m.check().is_err());
    let mut m = good;
    m.layer.b_ih = &q.b_ih[1..];
    assert!(m.check().is_err());
    let mut m = good;
    m.head.scale = &q.head_scale[1..];
    assert!(m.check().is_err());
    for shift in [16, 40] {
        let mut m = good;
        m.layer.shift = shift;
        assert_eq!(m.check(), Err(Error::Invalid { what: "shift" }));
    }
    for c_frac in [7, 16] {
        let mut m = good;
        m.layer.c_frac = c_frac;
        assert_eq!(m.check(), Err(Error::Invalid { what: "c_frac" }));
    }
    for x_scale in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let mut m = good;
        m.x_scale = x_scale;
        assert_eq!(m.check(), Err(Error::Invalid { what: "x_scale" }));
    }
    let mut m = good;
    m.layer.hidden = usize::MAX;
    assert!(m.check().is_err());
    // Non-finite weights are refused by the quantizer.
    let mut w = vec![0.5f32; 6];
    w[4] = f32::NAN;
    let (mut qw, mut s) = (vec![0i8; 6], vec![0f32; 2]);
    assert!(quantize_rows(&w, 3, &mut qw, &mut s).is_err());
}

#[test]
fn cell_fraction_bits_follow_the_calibrated_range() {
    assert_eq!(c_frac_for(0.0), 15);
    assert_eq!(c_frac_for(0.9), 15); // 0.99 < 1: Q0.15 holds it
    assert_eq!(c_frac_for(0.95), 14); // 1.045 >= 1
    assert_eq!(c_frac_for(3.0), 13); // 3.3 < 4: Q2.13
    assert_eq!(c_frac_for(1000.0), 8);
}
