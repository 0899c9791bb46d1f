//! The writer thread's side of [`ParquetSink`](super::ParquetSink): lines gathered into chunks for the decoders,
//! their Arrow batches written to one temporary Parquet file per day a window touches, renamed to visible names when
//! the window commits.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::decoders::{Decoded, Decoders};
use super::encoder_thread::EncoderThread;
use super::schema::Columns;
use super::{Partition, pending_path};
use crate::sink::offload::Target;
use crate::sink::{sync_parent_dir, write_file_atomically};
use crate::{Error, Result, Window};

/// Bytes of lines gathered before they go to a decoder thread (about 1,700 emailSend records).
const CHUNK: usize = 1 << 20;

/// One day's (or, without partitions, the window's) file being written.
struct Open {
    tmp: PathBuf,
    /// The directory the visible name goes in.
    dir: PathBuf,
    writer: EncoderThread,
}

/// What the thread owns.
pub(crate) struct Files {
    /// `DIR/<dataType>`.
    pub(crate) root: PathBuf,
    pub(crate) columns: Arc<Columns>,
    pub(crate) partition: Partition,
    pub(crate) props: WriterProperties,
    pub(crate) sync: bool,
    /// The window being written: its files, by day.
    pub(crate) window: Option<Window>,
    open: BTreeMap<Option<NaiveDate>, Open>,
    /// Lines not yet sent to a decoder.
    chunk: Vec<u8>,
    decoders: Decoders,
    /// Records of this attempt, for the line number of a record that is not JSON.
    pub(crate) records: u64,
    /// Values of this attempt that contradicted their column's type.
    pub(crate) mismatched: u64,
}

impl Files {
    pub(crate) fn new(
        root: PathBuf,
        user: bool,
        columns: Columns,
        partition: Partition,
        props: WriterProperties,
        sync: bool,
    ) -> Result<Files> {
        let columns = Arc::new(columns);
        // Decoding is the costly part: one thread per core, up to 4 (the encoder threads and the download need a
        // core too).
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
        let decoders = Decoders::spawn(threads, user, columns.clone(), partition)?;
        Ok(Files {
            root,
            columns,
            partition,
            props,
            sync,
            window: None,
            open: BTreeMap::new(),
            chunk: Vec::with_capacity(CHUNK + 64 * 1024),
            decoders,
            records: 0,
            mismatched: 0,
        })
    }

    /// Starts a window attempt.
    pub(crate) fn begin(&mut self, window: Window) -> Result<()> {
        self.discard()?;
        self.window = Some(window);
        self.records = 0;
        self.mismatched = 0;
        Ok(())
    }

