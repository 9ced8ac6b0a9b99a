//! Model files: safetensors with PyTorch's tensor names and shapes, so
//! `module.load_state_dict(safetensors.torch.load_file(path))` loads them; the writer of the
//! tasks and checkpoints, and the one reader that `infer`, `export` and `--resume` share.
//!
//! # Layout
//!
//! A model is the core's [`Spec`]: one recurrent module (`lstm`, `gru` or `rnn`) of L stacked
//! layers, each one or two directions (D), and a linear head applied to the top layer's output
//! (D·H wide). G is the number of gate rows per hidden unit: 4 for the LSTM (i, f, g, o), 3 for
//! the GRU (r, z, n), 1 for the RNN. For layer k = 0..L (I_0 = I, I_k = D·H above) and each
//! direction (suffix `_reverse` for the backward one):
//!
//! | tensor                           | shape      |
//! |----------------------------------|------------|
//! | `{cell}.weight_ih_l{k}[_reverse]`| [G·H, I_k] |
//! | `{cell}.weight_hh_l{k}[_reverse]`| [G·H, H]   |
//! | `{cell}.bias_ih_l{k}[_reverse]`  | [G·H]      |
//! | `{cell}.bias_hh_l{k}[_reverse]`  | [G·H]      |
//! | `head.weight`                    | [O, D·H]   |
//! | `head.bias`                      | [O]        |
//!
//! The reader discovers the [`Spec`] from the file: the cell from the module prefix, L from the
//! `_l{k}` suffixes (numbered 0, 1, ... without a gap), D from `_reverse` (in every layer or in
//! none), I and H from `weight_ih_l0`, O from `head.weight`; then every tensor of
//! [`Spec::tensors`] must be there with its shape, and nothing else.
//!
//! PyTorch's files do not record an RNN's nonlinearity. The reader takes it from the metadata
//! entry `nonlinearity` (`tanh` | `relu`) if the file has one, else from the caller
//! (`--nonlinearity`), else `tanh`; a file that says one and a caller that says the other is an
//! error. Files written by [`save_model`] record `cell` (the module: `lstm`, `gru`, `rnn`),
//! `nonlinearity` (RNN only), `layers` and `bidirectional` (`true` | `false`); when a file has
//! any of these entries it must agree with its tensors.
//!
//! # Int8 models
//!
//! A quantized model (`tinyrnn quantize`; the scheme is the core's `tinyrnn::quant`, whose
//! module doc names every symbol) is a safetensors file of the same kind: a stack of L
//! unidirectional layers of one cell (LSTM, GRU or tanh RNN; G gate rows per unit as above) and
//! the head. Its metadata: `quantization` = `int8-rowwise-v1` ([`QUANT_KEY`],
//! [`tinyrnn::quant::SCHEME`]); the scheme's scalars `x_scale` (s_x, the shortest decimal that
//! reads back to the f32), `shift` (L) and `c_frac` (F), each of the last two a comma-separated
//! list of one value per layer, bottom first (`0,0`; one layer: `0`); `cell` (`lstm`, `gru`,
//! `rnn`) and `layers`; and the float model's metadata (task, head). For layer k = 0..L (I_0 = I,
//! I_k = H above):
//!
//! | tensor                          | dtype | shape      | symbol            |
//! |---------------------------------|-------|------------|-------------------|
//! | `{cell}.weight_ih_l{k}`         | I8    | [G·H, I_k] | Wq_ih             |
//! | `{cell}.weight_hh_l{k}`         | I8    | [G·H, H]   | Wq_hh             |
//! | `{cell}.weight_ih_l{k}.scale`   | F32   | [G·H]      | s_ih (not used by the step) |
//! | `{cell}.weight_hh_l{k}.scale`   | F32   | [G·H]      | s_hh (not used by the step) |
//! | `{cell}.multiplier_ih_l{k}`     | I32   | [G·H]      | M_ih              |
//! | `{cell}.multiplier_hh_l{k}`     | I32   | [G·H]      | M_hh              |
//! | `{cell}.bias_ih_l{k}`           | I32   | [G·H]      | B_ih              |
//! | `{cell}.bias_hh_l{k}`           | I32   | [G·H]      | B_hh              |
//! | `head.weight`                   | I8    | [O, H]     | Wq                |
//! | `head.scale`                    | F32   | [O]        | s[o] / 128        |
//! | `head.bias`                     | F32   | [O]        | b                 |
//!
//! Files written before stacks (one layer, no `layers` entry, `shift` and `c_frac` one value)
//! read unchanged: they are this layout with L = 1. L is the number of `weight_ih_l{k}` tensors
//! (numbered 0, 1, ... without a gap); `cell`, `layers` (and a copied `bidirectional` or
//! `nonlinearity`), when present, must agree with the tensors.
//!
//! A file is int8 if it has the `quantization` entry or any I8 tensor. [`Int8File`] reads it
//! with the refusals below (every tensor of its dtype and shape, no other tensor, F32 values
//! finite); `host::quant::QuantModel` then checks the scheme's values. The float reader refuses
//! an int8 file as one ("... is an int8 model: ..."), and the int8 reader a float file. What the
//! scheme cannot take (a bidirectional model, a ReLU RNN) is refused by one check,
//! [`int8_supported`], wherever a model enters the int8 path.
//!
//! # What the reader refuses
//!
//! Each with one line that names the file and, where there is one, the tensor:
//!
//! * a file larger than [`MAX_FILE_BYTES`] (before reading it), or one that is not safetensors;
//! * a `checksum` entry that does not match the contents (checkpoints carry one; see below);
//! * any tensor that is neither the model's nor an extra the caller declared (a projection
//!   `lstm.weight_hr_l0`, `head.foo`, a checkpoint's `optimizer.state` given to `infer`): no
//!   command runs part of a model and exits 0;
//! * tensors of two recurrent modules (`lstm.*` and `gru.*`), a gap in the layers (`_l0`, `_l2`
//!   without `_l1`), a reverse direction in some layers only, a missing tensor;
//! * a dtype other than F32, a dimension of 0, shapes that disagree with each other;
//! * metadata (`cell`, `nonlinearity`, `layers`, `bidirectional`) that disagrees with the tensors
//!   or with the caller's nonlinearity;
//! * NaN or ±Inf values, naming the tensor and the element. This is a decision: a non-finite
//!   weight reaches every later output through the recurrence (h_t depends on every earlier
//!   step), so the model computes nothing but NaN; tinyrnn's training refuses non-finite losses
//!   and gradients, so it never writes such a file, and a PyTorch file with one is broken too.
//!   Naming the tensor and element finds the fault; a warning would let a useless model run.
//!   Extras (a checkpoint's optimizer state) must be finite too.
//!
//! # Checksum
//!
//! [`save_checked`] adds the metadata entry `checksum: crc32:xxxxxxxx`, a CRC-32 of the payload:
//! for every tensor in name order its name, dtype, shape and bytes, then every metadata entry but
//! `checksum` in key order, each field preceded by its length (so different payloads are
//! different byte streams). The reader verifies it whenever a file has one. It finds damage (a
//! flipped byte, a truncation, a hand edit), not an attacker, who can recompute it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors};
use tinyrnn::{CellKind, Params, Spec, Tensor};

use crate::out::write_atomic;

/// The largest model or checkpoint file read (1 GiB); larger files are refused before reading.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The metadata entry holding a file's checksum (see the module documentation).
pub const CHECKSUM_KEY: &str = "checksum";

