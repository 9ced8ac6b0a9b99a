//! What every task's training shares. One update ([`Trainer`]): zero the gradients, let the task
//! run forward and backward (it knows its data and loss), refuse a non-finite loss or gradient,
//! clip by global norm, take an optimizer step, and with `--tensorboard` write the update's loss,
//! learning rate and gradient norm. Checkpoints of model, optimizer state and the task's progress.
//! The run's progress on stderr ([`progress`]: a bar on a terminal, lines otherwise), typed metric
//! rows ([`Row`]) and the optimizer flags. The loop around the updates (batches, evaluation
//! cadence, checkpoint cadence) is still each task's own.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tinyrnn::{Optimizer, clip_grad_norm};

use crate::modelfile::{CHECKSUM_KEY, ModelFile};
use crate::net::Net;
use crate::out::OutDir;
use crate::tensorboard::EventWriter;

/// The optimizers of the core, by name (for `--optimizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Plain SGD (momentum 0.9 with `--momentum`).
    Sgd,
    /// RMSProp (α = 0.99).
    Rmsprop,
    /// Adagrad.
    Adagrad,
    /// Adam (β = 0.9, 0.999).
    Adam,
}

impl OptimizerKind {
    /// The core's optimizer with PyTorch's default hyper-parameters and this learning rate.
    pub fn build(self, lr: f32, momentum: f32) -> Optimizer {
        match self {
            OptimizerKind::Sgd => Optimizer::Sgd { lr, momentum },
            OptimizerKind::Rmsprop => Optimizer::rmsprop(lr),
            OptimizerKind::Adagrad => Optimizer::adagrad(lr),
            OptimizerKind::Adam => Optimizer::adam(lr),
        }
    }
}

/// The `format` metadata of checkpoint files (2: with a checksum).
pub const CHECKPOINT_FORMAT: &str = "tinyrnn-checkpoint/2";

/// The checkpoint tensor holding the optimizer's state (absent when it keeps none).
const OPTIMIZER_STATE: &str = "optimizer.state";

/// The checkpoint metadata entry holding the task's training progress (JSON).
const PROGRESS_KEY: &str = "progress";

/// What [`Trainer::resume`] checks a checkpoint against besides the task's progress.
#[derive(Debug, Clone, Copy)]
pub struct RunCheck<'a> {
    /// The run's identity (task and flags): the checkpoint must hold every entry, equal.
    pub id: &'a [(&'a str, String)],
    /// The run's total number of updates.
    pub updates: u64,
    /// Whether a checkpoint of the finished run (taken after its last update) is accepted: the
    /// resumed run then only writes its outputs.
    pub finished: bool,
    /// The task's extra tensors (as given to [`Trainer::save_checkpoint`]).
    pub extras: &'a [&'a str],
}

/// A model with its gradient buffer and optimizer state.
pub struct Trainer {
    /// The model being trained.
    pub model: Net,
    /// `grads[0]`: the gradient of an update; `grads[k]`: shard k's of `update_sharded`, summed
    /// into `grads[0]`.
    grads: Vec<Net>,
    shard_losses: Vec<Result<f32>>, // one per shard
    opt: Optimizer,
    opt_state: Vec<f32>,
    /// Updates taken so far.
    pub step: u64,
    /// Maximum global gradient norm (`None`: no clipping).
    pub clip: Option<f32>,
    /// The global gradient norm of the last update, before clipping.
    pub grad_norm: f32,
    /// `--tensorboard`: every update writes its loss, learning rate and gradient norm here.
    board: Option<RefCell<EventWriter>>,
}

impl Trainer {
    /// A trainer for `model`.
    pub fn new(model: Net, opt: Optimizer, clip: Option<f32>) -> Self {
        let n = model.flat().len();
        Self {
            grads: vec![model.zeros_like()],
            model,
            shard_losses: Vec::new(),
            opt,
            opt_state: vec![0.0; opt.state_len(n)],
            step: 0,
            clip,
            grad_norm: 0.0,
            board: None,
        }
    }

