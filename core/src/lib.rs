//! # tinyrnn
//!
//! LSTM and tanh-RNN layers with hand-written forward and backward passes (BPTT), SIMD kernels
//! (`wide`) beside naive scalar twins, PyTorch's parameter layout and names, and no allocation:
//! `#![no_std]`, no `alloc`.
//!
//! * Layers: [`Lstm`], [`Rnn`], [`Linear`]; whole models [`LstmModel`], [`RnnModel`]. Each is a
//!   `#[repr(C)]` struct of arrays, i.e. one flat parameter buffer ([`Params`]) with a table of
//!   (name, offset, shape); a gradient buffer is a second value of the same type.
//! * Embedded inference: `step` on one sample, state owned by the caller, sizes in the types,
//!   nothing that can fail.
//! * Training: `forward` over B sequences of T steps into a caller-owned cache
//!   ([`LstmCache`], [`RnnCache`]), `backward` through time that accumulates into the gradient
//!   buffer and carries (dh, dc) across chunks, so truncated BPTT over consecutive chunks is exact.
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
pub use lstm::{Lstm, LstmCache, LstmState};
pub use model::{LstmModel, RnnModel};
pub use optim::{Optimizer, clip_grad_norm, grad_norm};
pub use params::{Params, TensorInfo};
pub use real::Real;
pub use rnn::{Rnn, RnnCache};
pub use spec::{Spec, Tensor, TensorName};
pub use stack::{Cache, Cached, Model, Outputs};
