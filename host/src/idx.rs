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

/// Largest file accepted, raw or decompressed (1 GiB; MNIST's largest is 47 MB).
pub const MAX_BYTES: u64 = 1 << 30;

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

/// Reads a file, gunzipping it (with [`gunzip`]) if its name ends in `.gz`; refuses a file or a
/// decompressed content of more than [`MAX_BYTES`].
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let p = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {p}"))?;
    let data = read_capped(std::io::BufReader::new(file), MAX_BYTES)
        .with_context(|| format!("cannot read {p}"))?
        .with_context(|| format!("{p} is larger than {MAX_BYTES} bytes: not an MNIST IDX file"))?;
    if path.extension().is_some_and(|e| e == "gz") {
        return gunzip(&data, &p.to_string(), MAX_BYTES);
    }
    Ok(data)
}

/// Decompresses gzip `data` (one or more members), refusing more than `cap` bytes of output
/// (a gzip bomb stops there); `what` names the source in errors.
pub fn gunzip(data: &[u8], what: &str, cap: u64) -> Result<Vec<u8>> {
    read_capped(flate2::read::MultiGzDecoder::new(data), cap)
        .with_context(|| format!("{what} is not a valid gzip file (truncated or corrupted)"))?
        .with_context(|| {
            format!("{what} is larger than {cap} bytes decompressed: not an MNIST IDX file")
        })
}

/// Reads `r` to its end, or `None` once it has given more than `cap` bytes. The buffer doubles
/// up to `cap + 1` bytes and never past it (a plain `read_to_end` could reserve twice that).
fn read_capped(r: impl Read, cap: u64) -> std::io::Result<Option<Vec<u8>>> {
    let limit = usize::try_from(cap).unwrap_or(usize::MAX).saturating_add(1);
    let mut r = r.take(limit as u64);
    let mut data = Vec::new();
    while data.len() < limit {
        data.try_reserve_exact(data.len().max(1 << 16).min(limit - data.len()))?;
        let spare = data.capacity() - data.len();
        if (&mut r).take(spare as u64).read_to_end(&mut data)? == 0 {
            break;
        }
    }
    Ok((data.len() as u64 <= cap).then_some(data))
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

/// Reads an `idx3-ubyte` image file (raw or `.gz`) with [`parse_images`].
pub fn read_images(path: &Path) -> Result<Images> {
    parse_images(&read_file(path)?, &path.display().to_string())
}

/// Parses the bytes of an `idx3-ubyte` image file; `what` names it in errors. Images of zero
/// rows or columns are refused: their count would not be backed by any byte of the file.
pub fn parse_images(data: &[u8], what: &str) -> Result<Images> {
    let (shape, body) =
        parse(data, 3, "an idx3 image file").with_context(|| format!("{what} is malformed"))?;
    let (count, rows, cols) = (shape[0], shape[1], shape[2]);
    if rows == 0 || cols == 0 {
        bail!("{what} is malformed: images of {rows} x {cols} pixels");
    }
    Ok(Images {
        count,
        rows,
        cols,
        pixels: body.to_vec(),
    })
}

/// Reads an `idx1-ubyte` label file (raw or `.gz`) with [`parse_labels`].
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>> {
    parse_labels(&read_file(path)?, &path.display().to_string(), classes)
}

/// Parses the bytes of an `idx1-ubyte` label file; every label must be below `classes`; `what`
/// names the file in errors.
pub fn parse_labels(data: &[u8], what: &str, classes: usize) -> Result<Vec<u8>> {
    let (_, body) =
        parse(data, 1, "an idx1 label file").with_context(|| format!("{what} is malformed"))?;
    if let Some((i, &l)) = body
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= classes)
    {
        let last = classes.saturating_sub(1);
        bail!("{what} is malformed: label {l} of item {i} is not a class 0..={last}");
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

    /// A count of images of no pixels would be backed by no byte at all: 2^32 - 1 "images" from
    /// a 16-byte file (seen while writing the `idx_raw` fuzz target).
    #[test]
    fn images_of_no_pixels_are_refused() {
        for dims in [[u32::MAX, 0, 28], [u32::MAX, 28, 0], [1, 0, 0]] {
            let e = parse_images(&idx(&dims, &[]), "f").unwrap_err();
            assert!(
                format!("{e:#}").contains("f is malformed: images of"),
                "{e:#}"
            );
        }
        assert_eq!(parse_images(&idx(&[0, 2, 2], &[]), "f").unwrap().count, 0);
    }

    /// Decompression stops at the cap (a gzip bomb), and the buffer never grows past it.
    #[test]
    fn gunzip_is_capped_and_allocates_at_most_the_cap() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 100_000]).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(gunzip(&gz, "f", 100_000).unwrap().len(), 100_000);
        let e = gunzip(&gz, "f", 99_999).unwrap_err();
        assert!(
            format!("{e:#}").contains("f is larger than 99999 bytes"),
            "{e:#}"
        );
        assert!(gunzip(&gz[..gz.len() - 1], "f", 1 << 20).is_err());
        // A plain `read_to_end` would have doubled to 128 KiB for these 100,000 bytes.
        let data = read_capped(&vec![1u8; 100_000][..], 100_000)
            .unwrap()
            .unwrap();
        assert!(data.capacity() <= 100_001, "{}", data.capacity());
    }
}
