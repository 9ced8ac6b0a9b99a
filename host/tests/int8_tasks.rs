//! `--int8` on every task (issue 12): a tiny run of each task records its int8 metric beside the
//! f32 one (summary line, `int8.csv`, the task's own CSV column) and the metric is a number in
//! range; for echo, the int8 metric is exactly what the saved model's quantization gives when
//! run here with `QuantModel::run` (structure, not a threshold). GRUs and stacks (issue 13):
//! `mnist --cell gru`, `mnist --layers 2`, `sine --cell gru`, `memory --cell gru` with `--int8`
//! report both metrics, and their `int8.csv` (per-layer values space-separated) rebuilds the
//! same quantization from `model.safetensors`.

use std::io::Write;
use std::path::Path;

use host::cli::run;
use host::infer::DynModel;
use host::quant::{QuantModel, Ranges};
use tinyrnn_tests::read_csv;

/// Runs `tinyrnn <args> --int8 --out OUT --quiet`; returns the summary line.
fn task(out: &Path, args: &[&str]) -> String {
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    argv.extend(["--int8".into(), "--out".into(), out.display().to_string()]);
    argv.push("--quiet".into());
    let line = run(&argv).unwrap_or_else(|e| panic!("tinyrnn {}: {e:?}", argv.join(" ")));
    eprintln!("{line}");
    line
}

/// The one row of `dir/int8.csv` by column name.
fn int8_row(dir: &Path) -> std::collections::HashMap<String, String> {
    let (header, rows) = read_csv(&dir.join("int8.csv"));
    assert_eq!(
        header,
        [
            "metric",
            "f32",
            "int8",
            "calibration_sequences",
            "x_max",
            "c_max",
            "x_scale",
            "shift",
            "c_frac"
        ]
    );
    assert_eq!(rows.len(), 1, "int8.csv: one row");
    header.into_iter().zip(rows[0].clone()).collect()
}

/// `int8.csv`'s f32 and int8 values, both within `range`, and its calibration count.
#[track_caller]
fn int8_metric(dir: &Path, metric: &str, range: std::ops::RangeInclusive<f64>) -> (f64, f64) {
    let row = int8_row(dir);
    assert_eq!(row["metric"], metric);
    let value = |k: &str| -> f64 { row[k].parse().unwrap_or_else(|_| panic!("{k}: {}", row[k])) };
    let (f, q) = (value("f32"), value("int8"));
    assert!(
        range.contains(&f) && range.contains(&q),
        "{metric}: f32 {f}, int8 {q}"
    );
    let k: usize = row["calibration_sequences"].parse().unwrap();
    assert!((1..=1000).contains(&k), "calibration sequences {k}");
    (f, q)
}

/// A column of a CSV by name.
fn column(path: &Path, name: &str) -> Vec<String> {
    let (header, rows) = read_csv(path);
    let k = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("{} has no column {name}: {header:?}", path.display()));
    rows.into_iter().map(|r| r[k].clone()).collect()
}

#[test]
fn sine_reports_the_int8_extrapolation_ratio() {
    let out = tempfile::tempdir().unwrap();
    let line = task(
        out.path(),
        &[
            "sine",
            "--steps",
            "20",
            "--batch",
            "4",
            "--length",
            "20",
            "--warmup",
            "5",
            "--hidden",
            "4",
            "--test-curves",
            "6",
            "--plot-curves",
            "1",
        ],
    );
    assert!(line.contains("; int8: extrapolation MSE"), "{line}");
    int8_metric(out.path(), "extrapolation_mse_ratio", 0.0..=1e3);
    // Every generated sample has an int8 prediction, a finite number.
    let p = column(&out.path().join("sine.csv"), "int8_prediction");
    assert_eq!(p.len(), 6 * 20);
    for v in p.iter().filter(|v| !v.is_empty()) {
        assert!(v.parse::<f32>().unwrap().is_finite(), "{v}");
    }
    assert_eq!(p.iter().filter(|v| v.is_empty()).count(), 6); // t = 0
}

const MEMORY: &[&str] = &[
    "memory",
    "--length",
    "2",
    "--blanks",
    "1",
    "--hidden",
    "4",
    "--steps",
    "20",
    "--batch",
    "4",
    "--log-every",
    "10",
    "--eval-sequences",
    "4",
    "--test-sequences",
    "8",
    "--predictions",
    "1",
];

