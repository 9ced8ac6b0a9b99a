//! int8 inference: post-training quantized LSTM, GRU and tanh-RNN models, one layer or a stack of
//! unidirectional layers, and their full-integer step, the same code on the host and on the
//! device, so the host computes the device's bits.
//!
//! # The scheme (`int8-rowwise-v1`)
//! ```text
//! weights   W_ih, W_hh, head W: int8, symmetric, one scale per output row:
//!           s[r] = max_k |W[r,k]| / 127,  Wq[r,k] = round(W[r,k] / s[r])
//! input     xq = clamp(round(x / s_x), -127, 127), s_x = max |x| over the calibration data / 127
//!           (halves away from zero, in f32: see `QModel::quantize_input`)
//! hidden    hq = h · 128, int8 (h ∈ (-1, 1): a fixed scale, no calibration)
//! cell      c: i16 with F fraction bits, F = 15 - ⌈log2(1.1 · max |c|)⌉ over the calibration data,
//!           clamped to [8, 15] (LSTM; the GRU keeps its hidden state there in Q0.15, gru.rs)
//! stacks    layer k > 0 reads layer k-1's hq as its input: its input scale is 1/128, fixed, so
//!           only layer 0's s_x is calibrated (and F per LSTM layer); unidirectional only
//! pre-activations, per gate row r, in Q4.11 (i32 holding [-2^15, 2^15)):
//!   a_x[r] = sat16(sat24(smmulr(Σ_k Wq_ih[r,k] xq[k], M_ih[r])) · 2^L + B_ih[r])
//!   a_h[r] = sat16(sat24(smmulr(Σ_k Wq_hh[r,k] hq[k], M_hh[r])) · 2^L + B_hh[r])
//!   smmulr(a, m) = (a·m + 2^31) >> 32       (the rounded high word: ARM's SMMULR)
//!   sat24: to ±2^(24-L) before the shift, so the sum stays in i32
//!   M_ih[r] = round(s_ih[r] · s_x · 2^(43-L)),   M_hh[r] = round(s_hh[r] / 128 · 2^(43-L)),
//!   B_ih[r] = round(b_ih[r] · 2^11),             B_hh[r] = round(b_hh[r] · 2^11)  (to ±2^24)
//!   L per layer in [0, 15]: the smallest that keeps every |M| < 2^31 (0 unless weights and
//!   inputs are large: s_ih · s_x >= 2^-12)
//! gates     the cell's pointwise function on (a_x, a_h) per unit (lstm.rs, gru.rs, rnn.rs), with σ and
//!           tanh by one 257-entry table and linear interpolation (fixed.rs)
//! head      y[o] = (Σ_k Wq[o,k] hq[k]) as f32 · (s[o] / 128) + b[o]     (f32 out, b kept f32)
//! ```
//! Integer sums are exact in any order (`dot.rs`), every shift rounds the same way everywhere and
//! the few float operations (input quantization, head) are single IEEE operations, so the step
//! gives the same bits on x86, Cortex-M4 (DSP path) and Cortex-M0.
//!
//! A cell is its gate count and its pointwise function ([`Cell`]); [`CellKind`] names the ones
//! there are. Models are views over slices: [`QModel`] (one layer) and [`QStack`] (L layers; a
//! `QModel` is the stack of its one layer, [`QModel::as_stack`]). The host fills them from a file,
//! the firmware from `static` arrays in flash (`tinyrnn export --rust`), and no size is in a type.

mod dot;
mod fixed;
mod gru;
mod lstm;
mod quantize;
mod rnn;

use dot::dot_rows_raw;
pub use dot::{MAX_COLS, dot_rows, dot_rows_portable, expand, expanded_len, smmulr};
pub use fixed::{GATE_FRAC, PRE_FRAC, sigmoid, tanh};
pub use gru::Gru;
pub use lstm::Lstm;
pub use quantize::{
    FloatLayer, QLayerMut, c_frac_for, float_layer, input_scale, quantize_head, quantize_layer,
    quantize_rows, quantize_stack, x_scale_for,
};
pub use rnn::Rnn;

