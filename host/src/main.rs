//! `tinyrnn`: train, evaluate and export LSTM and tanh-RNN models.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use host::tasks::sine::{self, SineArgs};

/// LSTM and tanh-RNN networks: train the classic tasks, evaluate, export.
#[derive(Debug, Parser)]
#[command(name = "tinyrnn", version, about)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Learn to continue sine curves; warm up on 30 true samples, then extrapolate (MSE, PNG plot).
    Sine(SineArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One clear line, not clap's usage block.
            let text = e.to_string();
            eprintln!(
                "{}",
                text.lines().next().unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    let result = match &cli.task {
        Task::Sine(a) => sine::run(a),
    };
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