    /// Writes TensorBoard scalars to `board` from now on: after every update `loss/train` (the
    /// batch's loss), `train/lr` and `train/grad_norm` (before clipping), and whatever the task
    /// adds with [`scalars`](Self::scalars).
    pub fn set_board(&mut self, board: Option<EventWriter>) {
        self.board = board.map(RefCell::new);
    }

    /// Writes the scalars `(tag, value)` at the current update to the TensorBoard file, if any.
    pub fn scalars(&self, values: &[(&str, f64)]) -> Result<()> {
        match &self.board {
            Some(b) => b.borrow_mut().scalars(self.step, values),
            None => Ok(()),
        }
    }

    /// The learning rate of the next update.
    pub fn lr(&self) -> f32 {
        self.opt.lr()
    }

    /// Changes the learning rate (schedules).
    pub fn set_lr(&mut self, lr: f32) {
        self.opt.set_lr(lr);
    }

    /// One update. `f(model, grad)` runs forward and backward over a batch, accumulating into
    /// `grad` (zeroed before the call), and returns the batch's loss.
    pub fn update(&mut self, f: impl FnOnce(&Net, &mut Net) -> Result<f32>) -> Result<f32> {
        let grad = &mut self.grads[0];
        grad.flat_mut().fill(0.0);
        let loss = f(&self.model, grad)?;
        self.apply(loss)
    }

    /// One data-parallel update: `f(model, grad, shard)` runs on every shard at once on rayon's
    /// thread pool (one task per shard, split by `rayon::join`: no thread is spawned and nothing
    /// allocated per update once the pool exists), each into its own zeroed gradient buffer; the
    /// buffers and the losses are then summed in shard order. A shard holds its part of the batch
    /// and its workspace, so `f` must scale its loss to the *whole* batch (e.g. sum / total). The
    /// result equals [`update`](Self::update) over the whole batch up to float summation order.
    pub fn update_sharded<S: Send>(
        &mut self,
        shards: &mut [S],
        f: impl Fn(&Net, &mut Net, &mut S) -> Result<f32> + Sync,
    ) -> Result<f32> {
        if shards.is_empty() {
            bail!("no shards to train on");
        }
        let n = shards.len();
        while self.grads.len() < n {
            self.grads.push(self.model.zeros_like());
        }
        while self.shard_losses.len() < n {
            self.shard_losses.push(Ok(0.0));
        }
        let losses = &mut self.shard_losses[..n];
        run_shards(&self.model, &f, shards, &mut self.grads[..n], losses);
        let mut loss = 0.0;
        for l in losses.iter_mut() {
            loss += std::mem::replace(l, Ok(0.0))?;
        }
        // Shard k > 0's gradient added to shard 0's, in order.
        let (total, rest) = self
            .grads
            .split_first_mut()
            .expect("grads[0] always exists");
        let total = total.flat_mut();
        for g in &rest[..n - 1] {
            for (t, &v) in total.iter_mut().zip(g.flat()) {
                *t += v;
            }
        }
        self.apply(loss)
    }

    /// Writes a checkpoint to `path` atomically: the model (PyTorch names), the optimizer state,
    /// the number of updates taken, `run_id` (the task and its flags), the task's `progress`
    /// (whatever else it needs to continue: metrics so far, curriculum, sums; as JSON in the
    /// metadata, floats exact), `extra` 1-D tensors, and a checksum of all of it
    /// ([`crate::modelfile::save_checked`]). Tasks that draw their training data from one random
    /// stream per update ([`crate::tasks::update_rng`]) need no random state: the update count is
    /// all of it. A checkpoint is taken after an update and before the run's last one.
    pub fn save_checkpoint(
        &self,
        path: &Path,
        run_id: &[(&str, String)],
        progress: &impl Serialize,
        extra: &[(&str, &[f32])],
    ) -> Result<()> {
        let mut meta = run_id.to_vec();
        meta.push(("format", CHECKPOINT_FORMAT.into()));
        meta.push(("update", self.step.to_string()));
        meta.push((PROGRESS_KEY, serde_json::to_string(progress)?));
        let mut tensors = vec![(OPTIMIZER_STATE, &self.opt_state[..])];
        tensors.extend_from_slice(extra);
        self.model.save(path, &tensors, &meta, true)
    }

