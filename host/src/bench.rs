//! `tinyrnn bench`: the workloads W1-W6 of `WORKLOADS.md`, timed train step by train step.
//!
//! A *train step* is exactly what the peers measure: forward over the whole sequence, backward
//! through time, and one plain SGD update of every parameter (no clipping, no optimizer state),
//! through the host's own training loop ([`Trainer::update`], or [`Trainer::update_sharded`] with
//! the batch split over the threads). The state starts from zero for every batch. Inputs are
//! U(-1, 1), targets random (class indices for cross-entropy, U(-1, 1) for MSE), all from
//! `--seed`; the same batch is used for every step.
//!
//! Reported per workload and thread count: the median (and the minimum) time of `--steps` steps
//! after `--warmup` steps, samples/s = B / median, and GFLOP/s from the nominal count
//!
//! ```text
//! LSTM: 3 · 2 · 4H (I + H) · T · B        tanh RNN: 3 · 2 · H (I + H) · T · B
//! ```
//! (the forward's matrix products, times ~3 for forward + backward).
//!
//! W5a / W5b are batch-1 inference steps ([`LstmModel::step`] with the state carried from step
//! to step): the median over `--steps` blocks of the time per step, each block long enough
//! (>= 2 ms) for the clock to be exact. They run on one thread and are reported with `--threads 1`
//! only.
//!
//! With one thread the CPU time of the thread per step is reported too (its median): on a machine
//! busy with other work it is the steadier measure, since time slices lost to other processes do
//! not count (their cache pollution still does).
//!
//! `--json` prints one JSON object per line (for `bench/compare.sh`) instead of the table.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Result, bail};
use tinyrnn::init::uniform01;
use tinyrnn::loss::{Reduction, mse, softmax_cross_entropy};
use tinyrnn::{LstmModel, LstmState, Optimizer, SeededRng};

use tinyrnn::Spec;
use tinyrnn::cell::CellKind as Kind;

use crate::net::{Net, Outputs, Workspace, boxed_zeroed};
use crate::train::{Trainer, shard_rows, split};

/// The workloads of `WORKLOADS.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// LSTM I28 H128 T28 B128, Linear(H→10) on the last step, softmax CE (row-by-row MNIST).
    #[value(name = "W1", alias = "w1")]
    W1,
    /// LSTM I1 H32 T100 B64, Linear(H→1) every step, MSE (sine).
    #[value(name = "W2", alias = "w2")]
    W2,
    /// tanh RNN I1 H64 T100 B64, Linear(H→1) every step, MSE (sine, equal parameter count).
    #[value(name = "W2r", alias = "w2r", alias = "W2R")]
    W2r,
    /// LSTM I10 H64 T71 B32, Linear(H→10) every step, softmax CE (copy/memory task).
    #[value(name = "W3", alias = "w3")]
    W3,
    /// LSTM I1 H4 T15 B5, Linear(H→2) every step, softmax CE (echo, truncated BPTT).
    #[value(name = "W4", alias = "w4")]
    W4,
    /// One inference step, batch 1: LSTM I1 H32 + Linear(H→1).
    #[value(name = "W5a", alias = "w5a", alias = "W5A")]
    W5a,
    /// One inference step, batch 1: LSTM I28 H128 + Linear(H→10).
    #[value(name = "W5b", alias = "w5b", alias = "W5B")]
    W5b,
    /// LSTM I=H, H in {8, 16, 32, 64, 128, 256}, T32 B32, Linear(H→1) on the last step, MSE.
    #[value(name = "W6", alias = "w6")]
    W6,
    /// W1 with a GRU (`nn.GRU`).
    #[value(name = "W1g", alias = "w1g", alias = "W1G")]
    W1g,
    /// W1 with a 2-layer LSTM (`num_layers=2`).
    #[value(name = "W1s", alias = "w1s", alias = "W1S")]
    W1s,
    /// W1 with a bidirectional LSTM, Linear(2H→10) on the last step.
    #[value(name = "W1b", alias = "w1b", alias = "W1B")]
    W1b,
    /// All of the above.
    #[value(name = "all")]
    All,
}

