//! `--tensorboard DIR`: every training task writes TensorFlow event files that read back (the
//! Rust reader of `host::tensorboard`, which checks every record's CRC-32C): the loss, learning
//! rate and gradient norm of every update and the task's held-out metrics. A DIR that is a file
//! is refused before anything is written. TensorBoard's own reader (`tests/tensorboard_read.py`,
//! its `EventAccumulator`) must see the same scalars, run by `TINYRNN_TENSORBOARD_PYTHON` (which
//! must then import `tensorboard`: CI installs it into a venv, `.ci/run`), else by `python3` if
//! that imports it, else that part is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use host::tensorboard::{Scalar, What, read_events};

/// Every scalar in the event files under `dir` (recursively): tag -> [(step, value)].
fn scalars(dir: &Path) -> BTreeMap<String, Vec<(i64, f32)>> {
    let mut out: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    let mut files = 0;
    for entry in walk(dir) {
        let name = entry.file_name().unwrap_or_default().to_string_lossy();
        if !name.contains("tfevents") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&entry).expect("read event file");
        let events = read_events(&bytes).unwrap_or_else(|| panic!("{name} does not read back"));
        assert_eq!(
            events.first().and_then(|e| e.what.clone()),
            Some(What::FileVersion("brain.Event:2".into())),
            "{name}: no version record first"
        );
        for e in &events[1..] {
            let Some(What::Summary(s)) = &e.what else {
                panic!("{name}: an event that is not a summary")
            };
            for v in &s.value {
                let Some(Scalar::SimpleValue(x)) = v.value else {
                    panic!("{name}: {} is not a scalar", v.tag)
                };
                out.entry(v.tag.clone()).or_default().push((e.step, x));
            }
        }
    }
    assert!(files > 0, "no event file under {}", dir.display());
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

fn tinyrnn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tinyrnn"))
        .args(args)
        .output()
        .expect("run tinyrnn")
}