/// The metadata entries that record a model's architecture (see the module documentation).
pub const CELL_KEY: &str = "cell";
/// See [`CELL_KEY`].
pub const NONLINEARITY_KEY: &str = "nonlinearity";
/// See [`CELL_KEY`].
pub const LAYERS_KEY: &str = "layers";
/// See [`CELL_KEY`].
pub const BIDIRECTIONAL_KEY: &str = "bidirectional";

/// An RNN's nonlinearity, which PyTorch's files do not record (`--nonlinearity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Nonlinearity {
    /// `nn.RNN(nonlinearity="tanh")`, PyTorch's default.
    Tanh,
    /// `nn.RNN(nonlinearity="relu")`.
    Relu,
}

impl Nonlinearity {
    /// `tanh` or `relu`, as PyTorch spells it.
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
        }
    }

    /// The RNN cell of this nonlinearity.
    pub fn rnn(self) -> CellKind {
        match self {
            Nonlinearity::Tanh => CellKind::RnnTanh,
            Nonlinearity::Relu => CellKind::RnnRelu,
        }
    }
}

/// A model's shape in words: `LSTM(2 -> 3) + Linear(3 -> 1)`, `GRU(3 -> 5, 2 layers,
/// bidirectional) + Linear(10 -> 2)`.
pub fn describe(spec: &Spec) -> String {
    let cell = match spec.cell {
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
        CellKind::RnnTanh => "RNN",
        CellKind::RnnRelu => "RNN-relu",
    };
    let (i, h, o, w) = (spec.input, spec.hidden, spec.output, spec.width());
    let mut more = String::new();
    if spec.layers != 1 {
        more.push_str(&format!(", {} layers", spec.layers));
    }
    if spec.bidirectional {
        more.push_str(", bidirectional");
    }
    format!("{cell}({i} -> {h}{more}) + Linear({w} -> {o})")
}

/// One tensor of a model file: PyTorch's name, its dtype, its shape, and the shape in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// PyTorch's name (`lstm.weight_ih_l0`, ..., `head.bias`).
    pub name: String,
    /// Element type: F32 in a float model; I8, I32 or F32 in an int8 model.
    pub dtype: Dtype,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// The shape in terms of the sizes (`[4H, I]`), for messages.
    pub formula: String,
}

/// `G·H` in words: `H`, `3H`, `4H`.
fn gh(cell: CellKind) -> String {
    match cell.gates() {
        1 => "H".into(),
        g => format!("{g}H"),
    }
}

/// The shape of `t` (a tensor of `spec`) in words, for messages.
fn formula(spec: &Spec, t: &Tensor) -> String {
    let g = gh(spec.cell);
    let input = match t.name.layer {
        Some(0) => "I",
        _ if spec.bidirectional => "2H",
        _ => "H",
    };
    match (t.name.module, t.name.tensor) {
        ("head", "weight") if spec.bidirectional => "[O, 2H]".into(),
        ("head", "weight") => "[O, H]".into(),
        ("head", _) => "[O]".into(),
        (_, "weight_ih") => format!("[{g}, {input}]"),
        (_, "weight_hh") => format!("[{g}, H]"),
        _ => format!("[{g}]"),
    }
}

/// The int8 tensor names of layer `k` of a `module` (`lstm`, `gru`, `rnn`), in layout order:
/// (name, dtype).
fn int8_layer_names(module: &str, k: usize) -> [(String, Dtype); 8] {
    [
        (format!("{module}.weight_ih_l{k}"), Dtype::I8),
        (format!("{module}.weight_hh_l{k}"), Dtype::I8),
        (format!("{module}.weight_ih_l{k}.scale"), Dtype::F32),
        (format!("{module}.weight_hh_l{k}.scale"), Dtype::F32),
        (format!("{module}.multiplier_ih_l{k}"), Dtype::I32),
        (format!("{module}.multiplier_hh_l{k}"), Dtype::I32),
        (format!("{module}.bias_ih_l{k}"), Dtype::I32),
        (format!("{module}.bias_hh_l{k}"), Dtype::I32),
    ]
}

/// Every tensor of the int8 model with the sizes of `spec` (its `layers`, one direction; see
/// "Int8 models" in the module documentation), in layout order: per layer its eight, bottom
/// first, then the head's three.
pub fn int8_tensors(spec: &Spec) -> Vec<TensorSpec> {
    let (h, o) = (spec.hidden, spec.output);
    let rows = spec.cell.gates().saturating_mul(h);
    let g = gh(spec.cell);
    let mut out = Vec::with_capacity(8 * spec.layers + 3);
    for k in 0..spec.layers {
        let (i, input) = if k == 0 { (spec.input, "I") } else { (h, "H") };
        for (n, (name, dtype)) in int8_layer_names(spec.cell.module(), k)
            .into_iter()
            .enumerate()
        {
            let (shape, formula) = match n {
                0 => (vec![rows, i], format!("[{g}, {input}]")),
                1 => (vec![rows, h], format!("[{g}, H]")),
                _ => (vec![rows], format!("[{g}]")),
            };
            out.push(TensorSpec {
                name,
                dtype,
                shape,
                formula,
            });
        }
    }
    let t = |name: &str, dtype, shape, formula: &str| TensorSpec {
        name: name.into(),
        dtype,
        shape,
        formula: formula.into(),
    };
    out.push(t("head.weight", Dtype::I8, vec![o, h], "[O, H]"));
    out.push(t("head.scale", Dtype::F32, vec![o], "[O]"));
    out.push(t("head.bias", Dtype::F32, vec![o], "[O]"));
    out
}

/// The one check of what the int8 scheme takes: any number of unidirectional layers of LSTM,
/// GRU or tanh RNN. A bidirectional model (its reverse direction starts at the last input; the
/// integer step streams) and a ReLU RNN (no int8 cell) are refused with one line naming the
/// model: `p` (a file, or `--int8` for a task's model) and its shape. Every command that takes a
/// model into the int8 path calls it before any other work.
pub fn int8_supported(spec: &Spec, p: &str) -> Result<()> {
    let why = if spec.bidirectional {
        "a bidirectional model's reverse direction starts at the last input, and the int8 step \
         streams"
    } else if spec.cell == CellKind::RnnRelu {
        "a ReLU RNN has no int8 cell"
    } else {
        return Ok(());
    };
    bail!(
        "{p} holds {}: not an int8 model ({why}); the int8 scheme takes unidirectional LSTMs, \
         GRUs and tanh RNNs of any number of layers",
        describe(spec)
    )
}

/// The two kinds of model file: float weights, or int8 weights of the scheme
/// [`tinyrnn::quant::SCHEME`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Every tensor F32 (a trained model, or a PyTorch `state_dict`).
    F32,
    /// A quantized model: metadata [`QUANT_KEY`], I8 weights, I32 multipliers and biases.
    Int8,
}

/// The metadata entry naming an int8 file's quantization scheme.
pub const QUANT_KEY: &str = "quantization";

/// Which kind of model file `bytes` hold: int8 if it has a [`QUANT_KEY`] entry or any I8
/// tensor, float otherwise (the readers then check the rest).
pub fn precision(bytes: &[u8], source: &str) -> Result<Precision> {
    let (st, meta) = open(bytes, source)?;
    Ok(precision_of(&st, &meta))
}

