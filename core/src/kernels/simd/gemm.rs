//! The matrix products of the SIMD kernels, in two shapes of register tile:
//! * dot-product blocks (`gemm_nt`, i.e. the batch-1 products and the linear head): 8 outputs at
//!   a time, 8 lanes of k per FMA, the 8 partial sums reduced together by one 8x8 transpose;
//! * broadcast tiles (`gemm_nn`, `gemm_tn`, and the recurrent product of the backward steps): an
//!   MR x (N·NV) block of C in registers, updated per k by broadcasting one element of A per row
//!   against NV vectors of a row of B. No horizontal sums; k is blocked so that the column panel
//!   of B stays in L1. 16 lanes where the CPU has AVX-512F (`widest!`), with the same bits.
//!
//! Also `col_sum` (the bias gradients), which adds the rows in order exactly as the naive loop.

use core::mem::MaybeUninit;

use super::super::lanes::{Lanes, Vec8};
use super::fits;

// ---------------------------------------------------------------------------------------------
// Dot-product blocks (gemm_nt)

/// Adds eight dot products of length `k` to `acc`: lane sums of `acc[l]` gain `s · o_l`, where
/// `o_l` starts at `o + min(l, w - 1) · os` (lanes `>= w` repeat the last row and are to be
/// ignored).
///
/// # Safety
/// `s .. s + k` and, for `l < w`, `o + l·os .. + k` must be readable; `w >= 1`.
#[inline(always)]
pub(super) unsafe fn dot8_acc<E: Vec8>(
    acc: &mut [E; 8],
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
            let sv = E::load(s.add(p));
            for (a, &r) in acc.iter_mut().zip(&row) {
                *a = E::load(r.add(p)).mul_add(sv, *a);
            }
            p += 8;
        }
        if p < k {
            if k >= 8 {
                // The last 8 elements, with the ones already summed masked out of `s`.
                let sv = E::load(s.add(k - 8)).tail(k - p);
                for (a, &r) in acc.iter_mut().zip(&row) {
                    *a = E::load(r.add(k - 8)).mul_add(sv, *a);
                }
            } else {
                let sv = E::load_n(s, k);
                for (a, &r) in acc.iter_mut().zip(&row) {
                    *a = E::load_n(r, k).mul_add(sv, *a);
                }
            }
        }
    }
}

/// Eight dot products of length `k` (see [`dot8_acc`]), reduced by [`Vec8::transpose_sum`].
///
/// # Safety
/// As for [`dot8_acc`].
#[inline(always)]
pub(super) unsafe fn dot8<E: Vec8>(
    s: *const f32,
    o: *const f32,
    os: usize,
    w: usize,
    k: usize,
) -> E {
    let mut acc = [E::zero(); 8];
    // SAFETY: by the caller's contract.
    unsafe { dot8_acc(&mut acc, s, o, os, w, k) };
    E::transpose_sum(acc)
}

