//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! ```text
//! offset  size  field
//! 0       2     0x00 0x00
//! 2       1     element type: 0x08 = unsigned byte (the only one MNIST uses)
//! 3       1     number of dimensions n
//! 4       4·n   each dimension, big-endian u32 (the first is the item count)
//! 4+4n    ...   the elements, row-major, exactly the product of the dimensions
//! ```
//!
//! Images are `idx3` (count, rows, cols), labels `idx1` (count). Every error names the file and
//! what is wrong with it, on one line.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Element type code of unsigned bytes.
const UBYTE: u8 = 0x08;

/// Largest decompressed file accepted (1 GiB; MNIST's largest is 47 MB).
const MAX_BYTES: u64 = 1 << 30;

/// Images of an `idx3-ubyte` file: `count` images of `rows` x `cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Pixels (count, rows, cols).
    pub pixels: Vec<u8>,
}

impl Images {
    /// Pixels of image `i` (rows x cols).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Reads a file, gunzipping it if its name ends in `.gz`.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut data = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(file)
            .take(MAX_BYTES + 1)
            .read_to_end(&mut data)
            .with_context(|| {
                format!(
                    "{} is not a valid gzip file (truncated or corrupted)",
                    path.display()
                )
            })?;
    } else {
        std::io::BufReader::new(file)
            .take(MAX_BYTES + 1)
            .read_to_end(&mut data)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    if data.len() as u64 > MAX_BYTES {
        bail!(
            "{} is larger than {} bytes: not an MNIST IDX file",
            path.display(),
            MAX_BYTES
        );
    }
    Ok(data)
}

/// Parses the header of an IDX file of unsigned bytes with `dims` dimensions; returns the
/// dimensions and the elements, checking that there are exactly as many as the header says.
/// `kind` names the expected file kind in errors (e.g. "an idx3 image file").
pub fn parse<'a>(data: &'a [u8], dims: usize, kind: &str) -> Result<(Vec<usize>, &'a [u8])> {
    let header = 4 + 4 * dims;
    if data.len() < 4 {
        bail!(
            "too short to be {kind}: {} bytes, the header alone is {header}",
            data.len()
        );
    }
    let expected = u32::from_be_bytes([0, 0, UBYTE, dims as u8]);
    let magic = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    if magic != expected {
        bail!("wrong magic number 0x{magic:08x}, expected 0x{expected:08x} ({kind})");
    }
    if data.len() < header {
        bail!(
            "truncated: {} bytes, the header of {kind} is {header}",
            data.len()
        );
    }
    let shape: Vec<usize> = data[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let body = &data[header..];
    let want = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n as u64 <= MAX_BYTES);
    let dims_text = shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" x ");
    match want {
        Some(n) if n == body.len() => Ok((shape, body)),
        Some(n) if n > body.len() => bail!(
            "truncated: the header says {dims_text} = {n} bytes of data, the file has {}",
            body.len()
        ),
        Some(n) => bail!(
            "{} bytes of data after the {dims_text} = {n} the header announces",
            body.len() - n
        ),
        None => bail!("impossible dimensions {dims_text}"),
    }
}

/// Reads an `idx3-ubyte` image file (raw or `.gz`).
pub fn read_images(path: &Path) -> Result<Images> {
    let data = read_file(path)?;
    let (shape, body) = parse(&data, 3, "an idx3 image file")
        .with_context(|| format!("{} is malformed", path.display()))?;
    Ok(Images {
        count: shape[0],
        rows: shape[1],
        cols: shape[2],
        pixels: body.to_vec(),
    })
}

/// Reads an `idx1-ubyte` label file (raw or `.gz`); every label must be below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>> {
    let data = read_file(path)?;
    let (_, body) = parse(&data, 1, "an idx1 label file")
        .with_context(|| format!("{} is malformed", path.display()))?;
    if let Some((i, &l)) = body
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= classes)
    {
        bail!(
            "{} is malformed: label {l} of item {i} is not a class 0..={}",
            path.display(),
            classes - 1
        );
    }
    Ok(body.to_vec())
}

/// `dir/name` if it exists, else `dir/name.gz` if that exists, else `None`.
pub fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    [raw, gz].into_iter().find(|p| p.is_file())
}

/// A labelled set of images: one image file and its label file.
#[derive(Debug, Clone)]
pub struct LabelledImages {
    /// The images.
    pub images: Images,
    /// One label per image.
    pub labels: Vec<u8>,
}

/// Reads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` from `dir`
/// (prefix `train` or `t10k`), checking that they match each other, that the images are
/// `rows` x `cols` and that every label is below `classes`. `help` is appended to the error for a
/// missing file (how to get the data).
pub fn read_set(
    dir: &Path,
    prefix: &str,
    (rows, cols): (usize, usize),
    classes: usize,
    help: &str,
) -> Result<LabelledImages> {
    let locate = |name: String| {
        find(dir, &name).with_context(|| {
            format!(
                "{} (or {name}.gz) not found; {help}",
                dir.join(&name).display()
            )
        })
    };
    let image_path = locate(format!("{prefix}-images-idx3-ubyte"))?;
    let label_path = locate(format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_images(&image_path)?;
    if (images.rows, images.cols) != (rows, cols) {
        bail!(
            "{} is malformed: images are {} x {} pixels, expected {rows} x {cols}",
            image_path.display(),
            images.rows,
            images.cols
        );
    }
    let labels = read_labels(&label_path, classes)?;
    if labels.len() != images.count {
        bail!(
            "{} has {} labels but {} has {} images: the files do not belong together",
            label_path.display(),
            labels.len(),
            image_path.display(),
            images.count
        );
    }
    Ok(LabelledImages { images, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, UBYTE, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(body);
        v
    }

    #[test]
    fn parses_exact_sizes_and_refuses_others() {
        let ok = idx(&[2, 2, 3], &[1; 12]);
        let (shape, body) = parse(&ok, 3, "x").unwrap();
        assert_eq!((shape, body.len()), (vec![2, 2, 3], 12));
        let short = &ok[..ok.len() - 1];
        assert!(format!("{:#}", parse(short, 3, "x").unwrap_err()).contains("truncated"));
        let mut long = ok.clone();
        long.push(0);
        assert!(
            format!("{:#}", parse(&long, 3, "x").unwrap_err()).contains("1 bytes of data after")
        );
        assert!(format!("{:#}", parse(&ok, 1, "x").unwrap_err()).contains("magic"));
        assert!(parse(&ok[..2], 3, "x").is_err());
        let huge = idx(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(format!("{:#}", parse(&huge, 3, "x").unwrap_err()).contains("impossible"));
    }
}
