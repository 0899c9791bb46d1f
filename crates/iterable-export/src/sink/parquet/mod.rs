//! [`ParquetSink`]: typed Parquet files, partitioned by day, exactly once by window.
//!
//! - `schema.rs`: the columns of a record type, derived from its table (`typed_record!`);
//! - `encode.rs`: decoded records into Arrow columns, and `_extra`;
//! - `decoders.rs`: decoding on a few threads, in order;
//! - `files.rs`: the writer thread's side: temporary files per day, renamed when a window commits;
//! - `encoder_thread.rs`: each file's Parquet encoding on a thread of its own;
//! - `committed.rs`: `_committed`, the files each commit made visible.

mod committed;
mod decoders;
mod encode;
mod encoder_thread;
mod files;
mod row;
mod schema;

use std::path::{Path, PathBuf};

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use self::files::Files;
use super::offload::Offload;
use super::{ExclusiveLock, sync_parent_dir, write_file_atomically};
use crate::event::record::ColumnKind;
use crate::{DataType, Error, Event, Result, Sink, User, Window};

/// The name of the column of fields without a column of their own: `_extra` (see [`ParquetSink`]).
pub const EXTRA_COLUMN: &str = self::schema::EXTRA;

/// How files are laid out under `DIR/<dataType>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Partition {
    /// `dt=YYYY-MM-DD/part-….parquet`, by the UTC day of each record's time field (`createdAt`; for users
    /// `profileUpdatedAt`): a window that spans days writes one file per day it touches.
    #[default]
    Day,
    /// `part-….parquet` directly under `DIR/<dataType>/`, one file per window.
    None,
}

/// The compression codec of the Parquet pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ParquetCompression {
    /// Zstandard (level 1): smaller files. The default.
    #[default]
    Zstd,
    /// Snappy: faster to write and read, larger files.
    Snappy,
}

/// How [`ParquetSink`] writes. Start from [`ParquetOptions::default`] (day partitions, zstd, row groups of at most
/// 131,072 rows or 128 MiB, a sync per commit) and adjust with the `with_*` methods.
///
/// ```
/// use iterable_export::{ParquetCompression, ParquetOptions, Partition};
///
/// let options = ParquetOptions::default()
///     .with_partition(Partition::None)
///     .with_compression(ParquetCompression::Snappy);
/// assert_eq!(options.max_row_group_rows, 1 << 17);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParquetOptions {
    /// The layout of the files.
    pub partition: Partition,
    /// The codec.
    pub compression: ParquetCompression,
    /// A row group ends after this many rows (at least 1; the default, 131,072, is about DuckDB's 122,880: row
    /// groups a reader can skip by their statistics, and a writer's memory that stays flat however large the
    /// export)…
    pub max_row_group_rows: usize,
    /// …or when its encoded size passes this many bytes (at least 1), which bounds the writer's memory.
    pub max_row_group_bytes: usize,
    /// Whether each commit syncs the files and their directories (needed for a checkpoint to survive a power cut;
    /// a killed process loses nothing either way).
    pub sync_on_commit: bool,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            partition: Partition::Day,
            compression: ParquetCompression::Zstd,
            max_row_group_rows: 1 << 17,
            max_row_group_bytes: 128 << 20,
            sync_on_commit: true,
        }
    }
}

impl ParquetOptions {
    /// Sets the layout.
    pub const fn with_partition(mut self, partition: Partition) -> Self {
        self.partition = partition;
        self
    }

    /// Sets the codec.
    pub const fn with_compression(mut self, compression: ParquetCompression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the largest row group, in rows and in encoded bytes.
    pub const fn with_max_row_group(mut self, rows: usize, bytes: usize) -> Self {
        self.max_row_group_rows = rows;
        self.max_row_group_bytes = bytes;
        self
    }

    /// Sets whether each commit syncs.
    pub const fn with_sync_on_commit(mut self, sync: bool) -> Self {
        self.sync_on_commit = sync;
        self
    }

    /// The writer's settings for a schema: the codec and row group bounds, and times (which arrive nearly sorted)
    /// delta-encoded instead of dictionary-encoded, a fraction of the size.
    fn writer_properties(&self, columns: &schema::Columns) -> WriterProperties {
        let compression = match self.compression {
            ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
        };
        let builder = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.max_row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(self.max_row_group_bytes.max(1)))
            .set_created_by(concat!("iterable-export ", env!("CARGO_PKG_VERSION")).into());
        columns
            .columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Time)
            .fold(builder, |builder, c| {
                let path = ColumnPath::from(c.name);
                builder
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED)
            })
            .build()
    }
}

