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

    /// Output directory: files go to `DIR/<dataType>/`, replacing what an earlier export or conversion left there.
    /// Example: --output ./lake
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

/// Runs `convert`: the file as one window; a line that is not a record stops it, with its line number, and leaves
/// nothing visible.
#[cfg(feature = "parquet")]
pub async fn convert(args: ConvertArgs, ui: &crate::ui::Ui) -> iterable_export::Result<()> {
    use tokio::io::AsyncBufReadExt;

    let started = std::time::Instant::now();
    let file = tokio::fs::File::open(&args.input)
        .await
        .map_err(|e| io_error(format!("cannot open {}", args.input.display()), e))?;
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, file);
    let mut sink = ParquetSink::create(&args.output, args.data_type, args.parquet.options(false))?;
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
    let dir = sink.finish().await?;
    ui.line(&format!(
        "{records} records ({}) converted in {:.1}s -> {}{}",
        crate::ui::human_bytes(bytes),
        started.elapsed().as_secs_f64(),
        dir.display(),
        if mismatched > 0 {
            format!(" ({mismatched} values contradicted their column's type; kept in _extra)")
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// An I/O error naming the file.
#[cfg(feature = "parquet")]
fn io_error(context: String, e: std::io::Error) -> Error {
    Error::Io { context, source: e }
}
