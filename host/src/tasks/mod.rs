//! The tasks, one module each, all on the training loop of [`crate::train`].
//!
//! Every task writes into its output directory (`--out`, default `runs/<task>`) as a run of
//! [`crate::out`]: one run at a time per directory (a lock), and a new run first moves the run
//! it finds there into `previous/` ([`RUN_FILES`] and the `memory --compare` subdirectories),
//! leaving other files alone; `--resume DIR` with outputs in DIR continues that run instead.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::out::{OutDir, RunStart};

pub mod counter;
pub mod echo;
pub mod int8;
pub mod memory;
pub mod mnist;
pub mod sine;

/// Flags every task has.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Seed for initialisation and training data (evaluation data uses a different stream).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory [default: runs/<task>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress: no bar on a terminal, no progress lines otherwise (when stderr is not a
    /// terminal, a line every 10% of the run or every 30 s).
    #[arg(long)]
    pub quiet: bool,
    /// Also write TensorBoard event files into DIR (created if missing; `tensorboard --logdir
    /// DIR`): the training loss, learning rate and gradient norm of every update, and the task's
    /// held-out metrics. Each run adds a new file (memory --compare: one subdirectory per model).
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
}

/// Every file a task writes in its output directory (besides `run.json`): what a new run moves
/// aside. `host/tests/runs.rs` checks that every task's files are here.
pub const RUN_FILES: &[&str] = &[
    "metrics.csv",            // every task
    "model.safetensors",      // every task
    "checkpoint.safetensors", // sine, memory, mnist
    "loss.png",               // sine, counter, echo, mnist
    "sine.csv",               // sine
    "sine.png",               // sine
    "predictions.csv",        // memory
    "memory.png",             // memory
    "compare.csv",            // memory --compare
    "compare.png",            // memory --compare
    "counter.csv",            // counter
    "count.csv",              // counter
    "accuracy.csv",           // echo
    "echo.csv",               // echo
    "test.csv",               // mnist
    "confusion.csv",          // mnist
    "accuracy.png",           // mnist
    "int8.csv",               // every task with --int8
];

/// Whether an entry of an output directory is a task's output: one of [`RUN_FILES`], or a
/// `memory --compare` run (`lstm-n30`, `gru-n30`, `rnn-tanh-n30`, `rnn-relu-n30`; `rnn-n30`
/// from before the GRU).
pub fn is_run_output(name: &str) -> bool {
    let prefixes = ["lstm-n", "gru-n", "rnn-tanh-n", "rnn-relu-n", "rnn-n"];
    let compare_run = prefixes.iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    compare_run || RUN_FILES.contains(&name)
}

impl Common {
    /// Starts a new run of `task` (whose arguments are `flags`) in the output directory (default
    /// `runs/<task>`): see [`crate::out`] and [`start_run`].
    pub fn out_dir(&self, task: &str, flags: &impl std::fmt::Debug) -> Result<OutDir> {
        self.check_tensorboard(&[])?;
        start_run(&self.dir(task), task, flags, &[], false)
    }

    /// Refuses a `--tensorboard` DIR that exists and is not a directory, or is one of `inputs`
    /// (checked before the run writes anything).
    fn check_tensorboard(&self, inputs: &[(&str, &Path)]) -> Result<()> {
        let Some(dir) = &self.tensorboard else {
            return Ok(());
        };
        if dir.exists() && !dir.is_dir() {
            bail!(
                "--tensorboard {} is not a directory (it names the directory event files go to)",
                dir.display()
            );
        }
        if let Some((flag, _)) = inputs.iter().find(|(_, p)| crate::out::same_file(p, dir)) {
            bail!(
                "--tensorboard {} is the {flag} input; give it a directory of its own",
                dir.display()
            );
        }
        Ok(())
    }

