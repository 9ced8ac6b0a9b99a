//! The LSTM cell, PyTorch's `nn.LSTM` (one layer, `batch_first = false`).
//!
//! Gate order along the 4H rows is PyTorch's: i, f, g, o.
//!
//! ```text
//! a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          (4H pre-activations: a_i, a_f, a_g, a_o)
//! i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ tanh(c_t)
//! ```
//! Backward, with `dh = dL/dh_t` (from the output at step t plus from step t+1) and `dc = dL/dc_t`
//! (carried from step t+1):
//! ```text
//! dc  += dh ⊙ o ⊙ (1 - tanh²(c_t))
//! da_i = dc ⊙ g ⊙ i(1-i)     da_f = dc ⊙ c_{t-1} ⊙ f(1-f)
//! da_g = dc ⊙ i ⊙ (1-g²)     da_o = dh ⊙ tanh(c_t) ⊙ o(1-o)
//! dc_{t-1} = dc ⊙ f          dh_{t-1} = W_hhᵀ da          dx_t = W_ihᵀ da
//! dW_ih += da x_tᵀ   dW_hh += da h_{t-1}ᵀ   db_ih += da   db_hh += da
//! ```

use rand_core::Rng;

use crate::Real;
use crate::buf::{gate_rows, rows, take};
use crate::error::{Error, check};
use crate::init::fill_uniform;
use crate::kernels::{Kernels, lstm_ih_packed_len, lstm_packed_len, pack_lstm, pack_lstm_ih};
use crate::params::{Params, TensorInfo};

/// An LSTM layer: its parameters in PyTorch's layout and names. A gradient buffer is a second
/// `Lstm` of the same sizes.
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

/// Everything the forward pass over a batch of sequences keeps for the backward pass, carved out of
/// one caller-owned buffer of [`LstmCache::len`] scalars. Time-major: row `t * batch + b`.
///
/// Readable from outside: the pre-activations and the gate values of every step, `c_t`,
/// `tanh(c_t)` and `h_t` are here.
#[derive(Debug)]
pub struct LstmCache<'a, const H: usize, T: Real = f32> {
    steps: usize,
    batch: usize,
    pre: &'a mut [[[T; H]; 4]],   // (T, B, 4H) a_i, a_f, a_g, a_o
    gates: &'a mut [[[T; H]; 4]], // (T, B, 4H) i, f, g, o
    c: &'a mut [[T; H]],          // (T, B, H)
    tanh_c: &'a mut [[T; H]],     // (T, B, H)
    h: &'a mut [[T; H]],          // (T, B, H)
    h0: &'a mut [[T; H]],         // (B, H) state the sequence started from
    c0: &'a mut [[T; H]],         // (B, H)
    dpre: &'a mut [[[T; H]; 4]],  // (T, B, 4H) dL/da, written by backward
    packed: &'a mut [T],          // W_hh and the biases packed for the fused step (scratch)
}

impl<'a, const H: usize, T: Real> LstmCache<'a, H, T> {
    /// Scalars needed for `steps` steps of `batch` sequences.
    pub const fn len(steps: usize, batch: usize) -> usize {
        steps * batch * (4 * H * 3 + 3 * H) + 2 * batch * H + lstm_packed_len(H)
    }

