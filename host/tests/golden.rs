//! Golden fixtures: every task has a small deterministic configuration (a few seconds) whose CSV
//! outputs are committed under `fixtures/golden/<name>/`. This test reruns each one through the
//! real command line and compares every CSV field: numbers within |a - b| <= 1e-6 + 1e-3 |b|
//! (f32 training is deterministic for a given build; the slack covers summation-order changes in
//! the kernels, while a wrong gradient moves the losses by far more), text exactly. Columns
//! named in `VOLATILE` (wall-clock times) are skipped.
//!
//! Regenerate all fixtures after an intended change with:
//!
//! ```text
//! TINYRNN_BLESS=1 cargo test -p host --test golden
//! ```

use std::path::{Path, PathBuf};

use tinyrnn_tests::read_csv;

const VOLATILE: &[&str] = &["seconds", "wall_seconds", "images_per_second"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden")
}

fn close(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y || (x - y).abs() <= 1e-6 + 1e-3 * y.abs(),
        _ => a == b,
    }
}

/// Runs `args` (plus `--out DIR --quiet`) and compares the CSVs `files` with the fixtures of `name`.
pub fn golden(name: &str, args: &[&str], files: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    argv.extend([
        "--out".into(),
        dir.path().display().to_string(),
        "--quiet".into(),
    ]);
    if let Err(e) = host::cli::run(&argv) {
        panic!("`tinyrnn {}` failed: {e:?}", argv.join(" "));
    }
    let want_dir = fixtures().join(name);
    let bless = std::env::var_os("TINYRNN_BLESS").is_some();
    for file in files {
        let (got, want) = (dir.path().join(file), want_dir.join(file));
        if bless {
            std::fs::create_dir_all(&want_dir).expect("create fixture dir");
            std::fs::copy(&got, &want).unwrap_or_else(|e| panic!("bless {}: {e}", want.display()));
            continue;
        }
        let (gh, gr) = read_csv(&got);
        let (wh, wr) = read_csv(&want);
        assert_eq!(gh, wh, "{name}/{file}: header differs");
        assert_eq!(gr.len(), wr.len(), "{name}/{file}: row count differs");
        for (i, (g, w)) in gr.iter().zip(&wr).enumerate() {
            for ((col, a), b) in gh.iter().zip(g).zip(w) {
                if VOLATILE.contains(&col.as_str()) {
                    continue;
                }
                assert!(
                    close(a, b),
                    "{name}/{file} row {} column `{col}`: got {a}, fixture {b}",
                    i + 1
                );
            }
        }
    }
}

#[test]
fn sine() {
    golden(
        "sine",
        &[
            "sine",
            "--steps",
            "40",
            "--batch",
            "8",
            "--teacher-steps",
            "20",
            "--test-curves",
            "4",
            "--plot-curves",
            "1",
            "--seed",
            "1",
        ],
        &["metrics.csv", "sine.csv"],
    );
}

/// The default run (it converges in about 4,000 RMSProp updates, well under a second): the gate
/// table, its per-count summary and the training curve.
#[test]
fn counter() {
    golden(
        "counter",
        &["counter"],
        &["counter.csv", "count.csv", "metrics.csv"],
    );
}

/// 200 Adagrad updates over 2 epochs (loss from chance to near zero), then an unseen stream of
/// 600 bits: the training curve, the accuracy by position in the chunk and the predictions.
#[test]
fn echo() {
    golden(
        "echo",
        &[
            "echo",
            "--series-length",
            "7500",
            "--epochs",
            "2",
            "--test-length",
            "600",
            "--log-every",
            "10",
            "--show",
            "40",
            "--seed",
            "1",
        ],
        &["metrics.csv", "accuracy.csv", "echo.csv"],
    );
}

/// A tiny copy task (L=3, N=4, H=32, 600 Adam updates; the curriculum reaches N=2 and the
/// held-out recall accuracy at N=4 is 0.40, chance 0.125): the training and held-out curves and
/// the predictions on two unseen sequences.
#[test]
fn memory() {
    golden(
        "memory",
        &[
            "memory",
            "--length",
            "3",
            "--blanks",
            "4",
            "--hidden",
            "32",
            "--steps",
            "600",
            "--lr",
            "0.01",
            "--batch",
            "8",
            "--log-every",
            "100",
            "--window",
            "5",
            "--eval-sequences",
            "16",
            "--test-sequences",
            "16",
            "--predictions",
            "2",
            "--seed",
            "1",
        ],
        &["metrics.csv", "predictions.csv"],
    );
}
