//! * Memory maps: `sine` links against `memory/small` (256K flash at 0x0, 16K RAM at
//!   0x20000000: fits the Cortex-M4F `mps2-an386` and the Cortex-M0 `microbit` under QEMU, and
//!   real parts of that size); `classifier` against `memory/large` (1M flash, 64K RAM, inside
//!   `mps2-an386`'s 4 MB SSRAM1 at 0x0 and 4 MB SSRAM2&3 at 0x20000000): its 329 KB of weights do
//!   not fit 256K.
//! * `bench_model.rs` in OUT_DIR: the same kind of model for the timing firmware (`bench_*` bins,
//!   `bench.sh`), of the shape `BENCH_MODEL` names: `sine` (LSTM(1 -> 32) + Linear(32 -> 1), the
//!   default; 256K/16K map) or `classifier` (LSTM(28 -> 128) + Linear(128 -> 10); 1M/64K map),
//!   or the GRU of either shape (`gru_sine`, `gru_classifier`: `Spec` + flat parameters, stepped by
//!   `Model::step`; build.rs sets `cfg(bench_gru)` for `bench_f32`).
//! * `classifier_qmodel.rs` in OUT_DIR: that classifier quantized with the core's int8 scheme,
//!   for `classifier_int8` (small map: its 82 KB of parameters fit 256K).
//! * `bench_qmodel.rs` in OUT_DIR: that model quantized with the core's int8 scheme
//!   (`tinyrnn::quant`, a build dependency), for `bench_int8`.
//! * `gru2_model.rs`, `gru2_qmodel.rs` in OUT_DIR: a 2-layer GRU(1 -> 16) x 2 + Linear(16 -> 1)
//!   with pseudo-random weights ([`flat_params`]) for `gru2` (f32: `tinyrnn::Model` over a flat
//!   buffer) and `gru2_int8` (the core's int8 `QStack` of it), each with the host's outputs on a
//!   fixed input sequence, computed here by the same core code (`Model::step`, `QStack::step`).
//! * `classifier_model.rs` in OUT_DIR: an LSTM(28 -> 128) + Linear(128 -> 10) with pseudo-random
//!   weights, written in the same form as `tinyrnn export` (for the footprint measurement only;
//!   1 MB of source is not worth committing).
use std::fmt::Write as _;
use std::path::PathBuf;

