//! int8 models on the host: a trained float model quantized with the core's scheme
//! (`tinyrnn::quant`, see its module doc), calibrated on data, and run with the core's integer
//! step: the host computes exactly what the device computes.
//!
//! * [`Ranges`]: calibration: max |x| and max |c| of the float model over sequences of data.
//! * [`QuantModel`]: the quantized parameters, owned; [`QuantModel::view`] is the core's
//!   [`QModel`]; [`QuantModel::run`] steps it over a sequence like [`DynModel::run`].

use anyhow::{Result, anyhow, bail};
use tinyrnn::quant::{self, FloatLayer, QLayer, QLayerMut, QLinear, QModel};

use crate::infer::{DynModel, DynState};
use crate::net::CellKind;

/// What calibration measured: the largest |input| and |cell state| the float model met.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ranges {
    /// max |x| over every input value.
    pub x_max: f32,
    /// max |c| over every step and unit (0 for a tanh RNN).
    pub c_max: f32,
}

impl Ranges {
    /// Runs `model` over one sequence `x` (T·I values) from the zero state, step by step, and
    /// widens the ranges by what it meets.
    pub fn observe(&mut self, model: &DynModel, x: &[f32]) -> Result<()> {
        let (i, _, _) = model.sizes();
        let mut state = model.zero_state();
        for x_t in x.chunks(i.max(1)) {
            model.run(x_t, &mut state)?;
            self.widen(x_t, &state);
        }
        Ok(())
    }

    /// Widens the ranges by one step's input and the state after it.
    pub fn widen(&mut self, x: &[f32], state: &DynState) {
        let amax = |m: f32, v: &[f32]| v.iter().fold(m, |m, v| m.max(v.abs()));
        self.x_max = amax(self.x_max, x);
        self.c_max = amax(self.c_max, state.c());
    }

    /// The calibrated ranges of `model` over `sequences` (each T·I values).
    pub fn of<'a>(
        model: &DynModel,
        sequences: impl IntoIterator<Item = &'a [f32]>,
    ) -> Result<Self> {
        let mut r = Self::default();
        for x in sequences {
            r.observe(model, x)?;
        }
        if !(r.x_max.is_finite() && r.c_max.is_finite()) {
            bail!("calibration met a non-finite input or cell state");
        }
        Ok(r)
    }
}

/// The core's cell for the host's.
fn core_cell(cell: CellKind) -> quant::CellKind {
    match cell {
        CellKind::Lstm => quant::CellKind::Lstm,
        CellKind::Rnn => quant::CellKind::Rnn,
    }
}

/// A quantized model, owned (see the core's `quant` module doc for every symbol).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantModel {
    /// LSTM or tanh RNN.
    pub cell: CellKind,
    /// `(I, H, O)`.
    pub sizes: (usize, usize, usize),
    /// `s_x`.
    pub x_scale: f32,
    /// `S`.
    pub shift: u32,
    /// `F` (LSTM).
    pub c_frac: u32,
    /// `Wq_ih` (G·H, I).
    pub w_ih: Vec<i8>,
    /// `Wq_hh` (G·H, H).
    pub w_hh: Vec<i8>,
    /// `s_ih` (G·H): row scales, for dequantization (the step does not read them).
    pub s_ih: Vec<f32>,
    /// `s_hh` (G·H).
    pub s_hh: Vec<f32>,
    /// `M_ih` (G·H).
    pub mul_ih: Vec<i32>,
    /// `M_hh` (G·H).
    pub mul_hh: Vec<i32>,
    /// `B_ih` (G·H).
    pub b_ih: Vec<i32>,
    /// `B_hh` (G·H).
    pub b_hh: Vec<i32>,
    /// Head `Wq` (O, H).
    pub head_weight: Vec<i8>,
    /// Head `s[o] / 128` (O).
    pub head_scale: Vec<f32>,
    /// Head bias (O), float.
    pub head_bias: Vec<f32>,
}

/// The state of one sequence for the integer step: `h` (int8) and `c` (i16, LSTM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantState {
    /// Hidden state, scale 1/128.
    pub h: Vec<i8>,
    /// Cell state, `c_frac` fraction bits (all zero for a tanh RNN).
    pub c: Vec<i16>,
}