fn ok(args: &[&str]) {
    let o = tinyrnn(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The steps of a tag: 1, 2, ... for a per-update scalar.
fn steps(s: &BTreeMap<String, Vec<(i64, f32)>>, tag: &str) -> Vec<i64> {
    s.get(tag)
        .unwrap_or_else(|| panic!("no {tag}; tags: {:?}", s.keys()))
        .iter()
        .map(|&(k, _)| k)
        .collect()
}

#[test]
fn sine_writes_every_update_and_the_test_mse() {
    let root = tempfile::tempdir().expect("tempdir");
    let (out, tb) = (root.path().join("out"), root.path().join("tb/sine"));
    let (out_s, tb_s) = (out.display().to_string(), tb.display().to_string());
    ok(&[
        "sine",
        "--hidden",
        "8",
        "--steps",
        "20",
        "--batch",
        "8",
        "--teacher-steps",
        "10",
        "--test-curves",
        "4",
        "--plot-curves",
        "1",
        "--quiet",
        "--out",
        &out_s,
        "--tensorboard",
        &tb_s,
    ]);
    let s = scalars(&tb);
    let every: Vec<i64> = (1..=20).collect();
    for tag in ["loss/train", "train/lr", "train/grad_norm"] {
        assert_eq!(steps(&s, tag), every, "{tag}");
    }
    // The cosine schedule decays the learning rate; the first update runs at --lr.
    let lr = &s["train/lr"];
    assert!(
        (lr[0].1 - 3e-3).abs() < 1e-9 && lr[19].1 < lr[0].1,
        "{lr:?}"
    );
    assert_eq!(steps(&s, "mse/test_extrapolation"), [20]);
    // The loss in metrics.csv's first row (update 1) is the first scalar.
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics.csv");
    let first: f32 = metrics
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.parse().ok())
        .expect("a loss");
    assert!((s["loss/train"][0].1 - first).abs() <= 1e-6 * first.abs().max(1.0));

    // TensorBoard's own reader, where the package is installed.
    let named = std::env::var("TINYRNN_TENSORBOARD_PYTHON").ok();
    let python = named.clone().unwrap_or("python3".into());
    let importable = Command::new(&python)
        .args(["-c", "import tensorboard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        // A Python named on purpose (CI) must have it; plain python3 may not.
        assert!(named.is_none(), "{python} cannot import tensorboard");
        eprintln!("skipped: {python} cannot import tensorboard");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tensorboard_read.py");
    let o = Command::new(&python)
        .arg(&script)
        .arg(&tb)
        .output()
        .expect("run python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let mut theirs: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split(',');
        let (Some(tag), Some(step), Some(v)) = (f.next(), f.next(), f.next()) else {
            panic!("bad line {line}")
        };
        theirs
            .entry(tag.into())
            .or_default()
            .push((step.parse().expect("step"), v.parse().expect("value")));
    }
    assert_eq!(
        theirs, s,
        "TensorBoard reads other scalars than the Rust reader"
    );
    eprintln!("TensorBoard's EventAccumulator read {} tags", theirs.len());
}

#[test]
fn every_training_task_writes_events() {
    let root = tempfile::tempdir().expect("tempdir");
    let runs: [(&str, &[&str], &[&str]); 4] = [
        ("counter", &["counter"], &[]),
        (
            "echo",
            &[
                "echo",
                "--epochs",
                "1",
                "--series-length",
                "5000",
                "--test-length",
                "1000",
            ],
            &["accuracy/train", "accuracy/test"],
        ),
        (
            "memory",
            &[
                "memory",
                "--hidden",
                "8",
                "--steps",
                "40",
                "--log-every",
                "20",
                "--eval-sequences",
                "8",
                "--test-sequences",
                "8",
                "--length",
                "3",
                "--blanks",
                "2",
            ],
            &[
                "loss/eval_recall",
                "accuracy/eval_recall",
                "train/curriculum_n",
                "accuracy/test_recall",
            ],
        ),
        (
            "memory-compare",
            &[
                "memory",
                "--compare",
                "--compare-blanks",
                "2",
                "--hidden",
                "8",
                "--steps",
                "20",
                "--log-every",
                "10",
                "--eval-sequences",
                "8",
                "--test-sequences",
                "8",
                "--length",
                "3",
            ],
            &["accuracy/test_recall"],
        ),
    ];
    for (name, args, tags) in runs {
        let (out, tb) = (root.path().join(name), root.path().join("tb").join(name));
        let mut argv = args.to_vec();
        let (out_s, tb_s) = (out.display().to_string(), tb.display().to_string());
        argv.extend(["--quiet", "--out", &out_s, "--tensorboard", &tb_s]);
        ok(&argv);
        let s = scalars(&tb);
        for tag in ["loss/train", "train/lr", "train/grad_norm"]
            .iter()
            .chain(tags)
        {
            assert!(
                s.contains_key(*tag),
                "{name}: no {tag}; tags: {:?}",
                s.keys()
            );
        }
        if name == "memory-compare" {
            // One subdirectory (a TensorBoard run) per model.
            let subs: Vec<String> = std::fs::read_dir(&tb)
                .expect("read_dir")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(subs.len(), 3, "{subs:?}");
        }
    }
}

#[test]
fn a_file_is_refused_before_anything_is_written() {
    let root = tempfile::tempdir().expect("tempdir");
    let file = root.path().join("events");
    std::fs::write(&file, "mine").expect("write");
    let out = root.path().join("out");
    let o = tinyrnn(&[
        "counter",
        "--quiet",
        "--out",
        &out.display().to_string(),
        "--tensorboard",
        &file.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("is not a directory"), "{err}");
    assert!(
        !out.exists(),
        "the refused run created its output directory"
    );
    assert_eq!(std::fs::read(&file).expect("read"), b"mine");
}
