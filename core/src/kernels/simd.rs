//! SIMD kernels for `f32`, 8 lanes (`wide::f32x8`), and where the CPU has AVX-512F 16 lanes for the
//! broadcast tiles, the fused steps, the cell updates and the batch-1 step (generic over
//! [`Lanes`], chosen at run time by `widest!`; same bits, see `lanes.rs`). Each kernel has its
//! scalar twin in `naive.rs` with the same signature; `tests/kernels.rs` checks them against each
//! other.
//!
//! Three shapes of register tile:
//! * broadcast tiles (`gemm_nn`, `gemm_tn`): an MR x (N·NV) block of C in registers, updated per
//!   k by broadcasting one element of A per row against NV vectors of a row of B. No horizontal
//!   sums; k is blocked so that the column panel of B stays in L1.
//! * dot-product blocks (`gemm_nt`, i.e. the batch-1 `step` and the linear head): 8 outputs at a
//!   time, 8 lanes of k per FMA, the 8 partial sums reduced together by one 8x8 transpose.
//! * packed panels (the fused recurrent steps): 32 output columns (4 vectors of 8, or 2 of 16) of one panel of the
//!   packed `W_hhᵀ` (see `mod.rs`) for MR rows of the batch; the input projection goes through the
//!   same microkernel from a panel of `W_ihᵀ` transposed onto the stack, and the cell's pointwise
//!   update runs on the accumulators before they leave the registers.
//!
//! # Safety
//! Every kernel `assert!`s, once per call, that its slices are long enough for the shape it is
//! given (with overflow-checked products); inside, all accesses are through raw pointers at offsets
//! below those bounds, so the inner loops carry no bounds checks.

use core::mem::MaybeUninit;
use core::ptr;

use wide::bytemuck::cast;
use wide::{f32x8, i32x8};

#[cfg(target_arch = "x86_64")]
use super::lanes::{self, Zmm};
use super::lanes::{Lanes, Math};
use super::{
    Kernels, PANEL, Simd, lstm_ih_packed_len, lstm_packed_len, rnn_ih_packed_len, rnn_packed_len,
};

// ---------------------------------------------------------------------------------------------
// Loads, stores, bounds

/// `a · b <= len`, without overflow.
#[inline(always)]
fn fits(len: usize, a: usize, b: usize) -> bool {
    a.checked_mul(b).is_some_and(|n| n <= len)
}

/// Loads 8 lanes from `p`.
///
/// # Safety
/// `p .. p + 8` must be readable.
#[inline(always)]
unsafe fn ldp(p: *const f32) -> f32x8 {
    // SAFETY: by the caller's contract.
    f32x8::new(unsafe { ptr::read_unaligned(p.cast::<[f32; 8]>()) })
}

/// Stores 8 lanes to `p`.
///
/// # Safety
/// `p .. p + 8` must be writable.
#[inline(always)]
unsafe fn stp(p: *mut f32, v: f32x8) {
    // SAFETY: by the caller's contract.
    unsafe { ptr::write_unaligned(p.cast::<[f32; 8]>(), v.to_array()) }
}

/// Loads `w` lanes (all 8 if `w >= 8`) from `p`, the rest zero.
///
/// # Safety
/// `p .. p + min(w, 8)` must be readable.
#[inline(always)]
unsafe fn ldw(p: *const f32, w: usize) -> f32x8 {
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
unsafe fn stw(p: *mut f32, v: f32x8, w: usize) {
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
// Activations

/// `e^x` for `x` in [-87, 87] (callers clamp): Cephes' `expf` without its branches. `x = n ln2 +
/// r` with |r| <= ln2/2 (ln 2 split in two so that `n · LN2_HI` is exact), `e^r` by a degree-6
/// polynomial, `2^n` built in the exponent bits. Relative error below 2 ulp. Generic over the
/// lane width ([`Math`]: the same operations per lane, so the same bits).
#[inline(always)]
fn exp_unchecked<V: Math>(x: V) -> V {
    // 1.5 · 2^23: adding it rounds to an integer, which then sits in the low mantissa bits.
    let magic = V::splat(12_582_912.0);
    let t = x.mul_add(V::splat(core::f32::consts::LOG2_E), magic);
    let n = t - magic;
    let r = n.mul_neg_add(V::splat(0.693_359_4), x);
    let r = n.mul_neg_add(V::splat(-2.121_944_4e-4), r);
    let mut p = V::splat(1.987_569_1e-4);
    p = p.mul_add(r, V::splat(1.398_199_9e-3));
    p = p.mul_add(r, V::splat(8.333_452e-3));
    p = p.mul_add(r, V::splat(4.166_579_6e-2));
    p = p.mul_add(r, V::splat(1.666_666_5e-1));
    p = p.mul_add(r, V::splat(0.5));
    let y = p.mul_add(r * r, r + V::splat(1.0));
    // The low 9 bits of t's representation are n (mod 512); shifted into the exponent field and
    // biased, they are 2^n for n in [-126, 127].
    y * V::pow2_bits(t)
}

/// Logistic sigmoid, `1 / (1 + e^-x)` with the fast `exp` above (input clamped to [-87, 87],
/// where the result is within 1e-38 of its limit). Maximum error against the exact value (dense
/// grid in `tests/activations.rs`): 1.2e-7 absolute everywhere, 2.5e-7 relative for x >= -87
/// (measured 8.9e-8 and 1.9e-7). NaN in, NaN out.
#[inline(always)]
fn sigmoid<V: Math>(x: V) -> V {
    let x = x.clamp(-87.0, 87.0);
    V::splat(1.0) / (V::splat(1.0) + exp_unchecked(-x))
}

/// tanh: Eigen's odd/even 13/6 rational approximation on [-7.9053, 7.9053] (clamped outside,
/// where tanh rounds to ±1 within the bound). Maximum error against the exact value (dense grid
/// in `tests/activations.rs`): 4e-7 absolute and relative (measured 3.2e-7, about 6 ulp near
/// ±1); odd; NaN in, NaN out.
#[inline(always)]
fn tanh<V: Math>(x: V) -> V {
    let c = 7.905_311;
    let x = x.clamp(-c, c);
    let x2 = x * x;
    let mut p = V::splat(-2.760_768_5e-16);
    p = p.mul_add(x2, V::splat(2.000_188e-13));
    p = p.mul_add(x2, V::splat(-8.604_672e-11));
    p = p.mul_add(x2, V::splat(5.122_297e-8));
    p = p.mul_add(x2, V::splat(1.485_722_4e-5));
    p = p.mul_add(x2, V::splat(6.372_619_3e-4));
    p = p.mul_add(x2, V::splat(4.893_524_6e-3));
    let mut q = V::splat(1.198_258_4e-6);
    q = q.mul_add(x2, V::splat(1.185_347_1e-4));
    q = q.mul_add(x2, V::splat(2.268_434_6e-3));
    q = q.mul_add(x2, V::splat(4.893_525e-3));
    // x · (p / q) rather than (x · p) / q: no subnormal intermediate for tiny x.
    x * (p / q)
}

// ---------------------------------------------------------------------------------------------
// Dot-product blocks (gemm_nt)

/// Lane `l` = sum of the lanes of `v[l]`: two rounds of horizontal adds and one cross-lane add
/// (9 instructions) where AVX is enabled, an 8 x 8 transpose and 7 adds elsewhere.
#[inline(always)]
fn transpose_sum(v: [f32x8; 8]) -> f32x8 {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx"))]
    {
        use core::arch::x86_64::{__m256, _mm256_add_ps, _mm256_hadd_ps, _mm256_permute2f128_ps};
        // SAFETY: with AVX enabled `f32x8` is a `#[repr(C, align(32))]` wrapper of one `__m256`
        // (same size, alignment and bits), and the intrinsics need only AVX.
        unsafe {
            let m = core::mem::transmute::<[f32x8; 8], [__m256; 8]>(v);
            // [v0 01, v0 23, v1 01, v1 23 | v0 45, v0 67, v1 45, v1 67], ...
            let t0 = _mm256_hadd_ps(m[0], m[1]);
            let t1 = _mm256_hadd_ps(m[2], m[3]);
            let t2 = _mm256_hadd_ps(m[4], m[5]);
            let t3 = _mm256_hadd_ps(m[6], m[7]);
            // [v0 0..4, v1 0..4, v2 0..4, v3 0..4 | v0 4..8, v1 4..8, v2 4..8, v3 4..8]
            let u0 = _mm256_hadd_ps(t0, t1);
            let u1 = _mm256_hadd_ps(t2, t3);
            let lo = _mm256_permute2f128_ps::<0x20>(u0, u1);
            let hi = _mm256_permute2f128_ps::<0x31>(u0, u1);
            core::mem::transmute::<__m256, f32x8>(_mm256_add_ps(lo, hi))
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx")))]
    {
        let t = f32x8::transpose(v);
        ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]))
    }
}

/// Lanes `8 - t ..` all ones, the rest zero (`t` in 1..=7).
#[inline(always)]
fn tail_mask(t: usize) -> f32x8 {
    let lane = i32x8::new([0, 1, 2, 3, 4, 5, 6, 7]);
    cast(lane.simd_gt(i32x8::splat(7 - t as i32)))
}

/// Adds eight dot products of length `k` to `acc`: lane sums of `acc[l]` gain `s · o_l`, where
/// `o_l` starts at `o + min(l, w - 1) · os` (lanes `>= w` repeat the last row and are to be
/// ignored).
///
/// # Safety
/// `s .. s + k` and, for `l < w`, `o + l·os .. + k` must be readable; `w >= 1`.
#[inline(always)]
unsafe fn dot8_acc(
    acc: &mut [f32x8; 8],
    s: *const f32,
    o: *const f32,
    os: usize,
    w: usize,
    k: usize,
) {
    let mut row = [o; 8];
    for (l, r) in row.iter_mut().enumerate() {
        // SAFETY: offsets of rows that exist (l < w).
        *r = unsafe { o.add(l.min(w - 1) * os) };
    }
    let kv = k - k % 8;
    let mut p = 0;
    // SAFETY (whole block): every load below is at offset p .. p + 8 <= k of a valid row, or, in
    // the tail, k - 8 .. k (k >= 8) or a partial load of k < 8 elements.
    unsafe {
        while p < kv {
            let sv = ldp(s.add(p));
            for (a, &r) in acc.iter_mut().zip(&row) {
                *a = ldp(r.add(p)).mul_add(sv, *a);
            }
            p += 8;
        }
        if p < k {
            if k >= 8 {
                // The last 8 elements, with the ones already summed masked out of `s`.
                let sv = ldp(s.add(k - 8)) & tail_mask(k - p);
                for (a, &r) in acc.iter_mut().zip(&row) {
                    *a = ldp(r.add(k - 8)).mul_add(sv, *a);
                }
            } else {
                let sv = ldw(s, k);
                for (a, &r) in acc.iter_mut().zip(&row) {
                    *a = ldw(r, k).mul_add(sv, *a);
                }
            }
        }
    }
}

/// Eight dot products of length `k` (see [`dot8_acc`]).
///
/// # Safety
/// As for [`dot8_acc`].
#[inline(always)]
unsafe fn dot8(s: *const f32, o: *const f32, os: usize, w: usize, k: usize) -> f32x8 {
    let mut acc = [f32x8::ZERO; 8];
    // SAFETY: by the caller's contract.
    unsafe { dot8_acc(&mut acc, s, o, os, w, k) };
    transpose_sum(acc)
}

/// One dot product of length `k`.
///
/// # Safety
/// `a .. a + k` and `b .. b + k` must be readable.
#[inline(always)]
unsafe fn dot1(a: *const f32, b: *const f32, k: usize) -> f32 {
    let mut acc = [f32x8::ZERO; 4];
    let mut p = 0;
    // SAFETY: every access is below k.
    unsafe {
        while p + 32 <= k {
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = ldp(a.add(p + 8 * v)).mul_add(ldp(b.add(p + 8 * v)), *acc);
            }
            p += 32;
        }
        while p + 8 <= k {
            acc[0] = ldp(a.add(p)).mul_add(ldp(b.add(p)), acc[0]);
            p += 8;
        }
        let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])).reduce_add();
        while p < k {
            s += *a.add(p) * *b.add(p);
            p += 1;
        }
        s
    }
}

