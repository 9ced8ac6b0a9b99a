//! The microcontroller step: batch-1 `f32` inference for Cortex-M, straight from PyTorch's layout
//! (the exported `static` model is read in place, nothing is packed or copied).
//!
//! On `target_arch = "arm"` the [`Simd`](super::Simd) kernels route the batch-1 LSTM step
//! (`Lstm::step`), the batch-1 matrix-vector product (`gemm_nt` with one row: `Linear::step` and
//! the two products of `Rnn::step`) and the tanh of `Rnn::step` here; on every other target these
//! functions are only reached directly (the tests run them on the host).
//!
//! ```text
//! LSTM, gates i, f, g, o (rows g·H + j of W_ih [4H, I], W_hh [4H, H], b_ih, b_hh [4H]):
//!   a_g = b_ih[gH+j] + b_hh[gH+j] + Σ_p W_ih[gH+j, p] x[p] + Σ_p W_hh[gH+j, p] h_prev[p]
//!   i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
//!   c[j] = f · c_prev[j] + i · g      h[j] = o · tanh(c[j])
//! Matrix-vector product (Linear head, tanh RNN):  y[r] += Σ_p W[r, p] x[p]
//! ```
//!
//! # The kernel
//! One pass per hidden unit `j` computes its four gate rows together ([`dot4`]): four
//! accumulators (in registers inside the loop), each element of `x` and `h_prev` loaded once per pass and used by
//! the four rows, each weight loaded exactly once per step, then the cell update runs on the four
//! accumulators and `c[j]`, `h[j]` are stored. No scratch buffer is cleared or filled; the only
//! copy is `h_prev` (the caller's `Lstm::step` keeps it, since `h` is overwritten unit by unit).
//! The matrix-vector product runs the same [`dot4`] on four consecutive rows.
//!
//! Where the target is an M-profile core with floating-point registers (`cfg(tinyrnn_arm_fpu)`,
//! set by the core's build.rs from the target name, since stable rustc shows no Arm target
//! features to `cfg`: the Cortex-M4F, M7, M33, M55, whose FPUs are all FPv4 or later and so have
//! `VFMA`), [`dot4`]'s loop is `core::arch::asm!`: per 8 elements one `vldmia` of
//! 8 inputs, one `vldmia` of 8 weights per row and 8 `vfma.f32` per row (39 instructions for 32
//! multiply-adds), then blocks of 4 and single elements. Rust has no stable fused multiply-add in
//! `core` and does not contract `a * b + c`, hence the asm; in the activations LLVM emits
//! `vmla.f32` / `vmls.f32` (multiply-accumulate with two roundings: the same bits as `vmul` +
//! `vadd`, and as many instructions once the constant is copied into the accumulator; seen with
//! `llvm-objdump -d` of the firmware). rustc 1.96 refuses `sreg` operands on this target (it asks
//! for `vfp2`, which includes double precision), so the block takes its accumulators through memory
//! (one `vldmia` / `vstmia`) and saves and restores the FPU registers it uses (`vpush` / `vpop`): 4
//! instructions per call, two calls per unit. The activations stay portable Rust (unfused, the same
//! bits on every target). Elsewhere (Cortex-M0/M3 with soft float, the host's tests) [`dot4`] is a
//! portable loop with an unfused `a * b + c`.
//!
//! # Activations
//! Scalar versions of the SIMD kernels' math (`simd/math.rs`): `σ(x) = 1 / (1 + e^-x)` with Cephes'
//! branch-free `expf` polynomial (input clamped to [-87, 87]) and Eigen's 13/6 rational `tanh`
//! (clamped to ±7.905311). Maximum error against libm's `expf` / `tanhf` (σ against
//! `1 / (1 + expf(-x))`), measured by `tests::activations_against_libm` over every 16th `f32`
//! bit pattern (all finite magnitudes, both signs: 2^28 inputs) plus ±inf (the same operations
//! on every target, so the same bits on the device):
//!
//! | function | absolute | relative |
//! |---|---:|---:|
//! | exp (\|x\| <= 87) | - | 1.69e-7 (1.4 · 2^-23) |
//! | sigmoid | 8.9e-8 | 2.1e-7 (x >= -87) |
//! | tanh | 4.2e-7 | 4.2e-7 (x != 0) |
//!
//! Below x = -87 the sigmoid returns σ(-87) = 1.6e-38 instead of a smaller number (absolute
//! error below 1.7e-38). NaN in, NaN out.
//!
//! # Safety
//! The public functions check every slice length once (`assert!`, which folds away for the
//! constant sizes of `step`) and then index through raw pointers below those bounds.

