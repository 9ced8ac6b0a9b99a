//! The cells' pointwise updates on vectors of units, each forward beside its backward: the
//! LSTM cell (`lstm_pointwise`, and `lstm_cell`, which the fused and batch-1 steps run on their
//! accumulators) and its backward (`lstm_pointwise_backward`, and the rows that
//! `lstm_backward_step` runs), then the tanh RNN's. The arithmetic is written once over
//! [`Math`] (`cell_math`, `bwd_math`) and runs 8 lanes wide, or 16 where the CPU has AVX-512F,
//! with the same bits.

use wide::f32x8;

use super::super::lanes::Math;
#[cfg(target_arch = "x86_64")]
use super::super::lanes::{Lanes, Zmm};
use super::math::{sigmoid, tanh};
use super::{ldp, ldw, stp, stw};

// ---------------------------------------------------------------------------------------------
// LSTM

/// The LSTM cell's arithmetic on one vector of units: from the pre-activations `a` = `[a_i, a_f,
/// a_g, a_o]` and `c_prev`, returns `[i, f, g, o, c, tanh(c), h]`.
#[inline(always)]
pub(super) fn cell_math<V: Math>(a: [V; 4], c_prev: V) -> [V; 7] {
    let i = sigmoid(a[0]);
    let f = sigmoid(a[1]);
    let g = tanh(a[2]);
    let o = sigmoid(a[3]);
    let c = f.mul_add(c_prev, i * g);
    let tc = tanh(c);
    [i, f, g, o, c, tc, o * tc]
}

/// Where one row's 8 units of a cell update live: `c_prev`, `gates` (gates `gs` apart), `c`,
/// `tanh_c`, `h`, each at the units' first element.
#[derive(Clone, Copy)]
pub(super) struct CellRow {
    pub(super) c_prev: *const f32,
    pub(super) gates: *mut f32,
    pub(super) gs: usize,
    pub(super) c: *mut f32,
    pub(super) tanh_c: *mut f32,
    pub(super) h: *mut f32,
}

impl CellRow {
    /// Stores the results of [`cell_math`] (lanes below `w`).
    ///
    /// # Safety
    /// The row's buffers valid for `min(w, 8)` elements (gates: 4 of them, `gs` apart).
    #[inline(always)]
    unsafe fn store(self, out: [f32x8; 7], w: usize) {
        let [i, f, g, o, c, tc, h] = out;
        // SAFETY (whole body): by the caller's contract.
        unsafe {
            stw(self.gates, i, w);
            stw(self.gates.add(self.gs), f, w);
            stw(self.gates.add(2 * self.gs), g, w);
            stw(self.gates.add(3 * self.gs), o, w);
            stw(self.c, c, w);
            stw(self.tanh_c, tc, w);
            stw(self.h, h, w);
        }
    }
}

/// The LSTM cell update for 8 units (`w` of them valid) of one row from their 4 pre-activations.
///
/// # Safety
/// As for [`CellRow::store`], and `c_prev` readable for `min(w, 8)` elements.
#[inline(always)]
pub(super) unsafe fn lstm_cell(a: [f32x8; 4], w: usize, row: CellRow) {
    // SAFETY (whole body): by the caller's contract.
    unsafe { row.store(cell_math(a, ldw(row.c_prev, w)), w) }
}

/// [`lstm_cell`] for the same 8 units of two rows at once, on 16 lanes.
///
/// # Safety
/// As for [`lstm_cell`], for both rows; the CPU has AVX-512F (and the caller is compiled for it).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn lstm_cell_pair(a: [[f32x8; 4]; 2], w: usize, rows: [CellRow; 2]) {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        // Plain loops, no `array::map`: its closures would not be compiled for AVX-512 and
        // would stay calls.
        let mut joined = [Zmm::zero(); 4];
        for (g, j) in joined.iter_mut().enumerate() {
            *j = Zmm::join(a[0][g], a[1][g]);
        }
        let c_prev = Zmm::join(ldw(rows[0].c_prev, w), ldw(rows[1].c_prev, w));
        let out = cell_math(joined, c_prev);
        let (mut lo, mut hi) = ([f32x8::ZERO; 7], [f32x8::ZERO; 7]);
        for (k, o) in out.iter().enumerate() {
            (lo[k], hi[k]) = o.split();
        }
        rows[0].store(lo, w);
        rows[1].store(hi, w);
    }
}

