//! Checkpoints survive SIGKILL: a run killed at a random moment leaves no corrupt model or
//! checkpoint, and resuming from its last checkpoint ends with the same model, bit for bit, as an
//! uninterrupted run with the same seed. For sine (data drawn per update) and mnist (epochs of
//! shuffled images from IDX files, here a small synthetic set).

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

/// `tinyrnn` with `args` and then `extra`.
fn run_with(args: &[&str], extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tinyrnn"));
    c.args(args).args(extra);
    c
}

/// `tinyrnn sine` with [`ARGS`] and `extra`.
fn tinyrnn(extra: &[&str]) -> Command {
    run_with(ARGS, extra)
}

fn model(path: &Path) -> Vec<f32> {
    load::<M>(path)
}

/// The model in a model file or checkpoint (whose extra tensors are allowed), checked whole.
fn load<P: Params<f32>>(path: &Path) -> Vec<f32> {
    let mut m: Box<P> = host::net::boxed_zeroed();
    let extras = ["optimizer.state", "mnist.smoothed_loss"];
    host::modelfile::ModelFile::read(path, &extras)
        .and_then(|f| f.copy_to(&mut *m))
        .unwrap_or_else(|e| panic!("{e:#}"));
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

/// Starts `run` up to 20 times, SIGKILLing it after a pseudo-random 30..80% of `full` (the
/// uninterrupted run's time), until an attempt is killed after writing its first checkpoint to
/// `dir` (cleared before each attempt); returns that attempt's delay. Panics if none is.
fn kill_mid_run(full: Duration, dir: &Path, run: impl Fn() -> Command) -> Duration {
    for attempt in 0..20u64 {
        let _ = std::fs::remove_dir_all(dir);
        let mut child = run().spawn().expect("spawn tinyrnn");
        let delay = kill_after(full, attempt);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().expect("wait");
        if status.code().is_some() || !dir.join("checkpoint.safetensors").exists() {
            continue; // finished before the kill, or killed before the first checkpoint
        }
        return delay;
    }
    panic!("no attempt was killed between the first checkpoint and the end of the run");
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

    kill_mid_run(full, &cut, || tinyrnn(&["--out", &cut_s]));
    // Whatever exists is whole: the checkpoint (and the model, if written) load.
    let _ = model(&cut.join("checkpoint.safetensors"));
    if cut.join("model.safetensors").exists() {
        let _ = model(&cut.join("model.safetensors"));
    }
    let status = tinyrnn(&["--resume", &cut_s])
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
    // The training curve before the kill travels in the checkpoint.
    assert_eq!(
        csv_without_seconds(&cut.join("metrics.csv")),
        csv_without_seconds(&whole.join("metrics.csv")),
        "metrics.csv differs"
    );
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

// ---- mnist ----

/// The mnist model of [`MNIST_ARGS`].
type Mnist = LstmModel<28, 32, 10>;

/// 192 training images in batches of 16 (12 updates an epoch), 30 epochs: under a second in the
/// test profile, most of it training and checkpointing (so a random kill lands mid-run). One
/// thread, so the result does not depend on the machine's core count.
const MNIST_ARGS: &[&str] = &[
    "mnist",
    "--hidden",
    "32",
    "--epochs",
    "30",
    "--batch",
    "16",
    "--val",
    "16",
    "--lr",
    "0.01",
    "--threads",
    "1",
    "--test-every-epoch",
    "--quiet",
];

/// Writes the four IDX files of a small learnable set to `dir`: 208 training images (raw files)
/// and 16 test images (gzip files). Image `i` is a bright bar at row `3 * (i % 8)` plus sparse
/// noise, labelled `i % 8`.
fn mnist_data(dir: &Path) {
    fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(body);
        v
    }
    fn images(n: u32) -> Vec<u8> {
        let mut body = vec![0u8; n as usize * 784];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for (i, img) in body.chunks_exact_mut(784).enumerate() {
            let row = 3 * (i % 8);
            img[row * 28..(row + 1) * 28].fill(255);
            for _ in 0..20 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                img[(x % 784) as usize] = (x >> 32) as u8;
            }
        }
        idx(0x0803, &[n, 28, 28], &body)
    }
    fn labels(n: u32) -> Vec<u8> {
        idx(
            0x0801,
            &[n],
            &(0..n).map(|i| (i % 8) as u8).collect::<Vec<_>>(),
        )
    }
    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }
    let files = [
        ("train-images-idx3-ubyte", images(208)),
        ("train-labels-idx1-ubyte", labels(208)),
        ("t10k-images-idx3-ubyte.gz", gzip(&images(16))),
        ("t10k-labels-idx1-ubyte.gz", gzip(&labels(16))),
    ];
    for (name, data) in files {
        std::fs::write(dir.join(name), data).expect("write IDX file");
    }
}

