//! Parquet output: `export --format parquet` (a [`ParquetSink`] per data type, beside the file sinks) and
//! `convert` (an NDJSON file already on disk into the same layout).
//!
//! The state file records, for a Parquet export, the number of commits in `committed_len` (what
//! [`ParquetSink::resume`] takes), and the data type's directory as its output.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use iterable_export::{DataType, FileSink, Sink, Window};
#[cfg(feature = "parquet")]
use iterable_export::{Error, ParquetCompression, ParquetOptions, ParquetSink, Partition};

use crate::args::{ExportArgs, FormatArg};
use crate::export::Target;
use crate::plan::{Opening, usage};

/// `--partition` and `--compression` of `export --format parquet` and `convert`.
#[derive(Debug, Clone, Args)]
pub struct ParquetArgs {
    /// With --format parquet: `day` writes `DIR/<dataType>/dt=YYYY-MM-DD/part-….parquet` by the UTC day of each
    /// record's time (createdAt; for users profileUpdatedAt); `none` writes `DIR/<dataType>/part-….parquet`.
    /// Example: --partition none
    #[arg(long, value_enum, default_value = "day")]
    pub partition: PartitionArg,

    /// With --format parquet: the codec of the Parquet pages. Example: --compression snappy
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: CompressionArg,
}

/// `--partition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartitionArg {
    /// One directory per UTC day, `dt=YYYY-MM-DD`.
    Day,
    /// No partition directories.
    None,
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Zstandard: smaller files.
    Zstd,
    /// Snappy: faster, larger.
    Snappy,
}

impl Default for ParquetArgs {
    fn default() -> Self {
        ParquetArgs {
            partition: PartitionArg::Day,
            compression: CompressionArg::Zstd,
        }
    }
}

impl ParquetArgs {
    #[cfg(feature = "parquet")]
    fn options(&self, sync: bool) -> ParquetOptions {
        ParquetOptions::default()
            .with_partition(match self.partition {
                PartitionArg::Day => Partition::Day,
                PartitionArg::None => Partition::None,
            })
            .with_compression(match self.compression {
                CompressionArg::Zstd => ParquetCompression::Zstd,
                CompressionArg::Snappy => ParquetCompression::Snappy,
            })
            .with_sync_on_commit(sync)
    }
}

impl FormatArg {
    /// Whether the output is Parquet.
    pub(crate) fn is_parquet(self) -> bool {
        #[cfg(feature = "parquet")]
        if self == FormatArg::Parquet {
            return true;
        }
        false
    }

    /// The extension in the state file's key: `ndjson`, `csv` or `parquet`.
    pub(crate) fn extension(self) -> &'static str {
        if self.is_parquet() {
            "parquet"
        } else {
            iterable_export::Format::from(self).extension()
        }
    }

    /// The output of a data type: `DIR/<dataType>.<ext>`, or for Parquet the directory `DIR/<dataType>`.
    pub(crate) fn output_path(self, dir: &Path, data_type: DataType) -> PathBuf {
        if self.is_parquet() {
            dir.join(data_type.to_string())
        } else {
            dir.join(format!("{data_type}.{}", self.extension()))
        }
    }

    /// Checks, without changing anything, that the output of an unfinished export (`resume`) or of a finished one
    /// (an incremental run) can be continued.
    pub(crate) fn check_continue(self, output: &Path, committed_len: u64, resume: bool) -> iterable_export::Result<()> {
        if self.is_parquet() {
            check_committed(output, committed_len)?;
            return check_dir(output);
        }
        if resume {
            FileSink::check_resume(output, committed_len)
        } else {
            FileSink::check_extend(output, committed_len)
        }
    }
}

/// Checks that no other export holds a Parquet data type directory `DIR/<dataType>`.
fn check_dir(output: &Path) -> iterable_export::Result<()> {
    let lock = output.join("_lock");
    if lock.exists() {
        drop(iterable_export::ExclusiveLock::acquire(lock)?);
    }
    Ok(())
}

/// Refuses to continue a Parquet export whose earlier files are gone: with `commits` > 0 in the state file, the
/// directory `DIR/<dataType>` must exist and hold its `_lock` file.
///
/// Every [`ParquetSink`] creates the directory and `_lock` before its first commit, and nothing removes `_lock`,
/// so a legitimate continuation always passes, even when every window so far had no records (such a window writes
/// no Parquet file, which is why the check does not ask for `.parquet` files). A directory deleted (or replaced by
/// an empty one) between runs fails it; carrying on would write `_SUCCESS` over the new windows' files alone.
fn check_committed(output: &Path, commits: u64) -> iterable_export::Result<()> {
    if commits == 0 || output.join("_lock").is_file() {
        return Ok(());
    }
    let what = if output.is_dir() {
        "no longer holds the files of"
    } else {
        "is gone, with"
    };
    Err(iterable_export::Error::Io {
        context: format!(
            "{} {what} the {commits} commits the state file records: continuing would leave an incomplete \
             export marked complete; restore the directory, or delete the state file (or its entry) to export \
             from the start again",
            output.display()
        ),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })
}

