//! The benchmark workloads of `shared/WORKLOADS.md` as reusable train steps, shared by the
//! criterion benches in this directory.
//!
//! A "train step" is exactly what WORKLOADS.md defines: zero the gradient buffer, forward over the
//! whole sequence from the zero state, the head (every step or last step only), the loss, backward
//! through time, and one plain SGD update `p -= lr · g` of every parameter over the flat buffers
//! (no clipping, no optimizer state).

use tinyrnn::init::uniform01;
use tinyrnn::loss::{self, Reduction};
use tinyrnn::{LstmCache, LstmModel, Params, RnnCache, RnnModel, rng};

/// A zeroed parameter buffer on the heap (large models would overflow a thread's stack if built
/// by value first).
pub fn boxed_zeroed<P: Params<f32>>() -> Box<P> {
    let _ = P::LEN;
    // SAFETY: `Params` guarantees that `P` is a `repr(C)` struct of `f32` arrays only, for which
    // all-zero bits are a valid value (0.0 everywhere).
    unsafe { Box::<P>::new_zeroed().assume_init() }
}

/// Where the head reads the recurrent layer's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// At every time step: T·B head rows.
    EveryStep,
    /// At the last step only: B head rows.
    LastStep,
}

/// The loss on the head's outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Mean squared error against random targets.
    Mse,
    /// Softmax cross-entropy against random class labels.
    CrossEntropy,
}

/// Everything one LSTM-model train step needs, allocated once.
pub struct LstmTrain<const I: usize, const H: usize, const O: usize> {
    /// The model being trained.
    pub model: Box<LstmModel<I, H, O>>,
    grad: Box<LstmModel<I, H, O>>,
    steps: usize,
    batch: usize,
    head: Head,
    loss: Loss,
    lr: f32,
    x: Vec<[f32; I]>,
    h: Vec<[f32; H]>,
    c: Vec<[f32; H]>,
    cache: Vec<f32>,
    y: Vec<[f32; O]>,
    dy: Vec<[f32; O]>,
    targets: Vec<f32>,
    labels: Vec<usize>,
    dh: Vec<[f32; H]>,
    dh_carry: Vec<[f32; H]>,
    dc_carry: Vec<[f32; H]>,
}

fn rows<const N: usize>(r: &mut tinyrnn::SeededRng, n: usize, lo: f32, hi: f32) -> Vec<[f32; N]> {
    (0..n)
        .map(|_| core::array::from_fn(|_| lo + (hi - lo) * uniform01(r) as f32))
        .collect()
}

fn head_rows(steps: usize, batch: usize, head: Head) -> core::ops::Range<usize> {
    match head {
        Head::EveryStep => 0..steps * batch,
        Head::LastStep => steps.saturating_sub(1) * batch..steps * batch,
    }
}

fn sgd(p: &mut [f32], g: &[f32], lr: f32) {
    for (p, &g) in p.iter_mut().zip(g) {
        *p -= lr * g;
    }
}

impl<const I: usize, const H: usize, const O: usize> LstmTrain<I, H, O> {
    /// A model with PyTorch's initialisation and random data for `steps` x `batch`.
    pub fn new(steps: usize, batch: usize, head: Head, loss: Loss, seed: u64) -> Self {
        let mut r = rng(seed);
        let mut model = boxed_zeroed::<LstmModel<I, H, O>>();
        model.init(&mut r, Some(1.0));
        let n_out = head_rows(steps, batch, head).len();
        Self {
            model,
            grad: boxed_zeroed(),
            steps,
            batch,
            head,
            loss,
            lr: 1e-3,
            x: rows(&mut r, steps * batch, -1.0, 1.0),
            h: vec![[0.0; H]; batch],
            c: vec![[0.0; H]; batch],
            cache: vec![0.0; LstmCache::<H>::len(steps, batch)],
            y: vec![[0.0; O]; n_out],
            dy: vec![[0.0; O]; n_out],
            targets: rows::<1>(&mut r, n_out * O, -1.0, 1.0)
                .into_iter()
                .map(|v| v[0])
                .collect(),
            labels: (0..n_out)
                .map(|_| (uniform01(&mut r) * O as f64) as usize % O)
                .collect(),
            dh: vec![[0.0; H]; steps * batch],
            dh_carry: vec![[0.0; H]; batch],
            dc_carry: vec![[0.0; H]; batch],
        }
    }