    /// Restores model, optimizer state and update count from a checkpoint written by
    /// [`save_checkpoint`](Self::save_checkpoint), and returns the task's progress saved with
    /// it, after checking, in this order, each refusal one line:
    ///
    /// 1. the file: size, safetensors, format, checksum (present and matching);
    /// 2. the run: every entry of `run.id` with the same value (same task and flags: anything
    ///    else would not continue the same run);
    /// 3. the update count: within the run, `1..run.updates` (checkpoints are taken after an
    ///    update and before the last one), or `1..=run.updates` with `run.finished`;
    /// 4. the tensors: the model's, `optimizer.state` and `run.extras` only, every one finite,
    ///    the model of this trainer's sizes and the optimizer state of its length;
    /// 5. the progress: it parses, and `check(progress, update, file)` accepts it (the task's
    ///    own consistency with the update count: metrics rows, epochs, extra tensors).
    pub fn resume<P: DeserializeOwned>(
        &mut self,
        path: &Path,
        run: &RunCheck<'_>,
        check: impl FnOnce(&mut P, u64, &ModelFile) -> Result<()>,
    ) -> Result<P> {
        let p = path.display().to_string();
        let bytes = crate::modelfile::read_bytes(path).context("cannot resume")?;
        let meta = crate::modelfile::metadata(&bytes, &p).context("cannot resume")?;
        let get = |k: &str| meta.get(k).map(String::as_str);
        if get("format") != Some(CHECKPOINT_FORMAT) {
            bail!(
                "cannot resume: {p} is not a tinyrnn checkpoint (no `format: {CHECKPOINT_FORMAT}`)"
            );
        }
        if get(CHECKSUM_KEY).is_none() {
            bail!("cannot resume: {p} is damaged: it has no checksum");
        }
        for (k, v) in run.id {
            let theirs = get(k).unwrap_or("missing");
            if theirs != v.as_str() {
                let (theirs, ours) = first_difference(theirs, v);
                bail!(
                    "cannot resume: {p} was written by a different run: its {k}: `{theirs}`; this run's: `{ours}`"
                );
            }
        }
        let update: u64 = get("update")
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("cannot resume: {p}: no valid update count"))?;
        if update == 0 || update > run.updates || (update == run.updates && !run.finished) {
            let last = match run.finished {
                true => "at the latest after the last one",
                false => "before the last one",
            };
            bail!(
                "cannot resume: {p} is inconsistent: its update count {update} is not within this \
                 run's {} updates (a checkpoint is taken after an update and {last})",
                run.updates
            );
        }
        let mut extras = vec![OPTIMIZER_STATE];
        extras.extend_from_slice(run.extras);
        let file = ModelFile::parse(&bytes, &p, &extras).context("cannot resume")?;
        let state = file.tensor(OPTIMIZER_STATE).unwrap_or_default();
        if state.len() != self.opt_state.len() {
            bail!(
                "cannot resume: {p} is inconsistent: `{OPTIMIZER_STATE}` has {} values, this \
                 run's optimizer keeps {}",
                state.len(),
                self.opt_state.len()
            );
        }
        let mut progress = serde_json::from_str(get(PROGRESS_KEY).unwrap_or("")).map_err(|e| {
            anyhow!("cannot resume: {p}: its training progress is missing or malformed ({e})")
        })?;
        check(&mut progress, update, &file)
            .map_err(|e| anyhow!("cannot resume: {p} is inconsistent at update {update}: {e:#}"))?;
        self.model.load(&file, &format!("cannot resume: {p}"))?;
        self.opt_state.copy_from_slice(state);
        self.step = update;
        Ok(progress)
    }

    /// Refuses a non-finite loss or gradient, clips, and takes the optimizer step.
    fn apply(&mut self, loss: f32) -> Result<f32> {
        if !loss.is_finite() {
            bail!(
                "loss is {loss} at update {}: training diverged (try a lower --lr)",
                self.step + 1
            );
        }
        let grads = self.grads[0].flat_mut();
        let norm = match self.clip {
            Some(max) => clip_grad_norm(grads, max),
            None => tinyrnn::grad_norm(grads),
        };
        if !norm.is_finite() {
            bail!(
                "gradient norm is {norm} at update {}: training diverged (try a lower --lr)",
                self.step + 1
            );
        }
        self.step += 1;
        self.grad_norm = norm;
        let lr = self.opt.lr();
        self.opt.step(
            self.step,
            self.model.flat_mut(),
            self.grads[0].flat(),
            &mut self.opt_state,
        )?;
        self.scalars(&[
            ("loss/train", f64::from(loss)),
            ("train/lr", f64::from(lr)),
            ("train/grad_norm", f64::from(norm)),
        ])?;
        Ok(loss)
    }
}

