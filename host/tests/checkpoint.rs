//! Checkpoints survive SIGKILL: a run killed at a random moment leaves no corrupt model or
//! checkpoint, and resuming from its last checkpoint ends with the same model, bit for bit, as an
//! uninterrupted run with the same seed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use tinyrnn::{LstmModel, Params};

type M = LstmModel<1, 8, 1>;

const ARGS: &[&str] = &[
    "sine",
    "--hidden",
    "8",
    "--steps",
    "600",
    "--batch",
    "8",
    "--teacher-steps",
    "40",
    "--ramp",
    "100",
    "--test-curves",
    "8",
    "--plot-curves",
    "1",
    "--checkpoint-every",
    "20",
    "--quiet",
];

fn tinyrnn(extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tinyrnn"));
    c.args(ARGS).args(extra);
    c
}

fn model(path: &Path) -> Vec<f32> {
    let mut m: Box<M> = host::net::boxed_zeroed();
    host::modelfile::load_into(path, &mut *m).unwrap_or_else(|e| panic!("{e:#}"));
    m.as_flat().to_vec()
}

/// A pseudo-random kill delay (no extra dependency): 30..80% of the uninterrupted run's time.
fn kill_after(full: Duration, salt: u64) -> Duration {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let bits = (clock ^ u64::from(std::process::id()) ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let frac = 0.3 + 0.5 * ((bits >> 40) as f64 / (1u64 << 24) as f64);
    full.mul_f64(frac)
}

#[test]
fn killed_run_resumes_bit_for_bit() {
    let root = tempfile::tempdir().expect("tempdir");
    let (whole, cut) = (root.path().join("whole"), root.path().join("cut"));
    let (whole_s, cut_s) = (whole.display().to_string(), cut.display().to_string());

    let t0 = Instant::now();
    let status = tinyrnn(&["--out", &whole_s]).status().expect("run tinyrnn");
    assert!(status.success(), "uninterrupted run failed");
    let full = t0.elapsed();
    let reference = model(&whole.join("model.safetensors"));

    for attempt in 0..20u64 {
        let _ = std::fs::remove_dir_all(&cut);
        let mut child = tinyrnn(&["--out", &cut_s]).spawn().expect("spawn tinyrnn");
        std::thread::sleep(kill_after(full, attempt));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("wait");
        let ckpt = cut.join("checkpoint.safetensors");
        if status.code().is_some() || !ckpt.exists() {
            continue; // finished before the kill, or killed before the first checkpoint
        }
        // Whatever exists is whole: the checkpoint (and the model, if written) load.
        let _ = model(&ckpt);
        if cut.join("model.safetensors").exists() {
            let _ = model(&cut.join("model.safetensors"));
        }
        let status = Command::new(env!("CARGO_BIN_EXE_tinyrnn"))
            .args(ARGS)
            .args(["--resume", &cut_s])
            .status()
            .expect("resume tinyrnn");
        assert!(status.success(), "resumed run failed");
        let resumed = model(&cut.join("model.safetensors"));
        assert!(
            resumed
                .iter()
                .zip(&reference)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "resumed model differs from the uninterrupted one"
        );
        return;
    }
    panic!("no attempt was killed between the first checkpoint and the end of the run");
}

#[test]
fn resume_refuses_a_different_run() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("run");
    let dir_s = dir.display().to_string();
    let out = tinyrnn(&["--out", &dir_s, "--steps", "60"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tinyrnn(&["--steps", "60", "--lr", "0.01", "--resume", &dir_s])
        .output()
        .expect("resume");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains("different run"), "{err}");
}
