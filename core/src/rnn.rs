//! The Elman tanh RNN cell, PyTorch's `nn.RNN(nonlinearity = "tanh")` (one layer).
//!
//! ```text
//! a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
//! h_t = tanh(a_t)
//! ```
//! Backward, with `dh = dL/dh_t` (output at step t plus step t+1):
//! ```text
//! da = dh ⊙ (1 - h_t²)      dh_{t-1} = W_hhᵀ da      dx_t = W_ihᵀ da
//! dW_ih += da x_tᵀ   dW_hh += da h_{t-1}ᵀ   db_ih += da   db_hh += da
//! ```

use rand_core::Rng;

use crate::Real;
use crate::buf::{rows, take};
use crate::error::{Error, check};
use crate::init::fill_uniform;
use crate::kernels::{Kernels, pack_rnn, pack_rnn_ih, rnn_ih_packed_len, rnn_packed_len};
use crate::params::{Params, TensorInfo};

/// A tanh RNN layer: parameters in PyTorch's layout and names. A gradient buffer is a second `Rnn`.
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

/// What the RNN's forward pass keeps for backward, carved out of one caller-owned buffer of
/// [`RnnCache::len`] scalars. Time-major: row `t * batch + b`. Readable from outside: the
/// pre-activations and hidden states of every step are here.
#[derive(Debug)]
pub struct RnnCache<'a, const H: usize, T: Real = f32> {
    steps: usize,
    batch: usize,
    pre: &'a mut [[T; H]],  // (T, B, H) a_t
    h: &'a mut [[T; H]],    // (T, B, H) h_t = tanh(a_t)
    h0: &'a mut [[T; H]],   // (B, H)
    dpre: &'a mut [[T; H]], // (T, B, H)
    packed: &'a mut [T],    // W_hh and the biases packed for the fused step (scratch)
}

impl<'a, const H: usize, T: Real> RnnCache<'a, H, T> {
    /// Scalars needed for `steps` steps of `batch` sequences.
    pub const fn len(steps: usize, batch: usize) -> usize {
        steps * batch * 3 * H + batch * H + rnn_packed_len(H)
    }

    /// Carves a cache out of `buf`, which must hold exactly [`RnnCache::len`] scalars.
    pub fn new(buf: &'a mut [T], steps: usize, batch: usize) -> Result<Self, Error> {
        check("rnn cache buffer", Self::len(steps, batch), buf.len())?;
        let n = steps * batch;
        let mut b = buf;
        Ok(Self {
            steps,
            batch,
            pre: rows(&mut b, n),
            h: rows(&mut b, n),
            h0: rows(&mut b, batch),
            dpre: rows(&mut b, n),
            packed: take(&mut b, rnn_packed_len(H)),
        })
    }

    /// Number of time steps the cache holds.
    pub fn steps(&self) -> usize {
        self.steps
    }
    /// Number of sequences in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Pre-activations `a_t` = `W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`, (T, B, H).
    pub fn pre(&self) -> &[[T; H]] {
        self.pre
    }
    /// Hidden states `h_t`, (T, B, H).
    pub fn h(&self) -> &[[T; H]] {
        self.h
    }
    /// The state each sequence started from, (B, H).
    pub fn h0(&self) -> &[[T; H]] {
        self.h0
    }
    /// dL/da_t after `backward`, (T, B, H) (`forward` uses this region as scratch).
    pub fn dpre(&self) -> &[[T; H]] {
        self.dpre
    }
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

    /// [`step`](Self::step) with an explicit kernel set.
    pub fn step_with<K: Kernels<T>>(&self, x: &[T; I], h: &mut [T; H]) {
        let mut pre = [T::ZERO; H];
        for ((p, &bi), &bh) in pre.iter_mut().zip(&self.bias_ih).zip(&self.bias_hh) {
            *p = bi + bh;
        }
        K::gemm_nt(1, H, I, x, self.weight_ih.as_flattened(), &mut pre);
        K::gemm_nt(1, H, H, h, self.weight_hh.as_flattened(), &mut pre);
        K::tanh_pointwise(&pre, h);
    }

    /// Forward over a batch of sequences. `x`: (T, B, I); `h`: (B, H), initial state on entry and
    /// final state on return; outputs are `cache.h()`.
    pub fn forward(
        &self,
        x: &[[T; I]],
        h: &mut [[T; H]],
        cache: &mut RnnCache<'_, H, T>,
    ) -> Result<(), Error> {
        self.forward_with::<T::Kernels>(x, h, cache)
    }