use crate::error::{Error, check};
use fixed::sat;

/// The scheme's name, as written in quantized model files.
pub const SCHEME: &str = "int8-rowwise-v1";
/// Fraction bits of the int8 hidden state (scale 1/128).
pub const H_FRAC: u32 = 7;
/// Range of a layer's shift `L`.
pub const SHIFTS: core::ops::RangeInclusive<u32> = 0..=15;
/// Range of the LSTM cell state's fraction bits `F`.
pub const C_FRACS: core::ops::RangeInclusive<u32> = 8..=15;

/// A recurrent cell of the integer step: how many gate rows per unit, and what one unit does with
/// its pre-activations.
pub trait Cell {
    /// Gate rows per hidden unit (at most 4).
    const GATES: usize;
    /// One unit: `ax[g]`, `ah[g]` (g < GATES) are the input and hidden parts of gate g's
    /// pre-activation in Q4.11; `c` is the unit's i16 state (LSTM: the cell state, `c_frac`
    /// fraction bits; GRU: its hidden state in Q0.15; unused by the RNN), updated in place.
    /// Returns the new hidden value (int8, scale 1/128).
    fn unit(ax: [i32; 4], ah: [i32; 4], c: &mut i16, c_frac: u32) -> i8;
}

/// The cells a quantized layer can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// [`Lstm`]: gates i, f, g, o; a cell state.
    Lstm,
    /// [`Rnn`]: tanh, one gate.
    Rnn,
    /// [`Gru`]: gates r, z, n; its hidden state in Q0.15 in the `c` slot.
    Gru,
}

impl CellKind {
    /// Gate rows per unit.
    pub const fn gates(self) -> usize {
        match self {
            CellKind::Lstm => Lstm::GATES,
            CellKind::Rnn => Rnn::GATES,
            CellKind::Gru => Gru::GATES,
        }
    }

    /// `true` if the cell keeps an i16 state per unit in `c` (LSTM, GRU): its `c` must be H long.
    pub const fn has_state(self) -> bool {
        matches!(self, CellKind::Lstm | CellKind::Gru)
    }
}

/// One quantized recurrent layer (see the module doc for every symbol). Shapes, with G gates:
/// `w_ih` (G·H, I), `w_hh` (G·H, H), `mul_ih`, `mul_hh`, `b_ih`, `b_hh` (G·H), row-major, PyTorch's
/// gate order.
#[derive(Debug, Clone, Copy)]
pub struct QLayer<'a> {
    /// The cell.
    pub cell: CellKind,
    /// Inputs `I`.
    pub inputs: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// `Wq_ih`.
    pub w_ih: &'a [i8],
    /// `Wq_hh`.
    pub w_hh: &'a [i8],
    /// `M_ih`.
    pub mul_ih: &'a [i32],
    /// `M_hh`.
    pub mul_hh: &'a [i32],
    /// `B_ih`.
    pub b_ih: &'a [i32],
    /// `B_hh`.
    pub b_hh: &'a [i32],
    /// `L`.
    pub shift: u32,
    /// `F` (LSTM; ignored by the other cells, but still checked to be in range).
    pub c_frac: u32,
}

/// The quantized linear head (see the module doc): `weight` (O, H) int8, `scale` = s[o] / 128 and
/// `bias` (O) f32.
#[derive(Debug, Clone, Copy)]
pub struct QLinear<'a> {
    /// Inputs (the layer's H).
    pub inputs: usize,
    /// Outputs `O`.
    pub outputs: usize,
    /// `Wq`.
    pub weight: &'a [i8],
    /// `s[o] / 128`.
    pub scale: &'a [f32],
    /// `b`.
    pub bias: &'a [f32],
}

/// A quantized model: input scale, one recurrent layer, a linear head.
#[derive(Debug, Clone, Copy)]
pub struct QModel<'a> {
    /// `s_x`.
    pub x_scale: f32,
    /// The recurrent layer.
    pub layer: QLayer<'a>,
    /// The head.
    pub head: QLinear<'a>,
}

