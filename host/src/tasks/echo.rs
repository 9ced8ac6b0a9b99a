//! **echo**: repeat a random bit stream `--delay` (3) steps late.
//!
//! Input: one bit per step (`I = 1`, the value 0 or 1). Output: two logits, softmax
//! cross-entropy against the bit read `--delay` steps earlier (the first `--delay` steps of a
//! stream have no target and are skipped). An LSTM with state size `--hidden` (4) reads
//! `--batch` (5) parallel streams in chunks of `--chunk` (15) steps: truncated BPTT, where the
//! forward state is carried from chunk to chunk (the workspace is not reset between chunks) but
//! the gradient stops at the chunk boundary. So the bits the first `--delay` steps of a chunk
//! must echo come from the previous chunk, through the carried state only. Adagrad (lr 0.3).
//!
//! Every epoch is a fresh random series of `--series-length` bits, split into the parallel
//! streams, which start from the zero state. The test is one unseen stream of `--test-length`
//! bits (another seed), read in chunks with the state carried throughout: per-step accuracy,
//! the first `--delay` steps excluded. Outputs: `metrics.csv` and `loss.png` (the loss and
//! accuracy curves), `accuracy.csv` (test accuracy by position in the chunk), `echo.csv` (the
//! start of the test stream with the predictions), `model.safetensors`.

use std::time::Instant;

use anyhow::{Result, bail};
use tinyrnn::cell::CellKind as Kind;
use tinyrnn::init::uniform01;
use tinyrnn::loss::{Reduction, softmax, softmax_cross_entropy};
use tinyrnn::{SeededRng, Spec};

use super::{Common, int8};
use crate::budget;
use crate::net::{Net, Outputs};
use crate::out::{OutDir, num};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::train::{Ema, OptimizerKind, Row, Trainer, progress, write_rows};

/// A row of metrics.csv: the means over the `--log-every` updates up to `update`.
struct LogRow {
    update: u64,
    epoch: u32,
    loss: f32,
    accuracy: f32,
    seconds: f64,
}

impl Row for LogRow {
    const HEADER: &'static [&'static str] = &["update", "epoch", "loss", "accuracy", "seconds"];
    fn fields(&self) -> Vec<String> {
        vec![
            self.update.to_string(),
            self.epoch.to_string(),
            num(self.loss),
            num(self.accuracy),
            format!("{:.3}", self.seconds),
        ]
    }
}

/// `tinyrnn echo` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EchoArgs {
    /// Steps between a bit and its echo.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub delay: u32,
    /// LSTM state size (hidden units).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: u32,
    /// Steps per chunk (truncated BPTT length).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk: u32,
    /// Parallel streams per batch.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Random bits per epoch (split over the streams; each epoch starts from the zero state).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub series_length: u64,
    /// Epochs (fresh series).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adagrad)]
    pub optimizer: OptimizerKind,
    /// Learning rate.
    #[arg(long, default_value_t = 0.3, value_parser = super::positive)]
    pub lr: f32,
    /// SGD momentum (with --optimizer sgd), in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = super::momentum)]
    pub momentum: f32,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 5.0, value_parser = super::non_negative)]
    pub clip: f32,
    /// Bits of the unseen test stream.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub test_length: u64,
    /// Updates averaged into one row of metrics.csv.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
    /// Steps of the test stream written to echo.csv.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(0..=MAX_SHOW))]
    pub show: u32,
    /// Also quantize the trained model to int8 (calibrated on the last epoch's training
    /// streams), run the test stream with the integer step and report its accuracy beside f32's
    /// (summary, int8.csv, int8 columns in accuracy.csv and echo.csv).
    #[arg(long)]
    pub int8: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Runs the task; returns the summary line.
pub fn run(args: &EchoArgs) -> Result<String> {
    let per_stream = args.series_length / args.batch as u64;
    if per_stream < args.chunk as u64 {
        bail!(
            "--series-length {} gives each of the {} streams {} bits, less than one --chunk of {}",
            args.series_length,
            args.batch,
            per_stream,
            args.chunk
        );
    }
    if args.test_length <= args.delay as u64 {
        bail!(
            "--test-length ({}) must be greater than --delay ({})",
            args.test_length,
            args.delay
        );
    }
    let trained = (per_stream / args.chunk as u64) * args.chunk as u64;
    if trained <= args.delay as u64 {
        bail!(
            "each stream trains on {trained} bits, all within the first --delay ({}) steps: nothing to learn; raise --series-length",
            args.delay
        );
    }
    budget::check(&need(args))?;
    let out = args.common.out_dir("echo", args)?;
    out.finish(run_net(args, &out))
}