/// Writes an export as Parquet files under `DIR/<dataType>/`, one schema per record type, exactly once by window.
///
/// # Layout
///
/// `DIR/<dataType>/dt=YYYY-MM-DD/part-<window start>-<window end>.parquet` ([`Partition::Day`], the UTC day of
/// each record's `createdAt`, for users `profileUpdatedAt`), or `DIR/<dataType>/part-….parquet`
/// ([`Partition::None`]). Names that start with `_` or `.`, which readers (DuckDB, Spark, Trino, pyarrow) skip,
/// are the sink's own: `.part-….tmp` files being written, `_lock`, `_committed` (one line per commit: the files it
/// made visible) and `_SUCCESS`, written by [`ParquetSink::finish`] when the data type's export is complete.
///
/// # Schema
///
/// The record type's typed fields (see [`Event`](crate::Event) and [`User`](crate::User)) and the frequent fields
/// its table gives a column type, in table order: times as `TIMESTAMP` (microseconds, UTC), integers as `INT64`,
/// flags as `BOOLEAN`, text as UTF-8, nested values (`dataFields`, `transactionalData`, `itblInternal`, arrays) as
/// their JSON text with Parquet's `JSON` logical type. Every other field goes, with its JSON exactly as it arrived,
/// into one JSON object in the column `_extra` ([`EXTRA_COLUMN`]). A value that contradicts its column's type (a
/// string where an integer was expected) never fails the export and is never lost: it goes to `_extra` with its
/// original JSON, and [`ParquetSink::mismatched`] counts it; so do `null`s (not counted), and times written in
/// another form than Iterable's (their column holds the time, `_extra` the original text). A record is therefore
/// rebuilt as the same JSON value from its row: its columns, then `_extra`'s fields.
///
/// # Exactly once
///
/// A window's rows go to temporary files, which [`Sink::commit`] completes and renames to their visible names
/// (then the caller writes its checkpoint, with [`ParquetSink::commits`]); [`Sink::abort`] removes them. Before
/// the renames, the commit lists its files in `_committed`. A resumed export ([`ParquetSink::resume`]) removes what
/// an unfinished window left, and the files of a commit its checkpoint does not know (a crash between the renames
/// and the checkpoint); it refuses to continue when a file of a commit its checkpoint counts is gone, as the export
/// would then have a hole ([`ParquetSink::check_resume`] checks that beforehand).
///
/// Input is NDJSON ([`Format::Ndjson`](crate::Format::Ndjson)): a CSV body is refused in [`Sink::header`] (its
/// values have lost their JSON types). Nothing runs on the async runtime: the sink's writer thread gathers lines,
/// up to 4 decoder threads (one per core) turn 1 MiB chunks of them into Arrow batches, in order, and each open file
/// is encoded on a thread of its own. At most 8 files are open at once: a record of another day completes the file
/// that received a record longest ago (it waits for the commit), and a day that comes again gets another file,
/// `part-<start>-<end>-1.parquet`, `-2`, … Memory is therefore bounded by the chunks in flight and 8 row groups,
/// however many days a window spans.
///
/// ```no_run
/// # async fn demo(client: iterable_export::Client) -> iterable_export::Result<()> {
/// use chrono::{Duration, Utc};
/// use iterable_export::{DataType, ParquetOptions, ParquetSink, WindowOptions};
///
/// let end = Utc::now();
/// let mut sink = ParquetSink::create("lake", DataType::EmailSend, ParquetOptions::default())?;
/// client
///     .export(DataType::EmailSend)
///     .between(end - Duration::days(7), end)
///     .export_windows(WindowOptions::default(), &mut sink)
///     .await?;
/// let dir = sink.finish().await?; // lake/emailSend, with _SUCCESS
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ParquetSink {
    root: PathBuf,
    out: Offload<Files>,
    _lock: ExclusiveLock,
    commits: u64,
    mismatched: u64,
    begun: bool,
}

impl ParquetSink {
    /// Starts a new export into `dir/<data_type>/`, replacing what an earlier export left there (its Parquet files,
    /// `_SUCCESS`, temporary files), as a new file export replaces its file.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created or cleared, or another export holds it.
    pub fn create(dir: impl AsRef<Path>, data_type: DataType, options: ParquetOptions) -> Result<Self> {
        let root = dir.as_ref().join(data_type.to_string());
        let lock = Self::lock(&root)?;
        clear(&root, Clear::All)?;
        Self::start(root, lock, data_type, options, 0)
    }