fn precision_of(st: &SafeTensors<'_>, meta: &HashMap<String, String>) -> Precision {
    let i8_tensor = st.tensors().iter().any(|(_, v)| v.dtype() == Dtype::I8);
    if meta.contains_key(QUANT_KEY) || i8_tensor {
        Precision::Int8
    } else {
        Precision::F32
    }
}

/// A tensor's values, of one of the dtypes model files hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// F32 (finite: the reader refuses NaN and ±Inf).
    F32(Vec<f32>),
    /// I32.
    I32(Vec<i32>),
    /// I8.
    I8(Vec<i8>),
}

/// A float model file read and checked: its [`Spec`], its tensors (the spec's and the declared
/// extras that it holds), its metadata.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The architecture.
    pub spec: Spec,
    /// The file's metadata (task, cell, head; a checkpoint's update count and progress).
    pub metadata: HashMap<String, String>,
    /// Where it came from, for messages.
    source: String,
    /// Every tensor of the file by name, values row-major.
    tensors: BTreeMap<String, Vec<f32>>,
}

impl ModelFile {
    /// Reads and checks the model file at `path`; `extras` names the 1-D tensors besides the
    /// model's that the file may hold (e.g. a checkpoint's `optimizer.state`). An RNN's
    /// nonlinearity comes from the file's metadata, else `tanh`.
    pub fn read(path: &Path, extras: &[&str]) -> Result<Self> {
        Self::read_with(path, extras, None)
    }

    /// [`read`](Self::read) with the caller's nonlinearity for an RNN (`--nonlinearity`; an
    /// error if the file's metadata says the other one).
    pub fn read_with(
        path: &Path,
        extras: &[&str],
        nonlinearity: Option<Nonlinearity>,
    ) -> Result<Self> {
        let p = path.display().to_string();
        Self::parse_with(&read_bytes(path)?, &p, extras, nonlinearity)
    }

    /// Checks the bytes of a model file (see the module documentation for what is refused);
    /// `source` names it in messages; `extras` as in [`read`](Self::read).
    pub fn parse(bytes: &[u8], source: &str, extras: &[&str]) -> Result<Self> {
        Self::parse_with(bytes, source, extras, None)
    }

    /// [`parse`](Self::parse) with the caller's nonlinearity (see [`read_with`](Self::read_with)).
    pub fn parse_with(
        bytes: &[u8],
        source: &str,
        extras: &[&str],
        nonlinearity: Option<Nonlinearity>,
    ) -> Result<Self> {
        let p = source;
        let (st, metadata) = open(bytes, p)?;
        if precision_of(&st, &metadata) == Precision::Int8 {
            let scheme = metadata.get(QUANT_KEY).map_or("I8 weights".into(), |s| {
                format!("{QUANT_KEY} `{}`", crate::export::comment_text(s))
            });
            bail!(
                "{p} is an int8 model ({scheme}): this needs the float (F32) model; `tinyrnn \
                 infer` and `tinyrnn export` take either"
            );
        }
        let (spec, tensors) = read_float(&st, &metadata, p, extras, nonlinearity)?;
        Ok(Self {
            spec,
            metadata,
            source: source.into(),
            tensors,
        })
    }

    /// The tensor `name` (the model's or a declared extra), if the file holds it.
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        self.tensors.get(name).map(Vec::as_slice)
    }

    /// Takes the tensor `name` out of the file (empty if it holds none by that name).
    pub fn take(&mut self, name: &str) -> Vec<f32> {
        self.tensors.remove(name).unwrap_or_default()
    }

    /// The model's flat parameter buffer ([`Spec::param_len`] scalars in [`Spec::tensors`]
    /// order), as the core's `tinyrnn::Model` takes it.
    pub fn params(&self) -> Vec<f32> {
        let mut flat = vec![0.0; self.spec.param_len()];
        for t in self.spec.tensors() {
            if let Some(v) = self.tensor(&t.name.to_string()) {
                flat[t.offset..t.offset + t.len()].copy_from_slice(v);
            }
        }
        flat
    }

    /// Copies the model's tensors into `model`, whose tensors must be exactly the file's spec
    /// (same names, same shapes).
    pub fn copy_to<P: Params<f32>>(&self, model: &mut P) -> Result<()> {
        let spec: Vec<(String, Vec<usize>)> = self
            .spec
            .tensors()
            .map(|t| (t.name.to_string(), t.shape().to_vec()))
            .collect();
        let p = &self.source;
        let held = describe(&self.spec);
        if P::TENSORS.len() != spec.len() {
            bail!(
                "{p} holds {held}, which does not fit this model ({} tensors)",
                P::TENSORS.len()
            );
        }
        for t in P::TENSORS {
            match spec.iter().find(|s| s.0 == t.name) {
                None => bail!(
                    "{p} holds {held}: it has no tensor `{}`, which this model needs",
                    t.name
                ),
                Some(s) if s.1 != t.shape => bail!(
                    "{p} holds {held}: tensor `{}` has shape {:?}, this model needs {:?}",
                    t.name,
                    s.1,
                    t.shape
                ),
                Some(_) => {}
            }
        }
        if self.spec.cell.nonlinearity() == Some("relu") {
            bail!("{p} holds {held}: this model is a tanh RNN");
        }
        let flat = model.as_flat_mut();
        for t in P::TENSORS {
            let values = self.tensor(t.name).unwrap_or_default();
            flat[t.offset..t.offset + t.len()].copy_from_slice(values);
        }
        Ok(())
    }
}

/// An int8 model file read and checked (see "Int8 models" in the module documentation): its
/// sizes, its tensors by name, its metadata (the scheme's values are the caller's to check:
/// `host::quant::QuantModel::parse`).
#[derive(Debug, Clone)]
pub struct Int8File {
    /// The architecture: L unidirectional layers of LSTM, GRU or tanh RNN.
    pub spec: Spec,
    /// The file's metadata: [`QUANT_KEY`], the scheme's values, the float model's metadata.
    pub metadata: HashMap<String, String>,
    /// Where it came from, for messages.
    source: String,
    /// Every tensor by name.
    tensors: BTreeMap<String, Values>,
}

impl Int8File {
    /// Reads and checks the int8 model file at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&read_bytes(path)?, &path.display().to_string())
    }

    /// Checks the bytes of an int8 model file; `source` names it in messages. A float model is
    /// refused as such; a scheme other than [`tinyrnn::quant::SCHEME`] before anything else.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        let p = source;
        let (st, metadata) = open(bytes, p)?;
        if precision_of(&st, &metadata) == Precision::F32 {
            bail!(
                "{p} is a float (F32) model, not an int8 one: quantize it first with `tinyrnn \
                 quantize --model {p} --calibrate INPUTS.csv --out INT8.safetensors`"
            );
        }
        let scheme = tinyrnn::quant::SCHEME;
        match metadata.get(QUANT_KEY) {
            None => bail!(
                "{p} has I8 tensors but no metadata entry `{QUANT_KEY}` (expected `{scheme}`)"
            ),
            Some(s) if s != scheme => bail!(
                "{p}: unknown quantization scheme `{}` (this tinyrnn reads `{scheme}`)",
                crate::export::comment_text(s)
            ),
            Some(_) => {}
        }
        let (spec, tensors) = read_int8(&st, &metadata, p)?;
        Ok(Self {
            spec,
            metadata,
            source: source.into(),
            tensors,
        })
    }

    /// Where the file came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Takes the tensor `name` out of the file, if it holds one of that name and dtype.
    pub fn take(&mut self, name: &str) -> Option<Values> {
        self.tensors.remove(name)
    }
}

