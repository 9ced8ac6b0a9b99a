//! The recurrent time steps over a batch. Forward, fused: 32 output columns (4 vectors of 8, or
//! 2 of 16) of one panel of the packed `W_hhᵀ` (the layout is `panel.rs`'s) for MR rows of the
//! batch; the input projection goes through the same microkernel from the packed `W_ihᵀ`, or a
//! panel of `W_ih` transposed onto the stack, and the LSTM cell update (or the RNN's tanh) runs
//! on the accumulators before they leave the registers. Backward, beside it: the pointwise
//! backward row by row, then `dh_carry = dpre · W_hh` through the broadcast tiles of `gemm.rs`.

use core::mem::MaybeUninit;
use core::ptr;

use super::super::lanes::{Lanes, Math, Vec8};
use super::super::{PANEL, lstm_ih_packed_len, lstm_packed_len, rnn_ih_packed_len, rnn_packed_len};
use super::fits;
use super::gemm::{KB_NN, Strided, gemm_wide};
use super::math::tanh;
use super::pointwise::{
    BwdRow, CellRow, lstm_cell, lstm_cell_pair, lstm_rows_backward_wide, tanh_pointwise_backward,
};

/// Columns of `W_ihᵀ` per stack panel: 32 x 32 scalars, 4 KiB of stack.
const XK: usize = 32;

/// Raw views of one fused step's operands (lengths checked by the caller).
#[derive(Clone, Copy)]
struct StepBufs {
    hs: usize,
    is: usize,
    /// Row length of `pre` (and `gates`): 4H (LSTM) or H (RNN).
    ld: usize,
    x: *const f32,
    h_prev: *const f32,
    c_prev: *const f32,
    /// The pre-activations (set by the last pass); the partial sums of all but the last pass
    /// over `W_ih` wait there too.
    pre: *mut f32,
    gates: *mut f32,
    c: *mut f32,
    tanh_c: *mut f32,
    h: *mut f32,
}

/// Where the accumulators of a pass start from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Init {
    /// The panel's bias row.
    Bias,
    /// The partial sums an earlier pass stored in `pre`.
    Pre,
}

/// Which cell a fused step computes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cell {
    Lstm,
    Rnn,
}

/// Where the `v`-th 8-column vector (0..4) of the panel of units `u0..` lives in a row of the
/// pre-activations (i.e. which rows of `W_ih` it comes from), and how many of its lanes are real
/// units.
#[inline(always)]
fn pre_slot(cell: Cell, hs: usize, u0: usize, v: usize) -> (usize, usize) {
    match cell {
        // Gate v of units u0 .. u0 + 8.
        Cell::Lstm => (v * hs + u0, (hs - u0).min(8)),
        // Units u0 + 8v .. u0 + 8v + 8.
        Cell::Rnn => (u0 + 8 * v, hs.saturating_sub(u0 + 8 * v).min(8)),
    }
}

/// The cell update's view of row `row` of a fused step at units `u0..`.
#[inline(always)]
fn cell_row(s: &StepBufs, row: usize, u0: usize) -> CellRow {
    let at = row * s.hs + u0;
    // wrapping_add: the pointers are only dereferenced for valid rows (the RNN passes null
    // LSTM buffers and never builds a CellRow).
    CellRow {
        c_prev: s.c_prev.wrapping_add(at),
        gates: s.gates.wrapping_add(row * s.ld + u0),
        gs: s.hs,
        c: s.c.wrapping_add(at),
        tanh_c: s.tanh_c.wrapping_add(at),
        h: s.h.wrapping_add(at),
    }
}

