//! The int8 path (`tinyrnn::quant`; models quantized and owned by the host's `QuantModel`):
//!
//! * the layer step is bit for bit the documented scheme, recomputed here by an independent scalar
//!   reference (i64 sums, f64-free integer formulas) for LSTM and tanh RNN, H with a tail of 4;
//! * the same for the GRU and for stacks (`QStack`, 1-3 layers of GRU, LSTM, tanh RNN quantized
//!   from the core's f32 `Model` by `quantize_stack`): h, c and the head's output bit for bit;
//! * a quantized model follows its float model closely (same inputs, calibrated ranges), stacks
//!   too (every layer's h and the output within 0.015 of the f32 `Model::step`);
//! * bidirectional and ReLU models are refused by the quantizer (the int8 step streams);
//! * the host's `QuantModel` is the core's quantization (`quantize_stack`, `quantize_head`) of
//!   the ranges it calibrates, and quantize -> save -> read -> `run` equals the core's
//!   `QStack::step` bit for bit, for a GRU and a 2-layer LSTM (and a 2-layer GRU);
//! * `QModel::step` (sizes in the types) == `step_q` on slices;
//! * bad shapes and out-of-range scheme values are errors, not panics.

use host::infer::DynModel;
use host::quant::{QuantModel, Ranges};
use tinyrnn::CellKind as Cell;
use tinyrnn::quant::{QState, c_frac_for, quantize_rows, sigmoid, tanh};
use tinyrnn::{CellKind, Error, LstmModel, LstmState, Params, RnnModel, rng};
use tinyrnn_tests::boxed_zeroed;

/// The scheme of `quant/mod.rs`, `lstm.rs`, `rnn.rs` written out independently: one step of
/// the one layer of `q` (quantized by the host's `QuantModel`, a thin owner of the core's
/// buffers).
fn reference_step(q: &QuantModel, xq: &[i8], h: &mut [i8], c: &mut [i16]) {
    let (is, hs, _) = q.sizes();
    let q1 = &q.layers[0];
    let l = q1.shift;
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
            let ax = pre(&q1.w_ih, is, xq, &q1.mul_ih, &q1.b_ih, r);
            let ah = pre(&q1.w_hh, hs, &hp, &q1.mul_hh, &q1.b_hh, r);
            sat16(ax + ah) as i32
        };
        h[u] = match q.spec.cell {
            CellKind::RnnTanh => (round_shift(tanh(a(0)) as i64, 8).clamp(-127, 127)) as i8,
            CellKind::Lstm => {
                let (ig, fg, gg, og) = (sigmoid(a(0)), sigmoid(a(1)), tanh(a(2)), sigmoid(a(3)));
                let f = q1.c_frac;
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
            other => panic!("the one-layer reference is LSTM and tanh RNN, not {other:?}"),
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
    let ranges = Ranges {
        x_max: 1.0,
        c_max: vec![c_max],
    };
    QuantModel::quantize(&d, &ranges).unwrap()
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
    let q = quantized(Cell::RnnTanh, m.tensors(), 0.0);
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
        let m = q.one_layer().unwrap();
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
            assert_eq!(h, rh, "{:?} h", q.spec.cell);
            assert_eq!(c, rc, "{:?} c", q.spec.cell);
            moved |= h.iter().any(|&v| v.abs() > 20);
        }
        assert!(moved, "{:?}: the state never left zero", q.spec.cell);
    }
}

