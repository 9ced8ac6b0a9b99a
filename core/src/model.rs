//! Whole models: a recurrent layer and the linear head that all time steps share, as one flat
//! buffer whose tensor names are exactly those of a PyTorch module with attributes `lstm` (or
//! `rnn`) and `head`, e.g. `lstm.weight_ih_l0`, `head.bias`.

use rand_core::Rng;

use crate::Real;
use crate::linear::Linear;
use crate::lstm::{Lstm, LstmState};
use crate::params::{Params, TensorInfo};
use crate::rnn::Rnn;

/// LSTM(I → H) followed by Linear(H → O).
#[repr(C)]
#[derive(Clone, Debug, PartialEq)]
pub struct LstmModel<const I: usize, const H: usize, const O: usize, T: Real = f32> {
    /// The recurrent layer (`lstm.*_l0`).
    pub lstm: Lstm<I, H, T>,
    /// The output head (`head.*`).
    pub head: Linear<H, O, T>,
}

// SAFETY: repr(C) of two Params<T> types, each arrays of T only.
unsafe impl<const I: usize, const H: usize, const O: usize, T: Real> Params<T>
    for LstmModel<I, H, O, T>
{
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "lstm.weight_ih_l0",
            offset: 0,
            shape: &[4 * H, I],
        },
        TensorInfo {
            name: "lstm.weight_hh_l0",
            offset: 4 * H * I,
            shape: &[4 * H, H],
        },
        TensorInfo {
            name: "lstm.bias_ih_l0",
            offset: 4 * H * (I + H),
            shape: &[4 * H],
        },
        TensorInfo {
            name: "lstm.bias_hh_l0",
            offset: 4 * H * (I + H + 1),
            shape: &[4 * H],
        },
        TensorInfo {
            name: "head.weight",
            offset: 4 * H * (I + H + 2),
            shape: &[O, H],
        },
        TensorInfo {
            name: "head.bias",
            offset: 4 * H * (I + H + 2) + O * H,
            shape: &[O],
        },
    ];
}

impl<const I: usize, const H: usize, const O: usize, T: Real> LstmModel<I, H, O, T> {
    /// PyTorch's default initialisation of both layers (LSTM first), with an optional forget-gate
    /// bias (see [`Lstm::init`]).
    pub fn init(&mut self, rng: &mut impl Rng, forget_bias: Option<T>) {
        self.lstm.init(rng, forget_bias);
        self.head.init(rng);
    }

    /// One inference step: advances `state` by `x` and returns the head's output. No allocation,
    /// nothing can fail.
    #[inline]
    pub fn step(&self, x: &[T; I], state: &mut LstmState<H, T>) -> [T; O] {
        self.lstm.step(x, state);
        self.head.step(&state.h)
    }
}

/// tanh RNN(I → H) followed by Linear(H → O).
#[repr(C)]
#[derive(Clone, Debug, PartialEq)]
pub struct RnnModel<const I: usize, const H: usize, const O: usize, T: Real = f32> {
    /// The recurrent layer (`rnn.*_l0`).
    pub rnn: Rnn<I, H, T>,
    /// The output head (`head.*`).
    pub head: Linear<H, O, T>,
}

// SAFETY: repr(C) of two Params<T> types, each arrays of T only.
unsafe impl<const I: usize, const H: usize, const O: usize, T: Real> Params<T>
    for RnnModel<I, H, O, T>
{
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "rnn.weight_ih_l0",
            offset: 0,
            shape: &[H, I],
        },
        TensorInfo {
            name: "rnn.weight_hh_l0",
            offset: H * I,
            shape: &[H, H],
        },
        TensorInfo {
            name: "rnn.bias_ih_l0",
            offset: H * (I + H),
            shape: &[H],
        },
        TensorInfo {
            name: "rnn.bias_hh_l0",
            offset: H * (I + H + 1),
            shape: &[H],
        },
        TensorInfo {
            name: "head.weight",
            offset: H * (I + H + 2),
            shape: &[O, H],
        },
        TensorInfo {
            name: "head.bias",
            offset: H * (I + H + 2) + O * H,
            shape: &[O],
        },
    ];
}

impl<const I: usize, const H: usize, const O: usize, T: Real> RnnModel<I, H, O, T> {
    /// PyTorch's default initialisation of both layers (RNN first).
    pub fn init(&mut self, rng: &mut impl Rng) {
        self.rnn.init(rng);
        self.head.init(rng);
    }

    /// One inference step: advances `h` by `x` and returns the head's output.
    #[inline]
    pub fn step(&self, x: &[T; I], h: &mut [T; H]) -> [T; O] {
        self.rnn.step(x, h);
        self.head.step(h)
    }
}
