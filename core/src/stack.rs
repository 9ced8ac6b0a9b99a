//! A whole model: L stacked recurrent layers (each one or two directions) and a linear head, as
//! PyTorch's `<cell>(I, H, num_layers=L, bidirectional=...)` followed by `nn.Linear(D·H, O)`.
//! Shapes at run time ([`Spec`]), parameters in one flat buffer ([`Spec::tensors`]), every other
//! buffer the caller's: no allocation, no panic, [`Error`] for a wrong length.
//!
//! Layer k reads `x` (k = 0) or the output of layer k-1, (T, B, D·H): per step the forward
//! direction's `h_t` then the reverse direction's. The head reads the top layer's output at every
//! step ([`Outputs::EveryStep`], y (T, B, O)) or at the last step only ([`Outputs::LastStep`],
//! y (B, O); for a bidirectional model that is `out[:, -1]` in PyTorch, the reverse direction's
//! state after the whole sequence beside the forward direction's). The state `h` (and `c`) is
//! (L·D, B, H) in PyTorch's `h_n` order: the initial state on entry, the final state on return.
//!
//! Backward runs the head's backward, then the layers top down, each direction's gradient of its
//! output split out of the layer's, each layer's dL/dx accumulated into the gradient of the
//! output of the layer below. The state gradient carried in (dL/d of the final state) is replaced
//! by dL/d of the initial state, so chunks chain into full BPTT.

use crate::buf::take;
use crate::cell::Cell;
use crate::error::check;
use crate::kernels::Kernels;
use crate::layer::{self, DirCache, Grads, Sizes};
use crate::linear::{backward_raw, forward_raw};
use crate::spec::Spec;
use crate::{Error, Real, with_cell};

/// Where the head is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outputs {
    /// At every step: y is (T, B, O).
    EveryStep,
    /// At the last step only: y is (B, O).
    LastStep,
}

/// A model: its [`Spec`] and a view of its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a, T: Real = f32> {
    spec: Spec,
    params: &'a [T],
}

/// What forward keeps for backward, carved from one caller-owned buffer of
/// [`Cache::len`] scalars.
#[derive(Debug)]
pub struct Cache<'a, T: Real = f32> {
    steps: usize,
    batch: usize,
    outputs: Outputs,
    buf: &'a mut [T],
}

/// A read-only view of what forward kept for one layer and direction ([`Model::cached`]).
#[derive(Debug, Clone, Copy)]
pub struct Cached<'c, T> {
    /// `h_t`, (T, B, H).
    pub h: &'c [T],
    /// `c_t`, (T, B, H) (LSTM; empty otherwise).
    pub c: &'c [T],
    /// The cell's per-step cache, (T, B·CACHE·H).
    pub cell: &'c [T],
}

/// The regions of one layer in a cache.
struct LayerBufs<'a, T> {
    fwd: DirCache<'a, T>,
    /// The reverse direction (bidirectional only).
    bwd: Option<DirCache<'a, T>>,
    /// (T, B, 2H): both directions' outputs side by side (bidirectional only).
    out: &'a mut [T],
    /// (T, B, H) per direction: its share of `dout` (bidirectional only).
    dh: [&'a mut [T]; 2],
    /// (T, B, D·H): dL/d the layer's output.
    dout: &'a mut [T],
}

impl<'a, T> LayerBufs<'a, T> {
    /// The layer's output (T, B, D·H) and the gradient buffer of it.
    fn into_io(self) -> (&'a [T], &'a mut [T]) {
        match self.bwd {
            Some(_) => (self.out, self.dout),
            None => (self.fwd.h, self.dout),
        }
    }
}

fn sizes(spec: &Spec, k: usize, steps: usize, batch: usize) -> Sizes {
    Sizes {
        hs: spec.hidden,
        is: spec.layer_input(k),
        steps,
        batch,
    }
}

fn layer_len<C: Cell>(spec: &Spec, k: usize, steps: usize, batch: usize) -> usize {
    let d = spec.directions();
    let n = steps * batch * spec.hidden;
    let extra = if d == 2 { 4 * n } else { 0 };
    d * sizes(spec, k, steps, batch).len::<C>() + extra + d * n
}

