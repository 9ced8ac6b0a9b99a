//! The fixed computation behind the dependent-crate check, shared by `dependent-check` (built
//! outside the workspace with no RUSTFLAGS: `embedded/dependent-check/run.sh`) and
//! `tests/lane_width.rs` (built inside the workspace), which both compare its hash with
//! [`EXPECTED`]: so a crate that depends on `tinyrnn` gets the workspace's bits.
//!
//! [`fingerprint`]: `tinyrnn::Model` forward and backward (outputs, final state, every gradient,
//! dx, the carried state gradient) of an LSTM and a GRU over shapes that reach the kernels'
//! tails and tiles, plus batch-1 steps (the LSTM step at H = 32 and H = 20, a 3-output head),
//! all with the default (SIMD) kernels, hashed bit for bit (FNV-1a over the f32 bit patterns).
//! [`w1_step`]: one W1 train step (LSTM I28 H128 T28 B128, Linear(H→10) on the last step,
//! softmax cross-entropy, SGD), to time.
//!
//! Inputs come from an integer generator, not from `sin`/`cos`, so no libm result enters.

use tinyrnn::cell::CellKind;
use tinyrnn::loss::{Reduction, softmax_cross_entropy};
use tinyrnn::{Cache, Model, Outputs, Spec};

/// The hash of [`fingerprint`] on every x86-64 CPU with AVX2 + FMA (8 or 16 lanes alike), with
/// or without `-C target-cpu`. Regenerate (only if the arithmetic is meant to change) with
/// `embedded/dependent-check/run.sh --print`.
pub const EXPECTED: u64 = 0xfc50_1077_e628_3b81;

