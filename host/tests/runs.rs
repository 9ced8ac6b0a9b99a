//! Run directories: a new run over another run's `--out` moves that run into `previous/` as a
//! whole before it writes anything (also when killed early), the README's first command can be
//! rerun, stale temporaries of killed runs go at start, a second run on a busy `--out` is
//! refused, and an input inside what would be moved aside is refused before anything moves.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A sine run of well under a second (a checkpoint every 10 updates).
const SINE: &[&str] = &[
    "sine",
    "--hidden",
    "8",
    "--steps",
    "30",
    "--batch",
    "8",
    "--teacher-steps",
    "20",
    "--test-curves",
    "4",
    "--plot-curves",
    "1",
    "--checkpoint-every",
    "10",
    "--quiet",
];

/// A sine run long enough to be caught running (a checkpoint every 5 updates).
const LONG_SINE: &[&str] = &[
    "sine",
    "--hidden",
    "8",
    "--steps",
    "1000000",
    "--batch",
    "8",
    "--checkpoint-every",
    "5",
    "--quiet",
];

/// `tinyrnn` with `args`, then `--out dir` if given.
fn tinyrnn(args: &[&str], out: Option<&Path>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tinyrnn"));
    c.args(args);
    if let Some(dir) = out {
        c.arg("--out").arg(dir);
    }
    c
}

