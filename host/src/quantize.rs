//! `tinyrnn quantize`: a float model file to an int8 one (the core's scheme, `tinyrnn::quant`).
//!
//! Every model the scheme takes: LSTM, GRU or tanh RNN, any number of unidirectional layers (a
//! bidirectional model or a ReLU RNN is refused first, one line: [`int8_supported`]). Each
//! `--calibrate` CSV is one input sequence in `infer`'s input format (one row per step, one
//! column per input, header optional; [`read_inputs`]). The float model runs over each from the
//! zero state and [`Ranges`] records max |x| and max |c| per layer; [`QuantModel::quantize`] turns them
//! into the scheme's scales and the model into integers; [`QuantModel::save`] writes the file
//! (see [`crate::modelfile`], "Int8 models"). The summary line gives the scheme's values (shift
//! and c_frac one per layer, comma-separated, as in the file) and the
//! largest |f32 - int8| of the outputs over the calibration sequences, each run from the zero
//! state by both models: the error on the data the ranges came from.
//!
//! Every path is checked first ([`check_files`]: inputs readable, `--out` writable and none of
//! them), everything is computed, and only then is the file written (atomically).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::infer::{DynModel, read_inputs};
use crate::modelfile::{describe, int8_supported};
use crate::out::check_files;
use crate::quant::{QuantModel, Ranges, comma_list};

/// `tinyrnn quantize` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct QuantizeArgs {
    /// The float model file (safetensors: a task's model or a PyTorch state_dict).
    #[arg(long, value_name = "F32.safetensors")]
    pub model: PathBuf,
    /// A calibration sequence in `infer`'s input format (one row per step, one column per
    /// input); give the flag once per sequence, with data like what the model will see.
    #[arg(long, value_name = "INPUTS.csv", required = true)]
    pub calibrate: Vec<PathBuf>,
    /// Write the int8 model here (safetensors, metadata `quantization` = int8-rowwise-v1).
    #[arg(long, value_name = "INT8.safetensors")]
    pub out: PathBuf,
}

/// What quantizing a model gave.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// The int8 model.
    pub model: QuantModel,
    /// The calibrated ranges.
    pub ranges: Ranges,
    /// max |f32 - int8| of the outputs over the calibration sequences.
    pub max_error: f32,
    /// Steps over all calibration sequences.
    pub steps: usize,
}

/// Calibrates `model` on `sequences` (each T·I values), quantizes it, and measures the int8
/// model against it on the same sequences (each from the zero state).
pub fn quantize(model: &DynModel, sequences: &[Vec<f32>]) -> Result<Quantized> {
    let ranges = Ranges::of(model, sequences.iter().map(Vec::as_slice))?;
    let q = QuantModel::quantize(model, &ranges)?;
    let (i, _, _) = model.sizes();
    let mut max_error = 0.0f32;
    let mut steps = 0;
    for x in sequences {
        let yf = model.run(x, &mut model.zero_state())?;
        let yq = q.run(x, &mut q.zero_state())?;
        for (a, b) in yf.iter().zip(&yq) {
            let d = (a - b).abs();
            if !d.is_finite() {
                bail!("the float model's outputs on the calibration data are not finite");
            }
            max_error = max_error.max(d);
        }
        steps += x.len() / i;
    }
    Ok(Quantized {
        model: q,
        ranges,
        max_error,
        steps,
    })
}

/// Runs `tinyrnn quantize`; returns the summary line.
pub fn run(args: &QuantizeArgs) -> Result<String> {
    let mut inputs: Vec<(&str, &Path)> = vec![("--model", &args.model)];
    inputs.extend(args.calibrate.iter().map(|p| ("--calibrate", p.as_path())));
    check_files(&inputs, &[("--out", &args.out)])?;
    let model = DynModel::load(&args.model)?;
    int8_supported(model.spec(), &args.model.display().to_string())?;
    let i = model.spec().input;
    let sequences = args
        .calibrate
        .iter()
        .map(|p| read_inputs(p, i))
        .collect::<Result<Vec<_>>>()?;
    let r = quantize(&model, &sequences)?;
    let meta: Vec<(&str, String)> = model
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    r.model.save(&args.out, &meta)?;
    let q = &r.model;
    Ok(format!(
        "quantize: {} to {} x_scale={:?} c_frac={} shift={}; max |f32 - int8| = {:.3e} over {} \
         steps of {} calibration sequence{}; wrote {}",
        describe(&q.spec),
        tinyrnn::quant::SCHEME,
        q.x_scale,
        comma_list(&q.c_fracs()),
        comma_list(&q.shifts()),
        r.max_error,
        r.steps,
        sequences.len(),
        if sequences.len() == 1 { "" } else { "s" },
        args.out.display()
    ))
}