/// The model: an LSTM of `--hidden` units, one bit in, two logits out.
fn spec(args: &EchoArgs) -> Spec {
    Spec::new(Kind::Lstm, 1, args.hidden as usize, 2)
}

/// Largest --show: rows of echo.csv.
const MAX_SHOW: i64 = 1_000_000;

/// Bytes a row of metrics.csv or echo.csv takes in memory before it is written (five strings).
const ROW_BYTES: u128 = 200;

/// The memory and work of a run (see [`budget`]): an epoch's bit streams, the test stream, the
/// (chunk, batch) workspace and buffers, and the rows of metrics.csv and echo.csv.
fn need(args: &EchoArgs) -> budget::Need {
    let (bits, test) = (args.series_length as u128, args.test_length as u128);
    let (chunk, batch, h) = (args.chunk as u128, args.batch as u128, args.hidden as u128);
    let spec = spec(args);
    let floats = budget::sum(&[
        budget::workspace_floats(&spec, chunk, batch),
        budget::product(&[7, chunk, batch]), // x, target, logits, dlogits: (T, B, 1 + 2 + 2 + 2)
        budget::workspace_floats(&spec, chunk, 1),
    ]);
    let updates = budget::product(&[args.epochs as u128, bits / (chunk * batch)]);
    let rows = updates / args.log_every as u128 + (args.show as u128).min(test);
    let step = budget::step_ops(&spec);
    budget::Need {
        bytes: budget::sum(&[
            budget::product(&[budget::F32, floats]),
            bits,
            test,
            budget::product(&[rows, ROW_BYTES]),
        ]),
        bytes_flags: vec![
            ("--series-length", bits),
            ("--test-length", test),
            ("--chunk", chunk),
            ("--batch", batch),
            ("--hidden", h),
            ("--epochs", args.epochs as u128),
        ],
        ops: budget::sum(&[
            budget::product(&[3, args.epochs as u128, bits, step]),
            budget::product(&[test, step]),
        ]),
        ops_flags: vec![
            ("--epochs", args.epochs as u128),
            ("--series-length", bits),
            ("--test-length", test),
            ("--hidden", h),
        ],
    }
}

/// `n` random bits.
fn bits(rng: &mut SeededRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| (uniform01(rng) < 0.5) as u8).collect()
}

/// Running totals of a stretch of training.
#[derive(Default)]
struct Block {
    loss: f64,
    correct: usize,
    scored: usize,
    updates: u64,
}

