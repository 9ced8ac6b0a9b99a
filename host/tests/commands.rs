//! `tinyrnn infer` and `tinyrnn export` on hostile command lines and files (issue 11): an output
//! named like an input or like another output (also as `dir/./x`, `dir/sub/../x` or a hard link)
//! is refused before anything is read or written; a check that fails late (an unwritable
//! `--state`, a `--golden` the model cannot give) leaves no file at all; `--warmup` and
//! `--generate` are capped with a message naming the flag; metadata that would end the generated
//! comment stays inside it.
//!
//! Each case snapshots the directory (every file's name and bytes) before the command and
//! asserts it is unchanged after a refusal. The CLI runs in-process through `host::cli::run`
//! (what `main` calls): `Failure::Task` exits with 1, `Failure::Usage` with 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use host::cli::{Failure, run};
use tinyrnn::LstmModel;
use tinyrnn_tests::boxed_random;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pytorch/roundtrip")
        .join(name)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Every file in `dir` (not in its subdirectories) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// Runs `tinyrnn ARGS` in `dir`'s files: it must fail with one line of kind `usage` (else a task
/// failure) that mentions every part of `mention`, and leave `dir` exactly as it was.
#[track_caller]
fn refused(dir: &Path, args: &[String], usage: bool, mention: &[&str]) -> String {
    let before = snapshot(dir);
    let cmd = format!("tinyrnn {}", args.join(" "));
    let line = match (run(args), usage) {
        (Err(Failure::Usage(line)), true) => line,
        (Err(Failure::Task(e)), false) => format!("{e:#}"),
        (other, _) => panic!(
            "`{cmd}`: expected a {} failure, got {other:?}",
            if usage { "usage" } else { "task" }
        ),
    };
    assert!(
        !line.trim_end().contains('\n'),
        "`{cmd}`: not one line: {line}"
    );
    eprintln!("{line}");
    assert!(
        snapshot(dir) == before,
        "`{cmd}` ({line}) changed the files in {}",
        dir.display()
    );
    for m in mention {
        assert!(line.contains(m), "`{cmd}`: `{line}` does not mention `{m}`");
    }
    line
}

fn argv(parts: &[&Path]) -> Vec<String> {
    parts.iter().map(|p| s(p)).collect()
}

/// A directory with an LSTM model `m.safetensors` (3 inputs), an input `x.csv` and a hard link
/// `link.csv` to it.
fn infer_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("lstm_model.safetensors"),
        dir.path().join("m.safetensors"),
    )
    .unwrap();
    std::fs::copy(fixture("input.csv"), dir.path().join("x.csv")).unwrap();
    std::fs::hard_link(dir.path().join("x.csv"), dir.path().join("link.csv")).unwrap();
    dir
}

#[test]
fn infer_outputs_over_inputs_or_each_other_are_refused_before_anything_is_written() {
    let dir = infer_dir();
    let d = dir.path();
    let (m, x) = (d.join("m.safetensors"), d.join("x.csv"));
    let (y, y_dotted, y_up) = (
        d.join("y.csv"),
        d.join(".").join("y.csv"),
        d.join("sub/../y.csv"),
    );
    std::fs::create_dir(d.join("sub")).unwrap();
    let base = || {
        argv(&[
            Path::new("infer"),
            Path::new("--model"),
            &m,
            Path::new("--input"),
            &x,
        ])
    };
    let with = |extra: &[&Path]| [base(), argv(extra)].concat();
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            with(&[Path::new("--output"), &d.join("./x.csv")]),
            vec!["--output", "same file as the input --input"],
        ),
        (
            with(&[Path::new("--output"), &d.join("link.csv")]),
            vec!["--output", "same file as the input --input"],
        ),
        (
            with(&[Path::new("--output"), &m]),
            vec!["--output", "same file as the input --model"],
        ),
        (
            with(&[Path::new("--state"), &m]),
            vec!["--state", "same file as the input --model"],
        ),
        (
            with(&[Path::new("--output"), &y, Path::new("--state"), &x]),
            vec!["--state", "the input --input"],
        ),
        (
            with(&[Path::new("--output"), &y, Path::new("--state"), &y_dotted]),
            vec!["--state", "the output --output"],
        ),
        (
            with(&[Path::new("--output"), &y_up, Path::new("--state"), &y]),
            vec!["--state", "the output --output"],
        ),
    ];
    for (args, mention) in cases {
        refused(d, &args, false, &mention);
    }
}