/// `n` values in [-scale, scale) from `seed` (xorshift64, exact in f32).
pub fn vals(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// FNV-1a, 64 bits, over the bit patterns of `v` (little-endian bytes).
pub fn fnv1a(mut h: u64, v: &[f32]) -> u64 {
    for x in v {
        for b in x.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// FNV-1a's offset basis.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Forward and backward of one model over `t` steps of `b` sequences: everything they produce,
/// then (if `step`) three batch-1 steps of the first sequence.
fn model_run(spec: Spec, t: usize, b: usize, outputs: Outputs, seed: u64, step: bool) -> Vec<f32> {
    let scale = 1.5 / (spec.hidden as f32).sqrt();
    let params = vals(spec.param_len(), seed, scale);
    let model = Model::new(spec, &params).expect("model");
    let x = vals(t * b * spec.input, seed + 1, 1.0);
    let lstm = spec.cell == CellKind::Lstm;
    let mut h = vals(spec.state_len(b), seed + 2, 0.5);
    let mut c = if lstm {
        vals(spec.state_len(b), seed + 3, 0.5)
    } else {
        Vec::new()
    };
    let mut buf = vec![0.0; Cache::<f32>::len(&spec, t, b)];
    let mut cache = Cache::new(&spec, &mut buf, t, b, outputs).expect("cache");
    let rows = cache.output_rows();
    let mut y = vec![0.0; rows * spec.output];
    model
        .forward(&x, &mut h, &mut c, &mut cache, &mut y)
        .expect("forward");
    let dy = vals(y.len(), seed + 4, 1.0);
    let mut grad = vec![0.0; spec.param_len()];
    let mut dx = vec![0.0; x.len()];
    let mut dh = vals(h.len(), seed + 5, 1.0);
    let mut dc = if lstm {
        vals(c.len(), seed + 6, 1.0)
    } else {
        Vec::new()
    };
    let mut out = y;
    out.extend(&h);
    out.extend(&c);
    model
        .backward(
            &mut grad,
            &x,
            &mut cache,
            &dy,
            &mut dh,
            &mut dc,
            Some(&mut dx),
        )
        .expect("backward");
    out.extend(grad);
    out.extend(dx);
    out.extend(dh);
    out.extend(dc);
    if step {
        let hs = spec.hidden;
        let (mut h1, mut c1) = (
            h[..hs].to_vec(),
            if lstm { c[..hs].to_vec() } else { Vec::new() },
        );
        let mut scratch = vec![0.0; model.step_scratch_len()];
        let mut y1 = vec![0.0; spec.output];
        for k in 0..3 {
            let xk = &x[k * b * spec.input..][..spec.input];
            model
                .step(xk, &mut h1, &mut c1, &mut scratch, &mut y1)
                .expect("step");
            out.extend(&y1);
            out.extend(&h1);
            out.extend(&c1);
        }
    }
    out
}

/// The hash of every result of the fixed runs (see the module doc) with the kernels the process
/// uses now (`tinyrnn::kernels::allow_avx512` chooses 8 or 16 lanes).
pub fn fingerprint() -> u64 {
    let runs = [
        // W1's layer shape, a batch that is no multiple of the row tiles (6, 12).
        (
            Spec::new(CellKind::Lstm, 28, 128, 10),
            5,
            13,
            Outputs::LastStep,
            false,
        ),
        // Units that end in a partial vector; every-step outputs; the batch-1 step's tails.
        (
            Spec::new(CellKind::Lstm, 5, 20, 3),
            4,
            7,
            Outputs::EveryStep,
            true,
        ),
        // The batch-1 step's full blocks (W5a's shape).
        (
            Spec::new(CellKind::Lstm, 1, 32, 1),
            3,
            2,
            Outputs::EveryStep,
            true,
        ),
        (
            Spec::new(CellKind::Gru, 28, 128, 10),
            5,
            13,
            Outputs::LastStep,
            false,
        ),
        (
            Spec::new(CellKind::Gru, 3, 40, 3),
            4,
            7,
            Outputs::EveryStep,
            true,
        ),
    ];
    let mut h = FNV_START;
    for (k, &(spec, t, b, outputs, step)) in runs.iter().enumerate() {
        let out = model_run(spec, t, b, outputs, 100 * k as u64 + 7, step);
        assert!(out.iter().all(|v| v.is_finite()), "run {k}: not finite");
        h = fnv1a(h, &out);
    }
    h
}

/// The buffers of W1 train steps (LSTM I28 H128 T28 B128, Linear(H→10) on the last step).
pub struct W1 {
    spec: Spec,
    params: Vec<f32>,
    grad: Vec<f32>,
    x: Vec<f32>,
    labels: Vec<usize>,
    buf: Vec<f32>,
    y: Vec<[f32; 10]>,
    dy: Vec<[f32; 10]>,
}

impl W1 {
    /// Steps, batch.
    const T: usize = 28;
    const B: usize = 128;

    /// Random weights and data.
    pub fn new() -> Self {
        let spec = Spec::new(CellKind::Lstm, 28, 128, 10);
        let (t, b) = (Self::T, Self::B);
        W1 {
            spec,
            params: vals(spec.param_len(), 1, 1.0 / (128f32).sqrt()),
            grad: vec![0.0; spec.param_len()],
            x: vals(t * b * 28, 2, 1.0),
            labels: (0..b).map(|k| (k * 7) % 10).collect(),
            buf: vec![0.0; Cache::<f32>::len(&spec, t, b)],
            y: vec![[0.0; 10]; b],
            dy: vec![[0.0; 10]; b],
        }
    }

    /// One train step: forward from zero state, softmax cross-entropy, backward, SGD. Returns
    /// the loss.
    pub fn step(&mut self) -> f32 {
        let spec = self.spec;
        let (t, b) = (Self::T, Self::B);
        let model = Model::new(spec, &self.params).expect("model");
        let mut cache = Cache::new(&spec, &mut self.buf, t, b, Outputs::LastStep).expect("cache");
        let (mut h, mut c) = (vec![0.0; spec.state_len(b)], vec![0.0; spec.state_len(b)]);
        model
            .forward(
                &self.x,
                &mut h,
                &mut c,
                &mut cache,
                self.y.as_flattened_mut(),
            )
            .expect("forward");
        let loss = softmax_cross_entropy(&self.y, &self.labels, &mut self.dy, Reduction::Mean)
            .expect("loss");
        self.grad.fill(0.0);
        h.fill(0.0);
        c.fill(0.0);
        model
            .backward(
                &mut self.grad,
                &self.x,
                &mut cache,
                self.dy.as_flattened(),
                &mut h,
                &mut c,
                None,
            )
            .expect("backward");
        for (p, g) in self.params.iter_mut().zip(&self.grad) {
            *p -= 0.01 * g;
        }
        loss
    }
}

impl Default for W1 {
    fn default() -> Self {
        Self::new()
    }
}
