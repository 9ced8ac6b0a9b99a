//! The packed layout of the recurrent weights, owned here: what the SIMD fused steps
//! ([`lstm_forward_step`](super::Kernels::lstm_forward_step), [`rnn_forward_step`](super::Kernels::rnn_forward_step) of [`Simd`](super::Simd)) read instead of
//! `W_hh` and the biases, packed once per forward call by [`pack_lstm`] / [`pack_rnn`]: panels of
//! 32 output columns, each panel the summed bias (32) followed by the H rows of `W_hhᵀ` restricted
//! to its columns (32 each), so the recurrent product streams one contiguous panel per block of
//! output columns. An LSTM panel holds the four gates `i, f, g, o` of 8 hidden units (8 columns
//! each), so the pointwise cell update runs on registers; a tanh-RNN panel holds 32 consecutive
//! units. Columns past H are zero. `W_ih` may be packed the same way without the bias row
//! ([`pack_lstm_ih`], [`pack_rnn_ih`]). The naive twins do not read this layout.

use crate::Real;

/// Output columns per packed panel.
pub const PANEL: usize = 32;

/// Scalars of the packed LSTM weights for hidden size `h` (see [`pack_lstm`]).
pub const fn lstm_packed_len(h: usize) -> usize {
    h.div_ceil(8) * PANEL * (h + 1)
}

/// Scalars of the packed tanh-RNN weights for hidden size `h` (see [`pack_rnn`]).
pub const fn rnn_packed_len(h: usize) -> usize {
    h.div_ceil(PANEL) * PANEL * (h + 1)
}

/// Packs an LSTM's `W_hh` [4H, H] and `b_ih + b_hh` \[4H\] into `packed`
/// ([`lstm_packed_len`]`(h)` scalars): panel `p` (hidden units `8p..8p+8`) is
/// `[bias | W_hhᵀ row 0 | ... | W_hhᵀ row H-1]`, each part 32 scalars laid out as gates
/// `i, f, g, o` x 8 units; units past `h` are zero.
pub fn pack_lstm<T: Real>(h: usize, w_hh: &[T], b_ih: &[T], b_hh: &[T], packed: &mut [T]) {
    assert!(w_hh.len() >= 4 * h * h && b_ih.len() >= 4 * h && b_hh.len() >= 4 * h);
    assert!(packed.len() >= lstm_packed_len(h));
    for (p, panel) in packed
        .chunks_exact_mut(PANEL * (h + 1))
        .take(h.div_ceil(8))
        .enumerate()
    {
        for (slot, v) in panel.iter_mut().enumerate() {
            let (k, col) = (slot / PANEL, slot % PANEL);
            let (g, u) = (col / 8, 8 * p + col % 8);
            *v = if u >= h {
                T::ZERO
            } else if k == 0 {
                b_ih[g * h + u] + b_hh[g * h + u]
            } else {
                w_hh[(g * h + u) * h + k - 1]
            };
        }
    }
}

/// Scalars of an LSTM's `W_ihᵀ` packed by [`pack_lstm_ih`] (hidden size `h`, `i` inputs).
pub const fn lstm_ih_packed_len(h: usize, i: usize) -> usize {
    h.div_ceil(8) * PANEL * i
}

/// Scalars of a tanh RNN's `W_ihᵀ` packed by [`pack_rnn_ih`].
pub const fn rnn_ih_packed_len(h: usize, i: usize) -> usize {
    h.div_ceil(PANEL) * PANEL * i
}

/// Packs an LSTM's `W_ih` [4H, I] like [`pack_lstm`] packs `W_hh`, without the bias row: panel
/// `p` is `I` rows of 32 (gates `i, f, g, o` x units `8p..8p+8`); [`lstm_ih_packed_len`] scalars.
pub fn pack_lstm_ih<T: Real>(h: usize, i: usize, w_ih: &[T], packed: &mut [T]) {
    assert!(w_ih.len() >= 4 * h * i && packed.len() >= lstm_ih_packed_len(h, i));
    if i == 0 {
        return;
    }
    for (p, panel) in packed
        .chunks_exact_mut(PANEL * i)
        .take(h.div_ceil(8))
        .enumerate()
    {
        for (slot, v) in panel.iter_mut().enumerate() {
            let (q, col) = (slot / PANEL, slot % PANEL);
            let (g, u) = (col / 8, 8 * p + col % 8);
            *v = if u < h {
                w_ih[(g * h + u) * i + q]
            } else {
                T::ZERO
            };
        }
    }
}

/// Packs a tanh RNN's `W_ih` [H, I] like [`pack_rnn`] packs `W_hh`, without the bias row;
/// [`rnn_ih_packed_len`] scalars.
pub fn pack_rnn_ih<T: Real>(h: usize, i: usize, w_ih: &[T], packed: &mut [T]) {
    assert!(w_ih.len() >= h * i && packed.len() >= rnn_ih_packed_len(h, i));
    if i == 0 {
        return;
    }
    for (p, panel) in packed
        .chunks_exact_mut(PANEL * i)
        .take(h.div_ceil(PANEL))
        .enumerate()
    {
        for (slot, v) in panel.iter_mut().enumerate() {
            let (q, u) = (slot / PANEL, PANEL * p + slot % PANEL);
            *v = if u < h { w_ih[u * i + q] } else { T::ZERO };
        }
    }
}

/// Packs a tanh RNN's `W_hh` [H, H] and `b_ih + b_hh` \[H\] into `packed`
/// ([`rnn_packed_len`]`(h)` scalars): panel `p` (units `32p..32p+32`) is
/// `[bias | W_hhᵀ row 0 | ... | W_hhᵀ row H-1]`, 32 scalars each; units past `h` are zero.
pub fn pack_rnn<T: Real>(h: usize, w_hh: &[T], b_ih: &[T], b_hh: &[T], packed: &mut [T]) {
    assert!(w_hh.len() >= h * h && b_ih.len() >= h && b_hh.len() >= h);
    assert!(packed.len() >= rnn_packed_len(h));
    for (p, panel) in packed
        .chunks_exact_mut(PANEL * (h + 1))
        .take(h.div_ceil(PANEL))
        .enumerate()
    {
        for (slot, v) in panel.iter_mut().enumerate() {
            let (k, u) = (slot / PANEL, PANEL * p + slot % PANEL);
            *v = if u >= h {
                T::ZERO
            } else if k == 0 {
                b_ih[u] + b_hh[u]
            } else {
                w_hh[u * h + k - 1]
            };
        }
    }
}
