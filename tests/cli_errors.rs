//! Bad command lines, for every task: an unknown task, zero and negative sizes, an unsupported
//! `--hidden`, an unwritable `--out`. Each must fail with one clear line (never a panic: a panic
//! fails the test) and leave no output file behind.
//!
//! The tables below name every training task; those this build does not have are skipped, and
//! `every_task_is_covered` fails when a subcommand appears that is in neither table.
//!
//! The CLI runs in-process through `host::cli::run`, which is all `main` does besides printing:
//! `Failure::Usage` exits with code 2, `Failure::Task` with 1 (the binary's path is not available
//! to a test of another package).

use std::path::{Path, PathBuf};

use host::cli::{Failure, run};

/// Every task, with flags that keep a run tiny should a check ever let it start.
const TASKS: &[(&str, &[&str])] = &[
    ("sine", &["--steps", "1", "--test-curves", "1"]),
    (
        "memory",
        &[
            "--steps",
            "1",
            "--eval-sequences",
            "1",
            "--test-sequences",
            "1",
        ],
    ),
    ("counter", &["--max-updates", "1"]),
    (
        "echo",
        &[
            "--series-length",
            "75",
            "--epochs",
            "1",
            "--test-length",
            "10",
        ],
    ),
    ("mnist", &["--epochs", "1", "--limit", "64", "--val", "16"]),
];

/// Subcommands that are not training tasks (tested elsewhere).
const NOT_TASKS: &[&str] = &["export", "infer", "bench", "help"];

