//! `tinyrnn`: train, evaluate and export LSTM and tanh-RNN models.

use std::process::ExitCode;

use host::cli::{Failure, run};

fn main() -> ExitCode {
    // A closed pipe ends the program quietly, as it does `cat` (`tinyrnn bench | head -1`), instead
    // of `println!` panicking on EPIPE. Rust sets SIGPIPE to "ignore" before `main`.
    // SAFETY: restoring a signal's default disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(std::env::args_os().skip(1)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(Failure::Info(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(line)) => {
            eprintln!("{line}");
            ExitCode::from(2)
        }
        Err(Failure::Task(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