/// `C[m,n] += A[m,k] · B[n,k]ᵀ`.
///
/// # Safety
/// The slices behind the pointers hold `m·k`, `n·k` and `m·n` elements; `k >= 2`.
unsafe fn gemm_nt_dots(m: usize, n: usize, k: usize, a: *const f32, b: *const f32, c: *mut f32) {
    // SAFETY (whole body): rows i < m of A, j < n of B, elements (i, j) of C only.
    unsafe {
        if n >= 8 {
            // Per row of A: blocks of 8 rows of B (the batch-1 step's layout).
            for i in 0..m {
                let (ar, cr) = (a.add(i * k), c.add(i * n));
                let mut j = 0;
                while j < n {
                    let w = (n - j).min(8);
                    let d = dot8(ar, b.add(j * k), k, w, k);
                    stw(cr.add(j), ldw(cr.add(j), w) + d, w);
                    j += 8;
                }
            }
        } else {
            // Few columns (a linear head): per row of B, blocks of 8 rows of A.
            for j in 0..n {
                let br = b.add(j * k);
                let mut i = 0;
                while i < m {
                    let w = (m - i).min(8);
                    if w == 1 {
                        *c.add(i * n + j) += dot1(a.add(i * k), br, k);
                    } else {
                        let d = dot8(br, a.add(i * k), k, w, k).to_array();
                        for (l, &d) in d.iter().enumerate().take(w) {
                            *c.add((i + l) * n + j) += d;
                        }
                    }
                    i += 8;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch to the widest lanes

/// `$wide(args)`: the generic kernel `$kernel::<V>(args)` with 16 lanes (`Zmm`, through
/// `$zmm`, compiled for AVX-512F) where [`lanes::avx512`] says the CPU has them and they are
/// allowed, else with 8 (`f32x8`). Both give the same bits (see `lanes.rs`). `$kernel` and
/// everything it calls on vectors must be `#[inline(always)]` functions, no closures: only what
/// is inlined into `$zmm` is compiled with its target feature.
///
/// Safety of `$wide` and `$zmm`: that of `$kernel`; `$zmm` only on a CPU with AVX-512F.
macro_rules! widest {
    ($(#[$doc:meta])* $wide:ident, $zmm:ident => $kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $zmm($($arg: $ty),*) {
            // SAFETY: by the caller's contract.
            unsafe { $kernel::<Zmm>($($arg),*) }
        }

        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        unsafe fn $wide($($arg: $ty),*) {
            // SAFETY: by the caller's contract; the 16-lane kernel only where the CPU has it.
            unsafe {
                #[cfg(target_arch = "x86_64")]
                if lanes::avx512() {
                    return $zmm($($arg),*);
                }
                $kernel::<f32x8>($($arg),*)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Broadcast tiles (gemm_nn, gemm_tn)

/// Rows of k per block when A is read along its rows (`gemm_nn`): a 16-column panel of B is then
/// 16 KiB, resident in L1 (the 64-column panels of the 16-lane path measured no faster with 64).
/// The same for both lane widths: the edge columns sum each k block from zero, so their bits
/// depend on the blocking.
const KB_NN: usize = 256;

/// Rows of k per block when A is read down its columns (`gemm_tn`, the weight gradients over all
/// T·B rows): each k touches a new line of A, so the block is kept small enough for A's lines and
/// B's panel (4 KiB each) to stay in L1 from one row tile to the next. Measured: 96 GFLOP/s for
/// W1's dW_hh (512 x 128 x 3584) against 67 with k blocked by 256 (8 lanes).
const KB_TN: usize = 64;

/// A strided matrix operand: element (r, p) at `p[r·rs + p·ps]`.
#[derive(Clone, Copy)]
struct Strided {
    p: *const f32,
    rs: usize,
    ps: usize,
}

impl Strided {
    /// The same operand from row `r`, column `p` on.
    ///
    /// # Safety
    /// (r, p) must be inside the operand (or one past its end).
    #[inline(always)]
    unsafe fn at(self, r: usize, p: usize) -> Self {
        Self {
            // SAFETY: by the caller's contract.
            p: unsafe { self.p.add(r * self.rs + p * self.ps) },
            ..self
        }
    }
}

/// `C[0..MR, 0..N·NV] += Σ_{p < kc} A(r, p) · B[p, 0..N·NV]`, N = `V::N` lanes.
///
/// # Safety
/// All the elements named must be inside their operands.
#[inline(always)]
unsafe fn bc_tile<V: Lanes, const MR: usize, const NV: usize>(
    kc: usize,
    a: Strided,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        for (r, acc) in acc.iter_mut().enumerate() {
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = V::load(c.add(r * ldc + V::N * v));
            }
        }
        let (mut ap, mut bp) = (a.p, b);
        for _ in 0..kc {
            let mut bv = [V::zero(); NV];
            for (v, bv) in bv.iter_mut().enumerate() {
                *bv = V::load(bp.add(V::N * v));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = V::splat(*ap.add(r * a.rs));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = av.mul_add(bv, *acc);
                }
            }
            ap = ap.add(a.ps);
            bp = bp.add(ldb);
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, &acc) in acc.iter().enumerate() {
                acc.store(c.add(r * ldc + V::N * v));
            }
        }
    }
}

/// All `m` rows of one column block of N·NV columns, in tiles of 6 rows (with 16 lanes and NV = 4:
/// 24 accumulators, 4 vectors of B and a broadcast in the 32 registers).
///
/// # Safety
/// As for [`bc_tile`], for rows `0..m`.
#[inline(always)]
unsafe fn bc_rows<V: Lanes, const NV: usize>(
    m: usize,
    kc: usize,
    a: Strided,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY (whole body): rows below m only.
    unsafe {
        let mut i = 0;
        while i + 6 <= m {
            bc_tile::<V, 6, NV>(kc, a.at(i, 0), b, ldb, c.add(i * ldc), ldc);
            i += 6;
        }
        let (a, c) = (a.at(i, 0), c.add(i * ldc));
        match m - i {
            5 => bc_tile::<V, 5, NV>(kc, a, b, ldb, c, ldc),
            4 => bc_tile::<V, 4, NV>(kc, a, b, ldb, c, ldc),
            3 => bc_tile::<V, 3, NV>(kc, a, b, ldb, c, ldc),
            2 => bc_tile::<V, 2, NV>(kc, a, b, ldb, c, ldc),
            1 => bc_tile::<V, 1, NV>(kc, a, b, ldb, c, ldc),
            _ => {}
        }
    }
}

/// Columns left over from the vector blocks when A is contiguous along its rows (`a.rs == 1`,
/// i.e. `gemm_tn`): vectors run down 8 rows of C, one broadcast element of B per column.
/// `C[0..8·NV, 0..NC] += Σ_p A(0.., p) · B[p, 0..NC]`.
///
/// # Safety
/// As for [`bc_tile`], with the roles of rows and columns swapped; `a.rs == 1`.
#[inline(always)]
unsafe fn col_tile<const NC: usize, const NV: usize>(
    kc: usize,
    a: Strided,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        let mut acc = [[f32x8::ZERO; NV]; NC];
        let (mut ap, mut bp) = (a.p, b);
        for _ in 0..kc {
            let mut av = [f32x8::ZERO; NV];
            for (v, av) in av.iter_mut().enumerate() {
                *av = ldp(ap.add(8 * v));
            }
            for (jj, acc) in acc.iter_mut().enumerate() {
                let bv = f32x8::splat(*bp.add(jj));
                for (acc, &av) in acc.iter_mut().zip(&av) {
                    *acc = av.mul_add(bv, *acc);
                }
            }
            ap = ap.add(a.ps);
            bp = bp.add(ldb);
        }
        for (jj, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                for (l, &s) in acc.to_array().iter().enumerate() {
                    *c.add((8 * v + l) * ldc + jj) += s;
                }
            }
        }
    }
}

/// Columns `0..NC` of C (`b`, `c` at the block's first column) for all m rows when `a.rs == 1`:
/// transposed tiles of 8·NV rows, then 8, then scalars.
///
/// # Safety
/// As for [`col_tile`], for rows `0..m`.
#[inline(always)]
unsafe fn col_rows<const NC: usize, const NV: usize>(
    m: usize,
    kc: usize,
    a: Strided,
    b: *const f32,
    n: usize,
    c: *mut f32,
) {
    // SAFETY (whole body): rows below m, columns below NC of the block.
    unsafe {
        let mut i = 0;
        while i + 8 * NV <= m {
            col_tile::<NC, NV>(kc, a.at(i, 0), b, n, c.add(i * n), n);
            i += 8 * NV;
        }
        while i + 8 <= m {
            col_tile::<NC, 1>(kc, a.at(i, 0), b, n, c.add(i * n), n);
            i += 8;
        }
        scalar_block(i..m, 0..NC, kc, a, b, n, c, n);
    }
}

/// `C[r0..r1, j0..j1] += Σ_{p < kc} A(r, p) · B[p, j]` (edges only): per element of C, a sum
/// from zero of the rounded products in order of p (no FMA), then added to C; computed for up
/// to 8 columns at once, one lane each (the same arithmetic per element).
///
/// # Safety
/// As for [`bc_tile`].
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_block(
    rows: core::ops::Range<usize>,
    cols: core::ops::Range<usize>,
    kc: usize,
    a: Strided,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    let mut j = cols.start;
    while j < cols.end {
        let w = (cols.end - j).min(8);
        for r in rows.clone() {
            // SAFETY (whole block): elements (r, p) of A, (p, j .. j + w) of B and (r, j .. j + w)
            // of C, by the caller's contract.
            unsafe {
                let mut s = f32x8::ZERO;
                for p in 0..kc {
                    s += f32x8::splat(*a.p.add(r * a.rs + p * a.ps)) * ldw(b.add(p * ldb + j), w);
                }
                let cr = c.add(r * ldc + j);
                stw(cr, ldw(cr, w) + s, w);
            }
        }
        j += w;
    }
}

/// `C[m,n] += Σ_p A(r, p) · B[p, n]` for p < k, B and C row-major with leading dimensions `n`,
/// k in blocks of `kb`: column blocks of 16 (8 lanes) or 64, 32, 16 (16 lanes), then 8 lanes,
/// then the edge kernels. Every column that is in a vector block for one `V` is in one for the
/// other, so both give the same bits.
///
/// # Safety
/// A has the m x k elements named by its strides, B k·n and C m·n.
#[inline(always)]
unsafe fn gemm_bcast<V: Lanes>(
    m: usize,
    n: usize,
    k: usize,
    kb: usize,
    a: Strided,
    b: *const f32,
    c: *mut f32,
) {
    let nv = n - n % 8;
    let mut p0 = 0;
    // SAFETY (whole body): every tile stays inside rows < m, columns < n, p < k.
    unsafe {
        while p0 < k {
            let kc = (k - p0).min(kb);
            let (a, b) = (a.at(0, p0), b.add(p0 * n));
            let mut j = 0;
            if V::N == 16 {
                while j + 64 <= nv {
                    bc_rows::<V, 4>(m, kc, a, b.add(j), n, c.add(j), n);
                    j += 64;
                }
                if j + 32 <= nv {
                    bc_rows::<V, 2>(m, kc, a, b.add(j), n, c.add(j), n);
                    j += 32;
                }
                if j + 16 <= nv {
                    bc_rows::<V, 1>(m, kc, a, b.add(j), n, c.add(j), n);
                    j += 16;
                }
            } else {
                while j + 16 <= nv {
                    bc_rows::<f32x8, 2>(m, kc, a, b.add(j), n, c.add(j), n);
                    j += 16;
                }
            }
            if j < nv {
                bc_rows::<f32x8, 1>(m, kc, a, b.add(j), n, c.add(j), n);
            }
            // The n % 8 columns left.
            if a.rs == 1 {
                let mut jj = nv;
                while jj < n {
                    let (bj, cj) = (b.add(jj), c.add(jj));
                    let nc = (n - jj).min(4);
                    match nc {
                        1 => col_rows::<1, 4>(m, kc, a, bj, n, cj),
                        2 => col_rows::<2, 4>(m, kc, a, bj, n, cj),
                        3 => col_rows::<3, 3>(m, kc, a, bj, n, cj),
                        _ => col_rows::<4, 2>(m, kc, a, bj, n, cj),
                    }
                    jj += nc;
                }
            } else {
                scalar_block(0..m, nv..n, kc, a, b, n, c, n);
            }
            p0 += kc;
        }
    }
}

widest! {
    /// [`gemm_bcast`] at the widest lane width in use.
    gemm_wide, gemm_bcast_zmm => gemm_bcast(
        m: usize, n: usize, k: usize, kb: usize, a: Strided, b: *const f32, c: *mut f32
    )
}

// ---------------------------------------------------------------------------------------------
// Packed panels: the fused recurrent steps

/// Columns of `W_ihᵀ` per stack panel: 32 x 32 scalars, 4 KiB of stack.
const XK: usize = 32;

/// The LSTM cell's arithmetic on one vector of units: from the pre-activations `a` = `[a_i, a_f,
/// a_g, a_o]` and `c_prev`, returns `[i, f, g, o, c, tanh(c), h]`.
#[inline(always)]
fn cell_math<V: Math>(a: [V; 4], c_prev: V) -> [V; 7] {
    let i = sigmoid(a[0]);
    let f = sigmoid(a[1]);
    let g = tanh(a[2]);
    let o = sigmoid(a[3]);
    let c = f.mul_add(c_prev, i * g);
    let tc = tanh(c);
    [i, f, g, o, c, tc, o * tc]
}

/// Where one row's 8 units of a cell update live: `c_prev`, `gates` (gates `gs` apart), `c`,
/// `tanh_c`, `h`, each at the units' first element.
#[derive(Clone, Copy)]
struct CellRow {
    c_prev: *const f32,
    gates: *mut f32,
    gs: usize,
    c: *mut f32,
    tanh_c: *mut f32,
    h: *mut f32,
}

impl CellRow {
    /// Row `row` of a fused step at units `u0..`.
    #[inline(always)]
    fn of(s: &StepBufs, row: usize, u0: usize) -> Self {
        let at = row * s.hs + u0;
        // wrapping_add: the pointers are only dereferenced for valid rows (the RNN passes null
        // LSTM buffers and never builds a CellRow).
        Self {
            c_prev: s.c_prev.wrapping_add(at),
            gates: s.gates.wrapping_add(row * s.ld + u0),
            gs: s.hs,
            c: s.c.wrapping_add(at),
            tanh_c: s.tanh_c.wrapping_add(at),
            h: s.h.wrapping_add(at),
        }
    }

    /// Stores the results of [`cell_math`] (lanes below `w`).
    ///
    /// # Safety
    /// The row's buffers valid for `min(w, 8)` elements (gates: 4 of them, `gs` apart).
    #[inline(always)]
    unsafe fn store(self, out: [f32x8; 7], w: usize) {
        let [i, f, g, o, c, tc, h] = out;
        // SAFETY (whole body): by the caller's contract.
        unsafe {
            stw(self.gates, i, w);
            stw(self.gates.add(self.gs), f, w);
            stw(self.gates.add(2 * self.gs), g, w);
            stw(self.gates.add(3 * self.gs), o, w);
            stw(self.c, c, w);
            stw(self.tanh_c, tc, w);
            stw(self.h, h, w);
        }
    }
}

/// The LSTM cell update for 8 units (`w` of them valid) of one row from their 4 pre-activations.
///
/// # Safety
/// As for [`CellRow::store`], and `c_prev` readable for `min(w, 8)` elements.
#[inline(always)]
unsafe fn lstm_cell(a: [f32x8; 4], w: usize, row: CellRow) {
    // SAFETY (whole body): by the caller's contract.
    unsafe { row.store(cell_math(a, ldw(row.c_prev, w)), w) }
}

/// [`lstm_cell`] for the same 8 units of two rows at once, on 16 lanes.
///
/// # Safety
/// As for [`lstm_cell`], for both rows; the CPU has AVX-512F (and the caller is compiled for it).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn lstm_cell_pair(a: [[f32x8; 4]; 2], w: usize, rows: [CellRow; 2]) {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        // Plain loops, no `array::map`: its closures would not be compiled for AVX-512 and
        // would stay calls.
        let mut joined = [Zmm::zero(); 4];
        for (g, j) in joined.iter_mut().enumerate() {
            *j = Zmm::join(a[0][g], a[1][g]);
        }
        let c_prev = Zmm::join(ldw(rows[0].c_prev, w), ldw(rows[1].c_prev, w));
        let out = cell_math(joined, c_prev);
        let (mut lo, mut hi) = ([f32x8::ZERO; 7], [f32x8::ZERO; 7]);
        for (k, o) in out.iter().enumerate() {
            (lo[k], hi[k]) = o.split();
        }
        rows[0].store(lo, w);
        rows[1].store(hi, w);
    }
}

/// Raw views of one fused step's operands (lengths checked by the caller).
#[derive(Clone, Copy)]
struct StepBufs {
    hs: usize,
    is: usize,
    /// Row length of `pre` (and `gates`): 4H (LSTM) or H (RNN).
    ld: usize,
    x: *const f32,
    h_prev: *const f32,
    c_prev: *const f32,
    /// The pre-activations (set by the last pass); the partial sums of all but the last pass
    /// over `W_ih` wait there too.
    pre: *mut f32,
    gates: *mut f32,
    c: *mut f32,
    tanh_c: *mut f32,
    h: *mut f32,
}

/// Where the accumulators of a pass start from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Init {
    /// The panel's bias row.
    Bias,
    /// The partial sums an earlier pass stored in `pre`.
    Pre,
}

