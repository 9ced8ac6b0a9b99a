//! PyTorch parity: the LSTM and tanh-RNN models against reference data made with PyTorch.
//!
//! The fixtures in `fixtures/pytorch/` were made by `fixtures/pytorch/generate.py` (torch; never
//! run in CI; see the README there): `nn.LSTM(5, 16)` + `nn.Linear(16, 3)` (seed 7) and
//! `nn.RNN(5, 16, nonlinearity="tanh")` + `nn.Linear(16, 3)` (seed 8), one sequence of T = 24 steps
//! (batch 1) from the zero state, loss = Σ_t Σ_k y[t,k]². They hold the parameters, the input, the
//! head output at every step, the state after every step, the final state, the loss, and the
//! gradient of the loss with respect to every parameter and to the input, all computed by PyTorch
//! in float64 from the float32 parameters and input and stored as float32.
//!
//! Here the parameters are loaded into `LstmModel<5, 16, 3>` / `RnnModel<5, 16, 3>` by walking
//! `Params::TENSORS` (names, shapes and dtype checked), and the engine (`Model` over the same flat
//! buffer) runs `forward` + head at every step: the
//! states, the final state, the loss, and `backward` (head, then BPTT) are compared with PyTorch,
//! with the SIMD kernels and with the naive ones, and `step` over the sequence as well. Everything
//! must agree to 1e-5 absolute.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use tinyrnn::cell::CellKind;
use tinyrnn::{
    Cache, Kernels, LstmModel, LstmState, Model, Naive, Outputs, Params, RnnModel, Simd, Spec,
};

const I: usize = 5;
const H: usize = 16;
const O: usize = 3;
const STEPS: usize = 24;
/// Largest absolute difference allowed between tinyrnn (f32) and PyTorch (f64, stored as f32).
const TOL: f32 = 1e-5;

type Lstm = LstmModel<I, H, O>;
type Rnn = RnnModel<I, H, O>;

// ---------------------------------------------------------------------------------------------
// Loading the fixtures
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pytorch")
        .join(name)
}

