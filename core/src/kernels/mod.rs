//! The numeric kernels every cell is written in, in two twins:
//!
//! * [`Naive`]: plain scalar loops, generic over [`Real`]. The test oracle, the `f64` path of the
//!   gradient checks, and the benchmark baseline.
//! * [`Simd`]: `f32` only, 8 or 16 lanes wide, the instruction set chosen at run time from CPUID
//!   ([`simd_isa`]): AVX-512F (16 lanes, [`lane_width`], [`allow_avx512`]) or AVX2 + FMA (8) on
//!   x86-64 CPUs that have them, with the same bits, whatever flags the crate is compiled with;
//!   elsewhere `wide::f32x8` as compiled (plain arrays on targets without SIMD, such as
//!   Cortex-M; SSE2 without FMA on an x86-64 CPU older than AVX2, where the last bits may differ).
//!   On `target_arch = "arm"` (Cortex-M) the batch-1 steps (`lstm_step`, `gemm_nt` with one
//!   row, `tanh_pointwise`) go to [`mcu`] instead: four rows per pass, VFMA, scalar activations.
//!
//! All matrices are row-major and tightly packed. Every kernel *accumulates* into its output
//! (`+=`) unless its doc says otherwise. Callers check slice lengths; the naive kernels only
//! `debug_assert!` them, the SIMD kernels `assert!` them once per call (they index without bounds
//! checks inside).
//!
//! The fused recurrent steps ([`Kernels::lstm_forward_step`], [`Kernels::rnn_forward_step`]) are
//! given `W_hh` and the biases twice: as stored (the naive twin reads these) and as a *packed*
//! copy made once per forward call by [`pack_lstm`] / [`pack_rnn`] (the SIMD kernel reads that;
//! the layout is `panel.rs`'s).

mod lanes;
pub mod mcu;
mod naive;
mod panel;
mod simd;

pub use lanes::{allow_avx512, lane_width, simd_isa};
pub use panel::{
    PANEL, lstm_ih_packed_len, lstm_packed_len, pack_lstm, pack_lstm_ih, pack_rnn, pack_rnn_ih,
    rnn_ih_packed_len, rnn_packed_len,
};

use crate::Real;

/// The naive scalar twin of every kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Naive;

/// The SIMD kernels for `f32` (AVX-512F, AVX2 + FMA or `wide::f32x8`, chosen at run time).
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
    /// pre-activations `b_ih + b_hh + x W_ihᵀ + h_prev W_hhᵀ` go through [`lstm_pointwise`] row
    /// by row into `gates`, `c`, `tanh_c`, `h`. `pre` is working memory, not an output: the naive
    /// kernel leaves the pre-activations there, the SIMD kernel only the partial sums of a `W_ih`
    /// taken in several passes (it keeps the last pass in registers). The naive kernel reads
    /// `w_hh`, `b_ih`, `b_hh` as stored; the SIMD kernel reads them from `packed` (which must be
    /// [`pack_lstm`] of them), and `W_ih` from `packed_ih` when that is not empty
    /// ([`pack_lstm_ih`] of `w_ih`; else it transposes panels of `w_ih` at every step).
    ///
    /// Shapes: `x` (B, I), `w_ih` (4H, I), `w_hh` (4H, H), `b_ih`, `b_hh` (4H), `h_prev`,
    /// `c_prev`, `c`, `tanh_c`, `h` (B, H), `pre`, `gates` (B, 4H).
    ///
    /// [`lstm_pointwise`]: Kernels::lstm_pointwise
    #[allow(clippy::too_many_arguments)]
    fn lstm_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[T],
        w_ih: &[T],
        w_hh: &[T],
        b_ih: &[T],
        b_hh: &[T],
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
    /// `pre = b_ih + b_hh + x W_ihᵀ + h_prev W_hhᵀ` (set), `h = tanh(pre)`. The naive kernel
    /// reads `w_hh`, `b_ih`, `b_hh`; the SIMD kernel reads them from `packed` ([`pack_rnn`] of
    /// them) and `W_ih` from `packed_ih` unless it is empty ([`pack_rnn_ih`] of `w_ih`).
    /// Shapes: `x` (B, I), `w_ih` (H, I), `w_hh` (H, H), `b_ih`, `b_hh` (H), `h_prev`, `pre`,
    /// `h` (B, H).
    #[allow(clippy::too_many_arguments)]
    fn rnn_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[T],
        w_ih: &[T],
        w_hh: &[T],
        b_ih: &[T],
        b_hh: &[T],
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
    /// GRU pointwise forward for `batch` rows (see `cell/gru.rs`): from `ax`, `ah` (`[r, z, n]`
    /// parts, 3H per row) and `h_prev`, sets `cache` = `[r, z, n | ah_n]` (4H per row) and `h`.
    ///
    /// Shapes: `ax`, `ah` (B, 3H); `h_prev`, `h` (B, H); `cache` (B, 4H).
    #[allow(clippy::too_many_arguments)]
    fn gru_pointwise(
        batch: usize,
        hs: usize,
        ax: &[T],
        ah: &[T],
        h_prev: &[T],
        cache: &mut [T],
        h: &mut [T],
    );
    /// GRU pointwise backward for `batch` rows: with `dh = dh_ext + dh_carry`, sets `dax`, `dah`
    /// (dL/d`ax`, dL/d`ah`) and replaces `dh_carry` by `dh ⊙ z` (the direct part of dL/dh_{t-1};
    /// the caller adds `dah · W_hh`).
    ///
    /// Shapes: `cache` (B, 4H) as [`gru_pointwise`](Self::gru_pointwise) left it; `h_prev`,
    /// `dh_ext`, `dh_carry` (B, H); `dax`, `dah` (B, 3H).
    #[allow(clippy::too_many_arguments)]
    fn gru_pointwise_backward(
        batch: usize,
        hs: usize,
        cache: &[T],
        h_prev: &[T],
        dh_ext: &[T],
        dh_carry: &mut [T],
        dax: &mut [T],
        dah: &mut [T],
    );
    /// tanh-RNN pointwise forward: `h = tanh(pre)`.
    fn tanh_pointwise(pre: &[T], h: &mut [T]);
    /// tanh-RNN pointwise backward: `dpre = (dh_ext + dh_rec) · (1 - h²)` (set, not accumulated).
    fn tanh_pointwise_backward(h: &[T], dh_ext: &[T], dh_rec: &[T], dpre: &mut [T]);
}