/// `Ok` if `ok`, else a shape error naming `what` (the found/expected lengths are not meaningful).
fn require(ok: bool, what: &'static str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid { what })
    }
}

impl QLayer<'_> {
    /// Checks every length against the sizes, and the scheme's ranges.
    pub fn check(&self) -> Result<(), Error> {
        let (i, h) = (self.inputs, self.hidden);
        require(h >= 1 && i <= MAX_COLS && h <= MAX_COLS, "layer size")?;
        let rows = self.cell.gates() * h;
        check(
            "w_ih",
            rows.checked_mul(i)
                .ok_or(Error::Invalid { what: "layer size" })?,
            self.w_ih.len(),
        )?;
        check(
            "w_hh",
            rows.checked_mul(h)
                .ok_or(Error::Invalid { what: "layer size" })?,
            self.w_hh.len(),
        )?;
        for (what, v) in [
            ("mul_ih", self.mul_ih),
            ("mul_hh", self.mul_hh),
            ("b_ih", self.b_ih),
            ("b_hh", self.b_hh),
        ] {
            check(what, rows, v.len())?;
        }
        require(SHIFTS.contains(&self.shift), "shift")?;
        require(C_FRACS.contains(&self.c_frac), "c_frac")
    }

    /// Words of working memory [`step`](Self::step) needs: x and h_{t-1} expanded for the dot
    /// products ([`expand`]).
    pub const fn scratch_len(&self) -> usize {
        expanded_len(self.inputs) + expanded_len(self.hidden)
    }

    /// One step: `h` (H) holds h_{t-1} on entry and h_t on return, `c` (H) the cell state (any
    /// length for cells without one), `scratch` at least [`scratch_len`](Self::scratch_len)
    /// words of working memory; `x` (I) the quantized input.
    pub fn step(
        &self,
        x: &[i8],
        h: &mut [i8],
        c: &mut [i16],
        scratch: &mut [u32],
    ) -> Result<(), Error> {
        require(scratch.len() >= self.scratch_len(), "scratch length")?;
        let (xe, he) = scratch.split_at_mut(expanded_len(self.inputs));
        self.step_expanded(x, h, c, xe, he)
    }

    /// [`step`](Self::step) with the two halves of the working memory apart.
    fn step_expanded(
        &self,
        x: &[i8],
        h: &mut [i8],
        c: &mut [i16],
        xe: &mut [u32],
        he: &mut [u32],
    ) -> Result<(), Error> {
        self.check()?;
        check("x", self.inputs, x.len())?;
        check("h", self.hidden, h.len())?;
        if self.cell.has_state() {
            check("c", self.hidden, c.len())?;
        }
        require(
            xe.len() >= expanded_len(self.inputs) && he.len() >= expanded_len(self.hidden),
            "scratch length",
        )?;
        expand(x, xe);
        expand(h, he);
        // Two copies of each cell's loop: without the shift (the usual case) and with it.
        match (self.cell, self.shift == 0) {
            (CellKind::Lstm, true) => self.step_cell::<Lstm, false>(xe, he, h, c),
            (CellKind::Lstm, false) => self.step_cell::<Lstm, true>(xe, he, h, c),
            (CellKind::Rnn, true) => self.step_cell::<Rnn, false>(xe, he, h, &mut []),
            (CellKind::Rnn, false) => self.step_cell::<Rnn, true>(xe, he, h, &mut []),
            (CellKind::Gru, true) => self.step_cell::<Gru, false>(xe, he, h, c),
            (CellKind::Gru, false) => self.step_cell::<Gru, true>(xe, he, h, c),
        }
        Ok(())
    }

    /// The step of cell `C` on checked shapes, one pass per unit (LSTM: its 4 gate rows, H rows
    /// apart, one 4-row dot product) or per 4 units (one or three gates: per gate the 4
    /// consecutive rows of those units): the pass's rows against the expanded x and h_{t-1}
    /// ([`dot_rows`]), requantized, then the units.
    #[inline]
    fn step_cell<C: Cell, const SHIFT: bool>(
        &self,
        xe: &[u32],
        he: &[u32],
        h: &mut [i8],
        c: &mut [i16],
    ) {
        let (is, hs) = (self.inputs, self.hidden);
        let rows = C::GATES * hs;
        let (Some(mul_ih), Some(mul_hh), Some(b_ih), Some(b_hh)) = (
            self.mul_ih.get(..rows),
            self.mul_hh.get(..rows),
            self.b_ih.get(..rows),
            self.b_hh.get(..rows),
        ) else {
            return; // not reached: `step` checked the lengths
        };
        let fits = self.w_ih.len() >= rows * is
            && self.w_hh.len() >= rows * hs
            && xe.len() >= expanded_len(is)
            && he.len() >= expanded_len(hs);
        if !fits {
            return; // not reached: `step` checked the lengths
        }
        let (l, c_frac) = (self.shift, self.c_frac);
        let lim = (1i32 << 24) >> l;
        // One row's pre-activation part from its dot product (see the module doc). Without the
        // shift (L = 0) the clamp is not needed: |smmulr| < 2^30 and |B| <= 2^24.
        let pre = |acc: i32, m: &[i32], b: &[i32], r: usize| -> i32 {
            // SAFETY: r < rows = m.len() = b.len() (callers index rows of the layer).
            let (m, b) = unsafe { (*m.get_unchecked(r), *b.get_unchecked(r)) };
            let t = smmulr(acc, m);
            let t = if SHIFT { t.clamp(-lim, lim) << l } else { t };
            sat(t + b, i16::MIN as i32, i16::MAX as i32)
        };
        if C::GATES == 4 {
            // One unit per pass: its G = 4 gate rows, H rows apart, in one 4-row dot product.
            for u in 0..hs {
                let (mut accx, mut acch) = ([0i32; 4], [0i32; 4]);
                // SAFETY: rows u + g·hs (g < 4) are rows of the layer (< rows), whose weights
                // `fits` checked, as it checked the expanded vectors.
                unsafe {
                    let (wx, wh) = (
                        self.w_ih.as_ptr().add(u * is),
                        self.w_hh.as_ptr().add(u * hs),
                    );
                    if is > 0 {
                        dot_rows_raw(wx, hs * is, 4, xe.as_ptr(), is, &mut accx);
                    }
                    dot_rows_raw(wh, hs * hs, 4, he.as_ptr(), hs, &mut acch);
                }
                let (mut ax, mut ah) = ([0i32; 4], [0i32; 4]);
                for g in 0..4 {
                    let r = u + g * hs;
                    ax[g] = pre(accx[g], mul_ih, b_ih, r);
                    ah[g] = pre(acch[g], mul_hh, b_hh, r);
                }
                if let (Some(hv), Some(cu)) = (h.get_mut(u), c.get_mut(u)) {
                    *hv = C::unit(ax, ah, cu, c_frac);
                }
            }
            return;
        }
        // Up to 4 units per pass: per gate g, rows g·H + u0 .. + units, consecutive.
        let mut u0 = 0;
        while u0 < hs {
            let units = (hs - u0).min(4);
            // (G, 4): gate g's parts for the pass's units.
            let (mut accx, mut acch) = ([[0i32; 4]; 4], [[0i32; 4]; 4]);
            for g in 0..C::GATES.min(4) {
                let r0 = g * hs + u0;
                // SAFETY: rows r0 .. r0 + units are rows of the layer (< rows), whose weights
                // `fits` checked, as it checked the expanded vectors.
                unsafe {
                    if is > 0 {
                        let wx = self.w_ih.as_ptr().add(r0 * is);
                        dot_rows_raw(wx, is, units, xe.as_ptr(), is, &mut accx[g]);
                    }
                    let wh = self.w_hh.as_ptr().add(r0 * hs);
                    dot_rows_raw(wh, hs, units, he.as_ptr(), hs, &mut acch[g]);
                }
            }
            for k in 0..units {
                let (mut ax, mut ah) = ([0i32; 4], [0i32; 4]);
                for g in 0..C::GATES.min(4) {
                    let r = g * hs + u0 + k;
                    ax[g] = pre(accx[g][k], mul_ih, b_ih, r);
                    ah[g] = pre(acch[g][k], mul_hh, b_hh, r);
                }
                let u = u0 + k;
                if let Some(hv) = h.get_mut(u) {
                    // Cells without a state get a dummy slot.
                    let mut none = 0i16;
                    let cu = c.get_mut(u).unwrap_or(&mut none);
                    *hv = C::unit(ax, ah, cu, c_frac);
                }
            }
            u0 += units;
        }
    }
}