/// One dot product of length `k`.
///
/// # Safety
/// `a .. a + k` and `b .. b + k` must be readable.
#[inline(always)]
pub(super) unsafe fn dot1<E: Vec8>(a: *const f32, b: *const f32, k: usize) -> f32 {
    let mut acc = [E::zero(); 4];
    let mut p = 0;
    // SAFETY: every access is below k.
    unsafe {
        while p + 32 <= k {
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = E::load(a.add(p + 8 * v)).mul_add(E::load(b.add(p + 8 * v)), *acc);
            }
            p += 32;
        }
        while p + 8 <= k {
            acc[0] = E::load(a.add(p)).mul_add(E::load(b.add(p)), acc[0]);
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

/// `C[0, j] += A[0, :] · B[j, :]` for `j < n`: one [`dot1`] per column (a linear head's batch-1
/// step).
///
/// # Safety
/// A holds `k`, B `n·k` and C `n` elements.
#[inline(always)]
unsafe fn gemv_dots<E: Vec8>(n: usize, k: usize, a: *const f32, b: *const f32, c: *mut f32) {
    for j in 0..n {
        // SAFETY: row j < n of B, element j of C.
        unsafe { *c.add(j) += dot1::<E>(a, b.add(j * k), k) };
    }
}

lanes8! {
    /// [`gemv_dots`] on the instruction set in use.
    gemv_dots_wide => gemv_dots(n: usize, k: usize, a: *const f32, b: *const f32, c: *mut f32)
}

/// `C[m,n] += A[m,k] · B[n,k]ᵀ`.
///
/// # Safety
/// The slices behind the pointers hold `m·k`, `n·k` and `m·n` elements; `k >= 2`.
#[inline(always)]
unsafe fn gemm_nt_dots<E: Vec8>(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
) {
    // SAFETY (whole body): rows i < m of A, j < n of B, elements (i, j) of C only.
    unsafe {
        if n >= 8 {
            // Per row of A: blocks of 8 rows of B (the batch-1 step's layout).
            for i in 0..m {
                let (ar, cr) = (a.add(i * k), c.add(i * n));
                let mut j = 0;
                while j < n {
                    let w = (n - j).min(8);
                    let d = dot8::<E>(ar, b.add(j * k), k, w, k);
                    (E::load_n(cr.add(j), w) + d).store_n(cr.add(j), w);
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
                        *c.add(i * n + j) += dot1::<E>(a.add(i * k), br, k);
                    } else {
                        let d = dot8::<E>(br, a.add(i * k), k, w, k).to_array();
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

lanes8! {
    /// [`gemm_nt_dots`] on the instruction set in use.
    gemm_nt_dots_wide => gemm_nt_dots(
        m: usize, n: usize, k: usize, a: *const f32, b: *const f32, c: *mut f32
    )
}

// ---------------------------------------------------------------------------------------------
// Broadcast tiles (gemm_nn, gemm_tn)

/// Rows of k per block when A is read along its rows (`gemm_nn`): a tile's 6 rows of A are then 6
/// KiB, in L1 while the tile walks the block's rows of B. The same for both lane widths: the edge
/// columns sum each k block from zero, so their bits depend on the blocking. (Row tiles outside,
/// column blocks inside, as in `gemm_tn`: W1's backward products, 128 x 128 x 512 and 128 x 512 x
/// 128, 16 lanes, Zen 4, ran at 107-115 GFLOP/s either way round.)
pub(super) const KB_NN: usize = 256;

/// Rows of k per block of `gemm_tn`'s packed path (the weight gradients over all T·B rows): a
/// group's panel of A (16 x 256 scalars, 16 KiB) on the stack and B's block (128 KiB for 128
/// columns) in L2. Measured for W1's dW_hh (512 x 128 x 3584, 16 lanes, Zen 4, tiles of 6 rows):
/// 85, 88 and 81 GFLOP/s with 128, 256 and 512.
const KB_TN: usize = 256;

/// Columns of C from which `gemm_tn` packs A ([`tn_block`]); below, the few columns per tile
/// leave too little work per copied element (Zen 4, 16 lanes, m = 512, k = 3584: n = 16, 24, 28,
/// 32 ran at 113, 91, 70-85, 113 GFLOP/s in place against 69, 70, 56-61, 80-84 packed; n = 128
/// at 75-80 in place against 96-98 packed).
const TN_PACKED_FROM: usize = 64;

/// A strided matrix operand: element (r, p) at `p[r·rs + p·ps]`.
#[derive(Clone, Copy)]
pub(super) struct Strided {
    pub(super) p: *const f32,
    pub(super) rs: usize,
    pub(super) ps: usize,
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

/// Columns left over from the vector blocks when A is contiguous along its rows (`a.rs == 1`,
/// i.e. `gemm_tn`): vectors run down 8 rows of C, one broadcast element of B per column.
/// `C[0..8·NV, 0..NC] += Σ_p A(0.., p) · B[p, 0..NC]`.
///
/// # Safety
/// As for [`bc_tile`], with the roles of rows and columns swapped; `a.rs == 1`.
#[inline(always)]
unsafe fn col_tile<E: Vec8, const NC: usize, const NV: usize>(
    kc: usize,
    a: Strided,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        let mut acc = [[E::zero(); NV]; NC];
        let (mut ap, mut bp) = (a.p, b);
        for _ in 0..kc {
            let mut av = [E::zero(); NV];
            for (v, av) in av.iter_mut().enumerate() {
                *av = E::load(ap.add(8 * v));
            }
            for (jj, acc) in acc.iter_mut().enumerate() {
                let bv = E::splat(*bp.add(jj));
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
unsafe fn col_rows<E: Vec8, const NC: usize, const NV: usize>(
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
            col_tile::<E, NC, NV>(kc, a.at(i, 0), b, n, c.add(i * n), n);
            i += 8 * NV;
        }
        while i + 8 <= m {
            col_tile::<E, NC, 1>(kc, a.at(i, 0), b, n, c.add(i * n), n);
            i += 8;
        }
        scalar_block::<E>(i..m, 0..NC, kc, a, b, n, c, n);
    }
}

/// `C[r0..r1, j0..j1] += Σ_{p < kc} A(r, p) · B[p, j]` (edges only): per element of C, a sum
/// from zero of the rounded products in order of p (no FMA), then added to C; computed for up
/// to 8 columns at once, one lane each (the same arithmetic per element).
///
/// # Safety
/// As for [`bc_tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn scalar_block<E: Vec8>(
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
                let mut s = E::zero();
                for p in 0..kc {
                    let av = E::splat(*a.p.add(r * a.rs + p * a.ps));
                    s = s + av * E::load_n(b.add(p * ldb + j), w);
                }
                let cr = c.add(r * ldc + j);
                (E::load_n(cr, w) + s).store_n(cr, w);
            }
        }
        j += w;
    }
}

/// `C[m,n] += Σ_p A(r, p) · B[p, n]` for p < k, B and C row-major with leading dimensions `n`,
/// k in blocks of `kb`: per tile of 6 rows (with 16 lanes and 64 columns: 24 accumulators, 4
/// vectors of B and a broadcast in the 32 registers), the vector columns by [`bc_cols`], then
/// [`scalar_block`] for the n % 8 columns left. Every column that is in a vector block for one
/// `V` is in one for the other, so both give the same bits.
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
            let mut i = 0;
            while i < m {
                let mr = (m - i).min(6);
                bc_cols_rows::<V>(mr, nv, kc, a.at(i, 0), b, n, c.add(i * n), n);
                i += 6;
            }
            // The n % 8 columns left.
            if a.rs == 1 {
                let mut jj = nv;
                while jj < n {
                    let (bj, cj) = (b.add(jj), c.add(jj));
                    let nc = (n - jj).min(4);
                    match nc {
                        1 => col_rows::<V::L8, 1, 4>(m, kc, a, bj, n, cj),
                        2 => col_rows::<V::L8, 2, 4>(m, kc, a, bj, n, cj),
                        3 => col_rows::<V::L8, 3, 3>(m, kc, a, bj, n, cj),
                        _ => col_rows::<V::L8, 4, 2>(m, kc, a, bj, n, cj),
                    }
                    jj += nc;
                }
            } else {
                scalar_block::<V::L8>(0..m, nv..n, kc, a, b, n, c, n);
            }
            p0 += kc;
        }
    }
}

/// The vector columns `0..nv` (`nv % 8 == 0`) of `MR` rows of C, in the column blocks of
/// [`gemm_bcast`] (with 16 lanes and more than 6 rows, blocks of 48 instead of 64: 24
/// accumulators).
///
/// # Safety
/// As for [`bc_tile`], for `MR` rows and the columns below `nv`.
#[inline(always)]
unsafe fn bc_cols<V: Lanes, const MR: usize>(
    nv: usize,
    kc: usize,
    a: Strided,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    let mut j = 0;
    // SAFETY (whole body): columns below nv, by the caller's contract.
    unsafe {
        if V::N == 16 {
            if MR > 6 {
                while j + 48 <= nv {
                    bc_tile::<V, MR, 3>(kc, a, b.add(j), ldb, c.add(j), ldc);
                    j += 48;
                }
            } else {
                while j + 64 <= nv {
                    bc_tile::<V, MR, 4>(kc, a, b.add(j), ldb, c.add(j), ldc);
                    j += 64;
                }
            }
            if j + 32 <= nv {
                bc_tile::<V, MR, 2>(kc, a, b.add(j), ldb, c.add(j), ldc);
                j += 32;
            }
            if j + 16 <= nv {
                bc_tile::<V, MR, 1>(kc, a, b.add(j), ldb, c.add(j), ldc);
                j += 16;
            }
        } else {
            while j + 16 <= nv {
                bc_tile::<V::L8, MR, 2>(kc, a, b.add(j), ldb, c.add(j), ldc);
                j += 16;
            }
        }
        if j < nv {
            bc_tile::<V::L8, MR, 1>(kc, a, b.add(j), ldb, c.add(j), ldc);
        }
    }
}

/// Rows of k per block of `gemm_tn`'s narrow (in-place) path, and per sum of an edge column:
/// the in-place edges ([`col_rows`]) sum each block from zero, and [`tn_edge`] does the same in
/// the packed path, so the two paths give the same bits.
const KB_EDGE: usize = 64;

/// [`bc_cols`] for `mr` (1..=8) rows, chosen at run time.
///
/// # Safety
/// As for [`bc_cols`], for `mr` rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn bc_cols_rows<V: Lanes>(
    mr: usize,
    nv: usize,
    kc: usize,
    a: Strided,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        match mr {
            8 => bc_cols::<V, 8>(nv, kc, a, b, ldb, c, ldc),
            7 => bc_cols::<V, 7>(nv, kc, a, b, ldb, c, ldc),
            6 => bc_cols::<V, 6>(nv, kc, a, b, ldb, c, ldc),
            5 => bc_cols::<V, 5>(nv, kc, a, b, ldb, c, ldc),
            4 => bc_cols::<V, 4>(nv, kc, a, b, ldb, c, ldc),
            3 => bc_cols::<V, 3>(nv, kc, a, b, ldb, c, ldc),
            2 => bc_cols::<V, 2>(nv, kc, a, b, ldb, c, ldc),
            _ => bc_cols::<V, 1>(nv, kc, a, b, ldb, c, ldc),
        }
    }
}