/// Offset of layer `k`'s region in the cache.
fn layer_offset<C: Cell>(spec: &Spec, k: usize, steps: usize, batch: usize) -> usize {
    match k {
        0 => 0,
        _ => {
            layer_len::<C>(spec, 0, steps, batch) + (k - 1) * layer_len::<C>(spec, 1, steps, batch)
        }
    }
}

fn carve<'a, C: Cell, T>(
    spec: &Spec,
    k: usize,
    steps: usize,
    batch: usize,
    buf: &'a mut [T],
) -> LayerBufs<'a, T> {
    let z = sizes(spec, k, steps, batch);
    let bi = spec.bidirectional;
    let n = steps * batch * spec.hidden;
    let mut b = buf;
    let fwd = z.carve::<C, T>(take(&mut b, z.len::<C>()));
    let bwd = bi.then(|| z.carve::<C, T>(take(&mut b, z.len::<C>())));
    let out = take(&mut b, if bi { 2 * n } else { 0 });
    let dh0 = take(&mut b, if bi { n } else { 0 });
    let dh1 = take(&mut b, if bi { n } else { 0 });
    LayerBufs {
        fwd,
        bwd,
        out,
        dh: [dh0, dh1],
        dout: take(&mut b, spec.directions() * n),
    }
}

impl<'a, T: Real> Cache<'a, T> {
    /// Scalars a cache for `steps` x `batch` of `spec` needs.
    pub fn len(spec: &Spec, steps: usize, batch: usize) -> usize {
        with_cell!(spec.cell, C => layer_offset::<C>(spec, spec.layers, steps, batch))
    }

    /// A cache for `steps` x `batch` sequences with the head applied at `outputs`, carved from
    /// `buf` of exactly [`len`](Self::len) scalars.
    pub fn new(
        spec: &Spec,
        buf: &'a mut [T],
        steps: usize,
        batch: usize,
        outputs: Outputs,
    ) -> Result<Self, Error> {
        spec.validate()?;
        check(
            "model cache buffer",
            Self::len(spec, steps, batch),
            buf.len(),
        )?;
        if steps == 0 && outputs == Outputs::LastStep {
            return Err(Error::Invalid {
                what: "last-step output of an empty sequence",
            });
        }
        Ok(Cache {
            steps,
            batch,
            outputs,
            buf,
        })
    }

    /// Time steps T.
    pub fn steps(&self) -> usize {
        self.steps
    }
    /// Sequences B.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Where the head is applied.
    pub fn outputs(&self) -> Outputs {
        self.outputs
    }
    /// Rows of y: T·B or B.
    pub fn output_rows(&self) -> usize {
        match self.outputs {
            Outputs::EveryStep => self.steps * self.batch,
            Outputs::LastStep => self.batch,
        }
    }
}

impl<'a, T: Real> Model<'a, T> {
    /// A model of shape `spec` over `params` ([`Spec::param_len`] scalars).
    pub fn new(spec: Spec, params: &'a [T]) -> Result<Self, Error> {
        spec.validate()?;
        check("model parameters", spec.param_len(), params.len())?;
        Ok(Model { spec, params })
    }

