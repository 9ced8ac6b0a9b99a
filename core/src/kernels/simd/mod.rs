//! SIMD kernels for `f32`, generic over the lane type ([`Lanes`](super::lanes::Lanes)) and
//! instantiated per instruction set: 16 lanes (AVX-512F) for the broadcast tiles, the fused
//! steps, the cell updates and the batch-1 step where the CPU has it, else 8 (AVX2 + FMA, or
//! `wide::f32x8` as compiled on CPUs and targets without them), chosen at run time by `widest!`
//! and `lanes8!` (same bits, see `lanes.rs`; no compile flags needed).
//! Each kernel has its scalar twin in `naive.rs` with the same signature; `tests/kernels.rs`
//! checks them against each other. This module routes the [`Kernels`] trait to one file per
//! concern: `math.rs` (exp, sigmoid, tanh), `gemm.rs` (dot-product blocks and broadcast tiles:
//! the matrix products and `col_sum`), `pointwise.rs` (the cells' pointwise forward and backward),
//! `fused_step.rs` (the batched recurrent steps, forward on the packed panels of `panel.rs`, and
//! backward), `step1.rs` (the batch-1 LSTM step); here is the dispatch they share.
//!
//! # Safety
//! Every kernel `assert!`s, once per call, that its slices are long enough for the shape it is
//! given (with overflow-checked products); inside, all accesses are through raw pointers at offsets
//! below those bounds, so the inner loops carry no bounds checks.

use super::{Kernels, Simd};

/// `a · b <= len`, without overflow.
#[inline(always)]
pub(super) fn fits(len: usize, a: usize, b: usize) -> bool {
    a.checked_mul(b).is_some_and(|n| n <= len)
}

// ---------------------------------------------------------------------------------------------
// Run-time dispatch

/// `$wide(args)`: the generic kernel `$kernel::<V>(args)` instantiated for the instruction set in
/// use (`lanes::isa`): `Zmm` (16 lanes) in a function compiled for AVX-512F, `Ymm` (8) in one
/// compiled for AVX2 + FMA, `wide::f32x8` (as compiled) otherwise. All give the same bits but
/// the last (see `lanes.rs`). `$kernel` and everything it calls on vectors must be
/// `#[inline(always)]` functions, no closures: only what is inlined into the instantiations is
/// compiled with their target features.
///
/// Safety of `$wide`: that of `$kernel`.
/// Defined before the submodules, which use it (`macro_rules!` scope is textual).
macro_rules! widest {
    ($(#[$doc:meta])* $vis:vis $wide:ident => $kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $wide($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::kernels::lanes::{Isa, Ymm, Zmm, isa};

                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn zmm($($arg: $ty),*) {
                    // SAFETY: by the caller's contract.
                    unsafe { $kernel::<Zmm>($($arg),*) }
                }

                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn ymm($($arg: $ty),*) {
                    // SAFETY: by the caller's contract.
                    unsafe { $kernel::<Ymm>($($arg),*) }
                }

                match isa() {
                    // SAFETY: by the caller's contract; `isa()` said Avx512 only after CPUID
                    // found AVX-512F, AVX2 and FMA and XGETBV that the OS saves the ZMM state.
                    Isa::Avx512 => return unsafe { zmm($($arg),*) },
                    // SAFETY: by the caller's contract; `isa()` said Avx2 only after CPUID found
                    // AVX2 and FMA and XGETBV that the OS saves the YMM state.
                    Isa::Avx2 => return unsafe { ymm($($arg),*) },
                    Isa::Portable => {}
                }
            }
            // SAFETY: by the caller's contract; `wide::f32x8` needs no CPU check.
            unsafe { $kernel::<wide::f32x8>($($arg),*) }
        }
    };
}

/// [`widest!`] for kernels written for 8 lanes only (generic over `Vec8`): `Ymm` wherever the
/// CPU has AVX2 + FMA (also where the AVX-512 kernels are in use), else `wide::f32x8`.
macro_rules! lanes8 {
    ($(#[$doc:meta])* $vis:vis $wide:ident => $kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $wide($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::kernels::lanes::{Isa, Ymm, isa};

                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn ymm($($arg: $ty),*) {
                    // SAFETY: by the caller's contract.
                    unsafe { $kernel::<Ymm>($($arg),*) }
                }

                if isa() != Isa::Portable {
                    // SAFETY: by the caller's contract; `isa()` is Avx2 or Avx512 only after
                    // CPUID found AVX2 and FMA and XGETBV that the OS saves the YMM state.
                    return unsafe { ymm($($arg),*) };
                }
            }
            // SAFETY: by the caller's contract; `wide::f32x8` needs no CPU check.
            unsafe { $kernel::<wide::f32x8>($($arg),*) }
        }
    };
}

// The submodules, after `widest!` (which they use).
mod fused_step;
mod gemm;
mod math;
mod pointwise;
mod step1;

// ---------------------------------------------------------------------------------------------
// The trait

impl Kernels<f32> for Simd {
    const LSTM_STEP_SCRATCH: bool = false;

    // Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
    // keeps no panic path.
    #[inline(always)]
    fn gemm_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        gemm::gemm_nt(m, n, k, a, b, c)
    }

    fn gemm_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        gemm::gemm_nn(m, n, k, a, b, c)
    }

    fn gemm_tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        gemm::gemm_tn(m, n, k, a, b, c)
    }

    fn col_sum(rows: usize, n: usize, a: &[f32], y: &mut [f32]) {
        gemm::col_sum(rows, n, a, y)
    }

    fn lstm_pointwise(
        pre: &[f32],
        c_prev: &[f32],
        gates: &mut [f32],
        c: &mut [f32],
        tanh_c: &mut [f32],
        h: &mut [f32],
    ) {
        pointwise::lstm_pointwise(pre, c_prev, gates, c, tanh_c, h)
    }

    fn lstm_pointwise_backward(
        gates: &[f32],
        c_prev: &[f32],
        tanh_c: &[f32],
        dh_ext: &[f32],
        dh_rec: &[f32],
        dc: &mut [f32],
        dpre: &mut [f32],
    ) {
        pointwise::lstm_pointwise_backward(gates, c_prev, tanh_c, dh_ext, dh_rec, dc, dpre)
    }

    // Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
    // keeps no panic path.
    #[inline(always)]
    fn lstm_step(
        hs: usize,
        is: usize,
        x: &[f32],
        w_ih: &[f32],
        w_hh: &[f32],
        b_ih: &[f32],
        b_hh: &[f32],
        h_prev: &[f32],
        c: &mut [f32],
        h: &mut [f32],
        _scratch: &mut [f32],
    ) {
        step1::lstm_step(hs, is, x, w_ih, w_hh, b_ih, b_hh, h_prev, c, h)
    }

    // The fused steps read `W_hh` and the biases from `packed` (and `W_ih` from `packed_ih` when
    // it is given); the plain `w_hh`, `b_ih`, `b_hh` are the naive twin's.
    fn lstm_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[f32],
        w_ih: &[f32],
        _w_hh: &[f32],
        _b_ih: &[f32],
        _b_hh: &[f32],
        packed: &[f32],
        packed_ih: &[f32],
        h_prev: &[f32],
        c_prev: &[f32],
        pre: &mut [f32],
        gates: &mut [f32],
        c: &mut [f32],
        tanh_c: &mut [f32],
        h: &mut [f32],
    ) {
        fused_step::lstm_forward_step(
            batch, hs, is, x, w_ih, packed, packed_ih, h_prev, c_prev, pre, gates, c, tanh_c, h,
        )
    }

    fn lstm_backward_step(
        batch: usize,
        hs: usize,
        gates: &[f32],
        c_prev: &[f32],
        tanh_c: &[f32],
        dh_ext: &[f32],
        w_hh: &[f32],
        dh_carry: &mut [f32],
        dc_carry: &mut [f32],
        dpre: &mut [f32],
    ) {
        fused_step::lstm_backward_step(
            batch, hs, gates, c_prev, tanh_c, dh_ext, w_hh, dh_carry, dc_carry, dpre,
        )
    }

    fn rnn_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[f32],
        w_ih: &[f32],
        _w_hh: &[f32],
        _b_ih: &[f32],
        _b_hh: &[f32],
        packed: &[f32],
        packed_ih: &[f32],
        h_prev: &[f32],
        pre: &mut [f32],
        h: &mut [f32],
    ) {
        fused_step::rnn_forward_step(batch, hs, is, x, w_ih, packed, packed_ih, h_prev, pre, h)
    }

    fn rnn_backward_step(
        batch: usize,
        hs: usize,
        h: &[f32],
        dh_ext: &[f32],
        w_hh: &[f32],
        dh_carry: &mut [f32],
        dpre: &mut [f32],
    ) {
        fused_step::rnn_backward_step(batch, hs, h, dh_ext, w_hh, dh_carry, dpre)
    }

    fn gru_pointwise(
        batch: usize,
        hs: usize,
        ax: &[f32],
        ah: &[f32],
        h_prev: &[f32],
        cache: &mut [f32],
        h: &mut [f32],
    ) {
        pointwise::gru_pointwise(batch, hs, ax, ah, h_prev, cache, h)
    }

    fn gru_pointwise_backward(
        batch: usize,
        hs: usize,
        cache: &[f32],
        h_prev: &[f32],
        dh_ext: &[f32],
        dh_carry: &mut [f32],
        dax: &mut [f32],
        dah: &mut [f32],
    ) {
        pointwise::gru_pointwise_backward(batch, hs, cache, h_prev, dh_ext, dh_carry, dax, dah)
    }

    // Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
    // keeps no panic path.
    #[inline(always)]
    fn tanh_pointwise(pre: &[f32], h: &mut [f32]) {
        pointwise::tanh_pointwise(pre, h)
    }

    fn tanh_pointwise_backward(h: &[f32], dh_ext: &[f32], dh_rec: &[f32], dpre: &mut [f32]) {
        pointwise::tanh_pointwise_backward(h, dh_ext, dh_rec, dpre)
    }
}
