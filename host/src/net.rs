//! The model every task trains: a core [`Spec`] and its flat parameter buffer, run by the core's
//! engine ([`tinyrnn::Model`]), with the buffers a batch needs ([`Workspace`]) allocated once and
//! reused.

use std::path::Path;

use anyhow::{Result, bail};
use tinyrnn::cell::CellKind as Kind;
use tinyrnn::init::fill_uniform;
use tinyrnn::{Cache, Model, SeededRng, Spec};

pub use crate::modelfile::Nonlinearity;
use crate::modelfile::{ModelFile, save_model_with};

pub use tinyrnn::Outputs;

/// The cells a command line can name (`--cell`); an RNN's nonlinearity is a separate flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CellArg {
    /// Long short-term memory (`nn.LSTM`).
    Lstm,
    /// Gated recurrent unit (`nn.GRU`).
    Gru,
    /// Elman RNN (`nn.RNN`), tanh or relu by `--nonlinearity`.
    Rnn,
}

impl CellArg {
    /// The core cell: `rnn` with its nonlinearity.
    pub fn kind(self, nonlinearity: Nonlinearity) -> Kind {
        match (self, nonlinearity) {
            (CellArg::Lstm, _) => Kind::Lstm,
            (CellArg::Gru, _) => Kind::Gru,
            (CellArg::Rnn, Nonlinearity::Tanh) => Kind::RnnTanh,
            (CellArg::Rnn, Nonlinearity::Relu) => Kind::RnnRelu,
        }
    }
}

/// A model's shape in a few words for summaries and plot titles: `lstm H=128`,
/// `gru H=64 x2 layers, bidirectional`, `rnn-relu H=32` (file descriptions:
/// [`crate::modelfile::describe`]).
pub fn label(spec: &Spec) -> String {
    let mut s = format!("{} H={}", spec.cell, spec.hidden);
    if spec.layers > 1 {
        s += &format!(" x{} layers", spec.layers);
    }
    if spec.bidirectional {
        s += ", bidirectional";
    }
    s
}

/// Buffers for one (steps, batch) shape.
#[derive(Debug)]
pub struct Workspace {
    /// Time steps per chunk.
    pub steps: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Where the head is applied.
    pub outputs: Outputs,
    cache: Vec<f32>, // the core's model cache
    /// Hidden state (L·D, B, H): the initial state before `forward`, the final state after.
    pub h: Vec<f32>,
    /// Cell state (L·D, B, H) (LSTM only; empty otherwise).
    pub c: Vec<f32>,
    dh_carry: Vec<f32>, // (L·D, B, H)
    dc_carry: Vec<f32>, // (L·D, B, H) or empty
}

impl Workspace {
    /// Scalars this workspace holds (the memory estimate of `budget` is tested against it).
    pub fn floats(&self) -> usize {
        [
            &self.cache,
            &self.h,
            &self.c,
            &self.dh_carry,
            &self.dc_carry,
        ]
        .iter()
        .map(|v| v.len())
        .sum()
    }

    /// Number of head output rows: T·B or B.
    pub fn output_rows(&self) -> usize {
        match self.outputs {
            Outputs::EveryStep => self.steps * self.batch,
            Outputs::LastStep => self.batch,
        }
    }

    /// Sets the recurrent state to zero (a fresh batch of sequences).
    pub fn reset_state(&mut self) {
        self.h.fill(0.0);
        self.c.fill(0.0);
    }

    /// Starts this chunk's state where `prev` ended (consecutive chunks of the same sequences).
    pub fn continue_from(&mut self, prev: &Workspace) {
        self.h.copy_from_slice(&prev.h);
        self.c.copy_from_slice(&prev.c);
    }

    /// Hands the state gradient this chunk's backward produced (dL/d its initial state) to the
    /// chunk before it, whose backward runs next; this chunk's carry becomes zero.
    pub fn pass_carry(&mut self, prev: &mut Workspace) {
        prev.dh_carry.copy_from_slice(&self.dh_carry);
        prev.dc_carry.copy_from_slice(&self.dc_carry);
        self.dh_carry.fill(0.0);
        self.dc_carry.fill(0.0);
    }

    /// Sets the carried-in state gradient to zero (the last chunk of a sequence).
    pub fn clear_carry(&mut self) {
        self.dh_carry.fill(0.0);
        self.dc_carry.fill(0.0);
    }

