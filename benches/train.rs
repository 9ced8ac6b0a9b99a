//! Criterion benches of the WORKLOADS.md train steps (W1-W4, W6, and the W1 variants W1g (GRU),
//! W1s (2-layer LSTM) and W1b (bidirectional LSTM)) on the run-time `Model`, and the batch-1
//! inference steps (W5a, W5b) of the typed `LstmModel`, one thread. Throughput is reported in
//! FLOP/s as WORKLOADS.md counts them (3 x the forward matrix products), so "Gelem/s" reads as
//! GFLOP/s.
//!
//! `cargo bench -p tinyrnn-benches --bench train`; small sample counts keep the whole run short.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tinyrnn::LstmState;
use tinyrnn_benches::{ModelTrain, step_model, w1, w1b, w1g, w1s, w2, w2r, w3, w4, w6};

fn train_steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let mut bench = |id: BenchmarkId, mut t: ModelTrain<10>| {
        g.throughput(Throughput::Elements(t.flops() as u64));
        g.bench_function(id, |b| b.iter(|| black_box(t.step())));
    };
    let name = |s: &str| BenchmarkId::from_parameter(s);
    bench(name("W1_mnist_B128_T28_I28_H128"), w1());
    bench(name("W1g_mnist_gru_B128_T28_I28_H128"), w1g());
    bench(name("W1s_mnist_2layer_B128_T28_I28_H128"), w1s());
    bench(name("W1b_mnist_bidirectional_B128_T28_I28_H128"), w1b());
    bench(name("W3_memory_B32_T71_I10_H64"), w3());
    let mut bench = |id: BenchmarkId, mut t: ModelTrain<1>| {
        g.throughput(Throughput::Elements(t.flops() as u64));
        g.bench_function(id, |b| b.iter(|| black_box(t.step())));
    };
    bench(name("W2_sine_B64_T100_I1_H32"), w2());
    bench(name("W2r_sine_rnn_B64_T100_I1_H64"), w2r());
    for h in [8, 16, 32, 64, 128, 256] {
        bench(
            BenchmarkId::new("W6_scaling_B32_T32", format!("H{h}")),
            w6(h),
        );
    }
    let mut t = w4();
    g.throughput(Throughput::Elements(t.flops() as u64));
    g.bench_function("W4_echo_B5_T15_I1_H4", |b| b.iter(|| black_box(t.step())));
    g.finish();
}

fn inference_steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("infer_step");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let (m, x) = step_model::<1, 32, 1>(7);
    let mut s = LstmState::zero();
    g.bench_function("W5a_I1_H32_O1", |b| {
        b.iter(|| black_box(m.step(black_box(&x), &mut s)))
    });
    let (m, x) = step_model::<28, 128, 10>(8);
    let mut s = LstmState::zero();
    g.bench_function("W5b_I28_H128_O10", |b| {
        b.iter(|| black_box(m.step(black_box(&x), &mut s)))
    });
    g.finish();
}

criterion_group!(benches, train_steps, inference_steps);
criterion_main!(benches);
