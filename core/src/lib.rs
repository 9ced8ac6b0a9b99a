//! # tinyrnn
//!
//! Every recurrent model of PyTorch (`nn.LSTM`, `nn.GRU`, `nn.RNN` tanh or relu; any number of
//! layers; one or two directions) followed by a linear head, with hand-written forward and
//! backward passes (BPTT), SIMD kernels (`wide`, AVX-512 chosen at run time) beside naive scalar
//! twins, PyTorch's parameter layout and names, and no allocation: `#![no_std]`, no `alloc`.
//!
//! * [`cell`]: what a cell is ([`cell::Cell`]: gates, state, pointwise forward and backward, the
//!   batch-1 step), one file per cell; [`Spec`]: a model's shape and its tensor table
//!   (PyTorch's state_dict names, offsets, shapes).
//! * [`Model`]: a view over one flat parameter buffer of any [`Spec`]: `forward` over B
//!   sequences of T steps into a caller-owned [`Cache`], `backward` through time that
//!   accumulates into a gradient buffer and carries (dh, dc) across chunks (truncated BPTT over
//!   consecutive chunks is exact), `step` on one sample with caller-owned state.
//! * Embedded inference with sizes in the types: [`LstmModel`], [`RnnModel`] (`#[repr(C)]`
//!   structs of arrays, [`Params`]), whose `step` cannot fail; [`quant`]: int8 models.
//! * [`loss`]: MSE, softmax cross-entropy, BCE with logits, sigmoid outputs.
//! * [`optim`]: SGD (momentum), RMSProp, Adagrad, Adam, clipping by global norm.
//! * [`kernels`]: the [`Simd`] kernels and their [`Naive`] twins. On x86-64 CPUs with AVX-512F the
//!   SIMD matrix products and fused steps run 16 lanes wide, chosen at run time with the same
//!   bits as 8 lanes ([`kernels::lane_width`], [`kernels::allow_avx512`]).
//!
//! Every computation is generic over [`Real`] (`f32` or `f64`); `f64` runs the naive kernels and
//! is what the finite-difference gradient checks use.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

mod buf;
pub mod cell;
mod error;
pub mod init;
pub mod kernels;
mod layer;
mod linear;
pub mod loss;
mod lstm;
mod model;
pub mod optim;
mod params;
pub mod quant;
mod real;
mod rnn;
mod spec;
mod stack;

pub use cell::CellKind;
pub use error::Error;
pub use init::{SeededRng, rng};
pub use kernels::{Kernels, Naive, Simd};
pub use linear::Linear;
pub use lstm::{Lstm, LstmState};
pub use model::{LstmModel, RnnModel};
pub use optim::{Optimizer, clip_grad_norm, grad_norm};
pub use params::{Params, TensorInfo};
pub use real::Real;
pub use rnn::Rnn;
pub use spec::{Spec, Tensor, TensorName};
pub use stack::{Cache, Cached, Model, Outputs};
