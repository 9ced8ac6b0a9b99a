//! int8 model files from the command line (issue 12): `tinyrnn quantize` writes what
//! `QuantModel::quantize` computes, `infer` on the file equals `QuantModel::run`, damaged files
//! are refused with one line (exit 1), the float and int8 readers name each other's files, and
//! `export --rust` of an int8 file compiles in a no_std crate and computes, on the host, exactly
//! the int8 outputs `export --golden` records.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use host::infer::{DynModel, dequantized, outputs_csv, state_csv};
use host::modelfile::describe;
use host::modelfile::{RawTensor, encode};
use host::quant::{QuantModel, Ranges, comma_list};
use safetensors::tensor::{Dtype, SafeTensors};
use tinyrnn::{CellKind, LstmModel, Params, RnnModel, Spec};

fn tinyrnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinyrnn"))
        .args(args)
        .output()
        .expect("run tinyrnn")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `args`, which must succeed; returns stdout.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let out = tinyrnn(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs `args`, which must fail with exit code `code` and one line on stderr mentioning every
/// part of `want`; returns the line.
#[track_caller]
fn refused(args: &[&str], code: i32, want: &[&str]) -> String {
    let out = tinyrnn(args);
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: `{w}` not in: {err}");
    }
    err
}

/// A directory with a float model `f32.safetensors` of `cell` (`lstm`, `rnn`, `gru`; `lstm2`,
/// `gru2`: two layers; I = 2, H = 6, O = 3, or 1 in and 1 out with `sine`) and a calibration CSV
/// `cal.csv` (with a header) and `cal2.csv`.
struct Fixture {
    dir: tempfile::TempDir,
    i: usize,
}

/// The float model of a fixture's `cell` name.
fn fixture_spec(cell: &str, sine: bool) -> Spec {
    let (kind, layers) = match cell {
        "lstm" => (CellKind::Lstm, 1),
        "rnn" => (CellKind::RnnTanh, 1),
        "gru" => (CellKind::Gru, 1),
        "lstm2" => (CellKind::Lstm, 2),
        "gru2" => (CellKind::Gru, 2),
        other => panic!("no fixture {other}"),
    };
    let (i, o) = if sine { (1, 1) } else { (2, 3) };
    Spec {
        layers,
        ..Spec::new(kind, i, 6, o)
    }
}

