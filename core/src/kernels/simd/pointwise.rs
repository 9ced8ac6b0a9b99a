//! The cells' pointwise updates on vectors of units, each forward beside its backward: the
//! LSTM cell (`lstm_pointwise`, and `lstm_cell`, which the fused and batch-1 steps run on their
//! accumulators) and its backward (`lstm_pointwise_backward`, and the rows that
//! `lstm_backward_step` runs), then the GRU's and the tanh RNN's. The arithmetic is written once over
//! [`Math`] (`cell_math`, `bwd_math`) and runs 8 lanes wide, or 16 where the CPU has AVX-512F,
//! with the same bits.

use super::super::lanes::{Lanes, Math, Vec8};
use super::fits;
use super::math::{sigmoid, tanh};

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
    unsafe fn store<E: Vec8>(self, out: [E; 7], w: usize) {
        let [i, f, g, o, c, tc, h] = out;
        // SAFETY (whole body): by the caller's contract.
        unsafe {
            i.store_n(self.gates, w);
            f.store_n(self.gates.add(self.gs), w);
            g.store_n(self.gates.add(2 * self.gs), w);
            o.store_n(self.gates.add(3 * self.gs), w);
            c.store_n(self.c, w);
            tc.store_n(self.tanh_c, w);
            h.store_n(self.h, w);
        }
    }
}

/// The LSTM cell update for 8 units (`w` of them valid) of one row from their 4 pre-activations.
///
/// # Safety
/// As for [`CellRow::store`], and `c_prev` readable for `min(w, 8)` elements.
#[inline(always)]
pub(super) unsafe fn lstm_cell<E: Vec8>(a: [E; 4], w: usize, row: CellRow) {
    // SAFETY (whole body): by the caller's contract.
    unsafe { row.store(cell_math(a, E::load_n(row.c_prev, w)), w) }
}

/// [`lstm_cell`] for the same 8 units of two rows at once, on 16 lanes (`V::N == 16`).
///
/// # Safety
/// As for [`lstm_cell`], for both rows.
#[inline(always)]
pub(super) unsafe fn lstm_cell_pair<V: Math>(a: [[V::L8; 4]; 2], w: usize, rows: [CellRow; 2]) {
    debug_assert!(V::N == 16);
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        // Plain loops, no `array::map`: its closures would not be compiled for AVX-512 and
        // would stay calls.
        let mut joined = [V::zero(); 4];
        for (g, j) in joined.iter_mut().enumerate() {
            *j = V::join(a[0][g], a[1][g]);
        }
        let c_prev = V::join(
            V::L8::load_n(rows[0].c_prev, w),
            V::L8::load_n(rows[1].c_prev, w),
        );
        let out = cell_math(joined, c_prev);
        let (mut lo, mut hi) = ([V::L8::zero(); 7], [V::L8::zero(); 7]);
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
    let row = CellRow {
        c_prev: c_prev.as_ptr(),
        gates: gates.as_mut_ptr(),
        gs: hs,
        c: c.as_mut_ptr(),
        tanh_c: tanh_c.as_mut_ptr(),
        h: h.as_mut_ptr(),
    };
    // SAFETY: H units of every gate and state, lengths checked above.
    unsafe { lstm_units_wide(hs, pre.as_ptr(), row) }
}

/// The LSTM cell update for one row of `hs` units, 8 at a time: `pre` (4H) and `row` at unit 0.
///
/// # Safety
/// `pre` readable for 4H, `row`'s buffers valid for H units (gates: 4H).
#[inline(always)]
unsafe fn lstm_units<E: Vec8>(hs: usize, pre: *const f32, row: CellRow) {
    let mut j = 0;
    while j < hs {
        let w = (hs - j).min(8);
        // SAFETY: units j .. j + w <= hs of every gate and state.
        unsafe {
            let mut a = [E::zero(); 4];
            for (g, a) in a.iter_mut().enumerate() {
                *a = E::load_n(pre.add(g * hs + j), w);
            }
            let at = CellRow {
                c_prev: row.c_prev.add(j),
                gates: row.gates.add(j),
                gs: hs,
                c: row.c.add(j),
                tanh_c: row.tanh_c.add(j),
                h: row.h.add(j),
            };
            lstm_cell(a, w, at);
        }
        j += 8;
    }
}