/// Checks, before the state file is written, that another export is not writing the output a new export creates.
pub(crate) fn check_create(args: &ExportArgs, opening: &Opening) -> iterable_export::Result<()> {
    match opening {
        Opening::Create { path, .. } if args.format.is_parquet() => check_dir(path),
        Opening::Create { path, .. } => FileSink::check_create(path),
        _ => Ok(()),
    }
}

/// Opens the output planned for `data_type`.
pub(crate) fn open(args: &ExportArgs, data_type: DataType, opening: Opening) -> iterable_export::Result<Target> {
    if !args.format.is_parquet() {
        return opening.open();
    }
    #[cfg(feature = "parquet")]
    {
        let dir = &args.output;
        let sink = match opening {
            Opening::Stdout => {
                return Err(usage("--format parquet writes files: give --output DIR instead of -"));
            }
            Opening::Create { sync, .. } => ParquetSink::create(dir, data_type, args.parquet.options(sync))?,
            Opening::Resume { len, .. } | Opening::Extend { len, .. } => {
                ParquetSink::resume(dir, data_type, args.parquet.options(true), len)?
            }
        };
        Ok(Target::File(Output::Parquet(sink)))
    }
    #[cfg(not(feature = "parquet"))]
    {
        let _ = data_type;
        Err(usage("this build has no Parquet support (the `parquet` feature)"))
    }
}

/// A file output: one file, or a Parquet directory.
#[derive(Debug)]
pub(crate) enum Output {
    File(FileSink),
    #[cfg(feature = "parquet")]
    Parquet(ParquetSink),
}

impl From<FileSink> for Output {
    fn from(sink: FileSink) -> Self {
        Output::File(sink)
    }
}

impl Output {
    /// What the checkpoint records: a file's committed length, or a Parquet sink's commits.
    pub(crate) fn committed_len(&self) -> u64 {
        match self {
            Output::File(sink) => sink.committed_len(),
            #[cfg(feature = "parquet")]
            Output::Parquet(sink) => sink.commits(),
        }
    }

    /// Bytes the last commit added, given [`committed_len`](Self::committed_len) before it and the bytes of the
    /// records it received (a Parquet directory counts its input).
    #[cfg_attr(not(feature = "parquet"), allow(unused_variables))]
    pub(crate) fn committed_bytes(&self, before: u64, received: u64) -> u64 {
        match self {
            Output::File(sink) => sink.committed_len() - before,
            #[cfg(feature = "parquet")]
            Output::Parquet(_) => received,
        }
    }

    /// Publishes the output: renames the file, or writes `_SUCCESS`.
    pub(crate) async fn finish(self) -> iterable_export::Result<PathBuf> {
        match self {
            Output::File(sink) => sink.finish().await,
            #[cfg(feature = "parquet")]
            Output::Parquet(sink) => {
                let mismatched = sink.mismatched();
                let dir = sink.finish().await?;
                if mismatched > 0 {
                    tracing::warn!(
                        "{}: {mismatched} values contradicted their column's type; kept with their JSON in _extra",
                        dir.display()
                    );
                }
                Ok(dir)
            }
        }
    }
}

impl Sink for Output {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.begin(window).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) => s.begin(window).await,
        }
    }
    async fn header(&mut self, header: &[u8]) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.header(header).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) => s.header(header).await,
        }
    }
    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.record(record).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) => s.record(record).await,
        }
    }
    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.commit(window, records).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) => s.commit(window, records).await,
        }
    }
    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.abort(window).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) => s.abort(window).await,
        }
    }
}

/// `convert` options.
#[cfg(feature = "parquet")]
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The data type of the records (its schema: `user` for users, any other for events). Example: --data-type
    /// emailSend
    #[arg(long = "data-type", value_parser = parse_data_type)]
    pub data_type: DataType,

    /// Output format (Parquet only). Example: --format parquet
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: ConvertFormat,

    /// The NDJSON file to convert (one record per line). Example: emailSend.ndjson
    pub input: PathBuf,

    /// Output directory: files go to `DIR/<dataType>/`, replacing what an earlier export or conversion left there
    /// once the conversion is complete (a failed one leaves it unchanged). Example: --output ./lake
    #[arg(long, short)]
    pub output: PathBuf,

    #[command(flatten)]
    pub parquet: ParquetArgs,
}

/// `convert --format`.
#[cfg(feature = "parquet")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertFormat {
    /// Apache Parquet.
    Parquet,
}

#[cfg(feature = "parquet")]
fn parse_data_type(s: &str) -> Result<DataType, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a data type Iterable exports (for example emailSend, user)"))
}

