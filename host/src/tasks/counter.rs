//! **counter**: a single LSTM unit learns to count to five.
//!
//! The series is `0 0 0 0 1 0 0 0 0 1 ...` (every 5th element is 1). The data are its five
//! windows of 10 steps, one per shift (phase) of the period, trained as one batch from the zero
//! state; at every step the model predicts whether the *next* element is 1. The model is
//! `LstmModel<1, 1, 1>`: one LSTM unit, its output `h` scaled and biased by the head
//! (`Linear(1 -> 1)`) and squashed by a sigmoid. RMSProp (lr 0.01) until the MSE is below
//! `--target-mse` (1e-5).
//!
//! Steps before the first 1 of a window are not scored: from the zero state, windows at four of
//! the shifts start with the same zeros but need different answers (the period's phase is
//! unknowable until a 1 has been seen), so no model could fit them; scored over every step the
//! MSE could not go below 0.038. From its first 1 on, every window is determined.
//!
//! Afterwards the task prints, per shift and step, the gates, cell and prediction read from the
//! LSTM cache of a forward over the five windows, and a per-count summary that shows the
//! mechanism; both are written as `counter.csv` / `count.csv`, with the training curve
//! (`metrics.csv`, `loss.png`) and the model (`model.safetensors`, head `sigmoid`).

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Result, bail};
use tinyrnn::Spec;
use tinyrnn::cell::CellKind as Kind;
use tinyrnn::loss::{Reduction, mse, sigmoid_backward, sigmoid_forward};

use super::{Common, int8};
use crate::net::{Net, Outputs, Workspace};
use crate::out::{OutDir, num};
use crate::plot;
use crate::train::{self, Ema, OptimizerKind, Trainer, progress, write_rows};

/// A row of metrics.csv: the MSE over the scored steps before update `update` (0-based).
struct LogRow {
    update: u64,
    mse: f32,
    seconds: f64,
}

impl train::Row for LogRow {
    const HEADER: &'static [&'static str] = &["update", "mse", "seconds"];
    fn fields(&self) -> Vec<String> {
        vec![
            self.update.to_string(),
            num(self.mse),
            format!("{:.3}", self.seconds),
        ]
    }
}

/// One 1 every `PERIOD` elements.
pub const PERIOD: usize = 5;
/// Steps per window.
pub const WINDOW: usize = 10;

type Model = Net;

/// The model: LSTM(1 → 1) + Linear(1 → 1).
fn spec() -> Spec {
    Spec::new(Kind::Lstm, 1, 1, 1)
}

/// Largest --max-updates: a hundred million updates of the one-unit model take hours.
const MAX_UPDATES: u64 = 100_000_000;

