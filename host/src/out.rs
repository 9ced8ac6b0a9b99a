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
//!
//! # Run directories
//!
//! A training run owns its output directory for as long as it runs ([`OutDir::start_run`]):
//!
//! 1. It takes an advisory lock on `<dir>/.tinyrnn.lock` (`flock`, released by the kernel when
//!    the process ends, however it ends); a second run on the same directory is refused with one
//!    line naming the pid of the first. The lock file is removed when the run ends (a killed
//!    run's is reused by the next).
//! 2. Under the lock it removes the stale temporaries of killed runs.
//! 3. Unless it continues the run in the directory (`--resume` of that directory), it moves the
//!    previous run aside as a whole: every entry whose name a run writes (`run.json`, and the
//!    names the caller recognises: `metrics.csv`, `model.safetensors`, ...) goes into
//!    `<dir>/previous/`, which replaces an older `previous/` as a whole (one generation is
//!    kept). Every other file is left alone. The entries are first moved into
//!    `.tinyrnn-previous.partial/`, which is then renamed to `previous/`; a run killed in
//!    between leaves that directory, and the next run completes the move before anything else.
//!    A directory holding only a `run.json` (a run killed before it wrote anything) is no run:
//!    that file is replaced and `previous/` kept. An input of the run (`--data`, `--resume`)
//!    inside anything that would be moved or dropped is refused before anything moves.
//! 4. It writes its manifest `run.json` (task, flags, command line, tinyrnn version, pid, start
//!    time, status `running`) before any other output.
//!
//! When the run ends ([`OutDir::finish`]) the manifest says `finished` (with the summary line)
//! or `failed` (with the error); a run that failed before writing any output removes its
//! manifest, and one that failed continuing a run puts back the manifest it found, so a failed
//! command leaves the directory as it was. A `run.json` that still says `running` while no
//! process holds the lock is a killed run.
//!
//! Outputs can then not be inputs: after the move nothing named like an output is left in the
//! directory, so only a run continued in place meets its own files (its checkpoint, read before
//! it is replaced by rename).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

/// Prefix of every temporary file tinyrnn writes; the process id follows.
pub const TMP_PREFIX: &str = ".tmp-tinyrnn-";

/// The directory a run writes into.
#[derive(Debug, Clone)]
pub struct OutDir {
    dir: PathBuf,
    /// The run that owns the directory ([`OutDir::start_run`]); none for a plain directory.
    run: Option<Arc<RunGuard>>,
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
            run: None,
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

/// The manifest a run writes in its output directory before any other output.
pub const MANIFEST: &str = "run.json";
/// Where a new run moves the run it finds in its output directory.
pub const PREVIOUS: &str = "previous";
/// The file a run holds an advisory lock on while it runs.
pub const LOCK_FILE: &str = ".tinyrnn.lock";
/// The previous run while it is being moved aside.
const MOVING: &str = ".tinyrnn-previous.partial";
/// The older `previous/` while it is being removed.
const DROPPING: &str = ".tinyrnn-previous.old";

/// How a run starts in its output directory ([`OutDir::start_run`]).
pub struct RunStart<'a> {
    /// The task, e.g. `sine`.
    pub task: &'a str,
    /// All the task's flags (defaults included), as text.
    pub flags: String,
    /// What the run reads, as `(flag, path)` (files or directories): none may lie in what a new
    /// run moves aside or drops.
    pub inputs: &'a [(&'a str, &'a Path)],
    /// The run continues the run in the directory (`--resume` of it): nothing is moved aside.
    pub continues: bool,
    /// Whether an entry of an output directory, by name, is written by some run (besides
    /// [`MANIFEST`]).
    pub is_output: fn(&str) -> bool,
}