impl Fixture {
    fn new(cell: &str, sine: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f32.safetensors");
        let spec = fixture_spec(cell, sine);
        let meta = [
            ("task", "quant test".to_string()),
            ("cell", spec.cell.module().to_string()),
        ];
        let mut rng = tinyrnn::rng(11);
        match (cell, sine) {
            ("lstm", false) => {
                let mut m: Box<LstmModel<2, 6, 3>> = tinyrnn_boxed();
                m.init(&mut rng, Some(1.0));
                host::modelfile::save(&path, &*m, &meta).unwrap();
            }
            ("lstm", true) => {
                let mut m: Box<LstmModel<1, 6, 1>> = tinyrnn_boxed();
                m.init(&mut rng, Some(1.0));
                host::modelfile::save(&path, &*m, &meta).unwrap();
            }
            ("rnn", false) => {
                let mut m: Box<RnnModel<2, 6, 3>> = tinyrnn_boxed();
                m.init(&mut rng);
                host::modelfile::save(&path, &*m, &meta).unwrap();
            }
            ("rnn", true) => {
                let mut m: Box<RnnModel<1, 6, 1>> = tinyrnn_boxed();
                m.init(&mut rng);
                host::modelfile::save(&path, &*m, &meta).unwrap();
            }
            _ => {
                let mut m = host::net::Net::new(spec).unwrap();
                m.init(&mut rng, Some(1.0));
                m.save(&path, &[], &meta, false).unwrap();
            }
        }
        let i = spec.input;
        for (name, w) in [("cal.csv", 0.3f32), ("cal2.csv", 0.17)] {
            let mut csv = (0..i)
                .map(|k| format!("x{k}"))
                .collect::<Vec<_>>()
                .join(",")
                + "\n";
            for t in 0..50 {
                let row: Vec<String> = (0..i)
                    .map(|k| format!("{:?}", (w * t as f32 + k as f32).sin() * 2.0))
                    .collect();
                csv.push_str(&(row.join(",") + "\n"));
            }
            std::fs::write(dir.path().join(name), csv).unwrap();
        }
        Self { dir, i }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tinyrnn quantize` of the fixture to `q.safetensors`; returns its summary line.
    fn quantize(&self) -> String {
        let (m, c, c2, q) = (
            self.path("f32.safetensors"),
            self.path("cal.csv"),
            self.path("cal2.csv"),
            self.path("q.safetensors"),
        );
        ok(&[
            "quantize",
            "--model",
            s(&m),
            "--calibrate",
            s(&c),
            "--calibrate",
            s(&c2),
            "--out",
            s(&q),
        ])
    }

    fn inputs(&self, name: &str) -> Vec<f32> {
        host::infer::read_inputs(&self.path(name), self.i).unwrap()
    }
}

fn tinyrnn_boxed<T: Params<f32>>() -> Box<T> {
    host::net::boxed_zeroed()
}

/// quantize writes exactly `QuantModel::quantize` of the calibrated ranges, with the float
/// model's metadata; `infer` on the file prints `QuantModel::run`'s outputs and its dequantized
/// state (every layer's, in the float model's CSV form), for LSTM, tanh RNN, GRU and 2-layer
/// LSTM and GRU stacks.
#[test]
fn quantize_writes_the_library_model_and_infer_runs_it() {
    for cell in ["lstm", "rnn", "gru", "lstm2", "gru2"] {
        let f = Fixture::new(cell, false);
        let spec = fixture_spec(cell, false);
        let line = f.quantize();
        assert!(
            line.starts_with(&format!(
                "quantize: {} to int8-rowwise-v1 x_scale=",
                describe(&spec)
            )) && line.contains("max |f32 - int8| = ")
                && line.contains("over 100 steps of 2 calibration sequences"),
            "{line}"
        );
        let float = DynModel::load(&f.path("f32.safetensors")).unwrap();
        let (x1, x2) = (f.inputs("cal.csv"), f.inputs("cal2.csv"));
        let ranges = Ranges::of(&float, [x1.as_slice(), x2.as_slice()]).unwrap();
        let want = QuantModel::quantize(&float, &ranges).unwrap();
        let (q, meta) = QuantModel::read(&f.path("q.safetensors")).unwrap();
        assert_eq!(q, want);
        assert_eq!(q.spec, spec);
        assert_eq!(meta.get("task").map(String::as_str), Some("quant test"));
        assert_eq!(meta.get("layers"), Some(&spec.layers.to_string()));
        assert!(
            line.contains(&format!(
                "x_scale={:?} c_frac={} shift={};",
                q.x_scale,
                comma_list(&q.c_fracs()),
                comma_list(&q.shifts())
            )),
            "{line}"
        );
        // The reported error is the largest over both sequences.
        let mut worst = 0f32;
        for x in [&x1, &x2] {
            let (a, b) = (
                float.run(x, &mut float.zero_state()).unwrap(),
                q.run(x, &mut q.zero_state()).unwrap(),
            );
            worst = a
                .iter()
                .zip(&b)
                .fold(worst, |w, (a, b)| w.max((a - b).abs()));
        }
        assert!(
            line.contains(&format!("= {worst:.3e} over")),
            "{worst}: {line}"
        );

        let out = ok(&[
            "infer",
            "--model",
            s(&f.path("q.safetensors")),
            "--input",
            s(&f.path("cal2.csv")),
            "--state",
        ]);
        let mut state = q.zero_state();
        let y = q.run(&x2, &mut state).unwrap();
        let want = format!(
            "{}\n{}",
            outputs_csv(3, &y),
            state_csv(spec.layers, 1, &dequantized(&q, &state))
        );
        assert_eq!(out, want);
        let header = match (spec.layers, spec.cell) {
            (1, CellKind::Lstm) => "unit,h,c\n",
            (1, _) => "unit,h\n",
            (_, CellKind::Lstm) => "layer,direction,unit,h,c\n",
            _ => "layer,direction,unit,h\n",
        };
        assert!(out.contains(header), "{out}");
        // Every layer's state: L·H rows after the header.
        let rows = out.split("\n\n").nth(1).unwrap().lines().count() - 1;
        assert_eq!(rows, spec.layers * 6);
        // To files: the summary says int8.
        let (yp, sp) = (f.path("y.csv"), f.path("s.csv"));
        let line = ok(&[
            "infer",
            "--model",
            s(&f.path("q.safetensors")),
            "--input",
            s(&f.path("cal2.csv")),
            "--output",
            s(&yp),
            "--state",
            s(&sp),
        ]);
        assert!(
            line.starts_with(&format!("infer: int8 {}, 50 steps;", describe(&spec))),
            "{line}"
        );
        assert_eq!(std::fs::read_to_string(&yp).unwrap(), outputs_csv(3, &y));
    }
}

/// A bidirectional model and a ReLU RNN are refused by `quantize` with one line naming the file
/// and the model (exit 1, nothing written).
#[test]
fn quantize_refuses_bidirectional_and_relu_models() {
    let f = Fixture::new("lstm", false);
    for (name, spec, nl) in [
        (
            "bi.safetensors",
            Spec {
                bidirectional: true,
                ..Spec::new(CellKind::Gru, 2, 4, 3)
            },
            "bidirectional",
        ),
        (
            "relu.safetensors",
            Spec::new(CellKind::RnnRelu, 2, 4, 3),
            "ReLU RNN has no int8 cell",
        ),
    ] {
        let m = host::net::Net::new(spec).unwrap();
        let path = f.path(name);
        m.save(&path, &[], &[], false).unwrap();
        let q = f.path("q.safetensors");
        refused(
            &[
                "quantize",
                "--model",
                s(&path),
                "--calibrate",
                s(&f.path("cal.csv")),
                "--out",
                s(&q),
            ],
            1,
            &[&format!("{name} holds {}", describe(&spec)), nl],
        );
        assert!(!q.exists());
    }
}

/// An int8 file written before stacks (one layer, no `layers` entry; the firmware's
/// `sine-int8.safetensors`) still reads, runs and exports as the one-layer `QModel`.
#[test]
fn a_one_layer_int8_file_from_before_stacks_still_reads() {
    let old =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../embedded/firmware/sine-int8.safetensors");
    let (_, meta) = contents(&old);
    assert!(meta.iter().all(|(k, _)| k != "layers"), "not an old file");
    let (q, _) = QuantModel::read(&old).unwrap();
    assert_eq!(q.spec, Spec::new(CellKind::Lstm, 1, 32, 1));
    assert_eq!((q.shifts(), q.c_fracs()), (vec![0], vec![13]));
    let y = q.run(&[0.5, -0.25, 0.1], &mut q.zero_state()).unwrap();
    assert_eq!(y.len(), 3);
    let dir = tempfile::tempdir().unwrap();
    let rs = dir.path().join("m.rs");
    ok(&["export", "--model", s(&old), "--rust", s(&rs)]);
    let src = std::fs::read_to_string(&rs).unwrap();
    assert!(src.contains("pub static MODEL: QModel<'static> = QModel {"));
}

/// The tensors and metadata of a safetensors file.
fn contents(path: &Path) -> (Vec<RawTensor>, Vec<(String, String)>) {
    let data = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&data).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(n, v)| RawTensor {
            name: n,
            dtype: v.dtype(),
            shape: v.shape().to_vec(),
            data: v.data().to_vec(),
        })
        .collect();
    let (_, meta) = SafeTensors::read_metadata(&data).unwrap();
    let meta = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    (tensors, meta)
}

/// Writes `from` edited by `edit` to `to`.
fn rewrite(
    from: &Path,
    to: &Path,
    edit: impl FnOnce(&mut Vec<RawTensor>, &mut Vec<(String, String)>),
) {
    let (mut t, mut m) = contents(from);
    edit(&mut t, &mut m);
    let m: Vec<(&str, String)> = m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    std::fs::write(to, encode(t, &m, false).unwrap()).unwrap();
}

fn set(meta: &mut [(String, String)], key: &str, value: &str) {
    for (k, v) in meta.iter_mut() {
        if k == key {
            *v = value.to_string();
        }
    }
}

/// Damaged int8 files are refused by `infer` and `export` with one line naming what is wrong
/// (exit 1, nothing written); the float-only commands refuse an int8 file as one.
#[test]
fn damaged_int8_files_are_one_line_errors() {
    let f = Fixture::new("lstm", false);
    f.quantize();
    let q = f.path("q.safetensors");
    type Edit = Box<dyn FnOnce(&mut Vec<RawTensor>, &mut Vec<(String, String)>)>;
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "dtype",
            Box::new(|t, _| {
                let m = t
                    .iter_mut()
                    .find(|t| t.name == "lstm.multiplier_hh_l0")
                    .unwrap();
                m.dtype = Dtype::F32;
            }),
            vec!["tensor `lstm.multiplier_hh_l0` has dtype F32, expected I32"],
        ),
        (
            "missing",
            Box::new(|t, _| t.retain(|t| t.name != "lstm.multiplier_ih_l0")),
            vec!["tensor `lstm.multiplier_ih_l0` is missing"],
        ),
        (
            "shift16",
            Box::new(|_, m| set(m, "shift", "16")),
            vec!["metadata `shift` = `16` is out of the scheme's range 0..=15"],
        ),
        (
            "c_frac",
            Box::new(|_, m| set(m, "c_frac", "16")),
            vec!["metadata `c_frac` = `16` is out of the scheme's range 8..=15"],
        ),
        (
            "nan",
            Box::new(|_, m| set(m, "x_scale", "NaN")),
            vec!["metadata `x_scale` = `NaN` is not a finite positive number"],
        ),
        (
            "no_x_scale",
            Box::new(|_, m| m.retain(|(k, _)| k != "x_scale")),
            vec!["metadata entry `x_scale` is missing"],
        ),
        (
            "extra",
            Box::new(|t, _| t.push(RawTensor::i32("lstm.multiplier_ih_l1", vec![1], &[7]))),
            vec![
                "unsupported tensor `lstm.multiplier_ih_l1`",
                "holds exactly",
            ],
        ),
        (
            "scheme",
            Box::new(|_, m| set(m, "quantization", "int4-magic\nv9")),
            vec![
                "unknown quantization scheme `int4-magic\\nv9`",
                "int8-rowwise-v1",
            ],
        ),
        (
            "shape",
            Box::new(|t, _| {
                let b = t.iter_mut().find(|t| t.name == "lstm.bias_hh_l0").unwrap();
                b.shape = vec![b.shape[0] - 1];
                b.data.truncate(b.data.len() - 4);
            }),
            vec!["tensor `lstm.bias_hh_l0` has shape [23], expected [24] = [4H]"],
        ),
        (
            "nan_scale",
            Box::new(|t, _| {
                let s = t.iter_mut().find(|t| t.name == "head.scale").unwrap();
                s.data[..4].copy_from_slice(&f32::NAN.to_le_bytes());
            }),
            vec!["tensor `head.scale` element 0 is NaN"],
        ),
    ];
    let input = f.path("cal.csv");
    for (name, edit, want) in cases {
        let bad = f.path(&format!("{name}.safetensors"));
        rewrite(&q, &bad, edit);
        let e = refused(
            &["infer", "--model", s(&bad), "--input", s(&input)],
            1,
            &want,
        );
        assert!(e.contains(&format!("{name}.safetensors")), "{e}");
        let rs = f.path("out.rs");
        refused(&["export", "--model", s(&bad), "--rust", s(&rs)], 1, &want);
        assert!(!rs.exists(), "{name}: export wrote a file");
    }
    // An int8 file where the float model is needed.
    let q2 = f.path("q2.safetensors");
    refused(
        &[
            "quantize",
            "--model",
            s(&q),
            "--calibrate",
            s(&input),
            "--out",
            s(&q2),
        ],
        1,
        &["q.safetensors is an int8 model (quantization `int8-rowwise-v1`)"],
    );
    assert!(!q2.exists());
    // I8 tensors without the scheme's name.
    let bare = f.path("bare.safetensors");
    rewrite(&q, &bare, |_, m| m.retain(|(k, _)| k != "quantization"));
    refused(
        &["infer", "--model", s(&bare), "--input", s(&input)],
        1,
        &["has I8 tensors but no metadata entry `quantization`"],
    );
}

/// Damaged int8 stack files: the per-layer entries must have one value per layer, the
/// architecture's entries must agree with the tensors, every layer's tensors must be there, and
/// a copied `bidirectional` = true is the one refusal of such models; each one line.
#[test]
fn damaged_int8_stack_files_are_one_line_errors() {
    let f = Fixture::new("gru2", false);
    f.quantize();
    let q = f.path("q.safetensors");
    type Edit = Box<dyn FnOnce(&mut Vec<RawTensor>, &mut Vec<(String, String)>)>;
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "one_shift",
            Box::new(|_, m| set(m, "shift", "0")),
            vec!["metadata `shift` = `0` has 1 value, expected one per layer (2, comma-separated)"],
        ),
        (
            "c_frac_range",
            Box::new(|_, m| set(m, "c_frac", "15,99")),
            vec!["metadata `c_frac` = `15,99` is out of the scheme's range 8..=15"],
        ),
        (
            "layers",
            Box::new(|_, m| set(m, "layers", "3")),
            vec!["metadata `layers` = `3`, but the tensors make it `2`"],
        ),
        (
            "cell",
            Box::new(|_, m| set(m, "cell", "lstm")),
            vec!["metadata `cell` = `lstm`, but the tensors make it `gru`"],
        ),
        (
            "missing_l1",
            Box::new(|t, _| t.retain(|t| t.name != "gru.bias_hh_l1")),
            vec!["tensor `gru.bias_hh_l1` is missing"],
        ),
        (
            "gap",
            Box::new(|t, _| {
                for t in t.iter_mut().filter(|t| t.name.contains("_l1")) {
                    t.name = t.name.replace("_l1", "_l2");
                }
            }),
            vec!["a gap in the layers: `gru.weight_ih_l2` but no `gru.weight_ih_l1`"],
        ),
        (
            "bidirectional",
            Box::new(|_, m| set(m, "bidirectional", "true")),
            vec![
                "holds GRU(2 -> 6, 2 layers, bidirectional) + Linear(12 -> 3)",
                "not an int8 model",
            ],
        ),
    ];
    let input = f.path("cal.csv");
    for (name, edit, want) in cases {
        let bad = f.path(&format!("{name}.safetensors"));
        rewrite(&q, &bad, edit);
        let e = refused(
            &["infer", "--model", s(&bad), "--input", s(&input)],
            1,
            &want,
        );
        assert!(e.contains(&format!("{name}.safetensors")), "{e}");
    }
}

/// quantize checks its paths before it writes: `--out` may not be `--model` or a calibration
/// file (the file is left as it was); `--calibrate` is required (usage, exit 2); a calibration
/// CSV of the wrong width is one line naming it.
#[test]
fn quantize_refuses_bad_command_lines_before_writing() {
    let f = Fixture::new("lstm", false);
    let (m, c) = (f.path("f32.safetensors"), f.path("cal.csv"));
    let before = std::fs::read(&m).unwrap();
    refused(
        &[
            "quantize",
            "--model",
            s(&m),
            "--calibrate",
            s(&c),
            "--out",
            s(&m),
        ],
        1,
        &["--out", "is the same file as the input --model"],
    );
    assert_eq!(std::fs::read(&m).unwrap(), before);
    refused(
        &[
            "quantize",
            "--model",
            s(&m),
            "--calibrate",
            s(&c),
            "--out",
            s(&c),
        ],
        1,
        &["is the same file as the input --calibrate"],
    );
    let q = f.path("q.safetensors");
    refused(
        &["quantize", "--model", s(&m), "--out", s(&q)],
        2,
        &["--calibrate"],
    );
    let wide = f.path("wide.csv");
    std::fs::write(&wide, "1,2,3\n").unwrap();
    refused(
        &[
            "quantize",
            "--model",
            s(&m),
            "--calibrate",
            s(&wide),
            "--out",
            s(&q),
        ],
        1,
        &["wide.csv line 1: 3 columns, expected 2"],
    );
    assert!(!q.exists());
}

/// The compiler of this toolchain: beside the `cargo` running the tests, else `rustc`.
fn rustc() -> PathBuf {
    std::env::var_os("CARGO")
        .map(PathBuf::from)
        .and_then(|c| Some(c.parent()?.join("rustc")))
        .filter(|r| r.exists())
        .unwrap_or_else(|| "rustc".into())
}

/// The newest `libtinyrnn-*.rlib` beside this test executable.
fn tinyrnn_rlib() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let rlib = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with("libtinyrnn-") && n.ends_with(".rlib")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .expect("libtinyrnn-*.rlib beside the test")
        .path();
    (deps, rlib)
}

#[track_caller]
fn compile(dir: &Path, args: &[&str]) {
    let (deps, rlib) = tinyrnn_rlib();
    let out = Command::new(rustc())
        .current_dir(dir)
        .args(["--edition", "2024", "-D", "warnings", "-C", "opt-level=0"])
        .arg("--extern")
        .arg(format!("tinyrnn={}", rlib.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .args(args)
        .output()
        .expect("run rustc");
    assert!(
        out.status.success(),
        "rustc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `export --rust` of an int8 LSTM, RNN and GRU (a `QModel`) and of 2-layer LSTM and GRU stacks
/// (a `QStack`) compiles in a no_std library, and a program stepping its `MODEL` with the core's
/// `QModel::step` / `QStack::step` reproduces `export --golden`'s `EXPECTED` (the host's
/// `QuantModel::run`) bit for bit.
#[test]
fn exported_int8_rust_compiles_no_std_and_matches_the_golden() {
    for cell in ["lstm", "rnn", "gru", "lstm2", "gru2"] {
        let spec = fixture_spec(cell, true);
        let stack = spec.layers > 1;
        let f = Fixture::new(cell, true);
        f.quantize();
        let (q, rs, g) = (
            f.path("q.safetensors"),
            f.path("model.rs"),
            f.path("golden.rs"),
        );
        let line = ok(&[
            "export",
            "--model",
            s(&q),
            "--rust",
            s(&rs),
            "--golden",
            s(&g),
            "--warmup",
            "12",
            "--generate",
            "20",
        ]);
        assert!(
            line.starts_with(&format!("export: int8 {},", describe(&spec))),
            "{line}"
        );
        let src = std::fs::read_to_string(&rs).unwrap();
        let ty = if stack { "QStack" } else { "QModel" };
        assert!(src.contains(&format!("pub static MODEL: {ty}<'static> = {ty} {{")));
        assert_eq!(
            src.contains("static LAYERS: [QLayer<'static>; L] = ["),
            stack
        );
        // The state type: per layer for a stack.
        let state = if stack {
            "tinyrnn::quant::QStackState::<{ model::L }, { model::H }>"
        } else {
            "tinyrnn::quant::QState::<{ model::H }>"
        };
        let d = f.dir.path();
        std::fs::write(
            d.join("lib.rs"),
            format!(
                "#![no_std]\n#![deny(missing_docs)]\n//! The exported model in a no_std crate.\n\
                 /// The model.\npub mod model;\n/// The golden rollout.\npub mod golden;\n\
                 /// One step of the exported model.\n\
                 pub fn step(x: &[f32; model::I], s: &mut {state}) \
                 -> Result<[f32; model::O], tinyrnn::Error> {{\n    model::MODEL.step(x, s)\n}}\n"
            ),
        )
        .unwrap();
        compile(
            d,
            &["--crate-type", "rlib", "--crate-name", "qmodel", "lib.rs"],
        );
        std::fs::write(
            d.join("main.rs"),
            "mod model;\nmod golden;\n\
             fn main() {\n\
             \x20   model::MODEL.check().expect(\"check\");\n"
                .to_string()
                + &format!("    let mut s = {state}::zero();\n")
                + "\
             \x20   let mut y = [0.0f32; model::O];\n\
             \x20   for x in golden::WARMUP { y = model::MODEL.step(&[x], &mut s).expect(\"step\"); }\n\
             \x20   let mut out = vec![y[0]];\n\
             \x20   while out.len() < golden::EXPECTED.len() { y = model::MODEL.step(&y, &mut s).expect(\"step\"); out.push(y[0]); }\n\
             \x20   let same = out.iter().zip(golden::EXPECTED).all(|(a, b)| a.to_bits() == b.to_bits());\n\
             \x20   println!(\"{same} {}\", out.len());\n\
             }\n",
        )
        .unwrap();
        compile(d, &["--crate-type", "bin", "-o", "golden-check", "main.rs"]);
        let run = Command::new(d.join("golden-check")).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&run.stdout).trim(),
            "true 20",
            "{cell}"
        );
        // And EXPECTED is the host's integer rollout.
        let (qm, _) = QuantModel::read(&q).unwrap();
        let (_, expected) = host::export::golden_int8(&qm, 12, 20).unwrap();
        let gsrc = std::fs::read_to_string(&g).unwrap();
        let body = &gsrc[gsrc.find("pub const EXPECTED").unwrap()..];
        let body = &body[body.find("= [").unwrap() + 3..body.find("];").unwrap()];
        let got: Vec<u32> = body
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<f32>().unwrap().to_bits())
            .collect();
        let want: Vec<u32> = expected.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, want);
    }
}
