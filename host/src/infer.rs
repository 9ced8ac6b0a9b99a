//! `tinyrnn infer`: runs a model file on a CSV of inputs, one row per time step.
//!
//! # The model
//!
//! A model file of any shape the core runs ([`crate::modelfile`]: LSTM, GRU, tanh or ReLU RNN,
//! any number of layers, one or two directions, a linear head) is read into a [`Spec`] and a flat
//! parameter buffer, and run by the core's engine ([`tinyrnn::Model`]); no arithmetic is written
//! here. A unidirectional model runs step by step ([`Model::step`], the state carried from one
//! step to the next, as on a device); a bidirectional one cannot step (its reverse direction
//! starts at the last input), so it runs the whole input sequence at once ([`Model::forward`],
//! the head at every step). Both start from the zero state.
//!
//! # Files
//!
//! * Input CSV: one row per time step, one column per input feature. A header is optional: a
//!   first row none of whose fields is a number is a header (it must have I columns too). Every
//!   other field must be a finite number.
//! * Output CSV: header `y0..y{O-1}`, one row per step: the linear head's output, as the PyTorch
//!   module returns it (the head activation named in the file's metadata is not applied).
//! * State CSV (`--state`): the state after the last step ([`state_csv`]): `unit,h,c` (no `c`
//!   unless LSTM) for one layer and direction, else `layer,direction,unit,h,c`.
//!
//! # Int8 models
//!
//! An int8 file (`tinyrnn quantize`; [`crate::modelfile`], "Int8 models": LSTM, GRU or tanh
//! RNN, any number of unidirectional layers) runs the core's integer step ([`QuantModel::run`]),
//! the same code and bits as on the device; the outputs are the head's f32 values in the same
//! CSV, and `--state` gives the integer state dequantized ([`dequantized`]) in the float model's
//! form (`unit,h[,c]` for one layer, `layer,direction,unit,h[,c]` for a stack).
//!
//! Files are written atomically (see [`crate::out`]); every error is one line and leaves no file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use tinyrnn::{Cache, CellKind, Model, Outputs, Spec};

use crate::modelfile::{CHECKSUM_KEY, ModelFile, Nonlinearity, Precision, describe, save_model};
use crate::out::{Staged, check_files, num};
use crate::quant::{QuantModel, QuantState};

/// `tinyrnn infer` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct InferArgs {
    /// Model file: safetensors with PyTorch's names (`lstm.*`, `gru.*` or `rnn.*`, any number of
    /// layers, uni- or bidirectional, and `head.*`), written by a task or by PyTorch; the shape is
    /// read from the tensor names and shapes. An int8 file (`tinyrnn quantize`) runs the integer
    /// step, the device's arithmetic bit for bit.
    #[arg(long, value_name = "FILE.safetensors")]
    pub model: PathBuf,
    /// Inputs: one row per time step, one column per input feature (header optional).
    #[arg(long, value_name = "X.csv")]
    pub input: PathBuf,
    /// Write the outputs here (header y0..y{O-1}, one row per step) [default: stdout].
    #[arg(long, value_name = "Y.csv")]
    pub output: Option<PathBuf>,
    /// Also give the final state as CSV `unit,h,c` (no `c` unless LSTM; with more than one layer
    /// or direction `layer,direction,unit,h,c`): written to FILE, or printed (after the outputs,
    /// separated by an empty line, if those are printed too). For an int8 model the integer
    /// state dequantized: h = hq / 128, c = cq / 2^c_frac of its layer (exact).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub state: Option<Option<PathBuf>>,
    /// An RNN's nonlinearity, which PyTorch's files do not record [default: the file's metadata
    /// entry `nonlinearity`, else tanh]; an error if the file records the other one.
    #[arg(long, value_enum)]
    pub nonlinearity: Option<Nonlinearity>,
}

/// A model of any [`Spec`] with its parameters owned: the core's engine ([`Model`]) over a
/// `Vec`.
#[derive(Debug, Clone)]
pub struct DynModel {
    spec: Spec,
    /// The flat parameters, [`Spec::tensors`] order.
    params: Vec<f32>,
    /// The file's metadata (task, cell, head), empty for a plain PyTorch file.
    pub metadata: HashMap<String, String>,
}

/// The recurrent state of one sequence: `h`, and `c` for an LSTM (empty otherwise), each
/// (L·D, H): PyTorch's `h_n` layout for a batch of one.
#[derive(Debug, Clone, PartialEq)]
pub struct DynState {
    h: Vec<f32>,
    c: Vec<f32>,
}

