//! Sinks: a file that is exactly-once across retries and restarts ([`FileSink`]), any writer
//! ([`WriterSink`]), de-duplication of a re-read look-back ([`Dedup`]), and the file-system
//! primitives they rest on: exclusive locks, durable renames, atomic writes.
//!
//! Every blocking operation (writes, `fsync`, copies to a slow reader) runs on a writer thread
//! of the sink's own, never on the async runtime; see `offload.rs`.

mod columns;
mod dedup;
mod file;
mod offload;
#[cfg(feature = "parquet")]
mod parquet;
mod record_id;
mod writer;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use self::dedup::Dedup;
pub use self::file::FileSink;
#[cfg(feature = "parquet")]
pub use self::parquet::{EXTRA_COLUMN, ParquetCompression, ParquetOptions, ParquetSink, Partition};
pub use self::record_id::RecordId;
pub use self::writer::WriterSink;
use crate::{Error, Result};

/// `<path>.part`: where [`FileSink`] writes until the export is complete.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// An exclusive advisory lock on a file (`flock` on Unix, `LockFileEx` on Windows), held until
/// it is dropped. The operating system releases it when the process ends, however it ends, so a
/// crash never leaves a stale lock behind.
///
/// ```
/// use iterable_export::{Error, ExclusiveLock};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.json.lock");
/// let held = ExclusiveLock::acquire(&path)?;
/// let second = ExclusiveLock::acquire(&path);
/// assert!(matches!(second, Err(Error::Io { .. })));
/// drop(held);
/// ExclusiveLock::acquire(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ExclusiveLock {
    _file: File,
    path: PathBuf,
}

impl ExclusiveLock {
    /// Creates `path` if needed and locks it, without waiting.
    ///
    /// # Errors
    /// [`Error::Io`] with kind `WouldBlock` and a message naming the file when another process
    /// (or another lock in this one) holds it; [`Error::Io`] when it cannot be created.
    pub fn acquire(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot create the lock file {}", path.display()), e))?;
        lock(&file, &path)?;
        Ok(ExclusiveLock { _file: file, path })
    }

    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes an exclusive lock on an open file without waiting.
pub(crate) fn lock(file: &File, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::io(
            format!(
                "{} is locked: another export holds it; wait for that export to finish, or use another \
                 state file or output directory",
                path.display()
            ),
            std::io::Error::from(std::io::ErrorKind::WouldBlock),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(format!("cannot lock {}", path.display()), e)),
    }
}

/// Makes a rename in `path`'s directory durable: syncs the directory (on Unix; elsewhere a
/// rename is as durable as the platform makes it).
///
/// # Errors
/// [`Error::Io`] when the directory cannot be opened or synced.
pub fn sync_parent_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("cannot sync the directory {}", dir.display()), e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Replaces `path` with `contents` atomically and durably: a temporary file with a unique name
/// in the same directory, synced, renamed over `path`, and the directory synced. A reader sees
/// the old contents or the new, never a mix; a crash leaves the old file (and at most a hidden
/// temporary file, which the next write does not reuse).
///
/// # Errors
/// [`Error::Io`] naming `path` when any step fails; the temporary file is then removed.
pub fn write_file_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    write_file_atomically_with(path, |out| out.write_all(contents))
}

/// Like [`write_file_atomically`], with the contents streamed by `write` into a buffered
/// writer, so a large file (a checkpoint with many remembered records) is never held in memory
/// whole.
///
/// # Errors
/// [`Error::Io`] naming `path` when `write` or any step fails; the temporary file is then
/// removed.
pub fn write_file_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let context = || format!("cannot write {}", path.display());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(context(), e))?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, tmp);
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(context(), e))?;
    let tmp = out.into_inner().map_err(|e| Error::io(context(), e.into_error()))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(context(), e))?;
    tmp.persist(path).map_err(|e| Error::io(context(), e.error))?;
    sync_parent_dir(path)
}

