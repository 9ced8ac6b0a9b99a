//! The numeric kernels every cell is written in, in two twins:
//!
//! * [`Naive`]: plain scalar loops, generic over [`Real`]. The test oracle, the `f64` path of the
//!   gradient checks, and the benchmark baseline.
//! * [`Simd`]: `f32` only, 8 lanes wide (`wide::f32x8`: AVX2 + FMA when the build enables them, see
//!   `.cargo/config.toml`; plain arrays on targets without SIMD, such as Cortex-M). On x86-64 CPUs
//!   with AVX-512F the matrix products and the fused steps run 16 lanes wide instead, chosen at
//!   run time ([`lane_width`], [`allow_avx512`]), with the same bits.
//!   On `target_arch = "arm"` (Cortex-M) the batch-1 steps (`lstm_step`, `gemm_nt` with one
//!   row, `tanh_pointwise`) go to [`mcu`] instead: four rows per pass, VFMA, scalar activations.
//!
//! All matrices are row-major and tightly packed. Every kernel *accumulates* into its output
//! (`+=`) unless its doc says otherwise. Callers check slice lengths; the naive kernels only
//! `debug_assert!` them, the SIMD kernels `assert!` them once per call (they index without bounds
//! checks inside).
//!
//! The fused recurrent steps ([`Kernels::lstm_forward_step`], [`Kernels::rnn_forward_step`]) read
//! `W_hh` and the biases from a *packed* copy made once per forward call by [`pack_lstm`] /
//! [`pack_rnn`]: panels of 32 output columns, each panel the summed bias (32) followed by the H
//! rows of `W_hhᵀ` restricted to its columns (32 each), so the recurrent product streams one
//! contiguous panel per block of output columns. An LSTM panel holds the four gates `i, f, g, o`
//! of 8 hidden units (8 columns each), so the pointwise cell update runs on registers; a tanh-RNN
//! panel holds 32 consecutive units. Columns past H are zero.

mod lanes;
pub mod mcu;
mod naive;
mod simd;

pub use lanes::{allow_avx512, lane_width};

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

/// The naive scalar twin of every kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Naive;

/// The SIMD (`wide::f32x8`) kernels for `f32`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simd;

