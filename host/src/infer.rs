//! `tinyrnn infer`: runs a model file on a CSV of inputs, one row per time step.
//!
//! # Why runtime sizes
//!
//! The core's models (`tinyrnn::LstmModel<I, H, O>`, `RnnModel<I, H, O>`) carry their sizes in
//! their types, so a host binary only runs the sizes compiled into it. A file written by PyTorch
//! can have any `I`, `H`, `O`. Here the cell and the sizes are read from the tensors (the cell
//! from the `lstm.` / `rnn.` names, `I` and `H` from `weight_ih_l0` [G·H, I], `O` from
//! `head.weight` [O, H]) and the weights live in `Vec`s.
//!
//! No new arithmetic is written here: a step is the core's own kernels, called in the same order
//! as the typed `step` (`LstmModel::step`, `RnnModel::step`): `pre = b_ih + b_hh`, then
//! [`Kernels::gemm_nt`] with `W_ih` and `x`, then with `W_hh` and `h`, then
//! [`Kernels::lstm_pointwise`] (tanh RNN: [`Kernels::tanh_pointwise`]); the head is the bias plus
//! [`Kernels::gemm_nt`]. With the same kernels ([`tinyrnn::Simd`], the typed models' `f32`
//! kernels) the results are bit-identical to the typed `step` (`tests/infer.rs` checks this).
//!
//! # Files
//!
//! * Input CSV: one row per time step, one column per input feature. A header is optional: a
//!   first row none of whose fields is a number is a header (it must have I columns too). Every
//!   other field must be a finite number.
//! * Output CSV: header `y0..y{O-1}`, one row per step: the linear head's output, as the PyTorch
//!   module returns it (the head activation named in the file's metadata is not applied).
//! * State CSV (`--state`): the state after the last step, `unit,h,c` (RNN: `unit,h`).
//!
//! # Int8 models
//!
//! An int8 file (`tinyrnn quantize`; [`crate::modelfile`], "Int8 models") runs the core's
//! integer step ([`QuantModel::run`]), the same code and bits as on the device; the outputs are
//! the head's f32 values in the same CSV, and `--state` gives the integer state dequantized
//! ([`dequantized`]).
//!
//! Files are written atomically (see [`crate::out`]); every error is one line and leaves no file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tinyrnn::{Kernels, Simd};

use crate::modelfile::{ModelFile, ModelSpec, Precision};
use crate::net::CellKind;
use crate::out::{Staged, check_files, num};
use crate::quant::{QuantModel, QuantState};

/// `tinyrnn infer` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct InferArgs {
    /// Model file: safetensors with PyTorch's names (`lstm.*` or `rnn.*`, `head.*`), written by a
    /// task or by PyTorch; sizes are read from the tensor shapes. An int8 file (`tinyrnn
    /// quantize`) runs the integer step, the device's arithmetic bit for bit.
    #[arg(long, value_name = "FILE.safetensors")]
    pub model: PathBuf,
    /// Inputs: one row per time step, one column per input feature (header optional).
    #[arg(long, value_name = "X.csv")]
    pub input: PathBuf,
    /// Write the outputs here (header y0..y{O-1}, one row per step) [default: stdout].
    #[arg(long, value_name = "Y.csv")]
    pub output: Option<PathBuf>,
    /// Also give the final state as CSV `unit,h,c` (RNN: `unit,h`): written to FILE, or printed
    /// (after the outputs, separated by an empty line, if those are printed too). For an int8
    /// model the integer state dequantized: h = hq / 128, c = cq / 2^c_frac (exact).
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub state: Option<Option<PathBuf>>,
}

/// A one-layer LSTM or tanh RNN with a linear head, sizes known at run time.
#[derive(Debug, Clone)]
pub struct DynModel {
    cell: CellKind,
    i: usize,
    h: usize,
    o: usize,
    weight_ih: Vec<f32>,
    weight_hh: Vec<f32>,
    bias_ih: Vec<f32>,
    bias_hh: Vec<f32>,
    head_weight: Vec<f32>,
    head_bias: Vec<f32>,
    /// The file's metadata (task, cell, head), empty for a plain PyTorch file.
    pub metadata: HashMap<String, String>,
}

