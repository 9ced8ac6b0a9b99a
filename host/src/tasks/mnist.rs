//! **mnist**: classify 28 x 28 images read row by row (MNIST, Fashion-MNIST).
//!
//! Each image is a sequence of 28 steps of 28 pixels (row `r` is step `r`, pixels scaled to
//! [0, 1]); an LSTM reads it and a linear head on the last step's hidden state gives 10 logits
//! (softmax cross-entropy, mean over the batch). Inputs are time-major, `x[r * B + b][c]`.
//!
//! Data: the four standard IDX files in `--data` (raw or `.gz`, see [`crate::idx`]). The last
//! `--val` images of the training file are held out for validation; training uses the images
//! before them (only the first `--limit` with that flag), reshuffled every epoch. The test file
//! is used once, at the end (and after every epoch with `--test-every-epoch`, for reporting).
//!
//! Training: Adam, lr 1e-3 decayed along a cosine to 5% of it over the run, batches of 128.
//! Each batch is split over `--threads` threads ([`Trainer::update_sharded`]): every thread runs
//! forward and backward on its part into its own gradient, and the gradients are added in thread
//! order, so a run is deterministic for a given thread count.
//!
//! Checkpoints (`checkpoint.safetensors`, at the end of every epoch by default, or every
//! `--checkpoint-every N` updates) hold the model, the optimizer state, the update count and the
//! rest of the run's progress: the finished epochs' metrics, the current epoch's running sums,
//! the smoothed loss curve, and a check value of the shuffling generator. `--resume DIR`
//! continues bit for bit: the shuffling generator (seeded once, then drawn from by every epoch's
//! shuffle) is brought back to its state by replaying the shuffles of the epochs before, and
//! the learning rate follows from the update count.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tinyrnn::init::uniform01;
use tinyrnn::loss::{Reduction, softmax_cross_entropy};
use tinyrnn::{SeededRng, Spec};

use super::{CHECKPOINT_FILE, CheckpointArgs, Common, int8, run_id};
use crate::budget;
use crate::idx::{self, LabelledImages};
use crate::modelfile::ModelFile;
use crate::net::{CellArg, Net, Nonlinearity, Outputs, Workspace, label};
use crate::out::OutDir;
use crate::plot::{self, PALETTE, Panel, Series};
use crate::train::{
    Ema, OptimizerKind, RunCheck, Trainer, argmax, cosine_lr, default_threads,
    progress as progress_bar, split,
};

/// Image side: rows = time steps, columns = inputs per step.
const SIDE: usize = 28;
/// Classes.
const CLASSES: usize = 10;
/// Images per thread and forward pass at evaluation (bounds the workspace memory).
const EVAL_CHUNK: usize = 256;
/// Where Debian's `dataset-fashion-mnist` installs the data.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// How to get data, appended to the error for a missing file.
pub const HOW_TO_GET: &str = "get Fashion-MNIST with `apt-get install dataset-fashion-mnist` \
    (files in /usr/share/datasets/fashion-mnist) or put the MNIST files train-images-idx3-ubyte, \
    train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (raw or .gz) in one \
    directory and pass it as --data DIR";

/// `tinyrnn mnist` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MnistArgs {
    /// Directory of the four IDX files (raw or .gz) [default: /usr/share/datasets/fashion-mnist,
    /// from Debian's dataset-fashion-mnist]
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Passes over the training images.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Use only the first N training images (the validation images are held out after them).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Images held out of the end of the training file for validation: a fraction of the file
    /// (a number with a point or a ratio: 0.1, 1/12, as scikit-learn's test_size=0.1) or a count
    /// of images (an integer: 5000); 0: no validation (train on every image, empty validation
    /// columns) [default: 1/12, which is 5,000 of 60,000]
    #[arg(long, default_value = "1/12", hide_default_value = true, value_parser = val)]
    pub val: Val,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = CellArg::Lstm)]
    pub cell: CellArg,
    /// The RNN's nonlinearity (with --cell rnn).
    #[arg(long, value_enum, default_value_t = Nonlinearity::Tanh)]
    pub nonlinearity: Nonlinearity,
    /// Hidden units per layer and direction.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: u32,
    /// Stacked recurrent layers (PyTorch's num_layers).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub layers: u32,
    /// Run every layer in both directions; the head reads both at the last step.
    #[arg(long)]
    pub bidirectional: bool,
    /// Images per batch.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = super::positive)]
    pub lr: f32,
    /// SGD momentum (with --optimizer sgd), in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = super::momentum)]
    pub momentum: f32,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 0.0, value_parser = super::non_negative)]
    pub clip: f32,
    /// Also evaluate on the test images after every epoch (a `test_acc` column in metrics.csv,
    /// for reporting only: nothing is selected on it).
    #[arg(long)]
    pub test_every_epoch: bool,
    /// Learning-rate schedule over the whole run.
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    pub schedule: Schedule,
    /// Threads each batch is split over (data parallel) [default: the machine's cores]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Also quantize the trained model to int8 (calibrated on the first 1,000 training images),
    /// classify the test images with the integer step and report its accuracy beside f32's
    /// (summary, int8.csv, an int8_accuracy column in test.csv).
    #[arg(long)]
    pub int8: bool,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `--val`: how many training images are held out for validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val {
    /// This fraction of the training file, in [0, 1) (rounded to the nearest image).
    Fraction(f64),
    /// This many images.
    Count(u64),
}