    /// Carves a cache for `steps` x `batch` out of `buf`, which must hold exactly
    /// [`LstmCache::len`]`(steps, batch)` scalars (its contents do not matter).
    pub fn new(buf: &'a mut [T], steps: usize, batch: usize) -> Result<Self, Error> {
        check("lstm cache buffer", Self::len(steps, batch), buf.len())?;
        let n = steps * batch;
        let mut b = buf;
        Ok(Self {
            steps,
            batch,
            pre: gate_rows(&mut b, n),
            gates: gate_rows(&mut b, n),
            c: rows(&mut b, n),
            tanh_c: rows(&mut b, n),
            h: rows(&mut b, n),
            h0: rows(&mut b, batch),
            c0: rows(&mut b, batch),
            dpre: gate_rows(&mut b, n),
            packed: take(&mut b, lstm_packed_len(H)),
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
    /// Pre-activations `[a_i, a_f, a_g, a_o]` = `W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`,
    /// (T, B, 4H).
    pub fn pre(&self) -> &[[[T; H]; 4]] {
        self.pre
    }
    /// Gate activations `[i, f, g, o]`, (T, B, 4H).
    pub fn gates(&self) -> &[[[T; H]; 4]] {
        self.gates
    }
    /// Cell states `c_t`, (T, B, H).
    pub fn c(&self) -> &[[T; H]] {
        self.c
    }
    /// `tanh(c_t)`, (T, B, H).
    pub fn tanh_c(&self) -> &[[T; H]] {
        self.tanh_c
    }
    /// Hidden states `h_t` (the layer's outputs), (T, B, H).
    pub fn h(&self) -> &[[T; H]] {
        self.h
    }
    /// Gradient of the loss with respect to the pre-activations, (T, B, 4H), after `backward`
    /// (`forward` uses this region as scratch).
    pub fn dpre(&self) -> &[[[T; H]; 4]] {
        self.dpre
    }
    /// The hidden state each sequence started from, (B, H).
    pub fn h0(&self) -> &[[T; H]] {
        self.h0
    }
    /// The cell state each sequence started from, (B, H).
    pub fn c0(&self) -> &[[T; H]] {
        self.c0
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

    /// [`step`](Self::step) with an explicit kernel set (e.g. [`Naive`](crate::Naive)).
    pub fn step_with<K: Kernels<T>>(&self, x: &[T; I], state: &mut LstmState<H, T>) {
        let h_prev = state.h;
        let step = |c: &mut [T; H], h: &mut [T; H], scratch: &mut [T]| {
            K::lstm_step(
                H,
                I,
                x,
                self.weight_ih.as_flattened().as_flattened(),
                self.weight_hh.as_flattened().as_flattened(),
                self.bias_ih.as_flattened(),
                self.bias_hh.as_flattened(),
                &h_prev,
                c,
                h,
                scratch,
            )
        };
        if K::LSTM_STEP_SCRATCH {
            let mut scratch = [[T::ZERO; H]; 10];
            step(&mut state.c, &mut state.h, scratch.as_flattened_mut());
        } else {
            step(&mut state.c, &mut state.h, &mut []);
        }
    }

    /// Forward over a batch of `B` sequences of `T` steps (from `cache.steps()`, `cache.batch()`).
    ///
    /// * `x`: inputs, (T, B, I), time-major.
    /// * `h`, `c`: (B, H) each; the initial state on entry, the final state on return.
    /// * `cache`: receives everything backward needs; the outputs `h_t` are `cache.h()`.
    pub fn forward(
        &self,
        x: &[[T; I]],
        h: &mut [[T; H]],
        c: &mut [[T; H]],
        cache: &mut LstmCache<'_, H, T>,
    ) -> Result<(), Error> {
        self.forward_with::<T::Kernels>(x, h, c, cache)
    }

    /// [`forward`](Self::forward) with an explicit kernel set.
    pub fn forward_with<K: Kernels<T>>(
        &self,
        x: &[[T; I]],
        h: &mut [[T; H]],
        c: &mut [[T; H]],
        cache: &mut LstmCache<'_, H, T>,
    ) -> Result<(), Error> {
        let (steps, batch) = (cache.steps, cache.batch);
        check("x", steps * batch, x.len())?;
        check("h", batch, h.len())?;
        check("c", batch, c.len())?;
        cache.h0.copy_from_slice(h);
        cache.c0.copy_from_slice(c);
        let whh = self.weight_hh.as_flattened().as_flattened();
        pack_lstm(
            H,
            whh,
            self.bias_ih.as_flattened(),
            self.bias_hh.as_flattened(),
            cache.packed,
        );
        let wih = self.weight_ih.as_flattened().as_flattened();
        // W_ih packed once for all steps, in the dpre region (only backward writes dpre, and it
        // sets every row) when that is large enough (T·B >= I).
        let ih_len = lstm_ih_packed_len(H, I);
        let scratch = cache.dpre.as_flattened_mut().as_flattened_mut();
        let packed_ih: &[T] = if scratch.len() >= ih_len && steps > 0 {
            pack_lstm_ih(H, I, wih, &mut scratch[..ih_len]);
            &scratch[..ih_len]
        } else {
            &[]
        };
        for t in 0..steps {
            let now = t * batch..(t + 1) * batch;
            let (h_done, h_now) = cache.h.split_at_mut(t * batch);
            let (c_done, c_now) = cache.c.split_at_mut(t * batch);
            let (h_prev, c_prev): (&[[T; H]], &[[T; H]]) = if t == 0 {
                (cache.h0, cache.c0)
            } else {
                (&h_done[(t - 1) * batch..], &c_done[(t - 1) * batch..])
            };
            K::lstm_forward_step(
                batch,
                H,
                I,
                x[now.clone()].as_flattened(),
                wih,
                whh,
                self.bias_ih.as_flattened(),
                self.bias_hh.as_flattened(),
                cache.packed,
                packed_ih,
                h_prev.as_flattened(),
                c_prev.as_flattened(),
                cache.pre[now.clone()].as_flattened_mut().as_flattened_mut(),
                cache.gates[now.clone()]
                    .as_flattened_mut()
                    .as_flattened_mut(),
                c_now[..batch].as_flattened_mut(),
                cache.tanh_c[now].as_flattened_mut(),
                h_now[..batch].as_flattened_mut(),
            );
        }
        if steps > 0 {
            let last = (steps - 1) * batch..steps * batch;
            h.copy_from_slice(&cache.h[last.clone()]);
            c.copy_from_slice(&cache.c[last]);
        }
        Ok(())
    }

    /// Backward through time over the steps held in `cache`, *accumulating* into `grad`.
    ///
    /// * `x`: the inputs given to `forward`, (T, B, I).
    /// * `dh`: dL/dh_t from the layer's outputs at every step, (T, B, H) (zeros where no loss).
    /// * `dh_carry`, `dc_carry`: (B, H) each. On entry, dL/dh_T and dL/dc_T carried in from the
    ///   chunk that follows (zeros for the last one); on return, dL/dh_0 and dL/dc_0, to be handed
    ///   to the backward of the chunk before. Chained chunks so give exactly full BPTT.
    /// * `dx`: if given, dL/dx is *accumulated* into it, (T, B, I).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        grad: &mut Self,
        x: &[[T; I]],
        cache: &mut LstmCache<'_, H, T>,
        dh: &[[T; H]],
        dh_carry: &mut [[T; H]],
        dc_carry: &mut [[T; H]],
        dx: Option<&mut [[T; I]]>,
    ) -> Result<(), Error> {
        self.backward_with::<T::Kernels>(grad, x, cache, dh, dh_carry, dc_carry, dx)
    }

    /// [`backward`](Self::backward) with an explicit kernel set.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_with<K: Kernels<T>>(
        &self,
        grad: &mut Self,
        x: &[[T; I]],
        cache: &mut LstmCache<'_, H, T>,
        dh: &[[T; H]],
        dh_carry: &mut [[T; H]],
        dc_carry: &mut [[T; H]],
        dx: Option<&mut [[T; I]]>,
    ) -> Result<(), Error> {
        let (steps, batch) = (cache.steps, cache.batch);
        let n = steps * batch;
        check("x", n, x.len())?;
        check("dh", n, dh.len())?;
        check("dh_carry", batch, dh_carry.len())?;
        check("dc_carry", batch, dc_carry.len())?;
        if let Some(dx) = &dx {
            check("dx", n, dx.len())?;
        }
        let g4 = 4 * H;
        let whh = self.weight_hh.as_flattened().as_flattened();
        for t in (0..steps).rev() {
            let now = t * batch..(t + 1) * batch;
            let c_prev: &[[T; H]] = if t == 0 {
                cache.c0
            } else {
                &cache.c[(t - 1) * batch..t * batch]
            };
            K::lstm_backward_step(
                batch,
                H,
                cache.gates[now.clone()].as_flattened().as_flattened(),
                c_prev.as_flattened(),
                cache.tanh_c[now.clone()].as_flattened(),
                dh[now.clone()].as_flattened(),
                whh,
                dh_carry.as_flattened_mut(),
                dc_carry.as_flattened_mut(),
                cache.dpre[now].as_flattened_mut().as_flattened_mut(),
            );
        }
        if n == 0 {
            return Ok(());
        }
        let dpre = cache.dpre.as_flattened().as_flattened();
        let gwhh = grad.weight_hh.as_flattened_mut().as_flattened_mut();
        K::gemm_tn(
            g4,
            H,
            batch,
            &dpre[..batch * g4],
            cache.h0.as_flattened(),
            gwhh,
        );
        K::gemm_tn(
            g4,
            H,
            n - batch,
            &dpre[batch * g4..],
            cache.h[..n - batch].as_flattened(),
            gwhh,
        );
        let gwih = grad.weight_ih.as_flattened_mut().as_flattened_mut();
        K::gemm_tn(g4, I, n, dpre, x.as_flattened(), gwih);
        // Both biases get the same gradient: one pass over dpre.
        let mut db = [[T::ZERO; H]; 4];
        K::col_sum(n, g4, dpre, db.as_flattened_mut());
        for bias in [&mut grad.bias_ih, &mut grad.bias_hh] {
            for (g, &d) in bias.as_flattened_mut().iter_mut().zip(db.as_flattened()) {
                *g += d;
            }
        }
        if let Some(dx) = dx {
            let wih = self.weight_ih.as_flattened().as_flattened();
            K::gemm_nn(n, I, g4, dpre, wih, dx.as_flattened_mut());
        }
        Ok(())
    }
}
