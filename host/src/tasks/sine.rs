//! **sine**: continue sine curves of unknown frequency and phase.
//!
//! Curves of `--length` samples `x_t = sin(ω t + φ)`, ω ~ U[0.05, 0.3] rad per sample,
//! φ ~ U[0, 2π). The model reads `x_t` and predicts `x_{t+1}` at every step (MSE).
//!
//! Test: on unseen curves the model is warmed up on the first `--warmup` true samples and then
//! generates the rest by feeding back its own predictions; the score is the MSE of the generated
//! part against the truth, beside the MSE of predicting zero (about 0.5).
//!
//! Training: teacher forcing alone gives a tiny one-step error and useless rollouts (the errors
//! compound: measured here, ratio 0.8-0.9 to the zero baseline). So after `--teacher-steps`
//! teacher-forced updates, a fraction `--free-run` of the batches run in *closed loop*: the model
//! is warmed up on 10..=`--warmup` true samples, then fed its own predictions, and trained by BPTT
//! through the state *and* through every fed-back prediction (dL/dy_{t-1} += dL/dx_t). The
//! free-running horizon grows from 1 step to the whole curve over `--ramp` updates (long
//! horizons from the start collapse to predicting the mean), and the learning rate decays
//! (cosine, to 5%). Detaching the fed-back predictions instead also collapsed to the mean.

use std::f64::consts::PI;
use std::time::Instant;

use anyhow::{Result, bail};
use tinyrnn::cell::CellKind as Kind;
use tinyrnn::init::uniform01;
use tinyrnn::loss::{Reduction, mse};
use tinyrnn::{SeededRng, Spec};

use super::{CHECKPOINT_FILE, CheckpointArgs, Common, int8, matched_hidden, run_id, update_rng};
use crate::budget;
use crate::net::{CellArg, Net, Nonlinearity, Outputs, Workspace, label};
use crate::out::{OutDir, num};
use crate::plot::{self, PALETTE, Panel, Series};
use crate::train::{Ema, OptimizerKind, Row, RunCheck, Trainer, cosine_lr, progress, write_rows};

/// `tinyrnn sine` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SineArgs {
    /// Recurrent cell.
    #[arg(long, value_enum, default_value_t = CellArg::Lstm)]
    pub cell: CellArg,
    /// Hidden size [default: 32 for the LSTM, 64 for the tanh RNN (workload W2r: about the
    /// LSTM's parameter count); for the GRU, the size with the LSTM's parameter count]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: Option<u32>,
    /// Training updates (batches).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Curves per batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Samples per curve.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(3..))]
    pub length: u32,
    /// True samples the model is warmed up on before it generates (test time).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub warmup: u32,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// Learning rate.
    #[arg(long, default_value_t = 3e-3, value_parser = super::positive)]
    pub lr: f32,
    /// Cosine learning-rate decay to 5% of --lr over the run.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub lr_decay: bool,
    /// SGD momentum (with --optimizer sgd), in [0, 1).
    #[arg(long, default_value_t = 0.0, value_parser = super::momentum)]
    pub momentum: f32,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 5.0, value_parser = super::non_negative)]
    pub clip: f32,
    /// Teacher-forced updates before free-running batches start (at most --steps).
    #[arg(long, default_value_t = 300)]
    pub teacher_steps: u64,
    /// Fraction of the later batches that are free-running, in [0, 1].
    #[arg(long, default_value_t = 1.0, value_parser = super::fraction)]
    pub free_run: f64,
    /// Standard deviation of Gaussian noise added to the inputs of teacher-forced batches.
    #[arg(long, default_value_t = 0.0, value_parser = super::non_negative)]
    pub input_noise: f32,
    /// Updates over which the free-running horizon grows from 1 step to the whole curve
    /// (0 or 1: the whole curve at once).
    #[arg(long, default_value_t = 1500)]
    pub ramp: u64,
    /// Unseen test curves.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub test_curves: u32,
    /// Curves drawn in sine.png (at most --test-curves are drawn).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=MAX_PLOT_CURVES))]
    pub plot_curves: u32,
    /// Also quantize the trained model to int8 (calibrated on the first training curves), run
    /// the same test rollouts with the integer step, feeding back its own predictions, and report
    /// its extrapolation MSE beside f32's (summary, int8.csv, an int8 column in sine.csv).
    #[arg(long)]
    pub int8: bool,
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    #[command(flatten)]
    pub common: Common,
}