/// Runs `c`, which must succeed.
fn run_ok(mut c: Command) {
    let out = c.output().expect("run tinyrnn");
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `c`, which must fail with exit code 1 and one line on stderr holding every `want`.
fn refused(mut c: Command, want: &[&str]) -> String {
    let Output { status, stderr, .. } = c.output().expect("run tinyrnn");
    let err = String::from_utf8_lossy(&stderr).into_owned();
    assert_eq!(status.code(), Some(1), "{c:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{c:?}: not one line: {err}");
    for w in want {
        assert!(err.contains(w), "{c:?}: `{w}` not in: {err}");
    }
    err
}

/// Every file under `dir` (relative path -> bytes), recursively; directories `skip` left out.
fn files(dir: &Path, skip: &[&str]) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("under root").to_path_buf();
            if skip.iter().any(|s| rel == Path::new(s)) {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, skip, out);
            } else {
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// The inodes of the files under `dir` (directories `skip` left out).
fn inodes(dir: &Path, skip: &[&str]) -> Vec<u64> {
    files(dir, skip)
        .keys()
        .map(|rel| std::fs::metadata(dir.join(rel)).expect("stat").ino())
        .collect()
}

/// Waits (up to a minute) until `ready` holds while `child` runs; panics if it ends first.
fn wait_until(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("tinyrnn ended ({status}) before {what}");
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no {what} in 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running tinyrnn, SIGKILLed and reaped when dropped (also when a test fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pid in `dir/run.json`, if it can be read.
fn manifest_pid(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("run.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["pid"].as_u64().map(|p| p as u32)
}

/// Writes a small IDX set (raw files) for mnist: 48 training and 16 test images, image `i` a
/// bright row `3 * (i % 8)` labelled `i % 8`.
fn mnist_data(dir: &Path) {
    let idx = |magic: u32, dims: &[u32], body: Vec<u8>| {
        let mut v = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(body);
        v
    };
    for (set, n) in [("train", 48u32), ("t10k", 16)] {
        let mut images = vec![0u8; n as usize * 784];
        for (i, img) in images.chunks_exact_mut(784).enumerate() {
            img[3 * (i % 8) * 28..][..28].fill(255);
        }
        let labels = (0..n).map(|i| (i % 8) as u8).collect();
        let write = |name: String, bytes| std::fs::write(dir.join(name), bytes).expect("write");
        write(
            format!("{set}-images-idx3-ubyte"),
            idx(0x803, &[n, 28, 28], images),
        );
        write(format!("{set}-labels-idx1-ubyte"), idx(0x801, &[n], labels));
    }
}

/// For every task (and `memory --compare`): a second run over the first's `--out` leaves the
/// first run's files, byte for byte, in `previous/` and its own in their place, the user's
/// files alone, and no lock or temporary file. This also checks that every file a task writes
/// is one a new run moves aside.
#[test]
fn every_task_moves_the_run_before_into_previous() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    mnist_data(&data);
    let data_s = data.display().to_string();
    let memory: &[&str] = &[
        "memory",
        "--length",
        "3",
        "--blanks",
        "4",
        "--hidden",
        "8",
        "--steps",
        "20",
        "--log-every",
        "10",
        "--batch",
        "4",
        "--eval-sequences",
        "4",
        "--test-sequences",
        "4",
        "--predictions",
        "1",
        "--checkpoint-every",
        "10",
        "--quiet",
    ];
    let compare = [memory, &["--compare", "--compare-blanks", "2"]].concat();
    let echo: &[&str] = &[
        "echo",
        "--series-length",
        "75",
        "--epochs",
        "1",
        "--test-length",
        "10",
        "--quiet",
    ];
    let mnist: &[&str] = &[
        "mnist",
        "--data",
        &data_s,
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--batch",
        "16",
        "--val",
        "16",
        "--threads",
        "1",
        "--quiet",
    ];
    let tasks: [&[&str]; 6] = [SINE, &["counter", "--quiet"], echo, memory, &compare, mnist];
    for args in tasks {
        let out = root.path().join(args[0]).join(args.len().to_string());
        run_ok(tinyrnn(args, Some(&out)));
        let first = files(&out, &[]);
        std::fs::write(out.join("notes.txt"), "mine").expect("write");
        run_ok(tinyrnn(args, Some(&out)));
        assert_eq!(
            files(&out.join("previous"), &[]),
            first,
            "{args:?}: previous/ is not the first run"
        );
        let mut second = files(&out, &["previous"]);
        assert_eq!(
            second.remove(Path::new("notes.txt")).as_deref(),
            Some(&b"mine"[..]),
            "{args:?}: the user's file"
        );
        assert_eq!(
            second.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>(),
            "{args:?}: the second run's files"
        );
    }
}

/// The README's first command (no `--out`: `runs/sine` under the working directory) can be run
/// again and again: each run keeps the one before in `runs/sine/previous/`, one generation.
#[test]
fn readme_command_reruns() {
    let cwd = tempfile::tempdir().expect("tempdir");
    let dir = cwd.path().join("runs/sine");
    let mut before = BTreeMap::new();
    for attempt in 0..3 {
        let mut c = tinyrnn(SINE, None);
        c.current_dir(cwd.path());
        run_ok(c);
        if attempt > 0 {
            assert_eq!(
                files(&dir.join("previous"), &[]),
                before,
                "run {attempt}: previous/ is not the run before"
            );
        }
        before = files(&dir, &["previous"]);
        assert!(before.contains_key(Path::new("model.safetensors")));
    }
}

/// A new run SIGKILLed after it wrote its first checkpoint over a finished run's directory: no
/// file of the finished run is left outside `previous/` (whole there), so the two never mix. A
/// run after that (over the killed run's lock file) works and keeps the killed one.
#[test]
fn killed_run_never_mixes_with_the_run_before() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    run_ok(tinyrnn(SINE, Some(&out)));
    let (first, first_inodes) = (files(&out, &[]), inodes(&out, &[]));
    let ckpt = out.join("checkpoint.safetensors");
    let first_ckpt = std::fs::metadata(&ckpt).expect("checkpoint").ino();

    let mut child = Running(tinyrnn(LONG_SINE, Some(&out)).spawn().expect("spawn"));
    wait_until(&mut child.0, "a new checkpoint", || {
        std::fs::metadata(&ckpt).is_ok_and(|m| m.ino() != first_ckpt)
    });
    drop(child);
    let left: Vec<u64> = inodes(&out, &["previous"]);
    assert!(
        !left.iter().any(|i| first_inodes.contains(i)),
        "a file of the first run is outside previous/: {:?}",
        files(&out, &["previous"]).keys().collect::<Vec<_>>()
    );
    assert_eq!(files(&out.join("previous"), &[]), first, "previous/");

    // The killed run's files, but for its lock and a temporary it may have been writing
    // (removed at the next start, not moved).
    let mut killed = files(&out, &["previous", ".tinyrnn.lock"]);
    let temp = |p: &Path| p.to_string_lossy().starts_with(".tmp-tinyrnn-");
    killed.retain(|p, _| !temp(p));
    run_ok(tinyrnn(SINE, Some(&out)));
    assert_eq!(files(&out.join("previous"), &[]), killed, "previous/ after");
    let left = files(&out, &["previous"]);
    assert!(!left.keys().any(|p| temp(p)), "temporary left");
    assert!(!out.join(".tinyrnn.lock").exists(), "lock file left");
}

/// Temporaries of a dead tinyrnn process are removed when a run starts; one of a live process
/// is not.
#[test]
fn stale_temporaries_are_removed_at_start() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let mut gone = Command::new("true").spawn().expect("spawn true");
    let dead = gone.id();
    gone.wait().expect("wait");
    let stale = out.join(format!(".tmp-tinyrnn-{dead}-abcdef"));
    let live = out.join(format!(".tmp-tinyrnn-{}-abcdef", std::process::id()));
    std::fs::write(&stale, "half a file").expect("write");
    std::fs::write(&live, "being written").expect("write");
    run_ok(tinyrnn(SINE, Some(&out)));
    assert!(
        !stale.exists(),
        "the dead process's temporary is still there"
    );
    assert!(live.exists(), "a live process's temporary was removed");
}

/// While a run holds an `--out`, a second run there (new or `--resume`) is refused with one
/// line naming the first run's pid, and touches nothing.
#[test]
fn second_run_on_a_busy_out_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    let mut child = Running(tinyrnn(LONG_SINE, Some(&out)).spawn().expect("spawn"));
    let pid = child.0.id();
    wait_until(&mut child.0, "the first checkpoint", || {
        manifest_pid(&out) == Some(pid) && out.join("checkpoint.safetensors").exists()
    });
    let want = ["in use", &pid.to_string()];
    refused(tinyrnn(SINE, Some(&out)), &want);
    let mut resume = tinyrnn(LONG_SINE, None);
    resume.arg("--resume").arg(&out);
    refused(resume, &want);
    let still = manifest_pid(&out);
    let previous = out.join("previous").exists();
    drop(child);
    assert_eq!(still, Some(pid), "run.json was replaced");
    assert!(!previous, "the running run was moved aside");
}