    /// Adds lines (each ended by `\n`), sending full chunks to the decoders.
    fn lines(&mut self, bytes: &[u8]) -> Result<()> {
        self.chunk.extend_from_slice(bytes);
        if self.chunk.len() >= CHUNK {
            let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK + 64 * 1024));
            if let Some(outcome) = self.decoders.send(chunk)? {
                self.write(outcome)?;
            }
        }
        // Whatever is decoded already goes to its files now, not when the decoders are all busy.
        while let Some(outcome) = self.decoders.try_take()? {
            self.write(outcome)?;
        }
        Ok(())
    }

    /// Decodes and writes every line received.
    pub(crate) fn drain(&mut self) -> Result<()> {
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            if let Some(outcome) = self.decoders.send(chunk)? {
                self.write(outcome)?;
            }
        }
        while let Some(outcome) = self.decoders.take()? {
            self.write(outcome)?;
        }
        Ok(())
    }

    /// Hands a chunk's batches to the files of their days.
    fn write(&mut self, outcome: std::result::Result<Decoded, (u64, String)>) -> Result<()> {
        let decoded = match outcome {
            Ok(decoded) => decoded,
            Err((index, message)) => {
                let line = self.records + index + 1;
                return Err(Error::Decode {
                    line,
                    offset: 0,
                    message: format!("record {line} of the window cannot be written as Parquet: {message}"),
                });
            }
        };
        self.records += decoded.records;
        self.mismatched += decoded.mismatched;
        for (key, batch) in decoded.parts {
            if !self.open.contains_key(&key) {
                let open = self.create(key)?;
                self.open.insert(key, open);
            }
            if let Some(open) = self.open.get_mut(&key) {
                open.writer.write(batch)?;
            }
        }
        Ok(())
    }

    fn create(&self, day: Option<NaiveDate>) -> Result<Open> {
        let dir = match self.partition {
            Partition::Day => self.root.join(day_dir(day)),
            Partition::None => self.root.clone(),
        };
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
            sync_parent_dir(&dir)?;
        }
        let window = self.window.unwrap_or(Window::ALL);
        let tmp = dir.join(format!(".{}.tmp", file_stem(&window)));
        let file = File::create(&tmp).map_err(|e| Error::io(format!("cannot create {}", tmp.display()), e))?;
        let writer = ArrowWriter::try_new(file, self.columns.schema.clone(), Some(self.props.clone()))
            .map_err(|e| parquet_error(&tmp, e))?;
        let writer = EncoderThread::spawn(writer, tmp.clone())?;
        Ok(Open { tmp, dir, writer })
    }

    /// Completes the window's files and gives them their visible names; `seq` numbers this commit. Returns the
    /// values that contradicted their column's type.
    pub(crate) fn commit(&mut self, seq: u64) -> Result<u64> {
        self.drain()?;
        let window = self.window.take().unwrap_or(Window::ALL);
        let opens = std::mem::take(&mut self.open);
        let tmps: Vec<PathBuf> = opens.values().map(|o| o.tmp.clone()).collect();
        let dirs: Vec<PathBuf> = opens.values().map(|o| o.dir.clone()).collect();
        // On any failure, nothing of the window stays: neither its temporary files nor those already renamed.
        let mut visible = Vec::new();
        let result = self.publish(opens, &window, seq, &mut visible);
        if result.is_err() {
            for path in tmps.iter().chain(&visible) {
                let _ = std::fs::remove_file(path);
            }
            dirs.iter().for_each(|dir| self.remove_if_empty(dir));
        }
        result?;
        let mismatched = self.mismatched;
        self.mismatched = 0;
        self.records = 0;
        Ok(mismatched)
    }

    /// Completes the files, lists them in `_pending`, and renames them (recording each visible name).
    fn publish(
        &self,
        opens: BTreeMap<Option<NaiveDate>, Open>,
        window: &Window,
        seq: u64,
        visible: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let mut done = Vec::new();
        for (_, open) in opens {
            open.writer.finish()?;
            if self.sync {
                File::open(&open.tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(format!("cannot sync {}", open.tmp.display()), e))?;
            }
            done.push((open.tmp, open.dir));
        }
        let mut names = Vec::new();
        for (_, dir) in &done {
            names.push(visible_name(dir, window, &names)?);
        }
        if !done.is_empty() {
            // Which files this commit makes visible: a resumed export whose checkpoint predates it removes them.
            let listed: Vec<String> = names
                .iter()
                .map(|p| p.strip_prefix(&self.root).unwrap_or(p).to_string_lossy().into_owned())
                .collect();
            let pending = serde_json::json!({ "commit": seq, "files": listed });
            write_file_atomically(&pending_path(&self.root), pending.to_string().as_bytes())?;
        }
        for ((tmp, _), name) in done.iter().zip(names) {
            std::fs::rename(tmp, &name)
                .map_err(|e| Error::io(format!("cannot rename {} to {}", tmp.display(), name.display()), e))?;
            visible.push(name);
        }
        if self.sync {
            for name in visible.iter() {
                sync_parent_dir(name)?;
            }
        }
        Ok(())
    }

    /// Removes a partition directory left empty by a failed attempt (a directory with files stays).
    fn remove_if_empty(&self, dir: &Path) {
        if dir != self.root {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Forgets the attempt: its temporary files are removed, and the partition directories it left empty.
    pub(crate) fn discard(&mut self) -> Result<()> {
        // The outcomes of chunks in flight belong to the attempt too.
        self.chunk.clear();
        while let Ok(Some(_)) = self.decoders.take() {}
        let mut first = None;
        for (_, open) in std::mem::take(&mut self.open) {
            drop(open.writer);
            if let Err(e) = std::fs::remove_file(&open.tmp)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                first.get_or_insert(Error::io(format!("cannot remove {}", open.tmp.display()), e));
            }
            self.remove_if_empty(&open.dir);
        }
        self.window = None;
        self.records = 0;
        self.mismatched = 0;
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = self.discard();
    }
}

impl Target for Files {
    /// A batch of NDJSON lines, each ended by `\n`.
    fn write_batch(&mut self, bytes: &[u8]) -> Result<()> {
        self.lines(bytes)
    }
}

/// `dt=YYYY-MM-DD` (Hive's `__HIVE_DEFAULT_PARTITION__` for records without a time).
pub(crate) fn day_dir(day: Option<NaiveDate>) -> String {
    match day {
        Some(day) => format!("dt={}", day.format("%Y-%m-%d")),
        None => "dt=__HIVE_DEFAULT_PARTITION__".into(),
    }
}

/// `part-<start>-<end>` (`part-all` for the one window of a predefined range).
pub(crate) fn file_stem(window: &Window) -> String {
    if *window == Window::ALL {
        return "part-all".into();
    }
    format!(
        "part-{}-{}",
        window.start.format("%Y%m%dT%H%M%SZ"),
        window.end.format("%Y%m%dT%H%M%SZ")
    )
}

/// `part-<start>-<end>.parquet`, or with `-1`, `-2`, … when an earlier run left a file of the same window (an
/// incremental run re-reading its predecessor's last window).
fn visible_name(dir: &Path, window: &Window, taken: &[PathBuf]) -> Result<PathBuf> {
    let stem = file_stem(window);
    let mut n = 0u32;
    loop {
        let name = if n == 0 {
            dir.join(format!("{stem}.parquet"))
        } else {
            dir.join(format!("{stem}-{n}.parquet"))
        };
        if !name.exists() && !taken.contains(&name) {
            return Ok(name);
        }
        n = n.checked_add(1).ok_or_else(|| {
            Error::io(
                format!("no free file name in {}", dir.display()),
                std::io::ErrorKind::AlreadyExists.into(),
            )
        })?;
    }
}

pub(crate) fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::io(
        format!("cannot write {}", path.display()),
        std::io::Error::other(e.to_string()),
    )
}
