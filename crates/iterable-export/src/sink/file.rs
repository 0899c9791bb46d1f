//! [`FileSink`]: a file that is exactly-once across retries and restarts.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

mod part;

use self::part::PartFile;
use super::columns::{self, Columns, Fit};
use super::offload::Offload;
use super::{lock, part_path, sync_parent_dir};
use crate::{Error, Format, Result, Sink, Window};

/// Writes records to `<path>.part` and renames it to `path` when [`FileSink::finish`] is called.
///
/// NDJSON records are written as received, one per line; CSV gets the header row of the first
/// window once, then the records as received. CSV windows whose columns differ are aligned to
/// one header, the union of the columns (see [`Sink::header`] below): a window with fewer
/// columns or another order has its records rewritten into the file's order; a window with new
/// columns appends them to the header, and at its commit the file is rewritten once (streamed to
/// `<path>.part.next`, each earlier record given an empty field per new column), which replaces
/// `<path>.part` when the next window begins or the export finishes — after the caller has
/// checkpointed the commit, so [`FileSink::resume`] always finds the file its checkpoint
/// describes. [`Sink::abort`] truncates the file back to the
/// end of the last committed window, so a retried window never duplicates a record. After a
/// crash, [`FileSink::resume`] truncates the `.part` file to the length recorded at the last
/// commit (see [`FileSink::committed_len`]) and appends from there.
///
/// The `.part` file is locked (see [`ExclusiveLock`](crate::ExclusiveLock)) while the sink
/// lives, so a second export of the same file fails at once instead of truncating this one's.
/// Writes and syncs run on a thread of the sink's own, never on the async runtime; memory stays
/// bounded (about 1.25 MiB in flight).
///
/// ```no_run
/// # async fn demo(client: iterable_export::Client) -> iterable_export::Result<()> {
/// use chrono::{Duration, Utc};
/// use iterable_export::{DataType, FileSink, WindowOptions};
///
/// let end = Utc::now();
/// let mut sink = FileSink::create("emailSend.ndjson")?;
/// let summary = client
///     .export(DataType::EmailSend)
///     .between(end - Duration::days(7), end)
///     .export_windows(WindowOptions::default(), &mut sink)
///     .await?;
/// sink.finish().await?;
/// println!("{} records", summary.records);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    part: PathBuf,
    out: Offload<PartFile>,
    committed_len: u64,
    written_len: u64,
    columns: Columns,
    /// This attempt's records go into the file's columns through this map.
    remap: Option<Vec<Option<usize>>>,
    /// This attempt brings new columns: the new header row and how many.
    grow: Option<(Vec<u8>, usize)>,
    /// `<path>.part.next` holds the committed file and replaces `<path>.part` at the next
    /// `begin` or `finish`.
    next_pending: bool,
    sync_on_commit: bool,
}