/// `tinyrnn mnist` on the data in `data` with [`MNIST_ARGS`] and `extra`.
fn mnist(data: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tinyrnn"));
    c.args(MNIST_ARGS)
        .args(["--data", &data.display().to_string()])
        .args(extra);
    c
}

/// Runs `c`, which must succeed; returns its summary line.
fn run_ok(mut c: Command) -> String {
    let out = c.output().expect("run tinyrnn");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CSV at `path` (header row first) without the columns named in `drop`.
fn csv_without(path: &Path, drop: &[&str]) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !drop.contains(&header[i].as_str()))
        .collect();
    let mut rows = vec![keep.iter().map(|&i| header[i].clone()).collect::<Vec<_>>()];
    for rec in r.records() {
        let rec = rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        rows.push(keep.iter().map(|&i| rec[i].to_string()).collect());
    }
    rows
}

/// metrics.csv without the wall-clock columns (wall_seconds, images_per_second, cpu_seconds).
fn metrics(dir: &Path) -> Vec<Vec<String>> {
    csv_without(
        &dir.join("metrics.csv"),
        &["wall_seconds", "images_per_second", "cpu_seconds"],
    )
}

/// The outputs of a resumed run equal the uninterrupted run's: model file byte for byte, the
/// metrics except wall-clock columns, the test results and (when `plots`) both plots.
fn assert_same_outputs(resumed: &Path, whole: &Path, plots: bool) {
    assert!(
        bytes(&resumed.join("model.safetensors")) == bytes(&whole.join("model.safetensors")),
        "resumed model file differs from the uninterrupted one"
    );
    assert_eq!(metrics(resumed), metrics(whole), "metrics.csv differs");
    for f in ["test.csv", "confusion.csv"] {
        assert!(
            bytes(&resumed.join(f)) == bytes(&whole.join(f)),
            "{f} differs"
        );
    }
    if plots {
        for f in ["loss.png", "accuracy.png"] {
            assert!(
                bytes(&resumed.join(f)) == bytes(&whole.join(f)),
                "{f} differs"
            );
        }
    }
}

#[test]
fn mnist_killed_run_resumes_bit_for_bit() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    mnist_data(&data);
    let (whole, cut) = (root.path().join("whole"), root.path().join("cut"));
    let cut_s = cut.display().to_string();

    // Default: a checkpoint at the end of every epoch.
    let t0 = Instant::now();
    run_ok(mnist(&data, &["--out", &whole.display().to_string()]));
    let full = t0.elapsed();

    let delay = kill_mid_run(full, &cut, || mnist(&data, &["--out", &cut_s]));
    // Whatever exists is whole: the checkpoint (and the model, if written) load, and the
    // metrics parse.
    let ckpt = cut.join("checkpoint.safetensors");
    let _ = load::<Mnist>(&ckpt);
    let meta = host::modelfile::read_metadata(&ckpt).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "mnist: killed after {delay:?} (uninterrupted run: {full:?}); resuming from update \
         {} of 360",
        meta.get("update").map_or("?", String::as_str)
    );
    if cut.join("model.safetensors").exists() {
        let _ = load::<Mnist>(&cut.join("model.safetensors"));
    }
    let _ = metrics(&cut);
    let summary = run_ok(mnist(&data, &["--resume", &cut_s]));
    let at = format!("resumed at update {} of 360", meta["update"]);
    assert!(summary.contains(&at), "did not resume: {summary}");
    assert_same_outputs(&cut, &whole, true);
}

