//! `tinyrnn export`: a trained model as Rust source for firmware.
//!
//! `--rust OUT.rs` writes the weights as one `static MODEL` of the core's own type
//! (`tinyrnn::LstmModel<I, H, O>` or `tinyrnn::RnnModel<I, H, O>`), with the sizes as `pub const`
//! `I`, `H`, `O`. A `static` of plain `f32` arrays is placed in flash (`.rodata`) and used in place:
//! nothing is parsed or copied at start-up. Every float is written as the shortest decimal that
//! reads back to the same `f32` (`{:?}`), so the firmware's weights are bit-identical to the file's.
//!
//! `--golden OUT.rs` (models with 1 input and 1 output, i.e. `tinyrnn sine`) writes what the host
//! computes for a fixed sine curve: `WARMUP` (the true samples the model is warmed up on) and
//! `EXPECTED` (the next samples it generates by feeding back its own predictions), computed step
//! by step with the core's `step`, the same code the firmware runs. The firmware compares its own
//! output against `EXPECTED`.
//!
//! # int8 models
//!
//! An int8 file (`tinyrnn quantize`) of one layer exports as
//! `pub static MODEL: tinyrnn::quant::QModel<'static>` with the same `I`, `H`, `O`; a stack of L
//! layers as `pub static MODEL: tinyrnn::quant::QStack<'static>` over `static LAYERS:
//! [QLayer<'static>; L]`, with `I`, `H`, `L`, `O` (slices in flash; integers as they are, f32 as
//! exact literals). Its `--golden` is the same rollout computed with the host's integer step
//! ([`QuantModel::run`], the device's arithmetic), so the device must match it bit for bit.
//!
//! # Text from the model file
//!
//! The only text of the model file (its metadata `task`, `cell`, `head`) and of the command line
//! (the model's file name) that reaches the generated source is in its first `//` comment line,
//! passed through [`comment_text`]: escaped to printable ASCII (no newline or carriage return
//! that would end the comment) and cut to [`COMMENT_MAX`] characters. Everything else in the
//! source is numbers and fixed text.
//!
//! # Nothing half-written
//!
//! Every path is checked ([`crate::out::check_files`]: the model readable, the outputs writable,
//! `--rust`, `--golden` and `--model` three different files) and both sources are computed before
//! anything is written; then both are staged and renamed into place together.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use tinyrnn::{CellKind, Model, Spec};

use crate::modelfile::{ModelFile, Nonlinearity, Precision, describe};
use crate::out::{Staged, check_files};
use crate::quant::QuantModel;

/// Angular frequency of the golden sine curve, radians per sample.
pub const GOLDEN_OMEGA: f64 = 0.2;
/// Phase of the golden sine curve.
pub const GOLDEN_PHASE: f64 = 0.5;

/// `tinyrnn export` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Model file written by a task or by PyTorch (safetensors, PyTorch tensor names; any cell,
    /// any number of layers, one direction), or an int8 file written by `tinyrnn quantize`
    /// (exported as a `tinyrnn::quant::QModel`, or a `QStack` for more than one layer).
    #[arg(long, value_name = "FILE.safetensors")]
    pub model: PathBuf,
    /// Write the model as Rust source: `pub const I, H, O` and `pub static MODEL`.
    #[arg(long, value_name = "OUT.rs")]
    pub rust: Option<PathBuf>,
    /// Write the host's reference rollout on a sine curve as Rust source (`WARMUP`, `EXPECTED`);
    /// models with one input and one output only.
    #[arg(long, value_name = "OUT.rs")]
    pub golden: Option<PathBuf>,
    /// True samples the golden rollout warms the model up on (at most 100,000: see --generate).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=GOLDEN_MAX))]
    pub warmup: u32,
    /// Samples the golden rollout generates after the warm-up (at most 100,000: the values are
    /// compiled into the firmware, 400 KB of flash per 100,000 where the largest board map here
    /// has 1 MB; and at H = 256 the host's rollout of 100,000 + 100,000 steps takes about 20 s).
    #[arg(long, default_value_t = 70, value_parser = clap::value_parser!(u32).range(1..=GOLDEN_MAX))]
    pub generate: u32,
    /// An RNN's nonlinearity, which PyTorch's files do not record [default: the file's metadata
    /// entry `nonlinearity`, else tanh]; an error if the file records the other one.
    #[arg(long, value_enum)]
    pub nonlinearity: Option<Nonlinearity>,
}

/// Largest `--warmup` and `--generate` (see `--generate`).
pub const GOLDEN_MAX: i64 = 100_000;

/// Longest text (escaped) from a model file or its name that goes into a generated comment.
pub const COMMENT_MAX: usize = 80;

/// A float model file's shape, parameters and metadata, as export reads it.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The shape.
    pub spec: Spec,
    /// The flat parameters in [`Spec::tensors`] order.
    pub values: Vec<f32>,
    /// The file's metadata (task, cell, head).
    pub metadata: HashMap<String, String>,
}

impl Exported {
    /// Number of parameters.
    pub fn params(&self) -> usize {
        self.values.len()
    }

    /// The tensor `name` (PyTorch's name), empty if the model has none by that name.
    fn get(&self, name: &str) -> &[f32] {
        self.spec
            .tensors()
            .find(|t| t.name.to_string() == name)
            .map_or(&[][..], |t| &self.values[t.offset..t.offset + t.len()])
    }

    /// `true` for the models the core has a typed model of (`LstmModel`, `RnnModel`): one layer,
    /// one direction, LSTM or tanh RNN. Their source is that type.
    pub fn typed(&self) -> bool {
        let s = &self.spec;
        s.layers == 1 && !s.bidirectional && matches!(s.cell, CellKind::Lstm | CellKind::RnnTanh)
    }
}