/// Runs `convert`: the file as one window, written into a hidden staging directory `DIR/.convert-<dataType>-<pid>/`
/// that replaces `DIR/<dataType>` only once the conversion is complete. A line that is not a record stops it, with
/// its line number; the staging directory is removed then, and an earlier `DIR/<dataType>` is left as it was.
#[cfg(feature = "parquet")]
pub async fn convert(args: ConvertArgs, ui: &crate::ui::Ui) -> iterable_export::Result<()> {
    let target = args.output.join(args.data_type.to_string());
    // Fails fast when an export holds the directory this conversion would replace.
    check_dir(&target)?;
    let staging = args
        .output
        .join(format!(".convert-{}-{}", args.data_type, std::process::id()));
    remove_dir_if_present(&staging)?;
    let result = match convert_into(&args, &staging).await {
        Ok(summary) => replace_dir(&staging.join(args.data_type.to_string()), &target).map(|()| summary),
        Err(err) => Err(err),
    };
    // Best effort: the error (if any) that matters is the conversion's. An old directory that could not be put
    // back (see `replace_dir`) is left where the error says.
    if !staging.join(OLD).exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    ui.line(&result?);
    Ok(())
}

/// Where [`replace_dir`] moves the old directory, inside the staging directory.
#[cfg(feature = "parquet")]
const OLD: &str = "old";

/// Replaces `target` with the complete directory `new`: the old directory is first renamed aside (hidden), so a
/// crash leaves either the old directory, or the new one, never a half-removed one under the visible name.
#[cfg(feature = "parquet")]
fn replace_dir(new: &Path, target: &Path) -> iterable_export::Result<()> {
    let lock = target.join("_lock");
    // Held while the old directory is moved: an export that started since the check above is not cut off.
    let held = if lock.exists() {
        Some(iterable_export::ExclusiveLock::acquire(&lock)?)
    } else {
        None
    };
    let aside = new.with_file_name(OLD);
    let had_old = match std::fs::rename(target, &aside) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_error(format!("cannot move {} aside", target.display()), e)),
    };
    if let Err(e) = std::fs::rename(new, target) {
        let mut context = format!("cannot rename {} to {}", new.display(), target.display());
        if had_old && std::fs::rename(&aside, target).is_err() {
            context.push_str(&format!(
                "; the earlier {} is now {}: move it back",
                target.display(),
                aside.display()
            ));
        }
        return Err(io_error(context, e));
    }
    iterable_export::sync_parent_dir(target)?;
    drop(held);
    if had_old {
        remove_dir_if_present(&aside)?;
    }
    Ok(())
}

#[cfg(feature = "parquet")]
fn remove_dir_if_present(dir: &Path) -> iterable_export::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error(format!("cannot remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

/// Converts `args.input` into `staging/<dataType>`, and returns the summary line. Each file is synced at the commit:
/// the directory replaces an earlier one only with data on disk.
#[cfg(feature = "parquet")]
async fn convert_into(args: &ConvertArgs, staging: &Path) -> iterable_export::Result<String> {
    use tokio::io::AsyncBufReadExt;

    let started = std::time::Instant::now();
    let file = tokio::fs::File::open(&args.input)
        .await
        .map_err(|e| io_error(format!("cannot open {}", args.input.display()), e))?;
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, file);
    let mut sink = ParquetSink::create(staging, args.data_type, args.parquet.options(true))?;
    let window = Window::ALL;
    sink.begin(&window).await?;
    let (mut line, mut number, mut records, mut bytes) = (Vec::new(), 0u64, 0u64, 0u64);
    // Line numbers of the blank lines skipped, to name the line of a bad record.
    let mut blank = Vec::new();
    let result: iterable_export::Result<()> = async {
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| io_error(format!("cannot read {}", args.input.display()), e))?;
            if n == 0 {
                break;
            }
            number += 1;
            bytes += n as u64;
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                blank.push(number);
                continue;
            }
            sink.record(&line).await?;
            records += 1;
        }
        sink.commit(&window, records).await
    }
    .await;
    if let Err(err) = result {
        let _ = sink.abort(&window).await;
        return Err(match err {
            Error::Decode {
                line: record, message, ..
            } => {
                // The sink counts records; lines count the blank ones too.
                let mut line = record;
                for b in &blank {
                    if *b <= line {
                        line += 1;
                    }
                }
                io_error(
                    format!(
                        "{} line {line} is not a record; nothing was written",
                        args.input.display()
                    ),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, message),
                )
            }
            other => other,
        });
    }
    let mismatched = sink.mismatched();
    sink.finish().await?;
    let dir = args.output.join(args.data_type.to_string());
    Ok(format!(
        "{records} records ({}) converted in {:.1}s -> {}{}",
        crate::ui::human_bytes(bytes),
        started.elapsed().as_secs_f64(),
        dir.display(),
        if mismatched > 0 {
            format!(" ({mismatched} values contradicted their column's type; kept in _extra)")
        } else {
            String::new()
        }
    ))
}

/// An I/O error naming the file.
#[cfg(feature = "parquet")]
fn io_error(context: String, e: std::io::Error) -> Error {
    Error::Io { context, source: e }
}