/// The recurrent tensor names tinyrnn reads, in words (for messages).
const NAMES_HELP: &str = "tinyrnn reads one recurrent module `lstm`, `gru` or `rnn` \
    (`<module>.{weight,bias}_{ih,hh}_l<k>[_reverse]`) and a linear head (`head.weight`, \
    `head.bias`)";

/// A recurrent tensor's name taken apart: (module, tensor, layer, reverse).
fn parse_name(name: &str) -> Option<(&str, &str, usize, bool)> {
    let (module, rest) = name.split_once('.')?;
    if !matches!(module, "lstm" | "gru" | "rnn") {
        return None;
    }
    let (rest, reverse) = match rest.strip_suffix("_reverse") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (tensor, k) = rest.rsplit_once("_l")?;
    if !matches!(tensor, "weight_ih" | "weight_hh" | "bias_ih" | "bias_hh") {
        return None;
    }
    let canonical = !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit());
    if !canonical || (k.len() > 1 && k.starts_with('0')) {
        return None;
    }
    Some((module, tensor, k.parse().ok()?, reverse))
}

/// A metadata entry `key` checked against what the tensors say (`want`), if the file has it.
fn agrees(meta: &HashMap<String, String>, key: &str, want: &str, p: &str) -> Result<()> {
    match meta.get(key) {
        Some(v) if v != want => bail!(
            "{p}: metadata `{key}` = `{}`, but the tensors make it `{want}`",
            crate::export::comment_text(v)
        ),
        _ => Ok(()),
    }
}

/// The cell of recurrent module `module`: for `rnn` the nonlinearity from the metadata or the
/// caller (which must agree), else `tanh`.
fn cell_of(
    module: &str,
    meta: &HashMap<String, String>,
    flag: Option<Nonlinearity>,
    p: &str,
) -> Result<CellKind> {
    agrees(meta, CELL_KEY, module, p)?;
    let recorded = match meta.get(NONLINEARITY_KEY).map(String::as_str) {
        None => None,
        Some("tanh") => Some(Nonlinearity::Tanh),
        Some("relu") => Some(Nonlinearity::Relu),
        Some(v) => bail!(
            "{p}: metadata `{NONLINEARITY_KEY}` = `{}`, expected `tanh` or `relu`",
            crate::export::comment_text(v)
        ),
    };
    if module != "rnn" {
        if let Some(n) = recorded {
            bail!(
                "{p}: metadata `{NONLINEARITY_KEY}` = `{}`, but an `{module}` has no choice of \
                 nonlinearity",
                n.name()
            );
        }
        if let Some(n) = flag {
            bail!(
                "--nonlinearity {} is for an RNN (`rnn.*` tensors); {p} holds an `{module}`",
                n.name()
            );
        }
        return Ok(if module == "lstm" {
            CellKind::Lstm
        } else {
            CellKind::Gru
        });
    }
    match (recorded, flag) {
        (Some(r), Some(f)) if r != f => bail!(
            "{p}: its metadata says nonlinearity `{}`, --nonlinearity says `{}`",
            r.name(),
            f.name()
        ),
        (r, f) => Ok(r.or(f).unwrap_or(Nonlinearity::Tanh).rnn()),
    }
}

/// The [`Spec`] a float file's tensor names and shapes describe, and its tensors (the spec's
/// and `extras`: 1-D F32), checked: no other tensor, each F32 of its shape, values finite.
fn read_float(
    st: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
    p: &str,
    extras: &[&str],
    nonlinearity: Option<Nonlinearity>,
) -> Result<(Spec, BTreeMap<String, Vec<f32>>)> {
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut modules = BTreeSet::new();
    let mut layers = BTreeSet::new();
    let mut reversed = BTreeSet::new();
    for n in &names {
        if let Some((module, _, k, reverse)) = parse_name(n) {
            modules.insert(module);
            layers.insert(k);
            if reverse {
                reversed.insert(k);
            }
        } else if !(n == "head.weight" || n == "head.bias" || extras.contains(&n.as_str())) {
            bail!("{p}: unsupported tensor `{n}`: {NAMES_HELP}");
        }
    }
    for n in &names {
        let view = st.tensor(n)?;
        if view.dtype() != Dtype::F32 {
            bail!(
                "{p}: tensor `{n}` has dtype {:?}, expected F32",
                view.dtype()
            );
        }
    }
    let module = match modules.len() {
        0 => bail!(
            "{p}: no `lstm.*`, `gru.*` or `rnn.*` tensors (expected `lstm.weight_ih_l0`, ...): \
             not a recurrent model"
        ),
        1 => *modules.first().unwrap_or(&"lstm"),
        _ => {
            let m: Vec<String> = modules.iter().map(|m| format!("`{m}.*`")).collect();
            bail!(
                "{p}: tensors of more than one recurrent module ({}); a model has one",
                m.join(" and ")
            )
        }
    };
    let cell = cell_of(module, meta, nonlinearity, p)?;
    let count = layers.last().map_or(0, |k| k.saturating_add(1));
    if let Some(gap) = (0..count).find(|k| !layers.contains(k)) {
        bail!(
            "{p}: a gap in the layers: `{module}.*_l{}` tensors but no `{module}.*_l{gap}` \
             (layers are numbered 0, 1, ... without a gap)",
            count - 1
        );
    }
    let bidirectional = !reversed.is_empty();
    if let Some(k) = (0..count).find(|k| bidirectional && !reversed.contains(k)) {
        let with = reversed.first().copied().unwrap_or(0);
        bail!(
            "{p}: a reverse direction in some layers only: layer {with} has `_reverse` tensors, \
             layer {k} has none (`{module}.weight_ih_l{k}_reverse`, ...)"
        );
    }
    agrees(meta, LAYERS_KEY, &count.to_string(), p)?;
    agrees(meta, BIDIRECTIONAL_KEY, &bidirectional.to_string(), p)?;
    // Names do not depend on the sizes: every tensor present first, then the shapes.
    let named = Spec {
        cell,
        input: 0,
        hidden: 0,
        layers: count,
        bidirectional,
        output: 0,
    };
    for t in named.tensors() {
        let name = t.name.to_string();
        if !names.contains(&name) {
            bail!("{p}: tensor `{name}` is missing");
        }
    }
    let shape = |name: &str| -> Result<Vec<usize>> {
        Ok(st
            .tensor(name)
            .map_err(|_| anyhow!("{p}: tensor `{name}` is missing"))?
            .shape()
            .to_vec())
    };
    let w_ih = format!("{module}.weight_ih_l0");
    let g = cell.gates();
    let (input, hidden) = match shape(&w_ih)?[..] {
        [rows, i] if rows > 0 && i > 0 && rows % g == 0 => (i, rows / g),
        ref s => bail!(
            "{p}: tensor `{w_ih}` has shape {s:?}, expected [{}, I] with H, I >= 1",
            gh(cell)
        ),
    };
    let output = match shape("head.weight")?[..] {
        [o, _] if o > 0 => o,
        ref s => bail!(
            "{p}: tensor `head.weight` has shape {s:?}, expected [O, H] (bidirectional: [O, 2H]) \
             with O >= 1 (H = {hidden})"
        ),
    };
    let spec = Spec {
        cell,
        input,
        hidden,
        layers: count,
        bidirectional,
        output,
    };
    spec.validate()
        .map_err(|e| anyhow!("{p}: {} is not a model tinyrnn runs: {e}", describe(&spec)))?;
    let mut wanted = BTreeSet::new();
    for t in spec.tensors() {
        let name = t.name.to_string();
        let got = shape(&name)?;
        if got != t.shape() {
            bail!(
                "{p}: tensor `{name}` has shape {got:?}, expected {:?} = {} (I = {input}, H = \
                 {hidden} from `{w_ih}` {:?}, O = {output} from `head.weight`)",
                t.shape(),
                formula(&spec, &t),
                shape(&w_ih)?,
            );
        }
        wanted.insert(name);
    }
    let mut tensors = BTreeMap::new();
    for name in names {
        if !wanted.contains(&name) {
            if !extras.contains(&name.as_str()) {
                bail!("{p}: unsupported tensor `{name}`: {NAMES_HELP}");
            }
            match shape(&name)?.as_slice() {
                [n] if *n >= 1 => {}
                s => bail!("{p}: tensor `{name}` has shape {s:?}, expected [N] with N >= 1"),
            }
        }
        let values = finite_values(st.tensor(&name)?.data(), &name, p)?;
        tensors.insert(name, values);
    }
    Ok((spec, tensors))
}

