//! The command line: one subcommand per task. `main` and the tests both go through [`run`].

use clap::{Command, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::bench::{self, BenchArgs};
use crate::export::{self, ExportArgs};
use crate::infer::{self, InferArgs};
use crate::quantize::{self, QuantizeArgs};
use crate::tasks::counter::{self, CounterArgs};
use crate::tasks::echo::{self, EchoArgs};
use crate::tasks::memory::{self, MemoryArgs};
use crate::tasks::mnist::{self, MnistArgs};
use crate::tasks::sine::{self, SineArgs};

/// LSTM and tanh-RNN networks: train the classic tasks, evaluate, export.
#[derive(Debug, Parser)]
#[command(name = "tinyrnn", version, about, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Learn to continue sine curves; warm up on 30 true samples, then extrapolate (MSE, PNG plot).
    Sine(SineArgs),
    /// Export a model file (float or int8) as Rust source for firmware (a `static` used in place).
    Export(ExportArgs),
    /// Run a model file (any sizes, e.g. written by PyTorch; float or int8) on a CSV of inputs, one row per step.
    Infer(InferArgs),
    /// Quantize a float model file to int8 (int8-rowwise-v1), calibrated on input CSVs.
    Quantize(QuantizeArgs),
    /// Copy task: recall 10 symbols after N blanks (LSTM vs RNN with --compare; CSV, PNG plot).
    Memory(MemoryArgs),
    /// A 1-unit LSTM learns to count to 5 (predict the 1 of 0 0 0 0 1 ...); prints its gate table.
    Counter(CounterArgs),
    /// Echo a random bit stream 3 steps late (truncated BPTT, state carried between chunks).
    Echo(EchoArgs),
    /// Classify 28x28 images row by row (MNIST / Fashion-MNIST IDX files; CSV, PNG plots).
    Mnist(MnistArgs),
    /// Time the benchmark workloads W1-W6 (train steps, batch-1 inference); table or JSON lines.
    Bench(BenchArgs),
}

/// Why a command line did not run.
#[derive(Debug)]
pub enum Failure {
    /// `--help` or `--version`: the text to print, a success.
    Info(String),
    /// The arguments were refused (exit code 2): one line.
    Usage(String),
    /// The task failed (exit code 1).
    Task(anyhow::Error),
}

/// The command line of [`Cli`], where a flag's value may start with `-`, so that the flag's own
/// check answers ("must be a positive number") instead of clap's "unexpected argument '-1'":
/// every flag that takes a value accepts a negative number (`--lr -1`), and the float flags
/// any value (`--lr -inf`, which their parsers refuse).
pub fn command() -> Command {
    allow_negative_values(Cli::command())
}

fn allow_negative_values(cmd: Command) -> Command {
    use std::any::TypeId;
    cmd.mut_args(|a| {
        let id = a.get_value_parser().type_id();
        if id == TypeId::of::<f32>() || id == TypeId::of::<f64>() {
            a.allow_hyphen_values(true)
        } else if a.get_action().takes_values() {
            a.allow_negative_numbers(true)
        } else {
            a
        }
    })
    .mut_subcommands(allow_negative_values)
}

/// Parses `args` (without the program name) and runs the task; returns its summary line.
pub fn run<I, S>(args: I) -> Result<String, Failure>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let argv = std::iter::once(std::ffi::OsString::from("tinyrnn"))
        .chain(args.into_iter().map(Into::into));
    let parsed = command()
        .try_get_matches_from(argv)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = parsed.map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            Failure::Info(e.to_string())
        } else if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            // `tinyrnn` alone: clap would print the whole help; say what is missing instead.
            let cmd = Cli::command();
            let tasks: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
            Failure::Usage(format!(
                "error: no task given; one of: {} (see --help)",
                tasks.join(", ")
            ))
        } else if e.kind() == ErrorKind::MissingRequiredArgument {
            // Clap lists the missing flags on the lines after the first: one line naming them.
            let text = e.to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("error: missing arguments");
            let flags: Vec<&str> = lines
                .take_while(|l| l.starts_with("  "))
                .map(str::trim)
                .collect();
            Failure::Usage(format!("{first} {}", flags.join(", ")))
        } else {
            // One clear line, not clap's usage block.
            let text = e.to_string();
            Failure::Usage(
                text.lines()
                    .next()
                    .unwrap_or("error: invalid arguments")
                    .to_string(),
            )
        }
    })?;
    match &cli.task {
        Task::Sine(a) => sine::run(a),
        Task::Export(a) => export::run(a),
        Task::Infer(a) => infer::run(a),
        Task::Quantize(a) => quantize::run(a),
        Task::Memory(a) => memory::run(a),
        Task::Counter(a) => counter::run(a),
        Task::Echo(a) => echo::run(a),
        Task::Mnist(a) => mnist::run(a),
        Task::Bench(a) => bench::run(a),
    }
    .map_err(Failure::Task)
}