/// `tinyrnn counter` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CounterArgs {
    /// RMSProp learning rate.
    #[arg(long, default_value_t = 0.01, value_parser = super::positive)]
    pub lr: f32,
    /// Train until the MSE over the scored steps is below this.
    #[arg(long, default_value_t = 1e-5, value_parser = super::positive)]
    pub target_mse: f32,
    /// Give up (an error) after this many updates without reaching --target-mse.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=MAX_UPDATES))]
    pub max_updates: u64,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 5.0, value_parser = super::non_negative)]
    pub clip: f32,
    /// Also quantize the trained model to int8 (calibrated on the five windows it trains on),
    /// run the windows with the integer step and report its MSE beside f32's (summary, int8.csv).
    #[arg(long)]
    pub int8: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The five windows, time-major (`x[t * PERIOD + shift]`), with their targets (the next
/// element) and whether each step is scored (a 1 has been seen in the window by then).
struct Data {
    x: Vec<[f32; 1]>,
    target: Vec<f32>,
    scored: Vec<bool>,
}

/// Element `k` of the series `0 0 0 0 1 0 0 0 0 1 ...`.
fn series(k: usize) -> f32 {
    if k % PERIOD == PERIOD - 1 { 1.0 } else { 0.0 }
}

fn data() -> Data {
    let n = WINDOW * PERIOD;
    let (mut x, mut target, mut scored) = (vec![[0.0f32]; n], vec![0.0f32; n], vec![false; n]);
    for shift in 0..PERIOD {
        let mut seen = false;
        for t in 0..WINDOW {
            let r = t * PERIOD + shift;
            x[r] = [series(shift + t)];
            target[r] = series(shift + t + 1);
            seen |= x[r][0] == 1.0;
            scored[r] = seen;
        }
    }
    Data { x, target, scored }
}

/// Forward over the five windows from the zero state: head outputs `z`, predictions `y`.
fn forward(
    model: &Model,
    ws: &mut Workspace,
    d: &Data,
    z: &mut [[f32; 1]],
    y: &mut [f32],
) -> Result<()> {
    ws.reset_state();
    model.forward(ws, &d.x, z)?;
    sigmoid_forward(z.as_flattened(), y)?;
    Ok(())
}

/// One row of the gate table.
struct Row {
    shift: usize,
    t: usize,
    x: f32,
    target: f32,
    scored: bool,
    forget: f32,
    input: f32,
    candidate: f32,
    output: f32,
    tanh_c: f32,
    h: f32,
    c: f32,
    pred: f32,
    /// Zeros read since the last 1 (0 at a 1), if a 1 has been seen.
    count: Option<usize>,
}

/// Runs the task; returns the summary line.
pub fn run(args: &CounterArgs) -> Result<String> {
    let out = args.common.out_dir("counter", args)?;
    out.finish(train(args, &out))
}

/// Trains the counter in `out`; returns the summary line.
fn train(args: &CounterArgs, out: &OutDir) -> Result<String> {
    let d = data();
    let idx: Vec<usize> = (0..d.x.len()).filter(|&r| d.scored[r]).collect();
    let goal: Vec<f32> = idx.iter().map(|&r| d.target[r]).collect();

    let mut rng = tinyrnn::rng(args.common.seed);
    let mut model = Net::new(spec())?;
    model.init(&mut rng, None);
    let clip = (args.clip > 0.0).then_some(args.clip);
    let mut trainer = Trainer::new(model, OptimizerKind::Rmsprop.build(args.lr, 0.0), clip);
    trainer.set_board(args.common.board(None)?);

    let n = d.x.len();
    let mut ws = trainer.model.workspace(WINDOW, PERIOD, Outputs::EveryStep);
    let (mut z, mut dz) = (vec![[0.0f32]; n], vec![[0.0f32]; n]);
    let (mut y, mut dy) = (vec![0.0f32; n], vec![0.0f32; n]);
    let (mut ys, mut dys) = (vec![0.0f32; idx.len()], vec![0.0f32; idx.len()]);

    let mut bar = progress(args.max_updates, "counter", args.common.quiet);
    let start = Instant::now();
    let mut ema = Ema::default();
    let mut log: Vec<LogRow> = Vec::new();
    let mut converged = None;
    let mut last = f32::NAN;
    let mut before = Net::new(spec())?;
    for update in 0..args.max_updates {
        // The loss `update` returns is that of the parameters before its step: when it is below
        // the target, those parameters (the snapshot, copied in place) are the result.
        before.flat_mut().copy_from_slice(trainer.model.flat());
        let loss = trainer.update(|m, g| {
            forward(m, &mut ws, &d, &mut z, &mut y)?;
            for (s, &r) in ys.iter_mut().zip(&idx) {
                *s = y[r];
            }
            let loss = mse(&ys, &goal, &mut dys, Reduction::Mean)?;
            dy.fill(0.0);
            for (&g, &r) in dys.iter().zip(&idx) {
                dy[r] = g;
            }
            dz.fill([0.0]);
            sigmoid_backward(&y, &dy, dz.as_flattened_mut())?;
            m.backward(&mut ws, g, &d.x, &dz)?;
            Ok(loss)
        })?;
        last = loss;
        let done = loss < args.target_mse;
        if update.is_multiple_of(10) || done {
            log.push(LogRow {
                update,
                mse: loss,
                seconds: start.elapsed().as_secs_f64(),
            });
        }
        if done {
            std::mem::swap(&mut trainer.model, &mut before);
            converged = Some(update);
            break;
        }
        let avg = ema.add(loss as f64);
        bar.inc(1);
        if update.is_multiple_of(500) {
            bar.set_message(format!("MSE {avg:.2e}"));
        }
    }
    bar.finish_and_clear();
    let train_time = start.elapsed().as_secs_f64();
    let Some(updates) = converged else {
        bail!(
            "the MSE is still {last:.3e} after --max-updates {} (target {:.0e}); try another --seed, more --max-updates or a larger --target-mse",
            args.max_updates,
            args.target_mse
        );
    };
    let model = &trainer.model;

    // The gate table: one forward over the five windows, read back from the LSTM cache: per
    // step, (B, 4) gates i, f, g, o, then (B, 1) tanh(c) (H = 1, B = 5).
    forward(model, &mut ws, &d, &mut z, &mut y)?;
    let (hs, cs, cell) = model.cached(&mut ws, 0, 0)?;
    let b = PERIOD;
    let mut rows = Vec::with_capacity(n);
    for shift in 0..PERIOD {
        let mut count = None;
        for t in 0..WINDOW {
            let r = t * PERIOD + shift;
            let gates = &cell[t * 5 * b + 4 * shift..][..4];
            let [i, f, g, o] = [gates[0], gates[1], gates[2], gates[3]];
            count = if d.x[r][0] == 1.0 {
                Some(0)
            } else {
                count.map(|k| k + 1)
            };
            rows.push(Row {
                shift,
                t,
                x: d.x[r][0],
                target: d.target[r],
                scored: d.scored[r],
                forget: f,
                input: i,
                candidate: g,
                output: o,
                tanh_c: cell[t * 5 * b + 4 * b + shift],
                h: hs[r],
                c: cs[r],
                pred: y[r],
                count,
            });
        }
    }
    for (s, &r) in ys.iter_mut().zip(&idx) {
        *s = y[r];
    }
    let final_mse = mse(&ys, &goal, &mut dys, Reduction::Mean)?;
    let table = render(&rows, model);
    println!("{table}");
    let mut int8_note = String::new();
    if args.int8 {
        // The five windows, each a sequence of its own from the zero state.
        let windows: Vec<Vec<f32>> = (0..PERIOD)
            .map(|shift| (0..WINDOW).map(|t| d.x[t * PERIOD + shift][0]).collect())
            .collect();
        let q = int8::quantize(model, windows.iter().map(Vec::as_slice))?;
        let mut zq = vec![0.0f32; WINDOW * PERIOD]; // (T, B) head outputs
        for (shift, w) in windows.iter().enumerate() {
            for (t, z) in q
                .model
                .run(w, &mut q.model.zero_state())?
                .iter()
                .enumerate()
            {
                zq[t * PERIOD + shift] = *z;
            }
        }
        let mut yq = vec![0.0f32; zq.len()];
        sigmoid_forward(&zq, &mut yq)?;
        let ysq: Vec<f32> = idx.iter().map(|&r| yq[r]).collect();
        let mse_q = mse(&ysq, &goal, &mut dys, Reduction::Mean)?;
        int8::write(out, &q, "mse", final_mse.into(), mse_q.into())?;
        int8_note = format!("; int8 MSE {mse_q:.3e} (calibrated on the 5 training windows)");
    }

    out.csv(
        "counter.csv",
        &[
            "shift",
            "t",
            "input",
            "target",
            "scored",
            "forget",
            "input_gate",
            "candidate",
            "output_gate",
            "tanh_cell",
            "hidden",
            "cell",
            "prediction",
        ],
        rows.iter().map(|r| {
            [
                r.shift.to_string(),
                r.t.to_string(),
                num(r.x),
                num(r.target),
                (r.scored as u8).to_string(),
                num(r.forget),
                num(r.input),
                num(r.candidate),
                num(r.output),
                num(r.tanh_c),
                num(r.h),
                num(r.c),
                num(r.pred),
            ]
        }),
    )?;
    out.csv(
        "count.csv",
        &[
            "zeros_since_1",
            "forget",
            "input_gate",
            "candidate",
            "written",
            "output_gate",
            "cell",
            "hidden",
            "prediction",
            "target",
        ],
        by_count(&rows).iter().map(|s| {
            [
                s.count.to_string(),
                num(s.forget),
                num(s.input),
                num(s.candidate),
                num(s.input * s.candidate),
                num(s.output),
                num(s.c),
                num(s.h),
                num(s.pred),
                num(s.target),
            ]
        }),
    )?;
    write_rows(out, "metrics.csv", &log)?;
    out.png("loss.png", |p| {
        plot::draw_loss(
            p,
            "counter: training MSE (scored steps)",
            "MSE",
            log.iter()
                .map(|r| (r.update as f64, f64::from(r.mse)))
                .collect(),
        )
    })?;
    model.save(
        &out.path("model.safetensors"),
        &[],
        &[("task", "counter".into()), ("head", "sigmoid".into())],
        false,
    )?;
    Ok(format!(
        "counter: 1-unit LSTM reached MSE {final_mse:.3e} (< {:.0e}) over the {} scored steps after {updates} updates in {train_time:.2} s (seed {}){int8_note}; wrote {}",
        args.target_mse,
        idx.len(),
        args.common.seed,
        out.path("").display()
    ))
}

/// Averages of the scored rows by the number of zeros read since the last 1.
struct CountStats {
    count: usize,
    forget: f32,
    input: f32,
    candidate: f32,
    output: f32,
    c: f32,
    h: f32,
    pred: f32,
    target: f32,
}

fn by_count(rows: &[Row]) -> Vec<CountStats> {
    (0..PERIOD)
        .map(|k| {
            let sel: Vec<&Row> = rows.iter().filter(|r| r.count == Some(k)).collect();
            let mean = |f: fn(&Row) -> f32| {
                sel.iter().map(|r| f(r) as f64).sum::<f64>() as f32 / sel.len().max(1) as f32
            };
            CountStats {
                count: k,
                forget: mean(|r| r.forget),
                input: mean(|r| r.input),
                candidate: mean(|r| r.candidate),
                output: mean(|r| r.output),
                c: mean(|r| r.c),
                h: mean(|r| r.h),
                pred: mean(|r| r.pred),
                target: mean(|r| r.target),
            }
        })
        .collect()
}

/// The printed tables and the explanation.
fn render(rows: &[Row], model: &Model) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Gate table of the trained 1-unit LSTM, one block per shift of the period (x: input, next: target;\n\
         * marks steps before the window's first 1, which are not scored: the phase is unknowable there)."
    );
    for shift in 0..PERIOD {
        let block: Vec<&Row> = rows.iter().filter(|r| r.shift == shift).collect();
        let input: String = block
            .iter()
            .map(|r| if r.x == 1.0 { '1' } else { '0' })
            .collect();
        let _ = writeln!(s, "\nshift {shift}: input {input}");
        let _ = writeln!(
            s,
            "  t x next   forget  input   cand  output tanh(c)  hidden     cell    pred"
        );
        for r in block {
            let _ = writeln!(
                s,
                "{:>3} {} {:>3}{} {:>7.4} {:>6.4} {:>6.3} {:>7.4} {:>7.4} {:>7.4} {:>8.4} {:>7.5}",
                r.t,
                r.x as u8,
                r.target as u8,
                if r.scored { ' ' } else { '*' },
                r.forget,
                r.input,
                r.candidate,
                r.output,
                r.tanh_c,
                r.h,
                r.c,
                r.pred
            );
        }
    }
    let stats = by_count(rows);
    let _ = writeln!(
        s,
        "\nThe same steps grouped by the number of zeros read since the last 1 (means over all scored steps):"
    );
    let _ = writeln!(
        s,
        "  zeros  forget  input   cand  written  output     cell  hidden    pred  next"
    );
    for k in &stats {
        let _ = writeln!(
            s,
            "{:>7} {:>7.4} {:>6.4} {:>6.3} {:>8.4} {:>7.4} {:>8.4} {:>7.4} {:>7.5} {:>5}",
            k.count,
            k.forget,
            k.input,
            k.candidate,
            k.input * k.candidate,
            k.output,
            k.c,
            k.h,
            k.pred,
            k.target as u8
        );
    }
    s.push_str(&explain(&stats, model));
    s
}

