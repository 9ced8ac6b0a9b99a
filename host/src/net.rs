//! The models the host trains: the core's [`LstmModel`] and [`RnnModel`] behind one trait, with
//! the buffers a batch needs ([`Workspace`]) allocated once and reused.

use anyhow::Result;
use tinyrnn::{Linear, LstmCache, LstmModel, Params, RnnCache, RnnModel, SeededRng};

/// Which recurrent cell a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CellKind {
    /// Long short-term memory.
    Lstm,
    /// Elman RNN with tanh.
    Rnn,
}

impl CellKind {
    /// The lowercase name (also the tensor-name prefix).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Rnn => "rnn",
        }
    }
}

/// Where the head is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// At every time step: outputs (T, B, O).
    EveryStep,
    /// At the last step only: outputs (B, O).
    LastStep,
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
    cache: Vec<f32>, // the cell's cache (LstmCache / RnnCache)
    /// Hidden state (B, H): the initial state before `forward`, the final state after.
    pub h: Vec<f32>,
    /// Cell state (B, H) (LSTM only; empty for the RNN).
    pub c: Vec<f32>,
    dh_carry: Vec<f32>, // (B, H)
    dc_carry: Vec<f32>, // (B, H)
    dh: Vec<f32>,       // (T, B, H) dL/dh_t from the head
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
            &self.dh,
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

    /// The LSTM cache of the last forward (for reading gate values). Fails for an RNN workspace.
    pub fn lstm_cache<const H: usize>(&mut self) -> Result<LstmCache<'_, H>> {
        Ok(LstmCache::new(&mut self.cache, self.steps, self.batch)?)
    }
}

/// A recurrent model with a linear head: what the training loop needs of it.
pub trait Net<const I: usize, const O: usize>: Params<f32> + Clone + Send + Sync + 'static {
    /// The cell.
    const CELL: CellKind;
    /// Hidden size H.
    const HIDDEN: usize;
    /// PyTorch's default initialisation (forget-gate bias for the LSTM only).
    fn init(&mut self, rng: &mut SeededRng, forget_bias: Option<f32>);
    /// Buffers for chunks of `steps` x `batch`.
    fn workspace(steps: usize, batch: usize, outputs: Outputs) -> Workspace;
    /// Forward over `x` (T, B, I) from the state in `ws`, writing the head's outputs to `y`
    /// ((T, B, O) or (B, O)) and the final state back into `ws`.
    fn forward(&self, ws: &mut Workspace, x: &[[f32; I]], y: &mut [[f32; O]]) -> Result<()>;
    /// Backward from `dy` (same shape as `y`), accumulating into `grad`. Gradients stop at the
    /// start of the chunk (truncated BPTT).
    fn backward(
        &self,
        ws: &mut Workspace,
        grad: &mut Self,
        x: &[[f32; I]],
        dy: &[[f32; O]],
    ) -> Result<()> {
        ws.dh_carry.fill(0.0);
        ws.dc_carry.fill(0.0);
        self.backward_carry(ws, grad, x, dy, None)
    }
    /// Backward from `dy` with the gradient of the state carried in from the following chunk in
    /// the workspace (see [`Workspace::pass_carry`]), which it replaces by the gradient at the
    /// chunk's initial state; accumulates dL/dx into `dx` if given.
    fn backward_carry(
        &self,
        ws: &mut Workspace,
        grad: &mut Self,
        x: &[[f32; I]],
        dy: &[[f32; O]],
        dx: Option<&mut [[f32; I]]>,
    ) -> Result<()>;
}

/// A zeroed `P` allocated directly on the heap (large models would overflow a thread's stack).
pub fn boxed_zeroed<P: Params<f32>>() -> Box<P> {
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

fn rows<const N: usize>(v: &mut [f32]) -> &mut [[f32; N]] {
    v.as_chunks_mut::<N>().0
}

fn workspace(
    steps: usize,
    batch: usize,
    outputs: Outputs,
    hidden: usize,
    cache: usize,
    cell_state: bool,
) -> Workspace {
    let state = batch * hidden;
    Workspace {
        steps,
        batch,
        outputs,
        cache: vec![0.0; cache],
        h: vec![0.0; state],
        c: vec![0.0; if cell_state { state } else { 0 }],
        dh_carry: vec![0.0; state],
        dc_carry: vec![0.0; if cell_state { state } else { 0 }],
        dh: vec![0.0; steps * state],
    }
}

/// The rows of `h_t` the head reads: all T·B, or the last step's B.
fn head_rows<const H: usize>(
    h: &[[f32; H]],
    ws_steps: usize,
    batch: usize,
    outputs: Outputs,
) -> std::ops::Range<usize> {
    match outputs {
        Outputs::EveryStep => 0..h.len(),
        Outputs::LastStep => ws_steps.saturating_sub(1) * batch..h.len(),
    }
}

/// The head's backward, shared by both cells: zeroes `dh` ((T, B, H)), accumulates the head's
/// gradient into `grad` and writes dL/dh_t of the rows the head read (`read`, from
/// [`head_rows`]) into `dh`, which it returns as rows for the cell's backward.
fn head_backward<'a, const H: usize, const O: usize>(
    head: &Linear<H, O>,
    grad: &mut Linear<H, O>,
    h: &[[f32; H]],
    read: std::ops::Range<usize>,
    dy: &[[f32; O]],
    dh: &'a mut [f32],
) -> Result<&'a mut [[f32; H]]> {
    let dh = rows::<H>(dh);
    dh.fill([0.0; H]);
    head.backward(grad, &h[read.clone()], dy, Some(&mut dh[read]))?;
    Ok(dh)
}

