//! Writes the seed corpora of the fuzz targets, from the repository root:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds -- fuzz/corpus`
//! (`fuzz/run.sh` never changes them: it fuzzes copies). Small valid inputs of each reader, so
//! the fuzzers start past the magic numbers and headers.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use host::train::{OptimizerKind, Trainer};
use tinyrnn::{LstmModel, RnnModel};

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).context("usage: seeds CORPUS_DIR")?;
    let dir = Path::new(&dir);
    models(&dir.join("model_file"))?;
    checkpoint(&dir.join("checkpoint"))?;
    let idx = idx_files();
    write_all(&dir.join("idx_raw"), &idx)?;
    let gz: Vec<(&str, Vec<u8>)> = idx.iter().map(|(n, d)| (*n, gzip(d))).collect();
    write_all(&dir.join("idx_gzip"), &gz)?;
    write_all(&dir.join("infer_csv"), &csvs())
}

/// A tiny LSTM and a tiny RNN as `tinyrnn` writes them, and each quantized to int8 as
/// `tinyrnn quantize` writes it (calibrated on x = sin(0.3 t), t = 0..20, in every input).
fn models(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let meta = [("task", "sine".to_string()), ("head", "linear".to_string())];
    let mut lstm = host::net::boxed_zeroed::<LstmModel<2, 3, 1>>();
    lstm.init(&mut tinyrnn::rng(1), None);
    host::modelfile::save(&dir.join("lstm"), &*lstm, &meta)?;
    let mut rnn = host::net::boxed_zeroed::<RnnModel<1, 2, 2>>();
    rnn.init(&mut tinyrnn::rng(2));
    host::modelfile::save(&dir.join("rnn"), &*rnn, &[])?;
    for name in ["lstm", "rnn"] {
        let model = host::infer::DynModel::load(&dir.join(name))?;
        let (i, _, _) = model.sizes();
        let x: Vec<f32> = (0..20 * i).map(|k| (0.3 * (k / i) as f32).sin()).collect();
        let q = host::quant::QuantModel::quantize(
            &model,
            host::quant::Ranges::of(&model, [x.as_slice()])?,
        )?;
        let meta: Vec<(&str, String)> = model
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        q.save(&dir.join(format!("{name}-int8")), &meta)?;
    }
    Ok(())
}

/// A checkpoint of the `checkpoint` target's trainer after one update (optimizer state set).
fn checkpoint(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let spec = tinyrnn::Spec::new(tinyrnn::CellKind::Lstm, 1, 4, 1);
    let mut model = host::net::Net::new(spec)?;
    model.init(&mut tinyrnn::rng(3), None);
    let mut trainer = Trainer::new(model, OptimizerKind::Adam.build(1e-3, 0.0), None);
    trainer.update(|_, grad| {
        grad.flat_mut().fill(0.125);
        Ok(0.5)
    })?;
    let progress = serde_json::json!({ "losses": [0.5], "next_row": 1 });
    let run_id = tinyrnn_fuzz::checkpoint_run_id();
    trainer.save_checkpoint(&dir.join("checkpoint"), &run_id, &progress, &[])
}

/// IDX files of unsigned bytes: (dimensions, body).
fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

/// Three 2 x 3 images, their labels, and an empty label file.
fn idx_files() -> Vec<(&'static str, Vec<u8>)> {
    let pixels: Vec<u8> = (0..18).map(|p| p * 14).collect();
    vec![
        ("images", idx(&[3, 2, 3], &pixels)),
        ("labels", idx(&[3], &[0, 9, 4])),
        ("labels-empty", idx(&[0], &[])),
    ]
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("writing to a Vec");
    e.finish().expect("writing to a Vec")
}

/// Input CSVs; the first byte is the target's model inputs minus one (mod 8).
fn csvs() -> Vec<(&'static str, Vec<u8>)> {
    let csv = |i: u8, text: &str| [&[i - 1][..], text.as_bytes()].concat();
    vec![
        ("one-input", csv(1, "x\n0.5\n-1.25\n\n3e-2\n")),
        (
            "three-inputs",
            csv(3, "a,b,c\r\n1,2,3\r\n\"4\", 5 ,6e-1\r\n"),
        ),
        ("bom-two-inputs", csv(2, "\u{feff}0,1\n-0.0,+7\n")),
    ]
}

fn write_all(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, data) in files {
        std::fs::write(dir.join(name), data)?;
    }
    Ok(())
}
