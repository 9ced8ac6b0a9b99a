//! `--int8`: a task's trained model quantized with the core's int8 scheme and scored beside f32.
//!
//! Every model the scheme takes: LSTM, GRU or tanh RNN, any number of unidirectional layers
//! ([`supported`] refuses the rest before training). After training, [`quantize`] builds the
//! float model ([`dyn_model`]: the core's engine) from the trained model, calibrates it ([`Ranges::of`]) on at most [`MAX_CALIBRATION`] training
//! sequences and quantizes it ([`QuantModel::quantize`]). The task then evaluates the int8 model
//! with [`QuantModel::run`] (the device's integer step) on exactly the data its f32 metric uses,
//! reports both in its summary line and writes `int8.csv` ([`write`]): the metric in f32 and
//! int8, and the calibration and scheme parameters, so the quantization can be rebuilt from
//! `model.safetensors` (`host/tests/int8_tasks.rs` does).

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use tinyrnn::Spec;

use crate::infer::DynModel;
use crate::modelfile::int8_supported;
use crate::net::Net;
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

/// Refuses, before any training, a model the int8 scheme cannot take (a bidirectional model, a
/// ReLU RNN): the one check, [`int8_supported`], with the model named `--int8`.
pub fn supported(spec: &Spec) -> Result<()> {
    int8_supported(spec, "--int8: the model")
}

/// The float model of a trained model (the core's engine over a copy of its parameters).
pub fn dyn_model(model: &Net) -> Result<DynModel> {
    let s = model.spec();
    supported(s)?;
    DynModel::new(*s, model.flat().to_vec(), HashMap::new())
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
    let model = QuantModel::quantize(&float, &ranges)?;
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
/// (sequences, max |x|, max |c|) and the scheme's parameters (s_x, the shift L, F). Per-layer
/// values (max |c|, L, F) are one per layer, bottom first, separated by spaces (one layer: one
/// value).
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
            spaced(q.ranges.c_max.iter().map(|&c| num(c))),
            num(q.model.x_scale),
            spaced(q.model.shifts().iter().map(u32::to_string)),
            spaced(q.model.c_fracs().iter().map(u32::to_string)),
        ]],
    )
    .map(|_| ())
}

/// Per-layer values in one CSV field, separated by spaces.
fn spaced(values: impl Iterator<Item = String>) -> String {
    values.collect::<Vec<_>>().join(" ")
}
