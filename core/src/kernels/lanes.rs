//! The vector types the SIMD kernels are written over, and the run-time choice between them.
//!
//! The kernels in `simd/` are generic over the lane type; each is instantiated three times and
//! one instantiation is chosen per call by [`isa`] (CPUID / XGETBV once, no `std` needed):
//!
//! * [`Zmm`] (x86-64): 16 lanes of AVX-512F, with [`Ymm`] for the 8-lane edges, compiled under
//!   `#[target_feature(enable = "avx512f,avx2,fma")]`; where the CPU has AVX-512F and the OS saves
//!   the ZMM registers, unless switched off with [`allow_avx512`].
//! * [`Ymm`] (x86-64): 8 lanes of AVX2 + FMA over `core::arch` intrinsics, compiled under
//!   `#[target_feature(enable = "avx2,fma")]`; where the CPU has AVX2 and FMA (every x86-64 CPU
//!   since Haswell, 2013, and Zen 1, 2017).
//! * `wide::f32x8` everywhere else: Cortex-M (plain arrays; the batch-1 step goes to `mcu.rs`),
//!   other architectures, and x86-64 CPUs without AVX2 + FMA. It takes its instructions from the
//!   features the crate is *compiled* with: on a baseline x86-64 build that is SSE2 without FMA.
//!
//! [`Zmm`] and [`Ymm`] compute every element of C as the same chain of single-rounding FMAs in the
//! same order of k, and the activations as the same operations per lane, so the two give
//! bit-identical results (`tests/lane_width.rs`), whatever flags the crate was built with: golden
//! fixtures do not depend on the CPU or on `RUSTFLAGS`. [`Ymm`] repeats `wide`'s AVX2 + FMA
//! operation for operation (also the orders of its horizontal sums), so results are the bits the
//! earlier `target-cpu=x86-64-v3` builds gave. Only the fallback can differ: on an x86-64 CPU
//! without FMA, `wide::f32x8` rounds a multiply-add twice, and its horizontal sums pair lanes in
//! another order, so results there may differ in the last bits (they still agree with the naive
//! kernels to float precision). A software FMA (`libm::fmaf`) would keep the bits but cost tens of
//! nanoseconds per multiply-add; such CPUs are old enough (before 2013) that speed matters more.

use core::ops::{Add, Div, Mul, Neg, Sub};

use wide::bytemuck::cast;
use wide::{f32x8, i32x8};