use tinyrnn::{CellKind, Model, Spec};

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
        ("gru2", "small"),
        ("gru2_int8", "small"),
    ] {
        let dir = here.join("memory").join(map);
        println!("cargo:rustc-link-arg-bin={bin}=-L{}", dir.display());
        println!("cargo:rerun-if-changed={}", dir.join("memory.x").display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("classifier_model.rs"), classifier(28, 128, 10)).unwrap();
    std::fs::write(out.join("classifier_qmodel.rs"), quantized(CellKind::Lstm, 28, 128, 10)).unwrap();
    let (f, q) = gru2();
    std::fs::write(out.join("gru2_model.rs"), f).unwrap();
    std::fs::write(out.join("gru2_qmodel.rs"), q).unwrap();

    // The timing firmware (bench.sh): the model shape named by BENCH_MODEL (default `sine`),
    // linked against the map its weights fit.
    println!("cargo:rerun-if-env-changed=BENCH_MODEL");
    let name = std::env::var("BENCH_MODEL").unwrap_or_else(|_| "sine".into());
    let (cell, i, h, o) = match name.as_str() {
        "sine" => (CellKind::Lstm, 1, 32, 1),
        "classifier" => (CellKind::Lstm, 28, 128, 10),
        "gru_sine" => (CellKind::Gru, 1, 32, 1),
        "gru_classifier" => (CellKind::Gru, 28, 128, 10),
        other => panic!("BENCH_MODEL={other}: expected sine, classifier, gru_sine or gru_classifier"),
    };
    println!("cargo::rustc-check-cfg=cfg(bench_gru)");
    let f32_src = if cell == CellKind::Gru {
        println!("cargo:rustc-cfg=bench_gru");
        flat_model(cell, i, h, 1, o)
    } else {
        classifier(i, h, o)
    };
    for (file, mut src) in [("bench_model.rs", f32_src), ("bench_qmodel.rs", quantized(cell, i, h, o))] {
        let _ = writeln!(src, "pub const NAME: &str = {name:?};");
        std::fs::write(out.join(file), src).unwrap();
    }
    // The map the bin's weights fit: f32 4 bytes per parameter, int8 about 1 (plus the row
    // scales, multipliers and biases: 17 bytes per gate row).
    let g = cell.gates();
    let params = g * h * (i + h + 2) + o * (h + 1);
    for bin in BENCH_BINS {
        let bytes = if *bin == "bench_int8" { params + 13 * g * h } else { 4 * params };
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

/// [`params`] (LSTM; the first 3H rows of each for a GRU) quantized with the core's int8 scheme
/// (input scale 1/127, cell state Q2.13) as Rust source:
/// `pub static MODEL: tinyrnn::quant::QModel<'static>`.
fn quantized(cell: CellKind, i: usize, h: usize, o: usize) -> String {
    use tinyrnn::quant::{self, FloatLayer, QLayerMut, quantize_layer, quantize_rows};
    let [mut w_ih, mut w_hh, mut b_ih, mut b_hh, hw, hb] = params(i, h, o);
    let r = cell.gates() * h;
    w_ih.truncate(r * i);
    w_hh.truncate(r * h);
    b_ih.truncate(r);
    b_hh.truncate(r);
    let (qcell, cell_name) = match cell {
        CellKind::Lstm => (quant::CellKind::Lstm, "Lstm"),
        CellKind::Gru => (quant::CellKind::Gru, "Gru"),
        other => panic!("no int8 bench for {other:?}"),
    };
    let (mut qih, mut qhh) = (vec![0i8; r * i], vec![0i8; r * h]);
    let (mut sih, mut shh) = (vec![0f32; r], vec![0f32; r]);
    let (mut mih, mut mhh, mut bih, mut bhh) = (vec![0i32; r], vec![0i32; r], vec![0i32; r], vec![0i32; r]);
    let x_scale = 1.0f32 / 127.0;
    let float = FloatLayer { cell: qcell, inputs: i, hidden: h, w_ih: &w_ih, w_hh: &w_hh, b_ih: &b_ih, b_hh: &b_hh };
    let out = QLayerMut { w_ih: &mut qih, w_hh: &mut qhh, s_ih: &mut sih, s_hh: &mut shh, mul_ih: &mut mih, mul_hh: &mut mhh, b_ih: &mut bih, b_hh: &mut bhh };
    let shift = quantize_layer(&float, x_scale, out).expect("quantize the bench model");
    let (mut qhw, mut shw) = (vec![0i8; o * h], vec![0f32; o]);
    quantize_rows(&hw, h, &mut qhw, &mut shw).expect("quantize the bench head");
    shw.iter_mut().for_each(|s| *s /= 128.0);
    format!(
        "use tinyrnn::quant::{{CellKind, QLayer, QLinear, QModel}};\n\
         pub const I: usize = {i};\npub const H: usize = {h};\npub const O: usize = {o};\n\
         pub static MODEL: QModel<'static> = QModel {{ x_scale: {x_scale:?}, layer: QLayer {{ \
         cell: CellKind::{cell_name}, inputs: I, hidden: H, w_ih: &[{}], w_hh: &[{}], mul_ih: &[{}], \
         mul_hh: &[{}], b_ih: &[{}], b_hh: &[{}], shift: {shift}, c_frac: 13 }}, head: QLinear {{ \
         inputs: H, outputs: O, weight: &[{}], scale: &[{}], bias: &[{}] }} }};\n",
        rows(&qih, i), rows(&qhh, h), rows(&mih, 8), rows(&mhh, 8), rows(&bih, 8), rows(&bhh, 8),
        rows(&qhw, h), rows(&shw, 8), rows(&hb, 8),
    )
}

/// `n` pseudo-random parameters U(-1/sqrt(h), 1/sqrt(h)) from the xorshift sequence of [`params`]
/// (seeded differently), for a model in the core's flat layout ([`Spec`]).
fn flat_params(n: usize, h: usize, seed: u64) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    let k = 1.0 / (h as f32).sqrt();
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            (2.0 * u - 1.0) * k
        })
        .collect()
}

