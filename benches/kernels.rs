//! Every SIMD kernel beside its naive scalar twin, at H = 32 and H = 128, on the shapes the
//! layers call them with (batch B = 32, T·B = 512 rows for the weight gradients, I = 16).
//! Matrix products report FLOP/s ("elem/s" = FLOP/s), pointwise kernels units/s.
//!
//! `cargo bench -p tinyrnn-benches --bench kernels`; compare `.../simd` with `.../naive` (and, on
//! an AVX-512 CPU, `.../simd8`: the same kernels held to 8 lanes).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use tinyrnn::kernels::{
    lstm_ih_packed_len, lstm_packed_len, pack_lstm, pack_lstm_ih, pack_rnn, pack_rnn_ih,
    rnn_ih_packed_len, rnn_packed_len,
};
use tinyrnn::{Kernels, Naive, Simd};

const B: usize = 32;
const I: usize = 16;
const ROWS: usize = 512;

/// Deterministic values in [-0.5, 0.5).
fn vals(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect()
}

fn group<'a>(c: &'a mut Criterion, name: &str, throughput: u64) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600))
        .throughput(Throughput::Elements(throughput));
    g
}

/// Benches `f::<Simd>` as "simd" and `f::<Naive>` as "naive" in one group; on an AVX-512 CPU
/// also `f::<Simd>` held to 8 lanes as "simd8" (the kernels without a 16-lane path run the same
/// code for both).
macro_rules! pair {
    ($c:expr, $name:expr, $throughput:expr, |$k:ident| $body:expr) => {{
        let mut g = group($c, &$name, $throughput as u64);
        {
            type $k = Simd;
            g.bench_function("simd", |b| b.iter(|| $body));
            if tinyrnn::kernels::lane_width() == 16 {
                tinyrnn::kernels::allow_avx512(false);
                g.bench_function("simd8", |b| b.iter(|| $body));
                tinyrnn::kernels::allow_avx512(true);
            }
        }
        {
            type $k = Naive;
            g.bench_function("naive", |b| b.iter(|| $body));
        }
        g.finish();
    }};
}

fn gemms(c: &mut Criterion, h: usize) {
    let g4 = 4 * h;
    // gemm_nt: the batch-1 step (x W_hhᵀ for one row) and the linear head over a batch.
    let (a, w) = (vals(h, 1), vals(g4 * h, 2));
    let mut y = vals(g4, 3);
    pair!(c, format!("gemm_nt/step_1x{g4}x{h}"), 2 * g4 * h, |K| {
        K::gemm_nt(1, g4, h, &a, &w, &mut y);
        black_box(&mut y);
    });
    let (a, w) = (vals(ROWS * h, 4), vals(10 * h, 5));
    let mut y = vals(ROWS * 10, 6);
    pair!(
        c,
        format!("gemm_nt/head_{ROWS}x10x{h}"),
        2 * ROWS * 10 * h,
        |K| {
            K::gemm_nt(ROWS, 10, h, &a, &w, &mut y);
            black_box(&mut y);
        }
    );
    // gemm_nn: dh = dpre W_hh for one step.
    let (a, w) = (vals(B * g4, 7), vals(g4 * h, 8));
    let mut y = vals(B * h, 9);
    pair!(c, format!("gemm_nn/dh_{B}x{h}x{g4}"), 2 * B * h * g4, |K| {
        K::gemm_nn(B, h, g4, &a, &w, &mut y);
        black_box(&mut y);
    });
    // gemm_tn: dW_hh += dpreᵀ h over T·B rows.
    let (a, x) = (vals(ROWS * g4, 10), vals(ROWS * h, 11));
    let mut y = vals(g4 * h, 12);
    pair!(
        c,
        format!("gemm_tn/dW_{g4}x{h}x{ROWS}"),
        2 * g4 * h * ROWS,
        |K| {
            K::gemm_tn(g4, h, ROWS, &a, &x, &mut y);
            black_box(&mut y);
        }
    );
    // gemm_tn, narrow: dW_ih += dpreᵀ x for W1's I = 28 (fewer than 64 columns: A read in
    // place, not packed; the two paths are tuned apart, so both are benched).
    let x = vals(ROWS * 28, 14);
    let mut y28 = vals(g4 * 28, 15);
    pair!(
        c,
        format!("gemm_tn/dW_ih_{g4}x28x{ROWS}"),
        2 * g4 * 28 * ROWS,
        |K| {
            K::gemm_tn(g4, 28, ROWS, &a, &x, &mut y28);
            black_box(&mut y28);
        }
    );
    // col_sum: the bias gradient.
    let mut y = vals(g4, 13);
    pair!(c, format!("col_sum/{ROWS}x{g4}"), ROWS * g4, |K| {
        K::col_sum(ROWS, g4, &a, &mut y);
        black_box(&mut y);
    });
}