/// `run.json`: what ran in a directory, and how it ended.
#[derive(Debug, serde::Serialize)]
struct Manifest {
    task: String,
    flags: String,
    command: Vec<String>,
    tinyrnn: &'static str,
    pid: u32,
    started_unix_s: u64,
    resumed: bool,
    /// `running`, `finished` or `failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_unix_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What a run holds while it runs.
#[derive(Debug)]
struct RunGuard {
    _lock: Lock,
    manifest: Mutex<Manifest>,
    /// The run continues the run in the directory.
    continues: bool,
    /// The manifest found there when continuing (put back if this attempt fails).
    found: Option<Vec<u8>>,
    is_output: fn(&str) -> bool,
}

/// An advisory lock (`flock`) on [`LOCK_FILE`] in a run directory; the file is removed when the
/// lock is dropped, while it is still held.
#[derive(Debug)]
struct Lock {
    /// Holds the lock until it is closed.
    _file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock of `dir`, or refuses with one line if another process holds it.
    fn take(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        for _ in 0..3 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("cannot create the lock file {}", path.display()))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    let by = match pid.trim() {
                        "" => String::new(),
                        pid => format!(" (pid {pid})"),
                    };
                    bail!(
                        "{} is in use by another tinyrnn run{by}: wait for it to end or give \
                         another --out",
                        dir.display()
                    );
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
            // The run before may have removed the file just before it let go of the lock: then
            // this lock is on a file no later run sees; take the one that is there now.
            if file_id(&path)? == file_id_of(&file.metadata()?) {
                file.set_len(0)?;
                write!(file, "{}", std::process::id())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                return Ok(Self { _file: file, path });
            }
        }
        bail!(
            "cannot lock {}: the lock file keeps changing",
            path.display()
        )
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked; the file closes (and unlocks) after this.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl OutDir {
    /// Starts a run in `dir` (created if needed), as the module docs describe: takes the lock,
    /// removes stale temporaries, moves the previous run aside (unless `start.continues`) and
    /// writes the manifest. Nothing is moved if an input lies in what would be moved.
    pub fn start_run(dir: &Path, start: &RunStart) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        let lock = Lock::take(dir)?;
        remove_stale_temps(dir)?;
        remove_all(&dir.join(DROPPING))?;
        if !start.continues {
            move_aside(dir, start)?;
        }
        temp_in(dir)
            .with_context(|| format!("cannot write to output directory {}", dir.display()))?;
        let found = match start.continues {
            true => std::fs::read(dir.join(MANIFEST)).ok(),
            false => None,
        };
        let manifest = Manifest {
            task: start.task.to_string(),
            flags: start.flags.clone(),
            command: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            tinyrnn: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            started_unix_s: unix_now(),
            resumed: start.continues,
            status: "running",
            ended_unix_s: None,
            summary: None,
            error: None,
        };
        let out = Self {
            dir: dir.to_path_buf(),
            run: None,
        };
        out.write_manifest(&manifest)?;
        Ok(Self {
            run: Some(Arc::new(RunGuard {
                _lock: lock,
                manifest: Mutex::new(manifest),
                continues: start.continues,
                found,
                is_output: start.is_output,
            })),
            ..out
        })
    }

    /// Ends the run with `result`, which it returns: the manifest says `finished` with the
    /// summary line, or, on an error, `failed` with it; a failed run that wrote no output
    /// removes its manifest (a failed continuation puts back the one it found). Does nothing
    /// for a directory that is not a run's.
    pub fn finish(&self, result: Result<String>) -> Result<String> {
        let Some(run) = &self.run else {
            return result;
        };
        let mut m = run.manifest.lock().unwrap_or_else(|e| e.into_inner());
        m.ended_unix_s = Some(unix_now());
        let path = self.path(MANIFEST);
        match result {
            Ok(summary) => {
                (m.status, m.summary) = ("finished", Some(summary.clone()));
                self.write_manifest(&m)?;
                Ok(summary)
            }
            Err(e) => {
                // Best effort: the run's own error is the one to report.
                let _ = match (&run.found, run.continues) {
                    (Some(found), true) => write_atomic(&path, |w| Ok(w.write_all(found)?)),
                    (None, true) => remove_all(&path),
                    _ if !run_entries(&self.dir, run.is_output)?
                        .iter()
                        .any(|n| n != MANIFEST) =>
                    {
                        remove_all(&path)
                    }
                    _ => {
                        (m.status, m.error) = ("failed", Some(format!("{e:#}")));
                        self.write_manifest(&m)
                    }
                };
                Err(e)
            }
        }
    }