/// An input inside what a new run would move aside (here `--resume OUT/previous --out OUT`,
/// whose `previous/` the new run would replace) is refused before anything moves.
#[test]
fn input_in_what_would_move_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    run_ok(tinyrnn(SINE, Some(&out)));
    run_ok(tinyrnn(SINE, Some(&out)));
    let before = files(&out, &[]);
    let mut c = tinyrnn(SINE, Some(&out));
    c.arg("--resume").arg(out.join("previous"));
    refused(c, &["--resume", "previous", "move aside"]);
    assert_eq!(files(&out, &[]), before, "the directory changed");
}

/// A damaged checkpoint given to `--resume` with another `--out` is refused before that
/// directory's run is moved aside.
#[test]
fn damaged_checkpoint_is_refused_before_anything_moves() {
    let root = tempfile::tempdir().expect("tempdir");
    let (from, out) = (root.path().join("from"), root.path().join("out"));
    run_ok(tinyrnn(SINE, Some(&from)));
    run_ok(tinyrnn(SINE, Some(&out)));
    let checkpoint = from.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&checkpoint).expect("read checkpoint");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&checkpoint, bytes).expect("write checkpoint");
    let before = files(&out, &[]);
    let mut c = tinyrnn(SINE, Some(&out));
    c.arg("--resume").arg(&from);
    refused(c, &["cannot resume", "checksum"]);
    assert_eq!(files(&out, &[]), before, "the directory changed");
}

/// `--resume DIR` with `--out` naming the same directory another way continues the run there:
/// nothing is moved aside.
#[test]
fn resume_in_its_own_directory_continues_however_named() {
    let root = tempfile::tempdir().expect("tempdir");
    let out = root.path().join("out");
    run_ok(tinyrnn(SINE, Some(&out)));
    let mut c = tinyrnn(SINE, Some(&out.join(".")));
    c.arg("--resume").arg(&out);
    run_ok(c);
    assert!(!out.join("previous").exists(), "the run was moved aside");
}
