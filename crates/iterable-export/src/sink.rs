//! Sinks: a file that is exactly-once across retries and restarts, and de-duplication of a
//! re-read overlap.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Format, Result, Sink, Window};

const WRITE_BUFFER: usize = 256 * 1024;
/// How much may be written between two background syncs of a [`FileSink`].
const BACKGROUND_SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// Writes records to `<path>.part` and renames it to `path` when [`FileSink::finish`] is called.
///
/// NDJSON records are written as received, one per line; CSV gets the header row of the first
/// window once, then the records as received. [`Sink::abort`] truncates the file back to the
/// end of the last committed window, so a retried window never duplicates a record. After a
/// crash, [`FileSink::resume`] truncates the `.part` file to the length recorded at the last
/// commit (see [`FileSink::committed_len`]) and appends from there.
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
/// sink.finish()?;
/// println!("{} records", summary.records);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    part: PathBuf,
    file: BufWriter<File>,
    committed_len: u64,
    written_len: u64,
    header: Option<Vec<u8>>,
    sync_on_commit: bool,
    /// `written_len` when the last background sync started.
    synced_hint: u64,
    background_error: Option<std::io::Error>,
    background: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl FileSink {
    /// Starts a new file: `<path>.part` is created (replacing any previous one).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be created.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let part = part_path(&path);
        let file = File::create(&part).map_err(|e| Error::io(format!("cannot create {}", part.display()), e))?;
        Ok(Self::with_file(path, part, file, 0, None))
    }

    /// Continues a file after an interruption: `<path>.part` is truncated to `committed_len`
    /// (what the last commit recorded) and appended to. When only `path` exists (the export
    /// was renamed complete, but its checkpoint not yet marked done), it is continued as with
    /// [`FileSink::extend`].
    ///
    /// # Errors
    /// [`Error::Io`] when the file is missing, shorter than `committed_len`, or has no record
    /// boundary (a newline) at `committed_len`: then it does not belong to that checkpoint, and
    /// nothing is changed.
    pub fn resume(path: impl Into<PathBuf>, format: Format, committed_len: u64) -> Result<Self> {
        let path = path.into();
        let part = part_path(&path);
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
    /// # Errors
    /// [`Error::Io`] when `path` is missing or its length is not `committed_len`: it was
    /// changed since the checkpoint, and nothing is changed.
    pub fn extend(path: impl Into<PathBuf>, format: Format, committed_len: u64) -> Result<Self> {
        let path = path.into();
        let part = part_path(&path);
        let file = open_checked(&path, committed_len, true)?;
        let sink = Self::continue_file(path, part, file, format, committed_len)?;
        // The last step, so that a failure above leaves the finished file where it was.
        std::fs::rename(&sink.path, &sink.part).map_err(|e| {
            Error::io(
                format!("cannot move {} back to {}", sink.path.display(), sink.part.display()),
                e,
            )
        })?;
        Ok(sink)
    }

    /// Checks, without changing anything, that [`FileSink::resume`] would accept the file.
    ///
    /// # Errors
    /// As [`FileSink::resume`].
    pub fn check_resume(path: &Path, committed_len: u64) -> Result<()> {
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
        open_checked(path, committed_len, true).map(drop)
    }

    /// Reads the CSV header back, truncates to `committed_len` and positions for appending.
    fn continue_file(path: PathBuf, part: PathBuf, file: File, format: Format, committed_len: u64) -> Result<Self> {
        let header = if format == Format::Csv && committed_len > 0 {
            let mut line = Vec::new();
            BufReader::new(&file)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io(format!("cannot read the CSV header of {}", path.display()), e))?;
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            Some(line)
        } else {
            None
        };
        file.set_len(committed_len)
            .map_err(|e| Error::io(format!("cannot truncate {}", path.display()), e))?;
        let mut sink = Self::with_file(path, part, file, committed_len, header);
        sink.file
            .seek(SeekFrom::Start(committed_len))
            .map_err(|e| sink.io_error("cannot seek in", e))?;
        Ok(sink)
    }

    fn with_file(path: PathBuf, part: PathBuf, file: File, len: u64, header: Option<Vec<u8>>) -> Self {
        FileSink {
            path,
            part,
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            committed_len: len,
            written_len: len,
            header,
            sync_on_commit: true,
            synced_hint: len,
            background: None,
            background_error: None,
        }
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

    /// Flushes, syncs and renames `<path>.part` to `path`. Call it only when the whole export
    /// completed; until then the final name never holds a partial file.
    ///
    /// # Errors
    /// [`Error::Io`] when flushing or renaming fails.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.flush_and_sync()?;
        std::fs::rename(&self.part, &self.path).map_err(|e| {
            Error::io(
                format!("cannot rename {} to {}", self.part.display(), self.path.display()),
                e,
            )
        })?;
        Ok(self.path)
    }

    fn flush_and_sync(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| self.io_error("cannot write", e))?;
        self.join_background()?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| self.io_error("cannot sync", e))
    }

    fn io_error(&self, what: &str, err: std::io::Error) -> Error {
        Error::io(format!("{what} {}", self.part.display()), err)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(format!("cannot write {}", self.part.display()), e))?;
        self.written_len += bytes.len() as u64;
        if self.written_len >= self.synced_hint + BACKGROUND_SYNC_EVERY {
            self.sync_in_background();
        }
        Ok(())
    }

    /// Starts writing what the page cache holds of the file to disk on another thread, so the
    /// `fsync` of a commit or of [`FileSink::finish`] finds little left to do: the disk works
    /// while the download goes on, instead of after it. At most one such sync runs at a time.
    /// It syncs through its own descriptor, and its result is collected (and an error reported)
    /// by the next sync of the sink.
    fn sync_in_background(&mut self) {
        if self.background.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if let Some(done) = self.background.take() {
            // A finished sync's error is kept for the next synchronous sync to report.
            if let Ok(Err(err)) = done.join() {
                self.background_error.get_or_insert(err);
            }
        }
        self.synced_hint = self.written_len;
        if let Ok(file) = File::open(&self.part) {
            self.background = Some(std::thread::spawn(move || file.sync_data()));
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
}

/// Opens a file to continue it after checking it belongs to a checkpoint of `committed_len`
/// bytes: at least that long (`exact`: exactly), with a record boundary (a newline) there.
fn open_checked(source: &Path, committed_len: u64, exact: bool) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(source)
        .map_err(|e| Error::io(format!("cannot reopen {} to continue it", source.display()), e))?;
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

/// `<path>.part`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

impl Sink for FileSink {
    async fn begin(&mut self, _window: &Window) -> Result<()> {
        Ok(())
    }

    async fn header(&mut self, header: &[u8]) -> Result<()> {
        let output = self.path.display().to_string();
        if check_header(self.header.as_deref(), header, &output)? {
            self.write(header)?;
            self.write(b"\n")?;
            self.header = Some(header.to_vec());
        }
        Ok(())
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        self.write(record)?;
        self.write(b"\n")
    }

    async fn commit(&mut self, _window: &Window, _records: u64) -> Result<()> {
        if self.sync_on_commit {
            self.flush_and_sync()?;
        } else {
            self.file.flush().map_err(|e| self.io_error("cannot write", e))?;
        }
        self.committed_len = self.written_len;
        Ok(())
    }

    async fn abort(&mut self, _window: &Window) -> Result<()> {
        self.file.flush().map_err(|e| self.io_error("cannot write", e))?;
        let file = self.file.get_mut();
        file.set_len(self.committed_len)
            .map_err(|e| Error::io("cannot truncate an aborted window", e))?;
        file.seek(SeekFrom::Start(self.committed_len))
            .map_err(|e| Error::io("cannot seek", e))?;
        if self.committed_len == 0 {
            // The header of an aborted first window goes too.
            self.header = None;
        }
        self.written_len = self.committed_len;
        Ok(())
    }
}

/// Writes records to any [`Write`] (standard output, a pipe, a socket) that cannot take back
/// what it wrote. Each window attempt is spooled to an anonymous temporary file, and copied to
/// the writer only when the window commits; an aborted attempt is dropped. So every record
/// reaches the writer exactly once, memory stays bounded, and the temporary disk space is one
/// window's records.
#[derive(Debug)]
pub struct WriterSink<W: Write> {
    out: W,
    spool: BufWriter<File>,
    header: Option<Vec<u8>>,
    header_pending: Option<Vec<u8>>,
}

impl<W: Write + Send> WriterSink<W> {
    /// Wraps a writer. Wrap it in a `BufWriter` if it is not buffered.
    ///
    /// # Errors
    /// [`Error::Io`] when the temporary spool file cannot be created.
    pub fn new(out: W) -> Result<Self> {
        let spool = tempfile::tempfile().map_err(|e| Error::io("cannot create a temporary spool file", e))?;
        Ok(WriterSink {
            out,
            spool: BufWriter::with_capacity(WRITE_BUFFER, spool),
            header: None,
            header_pending: None,
        })
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// [`Error::Io`] when flushing fails.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(|e| Error::io("cannot write the output", e))?;
        Ok(self.out)
    }

    fn reset_spool(&mut self) -> Result<()> {
        self.spool
            .flush()
            .map_err(|e| Error::io("cannot write the spool file", e))?;
        let file = self.spool.get_mut();
        file.set_len(0)
            .map_err(|e| Error::io("cannot truncate the spool file", e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("cannot seek in the spool file", e))?;
        Ok(())
    }
}

impl<W: Write + Send> Sink for WriterSink<W> {
    async fn begin(&mut self, _window: &Window) -> Result<()> {
        self.header_pending = None;
        self.reset_spool()
    }

    async fn header(&mut self, header: &[u8]) -> Result<()> {
        if check_header(self.header.as_deref(), header, "the output")? {
            self.header_pending = Some(header.to_vec());
        }
        Ok(())
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        let io = |e| Error::io("cannot write the spool file", e);
        self.spool.write_all(record).map_err(io)?;
        self.spool.write_all(b"\n").map_err(io)
    }

    async fn commit(&mut self, _window: &Window, _records: u64) -> Result<()> {
        self.spool
            .flush()
            .map_err(|e| Error::io("cannot write the spool file", e))?;
        let out_err = |e| Error::io("cannot write the output", e);
        if let Some(header) = self.header_pending.take() {
            self.out.write_all(&header).map_err(out_err)?;
            self.out.write_all(b"\n").map_err(out_err)?;
            self.header = Some(header);
        }
        let file = self.spool.get_mut();
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("cannot read the spool file", e))?;
        std::io::copy(file, &mut self.out).map_err(out_err)?;
        self.out.flush().map_err(out_err)?;
        self.reset_spool()
    }

    async fn abort(&mut self, _window: &Window) -> Result<()> {
        self.header_pending = None;
        self.reset_spool()
    }
}

/// Whether a window's CSV header must be written (`true`: none yet), is the one already
/// written (`false`), or differs from it (an error: one file cannot hold both).
fn check_header(first: Option<&[u8]>, header: &[u8], output: &str) -> Result<bool> {
    match first {
        None => Ok(true),
        Some(first) if first == header => Ok(false),
        Some(_) => Err(Error::Decode {
            line: 1,
            offset: 0,
            message: format!(
                "the CSV columns of this window differ from those already in {output}; one file cannot hold both — \
                 export this data type as NDJSON, or use only_fields to fix the columns"
            ),
        }),
    }
}

/// A record's identity for de-duplication: SHA-256 (first 16 bytes, hex) of its raw bytes.
/// Stable across runs and versions, so it can be stored in a checkpoint.
pub fn record_identity(record: &[u8]) -> String {
    let digest = Sha256::digest(record);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Wraps a sink for incremental syncs that re-read a look-back: records whose identity is in
/// `seen` (collected by the previous run) are dropped — as many times as they occur there, so
/// two identical records stay two — and the identities of records in windows that start at or
/// after `remember_from` are collected for the next run (dropped ones included: the output has
/// them from the earlier run).
#[derive(Debug)]
pub struct Dedup<S> {
    inner: S,
    /// Occurrences still to drop, per identity.
    seen: HashMap<String, u32>,
    /// Identities dropped in the current attempt (given back on abort).
    taken: Vec<String>,
    remember_from: Option<chrono::DateTime<chrono::Utc>>,
    remembered: Vec<String>,
    pending: Vec<String>,
    collecting: bool,
    skipped: u64,
    drop_until: Option<chrono::DateTime<chrono::Utc>>,
    dropping: bool,
}

impl<S: Sink> Dedup<S> {
    /// Wraps `inner`; `seen` lists the identities (see [`record_identity`]) to drop, once per
    /// occurrence.
    pub fn new(
        inner: S,
        seen: impl IntoIterator<Item = String>,
        remember_from: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Self {
        let mut counts = HashMap::new();
        for id in seen {
            *counts.entry(id).or_insert(0u32) += 1;
        }
        Dedup {
            inner,
            seen: counts,
            taken: Vec::new(),
            remember_from,
            remembered: Vec::new(),
            pending: Vec::new(),
            collecting: false,
            skipped: 0,
            drop_until: None,
            dropping: true,
        }
    }

    /// Drops seen records only in windows that start before `until` (the end of the previous
    /// run: later records are new, even when identical to an old one).
    pub fn with_drop_until(mut self, until: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        self.drop_until = until;
        self
    }

    /// The identities still to drop, once per remaining occurrence: what a checkpoint must keep
    /// so that a resumed run drops exactly what this one had not dropped yet.
    pub fn remaining_seen(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .seen
            .iter()
            .flat_map(|(id, left)| std::iter::repeat_n(id.clone(), *left as usize))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Continues a remembered list (after resuming an interrupted run that had committed part
    /// of its tail).
    pub fn with_remembered(mut self, remembered: Vec<String>) -> Self {
        self.remembered = remembered;
        self
    }

    /// Identities of committed records in windows at or after `remember_from`.
    pub fn remembered(&self) -> &[String] {
        &self.remembered
    }

    /// Records of committed windows dropped because the previous run had them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Unwraps the sink.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn give_back(&mut self) {
        for id in self.taken.drain(..) {
            *self.seen.entry(id).or_insert(0) += 1;
        }
    }
}

impl<S: Sink> Sink for Dedup<S> {
    async fn begin(&mut self, window: &Window) -> Result<()> {
        self.pending.clear();
        self.give_back();
        self.collecting = self.remember_from.is_some_and(|from| window.start >= from);
        self.dropping = self.drop_until.is_none_or(|until| window.start < until);
        self.inner.begin(window).await
    }

    async fn header(&mut self, header: &[u8]) -> Result<()> {
        self.inner.header(header).await
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        let dropping = self.dropping && !self.seen.is_empty();
        if !dropping && !self.collecting {
            return self.inner.record(record).await;
        }
        let id = record_identity(record);
        if self.collecting {
            self.pending.push(id.clone());
        }
        if dropping
            && let Some(left) = self.seen.get_mut(&id)
            && *left > 0
        {
            *left -= 1;
            self.taken.push(id);
            return Ok(());
        }
        self.inner.record(record).await
    }

    async fn commit(&mut self, window: &Window, records: u64) -> Result<()> {
        self.inner.commit(window, records).await?;
        self.remembered.append(&mut self.pending);
        self.skipped += self.taken.len() as u64;
        self.taken.clear();
        self.seen.retain(|_, left| *left > 0);
        Ok(())
    }

    async fn abort(&mut self, window: &Window) -> Result<()> {
        self.pending.clear();
        self.give_back();
        self.inner.abort(window).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn window() -> Window {
        let start = Utc.timestamp_opt(0, 0).single().unwrap_or_default();
        Window {
            start,
            end: start + chrono::TimeDelta::seconds(60),
        }
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
        let done = sink.finish()?;
        assert_eq!(
            std::fs::read(&done).map_err(|e| Error::io("read", e))?,
            b"{\"a\":1}\n{\"c\":3}\n"
        );
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
            // Simulate a crash: flush what was written but never commit.
            sink.file.flush().map_err(|e| Error::io("flush", e))?;
            sink.committed_len()
        };
        let mut sink = FileSink::resume(&path, Format::Csv, committed)?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"5,6").await?;
        sink.commit(&w, 1).await?;
        let mismatch = sink.header(b"a,c").await;
        assert!(matches!(mismatch, Err(Error::Decode { .. })));
        let done = sink.finish()?;
        assert_eq!(
            std::fs::read(&done).map_err(|e| Error::io("read", e))?,
            b"a,b\n1,2\n5,6\n"
        );
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
    async fn dedup_drops_seen_records_and_remembers_the_tail() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let seen = vec![record_identity(b"old")];
        let w = window();
        let mut sink = Dedup::new(FileSink::create(&path)?, seen, Some(w.start));
        sink.begin(&w).await?;
        sink.record(b"old").await?;
        sink.record(b"new").await?;
        sink.abort(&w).await?;
        sink.begin(&w).await?;
        sink.record(b"old").await?;
        sink.record(b"new").await?;
        sink.commit(&w, 1).await?;
        assert_eq!(sink.skipped(), 1);
        assert_eq!(sink.remembered(), [record_identity(b"old"), record_identity(b"new")]);
        sink.into_inner().finish()?;
        assert_eq!(std::fs::read(&path).map_err(|e| Error::io("read", e))?, b"new\n");
        Ok(())
    }

    #[tokio::test]
    async fn dedup_drops_each_seen_occurrence_once() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let w = window();
        let mut sink = Dedup::new(FileSink::create(&path)?, vec![record_identity(b"same")], None);
        sink.begin(&w).await?;
        sink.record(b"same").await?;
        sink.record(b"same").await?;
        sink.commit(&w, 2).await?;
        assert_eq!(sink.skipped(), 1);
        sink.into_inner().finish()?;
        assert_eq!(std::fs::read(&path).map_err(|e| Error::io("read", e))?, b"same\n");
        Ok(())
    }

    #[tokio::test]
    async fn writer_sink_emits_only_committed_windows_and_one_header() -> Result<()> {
        let w = window();
        let mut sink = WriterSink::new(Vec::new())?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"1,2").await?;
        sink.abort(&w).await?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"1,2").await?;
        sink.record(b"3,4").await?;
        sink.commit(&w, 2).await?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"5,6").await?;
        sink.commit(&w, 1).await?;
        assert!(matches!(sink.header(b"a,c").await, Err(Error::Decode { .. })));
        assert_eq!(sink.finish()?, b"a,b\n1,2\n3,4\n5,6\n");
        Ok(())
    }

    #[tokio::test]
    async fn dedup_stops_dropping_at_the_previous_end_and_reports_what_is_left() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let w = window();
        let later = Window {
            start: w.end,
            end: w.end + chrono::TimeDelta::seconds(60),
        };
        let seen = vec![record_identity(b"a"), record_identity(b"b")];
        let mut sink = Dedup::new(FileSink::create(&path)?, seen, None).with_drop_until(Some(w.end));
        sink.begin(&w).await?;
        sink.record(b"a").await?;
        sink.commit(&w, 1).await?;
        assert_eq!(sink.remaining_seen(), [record_identity(b"b")]);
        sink.begin(&later).await?;
        sink.record(b"b").await?;
        sink.commit(&later, 1).await?;
        assert_eq!(sink.skipped(), 1);
        sink.into_inner().finish()?;
        assert_eq!(std::fs::read(&path).map_err(|e| Error::io("read", e))?, b"b\n");
        Ok(())
    }
}