/// A vector of `N` f32 lanes: what the register tiles of `simd/` need.
pub(crate) trait Lanes: Copy {
    /// Lanes per vector.
    const N: usize;
    /// The 8-lane type of the same instruction set: the kernels' edges, transposes and
    /// horizontal sums use it (`Self` for the 8-lane types, [`Ymm`] for [`Zmm`]).
    type L8: Vec8;
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
    /// Lanes 0..8 from `lo`, 8..16 from `hi`. Only meaningful for 16 lanes (callers check
    /// `N == 16`); the 8-lane types return `lo`.
    fn join(lo: Self::L8, hi: Self::L8) -> Self;
    /// Lanes 0..8 and 8..16. Only meaningful for 16 lanes; the 8-lane types return `self` twice.
    fn split(self) -> (Self::L8, Self::L8);
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

/// What the kernels do with 8 lanes beyond [`Math`]: partial loads and stores, the 8 x 8
/// transposes, horizontal sums. Implemented by [`Ymm`] and `wide::f32x8`.
pub(crate) trait Vec8: Math<L8 = Self> {
    /// Loads `w` lanes (all 8 if `w >= 8`) from `p`, the rest zero.
    ///
    /// # Safety
    /// `p .. p + min(w, 8)` must be readable.
    unsafe fn load_n(p: *const f32, w: usize) -> Self;
    /// Stores the first `w` lanes (all 8 if `w >= 8`) to `p`.
    ///
    /// # Safety
    /// `p .. p + min(w, 8)` must be writable.
    unsafe fn store_n(self, p: *mut f32, w: usize);
    /// Lanes `8 - t ..` of `self`, the others zero (`t` in 1..=7).
    fn tail(self, t: usize) -> Self;
    /// Lane `l` = the sum of the lanes of `v[l]`, as the tree
    /// `((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7))` of its lanes.
    fn transpose_sum(v: [Self; 8]) -> Self;
    /// The sum of the lanes, as `wide`'s AVX `reduce_add` forms it:
    /// `((x0 + x4) + (x2 + x6)) + ((x1 + x5) + (x3 + x7))` (the fallback pairs them its own way).
    fn reduce_add(self) -> f32;
    /// Lane `l` of result `j` = lane `j` of `v[l]`.
    fn transpose(v: [Self; 8]) -> [Self; 8];
    /// The 8 lanes.
    fn to_array(self) -> [f32; 8];
    /// From 8 lanes.
    fn from_array(a: [f32; 8]) -> Self;
}

impl Lanes for f32x8 {
    const N: usize = 8;
    type L8 = f32x8;
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
        // SAFETY: by the caller's contract (no CPU feature involved: plain memory).
        f32x8::new(unsafe { core::ptr::read_unaligned(p.cast::<[f32; 8]>()) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: by the caller's contract (no CPU feature involved: plain memory).
        unsafe { core::ptr::write_unaligned(p.cast::<[f32; 8]>(), self.to_array()) }
    }
    #[inline(always)]
    fn join(lo: Self, _hi: Self) -> Self {
        lo
    }
    #[inline(always)]
    fn split(self) -> (Self, Self) {
        (self, self)
    }
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

impl Vec8 for f32x8 {
    #[inline(always)]
    unsafe fn load_n(p: *const f32, w: usize) -> Self {
        let mut a = [0.0f32; 8];
        // SAFETY: by the caller's contract; `a` has room for 8.
        unsafe { core::ptr::copy_nonoverlapping(p, a.as_mut_ptr(), w.min(8)) };
        f32x8::new(a)
    }
    #[inline(always)]
    unsafe fn store_n(self, p: *mut f32, w: usize) {
        let a = self.to_array();
        // SAFETY: by the caller's contract.
        unsafe { core::ptr::copy_nonoverlapping(a.as_ptr(), p, w.min(8)) };
    }
    #[inline(always)]
    fn tail(self, t: usize) -> Self {
        let lane = i32x8::new([0, 1, 2, 3, 4, 5, 6, 7]);
        self & cast::<i32x8, f32x8>(lane.simd_gt(i32x8::splat(7 - t as i32)))
    }
    #[inline(always)]
    fn transpose_sum(v: [Self; 8]) -> Self {
        let t = f32x8::transpose(v);
        ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        f32x8::reduce_add(self)
    }
    #[inline(always)]
    fn transpose(v: [Self; 8]) -> [Self; 8] {
        f32x8::transpose(v)
    }
    #[inline(always)]
    fn to_array(self) -> [f32; 8] {
        f32x8::to_array(self)
    }
    #[inline(always)]
    fn from_array(a: [f32; 8]) -> Self {
        f32x8::new(a)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Ymm, Zmm};

/// The instruction set the SIMD kernels run on (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
// Off x86-64 only `Portable` is ever made.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    /// `wide::f32x8` as compiled.
    Portable,
    /// [`Ymm`]: AVX2 + FMA.
    Avx2,
    /// [`Zmm`]: AVX-512F (with AVX2 + FMA).
    Avx512,
}

/// The instruction set in use: one relaxed load after the first call; always
/// [`Isa::Portable`] off x86-64.
#[inline]
pub(crate) fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    return x86::isa();
    #[cfg(not(target_arch = "x86_64"))]
    Isa::Portable
}

/// Lanes per vector of the [`Simd`](super::Simd) kernels' matrix products on this CPU: 16 where
/// the AVX-512 kernels run, else 8.
pub fn lane_width() -> usize {
    if isa() == Isa::Avx512 { 16 } else { 8 }
}

/// The instruction set the [`Simd`](super::Simd) kernels run on in this process: `"avx512f"`
/// (16 lanes), `"avx2+fma"` (8 lanes) or `"portable"` (`wide::f32x8` as compiled: any CPU
/// without AVX2 + FMA, and every target but x86-64). Chosen at run time from CPUID, whatever
/// flags the crate was compiled with; `"avx512f"` and `"avx2+fma"` give the same bits.
pub fn simd_isa() -> &'static str {
    match isa() {
        Isa::Avx512 => "avx512f",
        Isa::Avx2 => "avx2+fma",
        Isa::Portable => "portable",
    }
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
        __cpuid, __cpuid_count, __m256, __m512, _mm_add_ps, _mm_add_ss, _mm_castps_pd,
        _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps, _mm_store_sd, _mm_store_ss, _mm_storeu_ps,
        _mm256_add_epi32, _mm256_add_ps, _mm256_and_ps, _mm256_castps_si256,
        _mm256_castps256_ps128, _mm256_castsi256_ps, _mm256_cmpgt_epi32, _mm256_div_ps,
        _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_fnmadd_ps, _mm256_hadd_ps, _mm256_loadu_ps,
        _mm256_maskload_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps, _mm256_permute2f128_ps,
        _mm256_set_epi32, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setzero_ps, _mm256_shuffle_ps,
        _mm256_slli_epi32, _mm256_storeu_ps, _mm256_sub_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
        _mm256_xor_ps, _mm512_add_epi32, _mm512_add_ps, _mm512_castpd_ps, _mm512_castpd256_pd512,
        _mm512_castps_pd, _mm512_castps_si512, _mm512_castps512_ps256, _mm512_castsi512_ps,
        _mm512_div_ps, _mm512_extractf64x4_pd, _mm512_fmadd_ps, _mm512_fnmadd_ps,
        _mm512_insertf64x4, _mm512_loadu_ps, _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps,
        _mm512_set1_epi32, _mm512_set1_ps, _mm512_setzero_ps, _mm512_slli_epi32, _mm512_storeu_ps,
        _mm512_sub_ps, _mm512_xor_si512, _xgetbv,
    };
    use core::arch::x86_64::{_mm256_castpd_ps, _mm256_castps_pd};
    use core::ops::{Add, Div, Mul, Neg, Sub};
    use core::sync::atomic::{AtomicU8, Ordering};

