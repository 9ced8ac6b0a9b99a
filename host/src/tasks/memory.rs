//! **memory**: the copy task.
//!
//! A sequence of `--length` symbols from an alphabet of 8, then `--blanks` N blanks, then a
//! delimiter; after the delimiter (the inputs are blanks again) the model must output the sequence,
//! one symbol per step, and the blank everywhere else. Inputs are one-hot over 10 tokens (8
//! symbols, blank, delimiter); the output is a softmax over 9 classes (8 symbols, blank):
//!
//! ```text
//! t       0 .. L-1     L .. L+N-1   L+N     L+N+1 .. 2L+N
//! input   s_0 .. s_L-1 blank ...    delim   blank ...
//! target  blank ...    blank ...    blank   s_0 .. s_L-1
//! ```
//!
//! The score is the accuracy on the recalled symbols of unseen sequences. A model without memory
//! can at best output the blank before the recall and a uniform guess during it: cross-entropy
//! ln 8 per recalled symbol, accuracy 1/8 (the memoryless baseline).
//!
//! Training: softmax cross-entropy per step, summed over the batch (and the steps of the sequence),
//! with a curriculum on N: training starts at `--start-blanks` and moves N up by `--blank-step`
//! whenever the recall accuracy on the last `--window` training batches (always fresh sequences)
//! reaches `--advance-at`; a fraction `--mix` of the batches draws N uniformly from 0..=current N,
//! so the model keeps working for every gap. Each batch is split in two halves that run forward
//! and backward on two threads; their gradients are summed in a fixed order, so runs stay
//! deterministic.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tinyrnn::cell::CellKind as Kind;
use tinyrnn::init::uniform01;
use tinyrnn::loss::{Reduction, softmax, softmax_cross_entropy};
use tinyrnn::{SeededRng, Spec};

use super::{CHECKPOINT_FILE, CheckpointArgs, Common, int8, matched_hidden, run_id, update_rng};
use crate::budget;
use crate::net::{CellArg, Net, Nonlinearity, Outputs, Workspace, label};
use crate::out::{OutDir, num};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::train::{
    Ema, OptimizerKind, Row, RunCheck, Trainer, argmax, progress, split, write_rows,
};

/// Symbols of the alphabet.
const SYMBOLS: usize = 8;
/// Input token and output class "blank".
const BLANK: usize = 8;
/// Input token "delimiter" (recall now).
const DELIM: usize = 9;
/// Input channels: 8 symbols, blank, delimiter.
const IN: usize = 10;
/// Output classes: 8 symbols, blank.
const OUT: usize = 9;
/// Halves of a batch run on this many threads.
const SHARDS: usize = 2;
/// Sequences per shard and chunk at evaluation (bounds the workspace memory).
const EVAL_CHUNK: usize = 128;

/// Which steps the training loss covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LossOn {
    /// Every step (blank targets included).
    All,
    /// Only the recall steps after the delimiter.
    Recall,
}

/// `tinyrnn memory` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MemoryArgs {
    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = CellArg::Lstm)]
    pub cell: CellArg,
    /// The RNN's nonlinearity (with --cell rnn, and the RNN of --compare).
    #[arg(long, value_enum, default_value_t = Nonlinearity::Tanh)]
    pub nonlinearity: Nonlinearity,
    /// Hidden size [default: 128 for the LSTM; for the GRU and the RNN, the size with the LSTM's
    /// parameter count]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: Option<u32>,
    /// Stacked recurrent layers (PyTorch's num_layers).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub layers: u32,
    /// Symbols to remember.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub length: u32,
    /// Blanks N between the sequence and the delimiter (the gap to bridge).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=10000))]
    pub blanks: u32,
    /// Maximum training updates (batches); training stops earlier once the held-out recall
    /// accuracy at the full N reaches --stop-at.
    #[arg(long, default_value_t = 20000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub batch: u32,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// Learning rate.
    #[arg(long, default_value_t = 3e-3, value_parser = super::positive)]
    pub lr: f32,
    /// SGD momentum (with --optimizer sgd), in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = super::momentum)]
    pub momentum: f32,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 5.0, value_parser = super::non_negative)]
    pub clip: f32,
    /// Initial forget-gate bias of the LSTM (PyTorch's init adds nothing; 1 keeps memories
    /// longer), in [-20, 20].
    #[arg(long, default_value_t = 1.0, value_parser = super::forget_bias)]
    pub forget_bias: f32,
    /// Steps the training loss covers.
    #[arg(long, value_enum, default_value_t = LossOn::All)]
    pub loss_on: LossOn,
    /// Curriculum: blanks N at the start of training (clamped to --blanks; = --blanks: no curriculum).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10000))]
    pub start_blanks: u32,
    /// Curriculum: N grows by this much each time the model is good enough at the current N.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub blank_step: u32,
    /// Curriculum: recall accuracy over the last --window batches at which N grows, in [0, 1].
    #[arg(long, default_value_t = 0.9, value_parser = super::fraction)]
    pub advance_at: f64,
    /// Curriculum: training batches the accuracy for --advance-at is averaged over.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub window: u32,
    /// Fraction of the batches whose N is drawn uniformly from 0..=current N, in [0, 1].
    #[arg(long, default_value_t = 0.2, value_parser = super::fraction)]
    pub mix: f64,
    /// Stop training when the held-out recall accuracy at the full N reaches this (above 1: never).
    #[arg(long, default_value_t = 0.999, value_parser = super::threshold)]
    pub stop_at: f64,
    /// Updates between evaluations on the held-out sequences (a row of metrics.csv).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
    /// Held-out sequences evaluated every --log-every updates.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub eval_sequences: u32,
    /// Unseen test sequences for the final score.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub test_sequences: u32,
    /// Test sequences written to predictions.csv (at most --test-sequences are written).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub predictions: u32,
    /// Train LSTM and RNN (equal parameter counts) for each N of --compare-blanks; write a table.
    #[arg(long)]
    pub compare: bool,
    /// The N values of --compare.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20,30",
          value_parser = clap::value_parser!(u32).range(0..=10000))]
    pub compare_blanks: Vec<u32>,
    /// Also quantize each trained model to int8 (calibrated on the last 1,000 training
    /// sequences, laid out at the full N), run the test sequences with the integer step and
    /// report its recall accuracy beside f32's (summary, int8.csv, a column of compare.csv).
    #[arg(long)]
    pub int8: bool,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
}