// ---------------------------------------------------------------------------------------------
// Multiply-add

/// `a · b + c`, two roundings (Rust has no fused multiply-add in `core`; see the module doc).
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a * b + c
}

// ---------------------------------------------------------------------------------------------
// Activations

/// `e^x` for `x` in [-87, 87] (callers clamp): Cephes' `expf` without branches, as
/// `simd/math.rs`'s `exp_unchecked`. `x = n ln2 + r`, `e^r` by a degree-6 polynomial, `2^n` built in
/// the exponent bits.
#[inline(always)]
pub fn exp_unchecked(x: f32) -> f32 {
    // 1.5 · 2^23: adding it rounds to an integer, which then sits in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let t = fma(x, core::f32::consts::LOG2_E, MAGIC);
    let n = t - MAGIC;
    let r = fma(-n, 0.693_359_4, x);
    let r = fma(-n, -2.121_944_4e-4, r);
    let mut p = 1.987_569_1e-4;
    p = fma(p, r, 1.398_199_9e-3);
    p = fma(p, r, 8.333_452e-3);
    p = fma(p, r, 4.166_579_6e-2);
    p = fma(p, r, 1.666_666_5e-1);
    p = fma(p, r, 0.5);
    let y = fma(p, r * r, r + 1.0);
    // The low 9 bits of t's representation are n (mod 512): shifted into the exponent field and
    // biased, 2^n for n in [-126, 127].
    y * f32::from_bits((t.to_bits() << 23).wrapping_add(127 << 23))
}

/// Logistic sigmoid `1 / (1 + e^-x)` (input clamped to [-87, 87]); errors in the module doc.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_unchecked(-x.clamp(-87.0, 87.0)))
}

/// tanh: Eigen's odd/even 13/6 rational approximation on [-7.905311, 7.905311] (clamped
/// outside, where tanh rounds to ±1); errors in the module doc.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = -2.760_768_5e-16;
    p = fma(p, x2, 2.000_188e-13);
    p = fma(p, x2, -8.604_672e-11);
    p = fma(p, x2, 5.122_297e-8);
    p = fma(p, x2, 1.485_722_4e-5);
    p = fma(p, x2, 6.372_619_3e-4);
    p = fma(p, x2, 4.893_524_6e-3);
    let mut q = 1.198_258_4e-6;
    q = fma(q, x2, 1.185_347_1e-4);
    q = fma(q, x2, 2.268_434_6e-3);
    q = fma(q, x2, 4.893_525e-3);
    // x · (p / q) rather than (x · p) / q: no subnormal intermediate for tiny x.
    x * (p / q)
}

// ---------------------------------------------------------------------------------------------
// Four rows against one vector