fn read_bytes(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The F32 tensor `name` of `st`, checked to have `shape`.
fn f32_tensor(st: &SafeTensors<'_>, file: &str, name: &str, shape: &[usize]) -> Vec<f32> {
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("{file}: no tensor {name:?}: {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "{file}: {name} dtype");
    assert_eq!(view.shape(), shape, "{file}: {name} shape");
    let data = view.data();
    assert_eq!(
        data.len(),
        4 * shape.iter().product::<usize>(),
        "{file}: {name} size"
    );
    data.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A parameter buffer (model or gradient) loaded from a safetensors file by walking
/// [`Params::TENSORS`]: the file must hold exactly those names, with those shapes, as F32.
fn load_params<P: Params<f32>>(file: &str) -> Box<P> {
    let bytes = read_bytes(file);
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    let in_file: BTreeSet<&str> = st.names().into_iter().collect();
    let in_table: BTreeSet<&str> = P::TENSORS.iter().map(|t| t.name).collect();
    assert_eq!(in_file, in_table, "{file}: tensor names");
    let mut p = Box::new(P::zeroed());
    for t in P::TENSORS {
        let values = f32_tensor(&st, file, t.name, t.shape);
        p.tensor_mut(t.name)
            .expect("every name in TENSORS has a slice")
            .copy_from_slice(&values);
    }
    p
}

/// The `expected` file: output [24, 3], h_final [16], c_final [16] (LSTM), loss [1],
/// grad_input [24, 5].
struct Expected {
    output: Vec<[f32; O]>,
    h_final: [f32; H],
    c_final: Option<[f32; H]>,
    loss: f32,
    grad_input: Vec<[f32; I]>,
}

fn load_expected(file: &str, lstm: bool) -> Expected {
    let bytes = read_bytes(file);
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut names = vec!["grad_input", "h_final", "loss", "output"];
    if lstm {
        names.push("c_final");
    }
    let in_file: BTreeSet<&str> = st.names().into_iter().collect();
    assert_eq!(in_file, names.into_iter().collect(), "{file}: tensor names");
    let vector = |name: &str| -> [f32; H] {
        f32_tensor(&st, file, name, &[H])
            .try_into()
            .expect("shape checked")
    };
    Expected {
        output: rows(&f32_tensor(&st, file, "output", &[STEPS, O])),
        h_final: vector("h_final"),
        c_final: lstm.then(|| vector("c_final")),
        loss: f32_tensor(&st, file, "loss", &[1])[0],
        grad_input: rows(&f32_tensor(&st, file, "grad_input", &[STEPS, I])),
    }
}

fn rows<const N: usize>(flat: &[f32]) -> Vec<[f32; N]> {
    flat.chunks_exact(N)
        .map(|r| r.try_into().expect("exact chunk"))
        .collect()
}

/// A CSV of float32 values with the given header; returns its rows.
fn read_csv(file: &str, header: &[String]) -> Vec<Vec<f32>> {
    let path = fixture(file);
    let mut rd =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let got: Vec<String> = rd
        .headers()
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, header, "{file}: header");
    rd.records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{file}: {e}"));
            r.iter()
                .map(|v| {
                    v.parse::<f32>()
                        .unwrap_or_else(|e| panic!("{file}: {v:?}: {e}"))
                })
                .collect()
        })
        .collect()
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn header(parts: &[&[String]]) -> Vec<String> {
    parts.concat()
}

/// The input sequence, (T, I), time-major with a batch of one.
fn load_input(file: &str) -> Vec<[f32; I]> {
    let rows = read_csv(file, &names("x", I));
    assert_eq!(rows.len(), STEPS, "{file}: rows");
    rows.iter()
        .map(|r| r.as_slice().try_into().expect("header checked"))
        .collect()
}

/// The per-step state trace: `t,h0..h15[,c0..c15]` → (h, c) per step.
type Trace = Vec<([f32; H], Option<[f32; H]>)>;

fn load_trace(file: &str, lstm: bool) -> Trace {
    let mut head = header(&[&["t".to_owned()], &names("h", H)]);
    if lstm {
        head.extend(names("c", H));
    }
    let rows = read_csv(file, &head);
    assert_eq!(rows.len(), STEPS, "{file}: rows");
    rows.iter()
        .enumerate()
        .map(|(t, r)| {
            assert_eq!(r[0], t as f32, "{file}: t column");
            let h = r[1..=H].try_into().expect("header checked");
            let c = lstm.then(|| r[1 + H..].try_into().expect("header checked"));
            (h, c)
        })
        .collect()
}

/// `unit,h[,c]` → (h, c) after the last step.
fn load_final_state(file: &str, lstm: bool) -> ([f32; H], Option<[f32; H]>) {
    let mut head = vec!["unit".to_owned(), "h".to_owned()];
    if lstm {
        head.push("c".to_owned());
    }
    let rows = read_csv(file, &head);
    assert_eq!(rows.len(), H, "{file}: rows");
    let mut h = [0.0; H];
    let mut c = [0.0; H];
    for (u, r) in rows.iter().enumerate() {
        assert_eq!(r[0], u as f32, "{file}: unit column");
        h[u] = r[1];
        if lstm {
            c[u] = r[2];
        }
    }
    (h, lstm.then_some(c))
}

// ---------------------------------------------------------------------------------------------
// Comparing
// ---------------------------------------------------------------------------------------------

/// Records the largest error of every comparison, so that a run prints what it saw.
#[derive(Default)]
struct Report {
    lines: String,
}

impl Report {
    /// Asserts `|got - want| <= TOL` elementwise and records the largest difference.
    fn close(&mut self, what: &str, got: &[f32], want: &[f32]) -> f32 {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let mut worst = (0.0f32, 0usize);
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(g.is_finite(), "{what}[{k}]: {g} is not finite");
            let e = (g - w).abs();
            if e > worst.0 {
                worst = (e, k);
            }
        }
        let (err, k) = worst;
        assert!(
            err <= TOL,
            "{what}: max |tinyrnn - pytorch| = {err:.3e} > {TOL:e} at flat index {k} \
             (tinyrnn {}, pytorch {})",
            got[k],
            want[k]
        );
        writeln!(self.lines, "  {what:<40} max abs err {err:.3e}").unwrap();
        err
    }

    fn print(&self, title: &str) {
        println!("{title}\n{}", self.lines);
    }
}

