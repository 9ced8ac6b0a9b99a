//! `tinyrnn infer` and the PyTorch round trip (issue 6, criteria 1 and 3).
//!
//! * Files written by PyTorch (`fixtures/pytorch/roundtrip/`, made by `roundtrip.py`: an
//!   `nn.LSTM(3, 8)` and an `nn.RNN(3, 8)`, each with `nn.Linear(8, 2)`, trained briefly, distinct
//!   biases) run under `tinyrnn infer` and give PyTorch's outputs and final state to 1e-5.
//! * The runtime-size path of `infer` is bit-identical to the typed core `step`.
//! * A model saved by tinyrnn (`host::modelfile::save`) reloads and gives identical outputs.
//! * Every bad model file or input CSV fails with one line, exit code != 0 (a `Failure`), no
//!   panic, and leaves no output file behind.
//!
//! The CLI runs in-process through `host::cli::run` (what `main` calls): `Failure::Task` exits
//! with 1, `Failure::Usage` with 2.

use std::path::{Path, PathBuf};

use host::cli::{Failure, run};
use host::infer::{DynModel, read_inputs};
use safetensors::tensor::{Dtype, TensorView};
use tinyrnn::{LstmModel, LstmState, Params, RnnModel, SeededRng};
use tinyrnn_tests::boxed_zeroed;

const TOL: f64 = 1e-5;

fn roundtrip(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pytorch/roundtrip")
        .join(name)
}

fn pytorch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pytorch")
        .join(name)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `tinyrnn infer ARGS`, which must succeed; returns what it prints.
#[track_caller]
fn infer_ok(args: &[String]) -> String {
    let mut argv = vec!["infer".to_string()];
    argv.extend_from_slice(args);
    match run(&argv) {
        Ok(out) => out,
        Err(Failure::Task(e)) => panic!("`tinyrnn {}` failed: {e:#}", argv.join(" ")),
        Err(e) => panic!("`tinyrnn {}` failed: {e:?}", argv.join(" ")),
    }
}

/// The numbers of a CSV file (or text), the header row (first line) dropped.
fn csv_values(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse::<f64>().expect("a number"))
                .collect()
        })
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Largest |a - b| over two tables of the same shape.
#[track_caller]
fn max_diff(what: &str, got: &[Vec<f64>], want: &[Vec<f64>]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    let mut m = 0.0f64;
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: columns of row {r}");
        for (a, b) in g.iter().zip(w) {
            m = m.max((a - b).abs());
        }
    }
    m
}

/// Runs a PyTorch-written model on the fixture input and compares with PyTorch's outputs and final
/// state; returns (max output error, max state error).
fn pytorch_file_matches(cell: &str) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (y, st) = (dir.path().join("y.csv"), dir.path().join("state.csv"));
    let summary = infer_ok(&[
        "--model".into(),
        s(&roundtrip(&format!("{cell}_model.safetensors"))),
        "--input".into(),
        s(&roundtrip("input.csv")),
        "--output".into(),
        s(&y),
        "--state".into(),
        s(&st),
    ]);
    assert!(
        summary.contains(&format!(
            "{}(3 -> 8) + Linear(8 -> 2), 40 steps",
            cell.to_uppercase()
        )),
        "{summary}"
    );
    let y_text = read(&y);
    assert_eq!(y_text.lines().next(), Some("y0,y1"));
    let st_text = read(&st);
    let header = if cell == "lstm" { "unit,h,c" } else { "unit,h" };
    assert_eq!(st_text.lines().next(), Some(header));
    let want_y = csv_values(&read(&roundtrip(&format!("{cell}_output.csv"))));
    let want_s = csv_values(&read(&roundtrip(&format!("{cell}_state.csv"))));
    assert_eq!(want_y.len(), 40);
    let ey = max_diff("outputs", &csv_values(&y_text), &want_y);
    let es = max_diff("final state", &csv_values(&st_text), &want_s);
    eprintln!("{cell}: max |tinyrnn - PyTorch|: outputs {ey:.2e}, final state {es:.2e}");
    assert!(ey <= TOL, "{cell}: outputs differ from PyTorch's by {ey:e}");
    assert!(
        es <= TOL,
        "{cell}: final state differs from PyTorch's by {es:e}"
    );
    (ey, es)
}

