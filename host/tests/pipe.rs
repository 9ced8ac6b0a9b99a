//! A closed stdout (`tinyrnn bench | head -1`) ends the program the Unix way, by SIGPIPE, not by a
//! panic with a backtrace.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

#[test]
fn closed_stdout_is_sigpipe_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinyrnn"))
        .args(["bench", "--workload", "W4", "--steps", "1", "--warmup", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tinyrnn");
    drop(child.stdout.take()); // the reader goes away before the first line
    let out = child.wait_with_output().expect("wait for tinyrnn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "tinyrnn panicked: {stderr}");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "status {:?}",
        out.status
    );
}
