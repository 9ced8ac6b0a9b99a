//! No allocation after warm-up (issue 3, acceptance 5): a counting global allocator proves that
//! the host's training loop ([`Trainer::update`]: zero the gradients, forward, loss, backward,
//! clip, optimizer step) and the core's batch-1 inference step allocate nothing once the first
//! step has run.
//!
//! Counting is per thread (a `const`-initialised thread-local, so the allocator itself never
//! allocates), which keeps the test exact while libtest runs other tests on other threads.
//!
//! [`Trainer::update_sharded`] runs its shards on rayon's pool through `rayon::join`, which
//! allocates nothing per update once the pool exists: the test checks (1) that the work each
//! shard does (forward, loss, backward), on whichever thread, allocates nothing, and (2) that the
//! calling thread allocates nothing per update after the first, with 2 and 3 shards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use host::net::{Net, Outputs, Workspace, boxed_zeroed};
use host::train::{Trainer, shard_rows, split};
use tinyrnn::cell::CellKind as Kind;
use tinyrnn::init::uniform01;
use tinyrnn::loss::{Reduction, mse, softmax_cross_entropy};
use tinyrnn::{LstmModel, LstmState, Optimizer, RnnModel, SeededRng, Spec};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the thread-local may already be gone while a thread exits.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const-initialised
// thread-local `Cell` without destructor, which neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread so far.
fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Allocations this thread makes while running `f`.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = allocs();
    let r = f();
    (r, allocs() - before)
}

fn uniform(rng: &mut SeededRng) -> f32 {
    (2.0 * uniform01(rng) - 1.0) as f32
}

#[derive(Clone, Copy)]
enum Loss {
    Ce,
    Mse,
}

/// One batch (or shard) with its workspace and output buffers.
struct Batch<const I: usize, const O: usize> {
    ws: Workspace,
    x: Vec<[f32; I]>,       // (T, B, I)
    y: Vec<[f32; O]>,       // (T, B, O) or (B, O)
    dy: Vec<[f32; O]>,      // like y
    labels: Vec<usize>,     // one per row of y
    targets: Vec<[f32; O]>, // like y
}

fn batch<const I: usize, const O: usize>(
    net: &Net,
    rng: &mut SeededRng,
    steps: usize,
    batch: usize,
    outputs: Outputs,
) -> Batch<I, O> {
    let rows = match outputs {
        Outputs::EveryStep => steps * batch,
        Outputs::LastStep => batch,
    };
    Batch {
        ws: net.workspace(steps, batch, outputs),
        x: (0..steps * batch)
            .map(|_| std::array::from_fn(|_| uniform(rng)))
            .collect(),
        y: vec![[0.0; O]; rows],
        dy: vec![[0.0; O]; rows],
        labels: (0..rows).map(|r| (r * 7 + 3) % O).collect(),
        targets: (0..rows)
            .map(|_| std::array::from_fn(|_| uniform(rng)))
            .collect(),
    }
}

/// Forward, loss (scaled to `total` output rows) and backward over `b`.
fn pass<const I: usize, const O: usize>(
    m: &Net,
    g: &mut Net,
    b: &mut Batch<I, O>,
    loss: Loss,
    total: usize,
) -> anyhow::Result<f32> {
    b.ws.reset_state();
    m.forward(&mut b.ws, &b.x, &mut b.y)?;
    let l = match loss {
        Loss::Ce => softmax_cross_entropy(&b.y, &b.labels, &mut b.dy, Reduction::MeanOver(total))?,
        Loss::Mse => mse(
            b.y.as_flattened(),
            b.targets.as_flattened(),
            b.dy.as_flattened_mut(),
            Reduction::MeanOver(total * O),
        )?,
    };
    m.backward(&mut b.ws, g, &b.x, &b.dy)?;
    Ok(l)
}