impl QLinear<'_> {
    /// Checks every length against the sizes.
    pub fn check(&self) -> Result<(), Error> {
        require(
            self.outputs >= 1 && self.inputs >= 1 && self.inputs <= MAX_COLS,
            "head size",
        )?;
        let n = self
            .outputs
            .checked_mul(self.inputs)
            .ok_or(Error::Invalid { what: "head size" })?;
        check("head weight", n, self.weight.len())?;
        check("head scale", self.outputs, self.scale.len())?;
        check("head bias", self.outputs, self.bias.len())
    }

    /// `y = (Wq hq) · scale + bias` (O outputs); `scratch` at least
    /// [`expanded_len`]`(inputs)` words of working memory.
    pub fn step(&self, h: &[i8], scratch: &mut [u32], y: &mut [f32]) -> Result<(), Error> {
        self.check()?;
        check("h", self.inputs, h.len())?;
        check("y", self.outputs, y.len())?;
        let k = self.inputs;
        require(scratch.len() >= expanded_len(k), "scratch length")?;
        expand(h, scratch);
        for (o0, y) in (0..self.outputs).step_by(4).zip(y.chunks_mut(4)) {
            let mut acc = [0i32; 4];
            dot_rows(
                self.weight.get(o0 * k..).unwrap_or(&[]),
                k,
                y.len(),
                scratch,
                k,
                &mut acc,
            );
            for (j, (y, a)) in y.iter_mut().zip(acc).enumerate() {
                let (s, b) = (self.scale.get(o0 + j), self.bias.get(o0 + j));
                // Two roundings (no fused multiply-add), the same on every target.
                *y = a as f32 * s.copied().unwrap_or(0.0) + b.copied().unwrap_or(0.0);
            }
        }
        Ok(())
    }
}

