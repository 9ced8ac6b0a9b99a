//! The 16-lane (AVX-512) and 8-lane paths of the `Simd` kernels give the same bits: the broadcast
//! GEMMs on shapes that cross every column block (64, 32, 16, 8 columns, the n % 8 edge) and k
//! block; one-layer models of every cell forward, backward and stepped, for batch sizes around the
//! row tiles (6 and 12 rows); stacks of 2 and 3 layers and bidirectional models of every cell.
//! On a CPU without AVX-512 both runs take the 8-lane path and the test says so.
//!
//! One test function: the lane width is a process-wide switch (`kernels::allow_avx512`), and
//! this binary holds nothing else that could run beside it.

use tinyrnn::cell::CellKind;
use tinyrnn::kernels::allow_avx512;
use tinyrnn::{Kernels, Outputs, Simd, Spec, rng};
use tinyrnn_tests::{Problem, assert_bits_eq, rand_vec};

/// The computation `embedded/dependent-check` runs outside the workspace (no RUSTFLAGS): the same
/// source, so the same hash, here built with the workspace's settings.
#[allow(dead_code)]
#[path = "../embedded/dependent-check/src/workload.rs"]
mod workload;

/// Runs `f` with the 8-lane path, then with the 16-lane path, and checks the results are equal
/// bit for bit. Returns whether the 16-lane path really ran.
fn both_widths(what: &str, f: impl Fn() -> Vec<f32>) -> bool {
    allow_avx512(false);
    let narrow = f();
    let wide = allow_avx512(true);
    let got = f();
    assert!(narrow.iter().all(|v| v.is_finite()), "{what}: not finite");
    assert_bits_eq(what, &got, &narrow);
    wide
}

fn gemms() -> bool {
    let mut wide = false;
    let mut seed = 0;
    for k in [1, 3, 64, 65, 300] {
        for m in [1, 5, 6, 7, 13] {
            for n in [
                1, 4, 7, 8, 12, 16, 24, 28, 32, 40, 48, 64, 72, 80, 100, 128, 130,
            ] {
                seed += 1;
                let mut r = rng(seed);
                let a: Vec<f32> = rand_vec(&mut r, m * k, -1.0, 1.0);
                let b: Vec<f32> = rand_vec(&mut r, k * n, -1.0, 1.0);
                let c: Vec<f32> = rand_vec(&mut r, m * n, -1.0, 1.0);
                let nn = || {
                    let mut c = c.clone();
                    Simd::gemm_nn(m, n, k, &a, &b, &mut c);
                    c
                };
                let tn = || {
                    let mut c = c.clone();
                    Simd::gemm_tn(m, n, k, &a, &b, &mut c);
                    c
                };
                wide |= both_widths(&format!("gemm_nn m={m} n={n} k={k}"), nn);
                wide |= both_widths(&format!("gemm_tn m={m} n={n} k={k}"), tn);
            }
        }
    }
    wide
}

/// A model of shape `spec` forward and backward over 3 steps of `b` sequences with the Simd
/// kernels (outputs, final state, caches, every gradient, dx, the state gradient), then, for a
/// unidirectional model, the batch-1 steps of the first sequence.
fn model_run(spec: Spec, b: usize, seed: u64) -> Vec<f32> {
    let prob = Problem::new(spec, 3, b, seed).cast();
    let mut out = prob.run::<Simd>(Outputs::EveryStep, true).all();
    if !spec.bidirectional {
        let (y, h, c) = prob.steps::<Simd>(0);
        out.extend(y.iter().chain(&h).chain(&c));
    }
    out
}

/// One layer of every cell, I -> H, for batch sizes around the row tiles (6 and 12 rows).
fn layers<const I: usize, const H: usize>() -> bool {
    let mut wide = false;
    for b in [1, 5, 6, 7, 11, 12, 13, 25] {
        for cell in CellKind::ALL {
            let seed = (1000 * I + 10 * H + b) as u64;
            let spec = Spec::new(cell, I, H, 2);
            wide |= both_widths(&format!("{cell} I={I} H={H} B={b}"), || {
                model_run(spec, b, seed)
            });
        }
    }
    wide
}

/// Stacks of 2 and 3 layers, one and two directions, every cell.
fn stacks() -> bool {
    let mut wide = false;
    for cell in CellKind::ALL {
        for (layers, bidirectional) in [(2, false), (3, false), (1, true), (2, true)] {
            for (i, h, b) in [(5, 40, 7), (28, 24, 13)] {
                let spec = Spec {
                    layers,
                    bidirectional,
                    ..Spec::new(cell, i, h, 3)
                };
                let what = format!("{cell} x{layers} bi={bidirectional} I={i} H={h} B={b}");
                wide |= both_widths(&what, || model_run(spec, b, (100 * i + h + b) as u64));
            }
        }
    }
    wide
}

#[test]
fn sixteen_lanes_give_the_same_bits_as_eight() {
    let mut wide = gemms();
    wide |= stacks();
    wide |= layers::<1, 3>();
    wide |= layers::<1, 32>();
    wide |= layers::<5, 40>();
    wide |= layers::<28, 128>();
    wide |= layers::<40, 64>();
    wide |= layers::<3, 8>();
    wide |= layers::<2, 24>();
    if !wide {
        eprintln!("this CPU has no AVX-512F: only the 8-lane path ran (compared with itself)");
    }
    // The bits a crate outside the workspace gets (embedded/dependent-check/run.sh checks the
    // same constant there), at both widths; not on CPUs without AVX2 + FMA (portable fallback).
    for allow in [false, true] {
        allow_avx512(allow);
        if tinyrnn::kernels::simd_isa() != "portable" {
            let h = workload::fingerprint();
            assert_eq!(h, workload::EXPECTED, "dependent-check hash: {h:#018x}");
        }
    }
}
