//! SIMD kernels for `f32`, 8 lanes (`wide::f32x8`), and where the CPU has AVX-512F 16 lanes for the
//! broadcast tiles, the fused steps, the cell updates and the batch-1 step (generic over
//! [`Lanes`](super::lanes::Lanes), chosen at run time by `widest!`; same bits, see `lanes.rs`).
//! Each kernel has its scalar twin in `naive.rs` with the same signature; `tests/kernels.rs`
//! checks them against each other. This module routes the [`Kernels`] trait to one file per
//! concern: `math.rs` (exp, sigmoid, tanh), `gemm.rs` (dot-product blocks and broadcast tiles:
//! the matrix products and `col_sum`), `pointwise.rs` (the cells' pointwise forward and backward),
//! `fused_step.rs` (the batched recurrent steps, forward on the packed panels of `panel.rs`, and
//! backward), `step1.rs` (the batch-1 LSTM step); here are the loads and stores they share.
//!
//! # Safety
//! Every kernel `assert!`s, once per call, that its slices are long enough for the shape it is
//! given (with overflow-checked products); inside, all accesses are through raw pointers at offsets
//! below those bounds, so the inner loops carry no bounds checks.

use core::ptr;

use wide::f32x8;

use super::{Kernels, Simd};

// ---------------------------------------------------------------------------------------------
// Loads, stores, bounds

/// `a · b <= len`, without overflow.
#[inline(always)]
pub(super) fn fits(len: usize, a: usize, b: usize) -> bool {
    a.checked_mul(b).is_some_and(|n| n <= len)
}

/// Loads 8 lanes from `p`.
///
/// # Safety
/// `p .. p + 8` must be readable.
#[inline(always)]
pub(super) unsafe fn ldp(p: *const f32) -> f32x8 {
    // SAFETY: by the caller's contract.
    f32x8::new(unsafe { ptr::read_unaligned(p.cast::<[f32; 8]>()) })
}

/// Stores 8 lanes to `p`.
///
/// # Safety
/// `p .. p + 8` must be writable.
#[inline(always)]
pub(super) unsafe fn stp(p: *mut f32, v: f32x8) {
    // SAFETY: by the caller's contract.
    unsafe { ptr::write_unaligned(p.cast::<[f32; 8]>(), v.to_array()) }
}

/// Loads `w` lanes (all 8 if `w >= 8`) from `p`, the rest zero.
///
/// # Safety
/// `p .. p + min(w, 8)` must be readable.
#[inline(always)]
pub(super) unsafe fn ldw(p: *const f32, w: usize) -> f32x8 {
    if w >= 8 {
        // SAFETY: by the caller's contract.
        unsafe { ldp(p) }
    } else {
        #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
        {
            use core::arch::x86_64::{__m256, _mm256_cmpgt_epi32};
            use core::arch::x86_64::{_mm256_maskload_ps, _mm256_set_epi32, _mm256_set1_epi32};
            // SAFETY: a masked load reads (and may fault on) only the lanes `l < w`, readable by
            // the caller's contract; AVX2 is enabled; `f32x8` wraps one `__m256` where AVX is.
            unsafe {
                let lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(w as i32), lanes);
                core::mem::transmute::<__m256, f32x8>(_mm256_maskload_ps(p, mask))
            }
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
        {
            let mut a = [0.0f32; 8];
            // SAFETY: by the caller's contract; `a` has room for 8 > w.
            unsafe { ptr::copy_nonoverlapping(p, a.as_mut_ptr(), w) };
            f32x8::new(a)
        }
    }
}

/// Stores the first `w` lanes (all 8 if `w >= 8`) of `v` to `p`.
///
/// # Safety
/// `p .. p + min(w, 8)` must be writable.
#[inline(always)]
pub(super) unsafe fn stw(p: *mut f32, v: f32x8, w: usize) {
    if w >= 8 {
        // SAFETY: by the caller's contract.
        unsafe { stp(p, v) }
    } else {
        #[cfg(all(target_arch = "x86_64", target_feature = "avx"))]
        {
            use core::arch::x86_64::_mm256_extractf128_ps;
            use core::arch::x86_64::{__m256, _mm_movehl_ps, _mm_store_sd, _mm_store_ss};
            use core::arch::x86_64::{_mm_castps_pd, _mm_storeu_ps, _mm256_castps256_ps128};
            // SAFETY: 4, 2 and 1 lanes stored at offsets below w, writable by the caller's
            // contract; AVX is enabled; `f32x8` wraps one `__m256` where AVX is.
            unsafe {
                let v = core::mem::transmute::<f32x8, __m256>(v);
                let (mut p, mut q) = (p, _mm256_castps256_ps128(v));
                if w & 4 != 0 {
                    _mm_storeu_ps(p, q);
                    q = _mm256_extractf128_ps::<1>(v);
                    p = p.add(4);
                }
                if w & 2 != 0 {
                    _mm_store_sd(p.cast::<f64>(), _mm_castps_pd(q));
                    q = _mm_movehl_ps(q, q);
                    p = p.add(2);
                }
                if w & 1 != 0 {
                    _mm_store_ss(p, q);
                }
            }
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "avx")))]
        {
            let a = v.to_array();
            // SAFETY: by the caller's contract.
            unsafe { ptr::copy_nonoverlapping(a.as_ptr(), p, w) };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch to the widest lanes

/// `$wide(args)`: the generic kernel `$kernel::<V>(args)` with 16 lanes (`Zmm`, through
/// `$zmm`, compiled for AVX-512F) where `lanes::avx512` says the CPU has them and they are
/// allowed, else with 8 (`f32x8`). Both give the same bits (see `lanes.rs`). `$kernel` and
/// everything it calls on vectors must be `#[inline(always)]` functions, no closures: only what
/// is inlined into `$zmm` is compiled with its target feature.
///
/// Safety of `$wide` and `$zmm`: that of `$kernel`; `$zmm` only on a CPU with AVX-512F.
/// Defined before the submodules, which use it (`macro_rules!` scope is textual).
macro_rules! widest {
    ($(#[$doc:meta])* $vis:vis $wide:ident, $zmm:ident => $kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $zmm($($arg: $ty),*) {
            // SAFETY: by the caller's contract.
            unsafe { $kernel::<$crate::kernels::lanes::Zmm>($($arg),*) }
        }

        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $wide($($arg: $ty),*) {
            // SAFETY: by the caller's contract; the 16-lane kernel only where the CPU has it.
            unsafe {
                #[cfg(target_arch = "x86_64")]
                if $crate::kernels::lanes::avx512() {
                    return $zmm($($arg),*);
                }
                $kernel::<wide::f32x8>($($arg),*)
            }
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
