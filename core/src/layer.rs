//! One recurrent layer in one direction, written once over any [`Cell`]: the time loop (forward
//! in time or reversed), the cache, the state carried in and out, and backward through time with
//! the weight-gradient products and dL/dx.
//!
//! With `ax_t = W_ih x_t + b_ih`, `ah_t = W_hh h_{t-1} + b_hh` and the cell's step
//! `(h_t, c_t) = cell(ax_t, ah_t, h_{t-1}, c_{t-1})` (for the reverse direction read `t+1` for
//! `t-1`, starting from the state given at `t = T-1`), backward over the steps in reverse
//! processing order gives dL/d`ax_t`, dL/d`ah_t` (equal unless the cell is [`Cell::SPLIT`]) and
//! the state gradient before each step; then
//! ```text
//! dW_ih += Σ_t dax_tᵀ x_t     dW_hh += Σ_t dah_tᵀ h_{t-1}     db_ih += Σ_t dax_t
//! db_hh += Σ_t dah_t          dx_t  += dax_t W_ih
//! ```
//! Gradients stop at the initial state, and the state gradient there is handed back, so chained
//! chunks (truncated BPTT with the carries passed along) give exactly full BPTT.

use crate::Real;
use crate::buf::take;
use crate::cell::{Backward, Cell, Forward, Weights};
use crate::kernels::Kernels;

/// Gradient buffers of one layer and direction, laid out like [`Weights`].
#[derive(Debug)]
pub(crate) struct Grads<'a, T> {
    pub w_ih: &'a mut [T],
    pub w_hh: &'a mut [T],
    pub b_ih: &'a mut [T],
    pub b_hh: &'a mut [T],
}

impl<'a, T> Grads<'a, T> {
    /// Splits one direction's gradient block (G·H·(I + H + 2) scalars).
    pub fn new(block: &'a mut [T], gh: usize, is: usize, hs: usize) -> Self {
        let mut b = block;
        Grads {
            w_ih: take(&mut b, gh * is),
            w_hh: take(&mut b, gh * hs),
            b_ih: take(&mut b, gh),
            b_hh: take(&mut b, gh),
        }
    }
}

/// What one direction keeps between forward and backward, carved from a caller's buffer of
/// [`Sizes::len`] scalars. Time-major rows `t·B + b`.
#[derive(Debug)]
pub(crate) struct DirCache<'a, T> {
    /// `h_t` (T, B, H): the direction's outputs.
    pub h: &'a mut [T],
    /// `c_t` (T, B, H), cells with `c` only.
    pub c: &'a mut [T],
    /// The cell's per-step cache (T, B, CACHE·H).
    pub cache: &'a mut [T],
    /// dL/d`ax` (T, B, G·H), set by backward (forward's scratch).
    pub dax: &'a mut [T],
    /// dL/d`ah` (T, B, G·H), split cells only.
    pub dah: &'a mut [T],
    /// The state the sequence started from (B, H), `h` and `c`.
    pub h0: &'a mut [T],
    /// See `h0`.
    pub c0: &'a mut [T],
    /// Packed weights (the cell's `packed_len`).
    pub packed: &'a mut [T],
    /// Σ_t of a gradient row (G·H), for the biases.
    pub db: &'a mut [T],
}

/// The sizes of one direction's run: hidden, input, steps, batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub hs: usize,
    pub is: usize,
    pub steps: usize,
    pub batch: usize,
}

impl Sizes {
    /// Scalars of a [`DirCache`] for cell `C`.
    pub fn len<C: Cell>(&self) -> usize {
        let (n, hs) = (self.steps * self.batch, self.hs);
        let gh = C::GATES * hs;
        let with_c = usize::from(C::HAS_C);
        let split = usize::from(C::SPLIT);
        n * hs * (1 + with_c + C::CACHE)
            + n * gh * (1 + split)
            + self.batch * hs * (1 + with_c)
            + C::packed_len(hs, self.is)
            + gh
    }

