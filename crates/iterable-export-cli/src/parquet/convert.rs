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

/// The longest line `convert` reads, without its line break: the longest record an export reads (the library's
/// [`DEFAULT_MAX_LINE_LENGTH`](iterable_export::DEFAULT_MAX_LINE_LENGTH), 16 MiB). It bounds the memory a line takes.
const MAX_LINE: usize = iterable_export::DEFAULT_MAX_LINE_LENGTH;

/// Converts `args.input` into `staging/<dataType>`, and returns the summary line. Each file is synced at the commit:
/// the directory replaces an earlier one only with data on disk.
async fn convert_into(args: &ConvertArgs, staging: &Path) -> iterable_export::Result<String> {
    let started = std::time::Instant::now();
    let mut reader = open_input(&args.input).await?;
    let mut sink = ParquetSink::create(staging, args.data_type, args.parquet.options(true))?;
    let window = Window::ALL;
    sink.begin(&window).await?;
    let (mut line, mut number, mut records, mut bytes, mut blank) = (Vec::new(), 0u64, 0u64, 0u64, 0u64);
    let result: iterable_export::Result<()> = async {
        loop {
            let n = read_line(&mut reader, &mut line, MAX_LINE)
                .await
                .map_err(|e| read_error(&args.input, number + 1, e))?;
            if n == 0 {
                break;
            }
            number += 1;
            bytes += n as u64;
            if is_blank(&line) {
                blank += 1;
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
                // The sink counts records; lines count the blank ones too: the file is read again up to that
                // record (only on this error, so that no list of blank lines grows with the file).
                let at = match line_of_record(&args.input, record).await {
                    Some(line) => format!("line {line}"),
                    None => format!("record {record}"),
                };
                io_error(
                    format!("{} {at} is not a record; nothing was written", args.input.display()),
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
        "{records} records ({}) converted in {:.1}s -> {}{}{}",
        crate::ui::human_bytes(bytes),
        started.elapsed().as_secs_f64(),
        dir.display(),
        if blank > 0 {
            format!(" ({blank} blank line{} skipped)", if blank == 1 { "" } else { "s" })
        } else {
            String::new()
        },
        if mismatched > 0 {
            format!(" ({mismatched} values contradicted their column's type; kept in _extra)")
        } else {
            String::new()
        }
    ))
}

/// The input file, buffered.
async fn open_input(input: &Path) -> iterable_export::Result<tokio::io::BufReader<tokio::fs::File>> {
    let file = tokio::fs::File::open(input)
        .await
        .map_err(|e| io_error(format!("cannot open {}", input.display()), e))?;
    Ok(tokio::io::BufReader::with_capacity(256 * 1024, file))
}

/// Why a line could not be read.
#[derive(Debug)]
enum ReadError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The line is longer than the maximum (which it holds); it was not read whole.
    TooLong(usize),
}

/// The error for line `number` of `input` that could not be read.
fn read_error(input: &Path, number: u64, err: ReadError) -> Error {
    match err {
        ReadError::Io(e) => io_error(format!("cannot read {}", input.display()), e),
        ReadError::TooLong(max) => io_error(
            format!(
                "{} line {number} is longer than {max} bytes{}, the longest record an export reads; nothing \
                 was written",
                input.display(),
                if max > 0 && max % (1 << 20) == 0 {
                    format!(" ({} MiB)", max >> 20)
                } else {
                    String::new()
                }
            ),
            std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"),
        ),
    }
}

/// Reads the next line into `line`, without its line break (`"\n"`, `"\r\n"`, or none at the end of the file), and
/// returns the bytes read with the line break (0 at the end of the file). A line longer than `max` bytes is
/// [`ReadError::TooLong`], having read at most `max + 2` bytes of it.
async fn read_line<R>(reader: &mut R, line: &mut Vec<u8>, max: usize) -> Result<usize, ReadError>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};

    line.clear();
    // A line of `max` bytes and its "\r\n".
    let limit = max.saturating_add(2);
    let n = reader
        .take(limit as u64)
        .read_until(b'\n', line)
        .await
        .map_err(ReadError::Io)?;
    let ended = line.last() == Some(&b'\n');
    if ended {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > max || (n == limit && !ended) {
        return Err(ReadError::TooLong(max));
    }
    Ok(n)
}

/// Whether a line holds no record (nothing but white space).
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The line number of record `record` (1-based; blank lines are not records) of `input`, read again; `None` when
/// the file no longer reads as it did.
async fn line_of_record(input: &Path, record: u64) -> Option<u64> {
    let mut reader = open_input(input).await.ok()?;
    let (mut line, mut number, mut records) = (Vec::new(), 0u64, 0u64);
    loop {
        if read_line(&mut reader, &mut line, MAX_LINE).await.ok()? == 0 {
            return None;
        }
        number += 1;
        if !is_blank(&line) {
            records += 1;
            if records == record {
                return Some(number);
            }
        }
    }
}

/// An I/O error naming the file.
fn io_error(context: String, e: std::io::Error) -> Error {
    Error::Io { context, source: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `input` as `read_line` reads it with `max`, through a buffer of `capacity` bytes (so that a
    /// line break falls at any boundary), and the bytes left unread after the last one.
    async fn lines(input: &[u8], max: usize, capacity: usize) -> (Vec<Result<(usize, String), usize>>, usize) {
        let mut rest = input;
        let mut out = Vec::new();
        // What the reader buffered beyond what it handed out is unread too.
        let mut buffered = 0;
        {
            let mut reader = tokio::io::BufReader::with_capacity(capacity, &mut rest);
            let mut line = Vec::new();
            loop {
                match read_line(&mut reader, &mut line, max).await {
                    Ok(0) => break,
                    Ok(n) => out.push(Ok((n, String::from_utf8(line.clone()).expect("UTF-8")))),
                    Err(ReadError::TooLong(max)) => {
                        out.push(Err(max));
                        buffered = reader.buffer().len();
                        break;
                    }
                    Err(ReadError::Io(e)) => panic!("{e}"),
                }
            }
        }
        (out, rest.len() + buffered)
    }

    #[tokio::test]
    async fn read_line_reads_lines_of_up_to_the_maximum_and_stops_at_a_longer_one() {
        for capacity in [1, 2, 3, 7, 64] {
            let (read, _) = lines(b"12345\nab\r\n\n12345\r\n \t\nxyz", 5, capacity).await;
            assert_eq!(
                read,
                [
                    Ok((6, "12345".to_owned())),
                    Ok((4, "ab".to_owned())),
                    Ok((1, String::new())),
                    Ok((7, "12345".to_owned())),
                    Ok((3, " \t".to_owned())),
                    Ok((3, "xyz".to_owned())),
                ],
                "capacity {capacity}"
            );
            // One byte over, with either line break or none at the end.
            for input in [&b"ok\n123456\nnever\n"[..], b"ok\n123456\r\nnever\n", b"ok\n123456"] {
                let (read, _) = lines(input, 5, capacity).await;
                assert_eq!(
                    read,
                    [Ok((3, "ok".to_owned())), Err(5)],
                    "{input:?}, capacity {capacity}"
                );
            }
            // A long line is not read whole: at most max + 2 bytes of it (7 of the 1000 here).
            let mut long = b"ok\n".to_vec();
            long.extend(std::iter::repeat_n(b'a', 1000));
            let (read, unread) = lines(&long, 5, capacity).await;
            assert_eq!(read, [Ok((3, "ok".to_owned())), Err(5)], "capacity {capacity}");
            assert_eq!(unread, 1000 - 7, "capacity {capacity}");
        }
    }
}