/// Runs the task (or the comparison); returns the summary line.
pub fn run(args: &MemoryArgs) -> Result<String> {
    if args.compare && args.compare_blanks.is_empty() {
        bail!("--compare-blanks needs at least one value");
    }
    if args.compare && args.checkpoint.resume.is_some() {
        bail!("--resume continues a single run; it does not work with --compare");
    }
    budget::check(&need(args))?;
    if args.int8 && !args.compare {
        int8::supported(&spec_for(args, args.kind()))?;
    }
    let resume = args.checkpoint.resume_file()?;
    let out = args.checkpoint.out_dir(&args.common, "memory", args, &[])?;
    out.finish(match args.compare {
        true => compare(args, &out),
        false => single(args, &out, resume.as_deref()),
    })
}

/// One run (no `--compare`) in `out`; returns the summary line.
fn single(args: &MemoryArgs, out: &OutDir, resume: Option<&Path>) -> Result<String> {
    let r = train_cell(args, args.kind(), args.blanks as usize, out, resume)?;
    Ok(format!(
        "memory: {} ({} parameters) L={} N={}: recall accuracy {:.4} on {} unseen sequences \
         (chance 0.125){}, recall loss {:.4} per symbol (memoryless baseline ln 8 = {:.4}); {} updates \
         in {:.1} s ({:.1} ms/update){}{}; wrote {}",
        label(&r.spec),
        r.params,
        args.length,
        args.blanks,
        r.accuracy,
        args.test_sequences,
        r.int8_note(),
        r.recall_loss,
        BASELINE,
        r.updates,
        r.seconds,
        1000.0 * r.seconds / r.updates.max(1) as f64,
        if r.reached {
            ""
        } else {
            " (curriculum did not reach the full N)"
        },
        r.resumed,
        out.path("").display()
    ))
}

/// Cross-entropy per recalled symbol of the best memoryless model (uniform guess): ln 8.
const BASELINE: f64 = std::f64::consts::LN_2 * 3.0;

/// The result of one training run.
#[derive(Debug, Clone)]
struct Outcome {
    spec: Spec,
    params: usize,
    updates: u64,
    seconds: f64,
    accuracy: f64,
    recall_loss: f64,
    reached: bool,
    /// " (resumed at update k)" or empty.
    resumed: String,
    /// With --int8: the int8 model's recall accuracy on the same test sequences, and the number
    /// of training sequences it was calibrated on.
    int8: Option<(f64, usize)>,
}

impl Outcome {
    /// ", int8 A (calibrated on K training sequences)" with --int8, else empty.
    fn int8_note(&self) -> String {
        self.int8.map_or(String::new(), |(a, k)| {
            format!(", int8 {a:.4} (calibrated on {k} training sequences)")
        })
    }
}

impl MemoryArgs {
    /// The cell of a single run.
    fn kind(&self) -> Kind {
        self.cell.kind(self.nonlinearity)
    }

    /// The cells a run trains: the one of `--cell`, or with `--compare` the LSTM, the GRU and
    /// the RNN (of `--nonlinearity`).
    fn cells(&self) -> Vec<Kind> {
        match self.compare {
            true => vec![Kind::Lstm, Kind::Gru, CellArg::Rnn.kind(self.nonlinearity)],
            false => vec![self.kind()],
        }
    }
}

