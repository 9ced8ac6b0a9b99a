//! Fixed-point arithmetic of the integer step: rounding shifts, saturation, and the gate
//! nonlinearities by table.
//!
//! Pre-activations are Q4.11 (an `i32` holding a value of `i16` range: `a = q / 2^11`, so
//! [-16, 16)); gate values are Q0.15 (`1.0` = 32768, held in `i32`).
//!
//! ```text
//! σ(a):    |a| clamped to 16 - 2^-11; k = |a| >> 7 (steps of 1/16), r = |a| & 127;
//!          y = SIGMOID[k] + round((SIGMOID[k+1] - SIGMOID[k]) · r / 128);   σ(-a) = 1 - σ(a)
//! tanh(a): 2 σ(2a) - 1  (2a saturated to Q4.11 first)
//! ```
//! `SIGMOID[k] = round(32768 σ(k/16))`, k = 0..=256 (514 bytes of flash). Measured error against
//! the exact functions over every Q4.11 input (`tests` below): σ 6.6e-5, tanh 1.32e-4 (absolute;
//! linear interpolation at steps of 1/16 plus the Q0.15 roundings; asserted <= 7e-5 and 1.4e-4).

/// Fraction bits of a pre-activation (Q4.11).
pub const PRE_FRAC: u32 = 11;
/// Fraction bits of a gate value (Q0.15).
pub const GATE_FRAC: u32 = 15;
/// `1.0` in Q0.15.
pub const ONE: i32 = 1 << GATE_FRAC;

/// `round(x / 2^s)` (halves towards +∞) for `i32`, `s` in 1..=30; `x + 2^(s-1)` must not
/// overflow (callers keep `|x| < 2^30`).
#[inline(always)]
pub fn rshift_round(x: i32, s: u32) -> i32 {
    (x + (1i32 << (s - 1))) >> s
}

/// `x` clamped to `[lo, hi]`.
#[inline(always)]
pub fn sat(x: i32, lo: i32, hi: i32) -> i32 {
    x.clamp(lo, hi)
}

/// A value with `frac` fraction bits (`|v| < 2^31`) converted to Q4.11, rounded and saturated.
#[inline(always)]
pub fn to_pre(v: i32, frac: u32) -> i32 {
    let q = if frac > PRE_FRAC {
        rshift_round(v, frac - PRE_FRAC)
    } else {
        v.saturating_mul(1 << (PRE_FRAC - frac))
    };
    sat(q, i16::MIN as i32, i16::MAX as i32)
}

/// `round(32768 σ(k/16))` for k = 0..=256 (checked against `libm` by a test).
static SIGMOID: [u16; 257] = [
    16384, 16896, 17407, 17916, 18421, 18923, 19420, 19912, 20397, 20874, 21344, 21804, 22255,
    22696, 23127, 23547, 23955, 24352, 24737, 25110, 25471, 25819, 26155, 26479, 26790, 27090,
    27377, 27653, 27917, 28169, 28411, 28642, 28862, 29072, 29272, 29462, 29644, 29816, 29979,
    30135, 30282, 30422, 30555, 30680, 30799, 30912, 31018, 31119, 31214, 31304, 31389, 31469,
    31545, 31616, 31684, 31747, 31807, 31864, 31917, 31968, 32015, 32060, 32102, 32141, 32179,
    32214, 32247, 32278, 32307, 32335, 32361, 32385, 32408, 32430, 32450, 32469, 32487, 32504,
    32520, 32535, 32549, 32562, 32574, 32586, 32597, 32607, 32617, 32626, 32635, 32643, 32650,
    32657, 32664, 32670, 32676, 32682, 32687, 32692, 32696, 32701, 32705, 32709, 32712, 32716,
    32719, 32722, 32725, 32727, 32730, 32732, 32734, 32736, 32738, 32740, 32742, 32743, 32745,
    32746, 32747, 32749, 32750, 32751, 32752, 32753, 32754, 32755, 32756, 32756, 32757, 32758,
    32758, 32759, 32759, 32760, 32760, 32761, 32761, 32762, 32762, 32762, 32763, 32763, 32763,
    32764, 32764, 32764, 32764, 32765, 32765, 32765, 32765, 32765, 32766, 32766, 32766, 32766,
    32766, 32766, 32766, 32766, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
    32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768, 32768,
];

/// σ(a) in Q0.15 for `a` in Q4.11 (any `i32`; saturated to [-16, 16)).
#[inline]
pub fn sigmoid(a: i32) -> i32 {
    let m = a.unsigned_abs().min((16 << PRE_FRAC) - 1) as usize;
    let (k, r) = (m >> 7, (m & 127) as i32);
    // k <= 255: both reads are in bounds (the compiler sees the clamp; no panic path).
    let lo = SIGMOID[k] as i32;
    let hi = SIGMOID[k + 1] as i32;
    let y = lo + rshift_round((hi - lo) * r, 7);
    if a < 0 { ONE - y } else { y }
}

/// tanh(a) in Q0.15 for `a` in Q4.11: `2 σ(2a) - 1`.
#[inline]
pub fn tanh(a: i32) -> i32 {
    let a2 = sat(a.saturating_mul(2), i16::MIN as i32, i16::MAX as i32);
    2 * sigmoid(a2) - ONE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn table_is_the_rounded_sigmoid() {
        for (k, &v) in SIGMOID.iter().enumerate() {
            let want = (32768.0 * exact_sigmoid(k as f64 / 16.0)).round();
            assert_eq!(v as f64, want, "SIGMOID[{k}]");
        }
    }

    /// The documented bounds, over every Q4.11 input.
    #[test]
    fn error_bounds_over_every_input() {
        let (mut es, mut et) = (0.0f64, 0.0f64);
        for q in i16::MIN as i32..=i16::MAX as i32 {
            let a = q as f64 / 2048.0;
            es = es.max((sigmoid(q) as f64 / 32768.0 - exact_sigmoid(a)).abs());
            et = et.max((tanh(q) as f64 / 32768.0 - a.tanh()).abs());
            assert!((0..=ONE).contains(&sigmoid(q)));
            assert!((-ONE..=ONE).contains(&tanh(q)));
        }
        eprintln!("max error: sigmoid {es:e}, tanh {et:e}");
        assert!(es <= 7.0e-5, "sigmoid error {es}");
        assert!(et <= 1.4e-4, "tanh error {et}");
        // Monotone, and odd / symmetric as the exact functions.
        for q in i16::MIN as i32..i16::MAX as i32 {
            assert!(
                sigmoid(q) <= sigmoid(q + 1) && tanh(q) <= tanh(q + 1),
                "at {q}"
            );
        }
        for q in -32767..=32767 {
            assert_eq!(sigmoid(q) + sigmoid(-q), ONE, "at {q}");
            assert_eq!(tanh(q), -tanh(-q), "at {q}");
        }
        // Far inputs saturate.
        assert_eq!(sigmoid(i32::MAX), sigmoid(i16::MAX as i32));
        assert_eq!(tanh(i32::MIN), tanh(i16::MIN as i32));
    }

    #[test]
    fn rounding_shifts() {
        assert_eq!(rshift_round(5, 1), 3);
        assert_eq!(rshift_round(-5, 1), -2);
        assert_eq!(rshift_round(-6, 2), -1);
        assert_eq!(to_pre(1 << 15, 15), 1 << 11);
        assert_eq!(to_pre(1 << 8, 8), 1 << 11);
        assert_eq!(to_pre(i32::MAX, 0), i16::MAX as i32);
    }
}