#[test]
fn quantized_models_follow_their_float_models() {
    let (fm, q, xs) = lstm_case();
    let m = q.one_layer().unwrap();
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
    let m = q.one_layer().unwrap();
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
    let m = q.one_layer().unwrap();
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
    let good = q.one_layer().unwrap();
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
    let short_w = &q.layers[0].w_hh[1..];
    let mut m = good;
    m.layer.w_hh = short_w;
    assert!(m.check().is_err());
    let mut m = good;
    m.layer.b_ih = &q.layers[0].b_ih[1..];
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

// ---- GRU and stacked models (`QStack`) ------------------------------------------------------

use tinyrnn::quant::{
    self, CellKind as QCell, QLayer, QLayerMut, QLinear, QStack, QStackState, float_layer,
    quantize_head, quantize_stack, x_scale_for,
};
use tinyrnn::{Model, Spec};
use tinyrnn_tests::rand_vec;

/// One quantized layer, owned.
struct OwnedLayer {
    cell: QCell,
    inputs: usize,
    hidden: usize,
    w_ih: Vec<i8>,
    w_hh: Vec<i8>,
    s_ih: Vec<f32>,
    s_hh: Vec<f32>,
    mul_ih: Vec<i32>,
    mul_hh: Vec<i32>,
    b_ih: Vec<i32>,
    b_hh: Vec<i32>,
    shift: u32,
    c_frac: u32,
}

/// A quantized stack, owned; [`OwnedStack::view`] is the core's `QStack`.
struct OwnedStack {
    x_scale: f32,
    layers: Vec<OwnedLayer>,
    head_w: Vec<i8>,
    head_scale: Vec<f32>,
    head_bias: Vec<f32>,
    hidden: usize,
    out: usize,
}

impl OwnedStack {
    /// Quantizes the float model `spec` / `params` with the core's `quantize_stack` and
    /// `quantize_head`, for the calibrated max |x| and per-layer max |c|.
    fn quantize(spec: &Spec, params: &[f32], x_max: f32, c_max: &[f32]) -> Self {
        let x_scale = x_scale_for(x_max);
        let mut layers: Vec<OwnedLayer> = (0..spec.layers)
            .map(|k| {
                let f = float_layer(spec, params, k).unwrap();
                let rows = f.cell.gates() * spec.hidden;
                OwnedLayer {
                    cell: f.cell,
                    inputs: f.inputs,
                    hidden: f.hidden,
                    w_ih: vec![0; rows * f.inputs],
                    w_hh: vec![0; rows * f.hidden],
                    s_ih: vec![0.0; rows],
                    s_hh: vec![0.0; rows],
                    mul_ih: vec![0; rows],
                    mul_hh: vec![0; rows],
                    b_ih: vec![0; rows],
                    b_hh: vec![0; rows],
                    shift: 0,
                    // F: the LSTM's calibrated range; unused (but in range) for the others.
                    c_frac: c_frac_for(c_max[k]),
                }
            })
            .collect();
        let mut shifts = vec![0u32; spec.layers];
        {
            let mut outs: Vec<QLayerMut> = layers
                .iter_mut()
                .map(|l| QLayerMut {
                    w_ih: &mut l.w_ih,
                    w_hh: &mut l.w_hh,
                    s_ih: &mut l.s_ih,
                    s_hh: &mut l.s_hh,
                    mul_ih: &mut l.mul_ih,
                    mul_hh: &mut l.mul_hh,
                    b_ih: &mut l.b_ih,
                    b_hh: &mut l.b_hh,
                })
                .collect();
            quantize_stack(spec, params, x_scale, &mut outs, &mut shifts).unwrap();
        }
        for (l, s) in layers.iter_mut().zip(shifts) {
            l.shift = s;
        }
        let (hs, o) = (spec.hidden, spec.output);
        let hw = spec.head_offset();
        let (mut head_w, mut head_scale) = (vec![0i8; o * hs], vec![0f32; o]);
        quantize_head(&params[hw..hw + o * hs], hs, &mut head_w, &mut head_scale).unwrap();
        OwnedStack {
            x_scale,
            layers,
            head_w,
            head_scale,
            head_bias: params[hw + o * hs..].to_vec(),
            hidden: hs,
            out: o,
        }
    }

    fn layer_views(&self) -> Vec<QLayer<'_>> {
        self.layers
            .iter()
            .map(|l| QLayer {
                cell: l.cell,
                inputs: l.inputs,
                hidden: l.hidden,
                w_ih: &l.w_ih,
                w_hh: &l.w_hh,
                mul_ih: &l.mul_ih,
                mul_hh: &l.mul_hh,
                b_ih: &l.b_ih,
                b_hh: &l.b_hh,
                shift: l.shift,
                c_frac: l.c_frac,
            })
            .collect()
    }

    fn view<'a>(&'a self, layers: &'a [QLayer<'a>]) -> QStack<'a> {
        QStack {
            x_scale: self.x_scale,
            layers,
            head: QLinear {
                inputs: self.hidden,
                outputs: self.out,
                weight: &self.head_w,
                scale: &self.head_scale,
                bias: &self.head_bias,
            },
        }
    }
}