    /// Writes `m` as the directory's `run.json`.
    fn write_manifest(&self, m: &Manifest) -> Result<()> {
        self.write(MANIFEST, |w| {
            serde_json::to_writer_pretty(&mut *w, m)?;
            Ok(w.write_all(b"\n")?)
        })
        .map(|_| ())
    }
}

/// Seconds since 1970 (0 if the clock is before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The names of the entries of `dir` that a run wrote: [`MANIFEST`] and those `is_output`
/// recognises, sorted.
fn run_entries(dir: &Path, is_output: fn(&str) -> bool) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n == MANIFEST || is_output(n))
        .collect();
    names.sort();
    Ok(names)
}

/// Moves the run in `dir` into `previous/` (module docs, step 3), completing a move that a
/// killed run left half done.
fn move_aside(dir: &Path, start: &RunStart) -> Result<()> {
    let names = run_entries(dir, start.is_output)?;
    let (moving, previous) = (dir.join(MOVING), dir.join(PREVIOUS));
    let partial = moving.symlink_metadata().is_ok();
    if !partial && names.iter().all(|n| n == MANIFEST) {
        return Ok(()); // No run, or one that wrote nothing but its manifest (replaced later).
    }
    let mut moved: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    moved.extend([moving.clone(), previous.clone()]);
    check_outside(start.inputs, &moved)?;
    if !partial {
        std::fs::create_dir(&moving)
            .with_context(|| format!("cannot create {}", moving.display()))?;
    }
    for name in &names {
        let (from, to) = (dir.join(name), moving.join(name));
        if to.symlink_metadata().is_ok() {
            bail!(
                "cannot move the previous run aside: {} and {} both exist; move one of them",
                from.display(),
                to.display()
            );
        }
        if from.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            remove_stale_temps(&from)?;
        }
        rename(&from, &to)?;
    }
    let dropping = dir.join(DROPPING);
    if previous.symlink_metadata().is_ok() {
        rename(&previous, &dropping)?;
    }
    rename(&moving, &previous)?;
    remove_all(&dropping)
}

/// Refuses an input that lies in (or is) one of `moved`, which are about to be moved or
/// removed.
fn check_outside(inputs: &[(&str, &Path)], moved: &[PathBuf]) -> Result<()> {
    for &(flag, input) in inputs {
        let Ok(input_c) = std::fs::canonicalize(input) else {
            continue; // Not there: the run's own checks say so.
        };
        for m in moved {
            if std::fs::canonicalize(m).is_ok_and(|m| input_c.starts_with(m)) {
                bail!(
                    "{flag} {} is in {}, which this run would move aside as the previous run's \
                     files: give another --out, or move it first",
                    input.display(),
                    m.display()
                );
            }
        }
    }
    Ok(())
}

/// `std::fs::rename` with an error that names both paths.
fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))
}

/// Removes a file or a directory with all it holds (a symlink itself, not its target); nothing
/// if `path` does not exist.
fn remove_all(path: &Path) -> Result<()> {
    let r = match path.symlink_metadata() {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    r.with_context(|| format!("cannot remove {}", path.display()))
}

/// Whether `a` and `b` are the same file or directory (device and inode), both existing.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => file_id_of(&a) == file_id_of(&b),
        _ => false,
    }
}

/// What a path is, for telling whether two paths are the same file.
#[derive(Debug, PartialEq, Eq)]
enum FileId {
    /// An existing file: device and inode (hard links and symlinks compare equal).
    Inode(u64, u64),
    /// A file that does not exist yet: its canonical directory joined with its name.
    Path(PathBuf),
}