impl Workload {
    const EACH: [Workload; 11] = [
        Workload::W1,
        Workload::W2,
        Workload::W2r,
        Workload::W3,
        Workload::W4,
        Workload::W5a,
        Workload::W5b,
        Workload::W6,
        Workload::W1g,
        Workload::W1s,
        Workload::W1b,
    ];
}

/// `tinyrnn bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Workloads, comma-separated (W1, W2, W2r, W3, W4, W5a, W5b, W6, W1g, W1s, W1b, all).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    pub workload: Vec<Workload>,
    /// Thread counts, comma-separated (e.g. 1,2): the batch is split over the threads.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: Vec<u32>,
    /// Timed steps per measurement (the median is reported; WORKLOADS.md asks for >= 20), at
    /// most 10,000 (the slowest workload's steps take tens of milliseconds).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub steps: u32,
    /// Untimed warm-up steps before them (WORKLOADS.md asks for >= 3), at most 1,000.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub warmup: u32,
    /// Seed of the weights and the data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One JSON object per line instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Vector width of the SIMD kernels: `auto` (16-lane AVX-512 where the CPU has it, else 8)
    /// or `8` (AVX2 even on an AVX-512 CPU), to measure the two side by side; the results are
    /// the same bits either way.
    #[arg(long, value_enum, default_value = "auto")]
    pub lanes: LaneChoice,
}

/// `--lanes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LaneChoice {
    /// The widest the CPU has.
    Auto,
    /// 8 lanes (AVX2).
    #[value(name = "8")]
    Eight,
}

/// The SGD learning rate of every train step (small: the same batch is seen again and again).
pub const LR: f32 = 0.01;

/// The loss of a training workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Softmax cross-entropy against random classes.
    Ce,
    /// Mean squared error against U(-1, 1) targets.
    Mse,
}

/// A training workload's shape.
#[derive(Debug, Clone, Copy)]
struct Train {
    name: &'static str,
    steps: usize,
    batch: usize,
    outputs: Outputs,
    loss: Loss,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Workload id (`W1`, ..., `W6`).
    pub workload: &'static str,
    /// `lstm` or `rnn`.
    pub cell: &'static str,
    /// Inputs I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// Head outputs O.
    pub output: usize,
    /// Time steps T.
    pub steps: usize,
    /// Batch B.
    pub batch: usize,
    /// Threads.
    pub threads: usize,
    /// Median seconds per step (train step, or one inference step).
    pub median: f64,
    /// Fastest step (or block average for inference).
    pub min: f64,
    /// Median thread CPU seconds per step (one thread only).
    pub cpu: Option<f64>,
    /// Nominal FLOPs per step (0 for inference).
    pub flops: f64,
    /// Timed samples (steps, or blocks for inference).
    pub samples: usize,
    /// Inference steps per timed block (0 for training).
    pub per_block: usize,
}

impl Measurement {
    fn is_inference(&self) -> bool {
        self.per_block > 0
    }

    fn json(&self) -> String {
        let head = format!(
            "{{\"impl\":\"tinyrnn\",\"workload\":\"{}\",\"cell\":\"{}\",\"I\":{},\"H\":{},\"O\":{},\"T\":{},\"B\":{},\"threads\":{},\"lanes\":{},\"samples\":{}",
            self.workload,
            self.cell,
            self.input,
            self.hidden,
            self.output,
            self.steps,
            self.batch,
            self.threads,
            tinyrnn::kernels::lane_width(),
            self.samples
        );
        let cpu = |scale: f64, key: &str| match self.cpu {
            Some(c) if c.is_finite() => format!(",\"{key}\":{:.5}", c * scale),
            _ => String::new(),
        };
        if self.is_inference() {
            format!(
                "{head},\"ns_per_step\":{:.2},\"min_ns\":{:.2}{},\"per_block\":{}}}",
                self.median * 1e9,
                self.min * 1e9,
                cpu(1e9, "cpu_ns"),
                self.per_block
            )
        } else {
            format!(
                "{head},\"median_ms\":{:.5},\"min_ms\":{:.5}{},\"samples_per_s\":{:.1},\"gflop_per_step\":{:.6},\"gflops\":{:.3}}}",
                self.median * 1e3,
                self.min * 1e3,
                cpu(1e3, "cpu_ms"),
                self.batch as f64 / self.median,
                self.flops * 1e-9,
                self.flops * 1e-9 / self.median
            )
        }
    }