/// `acc[r] += Σ_{p < k} w[r][p] · s[p]` for the four rows `w[0..4]`, summed in order of `p`
/// (`acc` by reference: it stays in memory from one call to the next, where the asm block reads
/// and writes it with one instruction each).
///
/// # Safety
/// `s .. s + k` and `w[r] .. w[r] + k` must be readable.
#[cfg(tinyrnn_arm_fpu)]
#[inline(always)]
unsafe fn dot4(k: usize, s: *const f32, w: [*const f32; 4], acc: &mut [f32; 4]) {
    // Accumulators in s0-s3 (loaded from and stored back to `acc`), inputs in s4-s11, weights in
    // s12-s19; all twenty saved on the stack and restored. Blocks of 8, then one of 4, then
    // single elements.
    // SAFETY: reads `k` floats from `s` and from each row, by the caller's contract, reads and
    // writes `acc`; every FPU register it uses is restored, the flags are declared clobbered.
    unsafe {
        core::arch::asm!(
            "vpush {{s0-s19}}",
            "vldmia {acc}, {{s0-s3}}",
            "lsrs {n}, {k}, #3",
            "beq 3f",
            "2:",
            "vldmia {s}!, {{s4-s11}}",
            "vldmia {w0}!, {{s12-s19}}",
            "vfma.f32 s0, s4, s12",
            "vfma.f32 s0, s5, s13",
            "vfma.f32 s0, s6, s14",
            "vfma.f32 s0, s7, s15",
            "vfma.f32 s0, s8, s16",
            "vfma.f32 s0, s9, s17",
            "vfma.f32 s0, s10, s18",
            "vfma.f32 s0, s11, s19",
            "vldmia {w1}!, {{s12-s19}}",
            "vfma.f32 s1, s4, s12",
            "vfma.f32 s1, s5, s13",
            "vfma.f32 s1, s6, s14",
            "vfma.f32 s1, s7, s15",
            "vfma.f32 s1, s8, s16",
            "vfma.f32 s1, s9, s17",
            "vfma.f32 s1, s10, s18",
            "vfma.f32 s1, s11, s19",
            "vldmia {w2}!, {{s12-s19}}",
            "vfma.f32 s2, s4, s12",
            "vfma.f32 s2, s5, s13",
            "vfma.f32 s2, s6, s14",
            "vfma.f32 s2, s7, s15",
            "vfma.f32 s2, s8, s16",
            "vfma.f32 s2, s9, s17",
            "vfma.f32 s2, s10, s18",
            "vfma.f32 s2, s11, s19",
            "vldmia {w3}!, {{s12-s19}}",
            "vfma.f32 s3, s4, s12",
            "vfma.f32 s3, s5, s13",
            "vfma.f32 s3, s6, s14",
            "vfma.f32 s3, s7, s15",
            "vfma.f32 s3, s8, s16",
            "vfma.f32 s3, s9, s17",
            "vfma.f32 s3, s10, s18",
            "vfma.f32 s3, s11, s19",
            "subs {n}, {n}, #1",
            "bne 2b",
            "3:",
            // Bit 2 of k into the sign bit: a block of 4 if set.
            "lsls {n}, {k}, #29",
            "bpl 4f",
            "vldmia {s}!, {{s4-s7}}",
            "vldmia {w0}!, {{s12-s15}}",
            "vfma.f32 s0, s4, s12",
            "vfma.f32 s0, s5, s13",
            "vfma.f32 s0, s6, s14",
            "vfma.f32 s0, s7, s15",
            "vldmia {w1}!, {{s12-s15}}",
            "vfma.f32 s1, s4, s12",
            "vfma.f32 s1, s5, s13",
            "vfma.f32 s1, s6, s14",
            "vfma.f32 s1, s7, s15",
            "vldmia {w2}!, {{s12-s15}}",
            "vfma.f32 s2, s4, s12",
            "vfma.f32 s2, s5, s13",
            "vfma.f32 s2, s6, s14",
            "vfma.f32 s2, s7, s15",
            "vldmia {w3}!, {{s12-s15}}",
            "vfma.f32 s3, s4, s12",
            "vfma.f32 s3, s5, s13",
            "vfma.f32 s3, s6, s14",
            "vfma.f32 s3, s7, s15",
            "4:",
            "ands {n}, {k}, #3",
            "beq 6f",
            "5:",
            "vldmia {s}!, {{s4}}",
            "vldmia {w0}!, {{s12}}",
            "vldmia {w1}!, {{s13}}",
            "vldmia {w2}!, {{s14}}",
            "vldmia {w3}!, {{s15}}",
            "vfma.f32 s0, s4, s12",
            "vfma.f32 s1, s4, s13",
            "vfma.f32 s2, s4, s14",
            "vfma.f32 s3, s4, s15",
            "subs {n}, {n}, #1",
            "bne 5b",
            "6:",
            "vstmia {acc}, {{s0-s3}}",
            "vpop {{s0-s19}}",
            acc = in(reg) acc.as_mut_ptr(),
            k = in(reg) k,
            n = out(reg) _,
            s = inout(reg) s => _,
            w0 = inout(reg) w[0] => _,
            w1 = inout(reg) w[1] => _,
            w2 = inout(reg) w[2] => _,
            w3 = inout(reg) w[3] => _,
        );
    }
}

