//! The activations of the SIMD kernels, generic over the lane width ([`Math`]: the same
//! operations per lane for 8 and 16 lanes, so the same bits): a branch-free `exp` (Cephes'
//! `expf`), the logistic sigmoid built on it, and tanh as Eigen's rational approximation, each
//! with its stated maximum error against the exact value (checked in `tests/activations.rs`).

use super::super::lanes::Math;

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
pub(super) fn sigmoid<V: Math>(x: V) -> V {
    let x = x.clamp(-87.0, 87.0);
    V::splat(1.0) / (V::splat(1.0) + exp_unchecked(-x))
}

/// tanh: Eigen's odd/even 13/6 rational approximation on [-7.9053, 7.9053] (clamped outside,
/// where tanh rounds to ±1 within the bound). Maximum error against the exact value (dense grid
/// in `tests/activations.rs`): 4e-7 absolute and relative (measured 3.2e-7, about 6 ulp near
/// ±1); odd; NaN in, NaN out.
#[inline(always)]
pub(super) fn tanh<V: Math>(x: V) -> V {
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