impl QModel<'_> {
    /// Checks the layer, the head, and that they fit together.
    pub fn check(&self) -> Result<(), Error> {
        self.layer.check()?;
        self.head.check()?;
        check("head inputs", self.layer.hidden, self.head.inputs)?;
        require(self.x_scale.is_finite() && self.x_scale > 0.0, "x_scale")
    }

    /// `xq = clamp(trunc(t ± 0.5), -127, 127)` with `t = x / s_x` and the sign of `t`, in f32
    /// (rounding halves away from zero; NaN becomes 0). Three float operations and a conversion,
    /// the same bits on every target.
    pub fn quantize_input(&self, x: &[f32], xq: &mut [i8]) -> Result<(), Error> {
        Self::quantize_with(self.x_scale, x, xq)
    }

    /// [`quantize_input`](Self::quantize_input) with the scale `s_x` given.
    fn quantize_with(x_scale: f32, x: &[f32], xq: &mut [i8]) -> Result<(), Error> {
        check("x", xq.len(), x.len())?;
        for (q, &v) in xq.iter_mut().zip(x) {
            let t = v / x_scale;
            let r = if t >= 0.0 { t + 0.5 } else { t - 0.5 };
            *q = (r as i32).clamp(-127, 127) as i8;
        }
        Ok(())
    }

    /// Words of working memory [`step_q`](Self::step_q) needs.
    pub const fn scratch_len(&self) -> usize {
        self.layer.scratch_len()
    }

    /// One step on an already quantized input (see [`QLayer::step`] and [`QLinear::step`]);
    /// `scratch` at least [`scratch_len`](Self::scratch_len) words.
    pub fn step_q(
        &self,
        xq: &[i8],
        h: &mut [i8],
        c: &mut [i16],
        scratch: &mut [u32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        check("head inputs", self.layer.hidden, self.head.inputs)?;
        self.layer.step(xq, h, c, scratch)?;
        self.head.step(h, scratch, y)
    }

    /// One step with sizes in the types: quantizes `x`, advances `state`, returns the head's
    /// output. Errors only if the model's shapes do not match `I`, `H`, `O` (check once with
    /// [`QModel::check`] and the sizes, then it cannot fail). Working memory on the stack:
    /// 4·(I + H) bytes.
    pub fn step<const I: usize, const H: usize, const O: usize>(
        &self,
        x: &[f32; I],
        state: &mut QState<H>,
    ) -> Result<[f32; O], Error> {
        let mut xq = [0i8; I];
        self.quantize_input(x, &mut xq)?;
        // expanded_len(k) <= k words.
        let (mut xe, mut he) = ([0u32; I], [0u32; H]);
        let mut y = [0.0f32; O];
        check("head inputs", self.layer.hidden, self.head.inputs)?;
        self.layer
            .step_expanded(&xq, &mut state.h, &mut state.c, &mut xe, &mut he)?;
        self.head.step(&state.h, &mut he, &mut y)?;
        Ok(y)
    }
}