impl DynState {
    /// Hidden state (L·D, H).
    pub fn h(&self) -> &[f32] {
        &self.h
    }
    /// Cell state (L·D, H) (LSTM; empty otherwise).
    pub fn c(&self) -> &[f32] {
        &self.c
    }
}

impl DynModel {
    /// The model of `spec` over `params` ([`Spec::param_len`] values in [`Spec::tensors`]
    /// order), or one line saying why the two do not fit.
    pub fn new(spec: Spec, params: Vec<f32>, metadata: HashMap<String, String>) -> Result<Self> {
        Model::new(spec, &params).map_err(|e| anyhow!("{}: {e}", describe(&spec)))?;
        Ok(Self {
            spec,
            params,
            metadata,
        })
    }

    /// The shape.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The flat parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The cell.
    pub fn cell(&self) -> CellKind {
        self.spec.cell
    }

    /// `(I, H, O)`: inputs per step, hidden units, outputs per step.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.spec.input, self.spec.hidden, self.spec.output)
    }

    /// The core's view of it (`new` checked that the parameters fit the spec).
    pub fn model(&self) -> Result<Model<'_>> {
        Model::new(self.spec, &self.params).map_err(|e| anyhow!("{}: {e}", describe(&self.spec)))
    }

    /// The zero state PyTorch starts from.
    pub fn zero_state(&self) -> DynState {
        let n = self.spec.state_len(1);
        DynState {
            h: vec![0.0; n],
            c: vec![0.0; if self.spec.cell.has_c() { n } else { 0 }],
        }
    }

    /// Runs `x` (T·I values, row-major: step by step) from `state`, which ends as the state after
    /// the last step; returns the head's outputs (T·O values). A unidirectional model runs step
    /// by step ([`Model::step`]), so a sequence may come in pieces; a bidirectional one runs the
    /// whole sequence at once ([`Model::forward`], outputs at every step): its reverse direction
    /// starts at the last step.
    pub fn run(&self, x: &[f32], state: &mut DynState) -> Result<Vec<f32>> {
        let (i, _, o) = self.sizes();
        if !x.len().is_multiple_of(i) {
            bail!(
                "{} input values are not a whole number of steps of {i}",
                x.len()
            );
        }
        let fresh = self.zero_state();
        if state.h.len() != fresh.h.len() || state.c.len() != fresh.c.len() {
            bail!("the state does not fit the model {}", describe(&self.spec));
        }
        let steps = x.len() / i;
        let model = self.model()?;
        let mut y = vec![0.0f32; steps * o]; // (T, O)
        if self.spec.bidirectional {
            let mut cache = vec![0.0f32; Cache::<f32>::len(&self.spec, steps, 1)];
            let mut cache = Cache::new(&self.spec, &mut cache, steps, 1, Outputs::EveryStep)
                .map_err(|e| anyhow!("{e}"))?;
            model
                .forward(x, &mut state.h, &mut state.c, &mut cache, &mut y)
                .map_err(|e| anyhow!("{e}"))?;
        } else {
            let mut scratch = vec![0.0f32; model.step_scratch_len()];
            for (x_t, y_t) in x.chunks_exact(i).zip(y.chunks_exact_mut(o)) {
                model
                    .step(x_t, &mut state.h, &mut state.c, &mut scratch, y_t)
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
        Ok(y)
    }

    /// A one-layer, one-direction model from its six tensors in layout order (weight_ih,
    /// weight_hh, bias_ih, bias_hh, head.weight, head.bias), e.g. a typed model's flat parameters
    /// split by its `Params::TENSORS`. Refused if a length does not fit the sizes.
    pub fn from_tensors(
        cell: tinyrnn::CellKind,
        (i, h, o): (usize, usize, usize),
        t: [&[f32]; 6],
    ) -> Result<Self> {
        let spec = Spec::new(cell, i, h, o);
        spec.validate()
            .map_err(|e| anyhow!("{}: {e}", describe(&spec)))?;
        let mut params = Vec::with_capacity(spec.param_len());
        for (want, got) in spec.tensors().zip(t) {
            if got.len() != want.len() {
                bail!(
                    "tensor `{}` has {} values, expected {} ({:?})",
                    want.name,
                    got.len(),
                    want.len(),
                    want.shape()
                );
            }
            params.extend_from_slice(got);
        }
        Self::new(spec, params, HashMap::new())
    }

    /// The tensor `name` (PyTorch's name, e.g. `gru.weight_ih_l1_reverse`), if the model has it.
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        self.spec
            .tensors()
            .find(|t| t.name.to_string() == name)
            .map(|t| &self.params[t.offset..t.offset + t.len()])
    }

    /// Reads a model file with [`ModelFile::read`]: the spec from the tensor names and shapes,
    /// every tensor present, F32, finite, and no other tensor; an RNN's nonlinearity from the
    /// file's metadata, else tanh.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, None)
    }

    /// [`load`](Self::load) with the caller's nonlinearity for an RNN ([`ModelFile::read_with`]).
    pub fn load_with(path: &Path, nonlinearity: Option<Nonlinearity>) -> Result<Self> {
        Self::from_file(ModelFile::read_with(path, &[], nonlinearity)?)
    }

    /// The model of a file the reader accepted (with no extra tensors).
    pub fn from_file(file: ModelFile) -> Result<Self> {
        let params = file.params();
        Self::new(file.spec, params, file.metadata)
    }

    /// Writes the model to `path` ([`save_model`]: its metadata, then the architecture's).
    pub fn save(&self, path: &Path) -> Result<()> {
        let meta: Vec<(&str, String)> = self
            .metadata
            .iter()
            .filter(|(k, _)| k.as_str() != CHECKSUM_KEY)
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        save_model(path, &self.spec, &self.params, &meta)
    }
}