/// Which cell a fused step computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Lstm,
    Rnn,
}

/// Where the `v`-th 8-column vector (0..4) of the panel of units `u0..` lives in a row of the
/// pre-activations (i.e. which rows of `W_ih` it comes from), and how many of its lanes are real
/// units.
#[inline(always)]
fn pre_slot(cell: Cell, hs: usize, u0: usize, v: usize) -> (usize, usize) {
    match cell {
        // Gate v of units u0 .. u0 + 8.
        Cell::Lstm => (v * hs + u0, (hs - u0).min(8)),
        // Units u0 + 8v .. u0 + 8v + 8.
        Cell::Rnn => (u0 + 8 * v, hs.saturating_sub(u0 + 8 * v).min(8)),
    }
}

/// Returns `acc[r] + Σ_{p < k} a[r·lda + p] · b[p·PANEL .. + 2N]` for the MR rows of a step tile. (A
/// function, not a closure: a closure would not be compiled with the 16-lane caller's target
/// features, and its intrinsics would stay calls.)
///
/// # Safety
/// `a` holds MR rows of k at stride `lda`; `b` k rows of 2N at stride `PANEL`.
#[inline(always)]
unsafe fn panel_run<V: Lanes, const MR: usize>(
    mut acc: [[V; 2]; MR],
    a: *const f32,
    lda: usize,
    k: usize,
    b: *const f32,
) -> [[V; 2]; MR] {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        for p in 0..k {
            let bp = b.add(p * PANEL);
            let b = [V::load(bp), V::load(bp.add(V::N))];
            for (rr, acc) in acc.iter_mut().enumerate() {
                let av = V::splat(*a.add(rr * lda + p));
                acc[0] = av.mul_add(b[0], acc[0]);
                acc[1] = av.mul_add(b[1], acc[1]);
            }
        }
    }
    acc
}

