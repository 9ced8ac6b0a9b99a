//! Integer dot products of the int8 step: `acc[r] = Σ_j w[r][j] · v[j]` for a block of up to 4
//! rows of int8 weights against one int8 vector, accumulated in `i32`.
//!
//! The vector is *expanded* once per step ([`expand`]): per group of four values v0..v3 the two
//! words `v0 | v2 << 16` and `v1 | v3 << 16` (sign-extended halfwords: what `SXTB16` and
//! `SXTB16 ... ROR #8` make of the four bytes), then the last `k % 4` values one per word. Two
//! implementations of the same sum on it, chosen by target:
//! * portable: one multiply-add per element (the reference, and the code on Cortex-M0 and x86);
//! * DSP (`cfg(tinyrnn_arm_dsp)`: thumbv7em, Cortex-M4/M7, set by the core's build.rs from the
//!   target name, since stable rustc shows no Arm target features to `cfg`): per group
//!   one `LDRD` of the expanded vector, then per row one load of four weights, `SXTB16` and
//!   `SXTB16 ... ROR #8` into matching pairs, and two `SMLAD` (each: both pair products added to
//!   the accumulator). 45 instructions per 32 multiply-adds in the loop.
//!
//! Integer addition is exact and associative, so both give the same bits whatever the order, as
//! long as no sum leaves `i32`: |w|, |v| <= 128 and k <= [`MAX_COLS`] (checked when a model is
//! accepted).

/// Longest row for which no partial sum can overflow `i32`: 128² · MAX_COLS < 2^31 (the
/// quantizer's values are within ±127; -128 is accepted too).
pub const MAX_COLS: usize = 131_071;

/// Words [`expand`] writes for `k` values.
pub const fn expanded_len(k: usize) -> usize {
    k / 4 * 2 + k % 4
}

/// Expands `v` into `out` ([`expanded_len`]`(v.len())` words, see the module doc). Writes
/// nothing if `out` is too short.
#[inline]
pub fn expand(v: &[i8], out: &mut [u32]) {
    if out.len() < expanded_len(v.len()) {
        return;
    }
    let (groups, tail) = v.as_chunks::<4>();
    let (pairs, rest) = out.split_at_mut(2 * groups.len());
    for (g, o) in groups.iter().zip(pairs.as_chunks_mut::<2>().0) {
        let half = |x: i8| x as i16 as u16 as u32;
        o[0] = half(g[0]) | half(g[2]) << 16;
        o[1] = half(g[1]) | half(g[3]) << 16;
    }
    for (&x, o) in tail.iter().zip(rest) {
        *o = x as i32 as u32;
    }
}

/// `acc[r] += Σ_j w[r·stride + j] · v[j]` for `r < n` (n <= 4), rows `k` long; `ve` is
/// [`expand`] of the `k` values of `v`. `acc[r]` for `r >= n` is left as it is.
///
/// Safe: returns without reading if the slices are too short (callers check shapes first).
#[inline]
pub fn dot_rows(w: &[i8], stride: usize, n: usize, ve: &[u32], k: usize, acc: &mut [i32; 4]) {
    let n = n.min(4);
    if n == 0 || k == 0 || w.len() < (n - 1) * stride + k || ve.len() < expanded_len(k) {
        return;
    }
    // SAFETY: checked just above.
    unsafe { dot_rows_raw(w.as_ptr(), stride, n, ve.as_ptr(), k, acc) }
}

/// [`dot_rows`] on pointers, for callers that checked the shapes once for many calls.
///
/// # Safety
/// `n <= 4`, `k >= 1`; rows `0..n` of `k` elements, `stride` apart from `w`, are readable, and
/// `ve` holds [`expanded_len`]`(k)` words.
#[inline(always)]
pub unsafe fn dot_rows_raw(
    w: *const i8,
    stride: usize,
    n: usize,
    ve: *const u32,
    k: usize,
    acc: &mut [i32; 4],
) {
    #[cfg(tinyrnn_arm_dsp)]
    if n == 4 {
        // SAFETY: by the caller's contract.
        unsafe { dsp::dot4(w, stride, ve, k, acc) };
        return;
    }
    // SAFETY: by the caller's contract.
    let (w, ve) = unsafe {
        (
            core::slice::from_raw_parts(w, (n.max(1) - 1) * stride + k),
            core::slice::from_raw_parts(ve, expanded_len(k)),
        )
    };
    dot_rows_portable(w, stride, n, ve, k, acc);
}

