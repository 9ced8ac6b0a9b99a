//! What the fuzz targets share: a scratch file for the readers that take a path, and the checks
//! run on a parsed IDX file. A target may only return (the input was accepted or refused with an
//! error); a panic, an abort, a timeout or running out of memory is a bug that libFuzzer reports.

use std::path::PathBuf;

use host::idx;

/// Writes `data` to this process's scratch file and returns its path, for the readers that take
/// a path. The file lives in `$TMPDIR` (`fuzz/run.sh` points it at its scratch directory, which
/// it removes afterwards) and is rewritten by every run of the target.
pub fn scratch_file(data: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tinyrnn-fuzz-{}.bin", std::process::id()));
    std::fs::write(&path, data).expect("the scratch file is writable");
    path
}

/// Parses `data` both as an image file and as a label file (10 classes, as MNIST's); whatever
/// is accepted must be consistent: every image has its `rows x cols` pixels.
pub fn check_idx(data: &[u8]) {
    if let Ok(images) = idx::parse_images(data, "fuzz input") {
        assert!(images.rows >= 1 && images.cols >= 1);
        assert_eq!(
            images.pixels.len(),
            images.count * images.rows * images.cols
        );
        if images.count > 0 {
            assert_eq!(
                images.image(images.count - 1).len(),
                images.rows * images.cols
            );
        }
    }
    if let Ok(labels) = idx::parse_labels(data, "fuzz input", 10) {
        assert!(labels.iter().all(|&l| l < 10));
    }
}

/// The run id of the checkpoint seed, which the `checkpoint` target resumes with (a checkpoint
/// of another run is refused before its tensors are read).
pub fn checkpoint_run_id() -> Vec<(&'static str, String)> {
    vec![
        ("task", "fuzz".to_string()),
        ("flags", "--hidden 4".to_string()),
    ]
}

/// `data` with its checkpoint checksum recomputed (if it is a safetensors file whose header has
/// metadata), so that a fuzzed checkpoint can get past the checksum to the checks behind it.
pub fn with_checksum(data: &[u8]) -> Option<Vec<u8>> {
    let checksum = host::modelfile::checksum_of(data).ok()?;
    let n = usize::try_from(u64::from_le_bytes(data.get(..8)?.try_into().ok()?)).ok()?;
    let mut header: serde_json::Value =
        serde_json::from_slice(data.get(8..8usize.checked_add(n)?)?).ok()?;
    header
        .get_mut("__metadata__")?
        .as_object_mut()?
        .insert(host::modelfile::CHECKSUM_KEY.into(), checksum.into());
    let mut text = serde_json::to_vec(&header).ok()?;
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&data[8 + n..]);
    Some(out)
}
