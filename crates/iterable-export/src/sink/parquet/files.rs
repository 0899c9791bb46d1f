//! The writer thread's side of [`ParquetSink`](super::ParquetSink): lines gathered into chunks for the decoders,
//! their Arrow batches written to temporary Parquet files by day, renamed to visible names when the window commits.
//!
//! At most [`MAX_OPEN`] files are open (each with its encoder thread and its row group in memory): a record of
//! another day finishes the least recently used one, which waits complete for the commit, and a day that comes
//! again after its file was finished gets another file (`part-…-1.parquet`, `-2`, …). Memory, threads and file
//! descriptors therefore stay bounded however many days a window spans (a multi-year `convert`).

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
use super::{Partition, committed};
use crate::sink::offload::Target;
use crate::sink::sync_parent_dir;
use crate::{Error, Result, Window};

/// Bytes of lines gathered before they go to a decoder thread (about 1,700 emailSend records).
const CHUNK: usize = 1 << 20;

/// Files open at once in a window: each holds an encoder thread, a descriptor and a row group (up to 128 MiB).
pub(crate) const MAX_OPEN: usize = 8;

/// One day's (or, without partitions, the window's) file being written.
struct Open {
    piece: Piece,
    writer: EncoderThread,
    /// When a record last went to it, for closing the least recently used.
    used: u64,
}

/// A temporary file of the window, complete or being written.
struct Piece {
    tmp: PathBuf,
    /// The directory the visible name goes in.
    dir: PathBuf,
    /// The order files were created in: a day's first file takes the name without a suffix.
    created: u64,
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
    /// Files of the window already complete (closed to keep at most [`MAX_OPEN`] open), waiting for the commit.
    closed: Vec<Piece>,
    /// Files created in the window, by day: the next one's temporary name.
    created: BTreeMap<Option<NaiveDate>, u32>,
    /// Ticks of the window (files created, batches written), for `Open::used` and `Piece::created`.
    clock: u64,
    /// The most files open at once so far (for tests).
    pub(crate) peak_open: usize,
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
            closed: Vec::new(),
            created: BTreeMap::new(),
            clock: 0,
            peak_open: 0,
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
                if self.open.len() >= MAX_OPEN {
                    self.close_least_recent()?;
                }
                let open = self.create(key)?;
                self.open.insert(key, open);
                self.peak_open = self.peak_open.max(self.open.len());
            }
            self.clock += 1;
            if let Some(open) = self.open.get_mut(&key) {
                open.used = self.clock;
                open.writer.write(batch)?;
            }
        }
        Ok(())
    }

    /// Finishes the file that received a record longest ago; it waits, complete, for the commit.
    fn close_least_recent(&mut self) -> Result<()> {
        let least = self.open.iter().min_by_key(|(_, open)| open.used).map(|(key, _)| *key);
        if let Some(open) = least.and_then(|key| self.open.remove(&key)) {
            // Listed before finishing: a failed file is removed with the rest of the attempt.
            self.closed.push(open.piece);
            open.writer.finish()?;
        }
        Ok(())
    }

    fn create(&mut self, day: Option<NaiveDate>) -> Result<Open> {
        let dir = match self.partition {
            Partition::Day => self.root.join(day_dir(day)),
            Partition::None => self.root.clone(),
        };
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
            sync_parent_dir(&dir)?;
        }
        let window = self.window.unwrap_or(Window::ALL);
        let n = self.created.entry(day).or_insert(0);
        let tmp = match *n {
            0 => dir.join(format!(".{}.tmp", file_stem(&window))),
            n => dir.join(format!(".{}-{n}.tmp", file_stem(&window))),
        };
        *n += 1;
        let file = File::create(&tmp).map_err(|e| Error::io(format!("cannot create {}", tmp.display()), e))?;
        let writer = ArrowWriter::try_new(file, self.columns.schema.clone(), Some(self.props.clone()))
            .map_err(|e| parquet_error(&tmp, e));
        let writer = writer.and_then(|writer| EncoderThread::spawn(writer, tmp.clone()));
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        self.clock += 1;
        let piece = Piece {
            tmp,
            dir,
            created: self.clock,
        };
        Ok(Open {
            piece,
            writer,
            used: self.clock,
        })
    }

    /// Completes the window's files and gives them their visible names; `seq` numbers this commit. Returns the
    /// values that contradicted their column's type.
    pub(crate) fn commit(&mut self, seq: u64) -> Result<u64> {
        self.drain()?;
        let window = self.window.take().unwrap_or(Window::ALL);
        let opens = std::mem::take(&mut self.open);
        let closed = std::mem::take(&mut self.closed);
        self.created.clear();
        let pieces = closed.iter().chain(opens.values().map(|o| &o.piece));
        let (tmps, dirs): (Vec<PathBuf>, Vec<PathBuf>) = pieces.map(|p| (p.tmp.clone(), p.dir.clone())).unzip();
        // On any failure, nothing of the window stays: neither its temporary files nor those already renamed.
        let mut visible = Vec::new();
        let result = self.publish(opens, closed, &window, seq, &mut visible);
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

    /// Completes the files, lists them in `_committed` (a commit without files too), and renames them (recording
    /// each visible name).
    fn publish(
        &self,
        opens: BTreeMap<Option<NaiveDate>, Open>,
        mut done: Vec<Piece>,
        window: &Window,
        seq: u64,
        visible: &mut Vec<PathBuf>,
    ) -> Result<()> {
        for (_, open) in opens {
            open.writer.finish()?;
            done.push(open.piece);
        }
        // A day's files get their names in the order they were created.
        done.sort_by_key(|piece| piece.created);
        if self.sync {
            for piece in &done {
                File::open(&piece.tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(format!("cannot sync {}", piece.tmp.display()), e))?;
            }
        }
        let mut names = Vec::new();
        for piece in &done {
            names.push(visible_name(&piece.dir, window, &names)?);
        }
        // Which files this commit makes visible: a resumed export whose checkpoint predates it removes them, and
        // one whose checkpoint counts it checks they are all there.
        let listed: Vec<String> = names
            .iter()
            .map(|p| p.strip_prefix(&self.root).unwrap_or(p).to_string_lossy().into_owned())
            .collect();
        let before = committed::append(&self.root, seq, listed, self.sync)?;
        let renamed = self.rename(&done, names, visible);
        if renamed.is_err() {
            // The commit's files are removed (see `commit`): its line goes too.
            committed::undo(&self.root, before);
        }
        renamed
    }

    fn rename(&self, done: &[Piece], names: Vec<PathBuf>, visible: &mut Vec<PathBuf>) -> Result<()> {
        for (piece, name) in done.iter().zip(names) {
            let tmp = &piece.tmp;
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
        let mut pieces = std::mem::take(&mut self.closed);
        for (_, open) in std::mem::take(&mut self.open) {
            drop(open.writer);
            pieces.push(open.piece);
        }
        self.created.clear();
        for piece in &pieces {
            if let Err(e) = std::fs::remove_file(&piece.tmp)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                first.get_or_insert(Error::io(format!("cannot remove {}", piece.tmp.display()), e));
            }
        }
        // After every file is gone: a directory holds several files of the attempt when a day came again.
        for piece in &pieces {
            self.remove_if_empty(&piece.dir);
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