    /// Continues an export after an interruption, or an incremental run after a finished one: `commits` is what
    /// [`ParquetSink::commits`] said at the last checkpoint. Files of a later commit (written before a crash
    /// stopped the checkpoint), temporary files and `_SUCCESS` (until [`ParquetSink::finish`]) are removed; earlier
    /// files are kept, and numbering goes on.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read or cleaned, or another export holds it; [`Error::Io`] with
    /// kind `NotFound` when a file of the first `commits` commits is gone, or `_committed`, which lists them (see
    /// [`ParquetSink::check_resume`]); [`Error::InvalidRequest`] when its files were written with another
    /// [`Partition`]. Nothing is changed on these errors.
    pub fn resume(dir: impl AsRef<Path>, data_type: DataType, options: ParquetOptions, commits: u64) -> Result<Self> {
        let root = dir.as_ref().join(data_type.to_string());
        let lock = Self::lock(&root)?;
        check_layout(&root, options.partition)?;
        let log = committed::read(&root, commits)?;
        log.verify(&root, commits)?;
        clear(&root, Clear::After(log))?;
        Self::start(root, lock, data_type, options, commits)
    }

    /// Checks, without changing anything, that the export in `root` (`DIR/<dataType>`, as [`ParquetSink::path`]
    /// says) can be continued from a checkpoint of `commits` commits: `_committed` lists each of them, and every
    /// file they made is there.
    ///
    /// # Errors
    /// [`Error::Io`] with kind `NotFound` naming what is missing (up to 3 files, and how many) when a file of those
    /// commits is gone, or `_committed`; [`Error::Io`] when `_committed` cannot be read or was changed by hand.
    pub fn check_resume(root: impl AsRef<Path>, commits: u64) -> Result<()> {
        let root = root.as_ref();
        committed::read(root, commits)?.verify(root, commits)
    }

    /// Checks, without changing anything, that no other export holds `dir/<data_type>/`.
    ///
    /// # Errors
    /// [`Error::Io`] with kind `WouldBlock` when another export holds it.
    pub fn check(dir: impl AsRef<Path>, data_type: DataType) -> Result<()> {
        let root = dir.as_ref().join(data_type.to_string());
        if root.join("_lock").exists() {
            drop(ExclusiveLock::acquire(root.join("_lock"))?);
        }
        Ok(())
    }

    fn lock(root: &Path) -> Result<ExclusiveLock> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(format!("cannot create {}", root.display()), e))?;
        ExclusiveLock::acquire(root.join("_lock"))
    }

    fn start(
        root: PathBuf,
        lock: ExclusiveLock,
        data_type: DataType,
        options: ParquetOptions,
        commits: u64,
    ) -> Result<Self> {
        sync_parent_dir(&root)?;
        let user = data_type == DataType::User;
        let columns = if user {
            schema::Columns::of::<User>()
        } else {
            schema::Columns::of::<Event>()
        };
        let props = options.writer_properties(&columns);
        let files = Files::new(
            root.clone(),
            user,
            columns,
            options.partition,
            props,
            options.sync_on_commit,
        )?;
        Ok(ParquetSink {
            root,
            out: Offload::spawn("parquet writer", files)?,
            _lock: lock,
            commits,
            mismatched: 0,
            begun: false,
        })
    }

    /// Commits so far, counting those of the runs this one continues: record it with your checkpoint, and give it
    /// to [`ParquetSink::resume`].
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Committed values that contradicted their column's type, kept in `_extra`.
    pub fn mismatched(&self) -> u64 {
        self.mismatched
    }

    /// `DIR/<dataType>`.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Marks the data type's export complete: writes `_SUCCESS` (atomically) and returns `DIR/<dataType>`.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub async fn finish(self) -> Result<PathBuf> {
        let root = self.root.clone();
        let marker = root.join("_SUCCESS");
        let ParquetSink { mut out, _lock, .. } = self;
        out.call(move |files| {
            files.discard()?;
            write_file_atomically(&marker, b"")
        })
        .await?;
        out.close().await;
        drop(_lock);
        Ok(root)
    }

    /// Stops without finishing (an export that failed): the temporary files of a window not committed are removed,
    /// committed files stay, `_SUCCESS` is not written. Returns once the writer thread has ended and the directory's
    /// lock is released, so the caller may then remove the directory.
    pub async fn close(self) {
        let ParquetSink { mut out, _lock, .. } = self;
        out.discard();
        let _ = out.call(|files| files.discard()).await;
        out.close().await;
        drop(_lock);
    }
}

