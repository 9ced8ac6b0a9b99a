//! The benchmark workloads of `shared/WORKLOADS.md` as reusable train steps, shared by the
//! criterion benches in this directory.
//!
//! A "train step" is exactly what WORKLOADS.md defines: zero the gradient buffer, forward over the
//! whole sequence from the zero state, the head (every step or last step only), the loss, backward
//! through time, and one plain SGD update `p -= lr · g` of every parameter over the flat buffers
//! (no clipping, no optimizer state).

use tinyrnn::init::{fill_uniform, uniform01};
use tinyrnn::loss::{self, Reduction};
use tinyrnn::{Cache, CellKind, LstmModel, Model, Outputs, Params, Spec, rng};

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

/// Everything one train step of a run-time model ([`Spec`]: any cell, stacked, bidirectional)
/// needs, allocated once: the core's [`Model`] over one flat parameter buffer.
pub struct ModelTrain<const O: usize> {
    /// The model's shape.
    pub spec: Spec,
    /// The flat parameter buffer, PyTorch's `state_dict()` order.
    pub params: Vec<f32>,
    grad: Vec<f32>,
    steps: usize,
    batch: usize,
    head: Head,
    loss: Loss,
    lr: f32,
    x: Vec<f32>,        // (T, B, I)
    h: Vec<f32>,        // (L·D, B, H)
    c: Vec<f32>,        // (L·D, B, H) for an LSTM, empty otherwise
    cache: Vec<f32>,    // Cache::len
    y: Vec<[f32; O]>,   // (T, B, O) or (B, O)
    dy: Vec<[f32; O]>,  // like y
    targets: Vec<f32>,  // like y, flattened (MSE)
    labels: Vec<usize>, // y's rows (cross-entropy)
    dh_carry: Vec<f32>, // like h
    dc_carry: Vec<f32>, // like c
}

impl<const O: usize> ModelTrain<O> {
    /// A model of shape `spec` (its `output` must be `O`) with PyTorch's initialisation (every
    /// recurrent tensor from U(-1/√H, 1/√H), the head from U(-1/√(D·H), 1/√(D·H))) and random
    /// data for `steps` x `batch`.
    pub fn new(spec: Spec, steps: usize, batch: usize, head: Head, loss: Loss, seed: u64) -> Self {
        assert_eq!(spec.output, O, "the spec's output size is the type's O");
        let mut r = rng(seed);
        let mut params = vec![0.0; spec.param_len()];
        let split = spec.head_offset();
        let k = 1.0 / (spec.hidden as f32).sqrt();
        fill_uniform(&mut params[..split], -k, k, &mut r);
        let k = 1.0 / (spec.width() as f32).sqrt();
        fill_uniform(&mut params[split..], -k, k, &mut r);
        let n_out = head_rows(steps, batch, head).len();
        let mut x = vec![0.0; steps * batch * spec.input];
        fill_uniform(&mut x, -1.0, 1.0, &mut r);
        let state = spec.state_len(batch);
        let c = if spec.cell.has_c() { state } else { 0 };
        Self {
            spec,
            grad: vec![0.0; params.len()],
            params,
            steps,
            batch,
            head,
            loss,
            lr: 1e-3,
            x,
            h: vec![0.0; state],
            c: vec![0.0; c],
            cache: vec![0.0; Cache::<f32>::len(&spec, steps, batch)],
            y: vec![[0.0; O]; n_out],
            dy: vec![[0.0; O]; n_out],
            targets: rows::<1>(&mut r, n_out * O, -1.0, 1.0)
                .into_iter()
                .map(|v| v[0])
                .collect(),
            labels: (0..n_out)
                .map(|_| (uniform01(&mut r) * O as f64) as usize % O)
                .collect(),
            dh_carry: vec![0.0; state],
            dc_carry: vec![0.0; c],
        }
    }

    /// FLOPs of one train step as WORKLOADS.md counts them ([`spec_flops`]).
    pub fn flops(&self) -> f64 {
        spec_flops(&self.spec, self.steps, self.batch)
    }

    /// One train step; returns the loss.
    pub fn step(&mut self) -> f32 {
        self.grad.fill(0.0);
        self.h.fill(0.0);
        self.c.fill(0.0);
        let outputs = match self.head {
            Head::EveryStep => Outputs::EveryStep,
            Head::LastStep => Outputs::LastStep,
        };
        let mut cache =
            Cache::new(&self.spec, &mut self.cache, self.steps, self.batch, outputs).unwrap();
        let m = Model::new(self.spec, &self.params).unwrap();
        let y = self.y.as_flattened_mut();
        m.forward(&self.x, &mut self.h, &mut self.c, &mut cache, y)
            .unwrap();
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
        self.dh_carry.fill(0.0);
        self.dc_carry.fill(0.0);
        m.backward(
            &mut self.grad,
            &self.x,
            &mut cache,
            self.dy.as_flattened(),
            &mut self.dh_carry,
            &mut self.dc_carry,
            None,
        )
        .unwrap();
        sgd(&mut self.params, &self.grad, self.lr);
        l
    }
}

