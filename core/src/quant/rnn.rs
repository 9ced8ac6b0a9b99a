//! The tanh-RNN unit of the integer step: `h = tanh(a_x + a_h)` (Q4.11 in, Q0.15 tanh from
//! fixed.rs, int8 out at scale 1/128). No cell state.

use super::fixed::{GATE_FRAC, rshift_round, sat, tanh};
use super::{Cell, H_FRAC};

/// PyTorch's `nn.RNN(nonlinearity='tanh')` cell, one gate.
#[derive(Debug, Clone, Copy)]
pub struct Rnn;

impl Cell for Rnn {
    const GATES: usize = 1;
    #[inline(always)]
    fn unit(ax: [i32; 4], ah: [i32; 4], _c: &mut i16, _c_frac: u32) -> i8 {
        let t = tanh(sat(ax[0] + ah[0], i16::MIN as i32, i16::MAX as i32));
        sat(rshift_round(t, GATE_FRAC - H_FRAC), -127, 127) as i8
    }
}