impl Val {
    /// Images held out of a training file of `n`.
    fn images(self, n: usize) -> usize {
        match self {
            Val::Fraction(f) => (n as f64 * f).round() as usize,
            Val::Count(c) => usize::try_from(c).unwrap_or(usize::MAX),
        }
    }
}

/// clap parser of `--val`: a fraction in [0, 1) written with a point (`0.1`, `.5`, `1e-1`) or as
/// a ratio of integers (`1/12`), or a count of images (`5000`, `0`).
fn val(s: &str) -> Result<Val, String> {
    let what = "a fraction of the training file in [0, 1) (0.1 or 1/12), a count of images \
                (5000), or 0 (no validation)";
    let s = s.trim();
    let fraction = |f: f64| match f.is_finite() && (0.0..1.0).contains(&f) {
        true => Ok(Val::Fraction(f)),
        false => Err(format!("must be {what}")),
    };
    if let Some((p, q)) = s.split_once('/') {
        let (Ok(p), Ok(q)) = (p.trim().parse::<u64>(), q.trim().parse::<u64>()) else {
            return Err(format!("must be {what}"));
        };
        return match q > 0 {
            true => fraction(p as f64 / q as f64),
            false => Err(format!("must be {what}")),
        };
    }
    if s.contains(['.', 'e', 'E']) {
        return s
            .parse::<f64>()
            .map_or(Err(format!("must be {what}")), fraction);
    }
    s.parse::<u64>()
        .map(Val::Count)
        .map_err(|_| format!("must be {what}"))
}

/// Learning-rate schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Schedule {
    /// `--lr` throughout.
    Constant,
    /// Cosine decay from `--lr` to 5% of it at the last update.
    Cosine,
}

/// Final learning rate of the cosine schedule, as a fraction of `--lr`.
const COSINE_FLOOR: f32 = 0.05;

/// Runs the task; returns the summary line.
pub fn run(args: &MnistArgs) -> Result<String> {
    let resume = args.checkpoint.resume_file()?;
    run_net(args, resume.as_deref())
}

impl MnistArgs {
    /// The model's shape.
    pub fn spec(&self) -> Spec {
        Spec {
            cell: self.cell.kind(self.nonlinearity),
            input: SIDE,
            hidden: self.hidden as usize,
            layers: self.layers as usize,
            bidirectional: self.bidirectional,
            output: CLASSES,
        }
    }
}

/// The training, validation and test images.
struct Data {
    dir: PathBuf,
    train: LabelledImages,
    /// Training images used: `0..train_count`.
    train_count: usize,
    /// Validation images: `val_start..train.images.count`.
    val_start: usize,
    test: LabelledImages,
}

impl Data {
    fn load(dir: &Path, args: &MnistArgs) -> Result<Self> {
        if !dir.is_dir() {
            let what = if dir.exists() {
                "is not a directory"
            } else {
                "does not exist"
            };
            bail!("data directory {} {what}; {HOW_TO_GET}", dir.display());
        }
        let read = |prefix| idx::read_set(dir, prefix, (SIDE, SIDE), CLASSES, HOW_TO_GET);
        let train = read("train")?;
        let test = read("t10k")?;
        let n = train.images.count;
        let val = args.val.images(n);
        if val >= n {
            bail!("--val {val} leaves no training images: the training file has {n}");
        }
        if test.images.count == 0 {
            bail!("the test file in {} has no images", dir.display());
        }
        let val_start = n - val;
        let limit = args
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(Self {
            dir: dir.to_path_buf(),
            train_count: val_start.min(limit),
            val_start,
            train,
            test,
        })
    }
}

