//! int8 models on the host: a trained float model quantized with the core's scheme
//! (`tinyrnn::quant`, see its module doc), calibrated on data, and run with the core's integer
//! step: the host computes exactly what the device computes.
//!
//! Every model the core's scheme takes: L unidirectional layers of LSTM, GRU or tanh RNN and a
//! linear head ([`int8_supported`] refuses the rest, one line). One code path whatever L: the
//! model is the core's [`QStack`] (a one-layer model is a stack of one).
//!
//! * [`Ranges`]: calibration: max |x| and max |c| per layer of the float model (the core's
//!   engine, [`DynModel`]) over sequences of data.
//! * [`QuantModel`]: the quantized parameters, owned; [`QuantModel::view`] is the core's
//!   [`QStack`] (over [`QuantModel::layer_views`]); [`QuantModel::run`] steps it over a sequence
//!   like [`DynModel::run`].
//! * Files: [`QuantModel::save`], [`QuantModel::read`] / [`QuantModel::parse`]: the int8 model
//!   file (layout and refusals in [`crate::modelfile`], "Int8 models"; the scheme's values are
//!   checked here).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, anyhow, bail};
use tinyrnn::quant::{self, QLayer, QLayerMut, QLinear, QModel, QStack};
use tinyrnn::{CellKind, Spec};

use crate::infer::{DynModel, DynState};
use crate::modelfile::{
    CELL_KEY, CHECKSUM_KEY, Int8File, LAYERS_KEY, QUANT_KEY, RawTensor, Values, describe,
    int8_supported, int8_tensors,
};

/// What calibration measured: the largest |input|, and the largest |cell state| of each layer,
/// that the float model met.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranges {
    /// max |x| over every input value.
    pub x_max: f32,
    /// max |c| over every step and unit, per layer, bottom first (0 for a layer without a cell
    /// state: GRU, tanh RNN).
    pub c_max: Vec<f32>,
}

impl Ranges {
    /// Runs `model` over one sequence `x` (T·I values) from the zero state, step by step, and
    /// widens the ranges by what it meets.
    pub fn observe(&mut self, model: &DynModel, x: &[f32]) -> Result<()> {
        let s = model.spec();
        let mut state = model.zero_state();
        for x_t in x.chunks(s.input.max(1)) {
            model.run(x_t, &mut state)?;
            self.widen(x_t, &state, s.layers);
        }
        Ok(())
    }

    /// Widens the ranges by one step's input and the state after it (of a model of `layers`
    /// layers: `state.c()` is (L, H), or empty).
    pub fn widen(&mut self, x: &[f32], state: &DynState, layers: usize) {
        let amax = |m: f32, v: &[f32]| v.iter().fold(m, |m, v| m.max(v.abs()));
        self.x_max = amax(self.x_max, x);
        if self.c_max.len() < layers {
            self.c_max.resize(layers, 0.0);
        }
        let c = state.c();
        let h = c.len() / layers.max(1);
        if h > 0 {
            for (m, c_k) in self.c_max.iter_mut().zip(c.chunks_exact(h)) {
                *m = amax(*m, c_k);
            }
        }
    }

    /// The calibrated ranges of `model` over `sequences` (each T·I values).
    pub fn of<'a>(
        model: &DynModel,
        sequences: impl IntoIterator<Item = &'a [f32]>,
    ) -> Result<Self> {
        let mut r = Self {
            x_max: 0.0,
            c_max: vec![0.0; model.spec().layers],
        };
        for x in sequences {
            r.observe(model, x)?;
        }
        if !(r.x_max.is_finite() && r.c_max.iter().all(|c| c.is_finite())) {
            bail!("calibration met a non-finite input or cell state");
        }
        Ok(r)
    }
}

/// The core's int8 cell of a cell the scheme takes ([`int8_supported`] refuses the ReLU RNN
/// before this is asked).
fn quant_cell(cell: CellKind) -> quant::CellKind {
    match cell {
        CellKind::Lstm => quant::CellKind::Lstm,
        CellKind::Gru => quant::CellKind::Gru,
        CellKind::RnnTanh | CellKind::RnnRelu => quant::CellKind::Rnn,
    }
}

/// One quantized recurrent layer, owned (see the core's `quant` module doc for every symbol);
/// G·H rows with G gates per unit.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantLayer {
    /// `Wq_ih` (G·H, I_k): I_0 = I, H above.
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
    /// `L`, the layer's shift (0 unless weights and inputs are large).
    pub shift: u32,
    /// `F` (LSTM; 15 for the other cells, which do not read it).
    pub c_frac: u32,
}

