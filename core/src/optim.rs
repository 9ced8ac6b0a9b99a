//! Optimizers and gradient clipping over flat buffers (`Params::as_flat`), with the update rules
//! of PyTorch's `torch.optim` (no weight decay). The optimizer's state is a caller-owned flat
//! buffer of [`Optimizer::state_len`] scalars, zero at the start, so it can be checkpointed as is.
//!
//! ```text
//! SGD:      b = μ b + g;  p -= lr b                       (b = g when μ = 0)
//! RMSProp:  v = α v + (1-α) g²;  p -= lr g / (√v + ε)
//! Adagrad:  s += g²;  p -= lr g / (√s + ε)
//! Adam:     m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²
//!           p -= lr (m / (1-β1^t)) / (√(v / (1-β2^t)) + ε)      t = 1, 2, ...
//! ```

use crate::Real;
use crate::error::{Error, check};

/// An optimizer and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer<T: Real = f32> {
    /// Stochastic gradient descent, optionally with (PyTorch-style) momentum.
    Sgd {
        /// Learning rate.
        lr: T,
        /// Momentum μ (0 for plain SGD).
        momentum: T,
    },
    /// RMSProp (PyTorch defaults: α = 0.99, ε = 1e-8).
    RmsProp {
        /// Learning rate.
        lr: T,
        /// Smoothing constant α.
        alpha: T,
        /// ε added to the denominator.
        eps: T,
    },
    /// Adagrad (PyTorch default ε = 1e-10).
    Adagrad {
        /// Learning rate.
        lr: T,
        /// ε added to the denominator.
        eps: T,
    },
    /// Adam (PyTorch defaults: β1 = 0.9, β2 = 0.999, ε = 1e-8).
    Adam {
        /// Learning rate.
        lr: T,
        /// β1.
        beta1: T,
        /// β2.
        beta2: T,
        /// ε added to the denominator.
        eps: T,
    },
}

impl<T: Real> Optimizer<T> {
    /// Plain SGD.
    pub fn sgd(lr: T) -> Self {
        Self::Sgd {
            lr,
            momentum: T::ZERO,
        }
    }
    /// RMSProp with PyTorch's defaults.
    pub fn rmsprop(lr: T) -> Self {
        Self::RmsProp {
            lr,
            alpha: T::from_f64(0.99),
            eps: T::from_f64(1e-8),
        }
    }
    /// Adagrad with PyTorch's default ε.
    pub fn adagrad(lr: T) -> Self {
        Self::Adagrad {
            lr,
            eps: T::from_f64(1e-10),
        }
    }
    /// Adam with PyTorch's defaults.
    pub fn adam(lr: T) -> Self {
        Self::Adam {
            lr,
            beta1: T::from_f64(0.9),
            beta2: T::from_f64(0.999),
            eps: T::from_f64(1e-8),
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> T {
        match *self {
            Self::Sgd { lr, .. }
            | Self::RmsProp { lr, .. }
            | Self::Adagrad { lr, .. }
            | Self::Adam { lr, .. } => lr,
        }
    }

    /// Sets the learning rate (for schedules).
    pub fn set_lr(&mut self, new: T) {
        match self {
            Self::Sgd { lr, .. }
            | Self::RmsProp { lr, .. }
            | Self::Adagrad { lr, .. }
            | Self::Adam { lr, .. } => *lr = new,
        }
    }

    /// Scalars of state for `n` parameters.
    pub fn state_len(&self, n: usize) -> usize {
        match *self {
            Self::Sgd { momentum, .. } if momentum == T::ZERO => 0,
            Self::Adam { .. } => 2 * n,
            _ => n,
        }
    }

    /// One update of `params` from `grads`. `step` counts updates from 1 (Adam's bias correction);
    /// `state` holds [`state_len`](Self::state_len) scalars, zeros before the first step.
    pub fn step(
        &self,
        step: u64,
        params: &mut [T],
        grads: &[T],
        state: &mut [T],
    ) -> Result<(), Error> {
        let n = params.len();
        check("grads", n, grads.len())?;
        check("optimizer state", self.state_len(n), state.len())?;
        match *self {
            Self::Sgd { lr, momentum } => {
                if state.is_empty() {
                    for (p, &g) in params.iter_mut().zip(grads) {
                        *p -= lr * g;
                    }
                } else {
                    for ((p, &g), b) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
                        *b = momentum * *b + g;
                        *p -= lr * *b;
                    }
                }
            }
            Self::RmsProp { lr, alpha, eps } => {
                for ((p, &g), v) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
                    *v = alpha * *v + (T::ONE - alpha) * g * g;
                    *p -= lr * g / (v.sqrt() + eps);
                }
            }
            Self::Adagrad { lr, eps } => {
                for ((p, &g), s) in params.iter_mut().zip(grads).zip(state.iter_mut()) {
                    *s += g * g;
                    *p -= lr * g / (s.sqrt() + eps);
                }
            }
            Self::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                // In f64 directly: a cast through i32 wrapped at 2^31 steps (c1, c2 = -inf, updates
                // stopped) and gave t = 0 at 2^32 (c1 = c2 = 0: infinite or NaN parameters).
                let t = step.max(1) as f64;
                let c1 = T::ONE - T::from_f64(libm::pow(beta1.to_f64(), t));
                let c2 = T::ONE - T::from_f64(libm::pow(beta2.to_f64(), t));
                let (m, v) = state.split_at_mut(n);
                for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
                    *m = beta1 * *m + (T::ONE - beta1) * g;
                    *v = beta2 * *v + (T::ONE - beta2) * g * g;
                    *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            }
        }
        Ok(())
    }
}

/// The global L2 norm of a flat gradient buffer (accumulated in `f64`). NaN if any entry is NaN.
pub fn grad_norm<T: Real>(grads: &[T]) -> T {
    T::from_f64(libm::sqrt(
        grads.iter().map(|g| g.to_f64() * g.to_f64()).sum::<f64>(),
    ))
}

/// Clips `grads` in place to global norm at most `max_norm`, as `torch.nn.utils.clip_grad_norm_`
/// does (scale by `max_norm / (norm + 1e-6)` when that is below 1). Returns the norm before
/// clipping; a non-finite norm leaves `grads` untouched so that the caller can report it.
pub fn clip_grad_norm<T: Real>(grads: &mut [T], max_norm: T) -> T {
    let norm = grad_norm(grads);
    if norm.is_finite() {
        let coef = max_norm / (norm + T::from_f64(1e-6));
        if coef < T::ONE {
            for g in grads.iter_mut() {
                *g *= coef;
            }
        }
    }
    norm
}
