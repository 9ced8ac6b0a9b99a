//! `tinyrnn`: train, evaluate and export LSTM and tanh-RNN models.

use std::process::ExitCode;

use host::cli::{Failure, run};

fn main() -> ExitCode {
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
