//! Every PyTorch recurrent model through the binary (issue 13): `tinyrnn infer` and `tinyrnn
//! export` take any `nn.LSTM`, `nn.GRU`, `nn.RNN` (tanh or relu) file of any `num_layers`, uni- or
//! bidirectional, with a linear head.
//!
//! * Each file of `fixtures/pytorch/recurrent/` (made by `fixtures/pytorch/recurrent.py`: every
//!   cell x num_layers 1-3 x uni/bi) is cut down to its `state_dict` (what
//!   `safetensors.torch.save_file(model.state_dict(), ...)` writes) and run by `tinyrnn infer` on
//!   the first sequence of its input from the zero state. The fixtures' own outputs start from a
//!   non-zero `h0` over a batch of 2, so the reference here is the core's `tinyrnn::Model::forward`
//!   run in-process on the same CSV (its PyTorch parity is `tests/pytorch_models.rs`); outputs and
//!   every layer's final state agree to 1e-5. A unidirectional model is stepped by `infer`, so
//!   this also checks step == sequence.
//! * `--nonlinearity`: a ReLU RNN file without metadata runs as tanh by default and as relu with
//!   the flag; a file whose metadata says one and a flag that says the other is refused.
//! * Bad files: each case gives one line on stderr naming the tensor or the entry, exit code 1,
//!   and writes nothing, for `infer` and for `export`.
//! * `export --rust` of a 2-layer GRU names its `Spec` and holds every parameter exactly, in
//!   order; its `--golden` is the closed loop of `Model::step`; a bidirectional model is refused.
//! * Files written by `host::modelfile::save_model` of every cell reload identically.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use host::modelfile::{ModelFile, save_model};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tinyrnn::{Cache, CellKind, Model, Outputs, Spec};

const TOL: f64 = 1e-5;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pytorch/recurrent");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/pytorch/recurrent")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/pytorch/recurrent")
        .join(format!("{name}.safetensors"))
}

fn tinyrnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinyrnn"))
        .args(args)
        .output()
        .expect("run tinyrnn")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A tensor to write: name, dtype, shape, little-endian bytes.