#[test]
fn pytorch_lstm_file_gives_pytorch_outputs() {
    pytorch_file_matches("lstm");
}

#[test]
fn pytorch_rnn_file_gives_pytorch_outputs() {
    pytorch_file_matches("rnn");
}

#[test]
fn the_fixture_biases_are_distinct_and_non_zero() {
    for cell in ["lstm", "rnn"] {
        let data = std::fs::read(roundtrip(&format!("{cell}_model.safetensors"))).unwrap();
        let st = safetensors::SafeTensors::deserialize(&data).unwrap();
        let get = |n: &str| -> Vec<f32> {
            st.tensor(n)
                .unwrap()
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        let bi = get(&format!("{cell}.bias_ih_l0"));
        let bh = get(&format!("{cell}.bias_hh_l0"));
        assert!(bi.len() >= 8);
        for (a, b) in bi.iter().zip(&bh) {
            assert!(*a != 0.0 && *b != 0.0 && a != b, "{cell}: biases {a} {b}");
        }
    }
}

#[test]
fn printed_output_equals_written_output() {
    let dir = tempfile::tempdir().unwrap();
    let (y, st) = (dir.path().join("y.csv"), dir.path().join("s.csv"));
    let model = s(&roundtrip("lstm_model.safetensors"));
    let input = s(&roundtrip("input.csv"));
    let base = ["--model".to_string(), model, "--input".into(), input];
    let mut to_files = base.to_vec();
    to_files.extend(["--output".into(), s(&y), "--state".into(), s(&st)]);
    infer_ok(&to_files);
    let (y_text, s_text) = (read(&y), read(&st));
    // Outputs only, to stdout (`main` adds the last newline).
    assert_eq!(infer_ok(&base) + "\n", y_text);
    // Outputs to a file, the state to stdout.
    let mut state_out = base.to_vec();
    state_out.extend(["--output".into(), s(&y), "--state".into()]);
    assert_eq!(infer_ok(&state_out) + "\n", s_text);
    // Both to stdout: outputs, an empty line, the state.
    let mut both = base.to_vec();
    both.push("--state".into());
    assert_eq!(infer_ok(&both) + "\n", format!("{y_text}\n{s_text}"));
}

#[test]
fn header_is_optional_and_whitespace_and_crlf_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let text = read(&roundtrip("input.csv"));
    let bare: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let crlf: String = text
        .lines()
        .map(|l| format!(" {} \r\n", l.replace(',', " , ")))
        .collect();
    let model = s(&roundtrip("rnn_model.safetensors"));
    let want = infer_ok(&[
        "--model".into(),
        model.clone(),
        "--input".into(),
        s(&roundtrip("input.csv")),
    ]);
    for (name, body) in [("bare.csv", bare), ("crlf.csv", crlf)] {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let got = infer_ok(&["--model".into(), model.clone(), "--input".into(), s(&p)]);
        assert_eq!(got, want, "{name}");
    }
}

/// The inputs of `fixtures/pytorch/K_input.csv` (5 columns), as rows.
fn pytorch_input<const I: usize>(file: &str) -> Vec<[f32; I]> {
    let x = read_inputs(&pytorch(file), I).expect("input");
    x.chunks_exact(I)
        .map(|r| r.try_into().expect("row"))
        .collect()
}

fn lstm_typed_vs_dynamic<const I: usize, const H: usize, const O: usize>(
    model: &LstmModel<I, H, O>,
    path: &Path,
    x: &[[f32; I]],
) {
    let mut state = LstmState::<H>::zero();
    let want: Vec<f32> = x.iter().flat_map(|x| model.step(x, &mut state)).collect();
    let dynm = DynModel::load(path).expect("load");
    assert_eq!(dynm.sizes(), (I, H, O));
    let mut ds = dynm.zero_state();
    let got = dynm.run(x.as_flattened(), &mut ds).expect("run");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want), "LSTM<{I},{H},{O}> outputs");
    assert_eq!(bits(ds.h()), bits(&state.h), "LSTM<{I},{H},{O}> h");
    assert_eq!(bits(ds.c()), bits(&state.c), "LSTM<{I},{H},{O}> c");
}