/// The scheme (mod.rs, lstm.rs, gru.rs, rnn.rs) written out independently for one layer of any
/// cell, in i64: advances `h`, `c` (H) by `xq`.
fn reference_layer(l: &QLayer, xq: &[i8], h: &mut [i8], c: &mut [i16]) {
    let (is, hs, sh) = (l.inputs, l.hidden, l.shift);
    let round_shift = |v: i64, s: u32| (v + (1i64 << (s - 1))) >> s;
    let sat16 = |v: i64| v.clamp(-32768, 32767);
    let pre = |w: &[i8], k: usize, v: &[i8], m: &[i32], b: &[i32], r: usize| {
        let acc: i64 = (0..k).map(|j| w[r * k + j] as i64 * v[j] as i64).sum();
        let hi = (acc * m[r] as i64 + (1i64 << 31)) >> 32;
        let lim = (1i64 << 24) >> sh;
        sat16((hi.clamp(-lim, lim) << sh) + b[r] as i64)
    };
    let hp = h.to_vec();
    for u in 0..hs {
        let ax = |g: usize| pre(l.w_ih, is, xq, l.mul_ih, l.b_ih, g * hs + u);
        let ah = |g: usize| pre(l.w_hh, hs, &hp, l.mul_hh, l.b_hh, g * hs + u);
        let a = |g: usize| sat16(ax(g) + ah(g)) as i32;
        h[u] = match l.cell {
            QCell::Rnn => (round_shift(tanh(a(0)) as i64, 8).clamp(-127, 127)) as i8,
            QCell::Lstm => {
                let (ig, fg, gg, og) = (sigmoid(a(0)), sigmoid(a(1)), tanh(a(2)), sigmoid(a(3)));
                let f = l.c_frac;
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
            QCell::Gru => {
                let (r, z) = (sigmoid(a(0)) as i64, sigmoid(a(1)) as i64);
                let an = sat16(ax(2) + round_shift(r * ah(2), 15));
                let n = tanh(an as i32) as i64;
                let hn = sat16(round_shift((32768 - z) * n, 15) + round_shift(z * c[u] as i64, 15));
                c[u] = hn as i16;
                round_shift(hn, 8).clamp(-127, 127) as i8
            }
        };
    }
}

/// The reference of a whole stack step: the layers bottom up (layer k reads layer k-1's new h),
/// then the head `y[o] = (Σ Wq[o,k] hq[k]) as f32 · scale[o] + bias[o]`.
fn reference_stack(m: &QStack, xq: &[i8], h: &mut [i8], c: &mut [i16], y: &mut [f32]) {
    let mut off = 0;
    for (k, l) in m.layers.iter().enumerate() {
        let input: Vec<i8> = if k == 0 {
            xq.to_vec()
        } else {
            h[off - l.inputs..off].to_vec()
        };
        reference_layer(
            l,
            &input,
            &mut h[off..off + l.hidden],
            &mut c[off..off + l.hidden],
        );
        off += l.hidden;
    }
    let top = &h[off - m.head.inputs..off];
    for (o, y) in y.iter_mut().enumerate() {
        let acc: i64 = (0..m.head.inputs)
            .map(|k| m.head.weight[o * m.head.inputs + k] as i64 * top[k] as i64)
            .sum();
        *y = acc as i32 as f32 * m.head.scale[o] + m.head.bias[o];
    }
}

/// A float model of shape `spec` with PyTorch's default initialisation U(-1/√H, 1/√H).
fn float_params(spec: &Spec, seed: u64) -> Vec<f32> {
    let k = 1.0 / (spec.hidden as f64).sqrt();
    rand_vec(&mut rng(seed), spec.param_len(), -k, k)
}

/// The float model's outputs over `xs` (T·I, step by step from the zero state) and the
/// calibration: max |c| per layer (0 for cells without a cell state).
fn float_run(spec: &Spec, params: &[f32], xs: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let m = Model::new(*spec, params).unwrap();
    let n = spec.state_len(1);
    let mut h = vec![0f32; n];
    let mut c = vec![0f32; if spec.cell.has_c() { n } else { 0 }];
    let mut scratch = vec![0f32; m.step_scratch_len()];
    let mut y = vec![0f32; spec.output];
    let (mut ys, mut c_max) = (Vec::new(), vec![0f32; spec.layers]);
    for x in xs.chunks(spec.input) {
        m.step(x, &mut h, &mut c, &mut scratch, &mut y).unwrap();
        ys.extend_from_slice(&y);
        for (k, cm) in c_max.iter_mut().enumerate() {
            if let Some(ck) = c.get(k * spec.hidden..(k + 1) * spec.hidden) {
                *cm = ck.iter().fold(*cm, |a, v| a.max(v.abs()));
            }
        }
    }
    (ys, c_max)
}

/// A model of shape `spec`, quantized with the ranges its float model meets on `xs`.
fn stack_case(spec: &Spec, seed: u64, xs: &[f32]) -> (Vec<f32>, OwnedStack) {
    let p = float_params(spec, seed);
    let (_, c_max) = float_run(spec, &p, xs);
    let q = OwnedStack::quantize(spec, &p, 1.0, &c_max);
    (p, q)
}

/// The shapes the stack tests run: GRU of 1 and 2 layers, LSTM and tanh RNN of 2, GRU of 3.
fn stack_specs() -> Vec<Spec> {
    let s = |cell, layers| Spec {
        layers,
        ..Spec::new(cell, I, H, O)
    };
    vec![
        s(CellKind::Gru, 1),
        s(CellKind::Gru, 2),
        s(CellKind::Lstm, 2),
        s(CellKind::RnnTanh, 2),
        s(CellKind::Gru, 3),
    ]
}

#[test]
fn gru_and_stacked_steps_are_the_documented_scheme_bit_for_bit() {
    let xs = inputs(T * I, 21);
    for (n, spec) in stack_specs().iter().enumerate() {
        let (_, q) = stack_case(spec, 30 + n as u64, &xs);
        let layers = q.layer_views();
        let m = q.view(&layers);
        m.check().unwrap();
        let len = m.state_len();
        let (mut h, mut c, mut y) = (vec![0i8; len], vec![0i16; len], vec![0f32; O]);
        let (mut rh, mut rc, mut ry) = (vec![0i8; len], vec![0i16; len], vec![0f32; O]);
        let mut scratch = vec![0u32; m.scratch_len()];
        let mut xq = vec![0i8; I];
        let mut moved = vec![false; spec.layers];
        for x in inputs(T * I, 12).chunks(I) {
            m.quantize_input(x, &mut xq).unwrap();
            m.step_q(&xq, &mut h, &mut c, &mut scratch, &mut y).unwrap();
            reference_stack(&m, &xq, &mut rh, &mut rc, &mut ry);
            assert_eq!(h, rh, "{spec:?} h");
            assert_eq!(c, rc, "{spec:?} c");
            assert_eq!(
                y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                ry.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{spec:?} y"
            );
            for (k, mv) in moved.iter_mut().enumerate() {
                *mv |= h[k * H..(k + 1) * H].iter().any(|&v| v.abs() > 20);
            }
        }
        assert!(
            moved.iter().all(|&m| m),
            "{spec:?}: a layer's state never left zero"
        );
        // A one-layer model is the same as a QModel of that layer.
        if spec.layers == 1 {
            let one = quant::QModel {
                x_scale: m.x_scale,
                layer: layers[0],
                head: m.head,
            };
            let s = one.as_stack();
            assert_eq!(s.state_len(), H);
            let mut st = quant::QState::<H>::zero();
            let (mut h1, mut c1) = (vec![0i8; H], vec![0i16; H]);
            for x in xs.chunks(I).take(10) {
                let x: &[f32; I] = x.try_into().unwrap();
                let a: [f32; O] = one.step(x, &mut st).unwrap();
                s.quantize_input(x, &mut xq).unwrap();
                s.step_q(&xq, &mut h1, &mut c1, &mut scratch, &mut y)
                    .unwrap();
                assert_eq!(
                    a.map(f32::to_bits).to_vec(),
                    y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
                assert_eq!((st.h.to_vec(), st.c.to_vec()), (h1.clone(), c1.clone()));
            }
        }
    }
}

#[test]
fn typed_stack_step_equals_slice_step() {
    const L: usize = 2;
    let xs = inputs(T * I, 22);
    for cell in [CellKind::Gru, CellKind::Lstm] {
        let spec = Spec {
            layers: L,
            ..Spec::new(cell, I, H, O)
        };
        let (_, q) = stack_case(&spec, 40, &xs);
        let layers = q.layer_views();
        let m = q.view(&layers);
        let mut st = QStackState::<L, H>::zero();
        let (mut h, mut c, mut xq, mut y) = (
            vec![0i8; L * H],
            vec![0i16; L * H],
            vec![0i8; I],
            vec![0f32; O],
        );
        let mut scratch = vec![0u32; m.scratch_len()];
        for x in xs.chunks(I) {
            let yt: [f32; O] = m
                .step::<I, H, L, O>(x.try_into().unwrap(), &mut st)
                .unwrap();
            m.quantize_input(x, &mut xq).unwrap();
            m.step_q(&xq, &mut h, &mut c, &mut scratch, &mut y).unwrap();
            assert_eq!(
                yt.map(f32::to_bits).to_vec(),
                y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            assert_eq!(st.h.as_flattened(), &h[..]);
            assert_eq!(st.c.as_flattened(), &c[..]);
        }
        // Sizes in the types that do not match: an error, not a panic.
        let mut s3 = QStackState::<3, H>::zero();
        assert!(m.step::<I, H, 3, O>(&[0.0; I], &mut s3).is_err());
        let mut s5 = QStackState::<L, 5>::zero();
        assert!(m.step::<I, 5, L, O>(&[0.0; I], &mut s5).is_err());
    }
}

/// int8 against f32 on the same model and inputs (inputs in [-1, 1], calibrated on them; weights
/// U(-1/√H, 1/√H), H = 14, T = 40): the head's outputs and every layer's h within 0.015. Measured
/// (max |y| / max |h| error): GRU x1 0.0031 / 0.0048, GRU x2 0.0052 / 0.0068, LSTM x2
/// 0.0036 / 0.0052, tanh RNN x2 0.0050 / 0.0104, GRU x3 0.0039 / 0.0068.
#[test]
fn quantized_stacks_follow_their_float_models() {
    let xs = inputs(T * I, 23);
    for spec in stack_specs() {
        let (p, q) = stack_case(&spec, 50, &xs);
        let (ys, _) = float_run(&spec, &p, &xs);
        let layers = q.layer_views();
        let m = q.view(&layers);
        let fm = Model::new(spec, &p).unwrap();
        let n = spec.state_len(1);
        let (mut hf, mut cf) = (
            vec![0f32; n],
            vec![0f32; if spec.cell.has_c() { n } else { 0 }],
        );
        let (mut sf, mut yf) = (vec![0f32; fm.step_scratch_len()], vec![0f32; O]);
        let (mut h, mut c, mut y) = (vec![0i8; n], vec![0i16; n], vec![0f32; O]);
        let (mut xq, mut scratch) = (vec![0i8; I], vec![0u32; m.scratch_len()]);
        let (mut wy, mut wh) = (0f32, 0f32);
        for (t, x) in xs.chunks(I).enumerate() {
            fm.step(x, &mut hf, &mut cf, &mut sf, &mut yf).unwrap();
            assert_eq!(&yf[..], &ys[t * O..(t + 1) * O]);
            m.quantize_input(x, &mut xq).unwrap();
            m.step_q(&xq, &mut h, &mut c, &mut scratch, &mut y).unwrap();
            for (a, b) in yf.iter().zip(&y) {
                wy = wy.max((a - b).abs());
            }
            for (a, &b) in hf.iter().zip(&h) {
                wh = wh.max((a - b as f32 / 128.0).abs());
            }
        }
        eprintln!(
            "int8 vs f32: {:?} x{}: max |y| error {wy:.4}, max |h| error {wh:.4}",
            spec.cell, spec.layers
        );
        assert!(wy < 0.015 && wh < 0.015, "{spec:?}: y {wy}, h {wh}");
    }
}

#[test]
fn stacks_the_integer_step_cannot_stream_are_refused() {
    let bi = Spec {
        layers: 2,
        bidirectional: true,
        ..Spec::new(CellKind::Gru, I, H, O)
    };
    let p = float_params(&bi, 1);
    assert!(matches!(
        float_layer(&bi, &p, 0),
        Err(Error::Invalid { .. })
    ));
    assert!(quantize_stack(&bi, &p, 0.01, &mut [], &mut []).is_err());
    let relu = Spec::new(CellKind::RnnRelu, I, H, O);
    let p = float_params(&relu, 1);
    assert!(matches!(
        float_layer(&relu, &p, 0),
        Err(Error::Invalid { .. })
    ));
    // A stack whose layers do not chain, an empty stack, a short state: errors.
    let spec = Spec {
        layers: 2,
        ..Spec::new(CellKind::Gru, I, H, O)
    };
    let (_, q) = stack_case(&spec, 2, &inputs(T * I, 1));
    let layers = q.layer_views();
    let good = q.view(&layers);
    good.check().unwrap();
    let mut bad = layers.clone();
    bad[1].inputs = I;
    assert!(q.view(&bad).check().is_err());
    assert_eq!(
        q.view(&[]).check(),
        Err(Error::Invalid { what: "no layer" })
    );
    let (mut h, mut c, mut y) = (vec![0i8; 2 * H], vec![0i16; 2 * H - 1], vec![0f32; O]);
    let mut scratch = vec![0u32; good.scratch_len()];
    assert!(
        good.step_q(&[0; I], &mut h, &mut c, &mut scratch, &mut y)
            .is_err()
    );
}

/// The host's `QuantModel` of a GRU, a 2-layer LSTM and a 2-layer GRU: calibrated by the host
/// (`Ranges::of` over the core's f32 engine: max |x|, max |c| per LSTM layer), it is exactly the
/// core's `quantize_stack` / `quantize_head` of those ranges; saved and read back it is the same
/// model; and its `run` over a sequence equals the core's typed `QStack::step` (and the
/// independent reference) bit for bit, outputs and every layer's state.
#[test]
fn host_quantize_save_read_run_is_the_cores_stack_step_bit_for_bit() {
    const L: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let xs = inputs(T * I, 24);
    for (n, (cell, layers)) in [(CellKind::Gru, 1), (CellKind::Lstm, 2), (CellKind::Gru, 2)]
        .into_iter()
        .enumerate()
    {
        let spec = Spec {
            layers,
            ..Spec::new(cell, I, H, O)
        };
        let p = float_params(&spec, 60 + n as u64);
        let float = DynModel::new(spec, p.clone(), Default::default()).unwrap();
        let ranges = Ranges::of(&float, [xs.as_slice()]).unwrap();
        let (_, c_max) = float_run(&spec, &p, &xs);
        assert_eq!(ranges.c_max, c_max, "{spec:?}: per-layer max |c|");
        let q = QuantModel::quantize(&float, &ranges).unwrap();
        // The core's quantization of the same ranges.
        let core = OwnedStack::quantize(&spec, &p, ranges.x_max, &ranges.c_max);
        assert_eq!(q.x_scale.to_bits(), core.x_scale.to_bits());
        assert_eq!(q.layers.len(), core.layers.len());
        for (a, b) in q.layers.iter().zip(&core.layers) {
            assert_eq!((&a.w_ih, &a.w_hh), (&b.w_ih, &b.w_hh));
            assert_eq!((&a.mul_ih, &a.mul_hh), (&b.mul_ih, &b.mul_hh));
            assert_eq!((&a.b_ih, &a.b_hh), (&b.b_ih, &b.b_hh));
            assert_eq!((&a.s_ih, &a.s_hh), (&b.s_ih, &b.s_hh));
            assert_eq!((a.shift, a.c_frac), (b.shift, b.c_frac));
        }
        assert_eq!(
            (&q.head_weight, &q.head_scale, &q.head_bias),
            (&core.head_w, &core.head_scale, &core.head_bias)
        );
        // Save, read back.
        let path = dir.path().join(format!("q{n}.safetensors"));
        q.save(&path, &[("task", "test".into())]).unwrap();
        let (back, meta) = QuantModel::read(&path).unwrap();
        assert_eq!(back, q);
        assert_eq!(meta["layers"], layers.to_string());
        // `run` over the whole sequence == the core's stack step, step by step.
        let mut state = back.zero_state();
        let y = back.run(&xs, &mut state).unwrap();
        let core_layers = core.layer_views();
        let m = core.view(&core_layers);
        let len = m.state_len();
        let (mut rh, mut rc, mut ry) = (vec![0i8; len], vec![0i16; len], vec![0f32; O]);
        let mut xq = vec![0i8; I];
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        if layers == L {
            let mut st = QStackState::<L, H>::zero();
            for (x, y_t) in xs.chunks(I).zip(y.chunks(O)) {
                let yt: [f32; O] = m
                    .step::<I, H, L, O>(x.try_into().unwrap(), &mut st)
                    .unwrap();
                assert_eq!(bits(&yt), bits(y_t), "{spec:?}");
            }
            assert_eq!(st.h.as_flattened(), &state.h[..]);
            assert_eq!(st.c.as_flattened(), &state.c[..]);
        }
        for (x, y_t) in xs.chunks(I).zip(y.chunks(O)) {
            m.quantize_input(x, &mut xq).unwrap();
            reference_stack(&m, &xq, &mut rh, &mut rc, &mut ry);
            assert_eq!(bits(&ry), bits(y_t), "{spec:?}");
        }
        assert_eq!((rh, rc), (state.h.clone(), state.c.clone()), "{spec:?}");
    }
}