/// Sums over some images: loss (mean per image after [`Stats::loss`]), correct predictions.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct Stats {
    loss_sum: f64,
    correct: usize,
    images: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.loss_sum += o.loss_sum;
        self.correct += o.correct;
        self.images += o.images;
    }
    fn loss(&self) -> f64 {
        self.loss_sum / self.images.max(1) as f64
    }
    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.images.max(1) as f64
    }
}

/// One thread's part of a batch: the ids of its images, its workspaces (by size) and buffers.
struct Shard {
    ids: Vec<usize>,
    ws: HashMap<usize, Workspace>,
    x: Vec<[f32; SIDE]>,     // (T, b, I)
    y: Vec<[f32; CLASSES]>,  // (b, C)
    dy: Vec<[f32; CLASSES]>, // (b, C)
    targets: Vec<usize>,     // (b)
    predictions: Vec<u8>,    // (b)
    stats: Stats,
}

impl Shard {
    fn new() -> Self {
        Self {
            ids: Vec::new(),
            ws: HashMap::new(),
            x: Vec::new(),
            y: Vec::new(),
            dy: Vec::new(),
            targets: Vec::new(),
            predictions: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Forward over the images `self.ids` of `set`; the loss is `Σ / total` (the batch mean when
    /// `total` is the whole batch's size). With `grad`, also backward into it. Leaves the
    /// predicted classes in `self.predictions` and the counts in `self.stats`.
    fn pass(
        &mut self,
        model: &Net,
        set: &LabelledImages,
        total: usize,
        grad: Option<&mut Net>,
    ) -> Result<f32> {
        let b = self.ids.len();
        self.predictions.clear();
        self.stats = Stats::default();
        if b == 0 {
            return Ok(0.0);
        }
        self.x.resize(SIDE * b, [0.0; SIDE]);
        for (j, &id) in self.ids.iter().enumerate() {
            for (r, row) in set.images.image(id).chunks_exact(SIDE).enumerate() {
                for (v, &p) in self.x[r * b + j].iter_mut().zip(row) {
                    *v = f32::from(p) * (1.0 / 255.0);
                }
            }
        }
        self.targets.clear();
        self.targets
            .extend(self.ids.iter().map(|&id| usize::from(set.labels[id])));
        self.y.resize(b, [0.0; CLASSES]);
        self.dy.resize(b, [0.0; CLASSES]);
        if self.ws.len() > 4 && !self.ws.contains_key(&b) {
            self.ws.clear(); // only a few sizes occur; never let the cache grow
        }
        let ws = self
            .ws
            .entry(b)
            .or_insert_with(|| model.workspace(SIDE, b, Outputs::LastStep));
        ws.reset_state();
        model.forward(ws, &self.x, &mut self.y)?;
        let loss = softmax_cross_entropy(
            &self.y,
            &self.targets,
            &mut self.dy,
            Reduction::MeanOver(total),
        )?;
        let mut correct = 0;
        for (y, &t) in self.y.iter().zip(&self.targets) {
            let k = argmax(y);
            correct += usize::from(k == t);
            self.predictions.push(k as u8);
        }
        if let Some(grad) = grad {
            model.backward(ws, grad, &self.x, &self.dy)?;
        }
        self.stats = Stats {
            loss_sum: f64::from(loss) * total as f64,
            correct,
            images: b,
        };
        Ok(loss)
    }
}

/// Hands the images `ids` to the shards (contiguous parts, as even as possible); returns how
/// many shards have work.
fn deal(shards: &mut [Shard], ids: &[usize]) -> usize {
    let parts = split(ids.len(), shards.len());
    for (s, r) in shards.iter_mut().zip(&parts) {
        s.ids.clear();
        s.ids.extend_from_slice(&ids[r.clone()]);
    }
    parts.len()
}

/// Evaluates `model` on the images `ids` of `set` (one thread; forward only); with
/// `confusion`, counts (true, predicted).
fn evaluate(
    model: &Net,
    shard: &mut Shard,
    set: &LabelledImages,
    ids: &[usize],
    mut confusion: Option<&mut [[u64; CLASSES]; CLASSES]>,
) -> Result<Stats> {
    let mut stats = Stats::default();
    for chunk in ids.chunks(EVAL_CHUNK) {
        shard.ids.clear();
        shard.ids.extend_from_slice(chunk);
        shard.pass(model, set, chunk.len(), None)?;
        stats.add(&shard.stats);
        if let Some(m) = confusion.as_deref_mut() {
            for (&id, &p) in chunk.iter().zip(&shard.predictions) {
                m[usize::from(set.labels[id])][usize::from(p)] += 1;
            }
        }
    }
    Ok(stats)
}

/// Shuffles `v` in place (Fisher-Yates).
fn shuffle(v: &mut [usize], rng: &mut SeededRng) {
    for i in (1..v.len()).rev() {
        let j = ((uniform01(rng) * (i + 1) as f64) as usize).min(i);
        v.swap(i, j);
    }
}

/// CPU time of this process so far, all threads (Linux: `/proc/self/stat`; elsewhere `None`).
/// On a shared machine it measures the work where wall time also counts the waiting.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 (1-based),
    // in clock ticks of 1/100 s (USER_HZ on every Linux port).
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: f64 = f.next()?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// One row of metrics.csv.
#[derive(Serialize, Deserialize)]
struct EpochLog {
    epoch: u32,
    train: Stats,
    /// `None` with `--val 0`.
    val: Option<Stats>,
    test: Option<Stats>,
    seconds: f64,
    cpu: Option<f64>,
}

/// Where training stands, beyond the model, the optimizer and the update count: what a
/// checkpoint must hold for a resumed run to write what the uninterrupted one would have.
#[derive(Default, Serialize, Deserialize)]
struct Progress {
    /// The finished epochs.
    epochs: Vec<EpochLog>,
    /// The current epoch so far: training sums, wall and CPU seconds.
    train: Stats,
    seconds: f64,
    cpu: Option<f64>,
    /// The smoothed training loss, and its value after every update (for loss.png; stored as
    /// the checkpoint tensor `mnist.smoothed_loss`).
    ema: Ema,
    #[serde(skip)]
    batch_loss: Vec<f32>,
    /// The shuffling generator's next draw (its bits) when the checkpoint was taken, compared
    /// on resume.
    shuffle_check: u64,
}

/// The checkpoint tensor holding [`Progress::batch_loss`].
const SMOOTHED_LOSS: &str = "mnist.smoothed_loss";

impl Progress {
    /// Its consistency with a checkpoint's update count, taking the smoothed loss curve from
    /// `file`: one finished epoch (numbered in order) per `batches` updates, one smoothed loss
    /// per update.
    fn check(&mut self, update: u64, batches: u64, file: &ModelFile) -> Result<()> {
        let done = update / batches;
        if self.epochs.len() as u64 != done {
            bail!(
                "{} finished epochs, expected {done} (epochs of {batches} updates)",
                self.epochs.len()
            );
        }
        if let Some((k, e)) = (1u32..).zip(&self.epochs).find(|(k, e)| e.epoch != *k) {
            bail!("finished epoch {k} is numbered {}", e.epoch);
        }
        let curve = file.tensor(SMOOTHED_LOSS).unwrap_or_default();
        if curve.len() as u64 != update {
            bail!(
                "tensor `{SMOOTHED_LOSS}` has {} values, expected one per update",
                curve.len()
            );
        }
        self.batch_loss = curve.to_vec();
        Ok(())
    }

    /// Writes a checkpoint of `trainer` with this progress.
    fn save(
        &mut self,
        trainer: &Trainer,
        path: &Path,
        run_id: &[(&'static str, String)],
        rng: &SeededRng,
    ) -> Result<()> {
        self.shuffle_check = uniform01(&mut rng.clone()).to_bits();
        trainer.save_checkpoint(path, run_id, self, &[(SMOOTHED_LOSS, &self.batch_loss)])
    }
}

/// The memory and work of a run with hidden size `h` on `data` (see [`budget`]): the images are
/// loaded already; a batch (at most the training images) and an evaluation chunk each need a
/// workspace and their inputs, and the shards keep a few batch sizes' workspaces (counted as
/// one more batch).
fn need(args: &MnistArgs, data: &Data) -> budget::Need {
    let spec = args.spec();
    let (side, h, epochs) = (SIDE as u128, args.hidden as u128, args.epochs as u128);
    let batch = (args.batch as u128).min(data.train_count as u128);
    let rows = |b: u128| {
        budget::sum(&[
            budget::workspace_floats(&spec, side, b),
            budget::product(&[side, b, side]), // x: (T, B, 28)
        ])
    };
    let eval = (EVAL_CHUNK as u128).min(batch.max(1));
    let images = budget::sum(&[
        data.val_start as u128,
        (data.train.images.count - data.val_start) as u128,
        data.test.images.count as u128,
    ]);
    let step = budget::step_ops(&spec);
    let evals = budget::product(&[epochs, images]);
    budget::Need {
        bytes: budget::product(&[
            budget::F32,
            budget::sum(&[rows(batch), rows(batch), rows(eval)]),
        ]),
        bytes_flags: vec![("--batch", args.batch as u128), ("--hidden", h)],
        ops: budget::product(&[
            side,
            step,
            budget::sum(&[
                budget::product(&[3, epochs, data.train_count as u128]),
                evals,
            ]),
        ]),
        ops_flags: vec![("--epochs", epochs), ("--limit", data.train_count as u128)],
    }
}

fn run_net(args: &MnistArgs, resume: Option<&Path>) -> Result<String> {
    if args.int8 {
        int8::supported(&args.spec())?;
    }
    let dir = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEBIAN_DIR));
    let data = &Data::load(&dir, args)?;
    budget::check(&need(args, data))?;
    let out = &args
        .checkpoint
        .out_dir(&args.common, "mnist", args, &[("--data", &dir)])?;
    out.finish(train(args, &dir, data, out, resume))
}

/// Trains the model on `data` (read from `dir`) in `out`; returns the summary line.
fn train(
    args: &MnistArgs,
    dir: &Path,
    data: &Data,
    out: &OutDir,
    resume: Option<&Path>,
) -> Result<String> {
    let batch = args.batch as usize;
    let mut rng = tinyrnn::rng(args.common.seed);
    let mut model = Net::new(args.spec())?;
    model.init(&mut rng, None);
    let clip = (args.clip > 0.0).then_some(args.clip);
    let mut trainer = Trainer::new(model, args.optimizer.build(args.lr, args.momentum), clip);
    trainer.set_board(args.common.board(None)?);
    let threads = args.threads.map_or_else(default_threads, |t| t as usize);
    let mut shards: Vec<Shard> = (0..threads).map(|_| Shard::new()).collect();

    let mut order: Vec<usize> = (0..data.train_count).collect();
    let val_ids: Vec<usize> = (data.val_start..data.train.images.count).collect();
    let test_ids: Vec<usize> = (0..data.test.images.count).collect();
    let batches = data.train_count.div_ceil(batch);
    let total_updates = batches as u64 * u64::from(args.epochs);

    // What a checkpoint must agree on to be continued: the task, every flag that changes the
    // result (with the data directory and the thread count resolved: the gradient sums depend on
    // the thread count) and the number of training images.
    let mut same = args.clone();
    (
        same.common.out,
        same.common.quiet,
        same.checkpoint,
        same.int8,
    ) = (None, false, CheckpointArgs::default(), false);
    same.common.tensorboard = None;
    let data_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    (same.data, same.threads) = (Some(data_dir), Some(threads as u32));
    let mut run_id = run_id("mnist", &same);
    run_id.push(("mnist.train_images", data.train_count.to_string()));
    let checkpoint = out.path(CHECKPOINT_FILE);
    let mut progress = Progress::default();
    let mut resumed = String::new();
    if let Some(from) = resume {
        let run = RunCheck {
            id: &run_id,
            updates: total_updates,
            finished: true,
            extras: &[SMOOTHED_LOSS],
        };
        progress = trainer.resume(from, &run, |p: &mut Progress, update, file| {
            p.check(update, batches as u64, file)
        })?;
        // Checkpoints are taken after an update inside an epoch, or after an epoch's evaluation.
        let done = trainer.step / batches as u64;
        let mid = !trainer.step.is_multiple_of(batches as u64);
        // Every epoch (the current one too, when it is under way) has shuffled `order`.
        for _ in 0..done + u64::from(mid) {
            shuffle(&mut order, &mut rng);
        }
        if uniform01(&mut rng.clone()).to_bits() != progress.shuffle_check {
            bail!(
                "cannot resume: the shuffling generator does not reach the state recorded in {}",
                from.display()
            );
        }
        resumed = format!(" (resumed at update {} of {total_updates})", trainer.step);
    }

    let start = Instant::now();
    let first_epoch = progress.epochs.len() as u32 + 1;
    for epoch in first_epoch..=args.epochs {
        let images = data.train_count as u64;
        let mut bar = progress_bar(
            images,
            &format!("mnist epoch {epoch}/{}", args.epochs),
            args.common.quiet,
        )
        .within(
            u64::from(epoch - 1) * images,
            u64::from(args.epochs) * images,
        )
        .unit("images");
        // Batches of this epoch already taken before a resume (0 for a fresh epoch).
        let skip = (trainer.step - u64::from(epoch - 1) * batches as u64) as usize;
        if skip == 0 {
            shuffle(&mut order, &mut rng);
            (progress.train, progress.seconds, progress.cpu) = (Stats::default(), 0.0, Some(0.0));
        }
        bar.set_position(progress.train.images as u64);
        let (t0, cpu0, seconds0, epoch_cpu0) = (
            Instant::now(),
            cpu_seconds(),
            progress.seconds,
            progress.cpu,
        );
        let elapsed = || {
            let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
            (
                seconds0 + t0.elapsed().as_secs_f64(),
                epoch_cpu0.zip(cpu).map(|(a, b)| a + b),
            )
        };
        for (k, ids) in order.chunks(batch).enumerate().skip(skip) {
            if args.schedule == Schedule::Cosine {
                trainer.set_lr(cosine_lr(
                    args.lr,
                    COSINE_FLOOR,
                    trainer.step,
                    total_updates,
                ));
            }
            let busy = deal(&mut shards, ids);
            let set = &data.train;
            let loss = trainer.update_sharded(&mut shards[..busy], |m, g, s| {
                s.pass(m, set, ids.len(), Some(g))
            })?;
            let mut stats = Stats::default();
            for s in &shards[..busy] {
                stats.add(&s.stats);
            }
            progress.train.add(&stats);
            let avg = progress.ema.add(f64::from(loss));
            progress.batch_loss.push(avg as f32);
            bar.inc(ids.len() as u64);
            if k % 5 == 0 {
                bar.set_message(format!(
                    "loss {avg:.3} acc {:.3}",
                    progress.train.accuracy()
                ));
            }
            // Inside the epoch only: a checkpoint at its end waits for the evaluation below.
            if let Some(every) = args.checkpoint.checkpoint_every
                && every > 0
                && trainer.step.is_multiple_of(every)
                && k + 1 < batches
            {
                (progress.seconds, progress.cpu) = elapsed();
                progress.save(&trainer, &checkpoint, &run_id, &rng)?;
            }
        }
        let (seconds, cpu) = elapsed();
        let train = progress.train;
        bar.set_message(format!("loss {:.3}: validating", train.loss()));
        let val = match val_ids.is_empty() {
            true => None,
            false => Some(evaluate(
                &trainer.model,
                &mut shards[0],
                &data.train,
                &val_ids,
                None,
            )?),
        };
        let test = match args.test_every_epoch {
            true => Some(evaluate(
                &trainer.model,
                &mut shards[0],
                &data.test,
                &test_ids,
                None,
            )?),
            false => None,
        };
        bar.finish_and_clear();
        if !args.common.quiet {
            eprintln!(
                "epoch {epoch}/{}: train loss {:.4} acc {:.4}{}{}, {:.1} s ({:.0} images/s){}",
                args.epochs,
                train.loss(),
                train.accuracy(),
                val.map_or(String::new(), |v| format!(
                    ", val loss {:.4} acc {:.4}",
                    v.loss(),
                    v.accuracy()
                )),
                test.map_or(String::new(), |t| format!(", test acc {:.4}", t.accuracy())),
                seconds,
                train.images as f64 / seconds,
                cpu.map_or(String::new(), |c| format!(", {c:.1} s CPU"))
            );
        }
        let mut scalars = vec![
            ("loss/train_epoch", train.loss()),
            ("accuracy/train", train.accuracy()),
        ];
        if let Some(v) = val {
            scalars.extend([("loss/val", v.loss()), ("accuracy/val", v.accuracy())]);
        }
        if let Some(t) = test {
            scalars.push(("accuracy/test", t.accuracy()));
        }
        trainer.scalars(&scalars)?;
        progress.epochs.push(EpochLog {
            epoch,
            train,
            val,
            test,
            seconds,
            cpu,
        });
        // After every epoch: an interrupted run keeps its curves.
        write_metrics(out, &progress.epochs)?;
        // By default after every epoch, the last one too (a finished run keeps a checkpoint,
        // which resumes to its outputs); every N updates before the last with the flag.
        let due = match args.checkpoint.checkpoint_every {
            None => true,
            Some(every) => every > 0 && trainer.step.is_multiple_of(every) && epoch < args.epochs,
        };
        if due {
            (progress.train, progress.seconds, progress.cpu) = (Stats::default(), 0.0, Some(0.0));
            progress.save(&trainer, &checkpoint, &run_id, &rng)?;
        }
    }
    let epochs = &progress.epochs;
    let batch_loss: Vec<(f64, f64)> = progress
        .batch_loss
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (e, k) = (i / batches, i % batches);
            (e as f64 + (k + 1) as f64 / batches as f64, f64::from(v))
        })
        .collect();
    let train_seconds = epochs.iter().map(|e| e.seconds).sum::<f64>();
    let model = &trainer.model;

    let mut confusion = [[0u64; CLASSES]; CLASSES];
    let test = evaluate(
        model,
        &mut shards[0],
        &data.test,
        &test_ids,
        Some(&mut confusion),
    )?;
    if !args.test_every_epoch {
        trainer.scalars(&[
            ("loss/test", test.loss()),
            ("accuracy/test", test.accuracy()),
        ])?;
    }

    let int8 = match args.int8 {
        true => Some(int8_test(
            model,
            data,
            &test_ids,
            threads,
            test.accuracy(),
            out,
        )?),
        false => None,
    };

    let mut header = vec!["true".to_string()];
    header.extend((0..CLASSES).map(|k| format!("predicted_{k}")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out.csv(
        "confusion.csv",
        &header,
        confusion.iter().enumerate().map(|(t, row)| {
            std::iter::once(t.to_string()).chain(row.iter().map(|c| c.to_string()))
        }),
    )?;
    let mut header = vec!["images", "loss", "accuracy"];
    let mut row = vec![
        test.images.to_string(),
        format!("{:.6}", test.loss()),
        format!("{:.6}", test.accuracy()),
    ];
    if let Some((a, _)) = int8 {
        header.push("int8_accuracy");
        row.push(format!("{a:.6}"));
    }
    out.csv("test.csv", &header, [row])?;
    plot_curves(out, epochs, &batch_loss, &label(model.spec()))?;
    model.save(
        &out.path("model.safetensors"),
        &[],
        &[
            ("task", "mnist".into()),
            ("head", "linear, last step".into()),
            (
                "input",
                "28 steps (image rows) of 28 pixels scaled to [0, 1]".into(),
            ),
            ("classes", CLASSES.to_string()),
            ("epochs", args.epochs.to_string()),
            ("test_accuracy", format!("{:.4}", test.accuracy())),
        ],
        false,
    )?;
    let unused = match data.val_start - data.train_count {
        0 => String::new(),
        k => format!(", {k} unused (--limit)"),
    };
    let validation = match epochs.last().and_then(|e| e.val) {
        Some(v) => format!("validation accuracy {:.4}", v.accuracy()),
        None => "no validation".into(),
    };
    Ok(format!(
        "mnist: {} on {} ({} training, {} validation{unused}, {} test images): {} epoch{} in {:.1} s{resumed} ({:.1} s/epoch); {validation}, test accuracy {:.4}{}; wrote {}",
        label(model.spec()),
        data.dir.display(),
        data.train_count,
        val_ids.len(),
        test.images,
        args.epochs,
        if args.epochs == 1 { "" } else { "s" },
        start.elapsed().as_secs_f64(),
        train_seconds / f64::from(args.epochs),
        test.accuracy(),
        int8.map_or(String::new(), |(a, k)| format!(
            " (int8 {a:.4}, calibrated on {k} training images)"
        )),
        out.path("").display()
    ))
}

/// Image `id` of `set` as the model reads it: 28 steps of 28 pixels scaled to [0, 1] (the same
/// arithmetic as [`Shard::pass`]), into `x` (T·I).
fn image_input(set: &LabelledImages, id: usize, x: &mut Vec<f32>) {
    x.clear();
    x.extend(
        set.images
            .image(id)
            .iter()
            .map(|&p| f32::from(p) * (1.0 / 255.0)),
    );
}

/// `--int8`: quantizes `model`, calibrated on the first training images (at most
/// [`int8::MAX_CALIBRATION`]), classifies the test images `ids` with the integer step (the
/// logits of the last step), writes int8.csv beside the f32 accuracy `f32_accuracy`; returns the
/// int8 accuracy and the number of calibration images.
fn int8_test(
    model: &Net,
    data: &Data,
    ids: &[usize],
    threads: usize,
    f32_accuracy: f64,
    out: &OutDir,
) -> Result<(f64, usize)> {
    let calibration: Vec<Vec<f32>> = (0..data.train_count.min(int8::MAX_CALIBRATION))
        .map(|id| {
            let mut x = Vec::new();
            image_input(&data.train, id, &mut x);
            x
        })
        .collect();
    let q = int8::quantize(model, calibration.iter().map(Vec::as_slice))?;
    let y = int8::run_all(&q.model, ids.len(), threads, |k, x| {
        image_input(&data.test, ids[k], x)
    })?;
    let mut correct = 0usize;
    for (&id, y) in ids.iter().zip(&y) {
        let last: &[f32; CLASSES] = y[y.len() - CLASSES..].try_into()?;
        correct += usize::from(argmax(last) == usize::from(data.test.labels[id]));
    }
    let accuracy = correct as f64 / ids.len().max(1) as f64;
    int8::write(out, &q, "test_accuracy", f32_accuracy, accuracy)?;
    Ok((accuracy, q.sequences))
}

fn write_metrics(out: &OutDir, epochs: &[EpochLog]) -> Result<()> {
    out.csv(
        "metrics.csv",
        &[
            "epoch",
            "train_loss",
            "train_acc",
            "val_loss",
            "val_acc",
            "test_acc",
            "wall_seconds",
            "images_per_second",
            "cpu_seconds",
        ],
        epochs.iter().map(|e| {
            [
                e.epoch.to_string(),
                format!("{:.6}", e.train.loss()),
                format!("{:.6}", e.train.accuracy()),
                e.val.map_or(String::new(), |v| format!("{:.6}", v.loss())),
                e.val
                    .map_or(String::new(), |v| format!("{:.6}", v.accuracy())),
                e.test
                    .map_or(String::new(), |t| format!("{:.6}", t.accuracy())),
                format!("{:.3}", e.seconds),
                format!("{:.1}", e.train.images as f64 / e.seconds.max(1e-9)),
                e.cpu.map_or(String::new(), |c| format!("{c:.2}")),
            ]
        }),
    )
    .map(|_| ())
    .context("cannot write metrics.csv")
}

fn plot_curves(
    out: &OutDir,
    epochs: &[EpochLog],
    batch_loss: &[(f64, f64)],
    what: &str,
) -> Result<()> {
    // Held-out scores are taken at the end of an epoch; training scores are means over the
    // epoch, drawn at its middle.
    let at_end = |f: &dyn Fn(&EpochLog) -> Option<f64>| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .filter_map(|e| Some((f64::from(e.epoch), f(e)?)))
            .collect()
    };
    let mid = |f: &dyn Fn(&EpochLog) -> f64| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .map(|e| (f64::from(e.epoch) - 0.5, f(e)))
            .collect()
    };
    // Keep at most ~2000 points of the per-batch curve.
    let stride = batch_loss.len().div_ceil(2000).max(1);
    let mut loss = Panel {
        title: format!("mnist {what}: cross-entropy"),
        x_label: "epoch".into(),
        y_label: "loss".into(),
        log_y: true,
        series: vec![
            Series {
                label: "training batches (moving average)".into(),
                points: batch_loss.iter().step_by(stride).copied().collect(),
                color: PALETTE[0],
            },
            Series {
                label: "training (epoch mean)".into(),
                points: mid(&|e| e.train.loss()),
                color: PALETTE[2],
            },
            Series {
                label: "validation".into(),
                points: at_end(&|e| e.val.map(|v| v.loss())),
                color: PALETTE[1],
            },
        ],
        ..Panel::default()
    };
    loss.series.retain(|s| !s.points.is_empty());
    out.png("loss.png", |p| plot::draw(p, &[loss], 1, (700, 420)))?;
    let mut accuracy = Panel {
        title: format!("mnist {what}: accuracy"),
        x_label: "epoch".into(),
        y_label: "accuracy".into(),
        series: vec![
            Series {
                label: "training (epoch mean)".into(),
                points: mid(&|e| e.train.accuracy()),
                color: PALETTE[0],
            },
            Series {
                label: "validation".into(),
                points: at_end(&|e| e.val.map(|v| v.accuracy())),
                color: PALETTE[1],
            },
        ],
        ..Panel::default()
    };
    let tested = at_end(&|e| e.test.map(|t| t.accuracy()));
    accuracy.series.push(Series {
        label: "test".into(),
        points: tested,
        color: PALETTE[3],
    });
    accuracy.series.retain(|s| !s.points.is_empty());
    out.png("accuracy.png", |p| {
        plot::draw(p, &[accuracy], 1, (700, 420))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..1000).collect();
        shuffle(&mut v, &mut tinyrnn::rng(1));
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }
}
