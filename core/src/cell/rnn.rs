//! The Elman RNN cells, PyTorch's `nn.RNN` with `nonlinearity` tanh or relu.
//!
//! ```text
//! a = ax + ah = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          h_t = φ(a)
//! ```
//! Backward, `dh = dL/dh_t` (output plus recurrence):
//! ```text
//! tanh: da = dh ⊙ (1 - h_t²)      relu: da = dh ⊙ [a > 0]      dh_{t-1} = W_hhᵀ da  (dax = dah = da)
//! ```
//! Per (step, row) the cache holds `a` (H). tanh runs the fused packed-panel kernel
//! (`kernels::pack_rnn`); relu runs two plain products and a pointwise pass.

use super::{Backward, Cell, CellKind, Forward, Weights};
use crate::Real;
use crate::kernels::{Kernels, pack_rnn, pack_rnn_ih, rnn_ih_packed_len, rnn_packed_len};

/// `nn.RNN(nonlinearity="tanh")`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TanhCell;

/// `nn.RNN(nonlinearity="relu")`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReluCell;

impl Cell for TanhCell {
    const KIND: CellKind = CellKind::RnnTanh;
    const CACHE: usize = 1;
    const SPLIT: bool = false;

    fn packed_len(hs: usize, is: usize) -> usize {
        rnn_packed_len(hs) + rnn_ih_packed_len(hs, is)
    }

    fn pack<T: Real>(w: &Weights<'_, T>, packed: &mut [T]) {
        let (hh, ih) = packed.split_at_mut(rnn_packed_len(w.hs));
        pack_rnn(w.hs, w.w_hh, w.b_ih, w.b_hh, hh);
        pack_rnn_ih(w.hs, w.is, w.w_ih, ih);
    }

    fn forward_step<T: Real, K: Kernels<T>>(f: Forward<'_, T>) {
        let (b, hs, is) = (f.batch, f.w.hs, f.w.is);
        let (packed, packed_ih) = f.packed.split_at(rnn_packed_len(hs));
        K::rnn_forward_step(
            b, hs, is, f.x, f.w.w_ih, f.w.w_hh, f.w.b_ih, f.w.b_hh, packed, packed_ih, f.h_prev,
            f.cache, f.h,
        );
    }

    fn backward_step<T: Real, K: Kernels<T>>(b: Backward<'_, T>) {
        K::rnn_backward_step(b.batch, b.w.hs, b.h, b.dh_ext, b.w.w_hh, b.dh_carry, b.dax);
    }

    fn step_scratch_len(hs: usize) -> usize {
        hs
    }

    fn step<T: Real, K: Kernels<T>>(
        w: &Weights<'_, T>,
        x: &[T],
        h: &mut [T],
        _c: &mut [T],
        scratch: &mut [T],
    ) {
        let pre = &mut scratch[..w.hs];
        summed_pre::<T, K>(w, 1, x, h, pre);
        K::tanh_pointwise(pre, h);
    }
}

impl Cell for ReluCell {
    const KIND: CellKind = CellKind::RnnRelu;
    const CACHE: usize = 1;
    const SPLIT: bool = false;

    fn forward_step<T: Real, K: Kernels<T>>(f: Forward<'_, T>) {
        let n = f.batch * f.w.hs;
        summed_pre::<T, K>(&f.w, f.batch, f.x, f.h_prev, f.cache);
        relu(&f.cache[..n], &mut f.h[..n]);
    }

    fn backward_step<T: Real, K: Kernels<T>>(b: Backward<'_, T>) {
        let (n, hs) = (b.batch, b.w.hs);
        for (((da, &a), &e), &r) in b.dax[..n * hs]
            .iter_mut()
            .zip(b.cache)
            .zip(b.dh_ext)
            .zip(b.dh_carry.iter())
        {
            *da = if a > T::ZERO { e + r } else { T::ZERO };
        }
        let dh = &mut b.dh_carry[..n * hs];
        dh.fill(T::ZERO);
        K::gemm_nn(n, hs, hs, b.dax, b.w.w_hh, dh);
    }

    fn step_scratch_len(hs: usize) -> usize {
        hs
    }

    fn step<T: Real, K: Kernels<T>>(
        w: &Weights<'_, T>,
        x: &[T],
        h: &mut [T],
        _c: &mut [T],
        scratch: &mut [T],
    ) {
        let pre = &mut scratch[..w.hs];
        summed_pre::<T, K>(w, 1, x, h, pre);
        relu(pre, h);
    }
}

/// `h = max(pre, 0)`.
fn relu<T: Real>(pre: &[T], h: &mut [T]) {
    for (h, &a) in h.iter_mut().zip(pre) {
        *h = a.max(T::ZERO);
    }
}

/// `pre = b_ih + b_hh + x W_ihᵀ + h W_hhᵀ` (set), (B, H).
fn summed_pre<T: Real, K: Kernels<T>>(
    w: &Weights<'_, T>,
    batch: usize,
    x: &[T],
    h: &[T],
    pre: &mut [T],
) {
    let hs = w.hs;
    for row in pre[..batch * hs].chunks_exact_mut(hs) {
        for ((p, &bi), &bh) in row.iter_mut().zip(w.b_ih).zip(w.b_hh) {
            *p = bi + bh;
        }
    }
    K::gemm_nt(batch, hs, w.is, x, w.w_ih, pre);
    K::gemm_nt(batch, hs, hs, h, w.w_hh, pre);
}
