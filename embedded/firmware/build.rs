//! * Memory maps: `sine` links against `memory/small` (256K flash at 0x0, 16K RAM at
//!   0x20000000: fits the Cortex-M4F `mps2-an386` and the Cortex-M0 `microbit` under QEMU, and
//!   real parts of that size); `classifier` against `memory/large` (1M flash, 64K RAM, inside
//!   `mps2-an386`'s 4 MB SSRAM1 at 0x0 and 4 MB SSRAM2&3 at 0x20000000): its 329 KB of weights do
//!   not fit 256K.
//! * `bench_model.rs` in OUT_DIR: the same kind of model for the timing firmware (`bench_*` bins,
//!   `bench.sh`), of the shape `BENCH_MODEL` names: `sine` (LSTM(1 -> 32) + Linear(32 -> 1), the
//!   default; 256K/16K map) or `classifier` (LSTM(28 -> 128) + Linear(128 -> 10); 1M/64K map).
//! * `classifier_qmodel.rs` in OUT_DIR: that classifier quantized with the core's int8 scheme,
//!   for `classifier_int8` (small map: its 82 KB of parameters fit 256K).
//! * `bench_qmodel.rs` in OUT_DIR: that model quantized with the core's int8 scheme
//!   (`tinyrnn::quant`, a build dependency), for `bench_int8`.
//! * `classifier_model.rs` in OUT_DIR: an LSTM(28 -> 128) + Linear(128 -> 10) with pseudo-random
//!   weights, written in the same form as `tinyrnn export` (for the footprint measurement only;
//!   1 MB of source is not worth committing).
use std::fmt::Write as _;
use std::path::PathBuf;