    fn row(&self) -> String {
        let name = if self.workload == "W6" {
            format!("W6 H{}", self.hidden)
        } else {
            self.workload.to_string()
        };
        let shape = format!(
            "{} I{} H{} T{} B{}",
            self.cell, self.input, self.hidden, self.steps, self.batch
        );
        // Inference in ns, training in ms.
        let (scale, unit) = if self.is_inference() {
            (1e9, "ns")
        } else {
            (1e3, "ms")
        };
        let cpu = match self.cpu {
            Some(c) if c.is_finite() => format!("{:>11.4} {unit}", c * scale),
            _ => format!("{:>14}", "-"),
        };
        let (rate, gflops) = if self.is_inference() {
            ("-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.0}", self.batch as f64 / self.median),
                format!("{:.2}", self.flops * 1e-9 / self.median),
            )
        };
        format!(
            "{name:<8} {shape:<26} {:>3} {:>11.4} {unit} {cpu} {:>11.4} {unit} {rate:>10} {gflops:>8}",
            self.threads,
            self.median * scale,
            self.min * scale,
        )
    }
}

const HEADER: &str = "workload shape                      thr    median/step       cpu/step       min/step  samples/s  GFLOP/s";

/// Runs the benchmark; prints the table (or JSON lines) as it goes and returns a summary line.
pub fn run(args: &BenchArgs) -> Result<String> {
    let mut workloads: Vec<Workload> = Vec::new();
    for &w in &args.workload {
        let add: &[Workload] = if w == Workload::All {
            &Workload::EACH
        } else {
            std::slice::from_ref(&w)
        };
        for &w in add {
            if !workloads.contains(&w) {
                workloads.push(w);
            }
        }
    }
    let mut threads: Vec<usize> = Vec::new();
    for &t in &args.threads {
        if !threads.contains(&(t as usize)) {
            threads.push(t as usize);
        }
    }
    if workloads.is_empty() || threads.is_empty() {
        bail!("nothing to measure: give --workload and --threads");
    }
    tinyrnn::kernels::allow_avx512(args.lanes == LaneChoice::Auto);
    if !args.json {
        println!(
            "SIMD kernels: {} lanes{}",
            tinyrnn::kernels::lane_width(),
            if tinyrnn::kernels::lane_width() == 16 {
                " (AVX-512)"
            } else {
                ""
            }
        );
        println!("{HEADER}");
    }
    let mut count = 0usize;
    let mut emit = |m: Measurement| {
        if args.json {
            println!("{}", m.json());
        } else {
            println!("{}", m.row());
        }
        count += 1;
    };
    for w in workloads {
        if matches!(w, Workload::W5a | Workload::W5b) {
            if !threads.contains(&1) {
                if !args.json {
                    eprintln!(
                        "note: {w:?} is a batch-1 step on one thread: measured with --threads 1 only"
                    );
                }
                continue;
            }
            emit(match w {
                Workload::W5a => infer::<1, 32, 1>("W5a", args)?,
                _ => infer::<28, 128, 10>("W5b", args)?,
            });
            continue;
        }
        for &n in &threads {
            let ms: Vec<Measurement> = match w {
                Workload::W1 | Workload::W1g | Workload::W1s | Workload::W1b => {
                    let (name, cell, layers, bidirectional) = match w {
                        Workload::W1g => ("W1g", Kind::Gru, 1, false),
                        Workload::W1s => ("W1s", Kind::Lstm, 2, false),
                        Workload::W1b => ("W1b", Kind::Lstm, 1, true),
                        _ => ("W1", Kind::Lstm, 1, false),
                    };
                    let model = Spec {
                        layers,
                        bidirectional,
                        ..Spec::new(cell, 28, 128, 10)
                    };
                    let w1 = spec(name, 28, 128, Outputs::LastStep, Loss::Ce);
                    vec![train::<28, 10>(model, w1, n, args)?]
                }
                Workload::W2 => vec![train::<1, 1>(
                    Spec::new(Kind::Lstm, 1, 32, 1),
                    spec("W2", 100, 64, Outputs::EveryStep, Loss::Mse),
                    n,
                    args,
                )?],
                Workload::W2r => vec![train::<1, 1>(
                    Spec::new(Kind::RnnTanh, 1, 64, 1),
                    spec("W2r", 100, 64, Outputs::EveryStep, Loss::Mse),
                    n,
                    args,
                )?],
                Workload::W3 => vec![train::<10, 10>(
                    Spec::new(Kind::Lstm, 10, 64, 10),
                    spec("W3", 71, 32, Outputs::EveryStep, Loss::Ce),
                    n,
                    args,
                )?],
                Workload::W4 => vec![train::<1, 2>(
                    Spec::new(Kind::Lstm, 1, 4, 2),
                    spec("W4", 15, 5, Outputs::EveryStep, Loss::Ce),
                    n,
                    args,
                )?],
                _ => {
                    let w6 = spec("W6", 32, 32, Outputs::LastStep, Loss::Mse);
                    vec![
                        train::<8, 1>(Spec::new(Kind::Lstm, 8, 8, 1), w6, n, args)?,
                        train::<16, 1>(Spec::new(Kind::Lstm, 16, 16, 1), w6, n, args)?,
                        train::<32, 1>(Spec::new(Kind::Lstm, 32, 32, 1), w6, n, args)?,
                        train::<64, 1>(Spec::new(Kind::Lstm, 64, 64, 1), w6, n, args)?,
                        train::<128, 1>(Spec::new(Kind::Lstm, 128, 128, 1), w6, n, args)?,
                        train::<256, 1>(Spec::new(Kind::Lstm, 256, 256, 1), w6, n, args)?,
                    ]
                }
            };
            for m in ms {
                emit(m);
            }
        }
    }
    Ok(format!(
        "bench: {count} measurements ({} timed steps after {} warm-up each)",
        args.steps, args.warmup
    ))
}