impl QuantLayer {
    /// A layer of `rows` gate rows over `inputs` inputs and `hidden` units, every value zero.
    fn zeros(rows: usize, inputs: usize, hidden: usize) -> Self {
        Self {
            w_ih: vec![0; rows * inputs],
            w_hh: vec![0; rows * hidden],
            s_ih: vec![0.0; rows],
            s_hh: vec![0.0; rows],
            mul_ih: vec![0; rows],
            mul_hh: vec![0; rows],
            b_ih: vec![0; rows],
            b_hh: vec![0; rows],
            shift: 0,
            c_frac: *quant::C_FRACS.end(),
        }
    }
}

/// A quantized model, owned: L unidirectional layers of one cell and the head (see the core's
/// `quant` module doc for every symbol).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantModel {
    /// The shape: cell (LSTM, GRU or tanh RNN), I, H, L, O; one direction.
    pub spec: Spec,
    /// `s_x`.
    pub x_scale: f32,
    /// The recurrent layers, bottom first.
    pub layers: Vec<QuantLayer>,
    /// Head `Wq` (O, H).
    pub head_weight: Vec<i8>,
    /// Head `s[o] / 128` (O).
    pub head_scale: Vec<f32>,
    /// Head bias (O), float.
    pub head_bias: Vec<f32>,
}

/// The state of one sequence for the integer step: `h` (int8) and `c` (i16), each (L, H).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantState {
    /// Hidden state, scale 1/128, (L, H).
    pub h: Vec<i8>,
    /// Per layer: the LSTM's cell state (that layer's `c_frac` fraction bits), the GRU's hidden
    /// state in Q0.15; all zero for a tanh RNN. (L, H).
    pub c: Vec<i16>,
}

impl QuantModel {
    /// Quantizes `model` with the calibrated `ranges` (max |c| of each layer); refuses, with one
    /// line, a model the scheme does not take ([`int8_supported`]).
    pub fn quantize(model: &DynModel, ranges: &Ranges) -> Result<Self> {
        let spec = *model.spec();
        int8_supported(&spec, "the model")?;
        let (hs, o, layers) = (spec.hidden, spec.output, spec.layers);
        if ranges.c_max.len() != layers {
            bail!(
                "the calibration has {} cell-state ranges for a model of {layers} layers",
                ranges.c_max.len()
            );
        }
        let params = model.params();
        let x_scale = quant::x_scale_for(ranges.x_max);
        let rows = spec.cell.gates() * hs;
        let mut q = Self {
            spec,
            x_scale,
            layers: (0..layers)
                .zip(&ranges.c_max)
                .map(|(k, &c_max)| QuantLayer {
                    c_frac: quant::c_frac_for(c_max),
                    ..QuantLayer::zeros(rows, spec.layer_input(k), hs)
                })
                .collect(),
            head_weight: vec![0; o * hs],
            head_scale: vec![0.0; o],
            head_bias: Vec::new(),
        };
        let mut shifts = vec![0u32; layers];
        let mut outs: Vec<QLayerMut<'_>> = q
            .layers
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
        quant::quantize_stack(&spec, params, x_scale, &mut outs, &mut shifts)
            .map_err(|e| anyhow!("quantizing {}: {e}", describe(&spec)))?;
        drop(outs);
        for (l, s) in q.layers.iter_mut().zip(shifts) {
            l.shift = s;
        }
        let hw = spec.head_offset();
        let (head_w, head_b) = params
            .get(hw..)
            .map(|p| p.split_at(o * hs))
            .ok_or_else(|| anyhow!("the model has no head"))?;
        quant::quantize_head(head_w, hs, &mut q.head_weight, &mut q.head_scale)
            .map_err(|e| anyhow!("quantizing the head: {e}"))?;
        q.head_bias = head_b.to_vec();
        let views = q.layer_views();
        q.view(&views)
            .check()
            .map_err(|e| anyhow!("quantized model: {e}"))?;
        Ok(q)
    }

