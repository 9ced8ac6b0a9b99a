//! The batch-1 LSTM step (one sequence, straight from PyTorch's layout: inference and the
//! firmware's `step`). Per block of 8 (or 16) units the four gates' rows of `W_ih` and `W_hh`
//! are reduced and the cell updated on registers, with exactly the arithmetic of `gemm_nt` (x),
//! `gemm_nt` (h) and `lstm_pointwise`, so the result is bit-identical to that composition (the
//! test below). On Cortex-M the step is the microcontroller kernel of `mcu.rs` instead.

use super::super::lanes::{Lanes, Math, Vec8};
#[cfg(target_arch = "x86_64")]
use super::super::lanes::{Ymm, Zmm};
use super::fits;
use super::gemm::{dot1, dot8_acc};
use super::pointwise::cell_math;

/// `pre[l] + Σ_q a[q] · W[row0 + l, q]` for the lanes `l < w` (rows of length `k`, `wr` at row
/// `row0`), with exactly the arithmetic of `gemm_nt(1, n, k, a, W, pre)` for those columns of its
/// `n`: one FMA per column when `k == 1` (a rounded product added, past the vector columns),
/// [`dot8`](super::gemm::dot8)'s sums when `n >= 8`, [`dot1`]'s when `n < 8`.
///
/// # Safety
/// `a .. a + k` and rows `0 .. w` of `wr` (k each) readable; `1 <= w <= 8`, `row0 + w <= n`.
#[inline(always)]
unsafe fn gemv_lanes<E: Vec8>(
    pre: E,
    a: *const f32,
    wr: *const f32,
    k: usize,
    w: usize,
    row0: usize,
    n: usize,
) -> E {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        match k {
            0 => pre,
            1 => {
                let (av, bv) = (E::splat(*a), E::load_n(wr, w));
                let fused = av.mul_add(bv, pre);
                let nv = n - n % 8;
                if row0 + w <= nv {
                    fused
                } else {
                    let (f, u) = (fused.to_array(), (pre + av * bv).to_array());
                    let mut out = [0.0f32; 8];
                    for (l, o) in out.iter_mut().enumerate() {
                        *o = if row0 + l < nv { f[l] } else { u[l] };
                    }
                    E::from_array(out)
                }
            }
            _ if n >= 8 => {
                let mut acc = [E::zero(); 8];
                dot8_acc(&mut acc, a, wr, k, w, k);
                pre + E::transpose_sum(acc)
            }
            _ => {
                let mut p = pre.to_array();
                for (l, p) in p.iter_mut().enumerate().take(w) {
                    *p += dot1::<E>(a, wr.add(l * k), k);
                }
                E::from_array(p)
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
#[inline(always)]
unsafe fn lstm_step_raw<V: DotRows>(
    hs: usize,
    is: usize,
    [x, wi, wh, bi, bh]: [*const f32; 5],
    hp: *const f32,
    cp: *mut f32,
    hout: *mut f32,
) where
    V::L8: DotRows,
{
    // On x86-64: when every block of units is full, no tails, and 4 blocks' activations side by
    // side. Not elsewhere: on Cortex-M (where `lstm_step` goes to `mcu.rs` anyway) it would only
    // cost flash and stack for the same arithmetic (Cortex-M4F sine firmware: +3.5 KB flash,
    // +0.8 KB stack per step).
    if cfg!(target_arch = "x86_64") && hs.is_multiple_of(8) {
        // Every block of units full: no tails, and (4H a multiple of 8, H >= 8) `gemv_lanes`
        // reduces to one FMA (k = 1) or `dot8` (k >= 2), as `lstm_step_blocks` does.
        let ptrs = [x, wi, wh, bi, bh];
        let mut j = 0;
        // Where AVX-512 is in use, blocks of 16 units first (same bits, see `DotRows`), one block
        // at a time, not two side by side: then the next block's products overlap this block's
        // activations (measured at H = 32: 162 ns against 180 with two blocks).
        if V::N == 16 {
            while j + 16 <= hs {
                // SAFETY: units j .. j + 16 <= hs, by the caller's contract.
                unsafe { lstm_step_blocks::<V, 1>(hs, is, ptrs, hp, cp, hout, j) };
                j += 16;
            }
        }
        while j + 32 <= hs {
            // SAFETY: units j .. j + 32 <= hs, by the caller's contract.
            unsafe { lstm_step_blocks::<V::L8, 4>(hs, is, ptrs, hp, cp, hout, j) };
            j += 32;
        }
        while j < hs {
            // SAFETY: units j .. j + 8 <= hs, by the caller's contract.
            unsafe { lstm_step_blocks::<V::L8, 1>(hs, is, ptrs, hp, cp, hout, j) };
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
            // accumulators, one reduction per gate. (A loop, not `array::map`: its closure
            // would not be compiled with the caller's target features.)
            let mut a = [V::L8::zero(); 4];
            for (g, a) in a.iter_mut().enumerate() {
                let r0 = g * hs + j;
                let pre = V::L8::load_n(bi.add(r0), w) + V::L8::load_n(bh.add(r0), w);
                let pre = gemv_lanes(pre, x, wi.add(r0 * is), is, w, r0, 4 * hs);
                *a = gemv_lanes(pre, hp, wh.add(r0 * hs), hs, w, r0, 4 * hs);
            }
            let [_, _, _, _, cn, _, h] = cell_math(a, V::L8::load_n(cp.add(j), w));
            cn.store_n(cp.add(j), w);
            h.store_n(hout.add(j), w);
        }
        j += 8;
    }
}

widest! {
    /// [`lstm_step_raw`] on the instruction set in use.
    lstm_step_wide => lstm_step_raw(
        hs: usize,
        is: usize,
        w: [*const f32; 5],
        hp: *const f32,
        cp: *mut f32,
        hout: *mut f32
    )
}

/// `acc` plus [`dot8_acc`]'s partial sums (with `w` = 8) for the 8 rows of length `k` starting at
/// `o` (`os` apart) against `s`. `acc` by value: a `&mut` would be spilled every iteration.
///
/// # Safety
/// `s .. s + k` and the rows' `k` elements readable; `k >= 2`.
#[inline(always)]
unsafe fn dot8_rows<E: Vec8>(
    mut acc: [E; 8],
    s: *const f32,
    o: *const f32,
    os: usize,
    k: usize,
) -> [E; 8] {
    let kv = k - k % 8;
    let mut p = 0;
    // SAFETY (whole block): every load below is at offset p .. p + 8 <= k of a row, or, in the
    // tail, k - 8 .. k (k >= 8) or a partial load of k < 8 elements.
    unsafe {
        while p < kv {
            let sv = E::load(s.add(p));
            for (i, a) in acc.iter_mut().enumerate() {
                *a = E::load(o.add(i * os + p)).mul_add(sv, *a);
            }
            p += 8;
        }
        if p < k {
            if k >= 8 {
                // The last 8 elements, with the ones already summed masked out of `s`.
                let sv = E::load(s.add(k - 8)).tail(k - p);
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = E::load(o.add(i * os + k - 8)).mul_add(sv, *a);
                }
            } else {
                let sv = E::load_n(s, k);
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = E::load_n(o.add(i * os), k).mul_add(sv, *a);
                }
            }
        }
    }
    acc
}

/// What the batch-1 step needs beyond [`Lanes`]: `V::N` dot products (rows of a weight matrix
/// against one vector) with exactly [`dot8`](super::gemm::dot8)'s arithmetic.
trait DotRows: Math {
    /// Lane `l` = the dot product of row `l` of the `V::N` rows of length `k` starting at `o`
    /// (`os` apart) with `s`: 8-lane partial sums per row as [`dot8_acc`] forms them, reduced by
    /// [`Vec8::transpose_sum`]'s tree.
    ///
    /// # Safety
    /// `s .. s + k` and the rows' `k` elements readable; `k >= 2`.
    unsafe fn dots(s: *const f32, o: *const f32, os: usize, k: usize) -> Self;
}

impl DotRows for wide::f32x8 {
    #[inline(always)]
    unsafe fn dots(s: *const f32, o: *const f32, os: usize, k: usize) -> Self {
        // SAFETY: by the caller's contract.
        Self::transpose_sum(unsafe { dot8_rows([Self::zero(); 8], s, o, os, k) })
    }
}

#[cfg(target_arch = "x86_64")]
impl DotRows for Ymm {
    #[inline(always)]
    unsafe fn dots(s: *const f32, o: *const f32, os: usize, k: usize) -> Self {
        // SAFETY: by the caller's contract.
        Self::transpose_sum(unsafe { dot8_rows([Self::zero(); 8], s, o, os, k) })
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
        fn p(lo: Ymm, hi: Ymm) -> __m512 {
            Zmm::join(lo, hi).0
        }
        /// `vhaddps` per 128-bit lane: [a0 + a1, a2 + a3, b0 + b1, b2 + b3] (AVX-512 has no
        /// 512-bit horizontal add).
        #[inline(always)]
        fn hadd(a: __m512, b: __m512) -> __m512 {
            // SAFETY: reached only from the AVX-512F instantiation of `lstm_step_raw`, which
            // `isa()` selects only after CPUID / XGETBV found AVX-512F.
            unsafe {
                _mm512_add_ps(
                    _mm512_shuffle_ps::<0x88>(a, b),
                    _mm512_shuffle_ps::<0xdd>(a, b),
                )
            }
        }
        let z = [Ymm::zero(); 8];
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
        // SAFETY: as in `hadd`.
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
/// (Loops, not closures: a closure would not be compiled with the caller's target features.)
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
        // (An index loop: `a.map(..)` would take a closure, not compiled for AVX2 / AVX-512.)
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

/// `Kernels::lstm_step` for `Simd`.
// Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
// keeps no panic path. The work is in `lstm_step_raw`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lstm_step(
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
) {
    if cfg!(target_arch = "arm") {
        // Cortex-M: the microcontroller step (four gate rows per pass, VFMA where the core
        // has an FPU, scalar activations).
        super::super::mcu::lstm_step(hs, is, x, w_ih, w_hh, b_ih, b_hh, h_prev, c, h);
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
    unsafe { lstm_step_wide(hs, is, w, h_prev.as_ptr(), c.as_mut_ptr(), h.as_mut_ptr()) }
}

#[cfg(test)]
mod tests {
    use super::super::super::{Kernels, Simd};

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