/// `NC` edge columns (past the last multiple of 8) of the `mr <= 8` rows of a `gemm_tn` tile,
/// from its panel (8 scalars of A per p): per column, the tile's rows in one vector times a
/// broadcast element of B. Each element is a sum from zero over `KB_EDGE` rows of k at a time,
/// then added to C: by single-rounding FMAs for the first `fused` rows, by a rounded product and
/// a rounded add for the rest (the last m % 8 rows of C), the arithmetic these columns have
/// always had, so that results (and golden fixtures) do not move.
///
/// # Safety
/// `panel` holds `kc` rows of 8 at stride `ps`; B `kc` rows of `NC` at stride `ldb`; C `mr`
/// rows of `NC` at stride `ldc`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tn_edge<E: Vec8, const NC: usize>(
    mr: usize,
    fused: usize,
    kc: usize,
    (panel, ps): (*const f32, usize),
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    let mut p0 = 0;
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        while p0 < kc {
            let p1 = (p0 + KB_EDGE).min(kc);
            let mut acc = [E::zero(); NC];
            let mut unfused = [E::zero(); NC];
            for p in p0..p1 {
                let av = E::load(panel.add(ps * p));
                for (jj, acc) in acc.iter_mut().enumerate() {
                    *acc = av.mul_add(E::splat(*b.add(p * ldb + jj)), *acc);
                }
            }
            if fused < mr {
                for p in p0..p1 {
                    let av = E::load(panel.add(ps * p));
                    for (jj, u) in unfused.iter_mut().enumerate() {
                        *u = *u + av * E::splat(*b.add(p * ldb + jj));
                    }
                }
            }
            for jj in 0..NC {
                let (f, u) = (acc[jj].to_array(), unfused[jj].to_array());
                for r in 0..mr {
                    *c.add(r * ldc + jj) += if r < fused { f[r] } else { u[r] };
                }
            }
            p0 = p1;
        }
    }
}