/// Runs `tinyrnn export`; returns the summary line.
pub fn run(args: &ExportArgs) -> Result<String> {
    let outputs: Vec<(&str, &Path)> = [("--rust", &args.rust), ("--golden", &args.golden)]
        .into_iter()
        .filter_map(|(flag, path)| Some((flag, path.as_deref()?)))
        .collect();
    if outputs.is_empty() {
        bail!("nothing to do: give --rust OUT.rs and/or --golden OUT.rs");
    }
    check_files(&[("--model", &args.model)], &outputs)?;
    let p = args.model.display().to_string();
    let bytes = crate::modelfile::read_bytes(&args.model)?;
    if crate::modelfile::precision(&bytes, &p)? == Precision::Int8 {
        return run_int8(args, &bytes, &p);
    }
    let model = from_file(ModelFile::parse_with(&bytes, &p, &[], args.nonlinearity)?);
    if model.spec.bidirectional {
        bail!(
            "{p} holds {}: a bidirectional model cannot run step by step (its reverse direction \
             starts at the last input), so it has no firmware source or golden rollout; `tinyrnn \
             infer` runs it on a whole sequence",
            describe(&model.spec)
        );
    }
    let mut sources = Vec::new();
    if let Some(out) = &args.rust {
        sources.push((out, rust_source(&model, &args.model)));
    }
    if let Some(out) = &args.golden {
        let (warmup, expected) = golden(&model, args.warmup as usize, args.generate as usize)?;
        sources.push((out, golden_source(&args.model, &warmup, &expected)));
    }
    let wrote = write_sources(&sources)?;
    Ok(format!(
        "export: {}, {} parameters ({} bytes); wrote {}",
        describe(&model.spec),
        model.params(),
        4 * model.params(),
        wrote
    ))
}

/// Stages every (path, source) and renames them into place together; returns the paths.
fn write_sources(sources: &[(&PathBuf, String)]) -> Result<String> {
    let mut staged = Staged::new();
    for (out, src) in sources {
        staged.add(out, |w| Ok(w.write_all(src.as_bytes())?))?;
    }
    staged.commit()?;
    let wrote: Vec<String> = sources
        .iter()
        .map(|(out, _)| out.display().to_string())
        .collect();
    Ok(wrote.join(", "))
}

/// Reads a model file with [`ModelFile::read`]: the shape from the tensor names and shapes,
/// every tensor checked (present, F32, finite, consistent shape; no other tensor).
pub fn read(path: &Path) -> Result<Exported> {
    Ok(from_file(ModelFile::read(path, &[])?))
}

/// The parameters of a float model file the reader accepted.
fn from_file(file: ModelFile) -> Exported {
    Exported {
        spec: file.spec,
        values: file.params(),
        metadata: file.metadata,
    }
}

/// An `f32` as a Rust expression that evaluates to exactly the same bits.
pub fn literal(v: f32) -> String {
    if v.is_finite() {
        format!("{v:?}") // shortest round-trip decimal, always with a `.` or an exponent
    } else {
        format!("f32::from_bits(0x{:08x})", v.to_bits())
    }
}

/// `[a, b, c]` on one line.
fn row(values: &[f32]) -> String {
    let items: Vec<String> = values.iter().map(|&v| literal(v)).collect();
    format!("[{}]", items.join(", "))
}

/// A [rows, cols] matrix as `[[..], [..]]`, one row per line, indented by `indent`.
fn matrix(out: &mut String, values: &[f32], cols: usize, indent: usize) {
    let pad = " ".repeat(indent);
    out.push_str("[\n");
    for r in values.chunks_exact(cols) {
        let _ = writeln!(out, "{pad}    {},", row(r));
    }
    let _ = write!(out, "{pad}]");
}

/// [4H, C] as `[[[f32; C]; H]; 4]`: one block per gate (i, f, g, o).
fn gate_blocks(out: &mut String, values: &[f32], h: usize, cols: usize, indent: usize) {
    let pad = " ".repeat(indent);
    out.push_str("[\n");
    for (g, block) in ["i", "f", "g", "o"]
        .iter()
        .zip(values.chunks_exact(h * cols))
    {
        let _ = write!(out, "{pad}    // gate {g}\n{pad}    ");
        matrix(out, block, cols, indent + 4);
        out.push_str(",\n");
    }
    let _ = write!(out, "{pad}]");
}

/// Text from outside (a metadata value, a file name) as it may stand in a `//` comment of
/// generated source: every character escaped with [`char::escape_default`] (printable ASCII
/// only: `\n`, `\r`, `\u{2028}`, `\\`, ...), cut after [`COMMENT_MAX`] characters with `...`.
pub fn comment_text(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let escaped = c.escape_default();
        if out.len() + escaped.len() > COMMENT_MAX {
            out.push_str("...");
            break;
        }
        out.extend(escaped);
    }
    out
}

/// The model file's name as [`comment_text`].
fn file_name(source: &Path) -> String {
    comment_text(
        &source
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
    )
}

/// The first comment line of a generated source: the file and its task, cell and head metadata
/// (already escaped by `meta`).
fn header(s: &mut String, file: &str, meta: impl Fn(&str) -> String) {
    let _ = writeln!(
        s,
        "// Generated by `tinyrnn export` from {file} (task: {}, cell: {}, head: {}). Do not edit.",
        meta("task"),
        meta("cell"),
        meta("head")
    );
}