/// The portable twin of [`dot_rows`]: one multiply-add per element.
#[inline]
pub fn dot_rows_portable(
    w: &[i8],
    stride: usize,
    n: usize,
    ve: &[u32],
    k: usize,
    acc: &mut [i32; 4],
) {
    let lo = |x: u32| x as u16 as i16 as i32;
    let hi = |x: u32| (x >> 16) as u16 as i16 as i32;
    let groups = k / 4;
    for (r, a) in acc.iter_mut().enumerate().take(n.min(4)) {
        let Some(row) = w.get(r * stride..r * stride + k) else {
            return;
        };
        let (wg, wt) = row.as_chunks::<4>();
        let (vg, vt) = ve.split_at(2 * groups.min(ve.len() / 2));
        let mut s = 0i32;
        for (wq, v) in wg.iter().zip(vg.as_chunks::<2>().0) {
            let wq = wq.map(|x| x as i32);
            s += wq[0] * lo(v[0]) + wq[2] * hi(v[0]) + wq[1] * lo(v[1]) + wq[3] * hi(v[1]);
        }
        for (&x, &v) in wt.iter().zip(vt) {
            s += x as i32 * v as i32;
        }
        *a += s;
    }
}

/// `(a·m + 2^31) >> 32`: the rounded high word of the product (ARM's `SMMULR`, one instruction
/// where the target has the DSP extension).
#[inline(always)]
pub fn smmulr(a: i32, m: i32) -> i32 {
    #[cfg(tinyrnn_arm_dsp)]
    {
        dsp::smmulr(a, m)
    }
    #[cfg(not(tinyrnn_arm_dsp))]
    {
        ((a as i64 * m as i64 + (1i64 << 31)) >> 32) as i32
    }
}

#[cfg(tinyrnn_arm_dsp)]
mod dsp {
    use core::arch::asm;

