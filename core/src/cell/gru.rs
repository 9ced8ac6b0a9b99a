//! The GRU cell, PyTorch's `nn.GRU`. Gate order along the 3H rows: r, z, n.
//!
//! ```text
//! ax = W_ih x_t + b_ih        ah = W_hh h_{t-1} + b_hh          (r, z, n parts of each)
//! r = σ(ax_r + ah_r)          z = σ(ax_z + ah_z)
//! n = tanh(ax_n + r ⊙ ah_n)   h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
//! ```
//! Backward, `dh = dL/dh_t` (output plus recurrence):
//! ```text
//! da_n = dh ⊙ (1-z) ⊙ (1-n²)            dax_n = da_n          dah_n = da_n ⊙ r
//! da_r = da_n ⊙ ah_n ⊙ r(1-r)           dax_r = dah_r = da_r
//! da_z = dh ⊙ (h_{t-1} - n) ⊙ z(1-z)    dax_z = dah_z = da_z
//! dh_{t-1} = dh ⊙ z + W_hhᵀ dah
//! ```
//! `ax` and `ah` are kept apart because of the `n` gate (the cell is [`Cell::SPLIT`]). Per
//! (step, row) the cache holds `[r, z, n (3H) | ah_n (H)]`. Forward projects the inputs of all
//! steps at once ([`Cell::project_inputs`]), then per step `ah` from `W_hhᵀ` transposed once per
//! call (the broadcast tiles of `gemm_nn`) and the pointwise kernel (`Kernels::gru_pointwise`).

use super::{Backward, Cell, CellKind, Forward, Weights, project};
use crate::Real;
use crate::kernels::Kernels;

/// The GRU cell (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct GruCell;

/// `dst` (cols, rows) = `src` (rows, cols) transposed.
fn transpose<T: Real>(rows: usize, cols: usize, src: &[T], dst: &mut [T]) {
    for (r, row) in src[..rows * cols].chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// `out = bias + rows · W` for `rows` (m, k) and `wt` = `Wᵀ` (k, n): a projection with its bias
/// (set), through the broadcast tiles of `gemm_nn`.
fn project_t<T: Real, K: Kernels<T>>(
    m: usize,
    n: usize,
    k: usize,
    rows: &[T],
    wt: &[T],
    bias: &[T],
    out: &mut [T],
) {
    for row in out[..m * n].chunks_exact_mut(n) {
        row.copy_from_slice(&bias[..n]);
    }
    K::gemm_nn(m, n, k, rows, wt, out);
}

impl Cell for GruCell {
    const KIND: CellKind = CellKind::Gru;
    const CACHE: usize = 4;
    const SPLIT: bool = true;

    /// `W_ihᵀ` (I, 3H), then `W_hhᵀ` (H, 3H).
    fn packed_len(hs: usize, is: usize) -> usize {
        3 * hs * (is + hs)
    }

    fn pack<T: Real>(w: &Weights<'_, T>, packed: &mut [T]) {
        let g3 = 3 * w.hs;
        let (ih, hh) = packed.split_at_mut(w.is * g3);
        transpose(g3, w.is, w.w_ih, ih);
        transpose(g3, w.hs, w.w_hh, hh);
    }

    /// `ax = b_ih + x W_ihᵀ` for all T·B rows at once.
    fn project_inputs<T: Real, K: Kernels<T>>(
        w: &Weights<'_, T>,
        packed: &[T],
        rows: usize,
        x: &[T],
        ax: &mut [T],
    ) {
        let g3 = 3 * w.hs;
        project_t::<T, K>(rows, g3, w.is, x, &packed[..w.is * g3], w.b_ih, ax);
    }

    fn forward_step<T: Real, K: Kernels<T>>(f: Forward<'_, T>) {
        let (b, hs, is) = (f.batch, f.w.hs, f.w.is);
        let g3 = 3 * hs;
        let w_hh_t = &f.packed[is * g3..];
        project_t::<T, K>(b, g3, hs, f.h_prev, w_hh_t, f.w.b_hh, f.ah);
        K::gru_pointwise(b, hs, f.ax, f.ah, f.h_prev, f.cache, f.h);
    }

    fn backward_step<T: Real, K: Kernels<T>>(b: Backward<'_, T>) {
        let (n, hs) = (b.batch, b.w.hs);
        K::gru_pointwise_backward(n, hs, b.cache, b.h_prev, b.dh_ext, b.dh_carry, b.dax, b.dah);
        K::gemm_nn(n, hs, 3 * hs, b.dah, b.w.w_hh, b.dh_carry);
    }

    fn step_scratch_len(hs: usize) -> usize {
        11 * hs
    }

    fn step<T: Real, K: Kernels<T>>(
        w: &Weights<'_, T>,
        x: &[T],
        h: &mut [T],
        _c: &mut [T],
        scratch: &mut [T],
    ) {
        let (hs, g3) = (w.hs, 3 * w.hs);
        let (ax, rest) = scratch.split_at_mut(g3);
        let (ah, rest) = rest.split_at_mut(g3);
        let (cache, h_prev) = rest.split_at_mut(4 * hs);
        let h_prev = &mut h_prev[..hs];
        project::<T, K>(1, g3, w.is, x, w.w_ih, w.b_ih, ax);
        project::<T, K>(1, g3, hs, h, w.w_hh, w.b_hh, ah);
        h_prev.copy_from_slice(h);
        K::gru_pointwise(1, hs, ax, ah, h_prev, cache, h);
    }
}