    use super::{Isa, Lanes, Math, Vec8};

    // -----------------------------------------------------------------------------------------
    // Ymm: 8 lanes, AVX2 + FMA

    /// 8 lanes in one AVX register, with AVX2 + FMA instructions. Its methods are only ever
    /// inlined into functions compiled with `#[target_feature(enable = "avx2,fma")]` (or
    /// `"avx512f,avx2,fma"`), which run only after [`isa`] found AVX2 and FMA on the CPU. Every
    /// operation is the one `wide::f32x8` uses when compiled with those features.
    #[derive(Clone, Copy)]
    pub(crate) struct Ymm(pub(crate) __m256);

    impl Lanes for Ymm {
        const N: usize = 8;
        type L8 = Ymm;
        // SAFETY (every `unsafe` block of `Ymm`'s methods): the intrinsics need AVX, AVX2 or FMA,
        // and these methods run only inside `#[target_feature(enable = "avx2,fma")]` kernels
        // that `isa()` selected after CPUID said the CPU has AVX2 and FMA (and XGETBV that the
        // OS saves the YMM state). Loads and stores: by the caller's contract besides.
        #[inline(always)]
        fn zero() -> Self {
            Ymm(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            Ymm(unsafe { _mm256_set1_ps(x) })
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            Ymm(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Ymm(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn join(lo: Self, _hi: Self) -> Self {
            lo
        }
        #[inline(always)]
        fn split(self) -> (Self, Self) {
            (self, self)
        }
    }

    macro_rules! ymm_op {
        ($tr:ident, $f:ident, $op:ident) => {
            impl $tr for Ymm {
                type Output = Ymm;
                #[inline(always)]
                fn $f(self, rhs: Ymm) -> Ymm {
                    // SAFETY: as for `Ymm`'s `Lanes` methods (AVX2 + FMA kernels only).
                    Ymm(unsafe { $op(self.0, rhs.0) })
                }
            }
        };
    }
    ymm_op!(Add, add, _mm256_add_ps);
    ymm_op!(Sub, sub, _mm256_sub_ps);
    ymm_op!(Mul, mul, _mm256_mul_ps);
    ymm_op!(Div, div, _mm256_div_ps);

    impl Neg for Ymm {
        type Output = Ymm;
        /// Flips the sign bit, as `wide` does.
        #[inline(always)]
        fn neg(self) -> Ymm {
            // SAFETY: as for `Ymm`'s `Lanes` methods (AVX2 + FMA kernels only).
            Ymm(unsafe { _mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)) })
        }
    }

    impl Math for Ymm {
        // SAFETY (every `unsafe` block): as for `Ymm`'s `Lanes` methods (AVX2 + FMA kernels only).
        #[inline(always)]
        fn clamp(self, lo: f32, hi: f32) -> Self {
            let (lo, hi) = (Ymm::splat(lo), Ymm::splat(hi));
            Ymm(unsafe { _mm256_max_ps(lo.0, _mm256_min_ps(hi.0, self.0)) })
        }
        #[inline(always)]
        fn mul_neg_add(self, b: Self, c: Self) -> Self {
            Ymm(unsafe { _mm256_fnmadd_ps(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn pow2_bits(t: Self) -> Self {
            unsafe {
                let n = _mm256_slli_epi32::<23>(_mm256_castps_si256(t.0));
                Ymm(_mm256_castsi256_ps(_mm256_add_epi32(
                    n,
                    _mm256_set1_epi32(127 << 23),
                )))
            }
        }
    }

    impl Vec8 for Ymm {
        // SAFETY (every `unsafe` block): as for `Ymm`'s `Lanes` methods (AVX2 + FMA kernels
        // only); memory accesses by the caller's contract.
        #[inline(always)]
        unsafe fn load_n(p: *const f32, w: usize) -> Self {
            if w >= 8 {
                return unsafe { Ymm::load(p) };
            }
            // A masked load reads (and may fault on) only the lanes `l < w`.
            unsafe {
                let lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(w as i32), lanes);
                Ymm(_mm256_maskload_ps(p, mask))
            }
        }
        #[inline(always)]
        unsafe fn store_n(self, p: *mut f32, w: usize) {
            if w >= 8 {
                return unsafe { self.store(p) };
            }
            // 4, 2 and 1 lanes stored at offsets below w.
            unsafe {
                let (mut p, mut q) = (p, _mm256_castps256_ps128(self.0));
                if w & 4 != 0 {
                    _mm_storeu_ps(p, q);
                    q = _mm256_extractf128_ps::<1>(self.0);
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
        #[inline(always)]
        fn tail(self, t: usize) -> Self {
            unsafe {
                let lanes = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
                let mask = _mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(7 - t as i32));
                Ymm(_mm256_and_ps(self.0, _mm256_castsi256_ps(mask)))
            }
        }
        /// Two rounds of horizontal adds and one cross-lane add (9 instructions).
        #[inline(always)]
        fn transpose_sum(v: [Self; 8]) -> Self {
            unsafe {
                // [v0 01, v0 23, v1 01, v1 23 | v0 45, v0 67, v1 45, v1 67], ...
                let t0 = _mm256_hadd_ps(v[0].0, v[1].0);
                let t1 = _mm256_hadd_ps(v[2].0, v[3].0);
                let t2 = _mm256_hadd_ps(v[4].0, v[5].0);
                let t3 = _mm256_hadd_ps(v[6].0, v[7].0);
                // [v0 0..4, v1 0..4, v2 0..4, v3 0..4 | v0 4..8, v1 4..8, v2 4..8, v3 4..8]
                let u0 = _mm256_hadd_ps(t0, t1);
                let u1 = _mm256_hadd_ps(t2, t3);
                let lo = _mm256_permute2f128_ps::<0x20>(u0, u1);
                let hi = _mm256_permute2f128_ps::<0x31>(u0, u1);
                Ymm(_mm256_add_ps(lo, hi))
            }
        }
        /// `wide`'s AVX `reduce_add`, instruction for instruction.
        #[inline(always)]
        fn reduce_add(self) -> f32 {
            unsafe {
                let quad = _mm_add_ps(
                    _mm256_castps256_ps128(self.0),
                    _mm256_extractf128_ps::<1>(self.0),
                );
                let dual = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
                _mm_cvtss_f32(_mm_add_ss(dual, _mm_shuffle_ps::<0b01>(dual, dual)))
            }
        }
        #[inline(always)]
        fn transpose(v: [Self; 8]) -> [Self; 8] {
            unsafe {
                let mut t = [_mm256_setzero_ps(); 8];
                for i in 0..4 {
                    t[2 * i] = _mm256_unpacklo_ps(v[2 * i].0, v[2 * i + 1].0);
                    t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i].0, v[2 * i + 1].0);
                }
                // Per 128-bit half: u[4h + c] holds column c of rows 4h .. 4h + 4.
                let mut u = [_mm256_setzero_ps(); 8];
                for h in 0..2 {
                    let (a, b, c, d) = (t[4 * h], t[4 * h + 1], t[4 * h + 2], t[4 * h + 3]);
                    u[4 * h] = _mm256_shuffle_ps::<0x44>(a, c);
                    u[4 * h + 1] = _mm256_shuffle_ps::<0xee>(a, c);
                    u[4 * h + 2] = _mm256_shuffle_ps::<0x44>(b, d);
                    u[4 * h + 3] = _mm256_shuffle_ps::<0xee>(b, d);
                }
                let mut out = [Ymm(_mm256_setzero_ps()); 8];
                for c in 0..4 {
                    out[c] = Ymm(_mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]));
                    out[4 + c] = Ymm(_mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]));
                }
                out
            }
        }
        #[inline(always)]
        fn to_array(self) -> [f32; 8] {
            let mut a = [0.0f32; 8];
            unsafe { self.store(a.as_mut_ptr()) };
            a
        }
        #[inline(always)]
        fn from_array(a: [f32; 8]) -> Self {
            unsafe { Ymm::load(a.as_ptr()) }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Zmm: 16 lanes, AVX-512F

    /// 16 lanes in one AVX-512 register. Its methods are only ever inlined into functions
    /// compiled with `#[target_feature(enable = "avx512f,avx2,fma")]`, which run only after
    /// [`isa`] said the CPU has AVX-512F (and the OS saves the ZMM state).
    #[derive(Clone, Copy)]
    pub(crate) struct Zmm(pub(crate) __m512);

    impl Lanes for Zmm {
        const N: usize = 16;
        type L8 = Ymm;
        // SAFETY (every `unsafe` block of `Zmm`'s methods): reached only from AVX-512F code
        // that `isa()` selected after CPUID / XGETBV said the CPU has it and the OS saves the ZMM
        // state. Loads and stores: by the caller's contract besides.
        #[inline(always)]
        fn zero() -> Self {
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
        #[inline(always)]
        fn join(lo: Ymm, hi: Ymm) -> Self {
            unsafe {
                let (lo, hi) = (_mm256_castps_pd(lo.0), _mm256_castps_pd(hi.0));
                Zmm(_mm512_castpd_ps(_mm512_insertf64x4::<1>(
                    _mm512_castpd256_pd512(lo),
                    hi,
                )))
            }
        }
        #[inline(always)]
        fn split(self) -> (Ymm, Ymm) {
            unsafe {
                (
                    Ymm(_mm512_castps512_ps256(self.0)),
                    Ymm(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                        _mm512_castps_pd(self.0),
                    ))),
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
                    // SAFETY: as for `Zmm`'s `Lanes` methods (AVX-512F kernels only).
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
            // SAFETY: as for `Zmm`'s `Lanes` methods (AVX-512F kernels only).
            unsafe {
                let sign = _mm512_set1_epi32(i32::MIN);
                Zmm(_mm512_castsi512_ps(_mm512_xor_si512(
                    _mm512_castps_si512(self.0),
                    sign,
                )))
            }
        }
    }

    impl Math for Zmm {
        // SAFETY (every `unsafe` block): as for `Zmm`'s `Lanes` methods (AVX-512F kernels only).
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
            unsafe {
                let n = _mm512_slli_epi32::<23>(_mm512_castps_si512(t.0));
                Zmm(_mm512_castsi512_ps(_mm512_add_epi32(
                    n,
                    _mm512_set1_epi32(127 << 23),
                )))
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The choice

    /// 0: not yet asked; else `level(Isa) + 1` of the instruction set in use.
    static STATE: AtomicU8 = AtomicU8::new(0);

    const fn code(isa: Isa) -> u8 {
        match isa {
            Isa::Portable => 1,
            Isa::Avx2 => 2,
            Isa::Avx512 => 3,
        }
    }

    /// What the CPU and the OS support, as `std`'s `is_x86_feature_detected!` decides it:
    /// AVX2 + FMA need CPUID's AVX, AVX2 and FMA bits and XCR0's SSE and AVX state; AVX-512F
    /// besides needs its CPUID bit and XCR0's opmask and both halves of the ZMM registers.
    fn detect() -> Isa {
        // SAFETY: CPUID exists on every x86-64 CPU; XGETBV only after CPUID said OSXSAVE.
        unsafe {
            if __cpuid(0).eax < 7 {
                return Isa::Portable;
            }
            let ecx1 = __cpuid(1).ecx;
            let (fma, osxsave, avx) = (1 << 12, 1 << 27, 1 << 28);
            if ecx1 & (fma | osxsave | avx) != fma | osxsave | avx {
                return Isa::Portable;
            }
            let xcr0 = xcr0();
            let ebx7 = __cpuid_count(7, 0).ebx;
            if xcr0 & 0x6 != 0x6 || ebx7 & (1 << 5) == 0 {
                return Isa::Portable;
            }
            if xcr0 & 0xe6 == 0xe6 && ebx7 & (1 << 16) != 0 {
                Isa::Avx512
            } else {
                Isa::Avx2
            }
        }
    }

    /// XCR0, the register of state components the OS saves.
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: the caller checked OSXSAVE (CPUID.1:ECX bit 27), which implies XSAVE.
        unsafe { _xgetbv(0) }
    }

    /// [`super::isa`].
    #[inline]
    pub(super) fn isa() -> Isa {
        match STATE.load(Ordering::Relaxed) {
            3 => Isa::Avx512,
            2 => Isa::Avx2,
            1 => Isa::Portable,
            _ => {
                let isa = detect();
                STATE.store(code(isa), Ordering::Relaxed);
                isa
            }
        }
    }

    /// [`super::allow_avx512`].
    pub(super) fn allow(allow: bool) -> bool {
        let isa = match detect() {
            Isa::Avx512 if !allow => Isa::Avx2,
            isa => isa,
        };
        STATE.store(code(isa), Ordering::Relaxed);
        isa == Isa::Avx512
    }

    #[cfg(test)]
    mod tests {
        //! `Ymm` against scalar definitions of each operation (where the CPU has AVX2 + FMA).
        use super::super::{Isa, Lanes, Math, Vec8};
        use super::{Ymm, detect};

        fn vals(seed: u32) -> [f32; 8] {
            core::array::from_fn(|l| {
                let x = (seed.wrapping_mul(2_654_435_761) ^ (l as u32).wrapping_mul(40_503)) as f32;
                (x / u32::MAX as f32 - 0.5) * 7.0
            })
        }

        #[target_feature(enable = "avx2,fma")]
        fn check() {
            for s in 0..50 {
                let (a, b, c) = (vals(s), vals(s + 100), vals(s + 200));
                let (ya, yb, yc) = (Ymm::from_array(a), Ymm::from_array(b), Ymm::from_array(c));
                let fma: [f32; 8] = core::array::from_fn(|l| libm::fmaf(a[l], b[l], c[l]));
                assert_eq!(ya.mul_add(yb, yc).to_array(), fma);
                let fnma: [f32; 8] = core::array::from_fn(|l| libm::fmaf(-a[l], b[l], c[l]));
                assert_eq!(ya.mul_neg_add(yb, yc).to_array(), fnma);
                assert_eq!((-ya).to_array(), a.map(|x| -x));
                let x = a;
                let want = ((x[0] + x[4]) + (x[2] + x[6])) + ((x[1] + x[5]) + (x[3] + x[7]));
                assert_eq!(ya.reduce_add().to_bits(), want.to_bits());
                let rows: [[f32; 8]; 8] = core::array::from_fn(|r| vals(s * 8 + r as u32));
                let t = Ymm::transpose(rows.map(Ymm::from_array)).map(Ymm::to_array);
                let sums = Ymm::transpose_sum(rows.map(Ymm::from_array)).to_array();
                for (r, row) in rows.iter().enumerate() {
                    for (l, &v) in row.iter().enumerate() {
                        assert_eq!(t[l][r], v);
                    }
                    let x = row;
                    let want = ((x[0] + x[1]) + (x[2] + x[3])) + ((x[4] + x[5]) + (x[6] + x[7]));
                    assert_eq!(sums[r].to_bits(), want.to_bits());
                }
                for w in 0..=8 {
                    let mut out = [9.0f32; 8];
                    // SAFETY: 8 readable and writable lanes.
                    unsafe { Ymm::load_n(a.as_ptr(), w).store_n(out.as_mut_ptr(), w) };
                    for l in 0..8 {
                        assert_eq!(out[l], if l < w { a[l] } else { 9.0 });
                    }
                    // SAFETY: as above.
                    let z = unsafe { Ymm::load_n(a.as_ptr(), w) }.to_array();
                    assert!((w..8).all(|l| z[l] == 0.0));
                }
                for t in 1..8 {
                    let m = ya.tail(t).to_array();
                    for l in 0..8 {
                        assert_eq!(m[l], if l >= 8 - t { a[l] } else { 0.0 });
                    }
                }
                let cl = ya.clamp(-1.0, 2.0).to_array();
                assert_eq!(cl, a.map(|x| x.clamp(-1.0, 2.0)));
            }
        }

        #[test]
        fn ymm_matches_the_scalar_definitions() {
            if detect() == Isa::Portable {
                eprintln!("no AVX2 + FMA on this CPU: Ymm not checked");
                return;
            }
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            unsafe { check() }
        }
    }
}