impl<'a> QModel<'a> {
    /// The same model as a stack of its one layer.
    pub fn as_stack(&self) -> QStack<'_> {
        QStack {
            x_scale: self.x_scale,
            layers: core::slice::from_ref(&self.layer),
            head: self.head,
        }
    }
}

/// A quantized stack: input scale, L unidirectional recurrent layers, a linear head. Layer 0 reads
/// the quantized input (`s_x`); layer k > 0 reads layer k-1's new int8 `h` (scale 1/128, so it was
/// quantized with that fixed input scale, [`input_scale`]); the head reads the top layer's `h`.
/// The state of one sequence is `h` and `c`, each the layers' H values one after the other
/// ([`state_len`](Self::state_len)). A bidirectional model has no streaming step: the quantizer
/// refuses it ([`float_layer`]).
#[derive(Debug, Clone, Copy)]
pub struct QStack<'a> {
    /// `s_x`.
    pub x_scale: f32,
    /// The recurrent layers, bottom first.
    pub layers: &'a [QLayer<'a>],
    /// The head.
    pub head: QLinear<'a>,
}

impl QStack<'_> {
    /// Checks every layer, the head, that each layer's input is the layer below's output and the
    /// head's the top layer's, and the input scale.
    pub fn check(&self) -> Result<(), Error> {
        let Some(top) = self.layers.last() else {
            return Err(Error::Invalid { what: "no layer" });
        };
        for (k, l) in self.layers.iter().enumerate() {
            l.check()?;
            if k > 0 {
                check("layer inputs", self.layers[k - 1].hidden, l.inputs)?;
            }
        }
        self.head.check()?;
        check("head inputs", top.hidden, self.head.inputs)?;
        require(self.x_scale.is_finite() && self.x_scale > 0.0, "x_scale")
    }

    /// Values of `h` (and of `c`) of one sequence: the layers' H, summed.
    pub fn state_len(&self) -> usize {
        self.layers.iter().map(|l| l.hidden).sum()
    }

    /// Words of working memory [`step_q`](Self::step_q) needs: the largest layer's.
    pub fn scratch_len(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.scratch_len())
            .max()
            .unwrap_or(0)
    }

    /// As [`QModel::quantize_input`].
    pub fn quantize_input(&self, x: &[f32], xq: &mut [i8]) -> Result<(), Error> {
        QModel::quantize_with(self.x_scale, x, xq)
    }

    /// One step on an already quantized input `xq` (layer 0's I): `h` and `c`
    /// ([`state_len`](Self::state_len) each; `c` may be empty if no layer is an LSTM or GRU) the
    /// state, advanced in place; `scratch` at least [`scratch_len`](Self::scratch_len) words; `y`
    /// (O) the head's output.
    pub fn step_q(
        &self,
        xq: &[i8],
        h: &mut [i8],
        c: &mut [i16],
        scratch: &mut [u32],
        y: &mut [f32],
    ) -> Result<(), Error> {
        self.check()?;
        let n = self.state_len();
        check("h", n, h.len())?;
        if self.layers.iter().any(|l| l.cell.has_state()) {
            check("c", n, c.len())?;
        }
        let mut off = 0;
        for (k, l) in self.layers.iter().enumerate() {
            let (below, rest) = h.split_at_mut(off);
            let input: &[i8] = if k == 0 {
                xq
            } else {
                &below[off - self.layers[k - 1].hidden..]
            };
            let c_k = c.get_mut(off..off + l.hidden).unwrap_or(&mut []);
            l.step(input, &mut rest[..l.hidden], c_k, scratch)?;
            off += l.hidden;
        }
        self.head.step(&h[off - self.head.inputs..], scratch, y)
    }

    /// One step with sizes in the types (every layer H units): quantizes `x`, advances `state`,
    /// returns the head's output. Errors only if the model's shapes do not match `I`, `H`, `L`,
    /// `O`. Working memory on the stack: 4·(I + 2H) bytes.
    pub fn step<const I: usize, const H: usize, const L: usize, const O: usize>(
        &self,
        x: &[f32; I],
        state: &mut QStackState<L, H>,
    ) -> Result<[f32; O], Error> {
        check("layers", L, self.layers.len())?;
        self.check()?;
        let mut xq = [0i8; I];
        self.quantize_input(x, &mut xq)?;
        // expanded_len(k) <= k words: layer 0's input, the input of the layers above, h_{t-1}.
        let (mut xe, mut ue, mut he) = ([0u32; I], [0u32; H], [0u32; H]);
        let mut y = [0.0f32; O];
        for (k, l) in self.layers.iter().enumerate() {
            let (below, rest) = state.h.split_at_mut(k);
            let (h, c) = (&mut rest[0], &mut state.c[k]);
            match below.last() {
                None => l.step_expanded(&xq, h, c, &mut xe, &mut he)?,
                Some(hb) => l.step_expanded(hb, h, c, &mut ue, &mut he)?,
            }
        }
        let top = state.h.last().map_or(&[][..], |h| &h[..]);
        self.head.step(top, &mut he, &mut y)?;
        Ok(y)
    }
}

