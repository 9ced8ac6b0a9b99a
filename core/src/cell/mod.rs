//! The recurrent cells, each one file: what a cell is, for the one recurrent layer
//! ([`crate::layer`]) that runs any of them.
//!
//! A cell with `G` gates per hidden unit has PyTorch's four tensors per layer and direction:
//! `weight_ih` [G·H, I], `weight_hh` [G·H, H], `bias_ih` [G·H], `bias_hh` [G·H], gates stacked
//! along the rows in PyTorch's order. Write `ax = W_ih x_t + b_ih` and `ah = W_hh h_{t-1} + b_hh`
//! (G·H each); a cell is the pointwise map from (`ax`, `ah`, its state) to its new state, and its
//! backward the map from dL/dh_t (and dL/dc_t) to dL/d`ax`, dL/d`ah` and the state gradient
//! before the step. The layer does the rest: the time loop in either direction, the cache, the
//! carries between chunks, the weight-gradient products and dL/dx.
//!
//! | cell | G | state | file |
//! |---|---|---|---|
//! | [`LstmCell`] (`nn.LSTM`) | 4: i, f, g, o | h, c | `lstm.rs` |
//! | [`GruCell`] (`nn.GRU`) | 3: r, z, n | h | `gru.rs` |
//! | [`TanhCell`], [`ReluCell`] (`nn.RNN`) | 1 | h | `rnn.rs` |
//!
//! For LSTM and the RNNs `ax` and `ah` only ever appear summed, so their gradients are equal and
//! the layer keeps one; the GRU's `n` gate multiplies `ah_n` by `r`, so it keeps both
//! ([`Cell::SPLIT`]).

mod gru;
mod lstm;
mod rnn;

pub use gru::GruCell;
pub use lstm::LstmCell;
pub use rnn::{ReluCell, TanhCell};

use core::fmt;

use crate::Real;
use crate::kernels::Kernels;

/// Which cell a model uses, at run time (model files, command lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// `nn.LSTM`.
    Lstm,
    /// `nn.GRU`.
    Gru,
    /// `nn.RNN(nonlinearity="tanh")`.
    RnnTanh,
    /// `nn.RNN(nonlinearity="relu")`.
    RnnRelu,
}

impl CellKind {
    /// Every cell.
    pub const ALL: [CellKind; 4] = [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::RnnTanh,
        CellKind::RnnRelu,
    ];

    /// Gates per hidden unit (rows of `weight_ih` per unit).
    pub const fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
        }
    }

    /// The attribute name of the recurrent module in a PyTorch state_dict: `lstm`, `gru`, `rnn`.
    pub const fn module(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
            CellKind::RnnTanh | CellKind::RnnRelu => "rnn",
        }
    }

    /// `true` for the LSTM, whose state has a cell state `c` beside `h`.
    pub const fn has_c(self) -> bool {
        matches!(self, CellKind::Lstm)
    }

    /// The RNN's nonlinearity (`tanh` or `relu`), `None` for the gated cells.
    pub const fn nonlinearity(self) -> Option<&'static str> {
        match self {
            CellKind::RnnTanh => Some("tanh"),
            CellKind::RnnRelu => Some("relu"),
            _ => None,
        }
    }

    /// The cell named by a module name (`lstm`, `gru`, `rnn`) and, for `rnn`, a nonlinearity
    /// (`tanh` when `None`).
    pub fn from_names(module: &str, nonlinearity: Option<&str>) -> Option<CellKind> {
        match (module, nonlinearity) {
            ("lstm", None) => Some(CellKind::Lstm),
            ("gru", None) => Some(CellKind::Gru),
            ("rnn", None | Some("tanh")) => Some(CellKind::RnnTanh),
            ("rnn", Some("relu")) => Some(CellKind::RnnRelu),
            _ => None,
        }
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.nonlinearity() {
            Some(n) => write!(f, "{}-{n}", self.module()),
            None => f.write_str(self.module()),
        }
    }
}

/// Calls `$body` with `$C` bound to the [`Cell`] type of the [`CellKind`] `$kind`: the one place
/// a run-time cell choice becomes a type.
#[macro_export]
macro_rules! with_cell {
    ($kind:expr, $C:ident => $body:expr) => {
        match $kind {
            $crate::cell::CellKind::Lstm => {
                type $C = $crate::cell::LstmCell;
                $body
            }
            $crate::cell::CellKind::Gru => {
                type $C = $crate::cell::GruCell;
                $body
            }
            $crate::cell::CellKind::RnnTanh => {
                type $C = $crate::cell::TanhCell;
                $body
            }
            $crate::cell::CellKind::RnnRelu => {
                type $C = $crate::cell::ReluCell;
                $body
            }
        }
    };
}

/// One direction of one layer's parameters, in PyTorch's layout: `w_ih` (G·H, I), `w_hh`
/// (G·H, H), `b_ih`, `b_hh` (G·H).
#[derive(Debug, Clone, Copy)]
pub struct Weights<'a, T> {
    /// Hidden size H.
    pub hs: usize,
    /// Input size I.
    pub is: usize,
    /// `weight_ih` (G·H, I).
    pub w_ih: &'a [T],
    /// `weight_hh` (G·H, H).
    pub w_hh: &'a [T],
    /// `bias_ih` (G·H).
    pub b_ih: &'a [T],
    /// `bias_hh` (G·H).
    pub b_hh: &'a [T],
}

