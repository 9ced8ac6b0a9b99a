//! int8 models on the host: a trained float model quantized with the core's scheme
//! (`tinyrnn::quant`, see its module doc), calibrated on data, and run with the core's integer
//! step: the host computes exactly what the device computes.
//!
//! * [`Ranges`]: calibration: max |x| and max |c| of the float model over sequences of data.
//! * [`QuantModel`]: the quantized parameters, owned; [`QuantModel::view`] is the core's
//!   [`QModel`]; [`QuantModel::run`] steps it over a sequence like [`DynModel::run`].
//! * Files: [`QuantModel::save`], [`QuantModel::read`] / [`QuantModel::parse`]: the int8 model
//!   file (layout and refusals in [`crate::modelfile`], "Int8 models"; the scheme's values are
//!   checked here).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use tinyrnn::quant::{self, FloatLayer, QLayer, QLayerMut, QLinear, QModel};

use crate::infer::{DynModel, DynState};
use crate::modelfile::{
    CHECKSUM_KEY, Int8File, QUANT_KEY, RawTensor, Values, int8_cell, int8_tensors,
};
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
    /// `L`, the layer's shift (0 unless weights and inputs are large).
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
        let spec = model.spec();
        let cell = int8_cell(spec, "the model")?;
        let rows = spec.cell.gates() * h;
        let params = model.params();
        let t: Vec<&[f32]> = spec
            .tensors()
            .map(|t| &params[t.offset..t.offset + t.len()])
            .collect();
        let [w_ih_f, w_hh_f, b_ih_f, b_hh_f, head_w_f, head_b_f] = t[..] else {
            bail!(
                "{}: not one layer and a head",
                crate::modelfile::describe(spec)
            );
        };
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

// ---- The int8 model file --------------------------------------------------------------------

/// The metadata entries of the scheme's scalars.
const X_SCALE_KEY: &str = "x_scale";
const SHIFT_KEY: &str = "shift";
const C_FRAC_KEY: &str = "c_frac";

impl QuantModel {
    /// The file's tensors (see [`crate::modelfile`], "Int8 models"), in layout order.
    fn raw_tensors(&self) -> Vec<RawTensor> {
        let (i, h, o) = self.sizes;
        let t = int8_tensors(&tinyrnn::Spec::new(
            crate::modelfile::core_cell(self.cell),
            i,
            h,
            o,
        ));
        let shape = |k: usize| t[k].shape.clone();
        vec![
            RawTensor::i8(&t[0].name, shape(0), &self.w_ih),
            RawTensor::i8(&t[1].name, shape(1), &self.w_hh),
            RawTensor::f32(&t[2].name, shape(2), &self.s_ih),
            RawTensor::f32(&t[3].name, shape(3), &self.s_hh),
            RawTensor::i32(&t[4].name, shape(4), &self.mul_ih),
            RawTensor::i32(&t[5].name, shape(5), &self.mul_hh),
            RawTensor::i32(&t[6].name, shape(6), &self.b_ih),
            RawTensor::i32(&t[7].name, shape(7), &self.b_hh),
            RawTensor::i8(&t[8].name, shape(8), &self.head_weight),
            RawTensor::f32(&t[9].name, shape(9), &self.head_scale),
            RawTensor::f32(&t[10].name, shape(10), &self.head_bias),
        ]
    }

    /// The file's metadata: `metadata` (the float model's: task, cell, head; a `checksum` entry
    /// is dropped, this file has none), then the scheme's name and scalars, which win.
    fn file_metadata(&self, metadata: &[(&str, String)]) -> Vec<(String, String)> {
        metadata
            .iter()
            .filter(|(k, _)| *k != CHECKSUM_KEY)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .chain([
                (QUANT_KEY.into(), quant::SCHEME.into()),
                (X_SCALE_KEY.into(), format!("{:?}", self.x_scale)),
                (SHIFT_KEY.into(), self.shift.to_string()),
                (C_FRAC_KEY.into(), self.c_frac.to_string()),
            ])
            .collect()
    }

    /// The bytes of the file [`save`](Self::save) writes.
    pub fn to_bytes(&self, metadata: &[(&str, String)]) -> Result<Vec<u8>> {
        let meta = self.file_metadata(metadata);
        let meta: Vec<(&str, String)> = meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        crate::modelfile::encode(self.raw_tensors(), &meta, false)
    }