#[test]
fn memory_reports_the_int8_recall_accuracy() {
    let out = tempfile::tempdir().unwrap();
    let line = task(out.path(), MEMORY);
    assert!(line.contains(", int8 "), "{line}");
    int8_metric(out.path(), "recall_accuracy", 0.0..=1.0);
}

#[test]
fn memory_compare_has_an_int8_column_for_every_cell() {
    let out = tempfile::tempdir().unwrap();
    let mut args = MEMORY.to_vec();
    args.extend(["--compare", "--compare-blanks", "0,1"]);
    let line = task(out.path(), &args);
    // LSTM, GRU and RNN at both N.
    assert_eq!(line.matches("(int8 ").count(), 6, "{line}");
    let acc = column(&out.path().join("compare.csv"), "int8_recall_accuracy");
    assert_eq!(acc.len(), 6);
    for a in &acc {
        assert!((0.0..=1.0).contains(&a.parse::<f64>().unwrap()), "{a}");
    }
    for run in ["lstm-n0", "rnn-tanh-n1"] {
        int8_metric(&out.path().join(run), "recall_accuracy", 0.0..=1.0);
    }
}

/// `int8.csv`'s calibration (max |x|, max |c| per layer) quantizes the saved float model to the
/// scheme values it records (x_scale, then shift and c_frac per layer); returns that model.
#[track_caller]
fn rebuilt(dir: &Path, layers: usize) -> QuantModel {
    let row = int8_row(dir);
    let per_layer = |k: &str| -> Vec<String> { row[k].split(' ').map(str::to_string).collect() };
    let ranges = Ranges {
        x_max: row["x_max"].parse().unwrap(),
        c_max: per_layer("c_max")
            .iter()
            .map(|v| v.parse().unwrap())
            .collect(),
    };
    assert_eq!(ranges.c_max.len(), layers, "{row:?}");
    let float = DynModel::load(&dir.join("model.safetensors")).unwrap();
    let q = QuantModel::quantize(&float, &ranges).unwrap();
    assert_eq!(q.spec.layers, layers);
    assert_eq!(q.x_scale.to_string(), row["x_scale"]);
    let text = |v: Vec<u32>| v.iter().map(u32::to_string).collect::<Vec<_>>();
    assert_eq!(text(q.shifts()), per_layer("shift"));
    assert_eq!(text(q.c_fracs()), per_layer("c_frac"));
    q
}

#[test]
fn memory_gru_reports_the_int8_recall_accuracy() {
    let out = tempfile::tempdir().unwrap();
    let mut args = MEMORY.to_vec();
    args.extend(["--cell", "gru"]);
    let line = task(out.path(), &args);
    assert!(line.contains(", int8 "), "{line}");
    int8_metric(out.path(), "recall_accuracy", 0.0..=1.0);
    let q = rebuilt(out.path(), 1);
    assert_eq!(q.c_fracs(), [15]); // a GRU has no calibrated cell state
}

#[test]
fn sine_gru_reports_the_int8_extrapolation_ratio() {
    let out = tempfile::tempdir().unwrap();
    let line = task(
        out.path(),
        &[
            "sine",
            "--cell",
            "gru",
            "--steps",
            "20",
            "--batch",
            "4",
            "--length",
            "20",
            "--warmup",
            "5",
            "--hidden",
            "4",
            "--test-curves",
            "6",
            "--plot-curves",
            "1",
        ],
    );
    assert!(line.contains("; int8: extrapolation MSE"), "{line}");
    int8_metric(out.path(), "extrapolation_mse_ratio", 0.0..=1e3);
    rebuilt(out.path(), 1);
}

const ECHO: &[&str] = &[
    "echo",
    "--hidden",
    "2",
    "--series-length",
    "300",
    "--epochs",
    "1",
    "--test-length",
    "200",
    "--show",
    "200",
];

#[test]
fn echo_reports_the_int8_accuracy() {
    let out = tempfile::tempdir().unwrap();
    let line = task(out.path(), ECHO);
    assert!(line.contains("; int8 accuracy "), "{line}");
    int8_metric(out.path(), "accuracy", 0.0..=1.0);
    let by_pos = column(&out.path().join("accuracy.csv"), "int8_accuracy");
    assert_eq!(by_pos.len(), 15);
}