/// One forward time step of `batch` sequences (rows), the arguments of [`Cell::forward_step`].
/// Row-major, (B, ·) each.
#[derive(Debug)]
pub struct Forward<'a, T> {
    /// The parameters.
    pub w: Weights<'a, T>,
    /// Rows B.
    pub batch: usize,
    /// `x_t` (B, I).
    pub x: &'a [T],
    /// The cell's packed weights ([`Cell::packed_len`] scalars, made by [`Cell::pack`]).
    pub packed: &'a [T],
    /// `h_{t-1}` (B, H).
    pub h_prev: &'a [T],
    /// `c_{t-1}` (B, H); empty for cells without `c`.
    pub c_prev: &'a [T],
    /// What backward needs of this step, (B, CACHE·H), laid out as the cell likes.
    pub cache: &'a mut [T],
    /// Working memory, (B, G·H): this step's rows of dL/d`ax`, which backward overwrites (as
    /// [`Cell::project_inputs`] left them).
    pub ax: &'a mut [T],
    /// Working memory, (B, G·H) if [`Cell::SPLIT`] (this step's rows of dL/d`ah`), else empty.
    pub ah: &'a mut [T],
    /// `c_t` (B, H), set; empty for cells without `c`.
    pub c: &'a mut [T],
    /// `h_t` (B, H), set.
    pub h: &'a mut [T],
}

/// One backward time step of `batch` rows, the arguments of [`Cell::backward_step`].
#[derive(Debug)]
pub struct Backward<'a, T> {
    /// The parameters.
    pub w: Weights<'a, T>,
    /// Rows B.
    pub batch: usize,
    /// The step's cache as forward left it, (B, CACHE·H).
    pub cache: &'a [T],
    /// `h_{t-1}`, `c_{t-1}` (B, H) (`c` empty for cells without it).
    pub h_prev: &'a [T],
    /// See `h_prev`.
    pub c_prev: &'a [T],
    /// `h_t` (B, H).
    pub h: &'a [T],
    /// dL/dh_t from the layer's output at this step (B, H).
    pub dh_ext: &'a [T],
    /// dL/dh_t through the recurrence on entry; dL/dh_{t-1} on return (B, H).
    pub dh_carry: &'a mut [T],
    /// dL/dc_t on entry, dL/dc_{t-1} on return (B, H); empty for cells without `c`.
    pub dc_carry: &'a mut [T],
    /// dL/d`ax` (B, G·H), set.
    pub dax: &'a mut [T],
    /// dL/d`ah` (B, G·H), set, if [`Cell::SPLIT`]; empty otherwise (then it equals `dax`).
    pub dah: &'a mut [T],
}

/// A recurrent cell: its gate count, the state it keeps, and its pointwise forward and backward.
pub trait Cell: Copy + Default + fmt::Debug + 'static {
    /// Which cell this is.
    const KIND: CellKind;
    /// Gates per unit (G).
    const GATES: usize = Self::KIND.gates();
    /// Whether the state has `c` beside `h`.
    const HAS_C: bool = Self::KIND.has_c();
    /// Scalars per unit that forward keeps for backward at every (step, row), besides `h_t` and
    /// `c_t`.
    const CACHE: usize;
    /// `true` if dL/d`ax` and dL/d`ah` differ and backward needs both.
    const SPLIT: bool;

    /// Scalars of packed weights the forward steps read (0 if the cell reads the plain ones).
    fn packed_len(_hs: usize, _is: usize) -> usize {
        0
    }
    /// Packs `w` into `packed` ([`packed_len`](Self::packed_len) scalars) once per forward call.
    fn pack<T: Real>(_w: &Weights<'_, T>, _packed: &mut [T]) {}

    /// Once per forward call, before the time loop: the cell may project the inputs of all
    /// steps here at once. `x` (T·B, I) is the whole input, `ax` (T·B, G·H) the working memory
    /// that [`forward_step`](Self::forward_step) is then given step by step as [`Forward::ax`];
    /// `packed` as [`pack`](Self::pack) left it. The default does nothing.
    fn project_inputs<T: Real, K: Kernels<T>>(
        _w: &Weights<'_, T>,
        _packed: &[T],
        _rows: usize,
        _x: &[T],
        _ax: &mut [T],
    ) {
    }

    /// One forward step of `batch` rows: sets `cache`, `c`, `h` (see [`Forward`]).
    fn forward_step<T: Real, K: Kernels<T>>(f: Forward<'_, T>);

    /// One backward step: from `dh_ext + dh_carry` (and `dc_carry`), sets `dax` (and `dah`) and
    /// replaces the carries by the gradient of the state before the step, including its path
    /// through `W_hh` (see [`Backward`]).
    fn backward_step<T: Real, K: Kernels<T>>(b: Backward<'_, T>);

    /// Scratch scalars [`step`](Self::step) needs for hidden size `hs`.
    fn step_scratch_len(hs: usize) -> usize;

    /// The batch-1 inference step: advances `h` (and `c`) by `x` in place. `scratch` holds
    /// [`step_scratch_len`](Self::step_scratch_len) scalars; its contents do not matter.
    fn step<T: Real, K: Kernels<T>>(
        w: &Weights<'_, T>,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        scratch: &mut [T],
    );
}

/// `out = bias + rows · Wᵀ` for `rows` (m, k) and `w` (n, k): a projection with its bias (set).
pub(crate) fn project<T: Real, K: Kernels<T>>(
    m: usize,
    n: usize,
    k: usize,
    rows: &[T],
    w: &[T],
    bias: &[T],
    out: &mut [T],
) {
    for row in out[..m * n].chunks_exact_mut(n) {
        row.copy_from_slice(&bias[..n]);
    }
    K::gemm_nt(m, n, k, rows, w, out);
}