/// One MR x 2N tile of a fused step (N = `V::N` lanes): columns `8·v0 .. 8·v0 + 2N` of the panel
/// of units `u0..` for rows `r .. r + MR`. Accumulators start from `init`, take
/// `x[.., q0 .. q0 + xk] · xpanel` and, if `last`, `h_prev · W_hhᵀ`. They are stored to `pre`
/// either way; if `last`, also (LSTM) kept in `tile` (8 columns per entry) for the cell update,
/// or (RNN) `h = tanh(·)`.
///
/// # Safety
/// `s` describes valid buffers of at least `r + MR` rows; `panel` is the packed panel of units
/// `u0..`; `xpanel` holds `xk` rows of 32; `8·v0 + 2N <= 32`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_tile<V: Lanes, const MR: usize>(
    cell: Cell,
    s: &StepBufs,
    r: usize,
    u0: usize,
    v0: usize,
    panel: *const f32,
    init: Init,
    (q0, xk, xpanel): (usize, usize, *const f32),
    last: bool,
    tile: &mut [[MaybeUninit<f32x8>; 4]; MR],
) {
    let (hs, ld) = (s.hs, s.ld);
    // The tile's 8-column slices: v0 .. v0 + 2N/8.
    let slices = 2 * V::N / 8;
    let slot = |v: usize| pre_slot(cell, hs, u0, v0 + v);
    // SAFETY (whole body): rows r .. r + MR, columns of units below hs, by the caller's contract.
    unsafe {
        // Started from the bias either way (a zeroed array would be a memset in memory).
        let bias = [
            V::load(panel.add(8 * v0)),
            V::load(panel.add(8 * v0 + V::N)),
        ];
        let mut acc = [bias; MR];
        if init == Init::Pre {
            for (rr, acc) in acc.iter_mut().enumerate() {
                let mut row = [0.0f32; PANEL];
                for v in 0..slices {
                    let (at, w) = slot(v);
                    if w > 0 {
                        stp(
                            row.as_mut_ptr().add(8 * v),
                            ldw(s.pre.add((r + rr) * ld + at), w),
                        );
                    }
                }
                *acc = [V::load(row.as_ptr()), V::load(row.as_ptr().add(V::N))];
            }
        }
        if xk > 0 {
            acc = panel_run(acc, s.x.add(r * s.is + q0), s.is, xk, xpanel.add(8 * v0));
        }
        if last {
            acc = panel_run(acc, s.h_prev.add(r * hs), hs, hs, panel.add(PANEL + 8 * v0));
        }
        for (rr, acc) in acc.iter().enumerate() {
            let mut row = [0.0f32; PANEL];
            acc[0].store(row.as_mut_ptr());
            acc[1].store(row.as_mut_ptr().add(V::N));
            for v in 0..slices {
                let a = ldp(row.as_ptr().add(8 * v));
                let (at, w) = slot(v);
                if last && cell == Cell::Lstm {
                    tile[rr][v0 + v] = MaybeUninit::new(a);
                }
                if w > 0 {
                    stw(s.pre.add((r + rr) * ld + at), a, w);
                    if last && cell == Cell::Rnn {
                        stw(s.h.add((r + rr) * hs + at), tanh(a), w);
                    }
                }
            }
        }
    }
}

/// One row of a step's tile: the 4 gates' pre-activations of the panel's 8 units.
///
/// # Safety
/// All four written.
#[inline(always)]
unsafe fn gates4(t: &[MaybeUninit<f32x8>; 4]) -> [f32x8; 4] {
    // SAFETY: by the caller's contract.
    unsafe {
        [
            t[0].assume_init(),
            t[1].assume_init(),
            t[2].assume_init(),
            t[3].assume_init(),
        ]
    }
}

/// Rows `r .. r + MR` of one panel: the panel's 32 columns in tiles of 2·`V::N`, then (on the
/// last pass, LSTM) the cell updates from the tile's pre-activations.
///
/// # Safety
/// As for [`step_tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_rows<V: Lanes, const MR: usize>(
    cell: Cell,
    s: &StepBufs,
    r: usize,
    u0: usize,
    panel: *const f32,
    init: Init,
    x: (usize, usize, *const f32),
    last: bool,
) {
    // Not zeroed (with 12 rows a 1.5 KiB memset per call): on the last pass of an LSTM, which
    // alone reads it, the tiles write every entry.
    let mut tile = [[MaybeUninit::<f32x8>::uninit(); 4]; MR];
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        let mut v0 = 0;
        while 8 * v0 < PANEL {
            step_tile::<V, MR>(cell, s, r, u0, v0, panel, init, x, last, &mut tile);
            v0 += 2 * V::N / 8;
        }
        if last && cell == Cell::Lstm {
            let w = (s.hs - u0).min(8);
            let mut rr = 0;
            // With 16 lanes, two rows per cell update (the same bits as one row at a time).
            #[cfg(target_arch = "x86_64")]
            if V::N == 16 {
                while rr + 2 <= MR {
                    let rows = [CellRow::of(s, r + rr, u0), CellRow::of(s, r + rr + 1, u0)];
                    lstm_cell_pair([gates4(&tile[rr]), gates4(&tile[rr + 1])], w, rows);
                    rr += 2;
                }
            }
            while rr < MR {
                lstm_cell(gates4(&tile[rr]), w, CellRow::of(s, r + rr, u0));
                rr += 1;
            }
        }
    }
}

/// All `batch` rows of one panel (one pass over `x`): tiles of MR rows, then the rest.
///
/// # Safety
/// As for [`step_tile`], for rows below `batch`; MR <= 12.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_panel<V: Lanes, const MR: usize>(
    cell: Cell,
    batch: usize,
    s: &StepBufs,
    u0: usize,
    panel: *const f32,
    init: Init,
    x: (usize, usize, *const f32),
    last: bool,
) {
    let mut r = 0;
    // SAFETY (whole body): rows below batch, by the caller's contract.
    unsafe {
        while r + MR <= batch {
            step_rows::<V, MR>(cell, s, r, u0, panel, init, x, last);
            r += MR;
        }
        match batch - r {
            11 => step_rows::<V, 11>(cell, s, r, u0, panel, init, x, last),
            10 => step_rows::<V, 10>(cell, s, r, u0, panel, init, x, last),
            9 => step_rows::<V, 9>(cell, s, r, u0, panel, init, x, last),
            8 => step_rows::<V, 8>(cell, s, r, u0, panel, init, x, last),
            7 => step_rows::<V, 7>(cell, s, r, u0, panel, init, x, last),
            6 => step_rows::<V, 6>(cell, s, r, u0, panel, init, x, last),
            5 => step_rows::<V, 5>(cell, s, r, u0, panel, init, x, last),
            4 => step_rows::<V, 4>(cell, s, r, u0, panel, init, x, last),
            3 => step_rows::<V, 3>(cell, s, r, u0, panel, init, x, last),
            2 => step_rows::<V, 2>(cell, s, r, u0, panel, init, x, last),
            1 => step_rows::<V, 1>(cell, s, r, u0, panel, init, x, last),
            _ => {}
        }
    }
}

