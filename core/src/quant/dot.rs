//! Integer dot products of the int8 step: `acc[r] = Σ_k w[r][k] · v[k]` for a block of up to 4
//! rows of int8 weights against one int8 vector, accumulated in `i32`.
//!
//! Two implementations of the same sum, chosen by target:
//! * portable: one multiply-add per element (the reference, and the code on Cortex-M0 and x86);
//! * DSP (`cfg(all(target_arch = "arm", target_feature = "dsp"))`, Cortex-M4/M7/M33): four
//!   elements per 32-bit load, split into two pairs of sign-extended halfwords by `SXTB16`
//!   (bytes 0, 2) and `SXTB16 ... ROR #8` (bytes 1, 3) for the weights and the vector alike, so
//!   that `SMLAD` multiplies matching elements and adds both products to the accumulator.
//!
//! Integer addition is exact and associative, so both give the same bits whatever the order, as
//! long as no sum leaves `i32`: |w|, |v| <= 127 (the quantizer's range) and k < 2^31 / 127² =
//! 133,144 ([`MAX_COLS`], checked when a model is accepted).

/// Longest row for which no partial sum can overflow `i32` (|w|, |v| <= 127; the int8 minimum
/// -128 is never produced by the quantizer but is accepted: 128² · MAX_COLS < 2^31 too).
pub const MAX_COLS: usize = 131_071;

/// `acc[r] += Σ_k rows[r][k] · v[k]` for `r < n` (n <= 4); rows are `k` long, `stride` apart,
/// starting at `w`. `acc[r]` for `r >= n` is left as it is.
///
/// Safe: returns without reading if the slices are too short (callers check shapes first).
#[inline]
pub fn dot_rows(w: &[i8], stride: usize, n: usize, v: &[i8], acc: &mut [i32; 4]) {
    let k = v.len();
    let n = n.min(4);
    if n == 0 || k == 0 || w.len() < (n - 1) * stride + k {
        return;
    }
    #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
    if n == 4 {
        // SAFETY: the four rows' k elements are inside `w` (checked above).
        unsafe { dsp::dot4(w.as_ptr(), stride, v, acc) };
        return;
    }
    dot_rows_portable(w, stride, n, v, acc);
}

/// The portable twin of [`dot_rows`]: one multiply-add per element.
#[inline]
pub fn dot_rows_portable(w: &[i8], stride: usize, n: usize, v: &[i8], acc: &mut [i32; 4]) {
    let k = v.len();
    for (r, a) in acc.iter_mut().enumerate().take(n) {
        if let Some(row) = w.get(r * stride..r * stride + k) {
            *a += row
                .iter()
                .zip(v)
                .map(|(&w, &x)| w as i32 * x as i32)
                .sum::<i32>();
        }
    }
}

#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
mod dsp {
    use core::arch::asm;

    /// `SXTB16`: bytes 0 and 2 of `x`, sign-extended into the two halfwords.
    #[inline(always)]
    fn sxtb16(x: u32) -> u32 {
        let r: u32;
        // SAFETY: a register-only instruction.
        unsafe {
            asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }

    /// `SXTB16 ... ROR #8`: bytes 1 and 3 of `x`, sign-extended into the two halfwords.
    #[inline(always)]
    fn sxtb16_ror8(x: u32) -> u32 {
        let r: u32;
        // SAFETY: a register-only instruction.
        unsafe {
            asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        r
    }

    /// `SMLAD`: `acc + a.lo · b.lo + a.hi · b.hi` (signed halfwords).
    #[inline(always)]
    fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: a register-only instruction (it sets the Q flag on overflow, which nothing reads).
        unsafe {
            asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b, c = in(reg) acc, options(pure, nomem, nostack))
        };
        r
    }

    /// Four little-endian bytes at `p` as one word (an unaligned `LDR`: allowed on ARMv7-M).
    ///
    /// # Safety
    /// `p .. p + 4` readable.
    #[inline(always)]
    unsafe fn word(p: *const i8) -> u32 {
        // SAFETY: by the caller's contract.
        unsafe { core::ptr::read_unaligned(p.cast::<u32>()) }
    }

    /// `acc[r] += Σ_k w[r·stride + k] · v[k]` for r < 4, four elements per step.
    ///
    /// # Safety
    /// The four rows' `v.len()` elements from `w` readable.
    #[inline(always)]
    pub(super) unsafe fn dot4(w: *const i8, stride: usize, v: &[i8], acc: &mut [i32; 4]) {
        let k = v.len();
        let kv = k - k % 4;
        let x = v.as_ptr();
        let [mut a0, mut a1, mut a2, mut a3] = *acc;
        // SAFETY (whole block): offsets p + 4 <= kv <= k within each row and within `v`.
        unsafe {
            let (r0, r1, r2, r3) = (w, w.add(stride), w.add(2 * stride), w.add(3 * stride));
            let mut p = 0;
            while p < kv {
                let xv = word(x.add(p));
                let (xa, xb) = (sxtb16(xv), sxtb16_ror8(xv));
                let w0 = word(r0.add(p));
                a0 = smlad(sxtb16(w0), xa, a0);
                a0 = smlad(sxtb16_ror8(w0), xb, a0);
                let w1 = word(r1.add(p));
                a1 = smlad(sxtb16(w1), xa, a1);
                a1 = smlad(sxtb16_ror8(w1), xb, a1);
                let w2 = word(r2.add(p));
                a2 = smlad(sxtb16(w2), xa, a2);
                a2 = smlad(sxtb16_ror8(w2), xb, a2);
                let w3 = word(r3.add(p));
                a3 = smlad(sxtb16(w3), xa, a3);
                a3 = smlad(sxtb16_ror8(w3), xb, a3);
                p += 4;
            }
            while p < k {
                let xv = *x.add(p) as i32;
                a0 += *r0.add(p) as i32 * xv;
                a1 += *r1.add(p) as i32 * xv;
                a2 += *r2.add(p) as i32 * xv;
                a3 += *r3.add(p) as i32 * xv;
                p += 1;
            }
        }
        *acc = [a0, a1, a2, a3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatching kernel against a plain sum, for every row count, lengths around the
    /// 4-element steps, and the extreme values.
    #[test]
    fn dot_rows_matches_a_plain_sum() {
        let mut s = 12345u32;
        let mut next = move || {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (s >> 16) as i8
        };
        for k in [1usize, 2, 3, 4, 5, 7, 8, 28, 31, 128] {
            let stride = k + 3;
            let mut w: Vec<i8> = (0..4 * stride).map(|_| next()).collect();
            let mut v: Vec<i8> = (0..k).map(|_| next()).collect();
            if k == 128 {
                w.iter_mut().for_each(|x| *x = -128);
                v.iter_mut().for_each(|x| *x = -128);
            }
            for n in 0..=4 {
                let mut acc = [7, -7, 1, 2];
                dot_rows(&w, stride, n, &v, &mut acc);
                for r in 0..4 {
                    let base = [7, -7, 1, 2][r];
                    let want = if r < n {
                        base + (0..k)
                            .map(|j| w[r * stride + j] as i32 * v[j] as i32)
                            .sum::<i32>()
                    } else {
                        base
                    };
                    assert_eq!(acc[r], want, "k {k} n {n} row {r}");
                }
            }
        }
    }
}
