//! Sinks: a file that is exactly-once across retries and restarts, and de-duplication of a
//! re-read overlap.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Format, Result, Sink, Window};

const WRITE_BUFFER: usize = 256 * 1024;

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
    /// (what the last commit recorded) and appended to. When only the complete file `path`
    /// exists (a finished earlier run that is being extended), it is moved back to
    /// `<path>.part` first.
    ///
    /// # Errors
    /// [`Error::Io`] when neither file exists, or the file is shorter than `committed_len`
    /// (it does not belong to that checkpoint).
    pub fn resume(path: impl Into<PathBuf>, format: Format, committed_len: u64) -> Result<Self> {
        let path = path.into();
        let part = part_path(&path);
        if !part.exists() && path.exists() {
            std::fs::rename(&path, &part)
                .map_err(|e| Error::io(format!("cannot move {} back to {}", path.display(), part.display()), e))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&part)
            .map_err(|e| Error::io(format!("cannot reopen {} to resume", part.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot read {}", part.display()), e))?
            .len();
        if len < committed_len {
            return Err(Error::io(
                format!(
                    "{} has {len} bytes but the checkpoint recorded {committed_len}: it does not belong to this state file; \
                     delete the state file to start over",
                    part.display()
                ),
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            ));
        }
        let header = if format == Format::Csv && committed_len > 0 {
            let mut line = Vec::new();
            BufReader::new(&file)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io(format!("cannot read the CSV header of {}", part.display()), e))?;
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            Some(line)
        } else {
            None
        };
        file.set_len(committed_len)
            .map_err(|e| Error::io(format!("cannot truncate {}", part.display()), e))?;
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
        Ok(())
    }
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
        match &self.header {
            None => {
                self.write(header)?;
                self.write(b"\n")?;
                self.header = Some(header.to_vec());
                Ok(())
            }
            Some(first) if first == header => Ok(()),
            Some(_) => Err(Error::Decode {
                line: 1,
                offset: 0,
                message: format!(
                    "the CSV columns of this window differ from those already in {}; one file cannot hold both — \
                     export this data type as NDJSON, or use only_fields to fix the columns",
                    self.path.display()
                ),
            }),
        }
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
/// what it wrote. Exactly-once still holds: when an attempt is aborted, the identities of the
/// records already written are kept, and a retry of the window (or of its halves after a
/// split) skips them. The set is dropped once the export has moved past the aborted window.
/// Memory grows with the records of one window (an identity of 16 bytes each), not with the
/// whole export: choose smaller windows for very large exports to standard output.
#[derive(Debug)]
pub struct WriterSink<W: Write> {
    out: W,
    header_written: bool,
    /// Identities written in the current attempt.
    current: HashSet<[u8; 16]>,
    /// Identities written by aborted attempts, and the end of the latest aborted window.
    written: HashSet<[u8; 16]>,
    replay_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl<W: Write + Send> WriterSink<W> {
    /// Wraps a writer. Wrap it in a `BufWriter` if it is not buffered.
    pub fn new(out: W) -> Self {
        WriterSink {
            out,
            header_written: false,
            current: HashSet::new(),
            written: HashSet::new(),
            replay_until: None,
        }
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// [`Error::Io`] when flushing fails.
    pub fn finish(mut self) -> Result<W> {
        self.out.flush().map_err(|e| Error::io("cannot write the output", e))?;
        Ok(self.out)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("cannot write the output", e))
    }
}

fn identity16(record: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(record);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

impl<W: Write + Send> Sink for WriterSink<W> {
    async fn begin(&mut self, window: &Window) -> Result<()> {
        if self.replay_until.is_some_and(|until| window.start >= until) {
            self.replay_until = None;
            self.written.clear();
        }
        self.current.clear();
        Ok(())
    }

    async fn header(&mut self, header: &[u8]) -> Result<()> {
        if !self.header_written {
            self.write(header)?;
            self.write(b"\n")?;
            self.header_written = true;
        }
        Ok(())
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        let id = identity16(record);
        if self.written.contains(&id) {
            return Ok(());
        }
        self.current.insert(id);
        self.write(record)?;
        self.write(b"\n")
    }

    async fn commit(&mut self, _window: &Window, _records: u64) -> Result<()> {
        self.current.clear();
        self.out.flush().map_err(|e| Error::io("cannot write the output", e))
    }

    async fn abort(&mut self, window: &Window) -> Result<()> {
        self.written.extend(self.current.drain());
        self.replay_until = Some(self.replay_until.map_or(window.end, |t| t.max(window.end)));
        Ok(())
    }
}

/// A record's identity for de-duplication: SHA-256 (first 16 bytes, hex) of its raw bytes.
/// Stable across runs and versions, so it can be stored in a checkpoint.
pub fn record_identity(record: &[u8]) -> String {
    let digest = Sha256::digest(record);
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Wraps a sink for incremental syncs that re-read a look-back: records whose identity is in
/// `seen` (collected by the previous run) are dropped, and the identities of records in windows
/// that start at or after `remember_from` are collected for the next run.
#[derive(Debug)]
pub struct Dedup<S> {
    inner: S,
    seen: HashSet<String>,
    remember_from: Option<chrono::DateTime<chrono::Utc>>,
    remembered: Vec<String>,
    pending: Vec<String>,
    collecting: bool,
    skipped: u64,
    pending_skipped: u64,
}

impl<S: Sink> Dedup<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, seen: HashSet<String>, remember_from: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        Dedup {
            inner,
            seen,
            remember_from,
            remembered: Vec::new(),
            pending: Vec::new(),
            collecting: false,
            skipped: 0,
            pending_skipped: 0,
        }
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
}

impl<S: Sink> Sink for Dedup<S> {
    async fn begin(&mut self, window: &Window) -> Result<()> {
        self.pending.clear();
        self.pending_skipped = 0;
        self.collecting = self.remember_from.is_some_and(|from| window.start >= from);
        self.inner.begin(window).await
    }

    async fn header(&mut self, header: &[u8]) -> Result<()> {
        self.inner.header(header).await
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        if self.seen.is_empty() && !self.collecting {
            return self.inner.record(record).await;
        }
        let id = record_identity(record);
        if self.seen.contains(&id) {
            self.pending_skipped += 1;
            return Ok(());
        }
        if self.collecting {
            self.pending.push(id);
        }
        self.inner.record(record).await
    }

    async fn commit(&mut self, window: &Window, records: u64) -> Result<()> {
        self.inner.commit(window, records).await?;
        self.remembered.append(&mut self.pending);
        self.skipped += std::mem::take(&mut self.pending_skipped);
        Ok(())
    }

    async fn abort(&mut self, window: &Window) -> Result<()> {
        self.pending.clear();
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
        let seen: HashSet<String> = [record_identity(b"old")].into_iter().collect();
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
        assert_eq!(sink.remembered(), [record_identity(b"new")]);
        sink.into_inner().finish()?;
        assert_eq!(std::fs::read(&path).map_err(|e| Error::io("read", e))?, b"new\n");
        Ok(())
    }
}