    /// With `--tensorboard DIR`: creates DIR (and its subdirectory `sub`) if missing and a new
    /// event file in it; called once every check has passed, as training starts.
    pub fn board(&self, sub: Option<&str>) -> Result<Option<crate::tensorboard::EventWriter>> {
        let Some(dir) = &self.tensorboard else {
            return Ok(None);
        };
        let dir = match sub {
            Some(s) => dir.join(s),
            None => dir.clone(),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("--tensorboard: cannot create {}", dir.display()))?;
        crate::tensorboard::EventWriter::create(&dir)
            .context("--tensorboard")
            .map(Some)
    }

    /// The output directory: `--out`, else `runs/<task>`.
    fn dir(&self, task: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(task))
    }

    /// The seed of the evaluation data, a stream unrelated to the training seed.
    pub fn eval_seed(&self) -> u64 {
        self.seed ^ 0x9E37_79B9_7F4A_7C15
    }
}

/// A finite number parsed from `s` that `ok` accepts; else clap's error "must be `what`" (clap
/// adds the flag and the value). NaN and ±Inf are never accepted, nor a value that does not fit
/// the flag's type (`f32` flags go through [`narrow`]).
fn finite(s: &str, ok: impl Fn(f64) -> bool, what: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && ok(v) => Ok(v),
        _ => Err(format!("must be {what}")),
    }
}

/// `v` as an `f32`, refusing a value too large for one (it would become Inf).
fn narrow(v: f64, what: &str) -> Result<f32, String> {
    let x = v as f32;
    match x.is_finite() {
        true => Ok(x),
        false => Err(format!("must be {what} that fits an f32")),
    }
}

/// clap parser of a finite number > 0 (`--lr`, `--target-mse`).
pub fn positive(s: &str) -> Result<f32, String> {
    let what = "a positive number";
    narrow(finite(s, |v| v > 0.0 && v as f32 > 0.0, what)?, what)
}

/// clap parser of a finite number >= 0 (`--clip`: 0 turns clipping off; `--input-noise`).
pub fn non_negative(s: &str) -> Result<f32, String> {
    let what = "0 or a positive number";
    narrow(finite(s, |v| v >= 0.0, what)?, what)
}

/// clap parser of a fraction or probability, a number in [0, 1] (`--free-run`, `--mix`).
pub fn fraction(s: &str) -> Result<f64, String> {
    finite(s, |v| (0.0..=1.0).contains(&v), "a number in [0, 1]")
}

/// clap parser of an accuracy threshold that may lie above 1 ("never"): finite, >= 0.
pub fn threshold(s: &str) -> Result<f64, String> {
    finite(s, |v| v >= 0.0, "0 or a positive number")
}

/// clap parser of SGD momentum, in [0, 1): at 1 or above the velocity never decays and the
/// updates grow without bound; below 0 they oscillate.
pub fn momentum(s: &str) -> Result<f32, String> {
    let what = "a number in [0, 1)";
    let v = narrow(finite(s, |v| (0.0..1.0).contains(&v), what)?, what)?;
    match v < 1.0 {
        true => Ok(v),
        false => Err(format!("must be {what}")), // 0.99999999 rounds to 1 as an f32
    }
}

/// Largest useful forget-gate bias: sigmoid(±20) is 0 or 1 to f32 precision, so a larger
/// magnitude only saturates the gate harder.
pub const MAX_FORGET_BIAS: f64 = 20.0;

/// clap parser of the initial forget-gate bias, in [-20, 20] (see [`MAX_FORGET_BIAS`]).
pub fn forget_bias(s: &str) -> Result<f32, String> {
    let what = "a number in [-20, 20]";
    narrow(finite(s, |v| v.abs() <= MAX_FORGET_BIAS, what)?, what)
}

/// Checkpoint flags of the tasks that train for long.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CheckpointArgs {
    /// Write a checkpoint (model, optimizer state, update count, training progress) every N
    /// updates; 0: never [default: sine every 500 updates, memory every 1000, mnist at the end
    /// of every epoch]
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Continue the run whose output directory is DIR from its last checkpoint, bit for bit as
    /// if it had never stopped (same flags required). Outputs go to DIR unless --out is given.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
}

