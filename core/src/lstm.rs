//! The typed LSTM layer of the embedded step: `LstmCell`'s parameters ([`crate::cell`]) with every
//! size in the type, so a firmware's `step` cannot fail. Training and any other shape run through
//! the run-time engine ([`crate::Model`]), which shares this layer's flat layout and its step.
//!
//! Gate order along the 4H rows is PyTorch's: i, f, g, o (equations in `cell/lstm.rs`).

use rand_core::Rng;

use crate::Real;
use crate::cell::{LstmCell, Weights};
use crate::init::fill_uniform;
use crate::kernels::Kernels;
use crate::params::{Params, TensorInfo};

/// An LSTM layer: its parameters in PyTorch's layout and names.
///
/// Sizes: `I` inputs, `H` hidden units; `T` is the float type (`f32` by default).
#[repr(C)]
#[derive(Clone, Debug, PartialEq)]
pub struct Lstm<const I: usize, const H: usize, T: Real = f32> {
    /// `weight_ih` [4H, I]: gates i, f, g, o.
    pub weight_ih: [[[T; I]; H]; 4],
    /// `weight_hh` [4H, H].
    pub weight_hh: [[[T; H]; H]; 4],
    /// `bias_ih` \[4H\].
    pub bias_ih: [[T; H]; 4],
    /// `bias_hh` \[4H\].
    pub bias_hh: [[T; H]; 4],
}

// SAFETY: repr(C), arrays of T only.
unsafe impl<const I: usize, const H: usize, T: Real> Params<T> for Lstm<I, H, T> {
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight_ih",
            offset: 0,
            shape: &[4 * H, I],
        },
        TensorInfo {
            name: "weight_hh",
            offset: 4 * H * I,
            shape: &[4 * H, H],
        },
        TensorInfo {
            name: "bias_ih",
            offset: 4 * H * (I + H),
            shape: &[4 * H],
        },
        TensorInfo {
            name: "bias_hh",
            offset: 4 * H * (I + H + 1),
            shape: &[4 * H],
        },
    ];
}

/// The recurrent state of one sequence: `h` and `c`. Owned by the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmState<const H: usize, T: Real = f32> {
    /// Hidden state `h` (also the layer's output).
    pub h: [T; H],
    /// Cell state `c`.
    pub c: [T; H],
}

impl<const H: usize, T: Real> LstmState<H, T> {
    /// The zero state PyTorch starts from.
    pub const fn zero() -> Self {
        Self {
            h: [T::ZERO; H],
            c: [T::ZERO; H],
        }
    }
}

impl<const H: usize, T: Real> Default for LstmState<H, T> {
    fn default() -> Self {
        Self::zero()
    }
}

impl<const I: usize, const H: usize, T: Real> Lstm<I, H, T> {
    /// PyTorch's default initialisation: every weight and bias from U(-1/√H, 1/√H), drawn in
    /// [`TENSORS`](Params::TENSORS) order. With `forget_bias = Some(v)`, the forget gate's
    /// `bias_ih` rows are set to `v` and its `bias_hh` rows to 0 (their sum is what counts).
    pub fn init(&mut self, rng: &mut impl Rng, forget_bias: Option<T>) {
        let k = T::ONE / T::from_f64(H as f64).sqrt();
        fill_uniform(self.as_flat_mut(), -k, k, rng);
        if let Some(v) = forget_bias {
            self.bias_ih[1] = [v; H];
            self.bias_hh[1] = [T::ZERO; H];
        }
    }

    /// One time step of one sequence (the embedded inference API): reads `x` and `state`, writes
    /// the new state. No allocation; all sizes are in the types, so nothing can fail.
    /// Uses about 2·H scalars of stack with the SIMD kernels, 11·H with the naive ones.
    #[inline]
    pub fn step(&self, x: &[T; I], state: &mut LstmState<H, T>) {
        self.step_with::<T::Kernels>(x, state)
    }

    /// [`step`](Self::step) with an explicit kernel set (e.g. [`Naive`](crate::Naive)): the
    /// LSTM cell's step, as the run-time engine runs it, from a copy of `h` on the stack.
    pub fn step_with<K: Kernels<T>>(&self, x: &[T; I], state: &mut LstmState<H, T>) {
        let w = self.weights();
        let h_prev = state.h;
        let (h, c) = (&mut state.h, &mut state.c);
        if K::LSTM_STEP_SCRATCH {
            let mut scratch = [[T::ZERO; H]; 10];
            LstmCell::step_from::<T, K>(&w, x, &h_prev, h, c, scratch.as_flattened_mut());
        } else {
            LstmCell::step_from::<T, K>(&w, x, &h_prev, h, c, &mut []);
        }
    }

    /// The layer as the cells see it.
    fn weights(&self) -> Weights<'_, T> {
        Weights {
            hs: H,
            is: I,
            w_ih: self.weight_ih.as_flattened().as_flattened(),
            w_hh: self.weight_hh.as_flattened().as_flattened(),
            b_ih: self.bias_ih.as_flattened(),
            b_hh: self.bias_hh.as_flattened(),
        }
    }
}