/// Returns `acc[r] + Σ_{p < k} a[r·lda + p] · b[p·PANEL .. + 2N]` for the MR rows of a step tile. (A
/// function, not a closure: a closure would not be compiled with the 16-lane caller's target
/// features, and its intrinsics would stay calls.)
///
/// # Safety
/// `a` holds MR rows of k at stride `lda`; `b` k rows of 2N at stride `PANEL`.
#[inline(always)]
unsafe fn panel_run<V: Lanes, const MR: usize>(
    mut acc: [[V; 2]; MR],
    a: *const f32,
    lda: usize,
    k: usize,
    b: *const f32,
) -> [[V; 2]; MR] {
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        for p in 0..k {
            let bp = b.add(p * PANEL);
            let b = [V::load(bp), V::load(bp.add(V::N))];
            for (rr, acc) in acc.iter_mut().enumerate() {
                let av = V::splat(*a.add(rr * lda + p));
                acc[0] = av.mul_add(b[0], acc[0]);
                acc[1] = av.mul_add(b[1], acc[1]);
            }
        }
    }
    acc
}

/// One MR x 2N tile of a fused step (N = `V::N` lanes): columns `8·v0 .. 8·v0 + 2N` of the panel
/// of units `u0..` for rows `r .. r + MR`. Accumulators start from `init`, take
/// `x[.., q0 .. q0 + xk] · xpanel` and, if `last`, `h_prev · W_hhᵀ`. Then, if `last`, (LSTM)
/// they are kept in `tile` (8 columns per entry) for the cell update, or (RNN) stored to `pre`
/// (the cell's cache) and `h = tanh(·)`; else stored to `pre` for the next pass. (The LSTM's
/// pre-activations never leave the registers: nothing reads them, and storing them wrote 256 KiB
/// of new cache lines per step of W1.)
///
/// # Safety
/// `s` describes valid buffers of at least `r + MR` rows; `panel` is the packed panel of units
/// `u0..`; `xpanel` holds `xk` rows of 32; `8·v0 + 2N <= 32`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_tile<V: Math, const MR: usize>(
    cell: Cell,
    s: &StepBufs,
    r: usize,
    u0: usize,
    v0: usize,
    panel: *const f32,
    init: Init,
    (q0, xk, xpanel): (usize, usize, *const f32),
    last: bool,
    tile: &mut [[MaybeUninit<V::L8>; 4]; MR],
) {
    let (hs, ld) = (s.hs, s.ld);
    // The tile's 8-column slices: v0 .. v0 + 2N/8.
    let slices = 2 * V::N / 8;
    let slot = |v: usize| pre_slot(cell, hs, u0, v0 + v);
    // SAFETY (whole body): rows r .. r + MR, columns of units below hs, by the caller's contract.
    unsafe {
        // Started from the bias either way (a zeroed array would be a memset in memory).
        let bias = [
            V::load(panel.add(8 * v0)),
            V::load(panel.add(8 * v0 + V::N)),
        ];
        let mut acc = [bias; MR];
        if init == Init::Pre {
            for (rr, acc) in acc.iter_mut().enumerate() {
                let mut row = [0.0f32; PANEL];
                for v in 0..slices {
                    let (at, w) = slot(v);
                    if w > 0 {
                        V::L8::load_n(s.pre.add((r + rr) * ld + at), w)
                            .store(row.as_mut_ptr().add(8 * v));
                    }
                }
                *acc = [V::load(row.as_ptr()), V::load(row.as_ptr().add(V::N))];
            }
        }
        if xk > 0 {
            acc = panel_run(acc, s.x.add(r * s.is + q0), s.is, xk, xpanel.add(8 * v0));
        }
        if last {
            acc = panel_run(acc, s.h_prev.add(r * hs), hs, hs, panel.add(PANEL + 8 * v0));
        }
        for (rr, acc) in acc.iter().enumerate() {
            let mut row = [0.0f32; PANEL];
            acc[0].store(row.as_mut_ptr());
            acc[1].store(row.as_mut_ptr().add(V::N));
            for v in 0..slices {
                let a = V::L8::load(row.as_ptr().add(8 * v));
                let (at, w) = slot(v);
                if last && cell == Cell::Lstm {
                    tile[rr][v0 + v] = MaybeUninit::new(a);
                }
                if w > 0 && !(last && cell == Cell::Lstm) {
                    a.store_n(s.pre.add((r + rr) * ld + at), w);
                    if last && cell == Cell::Rnn {
                        tanh(a).store_n(s.h.add((r + rr) * hs + at), w);
                    }
                }
            }
        }
    }
}