fn rnn_typed_vs_dynamic<const I: usize, const H: usize, const O: usize>(
    model: &RnnModel<I, H, O>,
    path: &Path,
    x: &[[f32; I]],
) {
    let mut h = [0.0f32; H];
    let want: Vec<f32> = x.iter().flat_map(|x| model.step(x, &mut h)).collect();
    let dynm = DynModel::load(path).expect("load");
    assert_eq!(dynm.sizes(), (I, H, O));
    let mut ds = dynm.zero_state();
    let got = dynm.run(x.as_flattened(), &mut ds).expect("run");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want), "RNN<{I},{H},{O}> outputs");
    assert_eq!(bits(ds.h()), bits(&h), "RNN<{I},{H},{O}> h");
    assert!(ds.c().is_empty());
}

#[test]
fn runtime_sizes_are_bit_identical_to_the_typed_step() {
    // The PyTorch parity fixture: nn.LSTM(5, 16) + Linear(16, 3), nn.RNN(5, 16) + Linear(16, 3).
    let path = pytorch("lstm_model.safetensors");
    let mut lstm = boxed_zeroed::<f32, LstmModel<5, 16, 3>>();
    host::modelfile::load_into(&path, lstm.as_mut()).expect("load");
    lstm_typed_vs_dynamic(&lstm, &path, &pytorch_input::<5>("lstm_input.csv"));
    let path = pytorch("rnn_model.safetensors");
    let mut rnn = boxed_zeroed::<f32, RnnModel<5, 16, 3>>();
    host::modelfile::load_into(&path, rnn.as_mut()).expect("load");
    rnn_typed_vs_dynamic(&rnn, &path, &pytorch_input::<5>("rnn_input.csv"));

    // Sizes that are not multiples of the SIMD width, saved by tinyrnn.
    let dir = tempfile::tempdir().unwrap();
    let mut rng: SeededRng = tinyrnn::rng(5);
    let x: Vec<[f32; 3]> = (0..30)
        .map(|t| {
            let t = t as f32;
            [(0.3 * t).sin(), (0.17 * t).cos() * 2.0, 0.05 * t - 0.7]
        })
        .collect();
    let mut lstm = boxed_zeroed::<f32, LstmModel<3, 13, 2>>();
    lstm.init(&mut rng, Some(1.0));
    let path = dir.path().join("lstm13.safetensors");
    host::modelfile::save(&path, lstm.as_ref(), &[]).unwrap();
    lstm_typed_vs_dynamic(&lstm, &path, &x);
    let mut rnn = boxed_zeroed::<f32, RnnModel<3, 37, 5>>();
    rnn.init(&mut rng);
    let path = dir.path().join("rnn37.safetensors");
    host::modelfile::save(&path, rnn.as_ref(), &[]).unwrap();
    rnn_typed_vs_dynamic(&rnn, &path, &x);
}