/// The model of cell `cell`: `--hidden` (the LSTM's under --compare, whose other cells match
/// its parameter count), `--layers`.
fn spec_for(args: &MemoryArgs, cell: Kind) -> Spec {
    let lstm = Spec {
        layers: args.layers as usize,
        ..Spec::new(
            Kind::Lstm,
            IN,
            args.hidden.map_or(DEFAULT_HIDDEN, |h| h as usize),
            OUT,
        )
    };
    let hidden = match (args.hidden, cell) {
        (_, Kind::Lstm) => lstm.hidden,
        (Some(h), _) if !args.compare => h as usize,
        _ => matched_hidden(&lstm, cell),
    };
    Spec {
        cell,
        hidden,
        ..lstm
    }
}

const DEFAULT_HIDDEN: usize = 128;

/// The memory and work of a run (see [`budget`]), for the largest N it trains at and, with
/// --compare, the larger of the two cells for every N. Each shard keeps workspaces of past
/// shapes up to its cache budget [`WS_BUDGET`] beside the current one.
fn need(args: &MemoryArgs) -> budget::Need {
    let cells = args.cells();
    let (blanks_flag, blanks) = match args.compare {
        true => (
            "--compare-blanks",
            args.compare_blanks.iter().copied().max().unwrap_or(0),
        ),
        false => ("--blanks", args.blanks),
    };
    let blanks = blanks as u128;
    let runs = match args.compare {
        true => cells.len() as u128 * args.compare_blanks.len() as u128,
        false => 1,
    };
    let (length, batch) = (args.length as u128, args.batch as u128);
    let steps = 2 * length + blanks + 1;
    let (eval, test) = (args.eval_sequences as u128, args.test_sequences as u128);
    let eval_batch = eval.max(test).min((EVAL_CHUNK * SHARDS) as u128);
    let shown = (args.predictions as u128).min(test);
    let rows = |b: u128| budget::product(&[steps, b, (IN + 2 * OUT + 2) as u128]);
    let (mut floats, mut ops) = (0u128, 0u128);
    for &cell in &cells {
        let spec = spec_for(args, cell);
        let ws = |b| budget::workspace_floats(&spec, steps, b);
        floats = floats.max(budget::sum(&[
            ws(batch),
            ws(batch).min((WS_BUDGET * SHARDS) as u128),
            rows(batch),
            ws(eval_batch),
            rows(eval_batch),
            ws(shown),
            rows(shown),
        ]));
        let step = budget::step_ops(&spec);
        let evals = (args.steps / args.log_every) as u128 + 1;
        let seqs = budget::sum(&[
            budget::product(&[3, args.steps as u128, batch]),
            budget::product(&[evals, eval]),
            test,
        ]);
        ops = ops.max(budget::product(&[runs, seqs, steps, step]));
    }
    let sequences = budget::product(&[eval + test + batch, length + 48]);
    budget::Need {
        bytes: budget::sum(&[budget::product(&[budget::F32, floats]), sequences]),
        bytes_flags: vec![
            ("--batch", batch),
            ("--length", length),
            (blanks_flag, blanks),
            ("--eval-sequences", eval),
            ("--test-sequences", test),
            ("--hidden", spec_for(args, args.kind()).hidden as u128),
        ],
        ops,
        ops_flags: vec![
            ("--steps", args.steps as u128),
            ("--batch", batch),
            ("--length", length),
            (blanks_flag, blanks),
            ("--eval-sequences", eval),
        ],
    }
}

fn train_cell(
    args: &MemoryArgs,
    cell: Kind,
    blanks: usize,
    out: &OutDir,
    resume: Option<&Path>,
) -> Result<Outcome> {
    run_net(args, spec_for(args, cell), blanks, out, resume)
}

/// The layout of one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    length: usize,
    blanks: usize,
}

impl Shape {
    /// Time steps: symbols, blanks, delimiter, recall.
    fn steps(self) -> usize {
        2 * self.length + self.blanks + 1
    }
    /// The first recall step.
    fn recall(self) -> usize {
        self.length + self.blanks + 1
    }
    /// Input token at step `t` of a sequence of `symbols`.
    fn input(self, symbols: &[u8], t: usize) -> usize {
        if t < self.length {
            symbols[t] as usize
        } else if t == self.length + self.blanks {
            DELIM
        } else {
            BLANK
        }
    }
    /// Target class at step `t`.
    fn target(self, symbols: &[u8], t: usize) -> usize {
        if t >= self.recall() {
            symbols[t - self.recall()] as usize
        } else {
            BLANK
        }
    }
}

/// `count` random sequences of `length` symbols.
fn sequences(rng: &mut SeededRng, count: usize, length: usize) -> Vec<Vec<u8>> {
    let mut seqs = vec![vec![0; length]; count];
    redraw(rng, &mut seqs);
    seqs
}

/// Draws every symbol of `seqs` anew (a training batch's buffer, reused from update to update).
fn redraw(rng: &mut SeededRng, seqs: &mut [Vec<u8>]) {
    for v in seqs.iter_mut().flatten() {
        *v = ((uniform01(rng) * SYMBOLS as f64) as usize).min(SYMBOLS - 1) as u8;
    }
}

