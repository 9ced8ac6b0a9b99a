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
//! (step, row) the cache holds `[r, z, n (3H) | ah_n (H)]`.

use super::{Backward, Cell, CellKind, Forward, Weights, project};
use crate::Real;
use crate::kernels::Kernels;

/// The GRU cell (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct GruCell;

/// The pointwise update of one row: `ax`, `ah` (3H each) and `h_prev` (H) to `gates` =
/// `[r, z, n]` (3H), `hn` = `ah_n` (H) and `h` (H). `h` may alias nothing; `h_prev` is read
/// before `h` is written at each unit, so the batch-1 step passes a copy.
fn pointwise<T: Real>(
    hs: usize,
    ax: &[T],
    ah: &[T],
    h_prev: &[T],
    gates: &mut [T],
    hn: &mut [T],
    h: &mut [T],
) {
    for j in 0..hs {
        let r = (ax[j] + ah[j]).sigmoid();
        let z = (ax[hs + j] + ah[hs + j]).sigmoid();
        let n = (ax[2 * hs + j] + r * ah[2 * hs + j]).tanh();
        gates[j] = r;
        gates[hs + j] = z;
        gates[2 * hs + j] = n;
        hn[j] = ah[2 * hs + j];
        h[j] = (T::ONE - z) * n + z * h_prev[j];
    }
}

impl Cell for GruCell {
    const KIND: CellKind = CellKind::Gru;
    const CACHE: usize = 4;
    const SPLIT: bool = true;

    fn forward_step<T: Real, K: Kernels<T>>(f: Forward<'_, T>) {
        let (b, hs, is) = (f.batch, f.w.hs, f.w.is);
        let g3 = 3 * hs;
        let (ax, ah) = (f.ax, f.ah);
        project::<T, K>(b, g3, is, f.x, f.w.w_ih, f.w.b_ih, ax);
        project::<T, K>(b, g3, hs, f.h_prev, f.w.w_hh, f.w.b_hh, ah);
        for r in 0..b {
            let cache = &mut f.cache[r * 4 * hs..(r + 1) * 4 * hs];
            let (gates, hn) = cache.split_at_mut(g3);
            pointwise(
                hs,
                &ax[r * g3..(r + 1) * g3],
                &ah[r * g3..(r + 1) * g3],
                &f.h_prev[r * hs..(r + 1) * hs],
                gates,
                hn,
                &mut f.h[r * hs..(r + 1) * hs],
            );
        }
    }

    fn backward_step<T: Real, K: Kernels<T>>(b: Backward<'_, T>) {
        let (n, hs) = (b.batch, b.w.hs);
        let g3 = 3 * hs;
        for row in 0..n {
            let cache = &b.cache[row * 4 * hs..(row + 1) * 4 * hs];
            let (dax, dah) = (
                &mut b.dax[row * g3..(row + 1) * g3],
                &mut b.dah[row * g3..(row + 1) * g3],
            );
            for j in 0..hs {
                let (r, z, nn, hn) = (cache[j], cache[hs + j], cache[2 * hs + j], cache[g3 + j]);
                let k = row * hs + j;
                let dh = b.dh_ext[k] + b.dh_carry[k];
                let da_n = dh * (T::ONE - z) * (T::ONE - nn * nn);
                let da_r = da_n * hn * r * (T::ONE - r);
                let da_z = dh * (b.h_prev[k] - nn) * z * (T::ONE - z);
                dax[j] = da_r;
                dax[hs + j] = da_z;
                dax[2 * hs + j] = da_n;
                dah[j] = da_r;
                dah[hs + j] = da_z;
                dah[2 * hs + j] = da_n * r;
                b.dh_carry[k] = dh * z;
            }
        }
        K::gemm_nn(n, hs, g3, b.dah, b.w.w_hh, b.dh_carry);
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
        let (gates, rest) = rest.split_at_mut(g3);
        let (hn, h_prev) = rest.split_at_mut(hs);
        let h_prev = &mut h_prev[..hs];
        project::<T, K>(1, g3, w.is, x, w.w_ih, w.b_ih, ax);
        project::<T, K>(1, g3, hs, h, w.w_hh, w.b_hh, ah);
        h_prev.copy_from_slice(h);
        pointwise(hs, ax, ah, h_prev, gates, hn, h);
    }
}