/// `Kernels::lstm_pointwise` for `Simd`.
pub(super) fn lstm_pointwise(
    pre: &[f32],
    c_prev: &[f32],
    gates: &mut [f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
    h: &mut [f32],
) {
    let hs = h.len();
    assert!(pre.len() == 4 * hs && gates.len() == 4 * hs);
    assert!(c_prev.len() == hs && c.len() == hs && tanh_c.len() == hs);
    let (pre, gates) = (pre.as_ptr(), gates.as_mut_ptr());
    let mut j = 0;
    while j < hs {
        let w = (hs - j).min(8);
        // SAFETY: units j .. j + w < hs of every gate and state.
        unsafe {
            let a = [0, 1, 2, 3].map(|g| ldw(pre.add(g * hs + j), w));
            let row = CellRow {
                c_prev: c_prev.as_ptr().add(j),
                gates: gates.add(j),
                gs: hs,
                c: c.as_mut_ptr().add(j),
                tanh_c: tanh_c.as_mut_ptr().add(j),
                h: h.as_mut_ptr().add(j),
            };
            lstm_cell(a, w, row);
        }
        j += 8;
    }
}

/// Raw views of one row of the LSTM pointwise backward.
#[derive(Clone, Copy)]
pub(super) struct BwdRow {
    pub(super) gates: *const f32,
    pub(super) c_prev: *const f32,
    pub(super) tanh_c: *const f32,
    pub(super) dh_ext: *const f32,
    pub(super) dh_rec: *const f32,
    pub(super) dc: *mut f32,
    pub(super) dpre: *mut f32,
}

impl BwdRow {
    /// The views `b` rows further on (4·hs per row in `gates` and `dpre`, hs in the rest).
    ///
    /// # Safety
    /// Row `b` is inside every buffer.
    #[inline(always)]
    unsafe fn row(self, b: usize, hs: usize) -> Self {
        // SAFETY: by the caller's contract.
        unsafe {
            Self {
                gates: self.gates.add(4 * b * hs),
                c_prev: self.c_prev.add(b * hs),
                tanh_c: self.tanh_c.add(b * hs),
                dh_ext: self.dh_ext.add(b * hs),
                dh_rec: self.dh_rec.add(b * hs),
                dc: self.dc.add(b * hs),
                dpre: self.dpre.add(4 * b * hs),
            }
        }
    }
}

/// The LSTM pointwise backward's arithmetic on one vector of units: from the gates `i, f, g, o`,
/// `tanh(c)`, `dh` (= dh_ext + dh_rec), dL/dc_t and `c_prev`, returns dL/d(pre-activations)
/// `[d_i, d_f, d_g, d_o]` and dL/dc_{t-1}.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bwd_math<V: Math>(i: V, f: V, g: V, o: V, tc: V, dh: V, dc: V, cp: V) -> [V; 5] {
    let one = V::splat(1.0);
    let dct = (dh * o).mul_add(one - tc * tc, dc);
    [
        dct * g * i * (one - i),
        dct * cp * f * (one - f),
        dct * i * (one - g * g),
        dh * tc * o * (one - o),
        dct * f,
    ]
}

/// The LSTM pointwise backward over `rows` rows of `hs` units (see `lstm_pointwise_backward`;
/// `p` at the first row, rows 4·hs apart in `gates` and `dpre`, hs apart in the rest): full
/// vectors of `V::N` units, then vectors of 8, then the tail.
///
/// # Safety
/// `p` points at `rows` rows: 4·hs gates and dpre, hs of the rest; `dh_rec` may alias nothing
/// written.
#[inline(always)]
unsafe fn lstm_rows_backward<V: Math>(rows: usize, hs: usize, p: BwdRow) {
    // SAFETY (whole body): rows below `rows`, units below hs.
    unsafe {
        for b in 0..rows {
            let p = p.row(b, hs);
            let mut j = 0;
            while j + V::N <= hs {
                // (Plain loads, no closure: a closure would not be compiled for AVX-512.)
                let g = p.gates.add(j);
                let out = bwd_math(
                    V::load(g),
                    V::load(g.add(hs)),
                    V::load(g.add(2 * hs)),
                    V::load(g.add(3 * hs)),
                    V::load(p.tanh_c.add(j)),
                    V::load(p.dh_ext.add(j)) + V::load(p.dh_rec.add(j)),
                    V::load(p.dc.add(j)),
                    V::load(p.c_prev.add(j)),
                );
                for (g, &d) in out[..4].iter().enumerate() {
                    d.store(p.dpre.add(g * hs + j));
                }
                out[4].store(p.dc.add(j));
                j += V::N;
            }
            while j < hs {
                lstm_units_backward(hs, p, j, (hs - j).min(8));
                j += 8;
            }
        }
    }
}