/// The model as Rust source (see the module documentation): the core's typed model for a
/// one-layer, one-direction LSTM or tanh RNN ([`Exported::typed`]), else its [`Spec`] and flat
/// parameters.
pub fn rust_source(m: &Exported, source: &Path) -> String {
    if m.typed() {
        typed_source(m, source)
    } else {
        spec_source(m, source)
    }
}

/// `pub static MODEL: LstmModel<I, H, O>` (or `RnnModel`): the typed model the firmware steps.
fn typed_source(m: &Exported, source: &Path) -> String {
    let meta = |k: &str| comment_text(m.metadata.get(k).map(String::as_str).unwrap_or("?"));
    let (i, h, o) = (m.spec.input, m.spec.hidden, m.spec.output);
    let lstm = m.spec.cell == CellKind::Lstm;
    let (cell_ty, model_ty, field) = if lstm {
        ("Lstm", "LstmModel", "lstm")
    } else {
        ("Rnn", "RnnModel", "rnn")
    };
    let file = file_name(source);
    let mut s = String::new();
    header(&mut s, &file, meta);
    let _ = writeln!(
        s,
        "// {}({} -> {}) + Linear({} -> {}): {} parameters, {} bytes.",
        cell_ty.to_uppercase(),
        i,
        h,
        h,
        o,
        m.params(),
        4 * m.params()
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "use tinyrnn::{{Linear, {cell_ty}, {model_ty}}};");
    let _ = writeln!(s);
    let _ = writeln!(s, "/// Inputs per step.");
    let _ = writeln!(s, "pub const I: usize = {i};");
    let _ = writeln!(s, "/// Hidden units.");
    let _ = writeln!(s, "pub const H: usize = {h};");
    let _ = writeln!(s, "/// Outputs per step.");
    let _ = writeln!(s, "pub const O: usize = {o};");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "/// The trained model: a `static` in flash, used in place (nothing is parsed or copied)."
    );
    let _ = writeln!(s, "#[rustfmt::skip]");
    let _ = writeln!(
        s,
        "#[allow(clippy::approx_constant, clippy::excessive_precision, clippy::unreadable_literal)]"
    );
    let _ = writeln!(
        s,
        "pub static MODEL: {model_ty}<I, H, O> = {model_ty} {{\n    {field}: {cell_ty} {{"
    );
    for part in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
        let values = m.get(&format!("{field}.{part}_l0"));
        let _ = write!(s, "        {part}: ");
        match (lstm, part) {
            (true, "weight_ih") => gate_blocks(&mut s, values, h, i, 8),
            (true, "weight_hh") => gate_blocks(&mut s, values, h, h, 8),
            (true, _) => matrix(&mut s, values, h, 8), // [[f32; H]; 4]
            (false, "weight_ih") => matrix(&mut s, values, i, 8),
            (false, "weight_hh") => matrix(&mut s, values, h, 8),
            (false, _) => s.push_str(&row(values)),
        }
        s.push_str(",\n");
    }
    s.push_str("    },\n    head: Linear {\n        weight: ");
    matrix(&mut s, m.get("head.weight"), h, 8);
    let _ = writeln!(s, ",\n        bias: {},", row(m.get("head.bias")));
    s.push_str("    },\n};\n");
    s
}

/// `pub const SPEC: tinyrnn::Spec` and `pub static PARAMS: [f32; N]` (the flat parameters in
/// [`Spec::tensors`] order, each tensor's name and shape in a comment above its values): what
/// `tinyrnn::Model::new(SPEC, &PARAMS)` steps on the device.
fn spec_source(m: &Exported, source: &Path) -> String {
    let meta = |k: &str| comment_text(m.metadata.get(k).map(String::as_str).unwrap_or("?"));
    let spec = &m.spec;
    let cell = match spec.cell {
        CellKind::Lstm => "Lstm",
        CellKind::Gru => "Gru",
        CellKind::RnnTanh => "RnnTanh",
        CellKind::RnnRelu => "RnnRelu",
    };
    let n = m.params();
    let mut s = String::new();
    header(&mut s, &file_name(source), meta);
    let _ = writeln!(s, "// {}: {n} parameters, {} bytes.", describe(spec), 4 * n);
    let _ = writeln!(s);
    let _ = writeln!(s, "use tinyrnn::{{CellKind, Spec}};");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "/// The model's shape; step it with `tinyrnn::Model::new(SPEC, &PARAMS)` and `Model::step`."
    );
    let _ = writeln!(s, "pub const SPEC: Spec = Spec {{");
    let _ = writeln!(s, "    cell: CellKind::{cell},");
    let _ = writeln!(s, "    input: {},", spec.input);
    let _ = writeln!(s, "    hidden: {},", spec.hidden);
    let _ = writeln!(s, "    layers: {},", spec.layers);
    let _ = writeln!(s, "    bidirectional: {},", spec.bidirectional);
    let _ = writeln!(s, "    output: {},", spec.output);
    let _ = writeln!(s, "}};");
    let _ = writeln!(s, "/// Inputs per step.");
    let _ = writeln!(s, "pub const I: usize = SPEC.input;");
    let _ = writeln!(s, "/// Hidden units per layer.");
    let _ = writeln!(s, "pub const H: usize = SPEC.hidden;");
    let _ = writeln!(s, "/// Outputs per step.");
    let _ = writeln!(s, "pub const O: usize = SPEC.output;");
    let _ = writeln!(s, "/// Parameters (`SPEC.param_len()`).");
    let _ = writeln!(s, "pub const N: usize = {n};");
    let _ = writeln!(s, "const _: () = assert!(SPEC.param_len() == N);");
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "/// The trained parameters in PyTorch's `state_dict` order: a `static` in flash, used in place."
    );
    let _ = writeln!(s, "#[rustfmt::skip]");
    let _ = writeln!(
        s,
        "#[allow(clippy::approx_constant, clippy::excessive_precision, clippy::unreadable_literal)]"
    );
    let _ = writeln!(s, "pub static PARAMS: [f32; N] = [");
    for t in spec.tensors() {
        let _ = writeln!(s, "    // {} {:?}", t.name, t.shape());
        for chunk in m.values[t.offset..t.offset + t.len()].chunks(8) {
            let r = row(chunk);
            let _ = writeln!(s, "    {},", &r[1..r.len() - 1]);
        }
    }
    s.push_str("];\n");
    s
}