fn spec(name: &'static str, steps: usize, batch: usize, outputs: Outputs, loss: Loss) -> Train {
    Train {
        name,
        steps,
        batch,
        outputs,
        loss,
    }
}

/// Median of `v` (sorted in place); 0 for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// CPU seconds the calling thread has run so far (NaN where the clock is unavailable).
fn thread_cpu() -> f64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `timespec`; the clock id is a libc constant.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    f64::NAN
}

fn uniform(rng: &mut SeededRng) -> f32 {
    (2.0 * uniform01(rng) - 1.0) as f32
}

/// Nominal FLOPs of one train step (see the module docs).
pub fn train_flops(spec: &Spec, steps: usize, batch: usize) -> f64 {
    let gh = (spec.cell.gates() * spec.hidden) as f64;
    let per_row: f64 = (0..spec.layers)
        .map(|k| spec.directions() as f64 * gh * (spec.layer_input(k) + spec.hidden) as f64)
        .sum();
    3.0 * 2.0 * per_row * (steps * batch) as f64
}

/// One thread's part of the batch and its buffers.
struct Shard<const I: usize, const O: usize> {
    ws: Workspace,
    x: Vec<[f32; I]>,       // (T, b, I)
    y: Vec<[f32; O]>,       // (T, b, O) or (b, O)
    dy: Vec<[f32; O]>,      // like y
    labels: Vec<usize>,     // like y's rows (cross-entropy)
    targets: Vec<[f32; O]>, // like y (MSE)
}