/// Sums over the rows of a pass.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct Stats {
    /// Cross-entropy summed over every step.
    loss: f64,
    /// Cross-entropy summed over the recall steps.
    recall_loss: f64,
    /// Rows (steps x sequences).
    rows: usize,
    /// Recall rows.
    recall_rows: usize,
    /// Recall rows whose arg-max is the right symbol.
    correct: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.loss += o.loss;
        self.recall_loss += o.recall_loss;
        self.rows += o.rows;
        self.recall_rows += o.recall_rows;
        self.correct += o.correct;
    }
    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.recall_rows.max(1) as f64
    }
    fn mean_loss(&self) -> f64 {
        self.loss / self.rows.max(1) as f64
    }
    fn mean_recall_loss(&self) -> f64 {
        self.recall_loss / self.recall_rows.max(1) as f64
    }
}

/// One thread's part of a batch: its workspaces (by shape), buffers, and the sums of its last pass.
struct Shard {
    ws: HashMap<(usize, usize), Workspace>,
    ws_floats: usize,
    x: Vec<[f32; IN]>,
    y: Vec<[f32; OUT]>,
    dy: Vec<[f32; OUT]>,
    targets: Vec<usize>,
    stats: Stats,
    /// The sequences of a training batch this shard takes.
    rows: Range<usize>,
}

/// Cached workspaces of a shard beyond this many floats are dropped (1 GiB).
const WS_BUDGET: usize = 1 << 28;

impl Shard {
    fn new() -> Self {
        Self {
            ws: HashMap::new(),
            ws_floats: 0,
            x: Vec::new(),
            y: Vec::new(),
            dy: Vec::new(),
            targets: Vec::new(),
            stats: Stats::default(),
            rows: 0..0,
        }
    }

    /// Forward over `seqs` (and, with `train`, backward, accumulating into its gradient); the
    /// sums land in `self.stats`.
    fn pass(
        &mut self,
        model: &Net,
        seqs: &[Vec<u8>],
        shape: Shape,
        train: Option<(LossOn, &mut Net)>,
    ) -> Result<()> {
        self.stats = Stats::default();
        let b = seqs.len();
        if b == 0 {
            return Ok(());
        }
        let steps = shape.steps();
        let n = steps * b;
        self.x.clear();
        self.x.resize(n, [0.0; IN]);
        self.targets.clear();
        self.targets.resize(n, BLANK);
        for t in 0..steps {
            for (j, s) in seqs.iter().enumerate() {
                self.x[t * b + j][shape.input(s, t)] = 1.0;
                self.targets[t * b + j] = shape.target(s, t);
            }
        }
        self.y.resize(n, [0.0; OUT]);
        self.dy.resize(n, [0.0; OUT]);
        let key = (steps, b);
        if !self.ws.contains_key(&key) {
            let floats = budget::workspace_floats(model.spec(), steps as u128, b as u128)
                .saturating_add((n * OUT) as u128) as usize;
            if self.ws_floats + floats > WS_BUDGET {
                self.ws.clear();
                self.ws_floats = 0;
            }
            self.ws_floats += floats;
        }
        let ws = self
            .ws
            .entry(key)
            .or_insert_with(|| model.workspace(steps, b, Outputs::EveryStep));
        ws.reset_state();
        model.forward(ws, &self.x, &mut self.y)?;
        let split = shape.recall() * b;
        let (y0, y1) = self.y.split_at(split);
        let (t0, t1) = self.targets.split_at(split);
        let (d0, d1) = self.dy.split_at_mut(split);
        let before = softmax_cross_entropy(y0, t0, d0, Reduction::Sum)? as f64;
        let recall = softmax_cross_entropy(y1, t1, d1, Reduction::Sum)? as f64;
        let correct = y1
            .iter()
            .zip(t1)
            .filter(|(y, t)| argmax(&y[..]) == **t)
            .count();
        if let Some((on, grad)) = train {
            if on == LossOn::Recall {
                d0.fill([0.0; OUT]);
            }
            model.backward(ws, grad, &self.x, &self.dy)?;
        }
        self.stats = Stats {
            loss: before + recall,
            recall_loss: recall,
            rows: n,
            recall_rows: n - split,
            correct,
        };
        Ok(())
    }
}

/// Evaluation over `seqs` in chunks, each split over the shards, one thread each (no gradient).
fn evaluate(model: &Net, shards: &mut [Shard], seqs: &[Vec<u8>], shape: Shape) -> Result<Stats> {
    let mut total = Stats::default();
    for chunk in seqs.chunks(EVAL_CHUNK * shards.len()) {
        let parts = split(chunk.len(), shards.len());
        let busy = &mut shards[..parts.len()];
        std::thread::scope(|scope| -> Result<()> {
            let handles: Vec<_> = busy
                .iter_mut()
                .zip(parts)
                .map(|(s, r)| scope.spawn(move || s.pass(model, &chunk[r], shape, None)))
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("an evaluation thread panicked"))??;
            }
            Ok(())
        })?;
        for s in busy.iter() {
            total.add(&s.stats);
        }
    }
    Ok(total)
}