    /// Carves a [`DirCache`] out of `buf` ([`len`](Self::len) scalars).
    pub fn carve<'a, C: Cell, T>(&self, buf: &'a mut [T]) -> DirCache<'a, T> {
        let (n, hs) = (self.steps * self.batch, self.hs);
        let gh = C::GATES * hs;
        let with_c = usize::from(C::HAS_C);
        let split = usize::from(C::SPLIT);
        let mut b = buf;
        DirCache {
            h: take(&mut b, n * hs),
            c: take(&mut b, n * hs * with_c),
            cache: take(&mut b, n * hs * C::CACHE),
            dax: take(&mut b, n * gh),
            dah: take(&mut b, n * gh * split),
            h0: take(&mut b, self.batch * hs),
            c0: take(&mut b, self.batch * hs * with_c),
            packed: take(&mut b, C::packed_len(hs, self.is)),
            db: take(&mut b, gh),
        }
    }

    /// The time index of processing step `s`.
    fn time(&self, s: usize, reverse: bool) -> usize {
        if reverse { self.steps - 1 - s } else { s }
    }
}

/// Rows of step `t` of a (T, B, width) buffer.
fn at<T>(buf: &[T], t: usize, rows: usize) -> &[T] {
    &buf[t * rows..(t + 1) * rows]
}

fn at_mut<T>(buf: &mut [T], t: usize, rows: usize) -> &mut [T] {
    &mut buf[t * rows..(t + 1) * rows]
}

/// Step `t`'s rows (mutable) and those of the step before it in processing order (`t - 1`, or
/// `t + 1` in reverse), or `first` at the first processed step.
fn now_and_prev<'b, T>(
    buf: &'b mut [T],
    first: &'b [T],
    t: usize,
    s: usize,
    reverse: bool,
    rows: usize,
) -> (&'b mut [T], &'b [T]) {
    if s == 0 {
        (at_mut(buf, t, rows), first)
    } else if reverse {
        let (now, prev) = buf.split_at_mut((t + 1) * rows);
        (&mut now[t * rows..], &prev[..rows])
    } else {
        let (prev, now) = buf.split_at_mut(t * rows);
        (&mut now[..rows], &prev[(t - 1) * rows..])
    }
}

/// `h_{t-1}` in processing order: the step before `t`, or the initial state.
fn prev<'b, T>(
    buf: &'b [T],
    first: &'b [T],
    t: usize,
    s: usize,
    reverse: bool,
    rows: usize,
) -> &'b [T] {
    match (s, reverse) {
        (0, _) => first,
        (_, true) => at(buf, t + 1, rows),
        (_, false) => at(buf, t - 1, rows),
    }
}

/// Forward of one direction over `x` ((T, B, I)). `h`, `c` ((B, H) each; `c` empty for cells
/// without it) hold the initial state on entry and the final state on return. Lengths are the
/// caller's to check.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<C: Cell, T: Real, K: Kernels<T>>(
    w: &Weights<'_, T>,
    z: Sizes,
    reverse: bool,
    x: &[T],
    h: &mut [T],
    c: &mut [T],
    dc: &mut DirCache<'_, T>,
) {
    let (b, hs) = (z.batch, z.hs);
    let rows = b * hs;
    let gh = C::GATES * hs;
    dc.h0.copy_from_slice(&h[..rows]);
    dc.c0.copy_from_slice(&c[..dc.c0.len()]);
    C::pack(w, dc.packed);
    C::project_inputs::<T, K>(w, dc.packed, z.steps * b, &x[..z.steps * b * z.is], dc.dax);
    let crow = C::CACHE * rows;
    let ahrow = if C::SPLIT { b * gh } else { 0 };
    for s in 0..z.steps {
        let t = z.time(s, reverse);
        let (h_now, h_prev) = now_and_prev(dc.h, dc.h0, t, s, reverse, rows);
        let (c_now, c_prev) = if C::HAS_C {
            now_and_prev(dc.c, dc.c0, t, s, reverse, rows)
        } else {
            (&mut [][..], &[][..])
        };
        C::forward_step::<T, K>(Forward {
            w: *w,
            batch: b,
            x: at(x, t, b * z.is),
            packed: dc.packed,
            h_prev,
            c_prev,
            cache: at_mut(dc.cache, t, crow),
            ax: at_mut(dc.dax, t, b * gh),
            ah: at_mut(dc.dah, t, ahrow),
            c: c_now,
            h: h_now,
        });
    }
    if z.steps > 0 {
        let last = z.time(z.steps - 1, reverse);
        h[..rows].copy_from_slice(at(dc.h, last, rows));
        if C::HAS_C {
            c[..rows].copy_from_slice(at(dc.c, last, rows));
        }
    }
}

