//! SIMD kernels for `f32`, 8 lanes (`wide::f32x8`). Each one has its scalar twin in `naive.rs`
//! with the same signature; `tests/kernels.rs` checks them against each other.
//!
//! Matrix products come in two shapes of register tile:
//! * `gemm_nt` (both operands contiguous along k): an MR x NR tile of dot products, 8 lanes of k
//!   at a time, reduced horizontally once per tile;
//! * `gemm_nn` / `gemm_tn` (B contiguous along n): an MR x (8·NV) tile of C held in registers,
//!   updated by broadcasting one element of A against NV vectors of a row of B per k.

use wide::f32x8;

use super::{Kernels, Simd};

/// Loads `w <= 8` lanes from the front of `s` (the rest zero).
#[inline(always)]
fn ld(s: &[f32], w: usize) -> f32x8 {
    match s.first_chunk::<8>() {
        Some(a) if w == 8 => f32x8::new(*a),
        _ => {
            let mut a = [0.0f32; 8];
            let w = w.min(s.len());
            a[..w].copy_from_slice(&s[..w]);
            f32x8::new(a)
        }
    }
}

/// Stores the first `w <= 8` lanes of `v` to the front of `s`.
#[inline(always)]
fn st(s: &mut [f32], v: f32x8, w: usize) {
    match s.first_chunk_mut::<8>() {
        Some(d) if w == 8 => *d = v.to_array(),
        _ => {
            let w = w.min(s.len());
            s[..w].copy_from_slice(&v.to_array()[..w]);
        }
    }
}

/// Logistic sigmoid on 8 lanes: `1 / (1 + e^-x)` (`wide`'s exp: within 2 ulp of libm over the
/// range that matters; saturates correctly to 0 and 1).
#[inline(always)]
pub(crate) fn sigmoid8(x: f32x8) -> f32x8 {
    f32x8::ONE / (f32x8::ONE + (-x).exp())
}

/// tanh on 8 lanes (`wide`'s tanh, built on `exp_m1`).
#[inline(always)]
pub(crate) fn tanh8(x: f32x8) -> f32x8 {
    x.tanh()
}

/// `C[i..i+MR, j..j+NR] += A[i.., :] · B[j.., :]ᵀ` (rows of length k).
#[inline(always)]
fn nt_tile<const MR: usize, const NR: usize>(
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    i: usize,
    j: usize,
) {
    let mut acc = [[f32x8::ZERO; NR]; MR];
    let kv = k - k % 8;
    let mut p = 0;
    while p < kv {
        let mut bv = [f32x8::ZERO; NR];
        for (jj, v) in bv.iter_mut().enumerate() {
            *v = ld(&b[(j + jj) * k + p..], 8);
        }
        for (ii, acc) in acc.iter_mut().enumerate() {
            let av = ld(&a[(i + ii) * k + p..], 8);
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = av.mul_add(bv, *acc);
            }
        }
        p += 8;
    }
    for (ii, acc) in acc.iter().enumerate() {
        let ar = &a[(i + ii) * k..(i + ii + 1) * k];
        for (jj, acc) in acc.iter().enumerate() {
            let br = &b[(j + jj) * k..(j + jj + 1) * k];
            let mut s = acc.reduce_add();
            for q in kv..k {
                s += ar[q] * br[q];
            }
            c[(i + ii) * n + j + jj] += s;
        }
    }
}