/// The recurrent state of one sequence: `h`, and `c` for an LSTM (empty for an RNN).
#[derive(Debug, Clone, PartialEq)]
pub struct DynState {
    h: Vec<f32>,
    c: Vec<f32>,
}

impl DynState {
    /// Hidden state.
    pub fn h(&self) -> &[f32] {
        &self.h
    }
    /// Cell state (LSTM; empty for an RNN).
    pub fn c(&self) -> &[f32] {
        &self.c
    }
}

impl DynModel {
    /// LSTM or tanh RNN.
    pub fn cell(&self) -> CellKind {
        self.cell
    }

    /// `(I, H, O)`: inputs per step, hidden units, outputs per step.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.i, self.h, self.o)
    }

    /// Gate rows per hidden unit: 4 (i, f, g, o) for the LSTM, 1 for the RNN.
    fn gates(&self) -> usize {
        crate::modelfile::gates(self.cell)
    }

    /// The zero state PyTorch starts from.
    pub fn zero_state(&self) -> DynState {
        DynState {
            h: vec![0.0; self.h],
            c: match self.cell {
                CellKind::Lstm => vec![0.0; self.h],
                CellKind::Rnn => Vec::new(),
            },
        }
    }

    /// Runs `x` (T·I values, row-major: step by step) from `state`, which ends as the state after
    /// the last step; returns the head's outputs (T·O values).
    pub fn run(&self, x: &[f32], state: &mut DynState) -> Result<Vec<f32>> {
        let (i, h, o) = (self.i, self.h, self.o);
        if !x.len().is_multiple_of(i) {
            bail!(
                "{} input values are not a whole number of steps of {i}",
                x.len()
            );
        }
        let c_len = match self.cell {
            CellKind::Lstm => h,
            CellKind::Rnn => 0,
        };
        if state.h.len() != h || state.c.len() != c_len {
            bail!("the state does not fit the model (H = {h})");
        }
        let g = self.gates() * h;
        let mut pre = vec![0.0f32; g];
        let mut gates = vec![0.0f32; g];
        let mut c_prev = vec![0.0f32; c_len];
        let mut tanh_c = vec![0.0f32; c_len];
        let mut y = Vec::with_capacity(x.len() / i * o);
        for x_t in x.chunks_exact(i) {
            // pre = b_ih + b_hh + W_ih x + W_hh h, in the order of the typed `step`.
            for ((p, &bi), &bh) in pre.iter_mut().zip(&self.bias_ih).zip(&self.bias_hh) {
                *p = bi + bh;
            }
            <Simd as Kernels<f32>>::gemm_nt(1, g, i, x_t, &self.weight_ih, &mut pre);
            <Simd as Kernels<f32>>::gemm_nt(1, g, h, &state.h, &self.weight_hh, &mut pre);
            match self.cell {
                CellKind::Lstm => {
                    c_prev.copy_from_slice(&state.c);
                    <Simd as Kernels<f32>>::lstm_pointwise(
                        &pre,
                        &c_prev,
                        &mut gates,
                        &mut state.c,
                        &mut tanh_c,
                        &mut state.h,
                    );
                }
                CellKind::Rnn => <Simd as Kernels<f32>>::tanh_pointwise(&pre, &mut state.h),
            }
            let at = y.len();
            y.extend_from_slice(&self.head_bias);
            <Simd as Kernels<f32>>::gemm_nt(1, o, h, &state.h, &self.head_weight, &mut y[at..]);
        }
        Ok(y)
    }

    /// A model from its six tensors in layout order (`ModelSpec::names`: weight_ih, weight_hh,
    /// bias_ih, bias_hh, head.weight, head.bias), e.g. a trained model's flat parameters split by
    /// its `Params::TENSORS`. Refused if a length does not fit the sizes.
    pub fn from_tensors(
        cell: CellKind,
        (i, h, o): (usize, usize, usize),
        t: [&[f32]; 6],
    ) -> Result<Self> {
        let spec = ModelSpec { cell, i, h, o };
        for (want, got) in spec.tensors().iter().zip(t) {
            let n: usize = want.shape.iter().product();
            if got.len() != n {
                bail!(
                    "tensor `{}` has {} values, expected {n} = {}",
                    want.name,
                    got.len(),
                    want.formula
                );
            }
        }
        Ok(Self::from_parts(
            cell,
            (i, h, o),
            t.map(<[f32]>::to_vec),
            HashMap::new(),
        ))
    }

    /// The six tensors in layout order (see [`from_tensors`](Self::from_tensors)).
    pub fn tensors(&self) -> [&[f32]; 6] {
        [
            &self.weight_ih,
            &self.weight_hh,
            &self.bias_ih,
            &self.bias_hh,
            &self.head_weight,
            &self.head_bias,
        ]
    }

    /// Reads a model file with [`ModelFile::read`]: the cell from the tensor names, `I`, `H`,
    /// `O` from the shapes; every tensor present, F32, finite, of the shape these sizes imply,
    /// and no other tensor.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Self::from_file(ModelFile::read(path, &[])?))
    }

    /// The model of a file the reader accepted (with no extra tensors).
    pub fn from_file(mut file: ModelFile) -> Self {
        let ModelSpec { cell, i, h, o } = file.spec;
        let tensors = ModelSpec::names(cell).map(|n| file.take(&n));
        Self::from_parts(cell, (i, h, o), tensors, file.metadata)
    }

    /// The model of its six tensors in layout order, lengths already checked.
    fn from_parts(
        cell: CellKind,
        (i, h, o): (usize, usize, usize),
        [
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            head_weight,
            head_bias,
        ]: [Vec<f32>; 6],
        metadata: HashMap<String, String>,
    ) -> Self {
        Self {
            cell,
            i,
            h,
            o,
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            head_weight,
            head_bias,
            metadata,
        }
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

/// The state as CSV text: `unit,h,c` (RNN: `unit,h`), one row per hidden unit.
pub fn state_csv(state: &DynState) -> String {
    let lstm = !state.c.is_empty();
    let mut s = String::from(if lstm { "unit,h,c\n" } else { "unit,h\n" });
    for (u, &h) in state.h.iter().enumerate() {
        let _ = write!(s, "{u},{}", num(h));
        if let Some(&c) = state.c.get(u) {
            let _ = write!(s, ",{}", num(c));
        }
        s.push('\n');
    }
    s
}

/// The int8 state as floats, as `--state` prints it: h = hq / 128, c = cq / 2^c_frac (a tanh
/// RNN has no c). Each is exact in f32 (an integer times a power of two).
pub fn dequantized(model: &QuantModel, state: &QuantState) -> DynState {
    let h_scale = 1.0 / (1u32 << tinyrnn::quant::H_FRAC) as f32;
    let c_scale = 1.0 / (1u32 << model.c_frac) as f32;
    DynState {
        h: state.h.iter().map(|&v| v as f32 * h_scale).collect(),
        c: match model.cell {
            CellKind::Lstm => state.c.iter().map(|&v| v as f32 * c_scale).collect(),
            CellKind::Rnn => Vec::new(),
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
    let (kind, (i, h, o), y, state) = match crate::modelfile::precision(&bytes, &p)? {
        Precision::F32 => {
            let model = DynModel::from_file(ModelFile::parse(&bytes, &p, &[])?);
            let x = read_inputs(&args.input, model.i)?;
            let mut state = model.zero_state();
            let y = model.run(&x, &mut state)?;
            (model.cell.name().to_string(), model.sizes(), y, state)
        }
        Precision::Int8 => {
            let (model, _) = QuantModel::parse(&bytes, &p)?;
            let x = read_inputs(&args.input, model.sizes.0)?;
            let mut state = model.zero_state();
            let y = model.run(&x, &mut state)?;
            let state = dequantized(&model, &state);
            (format!("int8 {}", model.cell.name()), model.sizes, y, state)
        }
    };
    let steps = y.len() / o;
    let results = [
        (outputs_csv(o, &y), "outputs"),
        (state_csv(&state), "final state"),
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
            "infer: {kind}({i} -> {h}) + linear({h} -> {o}), {steps} steps; wrote {}",
            wrote.join(", ")
        ))
    } else {
        // `main` adds the final newline.
        Ok(printed.join("\n").trim_end_matches('\n').to_string())
    }
}