/// Forward, loss and backward over one shard; the loss is scaled to the whole batch
/// (`total_rows` output rows), so shards sum to the whole batch's mean.
fn shard_step<const I: usize, const O: usize>(
    model: &Net,
    grad: &mut Net,
    s: &mut Shard<I, O>,
    loss: Loss,
    total_rows: usize,
) -> Result<f32> {
    s.ws.reset_state();
    model.forward(&mut s.ws, &s.x, &mut s.y)?;
    let l = match loss {
        Loss::Ce => {
            softmax_cross_entropy(&s.y, &s.labels, &mut s.dy, Reduction::MeanOver(total_rows))?
        }
        Loss::Mse => mse(
            s.y.as_flattened(),
            s.targets.as_flattened(),
            s.dy.as_flattened_mut(),
            Reduction::MeanOver(total_rows * O),
        )?,
    };
    model.backward(&mut s.ws, grad, &s.x, &s.dy)?;
    Ok(l)
}

/// Times `args.steps` train steps of a model of shape `model` on workload `w` with `threads`
/// threads.
fn train<const I: usize, const O: usize>(
    model: Spec,
    w: Train,
    threads: usize,
    args: &BenchArgs,
) -> Result<Measurement> {
    let (steps, batch) = (w.steps, w.batch);
    let mut rng = tinyrnn::rng(args.seed);
    let spec = model;
    let mut model = Net::new(spec)?;
    model.init(&mut rng, None);
    let mut trainer = Trainer::new(model, Optimizer::sgd(LR), None);

    // The whole batch: inputs (T, B, I), targets per output row ((T, B) or (B)).
    let x: Vec<[f32; I]> = (0..steps * batch)
        .map(|_| std::array::from_fn(|_| uniform(&mut rng)))
        .collect();
    let per_step_outputs = w.outputs == Outputs::EveryStep;
    let rows = if per_step_outputs {
        steps * batch
    } else {
        batch
    };
    let labels: Vec<usize> = (0..rows)
        .map(|_| ((uniform01(&mut rng) * O as f64) as usize).min(O - 1))
        .collect();
    let targets: Vec<[f32; O]> = (0..rows)
        .map(|_| std::array::from_fn(|_| uniform(&mut rng)))
        .collect();

    let mut shards: Vec<Shard<I, O>> = split(batch, threads)
        .into_iter()
        .map(|r| {
            let mut xs = Vec::new();
            shard_rows(&x, batch, r.clone(), &mut xs);
            let (mut ls, mut ts) = (Vec::new(), Vec::new());
            if per_step_outputs {
                shard_rows(&labels, batch, r.clone(), &mut ls);
                shard_rows(&targets, batch, r.clone(), &mut ts);
            } else {
                ls.extend_from_slice(&labels[r.clone()]);
                ts.extend_from_slice(&targets[r.clone()]);
            }
            let n = ls.len();
            Shard {
                ws: trainer.model.workspace(steps, r.len(), w.outputs),
                x: xs,
                y: vec![[0.0; O]; n],
                dy: vec![[0.0; O]; n],
                labels: ls,
                targets: ts,
            }
        })
        .collect();
    let used = shards.len(); // split() caps the threads at the batch

    let mut times = Vec::with_capacity(args.steps as usize);
    let mut cpu = Vec::with_capacity(args.steps as usize);
    for k in 0..args.warmup + args.steps {
        let cpu0 = thread_cpu();
        let start = Instant::now();
        if used == 1 {
            let s = &mut shards[0];
            trainer.update(|m, g| shard_step(m, g, s, w.loss, rows))?;
        } else {
            trainer.update_sharded(&mut shards, |m, g, s| shard_step(m, g, s, w.loss, rows))?;
        }
        let dt = start.elapsed().as_secs_f64();
        let dc = thread_cpu() - cpu0;
        if k >= args.warmup {
            times.push(dt);
            cpu.push(dc);
        }
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(Measurement {
        workload: w.name,
        cell: spec.cell.module(),
        input: I,
        hidden: spec.hidden,
        output: O,
        steps,
        batch,
        threads: used,
        median: median(&mut times),
        min,
        cpu: (used == 1).then(|| median(&mut cpu)),
        flops: train_flops(&spec, steps, batch),
        samples: args.steps as usize,
        per_block: 0,
    })
}

/// Times batch-1 inference steps of `LstmModel<I, H, O>` (state carried from step to step).
fn infer<const I: usize, const H: usize, const O: usize>(
    name: &'static str,
    args: &BenchArgs,
) -> Result<Measurement> {
    const INPUTS: usize = 1024; // a ring of random inputs, so no step sees a constant
    let mut rng = tinyrnn::rng(args.seed);
    let mut model: Box<LstmModel<I, H, O>> = boxed_zeroed();
    model.init(&mut rng, None);
    let xs: Vec<[f32; I]> = (0..INPUTS)
        .map(|_| std::array::from_fn(|_| uniform(&mut rng)))
        .collect();
    let mut state = LstmState::<H>::zero();
    let model: &LstmModel<I, H, O> = &model;
    let run = |n: usize, state: &mut LstmState<H>| -> f64 {
        let start = Instant::now();
        for k in 0..n {
            let y = black_box(model).step(black_box(&xs[k % INPUTS]), state);
            black_box(y);
        }
        start.elapsed().as_secs_f64()
    };
    // Steps per block: double until a block takes >= 2 ms.
    let mut per_block = 64usize;
    while run(per_block, &mut state) < 2e-3 && per_block < 1 << 30 {
        per_block *= 2;
    }
    let mut times = Vec::with_capacity(args.steps as usize);
    let mut cpu = Vec::with_capacity(args.steps as usize);
    for k in 0..args.warmup + args.steps {
        let cpu0 = thread_cpu();
        let dt = run(per_block, &mut state) / per_block as f64;
        let dc = (thread_cpu() - cpu0) / per_block as f64;
        if k >= args.warmup {
            times.push(dt);
            cpu.push(dc);
        }
    }
    if !state.h.iter().all(|v| v.is_finite()) {
        bail!("{name}: the state became non-finite");
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(Measurement {
        workload: name,
        cell: "lstm",
        input: I,
        hidden: H,
        output: O,
        steps: 1,
        batch: 1,
        threads: 1,
        median: median(&mut times),
        min,
        cpu: Some(median(&mut cpu)),
        flops: 0.0,
        samples: args.steps as usize,
        per_block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    /// A short run through the command line: W4 at 1 and 2 threads, W5a once (1 thread only).
    #[test]
    fn runs_through_the_command_line() {
        let args = [
            "bench",
            "--workload",
            "W4,w5a",
            "--threads",
            "1,2",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--json",
        ];
        match crate::cli::run(args) {
            Ok(summary) => assert!(summary.starts_with("bench: 3 measurements"), "{summary}"),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn refuses_unknown_workloads_and_zero_threads() {
        for args in [
            ["bench", "--workload", "W7"],
            ["bench", "--threads", "0"],
            ["bench", "--steps", "0"],
        ] {
            assert!(
                matches!(crate::cli::run(args), Err(crate::cli::Failure::Usage(_))),
                "{args:?} accepted"
            );
        }
    }

    #[test]
    fn json_lines_carry_the_numbers() {
        let m = Measurement {
            workload: "W1",
            cell: "lstm",
            input: 28,
            hidden: 128,
            output: 10,
            steps: 28,
            batch: 128,
            threads: 1,
            median: 0.02,
            min: 0.019,
            cpu: Some(0.018),
            flops: 1.0e9,
            samples: 20,
            per_block: 0,
        };
        let j = m.json();
        for part in [
            "\"workload\":\"W1\"",
            "\"median_ms\":20.00000",
            "\"cpu_ms\":18.00000",
            "\"samples_per_s\":6400.0",
            "\"gflops\":50.000",
        ] {
            assert!(j.contains(part), "{part} not in {j}");
        }
    }

    #[test]
    fn flops_follow_workloads_md() {
        // W1: 3 · 2 · 4·128·(28+128) · 28·128
        let f = train_flops(&Spec::new(Kind::Lstm, 28, 128, 10), 28, 128);
        assert_eq!(f, 3.0 * 2.0 * 512.0 * 156.0 * 28.0 * 128.0);
    }
}