/// `C[i..i+MR, j..j+8·NV] += Σ_p A(i+r, p) · B[p, j..]`, with `A(r, p)` = `A[r, p]` or, if `TA`,
/// `A[p, r]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bc_tile<const TA: bool, const MR: usize, const NV: usize>(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    i: usize,
    j: usize,
) {
    let mut acc = [[f32x8::ZERO; NV]; MR];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (v, acc) in acc.iter_mut().enumerate() {
            *acc = ld(&c[(i + r) * n + j + 8 * v..], 8);
        }
    }
    for p in 0..k {
        let mut bv = [f32x8::ZERO; NV];
        for (v, bv) in bv.iter_mut().enumerate() {
            *bv = ld(&b[p * n + j + 8 * v..], 8);
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = f32x8::splat(if TA {
                a[p * m + i + r]
            } else {
                a[(i + r) * k + p]
            });
            for (acc, &bv) in acc.iter_mut().zip(&bv) {
                *acc = av.mul_add(bv, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (v, &acc) in acc.iter().enumerate() {
            st(&mut c[(i + r) * n + j + 8 * v..], acc, 8);
        }
    }
}

/// One block of MR rows of C across all n columns (16-wide tiles, then 8, then scalar).
#[inline(always)]
fn bc_rows<const TA: bool, const MR: usize>(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    i: usize,
) {
    let mut j = 0;
    while j + 16 <= n {
        bc_tile::<TA, MR, 2>(m, n, k, a, b, c, i, j);
        j += 16;
    }
    if j + 8 <= n {
        bc_tile::<TA, MR, 1>(m, n, k, a, b, c, i, j);
        j += 8;
    }
    for r in i..i + MR {
        for jj in j..n {
            let mut s = 0.0f32;
            for p in 0..k {
                let av = if TA { a[p * m + r] } else { a[r * k + p] };
                s += av * b[p * n + jj];
            }
            c[r * n + jj] += s;
        }
    }
}

fn gemm_bcast<const TA: bool>(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let mut i = 0;
    while i + 4 <= m {
        bc_rows::<TA, 4>(m, n, k, a, b, c, i);
        i += 4;
    }
    while i < m {
        bc_rows::<TA, 1>(m, n, k, a, b, c, i);
        i += 1;
    }
}

impl Kernels<f32> for Simd {
    fn gemm_nt(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        debug_assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
        let mut i = 0;
        while i < m {
            let two = i + 2 <= m;
            let mut j = 0;
            while j + 4 <= n {
                if two {
                    nt_tile::<2, 4>(n, k, a, b, c, i, j);
                } else {
                    nt_tile::<1, 4>(n, k, a, b, c, i, j);
                }
                j += 4;
            }
            while j < n {
                if two {
                    nt_tile::<2, 1>(n, k, a, b, c, i, j);
                } else {
                    nt_tile::<1, 1>(n, k, a, b, c, i, j);
                }
                j += 1;
            }
            i += if two { 2 } else { 1 };
        }
    }

    fn gemm_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        debug_assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        gemm_bcast::<false>(m, n, k, a, b, c);
    }

    fn gemm_tn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        debug_assert!(a.len() >= k * m && b.len() >= k * n && c.len() >= m * n);
        gemm_bcast::<true>(m, n, k, a, b, c);
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
        debug_assert!(pre.len() == 4 * hs && gates.len() == 4 * hs);
        debug_assert!(c_prev.len() == hs && c.len() == hs && tanh_c.len() == hs);
        for j in (0..hs).step_by(8) {
            let w = (hs - j).min(8);
            let i = sigmoid8(ld(&pre[j..], w));
            let f = sigmoid8(ld(&pre[hs + j..], w));
            let g = tanh8(ld(&pre[2 * hs + j..], w));
            let o = sigmoid8(ld(&pre[3 * hs + j..], w));
            let cj = f.mul_add(ld(&c_prev[j..], w), i * g);
            let tc = tanh8(cj);
            st(&mut gates[j..], i, w);
            st(&mut gates[hs + j..], f, w);
            st(&mut gates[2 * hs + j..], g, w);
            st(&mut gates[3 * hs + j..], o, w);
            st(&mut c[j..], cj, w);
            st(&mut tanh_c[j..], tc, w);
            st(&mut h[j..], o * tc, w);
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
        debug_assert!(gates.len() == 4 * hs && dpre.len() == 4 * hs);
        debug_assert!(c_prev.len() == hs && tanh_c.len() == hs);
        debug_assert!(dh_ext.len() == hs && dh_rec.len() == hs);
        let one = f32x8::ONE;
        for j in (0..hs).step_by(8) {
            let w = (hs - j).min(8);
            let i = ld(&gates[j..], w);
            let f = ld(&gates[hs + j..], w);
            let g = ld(&gates[2 * hs + j..], w);
            let o = ld(&gates[3 * hs + j..], w);
            let tc = ld(&tanh_c[j..], w);
            let dh = ld(&dh_ext[j..], w) + ld(&dh_rec[j..], w);
            let dct = (dh * o).mul_add(one - tc * tc, ld(&dc[j..], w));
            st(&mut dpre[j..], dct * g * i * (one - i), w);
            st(
                &mut dpre[hs + j..],
                dct * ld(&c_prev[j..], w) * f * (one - f),
                w,
            );
            st(&mut dpre[2 * hs + j..], dct * i * (one - g * g), w);
            st(&mut dpre[3 * hs + j..], dh * tc * o * (one - o), w);
            st(&mut dc[j..], dct * f, w);
        }
    }

    fn tanh_pointwise(pre: &[f32], h: &mut [f32]) {
        debug_assert!(pre.len() == h.len());
        let hs = h.len();
        for j in (0..hs).step_by(8) {
            let w = (hs - j).min(8);
            st(&mut h[j..], tanh8(ld(&pre[j..], w)), w);
        }
    }

    fn tanh_pointwise_backward(h: &[f32], dh_ext: &[f32], dh_rec: &[f32], dpre: &mut [f32]) {
        let hs = dpre.len();
        debug_assert!(h.len() == hs && dh_ext.len() == hs && dh_rec.len() == hs);
        for j in (0..hs).step_by(8) {
            let w = (hs - j).min(8);
            let hv = ld(&h[j..], w);
            let dh = ld(&dh_ext[j..], w) + ld(&dh_rec[j..], w);
            st(&mut dpre[j..], dh * (f32x8::ONE - hv * hv), w);
        }
    }
}