/// One block of `kc <= KB_TN` rows of `gemm_tn` (A `kc` x m, read down its columns; B `kc` x n).
/// The rows of A behind a group of rows of C are first copied into a contiguous panel, and the
/// tiles broadcast from there: read in place, each p would touch a new line of A at a stride of
/// m floats, and for the power-of-two m of the gate dimension (4H) those lines fall into a few L1
/// sets and evict each other (W1's dW_hh, 512 x 128 x 3584, 16 lanes, Zen 4: 67 GFLOP/s read in
/// place, 82-90 with m = 496, 520 or 528, 88 from a panel). 16 lanes: groups of 16 rows (one line
/// of A per p, read once), two tiles of 8 rows x 48 columns; 8 lanes: tiles of 6 rows x 16
/// columns, each its own panel. Every element of C in the vector columns is the chain of FMAs
/// from C in order of p, as in `gemm_nn`, whatever the tiles; the edge columns keep their own
/// sums ([`tn_edge`]).
///
/// # Safety
/// A holds `kc` rows of `m`, B `kc` rows of `n`, C `m` rows of `n` (all tightly packed).
#[inline(always)]
unsafe fn tn_block<V: Lanes>(
    m: usize,
    n: usize,
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
) {
    debug_assert!(kc <= KB_TN);
    // Rows of C per group (per panel) and per tile.
    let (group, tile) = if V::N == 16 { (16, 8) } else { (6, 6) };
    // Panel row stride: 16, or 8 (one 8-lane vector holding the 6 rows).
    let ps = if V::N == 16 { 16 } else { 8 };
    // Not zeroed: every lane read (p < kc, row < the group's rows) is written first.
    let mut buf = MaybeUninit::<[f32; 16 * KB_TN]>::uninit();
    let panel = buf.as_mut_ptr().cast::<f32>();
    let mut i = 0;
    // SAFETY (whole body): rows below m of C, elements (p < kc, i .. i + g) of A, panel rows
    // below kc.
    unsafe {
        while i < m {
            let g = (m - i).min(group);
            for p in 0..kc {
                let (row, dst) = (a.add(p * m + i), panel.add(ps * p));
                if V::N == 16 && g == 16 {
                    V::load(row).store(dst);
                } else if m - i >= 8 && g <= 8 {
                    V::L8::load(row).store(dst);
                } else {
                    V::L8::load_n(row, g).store(dst);
                    if g > 8 {
                        V::L8::load_n(row.add(8), g - 8).store(dst.add(8));
                    }
                }
            }
            let mut r0 = 0;
            while r0 < g {
                let mr = (g - r0).min(tile);
                tn_tile::<V>(m, n, kc, i + r0, mr, (panel.add(r0), ps), b, c);
                r0 += tile;
            }
            i += group;
        }
    }
}