/// Deterministic cover of a resume inside an epoch: with `--checkpoint-every 5` (12 updates an
/// epoch) checkpoints fall inside epochs and, every 60 updates, on an epoch's end; the last one
/// is at update 355, the 7th of the last epoch's 12. Checkpointing does not change the
/// run, and resuming the finished run from that checkpoint writes the same outputs again.
#[test]
fn mnist_resumes_inside_an_epoch() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    mnist_data(&data);
    let (plain, every) = (root.path().join("plain"), root.path().join("every"));
    run_ok(mnist(
        &data,
        &[
            "--out",
            &plain.display().to_string(),
            "--checkpoint-every",
            "0",
        ],
    ));
    assert!(!plain.join("checkpoint.safetensors").exists());
    run_ok(mnist(
        &data,
        &[
            "--out",
            &every.display().to_string(),
            "--checkpoint-every",
            "5",
        ],
    ));
    assert_same_outputs(&every, &plain, true);
    let meta = host::modelfile::read_metadata(&every.join("checkpoint.safetensors"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(meta.get("update").map(String::as_str), Some("355"));
    // Resume in place (outputs go to the --resume directory): the final files are rewritten.
    for f in ["model.safetensors", "metrics.csv", "test.csv"] {
        std::fs::remove_file(every.join(f)).expect("remove");
    }
    let summary = run_ok(mnist(&data, &["--resume", &every.display().to_string()]));
    assert!(
        summary.contains("resumed at update 355 of 360"),
        "did not resume: {summary}"
    );
    assert_same_outputs(&every, &plain, true);
}

/// Bad --resume input: one clear line on stderr, exit code 1, no panic.
#[test]
fn mnist_resume_refuses_bad_input() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    mnist_data(&data);
    let run = root.path().join("run");
    let run_s = run.display().to_string();
    run_ok(mnist(&data, &["--out", &run_s, "--epochs", "2"]));
    let sine = root.path().join("sine");
    run_ok(tinyrnn(&[
        "--out",
        &sine.display().to_string(),
        "--steps",
        "30",
    ]));
    let corrupt = root.path().join("corrupt");
    std::fs::create_dir(&corrupt).expect("mkdir");
    let missing = root.path().join("missing").display().to_string();

    let refuses = |extra: &[&str], want: &str| {
        let out = mnist(&data, extra).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{extra:?}: not one line: {err}"
        );
        assert!(err.contains(want), "{extra:?}: `{want}` not in: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
    };
    refuses(&["--resume", &missing], "does not exist");
    refuses(
        &["--resume", &data.display().to_string()],
        "has no checkpoint.safetensors",
    );
    refuses(
        &["--epochs", "2", "--resume", &sine.display().to_string()],
        "its task: `sine`",
    );
    refuses(
        &["--epochs", "2", "--hidden", "64", "--resume", &run_s],
        "its flags: `hidden: 32`; this run's: `hidden: 64`",
    );
    refuses(
        &["--epochs", "3", "--resume", &run_s],
        "its flags: `epochs: 2`; this run's: `epochs: 3`",
    );
    let ckpt = bytes(&run.join("checkpoint.safetensors"));
    let corrupt_s = corrupt.display().to_string();
    for (bad, want) in [
        (
            ckpt[..ckpt.len() / 2].to_vec(),
            "not a valid safetensors file",
        ),
        (b"not a checkpoint".to_vec(), "not a valid safetensors file"),
        (
            bytes(&run.join("model.safetensors")),
            "not a tinyrnn checkpoint",
        ),
    ] {
        std::fs::write(corrupt.join("checkpoint.safetensors"), bad).expect("write");
        refuses(&["--epochs", "2", "--resume", &corrupt_s], want);
    }
}

const MEMORY_ARGS: &[&str] = &[
    "memory",
    "--length",
    "3",
    "--blanks",
    "8",
    "--hidden",
    "16",
    "--lr",
    "0.01",
    "--advance-at",
    "0.5",
    "--batch",
    "8",
    "--log-every",
    "50",
    "--window",
    "5",
    "--eval-sequences",
    "16",
    "--test-sequences",
    "16",
    "--predictions",
    "2",
    "--quiet",
];

