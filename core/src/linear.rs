//! The linear output head, PyTorch's `nn.Linear(IN, OUT)`, shared by all time steps.
//!
//! ```text
//! y = W x + b              W: [OUT, IN], b: [OUT]
//! dW += dy xᵀ   db += dy   dx += Wᵀ dy
//! ```

use rand_core::Rng;

use crate::Real;
use crate::error::{Error, check};
use crate::init::fill_uniform;
use crate::kernels::Kernels;
use crate::params::{Params, TensorInfo};

/// A linear layer: `weight` [OUT, IN], `bias` \[OUT\].
#[repr(C)]
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<const IN: usize, const OUT: usize, T: Real = f32> {
    /// `weight` [OUT, IN].
    pub weight: [[T; IN]; OUT],
    /// `bias` \[OUT\].
    pub bias: [T; OUT],
}

// SAFETY: repr(C), arrays of T only.
unsafe impl<const IN: usize, const OUT: usize, T: Real> Params<T> for Linear<IN, OUT, T> {
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight",
            offset: 0,
            shape: &[OUT, IN],
        },
        TensorInfo {
            name: "bias",
            offset: OUT * IN,
            shape: &[OUT],
        },
    ];
}

impl<const IN: usize, const OUT: usize, T: Real> Linear<IN, OUT, T> {
    /// PyTorch's default initialisation: weight and bias from U(-1/√IN, 1/√IN).
    pub fn init(&mut self, rng: &mut impl Rng) {
        let k = T::ONE / T::from_f64(IN as f64).sqrt();
        fill_uniform(self.as_flat_mut(), -k, k, rng);
    }

    /// `y = W x + b` for one sample. Nothing can fail.
    #[inline]
    pub fn step(&self, x: &[T; IN]) -> [T; OUT] {
        let mut y = self.bias;
        <T::Kernels as Kernels<T>>::gemm_nt(1, OUT, IN, x, self.weight.as_flattened(), &mut y);
        y
    }

    /// `y = x Wᵀ + b` for N rows: `x` (N, IN), `y` (N, OUT) (overwritten).
    pub fn forward(&self, x: &[[T; IN]], y: &mut [[T; OUT]]) -> Result<(), Error> {
        self.forward_with::<T::Kernels>(x, y)
    }

    /// [`forward`](Self::forward) with an explicit kernel set.
    pub fn forward_with<K: Kernels<T>>(
        &self,
        x: &[[T; IN]],
        y: &mut [[T; OUT]],
    ) -> Result<(), Error> {
        check("y", x.len(), y.len())?;
        forward_raw::<T, K>(
            x.len(),
            IN,
            OUT,
            x.as_flattened(),
            self.weight.as_flattened(),
            &self.bias,
            y.as_flattened_mut(),
        );
        Ok(())
    }

    /// Backward for N rows, *accumulating* dL/dW and dL/db into `grad` and, if given, dL/dx into
    /// `dx` (N, IN). `dy`: (N, OUT).
    pub fn backward(
        &self,
        grad: &mut Self,
        x: &[[T; IN]],
        dy: &[[T; OUT]],
        dx: Option<&mut [[T; IN]]>,
    ) -> Result<(), Error> {
        self.backward_with::<T::Kernels>(grad, x, dy, dx)
    }

    /// [`backward`](Self::backward) with an explicit kernel set.
    pub fn backward_with<K: Kernels<T>>(
        &self,
        grad: &mut Self,
        x: &[[T; IN]],
        dy: &[[T; OUT]],
        dx: Option<&mut [[T; IN]]>,
    ) -> Result<(), Error> {
        let n = x.len();
        check("dy", n, dy.len())?;
        if let Some(dx) = &dx {
            check("dx", n, dx.len())?;
        }
        backward_raw::<T, K>(
            n,
            IN,
            OUT,
            x.as_flattened(),
            self.weight.as_flattened(),
            dy.as_flattened(),
            grad.weight.as_flattened_mut(),
            &mut grad.bias,
            dx.map(|d| d.as_flattened_mut()),
        );
        Ok(())
    }
}

/// `y = x Wᵀ + b` (set) for `n` rows with run-time sizes: `x` (n, IN), `w` (OUT, IN), `y`
/// (n, OUT). Lengths are the caller's to check.
pub(crate) fn forward_raw<T: Real, K: Kernels<T>>(
    n: usize,
    inp: usize,
    out: usize,
    x: &[T],
    w: &[T],
    b: &[T],
    y: &mut [T],
) {
    for row in y[..n * out].chunks_exact_mut(out) {
        row.copy_from_slice(&b[..out]);
    }
    K::gemm_nt(n, out, inp, x, w, y);
}

/// Backward of [`forward_raw`], accumulating dL/dW into `gw`, dL/db into `gb` and dL/dx into `dx`
/// if given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_raw<T: Real, K: Kernels<T>>(
    n: usize,
    inp: usize,
    out: usize,
    x: &[T],
    w: &[T],
    dy: &[T],
    gw: &mut [T],
    gb: &mut [T],
    dx: Option<&mut [T]>,
) {
    K::gemm_tn(out, inp, n, dy, x, gw);
    K::col_sum(n, out, dy, gb);
    if let Some(dx) = dx {
        K::gemm_nn(n, inp, out, dy, w, dx);
    }
}
