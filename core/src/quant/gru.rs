//! The GRU unit of the integer step (gate order r, z, n as PyTorch's `nn.GRU`).
//!
//! ```text
//! r   = σ(sat16(a_x[r] + a_h[r]))                               (Q0.15, fixed.rs)
//! z   = σ(sat16(a_x[z] + a_h[z]))
//! a_n = sat16(a_x[n] + round(r · a_h[n] / 2^15))               (Q4.11; |r · a_h[n]| <= 2^30)
//! n   = tanh(a_n)                                               (Q0.15)
//! c'  = sat16(round((2^15 - z) · n / 2^15) + round(z · c / 2^15))   (h' = (1 - z) n + z h, Q0.15)
//! h   = sat(round(c' / 2^8), -127, 127)                         (int8, scale 1/128)
//! ```
//! `a_h[n]` holds `W_hn h + b_hn` (B_hh), so `r` multiplies the bias too, as in PyTorch: this is
//! why the step keeps the x and h parts of each pre-activation apart. The GRU has no cell state;
//! its `c` slot carries the hidden state itself in Q0.15 (i16), the precise copy the update
//! `(1 - z) n + z h` reads, so a unit whose `z` is near 1 still moves by less than 1/128 per step.
//! The int8 `h` (what the matrices and the next layer read) is `c` rounded to 1/128. `c_frac` is
//! not used (always Q0.15).

use super::fixed::{GATE_FRAC, ONE, rshift_round, sat, sigmoid, tanh};
use super::{Cell, H_FRAC};

/// PyTorch's `nn.GRU` cell, three gates.
#[derive(Debug, Clone, Copy)]
pub struct Gru;

impl Cell for Gru {
    const GATES: usize = 3;
    #[inline(always)]
    fn unit(ax: [i32; 4], ah: [i32; 4], c: &mut i16, _c_frac: u32) -> i8 {
        let s16 = |v: i32| sat(v, i16::MIN as i32, i16::MAX as i32);
        let r = sigmoid(s16(ax[0] + ah[0]));
        let z = sigmoid(s16(ax[1] + ah[1]));
        // |r| <= 2^15, |a_h[n]| <= 2^15: |r · a_h[n]| <= 2^30, no i32 overflow.
        let n = tanh(s16(ax[2] + rshift_round(r * ah[2], GATE_FRAC)));
        // Each product <= 2^30 in magnitude; the two rounded terms are summed after the shifts.
        let hn = rshift_round((ONE - z) * n, GATE_FRAC) + rshift_round(z * *c as i32, GATE_FRAC);
        let hn = s16(hn);
        *c = hn as i16;
        sat(rshift_round(hn, GATE_FRAC - H_FRAC), -127, 127) as i8
    }
}
