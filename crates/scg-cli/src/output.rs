//! Output directories written as one transaction, for every command that writes `--out DIR`
//! (`simulate`, `optimize`, `vpp bids`), and single output files written atomically
//! (`ev evaluate --out FILE`).
//!
//! How a directory is written ([`OutputDir`]):
//! 1. [`OutputDir::begin`], before any expensive work: `--out` must name a directory (not `.`,
//!    `..` or a root) whose parent exists or can be created, and must not be a file. Then the
//!    exclusive lock `PARENT/.NAME.lock` is taken (`File::try_lock`, released when the process
//!    ends, even by kill -9); a second run fails at once naming the lock and the pid of its
//!    holder. Under the lock, what an interrupted run left is cleaned up (see below), and a
//!    fresh temporary sibling `PARENT/.NAME.tmp-PID` is created.
//! 2. [`OutputDir::check_inputs`], once the inputs are read and before the expensive work: an
//!    `--out` that contains any file the run reads (compared as canonical paths) is refused,
//!    naming the input; an existing `--out` must be empty or an earlier scg output (it holds the
//!    [`MARKER`] file), because the swap below replaces the whole directory, so a directory of
//!    the user's own files is refused. [`OutputDir::commit`] refuses to run without this check.
//! 3. Everything is written into the temporary directory ([`OutputDir::write`],
//!    [`OutputDir::dir`] for the ledger).
//! 4. [`OutputDir::commit`]: the marker file is written, every file and directory of the tree
//!    is synced, and the temporary directory takes the place of `--out`. On Linux this is one
//!    `renameat2(RENAME_EXCHANGE)`: readers see the old complete directory or the new complete
//!    one, never a mix and never nothing; the old one (now at the temporary name) is then
//!    deleted. Where the exchange is not supported, the old directory is renamed to
//!    `PARENT/.NAME.old` first and the new one renamed into place: between the two renames
//!    (two system calls) `--out` is absent, and a run killed exactly there leaves the old
//!    result complete at `.NAME.old`, which the next run into `--out` moves back before
//!    anything else.
//!
//! A run that fails or is killed before the swap leaves `--out` as it was, plus at most a stale
//! `.NAME.tmp-PID` that the next run removes. Because the new directory replaces the old one
//! entirely, nothing of an earlier run survives a re-run (a `--no-ledger` run leaves no ledger).
//!
//! Storage errors name the operation and the path ("writing /x/.o.tmp-7/summary.json: No space
//! left on device (os error 28)").
//!
//! Test hook: with `SCG_TEST_FAIL_WRITES_AFTER_BYTES=N` set, [`OutputDir::write`] fails with
//! "No space left on device" once N bytes have been written, so the full-disk path can be
//! tested without mounting a small file system.
//!
//! Must never: write into `--out` in place, delete a directory that is not an scg output, or
//! write over an input of the run.

use anyhow::{Context, Result, bail};
use std::cell::{Cell, RefCell};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The file that marks a directory as an scg output (so that a re-run may replace it).
pub const MARKER: &str = ".scg-output";
/// Environment variable of the full-disk test hook (see the module doc).
pub const FAIL_AFTER_ENV: &str = "SCG_TEST_FAIL_WRITES_AFTER_BYTES";

/// The files a run has read, collected while it reads them (shared with the file reader).
#[derive(Debug, Clone, Default)]
pub struct InputLog(Rc<RefCell<Vec<PathBuf>>>);

impl InputLog {
    /// Record one input file.
    pub fn record(&self, path: &Path) {
        self.0.borrow_mut().push(path.to_path_buf());
    }
    /// Record an optional input file (e.g. a scenario given on the command line).
    pub fn record_all(&self, path: Option<&Path>) {
        if let Some(p) = path {
            self.record(p);
        }
    }
    /// Every input recorded so far.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.0.borrow().clone()
    }
}

/// An output directory being written (see the module doc).
#[derive(Debug)]
pub struct OutputDir {
    out: PathBuf,
    parent: PathBuf,
    name: OsString,
    tmp: PathBuf,
    /// Held (locked) until this value is dropped.
    _lock: File,
    checked: bool,
    committed: bool,
    written_bytes: Cell<u64>,
    fail_after_bytes: Option<u64>,
}