/// The golden sine curve's sample `t`.
pub fn golden_sample(t: usize) -> f32 {
    (GOLDEN_OMEGA * t as f64 + GOLDEN_PHASE).sin() as f32
}

/// The host's closed-loop rollout: `warmup` true samples, then `generate` predictions, each fed
/// back as the next input; returns (inputs of the warm-up, generated samples). Computed with the
/// core's [`Model::step`] from the zero state (a unidirectional model with 1 input and 1
/// output).
pub fn golden(m: &Exported, warmup: usize, generate: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let spec = &m.spec;
    if spec.input != 1 || spec.output != 1 {
        bail!(
            "--golden needs a model with 1 input and 1 output (a `tinyrnn sine` model); this one has I={}, O={}",
            spec.input,
            spec.output
        );
    }
    let model = Model::new(*spec, &m.values).map_err(|e| anyhow!("{}: {e}", describe(spec)))?;
    let n = spec.state_len(1);
    let mut h = vec![0.0f32; n]; // (L, H)
    let mut c = vec![0.0f32; if spec.cell.has_c() { n } else { 0 }]; // (L, H)
    let mut scratch = vec![0.0f32; model.step_scratch_len()];
    let mut step = |x: f32| -> Result<f32> {
        let mut y = [0.0f32];
        model
            .step(&[x], &mut h, &mut c, &mut scratch, &mut y)
            .map_err(|e| anyhow!("{}: {e}", describe(spec)))?;
        Ok(y[0])
    };
    let inputs: Vec<f32> = (0..warmup).map(golden_sample).collect();
    let mut y = 0.0;
    for &x in &inputs {
        y = step(x)?;
    }
    let mut out = vec![y];
    while out.len() < generate {
        y = step(y)?;
        out.push(y);
    }
    Ok((inputs, out))
}

/// The golden rollout as Rust source.
pub fn golden_source(source: &Path, warmup: &[f32], expected: &[f32]) -> String {
    let file = file_name(source);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated by `tinyrnn export --golden` from {file}. Do not edit.\n\
         // The host's rollout with the core's `step`: warm up on x_t = sin({GOLDEN_OMEGA} t + {GOLDEN_PHASE}),\n\
         // t = 0..{}, from the zero state, then feed back each prediction as the next input.\n",
        warmup.len()
    );
    let _ = writeln!(s, "/// The true samples the model is warmed up on.");
    let _ = writeln!(s, "#[rustfmt::skip]");
    let _ = writeln!(
        s,
        "#[allow(clippy::approx_constant, clippy::excessive_precision, clippy::unreadable_literal)]"
    );
    let _ = writeln!(s, "pub const WARMUP: [f32; {}] = [", warmup.len());
    for chunk in warmup.chunks(8) {
        let r = row(chunk);
        let _ = writeln!(s, "    {},", &r[1..r.len() - 1]);
    }
    s.push_str("];\n\n");
    let _ = writeln!(
        s,
        "/// What the host computed: the prediction after the last warm-up sample, then each next one."
    );
    let _ = writeln!(s, "#[rustfmt::skip]");
    let _ = writeln!(
        s,
        "#[allow(clippy::approx_constant, clippy::excessive_precision, clippy::unreadable_literal)]"
    );
    let _ = writeln!(s, "pub const EXPECTED: [f32; {}] = [", expected.len());
    for chunk in expected.chunks(8) {
        let r = row(chunk);
        let _ = writeln!(s, "    {},", &r[1..r.len() - 1]);
    }
    s.push_str("];\n");
    s
}

// ---- int8 models ----------------------------------------------------------------------------

/// `tinyrnn export` of an int8 model file (the bytes of `--model`, named `p`).
fn run_int8(args: &ExportArgs, bytes: &[u8], p: &str) -> Result<String> {
    let (q, metadata) = QuantModel::parse(bytes, p)?;
    match args.nonlinearity {
        Some(Nonlinearity::Tanh) if q.spec.cell == CellKind::RnnTanh => {}
        Some(n) => bail!(
            "--nonlinearity {}: {p} is an int8 {} (int8 RNNs are tanh RNNs)",
            n.name(),
            describe(&q.spec)
        ),
        None => {}
    }
    let mut sources = Vec::new();
    if let Some(out) = &args.rust {
        sources.push((out, rust_source_int8(&q, &metadata, &args.model)));
    }
    if let Some(out) = &args.golden {
        let (warmup, expected) = golden_int8(&q, args.warmup as usize, args.generate as usize)?;
        sources.push((out, golden_source_int8(&args.model, &warmup, &expected)));
    }
    let wrote = write_sources(&sources)?;
    Ok(format!(
        "export: int8 {}, {} ({} bytes of weights, multipliers and biases); wrote {wrote}",
        describe(&q.spec),
        tinyrnn::quant::SCHEME,
        int8_bytes(&q),
    ))
}