/// Reads an input CSV for a model with `i` inputs: the values of every step, row-major (T·I).
///
/// Fields are separated by commas and trimmed; a field may be quoted (`"1.5"`). Empty and blank
/// lines are skipped, but line numbers in errors count them (they are the line numbers an editor
/// shows). A first row none of whose fields is a number is a header.
pub fn read_inputs(path: &Path, i: usize) -> Result<Vec<f32>> {
    let p = path.display();
    let data = std::fs::read(path).with_context(|| format!("cannot read {p}"))?;
    parse_inputs(&data, &p.to_string(), i)
}

/// [`read_inputs`] on the bytes of the CSV; `p` names it in errors.
pub fn parse_inputs(data: &[u8], p: &str, i: usize) -> Result<Vec<f32>> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data); // UTF-8 byte order mark
    let mut x = Vec::new();
    let mut first = true;
    for (n, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = n + 1;
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(field).collect();
        let is_header = first && !fields.iter().any(|f| f.parse::<f32>().is_ok());
        first = false;
        if fields.len() != i {
            bail!(
                "{p} line {line}: {} {}, expected {i} (the model's inputs)",
                fields.len(),
                if fields.len() == 1 {
                    "column"
                } else {
                    "columns"
                }
            );
        }
        if is_header {
            continue;
        }
        for (col, f) in fields.iter().enumerate() {
            let col = col + 1;
            match f.parse::<f32>() {
                Ok(v) if v.is_finite() => x.push(v),
                Ok(_) => bail!(
                    "{p} line {line}, column {col}: `{}` is not a finite number",
                    shown(f)
                ),
                Err(_) if f.is_empty() => {
                    bail!("{p} line {line}, column {col}: empty, expected a number")
                }
                Err(_) => bail!(
                    "{p} line {line}, column {col}: `{}` is not a number",
                    shown(f)
                ),
            }
        }
    }
    if x.is_empty() {
        bail!("{p}: no input rows (one row per time step, one column per input)");
    }
    Ok(x)
}

/// A field without surrounding whitespace and quotes.
fn field(f: &str) -> &str {
    let f = f.trim();
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(f, str::trim)
}

/// A field as shown in an error: control characters escaped (the message stays one line), long
/// fields cut.
fn shown(f: &str) -> String {
    let mut s: String = f
        .chars()
        .take(40)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if f.chars().count() > 40 {
        s.push_str("...");
    }
    s
}