    /// Writes the int8 model file to `path` atomically (a temporary file renamed into place), the
    /// same bytes for the same model and metadata, whatever the metadata's order.
    pub fn save(&self, path: &Path, metadata: &[(&str, String)]) -> Result<()> {
        let meta = self.file_metadata(metadata);
        let meta: Vec<(&str, String)> = meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        crate::modelfile::save_tensors(path, self.raw_tensors(), &meta)
    }

    /// Reads the int8 model file at `path` (see [`parse`](Self::parse)); returns the model and
    /// the file's metadata.
    pub fn read(path: &Path) -> Result<(Self, HashMap<String, String>)> {
        let bytes = crate::modelfile::read_bytes(path)?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Checks the bytes of an int8 model file ([`Int8File::parse`]: tensors, dtypes, shapes),
    /// then the scheme's values: `x_scale` a finite positive f32, `shift` and `c_frac` in the
    /// scheme's ranges, and the whole model through the core's [`QModel::check`]. Each refusal is
    /// one line naming `source` and what is wrong.
    pub fn parse(bytes: &[u8], source: &str) -> Result<(Self, HashMap<String, String>)> {
        let mut file = Int8File::parse(bytes, source)?;
        let p = file.source().to_string();
        let meta = |key: &str| -> Result<&str> {
            file.metadata
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| anyhow!("{p}: metadata entry `{key}` is missing"))
        };
        let shown = |v: &str| crate::export::comment_text(v);
        let x_scale_text = meta(X_SCALE_KEY)?;
        let x_scale = match x_scale_text.parse::<f32>() {
            Ok(v) if v.is_finite() && v > 0.0 => v,
            _ => bail!(
                "{p}: metadata `{X_SCALE_KEY}` = `{}` is not a finite positive number",
                shown(x_scale_text)
            ),
        };
        let int_in = |key: &str, range: &std::ops::RangeInclusive<u32>| -> Result<u32> {
            let text = meta(key)?;
            match text.parse::<u32>() {
                Ok(v) if range.contains(&v) => Ok(v),
                _ => bail!(
                    "{p}: metadata `{key}` = `{}` is out of the scheme's range {}..={}",
                    shown(text),
                    range.start(),
                    range.end()
                ),
            }
        };
        let shift = int_in(SHIFT_KEY, &quant::SHIFTS)?;
        let c_frac = int_in(C_FRAC_KEY, &quant::C_FRACS)?;
        let cell = int8_cell(&file.spec, &p)?;
        let (i, h, o) = (file.spec.input, file.spec.hidden, file.spec.output);
        let names: Vec<String> = int8_tensors(&file.spec)
            .into_iter()
            .map(|t| t.name)
            .collect();
        let mut take = |k: usize| file.take(&names[k]);
        let (i8s, i32s, f32s) = (
            |v: Option<Values>| match v {
                Some(Values::I8(v)) => v,
                _ => Vec::new(),
            },
            |v: Option<Values>| match v {
                Some(Values::I32(v)) => v,
                _ => Vec::new(),
            },
            |v: Option<Values>| match v {
                Some(Values::F32(v)) => v,
                _ => Vec::new(),
            },
        );
        let q = Self {
            cell,
            sizes: (i, h, o),
            x_scale,
            shift,
            c_frac,
            w_ih: i8s(take(0)),
            w_hh: i8s(take(1)),
            s_ih: f32s(take(2)),
            s_hh: f32s(take(3)),
            mul_ih: i32s(take(4)),
            mul_hh: i32s(take(5)),
            b_ih: i32s(take(6)),
            b_hh: i32s(take(7)),
            head_weight: i8s(take(8)),
            head_scale: f32s(take(9)),
            head_bias: f32s(take(10)),
        };
        q.view().check().map_err(|e| {
            anyhow!(
                "{p}: the model does not fit the scheme {}: {e}",
                quant::SCHEME
            )
        })?;
        Ok((q, file.metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyrnn::{LstmModel, Params, rng};

    /// A quantized random model of `cell` with (I, H, O) = (2, 5, 3), and its float model.
    fn quantized(cell: CellKind, seed: u64) -> (DynModel, QuantModel) {
        use tinyrnn::RnnModel;
        let flat: Vec<Vec<f32>> = match cell {
            CellKind::Lstm => {
                let mut m: Box<LstmModel<2, 5, 3>> = crate::net::boxed_zeroed();
                m.init(&mut rng(seed), Some(1.0));
                let f = m.as_flat();
                LstmModel::<2, 5, 3>::TENSORS
                    .iter()
                    .map(|t| f[t.offset..t.offset + t.len()].to_vec())
                    .collect()
            }
            CellKind::Rnn => {
                let mut m: Box<RnnModel<2, 5, 3>> = crate::net::boxed_zeroed();
                m.init(&mut rng(seed));
                let f = m.as_flat();
                RnnModel::<2, 5, 3>::TENSORS
                    .iter()
                    .map(|t| f[t.offset..t.offset + t.len()].to_vec())
                    .collect()
            }
        };
        let t: Vec<&[f32]> = flat.iter().map(Vec::as_slice).collect();
        let d = DynModel::from_tensors(cell, (2, 5, 3), t.try_into().unwrap()).unwrap();
        let x: Vec<f32> = (0..40).map(|k| ((k as f32) * 0.29).cos() * 1.5).collect();
        let q = QuantModel::quantize(&d, Ranges::of(&d, [x.as_slice()]).unwrap()).unwrap();
        (d, q)
    }

    /// A saved int8 model reads back identical, with its metadata and the scheme's entries; the
    /// bytes do not depend on the metadata's order, and saving what was read gives them again.
    #[test]
    fn int8_files_round_trip_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        for cell in [CellKind::Lstm, CellKind::Rnn] {
            let (_, q) = quantized(cell, 3);
            let meta = [
                ("task", "sine".to_string()),
                ("head", "linear".to_string()),
                ("checksum", "crc32:00000000".to_string()),
            ];
            let (a, b, c) = (
                dir.path().join("a"),
                dir.path().join("b"),
                dir.path().join("c"),
            );
            q.save(&a, &meta).unwrap();
            let reversed: Vec<_> = meta.iter().rev().cloned().collect();
            q.save(&b, &reversed).unwrap();
            let bytes = std::fs::read(&a).unwrap();
            assert_eq!(bytes, std::fs::read(&b).unwrap());
            assert_eq!(bytes, q.to_bytes(&meta).unwrap());
            let (back, m) = QuantModel::read(&a).unwrap();
            assert_eq!(back, q);
            assert_eq!(m.get("task").map(String::as_str), Some("sine"));
            assert_eq!(m.get(QUANT_KEY).map(String::as_str), Some(quant::SCHEME));
            assert_eq!(m.get("x_scale"), Some(&format!("{:?}", q.x_scale)));
            assert!(!m.contains_key(CHECKSUM_KEY));
            let m: Vec<(&str, String)> = m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            back.save(&c, &m).unwrap();
            assert_eq!(bytes, std::fs::read(&c).unwrap());
        }
    }

    /// The float reader refuses an int8 file as one, and the int8 reader a float file.
    #[test]
    fn each_reader_names_the_other_kind() {
        let dir = tempfile::tempdir().unwrap();
        let (_, q) = quantized(CellKind::Lstm, 4);
        let path = dir.path().join("q.safetensors");
        q.save(&path, &[]).unwrap();
        let e = format!("{:#}", crate::infer::DynModel::load(&path).unwrap_err());
        assert!(
            e.contains("q.safetensors is an int8 model (quantization `int8-rowwise-v1`)"),
            "{e}"
        );
        let mut m: Box<LstmModel<1, 2, 1>> = crate::net::boxed_zeroed();
        m.init(&mut rng(1), None);
        let f = dir.path().join("f.safetensors");
        crate::modelfile::save(&f, &*m, &[]).unwrap();
        let e = format!("{:#}", QuantModel::read(&f).unwrap_err());
        assert!(
            e.contains("f.safetensors is a float (F32) model, not an int8 one"),
            "{e}"
        );
    }

    /// A quantized random LSTM follows its float model, and `run` over a sequence equals `run`
    /// step by step (the state carries).
    #[test]
    fn quantized_run_follows_float_and_carries_state() {
        const I: usize = 2;
        const H: usize = 9;
        const O: usize = 3;
        let spec = tinyrnn::Spec::new(tinyrnn::CellKind::Lstm, I, H, O);
        let mut m = crate::net::Net::new(spec).unwrap();
        m.init(&mut rng(5), Some(1.0));
        let d = crate::tasks::int8::dyn_model(&m).unwrap();
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