fn flat<const N: usize>(v: &[[f32; N]]) -> &[f32] {
    v.as_flattened()
}

/// `loss = Σ y²`, in f64 like the reference.
fn loss(y: &[[f32; O]]) -> f32 {
    y.as_flattened()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>() as f32
}

// ---------------------------------------------------------------------------------------------
// Running the models
// ---------------------------------------------------------------------------------------------

/// What one forward + backward pass over the sequence gives.
struct Run<P> {
    y: Vec<[f32; O]>,
    h_all: Vec<[f32; H]>,
    c_all: Option<Vec<[f32; H]>>,
    h: [f32; H],
    c: Option<[f32; H]>,
    grad: Box<P>,
    dx: Vec<[f32; I]>,
}

/// Forward and backward of a one-layer model of `cell` over the flat buffer of `model` (the typed
/// models' layout is the engine's), then the head's loss `Σ y²`.
fn run<K: Kernels<f32>, P: Params<f32>>(cell: CellKind, model: &P, x: &[[f32; I]]) -> Run<P> {
    let spec = Spec::new(cell, I, H, O);
    let m = Model::new(spec, model.as_flat()).unwrap();
    let mut buf = vec![0.0; Cache::<f32>::len(&spec, STEPS, 1)];
    let mut cache = Cache::new(&spec, &mut buf, STEPS, 1, Outputs::EveryStep).unwrap();
    let mut h = [0.0; H];
    let mut c = if cell.has_c() { vec![0.0; H] } else { vec![] };
    let mut y = vec![[0.0; O]; STEPS];
    m.forward_with::<K>(
        x.as_flattened(),
        &mut h,
        &mut c,
        &mut cache,
        y.as_flattened_mut(),
    )
    .unwrap();
    let states = m.cached(&cache, 0, 0).unwrap();
    let h_all = rows::<H>(states.h);
    let c_all = cell.has_c().then(|| rows::<H>(states.c));
    let dy: Vec<f32> = y.as_flattened().iter().map(|v| 2.0 * v).collect();
    let mut grad = P::zeroed();
    let mut dh_carry = [0.0; H];
    let mut dc_carry = c.iter().map(|_| 0.0).collect::<Vec<f32>>();
    let mut dx = vec![[0.0; I]; STEPS];
    m.backward_with::<K>(
        grad.as_flat_mut(),
        x.as_flattened(),
        &mut cache,
        &dy,
        &mut dh_carry,
        &mut dc_carry,
        Some(dx.as_flattened_mut()),
    )
    .unwrap();
    Run {
        y,
        h_all,
        c_all,
        h,
        c: cell.has_c().then(|| c.try_into().unwrap()),
        grad: Box::new(grad),
        dx,
    }
}

/// The reference data of one model.
struct Reference<P> {
    model: Box<P>,
    x: Vec<[f32; I]>,
    grads: Box<P>,
    expected: Expected,
    output_csv: Vec<[f32; O]>,
    trace: Trace,
    final_state: ([f32; H], Option<[f32; H]>),
}

fn load_reference<P: Params<f32>>(kind: &str, lstm: bool) -> Reference<P> {
    let output_csv = read_csv(&format!("{kind}_output.csv"), &names("y", O));
    assert_eq!(output_csv.len(), STEPS, "{kind}_output.csv: rows");
    Reference {
        model: load_params(&format!("{kind}_model.safetensors")),
        x: load_input(&format!("{kind}_input.csv")),
        grads: load_params(&format!("{kind}_grads.safetensors")),
        expected: load_expected(&format!("{kind}_expected.safetensors"), lstm),
        output_csv: output_csv
            .iter()
            .map(|r| r.as_slice().try_into().expect("header checked"))
            .collect(),
        trace: load_trace(&format!("{kind}_trace.csv"), lstm),
        final_state: load_final_state(&format!("{kind}_final_state.csv"), lstm),
    }
}