    /// The LSTM layer's forward pass alone (no head, loss or backward); returns one output.
    pub fn forward_only(&mut self) -> f32 {
        self.h.fill([0.0; H]);
        self.c.fill([0.0; H]);
        let mut cache = LstmCache::<H>::new(&mut self.cache, self.steps, self.batch).unwrap();
        self.model
            .lstm
            .forward(&self.x, &mut self.h, &mut self.c, &mut cache)
            .unwrap();
        self.h[0][0]
    }

    /// One train step; returns the loss.
    pub fn step(&mut self) -> f32 {
        self.grad.fill_zero();
        self.h.fill([0.0; H]);
        self.c.fill([0.0; H]);
        let mut cache = LstmCache::<H>::new(&mut self.cache, self.steps, self.batch).unwrap();
        let m = &mut *self.model;
        m.lstm
            .forward(&self.x, &mut self.h, &mut self.c, &mut cache)
            .unwrap();
        let r = head_rows(self.steps, self.batch, self.head);
        m.head.forward(&cache.h()[r.clone()], &mut self.y).unwrap();
        let l = match self.loss {
            Loss::Mse => loss::mse(
                self.y.as_flattened(),
                &self.targets,
                self.dy.as_flattened_mut(),
                Reduction::Mean,
            ),
            Loss::CrossEntropy => {
                loss::softmax_cross_entropy(&self.y, &self.labels, &mut self.dy, Reduction::Mean)
            }
        }
        .unwrap();
        self.dh[..r.start].fill([0.0; H]);
        self.dh[r.clone()].fill([0.0; H]);
        m.head
            .backward(
                &mut self.grad.head,
                &cache.h()[r.clone()],
                &self.dy,
                Some(&mut self.dh[r]),
            )
            .unwrap();
        self.dh_carry.fill([0.0; H]);
        self.dc_carry.fill([0.0; H]);
        m.lstm
            .backward(
                &mut self.grad.lstm,
                &self.x,
                &mut cache,
                &self.dh,
                &mut self.dh_carry,
                &mut self.dc_carry,
                None,
            )
            .unwrap();
        sgd(m.as_flat_mut(), self.grad.as_flat(), self.lr);
        l
    }
}

/// Everything one tanh-RNN-model train step needs, allocated once.
pub struct RnnTrain<const I: usize, const H: usize, const O: usize> {
    /// The model being trained.
    pub model: Box<RnnModel<I, H, O>>,
    grad: Box<RnnModel<I, H, O>>,
    steps: usize,
    batch: usize,
    lr: f32,
    x: Vec<[f32; I]>,
    h: Vec<[f32; H]>,
    cache: Vec<f32>,
    y: Vec<[f32; O]>,
    dy: Vec<[f32; O]>,
    targets: Vec<f32>,
    dh: Vec<[f32; H]>,
    dh_carry: Vec<[f32; H]>,
}

impl<const I: usize, const H: usize, const O: usize> RnnTrain<I, H, O> {
    /// A model with PyTorch's initialisation, head on every step, MSE against random targets.
    pub fn new(steps: usize, batch: usize, seed: u64) -> Self {
        let mut r = rng(seed);
        let mut model = boxed_zeroed::<RnnModel<I, H, O>>();
        model.init(&mut r);
        let n = steps * batch;
        Self {
            model,
            grad: boxed_zeroed(),
            steps,
            batch,
            lr: 1e-3,
            x: rows(&mut r, n, -1.0, 1.0),
            h: vec![[0.0; H]; batch],
            cache: vec![0.0; RnnCache::<H>::len(steps, batch)],
            y: vec![[0.0; O]; n],
            dy: vec![[0.0; O]; n],
            targets: rows::<1>(&mut r, n * O, -1.0, 1.0)
                .into_iter()
                .map(|v| v[0])
                .collect(),
            dh: vec![[0.0; H]; n],
            dh_carry: vec![[0.0; H]; batch],
        }
    }