lanes8! {
    /// [`lstm_units`] on the instruction set in use.
    lstm_units_wide => lstm_units(hs: usize, pre: *const f32, row: CellRow)
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
                lstm_units_backward::<V::L8>(hs, p, j, (hs - j).min(8));
                j += 8;
            }
        }
    }
}

widest! {
    /// [`lstm_rows_backward`] at the widest lane width in use.
    pub(super) lstm_rows_backward_wide => lstm_rows_backward(
        rows: usize, hs: usize, p: BwdRow
    )
}

/// [`bwd_math`] for units `j .. j + w` (`w <= 8`) of one row, 8 lanes.
///
/// # Safety
/// As for [`lstm_rows_backward`] (one row), with `j + w <= hs`.
#[inline(always)]
unsafe fn lstm_units_backward<E: Vec8>(hs: usize, p: BwdRow, j: usize, w: usize) {
    // SAFETY: units j .. j + w <= hs of every gate and state.
    unsafe {
        // (Plain loads, no closure: a closure would not be compiled for AVX2 / AVX-512.)
        let g = p.gates.add(j);
        let out = bwd_math(
            E::load_n(g, w),
            E::load_n(g.add(hs), w),
            E::load_n(g.add(2 * hs), w),
            E::load_n(g.add(3 * hs), w),
            E::load_n(p.tanh_c.add(j), w),
            E::load_n(p.dh_ext.add(j), w) + E::load_n(p.dh_rec.add(j), w),
            E::load_n(p.dc.add(j), w),
            E::load_n(p.c_prev.add(j), w),
        );
        for (g, &d) in out[..4].iter().enumerate() {
            d.store_n(p.dpre.add(g * hs + j), w);
        }
        out[4].store_n(p.dc.add(j), w);
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
// GRU

/// The GRU cell's arithmetic on one vector of units: from `ax`, `ah` (`[r, z, n]` parts) and
/// `h_prev`, returns `[r, z, n, h]` with `h = n + z (h_prev - n)` (= `(1 - z) n + z h_prev`).
#[inline(always)]
fn gru_math<V: Math>(ax: [V; 3], ah: [V; 3], hp: V) -> [V; 4] {
    let r = sigmoid(ax[0] + ah[0]);
    let z = sigmoid(ax[1] + ah[1]);
    let n = tanh(r.mul_add(ah[2], ax[2]));
    [r, z, n, z.mul_add(hp - n, n)]
}

/// The GRU pointwise backward's arithmetic on one vector of units: from `r, z, n`, `ah_n`,
/// `h_prev` and `dh`, returns `[da_r, da_z, da_n, dah_n, dh ⊙ z]` (see `cell/gru.rs`).
#[inline(always)]
fn gru_bwd_math<V: Math>(r: V, z: V, n: V, hn: V, hp: V, dh: V) -> [V; 5] {
    let one = V::splat(1.0);
    let da_n = dh * (one - z) * (one - n * n);
    let da_r = da_n * hn * r * (one - r);
    let da_z = dh * (hp - n) * z * (one - z);
    [da_r, da_z, da_n, da_n * r, dh * z]
}

/// Raw views of one row of the GRU pointwise forward (`ax`, `ah` 3H, `cache` 4H, the rest H).
#[derive(Clone, Copy)]
struct GruRow {
    ax: *const f32,
    ah: *const f32,
    h_prev: *const f32,
    cache: *mut f32,
    h: *mut f32,
}

impl GruRow {
    /// The views `b` rows further on.
    ///
    /// # Safety
    /// Row `b` is inside every buffer.
    #[inline(always)]
    unsafe fn row(self, b: usize, hs: usize) -> Self {
        // SAFETY: by the caller's contract.
        unsafe {
            Self {
                ax: self.ax.add(3 * b * hs),
                ah: self.ah.add(3 * b * hs),
                h_prev: self.h_prev.add(b * hs),
                cache: self.cache.add(4 * b * hs),
                h: self.h.add(b * hs),
            }
        }
    }
}

/// The GRU pointwise forward over `rows` rows of `hs` units: full vectors of `V::N` units, then
/// vectors of 8 (the last one partial).
///
/// # Safety
/// `p` points at `rows` rows of every buffer; `h` aliases nothing read.
#[inline(always)]
unsafe fn gru_rows<V: Math>(rows: usize, hs: usize, p: GruRow) {
    // SAFETY (whole body): rows below `rows`, units below hs.
    unsafe {
        for b in 0..rows {
            let p = p.row(b, hs);
            let mut j = 0;
            // (Plain loads, no closure: a closure would not be compiled for AVX-512.)
            while j + V::N <= hs {
                let (x, a) = (p.ax.add(j), p.ah.add(j));
                let an = V::load(a.add(2 * hs));
                let out = gru_math(
                    [V::load(x), V::load(x.add(hs)), V::load(x.add(2 * hs))],
                    [V::load(a), V::load(a.add(hs)), an],
                    V::load(p.h_prev.add(j)),
                );
                let c = p.cache.add(j);
                out[0].store(c);
                out[1].store(c.add(hs));
                out[2].store(c.add(2 * hs));
                an.store(c.add(3 * hs));
                out[3].store(p.h.add(j));
                j += V::N;
            }
            gru_units::<V::L8>(hs, p, j);
        }
    }
}

/// [`gru_rows`] for units `j..hs` of one row, 8 at a time (the last vector partial).
///
/// # Safety
/// As for [`gru_rows`] (one row), with `j <= hs`.
#[inline(always)]
unsafe fn gru_units<E: Vec8>(hs: usize, p: GruRow, mut j: usize) {
    // SAFETY (whole body): units j .. hs of the row, by the caller's contract.
    unsafe {
        while j < hs {
            let w = (hs - j).min(8);
            let (x, a) = (p.ax.add(j), p.ah.add(j));
            let an = E::load_n(a.add(2 * hs), w);
            let out = gru_math(
                [
                    E::load_n(x, w),
                    E::load_n(x.add(hs), w),
                    E::load_n(x.add(2 * hs), w),
                ],
                [E::load_n(a, w), E::load_n(a.add(hs), w), an],
                E::load_n(p.h_prev.add(j), w),
            );
            let c = p.cache.add(j);
            out[0].store_n(c, w);
            out[1].store_n(c.add(hs), w);
            out[2].store_n(c.add(2 * hs), w);
            an.store_n(c.add(3 * hs), w);
            out[3].store_n(p.h.add(j), w);
            j += 8;
        }
    }
}

widest! {
    /// [`gru_rows`] at the widest lane width in use.
    gru_rows_wide => gru_rows(rows: usize, hs: usize, p: GruRow)
}

/// `Kernels::gru_pointwise` for `Simd`.
pub(super) fn gru_pointwise(
    batch: usize,
    hs: usize,
    ax: &[f32],
    ah: &[f32],
    h_prev: &[f32],
    cache: &mut [f32],
    h: &mut [f32],
) {
    if cfg!(target_arch = "arm") {
        // Cortex-M: the scalar twin (the batch-1 step's activations stay libm's there).
        <super::super::Naive as super::super::Kernels<f32>>::gru_pointwise(
            batch, hs, ax, ah, h_prev, cache, h,
        );
        return;
    }
    let (g3, g4) = (hs.saturating_mul(3), hs.saturating_mul(4));
    assert!(fits(ax.len(), batch, g3) && fits(ah.len(), batch, g3));
    assert!(fits(h_prev.len(), batch, hs) && fits(h.len(), batch, hs));
    assert!(fits(cache.len(), batch, g4));
    let p = GruRow {
        ax: ax.as_ptr(),
        ah: ah.as_ptr(),
        h_prev: h_prev.as_ptr(),
        cache: cache.as_mut_ptr(),
        h: h.as_mut_ptr(),
    };
    // SAFETY: `batch` rows, lengths checked above; `h` is a `&mut` apart from the inputs.
    unsafe { gru_rows_wide(batch, hs, p) }
}

/// Raw views of one row of the GRU pointwise backward (`cache` 4H, `dax`, `dah` 3H, the rest H).
#[derive(Clone, Copy)]
struct GruBwdRow {
    cache: *const f32,
    h_prev: *const f32,
    dh_ext: *const f32,
    dh_carry: *mut f32,
    dax: *mut f32,
    dah: *mut f32,
}

impl GruBwdRow {
    /// The views `b` rows further on.
    ///
    /// # Safety
    /// Row `b` is inside every buffer.
    #[inline(always)]
    unsafe fn row(self, b: usize, hs: usize) -> Self {
        // SAFETY: by the caller's contract.
        unsafe {
            Self {
                cache: self.cache.add(4 * b * hs),
                h_prev: self.h_prev.add(b * hs),
                dh_ext: self.dh_ext.add(b * hs),
                dh_carry: self.dh_carry.add(b * hs),
                dax: self.dax.add(3 * b * hs),
                dah: self.dah.add(3 * b * hs),
            }
        }
    }
}

/// The GRU pointwise backward over `rows` rows of `hs` units: full vectors of `V::N` units, then
/// vectors of 8 (the last one partial).
///
/// # Safety
/// `p` points at `rows` rows of every buffer; the outputs alias nothing read but `dh_carry`
/// itself (read before written, per unit).
#[inline(always)]
unsafe fn gru_rows_backward<V: Math>(rows: usize, hs: usize, p: GruBwdRow) {
    // SAFETY (whole body): rows below `rows`, units below hs.
    unsafe {
        for b in 0..rows {
            let p = p.row(b, hs);
            let mut j = 0;
            while j + V::N <= hs {
                let c = p.cache.add(j);
                let out = gru_bwd_math(
                    V::load(c),
                    V::load(c.add(hs)),
                    V::load(c.add(2 * hs)),
                    V::load(c.add(3 * hs)),
                    V::load(p.h_prev.add(j)),
                    V::load(p.dh_ext.add(j)) + V::load(p.dh_carry.add(j)),
                );
                let (x, a) = (p.dax.add(j), p.dah.add(j));
                out[0].store(x);
                out[1].store(x.add(hs));
                out[2].store(x.add(2 * hs));
                out[0].store(a);
                out[1].store(a.add(hs));
                out[3].store(a.add(2 * hs));
                out[4].store(p.dh_carry.add(j));
                j += V::N;
            }
            gru_units_backward::<V::L8>(hs, p, j);
        }
    }
}

/// [`gru_rows_backward`] for units `j..hs` of one row, 8 at a time (the last vector partial).
///
/// # Safety
/// As for [`gru_rows_backward`] (one row), with `j <= hs`.
#[inline(always)]
unsafe fn gru_units_backward<E: Vec8>(hs: usize, p: GruBwdRow, mut j: usize) {
    // SAFETY (whole body): units j .. hs of the row, by the caller's contract.
    unsafe {
        while j < hs {
            let w = (hs - j).min(8);
            let c = p.cache.add(j);
            let out = gru_bwd_math(
                E::load_n(c, w),
                E::load_n(c.add(hs), w),
                E::load_n(c.add(2 * hs), w),
                E::load_n(c.add(3 * hs), w),
                E::load_n(p.h_prev.add(j), w),
                E::load_n(p.dh_ext.add(j), w) + E::load_n(p.dh_carry.add(j), w),
            );
            let (x, a) = (p.dax.add(j), p.dah.add(j));
            out[0].store_n(x, w);
            out[1].store_n(x.add(hs), w);
            out[2].store_n(x.add(2 * hs), w);
            out[0].store_n(a, w);
            out[1].store_n(a.add(hs), w);
            out[3].store_n(a.add(2 * hs), w);
            out[4].store_n(p.dh_carry.add(j), w);
            j += 8;
        }
    }
}

widest! {
    /// [`gru_rows_backward`] at the widest lane width in use.
    gru_rows_backward_wide => gru_rows_backward(
        rows: usize, hs: usize, p: GruBwdRow
    )
}

/// `Kernels::gru_pointwise_backward` for `Simd`.
#[allow(clippy::too_many_arguments)]
pub(super) fn gru_pointwise_backward(
    batch: usize,
    hs: usize,
    cache: &[f32],
    h_prev: &[f32],
    dh_ext: &[f32],
    dh_carry: &mut [f32],
    dax: &mut [f32],
    dah: &mut [f32],
) {
    let (g3, g4) = (hs.saturating_mul(3), hs.saturating_mul(4));
    assert!(fits(cache.len(), batch, g4) && fits(h_prev.len(), batch, hs));
    assert!(fits(dh_ext.len(), batch, hs) && fits(dh_carry.len(), batch, hs));
    assert!(fits(dax.len(), batch, g3) && fits(dah.len(), batch, g3));
    let p = GruBwdRow {
        cache: cache.as_ptr(),
        h_prev: h_prev.as_ptr(),
        dh_ext: dh_ext.as_ptr(),
        dh_carry: dh_carry.as_mut_ptr(),
        dax: dax.as_mut_ptr(),
        dah: dah.as_mut_ptr(),
    };
    // SAFETY: `batch` rows, lengths checked above; the outputs are `&mut`s apart from the inputs.
    unsafe { gru_rows_backward_wide(batch, hs, p) }
}

// ---------------------------------------------------------------------------------------------
// tanh RNN

/// `h = tanh(pre)` over `n` elements.
///
/// # Safety
/// `x` readable and `y` writable for `n` elements.
#[inline(always)]
unsafe fn tanh_slice<E: Vec8>(n: usize, x: *const f32, y: *mut f32) {
    let full = n - n % 8;
    // SAFETY (whole block): elements below n.
    unsafe {
        let mut j = 0;
        while j < full {
            tanh(E::load(x.add(j))).store(y.add(j));
            j += 8;
        }
        if j < n {
            tanh(E::load_n(x.add(j), n - j)).store_n(y.add(j), n - j);
        }
    }
}

lanes8! {
    /// [`tanh_slice`] on the instruction set in use.
    tanh_slice_wide => tanh_slice(n: usize, x: *const f32, y: *mut f32)
}

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
    // SAFETY: hs elements of each, checked above.
    unsafe { tanh_slice_wide(hs, pre.as_ptr(), h.as_mut_ptr()) }
}

/// `dpre = (dh_ext + dh_rec) · (1 - h²)` over `n` elements.
///
/// # Safety
/// `hp`, `ep`, `rp` readable and `dp` writable for `n` elements.
#[inline(always)]
unsafe fn tanh_backward_slice<E: Vec8>(
    n: usize,
    hp: *const f32,
    ep: *const f32,
    rp: *const f32,
    dp: *mut f32,
) {
    let one = E::splat(1.0);
    let full = n - n % 8;
    // SAFETY (whole block): elements below n.
    unsafe {
        let mut j = 0;
        while j < full {
            let hv = E::load(hp.add(j));
            let dh = E::load(ep.add(j)) + E::load(rp.add(j));
            (dh * (one - hv * hv)).store(dp.add(j));
            j += 8;
        }
        if j < n {
            let w = n - j;
            let hv = E::load_n(hp.add(j), w);
            let dh = E::load_n(ep.add(j), w) + E::load_n(rp.add(j), w);
            (dh * (one - hv * hv)).store_n(dp.add(j), w);
        }
    }
}

lanes8! {
    /// [`tanh_backward_slice`] on the instruction set in use.
    tanh_backward_slice_wide => tanh_backward_slice(
        n: usize, hp: *const f32, ep: *const f32, rp: *const f32, dp: *mut f32
    )
}

/// `Kernels::tanh_pointwise_backward` for `Simd`.
pub(super) fn tanh_pointwise_backward(h: &[f32], dh_ext: &[f32], dh_rec: &[f32], dpre: &mut [f32]) {
    let hs = dpre.len();
    assert!(h.len() == hs && dh_ext.len() == hs && dh_rec.len() == hs);
    // SAFETY: hs elements of each, checked above.
    unsafe {
        tanh_backward_slice_wide(
            hs,
            h.as_ptr(),
            dh_ext.as_ptr(),
            dh_rec.as_ptr(),
            dpre.as_mut_ptr(),
        )
    }
}
