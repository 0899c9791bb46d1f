//! What the server sends for a window, computed without a server: the records tests compare a
//! client's output with, byte for byte.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::data::{self, DataType, FieldFilter, FileSplitter, Layout, RecordStream};
use crate::{JobSpec, MockConfig, MockError};

/// The lines a `data.json` request without field filters returns for a window, in the order the
/// server sends them. Each item is one NDJSON line **without** its trailing `\n`.
///
/// Made by [`expected_ndjson`] or [`MockServer::expected_ndjson`](crate::MockServer::expected_ndjson).
pub struct ExpectedRecords {
    records: RecordStream,
    /// How records are written: NDJSON lines with a filter, or CSV rows with columns.
    layout: Layout,
    total: u64,
    yielded: u64,
}

impl fmt::Debug for ExpectedRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectedRecords")
            .field("total", &self.total)
            .field("yielded", &self.yielded)
            .finish()
    }
}

impl ExpectedRecords {
    fn new(records: RecordStream, layout: Layout) -> Self {
        let total = records.total();
        ExpectedRecords {
            records,
            layout,
            total,
            yielded: 0,
        }
    }

    /// The total number of records of the window (computed without generating them).
    pub fn total(&self) -> u64 {
        self.total
    }
}

impl Iterator for ExpectedRecords {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if !self.records.advance() {
            return None;
        }
        self.yielded += 1;
        let mut line = Vec::with_capacity(512);
        self.layout.write(&self.records, &mut line);
        line.pop();
        Some(line)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.total - self.yielded).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

/// The data type named `data_type` and its records in `[start, end)` under `config`.
fn records(
    config: &MockConfig,
    data_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(DataType, RecordStream), MockError> {
    let dt: DataType = data_type.parse()?;
    Ok((dt, RecordStream::new(config.data_params(), dt, start, end)))
}

/// The records (as NDJSON lines without the trailing `\n`) that `GET /export/data.json` returns
/// for `dataTypeName=data_type` and the window `[start, end)` without `onlyFields`/`omitFields`,
/// in the order the server sends them: the response body is exactly these lines, each followed by
/// `\n`.
///
/// Only `seed`, `records_per_day` and `data_start` of `config` matter.
pub fn expected_ndjson(
    config: &MockConfig,
    data_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<ExpectedRecords, MockError> {
    let (_, records) = records(config, data_type, start, end)?;
    Ok(ExpectedRecords::new(records, Layout::Ndjson(FieldFilter::All)))
}

/// The header row (without its `\n`) that `GET /export/data.csv` sends for `data_type` without
/// `onlyFields`/`omitFields`, for a window in which every column occurs: [`DataType::fields`].
/// That is every window for every type but `user`, whose records gain custom fields on the second
/// and the third day of data; the header of any window is [`expected_csv_header_between`].
pub fn expected_csv_header(data_type: &str) -> Result<Vec<u8>, MockError> {
    let dt: DataType = data_type.parse()?;
    Ok(header_row(&dt.fields()))
}

/// The header row (without its `\n`) that `GET /export/data.csv` sends for `data_type` and the
/// window `[start, end)` without `onlyFields`/`omitFields`: the fields that records of the days up
/// to the window's last one can carry. For `user`, a window that ends on the first day of data
/// lacks the custom columns added later (`consents` from the second day, `wishlist` from the
/// third); for every other type it is [`expected_csv_header`].
///
/// Only `data_start` of `config` matters.
pub fn expected_csv_header_between(
    config: &MockConfig,
    data_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<u8>, MockError> {
    let (_, records) = records(config, data_type, start, end)?;
    Ok(header_row(&records.columns()))
}

/// `columns` as a CSV header row without its `\n`.
fn header_row(columns: &[&str]) -> Vec<u8> {
    let mut header = Vec::new();
    data::push_csv_header(&mut header, columns);
    header.pop();
    header
}

/// The records (as CSV rows without the trailing `\n`) that `GET /export/data.csv` returns for
/// `dataTypeName=data_type` and the window `[start, end)` without `onlyFields`/`omitFields`, in
/// the order the server sends them: the response body is [`expected_csv_header_between`] and then
/// these rows, each followed by `\n`. (A row may span lines: cells with line breaks are quoted.)
///
/// Only `seed`, `records_per_day` and `data_start` of `config` matter.
pub fn expected_csv(
    config: &MockConfig,
    data_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<ExpectedRecords, MockError> {
    let (_, records) = records(config, data_type, start, end)?;
    let columns = records.columns();
    Ok(ExpectedRecords::new(records, Layout::Csv(columns)))
}

/// The exact `GET /export/data.json` body for a window without field filters: the lines of
/// [`expected_ndjson`], each followed by `\n`. Builds the whole body in memory: for tests.
pub fn expected_body(
    config: &MockConfig,
    data_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<u8>, MockError> {
    let mut body = Vec::new();
    for line in expected_ndjson(config, data_type, start, end)? {
        body.extend_from_slice(&line);
        body.push(b'\n');
    }
    Ok(body)
}

/// The number of records of `data_type` in `[start, end)` (cheap: nothing is generated).
pub fn expected_count(
    config: &MockConfig,
    data_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<u64, MockError> {
    let (_, records) = records(config, data_type, start, end)?;
    Ok(records.total())
}

/// The files an export job serves, in listing order ([`expected_job`],
/// [`MockServer::expected_job`](crate::MockServer::expected_job)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpectedJob {
    /// The files, in order.
    pub files: Vec<ExpectedFile>,
    /// True when the window is bigger than the job's cap: the files hold only its first part
    /// (`exportTruncated: true`).
    pub truncated: bool,
}

/// One file of an [`ExpectedJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpectedFile {
    /// The file name the listing shows (`file-<n>.json` or `file-<n>.csv`).
    pub name: String,
    /// Records in it.
    pub records: u64,
    /// Its exact bytes (CSV: the header row, then the rows).
    pub body: Vec<u8>,
}

impl ExpectedJob {
    /// The files' bytes one after the other. For NDJSON, that is the `data.json` body of the
    /// window (with the same `onlyFields`/`omitFields`), unless the job was truncated.
    pub fn concatenated(&self) -> Vec<u8> {
        self.files.iter().flat_map(|f| f.body.iter().copied()).collect()
    }

    /// Records in all files.
    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.records).sum()
    }

    /// Bytes of all files (the job's `bytesExported` once completed).
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.body.len() as u64).sum()
    }
}