    /// The shape.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The flat parameter buffer.
    pub fn params(&self) -> &'a [T] {
        self.params
    }

    fn check_state(&self, what: &'static str, h: &[T], c: &[T], batch: usize) -> Result<(), Error> {
        let n = self.spec.state_len(batch);
        check(what, n, h.len())?;
        let c_len = if self.spec.cell.has_c() { n } else { 0 };
        check("cell state", c_len, c.len())
    }

    /// Forward over `x` ((T, B, I), time-major; T and B from `cache`) with [`Real`]'s default
    /// kernels. `h`, `c` ((L·D, B, H); `c` empty unless LSTM): initial state in, final state out.
    /// `y`: the head's outputs, (T, B, O) or (B, O) as the cache says.
    pub fn forward(
        &self,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        cache: &mut Cache<'_, T>,
        y: &mut [T],
    ) -> Result<(), Error> {
        self.forward_with::<T::Kernels>(x, h, c, cache, y)
    }

    /// [`forward`](Self::forward) with an explicit kernel set.
    pub fn forward_with<K: Kernels<T>>(
        &self,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        cache: &mut Cache<'_, T>,
        y: &mut [T],
    ) -> Result<(), Error> {
        let s = &self.spec;
        let (steps, batch) = (cache.steps, cache.batch);
        check("x", steps * batch * s.input, x.len())?;
        self.check_state("h", h, c, batch)?;
        check("y", cache.output_rows() * s.output, y.len())?;
        with_cell!(s.cell, C => self.forward_cell::<C, K>(x, h, c, cache, y));
        Ok(())
    }

    fn forward_cell<C: Cell, K: Kernels<T>>(
        &self,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        cache: &mut Cache<'_, T>,
        y: &mut [T],
    ) {
        let s = &self.spec;
        let (steps, batch, hs) = (cache.steps, cache.batch, s.hidden);
        let rows = batch * hs;
        let mut rest: &mut [T] = cache.buf;
        let mut input: &[T] = x;
        for k in 0..s.layers {
            let z = sizes(s, k, steps, batch);
            let lb = carve::<C, T>(
                s,
                k,
                steps,
                batch,
                take(&mut rest, layer_len::<C>(s, k, steps, batch)),
            );
            let LayerBufs {
                mut fwd,
                mut bwd,
                out,
                ..
            } = lb;
            for (d, dc) in [Some(&mut fwd), bwd.as_mut()].into_iter().enumerate() {
                let Some(dc) = dc else { continue };
                let st = (k * s.directions() + d) * rows;
                let c_st = if C::HAS_C {
                    &mut c[st..st + rows]
                } else {
                    &mut [][..]
                };
                let w = s.weights(self.params, k, d);
                layer::forward::<C, T, K>(&w, z, d == 1, input, &mut h[st..st + rows], c_st, dc);
            }
            input = match bwd {
                Some(bwd) => {
                    let halves = fwd.h.chunks_exact(hs).zip(bwd.h.chunks_exact(hs));
                    for (o, (f, b)) in out.chunks_exact_mut(2 * hs).zip(halves) {
                        o[..hs].copy_from_slice(f);
                        o[hs..].copy_from_slice(b);
                    }
                    out
                }
                None => fwd.h,
            };
        }
        let (first, n) = cache_rows(cache.outputs, steps, batch);
        let w = s.width();
        let hw = s.head_offset();
        forward_raw::<T, K>(
            n,
            w,
            s.output,
            &input[first * w..][..n * w],
            &self.params[hw..hw + s.output * w],
            &self.params[hw + s.output * w..],
            y,
        );
    }

    /// Backward over the steps `forward` left in `cache`, *accumulating* into `grad` (a buffer
    /// shaped like the parameters). `x`: the forward's input; `dy`: dL/dy, shaped like y.
    /// `dh_carry`, `dc_carry` ((L·D, B, H); `dc_carry` empty unless LSTM): dL/d the final state
    /// on entry (zeros for the last chunk of a sequence), dL/d the initial state on return.
    /// `dx`: dL/dx accumulated into it if given, (T, B, I).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        grad: &mut [T],
        x: &[T],
        cache: &mut Cache<'_, T>,
        dy: &[T],
        dh_carry: &mut [T],
        dc_carry: &mut [T],
        dx: Option<&mut [T]>,
    ) -> Result<(), Error> {
        self.backward_with::<T::Kernels>(grad, x, cache, dy, dh_carry, dc_carry, dx)
    }

    /// [`backward`](Self::backward) with an explicit kernel set.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_with<K: Kernels<T>>(
        &self,
        grad: &mut [T],
        x: &[T],
        cache: &mut Cache<'_, T>,
        dy: &[T],
        dh_carry: &mut [T],
        dc_carry: &mut [T],
        dx: Option<&mut [T]>,
    ) -> Result<(), Error> {
        let s = &self.spec;
        let (steps, batch) = (cache.steps, cache.batch);
        check("gradient buffer", s.param_len(), grad.len())?;
        check("x", steps * batch * s.input, x.len())?;
        check("dy", cache.output_rows() * s.output, dy.len())?;
        self.check_state("dh_carry", dh_carry, dc_carry, batch)?;
        if let Some(dx) = &dx {
            check("dx", x.len(), dx.len())?;
        }
        with_cell!(s.cell, C => self.backward_cell::<C, K>(grad, x, cache, dy, dh_carry, dc_carry, dx));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_cell<C: Cell, K: Kernels<T>>(
        &self,
        grad: &mut [T],
        x: &[T],
        cache: &mut Cache<'_, T>,
        dy: &[T],
        dh_carry: &mut [T],
        dc_carry: &mut [T],
        mut dx: Option<&mut [T]>,
    ) {
        let s = &self.spec;
        let (steps, batch, hs) = (cache.steps, cache.batch, s.hidden);
        let (rows, n, gh) = (batch * hs, steps * batch * hs, s.cell.gates() * hs);
        let top = s.layers - 1;
        for k in (0..s.layers).rev() {
            let (below, upper) = cache
                .buf
                .split_at_mut(layer_offset::<C>(s, k, steps, batch));
            let lb = carve::<C, T>(s, k, steps, batch, upper);
            let (input, mut dx_k): (&[T], Option<&mut [T]>) = if k == 0 {
                (x, dx.as_deref_mut())
            } else {
                let off = layer_offset::<C>(s, k - 1, steps, batch);
                let (out, dout) =
                    carve::<C, T>(s, k - 1, steps, batch, &mut below[off..]).into_io();
                dout.fill(T::ZERO);
                (out, Some(dout))
            };
            let LayerBufs {
                mut fwd,
                mut bwd,
                out,
                dh,
                dout,
            } = lb;
            if k == top {
                let (first, m) = cache_rows(cache.outputs, steps, batch);
                let w = s.width();
                let output: &[T] = if bwd.is_some() { out } else { fwd.h };
                dout.fill(T::ZERO);
                let hw = s.head_offset();
                let (gw, gb) = grad[hw..].split_at_mut(s.output * w);
                backward_raw::<T, K>(
                    m,
                    w,
                    s.output,
                    &output[first * w..][..m * w],
                    &self.params[hw..hw + s.output * w],
                    dy,
                    gw,
                    gb,
                    Some(&mut dout[first * w..][..m * w]),
                );
            }
            let [dh0, dh1] = dh;
            let dhs: [&[T]; 2] = if bwd.is_some() {
                for ((d, f), b) in dout
                    .chunks_exact(2 * hs)
                    .zip(dh0.chunks_exact_mut(hs))
                    .zip(dh1.chunks_exact_mut(hs))
                {
                    f.copy_from_slice(&d[..hs]);
                    b.copy_from_slice(&d[hs..]);
                }
                [dh0, dh1]
            } else {
                [dout, &[]]
            };
            let z = sizes(s, k, steps, batch);
            for (d, dc) in [Some(&mut fwd), bwd.as_mut()].into_iter().enumerate() {
                let Some(dc) = dc else { continue };
                let st = (k * s.directions() + d) * rows;
                let dc_st = if C::HAS_C {
                    &mut dc_carry[st..st + rows]
                } else {
                    &mut [][..]
                };
                let w = s.weights(self.params, k, d);
                let block = &mut grad[s.dir_offset(k, d)..][..s.dir_len(k)];
                let mut g = Grads::new(block, gh, z.is, hs);
                layer::backward::<C, T, K>(
                    &w,
                    &mut g,
                    z,
                    d == 1,
                    input,
                    dc,
                    &dhs[d][..n],
                    &mut dh_carry[st..st + rows],
                    dc_st,
                    dx_k.as_deref_mut(),
                );
            }
        }
    }

    /// What forward left in `cache` for direction `d` of layer `k`: its outputs `h_t` and cell
    /// states `c_t` ((T, B, H) each; `c` empty unless LSTM) and the cell's per-step cache
    /// (T, B·CACHE·H): per step, for the LSTM `[i, f, g, o (B, 4H) | tanh(c_t) (B, H)]`,
    /// for the GRU `[r, z, n, W_hn h + b_hn]` per row (B, 4H), for the RNNs `a` (B, H).
    pub fn cached<'c>(
        &self,
        cache: &'c Cache<'_, T>,
        k: usize,
        d: usize,
    ) -> Result<Cached<'c, T>, Error> {
        let s = &self.spec;
        if k >= s.layers || d >= s.directions() {
            return Err(Error::Invalid {
                what: "layer or direction",
            });
        }
        let (steps, batch) = (cache.steps, cache.batch);
        let n = steps * batch * s.hidden;
        let at = with_cell!(s.cell, C => {
            layer_offset::<C>(s, k, steps, batch) + d * sizes(s, k, steps, batch).len::<C>()
        });
        let with_c = if s.cell.has_c() { n } else { 0 };
        let per = with_cell!(s.cell, C => C::CACHE);
        let buf = &cache.buf[at..];
        Ok(Cached {
            h: &buf[..n],
            c: &buf[n..n + with_c],
            cell: &buf[n + with_c..n + with_c + per * n],
        })
    }

    /// Scratch scalars [`step`](Self::step) needs.
    pub fn step_scratch_len(&self) -> usize {
        with_cell!(self.spec.cell, C => C::step_scratch_len(self.spec.hidden))
    }

    /// One inference step of one sequence (batch 1) of a unidirectional model: advances the state
    /// `h`, `c` ((L, H) each; `c` empty unless LSTM) by `x` (I) and writes the head's output `y`
    /// (O). `scratch`: [`step_scratch_len`](Self::step_scratch_len) scalars. Fails only on a
    /// wrong length or a bidirectional model (its reverse direction needs the whole sequence).
    pub fn step(
        &self,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        scratch: &mut [T],
        y: &mut [T],
    ) -> Result<(), Error> {
        self.step_with::<T::Kernels>(x, h, c, scratch, y)
    }

    /// [`step`](Self::step) with an explicit kernel set.
    pub fn step_with<K: Kernels<T>>(
        &self,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        scratch: &mut [T],
        y: &mut [T],
    ) -> Result<(), Error> {
        let s = &self.spec;
        if s.bidirectional {
            return Err(Error::Invalid {
                what: "step of a bidirectional model",
            });
        }
        check("x", s.input, x.len())?;
        self.check_state("h", h, c, 1)?;
        check("step scratch", self.step_scratch_len(), scratch.len())?;
        check("y", s.output, y.len())?;
        with_cell!(s.cell, C => self.step_cell::<C, K>(x, h, c, scratch, y));
        Ok(())
    }

    fn step_cell<C: Cell, K: Kernels<T>>(
        &self,
        x: &[T],
        h: &mut [T],
        c: &mut [T],
        scratch: &mut [T],
        y: &mut [T],
    ) {
        let s = &self.spec;
        let hs = s.hidden;
        for k in 0..s.layers {
            let (below, above) = h.split_at_mut(k * hs);
            let input = if k == 0 { x } else { &below[(k - 1) * hs..] };
            let c_k = if C::HAS_C {
                &mut c[k * hs..(k + 1) * hs]
            } else {
                &mut [][..]
            };
            C::step::<T, K>(
                &s.weights(self.params, k, 0),
                input,
                &mut above[..hs],
                c_k,
                scratch,
            );
        }
        let hw = s.head_offset();
        forward_raw::<T, K>(
            1,
            hs,
            s.output,
            &h[(s.layers - 1) * hs..],
            &self.params[hw..hw + s.output * hs],
            &self.params[hw + s.output * hs..],
            y,
        );
    }
}

/// The first row and number of rows of the top layer's output the head reads.
fn cache_rows(outputs: Outputs, steps: usize, batch: usize) -> (usize, usize) {
    match outputs {
        Outputs::EveryStep => (0, steps * batch),
        Outputs::LastStep => (steps.saturating_sub(1) * batch, batch),
    }
}