/// The curriculum on N.
#[derive(Debug)]
struct Curriculum {
    target: usize,
    current: usize,
    step: usize,
    advance_at: f64,
    window: usize,
    recent: Vec<f64>,
}

impl Curriculum {
    fn new(args: &MemoryArgs, target: usize) -> Self {
        Self {
            target,
            current: (args.start_blanks as usize).min(target),
            step: args.blank_step as usize,
            advance_at: args.advance_at,
            window: args.window as usize,
            recent: Vec::new(),
        }
    }
    fn reached(&self) -> bool {
        self.current >= self.target
    }
    /// Records the recall accuracy of a training batch at the current N; grows N when the last
    /// `window` batches at it are good enough.
    fn record(&mut self, accuracy: f64) {
        if self.reached() {
            return;
        }
        self.recent.push(accuracy);
        if self.recent.len() > self.window {
            self.recent.remove(0);
        }
        let mean = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        if self.recent.len() == self.window && mean >= self.advance_at {
            self.current = (self.current + self.step).min(self.target);
            self.recent.clear();
        }
    }
}

/// Everything besides model, optimizer and update count that the rest of a run depends on: what
/// a checkpoint adds so that a resumed run writes what the uninterrupted one would have.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// The curriculum's current N and the recall accuracies of its window so far.
    curriculum_n: usize,
    recent: Vec<f64>,
    ema: Ema,
    /// Sums since the last metrics row.
    window: Stats,
    log: Vec<LogRow>,
    seconds: f64,
    stopped: bool,
}

impl Progress {
    /// Its consistency with a checkpoint's update count: a run that goes on (not stopped), a
    /// curriculum within `blanks`, and one metrics row per `log_every` updates, in order.
    fn check(&self, update: u64, log_every: u64, blanks: usize) -> Result<()> {
        if self.stopped {
            bail!("its progress says the run had stopped");
        }
        if self.curriculum_n > blanks {
            bail!(
                "its curriculum is at N = {}, past the run's {blanks} blanks",
                self.curriculum_n
            );
        }
        let want = update / log_every;
        if self.log.len() as u64 != want {
            bail!(
                "its progress holds {} metrics rows, expected {want} (one every {log_every} updates)",
                self.log.len()
            );
        }
        for (k, row) in (1u64..).zip(&self.log) {
            if row.update != k * log_every {
                bail!(
                    "metrics row {k} is for update {}, expected {}",
                    row.update,
                    k * log_every
                );
            }
        }
        Ok(())
    }
}

/// A row of metrics.csv, and of a checkpoint's progress: at update `update`, the curriculum's N,
/// the training batches' means since the row before, the held-out (monitor) sequences' scores at
/// the full N, the seconds since the start.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogRow {
    update: u64,
    train_blanks: usize,
    train_loss: f64,
    train_recall_accuracy: f64,
    eval_recall_loss: f64,
    eval_recall_accuracy: f64,
    seconds: f64,
}

impl Row for LogRow {
    const HEADER: &'static [&'static str] = &[
        "update",
        "train_blanks",
        "train_loss",
        "train_recall_accuracy",
        "eval_recall_loss",
        "eval_recall_accuracy",
        "baseline_recall_loss",
        "seconds",
    ];
    fn fields(&self) -> Vec<String> {
        vec![
            self.update.to_string(),
            self.train_blanks.to_string(),
            format!("{:.6}", self.train_loss),
            format!("{:.6}", self.train_recall_accuracy),
            format!("{:.6}", self.eval_recall_loss),
            format!("{:.6}", self.eval_recall_accuracy),
            format!("{BASELINE:.6}"),
            format!("{:.3}", self.seconds),
        ]
    }
}

/// Checkpoints every this many updates unless --checkpoint-every says otherwise.
const CHECKPOINT_EVERY: u64 = 1000;