/// Runs the task; returns the summary line.
pub fn run(args: &SineArgs) -> Result<String> {
    if args.warmup >= args.length {
        anyhow::bail!(
            "--warmup ({}) must be less than --length ({})",
            args.warmup,
            args.length
        );
    }
    let resume = args.checkpoint.resume_file()?;
    let spec = args.spec();
    if args.int8 {
        int8::supported(&spec)?;
    }
    budget::check(&need(args, &spec))?;
    let out = args.checkpoint.out_dir(&args.common, "sine", args, &[])?;
    out.finish(run_net(args, spec, &out, resume.as_deref()))
}

impl SineArgs {
    /// The model: one layer of `--cell` (a tanh RNN for `rnn`) of `--hidden` units.
    fn spec(&self) -> Spec {
        let lstm = Spec::new(Kind::Lstm, 1, 32, 1);
        let cell = self.cell.kind(Nonlinearity::Tanh);
        let hidden = match (self.hidden, cell) {
            (Some(h), _) => h as usize,
            (None, Kind::Lstm) => lstm.hidden,
            (None, Kind::RnnTanh) => 64,
            (None, _) => matched_hidden(&lstm, cell),
        };
        Spec {
            cell,
            hidden,
            ..lstm
        }
    }
}

/// Curves drawn in sine.png at most (two columns of 520 x 300 pixels each).
const MAX_PLOT_CURVES: i64 = 32;