/// A run's progress on stderr: on a terminal, a progress bar with the task's message (loss,
/// metric), rate and ETA; when stderr is not a terminal (a log file, CI, `nohup`), one line every
/// 10% of the run or every [`LINE_EVERY`], whichever comes first; with `quiet`, nothing.
pub fn progress(len: u64, what: &str, quiet: bool) -> Reporter {
    let bar = ProgressBar::new(len);
    let lines = !quiet && !std::io::stderr().is_terminal();
    if quiet || lines {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, ETA {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    let now = Instant::now();
    Reporter {
        bar,
        lines: lines.then(|| Lines {
            what: what.to_string(),
            unit: "updates",
            len,
            offset: 0,
            total: len,
            pos: 0,
            first: 0,
            started: false,
            start: now,
            last: now,
            next: 0,
            msg: String::new(),
        }),
    }
}

/// Longest time between two progress lines when stderr is not a terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(30);

/// The progress of a run: a bar ([`progress`]) or lines.
pub struct Reporter {
    bar: ProgressBar,
    lines: Option<Lines>,
}

/// What the progress lines need: the run's position, its start, the last line.
struct Lines {
    what: String,
    unit: &'static str,
    /// This bar's length, the run's units before its position 0, and the run's whole length.
    len: u64,
    offset: u64,
    total: u64,
    /// The bar's position, and the run's position where this process started counting.
    pos: u64,
    first: u64,
    started: bool,
    start: Instant,
    last: Instant,
    /// The run position at which the next 10% line is due.
    next: u64,
    msg: String,
}

impl Reporter {
    /// A bar that is one part of a longer run (mnist: an epoch): the lines count `offset` units
    /// of the run's `total` before this bar's start, so their 10% and ETA are the run's.
    pub fn within(mut self, offset: u64, total: u64) -> Self {
        if let Some(l) = &mut self.lines {
            (l.offset, l.total) = (offset, total.max(1));
        }
        self
    }

    /// What the bar counts, in the lines' rate (default `updates`).
    pub fn unit(mut self, unit: &'static str) -> Self {
        if let Some(l) = &mut self.lines {
            l.unit = unit;
        }
        self
    }

    /// Moves to `pos` (a resumed run's start); the rate counts from the first position set.
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    /// The task's message: loss and metric.
    pub fn set_message(&mut self, msg: String) {
        if let Some(l) = &mut self.lines {
            l.msg.clone_from(&msg);
        }
        self.bar.set_message(msg);
    }

    /// Advances by `n`; a line when one is due.
    pub fn inc(&mut self, n: u64) {
        let pos = self.bar.position();
        self.bar.inc(n);
        if let Some(l) = &mut self.lines {
            if !l.started {
                l.started = true;
                l.first = l.offset + pos;
                l.next = l.mark_after(l.first);
                l.start = Instant::now();
                l.last = l.start;
            }
            l.pos = pos + n;
            let at = l.offset + l.pos;
            if at >= l.next || l.last.elapsed() >= LINE_EVERY {
                eprintln!("{}", l.line());
                l.last = Instant::now();
                l.next = l.mark_after(at);
            }
        }
    }

    /// Clears the bar (the lines need no closing).
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl Lines {
    /// The first multiple of 10% of the run after position `at`.
    fn mark_after(&self, at: u64) -> u64 {
        let tenth = |k: u64| (u128::from(self.total) * u128::from(k)).div_ceil(10) as u64;
        (1..=10).map(tenth).find(|&m| m > at).unwrap_or(u64::MAX)
    }

    /// `what: pos/len (p% of the run) message, rate unit/s, ETA`.
    fn line(&self) -> String {
        let at = self.offset + self.pos;
        let secs = self.start.elapsed().as_secs_f64();
        let rate = (at - self.first.min(at)) as f64 / secs.max(1e-9);
        let eta = match rate > 0.0 {
            true => clock(self.total.saturating_sub(at) as f64 / rate),
            false => "?".into(),
        };
        let msg = match self.msg.is_empty() {
            true => String::new(),
            false => format!(" {}", self.msg),
        };
        format!(
            "{}: {}/{} ({:.0}% of the run){msg}, {} {}/s, ETA {eta}",
            self.what,
            self.pos,
            self.len,
            100.0 * at as f64 / self.total.max(1) as f64,
            rate_text(rate),
            self.unit
        )
    }
}

/// A rate with three significant digits at most (`0.52`, `45.3`, `1234`).
fn rate_text(r: f64) -> String {
    match r {
        r if r >= 100.0 => format!("{r:.0}"),
        r if r >= 10.0 => format!("{r:.1}"),
        r => format!("{r:.2}"),
    }
}

/// Seconds as `42 s`, `3 min 05 s`, `1 h 02 min`.
fn clock(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s / 60 % 60),
    }
}

/// A row of a task's metrics CSV: typed values (what the plots and checkpoints read), formatted
/// once, when the file is written.
pub trait Row {
    /// The CSV header.
    const HEADER: &'static [&'static str];
    /// The fields as the CSV has them.
    fn fields(&self) -> Vec<String>;
}