/// The `Spec` literal of `s`.
fn spec_src(s: &Spec) -> String {
    format!(
        "tinyrnn::Spec {{ cell: tinyrnn::CellKind::{:?}, input: {}, hidden: {}, layers: {}, \
         bidirectional: false, output: {} }}",
        s.cell, s.input, s.hidden, s.layers, s.output
    )
}

/// A `<cell>(i -> h) x layers + Linear(h -> o)` of [`flat_params`] as Rust source: `SPEC`,
/// `PARAMS` (the flat buffer), `SCRATCH` (`Model::step_scratch_len`), `I`, `H`, `L`, `O`.
fn flat_model(cell: CellKind, i: usize, h: usize, layers: usize, o: usize) -> String {
    let spec = Spec { layers, ..Spec::new(cell, i, h, o) };
    let p = flat_params(spec.param_len(), h, layers as u64);
    let m = Model::new(spec, &p).expect("the bench model's shape");
    format!(
        "pub const I: usize = {i};\npub const H: usize = {h};\npub const L: usize = {layers};\n\
         pub const O: usize = {o};\npub const SCRATCH: usize = {};\n\
         pub const SPEC: tinyrnn::Spec = {};\npub static PARAMS: [f32; {}] = [{}];\n",
        m.step_scratch_len(),
        spec_src(&spec),
        p.len(),
        rows(&p, 8)
    )
}

/// Steps of the gru2 firmware's input sequence.
const GRU2_STEPS: usize = 40;