    /// [`forward`](Self::forward) with an explicit kernel set.
    pub fn forward_with<K: Kernels<T>>(
        &self,
        x: &[[T; I]],
        h: &mut [[T; H]],
        cache: &mut RnnCache<'_, H, T>,
    ) -> Result<(), Error> {
        let (steps, batch) = (cache.steps, cache.batch);
        check("x", steps * batch, x.len())?;
        check("h", batch, h.len())?;
        cache.h0.copy_from_slice(h);
        let whh = self.weight_hh.as_flattened();
        pack_rnn(H, whh, &self.bias_ih, &self.bias_hh, cache.packed);
        let wih = self.weight_ih.as_flattened();
        // W_ih packed once for all steps, in the dpre region (only backward writes dpre, and it
        // sets every row) when that is large enough (T·B >= I).
        let ih_len = rnn_ih_packed_len(H, I);
        let scratch = cache.dpre.as_flattened_mut();
        let packed_ih: &[T] = if scratch.len() >= ih_len && steps > 0 {
            pack_rnn_ih(H, I, wih, &mut scratch[..ih_len]);
            &scratch[..ih_len]
        } else {
            &[]
        };
        for t in 0..steps {
            let now = t * batch..(t + 1) * batch;
            let (h_done, h_now) = cache.h.split_at_mut(t * batch);
            let h_prev: &[[T; H]] = if t == 0 {
                cache.h0
            } else {
                &h_done[(t - 1) * batch..]
            };
            K::rnn_forward_step(
                batch,
                H,
                I,
                x[now.clone()].as_flattened(),
                wih,
                whh,
                &self.bias_ih,
                &self.bias_hh,
                cache.packed,
                packed_ih,
                h_prev.as_flattened(),
                cache.pre[now].as_flattened_mut(),
                h_now[..batch].as_flattened_mut(),
            );
        }
        if steps > 0 {
            h.copy_from_slice(&cache.h[(steps - 1) * batch..]);
        }
        Ok(())
    }

    /// Backward through time, *accumulating* into `grad`. `dh`: (T, B, H) from the outputs;
    /// `dh_carry`: (B, H), dL/dh_T from the following chunk on entry, dL/dh_0 on return;
    /// `dx`: accumulated if given, (T, B, I).
    pub fn backward(
        &self,
        grad: &mut Self,
        x: &[[T; I]],
        cache: &mut RnnCache<'_, H, T>,
        dh: &[[T; H]],
        dh_carry: &mut [[T; H]],
        dx: Option<&mut [[T; I]]>,
    ) -> Result<(), Error> {
        self.backward_with::<T::Kernels>(grad, x, cache, dh, dh_carry, dx)
    }

    /// [`backward`](Self::backward) with an explicit kernel set.
    pub fn backward_with<K: Kernels<T>>(
        &self,
        grad: &mut Self,
        x: &[[T; I]],
        cache: &mut RnnCache<'_, H, T>,
        dh: &[[T; H]],
        dh_carry: &mut [[T; H]],
        dx: Option<&mut [[T; I]]>,
    ) -> Result<(), Error> {
        let (steps, batch) = (cache.steps, cache.batch);
        let n = steps * batch;
        check("x", n, x.len())?;
        check("dh", n, dh.len())?;
        check("dh_carry", batch, dh_carry.len())?;
        if let Some(dx) = &dx {
            check("dx", n, dx.len())?;
        }
        let whh = self.weight_hh.as_flattened();
        for t in (0..steps).rev() {
            let now = t * batch..(t + 1) * batch;
            K::rnn_backward_step(
                batch,
                H,
                cache.h[now.clone()].as_flattened(),
                dh[now.clone()].as_flattened(),
                whh,
                dh_carry.as_flattened_mut(),
                cache.dpre[now].as_flattened_mut(),
            );
        }
        if n == 0 {
            return Ok(());
        }
        let dpre = cache.dpre.as_flattened();
        let gwhh = grad.weight_hh.as_flattened_mut();
        K::gemm_tn(
            H,
            H,
            batch,
            &dpre[..batch * H],
            cache.h0.as_flattened(),
            gwhh,
        );
        K::gemm_tn(
            H,
            H,
            n - batch,
            &dpre[batch * H..],
            cache.h[..n - batch].as_flattened(),
            gwhh,
        );
        K::gemm_tn(
            H,
            I,
            n,
            dpre,
            x.as_flattened(),
            grad.weight_ih.as_flattened_mut(),
        );
        // Both biases get the same gradient: one pass over dpre.
        let mut db = [T::ZERO; H];
        K::col_sum(n, H, dpre, &mut db);
        for bias in [&mut grad.bias_ih, &mut grad.bias_hh] {
            for (g, &d) in bias.iter_mut().zip(&db) {
                *g += d;
            }
        }
        if let Some(dx) = dx {
            K::gemm_nn(
                n,
                I,
                H,
                dpre,
                self.weight_ih.as_flattened(),
                dx.as_flattened_mut(),
            );
        }
        Ok(())
    }
}