/// The int8 accuracy echo records is what the saved model, quantized with the ranges int8.csv
/// records, gives when run here over the test stream (echo.csv holds all of it with --show):
/// the same scheme parameters, the same prediction at every step, the same accuracy.
#[test]
fn echo_int8_metric_is_quant_model_run_on_the_saved_model() {
    let out = tempfile::tempdir().unwrap();
    task(out.path(), ECHO);
    let row = int8_row(out.path());
    let q = rebuilt(out.path(), 1);

    let echo = out.path().join("echo.csv");
    let stream: Vec<f32> = column(&echo, "input")
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    let targets = column(&echo, "target");
    assert_eq!(stream.len(), 200);
    let z = q.run(&stream, &mut q.zero_state()).unwrap();
    let pred: Vec<String> = z
        .chunks_exact(2)
        .map(|z| u8::from(z[1] > z[0]).to_string())
        .collect();
    assert_eq!(pred, column(&echo, "int8_prediction"));
    let (mut correct, mut scored) = (0usize, 0usize);
    for (p, t) in pred.iter().zip(&targets).filter(|(_, t)| !t.is_empty()) {
        correct += usize::from(p == t);
        scored += 1;
    }
    assert_eq!(scored, 197);
    let accuracy = correct as f64 / scored as f64;
    assert_eq!(row["int8"], accuracy.to_string());
}

/// An IDX file of unsigned bytes (as in host/tests/mnist.rs).
fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

/// `count` 28 x 28 images, image `i` a bright bar at row `3 (i % 8)` with label `i % 8`, as the
/// four IDX files in a new directory.
fn mnist_data(dir: &Path, train: u32, test: u32) {
    for (prefix, count) in [("train", train), ("t10k", test)] {
        let mut body = vec![0u8; count as usize * 784];
        for i in 0..count as usize {
            let row = 3 * (i % 8);
            body[i * 784 + row * 28..i * 784 + (row + 1) * 28].fill(255);
        }
        let labels: Vec<u8> = (0..count).map(|i| (i % 8) as u8).collect();
        let files = [
            ("images-idx3-ubyte", idx(0x0803, &[count, 28, 28], &body)),
            ("labels-idx1-ubyte", idx(0x0801, &[count], &labels)),
        ];
        for (name, data) in files {
            let path = dir.join(format!("{prefix}-{name}"));
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(&data))
                .unwrap();
        }
    }
}

/// `tinyrnn mnist` on 40 synthetic training images and 16 test images with `--int8` and
/// `extra` flags; checks the summary, int8.csv and test.csv; returns the output directory.
fn mnist_int8(extra: &[&str]) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    mnist_data(data.path(), 40, 16);
    let out = tempfile::tempdir().unwrap();
    let d = data.path().display().to_string();
    let mut args = vec![
        "mnist",
        "--data",
        &d,
        "--epochs",
        "1",
        "--val",
        "8",
        "--hidden",
        "16",
        "--batch",
        "8",
        "--threads",
        "2",
    ];
    args.extend(extra);
    let line = task(out.path(), &args);
    assert!(line.contains("(int8 "), "{line}");
    let (_, q) = int8_metric(out.path(), "test_accuracy", 0.0..=1.0);
    assert_eq!(int8_row(out.path())["calibration_sequences"], "32");
    let acc = column(&out.path().join("test.csv"), "int8_accuracy");
    assert_eq!(acc, [format!("{q:.6}")]);
    out
}

#[test]
fn mnist_reports_the_int8_test_accuracy() {
    mnist_int8(&[]);
}

/// A GRU and a 2-layer LSTM: the int8 metric beside f32, and int8.csv rebuilds the quantization
/// (per layer for the stack).
#[test]
fn mnist_gru_and_stacked_lstm_report_the_int8_test_accuracy() {
    let out = mnist_int8(&["--cell", "gru"]);
    rebuilt(out.path(), 1);
    let out = mnist_int8(&["--layers", "2"]);
    let q = rebuilt(out.path(), 2);
    assert_eq!(q.spec.cell, tinyrnn::CellKind::Lstm);
}

#[test]
fn counter_reports_the_int8_mse() {
    let out = tempfile::tempdir().unwrap();
    let line = task(out.path(), &["counter", "--target-mse", "1e-2"]);
    assert!(line.contains("; int8 MSE "), "{line}");
    int8_metric(out.path(), "mse", 0.0..=1.0);
    assert_eq!(int8_row(out.path())["calibration_sequences"], "5");
}
