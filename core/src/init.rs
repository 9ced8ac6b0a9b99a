//! Seeded initialisation. The generator is `rand_xoshiro`'s Xoshiro256++; [`rng`] builds one
//! from a `u64` seed so that runs are reproducible on every platform.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::Real;

/// The project's random number generator.
pub type SeededRng = Xoshiro256PlusPlus;

/// A generator seeded from `seed` (SplitMix64 expansion, as `rand` does).
pub fn rng(seed: u64) -> SeededRng {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// A uniform `f64` in `[0, 1)` with 53 random bits.
#[inline]
pub fn uniform01(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Fills `out` with independent draws from U(lo, hi), in order.
pub fn fill_uniform<T: Real>(out: &mut [T], lo: T, hi: T, rng: &mut impl Rng) {
    let (lo, hi) = (lo.to_f64(), hi.to_f64());
    for v in out {
        *v = T::from_f64(lo + (hi - lo) * uniform01(rng));
    }
}
