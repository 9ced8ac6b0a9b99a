//! Criterion benches of the WORKLOADS.md train steps (W1-W4, W6, and the W1 variants W1g (GRU)
//! and W1s (2-layer LSTM)) and batch-1 inference steps (W5a, W5b), one thread. W1 runs twice: on
//! the typed `LstmModel` and on the run-time `Model` (`W1_model`) that W1g and W1s use. Throughput is reported in FLOP/s as WORKLOADS.md counts them
//! (3 x the forward matrix products), so "Gelem/s" reads as GFLOP/s.
//!
//! `cargo bench -p tinyrnn-benches --bench train`; small sample counts keep the whole run short.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tinyrnn::LstmState;
use tinyrnn_benches::{
    lstm_flops, rnn_flops, spec_flops, step_model, w1, w1_model, w1g, w1s, w2, w2r, w3, w4, w6,
};

fn train_steps(c: &mut Criterion) {
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));

    macro_rules! bench {
        ($id:expr, $flops:expr, $make:expr) => {{
            let mut t = $make;
            g.throughput(Throughput::Elements($flops as u64));
            g.bench_function($id, |b| b.iter(|| black_box(t.step())));
        }};
    }
    bench!(
        "W1_mnist_B128_T28_I28_H128",
        lstm_flops(28, 128, 28, 128),
        w1()
    );
    macro_rules! variant {
        ($id:expr, $make:expr) => {{
            let t = $make;
            let flops = spec_flops(&t.spec, 28, 128);
            bench!($id, flops, t);
        }};
    }
    variant!("W1_model_B128_T28_I28_H128", w1_model());
    variant!("W1g_mnist_gru_B128_T28_I28_H128", w1g());
    variant!("W1s_mnist_2layer_B128_T28_I28_H128", w1s());
    bench!("W2_sine_B64_T100_I1_H32", lstm_flops(1, 32, 100, 64), w2());
    bench!(
        "W2r_sine_rnn_B64_T100_I1_H64",
        rnn_flops(1, 64, 100, 64),
        w2r()
    );
    bench!(
        "W3_memory_B32_T71_I10_H64",
        lstm_flops(10, 64, 71, 32),
        w3()
    );
    bench!("W4_echo_B5_T15_I1_H4", lstm_flops(1, 4, 15, 5), w4());
    macro_rules! w6 {
        ($($h:literal),*) => {$(
            bench!(
                BenchmarkId::new("W6_scaling_B32_T32", concat!("H", $h)),
                lstm_flops($h, $h, 32, 32),
                w6::<$h>()
            );
        )*};
    }
    w6!(8, 16, 32, 64, 128, 256);
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