/// The checkpoint's name in a run's output directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

impl CheckpointArgs {
    /// The checkpoint to resume from (with `--resume`), refusing a missing directory or
    /// checkpoint before anything is created.
    pub fn resume_file(&self) -> Result<Option<PathBuf>> {
        let Some(dir) = &self.resume else {
            return Ok(None);
        };
        if !dir.is_dir() {
            let what = match dir.exists() {
                true => "is not a directory",
                false => "does not exist",
            };
            bail!("cannot resume: {} {what}", dir.display());
        }
        let file = dir.join(CHECKPOINT_FILE);
        if !file.is_file() {
            bail!(
                "cannot resume: {} has no {CHECKPOINT_FILE} (the run stopped before its first \
                 checkpoint, or was run with --checkpoint-every 0)",
                dir.display()
            );
        }
        // A damaged checkpoint (checksum, truncation, not safetensors) is refused here, before
        // the run claims its output directory; the rest is checked when it is loaded.
        crate::modelfile::read_metadata(&file).context("cannot resume")?;
        Ok(Some(file))
    }

    /// Starts the run in the output directory: `--out`, else the `--resume` directory, else
    /// `runs/<task>`. A run resumed in its own directory (the same directory however it is
    /// named) continues there; otherwise it is a new run of that directory, and none of
    /// `inputs` (nor the `--resume` directory) may be in what it moves aside.
    pub fn out_dir(
        &self,
        common: &Common,
        task: &str,
        flags: &impl std::fmt::Debug,
        inputs: &[(&str, &Path)],
    ) -> Result<OutDir> {
        common.check_tensorboard(inputs)?;
        let Some(from) = &self.resume else {
            return start_run(&common.dir(task), task, flags, inputs, false);
        };
        let dir = common.out.clone().unwrap_or_else(|| from.clone());
        if crate::out::same_file(&dir, from) {
            return start_run(&dir, task, flags, inputs, true);
        }
        let mut inputs = inputs.to_vec();
        inputs.push(("--resume", from));
        start_run(&dir, task, flags, &inputs, false)
    }
}

/// Starts a run of `task` in `dir` ([`OutDir::start_run`]), recording `flags` in its manifest.
fn start_run(
    dir: &Path,
    task: &str,
    flags: &impl std::fmt::Debug,
    inputs: &[(&str, &Path)],
    continues: bool,
) -> Result<OutDir> {
    OutDir::start_run(
        dir,
        &RunStart {
            task,
            flags: format!("{flags:?}"),
            inputs,
            continues,
            is_output: is_run_output,
        },
    )
}

/// What a checkpoint must agree on to be continued: the task and its flags, `flags` being the
/// task's arguments with everything that does not change the result (where outputs go, the
/// progress bar, the checkpoint flags) reset to fixed values.
pub fn run_id(task: &str, flags: &impl std::fmt::Debug) -> Vec<(&'static str, String)> {
    vec![("task", task.to_string()), ("flags", format!("{flags:?}"))]
}

/// The random stream of training update `update` (0-based): data for every update is drawn from
/// its own stream, so a run resumed at update k draws exactly what the uninterrupted run drew.
pub fn update_rng(seed: u64, update: u64) -> tinyrnn::SeededRng {
    tinyrnn::rng(
        seed ^ (update.wrapping_add(1))
            .wrapping_mul(0xD1B5_4A32_D192_ED03)
            .rotate_left(29),
    )
}

/// The hidden size at which a model of cell `cell` (otherwise shaped like `reference`) has the
/// parameter count nearest to `reference`'s (the smaller on a tie).
pub fn matched_hidden(reference: &tinyrnn::Spec, cell: tinyrnn::CellKind) -> usize {
    let target = reference.param_len() as i64;
    (1..=4 * reference.hidden)
        .min_by_key(|&hidden| {
            let s = tinyrnn::Spec {
                cell,
                hidden,
                ..*reference
            };
            (s.param_len() as i64 - target).abs()
        })
        .unwrap_or(reference.hidden)
}