/// A CSV without its `seconds` column (wall clock).
fn csv_without_seconds(path: &Path) -> Vec<Vec<String>> {
    csv_without(path, &["seconds"])
}

/// memory: the curriculum (current N, the window of recent accuracies), the smoothed loss and the
/// metrics rows so far travel in the checkpoint. A run of 400 updates without checkpoints, and the
/// same run with one every 175 updates resumed from its last (update 350, mid-curriculum: N moves
/// from 0 to 8 by steps of 2 over the first 400 updates), write the same model bytes, metrics and
/// predictions; so does a 3,000-update run SIGKILLed at a random moment and resumed.
#[test]
fn memory_resumes_bit_for_bit() {
    let root = tempfile::tempdir().expect("tempdir");
    let memory = |extra: &[&str]| run_with(MEMORY_ARGS, extra);
    let same = |a: &Path, b: &Path| {
        assert!(
            bytes(&a.join("model.safetensors")) == bytes(&b.join("model.safetensors")),
            "model files differ: {} vs {}",
            a.display(),
            b.display()
        );
        for f in ["metrics.csv", "predictions.csv"] {
            assert_eq!(
                csv_without_seconds(&a.join(f)),
                csv_without_seconds(&b.join(f)),
                "{f} differs"
            );
        }
    };
    let dir = |name: &str| root.path().join(name).display().to_string();

    let (whole, ckpt) = (dir("whole"), dir("ckpt"));
    run_ok(memory(&[
        "--steps",
        "400",
        "--out",
        &whole,
        "--checkpoint-every",
        "0",
    ]));
    assert!(
        !Path::new(&whole).join("checkpoint.safetensors").exists(),
        "--checkpoint-every 0 wrote a checkpoint"
    );
    run_ok(memory(&[
        "--steps",
        "400",
        "--out",
        &ckpt,
        "--checkpoint-every",
        "175",
    ]));
    same(Path::new(&ckpt), Path::new(&whole));
    let meta = host::modelfile::read_metadata(&Path::new(&ckpt).join("checkpoint.safetensors"))
        .expect("metadata");
    assert_eq!(meta["update"], "350");
    let progress: serde_json::Value =
        serde_json::from_str(&meta["progress"]).expect("the checkpoint's progress is JSON");
    let n = &progress["curriculum_n"];
    assert!(
        n.as_u64().is_some_and(|n| n != 0 && n != 8),
        "update 350 should be mid-curriculum, N = {n}"
    );
    let summary = run_ok(memory(&["--steps", "400", "--resume", &ckpt]));
    assert!(
        summary.contains("resumed at update 350"),
        "did not resume: {summary}"
    );
    same(Path::new(&ckpt), Path::new(&whole));

    let (whole, cut) = (dir("whole-long"), dir("cut"));
    let t0 = Instant::now();
    run_ok(memory(&[
        "--steps",
        "3000",
        "--out",
        &whole,
        "--checkpoint-every",
        "0",
    ]));
    let full = t0.elapsed();
    kill_mid_run(full, Path::new(&cut), || {
        memory(&["--steps", "3000", "--out", &cut, "--checkpoint-every", "10"])
    });
    let summary = run_ok(memory(&["--steps", "3000", "--resume", &cut]));
    assert!(
        summary.contains("resumed at update"),
        "did not resume: {summary}"
    );
    same(Path::new(&cut), Path::new(&whole));
}

#[test]
fn memory_resume_refuses_compare_and_other_runs() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("run");
    let dir_s = dir.display().to_string();
    run_ok(run_with(
        MEMORY_ARGS,
        &["--out", &dir_s, "--steps", "20", "--checkpoint-every", "10"],
    ));
    for (extra, want) in [
        (
            &["--resume", &dir_s, "--compare"][..],
            "does not work with --compare",
        ),
        (&["--resume", &dir_s, "--hidden", "32"][..], "different run"),
        (
            &["--resume", &dir_s, "--steps", "20", "--lr", "0.02"][..],
            "different run",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tinyrnn"))
            .args(MEMORY_ARGS)
            .args(["--steps", "20"])
            .args(extra)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {err}");
        assert!(
            err.contains(want) && err.trim().lines().count() == 1,
            "{extra:?}: {err}"
        );
    }
}
