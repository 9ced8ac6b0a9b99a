//! The LSTM cell, PyTorch's `nn.LSTM`. Gate order along the 4H rows: i, f, g, o.
//!
//! ```text
//! a = ax + ah = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          (a_i, a_f, a_g, a_o)
//! i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g          h_t = o ⊙ tanh(c_t)
//! ```
//! Backward, `dh = dL/dh_t` (output plus recurrence), `dc = dL/dc_t` carried:
//! ```text
//! dc  += dh ⊙ o ⊙ (1 - tanh²(c_t))
//! da_i = dc ⊙ g ⊙ i(1-i)     da_f = dc ⊙ c_{t-1} ⊙ f(1-f)
//! da_g = dc ⊙ i ⊙ (1-g²)     da_o = dh ⊙ tanh(c_t) ⊙ o(1-o)
//! dc_{t-1} = dc ⊙ f          dh_{t-1} = W_hhᵀ da      (dax = dah = da)
//! ```
//! Per step the cache holds `[i, f, g, o (B, 4H) | tanh(c_t) (B, H)]`; the pre-activations `a`
//! are working memory only (the step's `ax` rows). The forward step is the fused kernel over
//! `W_hh` and `W_ih` packed once per call (`kernels::pack_lstm`).

use super::{Backward, Cell, CellKind, Forward, Weights};
use crate::Real;
use crate::kernels::{Kernels, lstm_ih_packed_len, lstm_packed_len, pack_lstm, pack_lstm_ih};

/// The LSTM cell (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct LstmCell;

impl Cell for LstmCell {
    const KIND: CellKind = CellKind::Lstm;
    const CACHE: usize = 5;
    const SPLIT: bool = false;

    fn packed_len(hs: usize, is: usize) -> usize {
        lstm_packed_len(hs) + lstm_ih_packed_len(hs, is)
    }

    fn pack<T: Real>(w: &Weights<'_, T>, packed: &mut [T]) {
        let (hh, ih) = packed.split_at_mut(lstm_packed_len(w.hs));
        pack_lstm(w.hs, w.w_hh, w.b_ih, w.b_hh, hh);
        pack_lstm_ih(w.hs, w.is, w.w_ih, ih);
    }

    fn forward_step<T: Real, K: Kernels<T>>(f: Forward<'_, T>) {
        let (b, hs, is) = (f.batch, f.w.hs, f.w.is);
        let (packed, packed_ih) = f.packed.split_at(lstm_packed_len(hs));
        let (gates, tanh_c) = f.cache.split_at_mut(b * 4 * hs);
        K::lstm_forward_step(
            b, hs, is, f.x, f.w.w_ih, f.w.w_hh, f.w.b_ih, f.w.b_hh, packed, packed_ih, f.h_prev,
            f.c_prev, f.ax, gates, f.c, tanh_c, f.h,
        );
    }

    fn backward_step<T: Real, K: Kernels<T>>(b: Backward<'_, T>) {
        let (n, hs) = (b.batch, b.w.hs);
        let (gates, tanh_c) = b.cache.split_at(n * 4 * hs);
        K::lstm_backward_step(
            n, hs, gates, b.c_prev, tanh_c, b.dh_ext, b.w.w_hh, b.dh_carry, b.dc_carry, b.dax,
        );
    }

    fn step_scratch_len(hs: usize) -> usize {
        11 * hs
    }

    fn step<T: Real, K: Kernels<T>>(
        w: &Weights<'_, T>,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        scratch: &mut [T],
    ) {
        let (h_prev, scratch) = scratch.split_at_mut(w.hs);
        h_prev.copy_from_slice(h);
        Self::step_from::<T, K>(w, x, h_prev, h, c, scratch);
    }
}

impl LstmCell {
    /// The batch-1 step from `h_prev`, a copy of `h` that the caller keeps (the kernel overwrites
    /// `h` unit by unit): what [`Cell::step`] does after copying, for callers that hold the copy
    /// in an array of their own (the typed `Lstm::step`). `scratch`: 10·H scalars if the kernels
    /// ask for them (`LSTM_STEP_SCRATCH`), else ignored.
    #[inline]
    pub(crate) fn step_from<T: Real, K: Kernels<T>>(
        w: &Weights<'_, T>,
        x: &[T],
        h_prev: &[T],
        h: &mut [T],
        c: &mut [T],
        scratch: &mut [T],
    ) {
        let scratch = if K::LSTM_STEP_SCRATCH {
            scratch
        } else {
            &mut []
        };
        K::lstm_step(
            w.hs, w.is, x, w.w_ih, w.w_hh, w.b_ih, w.b_hh, h_prev, c, h, scratch,
        );
    }
}