/// The tensors of an int8 model file, checked: its module (`lstm`, `gru` or `rnn`: every
/// recurrent tensor of one), its layers (the `weight_ih_l{k}` tensors, numbered without a gap),
/// then exactly [`int8_tensors`] of the sizes its `weight_ih_l0` and `head.weight` give, each of
/// its dtype and shape, F32 values finite. The metadata entries of the architecture (`cell`,
/// `layers`, `bidirectional`, `nonlinearity`), when present, must agree; a model the scheme does
/// not take is refused by [`int8_supported`].
fn read_int8(
    st: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
    p: &str,
) -> Result<(Spec, BTreeMap<String, Values>)> {
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let modules: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.split_once('.').map(|(m, _)| m))
        .filter(|m| matches!(*m, "lstm" | "gru" | "rnn"))
        .collect();
    let module = match modules.len() {
        1 => *modules.first().unwrap_or(&"lstm"),
        0 => bail!(
            "{p}: no `lstm.*`, `gru.*` or `rnn.*` tensors (expected `lstm.weight_ih_l0`, ...): \
             not a recurrent model"
        ),
        _ => {
            let m: Vec<String> = modules.iter().map(|m| format!("`{m}.*`")).collect();
            bail!(
                "{p}: tensors of more than one recurrent module ({}); a model has one",
                m.join(" and ")
            )
        }
    };
    let cell = match module {
        "lstm" => CellKind::Lstm,
        "gru" => CellKind::Gru,
        _ => CellKind::RnnTanh,
    };
    // The layers: one `weight_ih_l{k}` each.
    let prefix = format!("{module}.weight_ih_l");
    let layers: BTreeSet<usize> = names
        .iter()
        .filter_map(|n| n.strip_prefix(&prefix))
        .filter(|k| k.bytes().all(|b| b.is_ascii_digit()) && (*k == "0" || !k.starts_with('0')))
        .filter_map(|k| k.parse().ok())
        .collect();
    let count = layers.last().map_or(1, |k| k.saturating_add(1));
    if let Some(gap) = (0..count).find(|k| !layers.contains(k)) {
        bail!(
            "{p}: a gap in the layers: `{module}.weight_ih_l{}` but no `{module}.weight_ih_l{gap}` \
             (layers are numbered 0, 1, ... without a gap)",
            count - 1
        );
    }
    // The architecture's metadata, where the file has it, must be what the tensors say.
    agrees(meta, CELL_KEY, module, p)?;
    agrees(meta, LAYERS_KEY, &count.to_string(), p)?;
    let shape = |name: &str| {
        st.tensor(name)
            .map(|v| v.shape().to_vec())
            .map_err(|_| anyhow!("{p}: tensor `{name}` is missing"))
    };
    let w_ih = format!("{module}.weight_ih_l0");
    let g = cell.gates();
    let (i, h) = match shape(&w_ih)?[..] {
        [rows, i] if rows > 0 && i > 0 && rows % g == 0 => (i, rows / g),
        ref s => bail!(
            "{p}: tensor `{w_ih}` has shape {s:?}, expected [{}, I] with H, I >= 1",
            gh(cell)
        ),
    };
    let o = match shape("head.weight")?[..] {
        [o, _] if o > 0 => o,
        ref s => bail!(
            "{p}: tensor `head.weight` has shape {s:?}, expected [O, H] with O >= 1 (H = {h})"
        ),
    };
    let spec = Spec {
        layers: count,
        ..Spec::new(cell, i, h, o)
    };
    // A copied `bidirectional` or `nonlinearity` entry saying what the scheme does not take: the
    // one refusal of those.
    int8_supported(
        &Spec {
            cell: match meta.get(NONLINEARITY_KEY).map(String::as_str) {
                Some("relu") if cell == CellKind::RnnTanh => CellKind::RnnRelu,
                _ => cell,
            },
            bidirectional: meta.get(BIDIRECTIONAL_KEY).map(String::as_str) == Some("true"),
            ..spec
        },
        p,
    )?;
    agrees(meta, BIDIRECTIONAL_KEY, "false", p)?;
    if cell == CellKind::RnnTanh {
        agrees(meta, NONLINEARITY_KEY, "tanh", p)?;
    } else if let Some(v) = meta.get(NONLINEARITY_KEY) {
        bail!(
            "{p}: metadata `{NONLINEARITY_KEY}` = `{}`, but an `{module}` has no choice of \
             nonlinearity",
            crate::export::comment_text(v)
        );
    }
    // Names and dtypes do not depend on the sizes.
    let model = int8_tensors(&spec);
    let known = |n: &str| model.iter().any(|t| t.name == n);
    if let Some(n) = names.iter().find(|n| !known(n)) {
        let listed: Vec<String> = model.iter().map(|t| format!("`{}`", t.name)).collect();
        bail!(
            "{p}: unsupported tensor `{n}`: an int8 model of tinyrnn ({} {}, one direction) \
             holds exactly {}",
            count,
            if count == 1 { "layer" } else { "layers" },
            listed.join(", ")
        );
    }
    for t in &model {
        let view = st
            .tensor(&t.name)
            .map_err(|_| anyhow!("{p}: tensor `{}` is missing", t.name))?;
        if view.dtype() != t.dtype {
            bail!(
                "{p}: tensor `{}` has dtype {:?}, expected {:?}",
                t.name,
                view.dtype(),
                t.dtype
            );
        }
    }
    spec.validate()
        .map_err(|e| anyhow!("{p}: {} is not a model tinyrnn runs: {e}", describe(&spec)))?;
    for t in int8_tensors(&spec) {
        let got = shape(&t.name)?;
        if got != t.shape {
            bail!(
                "{p}: tensor `{}` has shape {got:?}, expected {:?} = {} (I = {i}, H = {h} \
                 from `{w_ih}` {:?}, O = {o} from `head.weight`)",
                t.name,
                t.shape,
                t.formula,
                shape(&w_ih)?,
            );
        }
    }
    let mut tensors = BTreeMap::new();
    for name in names {
        let view = st.tensor(&name)?;
        let data = view.data();
        let values = match view.dtype() {
            Dtype::I8 => Values::I8(data.iter().map(|&b| b as i8).collect()),
            Dtype::I32 => Values::I32(
                data.chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            _ => Values::F32(finite_values(data, &name, p)?),
        };
        tensors.insert(name, values);
    }
    Ok((spec, tensors))
}