#[derive(Debug, Clone)]
struct Raw {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One fixture: its model as PyTorch's `state_dict` tensors, the core's spec and parameters, its
/// metadata, and the first input sequence (T·I).
struct Fixture {
    spec: Spec,
    params: Vec<f32>,
    tensors: Vec<Raw>,
    meta: HashMap<String, String>,
    x: Vec<f32>,
}

fn fixture(path: &Path) -> Fixture {
    let bytes = std::fs::read(path).expect("fixture");
    let (_, meta) = SafeTensors::read_metadata(&bytes).expect("metadata");
    let meta = meta.metadata().clone().expect("metadata");
    let num = |k: &str| meta[k].parse::<usize>().expect("a number");
    let cell = CellKind::from_names(&meta["cell"], meta.get("nonlinearity").map(String::as_str))
        .expect("cell");
    let spec = Spec {
        cell,
        input: num("input_size"),
        hidden: num("hidden_size"),
        layers: num("layers"),
        bidirectional: meta["bidirectional"] == "true",
        output: num("output_size"),
    };
    let st = SafeTensors::deserialize(&bytes).expect("safetensors");
    let values = |name: &str| -> Vec<f32> {
        let t = st.tensor(name).expect(name);
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let mut params = vec![0.0; spec.param_len()];
    let mut tensors = Vec::new();
    for t in spec.tensors() {
        let name = t.name.to_string();
        let v = values(&name);
        params[t.offset..t.offset + t.len()].copy_from_slice(&v);
        tensors.push(Raw {
            name,
            dtype: Dtype::F32,
            shape: t.shape().to_vec(),
            data: f32s(&v),
        });
    }
    let steps = num("steps");
    let x = values("input")[..steps * spec.input].to_vec(); // (B, T, I): the first sequence
    Fixture {
        spec,
        params,
        tensors,
        meta,
        x,
    }
}

/// The safetensors bytes of `tensors` and `meta`.
fn file_bytes(tensors: &[Raw], meta: &[(&str, &str)]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|t| {
            let v = TensorView::new(t.dtype, t.shape.clone(), &t.data).expect("view");
            (t.name.clone(), v)
        })
        .collect();
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    safetensors::serialize(views, (!meta.is_empty()).then_some(meta)).expect("serialize")
}

/// The architecture entries of a fixture's metadata, as a file written from PyTorch with them.
fn arch_meta(f: &Fixture) -> Vec<(&str, &str)> {
    ["cell", "nonlinearity", "layers", "bidirectional"]
        .into_iter()
        .filter_map(|k| Some((k, f.meta.get(k)?.as_str())))
        .collect()
}

fn input_csv(dir: &Path, x: &[f32], i: usize) -> PathBuf {
    let path = dir.join("x.csv");
    let mut text: String = (0..i)
        .map(|k| format!("x{k}"))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for row in x.chunks_exact(i) {
        let r: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        text.push_str(&r.join(","));
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write csv");
    path
}

/// `spec` over `params` on one sequence `x` from the zero state, the whole sequence at once:
/// outputs (T, O), final h and c ((L·D, H) each; c empty unless LSTM).
fn reference(spec: &Spec, params: &[f32], x: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let steps = x.len() / spec.input;
    let model = Model::new(*spec, params).expect("model");
    let n = spec.state_len(1);
    let mut h = vec![0.0; n];
    let mut c = vec![0.0; if spec.cell.has_c() { n } else { 0 }];
    let mut buf = vec![0.0; Cache::<f32>::len(spec, steps, 1)];
    let mut cache = Cache::new(spec, &mut buf, steps, 1, Outputs::EveryStep).expect("cache");
    let mut y = vec![0.0; steps * spec.output];
    model
        .forward(x, &mut h, &mut c, &mut cache, &mut y)
        .expect("forward");
    (y, h, c)
}

/// The rows of a CSV (header dropped), each field as text.
fn rows(text: &str) -> (String, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn num(v: &str) -> f64 {
    v.parse()
        .unwrap_or_else(|_| panic!("`{v}` is not a number"))
}

fn max_diff(got: &[f64], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .fold(0.0, |m, (a, b)| m.max((a - *b as f64).abs()))
}

/// Runs `infer` on `model` and `x`; returns (outputs (T·O), state CSV header, h, c).
fn infer(
    dir: &Path,
    model: &Path,
    x: &Path,
    extra: &[&str],
) -> (Vec<f64>, String, Vec<f64>, Vec<f64>) {
    let (y_path, s_path) = (dir.join("y.csv"), dir.join("s.csv"));
    let mut args = vec![
        "infer",
        "--model",
        s(model),
        "--input",
        s(x),
        "--output",
        s(&y_path),
        "--state",
        s(&s_path),
    ];
    args.extend_from_slice(extra);
    let out = tinyrnn(&args);
    assert!(
        out.status.success(),
        "infer {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, y) = rows(&std::fs::read_to_string(&y_path).expect("y.csv"));
    let y = y.iter().flatten().map(|v| num(v)).collect();
    let (header, st) = rows(&std::fs::read_to_string(&s_path).expect("s.csv"));
    let lstm = header.ends_with(",c");
    let (h_col, c_col) = if header.starts_with("layer,direction,") {
        (3, 4)
    } else {
        (1, 2)
    };
    let h = st.iter().map(|r| num(&r[h_col])).collect();
    let c = if lstm {
        st.iter().map(|r| num(&r[c_col])).collect()
    } else {
        Vec::new()
    };
    (y, header, h, c)
}

/// Every fixture, written as a plain `state_dict` file (with its architecture metadata, as
/// `recurrent.py` records it), runs under `tinyrnn infer` and gives the core's sequence forward.
#[test]
fn every_pytorch_fixture_runs_under_infer() {
    let files = fixtures();
    assert_eq!(files.len(), 24, "4 cells x 3 layer counts x 2 directions");
    let mut worst = 0.0f64;
    for path in files {
        let f = fixture(&path);
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.safetensors");
        std::fs::write(&model, file_bytes(&f.tensors, &arch_meta(&f))).unwrap();
        let x = input_csv(dir.path(), &f.x, f.spec.input);
        let (y, header, h, c) = infer(dir.path(), &model, &x, &[]);
        let (want_y, want_h, want_c) = reference(&f.spec, &f.params, &f.x);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let d = max_diff(&y, &want_y)
            .max(max_diff(&h, &want_h))
            .max(max_diff(&c, &want_c));
        assert!(d <= TOL, "{name}: max |infer - Model::forward| = {d:e}");
        worst = worst.max(d);
        let plain = f.spec.layers == 1 && !f.spec.bidirectional;
        let want_header = match (plain, f.spec.cell.has_c()) {
            (true, true) => "unit,h,c",
            (true, false) => "unit,h",
            (false, true) => "layer,direction,unit,h,c",
            (false, false) => "layer,direction,unit,h",
        };
        assert_eq!(header, want_header, "{name}");
        // The state rows name every layer and direction in PyTorch's h_n order.
        if !plain {
            let text = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
            let (_, st) = rows(&text);
            let last = &st[st.len() - 1];
            assert_eq!(last[0], (f.spec.layers - 1).to_string(), "{name}");
            let dir_name = if f.spec.bidirectional {
                "reverse"
            } else {
                "forward"
            };
            assert_eq!(last[1], dir_name, "{name}");
        }
    }
    eprintln!("24 fixtures: max |infer - Model::forward| = {worst:e}");
}

/// A ReLU RNN file without metadata is a tanh RNN unless `--nonlinearity relu` says otherwise;
/// a file that records one nonlinearity and a flag that says the other is refused.
#[test]
fn nonlinearity_comes_from_the_flag_or_the_metadata() {
    let f = fixture(&fixture_path("rnn_relu_l2_uni"));
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare.safetensors");
    std::fs::write(&bare, file_bytes(&f.tensors, &[])).unwrap();
    let x = input_csv(dir.path(), &f.x, f.spec.input);
    let tanh = Spec {
        cell: CellKind::RnnTanh,
        ..f.spec
    };
    let (want_relu, _, _) = reference(&f.spec, &f.params, &f.x);
    let (want_tanh, _, _) = reference(&tanh, &f.params, &f.x);
    assert!(
        max_diff(
            &want_relu.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &want_tanh
        ) > 1e-3
    );
    let (y, ..) = infer(dir.path(), &bare, &x, &[]);
    assert!(max_diff(&y, &want_tanh) <= TOL, "default is tanh");
    let (y, ..) = infer(dir.path(), &bare, &x, &["--nonlinearity", "tanh"]);
    assert!(max_diff(&y, &want_tanh) <= TOL);
    let (y, ..) = infer(dir.path(), &bare, &x, &["--nonlinearity", "relu"]);
    assert!(max_diff(&y, &want_relu) <= TOL, "--nonlinearity relu");
    // Recorded in the metadata: no flag needed, the same flag accepted, the other refused.
    let recorded = dir.path().join("recorded.safetensors");
    std::fs::write(&recorded, file_bytes(&f.tensors, &arch_meta(&f))).unwrap();
    let (y, ..) = infer(dir.path(), &recorded, &x, &[]);
    assert!(max_diff(&y, &want_relu) <= TOL, "metadata relu");
    let (y, ..) = infer(dir.path(), &recorded, &x, &["--nonlinearity", "relu"]);
    assert!(max_diff(&y, &want_relu) <= TOL);
    for cmd in [Cmd::Infer, Cmd::Export] {
        refused(
            cmd,
            &recorded,
            &x,
            &["--nonlinearity", "tanh"],
            "its metadata says nonlinearity `relu`, --nonlinearity says `tanh`",
        );
    }
    // The flag is for RNNs: given with a GRU it is a mistake.
    let g = fixture(&fixture_path("gru_l1_uni"));
    let gru = dir.path().join("gru.safetensors");
    std::fs::write(&gru, file_bytes(&g.tensors, &[])).unwrap();
    let gx = input_csv(dir.path(), &g.x, g.spec.input);
    refused(
        Cmd::Infer,
        &gru,
        &gx,
        &["--nonlinearity", "relu"],
        "--nonlinearity relu is for an RNN",
    );
}

#[derive(Debug, Clone, Copy)]
enum Cmd {
    Infer,
    Export,
}

/// `cmd` on `model` fails with exit code 1 and one line on stderr containing `mention`, and
/// writes nothing.
#[track_caller]
fn refused(cmd: Cmd, model: &Path, x: &Path, extra: &[&str], mention: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.out"), dir.path().join("b.out"));
    let mut args = match cmd {
        Cmd::Infer => vec![
            "infer",
            "--model",
            s(model),
            "--input",
            s(x),
            "--output",
            s(&a),
            "--state",
            s(&b),
        ],
        Cmd::Export => vec![
            "export",
            "--model",
            s(model),
            "--rust",
            s(&a),
            "--golden",
            s(&b),
        ],
    };
    args.extend_from_slice(extra);
    let out = tinyrnn(&args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{cmd:?} {args:?}: {err}");
    assert!(out.stdout.is_empty(), "{cmd:?}: printed {:?}", out.stdout);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{cmd:?}: not one line: {err}"
    );
    assert!(err.contains(mention), "{cmd:?}: `{mention}` not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{cmd:?} wrote {left:?}");
    err
}

/// Each bad file: one line naming the tensor or entry, exit code 1, nothing written, for
/// `infer` and `export` alike.
#[test]
fn bad_recurrent_files_give_one_line_and_write_nothing() {
    let f = fixture(&fixture_path("gru_l2_bi"));
    let l3 = fixture(&fixture_path("lstm_l3_uni"));
    let dir = tempfile::tempdir().unwrap();
    let x = input_csv(dir.path(), &f.x, f.spec.input);
    let edit = |base: &Fixture, change: &dyn Fn(&mut Vec<Raw>)| {
        let mut t = base.tensors.clone();
        change(&mut t);
        t
    };
    let set = |name: &'static str, raw: Raw| {
        move |t: &mut Vec<Raw>| {
            let k = t.iter().position(|r| r.name == name).expect(name);
            t[k] = Raw {
                name: name.into(),
                ..raw.clone()
            };
        }
    };
    let drop_where = |pred: fn(&str) -> bool| move |t: &mut Vec<Raw>| t.retain(|r| !pred(&r.name));
    let extra = |name: &'static str, shape: Vec<usize>| {
        move |t: &mut Vec<Raw>| {
            let n = shape.iter().product::<usize>();
            t.push(Raw {
                name: name.into(),
                dtype: Dtype::F32,
                shape: shape.clone(),
                data: f32s(&vec![0.5; n]),
            })
        }
    };
    let mut nan = f
        .tensors
        .iter()
        .find(|r| r.name == "gru.weight_ih_l1")
        .unwrap()
        .clone();
    nan.data[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut f64_bias = f
        .tensors
        .iter()
        .find(|r| r.name == "gru.bias_hh_l1")
        .unwrap()
        .clone();
    f64_bias.dtype = Dtype::F64;
    f64_bias.data = f64_bias.data.repeat(2);
    let mut wide = f
        .tensors
        .iter()
        .find(|r| r.name == "gru.weight_hh_l1")
        .unwrap()
        .clone();
    wide.shape = vec![15, 6];
    wide.data = f32s(&vec![0.1; 90]);
    let no_meta: &[(&str, &str)] = &[];
    // (what, tensors, metadata, the message's key part)
    type Case<'a> = (&'a str, Vec<Raw>, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (
            "missing",
            edit(&f, &drop_where(|n| n == "gru.bias_hh_l1_reverse")),
            no_meta.to_vec(),
            "tensor `gru.bias_hh_l1_reverse` is missing".into(),
        ),
        (
            "extra",
            edit(&f, &extra("gru.weight_hr_l0", vec![5, 5])),
            no_meta.to_vec(),
            "unsupported tensor `gru.weight_hr_l0`".into(),
        ),
        (
            "a layer beyond the model",
            edit(&f, &extra("gru.weight_ih_l2", vec![15, 10])),
            no_meta.to_vec(),
            "a reverse direction in some layers only".into(),
        ),
        (
            "wrong shape",
            edit(&f, &set("gru.weight_hh_l1", wide)),
            no_meta.to_vec(),
            "tensor `gru.weight_hh_l1` has shape [15, 6], expected [15, 5] = [3H, H]".into(),
        ),
        (
            "wrong dtype",
            edit(&f, &set("gru.bias_hh_l1", f64_bias)),
            no_meta.to_vec(),
            "tensor `gru.bias_hh_l1` has dtype F64, expected F32".into(),
        ),
        (
            "non-finite",
            edit(&f, &set("gru.weight_ih_l1", nan)),
            no_meta.to_vec(),
            "tensor `gru.weight_ih_l1` element 1 is NaN".into(),
        ),
        (
            "mixed prefixes",
            edit(&f, &extra("lstm.weight_ih_l0", vec![20, 3])),
            no_meta.to_vec(),
            "tensors of more than one recurrent module (`gru.*` and `lstm.*`)".into(),
        ),
        (
            "a gap in the layers",
            edit(&l3, &drop_where(|n| n.contains("_l1"))),
            no_meta.to_vec(),
            "a gap in the layers: `lstm.*_l2` tensors but no `lstm.*_l1`".into(),
        ),
        (
            "reverse in some layers only",
            edit(&f, &drop_where(|n| n.ends_with("_l1_reverse"))),
            no_meta.to_vec(),
            "a reverse direction in some layers only: layer 0 has `_reverse` tensors, layer 1 has none"
                .into(),
        ),
        (
            "metadata layers",
            f.tensors.clone(),
            vec![("layers", "3")],
            "metadata `layers` = `3`, but the tensors make it `2`".into(),
        ),
        (
            "metadata cell",
            f.tensors.clone(),
            vec![("cell", "lstm")],
            "metadata `cell` = `lstm`, but the tensors make it `gru`".into(),
        ),
        (
            "metadata bidirectional",
            f.tensors.clone(),
            vec![("bidirectional", "false")],
            "metadata `bidirectional` = `false`, but the tensors make it `true`".into(),
        ),
        (
            "metadata nonlinearity on a GRU",
            f.tensors.clone(),
            vec![("nonlinearity", "relu")],
            "an `gru` has no choice of nonlinearity".into(),
        ),
        (
            "metadata nonlinearity unknown",
            edit(&fixture(&fixture_path("rnn_tanh_l1_uni")), &|_| {}),
            vec![("nonlinearity", "sigmoid")],
            "metadata `nonlinearity` = `sigmoid`, expected `tanh` or `relu`".into(),
        ),
        (
            "no recurrent module",
            edit(&f, &drop_where(|n| n.starts_with("gru."))),
            no_meta.to_vec(),
            "no `lstm.*`, `gru.*` or `rnn.*` tensors".into(),
        ),
    ];
    let n = cases.len();
    for (what, tensors, meta, mention) in cases {
        let model = dir
            .path()
            .join(format!("{}.safetensors", what.replace(' ', "_")));
        std::fs::write(&model, file_bytes(&tensors, &meta)).unwrap();
        for cmd in [Cmd::Infer, Cmd::Export] {
            let err = refused(cmd, &model, &x, &[], &mention);
            assert!(err.contains(s(&model)), "{what}: names the file: {err}");
        }
    }
    eprintln!("{n} bad files x (infer, export): one line each, nothing written");
}

/// `export --rust` of a 2-layer GRU: the source names its `Spec` and holds every parameter
/// exactly, in `Spec::tensors` order; a bidirectional model is refused with one line.
#[test]
fn export_of_a_two_layer_gru_names_the_spec() {
    let f = fixture(&fixture_path("gru_l2_uni"));
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("gru2.safetensors");
    std::fs::write(&model, file_bytes(&f.tensors, &[])).unwrap();
    let out_rs = dir.path().join("model.rs");
    let out = tinyrnn(&["export", "--model", s(&model), "--rust", s(&out_rs)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("GRU(3 -> 5, 2 layers) + Linear(5 -> 2)"),
        "{summary}"
    );
    let src = std::fs::read_to_string(&out_rs).unwrap();
    for want in [
        "use tinyrnn::{CellKind, Spec};",
        "pub const SPEC: Spec = Spec {",
        "    cell: CellKind::Gru,",
        "    input: 3,",
        "    hidden: 5,",
        "    layers: 2,",
        "    bidirectional: false,",
        "    output: 2,",
        &format!("pub const N: usize = {};", f.spec.param_len()),
        "pub static PARAMS: [f32; N] = [",
        "    // gru.weight_ih_l1 [15, 5]",
        "    // head.bias [2]",
    ] {
        assert!(src.contains(want), "`{want}` not in the source");
    }
    let body = &src[src.find("pub static PARAMS").unwrap()..];
    let body = &body[body.find('[').unwrap() + 1..];
    let body = &body[body.find('[').unwrap() + 1..];
    let got: Vec<f32> = body
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.starts_with(']'))
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<f32>().unwrap_or_else(|_| panic!("`{t}`")))
        .collect();
    assert_eq!(got.len(), f.params.len());
    assert!(
        got.iter()
            .zip(&f.params)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );

    let b = fixture(&fixture_path("lstm_l1_bi"));
    let bi = dir.path().join("bi.safetensors");
    std::fs::write(&bi, file_bytes(&b.tensors, &[])).unwrap();
    let x = input_csv(dir.path(), &b.x, b.spec.input);
    refused(
        Cmd::Export,
        &bi,
        &x,
        &[],
        "a bidirectional model cannot run step by step",
    );
}

/// A seeded pseudo-random parameter buffer for `spec`.
fn params_for(spec: &Spec, seed: u32) -> Vec<f32> {
    (0..spec.param_len())
        .map(|k| (k as f32 * 0.731 + seed as f32 * 1.37).sin() * 0.4)
        .collect()
}

/// `--golden` of a 2-layer GRU with one input and one output is the closed loop of
/// `Model::step` from the zero state.
#[test]
fn golden_of_a_stacked_gru_is_the_closed_loop_of_step() {
    let spec = Spec {
        cell: CellKind::Gru,
        input: 1,
        hidden: 4,
        layers: 2,
        bidirectional: false,
        output: 1,
    };
    let params = params_for(&spec, 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.safetensors");
    save_model(&path, &spec, &params, &[("task", "sine".into())]).unwrap();
    let m = host::export::read(&path).unwrap();
    let (warm, got) = host::export::golden(&m, 6, 5).unwrap();
    let model = Model::new(spec, &params).unwrap();
    let (mut h, mut c) = (vec![0.0; spec.state_len(1)], Vec::new());
    let mut scratch = vec![0.0; model.step_scratch_len()];
    let mut y = [0.0f32];
    for &x in &warm {
        model
            .step(&[x], &mut h, &mut c, &mut scratch, &mut y)
            .unwrap();
    }
    let mut want = vec![y[0]];
    while want.len() < 5 {
        let x = y;
        model
            .step(&x, &mut h, &mut c, &mut scratch, &mut y)
            .unwrap();
        want.push(y[0]);
    }
    assert_eq!(got, want);
}

/// Files written by `save_model` of every cell, stacked and bidirectional, read back as the same
/// spec and the same parameters bit for bit, record their architecture, and run under `infer`
/// as the in-process model.
#[test]
fn tinyrnn_saved_files_reload_identically() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for cell in CellKind::ALL {
        for (layers, bidirectional) in [(1, false), (2, false), (2, true)] {
            let spec = Spec {
                cell,
                input: 3,
                hidden: 4,
                layers,
                bidirectional,
                output: 2,
            };
            let params = params_for(&spec, n);
            let path = dir
                .path()
                .join(format!("{cell}-{layers}-{bidirectional}.safetensors"));
            save_model(&path, &spec, &params, &[("task", "t".into())]).unwrap();
            let file = ModelFile::read(&path, &[]).unwrap();
            assert_eq!(file.spec, spec, "{}", path.display());
            let back = file.params();
            assert!(
                back.iter()
                    .zip(&params)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
            assert_eq!(back.len(), params.len());
            let meta = |k: &str| file.metadata.get(k).cloned();
            assert_eq!(meta("cell").as_deref(), Some(cell.module()));
            assert_eq!(meta("nonlinearity").as_deref(), cell.nonlinearity());
            assert_eq!(meta("layers"), Some(layers.to_string()));
            assert_eq!(meta("bidirectional"), Some(bidirectional.to_string()));
            assert_eq!(meta("task").as_deref(), Some("t"));
            let x: Vec<f32> = (0..15).map(|k| (k as f32 * 0.41).cos()).collect();
            let csv = input_csv(dir.path(), &x, 3);
            let (y, _, h, c) = infer(dir.path(), &path, &csv, &[]);
            let (want_y, want_h, want_c) = reference(&spec, &params, &x);
            let d = max_diff(&y, &want_y)
                .max(max_diff(&h, &want_h))
                .max(max_diff(&c, &want_c));
            assert!(d <= TOL, "{}: {d:e}", path.display());
            n += 1;
        }
    }
    assert_eq!(n, 12);
}