impl FileSink {
    /// Starts a new file: `<path>.part` is created (emptying any previous one, once it is
    /// locked).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created, or another export holds it.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let part = part_path(&path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(|e| Error::io(format!("cannot create {}", part.display()), e))?;
        lock(&file, &part)?;
        file.set_len(0)
            .map_err(|e| Error::io(format!("cannot empty {}", part.display()), e))?;
        // A rewrite left by an earlier export of this file belongs to no checkpoint now.
        let next = next_path(&path);
        if next.exists() {
            std::fs::remove_file(&next).map_err(|e| Error::io(format!("cannot remove {}", next.display()), e))?;
        }
        // The new name must survive a power cut before any checkpoint refers to it.
        sync_parent_dir(&part)?;
        Self::with_file(path, part, file, 0, Columns::default())
    }

    /// Continues a file after an interruption: `<path>.part` is truncated to `committed_len`
    /// (what the last commit recorded) and appended to. When only `path` exists (the export
    /// was renamed complete, but its checkpoint not yet marked done), it is continued as with
    /// [`FileSink::extend`].
    ///
    /// # Errors
    /// [`Error::Io`] when the file is missing, shorter than `committed_len`, or has no record
    /// boundary (a newline) at `committed_len`: then it does not belong to that checkpoint, and
    /// nothing is changed. Also when another export holds it.
    pub fn resume(path: impl Into<PathBuf>, format: Format, committed_len: u64) -> Result<Self> {
        let path = path.into();
        let part = part_path(&path);
        // A CSV rewrite with new columns that a crash interrupted: its file is the committed one
        // when the checkpoint recorded its length; otherwise the checkpoint predates it.
        let next = next_path(&path);
        if next.exists() {
            // A running export holds it locked: refuse before changing anything.
            let held = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&next)
                .map_err(|e| Error::io(format!("cannot open {}", next.display()), e))?;
            lock(&held, &next)?;
            drop(held);
            if file_len(&next)? == committed_len {
                std::fs::rename(&next, &part)
                    .map_err(|e| Error::io(format!("cannot rename {} to {}", next.display(), part.display()), e))?;
                sync_parent_dir(&part)?;
            } else {
                std::fs::remove_file(&next).map_err(|e| Error::io(format!("cannot remove {}", next.display()), e))?;
            }
        }
        if !part.exists() && path.exists() {
            return Self::extend(path, format, committed_len);
        }
        let file = open_checked(&part, committed_len, false)?;
        Self::continue_file(path, part, file, format, committed_len)
    }

    /// Appends to a complete file of an earlier run (an incremental sync): `path` must exist
    /// with exactly `committed_len` bytes; it is moved back to `<path>.part` (replacing any
    /// stray `.part` file, which cannot belong to a finished checkpoint) and appended to.
    ///
    /// When `path` is missing but `<path>.part` has exactly `committed_len` bytes, the earlier
    /// run's final rename was lost (a power cut after its checkpoint said done): the `.part`
    /// file is the complete output, and it is continued.
    ///
    /// # Errors
    /// [`Error::Io`] when neither file matches `committed_len`: it was changed since the
    /// checkpoint, and nothing is changed. Also when another export holds it.
    pub fn extend(path: impl Into<PathBuf>, format: Format, committed_len: u64) -> Result<Self> {
        let path = path.into();
        let part = part_path(&path);
        if !path.exists() && part.exists() {
            let file = open_checked(&part, committed_len, true)?;
            return Self::continue_file(path, part, file, format, committed_len);
        }
        if part.exists() {
            // A stray `.part` is replaced below, unless another export is writing it.
            let held = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&part)
                .map_err(|e| Error::io(format!("cannot open {}", part.display()), e))?;
            lock(&held, &part)?;
        }
        let file = open_checked(&path, committed_len, true)?;
        let sink = Self::continue_file(path, part, file, format, committed_len)?;
        // The last step, so that a failure above leaves the finished file where it was.
        std::fs::rename(&sink.path, &sink.part).map_err(|e| {
            Error::io(
                format!("cannot move {} back to {}", sink.path.display(), sink.part.display()),
                e,
            )
        })?;
        sync_parent_dir(&sink.path)?;
        Ok(sink)
    }

    /// Checks, without changing anything, that [`FileSink::resume`] would accept the file.
    ///
    /// # Errors
    /// As [`FileSink::resume`].
    pub fn check_resume(path: &Path, committed_len: u64) -> Result<()> {
        let next = next_path(path);
        if next.exists() && file_len(&next)? == committed_len {
            return open_checked(&next, committed_len, true).map(drop);
        }
        let part = part_path(path);
        if !part.exists() && path.exists() {
            return Self::check_extend(path, committed_len);
        }
        open_checked(&part, committed_len, false).map(drop)
    }

    /// Checks, without changing anything, that [`FileSink::create`] could start the file: a
    /// `<path>.part` left there is not locked by another export.
    ///
    /// # Errors
    /// [`Error::Io`] with kind `WouldBlock` when another export holds `<path>.part`.
    pub fn check_create(path: &Path) -> Result<()> {
        let part = part_path(path);
        if part.exists() {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&part)
                .map_err(|e| Error::io(format!("cannot open {}", part.display()), e))?;
            lock(&file, &part)?;
        }
        Ok(())
    }

    /// Checks, without changing anything, that [`FileSink::extend`] would accept the file.
    ///
    /// # Errors
    /// As [`FileSink::extend`].
    pub fn check_extend(path: &Path, committed_len: u64) -> Result<()> {
        let part = part_path(path);
        let source = if !path.exists() && part.exists() {
            part
        } else {
            path.to_owned()
        };
        open_checked(&source, committed_len, true).map(drop)
    }

    /// Completes a publication that a crash interrupted: when `path` is missing and
    /// `<path>.part` holds exactly `committed_len` bytes (a checkpoint said the export was done,
    /// but the rename did not reach the disk), renames it to `path`. Returns whether it did.
    ///
    /// # Errors
    /// [`Error::Io`] when the `.part` file does not match the checkpoint, or renaming fails.
    pub fn complete_rename(path: &Path, committed_len: u64) -> Result<bool> {
        let part = part_path(path);
        let next = next_path(path);
        if !path.exists() && next.exists() && file_len(&next)? == committed_len {
            // Finishing after a CSV rewrite: `.part.next` is the complete file.
            open_checked(&next, committed_len, true)?
                .sync_data()
                .map_err(|e| Error::io(format!("cannot sync {}", next.display()), e))?;
            std::fs::rename(&next, path)
                .map_err(|e| Error::io(format!("cannot rename {} to {}", next.display(), path.display()), e))?;
            if part.exists() {
                std::fs::remove_file(&part).map_err(|e| Error::io(format!("cannot remove {}", part.display()), e))?;
            }
            sync_parent_dir(path)?;
            return Ok(true);
        }
        if path.exists() || !part.exists() {
            return Ok(false);
        }
        let file = open_checked(&part, committed_len, true)?;
        file.sync_data()
            .map_err(|e| Error::io(format!("cannot sync {}", part.display()), e))?;
        std::fs::rename(&part, path)
            .map_err(|e| Error::io(format!("cannot rename {} to {}", part.display(), path.display()), e))?;
        sync_parent_dir(path)?;
        Ok(true)
    }

    /// Reads the CSV header back, truncates to `committed_len` and positions for appending.
    fn continue_file(path: PathBuf, part: PathBuf, mut file: File, format: Format, committed_len: u64) -> Result<Self> {
        let columns = if format == Format::Csv && committed_len > 0 {
            let mut line = Vec::new();
            BufReader::new(&file)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io(format!("cannot read the CSV header of {}", path.display()), e))?;
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            Columns::from_header(line)?
        } else {
            Columns::default()
        };
        file.set_len(committed_len)
            .and_then(|()| file.seek(SeekFrom::Start(committed_len)))
            .map_err(|e| Error::io(format!("cannot truncate {}", path.display()), e))?;
        Self::with_file(path, part, file, committed_len, columns)
    }

    fn with_file(path: PathBuf, part: PathBuf, file: File, len: u64, columns: Columns) -> Result<Self> {
        let out = Offload::spawn(
            "file writer",
            PartFile {
                part: part.clone(),
                file,
                written: len,
                synced_hint: len,
                background_error: None,
                background: None,
                stale: None,
            },
        )?;
        Ok(FileSink {
            path,
            part,
            out,
            committed_len: len,
            written_len: len,
            columns,
            remap: None,
            grow: None,
            next_pending: false,
            sync_on_commit: true,
        })
    }

    /// Whether each commit waits until the data is on disk (`fsync`); default `true`. A
    /// checkpoint that records [`FileSink::committed_len`] needs it to survive a machine crash
    /// (a killed process alone loses nothing either way). Without checkpoints, turn it off to
    /// save a disk flush per window; [`FileSink::finish`] always syncs before renaming.
    pub fn sync_on_commit(mut self, sync: bool) -> Self {
        self.sync_on_commit = sync;
        self
    }

    /// The file's length at the last commit: record it with your checkpoint.
    pub fn committed_len(&self) -> u64 {
        self.committed_len
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs `<path>.part`, renames it to `path` and syncs the directory, so the rename
    /// survives a power cut. Call it only when the whole export completed; until then the
    /// final name never holds a partial file.
    ///
    /// # Errors
    /// [`Error::Io`] when writing, syncing or renaming fails.
    pub async fn finish(mut self) -> Result<PathBuf> {
        let (part, path) = (self.part.clone(), self.path.clone());
        let next = self.next_pending.then(|| next_path(&path));
        self.out
            .call(move |file| {
                file.sync()?;
                if let Some(next) = next {
                    return file.replace_with_next(&next, &path);
                }
                std::fs::rename(&part, &path)
                    .map_err(|e| Error::io(format!("cannot rename {} to {}", part.display(), path.display()), e))?;
                sync_parent_dir(&path)
            })
            .await?;
        let FileSink { out, path, .. } = self;
        out.close().await;
        Ok(path)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write(bytes).await?;
        self.written_len += bytes.len() as u64;
        Ok(())
    }
}