/// The little-endian F32 values of `data`, refusing NaN and ±Inf with the element's index.
fn finite_values(data: &[u8], name: &str, p: &str) -> Result<Vec<f32>> {
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some((k, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        bail!(
            "{p}: tensor `{name}` element {k} is {v}: a non-finite weight makes every output \
             NaN (the file is damaged or the training that wrote it diverged)"
        );
    }
    Ok(values)
}

/// The bytes of the regular file at `path`, refusing one larger than [`MAX_FILE_BYTES`] before
/// reading it (and one that grows past it while being read).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let p = path.display();
    let too_big = |size: String| {
        anyhow!("{p} is {size} bytes, larger than a model file may be ({MAX_FILE_BYTES} bytes)")
    };
    // Not opened unless it is a regular file: opening a FIFO waits for a writer.
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {p}"))?;
    if !meta.is_file() {
        bail!("cannot read {p}: not a regular file");
    }
    let len = meta.len();
    if len > MAX_FILE_BYTES {
        return Err(too_big(len.to_string()));
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {p}"))?;
    let mut data = Vec::with_capacity(len as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("cannot read {p}"))?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(format!("more than {MAX_FILE_BYTES}")));
    }
    Ok(data)
}

/// The metadata of a safetensors file's bytes, its checksum verified if it has one.
pub fn metadata(bytes: &[u8], source: &str) -> Result<HashMap<String, String>> {
    Ok(open(bytes, source)?.1)
}

/// The metadata of the safetensors file at `path` (see [`metadata`]).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    metadata(&read_bytes(path)?, &path.display().to_string())
}

/// The checksum entry a safetensors file's bytes should carry (any `checksum` entry they have
/// is left out of it), e.g. for a tool that edits a checkpoint on purpose.
pub fn checksum_of(bytes: &[u8]) -> Result<String> {
    let (st, meta) = deserialize(bytes, "the file")?;
    Ok(payload_checksum(&st, &meta))
}

/// Reads `bytes` as safetensors, verifying the checksum if there is one.
fn open<'a>(bytes: &'a [u8], p: &str) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let (st, meta) = deserialize(bytes, p)?;
    if let Some(stored) = meta.get(CHECKSUM_KEY) {
        let actual = payload_checksum(&st, &meta);
        if *stored != actual {
            bail!(
                "{p} is damaged: checksum mismatch (it records `{}`, its contents give \
                 `{actual}`)",
                stored.escape_debug()
            );
        }
    }
    Ok((st, meta))
}

fn deserialize<'a>(bytes: &'a [u8], p: &str) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let invalid = |e: SafeTensorError| {
        use SafeTensorError::*;
        let hint = match e {
            HeaderTooSmall | HeaderTooLarge | InvalidHeaderLength | MetadataIncompleteBuffer => {
                " (truncated, or not a safetensors file)"
            }
            _ => "",
        };
        anyhow!("{p} is not a valid safetensors file: {e}{hint}")
    };
    let st = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    Ok((st, meta.metadata().clone().unwrap_or_default()))
}

