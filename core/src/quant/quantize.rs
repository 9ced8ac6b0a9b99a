//! Post-training quantization of a float layer, or of every layer of a unidirectional stack, into
//! the integer step's parameters (the formulas are in mod.rs). Calibration (max |x|, and max |c|
//! per LSTM layer, over data) is the caller's: it runs the float model.

use super::{C_FRACS, CellKind, H_FRAC, PRE_FRAC, SHIFTS};
use crate::Spec;
use crate::error::{Error, check};

/// A float recurrent layer in PyTorch's layout (G gate rows per unit).
#[derive(Debug, Clone, Copy)]
pub struct FloatLayer<'a> {
    /// The cell.
    pub cell: CellKind,
    /// Inputs `I`.
    pub inputs: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// `weight_ih` (G·H, I).
    pub w_ih: &'a [f32],
    /// `weight_hh` (G·H, H).
    pub w_hh: &'a [f32],
    /// `bias_ih` (G·H).
    pub b_ih: &'a [f32],
    /// `bias_hh` (G·H).
    pub b_hh: &'a [f32],
}

/// Where [`quantize_layer`] writes (lengths as in [`QLayer`](super::QLayer)); `s_ih`, `s_hh`
/// (G·H) receive the row scales (for dequantization and inspection; the step does not read them).
#[derive(Debug)]
pub struct QLayerMut<'a> {
    /// `Wq_ih`.
    pub w_ih: &'a mut [i8],
    /// `Wq_hh`.
    pub w_hh: &'a mut [i8],
    /// `s_ih`.
    pub s_ih: &'a mut [f32],
    /// `s_hh`.
    pub s_hh: &'a mut [f32],
    /// `M_ih`.
    pub mul_ih: &'a mut [i32],
    /// `M_hh`.
    pub mul_hh: &'a mut [i32],
    /// `B_ih`.
    pub b_ih: &'a mut [i32],
    /// `B_hh`.
    pub b_hh: &'a mut [i32],
}

fn invalid(what: &'static str) -> Error {
    Error::Invalid { what }
}

/// Symmetric row-wise int8: `scale[r] = max_k |w[r,k]| / 127` (1 for an all-zero row),
/// `q[r,k] = round(w[r,k] / scale[r])`. `w` and `q` (rows, cols), `scale` (rows).
pub fn quantize_rows(w: &[f32], cols: usize, q: &mut [i8], scale: &mut [f32]) -> Result<(), Error> {
    check("quantized weights", w.len(), q.len())?;
    check(
        "row scales",
        w.len().checked_div(cols).unwrap_or(0),
        scale.len(),
    )?;
    if w.iter().any(|v| !v.is_finite()) {
        return Err(invalid("weight (NaN or infinite)"));
    }
    if cols == 0 {
        scale.fill(1.0);
        return Ok(());
    }
    for ((row, qrow), s) in w
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(cols))
        .zip(scale)
    {
        let m = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        *s = if m > 0.0 {
            (m as f64 / 127.0) as f32
        } else {
            1.0
        };
        let inv = 1.0 / *s as f64;
        for (q, &v) in qrow.iter_mut().zip(row) {
            *q = libm::round(v as f64 * inv).clamp(-127.0, 127.0) as i8;
        }
    }
    Ok(())
}

/// The cell state's fraction bits for a calibrated max |c|: the most that keep 1.1 · max |c|
/// inside the i16 range, within [`C_FRACS`].
pub fn c_frac_for(c_max: f32) -> u32 {
    let lim = 1.1 * c_max.abs() as f64;
    let mut f = *C_FRACS.end();
    while f > *C_FRACS.start() && lim >= (1u64 << (15 - f)) as f64 {
        f -= 1;
    }
    f
}

/// Largest |B| (Q4.11): 2^24, far past where a pre-activation saturates.
const BIAS_MAX: f64 = (1 << 24) as f64;

/// Quantizes `f` for input scale `x_scale` into `out`; returns the shift `L`.
pub fn quantize_layer(f: &FloatLayer<'_>, x_scale: f32, out: QLayerMut<'_>) -> Result<u32, Error> {
    let rows = f.cell.gates().saturating_mul(f.hidden);
    if !(x_scale.is_finite() && x_scale > 0.0) {
        return Err(invalid("x_scale"));
    }
    check("weight_ih", rows.saturating_mul(f.inputs), f.w_ih.len())?;
    check("weight_hh", rows.saturating_mul(f.hidden), f.w_hh.len())?;
    check("bias_ih", rows, f.b_ih.len())?;
    check("bias_hh", rows, f.b_hh.len())?;
    for (what, v) in [
        ("mul_ih", &*out.mul_ih),
        ("mul_hh", &*out.mul_hh),
        ("b_ih", &*out.b_ih),
        ("b_hh", &*out.b_hh),
    ] {
        check(what, rows, v.len())?;
    }
    if f.b_ih.iter().chain(f.b_hh).any(|v| !v.is_finite()) {
        return Err(invalid("bias (NaN or infinite)"));
    }
    quantize_rows(f.w_ih, f.inputs, out.w_ih, out.s_ih)?;
    quantize_rows(f.w_hh, f.hidden, out.w_hh, out.s_hh)?;
    // The real values behind the multipliers (before the factor 2^(43-L)).
    let h_scale = 1.0 / (1u64 << H_FRAC) as f64;
    let m_ih = |r: usize| out.s_ih[r] as f64 * x_scale as f64;
    let m_hh = |r: usize| out.s_hh[r] as f64 * h_scale;
    let vmax = (0..rows).fold(0.0f64, |v, r| v.max(m_ih(r)).max(m_hh(r)));
    let fits =
        |l: u32| libm::round(vmax * libm::ldexp(1.0, (PRE_FRAC + 32 - l) as i32)) < i32::MAX as f64;
    let mut s = *SHIFTS.start();
    while s < *SHIFTS.end() && !fits(s) {
        s += 1;
    }
    if !fits(s) {
        return Err(invalid("weight scale (too large to quantize)"));
    }
    let k = libm::ldexp(1.0, (PRE_FRAC + 32 - s) as i32);
    let bk = libm::ldexp(1.0, PRE_FRAC as i32);
    let b = |v: f32| libm::round(v as f64 * bk).clamp(-BIAS_MAX, BIAS_MAX) as i32;
    for r in 0..rows {
        out.mul_ih[r] = libm::round(m_ih(r) * k) as i32;
        out.mul_hh[r] = libm::round(m_hh(r) * k) as i32;
        out.b_ih[r] = b(f.b_ih[r]);
        out.b_hh[r] = b(f.b_hh[r]);
    }
    Ok(s)
}