/// The timing firmware, one bin per precision (each measures its step with `firmware::bench`).
const BENCH_BINS: &[&str] = &["bench_f32", "bench_int8"];

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    for (bin, map) in [
        ("sine", "small"),
        ("sine_int8", "small"),
        ("kernels", "small"),
        ("classifier", "large"),
        ("classifier_int8", "small"),
    ] {
        let dir = here.join("memory").join(map);
        println!("cargo:rustc-link-arg-bin={bin}=-L{}", dir.display());
        println!("cargo:rerun-if-changed={}", dir.join("memory.x").display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("classifier_model.rs"), classifier(28, 128, 10)).unwrap();
    std::fs::write(out.join("classifier_qmodel.rs"), quantized(28, 128, 10)).unwrap();

    // The timing firmware (bench.sh): the model shape named by BENCH_MODEL (default `sine`),
    // linked against the map its weights fit.
    println!("cargo:rerun-if-env-changed=BENCH_MODEL");
    let name = std::env::var("BENCH_MODEL").unwrap_or_else(|_| "sine".into());
    let (i, h, o) = match name.as_str() {
        "sine" => (1, 32, 1),
        "classifier" => (28, 128, 10),
        other => panic!("BENCH_MODEL={other}: expected sine or classifier"),
    };
    for (file, mut src) in [("bench_model.rs", classifier(i, h, o)), ("bench_qmodel.rs", quantized(i, h, o))] {
        let _ = writeln!(src, "pub const NAME: &str = {name:?};");
        std::fs::write(out.join(file), src).unwrap();
    }
    // The map the bin's weights fit: f32 4 bytes per parameter, int8 about 1 (plus the row
    // scales, multipliers and biases: 17 bytes per gate row).
    let params = 4 * h * (i + h + 2) + o * (h + 1);
    for bin in BENCH_BINS {
        let bytes = if *bin == "bench_int8" { params + 13 * 4 * h } else { 4 * params };
        let map = if bytes > 200 * 1024 { "large" } else { "small" };
        println!(
            "cargo:rustc-link-arg-bin={bin}=-L{}",
            here.join("memory").join(map).display()
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The parameters of the pseudo-random LSTM(i -> h) + Linear(h -> o), flat in PyTorch's order
/// (weight_ih, weight_hh, bias_ih, bias_hh, head.weight, head.bias): U(-1/sqrt(h), 1/sqrt(h))
/// from one xorshift sequence.
fn params(i: usize, h: usize, o: usize) -> [Vec<f32>; 6] {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let k = 1.0 / (h as f32).sqrt();
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
        (2.0 * u - 1.0) * k
    };
    [4 * h * i, 4 * h * h, 4 * h, 4 * h, o * h, o].map(|n| (0..n).map(|_| next()).collect())
}

/// `[a, b, ...]` of `v` in rows of `cols` (`{:?}`: the shortest text that reads back the same).
fn rows<T: std::fmt::Debug>(v: &[T], cols: usize) -> String {
    let r: Vec<String> = v
        .chunks(cols.max(1))
        .map(|r| r.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", "))
        .collect();
    r.join(",\n")
}

/// LSTM(i -> h) + Linear(h -> o) of [`params`] as Rust source, in the form `tinyrnn export` writes.
fn classifier(i: usize, h: usize, o: usize) -> String {
    let [w_ih, w_hh, b_ih, b_hh, hw, hb] = params(i, h, o);
    let nest = |v: &[f32], cols: usize| {
        let per_gate = v.len() / 4;
        let gates: Vec<String> = v
            .chunks(per_gate.max(1))
            .map(|g| {
                let r: Vec<String> = g.chunks(cols.max(1)).map(|r| format!("[{}]", rows(r, cols))).collect();
                format!("[{}]", r.join(",\n"))
            })
            .collect();
        format!("[{}]", gates.join(",\n"))
    };
    let mut s = String::new();
    let _ = writeln!(s, "use tinyrnn::{{Linear, Lstm, LstmModel}};");
    let _ = writeln!(s, "pub const I: usize = {i};\npub const H: usize = {h};\npub const O: usize = {o};");
    let _ = writeln!(s, "pub static MODEL: LstmModel<I, H, O> = LstmModel {{ lstm: Lstm {{");
    let _ = writeln!(s, "weight_ih: {},", nest(&w_ih, i));
    let _ = writeln!(s, "weight_hh: {},", nest(&w_hh, h));
    let gates = |b: &[f32]| {
        let g: Vec<String> = b.chunks(h).map(|r| format!("[{}]", rows(r, h))).collect();
        format!("[{}]", g.join(",\n"))
    };
    let _ = writeln!(s, "bias_ih: {},", gates(&b_ih));
    let _ = writeln!(s, "bias_hh: {},", gates(&b_hh));
    let head: Vec<String> = hw.chunks(h).map(|r| format!("[{}]", rows(r, h))).collect();
    let _ = writeln!(s, "}}, head: Linear {{ weight: [{}], bias: [{}] }} }};", head.join(",\n"), rows(&hb, o));
    s
}

/// [`params`] quantized with the core's int8 scheme (input scale 1/127, cell state Q2.13) as
/// Rust source: `pub static MODEL: tinyrnn::quant::QModel<'static>`.
fn quantized(i: usize, h: usize, o: usize) -> String {
    use tinyrnn::quant::{CellKind, FloatLayer, QLayerMut, quantize_layer, quantize_rows};
    let [w_ih, w_hh, b_ih, b_hh, hw, hb] = params(i, h, o);
    let r = 4 * h;
    let (mut qih, mut qhh) = (vec![0i8; r * i], vec![0i8; r * h]);
    let (mut sih, mut shh) = (vec![0f32; r], vec![0f32; r]);
    let (mut mih, mut mhh, mut bih, mut bhh) = (vec![0i32; r], vec![0i32; r], vec![0i32; r], vec![0i32; r]);
    let x_scale = 1.0f32 / 127.0;
    let float = FloatLayer { cell: CellKind::Lstm, inputs: i, hidden: h, w_ih: &w_ih, w_hh: &w_hh, b_ih: &b_ih, b_hh: &b_hh };
    let out = QLayerMut { w_ih: &mut qih, w_hh: &mut qhh, s_ih: &mut sih, s_hh: &mut shh, mul_ih: &mut mih, mul_hh: &mut mhh, b_ih: &mut bih, b_hh: &mut bhh };
    let shift = quantize_layer(&float, x_scale, out).expect("quantize the bench model");
    let (mut qhw, mut shw) = (vec![0i8; o * h], vec![0f32; o]);
    quantize_rows(&hw, h, &mut qhw, &mut shw).expect("quantize the bench head");
    shw.iter_mut().for_each(|s| *s /= 128.0);
    format!(
        "use tinyrnn::quant::{{CellKind, QLayer, QLinear, QModel}};\n\
         pub const I: usize = {i};\npub const H: usize = {h};\npub const O: usize = {o};\n\
         pub static MODEL: QModel<'static> = QModel {{ x_scale: {x_scale:?}, layer: QLayer {{ \
         cell: CellKind::Lstm, inputs: I, hidden: H, w_ih: &[{}], w_hh: &[{}], mul_ih: &[{}], \
         mul_hh: &[{}], b_ih: &[{}], b_hh: &[{}], shift: {shift}, c_frac: 13 }}, head: QLinear {{ \
         inputs: H, outputs: O, weight: &[{}], scale: &[{}], bias: &[{}] }} }};\n",
        rows(&qih, i), rows(&qhh, h), rows(&mih, 8), rows(&mhh, 8), rows(&bih, 8), rows(&bhh, 8),
        rows(&qhw, h), rows(&shw, 8), rows(&hb, 8),
    )
}