    /// `(I, H, O)`.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.spec.input, self.spec.hidden, self.spec.output)
    }

    /// Each layer's shift `L`, bottom first.
    pub fn shifts(&self) -> Vec<u32> {
        self.layers.iter().map(|l| l.shift).collect()
    }

    /// Each layer's `F`, bottom first.
    pub fn c_fracs(&self) -> Vec<u32> {
        self.layers.iter().map(|l| l.c_frac).collect()
    }

    /// The core's view of each layer, bottom first (what [`view`](Self::view) stacks).
    pub fn layer_views(&self) -> Vec<QLayer<'_>> {
        let (cell, hs) = (quant_cell(self.spec.cell), self.spec.hidden);
        self.layers
            .iter()
            .enumerate()
            .map(|(k, l)| QLayer {
                cell,
                inputs: self.spec.layer_input(k),
                hidden: hs,
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

    /// The head's view.
    pub fn head_view(&self) -> QLinear<'_> {
        QLinear {
            inputs: self.spec.hidden,
            outputs: self.spec.output,
            weight: &self.head_weight,
            scale: &self.head_scale,
            bias: &self.head_bias,
        }
    }

    /// The core's view of the model over `layers` ([`layer_views`](Self::layer_views)):
    /// `let l = q.layer_views(); let m = q.view(&l);`.
    pub fn view<'a>(&'a self, layers: &'a [QLayer<'a>]) -> QStack<'a> {
        QStack {
            x_scale: self.x_scale,
            layers,
            head: self.head_view(),
        }
    }

    /// A one-layer model as the core's [`QModel`] (the firmware's one-layer type; the same step
    /// as the stack of it); `None` with more layers.
    pub fn one_layer(&self) -> Option<QModel<'_>> {
        match self.layer_views()[..] {
            [layer] => Some(QModel {
                x_scale: self.x_scale,
                layer,
                head: self.head_view(),
            }),
            _ => None,
        }
    }

    /// The zero state.
    pub fn zero_state(&self) -> QuantState {
        let n = self.spec.state_len(1);
        QuantState {
            h: vec![0; n],
            c: vec![0; n],
        }
    }

    /// Runs `x` (T·I values, step by step) from `state`, which ends as the state after the last
    /// step; returns the head's outputs (T·O values). The core's integer step, as on the device.
    pub fn run(&self, x: &[f32], state: &mut QuantState) -> Result<Vec<f32>> {
        let (i, _, o) = self.sizes();
        if i == 0 || !x.len().is_multiple_of(i) {
            bail!(
                "{} input values are not a whole number of steps of {i}",
                x.len()
            );
        }
        let layers = self.layer_views();
        let m = self.view(&layers);
        let (mut xq, mut scratch) = (vec![0i8; i], vec![0u32; m.scratch_len()]);
        let mut y = vec![0.0f32; x.len() / i * o]; // (T, O)
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

/// The metadata entries of the scheme's scalars (`shift`, `c_frac`: one value per layer,
/// comma-separated).
const X_SCALE_KEY: &str = "x_scale";
const SHIFT_KEY: &str = "shift";
const C_FRAC_KEY: &str = "c_frac";

/// Per-layer values as the file's metadata writes them (and `tinyrnn quantize` prints them):
/// comma-separated, bottom layer first.
pub fn comma_list(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl QuantModel {
    /// The file's tensors (see [`crate::modelfile`], "Int8 models"), in layout order.
    fn raw_tensors(&self) -> Vec<RawTensor> {
        let t = int8_tensors(&self.spec);
        let mut out = Vec::with_capacity(t.len());
        let mut specs = t.into_iter();
        let mut next = |make: &dyn Fn(&str, Vec<usize>) -> RawTensor| {
            if let Some(s) = specs.next() {
                out.push(make(&s.name, s.shape));
            }
        };
        for l in &self.layers {
            next(&|n, s| RawTensor::i8(n, s, &l.w_ih));
            next(&|n, s| RawTensor::i8(n, s, &l.w_hh));
            next(&|n, s| RawTensor::f32(n, s, &l.s_ih));
            next(&|n, s| RawTensor::f32(n, s, &l.s_hh));
            next(&|n, s| RawTensor::i32(n, s, &l.mul_ih));
            next(&|n, s| RawTensor::i32(n, s, &l.mul_hh));
            next(&|n, s| RawTensor::i32(n, s, &l.b_ih));
            next(&|n, s| RawTensor::i32(n, s, &l.b_hh));
        }
        next(&|n, s| RawTensor::i8(n, s, &self.head_weight));
        next(&|n, s| RawTensor::f32(n, s, &self.head_scale));
        next(&|n, s| RawTensor::f32(n, s, &self.head_bias));
        out
    }

    /// The file's metadata: `metadata` (the float model's: task, cell, head; a `checksum` entry
    /// is dropped, this file has none), then the scheme's name and values and the architecture
    /// (`cell`, `layers`), which win.
    fn file_metadata(&self, metadata: &[(&str, String)]) -> Vec<(String, String)> {
        let ours = [
            (QUANT_KEY, quant::SCHEME.to_string()),
            (X_SCALE_KEY, format!("{:?}", self.x_scale)),
            (SHIFT_KEY, comma_list(&self.shifts())),
            (C_FRAC_KEY, comma_list(&self.c_fracs())),
            (CELL_KEY, self.spec.cell.module().to_string()),
            (LAYERS_KEY, self.spec.layers.to_string()),
        ];
        metadata
            .iter()
            .filter(|(k, _)| *k != CHECKSUM_KEY && ours.iter().all(|(o, _)| o != k))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .chain(ours.iter().map(|(k, v)| (k.to_string(), v.clone())))
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

    /// Checks the bytes of an int8 model file ([`Int8File::parse`]: tensors, dtypes, shapes, the
    /// architecture), then the scheme's values: `x_scale` a finite positive f32, `shift` and
    /// `c_frac` one value per layer in the scheme's ranges, and the whole model through the
    /// core's [`QStack::check`]. Each refusal is one line naming `source` and what is wrong.
    pub fn parse(bytes: &[u8], source: &str) -> Result<(Self, HashMap<String, String>)> {
        let mut file = Int8File::parse(bytes, source)?;
        let p = file.source().to_string();
        let spec = file.spec;
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
        // One value per layer, each in `range`.
        let per_layer = |key: &str, range: &std::ops::RangeInclusive<u32>| -> Result<Vec<u32>> {
            let text = meta(key)?;
            let values = text
                .split(',')
                .map(|v| v.trim().parse::<u32>().ok().filter(|v| range.contains(v)))
                .collect::<Option<Vec<u32>>>();
            match values {
                Some(v) if v.len() == spec.layers => Ok(v),
                Some(v) => bail!(
                    "{p}: metadata `{key}` = `{}` has {} value{}, expected one per layer ({}, \
                     comma-separated)",
                    shown(text),
                    v.len(),
                    if v.len() == 1 { "" } else { "s" },
                    spec.layers
                ),
                None => bail!(
                    "{p}: metadata `{key}` = `{}` is out of the scheme's range {}..={}",
                    shown(text),
                    range.start(),
                    range.end()
                ),
            }
        };
        let shifts = per_layer(SHIFT_KEY, &quant::SHIFTS)?;
        let c_fracs = per_layer(C_FRAC_KEY, &quant::C_FRACS)?;
        let names: Vec<String> = int8_tensors(&spec).into_iter().map(|t| t.name).collect();
        let mut values = names.iter().map(|n| file.take(n));
        // The reader checked every dtype; a wrong one (not reached) gives an empty tensor, which
        // the core's check refuses.
        let mut next = || values.next().flatten();
        let as_i8 = |v: Option<Values>| match v {
            Some(Values::I8(v)) => v,
            _ => Vec::new(),
        };
        let as_i32 = |v: Option<Values>| match v {
            Some(Values::I32(v)) => v,
            _ => Vec::new(),
        };
        let as_f32 = |v: Option<Values>| match v {
            Some(Values::F32(v)) => v,
            _ => Vec::new(),
        };
        let mut layers = Vec::with_capacity(spec.layers);
        for (shift, c_frac) in shifts.into_iter().zip(c_fracs) {
            layers.push(QuantLayer {
                w_ih: as_i8(next()),
                w_hh: as_i8(next()),
                s_ih: as_f32(next()),
                s_hh: as_f32(next()),
                mul_ih: as_i32(next()),
                mul_hh: as_i32(next()),
                b_ih: as_i32(next()),
                b_hh: as_i32(next()),
                shift,
                c_frac,
            });
        }
        let q = Self {
            spec,
            x_scale,
            layers,
            head_weight: as_i8(next()),
            head_scale: as_f32(next()),
            head_bias: as_f32(next()),
        };
        let views = q.layer_views();
        q.view(&views).check().map_err(|e| {
            anyhow!(
                "{p}: the model does not fit the scheme {}: {e}",
                quant::SCHEME
            )
        })?;
        drop(views);
        Ok((q, file.metadata))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyrnn::{LstmModel, rng};

    /// A float model of `spec` (PyTorch's initialisation, seeded) and its quantization,
    /// calibrated on one sequence of inputs in [-1.5, 1.5].
    fn quantized(spec: Spec, seed: u64) -> (DynModel, QuantModel) {
        let mut m = crate::net::Net::new(spec).unwrap();
        m.init(&mut rng(seed), Some(1.0));
        let d = DynModel::new(spec, m.flat().to_vec(), HashMap::new()).unwrap();
        let x: Vec<f32> = (0..20 * spec.input)
            .map(|k| ((k as f32) * 0.29).cos() * 1.5)
            .collect();
        let q = QuantModel::quantize(&d, &Ranges::of(&d, [x.as_slice()]).unwrap()).unwrap();
        (d, q)
    }

    /// (I, H, O) = (2, 5, 3) of `cell` with `layers` layers.
    fn spec(cell: CellKind, layers: usize) -> Spec {
        Spec {
            layers,
            ..Spec::new(cell, 2, 5, 3)
        }
    }

    /// A saved int8 model reads back identical, with its metadata and the scheme's entries; the
    /// bytes do not depend on the metadata's order, and saving what was read gives them again.
    /// One layer and stacks, every cell.
    #[test]
    fn int8_files_round_trip_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        for (cell, layers) in [
            (CellKind::Lstm, 1),
            (CellKind::RnnTanh, 1),
            (CellKind::Gru, 1),
            (CellKind::Lstm, 2),
            (CellKind::Gru, 3),
        ] {
            let (_, q) = quantized(spec(cell, layers), 3);
            let meta = [
                ("task", "sine".to_string()),
                ("head", "linear".to_string()),
                ("layers", "7".to_string()), // the model's count wins
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
            assert_eq!(m.get("layers"), Some(&layers.to_string()));
            assert_eq!(m.get("cell").map(String::as_str), Some(cell.module()));
            assert_eq!(m.get("shift").map(|s| s.split(',').count()), Some(layers));
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
        let (_, q) = quantized(spec(CellKind::Lstm, 1), 4);
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

    /// A quantized random LSTM, GRU and 2-layer LSTM follow their float models, and `run` over a
    /// sequence equals `run` step by step (the state carries).
    #[test]
    fn quantized_run_follows_float_and_carries_state() {
        const I: usize = 2;
        for (cell, layers) in [(CellKind::Lstm, 1), (CellKind::Gru, 1), (CellKind::Lstm, 2)] {
            let spec = Spec {
                layers,
                ..Spec::new(cell, I, 9, 3)
            };
            let mut m = crate::net::Net::new(spec).unwrap();
            m.init(&mut rng(5), Some(1.0));
            let d = crate::tasks::int8::dyn_model(&m).unwrap();
            let x: Vec<f32> = (0..60).map(|k| ((k as f32) * 0.37).sin()).collect();
            let r = Ranges::of(&d, [x.as_slice()]).unwrap();
            assert!(r.x_max > 0.9 && r.c_max.len() == layers);
            assert_eq!(r.c_max.iter().all(|&c| c > 0.0), cell == CellKind::Lstm);
            let q = QuantModel::quantize(&d, &r).unwrap();
            let yf = d.run(&x, &mut d.zero_state()).unwrap();
            let mut s = q.zero_state();
            let yq = q.run(&x, &mut s).unwrap();
            let worst = yf
                .iter()
                .zip(&yq)
                .fold(0f32, |w, (a, b)| w.max((a - b).abs()));
            assert!(worst < 0.03, "{spec:?}: int8 vs f32: {worst}");
            let mut s2 = q.zero_state();
            let mut y2 = Vec::new();
            for x_t in x.chunks(I) {
                y2.extend(q.run(x_t, &mut s2).unwrap());
            }
            assert_eq!(yq, y2);
            assert_eq!(s, s2);
        }
    }

    /// The one check refuses a bidirectional model and a ReLU RNN before quantizing, one line
    /// naming the model.
    #[test]
    fn bidirectional_and_relu_are_refused_by_the_one_check() {
        for s in [
            Spec {
                bidirectional: true,
                ..spec(CellKind::Gru, 2)
            },
            spec(CellKind::RnnRelu, 1),
        ] {
            let mut m = crate::net::Net::new(s).unwrap();
            m.init(&mut rng(2), None);
            let d = DynModel::new(s, m.flat().to_vec(), HashMap::new()).unwrap();
            let r = Ranges {
                x_max: 1.0,
                c_max: vec![0.0; s.layers],
            };
            let e = format!("{:#}", QuantModel::quantize(&d, &r).unwrap_err());
            assert!(e.starts_with("the model holds "), "{e}");
            assert!(e.contains(&describe(&s)) && !e.contains('\n'), "{e}");
        }
    }
}