fn pointwise(c: &mut Criterion, h: usize) {
    let g4 = 4 * h;
    let pre = vals(B * g4, 20).iter().map(|v| 8.0 * v).collect::<Vec<_>>();
    let c_prev = vals(B * h, 21);
    let (mut gates, mut cc, mut tc, mut hh) = (
        vec![0.0; B * g4],
        vec![0.0; B * h],
        vec![0.0; B * h],
        vec![0.0; B * h],
    );
    pair!(c, format!("lstm_pointwise/{B}x{h}"), B * h, |K| {
        for b in 0..B {
            let r = b * h..(b + 1) * h;
            K::lstm_pointwise(
                &pre[b * g4..(b + 1) * g4],
                &c_prev[r.clone()],
                &mut gates[b * g4..(b + 1) * g4],
                &mut cc[r.clone()],
                &mut tc[r.clone()],
                &mut hh[r],
            );
        }
        black_box(&mut hh);
    });
    let gates = vals(B * g4, 22).iter().map(|v| v + 0.5).collect::<Vec<_>>();
    let (dh_ext, dh_rec) = (vals(B * h, 23), vals(B * h, 24));
    let (mut dc, mut dpre) = (vals(B * h, 25), vec![0.0; B * g4]);
    pair!(c, format!("lstm_pointwise_backward/{B}x{h}"), B * h, |K| {
        for b in 0..B {
            let r = b * h..(b + 1) * h;
            K::lstm_pointwise_backward(
                &gates[b * g4..(b + 1) * g4],
                &c_prev[r.clone()],
                &tc[r.clone()],
                &dh_ext[r.clone()],
                &dh_rec[r.clone()],
                &mut dc[r.clone()],
                &mut dpre[b * g4..(b + 1) * g4],
            );
        }
        black_box(&mut dpre);
    });
    let pre = &pre[..B * h];
    let mut out = vec![0.0; B * h];
    pair!(c, format!("tanh_pointwise/{B}x{h}"), B * h, |K| {
        K::tanh_pointwise(pre, &mut out);
        black_box(&mut out);
    });
    pair!(c, format!("tanh_pointwise_backward/{B}x{h}"), B * h, |K| {
        K::tanh_pointwise_backward(&tc, &dh_ext, &dh_rec, &mut out);
        black_box(&mut out);
    });
}

fn steps(c: &mut Criterion, h: usize) {
    let g4 = 4 * h;
    let x = vals(B * I, 30);
    let (h_prev, c_prev) = (vals(B * h, 31), vals(B * h, 32));
    let (w_ih, w_hh, b_ih, b_hh) = (
        vals(g4 * I, 33),
        vals(g4 * h, 34),
        vals(g4, 35),
        vals(g4, 36),
    );
    let mut packed = vec![0.0; lstm_packed_len(h)];
    pack_lstm(h, &w_hh, &b_ih, &b_hh, &mut packed);
    let mut packed_ih = vec![0.0; lstm_ih_packed_len(h, I)];
    pack_lstm_ih(h, I, &w_ih, &mut packed_ih);
    let (mut pre, mut gates, mut cc, mut tc, mut hh) = (
        vec![0.0; B * g4],
        vec![0.0; B * g4],
        vec![0.0; B * h],
        vec![0.0; B * h],
        vec![0.0; B * h],
    );
    let flops = 2 * B * g4 * (I + h);
    pair!(c, format!("lstm_forward_step/B{B}_I{I}_H{h}"), flops, |K| {
        K::lstm_forward_step(
            B, h, I, &x, &w_ih, &w_hh, &b_ih, &b_hh, &packed, &packed_ih, &h_prev, &c_prev,
            &mut pre, &mut gates, &mut cc, &mut tc, &mut hh,
        );
        black_box(&mut hh);
    });
    // The batch-1 step (W5): one sequence, all gates.
    let mut scratch = vec![0.0; 10 * h];
    let (mut c1, mut h1) = (c_prev[..h].to_vec(), vec![0.0; h]);
    pair!(c, format!("lstm_step/I{I}_H{h}"), 2 * g4 * (I + h), |K| {
        K::lstm_step(
            h,
            I,
            &x[..I],
            &w_ih,
            &w_hh,
            &b_ih,
            &b_hh,
            &h_prev[..h],
            &mut c1,
            &mut h1,
            &mut scratch,
        );
        black_box(&mut h1);
    });
    let dh_ext = vals(B * h, 37);
    let (mut dh, mut dc, mut dpre) = (vals(B * h, 38), vals(B * h, 39), vec![0.0; B * g4]);
    pair!(
        c,
        format!("lstm_backward_step/B{B}_H{h}"),
        2 * B * g4 * h,
        |K| {
            K::lstm_backward_step(
                B, h, &gates, &c_prev, &tc, &dh_ext, &w_hh, &mut dh, &mut dc, &mut dpre,
            );
            black_box(&mut dh);
        }
    );
    let (w_ih, w_hh) = (&w_ih[..h * I], &w_hh[..h * h]);
    let mut packed = vec![0.0; rnn_packed_len(h)];
    pack_rnn(h, w_hh, &b_ih[..h], &b_hh[..h], &mut packed);
    let mut packed_ih = vec![0.0; rnn_ih_packed_len(h, I)];
    pack_rnn_ih(h, I, w_ih, &mut packed_ih);
    pair!(
        c,
        format!("rnn_forward_step/B{B}_I{I}_H{h}"),
        2 * B * h * (I + h),
        |K| {
            K::rnn_forward_step(
                B,
                h,
                I,
                &x,
                w_ih,
                w_hh,
                &b_ih[..h],
                &b_hh[..h],
                &packed,
                &packed_ih,
                &h_prev,
                &mut pre[..B * h],
                &mut hh,
            );
            black_box(&mut hh);
        }
    );
    let mut dpre = vec![0.0; B * h];
    pair!(
        c,
        format!("rnn_backward_step/B{B}_H{h}"),
        2 * B * h * h,
        |K| {
            K::rnn_backward_step(B, h, &tc, &dh_ext, w_hh, &mut dh, &mut dpre);
            black_box(&mut dh);
        }
    );
}

fn kernels(c: &mut Criterion) {
    for h in [32, 128] {
        gemms(c, h);
        pointwise(c, h);
        steps(c, h);
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