    fn cache<'a>(&'a mut self, spec: &Spec) -> Result<Cache<'a, f32>> {
        Ok(Cache::new(
            spec,
            &mut self.cache,
            self.steps,
            self.batch,
            self.outputs,
        )?)
    }
}

/// A recurrent model with a linear head: shape and parameters (PyTorch's layout and names).
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    spec: Spec,
    params: Vec<f32>,
}

/// `x` as one flat slice.
fn flat<const N: usize>(x: &[[f32; N]]) -> &[f32] {
    x.as_flattened()
}

impl Net {
    /// A model of shape `spec` with every parameter zero.
    pub fn new(spec: Spec) -> Result<Net> {
        spec.validate()?;
        Ok(Net {
            spec,
            params: vec![0.0; spec.param_len()],
        })
    }

    /// A model of shape `spec` with the parameters `params` (PyTorch's order).
    pub fn from_params(spec: Spec, params: Vec<f32>) -> Result<Net> {
        Model::new(spec, &params)?;
        Ok(Net { spec, params })
    }

    /// The shape.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The cell.
    pub fn cell(&self) -> Kind {
        self.spec.cell
    }

    /// Hidden size H.
    pub fn hidden(&self) -> usize {
        self.spec.hidden
    }

    /// The flat parameter buffer.
    pub fn flat(&self) -> &[f32] {
        &self.params
    }

    /// The flat parameter buffer, mutable.
    pub fn flat_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// A model of the same shape with every parameter zero (a gradient buffer).
    pub fn zeros_like(&self) -> Net {
        Net {
            spec: self.spec,
            params: vec![0.0; self.params.len()],
        }
    }

