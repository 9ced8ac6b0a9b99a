//! `--int8`: a task's trained model quantized with the core's int8 scheme and scored beside f32.
//!
//! After training, [`quantize`] builds the float model ([`DynModel::from_tensors`]) from the
//! trained typed model, calibrates it ([`Ranges::of`]) on at most [`MAX_CALIBRATION`] training
//! sequences and quantizes it ([`QuantModel::quantize`]). The task then evaluates the int8 model
//! with [`QuantModel::run`] (the device's integer step) on exactly the data its f32 metric uses,
//! reports both in its summary line and writes `int8.csv` ([`write`]): the metric in f32 and
//! int8, and the calibration and scheme parameters, so the quantization can be rebuilt from
//! `model.safetensors` (`tests/int8_tasks.rs` does).

use anyhow::{Result, anyhow, bail};
use tinyrnn::Spec;
use tinyrnn::cell::CellKind as Kind;

use crate::infer::DynModel;
use crate::net::{CellKind, Net, label};
use crate::out::{OutDir, num};
use crate::quant::{QuantModel, Ranges};

/// At most this many training sequences calibrate the ranges.
pub const MAX_CALIBRATION: usize = 1000;

/// The name of the file [`write`] writes.
pub const FILE: &str = "int8.csv";

/// A trained model quantized: the int8 model and how it was calibrated.
#[derive(Debug, Clone)]
pub struct Int8 {
    /// The quantized model.
    pub model: QuantModel,
    /// What calibration measured.
    pub ranges: Ranges,
    /// Training sequences calibration ran over.
    pub sequences: usize,
}

/// Refuses, before any training, a model the int8 scheme cannot take yet: it quantizes one-layer
/// unidirectional LSTMs and tanh RNNs.
pub fn supported(spec: &Spec) -> Result<CellKind> {
    match (spec.cell, spec.layers, spec.bidirectional) {
        (Kind::Lstm, 1, false) => Ok(CellKind::Lstm),
        (Kind::RnnTanh, 1, false) => Ok(CellKind::Rnn),
        _ => bail!(
            "--int8 takes a one-layer unidirectional LSTM or tanh RNN; this model is {}",
            label(spec)
        ),
    }
}

/// The float model of a trained model (its six tensors in layout order).
pub fn dyn_model(model: &Net) -> Result<DynModel> {
    let s = model.spec();
    let cell = supported(s)?;
    let flat = model.flat();
    let t: Vec<&[f32]> = s
        .tensors()
        .map(|t| &flat[t.offset..t.offset + t.len()])
        .collect();
    let t: [&[f32]; 6] = t
        .try_into()
        .map_err(|_| anyhow!("the model does not have six tensors"))?;
    DynModel::from_tensors(cell, (s.input, s.hidden, s.output), t)
}

/// Quantizes `model` with ranges calibrated on the first [`MAX_CALIBRATION`] of `sequences`
/// (each T·I values of training data, run from the zero state).
pub fn quantize<'a>(model: &Net, sequences: impl IntoIterator<Item = &'a [f32]>) -> Result<Int8> {
    let float = dyn_model(model)?;
    let mut count = 0;
    let seqs = sequences
        .into_iter()
        .take(MAX_CALIBRATION)
        .inspect(|_| count += 1);
    let ranges = Ranges::of(&float, seqs)?;
    let model = QuantModel::quantize(&float, ranges)?;
    Ok(Int8 {
        model,
        ranges,
        sequences: count,
    })
}

/// Runs the int8 model over `n` sequences from the zero state, `threads` at a time: `input(k,
/// x)` fills `x` with sequence k (T·I values); returns each sequence's outputs (T·O values).
/// Sequences are independent, so the result does not depend on `threads`.
pub fn run_all(
    q: &QuantModel,
    n: usize,
    threads: usize,
    input: impl Fn(usize, &mut Vec<f32>) + Sync,
) -> Result<Vec<Vec<f32>>> {
    let parts = crate::train::split(n, threads);
    let input = &input;
    let results: Vec<Result<Vec<Vec<f32>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|r| {
                scope.spawn(move || {
                    let mut x = Vec::new();
                    r.map(|k| {
                        x.clear();
                        input(k, &mut x);
                        q.run(&x, &mut q.zero_state())
                    })
                    .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("an int8 evaluation thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(n);
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Writes `int8.csv`: one row with the metric's name, its f32 and int8 values, the calibration
/// (sequences, max |x|, max |c|) and the scheme's parameters (s_x, the shift L, F).
pub fn write(out: &OutDir, q: &Int8, metric: &str, f32_value: f64, int8_value: f64) -> Result<()> {
    out.csv(
        FILE,
        &[
            "metric",
            "f32",
            "int8",
            "calibration_sequences",
            "x_max",
            "c_max",
            "x_scale",
            "shift",
            "c_frac",
        ],
        [[
            metric.to_string(),
            f32_value.to_string(),
            int8_value.to_string(),
            q.sequences.to_string(),
            num(q.ranges.x_max),
            num(q.ranges.c_max),
            num(q.model.x_scale),
            q.model.shift.to_string(),
            q.model.c_frac.to_string(),
        ]],
    )
    .map(|_| ())
}