/// Rows `i .. i + mr` (`mr <= 8`) of C for one k block of [`tn_block`], from their panel (`kc`
/// rows of `mr` scalars at stride `ps`): the vector columns by [`bc_cols`], the rest by
/// [`tn_edge`].
///
/// # Safety
/// As for [`tn_block`]; the panel holds the rows' elements of A.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tn_tile<V: Lanes>(
    m: usize,
    n: usize,
    kc: usize,
    i: usize,
    mr: usize,
    (panel, ps): (*const f32, usize),
    b: *const f32,
    c: *mut f32,
) {
    let nv = n - n % 8;
    let at = Strided {
        p: panel,
        rs: 1,
        ps,
    };
    // SAFETY (whole body): rows i .. i + mr of C, by the caller's contract.
    unsafe {
        let ci = c.add(i * n);
        bc_cols_rows::<V>(mr, nv, kc, at, b, n, ci, n);
        // The rows whose edge columns sum by FMAs: all but the last m % 8 of C.
        let fused = (m - m % 8).saturating_sub(i).min(mr);
        let mut j = nv;
        while j < n {
            let (bj, cj, p) = (b.add(j), ci.add(j), (panel, ps));
            let nc = (n - j).min(4);
            match nc {
                1 => tn_edge::<V::L8, 1>(mr, fused, kc, p, bj, n, cj, n),
                2 => tn_edge::<V::L8, 2>(mr, fused, kc, p, bj, n, cj, n),
                3 => tn_edge::<V::L8, 3>(mr, fused, kc, p, bj, n, cj, n),
                _ => tn_edge::<V::L8, 4>(mr, fused, kc, p, bj, n, cj, n),
            }
            j += nc;
        }
    }
}

/// `C[m,n] += A[k,m]ᵀ · B[k,n]` in blocks of [`KB_TN`] rows ([`tn_block`]).
///
/// # Safety
/// A holds `k·m` elements, B `k·n`, C `m·n`.
#[inline(always)]
unsafe fn gemm_tn_blocks<V: Lanes>(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
) {
    let mut p0 = 0;
    while p0 < k {
        let kc = (k - p0).min(KB_TN);
        // SAFETY: rows p0 .. p0 + kc of A and B.
        unsafe { tn_block::<V>(m, n, kc, a.add(p0 * m), b.add(p0 * n), c) };
        p0 += kc;
    }
}

widest! {
    /// [`gemm_tn_blocks`] at the widest lane width in use.
    gemm_tn_wide => gemm_tn_blocks(
        m: usize, n: usize, k: usize, a: *const f32, b: *const f32, c: *mut f32
    )
}