/// Runs `updates` whole-batch updates (Adam, clipping) and returns the allocations of each.
fn update_allocs<const I: usize, const O: usize>(
    spec: Spec,
    steps: usize,
    b: usize,
    outputs: Outputs,
    loss: Loss,
    updates: usize,
) -> Vec<u64> {
    let mut rng = tinyrnn::rng(11);
    let mut model = Net::new(spec).unwrap();
    model.init(&mut rng, Some(1.0));
    let mut trainer = Trainer::new(model, Optimizer::adam(1e-3), Some(0.5));
    let mut data = batch::<I, O>(&trainer.model, &mut rng, steps, b, outputs);
    let total = data.y.len();
    (0..updates)
        .map(|_| {
            let (r, n) = counted(|| trainer.update(|m, g| pass(m, g, &mut data, loss, total)));
            r.expect("update");
            n
        })
        .collect()
}

fn assert_quiet_after_first(what: &str, per_update: &[u64]) {
    assert!(
        per_update[1..].iter().all(|&n| n == 0),
        "{what}: allocations per update {per_update:?} (only the first may allocate)"
    );
}

#[test]
fn lstm_training_step_allocates_nothing_after_warm_up() {
    assert_quiet_after_first(
        "LSTM 3-16-4, every step, CE",
        &update_allocs::<3, 4>(
            Spec::new(Kind::Lstm, 3, 16, 4),
            7,
            5,
            Outputs::EveryStep,
            Loss::Ce,
            5,
        ),
    );
    assert_quiet_after_first(
        "LSTM 28-128-10, last step, CE (W1's model)",
        &update_allocs::<28, 10>(
            Spec::new(Kind::Lstm, 28, 128, 10),
            6,
            8,
            Outputs::LastStep,
            Loss::Ce,
            4,
        ),
    );
    assert_quiet_after_first(
        "LSTM 1-32-1, every step, MSE",
        &update_allocs::<1, 1>(
            Spec::new(Kind::Lstm, 1, 32, 1),
            9,
            4,
            Outputs::EveryStep,
            Loss::Mse,
            4,
        ),
    );
}

#[test]
fn rnn_training_step_allocates_nothing_after_warm_up() {
    assert_quiet_after_first(
        "RNN 1-64-1, every step, MSE",
        &update_allocs::<1, 1>(
            Spec::new(Kind::RnnTanh, 1, 64, 1),
            9,
            4,
            Outputs::EveryStep,
            Loss::Mse,
            5,
        ),
    );
    assert_quiet_after_first(
        "RNN 5-8-3, last step, CE",
        &update_allocs::<5, 3>(
            Spec::new(Kind::RnnTanh, 5, 8, 3),
            4,
            3,
            Outputs::LastStep,
            Loss::Ce,
            5,
        ),
    );
}

/// Truncated BPTT as the echo task runs it: the state carried from chunk to chunk (no reset),
/// the gradient handed from one chunk's workspace to the previous one's.
#[test]
fn chunked_bptt_allocates_nothing_after_warm_up() {
    let (steps, b) = (5, 3);
    let mut rng = tinyrnn::rng(3);
    let mut model = Net::new(Spec::new(Kind::Lstm, 2, 8, 2)).unwrap();
    model.init(&mut rng, None);
    let mut trainer = Trainer::new(model, Optimizer::rmsprop(1e-3), Some(1.0));
    let mut first = batch::<2, 2>(&trainer.model, &mut rng, steps, b, Outputs::EveryStep);
    let mut second = batch::<2, 2>(&trainer.model, &mut rng, steps, b, Outputs::EveryStep);
    let mut per_update = Vec::new();
    for _ in 0..4 {
        let (r, n) = counted(|| {
            trainer.update(|m, g| {
                first.ws.reset_state();
                m.forward(&mut first.ws, &first.x, &mut first.y)?;
                second.ws.continue_from(&first.ws);
                m.forward(&mut second.ws, &second.x, &mut second.y)?;
                let mut l = 0.0;
                for part in [&mut first, &mut second] {
                    l += softmax_cross_entropy(
                        &part.y,
                        &part.labels,
                        &mut part.dy,
                        Reduction::MeanOver(2 * steps * b),
                    )?;
                }
                second.ws.clear_carry();
                m.backward_carry(&mut second.ws, g, &second.x, &second.dy, None)?;
                second.ws.pass_carry(&mut first.ws);
                m.backward_carry(&mut first.ws, g, &first.x, &first.dy, None)?;
                Ok(l)
            })
        });
        r.expect("update");
        per_update.push(n);
    }
    assert_quiet_after_first("LSTM, two chained chunks", &per_update);
}