widest! {
    /// [`lstm_rows_backward`] at the widest lane width in use.
    pub(super) lstm_rows_backward_wide, lstm_rows_backward_zmm => lstm_rows_backward(
        rows: usize, hs: usize, p: BwdRow
    )
}

/// [`bwd_math`] for units `j .. j + w` (`w <= 8`) of one row, 8 lanes.
///
/// # Safety
/// As for [`lstm_rows_backward`] (one row), with `j + w <= hs`.
#[inline(always)]
unsafe fn lstm_units_backward(hs: usize, p: BwdRow, j: usize, w: usize) {
    // SAFETY: units j .. j + w <= hs of every gate and state.
    unsafe {
        let ld = |q: *const f32, off: usize| ldw(q.add(off + j), w);
        let out = bwd_math(
            ld(p.gates, 0),
            ld(p.gates, hs),
            ld(p.gates, 2 * hs),
            ld(p.gates, 3 * hs),
            ld(p.tanh_c, 0),
            ld(p.dh_ext, 0) + ld(p.dh_rec, 0),
            ld(p.dc, 0),
            ld(p.c_prev, 0),
        );
        for (g, &d) in out[..4].iter().enumerate() {
            stw(p.dpre.add(g * hs + j), d, w);
        }
        stw(p.dc.add(j), out[4], w);
    }
}

/// `Kernels::lstm_pointwise_backward` for `Simd`.
pub(super) fn lstm_pointwise_backward(
    gates: &[f32],
    c_prev: &[f32],
    tanh_c: &[f32],
    dh_ext: &[f32],
    dh_rec: &[f32],
    dc: &mut [f32],
    dpre: &mut [f32],
) {
    let hs = dc.len();
    assert!(gates.len() == 4 * hs && dpre.len() == 4 * hs);
    assert!(c_prev.len() == hs && tanh_c.len() == hs);
    assert!(dh_ext.len() == hs && dh_rec.len() == hs);
    let p = BwdRow {
        gates: gates.as_ptr(),
        c_prev: c_prev.as_ptr(),
        tanh_c: tanh_c.as_ptr(),
        dh_ext: dh_ext.as_ptr(),
        dh_rec: dh_rec.as_ptr(),
        dc: dc.as_mut_ptr(),
        dpre: dpre.as_mut_ptr(),
    };
    // SAFETY: one row of H units, lengths checked above.
    unsafe { lstm_rows_backward_wide(1, hs, p) }
}

// ---------------------------------------------------------------------------------------------
// tanh RNN

/// `Kernels::tanh_pointwise` for `Simd`.
// Inlined so that with the constant sizes of `step` the checks fold away: the batch-1 step
// keeps no panic path.
#[inline(always)]
pub(super) fn tanh_pointwise(pre: &[f32], h: &mut [f32]) {
    if cfg!(target_arch = "arm") {
        super::super::mcu::tanh_slice(pre, h); // Cortex-M: the scalar tanh (same math)
        return;
    }
    let hs = h.len();
    assert!(pre.len() == hs);
    let (x, y) = (pre.as_ptr(), h.as_mut_ptr());
    let full = hs - hs % 8;
    // SAFETY (whole block): elements below hs.
    unsafe {
        let mut j = 0;
        while j < full {
            stp(y.add(j), tanh(ldp(x.add(j))));
            j += 8;
        }
        if j < hs {
            stw(y.add(j), tanh(ldw(x.add(j), hs - j)), hs - j);
        }
    }
}

/// `Kernels::tanh_pointwise_backward` for `Simd`.
pub(super) fn tanh_pointwise_backward(h: &[f32], dh_ext: &[f32], dh_rec: &[f32], dpre: &mut [f32]) {
    let hs = dpre.len();
    assert!(h.len() == hs && dh_ext.len() == hs && dh_rec.len() == hs);
    let (hp, ep, rp, dp) = (
        h.as_ptr(),
        dh_ext.as_ptr(),
        dh_rec.as_ptr(),
        dpre.as_mut_ptr(),
    );
    let one = f32x8::ONE;
    let full = hs - hs % 8;
    // SAFETY (whole block): elements below hs.
    unsafe {
        let mut j = 0;
        while j < full {
            let hv = ldp(hp.add(j));
            let dh = ldp(ep.add(j)) + ldp(rp.add(j));
            stp(dp.add(j), dh * (one - hv * hv));
            j += 8;
        }
        if j < hs {
            let w = hs - j;
            let hv = ldw(hp.add(j), w);
            let dh = ldw(ep.add(j), w) + ldw(rp.add(j), w);
            stw(dp.add(j), dh * (one - hv * hv), w);
        }
    }
}