/// Opens a file to continue it after checking it belongs to a checkpoint of `committed_len`
/// bytes: at least that long (`exact`: exactly), with a record boundary (a newline) there. The
/// file is locked first, so another export cannot change it meanwhile.
fn open_checked(source: &Path, committed_len: u64, exact: bool) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(source)
        .map_err(|e| Error::io(format!("cannot reopen {} to continue it", source.display()), e))?;
    lock(&file, source)?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", source.display()), e))?
        .len();
    if len < committed_len || (exact && len != committed_len) {
        return Err(foreign_file(
            source,
            format!("has {len} bytes but the checkpoint recorded {committed_len}"),
        ));
    }
    if committed_len > 0 {
        let mut last = [0u8];
        let mut reader = &file;
        reader
            .seek(SeekFrom::Start(committed_len - 1))
            .and_then(|_| std::io::Read::read_exact(&mut reader, &mut last))
            .and_then(|_| reader.seek(SeekFrom::Start(0)))
            .map_err(|e| Error::io(format!("cannot read {}", source.display()), e))?;
        if last[0] != b'\n' {
            return Err(foreign_file(
                source,
                format!("has no record boundary at byte {committed_len}"),
            ));
        }
    }
    Ok(file)
}

/// `<path>.part.next`: a CSV file rewritten with new columns, until it replaces `<path>.part`.
fn next_path(path: &Path) -> PathBuf {
    let mut name = part_path(path)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".next");
    path.with_file_name(name)
}