#[test]
fn inference_step_allocates_nothing() {
    // W5a and W5b's models.
    let mut rng = tinyrnn::rng(5);
    let mut a: Box<LstmModel<1, 32, 1>> = boxed_zeroed();
    a.init(&mut rng, None);
    let mut b: Box<LstmModel<28, 128, 10>> = boxed_zeroed();
    b.init(&mut rng, None);
    let mut r: Box<RnnModel<1, 64, 1>> = boxed_zeroed();
    r.init(&mut rng);
    let xb: [f32; 28] = std::array::from_fn(|_| uniform(&mut rng));
    let (mut sa, mut sb, mut hr) = (LstmState::<32>::zero(), LstmState::<128>::zero(), [0.0; 64]);
    let mut sum = 0.0;
    let ((), n) = counted(|| {
        for k in 0..200 {
            let x = [(k as f32 * 0.1).sin()];
            sum += a.step(&x, &mut sa)[0];
            sum += b.step(&xb, &mut sb)[k % 10];
            sum += r.step(&x, &mut hr)[0];
        }
    });
    assert!(sum.is_finite());
    assert_eq!(n, 0, "batch-1 inference steps allocated {n} times");
}

/// `update_sharded`: per-shard work allocates nothing after warm-up; returns what the calling
/// thread allocates per update after the first (the same in every update, else the test fails).
fn sharded_allocs<const I: usize, const O: usize>(
    spec: Spec,
    steps: usize,
    b: usize,
    threads: usize,
) -> u64 {
    let mut rng = tinyrnn::rng(7);
    let mut model = Net::new(spec).unwrap();
    model.init(&mut rng, None);
    let mut trainer = Trainer::new(model, Optimizer::adam(1e-3), Some(1.0));
    let whole = batch::<I, O>(&trainer.model, &mut rng, steps, b, Outputs::EveryStep);
    let mut shards: Vec<Batch<I, O>> = split(b, threads)
        .into_iter()
        .map(|r| {
            let mut s = batch::<I, O>(&trainer.model, &mut rng, steps, r.len(), Outputs::EveryStep);
            shard_rows(&whole.x, b, r.clone(), &mut s.x);
            s
        })
        .collect();
    let total = steps * b;
    let mut caller = Vec::new();
    for update in 0..5 {
        let (r, n) = counted(|| {
            trainer.update_sharded(&mut shards, |m, g, s| {
                let (l, n) = counted(|| pass(m, g, s, Loss::Ce, total));
                // Forward, loss and backward on this thread's shard: nothing after warm-up.
                if update > 0 && n != 0 {
                    return Err(anyhow::anyhow!(
                        "a shard's forward + backward allocated {n} times"
                    ));
                }
                l
            })
        });
        r.expect("sharded update");
        caller.push(n);
    }
    let steady = caller[1];
    assert!(
        caller[1..].iter().all(|&n| n == steady),
        "sharded updates allocate a varying amount: {caller:?}"
    );
    steady
}

#[test]
fn sharded_update_allocates_nothing_after_warm_up() {
    let small = sharded_allocs::<3, 4>(Spec::new(Kind::Lstm, 3, 8, 4), 4, 4, 2);
    let large = sharded_allocs::<12, 4>(Spec::new(Kind::Lstm, 12, 32, 4), 16, 16, 2);
    let three = sharded_allocs::<3, 4>(Spec::new(Kind::Lstm, 3, 8, 4), 4, 6, 3);
    assert_eq!(
        (small, large, three),
        (0, 0, 0),
        "sharded updates allocate on the calling thread (2 shards, 2 shards of a larger model, 3 shards)"
    );
}

/// The counter sees allocations at all (else every test above would pass vacuously).
#[test]
fn counter_counts() {
    let (v, n) = counted(|| vec![1u8; 100]);
    assert_eq!((v.len(), n), (100, 1));
}
