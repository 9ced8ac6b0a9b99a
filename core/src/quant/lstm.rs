//! The LSTM unit of the integer step (gate order i, f, g, o as PyTorch's).
//!
//! ```text
//! a = a_x + a_h                          (Q4.11 each, saturated; see mod.rs)
//! i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)               (Q0.15, fixed.rs)
//! c' = round(f·c / 2^15) + round(i·g / 2^(30-F))                 (F = c_frac; c, c' i16 QF)
//! h  = round(o · tanh(c') / 2^23)                                 (int8, scale 1/128)
//! ```

use super::fixed::{GATE_FRAC, rshift_round, sat, sigmoid, tanh, to_pre};
use super::{Cell, H_FRAC};

/// PyTorch's `nn.LSTM` cell, four gates.
#[derive(Debug, Clone, Copy)]
pub struct Lstm;

impl Cell for Lstm {
    const GATES: usize = 4;
    #[inline(always)]
    fn unit(ax: [i32; 4], ah: [i32; 4], c: &mut i16, c_frac: u32) -> i8 {
        let a = |g: usize| sat(ax[g] + ah[g], i16::MIN as i32, i16::MAX as i32);
        let (i, f, g, o) = (sigmoid(a(0)), sigmoid(a(1)), tanh(a(2)), sigmoid(a(3)));
        // |f·c| <= 2^15 · 2^15 and |i·g| <= 2^30: no i32 overflow.
        let cn =
            rshift_round(f * *c as i32, GATE_FRAC) + rshift_round(i * g, 2 * GATE_FRAC - c_frac);
        let cn = sat(cn, i16::MIN as i32, i16::MAX as i32);
        *c = cn as i16;
        let tc = tanh(to_pre(cn, c_frac));
        sat(rshift_round(o * tc, 2 * GATE_FRAC - H_FRAC), -127, 127) as i8
    }
}
