//! Bad command lines, for every task: an unknown task, zero and negative sizes, NaN, Inf and
//! out-of-range numbers, sizes too large for this machine, an unsupported `--hidden`, an
//! unwritable `--out`. Each must fail with one clear line (never a panic: a panic fails the test)
//! and leave no output file behind.
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
    (
        "sine",
        &["--steps", "1", "--teacher-steps", "0", "--test-curves", "1"],
    ),
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
const NOT_TASKS: &[&str] = &["export", "infer", "quantize", "bench", "help"];

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
        &["--epochs", "--limit", "--batch", "--threads", "--hidden"],
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
            // The flag's own check answers (it names the flag), not clap's "unexpected argument".
            fails(&args, Kind::Either, flag);
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

/// Model flags out of range, and `--int8` with a model the int8 scheme cannot take (a ReLU RNN,
/// a bidirectional model: refused before any training or data loading, by the one check).
#[test]
fn refused_model_flags() {
    let cases: &[(&[&str], Kind, &str)] = &[
        (&["sine", "--hidden", "0"], Kind::Usage, "--hidden"),
        (&["memory", "--layers", "0"], Kind::Usage, "--layers"),
        (&["mnist", "--layers", "17"], Kind::Usage, "--layers"),
        (
            &["mnist", "--cell", "lstm", "--hidden", "70000"],
            Kind::Usage,
            "--hidden",
        ),
        (
            &[
                "memory",
                "--cell",
                "rnn",
                "--nonlinearity",
                "relu",
                "--int8",
            ],
            Kind::Task,
            "a ReLU RNN has no int8 cell",
        ),
        (
            &["mnist", "--bidirectional", "--int8"],
            Kind::Task,
            "not an int8 model (a bidirectional",
        ),
        // The counter is one LSTM unit by definition: it has no --hidden.
        (&["counter", "--hidden", "3"], Kind::Usage, "--hidden"),
    ];
    for (parts, kind, mention) in cases.iter().filter(|(p, _, _)| has(p[0])) {
        // An earlier run's file in --out: a refused command must not move it aside.
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let earlier = out.join("metrics.csv");
        std::fs::create_dir(&out).expect("mkdir");
        std::fs::write(&earlier, "earlier run\n").expect("write");
        let mut args = argv(parts);
        args.extend(argv(&["--out", &out.display().to_string()]));
        args.extend(argv(fast(parts[0])));
        let mention = if parts[0] == "mnist" && !mnist_data_present() {
            ""
        } else {
            mention
        };
        fails(&args, *kind, mention);
        assert_eq!(
            files_under(dir.path()),
            vec![earlier.clone()],
            "{args:?} left files or moved the earlier run's"
        );
        assert_eq!(std::fs::read(&earlier).expect("read"), b"earlier run\n");
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

/// Float flags of each task with values outside their meaning; NaN, Inf and -Inf are tried for
/// every one. `float_flags_are_covered` fails when a float flag appears that is not here.
const FLOATS: &[(&str, &str, &[&str])] = &[
    ("sine", "--lr", &["0", "-1", "1e39", "1e-50"]),
    ("sine", "--momentum", &["-5", "1", "0.999999999"]),
    ("sine", "--clip", &["-1"]),
    ("sine", "--free-run", &["-0.1", "1.5"]),
    ("sine", "--input-noise", &["-1"]),
    ("memory", "--lr", &["0", "-1"]),
    ("memory", "--momentum", &["-0.5", "1"]),
    ("memory", "--clip", &["-1"]),
    ("memory", "--forget-bias", &["21", "-1e6"]),
    ("memory", "--advance-at", &["-0.1", "1.1"]),
    ("memory", "--mix", &["-1", "2"]),
    ("memory", "--stop-at", &["-1"]),
    ("counter", "--lr", &["0", "-1"]),
    ("counter", "--target-mse", &["0", "-1"]),
    ("counter", "--clip", &["-1"]),
    ("echo", "--lr", &["0", "-1"]),
    ("echo", "--momentum", &["-5", "1"]),
    ("echo", "--clip", &["-1"]),
    ("mnist", "--lr", &["0", "-1"]),
    ("mnist", "--momentum", &["-5", "1"]),
    ("mnist", "--clip", &["-1"]),
];

#[test]
fn float_flags_are_covered() {
    use std::any::TypeId;
    let cmd = host::cli::command();
    for sub in cmd.get_subcommands().filter(|s| has(s.get_name())) {
        let task = sub.get_name();
        if NOT_TASKS.contains(&task) && task != "bench" {
            continue; // export and infer are tested with their own files
        }
        for arg in sub.get_arguments() {
            let id = arg.get_value_parser().type_id();
            if id == TypeId::of::<f32>() || id == TypeId::of::<f64>() {
                let flag = format!("--{}", arg.get_long().unwrap_or(arg.get_id().as_str()));
                assert!(
                    FLOATS.iter().any(|(t, f, _)| *t == task && *f == flag),
                    "`{task} {flag}` is a float flag with no bad values in FLOATS"
                );
            }
        }
    }
}

#[test]
fn bad_floats() {
    for (task, flag, bad) in FLOATS.iter().filter(|(t, _, _)| has(t)) {
        for value in ["nan", "NaN", "inf", "-inf", "infinity"].iter().chain(*bad) {
            let dir = tempfile::tempdir().expect("tempdir");
            let out = dir.path().join("out");
            let mut args = argv(&[task, flag, value, "--out", &out.display().to_string()]);
            args.extend(argv(fast(task)));
            let line = fails(&args, Kind::Usage, flag);
            assert!(
                line.contains("must be"),
                "{args:?}: no reason given: {line}"
            );
            assert_eq!(
                files_under(dir.path()),
                Vec::<PathBuf>::new(),
                "{args:?} left files"
            );
        }
    }
}

/// `--lr -1` reaches the flag's check in every task (negative numbers are values, not flags).
#[test]
fn negative_lr_gets_the_real_message() {
    for (task, fast) in TASKS.iter().filter(|(t, _)| has(t)) {
        let mut args = argv(&[task, "--lr", "-1"]);
        args.extend(argv(fast));
        let line = fails(&args, Kind::Usage, "--lr");
        assert!(
            line.contains("must be a positive number"),
            "{args:?}: {line}"
        );
    }
}

/// Sizes and counts that would need more memory than half of any machine's RAM, or years of
/// computing: refused up front, quickly, naming the flag, leaving nothing. `mention` is the flag
/// and the value the error line must hold.
const HUGE: &[(&[&str], &str)] = &[
    (&["sine", "--batch", "4294967295"], "--batch 4294967295"),
    (&["sine", "--length", "4294967295"], "--length 4294967295"),
    (
        &["sine", "--test-curves", "4294967295"],
        "--test-curves 4294967295",
    ),
    (
        &[
            "sine",
            "--steps",
            "18446744073709551615",
            "--teacher-steps",
            "0",
        ],
        "--steps 18446744073709551615",
    ),
    (
        &[
            "sine", "--hidden", "256", "--batch", "1000000", "--length", "1000",
        ],
        "--batch 1000000",
    ),
    (&["memory", "--batch", "100000"], "--batch 100000"),
    (
        &["memory", "--test-sequences", "4294967295"],
        "--test-sequences 4294967295",
    ),
    (
        &["memory", "--eval-sequences", "4294967295"],
        "--eval-sequences 4294967295",
    ),
    (
        &["memory", "--steps", "18446744073709551615"],
        "--steps 18446744073709551615",
    ),
    (
        &[
            "memory",
            "--compare",
            "--compare-blanks",
            "5,10000",
            "--batch",
            "10000",
        ],
        "--compare-blanks 10000",
    ),
    (
        &["echo", "--series-length", "18446744073709551615"],
        "--series-length 18446744073709551615",
    ),
    (
        &["echo", "--test-length", "18446744073709551615"],
        "--test-length 18446744073709551615",
    ),
    (&["echo", "--epochs", "4294967295"], "--epochs 4294967295"),
    (
        &[
            "echo",
            "--chunk",
            "4294967295",
            "--series-length",
            "18446744073709551615",
        ],
        "--chunk 4294967295",
    ),
];

#[test]
fn huge_sizes_are_refused() {
    for (parts, mention) in HUGE.iter().filter(|(p, _)| has(p[0])) {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let mut args = argv(parts);
        args.extend(argv(&["--out", &out.display().to_string(), "--quiet"]));
        let start = std::time::Instant::now();
        let line = fails(&args, Kind::Task, mention);
        assert!(
            line.contains("of memory, more than half of this machine's")
                || line.contains("floating-point operations"),
            "{args:?}: the error does not say why: {line}"
        );
        assert!(
            start.elapsed().as_secs_f64() < 2.0,
            "{args:?} took {:?} to refuse",
            start.elapsed()
        );
        assert_eq!(
            files_under(dir.path()),
            Vec::<PathBuf>::new(),
            "{args:?} left files"
        );
    }
}

/// Counts of runs and curves that are capped by their value parser.
#[test]
fn capped_counts() {
    let cases: &[&[&str]] = &[
        &["sine", "--plot-curves", "100000"],
        &["sine", "--plot-curves", "0"],
        &["counter", "--max-updates", "18446744073709551615"],
        &["bench", "--steps", "4294967295"],
        &["bench", "--warmup", "4294967295"],
        &["echo", "--show", "4294967295"],
        &["memory", "--predictions", "4294967295"],
        &["memory", "--start-blanks", "4294967295"],
    ];
    for parts in cases.iter().filter(|p| has(p[0])) {
        // Should a cap be missing, the run is tiny and writes into a temporary directory.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = argv(parts);
        if parts[0] != "bench" {
            let out = dir.path().join("out").display().to_string();
            args.extend(argv(&["--out", &out, "--quiet"]));
            args.extend(argv(fast(parts[0])));
        }
        fails(&args, Kind::Usage, parts[1]);
    }
}
