//! The one training loop every task uses: zero the gradients, let the task run forward and
//! backward (it knows its data and loss), refuse a non-finite loss or gradient, clip by global
//! norm, take an optimizer step. Plus the progress bar and the optimizer flags.

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tinyrnn::{Optimizer, Params, clip_grad_norm};

use crate::net::boxed_zeroed;

/// The optimizers of the core, by name (for `--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Plain SGD (momentum 0.9 with `--momentum`).
    Sgd,
    /// RMSProp (α = 0.99).
    Rmsprop,
    /// Adagrad.
    Adagrad,
    /// Adam (β = 0.9, 0.999).
    Adam,
}

impl OptimizerKind {
    /// The core's optimizer with PyTorch's default hyper-parameters and this learning rate.
    pub fn build(self, lr: f32, momentum: f32) -> Optimizer {
        match self {
            OptimizerKind::Sgd => Optimizer::Sgd { lr, momentum },
            OptimizerKind::Rmsprop => Optimizer::rmsprop(lr),
            OptimizerKind::Adagrad => Optimizer::adagrad(lr),
            OptimizerKind::Adam => Optimizer::adam(lr),
        }
    }
}

/// A model with its gradient buffer and optimizer state.
pub struct Trainer<N: Params<f32>> {
    /// The model being trained.
    pub model: Box<N>,
    grad: Box<N>,
    opt: Optimizer,
    opt_state: Vec<f32>,
    /// Updates taken so far.
    pub step: u64,
    /// Maximum global gradient norm (`None`: no clipping).
    pub clip: Option<f32>,
}

impl<N: Params<f32>> Trainer<N> {
    /// A trainer for `model`.
    pub fn new(model: Box<N>, opt: Optimizer, clip: Option<f32>) -> Self {
        let n = N::LEN;
        Self {
            model,
            grad: boxed_zeroed(),
            opt,
            opt_state: vec![0.0; opt.state_len(n)],
            step: 0,
            clip,
        }
    }

    /// One update. `f(model, grad)` runs forward and backward over a batch, accumulating into
    /// `grad` (zeroed before the call), and returns the batch's loss.
    pub fn update(&mut self, f: impl FnOnce(&N, &mut N) -> Result<f32>) -> Result<f32> {
        self.grad.fill_zero();
        let loss = f(&self.model, &mut self.grad)?;
        if !loss.is_finite() {
            bail!(
                "loss is {loss} at update {}: training diverged (try a lower --lr)",
                self.step + 1
            );
        }
        let grads = self.grad.as_flat_mut();
        let norm = match self.clip {
            Some(max) => clip_grad_norm(grads, max),
            None => tinyrnn::grad_norm(grads),
        };
        if !norm.is_finite() {
            bail!(
                "gradient norm is {norm} at update {}: training diverged (try a lower --lr)",
                self.step + 1
            );
        }
        self.step += 1;
        self.opt.step(
            self.step,
            self.model.as_flat_mut(),
            self.grad.as_flat(),
            &mut self.opt_state,
        )?;
        Ok(loss)
    }
}

/// A progress bar on stderr with loss and ETA (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, ETA {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

/// Exponential moving average, for a readable loss on the progress bar.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ema(Option<f64>);

impl Ema {
    /// Adds a value (weight 0.05) and returns the average.
    pub fn add(&mut self, v: f64) -> f64 {
        let a = match self.0 {
            Some(a) => 0.95 * a + 0.05 * v,
            None => v,
        };
        self.0 = Some(a);
        a
    }
}