/// Backward of one direction over the steps `forward` left in `dc`, *accumulating* into `g`.
/// `dh` (T, B, H): dL/dh_t from the direction's outputs. `dh_carry`, `dc_carry` (B, H): the
/// gradient of the final state on entry, of the initial state on return. `dx` (T, B, I):
/// dL/dx accumulated, if given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<C: Cell, T: Real, K: Kernels<T>>(
    w: &Weights<'_, T>,
    g: &mut Grads<'_, T>,
    z: Sizes,
    reverse: bool,
    x: &[T],
    dc: &mut DirCache<'_, T>,
    dh: &[T],
    dh_carry: &mut [T],
    dc_carry: &mut [T],
    dx: Option<&mut [T]>,
) {
    let (b, hs, is) = (z.batch, z.hs, z.is);
    let rows = b * hs;
    let gh = C::GATES * hs;
    let n = z.steps * b;
    let crow = C::CACHE * rows;
    let ahrow = if C::SPLIT { b * gh } else { 0 };
    for s in (0..z.steps).rev() {
        let t = z.time(s, reverse);
        C::backward_step::<T, K>(Backward {
            w: *w,
            batch: b,
            cache: at(dc.cache, t, crow),
            h_prev: prev(dc.h, dc.h0, t, s, reverse, rows),
            c_prev: if C::HAS_C {
                prev(dc.c, dc.c0, t, s, reverse, rows)
            } else {
                &[]
            },
            h: at(dc.h, t, rows),
            dh_ext: at(dh, t, rows),
            dh_carry: &mut dh_carry[..rows],
            dc_carry: &mut dc_carry[..if C::HAS_C { rows } else { 0 }],
            dax: at_mut(dc.dax, t, b * gh),
            dah: at_mut(dc.dah, t, ahrow),
        });
    }
    if n == 0 {
        return;
    }
    let dax: &[T] = dc.dax;
    let dah: &[T] = if C::SPLIT { dc.dah } else { dc.dax };
    // dW_hh: the first processed step pairs with h0, every other with its neighbour's h.
    let (first, rest, rest_h) = if reverse {
        (
            &dah[n * gh - b * gh..],
            &dah[..n * gh - b * gh],
            &dc.h[rows..],
        )
    } else {
        (&dah[..b * gh], &dah[b * gh..], &dc.h[..n * hs - rows])
    };
    K::gemm_tn(gh, hs, b, first, dc.h0, g.w_hh);
    K::gemm_tn(gh, hs, n - b, rest, rest_h, g.w_hh);
    K::gemm_tn(gh, is, n, dax, x, g.w_ih);
    // db_ih = Σ dax, db_hh = Σ dah: one pass when they are the same rows.
    for (k, (src, bias)) in [(dax, &mut *g.b_ih), (dah, &mut *g.b_hh)]
        .into_iter()
        .enumerate()
    {
        if k == 0 || C::SPLIT {
            dc.db.fill(T::ZERO);
            K::col_sum(n, gh, src, dc.db);
        }
        for (g, &d) in bias.iter_mut().zip(dc.db.iter()) {
            *g += d;
        }
    }
    if let Some(dx) = dx {
        K::gemm_nn(n, is, gh, dax, w.w_ih, dx);
    }
}