#[test]
fn a_model_saved_by_tinyrnn_reloads_and_gives_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = s(&roundtrip("input.csv"));
    for cell in ["lstm", "rnn"] {
        let original = roundtrip(&format!("{cell}_model.safetensors"));
        let saved = dir.path().join(format!("{cell}_saved.safetensors"));
        let meta = [
            ("task", "roundtrip".to_string()),
            ("cell", cell.to_string()),
        ];
        if cell == "lstm" {
            let mut m = boxed_zeroed::<f32, LstmModel<3, 8, 2>>();
            host::modelfile::load_into(&original, m.as_mut()).expect("load");
            host::modelfile::save(&saved, m.as_ref(), &meta).expect("save");
            let mut back = boxed_zeroed::<f32, LstmModel<3, 8, 2>>();
            host::modelfile::load_into(&saved, back.as_mut()).expect("reload");
            assert_eq!(back.as_flat(), m.as_flat());
        } else {
            let mut m = boxed_zeroed::<f32, RnnModel<3, 8, 2>>();
            host::modelfile::load_into(&original, m.as_mut()).expect("load");
            host::modelfile::save(&saved, m.as_ref(), &meta).expect("save");
            let mut back = boxed_zeroed::<f32, RnnModel<3, 8, 2>>();
            host::modelfile::load_into(&saved, back.as_mut()).expect("reload");
            assert_eq!(back.as_flat(), m.as_flat());
        }
        let run_on = |model: &Path| {
            infer_ok(&[
                "--model".into(),
                s(model),
                "--input".into(),
                input.clone(),
                "--state".into(),
            ])
        };
        assert_eq!(run_on(&saved), run_on(&original), "{cell}");
        let dynm = DynModel::load(&saved).unwrap();
        assert_eq!(
            dynm.metadata.get("task").map(String::as_str),
            Some("roundtrip")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: one line, a failure (exit code != 0), no panic, nothing written.

/// A tensor of a hand-made model file: name, dtype, shape.
type Spec = (String, Dtype, Vec<usize>);

/// The tensors of a well-formed model: `cell` is "lstm" or "rnn".
fn good(cell: &str, i: usize, h: usize, o: usize) -> Vec<Spec> {
    let g = if cell == "lstm" { 4 } else { 1 };
    vec![
        (format!("{cell}.weight_ih_l0"), Dtype::F32, vec![g * h, i]),
        (format!("{cell}.weight_hh_l0"), Dtype::F32, vec![g * h, h]),
        (format!("{cell}.bias_ih_l0"), Dtype::F32, vec![g * h]),
        (format!("{cell}.bias_hh_l0"), Dtype::F32, vec![g * h]),
        ("head.weight".into(), Dtype::F32, vec![o, h]),
        ("head.bias".into(), Dtype::F32, vec![o]),
    ]
}

fn with_shape(mut specs: Vec<Spec>, name: &str, shape: &[usize]) -> Vec<Spec> {
    for t in &mut specs {
        if t.0 == name {
            t.2 = shape.to_vec();
        }
    }
    specs
}

fn with_dtype(mut specs: Vec<Spec>, name: &str, dtype: Dtype) -> Vec<Spec> {
    for t in &mut specs {
        if t.0 == name {
            t.1 = dtype;
        }
    }
    specs
}

fn without(specs: Vec<Spec>, name: &str) -> Vec<Spec> {
    specs.into_iter().filter(|t| t.0 != name).collect()
}

fn with(mut specs: Vec<Spec>, extra: Vec<Spec>) -> Vec<Spec> {
    specs.extend(extra);
    specs
}

/// Serialises `specs` (small non-zero values) as a safetensors file.
fn model_bytes(specs: &[Spec]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = specs
        .iter()
        .map(|(_, dtype, shape)| {
            let n: usize = shape.iter().product();
            let size = match dtype {
                Dtype::F64 | Dtype::I64 => 8,
                Dtype::F16 | Dtype::BF16 => 2,
                _ => 4,
            };
            (0..n * size).map(|k| (k % 7 + 1) as u8).collect()
        })
        .collect();
    let views: Vec<(String, TensorView)> = specs
        .iter()
        .zip(&data)
        .map(|((name, dtype, shape), d)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), d).expect("view"),
            )
        })
        .collect();
    safetensors::serialize(views, None).expect("serialize")
}

/// Runs `infer` on `model` (bytes) and `input` (text) in a fresh directory, with `--output` and
/// `--state` files; asserts a one-line `Failure::Task` that mentions every part of `mention`, and
/// that the directory holds nothing but the two inputs afterwards. Returns the message.
#[track_caller]
fn fails_with(model: &[u8], input: &str, mention: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (m, x) = (dir.path().join("m.safetensors"), dir.path().join("x.csv"));
    std::fs::write(&m, model).unwrap();
    std::fs::write(&x, input).unwrap();
    let args = [
        "infer".to_string(),
        "--model".into(),
        s(&m),
        "--input".into(),
        s(&x),
        "--output".into(),
        s(&dir.path().join("y.csv")),
        "--state".into(),
        s(&dir.path().join("s.csv")),
    ];
    let line = match run(&args) {
        Ok(out) => panic!("infer succeeded ({mention:?}): {out}"),
        Err(Failure::Task(e)) => format!("{e:#}"),
        Err(e) => panic!("expected a task failure ({mention:?}), got {e:?}"),
    };
    assert!(!line.trim().is_empty());
    assert!(!line.contains('\n'), "not one line: {line}");
    for m in mention {
        assert!(line.contains(m), "`{line}` does not mention `{m}`");
    }
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["m.safetensors", "x.csv"], "files left by `{line}`");
    line
}