/// `acc[r] += Σ_{p < k} w[r][p] · s[p]` for the four rows `w[0..4]`, summed in order of `p`
/// (the portable loop: soft-float cores and the host).
///
/// # Safety
/// `s .. s + k` and `w[r] .. w[r] + k` must be readable.
#[cfg(not(tinyrnn_arm_fpu))]
#[inline(always)]
unsafe fn dot4(k: usize, s: *const f32, w: [*const f32; 4], acc: &mut [f32; 4]) {
    for p in 0..k {
        // SAFETY: p < k, by the caller's contract.
        unsafe {
            let sv = *s.add(p);
            for (a, wr) in acc.iter_mut().zip(w) {
                *a = fma(*wr.add(p), sv, *a);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The steps

/// `a · b <= len`, without overflow.
#[inline(always)]
fn fits(len: usize, a: usize, b: usize) -> bool {
    a.checked_mul(b).is_some_and(|n| n <= len)
}

/// One LSTM step of one sequence from PyTorch's layout (equations at the top): `c` updated in
/// place, `h` set; `h_prev` must not be `h`.
///
/// Shapes: `x` (I), `w_ih` (4H, I), `w_hh` (4H, H), `b_ih`, `b_hh` (4H), `h_prev`, `c`, `h` (H).
///
/// # Panics
/// If a slice is shorter than its shape (a check that folds away for constant sizes).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn lstm_step(
    hs: usize,
    is: usize,
    x: &[f32],
    w_ih: &[f32],
    w_hh: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    h_prev: &[f32],
    c: &mut [f32],
    h: &mut [f32],
) {
    let g4 = hs.checked_mul(4).expect("hidden size overflows");
    assert!(x.len() >= is && fits(w_ih.len(), g4, is) && fits(w_hh.len(), g4, hs));
    assert!(b_ih.len() >= g4 && b_hh.len() >= g4);
    assert!(h_prev.len() >= hs && c.len() >= hs && h.len() >= hs);
    let (xp, hp) = (x.as_ptr(), h_prev.as_ptr());
    let (wi, wh) = (w_ih.as_ptr(), w_hh.as_ptr());
    for j in 0..hs {
        let rows = [j, hs + j, 2 * hs + j, 3 * hs + j];
        // SAFETY: rows < 4H; row r of W_ih is r·I .. r·I + I, of W_hh r·H .. r·H + H, all inside
        // the slices checked above; j < H.
        unsafe {
            let mut pre = rows.map(|r| *b_ih.get_unchecked(r) + *b_hh.get_unchecked(r));
            dot4(is, xp, rows.map(|r| wi.add(r * is)), &mut pre);
            dot4(hs, hp, rows.map(|r| wh.add(r * hs)), &mut pre);
            let [ai, af, ag, ao] = pre;
            let (i, f, g, o) = (sigmoid(ai), sigmoid(af), tanh(ag), sigmoid(ao));
            let cj = c.get_unchecked_mut(j);
            *cj = fma(f, *cj, i * g);
            *h.get_unchecked_mut(j) = o * tanh(*cj);
        }
    }
}

/// `y[r] += Σ_p W[r, p] x[p]` for `n` rows of length `k` (`W` row-major): the batch-1
/// `gemm_nt`. Rows four at a time through [`dot4`]; the last `n % 4` rows through it too, with
/// the last row repeated in the unused places (computed and dropped).
///
/// # Panics
/// If `x` is shorter than `k`, `w` than `n · k` or `y` than `n`.
#[inline(always)]
pub fn gemv(n: usize, k: usize, x: &[f32], w: &[f32], y: &mut [f32]) {
    assert!(x.len() >= k && fits(w.len(), n, k) && y.len() >= n);
    let (xp, wp) = (x.as_ptr(), w.as_ptr());
    let mut r = 0;
    while r < n {
        let rows = [r, r + 1, r + 2, r + 3].map(|q| q.min(n - 1));
        // SAFETY: rows < n: inside `w` and `y`, checked above.
        unsafe {
            let mut acc = rows.map(|q| *y.get_unchecked(q));
            dot4(k, xp, rows.map(|q| wp.add(q * k)), &mut acc);
            for (q, a) in acc.into_iter().enumerate().take(n - r) {
                *y.get_unchecked_mut(r + q) = a;
            }
        }
        r += 4;
    }
}

/// `h[j] = tanh(pre[j])` (the tanh RNN's pointwise step).
///
/// # Panics
/// If the lengths differ.
#[inline(always)]
pub fn tanh_slice(pre: &[f32], h: &mut [f32]) {
    assert!(pre.len() == h.len());
    for (h, &a) in h.iter_mut().zip(pre) {
        *h = tanh(a);
    }
}

/// The naive twin of [`lstm_step`]: the equations at the top as plain loops over PyTorch's
/// layout, with libm's activations and unfused multiply-adds. The test oracle.
#[allow(clippy::too_many_arguments)]
pub fn lstm_step_naive(
    hs: usize,
    is: usize,
    x: &[f32],
    w_ih: &[f32],
    w_hh: &[f32],
    b_ih: &[f32],
    b_hh: &[f32],
    h_prev: &[f32],
    c: &mut [f32],
    h: &mut [f32],
) {
    use crate::Real;
    for j in 0..hs {
        let a: [f32; 4] = core::array::from_fn(|g| {
            let r = g * hs + j;
            let mut s = b_ih[r] + b_hh[r];
            for p in 0..is {
                s += w_ih[r * is + p] * x[p];
            }
            for p in 0..hs {
                s += w_hh[r * hs + p] * h_prev[p];
            }
            s
        });
        let (i, f, g, o) = (a[0].sigmoid(), a[1].sigmoid(), a[2].tanh(), a[3].sigmoid());
        c[j] = f * c[j] + i * g;
        h[j] = o * c[j].tanh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kernels, Naive};

    /// Deterministic weights from a closed form (no RNG), in [-scale, scale].
    fn wave(n: usize, seed: f32, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|t| scale * (seed + 0.37 * t as f32).sin())
            .collect()
    }

    /// The fast step against its naive twin and against `Naive::lstm_step`, over shapes that hit
    /// every part of `dot4` (blocks of 8, the block of 4, single elements, k = 0 and 1), for 20
    /// steps each (the state carried).
    #[test]
    fn lstm_step_matches_naive() {
        for (is, hs) in [
            (1, 32),
            (28, 128),
            (0, 3),
            (3, 1),
            (5, 13),
            (12, 7),
            (9, 20),
        ] {
            let k = 1.0 / (hs as f32).sqrt();
            let w_ih = wave(4 * hs * is, 0.1, k);
            let w_hh = wave(4 * hs * hs, 0.7, k);
            let b_ih = wave(4 * hs, 1.3, k);
            let b_hh = wave(4 * hs, 2.9, k);
            let (mut c, mut h) = (vec![0.0f32; hs], vec![0.0f32; hs]);
            let (mut c_n, mut h_n) = (c.clone(), h.clone());
            let (mut c_k, mut h_k) = (c.clone(), h.clone());
            let mut scratch = vec![0.0f32; 10 * hs];
            for t in 0..20 {
                let x = wave(is, t as f32, 1.5);
                let hp = h.clone();
                lstm_step(hs, is, &x, &w_ih, &w_hh, &b_ih, &b_hh, &hp, &mut c, &mut h);
                let hp = h_n.clone();
                lstm_step_naive(
                    hs, is, &x, &w_ih, &w_hh, &b_ih, &b_hh, &hp, &mut c_n, &mut h_n,
                );
                let hp = h_k.clone();
                <Naive as Kernels<f32>>::lstm_step(
                    hs,
                    is,
                    &x,
                    &w_ih,
                    &w_hh,
                    &b_ih,
                    &b_hh,
                    &hp,
                    &mut c_k,
                    &mut h_k,
                    &mut scratch,
                );
                for j in 0..hs {
                    for (got, want) in [
                        (h[j], h_n[j]),
                        (c[j], c_n[j]),
                        (h[j], h_k[j]),
                        (c[j], c_k[j]),
                    ] {
                        let tol = 2e-6 * (1.0 + want.abs());
                        assert!(
                            (got - want).abs() <= tol,
                            "I={is} H={hs} t={t} j={j}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// `gemv` against `Naive::gemm_nt` with one row, for every remainder of n mod 4 and k mod 8.
    #[test]
    fn gemv_matches_naive() {
        for n in [1, 2, 3, 4, 5, 10, 32] {
            for k in [0, 1, 3, 4, 7, 8, 12, 28, 33] {
                let x = wave(k, 0.3, 1.0);
                let w = wave(n * k, 1.1, 0.5);
                let mut y = wave(n, 2.0, 1.0);
                let mut want = y.clone();
                gemv(n, k, &x, &w, &mut y);
                <Naive as Kernels<f32>>::gemm_nt(1, n, k, &x, &w, &mut want);
                for (g, w) in y.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
                        "n={n} k={k}: {g} vs {w}"
                    );
                }
            }
        }
    }

    /// Every 16th `f32` bit pattern of each sign (all magnitudes, subnormals to the largest
    /// finite), then ±inf.
    fn grid() -> impl Iterator<Item = f32> {
        (0u32..0x7f80_0000)
            .step_by(16)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
            .chain([f32::INFINITY, f32::NEG_INFINITY])
    }

    /// The maximum errors stated in the module doc, against libm over the whole input range
    /// (printed with `--nocapture`).
    #[test]
    fn activations_against_libm() {
        // exp relative (|x| <= 87), sigmoid absolute and relative (x >= -87), tanh absolute and
        // relative (x != 0).
        let mut e = [0.0f64; 5];
        for x in grid() {
            if x.abs() <= 87.0 {
                let want = libm::expf(x) as f64;
                e[0] = e[0].max(((exp_unchecked(x) as f64 - want) / want).abs());
            }
            let want = 1.0 / (1.0 + libm::expf(-x) as f64);
            let got = sigmoid(x) as f64;
            e[1] = e[1].max((got - want).abs());
            if x >= -87.0 {
                e[2] = e[2].max(((got - want) / want).abs());
            }
            let want = libm::tanhf(x) as f64;
            let got = tanh(x) as f64;
            e[3] = e[3].max((got - want).abs());
            if x != 0.0 {
                e[4] = e[4].max(((got - want) / want).abs());
            }
        }
        println!(
            "exp rel {:.3e}; sigmoid abs {:.3e} rel {:.3e}; tanh abs {:.3e} rel {:.3e}",
            e[0], e[1], e[2], e[3], e[4]
        );
        let bound = [1.7e-7, 9e-8, 2.1e-7, 4.2e-7, 4.2e-7];
        for (got, max) in e.iter().zip(bound) {
            assert!(got <= &max, "{e:?} over {bound:?}");
        }
        assert!(sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
    }
}