/// The operations the cells are built from.
pub trait Kernels<T: Real> {
    /// Whether [`lstm_step`](Self::lstm_step) needs its 10H scalars of scratch (the SIMD step
    /// keeps everything in registers and is passed an empty slice).
    const LSTM_STEP_SCRATCH: bool = true;
    /// `C[m,n] += A[m,k] · B[n,k]ᵀ`
    fn gemm_nt(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]);
    /// `C[m,n] += A[m,k] · B[k,n]`
    fn gemm_nn(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]);
    /// `C[m,n] += A[k,m]ᵀ · B[k,n]`
    fn gemm_tn(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [T]);
    /// `y[n] += Σ_r A[r,n]` over `rows` rows (bias gradients).
    fn col_sum(rows: usize, n: usize, a: &[T], y: &mut [T]) {
        debug_assert!(a.len() >= rows * n && y.len() >= n);
        for row in a.chunks_exact(n).take(rows) {
            for (y, &v) in y.iter_mut().zip(row) {
                *y += v;
            }
        }
    }
    /// LSTM pointwise forward for one sample; `pre` = `[a_i | a_f | a_g | a_o]` (4H), writes
    /// `gates` = `[i | f | g | o]` (4H), `c`, `tanh_c`, `h` (H each). See `lstm.rs`.
    fn lstm_pointwise(
        pre: &[T],
        c_prev: &[T],
        gates: &mut [T],
        c: &mut [T],
        tanh_c: &mut [T],
        h: &mut [T],
    );
    /// LSTM pointwise backward for one sample. `dh = dh_ext + dh_rec`; `dc` holds dL/dc_t on
    /// entry and dL/dc_{t-1} on return; `dpre` (4H) is *set* to dL/d(pre-activations).
    fn lstm_pointwise_backward(
        gates: &[T],
        c_prev: &[T],
        tanh_c: &[T],
        dh_ext: &[T],
        dh_rec: &[T],
        dc: &mut [T],
        dpre: &mut [T],
    );
    /// One LSTM step of one sequence straight from PyTorch's layout (the batch-1 inference step):
    /// `pre = b_ih + b_hh + W_ih x + W_hh h_prev`, then the cell update: `c` updated in place, `h`
    /// set (`h_prev` must not be `h`). `scratch` (10H scalars, or none if
    /// [`LSTM_STEP_SCRATCH`](Self::LSTM_STEP_SCRATCH) is false) is working memory.
    ///
    /// Shapes: `x` (I), `w_ih` (4H, I), `w_hh` (4H, H), `b_ih`, `b_hh` (4H), `h_prev`, `c`, `h`
    /// (H).
    #[allow(clippy::too_many_arguments)]
    fn lstm_step(
        hs: usize,
        is: usize,
        x: &[T],
        w_ih: &[T],
        w_hh: &[T],
        b_ih: &[T],
        b_hh: &[T],
        h_prev: &[T],
        c: &mut [T],
        h: &mut [T],
        scratch: &mut [T],
    ) {
        let g4 = 4 * hs;
        let (pre, rest) = scratch.split_at_mut(g4);
        let (gates, rest) = rest.split_at_mut(g4);
        let (tanh_c, rest) = rest.split_at_mut(hs);
        let c_prev = &mut rest[..hs];
        c_prev.copy_from_slice(&c[..hs]);
        for ((p, &bi), &bh) in pre.iter_mut().zip(b_ih).zip(b_hh) {
            *p = bi + bh;
        }
        Self::gemm_nt(1, g4, is, x, w_ih, pre);
        Self::gemm_nt(1, g4, hs, h_prev, w_hh, pre);
        Self::lstm_pointwise(pre, c_prev, gates, &mut c[..hs], tanh_c, &mut h[..hs]);
    }
    /// One LSTM time step for `batch` sequences, recurrent product and cell update fused: the
    /// pre-activations `pre = b_ih + b_hh + x W_ihᵀ + h_prev W_hhᵀ` (set) go through
    /// [`lstm_pointwise`] row by row into `gates`, `c`, `tanh_c`, `h`. `W_hh` and the biases come
    /// from `packed` ([`pack_lstm`]); `packed_ih` is either empty or [`pack_lstm_ih`] of `w_ih`
    /// (the SIMD kernel then reads `W_ih` from it instead of transposing panels of it at every
    /// step).
    ///
    /// Shapes: `x` (B, I), `w_ih` (4H, I), `h_prev`, `c_prev`, `c`, `tanh_c`, `h` (B, H), `pre`,
    /// `gates` (B, 4H).
    ///
    /// [`lstm_pointwise`]: Kernels::lstm_pointwise
    #[allow(clippy::too_many_arguments)]
    fn lstm_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[T],
        w_ih: &[T],
        packed: &[T],
        packed_ih: &[T],
        h_prev: &[T],
        c_prev: &[T],
        pre: &mut [T],
        gates: &mut [T],
        c: &mut [T],
        tanh_c: &mut [T],
        h: &mut [T],
    );
    /// One tanh-RNN time step for `batch` sequences, fused:
    /// `pre = b_ih + b_hh + x W_ihᵀ + h_prev W_hhᵀ` (set), `h = tanh(pre)`, with `W_hh` and the
    /// biases from `packed` ([`pack_rnn`]), `packed_ih` empty or [`pack_rnn_ih`] of `w_ih`.
    /// Shapes: `x` (B, I), `w_ih` (H, I), `h_prev`, `pre`, `h` (B, H).
    #[allow(clippy::too_many_arguments)]
    fn rnn_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[T],
        w_ih: &[T],
        packed: &[T],
        packed_ih: &[T],
        h_prev: &[T],
        pre: &mut [T],
        h: &mut [T],
    );
    /// One LSTM backward time step for `batch` sequences: [`lstm_pointwise_backward`] row by row
    /// with `dh_rec` = `dh_carry` (`dc_carry` updated in place, `dpre` set), then
    /// `dh_carry = dpre · W_hh` (set): dL/dh_{t-1} for the step before.
    ///
    /// Shapes: `gates`, `dpre` (B, 4H); `c_prev`, `tanh_c`, `dh_ext`, `dh_carry`, `dc_carry`
    /// (B, H); `w_hh` (4H, H) as stored.
    ///
    /// [`lstm_pointwise_backward`]: Kernels::lstm_pointwise_backward
    #[allow(clippy::too_many_arguments)]
    fn lstm_backward_step(
        batch: usize,
        hs: usize,
        gates: &[T],
        c_prev: &[T],
        tanh_c: &[T],
        dh_ext: &[T],
        w_hh: &[T],
        dh_carry: &mut [T],
        dc_carry: &mut [T],
        dpre: &mut [T],
    ) {
        let g4 = 4 * hs;
        for b in 0..batch {
            let (r, r4) = (b * hs..(b + 1) * hs, b * g4..(b + 1) * g4);
            Self::lstm_pointwise_backward(
                &gates[r4.clone()],
                &c_prev[r.clone()],
                &tanh_c[r.clone()],
                &dh_ext[r.clone()],
                &dh_carry[r.clone()],
                &mut dc_carry[r],
                &mut dpre[r4],
            );
        }
        let dh = &mut dh_carry[..batch * hs];
        dh.fill(T::ZERO);
        Self::gemm_nn(batch, hs, g4, dpre, w_hh, dh);
    }
    /// One tanh-RNN backward time step for `batch` sequences: [`tanh_pointwise_backward`] with
    /// `dh_rec` = `dh_carry` (`dpre` set), then `dh_carry = dpre · W_hh` (set).
    /// Shapes: `w_hh` (H, H), the rest (B, H).
    ///
    /// [`tanh_pointwise_backward`]: Kernels::tanh_pointwise_backward
    fn rnn_backward_step(
        batch: usize,
        hs: usize,
        h: &[T],
        dh_ext: &[T],
        w_hh: &[T],
        dh_carry: &mut [T],
        dpre: &mut [T],
    ) {
        let n = batch * hs;
        Self::tanh_pointwise_backward(&h[..n], &dh_ext[..n], &dh_carry[..n], &mut dpre[..n]);
        let dh = &mut dh_carry[..n];
        dh.fill(T::ZERO);
        Self::gemm_nn(batch, hs, hs, dpre, w_hh, dh);
    }
    /// tanh-RNN pointwise forward: `h = tanh(pre)`.
    fn tanh_pointwise(pre: &[T], h: &mut [T]);
    /// tanh-RNN pointwise backward: `dpre = (dh_ext + dh_rec) · (1 - h²)` (set, not accumulated).
    fn tanh_pointwise_backward(h: &[T], dh_ext: &[T], dh_rec: &[T], dpre: &mut [T]);
}
