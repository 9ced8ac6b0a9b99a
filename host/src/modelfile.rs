//! Models as safetensors files with PyTorch's tensor names (`lstm.weight_ih_l0`, ..., `head.bias`)
//! and shapes, so `module.load_state_dict(safetensors.torch.load_file(path))` loads them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors};
use tinyrnn::Params;

use crate::out::write_atomic;

/// Writes `model` to `path` atomically, with `metadata` (e.g. task, head activation).
pub fn save<P: Params<f32>>(path: &Path, model: &P, metadata: &[(&str, String)]) -> Result<()> {
    save_with(path, model, &[], metadata)
}

/// [`save`] with extra 1-D tensors beside the model's (e.g. a checkpoint's optimizer state).
///
/// The file is the same for the same inputs, byte for byte: the header (written with `serde_json`:
/// its map keeps insertion order under safetensors' `preserve_order`, sorted keys otherwise) lists
/// the metadata keys sorted and the tensors in name order. `safetensors::serialize` takes the
/// metadata as a `HashMap` and writes it in an order that changes from one process to the next.
pub fn save_with<P: Params<f32>>(
    path: &Path,
    model: &P,
    extra: &[(&str, &[f32])],
    metadata: &[(&str, String)],
) -> Result<()> {
    let flat = model.as_flat();
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = P::TENSORS
        .iter()
        .map(|t| {
            (
                t.name,
                t.shape.to_vec(),
                &flat[t.offset..t.offset + t.len()],
            )
        })
        .chain(
            extra
                .iter()
                .filter(|e| !e.1.is_empty())
                .map(|&(n, v)| (n, vec![v.len()], v)),
        )
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = tensors.windows(2).find(|w| w[0].0 == w[1].0) {
        bail!("{}: two tensors named `{}`", path.display(), w[0].0);
    }
    // A later duplicate key wins, as it would in a map; a BTreeMap keeps the keys sorted.
    let meta: BTreeMap<&str, &str> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut header = serde_json::Map::new();
    if !meta.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(&meta)?);
    }
    let mut offset = 0usize;
    for (name, shape, values) in &tensors {
        let end = offset + 4 * values.len();
        header.insert(
            (*name).into(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header = serde_json::to_string(&header)?;
    // Pad with spaces so the data starts 8-byte aligned, as safetensors itself does.
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    write_atomic(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        for (_, _, values) in &tensors {
            for v in values.iter() {
                w.write_all(&v.to_le_bytes())?;
            }
        }
        Ok(())
    })
}

/// The metadata of a safetensors file, without reading its tensors into a model.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let what = || format!("{} is not a valid safetensors file", path.display());
    SafeTensors::deserialize(&data).with_context(what)?;
    let (_, meta) = SafeTensors::read_metadata(&data).with_context(what)?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Reads `path` into `model`: every tensor of `P::TENSORS` must be present, F32, with its shape.
pub fn load_into<P: Params<f32>>(path: &Path, model: &mut P) -> Result<HashMap<String, String>> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let what = || format!("{} is not a valid safetensors file", path.display());
    let st = SafeTensors::deserialize(&data).with_context(what)?;
    let (_, meta) = SafeTensors::read_metadata(&data).with_context(what)?;
    let flat = model.as_flat_mut();
    for t in P::TENSORS {
        let view = st
            .tensor(t.name)
            .map_err(|_| anyhow::anyhow!("{}: tensor `{}` is missing", path.display(), t.name))?;
        if view.dtype() != Dtype::F32 {
            bail!(
                "{}: tensor `{}` has dtype {:?}, expected F32",
                path.display(),
                t.name,
                view.dtype()
            );
        }
        if view.shape() != t.shape {
            bail!(
                "{}: tensor `{}` has shape {:?}, expected {:?}",
                path.display(),
                t.name,
                view.shape(),
                t.shape
            );
        }
        for (dst, src) in flat[t.offset..t.offset + t.len()]
            .iter_mut()
            .zip(view.data().chunks_exact(4))
        {
            *dst = f32::from_le_bytes([src[0], src[1], src[2], src[3]]);
        }
    }
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Reads the 1-D F32 tensor `name` of length `len` from a safetensors file.
pub fn read_vector(path: &Path, name: &str, len: usize) -> Result<Vec<f32>> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let st = SafeTensors::deserialize(&data)
        .with_context(|| format!("{} is not a valid safetensors file", path.display()))?;
    let view = st
        .tensor(name)
        .map_err(|_| anyhow::anyhow!("{}: tensor `{name}` is missing", path.display()))?;
    if view.dtype() != Dtype::F32 || view.shape() != [len] {
        bail!(
            "{}: tensor `{name}` is {:?} {:?}, expected F32 [{len}]",
            path.display(),
            view.dtype(),
            view.shape()
        );
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyrnn::LstmModel;

    /// The writer's header is valid safetensors JSON (escapes included), reads back exactly, and
    /// the same inputs give the same bytes whatever order the metadata comes in.
    #[test]
    fn files_read_back_and_are_deterministic() {
        type M = LstmModel<2, 3, 1>;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut model: Box<M> = crate::net::boxed_zeroed();
        model.init(&mut tinyrnn::rng(1), None);
        let extra = [1.5f32, -2.0, 3.25];
        let meta = [
            ("task", "t".to_string()),
            ("flags", "A { x: \"q\\\"\", y: \n\t\u{1} é }".to_string()),
        ];
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        save_with(&a, &*model, &[("opt", &extra)], &meta).expect("save");
        let reversed = [meta[1].clone(), meta[0].clone()];
        save_with(&b, &*model, &[("opt", &extra)], &reversed).expect("save");
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let mut back: Box<M> = crate::net::boxed_zeroed();
        let got = load_into(&a, &mut *back).expect("load");
        assert_eq!(back.as_flat(), model.as_flat());
        assert_eq!(got.get("flags"), Some(&meta[1].1));
        assert_eq!(read_metadata(&a).expect("metadata"), got);
        assert_eq!(read_vector(&a, "opt", 3).expect("opt"), extra);
    }
}