/// The outputs as CSV text: header `y0..y{O-1}`, one row per step.
pub fn outputs_csv(o: usize, y: &[f32]) -> String {
    let mut s = (0..o)
        .map(|k| format!("y{k}"))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for row in y.chunks_exact(o) {
        let fields: Vec<String> = row.iter().map(|&v| num(v)).collect();
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    s
}

/// The state as CSV text, one row per hidden unit. A one-layer, one-direction model: `unit,h,c`
/// (no `c` column unless LSTM); otherwise `layer,direction,unit,h,c` with `direction` `forward`
/// or `reverse`, rows in PyTorch's `h_n` order (layer 0 forward, layer 0 reverse, layer 1, ...).
pub fn state_csv(layers: usize, directions: usize, state: &DynState) -> String {
    let lstm = !state.c.is_empty();
    let plain = layers <= 1 && directions <= 1;
    let mut s = String::from(if plain {
        "unit,h"
    } else {
        "layer,direction,unit,h"
    });
    s.push_str(if lstm { ",c\n" } else { "\n" });
    let hs = state.h.len() / (layers * directions).max(1);
    for (n, &h) in state.h.iter().enumerate() {
        let (block, u) = (n / hs.max(1), n % hs.max(1));
        if !plain {
            let dir = if block % directions.max(1) == 1 {
                "reverse"
            } else {
                "forward"
            };
            let _ = write!(s, "{},{dir},", block / directions.max(1));
        }
        let _ = write!(s, "{u},{}", num(h));
        if let Some(&c) = state.c.get(n) {
            let _ = write!(s, ",{}", num(c));
        }
        s.push('\n');
    }
    s
}

/// The int8 state as floats, as `--state` prints it, in the float model's form ([`DynState`]:
/// (L, H) each): h = hq / 128; c (LSTM only) = cq / 2^F with F the layer's `c_frac` (a GRU's
/// Q0.15 copy of h and a tanh RNN have no c column, as in the float model). Each is exact in f32
/// (an integer times a power of two).
pub fn dequantized(model: &QuantModel, state: &QuantState) -> DynState {
    let h_scale = 1.0 / (1u32 << tinyrnn::quant::H_FRAC) as f32;
    let hs = model.spec.hidden.max(1);
    DynState {
        h: state.h.iter().map(|&v| v as f32 * h_scale).collect(),
        c: match model.spec.cell {
            CellKind::Lstm => state
                .c
                .chunks(hs)
                .zip(&model.layers)
                .flat_map(|(c, l)| {
                    let scale = 1.0 / (1u32 << l.c_frac) as f32;
                    c.iter().map(move |&v| v as f32 * scale)
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// Runs `tinyrnn infer`. Returns what goes to stdout: the CSV(s) not written to a file, or a
/// summary line if everything went to files.
///
/// Every path is checked first ([`check_files`]: inputs readable; `--output` and `--state`
/// writable, different from each other and from `--model` and `--input`); the files are written
/// only when everything has been computed, staged and renamed into place together.
pub fn run(args: &InferArgs) -> Result<String> {
    // Where each result goes: `None` not wanted, `Some(None)` printed, `Some(Some(path))` a file.
    let destinations = [
        ("--output", Some(args.output.as_deref())),
        ("--state", args.state.as_ref().map(Option::as_deref)),
    ];
    let files: Vec<(&str, &Path)> = destinations
        .iter()
        .filter_map(|&(flag, dest)| Some((flag, dest??)))
        .collect();
    check_files(
        &[("--model", &args.model), ("--input", &args.input)],
        &files,
    )?;
    let p = args.model.display().to_string();
    let bytes = crate::modelfile::read_bytes(&args.model)?;
    let (kind, (o, layers, directions), y, state) = match crate::modelfile::precision(&bytes, &p)? {
        Precision::F32 => {
            let file = ModelFile::parse_with(&bytes, &p, &[], args.nonlinearity)?;
            let model = DynModel::from_file(file)?;
            let s = *model.spec();
            let x = read_inputs(&args.input, s.input)?;
            let mut state = model.zero_state();
            let y = model.run(&x, &mut state)?;
            let shape = (s.output, s.layers, s.directions());
            (describe(&s), shape, y, state)
        }
        Precision::Int8 => {
            let (model, _) = QuantModel::parse(&bytes, &p)?;
            match args.nonlinearity {
                Some(Nonlinearity::Tanh) if model.spec.cell == CellKind::RnnTanh => {}
                Some(n) => bail!(
                    "--nonlinearity {}: {p} is an int8 {} (int8 RNNs are tanh RNNs)",
                    n.name(),
                    describe(&model.spec)
                ),
                None => {}
            }
            let s = model.spec;
            let x = read_inputs(&args.input, s.input)?;
            let mut state = model.zero_state();
            let y = model.run(&x, &mut state)?;
            let state = dequantized(&model, &state);
            let shape = (s.output, s.layers, 1);
            (format!("int8 {}", describe(&s)), shape, y, state)
        }
    };
    let steps = y.len() / o;
    let results = [
        (outputs_csv(o, &y), "outputs"),
        (state_csv(layers, directions, &state), "final state"),
    ];
    let mut staged = Staged::new();
    let mut printed = Vec::new();
    let mut wrote = Vec::new();
    for ((_, dest), (text, what)) in destinations.into_iter().zip(results) {
        match dest {
            Some(Some(path)) => {
                staged.add(path, |w| Ok(w.write_all(text.as_bytes())?))?;
                wrote.push(format!("{what} to {}", path.display()));
            }
            Some(None) => printed.push(text),
            None => {}
        }
    }
    staged.commit()?;
    if printed.is_empty() {
        Ok(format!(
            "infer: {kind}, {steps} steps; wrote {}",
            wrote.join(", ")
        ))
    } else {
        // `main` adds the final newline.
        Ok(printed.join("\n").trim_end_matches('\n').to_string())
    }
}