impl<const I: usize, const H: usize, const O: usize> Net<I, O> for LstmModel<I, H, O> {
    const CELL: CellKind = CellKind::Lstm;
    const HIDDEN: usize = H;

    fn init(&mut self, rng: &mut SeededRng, forget_bias: Option<f32>) {
        LstmModel::init(self, rng, forget_bias);
    }

    fn workspace(steps: usize, batch: usize, outputs: Outputs) -> Workspace {
        let cache = LstmCache::<H>::len(steps, batch);
        workspace(steps, batch, outputs, H, cache, true)
    }

    fn forward(&self, ws: &mut Workspace, x: &[[f32; I]], y: &mut [[f32; O]]) -> Result<()> {
        let mut cache = LstmCache::<H>::new(&mut ws.cache, ws.steps, ws.batch)?;
        self.lstm
            .forward(x, rows(&mut ws.h), rows(&mut ws.c), &mut cache)?;
        let r = head_rows(cache.h(), ws.steps, ws.batch, ws.outputs);
        self.head.forward(&cache.h()[r], y)?;
        Ok(())
    }

    fn backward_carry(
        &self,
        ws: &mut Workspace,
        grad: &mut Self,
        x: &[[f32; I]],
        dy: &[[f32; O]],
        dx: Option<&mut [[f32; I]]>,
    ) -> Result<()> {
        let mut cache = LstmCache::<H>::new(&mut ws.cache, ws.steps, ws.batch)?;
        let r = head_rows(cache.h(), ws.steps, ws.batch, ws.outputs);
        let dh = head_backward(&self.head, &mut grad.head, cache.h(), r, dy, &mut ws.dh)?;
        let (dh_carry, dc_carry) = (rows(&mut ws.dh_carry), rows(&mut ws.dc_carry));
        self.lstm
            .backward(&mut grad.lstm, x, &mut cache, dh, dh_carry, dc_carry, dx)?;
        Ok(())
    }
}

impl<const I: usize, const H: usize, const O: usize> Net<I, O> for RnnModel<I, H, O> {
    const CELL: CellKind = CellKind::Rnn;
    const HIDDEN: usize = H;

    fn init(&mut self, rng: &mut SeededRng, _forget_bias: Option<f32>) {
        RnnModel::init(self, rng);
    }

    fn workspace(steps: usize, batch: usize, outputs: Outputs) -> Workspace {
        let cache = RnnCache::<H>::len(steps, batch);
        workspace(steps, batch, outputs, H, cache, false)
    }

    fn forward(&self, ws: &mut Workspace, x: &[[f32; I]], y: &mut [[f32; O]]) -> Result<()> {
        let mut cache = RnnCache::<H>::new(&mut ws.cache, ws.steps, ws.batch)?;
        self.rnn.forward(x, rows(&mut ws.h), &mut cache)?;
        let r = head_rows(cache.h(), ws.steps, ws.batch, ws.outputs);
        self.head.forward(&cache.h()[r], y)?;
        Ok(())
    }

    fn backward_carry(
        &self,
        ws: &mut Workspace,
        grad: &mut Self,
        x: &[[f32; I]],
        dy: &[[f32; O]],
        dx: Option<&mut [[f32; I]]>,
    ) -> Result<()> {
        let mut cache = RnnCache::<H>::new(&mut ws.cache, ws.steps, ws.batch)?;
        let r = head_rows(cache.h(), ws.steps, ws.batch, ws.outputs);
        let dh = head_backward(&self.head, &mut grad.head, cache.h(), r, dy, &mut ws.dh)?;
        self.rnn
            .backward(&mut grad.rnn, x, &mut cache, dh, rows(&mut ws.dh_carry), dx)?;
        Ok(())
    }
}