fn file_len(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
}

fn foreign_file(path: &Path, what: String) -> Error {
    Error::io(
        format!(
            "{} {what}: it does not belong to this checkpoint (was it changed or replaced?); \
             move it away, or delete the state file to start over",
            path.display()
        ),
        std::io::Error::from(std::io::ErrorKind::InvalidData),
    )
}

impl Sink for FileSink {
    async fn begin(&mut self, _window: &Window) -> Result<()> {
        self.remap = None;
        self.grow = None;
        if self.next_pending {
            // The caller checkpointed the commit that wrote `.part.next`: it replaces `.part`.
            let (next, part) = (next_path(&self.path), self.part.clone());
            self.out.call(move |file| file.replace_with_next(&next, &part)).await?;
            self.next_pending = false;
        }
        Ok(())
    }

    /// The window's CSV header row: written if it is the first; otherwise the window's records
    /// are aligned to the file's columns (see [`FileSink`]).
    async fn header(&mut self, header: &[u8]) -> Result<()> {
        match self.columns.fit(header)? {
            Fit::First => {
                self.write(header).await?;
                self.write(b"\n").await?;
                self.columns.accept(header)?;
            }
            Fit::Same => {}
            Fit::Remap(map) => self.remap = Some(map),
            Fit::Grow { header, extra, map } => {
                self.remap = Some(map);
                self.grow = Some((header, extra));
            }
        }
        Ok(())
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        if let Some(map) = &self.remap {
            let mut aligned = Vec::with_capacity(record.len() + map.len());
            columns::remap(record, map, &mut aligned)?;
            return self.write(&aligned).await;
        }
        self.write(record).await?;
        self.write(b"\n").await
    }

    async fn commit(&mut self, _window: &Window, _records: u64) -> Result<()> {
        if let Some((header, extra)) = self.grow.take() {
            let (next, committed) = (next_path(&self.path), self.committed_len);
            let new_header = header.clone();
            let len = self
                .out
                .call(move |file| file.grow(&next, &new_header, extra, committed))
                .await?;
            self.columns.accept(&header)?;
            self.next_pending = true;
            self.written_len = len;
        } else {
            let sync = self.sync_on_commit;
            self.out
                .call(move |file| if sync { file.sync() } else { Ok(()) })
                .await?;
        }
        self.remap = None;
        self.committed_len = self.written_len;
        Ok(())
    }

    async fn abort(&mut self, _window: &Window) -> Result<()> {
        self.out.discard();
        self.remap = None;
        self.grow = None;
        let len = self.committed_len;
        self.out.call(move |file| file.truncate(len)).await?;
        if self.committed_len == 0 {
            // The header of an aborted first window goes too.
            self.columns.clear();
        }
        self.written_len = self.committed_len;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