/// One row of a step's tile: the 4 gates' pre-activations of the panel's 8 units.
///
/// # Safety
/// All four written.
#[inline(always)]
unsafe fn gates4<E: Vec8>(t: &[MaybeUninit<E>; 4]) -> [E; 4] {
    // SAFETY: by the caller's contract.
    unsafe {
        [
            t[0].assume_init(),
            t[1].assume_init(),
            t[2].assume_init(),
            t[3].assume_init(),
        ]
    }
}

/// Rows `r .. r + MR` of one panel: the panel's 32 columns in tiles of 2·`V::N`, then (on the
/// last pass, LSTM) the cell updates from the tile's pre-activations.
///
/// # Safety
/// As for [`step_tile`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_rows<V: Math, const MR: usize>(
    cell: Cell,
    s: &StepBufs,
    r: usize,
    u0: usize,
    panel: *const f32,
    init: Init,
    x: (usize, usize, *const f32),
    last: bool,
) {
    // Not zeroed (with 12 rows a 1.5 KiB memset per call): on the last pass of an LSTM, which
    // alone reads it, the tiles write every entry.
    let mut tile = [[MaybeUninit::<V::L8>::uninit(); 4]; MR];
    // SAFETY (whole body): by the caller's contract.
    unsafe {
        let mut v0 = 0;
        while 8 * v0 < PANEL {
            step_tile::<V, MR>(cell, s, r, u0, v0, panel, init, x, last, &mut tile);
            v0 += 2 * V::N / 8;
        }
        if last && cell == Cell::Lstm {
            let w = (s.hs - u0).min(8);
            let mut rr = 0;
            // With 16 lanes, two rows per cell update (the same bits as one row at a time).
            if V::N == 16 {
                while rr + 2 <= MR {
                    let rows = [cell_row(s, r + rr, u0), cell_row(s, r + rr + 1, u0)];
                    lstm_cell_pair::<V>([gates4(&tile[rr]), gates4(&tile[rr + 1])], w, rows);
                    rr += 2;
                }
            }
            while rr < MR {
                lstm_cell(gates4(&tile[rr]), w, cell_row(s, r + rr, u0));
                rr += 1;
            }
        }
    }
}

/// All `batch` rows of one panel (one pass over `x`): tiles of MR rows, then the rest.
///
/// # Safety
/// As for [`step_tile`], for rows below `batch`; MR <= 12.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn step_panel<V: Math, const MR: usize>(
    cell: Cell,
    batch: usize,
    s: &StepBufs,
    u0: usize,
    panel: *const f32,
    init: Init,
    x: (usize, usize, *const f32),
    last: bool,
) {
    let mut r = 0;
    // SAFETY (whole body): rows below batch, by the caller's contract.
    unsafe {
        while r + MR <= batch {
            step_rows::<V, MR>(cell, s, r, u0, panel, init, x, last);
            r += MR;
        }
        match batch - r {
            11 => step_rows::<V, 11>(cell, s, r, u0, panel, init, x, last),
            10 => step_rows::<V, 10>(cell, s, r, u0, panel, init, x, last),
            9 => step_rows::<V, 9>(cell, s, r, u0, panel, init, x, last),
            8 => step_rows::<V, 8>(cell, s, r, u0, panel, init, x, last),
            7 => step_rows::<V, 7>(cell, s, r, u0, panel, init, x, last),
            6 => step_rows::<V, 6>(cell, s, r, u0, panel, init, x, last),
            5 => step_rows::<V, 5>(cell, s, r, u0, panel, init, x, last),
            4 => step_rows::<V, 4>(cell, s, r, u0, panel, init, x, last),
            3 => step_rows::<V, 3>(cell, s, r, u0, panel, init, x, last),
            2 => step_rows::<V, 2>(cell, s, r, u0, panel, init, x, last),
            1 => step_rows::<V, 1>(cell, s, r, u0, panel, init, x, last),
            _ => {}
        }
    }
}