/// W1 mnist: LSTM(28 → 128), T 28, B 128, Linear(128 → 10) on the last step, softmax CE.
pub fn w1() -> ModelTrain<10> {
    w1_variant(Spec::new(CellKind::Lstm, 28, 128, 10))
}
/// W1g mnist-gru: GRU(28 → 128), otherwise W1.
pub fn w1g() -> ModelTrain<10> {
    w1_variant(Spec::new(CellKind::Gru, 28, 128, 10))
}
/// W1s mnist-2layer: LSTM(28 → 128) x 2 layers (the second reads H), otherwise W1.
pub fn w1s() -> ModelTrain<10> {
    w1_variant(Spec {
        layers: 2,
        ..Spec::new(CellKind::Lstm, 28, 128, 10)
    })
}
/// W1b mnist-bidirectional: LSTM(28 → 128) in both directions, the head on 2H, otherwise W1.
pub fn w1b() -> ModelTrain<10> {
    w1_variant(Spec {
        bidirectional: true,
        ..Spec::new(CellKind::Lstm, 28, 128, 10)
    })
}
fn w1_variant(spec: Spec) -> ModelTrain<10> {
    ModelTrain::new(spec, 28, 128, Head::LastStep, Loss::CrossEntropy, 1)
}
/// W2 sine: LSTM(1 → 32), T 100, B 64, Linear(32 → 1) every step, MSE.
pub fn w2() -> ModelTrain<1> {
    ModelTrain::new(
        Spec::new(CellKind::Lstm, 1, 32, 1),
        100,
        64,
        Head::EveryStep,
        Loss::Mse,
        2,
    )
}
/// W2r sine-rnn: tanh RNN(1 → 64), T 100, B 64, Linear(64 → 1) every step, MSE.
pub fn w2r() -> ModelTrain<1> {
    ModelTrain::new(
        Spec::new(CellKind::RnnTanh, 1, 64, 1),
        100,
        64,
        Head::EveryStep,
        Loss::Mse,
        3,
    )
}
/// W3 memory: LSTM(10 → 64), T 71, B 32, Linear(64 → 10) every step, softmax CE.
pub fn w3() -> ModelTrain<10> {
    ModelTrain::new(
        Spec::new(CellKind::Lstm, 10, 64, 10),
        71,
        32,
        Head::EveryStep,
        Loss::CrossEntropy,
        4,
    )
}
/// W4 echo: LSTM(1 → 4), T 15, B 5, Linear(4 → 2) every step, softmax CE.
pub fn w4() -> ModelTrain<2> {
    ModelTrain::new(
        Spec::new(CellKind::Lstm, 1, 4, 2),
        15,
        5,
        Head::EveryStep,
        Loss::CrossEntropy,
        5,
    )
}
/// W6 scaling: LSTM(H → H), T 32, B 32, Linear(H → 1) on the last step, MSE.
pub fn w6(h: usize) -> ModelTrain<1> {
    ModelTrain::new(
        Spec::new(CellKind::Lstm, h, h, 1),
        32,
        32,
        Head::LastStep,
        Loss::Mse,
        6 + h as u64,
    )
}

/// FLOPs of one train step as WORKLOADS.md counts them: 3 x the forward matrix products (for the
/// LSTM, 3 · 2 · 4H(I + H) per row and step): every layer and direction, G·H rows over I_k + H
/// columns (I_k = I for the first layer, D·H above).
pub fn spec_flops(spec: &Spec, t: usize, b: usize) -> f64 {
    let per_row: usize = (0..spec.layers)
        .map(|k| {
            spec.directions()
                * spec.cell.gates()
                * spec.hidden
                * (spec.layer_input(k) + spec.hidden)
        })
        .sum();
    3.0 * (2 * per_row * t * b) as f64
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_flops_follow_workloads_md() {
        let w1 = Spec::new(CellKind::Lstm, 28, 128, 10);
        let lstm = |i: usize, h: usize| 3.0 * 2.0 * (4 * h * (i + h)) as f64;
        assert_eq!(spec_flops(&w1, 28, 128), lstm(28, 128) * 28.0 * 128.0);
        let gru = Spec::new(CellKind::Gru, 28, 128, 10);
        assert_eq!(
            spec_flops(&gru, 1, 1),
            3.0 * 2.0 * (3 * 128 * (28 + 128)) as f64
        );
        let two = Spec { layers: 2, ..w1 };
        let second = 3.0 * 2.0 * (4 * 128 * (128 + 128)) as f64;
        assert_eq!(spec_flops(&two, 1, 1), lstm(28, 128) + second);
    }

    #[test]
    fn w1_variants_train() {
        for mut t in [w1(), w1g(), w1s(), w1b()] {
            let first = t.step();
            // Random labels over 10 classes: about ln 10 at PyTorch's initialisation.
            assert!(
                (first - 10f32.ln()).abs() < 0.5,
                "{:?}: loss {first}",
                t.spec.cell
            );
            assert!(t.step().is_finite());
        }
    }
}