/// A large file's writer ([`crate::stream_file::StreamFile`]) that counts its bytes (for the
/// full-disk test hook of [`OutputDir::write_stream`]).
#[derive(Debug)]
pub struct CountingWriter {
    inner: crate::stream_file::StreamFile,
    written: u64,
    fail_after_bytes: Option<u64>,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(limit) = self.fail_after_bytes
            && self.written.saturating_add(buf.len() as u64) > limit
        {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `PARENT/.NAME<suffix>`.
fn sibling(parent: &Path, name: &OsStr, suffix: &str) -> PathBuf {
    let mut s = OsString::from(".");
    s.push(name);
    s.push(suffix);
    parent.join(s)
}

impl OutputDir {
    /// Check that `out` can be written, lock it, recover what an interrupted run left, and
    /// create the temporary directory. Call before any expensive work.
    pub fn begin(out: &Path) -> Result<Self> {
        let name = out
            .file_name()
            .with_context(|| {
                format!(
                    "--out {}: name a directory of its own (not `.`, `..` or a root)",
                    out.display()
                )
            })?
            .to_os_string();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            fs::create_dir_all(&parent)
                .with_context(|| format!("creating {} (parent of --out)", parent.display()))?;
        }
        if out.exists() && !out.is_dir() {
            bail!("--out {} exists and is not a directory", out.display());
        }
        let lock = lock(&parent, &name, out)?;
        recover(&parent, &name, out)?;
        let tmp = sibling(&parent, &name, &format!(".tmp-{}", std::process::id()));
        fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let fail_after_bytes = std::env::var(FAIL_AFTER_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        Ok(Self {
            out: out.to_path_buf(),
            parent,
            name,
            tmp,
            _lock: lock,
            checked: false,
            committed: false,
            written_bytes: Cell::new(0),
            fail_after_bytes,
        })
    }

    /// Refuse an `--out` that contains (or is) one of `inputs`, or that exists and is neither
    /// empty nor an scg output.
    pub fn check_inputs(&mut self, inputs: &[PathBuf]) -> Result<()> {
        self.refuse_inputs(inputs)?;
        check_replaceable(&self.out)?;
        self.checked = true;
        Ok(())
    }

    fn refuse_inputs(&self, inputs: &[PathBuf]) -> Result<()> {
        let Ok(out) = self.out.canonicalize() else {
            return Ok(()); // --out does not exist yet: it contains nothing
        };
        for input in inputs {
            let Ok(canonical) = input.canonicalize() else {
                continue;
            };
            if canonical.starts_with(&out) {
                bail!(
                    "--out {} contains {}, an input of this run; the results would replace it: choose another --out",
                    self.out.display(),
                    input.display()
                );
            }
        }
        Ok(())
    }

    /// The directory to write into (the temporary sibling until [`OutputDir::commit`]).
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Write one file into the output.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.tmp.join(name);
        self.write_file(&path, bytes)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Write one file into the output through a writer that `encode` fills and returns (for
    /// files too large to build in memory first, e.g. `members.parquet`): chunks written by a
    /// thread of their own, past the page cache where the file system allows it
    /// ([`crate::stream_file`]). The full-disk test hook applies as in [`OutputDir::write`].
    pub fn write_stream<E>(
        &self,
        name: &str,
        encode: impl FnOnce(CountingWriter) -> Result<CountingWriter, E>,
    ) -> Result<()>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let path = self.tmp.join(name);
        let file = crate::stream_file::StreamFile::create(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        let writer = CountingWriter {
            inner: file,
            written: self.written_bytes.get(),
            fail_after_bytes: self.fail_after_bytes,
        };
        let writer = encode(writer).with_context(|| format!("writing {}", path.display()))?;
        let written = writer.written;
        writer
            .inner
            .finish()
            .with_context(|| format!("writing {}", path.display()))?;
        self.written_bytes.set(written);
        Ok(())
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut f = File::create(path)?;
        let done = self.written_bytes.get();
        if let Some(limit) = self.fail_after_bytes {
            let room = usize::try_from(limit.saturating_sub(done)).unwrap_or(usize::MAX);
            if bytes.len() > room {
                f.write_all(&bytes[..room])?;
                self.written_bytes.set(limit);
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
        }
        f.write_all(bytes)?;
        self.written_bytes.set(done + bytes.len() as u64);
        Ok(())
    }

    /// Mark, sync and swap the new directory into place (see the module doc).
    pub fn commit(mut self, command: &str) -> Result<()> {
        if !self.checked {
            bail!(
                "internal error: {} was not checked against the run's inputs",
                self.out.display()
            );
        }
        self.write(
            MARKER,
            format!(
                "written by scg {} {command}; a re-run replaces this whole directory\n",
                env!("CARGO_PKG_VERSION")
            )
            .as_bytes(),
        )?;
        sync_tree(&self.tmp)?;
        if self.out.exists() {
            self.swap()?;
        } else {
            fs::rename(&self.tmp, &self.out).with_context(|| {
                format!("renaming {} to {}", self.tmp.display(), self.out.display())
            })?;
            sync_dir(&self.parent)?;
        }
        self.committed = true;
        Ok(())
    }

    /// Replace the existing `--out` with the temporary directory, then delete the old one.
    fn swap(&self) -> Result<()> {
        if exchange(&self.tmp, &self.out)? {
            sync_dir(&self.parent)?;
            // The old result now sits at the temporary name.
            return fs::remove_dir_all(&self.tmp)
                .with_context(|| format!("removing the previous result {}", self.tmp.display()));
        }
        let old = sibling(&self.parent, &self.name, ".old");
        fs::rename(&self.out, &old)
            .with_context(|| format!("renaming {} to {}", self.out.display(), old.display()))?;
        fs::rename(&self.tmp, &self.out).with_context(|| {
            format!("renaming {} to {}", self.tmp.display(), self.out.display())
        })?;
        sync_dir(&self.parent)?;
        fs::remove_dir_all(&old)
            .with_context(|| format!("removing the previous result {}", old.display()))
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort; a leftover is removed by the next run into the same --out.
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Take the exclusive lock `PARENT/.NAME.lock`, recording our pid in it.
fn lock(parent: &Path, name: &OsStr, out: &Path) -> Result<File> {
    let path = sibling(parent, name, ".lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| {
            format!(
                "creating the lock file {} (is the directory writable?)",
                path.display()
            )
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another scg run".to_string()
            } else {
                format!("another scg run (pid {holder})")
            };
            bail!(
                "{} is being written by {who}, which holds the lock {}; wait for it to finish or choose another --out",
                out.display(),
                path.display()
            );
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    // The pid is for the message above only; the lock itself is what excludes.
    file.set_len(0)
        .and_then(|()| write!(file, "{}", std::process::id()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(file)
}

/// Under the lock: undo what an interrupted run left next to `out`.
fn recover(parent: &Path, name: &OsStr, out: &Path) -> Result<()> {
    let old = sibling(parent, name, ".old");
    if old.is_dir() {
        if out.exists() {
            // Killed after the new result was in place: the old one is garbage.
            fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        } else {
            // Killed between the two renames: the old result is complete, put it back.
            fs::rename(&old, out)
                .with_context(|| format!("restoring {} to {}", old.display(), out.display()))?;
        }
    }
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".tmp-");
    let prefix = prefix.to_string_lossy().into_owned();
    let entries =
        fs::read_dir(parent).with_context(|| format!("reading directory {}", parent.display()))?;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let stale = file_name
            .strip_prefix(&prefix)
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if stale {
            let path = entry.path();
            fs::remove_dir_all(&path)
                .with_context(|| format!("removing the stale {}", path.display()))?;
        }
    }
    Ok(())
}

/// An existing `out` may be replaced only if it is empty or an scg output, and does not
/// contain the current directory.
fn check_replaceable(out: &Path) -> Result<()> {
    if !out.is_dir() {
        return Ok(());
    }
    if let (Ok(cwd), Ok(canonical)) = (std::env::current_dir(), out.canonicalize())
        && cwd.starts_with(&canonical)
    {
        bail!(
            "--out {} contains the current directory; choose a directory of its own",
            out.display()
        );
    }
    let empty = fs::read_dir(out)
        .with_context(|| format!("reading directory {}", out.display()))?
        .next()
        .is_none();
    if !empty && !out.join(MARKER).is_file() {
        bail!(
            "--out {} exists and is not an scg output directory (no {MARKER} file); a run replaces the whole directory, so choose a new or empty one",
            out.display()
        );
    }
    Ok(())
}

/// Sync every file and directory under `dir` (and `dir` itself) to disk.
fn sync_tree(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sync_tree(&path)?;
        } else {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", path.display()))?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// Atomically exchange two directories; `Ok(false)` where the system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        // Not supported by this kernel or file system.
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(false),
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("exchanging {} and {}", a.display(), b.display())),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> Result<bool> {
    Ok(false)
}

/// Write one output file atomically (a temporary sibling, synced, renamed over `path`),
/// refusing to write over one of `inputs`.
pub fn write_file_atomically(path: &Path, bytes: &[u8], inputs: &[PathBuf]) -> Result<()> {
    if let Ok(target) = path.canonicalize() {
        for input in inputs {
            if input.canonicalize().is_ok_and(|i| i == target) {
                bail!(
                    "--out {} is an input of this run ({}); choose another file",
                    path.display(),
                    input.display()
                );
            }
        }
    }
    if path.is_dir() {
        bail!("--out {} is a directory, expected a file", path.display());
    }
    let name = path
        .file_name()
        .with_context(|| format!("--out {}: expected a file name", path.display()))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = sibling(&parent, name, &format!(".tmp-{}", std::process::id()));
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
        });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(&parent)
}
