//! The vector types the blocked SIMD kernels are written over, and the choice between them.
//!
//! * `wide::f32x8`: 8 lanes (AVX2 + FMA in the x86-64-v3 build, plain arrays on Cortex-M).
//! * [`Zmm`] (x86-64 only): 16 lanes of AVX-512F, used when the CPU has it and the OS saves the
//!   ZMM registers (checked once with CPUID / XGETBV, no `std` needed), unless switched off with
//!   [`allow_avx512`].
//!
//! Both compute every element of C as the same chain of single-rounding FMAs in the same order of
//! k, so the two paths give bit-identical results (`tests/lane_width.rs` checks it): golden fixtures
//! do not depend on the CPU they were made on.

use core::ops::{Add, Div, Mul, Neg, Sub};

use wide::bytemuck::cast;
use wide::{f32x8, i32x8};

/// A vector of `N` f32 lanes: what the register tiles of `simd/` need.
pub(crate) trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// All lanes zero.
    fn zero() -> Self;
    /// `x` in every lane.
    fn splat(x: f32) -> Self;
    /// `self · b + c`, one rounding per lane.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// Loads `N` lanes from `p`.
    ///
    /// # Safety
    /// `p .. p + N` must be readable.
    unsafe fn load(p: *const f32) -> Self;
    /// Stores `N` lanes to `p`.
    ///
    /// # Safety
    /// `p .. p + N` must be writable.
    unsafe fn store(self, p: *mut f32);
}

/// The arithmetic of the activation functions (`simd/math.rs`: `exp_unchecked`, `sigmoid`, `tanh`),
/// lane by lane with the same instructions for every width, so they too give the same bits.
pub(crate) trait Math:
    Lanes
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// `max(lo, min(hi, self))` in that order (`wide`'s `fast_clamp`: NaN stays NaN).
    fn clamp(self, lo: f32, hi: f32) -> Self;
    /// `c - self · b`, one rounding.
    fn mul_neg_add(self, b: Self, c: Self) -> Self;
    /// The float whose bits are `(bits(t) << 23) + (127 << 23)` (wrapping, per lane): `2^n` when
    /// the low 9 bits of `t`'s representation hold `n` in [-126, 127].
    fn pow2_bits(t: Self) -> Self;
}

impl Math for f32x8 {
    #[inline(always)]
    fn clamp(self, lo: f32, hi: f32) -> Self {
        self.fast_clamp(f32x8::splat(lo), f32x8::splat(hi))
    }
    #[inline(always)]
    fn mul_neg_add(self, b: Self, c: Self) -> Self {
        f32x8::mul_neg_add(self, b, c)
    }
    #[inline(always)]
    fn pow2_bits(t: Self) -> Self {
        cast((cast::<f32x8, i32x8>(t) << 23) + i32x8::splat(127 << 23))
    }
}