/// Bytes of what the firmware keeps of an int8 model: int8 weights, i32 multipliers and biases
/// of every layer, the head's f32 scales and biases.
pub fn int8_bytes(q: &QuantModel) -> usize {
    let layers: usize = q
        .layers
        .iter()
        .map(|l| {
            l.w_ih.len()
                + l.w_hh.len()
                + 4 * (l.mul_ih.len() + l.mul_hh.len() + l.b_ih.len() + l.b_hh.len())
        })
        .sum();
    layers + q.head_weight.len() + 4 * (q.head_scale.len() + q.head_bias.len())
}

/// `&[a, b, ...]` of integers, 16 to a line, indented by `indent`.
fn int_slice<T: std::fmt::Display>(out: &mut String, values: &[T], indent: usize) {
    let pad = " ".repeat(indent);
    out.push_str("&[\n");
    for chunk in values.chunks(16) {
        let items: Vec<String> = chunk.iter().map(T::to_string).collect();
        let _ = writeln!(out, "{pad}    {},", items.join(", "));
    }
    let _ = write!(out, "{pad}]");
}

/// `&[a, b, ...]` of f32 literals, 8 to a line, indented by `indent`.
fn f32_slice(out: &mut String, values: &[f32], indent: usize) {
    let pad = " ".repeat(indent);
    out.push_str("&[\n");
    for chunk in values.chunks(8) {
        let r = row(chunk);
        let _ = writeln!(out, "{pad}    {},", &r[1..r.len() - 1]);
    }
    let _ = write!(out, "{pad}]");
}

/// An int8 model as Rust source, every value exactly the file's (integers as they are, f32 as
/// [`literal`]s): one layer as `pub const I, H, O` and `pub static MODEL:
/// tinyrnn::quant::QModel<'static>`; a stack as `pub const I, H, L, O`, `static LAYERS:
/// [QLayer<'static>; L]` and `pub static MODEL: tinyrnn::quant::QStack<'static>`. Text from the
/// file (metadata) only in the first comment line, through [`comment_text`].
pub fn rust_source_int8(
    q: &QuantModel,
    metadata: &HashMap<String, String>,
    source: &Path,
) -> String {
    let meta = |k: &str| comment_text(metadata.get(k).map(String::as_str).unwrap_or("?"));
    let (i, h, o) = q.sizes();
    let cell = match q.spec.cell {
        CellKind::Lstm => "Lstm",
        CellKind::Gru => "Gru",
        CellKind::RnnTanh | CellKind::RnnRelu => "Rnn",
    };
    let stack = q.layers.len() != 1;
    let file = file_name(source);
    let scheme = tinyrnn::quant::SCHEME;
    let mut s = String::new();
    header(&mut s, &file, meta);
    let _ = writeln!(
        s,
        "// int8 {}, scheme {scheme} (see tinyrnn::quant): {} bytes.",
        describe(&q.spec),
        int8_bytes(q)
    );
    let _ = writeln!(s);
    let model_type = if stack { "QStack" } else { "QModel" };
    let _ = writeln!(
        s,
        "use tinyrnn::quant::{{CellKind, QLayer, QLinear, {model_type}}};"
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "/// Inputs per step.");
    let _ = writeln!(s, "pub const I: usize = {i};");
    let _ = writeln!(
        s,
        "/// Hidden units{}.",
        if stack { " per layer" } else { "" }
    );
    let _ = writeln!(s, "pub const H: usize = {h};");
    if stack {
        let _ = writeln!(s, "/// Layers.");
        let _ = writeln!(s, "pub const L: usize = {};", q.layers.len());
    }
    let _ = writeln!(s, "/// Outputs per step.");
    let _ = writeln!(s, "pub const O: usize = {o};");
    let _ = writeln!(s);
    let allow = "#[allow(clippy::approx_constant, clippy::excessive_precision, clippy::unreadable_literal)]";
    // One layer's fields, at 8 spaces, between `QLayer {` and `},` at 4.
    let layer = |s: &mut String, k: usize, l: &crate::quant::QuantLayer| {
        let _ = writeln!(s, "        cell: CellKind::{cell},");
        let _ = writeln!(s, "        inputs: {},", if k == 0 { "I" } else { "H" });
        let _ = writeln!(s, "        hidden: H,");
        for (name, v) in [("w_ih", &l.w_ih), ("w_hh", &l.w_hh)] {
            let _ = write!(s, "        {name}: ");
            int_slice(s, v, 8);
            s.push_str(",\n");
        }
        for (name, v) in [
            ("mul_ih", &l.mul_ih),
            ("mul_hh", &l.mul_hh),
            ("b_ih", &l.b_ih),
            ("b_hh", &l.b_hh),
        ] {
            let _ = write!(s, "        {name}: ");
            int_slice(s, v, 8);
            s.push_str(",\n");
        }
        let _ = writeln!(s, "        shift: {},", l.shift);
        let _ = writeln!(s, "        c_frac: {},", l.c_frac);
        let _ = writeln!(s, "    }},");
    };
    if stack {
        let _ = writeln!(
            s,
            "/// The recurrent layers, bottom first (layer k > 0 reads layer k-1's h)."
        );
        let _ = writeln!(s, "#[rustfmt::skip]");
        let _ = writeln!(s, "{allow}");
        let _ = writeln!(s, "static LAYERS: [QLayer<'static>; L] = [");
        for (k, l) in q.layers.iter().enumerate() {
            let _ = writeln!(s, "    QLayer {{");
            layer(&mut s, k, l);
        }
        let _ = writeln!(s, "];");
        let _ = writeln!(s);
    }
    let _ = writeln!(
        s,
        "/// The quantized model: a `static` in flash, used in place (nothing is parsed or copied)."
    );
    let _ = writeln!(s, "#[rustfmt::skip]");
    let _ = writeln!(s, "{allow}");
    let _ = writeln!(
        s,
        "pub static MODEL: {model_type}<'static> = {model_type} {{"
    );
    let _ = writeln!(s, "    x_scale: {},", literal(q.x_scale));
    if stack {
        let _ = writeln!(s, "    layers: &LAYERS,");
    } else if let Some(l) = q.layers.first() {
        let _ = writeln!(s, "    layer: QLayer {{");
        layer(&mut s, 0, l);
    }
    let _ = writeln!(s, "    head: QLinear {{");
    let _ = writeln!(s, "        inputs: H,");
    let _ = writeln!(s, "        outputs: O,");
    s.push_str("        weight: ");
    int_slice(&mut s, &q.head_weight, 8);
    s.push_str(",\n        scale: ");
    f32_slice(&mut s, &q.head_scale, 8);
    s.push_str(",\n        bias: ");
    f32_slice(&mut s, &q.head_bias, 8);
    s.push_str(",\n    },\n};\n");
    s
}