/// The GRU(1 -> 16) x 2 + Linear(16 -> 1) firmware models: (f32 source, int8 source). The f32
/// source is [`flat_model`] plus `X` (the inputs, sin(0.3 t)) and `EXPECTED` (the host's
/// `Model::step` outputs from the zero state); the int8 source the same model quantized by the
/// core (`quantize_stack` for input range 1, `quantize_head`) as
/// `pub static MODEL: tinyrnn::quant::QStack<'static>`, with `X` and `EXPECTED` (the host's
/// `QStack::step` outputs, as bits: the device must give the same f32).
fn gru2() -> (String, String) {
    use tinyrnn::quant::{QLayer, QLayerMut, QLinear, QStack, QStackState, float_layer, quantize_head, quantize_stack, x_scale_for};
    const I: usize = 1;
    const H: usize = 16;
    const L: usize = 2;
    const O: usize = 1;
    let spec = Spec { layers: L, ..Spec::new(CellKind::Gru, I, H, O) };
    let p = flat_params(spec.param_len(), H, L as u64);
    let xs: Vec<f32> = (0..GRU2_STEPS).map(|t| (0.3 * t as f32).sin()).collect();
    // f32: the host's outputs of the core's step.
    let m = Model::new(spec, &p).expect("gru2 shape");
    let (mut h, mut c) = (vec![0f32; spec.state_len(1)], Vec::new());
    let (mut scratch, mut y) = (vec![0f32; m.step_scratch_len()], [0f32; O]);
    let mut want = Vec::new();
    for &x in &xs {
        m.step(&[x], &mut h, &mut c, &mut scratch, &mut y).expect("gru2 step");
        want.push(y[0]);
    }
    let mut f = flat_model(CellKind::Gru, I, H, L, O);
    let _ = writeln!(f, "pub static X: [f32; {GRU2_STEPS}] = [{}];", rows(&xs, 8));
    let _ = writeln!(f, "pub static EXPECTED: [f32; {GRU2_STEPS}] = [{}];", rows(&want, 8));

    // int8: every layer quantized (the inputs are in [-1, 1]: x_max = 1), then the host's steps.
    let x_scale = x_scale_for(1.0);
    let mut bufs: Vec<(Vec<i8>, Vec<i8>, Vec<f32>, Vec<f32>, [Vec<i32>; 4])> = (0..L)
        .map(|k| {
            let fl = float_layer(&spec, &p, k).expect("gru2 layer");
            let r = 3 * H;
            (vec![0; r * fl.inputs], vec![0; r * H], vec![0.0; r], vec![0.0; r], [(); 4].map(|_| vec![0; r]))
        })
        .collect();
    let mut shifts = [0u32; L];
    {
        let mut outs: Vec<QLayerMut> = bufs
            .iter_mut()
            .map(|(w_ih, w_hh, s_ih, s_hh, [mul_ih, mul_hh, b_ih, b_hh])| QLayerMut { w_ih, w_hh, s_ih, s_hh, mul_ih, mul_hh, b_ih, b_hh })
            .collect();
        quantize_stack(&spec, &p, x_scale, &mut outs, &mut shifts).expect("quantize gru2");
    }
    let hw = spec.head_offset();
    let (mut qhw, mut shw) = (vec![0i8; O * H], vec![0f32; O]);
    quantize_head(&p[hw..hw + O * H], H, &mut qhw, &mut shw).expect("quantize the gru2 head");
    let hb = &p[hw + O * H..];
    let layers: Vec<QLayer> = bufs
        .iter()
        .zip(shifts)
        .enumerate()
        .map(|(k, ((w_ih, w_hh, _, _, [mul_ih, mul_hh, b_ih, b_hh]), shift))| QLayer {
            cell: tinyrnn::quant::CellKind::Gru,
            inputs: spec.layer_input(k),
            hidden: H,
            w_ih,
            w_hh,
            mul_ih,
            mul_hh,
            b_ih,
            b_hh,
            shift,
            c_frac: 15,
        })
        .collect();
    let qm = QStack { x_scale, layers: &layers, head: QLinear { inputs: H, outputs: O, weight: &qhw, scale: &shw, bias: hb } };
    qm.check().expect("gru2 int8 model");
    let mut st = QStackState::<L, H>::zero();
    let qwant: Vec<String> = xs
        .iter()
        .map(|&x| {
            let y: [f32; O] = qm.step::<I, H, L, O>(&[x], &mut st).expect("gru2 int8 step");
            format!("{:#010x}", y[0].to_bits())
        })
        .collect();
    let mut q = format!(
        "use tinyrnn::quant::{{CellKind, QLayer, QLinear, QStack}};\n\
         pub const I: usize = {I};\npub const H: usize = {H};\npub const L: usize = {L};\npub const O: usize = {O};\n\
         static LAYERS: [QLayer<'static>; L] = [\n"
    );
    for l in &layers {
        let _ = writeln!(
            q,
            "QLayer {{ cell: CellKind::Gru, inputs: {}, hidden: H, w_ih: &[{}], w_hh: &[{}], mul_ih: &[{}], \
             mul_hh: &[{}], b_ih: &[{}], b_hh: &[{}], shift: {}, c_frac: 15 }},",
            l.inputs, rows(l.w_ih, 16), rows(l.w_hh, 16), rows(l.mul_ih, 8), rows(l.mul_hh, 8),
            rows(l.b_ih, 8), rows(l.b_hh, 8), l.shift
        );
    }
    let _ = writeln!(
        q,
        "];\npub static MODEL: QStack<'static> = QStack {{ x_scale: {x_scale:?}, layers: &LAYERS, head: QLinear {{ \
         inputs: H, outputs: O, weight: &[{}], scale: &[{}], bias: &[{}] }} }};",
        rows(&qhw, 16), rows(&shw, 8), rows(hb, 8)
    );
    let _ = writeln!(q, "pub static X: [f32; {GRU2_STEPS}] = [{}];", rows(&xs, 8));
    let _ = writeln!(q, "/// The host's outputs (`QStack::step`), as f32 bits.\npub static EXPECTED: [u32; {GRU2_STEPS}] = [{}];", qwant.join(", "));
    (f, q)
}