/// A short reading of the mechanism, from the numbers (so it stays true for any seed).
fn explain(stats: &[CountStats], model: &Model) -> String {
    let reset = &stats[0];
    let (first, fourth) = (&stats[1], &stats[PERIOD - 1]);
    let path = |f: fn(&CountStats) -> f32| {
        stats
            .iter()
            .map(|k| format!("{:.3}", f(k)))
            .collect::<Vec<_>>()
            .join(" -> ")
    };
    let trend = |f: fn(&CountStats) -> f32| {
        if stats.windows(2).all(|w| f(&w[1]) > f(&w[0])) {
            "rises steadily"
        } else if stats.windows(2).all(|w| f(&w[1]) < f(&w[0])) {
            "falls steadily"
        } else {
            "moves"
        }
    };
    let head = &model.flat()[model.spec().head_offset()..];
    let (w, b) = (head[0], head[1]);
    let threshold = -b / w;
    let side = if w > 0.0 { '>' } else { '<' };
    // The non-firing count whose h is nearest the threshold.
    let near = stats[..PERIOD - 1]
        .iter()
        .max_by(|a, b| (w * a.h).total_cmp(&(w * b.h)))
        .unwrap_or(reset);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nHow it counts. A 1 resets the unit: the forget gate closes (f = {:.3}) and the input writes \
         i*g = {:.3}, so c = {:.3} and h = {:.3} whatever came before (which is why all five shifts show \
         the same rows after their first 1).",
        reset.forget,
        reset.input * reset.candidate,
        reset.c,
        reset.h
    );
    let _ = writeln!(
        s,
        "Each 0 then advances the state one notch: after 0, 1, 2, 3, 4 zeros c = {} and h = {} (h {}). \
         The gates read h(t-1), so each notch depends on the count so far: from the 1st to the 4th zero \
         the forget gate goes {:.3} -> {:.3}, the write i*g {:.3} -> {:.3}, the output gate {:.3} -> {:.3}.",
        path(|k| k.c),
        path(|k| k.h),
        trend(|k| k.h),
        first.forget,
        fourth.forget,
        first.input * first.candidate,
        fourth.input * fourth.candidate,
        first.output,
        fourth.output
    );
    let _ = writeln!(
        s,
        "The head, sigmoid({w:.2} h {} {:.2}), fires only when h {side} {threshold:.3}: after the 4th zero \
         (h = {:.3}, prediction {:.4}) and never before (nearest: h = {:.3} after {} zeros, {:.4}). So the \
         model says \"1 next\" exactly one step before every 1. Before a window's first 1 (rows marked *) \
         there is nothing to count from, and those steps are not scored.",
        if b < 0.0 { '-' } else { '+' },
        b.abs(),
        fourth.h,
        fourth.pred,
        near.h,
        near.count,
        near.pred
    );
    s
}