/// Transposes the rows of `W_ih` behind the 32 columns of the panel of units `u0..`, columns
/// `q0 .. q0 + xk` (`xk <= XK`), into `xb` (`xk` rows of 32, every element written; columns
/// past H zero), by 8 x 8 blocks.
///
/// # Safety
/// `w_ih` holds the cell's rows x `is`; `q0 + xk <= is`; `xb` writable for `PANEL · XK` scalars
/// (it may be uninitialised).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack_x<E: Vec8>(
    cell: Cell,
    hs: usize,
    is: usize,
    u0: usize,
    q0: usize,
    xk: usize,
    w_ih: *const f32,
    xb: *mut f32,
) {
    for v in 0..4 {
        let (row0, w) = pre_slot(cell, hs, u0, v);
        // SAFETY (whole block): rows row0 .. row0 + w of W_ih, columns q0 .. q0 + xk; xb rows
        // below xk <= XK.
        unsafe {
            let src = w_ih.add(row0 * is + q0);
            let mut q = 0;
            while q + 8 <= xk {
                let mut blk = [E::zero(); 8];
                for (l, b) in blk.iter_mut().enumerate().take(w) {
                    *b = E::load(src.add(l * is + q));
                }
                for (j, &t) in E::transpose(blk).iter().enumerate() {
                    t.store(xb.add((q + j) * PANEL + 8 * v));
                }
                q += 8;
            }
            while q < xk {
                for l in 0..8 {
                    *xb.add(q * PANEL + 8 * v + l) = if l < w { *src.add(l * is + q) } else { 0.0 };
                }
                q += 1;
            }
        }
    }
}

/// The fused step for all rows and panels. `W_ih` comes pre-packed (`packed_ih` non-null: one
/// pass, the input projection and the recurrent product in the same accumulators) or is
/// transposed onto the stack 32 of its columns at a time at every step; then all but the last
/// such chunk go through `pre`.
///
/// # Safety
/// `s` describes buffers of `batch` rows, `w_ih` holds (rows of the cell) x `is`, `packed` the
/// packed weights of the cell, `packed_ih` is null or the packed `W_ih`.
#[inline(always)]
unsafe fn fused_step<V: Math>(
    cell: Cell,
    batch: usize,
    s: &StepBufs,
    w_ih: *const f32,
    packed: *const f32,
    packed_ih: *const f32,
) {
    let (hs, is) = (s.hs, s.is);
    let psz = PANEL * (hs + 1);
    let (panels, units) = match cell {
        Cell::Lstm => (hs.div_ceil(8), 8),
        Cell::Rnn => (hs.div_ceil(PANEL), PANEL),
    };
    let prepacked = !packed_ih.is_null();
    let passes = if prepacked { 1 } else { is.div_ceil(XK).max(1) };
    // Not zeroed (4 KiB per call, most often unused): `pack_x` writes every element of the
    // `xk` rows that are then read.
    let mut xbuf = core::mem::MaybeUninit::<[f32; PANEL * XK]>::uninit();
    let xb = xbuf.as_mut_ptr().cast::<f32>();
    for p in 0..panels {
        let u0 = p * units;
        // SAFETY: panel p of `packed`.
        let panel = unsafe { packed.add(p * psz) };
        for pass in 0..passes {
            let x = if prepacked {
                // SAFETY: panel p of `packed_ih`.
                (0, is, unsafe { packed_ih.add(p * PANEL * is) })
            } else {
                let q0 = pass * XK;
                let xk = is.saturating_sub(q0).min(XK);
                // SAFETY: the rows of W_ih behind the panel's columns, columns q0 .. q0 + xk < is.
                unsafe { pack_x::<V::L8>(cell, hs, is, u0, q0, xk, w_ih, xb) };
                (q0, xk, xb.cast_const())
            };
            let init = if pass == 0 { Init::Bias } else { Init::Pre };
            let last = pass + 1 == passes;
            // SAFETY: rows below batch, panel p of the packed weights. Tiles of 6 rows x 2 vectors
            // (8 lanes: 12 accumulators + 2 panel vectors + a broadcast = 15 of 16 registers) or
            // 12 x 2 (16 lanes: 27 of 32; measured on W1: 9.2 ms/step against 10.3 with 8 rows
            // and 10.0 with 14).
            unsafe {
                if V::N == 16 {
                    step_panel::<V, 12>(cell, batch, s, u0, panel, init, x, last);
                } else {
                    step_panel::<V, 6>(cell, batch, s, u0, panel, init, x, last);
                }
            }
        }
    }
}