/// Transposes the rows of `W_ih` behind the 32 columns of the panel of units `u0..`, columns
/// `q0 .. q0 + xk` (`xk <= XK`), into `xb` (`xk` rows of 32, every element written; columns
/// past H zero), by 8 x 8 blocks.
///
/// # Safety
/// `w_ih` holds the cell's rows x `is`; `q0 + xk <= is`; `xb` writable for `PANEL · XK` scalars
/// (it may be uninitialised).
#[allow(clippy::too_many_arguments)]
unsafe fn pack_x(
    cell: Cell,
    hs: usize,
    is: usize,
    u0: usize,
    q0: usize,
    xk: usize,
    w_ih: *const f32,
    xb: *mut f32,
) {
    for v in 0..4 {
        let (row0, w) = pre_slot(cell, hs, u0, v);
        // SAFETY (whole block): rows row0 .. row0 + w of W_ih, columns q0 .. q0 + xk; xb rows
        // below xk <= XK.
        unsafe {
            let src = w_ih.add(row0 * is + q0);
            let mut q = 0;
            while q + 8 <= xk {
                let mut blk = [f32x8::ZERO; 8];
                for (l, b) in blk.iter_mut().enumerate().take(w) {
                    *b = ldp(src.add(l * is + q));
                }
                for (j, &t) in f32x8::transpose(blk).iter().enumerate() {
                    stp(xb.add((q + j) * PANEL + 8 * v), t);
                }
                q += 8;
            }
            while q < xk {
                for l in 0..8 {
                    *xb.add(q * PANEL + 8 * v + l) = if l < w { *src.add(l * is + q) } else { 0.0 };
                }
                q += 1;
            }
        }
    }
}

/// The fused step for all rows and panels. `W_ih` comes pre-packed (`packed_ih` non-null: one
/// pass, the input projection and the recurrent product in the same accumulators) or is
/// transposed onto the stack 32 of its columns at a time at every step; then all but the last
/// such chunk go through `pre`.
///
/// # Safety
/// `s` describes buffers of `batch` rows, `w_ih` holds (rows of the cell) x `is`, `packed` the
/// packed weights of the cell, `packed_ih` is null or the packed `W_ih`.
#[inline(always)]
unsafe fn fused_step<V: Lanes>(
    cell: Cell,
    batch: usize,
    s: &StepBufs,
    w_ih: *const f32,
    packed: *const f32,
    packed_ih: *const f32,
) {
    let (hs, is) = (s.hs, s.is);
    let psz = PANEL * (hs + 1);
    let (panels, units) = match cell {
        Cell::Lstm => (hs.div_ceil(8), 8),
        Cell::Rnn => (hs.div_ceil(PANEL), PANEL),
    };
    let prepacked = !packed_ih.is_null();
    let passes = if prepacked { 1 } else { is.div_ceil(XK).max(1) };
    // Not zeroed (4 KiB per call, most often unused): `pack_x` writes every element of the
    // `xk` rows that are then read.
    let mut xbuf = core::mem::MaybeUninit::<[f32; PANEL * XK]>::uninit();
    let xb = xbuf.as_mut_ptr().cast::<f32>();
    for p in 0..panels {
        let u0 = p * units;
        // SAFETY: panel p of `packed`.
        let panel = unsafe { packed.add(p * psz) };
        for pass in 0..passes {
            let x = if prepacked {
                // SAFETY: panel p of `packed_ih`.
                (0, is, unsafe { packed_ih.add(p * PANEL * is) })
            } else {
                let q0 = pass * XK;
                let xk = is.saturating_sub(q0).min(XK);
                // SAFETY: the rows of W_ih behind the panel's columns, columns q0 .. q0 + xk < is.
                unsafe { pack_x(cell, hs, is, u0, q0, xk, w_ih, xb) };
                (q0, xk, xb.cast_const())
            };
            let init = if pass == 0 { Init::Bias } else { Init::Pre };
            let last = pass + 1 == passes;
            // SAFETY: rows below batch, panel p of the packed weights. Tiles of 6 rows x 2 vectors
            // (8 lanes: 12 accumulators + 2 panel vectors + a broadcast = 15 of 16 registers) or
            // 12 x 2 (16 lanes: 27 of 32; measured on W1: 9.2 ms/step against 10.3 with 8 rows
            // and 10.0 with 14).
            unsafe {
                if V::N == 16 {
                    step_panel::<V, 12>(cell, batch, s, u0, panel, init, x, last);
                } else {
                    step_panel::<V, 6>(cell, batch, s, u0, panel, init, x, last);
                }
            }
        }
    }
}

widest! {
    /// [`fused_step`] at the widest lane width in use.
    fused_step_wide, fused_step_zmm => fused_step(
        cell: Cell,
        batch: usize,
        s: &StepBufs,
        w_ih: *const f32,
        packed: *const f32,
        packed_ih: *const f32
    )
}

/// Raw views of one row of the LSTM pointwise backward.
#[derive(Clone, Copy)]
struct BwdRow {
    gates: *const f32,
    c_prev: *const f32,
    tanh_c: *const f32,
    dh_ext: *const f32,
    dh_rec: *const f32,
    dc: *mut f32,
    dpre: *mut f32,
}

impl BwdRow {
    /// The views `b` rows further on (4·hs per row in `gates` and `dpre`, hs in the rest).
    ///
    /// # Safety
    /// Row `b` is inside every buffer.
    #[inline(always)]
    unsafe fn row(self, b: usize, hs: usize) -> Self {
        // SAFETY: by the caller's contract.
        unsafe {
            Self {
                gates: self.gates.add(4 * b * hs),
                c_prev: self.c_prev.add(b * hs),
                tanh_c: self.tanh_c.add(b * hs),
                dh_ext: self.dh_ext.add(b * hs),
                dh_rec: self.dh_rec.add(b * hs),
                dc: self.dc.add(b * hs),
                dpre: self.dpre.add(4 * b * hs),
            }
        }
    }
}

/// The LSTM pointwise backward's arithmetic on one vector of units: from the gates `i, f, g, o`,
/// `tanh(c)`, `dh` (= dh_ext + dh_rec), dL/dc_t and `c_prev`, returns dL/d(pre-activations)
/// `[d_i, d_f, d_g, d_o]` and dL/dc_{t-1}.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bwd_math<V: Math>(i: V, f: V, g: V, o: V, tc: V, dh: V, dc: V, cp: V) -> [V; 5] {
    let one = V::splat(1.0);
    let dct = (dh * o).mul_add(one - tc * tc, dc);
    [
        dct * g * i * (one - i),
        dct * cp * f * (one - f),
        dct * i * (one - g * g),
        dh * tc * o * (one - o),
        dct * f,
    ]
}

/// The LSTM pointwise backward over `rows` rows of `hs` units (see `lstm_pointwise_backward`;
/// `p` at the first row, rows 4·hs apart in `gates` and `dpre`, hs apart in the rest): full
/// vectors of `V::N` units, then vectors of 8, then the tail.
///
/// # Safety
/// `p` points at `rows` rows: 4·hs gates and dpre, hs of the rest; `dh_rec` may alias nothing
/// written.
#[inline(always)]
unsafe fn lstm_rows_backward<V: Math>(rows: usize, hs: usize, p: BwdRow) {
    // SAFETY (whole body): rows below `rows`, units below hs.
    unsafe {
        for b in 0..rows {
            let p = p.row(b, hs);
            let mut j = 0;
            while j + V::N <= hs {
                // (Plain loads, no closure: a closure would not be compiled for AVX-512.)
                let g = p.gates.add(j);
                let out = bwd_math(
                    V::load(g),
                    V::load(g.add(hs)),
                    V::load(g.add(2 * hs)),
                    V::load(g.add(3 * hs)),
                    V::load(p.tanh_c.add(j)),
                    V::load(p.dh_ext.add(j)) + V::load(p.dh_rec.add(j)),
                    V::load(p.dc.add(j)),
                    V::load(p.c_prev.add(j)),
                );
                for (g, &d) in out[..4].iter().enumerate() {
                    d.store(p.dpre.add(g * hs + j));
                }
                out[4].store(p.dc.add(j));
                j += V::N;
            }
            while j < hs {
                lstm_units_backward(hs, p, j, (hs - j).min(8));
                j += 8;
            }
        }
    }
}

widest! {
    /// [`lstm_rows_backward`] at the widest lane width in use.
    lstm_rows_backward_wide, lstm_rows_backward_zmm => lstm_rows_backward(
        rows: usize, hs: usize, p: BwdRow
    )
}

/// [`bwd_math`] for units `j .. j + w` (`w <= 8`) of one row, 8 lanes.
///
/// # Safety
/// As for [`lstm_rows_backward`] (one row), with `j + w <= hs`.
#[inline(always)]
unsafe fn lstm_units_backward(hs: usize, p: BwdRow, j: usize, w: usize) {
    // SAFETY: units j .. j + w <= hs of every gate and state.
    unsafe {
        let ld = |q: *const f32, off: usize| ldw(q.add(off + j), w);
        let out = bwd_math(
            ld(p.gates, 0),
            ld(p.gates, hs),
            ld(p.gates, 2 * hs),
            ld(p.gates, 3 * hs),
            ld(p.tanh_c, 0),
            ld(p.dh_ext, 0) + ld(p.dh_rec, 0),
            ld(p.dc, 0),
            ld(p.c_prev, 0),
        );
        for (g, &d) in out[..4].iter().enumerate() {
            stw(p.dpre.add(g * hs + j), d, w);
        }
        stw(p.dc.add(j), out[4], w);
    }
}