/// The int8 model's closed-loop rollout on the golden sine curve, the protocol of [`golden`]:
/// `warmup` true samples, then `generate` outputs each fed back as the next input, all with
/// [`QuantModel::run`] (the integer step) on one state.
pub fn golden_int8(q: &QuantModel, warmup: usize, generate: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let (i, _, o) = q.sizes();
    if i != 1 || o != 1 {
        bail!(
            "--golden needs a model with 1 input and 1 output (a `tinyrnn sine` model); this one has I={i}, O={o}"
        );
    }
    let inputs: Vec<f32> = (0..warmup).map(golden_sample).collect();
    let mut state = q.zero_state();
    let y = q.run(&inputs, &mut state)?;
    let mut out = vec![y.last().copied().unwrap_or(0.0)];
    while out.len() < generate {
        let prev = out[out.len() - 1];
        out.push(q.run(&[prev], &mut state)?[0]);
    }
    Ok((inputs, out))
}

/// The int8 golden rollout as Rust source: `WARMUP`, `EXPECTED` as [`golden_source`] writes
/// them (each f32 the shortest decimal that reads back to its bits: the device compares bit for
/// bit).
pub fn golden_source_int8(source: &Path, warmup: &[f32], expected: &[f32]) -> String {
    let float = golden_source(source, warmup, expected);
    let note =
        "// EXPECTED is the int8 step's output; each value reads back to the host's bits exactly.";
    let mut lines: Vec<String> = float.lines().map(str::to_string).collect();
    if let Some(l) = lines.get_mut(1) {
        *l = l.replace("with the core's `step`", "with the core's int8 step");
    }
    lines.insert(3.min(lines.len()), note.to_string());
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::boxed_zeroed;
    use tinyrnn::{LstmModel, LstmState, Params, RnnModel};

    /// Every float literal in `src` after `MODEL`, in order.
    fn model_literals(src: &str) -> Vec<f32> {
        let body = &src[src.find("pub static MODEL").unwrap()..];
        let body = &body[body.find('=').unwrap()..];
        body.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .filter(|t| t.contains('.') || (t.contains('e') && t.parse::<f32>().is_ok()))
            .map(|t| t.parse::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn literals_round_trip() {
        for v in [
            0.0f32,
            -0.0,
            1.0,
            0.1,
            -1.5e-39,
            f32::MIN_POSITIVE,
            f32::MAX,
            1e-45,
            0.333_333_34,
        ] {
            let s = literal(v);
            let back: f32 = s.parse().unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v} -> {s}");
            assert!(
                s.contains('.') || s.contains('e'),
                "{s} is not a float literal"
            );
        }
        assert_eq!(
            literal(f32::NAN),
            format!("f32::from_bits(0x{:08x})", f32::NAN.to_bits())
        );
    }

    #[test]
    fn lstm_and_rnn_export_every_parameter_exactly_in_layout_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = tinyrnn::rng(7);
        let mut lstm: Box<LstmModel<3, 5, 2>> = boxed_zeroed();
        lstm.init(&mut rng, None);
        let mut rnn: Box<RnnModel<3, 4, 2>> = boxed_zeroed();
        rnn.init(&mut rng);
        let (pl, pr) = (
            dir.path().join("l.safetensors"),
            dir.path().join("r.safetensors"),
        );
        crate::modelfile::save(&pl, &*lstm, &[("task", "t".into())]).unwrap();
        crate::modelfile::save(&pr, &*rnn, &[]).unwrap();

        let m = read(&pl).unwrap();
        assert_eq!(m.spec, Spec::new(CellKind::Lstm, 3, 5, 2));
        let src = rust_source(&m, &pl);
        assert!(src.contains("pub const I: usize = 3;"));
        assert!(src.contains("pub const H: usize = 5;"));
        assert!(src.contains("pub const O: usize = 2;"));
        assert!(src.contains("pub static MODEL: LstmModel<I, H, O> = LstmModel {"));
        let got = model_literals(&src);
        assert_eq!(got.len(), lstm.as_flat().len());
        for (g, w) in got.iter().zip(lstm.as_flat()) {
            assert_eq!(g.to_bits(), w.to_bits());
        }

        let m = read(&pr).unwrap();
        assert_eq!(m.spec, Spec::new(CellKind::RnnTanh, 3, 4, 2));
        let src = rust_source(&m, &pr);
        assert!(src.contains("pub static MODEL: RnnModel<I, H, O> = RnnModel {"));
        let got = model_literals(&src);
        assert_eq!(got.len(), rnn.as_flat().len());
        for (g, w) in got.iter().zip(rnn.as_flat()) {
            assert_eq!(g.to_bits(), w.to_bits());
        }
    }

    #[test]
    fn golden_is_the_closed_loop_of_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut model: Box<LstmModel<1, 8, 1>> = boxed_zeroed();
        model.init(&mut tinyrnn::rng(1), None);
        let path = dir.path().join("m.safetensors");
        crate::modelfile::save(&path, &*model, &[]).unwrap();
        let (warm, generated) = golden(&read(&path).unwrap(), 5, 4).unwrap();
        assert_eq!(warm, (0..5).map(golden_sample).collect::<Vec<_>>());
        let mut state = LstmState::<8>::zero();
        let mut y = [0.0];
        for &x in &warm {
            y = model.step(&[x], &mut state);
        }
        let mut want = vec![y[0]];
        for _ in 1..4 {
            y = model.step(&y, &mut state);
            want.push(y[0]);
        }
        assert_eq!(generated, want);
        let src = golden_source(&path, &warm, &generated);
        assert!(src.contains("pub const WARMUP: [f32; 5] = ["));
        assert!(src.contains("pub const EXPECTED: [f32; 4] = ["));
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not a model").unwrap();
        let e = format!("{:#}", read(&junk).unwrap_err());
        assert!(e.contains("not a valid safetensors file"), "{e}");
        assert!(!e.contains('\n'));
        let e = format!("{:#}", read(&dir.path().join("none")).unwrap_err());
        assert!(e.contains("cannot read"), "{e}");

        // A model with only its first tensor: the next one is missing.
        let mut model: Box<tinyrnn::Lstm<1, 2>> = boxed_zeroed();
        model.init(&mut tinyrnn::rng(0), None);
        let p = dir.path().join("nohead.safetensors");
        let bytes: Vec<u8> = model
            .as_flat()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![8, 1], &bytes[..32])
                .unwrap();
        std::fs::write(
            &p,
            safetensors::serialize([("lstm.weight_ih_l0", view)], None).unwrap(),
        )
        .unwrap();
        let e = format!("{:#}", read(&p).unwrap_err());
        assert!(e.contains("tensor `lstm.weight_hh_l0` is missing"), "{e}");

        // A golden rollout needs 1 input and 1 output.
        let mut big: Box<LstmModel<2, 2, 1>> = boxed_zeroed();
        big.init(&mut tinyrnn::rng(0), None);
        let p = dir.path().join("two.safetensors");
        crate::modelfile::save(&p, &*big, &[]).unwrap();
        let e = format!("{:#}", golden(&read(&p).unwrap(), 3, 3).unwrap_err());
        assert!(e.contains("1 input and 1 output"), "{e}");
    }

    /// Values that would end a `//` comment, close a block comment, open a string, or are long,
    /// non-ASCII or line separators to an editor; each followed by code that must not compile in.
    fn hostile() -> Vec<String> {
        let code = "pub fn injected() {}";
        vec![
            format!("x\n{code}"),
            format!("x\r\n{code}"),
            format!("x\r{code}"),
            format!("*/ {code} /*"),
            format!("\" {code} \\ \\\""),
            format!("n\u{f6}n-\u{c4}SCII \u{2713} \u{1f980} {code}"),
            format!("a\u{2028}{code}\u{2029}{code}\u{85}{code}\u{b}\u{c}"),
            format!("{}\n{code}", "A".repeat(1 << 20)),
        ]
    }

    /// `src` is `clean` with only its first line (a `//` comment) changed, and that line is
    /// printable ASCII of bounded length: no file text reaches code.
    #[track_caller]
    fn only_the_comment_differs(src: &str, clean: &str, text: &str) {
        let what = comment_text(&text.chars().take(40).collect::<String>());
        assert!(
            src.bytes()
                .all(|b| b == b'\n' || (b' '..=b'~').contains(&b)),
            "{what}: not printable ASCII"
        );
        let (lines, clean_lines): (Vec<&str>, Vec<&str>) =
            (src.lines().collect(), clean.lines().collect());
        assert_eq!(lines.len(), clean_lines.len(), "{what}: line count");
        assert_eq!(lines[1..], clean_lines[1..], "{what}: code changed");
        assert!(
            lines[0].starts_with("// Generated by `tinyrnn export"),
            "{what}"
        );
        assert!(
            lines[0].len() <= clean_lines[0].len() + 4 * (COMMENT_MAX + 3),
            "{what}: too long"
        );
    }

    #[test]
    fn text_from_the_file_never_leaves_its_comment() {
        let dir = tempfile::tempdir().unwrap();
        let mut model: Box<LstmModel<1, 2, 1>> = boxed_zeroed();
        model.init(&mut tinyrnn::rng(3), None);
        let path = dir.path().join("m.safetensors");
        crate::modelfile::save(&path, &*model, &[("task", "sine".into())]).unwrap();
        let mut m = read(&path).unwrap();
        let clean = rust_source(&m, &path);
        let (warm, expected) = golden(&m, 3, 9).unwrap();
        let clean_golden = golden_source(&path, &warm, &expected);
        for text in hostile() {
            for key in ["task", "cell", "head"] {
                m.metadata.insert(key.to_string(), text.clone());
            }
            let named = dir.path().join(format!("{text}.safetensors"));
            only_the_comment_differs(&rust_source(&m, &named), &clean, &text);
            only_the_comment_differs(
                &golden_source(&named, &warm, &expected),
                &clean_golden,
                &text,
            );
        }
        assert_eq!(comment_text("sine"), "sine");
        assert_eq!(comment_text("a\nb\"\\"), "a\\nb\\\"\\\\");
        let long = comment_text(&"\u{2028}".repeat(100));
        assert!(
            long.ends_with("...") && long.len() <= COMMENT_MAX + 3,
            "{long}"
        );
    }

    /// The same for an int8 model's source and golden: metadata and file name stay in the first
    /// comment line.
    #[test]
    fn int8_text_from_the_file_never_leaves_its_comment() {
        let dir = tempfile::tempdir().unwrap();
        let mut model: Box<LstmModel<1, 2, 1>> = boxed_zeroed();
        model.init(&mut tinyrnn::rng(3), None);
        let path = dir.path().join("m.safetensors");
        crate::modelfile::save(&path, &*model, &[]).unwrap();
        let float = crate::infer::DynModel::load(&path).unwrap();
        let x: Vec<f32> = (0..20).map(golden_sample).collect();
        let ranges = crate::quant::Ranges::of(&float, [x.as_slice()]).unwrap();
        let q = QuantModel::quantize(&float, &ranges).unwrap();
        let mut meta = HashMap::new();
        let clean = rust_source_int8(&q, &meta, &path);
        let (warm, expected) = golden_int8(&q, 3, 9).unwrap();
        let clean_golden = golden_source_int8(&path, &warm, &expected);
        for text in hostile() {
            for key in ["task", "cell", "head"] {
                meta.insert(key.to_string(), text.clone());
            }
            let named = dir.path().join(format!("{text}.safetensors"));
            only_the_comment_differs(&rust_source_int8(&q, &meta, &named), &clean, &text);
            only_the_comment_differs(
                &golden_source_int8(&named, &warm, &expected),
                &clean_golden,
                &text,
            );
        }
    }

    /// Numbers of `pub const NAME: [f32; N] = [...]` in generated source.
    fn const_array(src: &str, name: &str) -> Vec<f32> {
        let start = src.find(&format!("pub const {name}:")).unwrap();
        let body = &src[start..];
        let body = &body[body.find("= [").unwrap() + 3..body.find("];").unwrap()];
        body.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().unwrap())
            .collect()
    }

    /// The firmware's committed model and golden values are what this host exports today from
    /// the committed model file: the device is compared with the current host.
    #[test]
    fn firmware_model_and_golden_are_up_to_date() {
        let fw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embedded/firmware");
        let model = fw.join("sine.safetensors");
        let regenerate = "regenerate with: cargo run --release -p host -- export \
                          --model embedded/firmware/sine.safetensors \
                          --rust embedded/firmware/src/model.rs --golden embedded/firmware/src/golden.rs";
        let m = read(&model).unwrap();
        let committed = std::fs::read_to_string(fw.join("src/model.rs")).unwrap();
        assert!(
            committed == rust_source(&m, &model),
            "embedded/firmware/src/model.rs is stale; {regenerate}"
        );
        let golden_src = std::fs::read_to_string(fw.join("src/golden.rs")).unwrap();
        let (warm_c, exp_c) = (
            const_array(&golden_src, "WARMUP"),
            const_array(&golden_src, "EXPECTED"),
        );
        let (warm, expected) = golden(&m, warm_c.len(), exp_c.len()).unwrap();
        assert_eq!(warm, warm_c, "golden.rs WARMUP is stale; {regenerate}");
        for (t, (a, b)) in expected.iter().zip(&exp_c).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6,
                "golden.rs EXPECTED[{t}] = {b}, the host now computes {a}; {regenerate}"
            );
        }
    }

    /// The int8 firmware files are what `tinyrnn quantize` and `export` make today from the
    /// committed float model and calibration CSV: the int8 file's model, `src/qmodel.rs` and
    /// `src/qgolden.rs` (EXPECTED bit for bit: the device must match it exactly).
    #[test]
    fn firmware_int8_model_and_golden_are_up_to_date() {
        let fw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embedded/firmware");
        let q_path = fw.join("sine-int8.safetensors");
        let regenerate = "regenerate with: cargo run --release -p host -- quantize \
                          --model embedded/firmware/sine.safetensors \
                          --calibrate embedded/firmware/sine-calibration.csv \
                          --out embedded/firmware/sine-int8.safetensors, then export --model \
                          embedded/firmware/sine-int8.safetensors --rust \
                          embedded/firmware/src/qmodel.rs --golden embedded/firmware/src/qgolden.rs";
        let float = crate::infer::DynModel::load(&fw.join("sine.safetensors")).unwrap();
        let calib = crate::infer::read_inputs(&fw.join("sine-calibration.csv"), 1).unwrap();
        let fresh = crate::quantize::quantize(&float, &[calib]).unwrap().model;
        let (q, metadata) = QuantModel::read(&q_path).unwrap();
        assert!(q == fresh, "sine-int8.safetensors is stale; {regenerate}");
        let committed = std::fs::read_to_string(fw.join("src/qmodel.rs")).unwrap();
        assert!(
            committed == rust_source_int8(&q, &metadata, Path::new("sine-int8.safetensors")),
            "embedded/firmware/src/qmodel.rs is stale; {regenerate}"
        );
        let golden_src = std::fs::read_to_string(fw.join("src/qgolden.rs")).unwrap();
        let (warm_c, exp_c) = (
            const_array(&golden_src, "WARMUP"),
            const_array(&golden_src, "EXPECTED"),
        );
        let (warm, expected) = golden_int8(&q, warm_c.len(), exp_c.len()).unwrap();
        assert_eq!(warm, warm_c, "qgolden.rs WARMUP is stale; {regenerate}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&expected),
            bits(&exp_c),
            "qgolden.rs EXPECTED is stale; {regenerate}"
        );
    }
}
