//! `convert`: an NDJSON file already on disk into the layout of `export --format parquet`, staged and swapped in
//! whole.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use iterable_export::{DataType, Error, ParquetSink, Sink, Window};

use super::ParquetArgs;
use super::staging::Staging;

/// `convert` options.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvertFormat {
    /// Apache Parquet.
    Parquet,
}

fn parse_data_type(s: &str) -> Result<DataType, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a data type Iterable exports (for example emailSend, user)"))
}

/// Runs `convert`: the file as one window, written into a hidden staging directory `DIR/.staging-<dataType>-<pid>/`
/// that replaces `DIR/<dataType>` only once the conversion is complete (see [`Staging`]). A line that is not a
/// record stops it, with its line number; the staging directory is removed then, and an earlier `DIR/<dataType>` is
/// left as it was.
pub async fn convert(args: ConvertArgs, ui: &crate::ui::Ui) -> iterable_export::Result<()> {
    // Fails fast when an export holds the directory this conversion would replace.
    let staging = Staging::begin(&args.output, args.data_type)?;
    let summary = convert_into(&args, staging.dir()).await?;
    staging.swap()?;
    ui.line(&summary);
    Ok(())
}

/// Converts `args.input` into `staging/<dataType>`, and returns the summary line. Each file is synced at the commit:
/// the directory replaces an earlier one only with data on disk.
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
        // Its thread ended before the staging directory is removed.
        sink.close().await;
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
fn io_error(context: String, e: std::io::Error) -> Error {
    Error::Io { context, source: e }
}
