//! PyTorch parity for every recurrent model: `fixtures/pytorch/recurrent/` (made by
//! `fixtures/pytorch/recurrent.py`: `nn.LSTM`, `nn.GRU`, `nn.RNN` tanh and relu, `num_layers`
//! 1, 2, 3, uni- and bidirectional, `batch_first=True`, a `Linear(D·H, 2)` head at every step,
//! non-zero initial states; loss = Σ y² + Σ h_n² (+ Σ c_n²); every expected value in float64).
//!
//! For each file the model is loaded by its `state_dict()` names through [`Spec::tensors`], run
//! forward and backward (a) in f64 with the naive kernels, which must agree with PyTorch's
//! float64 to 1e-10, and (b) in f32 with the default (SIMD) kernels, which must agree to
//! 1e-5 · max(1, |tensor|): outputs, final states, the loss, the gradient of every parameter, of
//! the input and of the initial states.

use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};
use tinyrnn::cell::CellKind;
use tinyrnn::{Cache, Kernels, Model, Naive, Outputs, Real, Simd, Spec};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pytorch/recurrent")
}

fn read(st: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f64>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let v = match t.dtype() {
        Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        d => panic!("{name}: dtype {d:?}"),
    };
    (t.shape().to_vec(), v)
}

/// (B, T, F) batch-first to (T, B, F) time-major, or back (`inverse`).
fn transpose(v: &[f64], b: usize, t: usize, f: usize, inverse: bool) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for i in 0..b {
        for s in 0..t {
            let (bf, tm) = ((i * t + s) * f, (s * b + i) * f);
            let (from, to) = if inverse { (tm, bf) } else { (bf, tm) };
            out[to..to + f].copy_from_slice(&v[from..from + f]);
        }
    }
    out
}

struct Case {
    name: String,
    spec: Spec,
    batch: usize,
    steps: usize,
    params: Vec<f64>,
    x: Vec<f64>, // (T, B, I)
    h0: Vec<f64>,
    c0: Vec<f64>,
    st: Vec<u8>,
}

fn load(path: &std::path::Path) -> Case {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().expect("metadata");
    let get = |k: &str| {
        meta.get(k)
            .unwrap_or_else(|| panic!("metadata {k}"))
            .clone()
    };
    let num = |k: &str| get(k).parse::<usize>().unwrap();
    let cell = CellKind::from_names(&get("cell"), meta.get("nonlinearity").map(|s| s.as_str()))
        .expect("cell");
    let spec = Spec {
        cell,
        input: num("input_size"),
        hidden: num("hidden_size"),
        layers: num("layers"),
        bidirectional: get("bidirectional") == "true",
        output: num("output_size"),
    };
    let (batch, steps) = (num("batch"), num("steps"));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut params = vec![0.0; spec.param_len()];
    for t in spec.tensors() {
        let (shape, v) = read(&st, &t.name.to_string());
        assert_eq!(shape, t.shape(), "{}", t.name);
        params[t.offset..t.offset + t.len()].copy_from_slice(&v);
    }
    let (_, x) = read(&st, "input");
    let x = transpose(&x, batch, steps, spec.input, false);
    let h0 = read(&st, "h0").1;
    let c0 = if cell.has_c() {
        read(&st, "c0").1
    } else {
        vec![]
    };
    Case {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        spec,
        batch,
        steps,
        params,
        x,
        h0,
        c0,
        st: bytes.clone(),
    }
}

/// Everything the file expects, computed here: (name, value) pairs in f64.
fn run<F: Real, K: Kernels<F>>(c: &Case) -> Vec<(String, Vec<f64>)> {
    let s = &c.spec;
    let cast = |v: &[f64]| v.iter().map(|&x| F::from_f64(x)).collect::<Vec<F>>();
    let back = |v: &[F]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let params = cast(&c.params);
    let model = Model::new(*s, &params).unwrap();
    let (t, b) = (c.steps, c.batch);
    let mut buf = vec![F::ZERO; Cache::<F>::len(s, t, b)];
    let mut cache = Cache::new(s, &mut buf, t, b, Outputs::EveryStep).unwrap();
    let x = cast(&c.x);
    let (mut h, mut cs) = (cast(&c.h0), cast(&c.c0));
    let mut y = vec![F::ZERO; t * b * s.output];
    model
        .forward_with::<K>(&x, &mut h, &mut cs, &mut cache, &mut y)
        .unwrap();
    let two = |v: &[F]| v.iter().map(|&x| x + x).collect::<Vec<F>>();
    let sq = |v: &[F]| v.iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>();
    let loss = sq(&y) + sq(&h) + sq(&cs);
    let mut grad = vec![F::ZERO; s.param_len()];
    let mut dx = vec![F::ZERO; x.len()];
    let (mut dh, mut dc) = (two(&h), two(&cs));
    model
        .backward_with::<K>(
            &mut grad,
            &x,
            &mut cache,
            &two(&y),
            &mut dh,
            &mut dc,
            Some(&mut dx),
        )
        .unwrap();
    let mut out = vec![
        ("output".into(), transpose(&back(&y), b, t, s.output, true)),
        ("h_n".into(), back(&h)),
        ("loss".into(), vec![loss]),
        (
            "grad.input".into(),
            transpose(&back(&dx), b, t, s.input, true),
        ),
        ("grad.h0".into(), back(&dh)),
    ];
    if s.cell.has_c() {
        out.push(("c_n".into(), back(&cs)));
        out.push(("grad.c0".into(), back(&dc)));
    }
    for ten in s.tensors() {
        let r = ten.offset..ten.offset + ten.len();
        out.push((format!("grad.{}", ten.name), back(&grad[r])));
    }
    out
}

#[test]
fn every_recurrent_model_matches_pytorch() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 24, "4 cells x 3 depths x 2 directions");
    let mut seen = std::collections::BTreeSet::new();
    let (mut worst64, mut worst32) = (0.0f64, 0.0f64);
    for f in &files {
        let case = load(f);
        seen.insert((
            case.spec.cell.to_string(),
            case.spec.layers,
            case.spec.bidirectional,
        ));
        let st = SafeTensors::deserialize(&case.st).unwrap();
        // Every tensor the file expects is computed here (nothing skipped).
        let expected: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| n.starts_with("grad.") || ["output", "h_n", "c_n", "loss"].contains(n))
            .map(String::from)
            .collect();
        for (kind, got, tol_abs) in [
            ("f64 naive", run::<f64, Naive>(&case), 1e-10),
            ("f32 simd", run::<f32, Simd>(&case), 1e-5),
        ] {
            assert_eq!(got.len(), expected.len(), "{}: {kind}: tensors", case.name);
            for (name, v) in got {
                let (_, want) = read(&st, &name);
                assert_eq!(v.len(), want.len(), "{} {name}", case.name);
                let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
                let d = v
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                let rel = d / scale;
                assert!(
                    rel <= tol_abs,
                    "{} {kind} {name}: max |diff| {d:e} (scale {scale:e}) > {tol_abs:e}",
                    case.name
                );
                if kind == "f32 simd" {
                    worst32 = worst32.max(rel);
                } else {
                    worst64 = worst64.max(rel);
                }
            }
        }
    }
    assert_eq!(seen.len(), 24, "every combination once");
    eprintln!("worst scaled difference: f64 naive {worst64:.2e}, f32 simd {worst32:.2e}");
}