/// `pre[l] + Σ_q a[q] · W[row0 + l, q]` for the lanes `l < w` (rows of length `k`, `wr` at row
/// `row0`), with exactly the arithmetic of `gemm_nt(1, n, k, a, W, pre)` for those columns of its
/// `n`: one FMA per column when `k == 1` (a rounded product added, past the vector columns),
/// [`dot8`]'s sums when `n >= 8`, [`dot1`]'s when `n < 8`.
///
/// # Safety
/// `a .. a + k` and rows `0 .. w` of `wr` (k each) readable; `1 <= w <= 8`, `row0 + w <= n`.
#[inline(always)]
unsafe fn gemv_lanes(
    pre: f32x8,
    a: *const f32,
    wr: *const f32,
    k: usize,
    w: usize,
    row0: usize,
    n: usize,
) -> f32x8 {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        match k {
            0 => pre,
            1 => {
                let (av, bv) = (f32x8::splat(*a), ldw(wr, w));
                let fused = av.mul_add(bv, pre);
                let nv = n - n % 8;
                if row0 + w <= nv {
                    fused
                } else {
                    let (f, u) = (fused.to_array(), (pre + av * bv).to_array());
                    f32x8::new(core::array::from_fn(|l| {
                        if row0 + l < nv { f[l] } else { u[l] }
                    }))
                }
            }
            _ if n >= 8 => {
                let mut acc = [f32x8::ZERO; 8];
                dot8_acc(&mut acc, a, wr, k, w, k);
                pre + transpose_sum(acc)
            }
            _ => {
                let mut p = pre.to_array();
                for (l, p) in p.iter_mut().enumerate().take(w) {
                    *p += dot1(a, wr.add(l * k), k);
                }
                f32x8::new(p)
            }
        }
    }
}

/// The batch-1 LSTM step (see `Simd::lstm_step`); `w` = `[x, W_ih, W_hh, b_ih, b_hh]`. Per block
/// of 8 units the four gates' rows are reduced and the cell updated on registers, with the same
/// arithmetic as `gemm_nt` (x), `gemm_nt` (h), `lstm_pointwise`: bit-identical results.
///
/// # Safety
/// The buffers hold I, 4H·I, 4H·H, 4H, 4H, and `h_prev`, `c`, `h` H scalars each; `h_prev` is
/// not `h`.
unsafe fn lstm_step_raw(
    hs: usize,
    is: usize,
    [x, wi, wh, bi, bh]: [*const f32; 5],
    hp: *const f32,
    cp: *mut f32,
    hout: *mut f32,
) {
    // With AVX (x86): when every block of units is full, no tails, and 4 blocks' activations
    // side by side. Not elsewhere: without vector registers it only costs flash and stack for
    // the same arithmetic (Cortex-M4F sine firmware: +3.5 KB flash, +0.8 KB stack per step).
    if cfg!(all(target_arch = "x86_64", target_feature = "avx")) && hs.is_multiple_of(8) {
        // Every block of units full: no tails, and (4H a multiple of 8, H >= 8) `gemv_lanes`
        // reduces to one FMA (k = 1) or `dot8` (k >= 2), as `lstm_step_blocks` does.
        let ptrs = [x, wi, wh, bi, bh];
        let mut j = 0;
        // Where AVX-512 is in use, blocks of 16 units first (same bits, see `DotRows`).
        #[cfg(target_arch = "x86_64")]
        if lanes::avx512() {
            // SAFETY: by the caller's contract; the CPU has AVX-512F.
            j = unsafe { lstm_step_zmm(hs, is, ptrs, hp, cp, hout) };
        }
        while j + 32 <= hs {
            // SAFETY: units j .. j + 32 <= hs, by the caller's contract.
            unsafe { lstm_step_blocks::<f32x8, 4>(hs, is, ptrs, hp, cp, hout, j) };
            j += 32;
        }
        while j < hs {
            // SAFETY: units j .. j + 8 <= hs, by the caller's contract.
            unsafe { lstm_step_blocks::<f32x8, 1>(hs, is, ptrs, hp, cp, hout, j) };
            j += 8;
        }
        return;
    }
    let mut j = 0;
    while j < hs {
        let w = (hs - j).min(8);
        // SAFETY (whole block): rows g·H + j .. + w of the weights and biases, units j .. j + w
        // of the states, by the caller's contract.
        unsafe {
            // The four gates of units j .. j + w: W_ih and W_hh rows summed into the same
            // accumulators, one reduction per gate.
            let a = [0, 1, 2, 3].map(|g| {
                let r0 = g * hs + j;
                let pre = ldw(bi.add(r0), w) + ldw(bh.add(r0), w);
                let pre = gemv_lanes(pre, x, wi.add(r0 * is), is, w, r0, 4 * hs);
                gemv_lanes(pre, hp, wh.add(r0 * hs), hs, w, r0, 4 * hs)
            });
            let [_, _, _, _, cn, _, h] = cell_math(a, ldw(cp.add(j), w));
            stw(cp.add(j), cn, w);
            stw(hout.add(j), h, w);
        }
        j += 8;
    }
}

/// `acc` plus [`dot8_acc`]'s partial sums (with `w` = 8) for the 8 rows of length `k` starting at
/// `o` (`os` apart) against `s`. `acc` by value: a `&mut` would be spilled every iteration.
///
/// # Safety
/// `s .. s + k` and the rows' `k` elements readable; `k >= 2`.
#[inline(always)]
unsafe fn dot8_rows(
    mut acc: [f32x8; 8],
    s: *const f32,
    o: *const f32,
    os: usize,
    k: usize,
) -> [f32x8; 8] {
    let kv = k - k % 8;
    let mut p = 0;
    // SAFETY (whole block): every load below is at offset p .. p + 8 <= k of a row, or, in the
    // tail, k - 8 .. k (k >= 8) or a partial load of k < 8 elements.
    unsafe {
        while p < kv {
            let sv = ldp(s.add(p));
            for (i, a) in acc.iter_mut().enumerate() {
                *a = ldp(o.add(i * os + p)).mul_add(sv, *a);
            }
            p += 8;
        }
        if p < k {
            if k >= 8 {
                // The last 8 elements, with the ones already summed masked out of `s`.
                let sv = ldp(s.add(k - 8)) & tail_mask(k - p);
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = ldp(o.add(i * os + k - 8)).mul_add(sv, *a);
                }
            } else {
                let sv = ldw(s, k);
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = ldw(o.add(i * os), k).mul_add(sv, *a);
                }
            }
        }
    }
    acc
}

/// What the batch-1 step needs beyond [`Lanes`]: `V::N` dot products (rows of a weight matrix
/// against one vector) with exactly [`dot8`]'s arithmetic.
trait DotRows: Math {
    /// Lane `l` = the dot product of row `l` of the `V::N` rows of length `k` starting at `o`
    /// (`os` apart) with `s`: 8-lane partial sums per row as [`dot8_acc`] forms them, reduced by
    /// [`transpose_sum`]'s tree.
    ///
    /// # Safety
    /// `s .. s + k` and the rows' `k` elements readable; `k >= 2`.
    unsafe fn dots(s: *const f32, o: *const f32, os: usize, k: usize) -> Self;
}

impl DotRows for f32x8 {
    #[inline(always)]
    unsafe fn dots(s: *const f32, o: *const f32, os: usize, k: usize) -> Self {
        // SAFETY: by the caller's contract.
        transpose_sum(unsafe { dot8_rows([f32x8::ZERO; 8], s, o, os, k) })
    }
}

/// 16 rows: the partial sums of each 8 rows formed on 8 lanes as above (16-lane loads would need
/// two row halves joined per FMA, and 16 address streams), then joined in pairs so that one
/// 16-lane reduction, half the instructions of two 8-lane ones, sums them.
#[cfg(target_arch = "x86_64")]
impl DotRows for Zmm {
    #[inline(always)]
    unsafe fn dots(s: *const f32, o: *const f32, os: usize, k: usize) -> Self {
        use core::arch::x86_64::{__m512, _mm512_add_ps, _mm512_shuffle_f32x4, _mm512_shuffle_ps};
        /// `lo` in lanes 0..8, `hi` in lanes 8..16.
        #[inline(always)]
        fn p(lo: f32x8, hi: f32x8) -> __m512 {
            Zmm::join(lo, hi).0
        }
        /// `vhaddps` per 128-bit lane: [a0 + a1, a2 + a3, b0 + b1, b2 + b3] (AVX-512 has no
        /// 512-bit horizontal add).
        #[inline(always)]
        fn hadd(a: __m512, b: __m512) -> __m512 {
            // SAFETY: reached only from AVX-512F code on a CPU that has it.
            unsafe {
                _mm512_add_ps(
                    _mm512_shuffle_ps::<0x88>(a, b),
                    _mm512_shuffle_ps::<0xdd>(a, b),
                )
            }
        }
        let z = [f32x8::ZERO; 8];
        // SAFETY: rows 0 .. 8 and 8 .. 16, by the caller's contract.
        let (a, b) = unsafe {
            (
                dot8_rows(z, s, o, os, k),
                dot8_rows(z, s, o.add(8 * os), os, k),
            )
        };
        // Rows r and r + 4 side by side: then the reduction, which works within 128-bit lanes
        // like `vhaddps` and pairs halves at the end, leaves row l in lane l, no permute.
        // 128-bit lanes of u0: the sums of elements 0..4 of rows 0..4, of elements 4..8 of rows
        // 0..4, of 0..4 of rows 4..8, of 4..8 of rows 4..8; u1 the same for rows 8..16.
        let u0 = hadd(
            hadd(p(a[0], a[4]), p(a[1], a[5])),
            hadd(p(a[2], a[6]), p(a[3], a[7])),
        );
        let u1 = hadd(
            hadd(p(b[0], b[4]), p(b[1], b[5])),
            hadd(p(b[2], b[6]), p(b[3], b[7])),
        );
        // SAFETY: as above.
        unsafe {
            let lo = _mm512_shuffle_f32x4::<0x88>(u0, u1);
            let hi = _mm512_shuffle_f32x4::<0xdd>(u0, u1);
            Zmm(_mm512_add_ps(lo, hi))
        }
    }
}

