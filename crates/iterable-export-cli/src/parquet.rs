//! Parquet output: `export --format parquet` (a [`ParquetSink`] per data type, beside the file sinks) and
//! `convert` (an NDJSON file already on disk into the same layout).
//!
//! The state file records, for a Parquet export, the number of commits in `committed_len` (what
//! [`ParquetSink::resume`] takes), and the data type's directory as its output. Without a state file, an export
//! is written in a staging directory and replaces the earlier one when complete, as `convert` does (`staging.rs`).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use iterable_export::{DataType, FileSink, Sink, Window};
#[cfg(feature = "parquet")]
use iterable_export::{ParquetCompression, ParquetOptions, ParquetSink, Partition};

use crate::args::{ExportArgs, FormatArg};
use crate::export::Target;
use crate::plan::{Opening, usage};

#[cfg(feature = "parquet")]
mod convert;
#[cfg(feature = "parquet")]
mod staging;

#[cfg(feature = "parquet")]
pub use self::convert::{ConvertArgs, convert};
#[cfg(feature = "parquet")]
use self::staging::Staging;

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
    /// (an incremental run) can be continued. For a Parquet directory missing because a run was killed while
    /// swapping a staged one in, that one is first put in place, as every run writing the directory does.
    pub(crate) fn check_continue(self, output: &Path, committed_len: u64, resume: bool) -> iterable_export::Result<()> {
        if self.is_parquet() {
            #[cfg(feature = "parquet")]
            staging::recover(output)?;
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
/// directory `DIR/<dataType>` must exist, and every file its first `commits` commits made (which its `_committed`
/// lists, see [`ParquetSink::check_resume`]). Carrying on would write `_SUCCESS` over an export with a hole.
fn check_committed(output: &Path, commits: u64) -> iterable_export::Result<()> {
    if commits == 0 {
        return Ok(());
    }
    #[cfg(feature = "parquet")]
    if output.is_dir() {
        return ParquetSink::check_resume(output, commits).map_err(|err| match err {
            iterable_export::Error::Io { context, source } if source.kind() == std::io::ErrorKind::NotFound => {
                iterable_export::Error::Io {
                    context: format!("{context} (to start over: delete the state file, or its entry)"),
                    source,
                }
            }
            other => other,
        });
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
        // With a state file, a directory a killed swap left staged is put in place first: it is complete, not a
        // dead run's staging to remove (without one, `Staging::begin` does it).
        let recover = || staging::recover(&dir.join(data_type.to_string()));
        let sink = match opening {
            Opening::Stdout => {
                return Err(usage("--format parquet writes files: give --output DIR instead of -"));
            }
            Opening::Create { .. } if args.state.is_none() => {
                // Nothing to resume from: staged, and swapped in when complete (synced, as `convert`).
                let staging = Staging::begin(dir, data_type)?;
                let sink = ParquetSink::create(staging.dir(), data_type, args.parquet.options(true))?;
                return Ok(Target::File(Output::Staged(sink, staging)));
            }
            Opening::Create { sync, .. } => {
                recover()?;
                ParquetSink::create(dir, data_type, args.parquet.options(sync))?
            }
            Opening::Resume { len, .. } | Opening::Extend { len, .. } => {
                recover()?;
                ParquetSink::resume(dir, data_type, args.parquet.options(true), len)?
            }
        };
        // The sink holds `DIR/<dataType>/_lock`: a staging directory of the data type is a dead run's.
        staging::remove_stale(dir, data_type)?;
        Ok(Target::File(Output::Parquet(sink)))
    }
    #[cfg(not(feature = "parquet"))]
    {
        let _ = data_type;
        Err(usage("this build has no Parquet support (the `parquet` feature)"))
    }
}

/// A file output: one file, or a Parquet directory (written in place, or staged).
#[derive(Debug)]
pub(crate) enum Output {
    File(FileSink),
    #[cfg(feature = "parquet")]
    Parquet(ParquetSink),
    /// Written in a staging directory that replaces `DIR/<dataType>` when [`finish`](Output::finish)ed. (The sink
    /// is dropped before the staging.)
    #[cfg(feature = "parquet")]
    Staged(ParquetSink, Staging),
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
            Output::Parquet(sink) | Output::Staged(sink, _) => sink.commits(),
        }
    }

    /// Bytes the last commit added, given [`committed_len`](Self::committed_len) before it and the bytes of the
    /// records it received (a Parquet directory counts its input).
    #[cfg_attr(not(feature = "parquet"), allow(unused_variables))]
    pub(crate) fn committed_bytes(&self, before: u64, received: u64) -> u64 {
        match self {
            Output::File(sink) => sink.committed_len() - before,
            #[cfg(feature = "parquet")]
            Output::Parquet(_) | Output::Staged(..) => received,
        }
    }

    /// Publishes the output: renames the file, or writes `_SUCCESS` (and swaps a staged directory in).
    pub(crate) async fn finish(self) -> iterable_export::Result<PathBuf> {
        match self {
            Output::File(sink) => sink.finish().await,
            #[cfg(feature = "parquet")]
            Output::Parquet(sink) => finish_parquet(sink, None).await,
            #[cfg(feature = "parquet")]
            Output::Staged(sink, staging) => finish_parquet(sink, Some(staging)).await,
        }
    }

    /// Ends an output whose export failed: a staged directory is removed (once its writer has stopped), and the
    /// earlier `DIR/<dataType>` stays as it was; other outputs keep what they committed.
    pub(crate) async fn abandon(self) {
        #[cfg(feature = "parquet")]
        if let Output::Staged(sink, staging) = self {
            sink.close().await;
            drop(staging);
        }
    }
}

/// Writes `_SUCCESS`, swaps a staged directory in, and warns of values kept in `_extra`.
#[cfg(feature = "parquet")]
async fn finish_parquet(sink: ParquetSink, staging: Option<Staging>) -> iterable_export::Result<PathBuf> {
    let mismatched = sink.mismatched();
    let mut dir = sink.finish().await?;
    if let Some(staging) = staging {
        dir = staging.swap()?;
    }
    if mismatched > 0 {
        tracing::warn!(
            "{}: {mismatched} values contradicted their column's type; kept with their JSON in _extra",
            dir.display()
        );
    }
    Ok(dir)
}

impl Sink for Output {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.begin(window).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) | Output::Staged(s, _) => s.begin(window).await,
        }
    }
    async fn header(&mut self, header: &[u8]) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.header(header).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) | Output::Staged(s, _) => s.header(header).await,
        }
    }
    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.record(record).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) | Output::Staged(s, _) => s.record(record).await,
        }
    }
    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.commit(window, records).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) | Output::Staged(s, _) => s.commit(window, records).await,
        }
    }
    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Output::File(s) => s.abort(window).await,
            #[cfg(feature = "parquet")]
            Output::Parquet(s) | Output::Staged(s, _) => s.abort(window).await,
        }
    }
}
