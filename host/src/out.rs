//! Output files: every file is written to a temporary file in its directory and renamed into
//! place, so a crash or a full disk never leaves a half-written result.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The directory a run writes into.
#[derive(Debug, Clone)]
pub struct OutDir {
    dir: PathBuf,
}

impl OutDir {
    /// Creates `dir` if needed and checks that it can be written to, before any work is done.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot write to output directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The path of `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` atomically from the bytes `f` produces.
    pub fn write(
        &self,
        name: &str,
        f: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<PathBuf> {
        let path = self.path(name);
        write_atomic(&path, f)?;
        Ok(path)
    }

    /// Writes a CSV file atomically: a header and rows of already formatted fields.
    pub fn csv<R, S>(&self, name: &str, header: &[&str], rows: R) -> Result<PathBuf>
    where
        R: IntoIterator,
        R::Item: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.write(name, |w| {
            let mut out = csv::Writer::from_writer(w);
            out.write_record(header)?;
            for row in rows {
                out.write_record(row)?;
            }
            out.flush()?;
            Ok(())
        })
    }

    /// Renders a PNG with `draw` (which is given a temporary path to draw to) and moves it into
    /// place.
    pub fn png(&self, name: &str, draw: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        let path = self.path(name);
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".png")
            .tempfile_in(&self.dir)
            .with_context(|| format!("cannot write to {}", self.dir.display()))?;
        draw(tmp.path()).with_context(|| format!("cannot draw {}", path.display()))?;
        publishable(tmp.as_file());
        tmp.persist(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// Writes `path` atomically: a temporary file in the same directory, flushed and synced, then
/// renamed over `path`.
pub fn write_atomic(path: &Path, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write to {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        f(&mut w).with_context(|| format!("cannot write {}", path.display()))?;
        w.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    publishable(tmp.as_file());
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Formats a float for CSV: shortest text that reads back to the same `f32`.
pub fn num(v: f32) -> String {
    format!("{v}")
}

/// Temporary files are created owner-only (0600); results get the usual 0644.
fn publishable(file: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
}
