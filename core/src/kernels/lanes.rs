//! The vector types the blocked SIMD kernels are written over, and the choice between them.
//!
//! * `wide::f32x8`: 8 lanes (AVX2 + FMA in the x86-64-v3 build, plain arrays on Cortex-M).
//! * [`Zmm`] (x86-64 only): 16 lanes of AVX-512F, used when the CPU has it and the OS saves the
//!   ZMM registers (checked once with CPUID / XGETBV, no `std` needed), unless switched off with
//!   [`allow_avx512`].
//!
//! Both compute every element of C as the same chain of single-rounding FMAs in the same order of
//! k, so the two paths give bit-identical results (`tests/kernels.rs` checks it): golden fixtures
//! do not depend on the CPU they were made on.

use core::ops::{Add, Div, Mul, Neg, Sub};

use wide::{bytemuck::cast, f32x8, i32x8};

/// A vector of `N` f32 lanes: what the register tiles and the activations of `simd.rs` need.
/// Every operation is the same single IEEE operation in every lane at either width (including
/// which operand a NaN comes from), so the activations give the same bits at both widths.
pub(crate) trait Lanes:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// Lanes per vector.
    const N: usize;
    /// All lanes zero.
    fn zero() -> Self;
    /// `x` in every lane.
    fn splat(x: f32) -> Self;
    /// `self · b + c`, one rounding per lane.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// `c - self · b`, one rounding per lane.
    fn mul_neg_add(self, b: Self, c: Self) -> Self;
    /// `max(lo, min(hi, self))` with the x86 rule for NaN (the second operand): NaN stays NaN.
    fn fast_clamp(self, lo: Self, hi: Self) -> Self;
    /// `2^n` where the low 9 bits of `self`'s representation are `n` (mod 512): those bits
    /// shifted into the exponent field, plus the bias (see `exp_unchecked` in `simd.rs`).
    fn pow2_from_low_bits(self) -> Self;
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
    fn mul_neg_add(self, b: Self, c: Self) -> Self {
        f32x8::mul_neg_add(self, b, c)
    }
    #[inline(always)]
    fn fast_clamp(self, lo: Self, hi: Self) -> Self {
        f32x8::fast_clamp(self, lo, hi)
    }
    #[inline(always)]
    fn pow2_from_low_bits(self) -> Self {
        cast((cast::<f32x8, i32x8>(self) << 23) + i32x8::splat(127 << 23))
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
pub use x86::allow_avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Zmm, avx512};

/// Whether the 16-lane AVX-512 kernels are in use: never off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn avx512() -> bool {
    false
}

/// Allows or forbids the 16-lane AVX-512 kernels (allowed by default; they only run where the CPU
/// has AVX-512F). Results are the same bit for bit either way; this exists to measure the two
/// side by side and to test that they agree. Returns whether they are now in use; off x86-64
/// always false.
#[cfg(not(target_arch = "x86_64"))]
pub fn allow_avx512(_allow: bool) -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{
        __cpuid, __cpuid_count, __m512, _mm512_add_epi32, _mm512_add_ps, _mm512_castps_si512,
        _mm512_castsi512_ps, _mm512_div_ps, _mm512_fmadd_ps, _mm512_fnmadd_ps, _mm512_loadu_ps,
        _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_set1_epi32, _mm512_set1_ps,
        _mm512_setzero_ps, _mm512_slli_epi32, _mm512_storeu_ps, _mm512_sub_ps, _mm512_xor_si512,
        _xgetbv,
    };
    use core::ops::{Add, Div, Mul, Neg, Sub};
    use core::sync::atomic::{AtomicU8, Ordering};

    use super::Lanes;

    /// 16 lanes in one AVX-512 register. Its methods are only ever inlined into functions
    /// compiled with `#[target_feature(enable = "avx512f")]`, which run only after [`avx512`]
    /// said yes. (The register is visible to `simd.rs` for its Zmm-only shuffles.)
    #[derive(Clone, Copy)]
    pub(crate) struct Zmm(pub(crate) __m512);

    /// The arithmetic operators, one AVX-512F instruction each.
    macro_rules! zmm_op {
        ($tr:ident, $f:ident, $op:ident) => {
            impl $tr for Zmm {
                type Output = Zmm;
                #[inline(always)]
                fn $f(self, b: Zmm) -> Zmm {
                    // SAFETY: reached only from AVX-512F code on a CPU that has it.
                    Zmm(unsafe { $op(self.0, b.0) })
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
        /// Flips the sign bit, as `f32x8`'s negation does (an XOR with -0.0).
        #[inline(always)]
        fn neg(self) -> Zmm {
            // SAFETY: reached only from AVX-512F code on a CPU that has it.
            Zmm(unsafe {
                let sign = _mm512_set1_epi32(i32::MIN);
                _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(self.0), sign))
            })
        }
    }

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
        fn mul_neg_add(self, b: Self, c: Self) -> Self {
            Zmm(unsafe { _mm512_fnmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn fast_clamp(self, lo: Self, hi: Self) -> Self {
            // The operand order of `f32x8::fast_clamp` (AVX): a NaN in `self` comes through.
            Zmm(unsafe { _mm512_max_ps(lo.0, _mm512_min_ps(hi.0, self.0)) })
        }
        #[inline(always)]
        fn pow2_from_low_bits(self) -> Self {
            Zmm(unsafe {
                let n = _mm512_slli_epi32::<23>(_mm512_castps_si512(self.0));
                _mm512_castsi512_ps(_mm512_add_epi32(n, _mm512_set1_epi32(127 << 23)))
            })
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

    /// Whether the 16-lane kernels are in use (see [`allow_avx512`]); one relaxed load after the
    /// first call.
    #[inline]
    pub(crate) fn avx512() -> bool {
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

    /// Allows or forbids the 16-lane AVX-512 kernels (allowed by default; they only run where the
    /// CPU has AVX-512F). Results are the same bit for bit either way; this exists to measure the
    /// two side by side and to test that they agree. Returns whether they are now in use.
    pub fn allow_avx512(allow: bool) -> bool {
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
