//! On-device check of the microcontroller kernels (`tinyrnn::kernels::mcu`) against their naive
//! twins, for the shapes that take every path of the inner loop (blocks of 8, the block of 4,
//! single elements, k = 0 and 1, row counts with every remainder mod 4): on the Cortex-M4F the
//! inner loop is the `vldmia`/`vfma` asm block, which the host's tests cannot run.
//!
//! `gemv` against a plain dot product per row, `lstm_step` against `lstm_step_naive` (libm
//! activations) over 5 steps; each within 2e-6 · (1 + |want|). The int8 kernels
//! (`tinyrnn::quant`): `dot_rows` (the SXTB16/SMLAD asm where the core has the DSP extension)
//! against a plain integer sum and `smmulr` against its i64 formula, exactly, for every row count
//! and lengths around the groups of 4 and 8. Exits 0 only if all are.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use firmware::{Line, exit};
use tinyrnn::Real;
use tinyrnn::kernels::mcu::{gemv, lstm_step, lstm_step_naive};
use tinyrnn::quant::{dot_rows, expand, smmulr};

/// Values in [-scale, scale) from a xorshift generator.
fn fill(v: &mut [f32], seed: &mut u32, scale: f32) {
    for x in v.iter_mut() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        *x = ((*seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale;
    }
}

fn close(got: f32, want: f32) -> bool {
    (got - want).abs() <= 2e-6 * (1.0 + want.abs())
}

#[entry]
fn main() -> ! {
    let mut seed = 0x1234_5678u32;
    let (mut a, mut b) = ([0.0f32; 1024], [0.0f32; 64]);
    let mut bad = 0u32;
    let mut checked = 0u32;
    let mut line = Line::new();

    for n in 1..=9 {
        for k in [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 28, 33] {
            let (w, x) = (&mut a[..n * k], &mut b[..k]);
            fill(w, &mut seed, 0.5);
            fill(x, &mut seed, 1.0);
            let mut y = [0.0f32; 9];
            fill(&mut y[..n], &mut seed, 1.0);
            let mut want = y;
            gemv(n, k, x, w, &mut y[..n]);
            for (r, want) in want.iter_mut().enumerate().take(n) {
                for p in 0..k {
                    *want += w[r * k + p] * x[p];
                }
                checked += 1;
                if !close(y[r], *want) {
                    bad += 1;
                    line.str("gemv MISMATCH n=")
                        .uint(n as u32)
                        .str(" k=")
                        .uint(k as u32)
                        .print();
                }
            }
        }
    }

    for (is, hs) in [
        (0, 3),
        (1, 5),
        (3, 1),
        (5, 13),
        (12, 7),
        (20, 9),
        (9, 4),
        (28, 4),
    ] {
        let g4 = 4 * hs;
        let mut w = [0.0f32; 1280];
        let (w_ih, rest) = w.split_at_mut(g4 * is);
        let (w_hh, rest) = rest.split_at_mut(g4 * hs);
        let (b_ih, rest) = rest.split_at_mut(g4);
        let b_hh = &mut rest[..g4];
        let k = 1.0 / (hs as f32).sqrt();
        for v in [&mut *w_ih, &mut *w_hh, &mut *b_ih, &mut *b_hh] {
            fill(v, &mut seed, k);
        }
        let (mut c, mut h, mut c_n, mut h_n) =
            ([0.0f32; 16], [0.0f32; 16], [0.0f32; 16], [0.0f32; 16]);
        for _ in 0..5 {
            let x = &mut b[..is];
            fill(x, &mut seed, 1.5);
            let hp = h;
            lstm_step(
                hs,
                is,
                x,
                w_ih,
                w_hh,
                b_ih,
                b_hh,
                &hp[..hs],
                &mut c[..hs],
                &mut h[..hs],
            );
            let hp = h_n;
            lstm_step_naive(
                hs,
                is,
                x,
                w_ih,
                w_hh,
                b_ih,
                b_hh,
                &hp[..hs],
                &mut c_n[..hs],
                &mut h_n[..hs],
            );
            for j in 0..hs {
                checked += 2;
                if !close(h[j], h_n[j]) || !close(c[j], c_n[j]) {
                    bad += 1;
                    line.str("lstm MISMATCH I=")
                        .uint(is as u32)
                        .str(" H=")
                        .uint(hs as u32)
                        .print();
                }
            }
        }
    }

    // int8: dot_rows on the expanded vector against a plain sum, bit for bit.
    let (mut wq, mut vq, mut ve) = ([0i8; 4 * 131], [0i8; 131], [0u32; 131]);
    for k in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 16, 17, 28, 31, 32, 33, 128, 131] {
        let stride = k;
        for x in wq[..4 * stride].iter_mut().chain(vq[..k].iter_mut()) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *x = (seed >> 24) as u8 as i8;
        }
        if k == 131 {
            wq.iter_mut().chain(vq.iter_mut()).for_each(|x| *x = -128);
        }
        expand(&vq[..k], &mut ve);
        for n in 1..=4 {
            let mut acc = [3, -3, 5, -5];
            dot_rows(&wq[..4 * stride], stride, n, &ve, k, &mut acc);
            for (r, &got) in acc.iter().enumerate() {
                let base = [3, -3, 5, -5][r];
                let dot: i32 = (0..k).map(|j| wq[r * stride + j] as i32 * vq[j] as i32).sum();
                checked += 1;
                if got != if r < n { base + dot } else { base } {
                    bad += 1;
                    line.str("int8 dot MISMATCH n=").uint(n as u32).str(" k=").uint(k as u32).print();
                }
            }
        }
    }
    for (a, m) in [(1, 1), (-1, 1), (1 << 20, 1 << 12), (i32::MAX, i32::MAX), (i32::MIN, i32::MAX), (-3, 1 << 30), (12345, -987654), (-77777, -5)] {
        checked += 1;
        if smmulr(a, m) != ((a as i64 * m as i64 + (1i64 << 31)) >> 32) as i32 {
            bad += 1;
            line.str("smmulr MISMATCH").print();
        }
    }

    line.str("kernels firmware: ")
        .uint(checked)
        .str(" values checked, ")
        .uint(bad)
        .str(" mismatches")
        .print();
    line.str(if bad == 0 {
        "kernels firmware: ok"
    } else {
        "kernels firmware: FAILED"
    })
    .print();
    exit(bad == 0)
}