/// Sanity checks on the fixture itself: the properties the acceptance criterion asks of it, and
/// the CSV copies agreeing with the safetensors ones.
fn check_fixture<P: Params<f32>>(kind: &str, r: &Reference<P>) {
    let w_hh = r.model.tensor(&format!("{kind}.weight_hh_l0")).unwrap();
    assert!(
        w_hh.iter().all(|&v| v != 0.0),
        "{kind}: recurrent weights must be non-zero"
    );
    let b_ih = r.model.tensor(&format!("{kind}.bias_ih_l0")).unwrap();
    let b_hh = r.model.tensor(&format!("{kind}.bias_hh_l0")).unwrap();
    assert!(
        b_ih.iter().chain(b_hh).all(|&v| v != 0.0),
        "{kind}: biases must be non-zero"
    );
    assert!(
        b_ih.iter().zip(b_hh).all(|(a, b)| a != b),
        "{kind}: bias_ih and bias_hh must differ"
    );
    // The CSVs print the float64 values to 10 digits, the safetensors hold them rounded to f32.
    let same = |what: &str, a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len(), "{kind}: {what}: length");
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= 1e-7, "{kind}: {what}[{k}]: {x} vs {y}");
        }
    };
    same(
        "output CSV vs safetensors",
        flat(&r.output_csv),
        flat(&r.expected.output),
    );
    same(
        "final h CSV vs safetensors",
        &r.final_state.0,
        &r.expected.h_final,
    );
    same(
        "trace vs final h",
        &r.trace.last().unwrap().0,
        &r.expected.h_final,
    );
    if let Some(c_final) = &r.expected.c_final {
        same(
            "final c CSV vs safetensors",
            &r.final_state.1.unwrap(),
            c_final,
        );
        same(
            "trace vs final c",
            &r.trace.last().unwrap().1.unwrap(),
            c_final,
        );
    }
}