    /// The core's view of it.
    pub fn model(&self) -> Model<'_> {
        Model::new(self.spec, &self.params).expect("a Net's shape and buffer always agree")
    }

    /// PyTorch's default initialisation: every recurrent weight and bias from U(-1/√H, 1/√H),
    /// then the head's weight and bias from U(-1/√(D·H), 1/√(D·H)), in buffer order. With
    /// `forget_bias = Some(v)` (LSTM only), every forget gate's `bias_ih` rows are set to `v`
    /// and its `bias_hh` rows to 0.
    pub fn init(&mut self, rng: &mut SeededRng, forget_bias: Option<f32>) {
        let s = self.spec;
        let head = s.head_offset();
        let k = 1.0 / (s.hidden as f32).sqrt();
        fill_uniform(&mut self.params[..head], -k, k, rng);
        let k = 1.0 / (s.width() as f32).sqrt();
        fill_uniform(&mut self.params[head..], -k, k, rng);
        if let (Some(v), Kind::Lstm) = (forget_bias, s.cell) {
            let h = s.hidden;
            for t in s.tensors() {
                match t.name.tensor {
                    "bias_ih" => self.params[t.offset + h..t.offset + 2 * h].fill(v),
                    "bias_hh" => self.params[t.offset + h..t.offset + 2 * h].fill(0.0),
                    _ => {}
                }
            }
        }
    }

    /// Buffers for chunks of `steps` x `batch`.
    pub fn workspace(&self, steps: usize, batch: usize, outputs: Outputs) -> Workspace {
        let state = self.spec.state_len(batch);
        let c = if self.spec.cell.has_c() { state } else { 0 };
        Workspace {
            steps,
            batch,
            outputs,
            cache: vec![0.0; Cache::<f32>::len(&self.spec, steps, batch)],
            h: vec![0.0; state],
            c: vec![0.0; c],
            dh_carry: vec![0.0; state],
            dc_carry: vec![0.0; c],
        }
    }

    fn check_io<const I: usize, const O: usize>(&self) -> Result<()> {
        if self.spec.input != I || self.spec.output != O {
            bail!(
                "model has {} inputs and {} outputs, the task needs {I} and {O}",
                self.spec.input,
                self.spec.output
            );
        }
        Ok(())
    }

    /// Forward over `x` (T, B, I) from the state in `ws`, writing the head's outputs to `y`
    /// ((T, B, O) or (B, O)) and the final state back into `ws`.
    pub fn forward<const I: usize, const O: usize>(
        &self,
        ws: &mut Workspace,
        x: &[[f32; I]],
        y: &mut [[f32; O]],
    ) -> Result<()> {
        self.check_io::<I, O>()?;
        let Workspace { h, c, .. } = ws;
        let (mut h, mut c) = (std::mem::take(h), std::mem::take(c));
        let r = ws.cache(&self.spec).and_then(|mut cache| {
            Ok(self
                .model()
                .forward(flat(x), &mut h, &mut c, &mut cache, y.as_flattened_mut())?)
        });
        (ws.h, ws.c) = (h, c);
        r
    }

    /// Backward from `dy` (same shape as `y`), accumulating into `grad`. Gradients stop at the
    /// start of the chunk (truncated BPTT).
    pub fn backward<const I: usize, const O: usize>(
        &self,
        ws: &mut Workspace,
        grad: &mut Net,
        x: &[[f32; I]],
        dy: &[[f32; O]],
    ) -> Result<()> {
        ws.clear_carry();
        self.backward_carry(ws, grad, x, dy, None)
    }

    /// Backward from `dy` with the gradient of the state carried in from the following chunk in
    /// the workspace (see [`Workspace::pass_carry`]), which it replaces by the gradient at the
    /// chunk's initial state; accumulates dL/dx into `dx` if given.
    pub fn backward_carry<const I: usize, const O: usize>(
        &self,
        ws: &mut Workspace,
        grad: &mut Net,
        x: &[[f32; I]],
        dy: &[[f32; O]],
        dx: Option<&mut [[f32; I]]>,
    ) -> Result<()> {
        self.check_io::<I, O>()?;
        if grad.spec != self.spec {
            bail!("gradient buffer of another shape");
        }
        let (mut dh, mut dc) = (
            std::mem::take(&mut ws.dh_carry),
            std::mem::take(&mut ws.dc_carry),
        );
        let r = ws.cache(&self.spec).and_then(|mut cache| {
            Ok(self.model().backward(
                &mut grad.params,
                flat(x),
                &mut cache,
                dy.as_flattened(),
                &mut dh,
                &mut dc,
                dx.map(|d| d.as_flattened_mut()),
            )?)
        });
        (ws.dh_carry, ws.dc_carry) = (dh, dc);
        r
    }

    /// What the last forward kept for layer `k`, direction `d` (gate values, states; see
    /// [`Model::cached`]).
    pub fn cached(
        &self,
        ws: &mut Workspace,
        k: usize,
        d: usize,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let model = self.model();
        let cache = ws.cache(&self.spec)?;
        let c = model.cached(&cache, k, d)?;
        Ok((c.h.to_vec(), c.c.to_vec(), c.cell.to_vec()))
    }

    /// Writes the model to `path` atomically (PyTorch names, the shape in the metadata; see
    /// [`crate::modelfile::save_model_with`]) with `metadata`, `extra` 1-D tensors beside it and,
    /// if `checked`, a checksum.
    pub fn save(
        &self,
        path: &Path,
        extra: &[(&str, &[f32])],
        metadata: &[(&str, String)],
        checked: bool,
    ) -> Result<()> {
        save_model_with(path, &self.spec, &self.params, extra, metadata, checked)
    }

    /// Copies the model's tensors out of `file`, which must hold every one of them with this
    /// model's shape.
    pub fn load(&mut self, file: &ModelFile, source: &str) -> Result<()> {
        for t in self.spec.tensors() {
            let name = t.name.to_string();
            match file.tensor(&name) {
                None => bail!("{source}: it has no tensor `{name}`, which this model needs"),
                Some(v) if v.len() != t.len() => bail!(
                    "{source}: tensor `{name}` has {} values, this model needs {:?}",
                    v.len(),
                    t.shape()
                ),
                Some(v) => self.params[t.offset..t.offset + t.len()].copy_from_slice(v),
            }
        }
        Ok(())
    }
}

/// A zeroed `P` allocated directly on the heap (large models would overflow a thread's stack).
pub fn boxed_zeroed<P: tinyrnn::Params<f32>>() -> Box<P> {
    let layout = std::alloc::Layout::new::<P>();
    if layout.size() == 0 {
        return Box::new(P::zeroed());
    }
    // SAFETY: `Params` guarantees that all-zero bytes are a valid `P`; the layout is `P`'s own, so
    // the allocation may be owned by a `Box<P>`.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<P>();
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(ptr)
    }
}
