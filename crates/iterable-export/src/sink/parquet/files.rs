//! The writer thread's side of [`ParquetSink`](super::ParquetSink): records decoded into Arrow columns, one
//! temporary Parquet file per day a window touches, renamed to visible names when the window commits.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::encode::Encoder;
use super::encoder_thread::EncoderThread;
use super::schema::Columns;
use super::{Partition, pending_path};
use crate::sink::offload::Target;
use crate::sink::{sync_parent_dir, write_file_atomically};
use crate::{Error, Event, Result, User, Window};

/// Rows gathered in Arrow builders before they go to the Parquet writer (which cuts row groups by size).
const BATCH_ROWS: usize = 8192;

/// The encoder of the data type's record type.
pub(crate) enum Encoders {
    Event(Encoder<Event>),
    User(Encoder<User>),
}

/// One day's (or, without partitions, the window's) file being written.
struct Open {
    tmp: PathBuf,
    /// The directory the visible name goes in.
    dir: PathBuf,
    writer: EncoderThread,
    encoder: Encoders,
}

/// What the thread owns.
pub(crate) struct Files {
    /// `DIR/<dataType>`.
    pub(crate) root: PathBuf,
    pub(crate) columns: Arc<Columns>,
    pub(crate) user: bool,
    pub(crate) partition: Partition,
    pub(crate) props: WriterProperties,
    pub(crate) sync: bool,
    /// The window being written: its files, by day.
    pub(crate) window: Option<Window>,
    open: BTreeMap<Option<NaiveDate>, Open>,
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
    ) -> Files {
        let columns = Arc::new(columns);
        Files {
            root,
            columns,
            user,
            partition,
            props,
            sync,
            window: None,
            open: BTreeMap::new(),
            records: 0,
            mismatched: 0,
        }
    }

    /// Starts a window attempt.
    pub(crate) fn begin(&mut self, window: Window) -> Result<()> {
        self.discard()?;
        self.window = Some(window);
        self.records = 0;
        self.mismatched = 0;
        Ok(())
    }

    /// Adds one record.
    fn record(&mut self, line: &[u8]) -> Result<()> {
        self.records += 1;
        let records = self.records;
        let bad = |message: String| Error::Decode {
            line: records,
            offset: 0,
            message: format!("record {records} of the window cannot be written as Parquet: {message}"),
        };
        if self.user {
            let (record, day) = Encoder::<User>::decode(line).map_err(bad)?;
            let open = self.open_for(day)?;
            let Encoders::User(encoder) = &mut open.encoder else {
                return Err(mixed());
            };
            encoder.push(&record);
            self.mismatched += std::mem::take(&mut encoder.mismatched);
        } else {
            let (record, day) = Encoder::<Event>::decode(line).map_err(bad)?;
            let open = self.open_for(day)?;
            let Encoders::Event(encoder) = &mut open.encoder else {
                return Err(mixed());
            };
            encoder.push(&record);
            self.mismatched += std::mem::take(&mut encoder.mismatched);
        }
        Ok(())
    }

    /// The file of `day` (all days share one without partitions), opened on first use; full batches go to its
    /// writer.
    fn open_for(&mut self, day: Option<NaiveDate>) -> Result<&mut Open> {
        let key = match self.partition {
            Partition::Day => day,
            Partition::None => None,
        };
        if !self.open.contains_key(&key) {
            let open = self.create(key)?;
            self.open.insert(key, open);
        }
        let Some(open) = self.open.get_mut(&key) else {
            return Err(mixed());
        };
        if open.encoder.rows() >= BATCH_ROWS {
            write_batch(open)?;
        }
        Ok(open)
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
        let encoder = if self.user {
            Encoders::User(Encoder::new(self.columns.clone()))
        } else {
            Encoders::Event(Encoder::new(self.columns.clone()))
        };
        Ok(Open {
            tmp,
            dir,
            writer,
            encoder,
        })
    }

    /// Completes the window's files and gives them their visible names; `seq` numbers this commit. Returns the
    /// values that contradicted their column's type.
    pub(crate) fn commit(&mut self, seq: u64) -> Result<u64> {
        let window = self.window.take().unwrap_or(Window::ALL);
        let opens = std::mem::take(&mut self.open);
        let tmps: Vec<PathBuf> = opens.values().map(|o| o.tmp.clone()).collect();
        // On any failure, nothing of the window stays: neither its temporary files nor those already renamed.
        let mut visible = Vec::new();
        let result = self.publish(opens, &window, seq, &mut visible);
        if result.is_err() {
            for path in tmps.iter().chain(&visible) {
                let _ = std::fs::remove_file(path);
            }
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
        for (_, mut open) in opens {
            write_batch(&mut open)?;
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

    /// Forgets the attempt: its temporary files are removed.
    pub(crate) fn discard(&mut self) -> Result<()> {
        let mut first = None;
        for (_, open) in std::mem::take(&mut self.open) {
            drop(open.writer);
            if let Err(e) = std::fs::remove_file(&open.tmp)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                first.get_or_insert(Error::io(format!("cannot remove {}", open.tmp.display()), e));
            }
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
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', bytes) {
            if end > start {
                self.record(&bytes[start..end])?;
            }
            start = end + 1;
        }
        if start < bytes.len() {
            self.record(&bytes[start..])?;
        }
        Ok(())
    }
}

/// Hands the rows gathered for a file to its writer, and counts their contradicting values.
fn write_batch(open: &mut Open) -> Result<()> {
    let (rows, batch) = match &mut open.encoder {
        Encoders::Event(e) => (e.rows(), e.finish()?),
        Encoders::User(e) => (e.rows(), e.finish()?),
    };
    if rows > 0 {
        open.writer.write(batch)?;
    }
    Ok(())
}

impl Encoders {
    fn rows(&self) -> usize {
        match self {
            Encoders::Event(e) => e.rows(),
            Encoders::User(e) => e.rows(),
        }
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

fn mixed() -> Error {
    Error::io(
        "internal error: a Parquet file of another record type",
        std::io::Error::other("record type mismatch"),
    )
}
