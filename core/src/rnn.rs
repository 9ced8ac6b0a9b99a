//! The typed tanh RNN layer of the embedded step (`nn.RNN(nonlinearity = "tanh")`): `TanhCell`'s
//! parameters ([`crate::cell`]) with every size in the type. Training and any other shape run
//! through the run-time engine ([`crate::Model`]), which shares this layout and this step.
//!
//! ```text
//! h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
//! ```

use rand_core::Rng;

use crate::Real;
use crate::cell::{Cell, TanhCell, Weights};
use crate::init::fill_uniform;
use crate::kernels::Kernels;
use crate::params::{Params, TensorInfo};

/// A tanh RNN layer: parameters in PyTorch's layout and names.
#[repr(C)]
#[derive(Clone, Debug, PartialEq)]
pub struct Rnn<const I: usize, const H: usize, T: Real = f32> {
    /// `weight_ih` [H, I].
    pub weight_ih: [[T; I]; H],
    /// `weight_hh` [H, H].
    pub weight_hh: [[T; H]; H],
    /// `bias_ih` \[H\].
    pub bias_ih: [T; H],
    /// `bias_hh` \[H\].
    pub bias_hh: [T; H],
}

// SAFETY: repr(C), arrays of T only.
unsafe impl<const I: usize, const H: usize, T: Real> Params<T> for Rnn<I, H, T> {
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight_ih",
            offset: 0,
            shape: &[H, I],
        },
        TensorInfo {
            name: "weight_hh",
            offset: H * I,
            shape: &[H, H],
        },
        TensorInfo {
            name: "bias_ih",
            offset: H * (I + H),
            shape: &[H],
        },
        TensorInfo {
            name: "bias_hh",
            offset: H * (I + H + 1),
            shape: &[H],
        },
    ];
}

impl<const I: usize, const H: usize, T: Real> Rnn<I, H, T> {
    /// PyTorch's default initialisation: everything from U(-1/√H, 1/√H), in table order.
    pub fn init(&mut self, rng: &mut impl Rng) {
        let k = T::ONE / T::from_f64(H as f64).sqrt();
        fill_uniform(self.as_flat_mut(), -k, k, rng);
    }

    /// One time step of one sequence: `h ← tanh(W_ih x + b_ih + W_hh h + b_hh)`. No allocation,
    /// nothing can fail.
    #[inline]
    pub fn step(&self, x: &[T; I], h: &mut [T; H]) {
        self.step_with::<T::Kernels>(x, h)
    }

    /// [`step`](Self::step) with an explicit kernel set: [`TanhCell::step`], the engine's step.
    pub fn step_with<K: Kernels<T>>(&self, x: &[T; I], h: &mut [T; H]) {
        let w = Weights {
            hs: H,
            is: I,
            w_ih: self.weight_ih.as_flattened(),
            w_hh: self.weight_hh.as_flattened(),
            b_ih: &self.bias_ih,
            b_hh: &self.bias_hh,
        };
        let mut pre = [T::ZERO; H];
        TanhCell::step::<T, K>(&w, x, h, &mut [], &mut pre);
    }
}
