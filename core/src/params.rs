//! Flat parameter buffers with named views.
//!
//! Every layer (and every model built of layers) is a `#[repr(C)]` struct of nothing but arrays
//! of one float type, laid out exactly as PyTorch lays out its `state_dict()` tensors. Such a struct
//! *is* a flat buffer: [`Params::as_flat`] views it as one `&[T]`, and [`Params::TENSORS`] is the
//! table of (name, offset, shape) that import, export, clipping and the optimizers walk.
//! A gradient buffer is simply a second value of the same type.

use crate::Real;

/// One named tensor inside a flat parameter buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorInfo {
    /// PyTorch's name for it (`weight_ih`, `lstm.weight_ih_l0`, `head.bias`, ...).
    pub name: &'static str,
    /// Offset in elements from the start of the flat buffer.
    pub offset: usize,
    /// Row-major shape, as PyTorch reports it.
    pub shape: &'static [usize],
}

impl TensorInfo {
    /// Number of elements.
    pub const fn len(&self) -> usize {
        let mut n = 1;
        let mut i = 0;
        while i < self.shape.len() {
            n *= self.shape[i];
            i += 1;
        }
        n
    }

    /// `true` if the tensor has no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `true` if `table` tiles `0..len` in order with no gap or overlap.
const fn tiles(table: &[TensorInfo], len: usize) -> bool {
    let mut at = 0;
    let mut i = 0;
    while i < table.len() {
        if table[i].offset != at {
            return false;
        }
        at += table[i].len();
        i += 1;
    }
    at == len
}

/// A flat buffer of parameters.
///
/// # Safety
/// Implementors must be `#[repr(C)]` structs made only of (nested) arrays of `T` or of other
/// `Params<T>` types, so that they have no padding and every bit pattern of zeros is `0.0`.
/// [`TENSORS`](Params::TENSORS) must tile the buffer in order; this is checked at compile time.
pub unsafe trait Params<T: Real>: Sized {
    /// (name, offset, shape) of every tensor, in memory order.
    const TENSORS: &'static [TensorInfo];

    /// Number of scalars in the buffer.
    const LEN: usize = {
        let n = core::mem::size_of::<Self>() / core::mem::size_of::<T>();
        assert!(n * core::mem::size_of::<T>() == core::mem::size_of::<Self>());
        assert!(
            tiles(Self::TENSORS, n),
            "tensor table does not tile the parameter buffer"
        );
        n
    };

    /// All parameters as one slice, in [`TENSORS`](Params::TENSORS) order.
    #[inline]
    fn as_flat(&self) -> &[T] {
        let n = Self::LEN;
        // SAFETY: by the trait's contract `Self` is `n` contiguous, initialised `T`s.
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<T>(), n) }
    }

    /// All parameters as one mutable slice.
    #[inline]
    fn as_flat_mut(&mut self) -> &mut [T] {
        let n = Self::LEN;
        // SAFETY: as in `as_flat`, and `&mut self` is exclusive.
        unsafe { core::slice::from_raw_parts_mut((self as *mut Self).cast::<T>(), n) }
    }

    /// A buffer of zeros. (Large models belong on the heap: see the host's `boxed_zeroed`.)
    #[inline]
    fn zeroed() -> Self {
        let _ = Self::LEN;
        // SAFETY: by the trait's contract all-zero bits are a valid value (0.0 everywhere).
        unsafe { core::mem::zeroed() }
    }

    /// Sets every parameter to zero (e.g. a gradient buffer before a new batch).
    #[inline]
    fn fill_zero(&mut self) {
        self.as_flat_mut().fill(T::ZERO);
    }

    /// The named tensor's slice, if there is one by that name.
    fn tensor(&self, name: &str) -> Option<&[T]> {
        let t = Self::TENSORS.iter().find(|t| t.name == name)?;
        self.as_flat().get(t.offset..t.offset + t.len())
    }

    /// The named tensor's mutable slice, if there is one by that name.
    fn tensor_mut(&mut self, name: &str) -> Option<&mut [T]> {
        let t = Self::TENSORS.iter().find(|t| t.name == name)?;
        self.as_flat_mut().get_mut(t.offset..t.offset + t.len())
    }
}