/// Writes `rows` as the CSV `name` of `out` (temporary file, then rename).
pub fn write_rows<R: Row>(out: &OutDir, name: &str, rows: &[R]) -> Result<std::path::PathBuf> {
    out.csv(name, R::HEADER, rows.iter().map(Row::fields))
}

/// The index of the largest value (the first of equal ones): a classifier's prediction.
pub fn argmax(y: &[f32]) -> usize {
    let mut best = 0;
    for (k, &v) in y.iter().enumerate() {
        if v > y[best] {
            best = k;
        }
    }
    best
}

/// Exponential moving average, for a readable loss on the progress bar.
#[derive(Debug, Default, Clone, Copy, Serialize, serde::Deserialize)]
pub struct Ema(pub Option<f64>);

impl Ema {
    /// Adds a value (weight 0.05) and returns the average.
    pub fn add(&mut self, v: f64) -> f64 {
        let a = match self.0 {
            Some(a) => 0.95 * a + 0.05 * v,
            None => v,
        };
        self.0 = Some(a);
        a
    }
}

/// The first differing `field: value` parts of two `Debug` renderings of the same flags struct
/// (`Args { a: 1, b: C { c: 2 } }`), so a refusal names the flag that differs; the whole strings
/// when no single part differs.
fn first_difference<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    let parts = |s: &'a str| {
        s.split(", ")
            .map(|p| p.rsplit("{ ").next().unwrap_or(p).trim_end_matches(" }"))
    };
    match parts(a).zip(parts(b)).find(|(x, y)| x != y) {
        Some(d) if parts(a).count() == parts(b).count() => d,
        _ => (a, b),
    }
}

/// Cosine decay from `base` at update 0 to `base * floor` at update `total`.
pub fn cosine_lr(base: f32, floor: f32, update: u64, total: u64) -> f32 {
    let p = (update as f64 / total.max(1) as f64).min(1.0);
    let w = 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
    (base as f64 * (floor as f64 + (1.0 - floor as f64) * w)) as f32
}