impl QuantModel {
    /// Quantizes `model` with the calibrated `ranges`.
    pub fn quantize(model: &DynModel, ranges: Ranges) -> Result<Self> {
        let (i, h, o) = model.sizes();
        let cell = model.cell();
        let rows = crate::modelfile::gates(cell) * h;
        let [w_ih_f, w_hh_f, b_ih_f, b_hh_f, head_w_f, head_b_f] = model.tensors();
        let x_scale = if ranges.x_max > 0.0 {
            ranges.x_max / 127.0
        } else {
            1.0
        };
        let mut q = Self {
            cell,
            sizes: (i, h, o),
            x_scale,
            shift: 0,
            c_frac: quant::c_frac_for(ranges.c_max),
            w_ih: vec![0; rows * i],
            w_hh: vec![0; rows * h],
            s_ih: vec![0.0; rows],
            s_hh: vec![0.0; rows],
            mul_ih: vec![0; rows],
            mul_hh: vec![0; rows],
            b_ih: vec![0; rows],
            b_hh: vec![0; rows],
            head_weight: vec![0; o * h],
            head_scale: vec![0.0; o],
            head_bias: head_b_f.to_vec(),
        };
        let float = FloatLayer {
            cell: core_cell(cell),
            inputs: i,
            hidden: h,
            w_ih: w_ih_f,
            w_hh: w_hh_f,
            b_ih: b_ih_f,
            b_hh: b_hh_f,
        };
        let out = QLayerMut {
            w_ih: &mut q.w_ih,
            w_hh: &mut q.w_hh,
            s_ih: &mut q.s_ih,
            s_hh: &mut q.s_hh,
            mul_ih: &mut q.mul_ih,
            mul_hh: &mut q.mul_hh,
            b_ih: &mut q.b_ih,
            b_hh: &mut q.b_hh,
        };
        q.shift =
            quant::quantize_layer(&float, x_scale, out).map_err(|e| anyhow!("quantizing: {e}"))?;
        quant::quantize_rows(head_w_f, h, &mut q.head_weight, &mut q.head_scale)
            .map_err(|e| anyhow!("quantizing the head: {e}"))?;
        let h_scale = 1.0 / (1u32 << quant::H_FRAC) as f32;
        q.head_scale.iter_mut().for_each(|s| *s *= h_scale);
        q.view()
            .check()
            .map_err(|e| anyhow!("quantized model: {e}"))?;
        Ok(q)
    }

    /// The core's view of it.
    pub fn view(&self) -> QModel<'_> {
        let (i, h, o) = self.sizes;
        QModel {
            x_scale: self.x_scale,
            layer: QLayer {
                cell: core_cell(self.cell),
                inputs: i,
                hidden: h,
                w_ih: &self.w_ih,
                w_hh: &self.w_hh,
                mul_ih: &self.mul_ih,
                mul_hh: &self.mul_hh,
                b_ih: &self.b_ih,
                b_hh: &self.b_hh,
                shift: self.shift,
                c_frac: self.c_frac,
            },
            head: QLinear {
                inputs: h,
                outputs: o,
                weight: &self.head_weight,
                scale: &self.head_scale,
                bias: &self.head_bias,
            },
        }
    }

    /// The zero state.
    pub fn zero_state(&self) -> QuantState {
        let h = self.sizes.1;
        QuantState {
            h: vec![0; h],
            c: vec![0; h],
        }
    }

    /// Runs `x` (T·I values, step by step) from `state`, which ends as the state after the last
    /// step; returns the head's outputs (T·O values). The core's integer step, as on the device.
    pub fn run(&self, x: &[f32], state: &mut QuantState) -> Result<Vec<f32>> {
        let (i, _, o) = self.sizes;
        if i == 0 || !x.len().is_multiple_of(i) {
            bail!(
                "{} input values are not a whole number of steps of {i}",
                x.len()
            );
        }
        let m = self.view();
        let (mut xq, mut scratch) = (vec![0i8; i], vec![0u32; m.scratch_len()]);
        let mut y = vec![0.0f32; x.len() / i * o];
        for (x_t, y_t) in x.chunks_exact(i).zip(y.chunks_exact_mut(o)) {
            let step = m
                .quantize_input(x_t, &mut xq)
                .and_then(|_| m.step_q(&xq, &mut state.h, &mut state.c, &mut scratch, y_t));
            step.map_err(|e| anyhow!("int8 step: {e}"))?;
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyrnn::{LstmModel, Params, rng};

    /// A quantized random LSTM follows its float model, and `run` over a sequence equals `run`
    /// step by step (the state carries).
    #[test]
    fn quantized_run_follows_float_and_carries_state() {
        const I: usize = 2;
        const H: usize = 9;
        const O: usize = 3;
        let mut m: Box<LstmModel<I, H, O>> = crate::net::boxed_zeroed();
        m.init(&mut rng(5), Some(1.0));
        let flat = m.as_flat();
        let t: Vec<&[f32]> = LstmModel::<I, H, O>::TENSORS
            .iter()
            .map(|t| &flat[t.offset..t.offset + t.shape.iter().product::<usize>()])
            .collect();
        let d = DynModel::from_tensors(CellKind::Lstm, (I, H, O), t.try_into().unwrap()).unwrap();
        let x: Vec<f32> = (0..60).map(|k| ((k as f32) * 0.37).sin()).collect();
        let r = Ranges::of(&d, [x.as_slice()]).unwrap();
        assert!(r.x_max > 0.9 && r.c_max > 0.0);
        let q = QuantModel::quantize(&d, r).unwrap();
        let yf = d.run(&x, &mut d.zero_state()).unwrap();
        let mut s = q.zero_state();
        let yq = q.run(&x, &mut s).unwrap();
        let worst = yf
            .iter()
            .zip(&yq)
            .fold(0f32, |w, (a, b)| w.max((a - b).abs()));
        assert!(worst < 0.03, "int8 vs f32: {worst}");
        let mut s2 = q.zero_state();
        let mut y2 = Vec::new();
        for x_t in x.chunks(I) {
            y2.extend(q.run(x_t, &mut s2).unwrap());
        }
        assert_eq!(yq, y2);
        assert_eq!(s, s2);
    }
}