fn run_net(args: &EchoArgs, out: &OutDir) -> Result<String> {
    let (batch, chunk, delay) = (
        args.batch as usize,
        args.chunk as usize,
        args.delay as usize,
    );
    let per_stream = (args.series_length / batch as u64) as usize;
    let chunks = per_stream / chunk; // the tail that does not fill a chunk is dropped
    let total = chunks as u64 * args.epochs as u64;

    let mut rng = tinyrnn::rng(args.common.seed);
    let mut model = Net::new(spec(args))?;
    model.init(&mut rng, None);
    let clip = (args.clip > 0.0).then_some(args.clip);
    let mut trainer = Trainer::new(model, args.optimizer.build(args.lr, args.momentum), clip);
    trainer.set_board(args.common.board(None)?);

    let rows = chunk * batch;
    let mut ws = trainer.model.workspace(chunk, batch, Outputs::EveryStep);
    let mut x = vec![[0.0f32]; rows]; // (T, B, 1)
    let mut target = vec![0usize; rows]; // (T, B)
    let mut logits = vec![[0.0f32; 2]; rows];
    let mut dlogits = vec![[0.0f32; 2]; rows];

    let mut bar = progress(total, "echo", args.common.quiet);
    let start = Instant::now();
    let mut ema = Ema::default();
    let mut log: Vec<LogRow> = Vec::new();
    let mut block = Block::default();
    let mut streams: Vec<Vec<u8>> = Vec::new();
    for epoch in 0..args.epochs {
        streams = (0..batch).map(|_| bits(&mut rng, per_stream)).collect();
        ws.reset_state(); // a fresh series; from here on the state is carried chunk to chunk
        for k in 0..chunks {
            let t0 = k * chunk;
            for t in 0..chunk {
                for (b, s) in streams.iter().enumerate() {
                    x[t * batch + b] = [s[t0 + t] as f32];
                    target[t * batch + b] = if t0 + t >= delay {
                        s[t0 + t - delay] as usize
                    } else {
                        0
                    };
                }
            }
            // Rows before the stream's `delay`-th step have no target (first chunk only).
            let skip = delay.saturating_sub(t0).min(chunk) * batch;
            if skip == rows {
                trainer.model.forward(&mut ws, &x, &mut logits)?; // carry the state only
                continue;
            }
            let loss = trainer.update(|m, g| {
                m.forward(&mut ws, &x, &mut logits)?;
                dlogits[..skip].fill([0.0; 2]);
                let loss = softmax_cross_entropy(
                    &logits[skip..],
                    &target[skip..],
                    &mut dlogits[skip..],
                    Reduction::Mean,
                )?;
                m.backward(&mut ws, g, &x, &dlogits)?; // zeroes the carried-in gradient
                Ok(loss)
            })?;
            block.loss += loss as f64;
            block.updates += 1;
            block.scored += rows - skip;
            block.correct += logits[skip..]
                .iter()
                .zip(&target[skip..])
                .filter(|(z, k)| (z[1] > z[0]) as usize == **k)
                .count();
            let avg = ema.add(loss as f64);
            if trainer.step.is_multiple_of(args.log_every)
                || (epoch + 1 == args.epochs && k + 1 == chunks)
            {
                let accuracy = block.correct as f64 / block.scored as f64;
                trainer.scalars(&[("accuracy/train", accuracy)])?;
                bar.set_message(format!("loss {avg:.3e} acc {accuracy:.4}"));
                log.push(LogRow {
                    update: trainer.step,
                    epoch: epoch + 1,
                    loss: (block.loss / block.updates as f64) as f32,
                    accuracy: accuracy as f32,
                    seconds: start.elapsed().as_secs_f64(),
                });
                block = Block::default();
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let train_time = start.elapsed().as_secs_f64();
    let model = &trainer.model;

    // Test: one unseen stream, read in chunks with the state carried throughout.
    let eval_start = Instant::now();
    let n = args.test_length as usize;
    let stream = bits(&mut tinyrnn::rng(args.common.eval_seed()), n);
    let mut ws = model.workspace(chunk, 1, Outputs::EveryStep);
    let mut z = vec![[0.0f32; 2]; chunk];
    let mut p = vec![[0.0f32; 2]; chunk];
    let (mut correct, mut scored) = (0usize, 0usize);
    let mut by_pos = vec![(0usize, 0usize); chunk]; // (correct, scored) by position in the chunk
    let mut shown: Vec<[String; 5]> = Vec::new();
    let mut xs = vec![[0.0f32]; chunk];
    for t0 in (0..n).step_by(chunk) {
        let len = chunk.min(n - t0);
        if len < chunk {
            let mut tail = model.workspace(len, 1, Outputs::EveryStep);
            tail.continue_from(&ws);
            ws = tail;
        }
        for (t, v) in xs[..len].iter_mut().enumerate() {
            *v = [stream[t0 + t] as f32];
        }
        model.forward(&mut ws, &xs[..len], &mut z[..len])?;
        softmax(&z[..len], &mut p[..len])?;
        for t in 0..len {
            let g = t0 + t;
            let pred = (z[t][1] > z[t][0]) as u8;
            let want = (g >= delay).then(|| stream[g - delay]);
            if let Some(w) = want {
                let ok = (pred == w) as usize;
                correct += ok;
                scored += 1;
                by_pos[t].0 += ok;
                by_pos[t].1 += 1;
            }
            if g < args.show as usize {
                shown.push([
                    g.to_string(),
                    stream[g].to_string(),
                    want.map(|w| w.to_string()).unwrap_or_default(),
                    pred.to_string(),
                    num(p[t][1]),
                ]);
            }
        }
    }
    let accuracy = correct as f64 / scored as f64;
    trainer.scalars(&[("accuracy/test", accuracy)])?;
    let eval_time = eval_start.elapsed().as_secs_f64();

    // int8: calibrated on the last epoch's streams (each read whole from the zero state, as in
    // training), then the test stream as one sequence, as the f32 model read it.
    let mut int8_note = String::new();
    let mut int8_pred: Vec<u8> = Vec::new(); // (n)
    let mut int8_by_pos = vec![0usize; chunk]; // correct by position in the chunk
    if args.int8 {
        let calibration: Vec<Vec<f32>> = streams
            .iter()
            .map(|s| s.iter().map(|&b| b as f32).collect())
            .collect();
        let q = int8::quantize(model, calibration.iter().map(Vec::as_slice))?;
        let x: Vec<f32> = stream.iter().map(|&b| b as f32).collect();
        let z = q.model.run(&x, &mut q.model.zero_state())?; // (n, 2)
        int8_pred = z.chunks_exact(2).map(|z| (z[1] > z[0]) as u8).collect();
        let mut int8_correct = 0;
        for g in delay..n {
            let ok = (int8_pred[g] == stream[g - delay]) as usize;
            int8_correct += ok;
            int8_by_pos[g % chunk] += ok;
        }
        let int8_accuracy = int8_correct as f64 / scored as f64;
        int8::write(out, &q, "accuracy", accuracy, int8_accuracy)?;
        int8_note = format!(
            "; int8 accuracy {int8_accuracy:.5} ({int8_correct}/{scored}, calibrated on {} training streams of {per_stream} bits)",
            q.sequences
        );
    }

    write_rows(out, "metrics.csv", &log)?;
    let with_int8 = |mut header: Vec<&'static str>, column| {
        if args.int8 {
            header.push(column);
        }
        header
    };
    out.csv(
        "accuracy.csv",
        &with_int8(
            vec!["position_in_chunk", "accuracy", "steps"],
            "int8_accuracy",
        ),
        by_pos.iter().enumerate().map(|(t, &(c, s))| {
            let share = |c: usize| num((c as f64 / s.max(1) as f64) as f32);
            let mut row = vec![t.to_string(), share(c), s.to_string()];
            if args.int8 {
                row.push(share(int8_by_pos[t]));
            }
            row
        }),
    )?;
    out.csv(
        "echo.csv",
        &with_int8(
            vec!["t", "input", "target", "prediction", "p_one"],
            "int8_prediction",
        ),
        shown.iter().enumerate().map(|(g, row)| {
            let mut row = row.to_vec();
            if let Some(p) = int8_pred.get(g) {
                row.push(p.to_string());
            }
            row
        }),
    )?;
    let curve = |f: fn(&LogRow) -> f32| -> Vec<(f64, f64)> {
        log.iter()
            .map(|r| (r.update as f64, f64::from(f(r))))
            .collect()
    };
    let panels = [
        Panel {
            title: format!(
                "echo: training loss (cross-entropy, mean of {} updates)",
                args.log_every
            ),
            x_label: "update".into(),
            y_label: "loss".into(),
            log_y: true,
            series: vec![Series {
                label: String::new(),
                points: curve(|r| r.loss),
                color: PALETTE[0],
            }],
            ..Panel::default()
        },
        Panel {
            title: "echo: training accuracy per step".into(),
            x_label: "update".into(),
            y_label: "accuracy".into(),
            series: vec![Series {
                label: String::new(),
                points: curve(|r| r.accuracy),
                color: PALETTE[1],
            }],
            ..Panel::default()
        },
    ];
    out.png("loss.png", |p| plot::draw(p, &panels, 1, (700, 340)))?;
    model.save(
        &out.path("model.safetensors"),
        &[],
        &[
            ("task", "echo".into()),
            ("head", "softmax".into()),
            ("delay", delay.to_string()),
        ],
        false,
    )?;
    Ok(format!(
        "echo: lstm H={} delay {delay}, {} updates ({} epochs x {chunks} chunks of {chunk} x {batch} streams) in {train_time:.1} s; accuracy {accuracy:.5} ({correct}/{scored}) on an unseen stream of {n} bits (first {delay} excluded, {eval_time:.2} s){int8_note}; wrote {}",
        model.hidden(),
        trainer.step,
        args.epochs,
        out.path("").display()
    ))
}
