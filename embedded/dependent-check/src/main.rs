//! `dependent-check`: a crate outside the workspace that depends on `tinyrnn` and is built with no
//! RUSTFLAGS (`run.sh`). Prints which instruction set the kernels chose at run time and which
//! target features this build was compiled with, runs the fixed computation of `workload.rs` at
//! 8 and 16 lanes, and exits 0 only if both hashes equal `workload::EXPECTED` (the hash
//! `tests/lane_width.rs` checks inside the workspace). On a CPU without AVX2 + FMA the portable
//! fallback may differ in the last bits: then the hash is printed, not checked.
//!
//! Usage: `dependent-check [--print] [--w1 STEPS]`. `--print`: print the hash, check nothing.
//! `--w1 STEPS`: also time STEPS W1 train steps (after 3 warm-up steps) at 8 and 16 lanes, and
//! print the medians.

mod workload;

use std::process::ExitCode;
use std::time::Instant;

use tinyrnn::kernels::{allow_avx512, simd_isa};

/// The median (the mean of the middle two for an even count).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Milliseconds the calling thread has run on a CPU (Linux: /proc/thread-self/schedstat; NaN
/// elsewhere): on a shared machine a fairer clock than the wall.
fn thread_cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-6)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let print = args.iter().any(|a| a == "--print");
    let w1_steps: usize = match args.iter().position(|a| a == "--w1") {
        Some(k) => match args.get(k + 1).and_then(|s| s.parse().ok()) {
            Some(n) => n,
            None => {
                eprintln!("dependent-check: --w1 needs a number of steps");
                return ExitCode::FAILURE;
            }
        },
        None => 0,
    };

    let has16 = allow_avx512(true);
    println!(
        "dependent-check: kernels {} (run-time choice); this build compiled with avx2={} fma={}",
        simd_isa(),
        cfg!(target_feature = "avx2"),
        cfg!(target_feature = "fma"),
    );
    let mut ok = true;
    for lanes in [8, 16] {
        if lanes == 16 && !has16 {
            println!("16 lanes: no AVX-512F on this CPU, skipped");
            continue;
        }
        allow_avx512(lanes == 16);
        let h = workload::fingerprint();
        let verdict = if print || simd_isa() == "portable" {
            "not checked"
        } else if h == workload::EXPECTED {
            "= expected"
        } else {
            ok = false;
            "DIFFERS from expected"
        };
        println!(
            "{lanes:2} lanes ({}): hash {h:#018x} {verdict} ({:#018x})",
            simd_isa(),
            workload::EXPECTED
        );
    }

    if w1_steps > 0 {
        for lanes in [8, 16] {
            if lanes == 16 && !has16 {
                continue;
            }
            allow_avx512(lanes == 16);
            let mut w1 = workload::W1::new();
            let (mut times, mut cpu) = (Vec::new(), Vec::new());
            for k in 0..3 + w1_steps {
                let (t0, c0) = (Instant::now(), thread_cpu_ms());
                let loss = w1.step();
                let (dt, dc) = (t0.elapsed().as_secs_f64() * 1e3, thread_cpu_ms() - c0);
                assert!(loss.is_finite());
                if k >= 3 {
                    times.push(dt);
                    cpu.push(dc);
                }
            }
            println!(
                "W1 {lanes:2} lanes ({}): median {:.3} ms/step, cpu {:.3} ms/step, min {:.3} ms \
                 ({w1_steps} steps)",
                simd_isa(),
                median(&mut times),
                median(&mut cpu),
                times.iter().copied().fold(f64::INFINITY, f64::min),
            );
        }
    }
    allow_avx512(true);

    if ok {
        println!("dependent-check: ok");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "dependent-check: FAILED: a dependent crate's results differ from the workspace's \
             (workload::EXPECTED)"
        );
        ExitCode::FAILURE
    }
}
