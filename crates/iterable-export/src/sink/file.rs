//! [`FileSink`]: a file that is exactly-once across retries and restarts.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::columns::{self, Columns, Fit};
use super::offload::{self, Offload};
use super::{lock, part_path, sync_parent_dir};
use crate::{Error, Format, Result, Sink, Window};

/// How much may be written between two background syncs of a [`FileSink`].
const BACKGROUND_SYNC_EVERY: u64 = 64 * 1024 * 1024;

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

/// The `.part` file, owned by the writer thread.
struct PartFile {
    part: PathBuf,
    file: File,
    written: u64,
    /// `written` when the last background sync started.
    synced_hint: u64,
    background_error: Option<std::io::Error>,
    background: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    /// The replaced `.part` file, kept open (and locked) until `.part.next` is renamed over it.
    stale: Option<File>,
}

impl offload::Target for PartFile {
    fn write_batch(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| self.io_error("cannot write", e))?;
        self.written += bytes.len() as u64;
        if self.written >= self.synced_hint + BACKGROUND_SYNC_EVERY {
            self.sync_in_background();
        }
        Ok(())
    }
}

impl PartFile {
    fn io_error(&self, what: &str, err: std::io::Error) -> Error {
        Error::io(format!("{what} {}", self.part.display()), err)
    }

    /// Starts writing what the page cache holds of the file to disk on another thread, so the
    /// `fsync` of a commit or of [`FileSink::finish`] finds little left to do: the disk works
    /// while the download goes on, instead of after it. At most one such sync runs at a time.
    /// It syncs through a duplicate of the written (so writable) descriptor, and its result is
    /// collected, and an error reported, by the next sync.
    fn sync_in_background(&mut self) {
        if self.background.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if let Some(done) = self.background.take()
            && let Ok(Err(err)) = done.join()
        {
            self.background_error.get_or_insert(err);
        }
        self.synced_hint = self.written;
        match self.file.try_clone() {
            Ok(file) => self.background = Some(std::thread::spawn(move || file.sync_data())),
            Err(err) => {
                self.background_error.get_or_insert(err);
            }
        }
    }

    /// Waits for the background sync and reports its error, if it had one.
    fn join_background(&mut self) -> Result<()> {
        if let Some(handle) = self.background.take() {
            match handle.join() {
                Ok(Err(err)) => {
                    self.background_error.get_or_insert(err);
                }
                Ok(Ok(())) => {}
                Err(_) => {
                    self.background_error
                        .get_or_insert(std::io::Error::other("the background sync panicked"));
                }
            }
        }
        match self.background_error.take() {
            Some(err) => Err(self.io_error("cannot sync", err)),
            None => Ok(()),
        }
    }

    fn sync(&mut self) -> Result<()> {
        self.join_background()?;
        self.file.sync_data().map_err(|e| self.io_error("cannot sync", e))
    }

    /// Writes `<part>.next`: the new header row, the committed records (`..committed`) each
    /// padded with `extra` empty fields, then this attempt's records (`committed..`) as they are;
    /// syncs it and continues in it. Returns its length.
    fn grow(&mut self, next: &Path, header: &[u8], extra: usize, committed: u64) -> Result<u64> {
        self.join_background()?;
        let context = |what: &str| format!("{what} {} to add CSV columns", next.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(next)
            .map_err(|e| Error::io(context("cannot create"), e))?;
        lock(&file, next)?;
        file.set_len(0).map_err(|e| Error::io(context("cannot empty"), e))?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, &file);
        let io = |e| Error::io(context("cannot write"), e);
        out.write_all(header).and_then(|()| out.write_all(b"\n")).map_err(io)?;
        let reopen = |offset: u64| -> Result<File> {
            let mut f = File::open(&self.part).map_err(|e| self.io_error("cannot read", e))?;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| self.io_error("cannot read", e))?;
            Ok(f)
        };
        columns::pad_records(
            std::io::BufReader::new(std::io::Read::take(reopen(0)?, committed)),
            extra,
            &mut out,
        )?;
        std::io::copy(
            &mut std::io::Read::take(reopen(committed)?, self.written - committed),
            &mut out,
        )
        .map_err(io)?;
        out.flush().map_err(io)?;
        drop(out);
        file.sync_data().map_err(|e| Error::io(context("cannot sync"), e))?;
        let len = file.metadata().map_err(|e| Error::io(context("cannot read"), e))?.len();
        let mut file = file;
        file.seek(SeekFrom::Start(len))
            .map_err(|e| Error::io(context("cannot seek in"), e))?;
        self.stale = Some(std::mem::replace(&mut self.file, file));
        self.written = len;
        self.synced_hint = len;
        Ok(len)
    }

    /// Renames `<part>.next` over `<part>` (or, finishing, over `path`), durably.
    fn replace_with_next(&mut self, next: &Path, target: &Path) -> Result<()> {
        std::fs::rename(next, target)
            .map_err(|e| Error::io(format!("cannot rename {} to {}", next.display(), target.display()), e))?;
        if target != self.part && self.part.exists() {
            std::fs::remove_file(&self.part).map_err(|e| self.io_error("cannot remove", e))?;
        }
        sync_parent_dir(target)?;
        self.stale = None;
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.seek(SeekFrom::Start(len)))
            .map_err(|e| self.io_error("cannot truncate an aborted window of", e))?;
        self.written = len;
        Ok(())
    }
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
        Ok(self.path)
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
mod tests {
    use super::super::test_window as window;
    use super::*;

    fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::io("read", e))
    }

    #[tokio::test]
    async fn abort_discards_the_attempt_and_finish_renames() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let mut sink = FileSink::create(&path)?;
        let w = window();
        sink.begin(&w).await?;
        sink.record(b"{\"a\":1}").await?;
        sink.commit(&w, 1).await?;
        sink.begin(&w).await?;
        sink.record(b"{\"b\":2}").await?;
        sink.abort(&w).await?;
        sink.begin(&w).await?;
        sink.record(b"{\"c\":3}").await?;
        sink.commit(&w, 1).await?;
        assert!(!path.exists(), "the final name must not exist before finish");
        assert_eq!(sink.committed_len(), 16);
        let done = sink.finish().await?;
        assert_eq!(read(&done)?, b"{\"a\":1}\n{\"c\":3}\n");
        assert!(!part_path(&path).exists());
        Ok(())
    }

    #[tokio::test]
    async fn resume_truncates_to_the_checkpoint_and_keeps_the_csv_header() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.csv");
        let w = window();
        let committed = {
            let mut sink = FileSink::create(&path)?;
            sink.begin(&w).await?;
            sink.header(b"a,b").await?;
            sink.record(b"1,2").await?;
            sink.commit(&w, 1).await?;
            sink.begin(&w).await?;
            sink.record(b"3,4").await?;
            // Simulate a crash: what was written reaches the file, but is never committed.
            sink.out.call(|_| Ok(())).await?;
            let len = sink.committed_len();
            sink.out.stop();
            len
        };
        assert_eq!(read(&part_path(&path))?, b"a,b\n1,2\n3,4\n");
        let mut sink = FileSink::resume(&path, Format::Csv, committed)?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"5,6").await?;
        sink.commit(&w, 1).await?;
        let done = sink.finish().await?;
        assert_eq!(read(&done)?, b"a,b\n1,2\n5,6\n");
        Ok(())
    }

    #[tokio::test]
    async fn resume_refuses_a_file_shorter_than_the_checkpoint() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        std::fs::write(part_path(&path), b"abc").map_err(|e| Error::io("write", e))?;
        let err = FileSink::resume(&path, Format::Ndjson, 10)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("has 3 bytes but the checkpoint recorded 10"), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn a_second_sink_on_the_same_file_is_refused_and_truncates_nothing() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let w = window();
        let mut first = FileSink::create(&path)?;
        first.begin(&w).await?;
        first.record(b"{\"a\":1}").await?;
        first.commit(&w, 1).await?;
        let second = FileSink::create(&path);
        assert!(
            matches!(&second, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock),
            "{second:?}"
        );
        let resumed = FileSink::resume(&path, Format::Ndjson, 0);
        assert!(matches!(&resumed, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock));
        assert_eq!(read(&part_path(&path))?, b"{\"a\":1}\n");
        first.finish().await?;
        Ok(())
    }

    /// More than the background-sync interval, in several windows with an abort between them:
    /// the background sync runs (through the writable descriptor) and the file is exact.
    #[tokio::test]
    async fn background_syncs_over_64_mib_keep_the_file_exact() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("big.ndjson");
        let mut sink = FileSink::create(&path)?;
        let record = vec![b'x'; 1023];
        let w = window();
        let per_window = 30 * 1024;
        for attempt in 0..4 {
            sink.begin(&w).await?;
            for _ in 0..per_window {
                sink.record(&record).await?;
            }
            if attempt == 1 {
                sink.abort(&w).await?;
            } else {
                sink.commit(&w, per_window).await?;
            }
        }
        let expected = 3 * per_window * 1024;
        assert_eq!(sink.committed_len(), expected);
        let done = sink.finish().await?;
        let written = read(&done)?;
        assert_eq!(written.len() as u64, expected);
        assert!(
            written
                .chunks(1024)
                .all(|line| line[..1023] == record[..] && line[1023] == b'\n')
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_lost_final_rename_is_completed() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        std::fs::write(part_path(&path), b"{\"a\":1}\n").map_err(|e| Error::io("write", e))?;
        assert!(
            FileSink::complete_rename(&path, 99).is_err(),
            "a .part of another length is refused"
        );
        assert!(FileSink::complete_rename(&path, 8)?);
        assert_eq!(read(&path)?, b"{\"a\":1}\n");
        assert!(!part_path(&path).exists());
        assert!(!FileSink::complete_rename(&path, 8)?, "nothing left to do");
        // extend continues a `.part` whose rename was lost, too.
        std::fs::rename(&path, part_path(&path)).map_err(|e| Error::io("rename", e))?;
        FileSink::check_extend(&path, 8)?;
        let mut sink = FileSink::extend(&path, Format::Ndjson, 8)?;
        let w = window();
        sink.begin(&w).await?;
        sink.record(b"{\"b\":2}").await?;
        sink.commit(&w, 1).await?;
        sink.finish().await?;
        assert_eq!(read(&path)?, b"{\"a\":1}\n{\"b\":2}\n");
        Ok(())
    }

    async fn csv_window(sink: &mut FileSink, header: &[u8], records: &[&[u8]]) -> Result<()> {
        let w = window();
        sink.begin(&w).await?;
        sink.header(header).await?;
        for record in records {
            sink.record(record).await?;
        }
        sink.commit(&w, records.len() as u64).await
    }

    /// Columns that change between windows: one file whose header is the union, every value
    /// under its own column (quoted line breaks included).
    #[tokio::test]
    async fn csv_columns_that_change_between_windows_are_aligned_to_their_union() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("user.csv");
        let mut sink = FileSink::create(&path)?;
        csv_window(
            &mut sink,
            b"email,city",
            &["a@x.io,\"Z\u{fc}rich\nOld Town\"".as_bytes(), b"b@x.io,"],
        )
        .await?;
        csv_window(&mut sink, b"city,email", &[b"Paris,c@x.io"]).await?;
        csv_window(&mut sink, b"email,plan,city", &[b"d@x.io,gold,Rome"]).await?;
        assert!(
            next_path(&path).exists(),
            "the rewritten file waits for the next window"
        );
        csv_window(&mut sink, b"plan", &[b"silver"]).await?;
        assert!(!next_path(&path).exists());
        let len = sink.committed_len();
        let done = sink.finish().await?;
        let expected =
            "email,city,plan\na@x.io,\"Z\u{fc}rich\nOld Town\",\nb@x.io,,\nc@x.io,Paris,\nd@x.io,Rome,gold\n,,silver\n";
        assert_eq!(String::from_utf8_lossy(&read(&done)?), expected);
        assert_eq!(len, expected.len() as u64);
        Ok(())
    }

    /// A crash after a rewrite with new columns, on either side of the checkpoint: resuming
    /// with the length the checkpoint holds continues the file it describes.
    #[tokio::test]
    async fn a_crash_around_a_column_rewrite_resumes_the_checkpointed_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        for checkpointed in [false, true] {
            let path = dir.path().join(format!("user-{checkpointed}.csv"));
            let (before, after) = {
                let mut sink = FileSink::create(&path)?;
                csv_window(&mut sink, b"a,b", &[b"1,2"]).await?;
                let before = sink.committed_len();
                csv_window(&mut sink, b"a,c", &[b"3,4"]).await?;
                let after = sink.committed_len();
                sink.out.stop();
                (before, after)
            };
            // The process dies before the next window: both files are on disk.
            assert!(next_path(&path).exists() && part_path(&path).exists());
            let committed = if checkpointed { after } else { before };
            FileSink::check_resume(&path, committed)?;
            let mut sink = FileSink::resume(&path, Format::Csv, committed)?;
            assert!(!next_path(&path).exists());
            if checkpointed {
                csv_window(&mut sink, b"a,b,c", &[b"5,6,7"]).await?;
                sink.finish().await?;
                assert_eq!(read(&path)?, b"a,b,c\n1,2,\n3,,4\n5,6,7\n");
            } else {
                csv_window(&mut sink, b"a,b", &[b"8,9"]).await?;
                sink.finish().await?;
                assert_eq!(read(&path)?, b"a,b\n1,2\n8,9\n");
            }
        }
        Ok(())
    }

    /// A power cut after the checkpoint said done but before the rewritten file was renamed.
    #[tokio::test]
    async fn a_lost_final_rename_of_a_rewritten_file_is_completed() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("user.csv");
        let len = {
            let mut sink = FileSink::create(&path)?;
            csv_window(&mut sink, b"a", &[b"1"]).await?;
            csv_window(&mut sink, b"b", &[b"2"]).await?;
            let len = sink.committed_len();
            sink.out.stop();
            len
        };
        assert!(FileSink::complete_rename(&path, len)?);
        assert_eq!(read(&path)?, b"a,b\n1,\n,2\n");
        assert!(!part_path(&path).exists() && !next_path(&path).exists());
        Ok(())
    }
}