/// Removes the temporary files that [`write_file_atomically`] leaves beside `path` when a
/// process is killed mid-write (`.<name>.<random>.tmp`), and returns how many it removed.
///
/// Call it only while holding the lock that guards writes to `path` (for a state file, the
/// [`ExclusiveLock`] on its lock file): a temporary file of a live writer must not be removed.
///
/// ```
/// use iterable_export::{remove_stale_temporaries, write_file_atomically};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.json");
/// write_file_atomically(&path, b"{}")?;
/// std::fs::write(dir.path().join(".state.json.Ab12Cd.tmp"), b"{\"half")?;
/// assert_eq!(remove_stale_temporaries(&path)?, 1);
/// assert!(path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] naming the directory or the file when it cannot be read or removed.
pub fn remove_stale_temporaries(path: &Path) -> Result<usize> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(0);
    };
    let prefix = format!(".{name}.");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(format!("cannot read the directory {}", dir.display()), e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot read the directory {}", dir.display()), e))?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let stale = file_name.len() > prefix.len() + ".tmp".len()
            && file_name.starts_with(&prefix)
            && file_name.ends_with(".tmp");
        if stale {
            std::fs::remove_file(entry.path()).map_err(|e| {
                Error::io(
                    format!("cannot remove the temporary file {}", entry.path().display()),
                    e,
                )
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
fn test_window() -> crate::Window {
    use chrono::{TimeZone, Utc};
    let start = Utc.timestamp_opt(0, 0).single().unwrap_or_default();
    crate::Window {
        start,
        end: start + chrono::TimeDelta::seconds(60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("state.json");
        write_file_atomically(&path, b"one")?;
        write_file_atomically(&path, b"two")?;
        assert_eq!(std::fs::read(&path).map_err(|e| Error::io("read", e))?, b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .map_err(|e| Error::io("read_dir", e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, ["state.json"]);
        Ok(())
    }

    #[test]
    fn stale_temporaries_of_a_killed_write_are_removed_and_nothing_else() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("state.json");
        write_file_atomically(&path, b"kept")?;
        for name in [
            ".state.json.C4DWjC.tmp",
            ".state.json.x.tmp",
            ".state.json.lock",
            ".state.json..tmp-not",
            ".other.json.C4DWjC.tmp",
            "state.json.tmp",
        ] {
            std::fs::write(dir.path().join(name), b"x").map_err(|e| Error::io("write", e))?;
        }
        assert_eq!(remove_stale_temporaries(&path)?, 2);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .map_err(|e| Error::io("read_dir", e))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".other.json.C4DWjC.tmp",
                ".state.json..tmp-not",
                ".state.json.lock",
                "state.json",
                "state.json.tmp"
            ]
        );
        assert_eq!(std::fs::read(&path).map_err(|e| Error::io("read", e))?, b"kept");
        assert_eq!(remove_stale_temporaries(&dir.path().join("missing/state.json"))?, 0);
        Ok(())
    }

    #[test]
    fn a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("state.json");
        write_file_atomically(&path, b"old")?;
        let failed = write_file_atomically_with(&path, |out| {
            out.write_all(b"half")?;
            Err(std::io::Error::other("serializer failed"))
        });
        match failed {
            Err(Error::Io { context, source }) => {
                assert_eq!(context, format!("cannot write {}", path.display()));
                assert_eq!(source.to_string(), "serializer failed");
            }
            other => panic!("expected the write's error, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).map_err(|e| Error::io("read", e))?, b"old");
        assert_eq!(
            std::fs::read_dir(dir.path())
                .map_err(|e| Error::io("read_dir", e))?
                .count(),
            1
        );
        Ok(())
    }

    #[test]
    fn a_held_lock_refuses_a_second_holder_with_a_clear_message() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("x.lock");
        let held = ExclusiveLock::acquire(&path)?;
        match ExclusiveLock::acquire(&path) {
            Err(Error::Io { context, source }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock);
                assert!(context.contains("is locked: another export holds it"), "{context}");
                assert!(context.contains("x.lock"), "{context}");
            }
            other => panic!("expected a lock error, got {other:?}"),
        }
        drop(held);
        ExclusiveLock::acquire(&path)?;
        Ok(())
    }
}