widest! {
    /// [`fused_step`] at the widest lane width in use.
    fused_step_wide => fused_step(
        cell: Cell,
        batch: usize,
        s: &StepBufs,
        w_ih: *const f32,
        packed: *const f32,
        packed_ih: *const f32
    )
}

// ---------------------------------------------------------------------------------------------
// The entry points: LSTM forward and backward, then tanh RNN forward and backward

/// `Kernels::lstm_forward_step` for `Simd` (the packed layout: `packed`, `packed_ih`).
#[allow(clippy::too_many_arguments)]
pub(super) fn lstm_forward_step(
    batch: usize,
    hs: usize,
    is: usize,
    x: &[f32],
    w_ih: &[f32],
    packed: &[f32],
    packed_ih: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
    pre: &mut [f32],
    gates: &mut [f32],
    c: &mut [f32],
    tanh_c: &mut [f32],
    h: &mut [f32],
) {
    let g4 = hs.checked_mul(4).expect("hidden size overflows");
    assert!(fits(x.len(), batch, is) && fits(w_ih.len(), g4, is));
    assert!(packed.len() >= lstm_packed_len(hs));
    let ih = match packed_ih.len() {
        0 => ptr::null(),
        n if n >= lstm_ih_packed_len(hs, is) => packed_ih.as_ptr(),
        _ => panic!("packed_ih too short"),
    };
    assert!(fits(h_prev.len(), batch, hs) && fits(c_prev.len(), batch, hs));
    assert!(fits(pre.len(), batch, g4) && fits(gates.len(), batch, g4));
    assert!(fits(c.len(), batch, hs) && fits(tanh_c.len(), batch, hs));
    assert!(fits(h.len(), batch, hs));
    let s = StepBufs {
        hs,
        is,
        ld: g4,
        x: x.as_ptr(),
        h_prev: h_prev.as_ptr(),
        c_prev: c_prev.as_ptr(),
        pre: pre.as_mut_ptr(),
        gates: gates.as_mut_ptr(),
        c: c.as_mut_ptr(),
        tanh_c: tanh_c.as_mut_ptr(),
        h: h.as_mut_ptr(),
    };
    // SAFETY: lengths checked above.
    unsafe { fused_step_wide(Cell::Lstm, batch, &s, w_ih.as_ptr(), packed.as_ptr(), ih) }
}