fn run_net(
    args: &MemoryArgs,
    spec: Spec,
    blanks: usize,
    out: &OutDir,
    resume: Option<&Path>,
) -> Result<Outcome> {
    let length = args.length as usize;
    let batch = args.batch as usize;
    let full = Shape { length, blanks };
    let mut init_rng = tinyrnn::rng(args.common.seed);
    let mut model = Net::new(spec)?;
    model.init(&mut init_rng, Some(args.forget_bias));
    let clip = (args.clip > 0.0).then_some(args.clip);
    let mut trainer = Trainer::new(model, args.optimizer.build(args.lr, args.momentum), clip);
    let sub = args.compare.then(|| format!("{}-n{blanks}", spec.cell));
    trainer.set_board(args.common.board(sub.as_deref())?);
    let mut shards: Vec<Shard> = (0..SHARDS).map(|_| Shard::new()).collect();

    // Held-out sequences: a monitor set (metrics.csv, early stop) and the test set, both from the
    // evaluation seed.
    let mut eval_rng = tinyrnn::rng(args.common.eval_seed());
    let monitor = sequences(&mut eval_rng, args.eval_sequences as usize, length);
    let test = sequences(&mut eval_rng, args.test_sequences as usize, length);

    let mut curriculum = Curriculum::new(args, blanks);
    // What a checkpoint must agree on to be continued: the task and every flag that changes the
    // result (not where outputs go, the progress bar or how often checkpoints are taken).
    let mut same = args.clone();
    (
        same.common.out,
        same.common.quiet,
        same.checkpoint,
        same.int8,
    ) = (None, false, CheckpointArgs::default(), false);
    same.common.tensorboard = None;
    let mut run_id = run_id("memory", &same);
    run_id.push(("memory.run", format!("{} N={blanks}", spec.cell)));
    let checkpoint = out.path(CHECKPOINT_FILE);
    let mut p = Progress::default();
    let mut resumed = String::new();
    if let Some(from) = resume {
        let run = RunCheck {
            id: &run_id,
            updates: args.steps,
            finished: false,
            extras: &[],
        };
        p = trainer.resume(from, &run, |p: &mut Progress, update, _| {
            p.check(update, args.log_every, blanks)
        })?;
        curriculum.current = p.curriculum_n;
        curriculum.recent = std::mem::take(&mut p.recent);
        resumed = format!(" (resumed at update {})", trainer.step);
    }
    let every = args.checkpoint.checkpoint_every.unwrap_or(CHECKPOINT_EVERY);
    let mut bar = progress(
        args.steps,
        &format!("memory {} N={blanks}", spec.cell),
        args.common.quiet,
    );
    bar.set_position(trainer.step);
    let start = Instant::now() - std::time::Duration::from_secs_f64(p.seconds);
    let Progress {
        mut ema,
        mut window,
        mut log,
        mut stopped,
        ..
    } = p;
    let parts = split(batch, shards.len());
    for (s, r) in shards.iter_mut().zip(&parts) {
        s.rows = r.clone();
    }
    let mut seqs = vec![vec![0u8; length]; batch];
    // With --int8: the symbols of the last training sequences, to calibrate on.
    let mut recent = std::collections::VecDeque::new();
    while trainer.step < args.steps && !stopped {
        let mut rng = update_rng(args.common.seed, trainer.step);
        let current = curriculum.current;
        let n = if current > 0 && uniform01(&mut rng) < args.mix {
            ((uniform01(&mut rng) * (current + 1) as f64) as usize).min(current)
        } else {
            current
        };
        let shape = Shape { length, blanks: n };
        redraw(&mut rng, &mut seqs);
        if args.int8 {
            recent.extend(seqs.iter().cloned());
            while recent.len() > int8::MAX_CALIBRATION {
                recent.pop_front();
            }
        }
        let (on, busy) = (args.loss_on, parts.len());
        trainer.update_sharded(&mut shards[..busy], |m, g, s| {
            s.pass(m, &seqs[s.rows.clone()], shape, Some((on, g)))?;
            Ok(match on {
                LossOn::All => s.stats.loss,
                LossOn::Recall => s.stats.recall_loss,
            } as f32)
        })?;
        let mut stats = Stats::default();
        for s in &shards[..busy] {
            stats.add(&s.stats);
        }
        let updates = trainer.step;
        if n == current {
            curriculum.record(stats.accuracy());
        }
        window.add(&stats);
        let avg = ema.add(stats.mean_loss());
        bar.inc(1);
        if updates.is_multiple_of(10) {
            bar.set_message(format!("N {} loss {avg:.3}", curriculum.current));
        }
        if updates.is_multiple_of(args.log_every) || updates == args.steps {
            let seconds = start.elapsed().as_secs_f64();
            let eval = evaluate(&trainer.model, &mut shards, &monitor, full)?;
            log.push(LogRow {
                update: updates,
                train_blanks: curriculum.current,
                train_loss: window.mean_loss(),
                train_recall_accuracy: window.accuracy(),
                eval_recall_loss: eval.mean_recall_loss(),
                eval_recall_accuracy: eval.accuracy(),
                seconds,
            });
            trainer.scalars(&[
                ("loss/eval_recall", eval.mean_recall_loss()),
                ("accuracy/eval_recall", eval.accuracy()),
                ("accuracy/train_recall", window.accuracy()),
                ("train/curriculum_n", curriculum.current as f64),
            ])?;
            window = Stats::default();
            bar.set_message(format!(
                "N {} loss {avg:.3} held-out acc {:.3}",
                curriculum.current,
                eval.accuracy()
            ));
            stopped = curriculum.reached() && eval.accuracy() >= args.stop_at;
        }
        // Not after the last update, nor once stopped: a checkpoint is a run to continue.
        if every > 0 && updates.is_multiple_of(every) && updates < args.steps && !stopped {
            let p = Progress {
                curriculum_n: curriculum.current,
                recent: curriculum.recent.clone(),
                ema,
                window,
                log,
                seconds: start.elapsed().as_secs_f64(),
                stopped,
            };
            trainer.save_checkpoint(&checkpoint, &run_id, &p, &[])?;
            log = p.log;
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let model = &trainer.model;

    let result = evaluate(model, &mut shards, &test, full)?;
    trainer.scalars(&[("accuracy/test_recall", result.accuracy())])?;
    let int8 = match args.int8 && int8::supported(&spec).is_ok() {
        true => {
            let one_hot = |s: &[u8], x: &mut Vec<f32>| {
                x.resize(full.steps() * IN, 0.0); // (T, I)
                for t in 0..full.steps() {
                    x[t * IN + full.input(s, t)] = 1.0;
                }
            };
            let calibration: Vec<Vec<f32>> = recent
                .iter()
                .map(|s| {
                    let mut x = Vec::new();
                    one_hot(s, &mut x);
                    x
                })
                .collect();
            let q = int8::quantize(model, calibration.iter().map(Vec::as_slice))?;
            let y = int8::run_all(&q.model, test.len(), SHARDS, |k, x| one_hot(&test[k], x))?;
            let (mut correct, mut scored) = (0usize, 0usize);
            for (s, y) in test.iter().zip(&y) {
                for t in full.recall()..full.steps() {
                    let y_t: &[f32; OUT] = y[t * OUT..(t + 1) * OUT].try_into()?;
                    correct += usize::from(argmax(y_t) == full.target(s, t));
                    scored += 1;
                }
            }
            let accuracy = correct as f64 / scored.max(1) as f64;
            int8::write(out, &q, "recall_accuracy", result.accuracy(), accuracy)?;
            Some((accuracy, q.sequences))
        }
        false => None,
    };

    write_rows(out, "metrics.csv", &log)?;
    write_predictions(model, &test, full, args.predictions as usize, out)?;
    plot_metrics(&log, &spec, full, out)?;
    model.save(
        &out.path("model.safetensors"),
        &[],
        &[
            ("task", "memory".into()),
            ("head", "linear".into()),
            ("length", length.to_string()),
            ("blanks", blanks.to_string()),
            (
                "tokens",
                "inputs one-hot: 0-7 symbols, 8 blank, 9 delimiter; outputs: 0-7, 8 blank".into(),
            ),
        ],
        false,
    )?;
    Ok(Outcome {
        spec,
        params: spec.param_len(),
        updates: trainer.step,
        seconds,
        accuracy: result.accuracy(),
        recall_loss: result.mean_recall_loss(),
        reached: curriculum.reached(),
        resumed,
        int8,
    })
}

fn token_name(k: usize) -> String {
    match k {
        BLANK => "_".into(),
        DELIM => "|".into(),
        k => k.to_string(),
    }
}

/// predictions.csv: every step of the first `count` test sequences.
fn write_predictions(
    model: &Net,
    test: &[Vec<u8>],
    shape: Shape,
    count: usize,
    out: &OutDir,
) -> Result<()> {
    let seqs = &test[..count.min(test.len())];
    let mut shard = Shard::new();
    shard.pass(model, seqs, shape, None)?;
    let mut probs = vec![[0.0f32; OUT]; shard.y.len()];
    if !probs.is_empty() {
        softmax(&shard.y, &mut probs)?;
    }
    let b = seqs.len();
    let rows = (0..b).flat_map(|j| {
        let probs = &probs;
        (0..shape.steps()).map(move |t| {
            let s = &seqs[j];
            let p = &probs[t * b + j];
            let pred = argmax(p);
            let target = shape.target(s, t);
            [
                j.to_string(),
                t.to_string(),
                if t >= shape.recall() {
                    "recall"
                } else {
                    "input"
                }
                .to_string(),
                token_name(shape.input(s, t)),
                token_name(target),
                token_name(pred),
                num(p[pred]),
                (pred == target).to_string(),
            ]
        })
    });
    out.csv(
        "predictions.csv",
        &[
            "sequence",
            "t",
            "phase",
            "input",
            "target",
            "prediction",
            "probability",
            "correct",
        ],
        rows,
    )
    .map(|_| ())
}

fn plot_metrics(log: &[LogRow], spec: &Spec, shape: Shape, out: &OutDir) -> Result<()> {
    let last = log.last().map_or(1.0, |r| r.update as f64);
    let curve = |f: fn(&LogRow) -> f64| -> Vec<(f64, f64)> {
        log.iter().map(|r| (r.update as f64, f(r))).collect()
    };
    let flat = |y: f64| vec![(0.0, y), (last, y)];
    let panels = [
        Panel {
            title: format!(
                "{}: recall accuracy, L={} N={}",
                label(spec),
                shape.length,
                shape.blanks
            ),
            x_label: "update".into(),
            y_label: "accuracy".into(),
            series: vec![
                Series {
                    label: format!("held-out, N={}", shape.blanks),
                    points: curve(|r| r.eval_recall_accuracy),
                    color: PALETTE[0],
                },
                Series {
                    label: "training batches (curriculum N)".into(),
                    points: curve(|r| r.train_recall_accuracy),
                    color: PALETTE[1],
                },
                Series {
                    label: "chance 1/8".into(),
                    points: flat(1.0 / SYMBOLS as f64),
                    color: PALETTE[5],
                },
            ],
            ..Panel::default()
        },
        Panel {
            title: "cross-entropy per step (nats)".into(),
            x_label: "update".into(),
            y_label: "loss".into(),
            log_y: true,
            series: vec![
                Series {
                    label: format!("held-out recall steps, N={}", shape.blanks),
                    points: curve(|r| r.eval_recall_loss),
                    color: PALETTE[0],
                },
                Series {
                    label: "training, all steps".into(),
                    points: curve(|r| r.train_loss),
                    color: PALETTE[1],
                },
                Series {
                    label: "memoryless baseline ln 8".into(),
                    points: flat(BASELINE),
                    color: PALETTE[5],
                },
            ],
            ..Panel::default()
        },
        Panel {
            title: "curriculum: blanks N of the training batches".into(),
            x_label: "update".into(),
            y_label: "N".into(),
            series: vec![
                Series {
                    label: "training batches".into(),
                    points: curve(|r| r.train_blanks as f64),
                    color: PALETTE[2],
                },
                Series {
                    label: format!("full N={}", shape.blanks),
                    points: flat(shape.blanks as f64),
                    color: PALETTE[5],
                },
            ],
            ..Panel::default()
        },
    ];
    out.png("memory.png", |p| plot::draw(p, &panels, 1, (760, 300)))
        .map(|_| ())
}

/// `--compare`: LSTM, GRU and RNN at equal parameter counts, for each N of `--compare-blanks`.
fn compare(args: &MemoryArgs, out: &OutDir) -> Result<String> {
    let mut rows: Vec<(usize, Outcome)> = Vec::new();
    for &n in &args.compare_blanks {
        for cell in args.cells() {
            let dir = OutDir::create(&out.path(&format!("{cell}-n{n}")))
                .with_context(|| format!("compare run {cell} N={n}"))?;
            let r = train_cell(args, cell, n as usize, &dir, None)?;
            rows.push((n as usize, r));
        }
    }
    let mut header = vec![
        "blanks",
        "cell",
        "hidden",
        "parameters",
        "updates",
        "curriculum_reached_n",
        "recall_accuracy",
        "recall_loss",
        "baseline_recall_loss",
        "seconds",
    ];
    if args.int8 {
        header.push("int8_recall_accuracy");
    }
    out.csv(
        "compare.csv",
        &header,
        rows.iter().map(|(n, r)| {
            let mut row = vec![
                n.to_string(),
                r.spec.cell.to_string(),
                r.spec.hidden.to_string(),
                r.params.to_string(),
                r.updates.to_string(),
                r.reached.to_string(),
                format!("{:.6}", r.accuracy),
                format!("{:.6}", r.recall_loss),
                format!("{BASELINE:.6}"),
                format!("{:.3}", r.seconds),
            ];
            if args.int8 {
                row.push(r.int8.map_or("".into(), |(a, _)| format!("{a:.6}")));
            }
            row
        }),
    )?;
    let series = |cell: Kind, color| Series {
        label: match rows.iter().find(|(_, r)| r.spec.cell == cell) {
            Some((_, r)) => format!("{} ({} parameters)", label(&r.spec), r.params),
            None => cell.to_string(),
        },
        points: rows
            .iter()
            .filter(|(_, r)| r.spec.cell == cell)
            .map(|(n, r)| (*n as f64, r.accuracy))
            .collect(),
        color,
    };
    let (lo, hi) = rows.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (n, _)| {
        (lo.min(*n as f64), hi.max(*n as f64))
    });
    let panel = Panel {
        title: format!(
            "copy task, L={}: recall accuracy on unseen sequences",
            args.length
        ),
        x_label: "blanks N".into(),
        y_label: "recall accuracy".into(),
        series: args
            .cells()
            .into_iter()
            .zip([PALETTE[0], PALETTE[2], PALETTE[3]])
            .map(|(cell, color)| series(cell, color))
            .chain([Series {
                label: "chance 1/8".into(),
                points: vec![(lo, 0.125), (hi, 0.125)],
                color: PALETTE[5],
            }])
            .collect(),
        ..Panel::default()
    };
    out.png("compare.png", |p| plot::draw(p, &[panel], 1, (760, 420)))?;
    let table = rows
        .iter()
        .map(|(n, r)| {
            let int8 = r
                .int8
                .map_or(String::new(), |(a, _)| format!(" (int8 {a:.3})"));
            format!("N={n} {} {:.3}{int8}", r.spec.cell, r.accuracy)
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "memory --compare (L={}): recall accuracy {table}; wrote {}",
        args.length,
        out.path("compare.csv").display()
    ))
}