/// Compares one forward + backward run with PyTorch.
fn check_run<P: Params<f32>>(rep: &mut Report, tag: &str, run: &Run<P>, r: &Reference<P>) {
    let e = &r.expected;
    rep.close(
        &format!("{tag} output (all steps)"),
        flat(&run.y),
        flat(&e.output),
    );
    let h_trace: Vec<[f32; H]> = r.trace.iter().map(|s| s.0).collect();
    rep.close(
        &format!("{tag} h (all steps)"),
        flat(&run.h_all),
        flat(&h_trace),
    );
    if let Some(c_all) = &run.c_all {
        let c_trace: Vec<[f32; H]> = r.trace.iter().map(|s| s.1.unwrap()).collect();
        rep.close(&format!("{tag} c (all steps)"), flat(c_all), flat(&c_trace));
    }
    rep.close(&format!("{tag} h final"), &run.h, &e.h_final);
    if let Some(c) = &run.c {
        rep.close(&format!("{tag} c final"), c, e.c_final.as_ref().unwrap());
    }
    rep.close(&format!("{tag} loss"), &[loss(&run.y)], &[e.loss]);
    for t in P::TENSORS {
        rep.close(
            &format!("{tag} grad {}", t.name),
            run.grad.tensor(t.name).unwrap(),
            r.grads.tensor(t.name).unwrap(),
        );
    }
    rep.close(
        &format!("{tag} grad_input"),
        flat(&run.dx),
        flat(&e.grad_input),
    );
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

// The PyTorch that made the LSTM fixture (see fixtures/pytorch/generate.py):
//
//     class LstmModel(nn.Module):
//         def __init__(self):
//             super().__init__()
//             self.lstm = nn.LSTM(5, 16)          # num_layers=1, batch_first=False
//             self.head = nn.Linear(16, 3)
//         def forward(self, x):                  # x: (T, 1, 5)
//             out, (h, c) = self.lstm(x)          # zero initial state
//             return self.head(out), h, c
//
//     torch.manual_seed(7)
//     model = LstmModel()
//     x = torch.randn(24, 1, 5)
//     m64 = copy.deepcopy(model).double()        # reference in float64 from the f32 values
//     x64 = x.double().requires_grad_()
//     y, h, c = m64(x64)
//     loss = (y ** 2).sum()
//     loss.backward()
//     # saved as float32: model.state_dict() -> lstm_model, {n: p.grad} -> lstm_grads,
//     # output = y[:, 0], h_final = h[0, 0], c_final = c[0, 0], loss, grad_input = x64.grad[:, 0]
#[test]
fn lstm_matches_pytorch() {
    let r: Reference<Lstm> = load_reference("lstm", true);
    check_fixture("lstm", &r);
    let mut rep = Report::default();

    let simd = run::<Simd, _>(CellKind::Lstm, &*r.model, &r.x);
    check_run(&mut rep, "lstm simd", &simd, &r);
    let naive = run::<Naive, _>(CellKind::Lstm, &*r.model, &r.x);
    check_run(&mut rep, "lstm naive", &naive, &r);

    // The embedded API: `step` one sample at a time gives the same outputs and state.
    let mut state = LstmState::<H>::zero();
    let y: Vec<[f32; O]> = r.x.iter().map(|x| r.model.step(x, &mut state)).collect();
    rep.close(
        "lstm step output (all steps)",
        flat(&y),
        flat(&r.expected.output),
    );
    rep.close("lstm step h final", &state.h, &r.expected.h_final);
    rep.close(
        "lstm step c final",
        &state.c,
        r.expected.c_final.as_ref().unwrap(),
    );
    rep.close("lstm step vs forward output", flat(&y), flat(&simd.y));
    let mut state = LstmState::<H>::zero();
    let y: Vec<[f32; O]> =
        r.x.iter()
            .map(|x| {
                r.model.lstm.step_with::<Naive>(x, &mut state);
                let mut y = [[0.0; O]];
                r.model
                    .head
                    .forward_with::<Naive>(&[state.h], &mut y)
                    .unwrap();
                y[0]
            })
            .collect();
    rep.close(
        "lstm naive step output (all steps)",
        flat(&y),
        flat(&r.expected.output),
    );
    rep.print("LSTM(5, 16) + Linear(16, 3) vs PyTorch:");
}

// The PyTorch that made the RNN fixture (see fixtures/pytorch/generate.py):
//
//     class RnnModel(nn.Module):
//         def __init__(self):
//             super().__init__()
//             self.rnn = nn.RNN(5, 16, nonlinearity="tanh")
//             self.head = nn.Linear(16, 3)
//         def forward(self, x):                  # x: (T, 1, 5)
//             out, h = self.rnn(x)                # zero initial state
//             return self.head(out), h
//
//     torch.manual_seed(8)
//     model = RnnModel()
//     x = torch.randn(24, 1, 5)
//     m64 = copy.deepcopy(model).double()
//     x64 = x.double().requires_grad_()
//     y, h = m64(x64)
//     loss = (y ** 2).sum()
//     loss.backward()
//     # saved as float32 like the LSTM's, without c_final
#[test]
fn rnn_matches_pytorch() {
    let r: Reference<Rnn> = load_reference("rnn", false);
    check_fixture("rnn", &r);
    let mut rep = Report::default();

    let simd = run::<Simd, _>(CellKind::RnnTanh, &*r.model, &r.x);
    check_run(&mut rep, "rnn simd", &simd, &r);
    let naive = run::<Naive, _>(CellKind::RnnTanh, &*r.model, &r.x);
    check_run(&mut rep, "rnn naive", &naive, &r);

    let mut h = [0.0; H];
    let y: Vec<[f32; O]> = r.x.iter().map(|x| r.model.step(x, &mut h)).collect();
    rep.close(
        "rnn step output (all steps)",
        flat(&y),
        flat(&r.expected.output),
    );
    rep.close("rnn step h final", &h, &r.expected.h_final);
    rep.close("rnn step vs forward output", flat(&y), flat(&simd.y));
    let mut h = [0.0; H];
    let y: Vec<[f32; O]> =
        r.x.iter()
            .map(|x| {
                r.model.rnn.step_with::<Naive>(x, &mut h);
                let mut y = [[0.0; O]];
                r.model.head.forward_with::<Naive>(&[h], &mut y).unwrap();
                y[0]
            })
            .collect();
    rep.close(
        "rnn naive step output (all steps)",
        flat(&y),
        flat(&r.expected.output),
    );
    rep.print("RNN(5, 16, tanh) + Linear(16, 3) vs PyTorch:");
}