impl Sink for ParquetSink {
    async fn begin(&mut self, window: &Window) -> Result<()> {
        let window = *window;
        self.begun = true;
        self.out.call(move |files| files.begin(window)).await
    }

    /// A CSV body is refused: Parquet output is made from NDJSON, whose values keep their JSON types.
    async fn header(&mut self, _header: &[u8]) -> Result<()> {
        Err(Error::InvalidRequest(
            "Parquet output is made from NDJSON records, not CSV: export with the NDJSON format".into(),
        ))
    }

    /// One NDJSON record: a JSON object on one line (a line break in it is refused).
    async fn record(&mut self, record: &[u8]) -> Result<()> {
        if memchr::memchr(b'\n', record).is_some() {
            return Err(Error::InvalidRequest(
                "a record for Parquet output is one line of NDJSON: it must not contain a line break".into(),
            ));
        }
        self.out.write(record).await?;
        self.out.write(b"\n").await
    }

    async fn commit(&mut self, _window: &Window, _records: u64) -> Result<()> {
        let seq = self.commits + 1;
        let mismatched = self.out.call(move |files| files.commit(seq)).await?;
        self.commits = seq;
        self.mismatched += mismatched;
        Ok(())
    }

    async fn abort(&mut self, _window: &Window) -> Result<()> {
        self.out.discard();
        self.out.call(|files| files.discard()).await
    }
}

/// What [`clear`] removes.
enum Clear {
    /// Everything an export writes.
    All,
    /// Temporary files, and the files of the commits after the checkpoint (their lines of `_committed` too).
    After(committed::Log),
}

/// Cleans `root` before an export writes into it.
fn clear(root: &Path, what: Clear) -> Result<()> {
    let log = committed::log_path(root);
    match &what {
        Clear::All => remove_if_present(&log)?,
        Clear::After(read) => {
            for file in &read.later {
                remove_if_present(&root.join(file))?;
            }
            if read.keep == 0 {
                remove_if_present(&log)?;
            } else if std::fs::metadata(&log).is_ok_and(|m| m.len() > read.keep) {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&log)
                    .and_then(|f| f.set_len(read.keep).and_then(|()| f.sync_all()))
                    .map_err(|e| Error::io(format!("cannot truncate {}", log.display()), e))?;
            }
        }
    }
    // A run is in progress: the directory is a complete export again only when it finishes (an incremental run
    // that dies leaves no `_SUCCESS` beside its partial files).
    remove_if_present(&root.join("_SUCCESS"))?;
    let all = matches!(what, Clear::All);
    for dir in std::iter::once(root.to_owned()).chain(partition_dirs(root)?) {
        for entry in read_dir(&dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let temporary = name.starts_with(".part-") && name.ends_with(".tmp");
            let data = name.starts_with("part-") && name.ends_with(".parquet");
            if temporary || (all && data) {
                remove_if_present(&entry.path())?;
            }
        }
        if all && dir != root {
            // Empty now, unless someone put other files there.
            let _ = std::fs::remove_dir(&dir);
        }
    }
    sync_parent_dir(&root.join("_lock"))
}

/// Refuses to continue an export whose files have another layout: its readers would miss part of the files.
fn check_layout(root: &Path, partition: Partition) -> Result<()> {
    let has_data = |dir: &Path| -> Result<bool> {
        Ok(read_dir(dir)?.iter().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("part-") && name.ends_with(".parquet")
        }))
    };
    let (conflict, was) = match partition {
        Partition::Day => (has_data(root)?, "not partitioned (files directly in it)"),
        Partition::None => {
            let mut days = false;
            for dir in partition_dirs(root)? {
                days = days || has_data(&dir)?;
            }
            (days, "partitioned by day (dt=YYYY-MM-DD directories)")
        }
    };
    if conflict {
        return Err(Error::InvalidRequest(format!(
            "{} was written {was}: continue it with the same partition (--partition), or export into another \
             directory",
            root.display()
        )));
    }
    Ok(())
}

fn partition_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(read_dir(root)?
        .into_iter()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dt=") && e.path().is_dir())
        .map(|e| e.path())
        .collect())
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    std::fs::read_dir(dir)
        .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("cannot remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
