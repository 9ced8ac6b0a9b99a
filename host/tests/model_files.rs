//! The one model-file reader, seen from the command line: `infer`, `export` and `--resume` refuse
//! the same bad files with one line naming the tensor (a tensor they would not use, a NaN or
//! infinite value), and `--resume` refuses a damaged checkpoint (checksum) and one that does not
//! fit its run (update count, training progress). Edited files are written with their checksum
//! recomputed ([`host::modelfile::checksum_of`]) where the test is about the check behind it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// A small sine run: 120 updates, a checkpoint at 50 and 100 (none after the last).
const SINE: &[&str] = &[
    "sine",
    "--hidden",
    "8",
    "--steps",
    "120",
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
    "50",
    "--quiet",
];

/// A small memory run: 20 updates, a metrics row every 5, a checkpoint at 10.
const MEMORY: &[&str] = &[
    "memory",
    "--length",
    "3",
    "--blanks",
    "2",
    "--hidden",
    "16",
    "--batch",
    "8",
    "--steps",
    "20",
    "--log-every",
    "5",
    "--checkpoint-every",
    "10",
    "--eval-sequences",
    "8",
    "--test-sequences",
    "8",
    "--predictions",
    "1",
    "--quiet",
];

fn tinyrnn(args: &[&str], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinyrnn"))
        .args(args)
        .args(extra)
        .output()
        .expect("run tinyrnn")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `args`, which must succeed.
fn ok(args: &[&str], extra: &[&str]) {
    let out = tinyrnn(args, extra);
    assert!(
        out.status.success(),
        "{args:?} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `args`, which must fail with exit code 1 and one line on stderr mentioning every part
/// of `want`; returns the line.
#[track_caller]
fn refused(args: &[&str], extra: &[&str], want: &[&str]) -> String {
    let out = tinyrnn(args, extra);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{extra:?}: not one line: {err}");
    for w in want {
        assert!(err.contains(w), "{extra:?}: `{w}` not in: {err}");
    }
    err
}

/// A tensor of a file: name, dtype, shape, bytes.
type Tensor = (String, Dtype, Vec<usize>, Vec<u8>);

/// Rewrites the safetensors file `from` to `to` after `edit`; a file with a checksum gets the
/// checksum of its new contents.
fn rewrite(
    from: &Path,
    to: &Path,
    edit: impl FnOnce(&mut Vec<Tensor>, &mut HashMap<String, String>),
) {
    let data = std::fs::read(from).expect("read");
    let st = SafeTensors::deserialize(&data).expect("safetensors");
    let mut tensors: Vec<Tensor> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let (_, meta) = SafeTensors::read_metadata(&data).expect("metadata");
    let mut meta = meta.metadata().clone().unwrap_or_default();
    edit(&mut tensors, &mut meta);
    let serialize = |meta: &HashMap<String, String>| {
        let views = tensors.iter().map(|(n, d, s, b)| {
            (
                n.clone(),
                TensorView::new(*d, s.clone(), b).expect("tensor view"),
            )
        });
        safetensors::serialize(views, Some(meta.clone())).expect("serialize")
    };
    let mut bytes = serialize(&meta);
    if meta.contains_key(host::modelfile::CHECKSUM_KEY) {
        let sum = host::modelfile::checksum_of(&bytes).expect("checksum");
        meta.insert(host::modelfile::CHECKSUM_KEY.into(), sum);
        bytes = serialize(&meta);
    }
    std::fs::write(to, bytes).expect("write");
}

/// `tensors` with an F32 tensor `name` of `shape` added (values 0.5).
fn add(tensors: &mut Vec<Tensor>, name: &str, shape: &[usize]) {
    let n: usize = shape.iter().product();
    let bytes = (0..n).flat_map(|_| 0.5f32.to_le_bytes()).collect();
    tensors.push((name.into(), Dtype::F32, shape.to_vec(), bytes));
}

/// Sets element `k` of tensor `name` to `v`.
fn set(tensors: &mut [Tensor], name: &str, k: usize, v: f32) {
    let t = tensors.iter_mut().find(|t| t.0 == name).expect("tensor");
    t.3[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
}

/// A finished sine run of [`SINE`] in `root/run`: its model and its checkpoint (update 100).
fn sine_run(root: &Path) -> (PathBuf, PathBuf) {
    let run = root.join("run");
    ok(SINE, &["--out", &s(&run)]);
    (
        run.join("model.safetensors"),
        run.join("checkpoint.safetensors"),
    )
}

/// A directory `root/name` holding the checkpoint `from` after `edit`, to `--resume` from.
fn resume_dir(
    root: &Path,
    name: &str,
    from: &Path,
    edit: impl FnOnce(&mut Vec<Tensor>, &mut HashMap<String, String>),
) -> String {
    let dir = root.join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    rewrite(from, &dir.join("checkpoint.safetensors"), edit);
    s(&dir)
}

/// `infer` and `export` refuse `model` with one line mentioning `want`, writing nothing.
fn infer_and_export_refuse(model: &Path, want: &[&str]) {
    let dir = model.parent().expect("dir");
    let (x, y, rs) = (dir.join("x.csv"), dir.join("y.csv"), dir.join("m.rs"));
    std::fs::write(&x, "0.1\n0.2\n").expect("write");
    let m = s(model);
    refused(
        &["infer"],
        &["--model", &m, "--input", &s(&x), "--output", &s(&y)],
        want,
    );
    refused(&["export"], &["--model", &m, "--rust", &s(&rs)], want);
    assert!(!y.exists() && !rs.exists(), "an output was written");
}

/// A second layer, a reverse direction or an extra head tensor is refused by `infer`, `export`
/// and `--resume` alike, naming the tensor (`export` and `--resume` used to ignore them).
#[test]
fn tensors_a_command_would_not_use_are_refused_by_every_reader() {
    let root = tempfile::tempdir().expect("tempdir");
    let (model, ckpt) = sine_run(root.path());
    // Controls: the files as written, and rewritten without a change, are accepted.
    let same = root.path().join("same.safetensors");
    rewrite(&model, &same, |_, _| {});
    ok(
        &["export"],
        &[
            "--model",
            &s(&same),
            "--rust",
            &s(&root.path().join("ok.rs")),
        ],
    );
    let dir = resume_dir(root.path(), "same", &ckpt, |_, _| {});
    ok(SINE, &["--resume", &dir]);

    // A second layer or a reverse direction contradicts the shape tinyrnn recorded in the file.
    for (k, (name, shape, want)) in [
        ("lstm.weight_ih_l1", [32, 8], "metadata `layers`"),
        ("lstm.weight_ih_l0_reverse", [32, 1], "`bidirectional`"),
        ("head.foo", [1, 8], "unsupported tensor `head.foo`"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = root.path().join(format!("model{k}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let bad = dir.join("m.safetensors");
        rewrite(&model, &bad, |t, _| add(t, name, &shape));
        infer_and_export_refuse(&bad, &[want]);
        let dir = resume_dir(root.path(), &format!("ckpt{k}"), &ckpt, |t, _| {
            add(t, name, &shape)
        });
        refused(SINE, &["--resume", &dir], &["cannot resume", want]);
        let left: Vec<_> = std::fs::read_dir(&dir).expect("ls").collect();
        assert_eq!(left.len(), 1, "a refused resume wrote into {dir}");
    }
}

/// NaN and infinite values are refused naming the tensor and the element: weights by `infer`
/// and `export`, the optimizer state by `--resume`.
#[test]
fn non_finite_values_are_refused_naming_the_tensor() {
    let root = tempfile::tempdir().expect("tempdir");
    let (model, ckpt) = sine_run(root.path());
    for (k, (name, at, v, want)) in [
        ("lstm.weight_hh_l0", 5, f32::NAN, "element 5 is NaN"),
        ("head.bias", 0, f32::INFINITY, "element 0 is inf"),
        (
            "lstm.bias_ih_l0",
            31,
            f32::NEG_INFINITY,
            "element 31 is -inf",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = root.path().join(format!("model{k}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let bad = dir.join("m.safetensors");
        rewrite(&model, &bad, |t, _| set(t, name, at, v));
        infer_and_export_refuse(&bad, &[&format!("tensor `{name}` {want}")]);
    }
    let dir = resume_dir(root.path(), "ckpt", &ckpt, |t, _| {
        set(t, "optimizer.state", 7, f32::NAN)
    });
    refused(
        SINE,
        &["--resume", &dir],
        &["tensor `optimizer.state` element 7 is NaN"],
    );
}

/// A checkpoint with one flipped byte, cut short, or with its update count edited (checksum
/// left as it was) is refused as damaged.
#[test]
fn damaged_checkpoints_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_, ckpt) = sine_run(root.path());
    let good = std::fs::read(&ckpt).expect("read");
    let header = 8 + u64::from_le_bytes(good[..8].try_into().expect("8 bytes")) as usize;
    let key = b"\"update\":\"100\"";
    let update = good
        .windows(key.len())
        .position(|w| w == key)
        .expect("the update count in the header")
        + key.len()
        - 5;
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x04;
        b
    };
    let mut edited = good.clone();
    edited[update + 1..update + 4].copy_from_slice(b"999");
    let cases = [
        (flip(header + 40), "is damaged: checksum mismatch"),
        (flip(good.len() - 1), "is damaged: checksum mismatch"),
        (edited, "is damaged: checksum mismatch"),
        (
            good[..good.len() - 3].to_vec(),
            "not a valid safetensors file",
        ),
        (good[..header - 10].to_vec(), "not a valid safetensors file"),
    ];
    for (k, (bytes, want)) in cases.into_iter().enumerate() {
        let dir = root.path().join(format!("bad{k}"));
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("checkpoint.safetensors"), bytes).expect("write");
        refused(SINE, &["--resume", &s(&dir)], &["cannot resume", want]);
    }
}

/// A checkpoint whose update count is at or past the run's end (or 0) is refused even with a
/// valid checksum: it would "finish" the run without training.
#[test]
fn update_counts_outside_the_run_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_, ckpt) = sine_run(root.path());
    for update in ["120", "5000", "0"] {
        let dir = resume_dir(root.path(), &format!("u{update}"), &ckpt, |_, m| {
            m.insert("update".into(), update.into());
        });
        refused(
            SINE,
            &["--resume", &dir],
            &[&format!(
                "its update count {update} is not within this run's 120 updates"
            )],
        );
    }
}

/// A checkpoint whose training progress does not match its update count is refused: sine (a
/// metrics row every 50 updates) and memory (a row every --log-every), progress emptied or a
/// row edited.
#[test]
fn progress_must_match_the_update_count() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_, ckpt) = sine_run(root.path());
    let progress = |edit: fn(&mut serde_json::Value)| {
        move |_: &mut Vec<Tensor>, m: &mut HashMap<String, String>| {
            let mut p: serde_json::Value = serde_json::from_str(&m["progress"]).expect("json");
            edit(&mut p);
            m.insert("progress".into(), p.to_string());
        }
    };
    let dir = resume_dir(
        root.path(),
        "sine-empty",
        &ckpt,
        progress(|p| *p = serde_json::json!([])),
    );
    refused(
        SINE,
        &["--resume", &dir],
        &["inconsistent at update 100", "0 metrics rows, expected 2"],
    );
    let dir = resume_dir(
        root.path(),
        "sine-row",
        &ckpt,
        progress(|p| p[1]["update"] = 52.into()),
    );
    refused(
        SINE,
        &["--resume", &dir],
        &["metrics row 2 is for update 52, expected 51"],
    );

    let run = root.path().join("memory");
    ok(MEMORY, &["--out", &s(&run)]);
    let ckpt = run.join("checkpoint.safetensors");
    let meta = host::modelfile::read_metadata(&ckpt).expect("metadata");
    assert_eq!(meta["update"], "10");
    let dir = resume_dir(root.path(), "memory-same", &ckpt, |_, _| {});
    ok(MEMORY, &["--resume", &dir]);
    let dir = resume_dir(
        root.path(),
        "memory-empty",
        &ckpt,
        progress(|p| p["log"] = serde_json::json!([])),
    );
    refused(
        MEMORY,
        &["--resume", &dir],
        &["inconsistent at update 10", "0 metrics rows, expected 2"],
    );
    let dir = resume_dir(
        root.path(),
        "memory-stopped",
        &ckpt,
        progress(|p| p["stopped"] = true.into()),
    );
    refused(MEMORY, &["--resume", &dir], &["the run had stopped"]);
}