impl Lanes for f32x8 {
    const N: usize = 8;
    #[inline(always)]
    fn zero() -> Self {
        f32x8::ZERO
    }
    #[inline(always)]
    fn splat(x: f32) -> Self {
        f32x8::splat(x)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f32x8::mul_add(self, b, c)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: by the caller's contract.
        f32x8::new(unsafe { core::ptr::read_unaligned(p.cast::<[f32; 8]>()) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: by the caller's contract.
        unsafe { core::ptr::write_unaligned(p.cast::<[f32; 8]>(), self.to_array()) }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::Zmm;

/// Lanes per vector of the [`Simd`](super::Simd) kernels' matrix products on this CPU: 16 where
/// the AVX-512 kernels run, else 8.
pub fn lane_width() -> usize {
    if avx512() { 16 } else { 8 }
}

/// Whether the 16-lane AVX-512 kernels are in use (see [`allow_avx512`]): one relaxed load after
/// the first call; never off x86-64.
#[inline]
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return x86::avx512();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Allows or forbids the 16-lane AVX-512 kernels (allowed by default; they only run where the CPU
/// has AVX-512F). Results are the same bit for bit either way; this exists to measure the two
/// side by side and to test that they agree. Returns whether they are now in use (off x86-64:
/// never).
pub fn allow_avx512(allow: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    return x86::allow(allow);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = allow;
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{
        __cpuid, __cpuid_count, __m256, __m512, _mm256_castpd_ps, _mm256_castps_pd,
        _mm512_add_epi32, _mm512_add_ps, _mm512_castpd_ps, _mm512_castpd256_pd512,
        _mm512_castps_pd, _mm512_castps_si512, _mm512_castps512_ps256, _mm512_castsi512_ps,
        _mm512_div_ps, _mm512_extractf64x4_pd, _mm512_fmadd_ps, _mm512_fnmadd_ps,
        _mm512_insertf64x4, _mm512_loadu_ps, _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps,
        _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_slli_epi32, _mm512_storeu_ps,
        _mm512_sub_ps, _mm512_xor_si512, _xgetbv,
    };
    use core::ops::{Add, Div, Mul, Neg, Sub};
    use core::sync::atomic::{AtomicU8, Ordering};

    use wide::f32x8;

    use super::{Lanes, Math};

    /// 16 lanes in one AVX-512 register. Its methods are only ever inlined into functions
    /// compiled with `#[target_feature(enable = "avx512f")]`, which run only after [`avx512`]
    /// said yes.
    #[derive(Clone, Copy)]
    pub(crate) struct Zmm(pub(crate) __m512);

    impl Lanes for Zmm {
        const N: usize = 16;
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY (all methods): reached only from AVX-512F code on a CPU that has it.
            Zmm(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            Zmm(unsafe { _mm512_set1_ps(x) })
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            Zmm(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Zmm(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
    }

    /// `f32x8` and `__m256` hold the same 8 floats (with AVX `f32x8` wraps one `__m256`; without,
    /// two `__m128`, still 32 bytes in lane order).
    #[inline(always)]
    fn m256(v: f32x8) -> __m256 {
        // SAFETY: same size, every bit pattern valid for both.
        unsafe { core::mem::transmute::<f32x8, __m256>(v) }
    }

    impl Zmm {
        /// Lanes 0..8 from `lo`, 8..16 from `hi`.
        #[inline(always)]
        pub(crate) fn join(lo: f32x8, hi: f32x8) -> Self {
            // SAFETY (here and below): reached only from AVX-512F code on a CPU that has it.
            unsafe {
                let (lo, hi) = (_mm256_castps_pd(m256(lo)), _mm256_castps_pd(m256(hi)));
                Zmm(_mm512_castpd_ps(_mm512_insertf64x4::<1>(
                    _mm512_castpd256_pd512(lo),
                    hi,
                )))
            }
        }
        /// Lanes 0..8 and 8..16.
        #[inline(always)]
        pub(crate) fn split(self) -> (f32x8, f32x8) {
            let (lo, hi) = unsafe {
                (
                    _mm512_castps512_ps256(self.0),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0))),
                )
            };
            // SAFETY: as in `m256`.
            unsafe {
                (
                    core::mem::transmute::<__m256, f32x8>(lo),
                    core::mem::transmute::<__m256, f32x8>(hi),
                )
            }
        }
    }

    macro_rules! zmm_op {
        ($tr:ident, $f:ident, $op:ident) => {
            impl $tr for Zmm {
                type Output = Zmm;
                #[inline(always)]
                fn $f(self, rhs: Zmm) -> Zmm {
                    Zmm(unsafe { $op(self.0, rhs.0) })
                }
            }
        };
    }
    zmm_op!(Add, add, _mm512_add_ps);
    zmm_op!(Sub, sub, _mm512_sub_ps);
    zmm_op!(Mul, mul, _mm512_mul_ps);
    zmm_op!(Div, div, _mm512_div_ps);

    impl Neg for Zmm {
        type Output = Zmm;
        /// Flips the sign bit, as `wide` does.
        #[inline(always)]
        fn neg(self) -> Zmm {
            let sign = unsafe { _mm512_set1_epi32(i32::MIN) };
            Zmm(unsafe { _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(self.0), sign)) })
        }
    }

    impl Math for Zmm {
        #[inline(always)]
        fn clamp(self, lo: f32, hi: f32) -> Self {
            let (lo, hi) = (Zmm::splat(lo), Zmm::splat(hi));
            Zmm(unsafe { _mm512_max_ps(lo.0, _mm512_min_ps(hi.0, self.0)) })
        }
        #[inline(always)]
        fn mul_neg_add(self, b: Self, c: Self) -> Self {
            Zmm(unsafe { _mm512_fnmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn pow2_bits(t: Self) -> Self {
            // SAFETY: as above.
            unsafe {
                let n = _mm512_slli_epi32::<23>(_mm512_castps_si512(t.0));
                Zmm(_mm512_castsi512_ps(_mm512_add_epi32(
                    n,
                    _mm512_set1_epi32(127 << 23),
                )))
            }
        }
    }

    /// 0: not yet asked; 1: 8 lanes; 2: AVX-512; 3: AVX-512 available but not allowed.
    static STATE: AtomicU8 = AtomicU8::new(0);

    /// Whether the CPU has AVX-512F and the OS saves its state (XCR0: SSE, AVX, opmask and both
    /// halves of the ZMM registers), as `std`'s `is_x86_feature_detected!` decides it.
    fn cpu_has_avx512f() -> bool {
        // SAFETY: CPUID exists on every x86-64 CPU; XGETBV only after CPUID said OSXSAVE.
        unsafe {
            if __cpuid(0).eax < 7 || __cpuid(1).ecx & (1 << 27) == 0 {
                return false;
            }
            xcr0() & 0xe6 == 0xe6 && __cpuid_count(7, 0).ebx & (1 << 16) != 0
        }
    }

    /// XCR0, the register of state components the OS saves.
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: the caller checked OSXSAVE.
        unsafe { _xgetbv(0) }
    }

    /// [`super::avx512`].
    #[inline]
    pub(super) fn avx512() -> bool {
        match STATE.load(Ordering::Relaxed) {
            2 => true,
            0 => {
                let on = cpu_has_avx512f();
                STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
                on
            }
            _ => false,
        }
    }

    /// [`super::allow_avx512`].
    pub(super) fn allow(allow: bool) -> bool {
        let has = cpu_has_avx512f();
        let state = match (has, allow) {
            (false, _) => 1,
            (true, true) => 2,
            (true, false) => 3,
        };
        STATE.store(state, Ordering::Relaxed);
        state == 2
    }
}