/// The recurrent state of one sequence of a [`QStack`] of `L` layers of `H` units each: `h`
/// (int8, scale 1/128) and `c` (i16: LSTM cell state, GRU hidden state in Q0.15) per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QStackState<const L: usize, const H: usize> {
    /// Hidden state per layer.
    pub h: [[i8; H]; L],
    /// Cell state per layer.
    pub c: [[i16; H]; L],
}

impl<const L: usize, const H: usize> QStackState<L, H> {
    /// The zero state.
    pub const fn zero() -> Self {
        Self {
            h: [[0; H]; L],
            c: [[0; H]; L],
        }
    }
}

impl<const L: usize, const H: usize> Default for QStackState<L, H> {
    fn default() -> Self {
        Self::zero()
    }
}

/// The recurrent state of one sequence for the integer step, owned by the caller: `h` (int8,
/// scale 1/128) and `c` (i16: the LSTM's cell state with the layer's `c_frac` fraction bits, the
/// GRU's hidden state in Q0.15; unused by a tanh RNN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QState<const H: usize> {
    /// Hidden state.
    pub h: [i8; H],
    /// Cell state.
    pub c: [i16; H],
}

impl<const H: usize> QState<H> {
    /// The zero state.
    pub const fn zero() -> Self {
        Self {
            h: [0; H],
            c: [0; H],
        }
    }
}

impl<const H: usize> Default for QState<H> {
    fn default() -> Self {
        Self::zero()
    }
}