/// The checksum of a parsed file's tensors and metadata (see the module documentation).
fn payload_checksum(st: &SafeTensors<'_>, meta: &HashMap<String, String>) -> String {
    let mut tensors: Vec<_> = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let dtypes: Vec<String> = tensors
        .iter()
        .map(|(_, v)| format!("{:?}", v.dtype()))
        .collect();
    checksum(
        tensors
            .iter()
            .zip(&dtypes)
            .map(|((n, v), d)| (n.as_str(), d.as_str(), v.shape(), v.data())),
        meta.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
}

/// `crc32:xxxxxxxx` of `tensors` (name, dtype, shape, bytes; in name order) and the metadata
/// entries but [`CHECKSUM_KEY`] (sorted here), every field preceded by its length.
fn checksum<'a>(
    tensors: impl Iterator<Item = (&'a str, &'a str, &'a [usize], &'a [u8])>,
    meta: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut crc = crc32fast::Hasher::new();
    let mut field = |b: &[u8]| {
        crc.update(&(b.len() as u64).to_le_bytes());
        crc.update(b);
    };
    for (name, dtype, shape, data) in tensors {
        field(name.as_bytes());
        field(dtype.as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        field(&dims);
        field(data);
    }
    let meta: BTreeMap<&str, &str> = meta.filter(|(k, _)| *k != CHECKSUM_KEY).collect();
    for (k, v) in meta {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    format!("crc32:{:08x}", crc.finalize())
}

/// Writes `model` to `path` atomically, with `metadata` (e.g. task, head activation).
pub fn save<P: Params<f32>>(path: &Path, model: &P, metadata: &[(&str, String)]) -> Result<()> {
    save_with(path, model, &[], metadata)
}

/// [`save`] with extra 1-D tensors beside the model's (empty ones are left out).
///
/// The file is the same for the same inputs, byte for byte: the header (written with `serde_json`:
/// its map keeps insertion order under safetensors' `preserve_order`, sorted keys otherwise) lists
/// the metadata keys sorted and the tensors in name order. `safetensors::serialize` takes the
/// metadata as a `HashMap` and writes it in an order that changes from one process to the next.
pub fn save_with<P: Params<f32>>(
    path: &Path,
    model: &P,
    extra: &[(&str, &[f32])],
    metadata: &[(&str, String)],
) -> Result<()> {
    write(path, model, extra, metadata, false)
}

/// [`save_with`] plus the metadata entry [`CHECKSUM_KEY`] (see the module documentation): for
/// files that must be found out when damaged, such as checkpoints.
pub fn save_checked<P: Params<f32>>(
    path: &Path,
    model: &P,
    extra: &[(&str, &[f32])],
    metadata: &[(&str, String)],
) -> Result<()> {
    write(path, model, extra, metadata, true)
}

fn write<P: Params<f32>>(
    path: &Path,
    model: &P,
    extra: &[(&str, &[f32])],
    metadata: &[(&str, String)],
    checked: bool,
) -> Result<()> {
    let flat = model.as_flat();
    let tensors = P::TENSORS
        .iter()
        .map(|t| {
            RawTensor::f32(
                t.name,
                t.shape.to_vec(),
                &flat[t.offset..t.offset + t.len()],
            )
        })
        .collect();
    write_raw(path, tensors, extra, metadata, checked)
}

/// The one writer of float model files: `tensors`, the non-empty `extra` 1-D tensors and
/// `metadata` (plus a checksum if `checked`), written atomically.
fn write_raw(
    path: &Path,
    mut tensors: Vec<RawTensor>,
    extra: &[(&str, &[f32])],
    metadata: &[(&str, String)],
    checked: bool,
) -> Result<()> {
    tensors.extend(
        extra
            .iter()
            .filter(|e| !e.1.is_empty())
            .map(|&(n, v)| RawTensor::f32(n, vec![v.len()], v)),
    );
    let bytes = encode(tensors, metadata, checked).with_context(|| path.display().to_string())?;
    write_atomic(path, |w| Ok(w.write_all(&bytes)?))
}

/// The metadata entries that record `spec`'s architecture: `cell` (the module), `nonlinearity`
/// (RNN only), `layers`, `bidirectional`.
pub fn spec_metadata(spec: &Spec) -> Vec<(&'static str, String)> {
    let mut meta = vec![(CELL_KEY, spec.cell.module().to_string())];
    if let Some(n) = spec.cell.nonlinearity() {
        meta.push((NONLINEARITY_KEY, n.to_string()));
    }
    meta.push((LAYERS_KEY, spec.layers.to_string()));
    meta.push((BIDIRECTIONAL_KEY, spec.bidirectional.to_string()));
    meta
}

/// Writes a run-time model (`spec` and its flat parameters, [`Spec::tensors`] order) to `path`
/// atomically, with `metadata` and the entries of [`spec_metadata`] (which win over the
/// caller's): the file the reader gives back as the same `spec` and parameters.
pub fn save_model(
    path: &Path,
    spec: &Spec,
    params: &[f32],
    metadata: &[(&str, String)],
) -> Result<()> {
    save_model_with(path, spec, params, &[], metadata, false)
}

/// [`save_model`] with `extra` 1-D tensors beside the model's (empty ones left out) and, if
/// `checked`, the [`CHECKSUM_KEY`] entry (checkpoints).
pub fn save_model_with(
    path: &Path,
    spec: &Spec,
    params: &[f32],
    extra: &[(&str, &[f32])],
    metadata: &[(&str, String)],
    checked: bool,
) -> Result<()> {
    let p = path.display();
    spec.validate()
        .map_err(|e| anyhow!("cannot write {p}: {}: {e}", describe(spec)))?;
    if params.len() != spec.param_len() {
        bail!(
            "cannot write {p}: {} has {} parameters, given {}",
            describe(spec),
            spec.param_len(),
            params.len()
        );
    }
    let tensors = spec
        .tensors()
        .map(|t| {
            RawTensor::f32(
                &t.name.to_string(),
                t.shape().to_vec(),
                &params[t.offset..t.offset + t.len()],
            )
        })
        .collect();
    let mut meta = metadata.to_vec();
    meta.extend(spec_metadata(spec));
    write_raw(path, tensors, extra, &meta, checked)
}

/// One tensor to write: name, dtype, shape, little-endian bytes.
#[derive(Debug, Clone)]
pub struct RawTensor {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// The values, little-endian.
    pub data: Vec<u8>,
}

impl RawTensor {
    /// An F32 tensor.
    pub fn f32(name: &str, shape: Vec<usize>, v: &[f32]) -> Self {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Self::new(name, Dtype::F32, shape, data)
    }

    /// An I32 tensor.
    pub fn i32(name: &str, shape: Vec<usize>, v: &[i32]) -> Self {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Self::new(name, Dtype::I32, shape, data)
    }

    /// An I8 tensor.
    pub fn i8(name: &str, shape: Vec<usize>, v: &[i8]) -> Self {
        let data = v.iter().map(|&x| x as u8).collect();
        Self::new(name, Dtype::I8, shape, data)
    }

    fn new(name: &str, dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            dtype,
            shape,
            data,
        }
    }
}

/// Writes `tensors` and `metadata` to `path` atomically, as [`encode`] gives them.
pub fn save_tensors(
    path: &Path,
    tensors: Vec<RawTensor>,
    metadata: &[(&str, String)],
) -> Result<()> {
    write_raw(path, tensors, &[], metadata, false)
}

/// The safetensors bytes of `tensors` and `metadata` (plus [`CHECKSUM_KEY`] if `checked`),
/// the same for the same inputs (see [`save_with`]): metadata keys sorted, a later duplicate key
/// winning; tensors in name order (two of one name are refused); data 8-byte aligned.
pub fn encode(
    mut tensors: Vec<RawTensor>,
    metadata: &[(&str, String)],
    checked: bool,
) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = tensors.windows(2).find(|w| w[0].name == w[1].name) {
        bail!("two tensors named `{}`", w[0].name);
    }
    for t in &tensors {
        let n = t.shape.iter().product::<usize>() * t.dtype.bitsize() / 8;
        if n != t.data.len() {
            bail!(
                "tensor `{}` has {} bytes for shape {:?} of {:?}",
                t.name,
                t.data.len(),
                t.shape,
                t.dtype
            );
        }
    }
    let dtypes: Vec<String> = tensors.iter().map(|t| format!("{:?}", t.dtype)).collect();
    // A later duplicate key wins, as it would in a map; a BTreeMap keeps the keys sorted.
    let mut meta: BTreeMap<&str, String> = metadata.iter().map(|(k, v)| (*k, v.clone())).collect();
    if checked {
        let sum = checksum(
            tensors.iter().zip(&dtypes).map(|(t, d)| {
                (
                    t.name.as_str(),
                    d.as_str(),
                    t.shape.as_slice(),
                    t.data.as_slice(),
                )
            }),
            meta.iter().map(|(k, v)| (*k, v.as_str())),
        );
        meta.insert(CHECKSUM_KEY, sum);
    }
    let mut header = serde_json::Map::new();
    if !meta.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(&meta)?);
    }
    let mut offset = 0usize;
    for (t, dtype) in tensors.iter().zip(&dtypes) {
        let end = offset + t.data.len();
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": dtype, "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header = serde_json::to_string(&header)?;
    // Pad with spaces so the data starts 8-byte aligned, as safetensors itself does.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for t in &tensors {
        out.extend_from_slice(&t.data);
    }
    Ok(out)
}

