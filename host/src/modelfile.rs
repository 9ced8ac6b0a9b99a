//! Models as safetensors files with PyTorch's tensor names (`lstm.weight_ih_l0`, ..., `head.bias`)
//! and shapes, so `module.load_state_dict(safetensors.torch.load_file(path))` loads them.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tinyrnn::Params;

use crate::out::write_atomic;

/// Writes `model` to `path` atomically, with `metadata` (e.g. task, head activation).
pub fn save<P: Params<f32>>(path: &Path, model: &P, metadata: &[(&str, String)]) -> Result<()> {
    save_with(path, model, &[], metadata)
}

/// [`save`] with extra 1-D tensors beside the model's (e.g. a checkpoint's optimizer state).
pub fn save_with<P: Params<f32>>(
    path: &Path,
    model: &P,
    extra: &[(&str, &[f32])],
    metadata: &[(&str, String)],
) -> Result<()> {
    let flat = model.as_flat();
    let tensors: Vec<(&str, Vec<usize>, &[f32])> = P::TENSORS
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
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.2.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            Ok((
                t.0.to_string(),
                TensorView::new(Dtype::F32, t.1.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let data = safetensors::serialize(views, Some(meta))?;
    write_atomic(path, |w| Ok(w.write_all(&data)?))
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