#[test]
fn infer_with_an_unwritable_state_writes_no_output() {
    let dir = infer_dir();
    let d = dir.path();
    let args = argv(&[
        Path::new("infer"),
        Path::new("--model"),
        &d.join("m.safetensors"),
        Path::new("--input"),
        &d.join("x.csv"),
        Path::new("--output"),
        &d.join("y.csv"),
        Path::new("--state"),
        &d.join("nonexistent/s.csv"),
    ]);
    refused(d, &args, false, &["--state", "does not exist"]);
}

/// A directory with an LSTM model `m.safetensors` of `I` inputs and 1 output, its metadata
/// `task` set to `task` (the weights do not depend on it).
fn export_dir<const I: usize>(task: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let model = boxed_random::<f32, LstmModel<I, 4, 1>>(11, 0.5);
    let meta = [("task", task.to_string())];
    host::modelfile::save(&dir.path().join("m.safetensors"), model.as_ref(), &meta).unwrap();
    dir
}

/// `export --model DIR/m.safetensors` and `outputs` (flag, file name in `d`) pairs.
fn export(d: &Path, outputs: &[&str]) -> Vec<String> {
    let mut args = vec![
        "export".to_string(),
        "--model".into(),
        s(&d.join("m.safetensors")),
    ];
    for pair in outputs.chunks(2) {
        args.push(pair[0].to_string());
        args.push(s(&d.join(pair[1])));
    }
    args
}

#[test]
fn export_outputs_over_the_model_or_each_other_are_refused() {
    let dir = export_dir::<1>("sine");
    let d = dir.path();
    std::fs::write(d.join("old.rs"), "// the user's file\n").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--rust", "./m.safetensors"],
            &["--rust", "the input --model"],
        ),
        (
            &["--golden", "m.safetensors"],
            &["--golden", "the input --model"],
        ),
        (
            &["--rust", "g.rs", "--golden", "./g.rs"],
            &["--golden", "the output --rust"],
        ),
        (
            &["--rust", "old.rs", "--golden", "old.rs"],
            &["--golden", "the output --rust"],
        ),
    ];
    for (outputs, mention) in cases {
        refused(d, &export(d, outputs), false, mention);
    }
}

#[test]
fn export_whose_golden_check_fails_writes_no_rust_either() {
    let dir = export_dir::<2>("two inputs");
    let d = dir.path();
    refused(
        d,
        &export(d, &["--rust", "a.rs", "--golden", "g.rs"]),
        false,
        &["--golden", "1 input and 1 output"],
    );
}

#[test]
fn golden_counts_are_capped_with_a_message_naming_the_flag() {
    let dir = export_dir::<1>("sine");
    let d = dir.path();
    for flag in ["--warmup", "--generate"] {
        for count in ["100001", "4294967295", "0"] {
            let mut args = export(d, &["--golden", "g.rs"]);
            args.extend([flag.to_string(), count.to_string()]);
            refused(d, &args, true, &[flag, count]);
        }
    }
    // The cap itself runs (and quickly: this is the largest rollout a command line can ask for).
    let mut args = export(d, &["--golden", "g.rs"]);
    args.extend(["--warmup", "100000", "--generate", "100000"].map(String::from));
    run(&args).expect("export at the cap");
    let src = std::fs::read_to_string(d.join("g.rs")).unwrap();
    assert!(src.contains("pub const EXPECTED: [f32; 100000] = ["));
}

#[test]
fn metadata_that_would_end_the_comment_stays_in_it() {
    let hostile = export_dir::<1>("sine\npub fn injected() {}\r\nconst X: u8 = 0; /*");
    let clean = export_dir::<1>("sine");
    let mut sources = Vec::new();
    for dir in [&hostile, &clean] {
        run(export(dir.path(), &["--rust", "a.rs", "--golden", "g.rs"])).expect("export");
        sources.push(std::fs::read_to_string(dir.path().join("a.rs")).unwrap());
    }
    let (h, c): (Vec<&str>, Vec<&str>) =
        (sources[0].lines().collect(), sources[1].lines().collect());
    assert_eq!(h[1..], c[1..], "the code differs");
    assert!(
        h[0].starts_with("// ")
            && h[0].contains(r"task: sine\npub fn injected() {}\r\nconst X: u8 = 0; /*,"),
        "{}",
        h[0]
    );
}