/// `losses[k] = f(model, grads[k], shards[k])` (with `grads[k]` zeroed first) for every k, the
/// halves of the slices in parallel (`rayon::join`, recursively). A panic in `f` becomes an error
/// of its shard.
fn run_shards<S, F>(
    model: &Net,
    f: &F,
    shards: &mut [S],
    grads: &mut [Net],
    losses: &mut [Result<f32>],
) where
    S: Send,
    F: Fn(&Net, &mut Net, &mut S) -> Result<f32> + Sync,
{
    match shards.len() {
        0 => {}
        1 => {
            let run = || {
                grads[0].flat_mut().fill(0.0);
                f(model, &mut grads[0], &mut shards[0])
            };
            losses[0] = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a training thread panicked")));
        }
        n => {
            let (sa, sb) = shards.split_at_mut(n / 2);
            let (ga, gb) = grads.split_at_mut(n / 2);
            let (la, lb) = losses.split_at_mut(n / 2);
            rayon::join(
                || run_shards(model, f, sa, ga, la),
                || run_shards(model, f, sb, gb, lb),
            );
        }
    }
}

/// How many threads data-parallel training uses by default: the machine's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The `range` of sequences of a time-major batch `x` (steps, batch, ·), as its own time-major
/// batch (steps, range.len(), ·): one shard's input.
pub fn shard_rows<R: Copy>(x: &[R], batch: usize, range: std::ops::Range<usize>, out: &mut Vec<R>) {
    out.clear();
    for row in x.chunks_exact(batch) {
        out.extend_from_slice(&row[range.clone()]);
    }
}

/// Splits `batch` sequences into `threads` contiguous ranges as even as possible.
pub fn split(batch: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let threads = threads.clamp(1, batch.max(1));
    (0..threads)
        .map(|k| batch * k / threads..batch * (k + 1) / threads)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Net, Outputs, Workspace};
    use tinyrnn::loss::{Reduction, softmax_cross_entropy};
    use tinyrnn::{CellKind, Spec};

    struct Shard {
        ws: Workspace,
        x: Vec<[f32; 3]>,
        labels: Vec<usize>,
        y: Vec<[f32; 4]>,
        dy: Vec<[f32; 4]>,
    }

    /// Data-parallel updates over 2 and 3 shards equal one update over the whole batch.
    #[test]
    fn sharded_update_equals_whole_batch() {
        let (steps, batch) = (5, 7);
        let mut rng = tinyrnn::rng(5);
        let mut model = Net::new(Spec::new(CellKind::Lstm, 3, 8, 4)).unwrap();
        model.init(&mut rng, Some(1.0));
        let x: Vec<[f32; 3]> = (0..steps * batch)
            .map(|i| [(i as f32 * 0.37).sin(), (i as f32 * 0.11).cos(), 0.5])
            .collect();
        let labels: Vec<usize> = (0..batch).map(|b| b % 4).collect();
        let run = |threads: usize| -> Vec<f32> {
            let mut t = Trainer::new(model.clone(), Optimizer::adam(1e-2), Some(5.0));
            let mut shards: Vec<Shard> = split(batch, threads)
                .into_iter()
                .map(|r| {
                    let mut xs = Vec::new();
                    shard_rows(&x, batch, r.clone(), &mut xs);
                    Shard {
                        ws: model.workspace(steps, r.len(), Outputs::LastStep),
                        x: xs,
                        labels: labels[r.clone()].to_vec(),
                        y: vec![[0.0; 4]; r.len()],
                        dy: vec![[0.0; 4]; r.len()],
                    }
                })
                .collect();
            for _ in 0..3 {
                t.update_sharded(&mut shards, |m, g, s| {
                    s.ws.reset_state();
                    m.forward(&mut s.ws, &s.x, &mut s.y)?;
                    let loss = softmax_cross_entropy(
                        &s.y,
                        &s.labels,
                        &mut s.dy,
                        Reduction::MeanOver(batch),
                    )?;
                    m.backward(&mut s.ws, g, &s.x, &s.dy)?;
                    Ok(loss)
                })
                .expect("update");
            }
            t.model.flat().to_vec()
        };
        let one = run(1);
        for threads in [2, 3] {
            let many = run(threads);
            let worst = one
                .iter()
                .zip(&many)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{threads} shards differ from 1 by {worst}");
        }
    }
}
