//! Losses and output activations, each forward with its gradient.
//!
//! ```text
//! mse:            L = s · Σ (y - t)²                dy = 2 s (y - t)
//! softmax CE:     L = s · Σ_rows -log softmax(z)[k]  dz = s (softmax(z) - onehot(k))
//! BCE w/ logits:  L = s · Σ max(z,0) - z t + log(1 + e^-|z|)   dz = s (σ(z) - t)
//! sigmoid:        y = σ(z)                           dz += dy · y (1 - y)
//! ```
//! `s` is 1 for [`Reduction::Sum`], 1/N for [`Reduction::Mean`] (N = elements for MSE and
//! BCE, rows for cross-entropy, as in PyTorch) and 1/n for [`Reduction::MeanOver`]`(n)` (n at
//! least N: an error otherwise). The mean of nothing is 0 (no terms, nothing divided by 0), not
//! PyTorch's NaN: an empty shard adds nothing to its batch. Loss gradients are *written* (they
//! start the backward chain); the sigmoid's backward accumulates, like every layer.

use crate::Real;
use crate::error::{Error, check};

/// How per-element losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Average (PyTorch's default).
    Mean,
    /// Sum.
    Sum,
    /// Sum divided by the given count: the mean over a whole batch of which this call sees a
    /// part (data-parallel shards).
    MeanOver(usize),
}

impl Reduction {
    /// The factor `s` for a call over `n` terms. An empty mean (`n = 0`, or `MeanOver(0)` of
    /// nothing) is the sum of no terms: the loss is 0 and `s` is 1, never 1/0. `MeanOver(total)`
    /// must count at least the call's own `n` terms (a shard is part of its batch).
    fn scale<T: Real>(self, n: usize) -> Result<T, Error> {
        match self {
            Reduction::Mean if n > 0 => Ok(T::ONE / T::from_f64(n as f64)),
            Reduction::MeanOver(total) if total < n => Err(Error::Invalid {
                what: "MeanOver total: smaller than the terms of this call",
            }),
            Reduction::MeanOver(total) if total > 0 => Ok(T::ONE / T::from_f64(total as f64)),
            _ => Ok(T::ONE),
        }
    }
}

/// Mean squared error between `y` and `target` (same length); writes dL/dy into `dy`.
pub fn mse<T: Real>(y: &[T], target: &[T], dy: &mut [T], reduction: Reduction) -> Result<T, Error> {
    check("target", y.len(), target.len())?;
    check("dy", y.len(), dy.len())?;
    let s: T = reduction.scale(y.len())?;
    let two = T::ONE + T::ONE;
    let mut loss = T::ZERO;
    for ((&y, &t), dy) in y.iter().zip(target).zip(dy.iter_mut()) {
        let e = y - t;
        loss += e * e;
        *dy = two * s * e;
    }
    Ok(loss * s)
}

/// Softmax cross-entropy of `logits` (N, C) against class indices `targets` (N); writes dL/dz
/// into `dlogits` (N, C). Numerically stable (log-sum-exp with the row maximum subtracted).
pub fn softmax_cross_entropy<const C: usize, T: Real>(
    logits: &[[T; C]],
    targets: &[usize],
    dlogits: &mut [[T; C]],
    reduction: Reduction,
) -> Result<T, Error> {
    check("targets", logits.len(), targets.len())?;
    check("dlogits", logits.len(), dlogits.len())?;
    if let Some(&index) = targets.iter().find(|&&k| k >= C) {
        return Err(Error::Label { index, classes: C });
    }
    let s: T = reduction.scale(logits.len())?;
    let mut loss = T::ZERO;
    for ((z, &k), dz) in logits.iter().zip(targets).zip(dlogits.iter_mut()) {
        let m = z.iter().fold(z[0], |m, &v| m.max(v));
        let mut sum = T::ZERO;
        for (d, &v) in dz.iter_mut().zip(z) {
            *d = (v - m).exp();
            sum += *d;
        }
        loss += sum.ln() + m - z[k];
        for d in dz.iter_mut() {
            *d = *d / sum * s;
        }
        dz[k] -= s;
    }
    Ok(loss * s)
}

/// Row-wise softmax probabilities of `logits` (N, C) into `probs` (N, C).
pub fn softmax<const C: usize, T: Real>(
    logits: &[[T; C]],
    probs: &mut [[T; C]],
) -> Result<(), Error> {
    check("probs", logits.len(), probs.len())?;
    for (z, p) in logits.iter().zip(probs.iter_mut()) {
        let m = z.iter().fold(z[0], |m, &v| m.max(v));
        let mut sum = T::ZERO;
        for (p, &v) in p.iter_mut().zip(z) {
            *p = (v - m).exp();
            sum += *p;
        }
        for p in p.iter_mut() {
            *p /= sum;
        }
    }
    Ok(())
}

/// Binary cross-entropy on logits `z` against targets in [0, 1]; writes dL/dz into `dz`. Stable
/// for any `z`.
pub fn bce_with_logits<T: Real>(
    z: &[T],
    target: &[T],
    dz: &mut [T],
    reduction: Reduction,
) -> Result<T, Error> {
    check("target", z.len(), target.len())?;
    check("dz", z.len(), dz.len())?;
    let s: T = reduction.scale(z.len())?;
    let mut loss = T::ZERO;
    for ((&z, &t), dz) in z.iter().zip(target).zip(dz.iter_mut()) {
        loss += z.max(T::ZERO) - z * t + (T::ONE + (-z.abs()).exp()).ln();
        *dz = s * (z.sigmoid() - t);
    }
    Ok(loss * s)
}

/// Sigmoid output activation: `y = σ(z)`.
pub fn sigmoid_forward<T: Real>(z: &[T], y: &mut [T]) -> Result<(), Error> {
    check("y", z.len(), y.len())?;
    for (y, &z) in y.iter_mut().zip(z) {
        *y = z.sigmoid();
    }
    Ok(())
}

/// Sigmoid backward from its output `y`: `dz += dy · y (1 - y)`.
pub fn sigmoid_backward<T: Real>(y: &[T], dy: &[T], dz: &mut [T]) -> Result<(), Error> {
    check("dy", y.len(), dy.len())?;
    check("dz", y.len(), dz.len())?;
    for ((dz, &y), &dy) in dz.iter_mut().zip(y).zip(dy) {
        *dz += dy * y * (T::ONE - y);
    }
    Ok(())
}