/// Reads the model file at `path` into `model` (see [`ModelFile`]: the file must hold exactly
/// the tensors of `P`, finite); returns its metadata.
pub fn load_into<P: Params<f32>>(path: &Path, model: &mut P) -> Result<HashMap<String, String>> {
    let file = ModelFile::read(path, &[])?;
    file.copy_to(model)?;
    Ok(file.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;
    use tinyrnn::{LstmModel, RnnModel};

    type M = LstmModel<2, 3, 1>;

    fn model() -> Box<M> {
        let mut model: Box<M> = crate::net::boxed_zeroed();
        model.init(&mut tinyrnn::rng(1), None);
        model
    }

    /// The safetensors bytes of `tensors` (name, shape, values) and `meta`.
    fn bytes(tensors: &[(&str, Vec<usize>, Vec<f32>)], meta: &[(&str, &str)]) -> Vec<u8> {
        let data: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let views: Vec<(&str, TensorView)> = tensors
            .iter()
            .zip(&data)
            .map(|((n, s, _), d)| (*n, TensorView::new(Dtype::F32, s.clone(), d).unwrap()))
            .collect();
        let meta: HashMap<String, String> = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        safetensors::serialize(views, (!meta.is_empty()).then_some(meta)).unwrap()
    }

    /// The tensors of [`model`] as (name, shape, values).
    fn tensors() -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
        let m = model();
        M::TENSORS
            .iter()
            .map(|t| (t.name, t.shape.to_vec(), m.tensor(t.name).unwrap().to_vec()))
            .collect()
    }

    /// The one-line error of parsing `b` (with the extra `opt` allowed).
    fn refused(b: &[u8]) -> String {
        let e = format!("{:#}", ModelFile::parse(b, "m.st", &["opt"]).unwrap_err());
        assert!(!e.contains('\n'), "not one line: {e}");
        e
    }

    /// The writer's header is valid safetensors JSON (escapes included), reads back exactly, and
    /// the same inputs give the same bytes whatever order the metadata comes in.
    #[test]
    fn files_read_back_and_are_deterministic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = model();
        let extra = [1.5f32, -2.0, 3.25];
        let meta = [
            ("task", "t".to_string()),
            ("flags", "A { x: \"q\\\"\", y: \n\t\u{1} é }".to_string()),
        ];
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        save_with(&a, &*model, &[("opt", &extra)], &meta).expect("save");
        let reversed = [meta[1].clone(), meta[0].clone()];
        save_with(&b, &*model, &[("opt", &extra)], &reversed).expect("save");
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let file = ModelFile::read(&a, &["opt"]).expect("read");
        let mut back: Box<M> = crate::net::boxed_zeroed();
        file.copy_to(&mut *back).expect("copy");
        assert_eq!(back.as_flat(), model.as_flat());
        assert_eq!(file.metadata.get("flags"), Some(&meta[1].1));
        assert_eq!(read_metadata(&a).expect("metadata"), file.metadata);
        assert_eq!(file.tensor("opt"), Some(&extra[..]));
        let spec = Spec::new(CellKind::Lstm, 2, 3, 1);
        assert_eq!(file.spec, spec);
        assert_eq!(describe(&spec), "LSTM(2 -> 3) + Linear(3 -> 1)");
    }

    /// A checked file carries the checksum of its payload; one flipped byte anywhere in the
    /// tensors, or a metadata value edited to one of the same length, is refused.
    #[test]
    fn checksums_find_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c");
        let meta = [("update", "40".to_string())];
        save_checked(&path, &*model(), &[("opt", &[0.5, 0.25])], &meta).expect("save");
        let good = std::fs::read(&path).unwrap();
        let file = ModelFile::parse(&good, "c", &["opt"]).expect("parse");
        assert_eq!(
            file.metadata.get(CHECKSUM_KEY),
            Some(&checksum_of(&good).unwrap())
        );
        let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        for at in [header, header + 13, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            let e = refused(&bad);
            assert!(e.contains("m.st is damaged: checksum mismatch"), "{e}");
        }
        let mut edited = good.clone();
        let at = good.windows(4).position(|w| w == b"\"40\"").unwrap();
        edited[at + 1..at + 3].copy_from_slice(b"99");
        let e = refused(&edited);
        assert!(e.contains("checksum mismatch"), "{e}");
        // The same model unchecked has no checksum, and its bytes are the plain writer's.
        save_with(&path, &*model(), &[("opt", &[0.5, 0.25])], &meta).expect("save");
        let plain = read_metadata(&path).unwrap();
        assert!(!plain.contains_key(CHECKSUM_KEY));
    }

    /// Every tensor of a file is used or the file is refused, naming the tensor.
    #[test]
    fn unknown_tensors_are_refused_by_name() {
        for name in ["lstm.weight_hr_l0", "head.foo", "optimizer.state", "foo"] {
            let mut t = tensors();
            t.push((name, vec![3], vec![1.0, 2.0, 3.0]));
            let e = refused(&bytes(&t, &[]));
            assert!(e.contains(&format!("unsupported tensor `{name}`")), "{e}");
        }
        // A second layer or a reverse direction is part of the model: the rest of it is missing.
        for (name, missing) in [
            ("lstm.weight_ih_l1", "lstm.weight_hh_l1"),
            ("lstm.weight_ih_l0_reverse", "lstm.weight_hh_l0_reverse"),
        ] {
            let mut t = tensors();
            t.push((name, vec![3], vec![1.0, 2.0, 3.0]));
            let e = refused(&bytes(&t, &[]));
            assert!(e.contains(&format!("tensor `{missing}` is missing")), "{e}");
        }
        // Declared extras must be 1-D with at least one value.
        for shape in [vec![2, 2], vec![0]] {
            let mut t = tensors();
            let n = shape.iter().product();
            t.push(("opt", shape, vec![1.0; n]));
            let e = refused(&bytes(&t, &[]));
            assert!(e.contains("tensor `opt` has shape"), "{e}");
        }
    }

    /// NaN and ±Inf are refused with the tensor and the element, in the model and in extras.
    #[test]
    fn non_finite_values_are_refused() {
        for (name, v) in [
            ("lstm.weight_hh_l0", f32::NAN),
            ("head.bias", f32::INFINITY),
            ("opt", f32::NEG_INFINITY),
        ] {
            let mut t = tensors();
            t.push(("opt", vec![2], vec![0.0, 0.0]));
            let target = t.iter_mut().find(|t| t.0 == name).unwrap();
            let k = target.2.len() - 1;
            target.2[k] = v;
            let e = refused(&bytes(&t, &[]));
            assert!(
                e.contains(&format!("tensor `{name}` element {k} is {v}")),
                "{e}"
            );
        }
    }

    /// A header claiming a huge shape is refused without overflow or allocation.
    #[test]
    fn huge_shapes_are_refused() {
        let big = 1u64 << 63;
        let header = format!(
            r#"{{"lstm.weight_ih_l0":{{"dtype":"F32","shape":[{big},{big}],"data_offsets":[0,0]}}}}"#
        );
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header.as_bytes());
        let e = refused(&b);
        assert!(e.contains("not a valid safetensors file"), "{e}");
    }

    /// A file over the size cap is refused before it is read (a sparse file: nothing is
    /// written to disk).
    #[test]
    fn oversized_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.safetensors");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = format!("{:#}", ModelFile::read(&path, &[]).unwrap_err());
        assert!(
            e.contains(&format!("is {} bytes, larger than", MAX_FILE_BYTES + 1)),
            "{e}"
        );
    }

    /// Every one-byte change and every truncation of a checked file is an error or a file that
    /// passes every check, never a panic (a small stand-in for the fuzz target).
    #[test]
    fn every_damaged_byte_and_cut_is_handled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c");
        let mut small: Box<LstmModel<1, 1, 1>> = crate::net::boxed_zeroed();
        small.init(&mut tinyrnn::rng(3), None);
        save_checked(&path, &*small, &[("opt", &[1.0])], &[("k", "v".into())]).unwrap();
        let good = std::fs::read(&path).unwrap();
        for at in 0..good.len() {
            for bit in [0x01, 0x80] {
                let mut bad = good.clone();
                bad[at] ^= bit;
                let _ = ModelFile::parse(&bad, "c", &["opt"]);
            }
            let _ = ModelFile::parse(&good[..at], "c", &["opt"]);
        }
        let dir_err = format!("{:#}", ModelFile::read(dir.path(), &[]).unwrap_err());
        assert!(dir_err.contains("not a regular file"), "{dir_err}");
    }

    /// A file of other sizes or another cell does not load into a typed model.
    #[test]
    fn other_sizes_do_not_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m");
        save(&path, &*model(), &[]).unwrap();
        let mut other: Box<LstmModel<2, 4, 1>> = crate::net::boxed_zeroed();
        let e = format!("{:#}", load_into(&path, &mut *other).unwrap_err());
        assert!(
            e.contains("holds LSTM(2 -> 3) + Linear(3 -> 1): tensor `lstm.weight_ih_l0` has shape [12, 2], this model needs [16, 2]"),
            "{e}"
        );
        let mut rnn: Box<RnnModel<2, 3, 1>> = crate::net::boxed_zeroed();
        let e = format!("{:#}", load_into(&path, &mut *rnn).unwrap_err());
        assert!(e.contains("has no tensor `rnn.weight_ih_l0`"), "{e}");
    }
}