    /// One train step; returns the loss.
    pub fn step(&mut self) -> f32 {
        self.grad.fill_zero();
        self.h.fill([0.0; H]);
        let mut cache = RnnCache::<H>::new(&mut self.cache, self.steps, self.batch).unwrap();
        let m = &mut *self.model;
        m.rnn.forward(&self.x, &mut self.h, &mut cache).unwrap();
        m.head.forward(cache.h(), &mut self.y).unwrap();
        let l = loss::mse(
            self.y.as_flattened(),
            &self.targets,
            self.dy.as_flattened_mut(),
            Reduction::Mean,
        )
        .unwrap();
        self.dh.fill([0.0; H]);
        m.head
            .backward(&mut self.grad.head, cache.h(), &self.dy, Some(&mut self.dh))
            .unwrap();
        self.dh_carry.fill([0.0; H]);
        m.rnn
            .backward(
                &mut self.grad.rnn,
                &self.x,
                &mut cache,
                &self.dh,
                &mut self.dh_carry,
                None,
            )
            .unwrap();
        sgd(m.as_flat_mut(), self.grad.as_flat(), self.lr);
        l
    }
}

/// W1 mnist: LSTM(28 → 128), T 28, B 128, Linear(128 → 10) on the last step, softmax CE.
pub fn w1() -> LstmTrain<28, 128, 10> {
    LstmTrain::new(28, 128, Head::LastStep, Loss::CrossEntropy, 1)
}
/// W2 sine: LSTM(1 → 32), T 100, B 64, Linear(32 → 1) every step, MSE.
pub fn w2() -> LstmTrain<1, 32, 1> {
    LstmTrain::new(100, 64, Head::EveryStep, Loss::Mse, 2)
}
/// W2r sine-rnn: tanh RNN(1 → 64), T 100, B 64, Linear(64 → 1) every step, MSE.
pub fn w2r() -> RnnTrain<1, 64, 1> {
    RnnTrain::new(100, 64, 3)
}
/// W3 memory: LSTM(10 → 64), T 71, B 32, Linear(64 → 10) every step, softmax CE.
pub fn w3() -> LstmTrain<10, 64, 10> {
    LstmTrain::new(71, 32, Head::EveryStep, Loss::CrossEntropy, 4)
}
/// W4 echo: LSTM(1 → 4), T 15, B 5, Linear(4 → 2) every step, softmax CE.
pub fn w4() -> LstmTrain<1, 4, 2> {
    LstmTrain::new(15, 5, Head::EveryStep, Loss::CrossEntropy, 5)
}
/// W6 scaling: LSTM(H → H), T 32, B 32, Linear(H → 1) on the last step, MSE.
pub fn w6<const H: usize>() -> LstmTrain<H, H, 1> {
    LstmTrain::new(32, 32, Head::LastStep, Loss::Mse, 6 + H as u64)
}

/// FLOPs of one train step as WORKLOADS.md counts them: 3 x the forward matrix products.
pub const fn lstm_flops(i: usize, h: usize, t: usize, b: usize) -> f64 {
    3.0 * (2 * 4 * h * (i + h) * t * b) as f64
}

/// The same count for the tanh RNN.
pub const fn rnn_flops(i: usize, h: usize, t: usize, b: usize) -> f64 {
    3.0 * (2 * h * (i + h) * t * b) as f64
}

/// A model for the batch-1 inference workloads (W5a: `LstmModel<1, 32, 1>`, W5b:
/// `LstmModel<28, 128, 10>`), PyTorch-initialised, with a random input.
pub fn step_model<const I: usize, const H: usize, const O: usize>(
    seed: u64,
) -> (Box<LstmModel<I, H, O>>, [f32; I]) {
    let mut r = rng(seed);
    let mut model = boxed_zeroed::<LstmModel<I, H, O>>();
    model.init(&mut r, Some(1.0));
    let x = rows::<I>(&mut r, 1, -1.0, 1.0)[0];
    (model, x)
}