    /// `SMMULR`: `(a·m + 2^31) >> 32`.
    #[inline(always)]
    pub(super) fn smmulr(a: i32, m: i32) -> i32 {
        let r: i32;
        // SAFETY: a register-only instruction.
        unsafe {
            asm!("smmulr {r}, {a}, {m}", r = lateout(reg) r, a = in(reg) a, m = in(reg) m, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }

    /// One group (4 values: `{xa}`, `{xb}` from one `LDRD`) of four rows: rows 2 and 3 at
    /// `p0 + 2·stride`, `p1 + 2·stride`, then rows 0 and 1 with the pointers advanced.
    macro_rules! group {
        () => {
            concat!(
                "ldrd {xa}, {xb}, [{px}], #8\n",
                "ldr {w}, [{p0}, {k}, lsl #1]\n",
                "sxtb16 {t}, {w}\n",
                "smlad {a2}, {t}, {xa}, {a2}\n",
                "sxtb16 {w}, {w}, ror #8\n",
                "smlad {a2}, {w}, {xb}, {a2}\n",
                "ldr {w}, [{p1}, {k}, lsl #1]\n",
                "sxtb16 {t}, {w}\n",
                "smlad {a3}, {t}, {xa}, {a3}\n",
                "sxtb16 {w}, {w}, ror #8\n",
                "smlad {a3}, {w}, {xb}, {a3}\n",
                "ldr {w}, [{p0}], #4\n",
                "sxtb16 {t}, {w}\n",
                "smlad {a0}, {t}, {xa}, {a0}\n",
                "sxtb16 {w}, {w}, ror #8\n",
                "smlad {a0}, {w}, {xb}, {a0}\n",
                "ldr {w}, [{p1}], #4\n",
                "sxtb16 {t}, {w}\n",
                "smlad {a1}, {t}, {xa}, {a1}\n",
                "sxtb16 {w}, {w}, ror #8\n",
                "smlad {a1}, {w}, {xb}, {a1}\n",
            )
        };
    }

    /// `acc[r] += Σ_j w[r·stride + j] · v[j]` for r < 4, `ve` expanded: an asm loop over two
    /// groups at a time (the loop end on the stack: the twelve registers are all in use), one
    /// more group if their count is odd, the last `k % 4` values in Rust.
    ///
    /// # Safety
    /// The four rows' `k` elements from `w` readable; `ve` holds [`expanded_len`](super::expanded_len)`(k)`
    /// words, 4-aligned (it is a `u32` slice).
    #[inline(always)]
    pub(super) unsafe fn dot4(
        w: *const i8,
        stride: usize,
        ve: *const u32,
        k: usize,
        acc: &mut [i32; 4],
    ) {
        let groups = k / 4;
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        let mut px = ve;
        let mut p0 = w;
        // SAFETY: row 1 starts inside `w` (rows 0..4 are readable).
        let mut p1 = unsafe { w.add(stride) };
        // SAFETY (both asm blocks): per group, 4 bytes of each row (rows 2, 3 at p0, p1 plus
        // 2·stride) and 2 words of `ve`, for `groups` groups: inside the buffers. The stack is
        // left as found.
        // The asm blocks' operands, the same for both; `t` comes in with `$t` (the loop end),
        // then the options, if any.
        macro_rules! dot_asm {
            ($t:expr; [$($template:expr),+ $(,)?] $($opt:tt)*) => {
                asm!(
                    $($template),+,
                    px = inout(reg) px,
                    p0 = inout(reg) p0,
                    p1 = inout(reg) p1,
                    k = in(reg) stride,
                    a0 = inout(reg) a0,
                    a1 = inout(reg) a1,
                    a2 = inout(reg) a2,
                    a3 = inout(reg) a3,
                    xa = out(reg) _,
                    xb = out(reg) _,
                    w = out(reg) _,
                    t = inout(reg) $t => _,
                    $($opt)*
                )
            };
        }
        if groups >= 2 {
            unsafe {
                let end = px.add(groups / 2 * 4);
                dot_asm!(end; [
                    "push {{{t}}}",
                    "2:",
                    group!(),
                    group!(),
                    "ldr {t}, [sp]",
                    "cmp {px}, {t}",
                    "bne 2b",
                    "add sp, #4",
                ]);
            }
        }
        if groups % 2 == 1 {
            unsafe { dot_asm!(0usize; [group!()] options(readonly, nostack, preserves_flags)) };
        }
        // SAFETY: the last k % 4 elements of each row and of `ve`, from where the groups ended.
        unsafe {
            let (p2, p3) = (p0.add(2 * stride), p1.add(2 * stride));
            for j in 0..k % 4 {
                let v = *px.add(j) as i32;
                a0 += *p0.add(j) as i32 * v;
                a1 += *p1.add(j) as i32 * v;
                a2 += *p2.add(j) as i32 * v;
                a3 += *p3.add(j) as i32 * v;
            }
        }
        *acc = [a0, a1, a2, a3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatching kernel against a plain sum on the expanded vector, for every row count,
    /// lengths around the groups of 4 and 8, and the extreme values.
    #[test]
    fn dot_rows_matches_a_plain_sum() {
        let mut s = 12345u32;
        let mut next = move || {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (s >> 16) as i8
        };
        for k in [1usize, 2, 3, 4, 5, 7, 8, 9, 12, 28, 31, 128] {
            let stride = k + 3;
            let mut w: Vec<i8> = (0..4 * stride).map(|_| next()).collect();
            let mut v: Vec<i8> = (0..k).map(|_| next()).collect();
            if k == 128 {
                w.iter_mut().for_each(|x| *x = -128);
                v.iter_mut().for_each(|x| *x = -128);
            }
            let mut ve = vec![0u32; expanded_len(k)];
            expand(&v, &mut ve);
            for n in 0..=4 {
                let base = [7, -7, 1, 2];
                let mut acc = base;
                dot_rows(&w, stride, n, &ve, k, &mut acc);
                for r in 0..4 {
                    let dot: i32 = (0..k).map(|j| w[r * stride + j] as i32 * v[j] as i32).sum();
                    let want = if r < n { base[r] + dot } else { base[r] };
                    assert_eq!(acc[r], want, "k {k} n {n} row {r}");
                }
            }
        }
    }
}