/// The subcommands of this build, from `tinyrnn --help`.
fn subcommands() -> Vec<String> {
    let help = match run(["--help"]) {
        Err(Failure::Info(text)) => text,
        other => panic!("`tinyrnn --help` did not print help: {other:?}"),
    };
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// Whether this build has `task`.
fn has(task: &str) -> bool {
    subcommands().iter().any(|s| s == task)
}

#[test]
fn every_task_is_covered() {
    for s in subcommands() {
        assert!(
            NOT_TASKS.contains(&s.as_str()) || TASKS.iter().any(|(t, _)| *t == s),
            "subcommand `{s}` has no bad-input cases here: add it to TASKS and SIZES"
        );
    }
}

/// Size flags (value must be at least 1) of each task.
const SIZES: &[(&str, &[&str])] = &[
    (
        "sine",
        &[
            "--steps",
            "--batch",
            "--length",
            "--warmup",
            "--hidden",
            "--test-curves",
        ],
    ),
    (
        "memory",
        &[
            "--length",
            "--steps",
            "--batch",
            "--hidden",
            "--blank-step",
            "--window",
            "--log-every",
            "--eval-sequences",
            "--test-sequences",
        ],
    ),
    ("counter", &["--max-updates"]),
    (
        "echo",
        &[
            "--delay",
            "--hidden",
            "--chunk",
            "--batch",
            "--series-length",
            "--epochs",
            "--test-length",
            "--log-every",
        ],
    ),
    (
        "mnist",
        &[
            "--epochs",
            "--limit",
            "--val",
            "--batch",
            "--threads",
            "--hidden",
        ],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Usage,
    Task,
    Either,
}

/// Runs `args`, asserts that it fails as `kind` with one non-empty line that contains `mention`
/// (case-insensitive; empty: anything), and returns the line.
#[track_caller]
fn fails(args: &[String], kind: Kind, mention: &str) -> String {
    let cmd = format!("tinyrnn {}", args.join(" "));
    let (got, line) = match run(args) {
        Ok(summary) => panic!("`{cmd}` succeeded: {summary}"),
        Err(Failure::Info(text)) => panic!("`{cmd}` printed help instead of failing: {text}"),
        Err(Failure::Usage(line)) => (Kind::Usage, line),
        Err(Failure::Task(e)) => (Kind::Task, format!("error: {e:#}")),
    };
    assert!(
        kind == Kind::Either || kind == got,
        "`{cmd}`: expected a {kind:?} failure, got {got:?}: {line}"
    );
    assert!(!line.trim().is_empty(), "`{cmd}`: empty error message");
    assert!(
        !line.trim_end().contains('\n'),
        "`{cmd}`: the error is not one line:\n{line}"
    );
    assert!(
        line.to_lowercase().contains(&mention.to_lowercase()),
        "`{cmd}`: the error does not mention `{mention}`: {line}"
    );
    line
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Every regular file under `dir` (recursively); none if `dir` does not exist.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn mnist_data_present() -> bool {
    Path::new("/usr/share/datasets/fashion-mnist").is_dir()
}

#[test]
fn unknown_task() {
    fails(&argv(&["nosuchtask"]), Kind::Usage, "nosuchtask");
    fails(&argv(&["sin"]), Kind::Usage, "sin");
    for (task, _) in TASKS.iter().filter(|(t, _)| has(t)) {
        fails(
            &argv(&[task, "--no-such-flag"]),
            Kind::Usage,
            "--no-such-flag",
        );
    }
}

#[test]
fn zero_sizes() {
    for (task, flags) in SIZES.iter().filter(|(t, _)| has(t)) {
        for flag in *flags {
            let dir = tempfile::tempdir().expect("tempdir");
            let out = dir.path().join("out");
            let mut args = argv(&[task, flag, "0", "--out", &out.display().to_string()]);
            args.extend(argv(fast(task)));
            // mnist's --hidden is checked against its compiled sizes (a task error).
            let mention = flag.trim_start_matches('-');
            let mention = if *task == "mnist" && !mnist_data_present() {
                ""
            } else {
                mention
            };
            fails(&args, Kind::Either, mention);
            assert_eq!(
                files_under(dir.path()),
                Vec::<PathBuf>::new(),
                "{args:?} left files"
            );
        }
    }
}

#[test]
fn negative_sizes() {
    for (task, flags) in SIZES.iter().filter(|(t, _)| has(t)) {
        for flag in *flags {
            let dir = tempfile::tempdir().expect("tempdir");
            let out = dir.path().join("out");
            let mut args = argv(&[task, flag, "-1", "--out", &out.display().to_string()]);
            args.extend(argv(fast(task)));
            fails(&args, Kind::Either, "-1");
            assert_eq!(
                files_under(dir.path()),
                Vec::<PathBuf>::new(),
                "{args:?} left files"
            );
        }
    }
}

fn fast(task: &str) -> &'static [&'static str] {
    TASKS
        .iter()
        .find(|(t, _)| *t == task)
        .map(|(_, f)| *f)
        .unwrap_or(&[])
}

#[test]
fn unsupported_hidden() {
    let cases: &[(&[&str], Kind, &str)] = &[
        (&["sine", "--hidden", "3"], Kind::Task, "supported"),
        (
            &["sine", "--cell", "rnn", "--hidden", "3"],
            Kind::Task,
            "supported",
        ),
        (&["memory", "--hidden", "3"], Kind::Task, "supported"),
        (
            &["memory", "--cell", "rnn", "--hidden", "3"],
            Kind::Task,
            "supported",
        ),
        (&["echo", "--hidden", "3"], Kind::Task, "supported"),
        (&["mnist", "--hidden", "3"], Kind::Task, "supported"),
        // The counter is one LSTM unit by definition: it has no --hidden.
        (&["counter", "--hidden", "3"], Kind::Usage, "--hidden"),
    ];
    for (parts, kind, mention) in cases.iter().filter(|(p, _, _)| has(p[0])) {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut args = argv(parts);
        args.extend(argv(&["--out", &out.display().to_string()]));
        args.extend(argv(fast(parts[0])));
        let mention = if parts[0] == "mnist" && !mnist_data_present() {
            ""
        } else {
            mention
        };
        let line = fails(&args, *kind, mention);
        if *kind == Kind::Task {
            assert!(
                line.contains('3'),
                "{args:?}: the error does not name the size: {line}"
            );
        }
        assert_eq!(
            files_under(dir.path()),
            Vec::<PathBuf>::new(),
            "{args:?} left files"
        );
    }
}

#[test]
fn unwritable_out() {
    for (task, fast) in TASKS.iter().filter(|(t, _)| has(t)) {
        // A path under a regular file.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"keep").expect("write");
        for out in [file.join("out"), file.clone()] {
            let mut args = argv(&[task, "--out", &out.display().to_string()]);
            args.extend(argv(fast));
            let mention = if *task == "mnist" && !mnist_data_present() {
                ""
            } else {
                "cannot"
            };
            fails(&args, Kind::Task, mention);
            assert_eq!(
                files_under(dir.path()),
                vec![file.clone()],
                "{args:?} left files"
            );
            assert_eq!(
                std::fs::read(&file).expect("read"),
                b"keep",
                "{args:?} changed a file"
            );
        }
        // A path in /proc, where nothing can be created.
        let out = Path::new("/proc/tinyrnn-cli-errors/out");
        let mut args = argv(&[task, "--out", &out.display().to_string()]);
        args.extend(argv(fast));
        fails(&args, Kind::Task, "");
        assert!(!out.exists(), "{args:?} created {}", out.display());
    }
}

/// A task that fails after creating its output directory leaves no file in it.
#[test]
fn failed_run_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let args = argv(&[
        "counter",
        "--max-updates",
        "3",
        "--out",
        &out.display().to_string(),
    ]);
    fails(&args, Kind::Task, "max-updates");
    assert_eq!(
        files_under(dir.path()),
        Vec::<PathBuf>::new(),
        "{args:?} left files"
    );
}
