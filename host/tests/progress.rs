//! Progress when stderr is not a terminal (a log file, CI, `nohup`, these tests): one line every
//! 10% of the run (or every 30 s) with the position, the loss, the rate and the ETA; `--quiet`
//! prints none.

use std::process::Command;

/// A sine run of 200 updates (well under a second), its stderr piped.
fn sine(out: &std::path::Path, quiet: bool) -> (String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tinyrnn"));
    c.args([
        "sine",
        "--hidden",
        "8",
        "--steps",
        "200",
        "--batch",
        "8",
        "--teacher-steps",
        "100",
        "--test-curves",
        "4",
        "--plot-curves",
        "1",
        "--out",
    ])
    .arg(out);
    if quiet {
        c.arg("--quiet");
    }
    let o = c.output().expect("run tinyrnn");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(o.status.success(), "sine failed: {stderr}");
    (stdout, stderr)
}

#[test]
fn a_line_every_tenth_of_the_run_and_none_with_quiet() {
    let root = tempfile::tempdir().expect("tempdir");
    let (stdout, stderr) = sine(&root.path().join("loud"), false);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 10, "one line per 10%: {stderr}");
    for (k, line) in (1..).zip(&lines) {
        let at = format!("sine: {}/200 ({}% of the run) loss ", 20 * k, 10 * k);
        assert!(
            line.starts_with(&at),
            "line {k} `{line}` does not start `{at}`"
        );
        assert!(line.contains(" updates/s, ETA "), "no rate or ETA: {line}");
    }
    assert!(lines[9].ends_with("ETA 0 s"), "{}", lines[9]);
    assert!(
        stdout.starts_with("sine: "),
        "the summary stays on stdout: {stdout}"
    );

    let (stdout, stderr) = sine(&root.path().join("quiet"), true);
    assert_eq!(stderr, "", "--quiet printed progress");
    assert!(stdout.starts_with("sine: "), "{stdout}");
}
