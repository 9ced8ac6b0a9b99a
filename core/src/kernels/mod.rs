//! The numeric kernels every cell is written in, in two twins:
//!
//! * [`Naive`]: plain scalar loops, generic over [`Real`]. The test oracle, the `f64` path of the
//!   gradient checks, and the benchmark baseline.
//! * [`Simd`]: `f32` only, 8 lanes wide (`wide::f32x8`: AVX2 + FMA when the build enables them, see
//!   `.cargo/config.toml`; plain arrays on targets without SIMD, such as Cortex-M).
//!
//! All matrices are row-major and tightly packed. Every kernel *accumulates* into its output
//! (`+=`) unless its doc says otherwise. Callers check slice lengths; the kernels only
//! `debug_assert!` them.

mod naive;
mod simd;

use crate::Real;

/// The naive scalar twin of every kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Naive;

/// The SIMD (`wide::f32x8`) kernels for `f32`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simd;

/// The operations the cells are built from.
pub trait Kernels<T: Real> {
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
    /// tanh-RNN pointwise forward: `h = tanh(pre)`.
    fn tanh_pointwise(pre: &[T], h: &mut [T]);
    /// tanh-RNN pointwise backward: `dpre = (dh_ext + dh_rec) · (1 - h²)` (set, not accumulated).
    fn tanh_pointwise_backward(h: &[T], dh_ext: &[T], dh_rec: &[T], dpre: &mut [T]);
}