/// The memory and work of a run with hidden size `h` (see [`budget`]): the teacher-forced
/// workspace, one workspace per step for closed loops, the (T, B) data buffers, and at test time
/// the curves with their workspace.
fn need(args: &SineArgs, spec: &Spec) -> budget::Need {
    let (batch, length, n) = (
        args.batch as u128,
        args.length as u128,
        args.test_curves as u128,
    );
    let (h, steps) = (spec.hidden as u128, length - 1);
    let ws = budget::workspace_floats(spec, steps, batch);
    let per_step = budget::workspace_floats(spec, 1, batch).saturating_mul(steps);
    let data = budget::product(&[6, length, batch]); // x, y, dy, targets, truth, spare
    let test = budget::sum(&[
        budget::product(&[3, length, n]),
        budget::workspace_floats(spec, 1, n),
    ]);
    let cell = budget::step_ops(spec);
    let train = budget::product(&[3, args.steps as u128, batch, steps, cell]);
    budget::Need {
        bytes: budget::product(&[budget::F32, budget::sum(&[ws, per_step, data, test])]),
        bytes_flags: vec![
            ("--batch", batch),
            ("--length", length),
            ("--test-curves", n),
            ("--hidden", h),
        ],
        ops: budget::sum(&[train, budget::product(&[n, length, cell])]),
        ops_flags: vec![
            ("--steps", args.steps as u128),
            ("--batch", batch),
            ("--length", length),
            ("--hidden", h),
        ],
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SeededRng) -> f32 {
    let (u, v) = (1.0 - uniform01(rng), uniform01(rng));
    ((-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()) as f32
}

/// A batch of curves, time-major: `x[t * batch + b]`.
fn curves(rng: &mut SeededRng, batch: usize, length: usize) -> Vec<[f32; 1]> {
    let params: Vec<(f64, f64)> = (0..batch)
        .map(|_| (0.05 + 0.25 * uniform01(rng), 2.0 * PI * uniform01(rng)))
        .collect();
    let mut x = vec![[0.0f32]; batch * length];
    for t in 0..length {
        for (b, &(w, p)) in params.iter().enumerate() {
            x[t * batch + b] = [(w * t as f64 + p).sin() as f32];
        }
    }
    x
}

/// Runs the model step by step over `truth` (length x batch, time-major), feeding it the true
/// sample for the first `warmup` steps and its own previous prediction after that: `x` receives
/// the inputs, `y` the predictions of samples 1..length (both (length-1, batch)). `ws` holds one
/// workspace per step (kept for [`closed_loop_backward`]) or a single one reused at every step.
fn closed_loop(
    model: &Net,
    truth: &[[f32; 1]],
    warmup: usize,
    ws: &mut [Workspace],
    x: &mut [[f32; 1]],
    y: &mut [[f32; 1]],
) -> Result<()> {
    let batch = ws[0].batch;
    for t in 0..x.len() / batch {
        let now = t * batch..(t + 1) * batch;
        if t < warmup {
            x[now.clone()].copy_from_slice(&truth[now.clone()]);
        } else {
            let (prev_y, _) = y.split_at(t * batch);
            x[now.clone()].copy_from_slice(&prev_y[(t - 1) * batch..]);
        }
        let k = t % ws.len();
        if t == 0 {
            ws[0].reset_state();
        } else if k > 0 {
            let (done, rest) = ws.split_at_mut(k);
            rest[0].continue_from(&done[k - 1]);
        }
        model.forward(&mut ws[k], &x[now.clone()], &mut y[now])?;
    }
    Ok(())
}

/// Backward through a [`closed_loop`] run (one workspace per step), from dL/dy in `dy`: the
/// gradient flows through the state *and* through every fed-back prediction
/// (dL/dy_{t-1} += dL/dx_t for t >= warmup). Accumulates into `grad`; `dy` is consumed.
fn closed_loop_backward(
    model: &Net,
    grad: &mut Net,
    warmup: usize,
    ws: &mut [Workspace],
    x: &[[f32; 1]],
    dy: &mut [[f32; 1]],
) -> Result<()> {
    let batch = ws[0].batch;
    let steps = ws.len();
    ws[steps - 1].clear_carry();
    let mut dx = vec![[0.0f32]; batch];
    for t in (0..steps).rev() {
        let now = t * batch..(t + 1) * batch;
        dx.fill([0.0]);
        model.backward_carry(&mut ws[t], grad, &x[now.clone()], &dy[now], Some(&mut dx))?;
        if t >= warmup {
            for (d, g) in dy[(t - 1) * batch..t * batch].iter_mut().zip(&dx) {
                d[0] += g[0];
            }
        }
        if t > 0 {
            let (done, rest) = ws.split_at_mut(t);
            rest[0].pass_carry(&mut done[t - 1]);
        }
    }
    Ok(())
}

/// A row of metrics.csv, and of a checkpoint's progress: the loss of update `update` (1-based),
/// whether its batch ran free or teacher-forced, the seconds since the start.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct LogRow {
    update: u64,
    loss: f32,
    free: bool,
    seconds: f64,
}

impl Row for LogRow {
    const HEADER: &'static [&'static str] = &["update", "loss", "batch", "seconds"];
    fn fields(&self) -> Vec<String> {
        let batch = match self.free {
            true => "free",
            false => "teacher",
        };
        vec![
            self.update.to_string(),
            num(self.loss),
            batch.into(),
            format!("{:.3}", self.seconds),
        ]
    }
}

/// Updates between rows of metrics.csv (plus a row after the last update).
const LOG_EVERY: u64 = 50;

/// A checkpoint's metrics rows against its update count: after `update` updates (before the
/// last) there is one row for each update `u` in `0..update` with `u % LOG_EVERY == 0`, with
/// `u + 1` in its `update` column.
fn check_log(log: &[LogRow], update: u64) -> Result<()> {
    let want = update.div_ceil(LOG_EVERY);
    if log.len() as u64 != want {
        bail!(
            "its progress holds {} metrics rows, expected {want} (one every {LOG_EVERY} updates)",
            log.len()
        );
    }
    for (k, row) in (0u64..).zip(log) {
        if row.update != k * LOG_EVERY + 1 {
            bail!(
                "metrics row {} is for update {}, expected {}",
                k + 1,
                row.update,
                k * LOG_EVERY + 1
            );
        }
    }
    Ok(())
}