/// A valid input for a model with 3 inputs.
const X3: &str = "x0,x1,x2\n0.1,0.2,0.3\n-1,2.5e-1,3\n";

#[test]
fn bad_model_files_fail_with_one_line() {
    let lstm = || good("lstm", 3, 8, 2);
    let rnn = || good("rnn", 3, 8, 2);
    // The hand-made good files run (so each failure below is the one change made to them).
    for specs in [lstm(), rnn()] {
        let dir = tempfile::tempdir().unwrap();
        let (m, x) = (dir.path().join("m.safetensors"), dir.path().join("x.csv"));
        std::fs::write(&m, model_bytes(&specs)).unwrap();
        std::fs::write(&x, X3).unwrap();
        infer_ok(&["--model".into(), s(&m), "--input".into(), s(&x)]);
    }
    let cases: Vec<(Vec<Spec>, Vec<&str>)> = vec![
        // Wrong shapes.
        (
            with_shape(lstm(), "lstm.weight_hh_l0", &[32, 9]),
            vec!["`lstm.weight_hh_l0`", "[32, 9]", "expected [32, 8]"],
        ),
        (
            with_shape(lstm(), "lstm.weight_hh_l0", &[32, 8, 1]),
            vec!["`lstm.weight_hh_l0`", "[32, 8, 1]"],
        ),
        (
            with_shape(rnn(), "rnn.weight_hh_l0", &[8, 16]),
            vec!["`rnn.weight_hh_l0`", "[8, 16]", "expected [8, 8]"],
        ),
        (
            with_shape(lstm(), "lstm.weight_ih_l0", &[30, 3]),
            vec!["`lstm.weight_ih_l0`", "[30, 3]", "[4H, I]"],
        ),
        (
            with_shape(lstm(), "lstm.weight_ih_l0", &[32]),
            vec!["`lstm.weight_ih_l0`", "[32]"],
        ),
        (
            with_shape(lstm(), "lstm.weight_ih_l0", &[0, 3]),
            vec!["`lstm.weight_ih_l0`", "[0, 3]"],
        ),
        (
            with_shape(lstm(), "head.weight", &[2]),
            vec!["`head.weight`", "[O, H]"],
        ),
        // Sizes that disagree between tensors.
        (
            with_shape(lstm(), "head.weight", &[2, 7]),
            vec!["`head.weight`", "[2, 7]", "expected [2, 8]"],
        ),
        (
            with_shape(lstm(), "lstm.bias_ih_l0", &[28]),
            vec!["`lstm.bias_ih_l0`", "[28]", "expected [32]"],
        ),
        (
            with_shape(rnn(), "rnn.bias_hh_l0", &[9]),
            vec!["`rnn.bias_hh_l0`", "[9]", "expected [8]"],
        ),
        (
            with_shape(lstm(), "head.bias", &[3]),
            vec!["`head.bias`", "[3]", "expected [2]"],
        ),
        // Missing tensors.
        (
            without(lstm(), "lstm.bias_hh_l0"),
            vec!["`lstm.bias_hh_l0` is missing"],
        ),
        (
            without(rnn(), "rnn.weight_ih_l0"),
            vec!["`rnn.weight_ih_l0` is missing"],
        ),
        (without(lstm(), "head.bias"), vec!["`head.bias` is missing"]),
        (
            without(lstm(), "head.weight"),
            vec!["`head.weight` is missing"],
        ),
        (
            lstm().into_iter().skip(4).collect(),
            vec!["not a recurrent model"],
        ),
        (Vec::new(), vec!["not a recurrent model"]),
        // Modules tinyrnn does not run.
        (
            with(
                lstm(),
                vec![("lstm.weight_ih_l1".into(), Dtype::F32, vec![32, 8])],
            ),
            vec!["tensor `lstm.weight_hh_l1` is missing"],
        ),
        (
            with(
                lstm(),
                vec![("lstm.weight_hr_l0".into(), Dtype::F32, vec![4, 8])],
            ),
            vec!["unsupported tensor `lstm.weight_hr_l0`"],
        ),
        (
            with(
                lstm(),
                vec![("lstm.weight_ih_l0_reverse".into(), Dtype::F32, vec![32, 3])],
            ),
            vec!["tensor `lstm.weight_hh_l0_reverse` is missing"],
        ),
        (
            with(lstm(), vec![("head.foo".into(), Dtype::F32, vec![2])]),
            vec!["unsupported tensor `head.foo`"],
        ),
        // Tensors outside the model's names too: every tensor is used or the file refused.
        (
            with(
                lstm(),
                vec![("optimizer.state".into(), Dtype::F32, vec![4])],
            ),
            vec!["unsupported tensor `optimizer.state`"],
        ),
        (
            with(
                rnn(),
                vec![("encoder.weight".into(), Dtype::F32, vec![2, 2])],
            ),
            vec!["unsupported tensor `encoder.weight`"],
        ),
        (
            with(lstm(), rnn()[..2].to_vec()),
            vec!["more than one recurrent module (`lstm.*` and `rnn.*`)"],
        ),
        // Dtypes other than F32.
        (
            with_dtype(lstm(), "lstm.weight_ih_l0", Dtype::F64),
            vec!["`lstm.weight_ih_l0`", "dtype F64, expected F32"],
        ),
        (
            with_dtype(lstm(), "head.bias", Dtype::F16),
            vec!["`head.bias`", "dtype F16, expected F32"],
        ),
        (
            with_dtype(rnn(), "rnn.bias_ih_l0", Dtype::BF16),
            vec!["`rnn.bias_ih_l0`", "dtype BF16, expected F32"],
        ),
        (
            with_dtype(rnn(), "rnn.weight_hh_l0", Dtype::I32),
            vec!["`rnn.weight_hh_l0`", "dtype I32, expected F32"],
        ),
    ];
    for (specs, mention) in cases {
        let line = fails_with(&model_bytes(&specs), X3, &mention);
        eprintln!("{line}");
    }
}