/// `Kernels::lstm_backward_step` for `Simd`.
#[allow(clippy::too_many_arguments)]
pub(super) fn lstm_backward_step(
    batch: usize,
    hs: usize,
    gates: &[f32],
    c_prev: &[f32],
    tanh_c: &[f32],
    dh_ext: &[f32],
    w_hh: &[f32],
    dh_carry: &mut [f32],
    dc_carry: &mut [f32],
    dpre: &mut [f32],
) {
    let g4 = hs.checked_mul(4).expect("hidden size overflows");
    assert!(fits(gates.len(), batch, g4) && fits(dpre.len(), batch, g4));
    assert!(fits(c_prev.len(), batch, hs) && fits(tanh_c.len(), batch, hs));
    assert!(fits(dh_ext.len(), batch, hs) && fits(dh_carry.len(), batch, hs));
    assert!(fits(dc_carry.len(), batch, hs) && fits(w_hh.len(), g4, hs));
    let p = BwdRow {
        gates: gates.as_ptr(),
        c_prev: c_prev.as_ptr(),
        tanh_c: tanh_c.as_ptr(),
        dh_ext: dh_ext.as_ptr(),
        dh_rec: dh_carry.as_ptr(),
        dc: dc_carry.as_mut_ptr(),
        dpre: dpre.as_mut_ptr(),
    };
    // SAFETY: rows below batch of every operand, lengths checked above.
    unsafe { lstm_rows_backward_wide(batch, hs, p) };
    let dh = &mut dh_carry[..batch * hs];
    dh.fill(0.0);
    let a = Strided {
        p: dpre.as_ptr(),
        rs: g4,
        ps: 1,
    };
    // SAFETY: dpre (B, 4H), W_hh (4H, H), dh (B, H), checked above.
    unsafe { gemm_wide(batch, hs, g4, KB_NN, a, w_hh.as_ptr(), dh.as_mut_ptr()) }
}

/// `Kernels::rnn_forward_step` for `Simd` (the packed layout: `packed`, `packed_ih`).
#[allow(clippy::too_many_arguments)]
pub(super) fn rnn_forward_step(
    batch: usize,
    hs: usize,
    is: usize,
    x: &[f32],
    w_ih: &[f32],
    packed: &[f32],
    packed_ih: &[f32],
    h_prev: &[f32],
    pre: &mut [f32],
    h: &mut [f32],
) {
    assert!(fits(x.len(), batch, is) && fits(w_ih.len(), hs, is));
    assert!(packed.len() >= rnn_packed_len(hs));
    let ih = match packed_ih.len() {
        0 => ptr::null(),
        n if n >= rnn_ih_packed_len(hs, is) => packed_ih.as_ptr(),
        _ => panic!("packed_ih too short"),
    };
    assert!(fits(h_prev.len(), batch, hs) && fits(pre.len(), batch, hs));
    assert!(fits(h.len(), batch, hs));
    let s = StepBufs {
        hs,
        is,
        ld: hs,
        x: x.as_ptr(),
        h_prev: h_prev.as_ptr(),
        c_prev: ptr::null(),
        pre: pre.as_mut_ptr(),
        gates: ptr::null_mut(),
        c: ptr::null_mut(),
        tanh_c: ptr::null_mut(),
        h: h.as_mut_ptr(),
    };
    // SAFETY: lengths checked above; the RNN path touches no LSTM-only buffer.
    unsafe { fused_step_wide(Cell::Rnn, batch, &s, w_ih.as_ptr(), packed.as_ptr(), ih) }
}

/// `Kernels::rnn_backward_step` for `Simd`.
pub(super) fn rnn_backward_step(
    batch: usize,
    hs: usize,
    h: &[f32],
    dh_ext: &[f32],
    w_hh: &[f32],
    dh_carry: &mut [f32],
    dpre: &mut [f32],
) {
    let n = batch
        .checked_mul(hs)
        .expect("batch x hidden size overflows");
    assert!(h.len() >= n && dh_ext.len() >= n && dh_carry.len() >= n && dpre.len() >= n);
    assert!(fits(w_hh.len(), hs, hs));
    tanh_pointwise_backward(&h[..n], &dh_ext[..n], &dh_carry[..n], &mut dpre[..n]);
    let dh = &mut dh_carry[..n];
    dh.fill(0.0);
    let a = Strided {
        p: dpre.as_ptr(),
        rs: hs,
        ps: 1,
    };
    // SAFETY: dpre (B, H), W_hh (H, H), dh (B, H), checked above.
    unsafe { gemm_wide(batch, hs, hs, KB_NN, a, w_hh.as_ptr(), dh.as_mut_ptr()) }
}