/// Checkpoints every this many updates unless `--checkpoint-every` says otherwise.
const CHECKPOINT_EVERY: u64 = 500;

fn run_net(
    args: &SineArgs,
    spec: Spec,
    out: &OutDir,
    resume: Option<&std::path::Path>,
) -> Result<String> {
    let (batch, length, warmup) = (
        args.batch as usize,
        args.length as usize,
        args.warmup as usize,
    );
    let steps = length - 1;
    let mut model = Net::new(spec)?;
    model.init(&mut tinyrnn::rng(args.common.seed), None);
    let clip = (args.clip > 0.0).then_some(args.clip);
    let mut trainer = Trainer::new(model, args.optimizer.build(args.lr, args.momentum), clip);
    trainer.set_board(args.common.board(None)?);
    // What a checkpoint must agree on to be continued: the task and every flag that changes
    // the result (not where outputs go, the progress bar or how often checkpoints are taken).
    let mut same = args.clone();
    (
        same.common.out,
        same.common.quiet,
        same.checkpoint,
        same.int8,
    ) = (None, false, CheckpointArgs::default(), false);
    same.common.tensorboard = None;
    let run_id = run_id("sine", &same);
    let checkpoint = out.path(CHECKPOINT_FILE);
    // The metrics rows so far are the whole training progress a checkpoint adds.
    let mut log: Vec<LogRow> = match resume {
        Some(from) => {
            let run = RunCheck {
                id: &run_id,
                updates: args.steps,
                finished: false,
                extras: &[],
            };
            trainer.resume(from, &run, |log: &mut Vec<LogRow>, update, _| {
                check_log(log, update)
            })?
        }
        None => Vec::new(),
    };

    let mut ws = trainer.model.workspace(steps, batch, Outputs::EveryStep); // teacher forcing: one chunk
    let mut per_step: Vec<Workspace> = (0..steps)
        .map(|_| trainer.model.workspace(1, batch, Outputs::EveryStep))
        .collect();
    let mut y = vec![[0.0f32]; steps * batch]; // (T, B, 1)
    let mut dy = vec![[0.0f32]; steps * batch]; // (T, B, 1)
    let mut targets = vec![0.0f32; steps * batch]; // (T, B)
    let mut x = vec![[0.0f32]; steps * batch]; // (T, B, 1)

    let mut bar = progress(args.steps, "sine", args.common.quiet);
    let start = Instant::now();
    let mut ema = Ema::default();
    bar.set_position(trainer.step);
    for update in trainer.step..args.steps {
        let mut rng = update_rng(args.common.seed, update);
        if args.lr_decay {
            trainer.set_lr(cosine_lr(args.lr, 0.05, update, args.steps));
        }
        let truth = curves(&mut rng, batch, length);
        for (t, v) in targets.iter_mut().enumerate() {
            *v = truth[t + batch][0];
        }
        let free = update >= args.teacher_steps && uniform01(&mut rng) < args.free_run;
        let loss = if free {
            // Closed loop: warm up on 10..=warmup true samples, then feed back predictions for a
            // horizon that grows from 1 step to the whole curve over `--ramp` updates.
            let lo = 10.min(warmup);
            let w = (lo + (uniform01(&mut rng) * (warmup + 1 - lo) as f64) as usize).min(warmup);
            let grown = (update - args.teacher_steps + 1) as f64 / args.ramp.max(1) as f64;
            let k = ((grown * (steps - w) as f64).ceil() as usize).clamp(1, steps - w);
            let n = (w + k) * batch;
            trainer.update(|m, g| {
                closed_loop(
                    m,
                    &truth,
                    w,
                    &mut per_step[..w + k],
                    &mut x[..n],
                    &mut y[..n],
                )?;
                let loss = mse(
                    y[..n].as_flattened(),
                    &targets[..n],
                    dy[..n].as_flattened_mut(),
                    Reduction::Mean,
                )?;
                closed_loop_backward(m, g, w, &mut per_step[..w + k], &x[..n], &mut dy[..n])?;
                Ok(loss)
            })?
        } else {
            x.copy_from_slice(&truth[..steps * batch]);
            if args.input_noise > 0.0 {
                for v in x.iter_mut() {
                    v[0] += args.input_noise * normal(&mut rng);
                }
            }
            trainer.update(|m, g| {
                ws.reset_state();
                m.forward(&mut ws, &x, &mut y)?;
                let loss = mse(
                    y.as_flattened(),
                    &targets,
                    dy.as_flattened_mut(),
                    Reduction::Mean,
                )?;
                m.backward(&mut ws, g, &x, &dy)?;
                Ok(loss)
            })?
        };
        let avg = ema.add(loss as f64);
        bar.inc(1);
        if update % 10 == 0 {
            bar.set_message(format!("loss {avg:.2e}"));
        }
        if update % LOG_EVERY == 0 || update + 1 == args.steps {
            log.push(LogRow {
                update: update + 1,
                loss,
                free,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        let every = args.checkpoint.checkpoint_every.unwrap_or(CHECKPOINT_EVERY);
        if every > 0 && trainer.step.is_multiple_of(every) && trainer.step < args.steps {
            // An interrupted run keeps its curve so far.
            write_rows(out, "metrics.csv", &log)?;
            trainer.save_checkpoint(&checkpoint, &run_id, &log, &[])?;
        }
    }
    bar.finish_and_clear();
    let train_time = start.elapsed().as_secs_f64();
    let model = &trainer.model;

    // Evaluation on unseen curves.
    let mut eval_rng = tinyrnn::rng(args.common.eval_seed());
    let n = args.test_curves as usize;
    let truth = curves(&mut eval_rng, n, length);
    let mut one = [model.workspace(1, n, Outputs::EveryStep)];
    let (mut x, mut pred) = (
        vec![[0.0f32]; (length - 1) * n],
        vec![[0.0f32]; (length - 1) * n],
    );
    closed_loop(model, &truth, warmup, &mut one, &mut x, &mut pred)?;
    // MSE of the generated part of predictions `pred` ((length-1, n)) and of predicting zero.
    let score = |pred: &[[f32; 1]]| {
        let (mut se, mut zero, mut count) = (0.0f64, 0.0f64, 0usize);
        for t in warmup..length {
            for b in 0..n {
                let (p, y) = (pred[(t - 1) * n + b][0] as f64, truth[t * n + b][0] as f64);
                se += (p - y) * (p - y);
                zero += y * y;
                count += 1;
            }
        }
        (se / count as f64, zero / count as f64)
    };
    let (mse_gen, mse_zero) = score(&pred);
    trainer.scalars(&[
        ("mse/test_extrapolation", mse_gen),
        ("mse/test_ratio_to_zero", mse_gen / mse_zero),
    ])?;
    let int8 = match args.int8 {
        true => Some(int8_rollouts(args, model, &truth, n)?),
        false => None,
    };
    let int8_note = match &int8 {
        Some((q, pred_q)) => {
            let (mse_q, _) = score(pred_q);
            int8::write(
                out,
                q,
                "extrapolation_mse_ratio",
                mse_gen / mse_zero,
                mse_q / mse_zero,
            )?;
            format!(
                "; int8: extrapolation MSE {mse_q:.4}, ratio {:.3} (calibrated on {} training curves)",
                mse_q / mse_zero,
                q.sequences
            )
        }
        None => String::new(),
    };

    write_rows(out, "metrics.csv", &log)?;
    let mut header = vec!["curve", "t", "truth", "prediction", "phase"];
    if int8.is_some() {
        header.push("int8_prediction");
    }
    out.csv(
        "sine.csv",
        &header,
        (0..n).flat_map(|b| {
            let (truth, pred, int8) = (&truth, &pred, &int8);
            (0..length).map(move |t| {
                let at = |pred: &[[f32; 1]]| match t {
                    0 => String::new(),
                    t => num(pred[(t - 1) * n + b][0]),
                };
                let phase = if t < warmup { "warm-up" } else { "generated" };
                let mut row = vec![
                    b.to_string(),
                    t.to_string(),
                    num(truth[t * n + b][0]),
                    at(pred),
                    phase.to_string(),
                ];
                if let Some((_, pred_q)) = int8 {
                    row.push(at(pred_q));
                }
                row
            })
        }),
    )?;
    let panels: Vec<Panel> = (0..(args.plot_curves as usize).min(n))
        .map(|b| Panel {
            title: format!("unseen curve {b}"),
            x_label: "t".into(),
            y_label: "x".into(),
            vline: Some(warmup as f64 - 0.5),
            series: vec![
                Series {
                    label: "truth".into(),
                    points: (0..length)
                        .map(|t| (t as f64, truth[t * n + b][0] as f64))
                        .collect(),
                    color: PALETTE[0],
                },
                Series {
                    label: "model, warm-up (fed the truth)".into(),
                    points: (1..warmup)
                        .map(|t| (t as f64, pred[(t - 1) * n + b][0] as f64))
                        .collect(),
                    color: PALETTE[1],
                },
                Series {
                    label: "model, generated (fed itself)".into(),
                    points: (warmup..length)
                        .map(|t| (t as f64, pred[(t - 1) * n + b][0] as f64))
                        .collect(),
                    color: PALETTE[3],
                },
            ],
            vline_label: "generated from here".into(),
            ..Panel::default()
        })
        .collect();
    out.png("sine.png", |p| plot::draw(p, &panels, 2, (520, 300)))?;
    // Teacher-forced batches score one-step-ahead predictions; free-running ones score rollouts
    // over a horizon that grows from 1 step: the curve jumps where they start (the marker).
    let switch = args.teacher_steps < args.steps && args.free_run > 0.0;
    let mut loss_panel = Panel {
        title: match switch {
            true => format!(
                "training loss (MSE): one step ahead, then free-running from update {}",
                args.teacher_steps
            ),
            false => "training loss (MSE, one step ahead)".into(),
        },
        x_label: "update".into(),
        y_label: "loss".into(),
        log_y: true,
        series: vec![Series {
            label: String::new(),
            points: log
                .iter()
                .map(|r| (r.update as f64, f64::from(r.loss)))
                .collect(),
            color: PALETTE[0],
        }],
        ..Panel::default()
    };
    loss_panel.vline = switch.then_some(args.teacher_steps as f64);
    loss_panel.vline_label = "free-running batches from here".into();
    out.png("loss.png", |p| plot::draw(p, &[loss_panel], 1, (700, 400)))?;
    model.save(
        &out.path("model.safetensors"),
        &[],
        &[("task", "sine".into()), ("head", "linear".into())],
        false,
    )?;
    Ok(format!(
        "sine: {} trained {} updates in {:.1} s; extrapolation MSE {:.4} over {} generated samples of {} unseen curves (zero baseline {:.4}, ratio {:.3}){int8_note}; wrote {}",
        label(model.spec()),
        args.steps,
        train_time,
        mse_gen,
        length - warmup,
        n,
        mse_zero,
        mse_gen / mse_zero,
        out.path("").display()
    ))
}

/// The int8 model of `model`, calibrated on the first training curves (those of updates 0, 1,
/// ...: the inputs teacher forcing feeds, samples 0..length-1), and its predictions on the test
/// curves `truth` ((length, n)) with the warm-up and feedback of [`closed_loop`]: the true sample
/// for the first `--warmup` steps, then its own previous prediction, as on the device.
fn int8_rollouts(
    args: &SineArgs,
    model: &Net,
    truth: &[[f32; 1]],
    n: usize,
) -> Result<(int8::Int8, Vec<[f32; 1]>)> {
    let (batch, length, warmup) = (
        args.batch as usize,
        args.length as usize,
        args.warmup as usize,
    );
    let updates = int8::MAX_CALIBRATION
        .div_ceil(batch)
        .min(args.steps as usize) as u64;
    let calibration: Vec<Vec<f32>> = (0..updates)
        .flat_map(|u| {
            let c = curves(&mut update_rng(args.common.seed, u), batch, length);
            (0..batch)
                .map(|b| (0..length - 1).map(|t| c[t * batch + b][0]).collect())
                .collect::<Vec<Vec<f32>>>()
        })
        .collect();
    let q = int8::quantize(model, calibration.iter().map(Vec::as_slice))?;
    let mut pred = vec![[0.0f32]; (length - 1) * n]; // (T, B, 1)
    for b in 0..n {
        let mut state = q.model.zero_state();
        for t in 0..length - 1 {
            let x = match t < warmup {
                true => truth[t * n + b][0],
                false => pred[(t - 1) * n + b][0],
            };
            pred[t * n + b] = [q.model.run(&[x], &mut state)?[0]];
        }
    }
    Ok((q, pred))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed-loop gradient (through the state and through every fed-back prediction)
    /// against central finite differences of the same closed-loop loss.
    #[test]
    fn closed_loop_gradient_matches_finite_differences() {
        let (batch, length, warmup) = (2, 12, 2);
        let steps = length - 1;
        let mut rng = tinyrnn::rng(3);
        let mut model = Net::new(Spec::new(Kind::Lstm, 1, 4, 1)).unwrap();
        model.init(&mut rng, None);
        for v in model.flat_mut() {
            *v *= 2.0; // large enough weights that the feedback path matters
        }
        let truth = curves(&mut rng, batch, length);
        let targets: Vec<f32> = (0..steps * batch).map(|i| truth[i + batch][0]).collect();
        let mut ws: Vec<Workspace> = (0..steps)
            .map(|_| model.workspace(1, batch, Outputs::EveryStep))
            .collect();
        let (mut x, mut y, mut dy) = (
            vec![[0.0f32]; steps * batch],
            vec![[0.0f32]; steps * batch],
            vec![[0.0f32]; steps * batch],
        );
        let loss = |m: &Net,
                    ws: &mut [Workspace],
                    x: &mut [[f32; 1]],
                    y: &mut [[f32; 1]],
                    dy: &mut [[f32; 1]]| {
            closed_loop(m, &truth, warmup, ws, x, y).unwrap();
            mse(
                y.as_flattened(),
                &targets,
                dy.as_flattened_mut(),
                Reduction::Sum,
            )
            .unwrap() as f64
        };
        loss(&model, &mut ws, &mut x, &mut y, &mut dy);
        let mut grad = model.zeros_like();
        closed_loop_backward(&model, &mut grad, warmup, &mut ws, &x, &mut dy).unwrap();
        // Relative error of the whole gradient vector (single f32 differences are noisy).
        let (mut diff, mut norm) = (0.0f64, 0.0f64);
        for i in 0..model.flat().len() {
            let eps = 2e-3f32;
            let mut m = model.clone();
            m.flat_mut()[i] += eps;
            let up = loss(&m, &mut ws, &mut x, &mut y, &mut dy);
            m.flat_mut()[i] -= 2.0 * eps;
            let down = loss(&m, &mut ws, &mut x, &mut y, &mut dy);
            let fd = (up - down) / (2.0 * eps as f64);
            let an = grad.flat()[i] as f64;
            diff += (fd - an) * (fd - an);
            norm += fd * fd;
        }
        let rel = (diff / norm).sqrt();
        eprintln!("closed-loop gradient: relative error {rel:.2e}");
        assert!(rel < 1e-3, "closed-loop gradient off by {rel} (relative)");
    }
}