/// `s_x` for a calibrated max |x|: `x_max / 127` (1 if `x_max` is 0).
pub fn x_scale_for(x_max: f32) -> f32 {
    if x_max > 0.0 { x_max / 127.0 } else { 1.0 }
}

/// The input scale of layer `k` of a stack: `x_scale` for layer 0, the hidden scale 1/128 above
/// (layer k reads layer k-1's int8 h).
pub fn input_scale(k: usize, x_scale: f32) -> f32 {
    if k == 0 {
        x_scale
    } else {
        1.0 / (1u32 << H_FRAC) as f32
    }
}

/// Layer `k` of the float model `spec` over `params` (the whole flat buffer, PyTorch's layout,
/// [`Spec`]) as the quantizer's input. Refuses what the integer step cannot run: a bidirectional
/// model (its reverse direction needs the whole sequence; the int8 step streams) and a ReLU RNN
/// (no int8 cell).
pub fn float_layer<'a>(spec: &Spec, params: &'a [f32], k: usize) -> Result<FloatLayer<'a>, Error> {
    spec.validate()?;
    check("model parameters", spec.param_len(), params.len())?;
    if spec.bidirectional {
        return Err(invalid(
            "bidirectional model (the int8 step streams one direction)",
        ));
    }
    let cell = match spec.cell {
        crate::CellKind::Lstm => CellKind::Lstm,
        crate::CellKind::Gru => CellKind::Gru,
        crate::CellKind::RnnTanh => CellKind::Rnn,
        crate::CellKind::RnnRelu => return Err(invalid("ReLU RNN (no int8 cell)")),
    };
    if k >= spec.layers {
        return Err(invalid("layer index"));
    }
    let w = spec.weights(params, k, 0);
    Ok(FloatLayer {
        cell,
        inputs: spec.layer_input(k),
        hidden: spec.hidden,
        w_ih: w.w_ih,
        w_hh: w.w_hh,
        b_ih: w.b_ih,
        b_hh: w.b_hh,
    })
}

/// Quantizes every recurrent layer of the float model `spec` over `params` into `out` (one
/// [`QLayerMut`] per layer, lengths as [`QLayer`](super::QLayer)): layer 0 for input scale
/// `x_scale`, the layers above for their fixed input scale 1/128 ([`input_scale`]). Writes each
/// layer's shift `L` into `shifts`; F (LSTM) is the caller's, per layer ([`c_frac_for`] of that
/// layer's calibrated max |c|). The head: [`quantize_head`].
pub fn quantize_stack(
    spec: &Spec,
    params: &[f32],
    x_scale: f32,
    out: &mut [QLayerMut<'_>],
    shifts: &mut [u32],
) -> Result<(), Error> {
    check("quantized layers", spec.layers, out.len())?;
    check("layer shifts", spec.layers, shifts.len())?;
    for (k, (o, s)) in out.iter_mut().zip(shifts.iter_mut()).enumerate() {
        let f = float_layer(spec, params, k)?;
        let o = QLayerMut {
            w_ih: o.w_ih,
            w_hh: o.w_hh,
            s_ih: o.s_ih,
            s_hh: o.s_hh,
            mul_ih: o.mul_ih,
            mul_hh: o.mul_hh,
            b_ih: o.b_ih,
            b_hh: o.b_hh,
        };
        *s = quantize_layer(&f, input_scale(k, x_scale), o)?;
    }
    Ok(())
}

/// The head of the scheme: `weight` (O, H) row-wise int8 into `q`, and `scale` (O) = s[o] / 128
/// (the row scale times the hidden scale: what [`QLinear`](super::QLinear) multiplies by).
pub fn quantize_head(
    weight: &[f32],
    inputs: usize,
    q: &mut [i8],
    scale: &mut [f32],
) -> Result<(), Error> {
    quantize_rows(weight, inputs, q, scale)?;
    let h_scale = 1.0 / (1u32 << H_FRAC) as f32;
    scale.iter_mut().for_each(|s| *s *= h_scale);
    Ok(())
}