/// The files a job for `spec` serves under `config` (file size and cap from
/// [`MockConfig::jobs`]; a job under a [`JobFault::Cap`](crate::JobFault::Cap) has another cap:
/// use [`MockServer::expected_job`](crate::MockServer::expected_job)). Builds every file in
/// memory: for tests.
pub fn expected_job(config: &MockConfig, spec: &JobSpec) -> ExpectedJob {
    expected_job_with_cap(config, spec, config.jobs.job_cap_bytes)
}

pub(crate) fn expected_job_with_cap(config: &MockConfig, spec: &JobSpec, cap: u64) -> ExpectedJob {
    let (records, layout) = spec.records(config);
    let mut split = FileSplitter::new(records, layout.clone(), config.jobs.max_file_bytes.max(1), cap);
    let mut files = Vec::new();
    while let Some(piece) = split.next_file() {
        let (mut records, _) = spec.records(config);
        records.seek(piece.start);
        let mut body = Vec::with_capacity(usize::try_from(piece.bytes).unwrap_or(0));
        layout.write_header(&mut body);
        for _ in 0..piece.records {
            if records.advance() {
                layout.write(&records, &mut body);
            }
        }
        files.push(ExpectedFile {
            name: crate::jobs::file_name(files.len() as u64 + 1, spec.format),
            records: piece.records,
            body,
        });
    }
    ExpectedJob {
        files,
        truncated: split.truncated(),
    }
}

/// The records a job for `spec` exports, whole window (not cut at a cap), as lines without
/// their `\n` (NDJSON lines with the spec's field filter, or CSV rows with its columns), in the
/// order the files hold them.
pub fn expected_job_records(config: &MockConfig, spec: &JobSpec) -> ExpectedRecords {
    let (records, layout) = spec.records(config);
    ExpectedRecords::new(records, layout)
}

/// The CSV header row (without its `\n`) that every file of a CSV job for `spec` starts with;
/// `None` for NDJSON.
pub fn expected_job_header(config: &MockConfig, spec: &JobSpec) -> Option<Vec<u8>> {
    let (_, layout) = spec.records(config);
    let mut header = Vec::new();
    layout.write_header(&mut header);
    header.pop()?;
    Some(header)
}