#[test]
fn truncated_and_foreign_files_fail_with_one_line() {
    let good = std::fs::read(roundtrip("lstm_model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let not_st = "is not a valid safetensors file";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() - 1].to_vec(), not_st), // last byte cut
        (good[..good.len() / 2].to_vec(), not_st), // cut in the data
        (good[..8 + header_len / 2].to_vec(), not_st), // cut in the header
        (good[..5].to_vec(), not_st),              // cut in the header length
        (Vec::new(), not_st),                      // empty
        (b"x0,x1,x2\n1,2,3\n".to_vec(), not_st),   // a CSV
        (
            {
                // A header length far past the end of the file.
                let mut b = good.clone();
                b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
                b
            },
            not_st,
        ),
        (
            {
                // Valid length, garbage JSON.
                let mut b = 8u64.to_le_bytes().to_vec();
                b.extend_from_slice(b"{not json");
                b
            },
            not_st,
        ),
        (
            {
                // Extra bytes after the last tensor.
                let mut b = good.clone();
                b.extend_from_slice(&[0; 4]);
                b
            },
            not_st,
        ),
    ];
    for (bytes, mention) in cases {
        let line = fails_with(&bytes, X3, &[mention]);
        eprintln!("{line}");
    }
}

#[test]
fn bad_input_csvs_fail_with_one_line() {
    let model = std::fs::read(roundtrip("lstm_model.safetensors")).unwrap();
    let cases: &[(&str, &[&str])] = &[
        // Wrong number of columns (the model has 3 inputs): say which line.
        (
            "x0,x1,x2\n1,2,3\n4,5,6\n7,8\n",
            &["line 4", "2 columns, expected 3"],
        ),
        ("1,2,3,4\n", &["line 1", "4 columns, expected 3"]),
        ("x0,x1\n1,2\n", &["line 1", "2 columns, expected 3"]),
        ("1,2,3\n\n4\n", &["line 3", "1 column, expected 3"]),
        // Not a number: say line and column.
        ("x0,x1,x2\n1,2,3\n4,abc,6\n", &["line 3, column 2", "`abc`"]),
        ("1,2,3\n4,5,6e\n", &["line 2, column 3", "`6e`"]),
        ("x0,1,2\n1,2,3\n", &["line 1, column 1", "`x0`"]),
        ("x0,x1,x2\n1,,3\n", &["line 2, column 2", "empty"]),
        (
            "x0,x1,x2\n1,2,3\nnan,2,3\n",
            &["line 3, column 1", "not a finite number"],
        ),
        ("1,2,inf\n", &["line 1, column 3", "not a finite number"]),
        ("1,2,1e39\n", &["line 1, column 3", "not a finite number"]),
        ("1,2,\u{fffd}\n", &["line 1, column 3", "is not a number"]),
        // Empty input.
        ("", &["no input rows"]),
        ("x0,x1,x2\n", &["no input rows"]),
        ("\n\n", &["no input rows"]),
    ];
    for (input, mention) in cases {
        let line = fails_with(&model, input, mention);
        eprintln!("{line}");
    }
    // Bytes that are not UTF-8 in a field.
    let dir = tempfile::tempdir().unwrap();
    let (m, x) = (dir.path().join("m.safetensors"), dir.path().join("x.csv"));
    std::fs::write(&m, &model).unwrap();
    std::fs::write(&x, b"1,2,3\n1,\xff\xfe,3\n").unwrap();
    match run([
        "infer",
        "--model",
        &s(&m),
        "--input",
        &s(&x),
        "--output",
        &s(&dir.path().join("y.csv")),
    ]) {
        Err(Failure::Task(e)) => {
            let line = format!("{e:#}");
            assert!(
                line.contains("line 2, column 2") && !line.contains('\n'),
                "{line}"
            );
        }
        other => panic!("non-UTF-8 field: {other:?}"),
    }
    assert!(!dir.path().join("y.csv").exists());
}

#[test]
fn missing_files_and_bad_command_lines_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = s(&roundtrip("lstm_model.safetensors"));
    let input = s(&roundtrip("input.csv"));
    let nowhere = s(&dir.path().join("nope"));
    let y = s(&dir.path().join("y.csv"));
    let task = |args: &[&str], mention: &str| match run(
        std::iter::once("infer").chain(args.iter().copied())
    ) {
        Err(Failure::Task(e)) => {
            let line = format!("{e:#}");
            assert!(
                !line.contains('\n') && line.contains(mention),
                "{args:?}: {line}"
            );
        }
        other => panic!("{args:?}: expected a task failure, got {other:?}"),
    };
    task(
        &["--model", &nowhere, "--input", &input, "--output", &y],
        "cannot read",
    );
    task(
        &["--model", &model, "--input", &nowhere, "--output", &y],
        "cannot read",
    );
    let deep = s(&dir.path().join("no/such/dir/y.csv"));
    task(
        &["--model", &model, "--input", &input, "--output", &deep],
        "cannot write",
    );
    task(
        &[
            "--model", &model, "--input", &input, "--output", &y, "--state", &y,
        ],
        "same file",
    );
    let usage = |args: &[&str]| match run(std::iter::once("infer").chain(args.iter().copied())) {
        Err(Failure::Usage(line)) => assert!(!line.contains('\n'), "{args:?}: {line}"),
        other => panic!("{args:?}: expected a usage failure, got {other:?}"),
    };
    usage(&["--input", &input]);
    usage(&["--model", &model]);
    usage(&["--model", &model, "--input", &input, "--bogus"]);
    usage(&["--model", &model, "--input", &input, "--output"]);
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {:?}", left.pop());
}
