//! Output files: every file is written to a temporary file in its directory and renamed into
//! place, so a crash or a full disk never leaves a half-written result.
//!
//! Before a command writes anything it checks every path it will touch ([`check_files`]): each
//! output's directory exists and can be written, no output is a directory, and no two paths
//! (inputs and outputs) name the same file, compared as files (device and inode of an existing
//! file; the canonical path of one that does not exist yet), so `x.csv`, `./x.csv` and a hard
//! link to it are one file. Commands with several outputs stage them all ([`Staged`]) and rename
//! them into place only when every one has been written.
//!
//! Temporary files are named `.tmp-tinyrnn-<pid>-<random>`: one left behind by a killed process
//! (its pid no longer runs) is removed by [`remove_stale_temps`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Prefix of every temporary file tinyrnn writes; the process id follows.
pub const TMP_PREFIX: &str = ".tmp-tinyrnn-";

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
        temp_in(dir)
            .with_context(|| format!("cannot write to output directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
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
            .prefix(&tmp_prefix())
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

/// Outputs written to temporary files first and renamed into place together by
/// [`commit`](Self::commit): a failure while writing any of them leaves none.
#[derive(Default)]
pub struct Staged {
    files: Vec<(PathBuf, tempfile::NamedTempFile)>,
}

impl Staged {
    /// Nothing staged yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the bytes `f` produces to a temporary file beside `path`, flushed and synced.
    pub fn add(&mut self, path: &Path, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
        let mut tmp = temp_in(parent(path))?;
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
        self.files.push((path.to_path_buf(), tmp));
        Ok(())
    }

    /// Renames every staged file into place, in the order they were added.
    pub fn commit(self) -> Result<()> {
        for (path, tmp) in self.files {
            tmp.persist(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Writes `path` atomically: a temporary file in the same directory, flushed and synced, then
/// renamed over `path`.
pub fn write_atomic(path: &Path, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut staged = Staged::new();
    staged.add(path, f)?;
    staged.commit()
}

/// The directory a file is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `.tmp-tinyrnn-<pid>-`: the prefix of this process's temporary files.
fn tmp_prefix() -> String {
    format!("{TMP_PREFIX}{}-", std::process::id())
}

/// A new temporary file in `dir`, named with [`tmp_prefix`].
fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&tmp_prefix())
        .tempfile_in(dir)
        .with_context(|| format!("cannot write to {}", dir.display()))
}

/// Removes the temporary files in `dir` that a tinyrnn process which no longer runs left behind
/// (killed during a write); returns how many. Those of running processes are left alone.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid > 0 && !process_runs(pid) && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path()).with_context(|| {
                format!(
                    "cannot remove stale temporary file {}",
                    entry.path().display()
                )
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether a process with this id exists.
fn process_runs(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// What a path is, for telling whether two paths are the same file.
#[derive(Debug, PartialEq, Eq)]
enum FileId {
    /// An existing file: device and inode (hard links and symlinks compare equal).
    Inode(u64, u64),
    /// A file that does not exist yet: its canonical directory joined with its name.
    Path(PathBuf),
}

/// The identity of `path`, or an error if it cannot be told (e.g. its directory is missing).
fn file_id(path: &Path) -> Result<FileId> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                Ok(FileId::Inode(meta.dev(), meta.ino()))
            }
            #[cfg(not(unix))]
            {
                let _ = meta;
                Ok(FileId::Path(std::fs::canonicalize(path)?))
            }
        }
        Err(_) => {
            let dir = parent(path);
            let dir = std::fs::canonicalize(dir).with_context(|| {
                format!(
                    "cannot write {}: directory {} does not exist",
                    path.display(),
                    dir.display()
                )
            })?;
            let name = path
                .file_name()
                .with_context(|| format!("{} is not a file name", path.display()))?;
            Ok(FileId::Path(dir.join(name)))
        }
    }
}

/// Checks every path a command will use before it writes anything: inputs exist and are files;
/// outputs are not directories and their directories can be written to; no two of them (inputs
/// and outputs) are the same file. Each pair is `(flag, path)`, so errors name the flag.
pub fn check_files(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    let mut seen: Vec<(&str, &Path, FileId)> = Vec::new();
    for &(flag, path) in inputs {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{flag}: cannot read {}", path.display()))?;
        if meta.is_dir() {
            bail!("{flag}: {} is a directory, expected a file", path.display());
        }
        seen.push((flag, path, file_id(path)?));
    }
    for &(flag, path) in outputs {
        if path.is_dir() {
            bail!(
                "{flag}: {} is a directory, expected a file name",
                path.display()
            );
        }
        let id = file_id(path).with_context(|| flag.to_string())?;
        if let Some((other, other_path, _)) = seen.iter().find(|s| s.2 == id) {
            let what = if inputs.iter().any(|i| i.0 == *other) {
                "input"
            } else {
                "output"
            };
            bail!(
                "{flag} {} is the same file as the {what} {other} {}: give a different path",
                path.display(),
                other_path.display()
            );
        }
        temp_in(parent(path)).with_context(|| flag.to_string())?;
        seen.push((flag, path, id));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_files_are_found_however_they_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, "1\n").unwrap();
        let link = dir.path().join("link.csv");
        std::fs::hard_link(&a, &link).unwrap();
        let dotted = dir.path().join(".").join("a.csv");
        let new = dir.path().join("new.csv");
        let new2 = dir.path().join("sub/../new.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let e = |r: Result<()>| format!("{:#}", r.unwrap_err());
        assert!(e(check_files(&[("--input", &a)], &[("--output", &dotted)])).contains("same file"));
        assert!(e(check_files(&[("--input", &a)], &[("--output", &link)])).contains("--input"));
        let msg = e(check_files(&[], &[("--output", &new), ("--state", &new2)]));
        assert!(
            msg.contains("--state") && msg.contains("output --output"),
            "{msg}"
        );
        check_files(&[("--input", &a)], &[("--output", &new)]).unwrap();
        let msg = e(check_files(
            &[],
            &[("--output", &dir.path().join("none/x.csv"))],
        ));
        assert!(
            msg.contains("does not exist") && !msg.contains('\n'),
            "{msg}"
        );
        assert!(e(check_files(&[], &[("--output", dir.path())])).contains("is a directory"));
        assert!(e(check_files(&[("--input", &new)], &[])).contains("cannot read"));
    }

    #[test]
    fn staged_files_appear_together_and_stale_temps_go() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut s = Staged::new();
        s.add(&a, |w| Ok(w.write_all(b"a")?)).unwrap();
        assert!(!a.exists());
        assert!(s.add(&b, |_| bail!("disk full")).is_err());
        drop(s);
        assert!(!a.exists() && !b.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temporaries left"
        );
        // A temporary of a process that no longer exists (pid beyond pid_max), and one of ours.
        let stale = dir.path().join(format!("{TMP_PREFIX}2147483646-abc"));
        std::fs::write(&stale, "x").unwrap();
        let ours = temp_in(dir.path()).unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(!stale.exists() && ours.path().exists());
    }
}