/// The pre-activations of rows `r0 .. r0 + V::N` (one gate, `V::N` units) of [`lstm_step_raw`]
/// when H is a multiple of 8: `gemv_lanes` with `w = 8` and `n = 4H` (a multiple of 8, at least
/// 32), i.e. one FMA per column for `k == 1` and [`dot8_acc`]'s sums for `k >= 2`; the same
/// arithmetic without the tail handling.
///
/// # Safety
/// As for [`lstm_step_raw`], with `r0 + V::N <= 4H`.
#[inline(always)]
unsafe fn step_gate<V: DotRows>(
    hs: usize,
    is: usize,
    [x, wi, wh, bi, bh]: [*const f32; 5],
    hp: *const f32,
    r0: usize,
) -> V {
    // SAFETY (whole body): rows r0 .. r0 + V::N of the weights and biases.
    unsafe {
        let pre = V::load(bi.add(r0)) + V::load(bh.add(r0));
        let pre = match is {
            0 => pre,
            1 => V::splat(*x).mul_add(V::load(wi.add(r0)), pre),
            _ => pre + V::dots(x, wi.add(r0 * is), is, is),
        };
        pre + V::dots(hp, wh.add(r0 * hs), hs, hs)
    }
}

/// Units `j .. j + V::N·NB` of [`lstm_step_raw`] when H is a multiple of 8 (see [`step_gate`]).
/// The `NB` blocks' activations are computed side by side, so that their latency chains overlap.
/// (Loops, not closures: a closure would not be compiled with the 16-lane caller's target
/// features.)
///
/// # Safety
/// As for [`lstm_step_raw`], with `hs` a multiple of 8 and `j + V::N·NB <= hs`.
#[inline(always)]
unsafe fn lstm_step_blocks<V: DotRows, const NB: usize>(
    hs: usize,
    is: usize,
    ptrs: [*const f32; 5],
    hp: *const f32,
    cp: *mut f32,
    hout: *mut f32,
    j: usize,
) {
    // SAFETY (whole body): rows g·H + j .. + V::N·NB of the weights and biases, units
    // j .. j + V::N·NB of the states, by the caller's contract.
    unsafe {
        let mut a = [[V::zero(); NB]; 4];
        for (g, a) in a.iter_mut().enumerate() {
            for (b, a) in a.iter_mut().enumerate() {
                *a = step_gate(hs, is, ptrs, hp, g * hs + j + V::N * b);
            }
        }
        // The NB blocks' cell updates are independent chains, which the scheduler overlaps.
        // (An index loop: `a.map(..)` would take a closure, not compiled for AVX-512.)
        #[allow(clippy::needless_range_loop)]
        for b in 0..NB {
            let at = j + V::N * b;
            let gates = [a[0][b], a[1][b], a[2][b], a[3][b]];
            let [_, _, _, _, cn, _, h] = cell_math(gates, V::load(cp.add(at)));
            cn.store(cp.add(at));
            h.store(hout.add(at));
        }
    }
}

/// The 16-lane part of [`lstm_step_raw`] when H is a multiple of 8: units `0 .. H - H % 16`;
/// returns where it stopped (the 8-lane kernel does the last block of 8, if any).
///
/// # Safety
/// As for [`lstm_step_raw`], with `hs` a multiple of 8; the CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn lstm_step_zmm(
    hs: usize,
    is: usize,
    ptrs: [*const f32; 5],
    hp: *const f32,
    cp: *mut f32,
    hout: *mut f32,
) -> usize {
    let mut j = 0;
    // One block at a time, not two side by side: then the next block's products overlap this
    // block's activations (measured at H = 32: 162 ns against 180 with two blocks).
    while j + 16 <= hs {
        // SAFETY: units j .. j + 16 <= hs, by the caller's contract.
        unsafe { lstm_step_blocks::<Zmm, 1>(hs, is, ptrs, hp, cp, hout, j) };
        j += 16;
    }
    j
}

// ---------------------------------------------------------------------------------------------
// The trait

impl Kernels<f32> for Simd {
    const LSTM_STEP_SCRATCH: bool = false;

    // Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
    // keeps no panic path.
    #[inline(always)]
    fn gemm_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(fits(a.len(), m, k) && fits(b.len(), n, k) && fits(c.len(), m, n));
        if k == 0 {
            return;
        }
        if cfg!(target_arch = "arm") && m == 1 {
            // Cortex-M: the batch-1 product (linear head, tanh RNN step) of the microcontroller
            // kernels, four rows per pass (`wide` is plain arrays there).
            super::mcu::gemv(n, k, a, b, c);
            return;
        }
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        // SAFETY: lengths checked above.
        unsafe {
            if k == 1 {
                // An outer product: C[i, :] += a[i] · b[:] (B's single column is contiguous).
                gemm_wide(m, n, 1, KB_NN, Strided { p: a, rs: 1, ps: 0 }, b, c);
            } else if m == 1 && n < 8 {
                // A linear head's batch-1 step: `gemm_nt_dots`' few-column path, where one row
                // of A is one `dot1` per column; inline, so that constant sizes fold.
                for j in 0..n {
                    *c.add(j) += dot1(a, b.add(j * k), k);
                }
            } else {
                gemm_nt_dots(m, n, k, a, b, c);
            }
        }
    }

    fn gemm_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(fits(a.len(), m, k) && fits(b.len(), k, n) && fits(c.len(), m, n));
        let a = Strided {
            p: a.as_ptr(),
            rs: k,
            ps: 1,
        };
        // SAFETY: lengths checked above.
        unsafe { gemm_wide(m, n, k, KB_NN, a, b.as_ptr(), c.as_mut_ptr()) }
    }

    fn gemm_tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(fits(a.len(), k, m) && fits(b.len(), k, n) && fits(c.len(), m, n));
        let a = Strided {
            p: a.as_ptr(),
            rs: 1,
            ps: m,
        };
        // SAFETY: lengths checked above.
        unsafe { gemm_wide(m, n, k, KB_TN, a, b.as_ptr(), c.as_mut_ptr()) }
    }

    fn lstm_pointwise(
        pre: &[f32],
        c_prev: &[f32],
        gates: &mut [f32],
        c: &mut [f32],
        tanh_c: &mut [f32],
        h: &mut [f32],
    ) {
        let hs = h.len();
        assert!(pre.len() == 4 * hs && gates.len() == 4 * hs);
        assert!(c_prev.len() == hs && c.len() == hs && tanh_c.len() == hs);
        let (pre, gates) = (pre.as_ptr(), gates.as_mut_ptr());
        let mut j = 0;
        while j < hs {
            let w = (hs - j).min(8);
            // SAFETY: units j .. j + w < hs of every gate and state.
            unsafe {
                let a = [0, 1, 2, 3].map(|g| ldw(pre.add(g * hs + j), w));
                let row = CellRow {
                    c_prev: c_prev.as_ptr().add(j),
                    gates: gates.add(j),
                    gs: hs,
                    c: c.as_mut_ptr().add(j),
                    tanh_c: tanh_c.as_mut_ptr().add(j),
                    h: h.as_mut_ptr().add(j),
                };
                lstm_cell(a, w, row);
            }
            j += 8;
        }
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
        let hs = dc.len();
        assert!(gates.len() == 4 * hs && dpre.len() == 4 * hs);
        assert!(c_prev.len() == hs && tanh_c.len() == hs);
        assert!(dh_ext.len() == hs && dh_rec.len() == hs);
        let p = BwdRow {
            gates: gates.as_ptr(),
            c_prev: c_prev.as_ptr(),
            tanh_c: tanh_c.as_ptr(),
            dh_ext: dh_ext.as_ptr(),
            dh_rec: dh_rec.as_ptr(),
            dc: dc.as_mut_ptr(),
            dpre: dpre.as_mut_ptr(),
        };
        // SAFETY: one row of H units, lengths checked above.
        unsafe { lstm_rows_backward_wide(1, hs, p) }
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
        let g4 = hs.checked_mul(4).expect("hidden size overflows");
        assert!(fits(gates.len(), batch, g4) && fits(dpre.len(), batch, g4));
        assert!(fits(c_prev.len(), batch, hs) && fits(tanh_c.len(), batch, hs));
        assert!(fits(dh_ext.len(), batch, hs) && fits(dh_carry.len(), batch, hs));
        assert!(fits(dc_carry.len(), batch, hs) && fits(w_hh.len(), g4, hs));
        let p = BwdRow {
            gates: gates.as_ptr(),
            c_prev: c_prev.as_ptr(),
            tanh_c: tanh_c.as_ptr(),
            dh_ext: dh_ext.as_ptr(),
            dh_rec: dh_carry.as_ptr(),
            dc: dc_carry.as_mut_ptr(),
            dpre: dpre.as_mut_ptr(),
        };
        // SAFETY: rows below batch of every operand, lengths checked above.
        unsafe { lstm_rows_backward_wide(batch, hs, p) };
        let dh = &mut dh_carry[..batch * hs];
        dh.fill(0.0);
        let a = Strided {
            p: dpre.as_ptr(),
            rs: g4,
            ps: 1,
        };
        // SAFETY: dpre (B, 4H), W_hh (4H, H), dh (B, H), checked above.
        unsafe { gemm_wide(batch, hs, g4, KB_NN, a, w_hh.as_ptr(), dh.as_mut_ptr()) }
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
        let n = batch
            .checked_mul(hs)
            .expect("batch x hidden size overflows");
        assert!(h.len() >= n && dh_ext.len() >= n && dh_carry.len() >= n && dpre.len() >= n);
        assert!(fits(w_hh.len(), hs, hs));
        Self::tanh_pointwise_backward(&h[..n], &dh_ext[..n], &dh_carry[..n], &mut dpre[..n]);
        let dh = &mut dh_carry[..n];
        dh.fill(0.0);
        let a = Strided {
            p: dpre.as_ptr(),
            rs: hs,
            ps: 1,
        };
        // SAFETY: dpre (B, H), W_hh (H, H), dh (B, H), checked above.
        unsafe { gemm_wide(batch, hs, hs, KB_NN, a, w_hh.as_ptr(), dh.as_mut_ptr()) }
    }

    fn col_sum(rows: usize, n: usize, a: &[f32], y: &mut [f32]) {
        assert!(fits(a.len(), rows, n) && y.len() >= n);
        let (a, y) = (a.as_ptr(), y.as_mut_ptr());
        // SAFETY (whole body): columns below n of rows below `rows`, lengths checked above. Each
        // lane adds the rows in order, exactly as the naive loop does.
        unsafe {
            let mut j = 0;
            while j + 64 <= n {
                let mut acc = [0, 1, 2, 3, 4, 5, 6, 7].map(|v| ldp(y.add(j + 8 * v)));
                for r in 0..rows {
                    for (v, acc) in acc.iter_mut().enumerate() {
                        *acc += ldp(a.add(r * n + j + 8 * v));
                    }
                }
                for (v, &acc) in acc.iter().enumerate() {
                    stp(y.add(j + 8 * v), acc);
                }
                j += 64;
            }
            while j < n {
                let w = (n - j).min(8);
                let mut acc = ldw(y.add(j), w);
                for r in 0..rows {
                    acc += ldw(a.add(r * n + j), w);
                }
                stw(y.add(j), acc, w);
                j += 8;
            }
        }
    }

    // Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
    // keeps no panic path. The work is in `lstm_step_raw`.
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
        if cfg!(target_arch = "arm") {
            // Cortex-M: the microcontroller step (four gate rows per pass, VFMA where the core
            // has an FPU, scalar activations).
            super::mcu::lstm_step(hs, is, x, w_ih, w_hh, b_ih, b_hh, h_prev, c, h);
            return;
        }
        let g4 = hs.checked_mul(4).expect("hidden size overflows");
        assert!(x.len() >= is && fits(w_ih.len(), g4, is) && fits(w_hh.len(), g4, hs));
        assert!(b_ih.len() >= g4 && b_hh.len() >= g4);
        assert!(h_prev.len() >= hs && c.len() >= hs && h.len() >= hs);
        let w = [
            x.as_ptr(),
            w_ih.as_ptr(),
            w_hh.as_ptr(),
            b_ih.as_ptr(),
            b_hh.as_ptr(),
        ];
        // SAFETY: lengths checked above.
        unsafe { lstm_step_raw(hs, is, w, h_prev.as_ptr(), c.as_mut_ptr(), h.as_mut_ptr()) }
    }

    fn lstm_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[f32],
        w_ih: &[f32],
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
        let g4 = hs.checked_mul(4).expect("hidden size overflows");
        assert!(fits(x.len(), batch, is) && fits(w_ih.len(), g4, is));
        assert!(packed.len() >= lstm_packed_len(hs));
        let ih = match packed_ih.len() {
            0 => ptr::null(),
            n if n >= lstm_ih_packed_len(hs, is) => packed_ih.as_ptr(),
            _ => panic!("packed_ih too short"),
        };
        assert!(fits(h_prev.len(), batch, hs) && fits(c_prev.len(), batch, hs));
        assert!(fits(pre.len(), batch, g4) && fits(gates.len(), batch, g4));
        assert!(fits(c.len(), batch, hs) && fits(tanh_c.len(), batch, hs));
        assert!(fits(h.len(), batch, hs));
        let s = StepBufs {
            hs,
            is,
            ld: g4,
            x: x.as_ptr(),
            h_prev: h_prev.as_ptr(),
            c_prev: c_prev.as_ptr(),
            pre: pre.as_mut_ptr(),
            gates: gates.as_mut_ptr(),
            c: c.as_mut_ptr(),
            tanh_c: tanh_c.as_mut_ptr(),
            h: h.as_mut_ptr(),
        };
        // SAFETY: lengths checked above.
        unsafe { fused_step_wide(Cell::Lstm, batch, &s, w_ih.as_ptr(), packed.as_ptr(), ih) }
    }

    fn rnn_forward_step(
        batch: usize,
        hs: usize,
        is: usize,
        x: &[f32],
        w_ih: &[f32],
        packed: &[f32],
        packed_ih: &[f32],
        h_prev: &[f32],
        pre: &mut [f32],
        h: &mut [f32],
    ) {
        assert!(fits(x.len(), batch, is) && fits(w_ih.len(), hs, is));
        assert!(packed.len() >= rnn_packed_len(hs));
        let ih = match packed_ih.len() {
            0 => ptr::null(),
            n if n >= rnn_ih_packed_len(hs, is) => packed_ih.as_ptr(),
            _ => panic!("packed_ih too short"),
        };
        assert!(fits(h_prev.len(), batch, hs) && fits(pre.len(), batch, hs));
        assert!(fits(h.len(), batch, hs));
        let s = StepBufs {
            hs,
            is,
            ld: hs,
            x: x.as_ptr(),
            h_prev: h_prev.as_ptr(),
            c_prev: ptr::null(),
            pre: pre.as_mut_ptr(),
            gates: ptr::null_mut(),
            c: ptr::null_mut(),
            tanh_c: ptr::null_mut(),
            h: h.as_mut_ptr(),
        };
        // SAFETY: lengths checked above; the RNN path touches no LSTM-only buffer.
        unsafe { fused_step_wide(Cell::Rnn, batch, &s, w_ih.as_ptr(), packed.as_ptr(), ih) }
    }

    // Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
    // keeps no panic path.
    #[inline(always)]
    fn tanh_pointwise(pre: &[f32], h: &mut [f32]) {
        if cfg!(target_arch = "arm") {
            super::mcu::tanh_slice(pre, h); // Cortex-M: the scalar tanh (same math)
            return;
        }
        let hs = h.len();
        assert!(pre.len() == hs);
        let (x, y) = (pre.as_ptr(), h.as_mut_ptr());
        let full = hs - hs % 8;
        // SAFETY (whole block): elements below hs.
        unsafe {
            let mut j = 0;
            while j < full {
                stp(y.add(j), tanh(ldp(x.add(j))));
                j += 8;
            }
            if j < hs {
                stw(y.add(j), tanh(ldw(x.add(j), hs - j)), hs - j);
            }
        }
    }

    fn tanh_pointwise_backward(h: &[f32], dh_ext: &[f32], dh_rec: &[f32], dpre: &mut [f32]) {
        let hs = dpre.len();
        assert!(h.len() == hs && dh_ext.len() == hs && dh_rec.len() == hs);
        let (hp, ep, rp, dp) = (
            h.as_ptr(),
            dh_ext.as_ptr(),
            dh_rec.as_ptr(),
            dpre.as_mut_ptr(),
        );
        let one = f32x8::ONE;
        let full = hs - hs % 8;
        // SAFETY (whole block): elements below hs.
        unsafe {
            let mut j = 0;
            while j < full {
                let hv = ldp(hp.add(j));
                let dh = ldp(ep.add(j)) + ldp(rp.add(j));
                stp(dp.add(j), dh * (one - hv * hv));
                j += 8;
            }
            if j < hs {
                let w = hs - j;
                let hv = ldw(hp.add(j), w);
                let dh = ldw(ep.add(j), w) + ldw(rp.add(j), w);
                stw(dp.add(j), dh * (one - hv * hv), w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    /// The fused batch-1 step is bit-identical to the composition it replaces (which the host's
    /// runtime-size inference also uses), for every remainder of H and I modulo 8.
    #[test]
    fn lstm_step_is_bit_identical_to_its_composition() {
        for hs in [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 32, 33, 128] {
            for is in [0, 1, 2, 3, 5, 8, 9, 28] {
                let seed = (hs * 100 + is) as u64;
                let g4 = 4 * hs;
                let (x, wi, wh) = (
                    vals(is, seed),
                    vals(g4 * is, seed + 1),
                    vals(g4 * hs, seed + 2),
                );
                let (bi, bh) = (vals(g4, seed + 3), vals(g4, seed + 4));
                let (h0, c0) = (vals(hs, seed + 5), vals(hs, seed + 6));
                let (mut c1, mut h1) = (c0.clone(), vec![0.0; hs]);
                <Simd as Kernels<f32>>::lstm_step(
                    hs,
                    is,
                    &x,
                    &wi,
                    &wh,
                    &bi,
                    &bh,
                    &h0,
                    &mut c1,
                    &mut h1,
                    &mut [],
                );
                let mut pre: Vec<f32> = bi.iter().zip(&bh).map(|(a, b)| a + b).collect();
                <Simd as Kernels<f32>>::gemm_nt(1, g4, is, &x, &wi, &mut pre);
                <Simd as Kernels<f32>>::gemm_nt(1, g4, hs, &h0, &wh, &mut pre);
                let (mut gates, mut tc) = (vec![0.0; g4], vec![0.0; hs]);
                let (mut c2, mut h2) = (vec![0.0; hs], vec![0.0; hs]);
                <Simd as Kernels<f32>>::lstm_pointwise(
                    &pre, &c0, &mut gates, &mut c2, &mut tc, &mut h2,
                );
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&h1), bits(&h2), "h, H={hs} I={is}");
                assert_eq!(bits(&c1), bits(&c2), "c, H={hs} I={is}");
            }
        }
    }
}