widest! {
    /// [`gemm_bcast`] at the widest lane width in use.
    pub(super) gemm_wide => gemm_bcast(
        m: usize, n: usize, k: usize, kb: usize, a: Strided, b: *const f32, c: *mut f32
    )
}

// ---------------------------------------------------------------------------------------------
// The entry points

/// `Kernels::gemm_nt` for `Simd`.
// Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
// keeps no panic path.
#[inline(always)]
pub(super) fn gemm_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(fits(a.len(), m, k) && fits(b.len(), n, k) && fits(c.len(), m, n));
    if k == 0 {
        return;
    }
    if cfg!(target_arch = "arm") && m == 1 {
        // Cortex-M: the batch-1 product (linear head, tanh RNN step) of the microcontroller
        // kernels, four rows per pass (`wide` is plain arrays there).
        super::super::mcu::gemv(n, k, a, b, c);
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
            // of A is one `dot1` per column.
            gemv_dots_wide(n, k, a, b, c);
        } else {
            gemm_nt_dots_wide(m, n, k, a, b, c);
        }
    }
}

/// `Kernels::gemm_nn` for `Simd`.
pub(super) fn gemm_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(fits(a.len(), m, k) && fits(b.len(), k, n) && fits(c.len(), m, n));
    let a = Strided {
        p: a.as_ptr(),
        rs: k,
        ps: 1,
    };
    // SAFETY: lengths checked above.
    unsafe { gemm_wide(m, n, k, KB_NN, a, b.as_ptr(), c.as_mut_ptr()) }
}

/// `Kernels::gemm_tn` for `Simd`: narrow products (fewer than [`TN_PACKED_FROM`] columns, e.g.
/// dW_ih for a small input) broadcast from A in place with k blocked by [`KB_EDGE`]; wide ones
/// through the packed panels of [`tn_block`]. Both compute every element with the same
/// arithmetic (the vector columns as chains of FMAs from C, the edge columns as [`tn_edge`]
/// describes), so the choice changes no bits.
pub(super) fn gemm_tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(fits(a.len(), k, m) && fits(b.len(), k, n) && fits(c.len(), m, n));
    let (ap, bp, cp) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
    // SAFETY: lengths checked above.
    unsafe {
        if n < TN_PACKED_FROM {
            let a = Strided {
                p: ap,
                rs: 1,
                ps: m,
            };
            gemm_wide(m, n, k, KB_EDGE, a, bp, cp)
        } else {
            gemm_tn_wide(m, n, k, ap, bp, cp)
        }
    }
}

/// `y[n] += Σ_r A[r, n]`, each lane adding the rows in order, exactly as the naive loop does.
///
/// # Safety
/// A holds `rows·n` elements, y `n`.
#[inline(always)]
unsafe fn col_sum_rows<E: Vec8>(rows: usize, n: usize, a: *const f32, y: *mut f32) {
    // SAFETY (whole body): columns below n of rows below `rows`, by the caller's contract.
    unsafe {
        let mut j = 0;
        while j + 64 <= n {
            let mut acc = [E::zero(); 8];
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = E::load(y.add(j + 8 * v));
            }
            for r in 0..rows {
                for (v, acc) in acc.iter_mut().enumerate() {
                    *acc = *acc + E::load(a.add(r * n + j + 8 * v));
                }
            }
            for (v, &acc) in acc.iter().enumerate() {
                acc.store(y.add(j + 8 * v));
            }
            j += 64;
        }
        while j < n {
            let w = (n - j).min(8);
            let mut acc = E::load_n(y.add(j), w);
            for r in 0..rows {
                acc = acc + E::load_n(a.add(r * n + j), w);
            }
            acc.store_n(y.add(j), w);
            j += 8;
        }
    }
}

lanes8! {
    /// [`col_sum_rows`] on the instruction set in use.
    col_sum_wide => col_sum_rows(rows: usize, n: usize, a: *const f32, y: *mut f32)
}

/// `Kernels::col_sum` for `Simd`.
pub(super) fn col_sum(rows: usize, n: usize, a: &[f32], y: &mut [f32]) {
    assert!(fits(a.len(), rows, n) && y.len() >= n);
    // SAFETY: lengths checked above.
    unsafe { col_sum_wide(rows, n, a.as_ptr(), y.as_mut_ptr()) }
}