/// The identity of an existing file from its metadata (the host runs on Unix: `libc::kill`).
fn file_id_of(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId::Inode(meta.dev(), meta.ino())
}

/// The identity of `path`, or an error if it cannot be told (e.g. its directory is missing).
fn file_id(path: &Path) -> Result<FileId> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(file_id_of(&meta)),
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

    /// A [`RunStart`] of a new run (or, with `continues`, of the run in the directory) whose
    /// outputs are `*.csv` files.
    fn start(continues: bool) -> RunStart<'static> {
        RunStart {
            task: "test",
            flags: "flags".into(),
            inputs: &[],
            continues,
            is_output: |n| n.ends_with(".csv"),
        }
    }

    /// The sorted entries under `dir`, as relative paths.
    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().into_string().unwrap();
            if e.path().is_dir() {
                out.extend(tree(&e.path()).into_iter().map(|n| format!("{name}/{n}")));
            } else {
                out.push(name);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_move_aside_cut_short_by_a_kill_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Killed mid-move: a.csv already moved, b.csv not yet; the older previous/ still there;
        // and a removal of an even older generation cut short.
        for (path, text) in [
            (MOVING.to_string() + "/a.csv", "a"),
            ("b.csv".into(), "b"),
            ("previous/old.csv".into(), "old"),
            (DROPPING.to_string() + "/older.csv", "older"),
            ("notes.txt".into(), "mine"),
        ] {
            let p = d.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let out = OutDir::start_run(d, &start(false)).unwrap();
        assert_eq!(
            tree(d),
            [
                ".tinyrnn.lock",
                "notes.txt",
                "previous/a.csv",
                "previous/b.csv",
                "run.json"
            ]
        );
        assert_eq!(out.finish(Ok("done".into())).unwrap(), "done");
        drop(out);
        assert!(!d.join(LOCK_FILE).exists(), "lock file left");
    }

    #[test]
    fn a_manifest_alone_is_no_run_and_failed_runs_leave_what_they_found() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join(PREVIOUS)).unwrap();
        std::fs::write(d.join("previous/a.csv"), "a").unwrap();
        std::fs::write(d.join(MANIFEST), "killed before writing").unwrap();
        // A new run that fails before writing: no manifest, previous/ kept.
        let out = OutDir::start_run(d, &start(false)).unwrap();
        assert!(out.finish(Err(anyhow::anyhow!("bad flag"))).is_err());
        drop(out);
        assert_eq!(tree(d), ["previous/a.csv"]);
        // A failed continuation puts back the manifest it found.
        std::fs::write(d.join("b.csv"), "b").unwrap();
        std::fs::write(d.join(MANIFEST), "the run").unwrap();
        let out = OutDir::start_run(d, &start(true)).unwrap();
        assert!(out.finish(Err(anyhow::anyhow!("other flags"))).is_err());
        drop(out);
        assert_eq!(
            std::fs::read_to_string(d.join(MANIFEST)).unwrap(),
            "the run"
        );
        // A new run that wrote an output and failed says so.
        let out = OutDir::start_run(d, &start(false)).unwrap();
        out.write("c.csv", |w| Ok(w.write_all(b"c")?)).unwrap();
        assert!(out.finish(Err(anyhow::anyhow!("disk full"))).is_err());
        let m = std::fs::read_to_string(d.join(MANIFEST)).unwrap();
        assert!(m.contains("\"failed\"") && m.contains("disk full"), "{m}");
        assert_eq!(tree(&d.join(PREVIOUS)), ["b.csv", "run.json"]);
    }

    #[test]
    fn one_run_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutDir::start_run(dir.path(), &start(false)).unwrap();
        let e = format!(
            "{:#}",
            OutDir::start_run(dir.path(), &start(true)).unwrap_err()
        );
        assert!(
            e.contains("in use") && e.contains(&std::process::id().to_string()),
            "{e}"
        );
        drop(first);
        OutDir::start_run(dir.path(), &start(true)).unwrap();
    }
}
