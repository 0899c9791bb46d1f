//! `iterable-export demo`: a real export against the embedded mock server.

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use iterable_export::{Client, DataType, Error, RateLimit, RetryPolicy};
use iterable_export_mock::{MockConfig, MockServer};

use crate::args::{DemoArgs, ExportArgs, FormatArg, Global};
use crate::export;
use crate::ui::Ui;

mod jobs_check;
#[cfg(feature = "parquet")]
mod parquet_check;

/// The demo's mock allows this many export requests per minute (Iterable allows 4), so the demo
/// finishes in seconds while still going through the client's rate limiter.
const DEMO_REQUESTS_PER_MINUTE: u32 = 600;
const DEMO_DATA_TYPES: [DataType; 3] = [DataType::EmailSend, DataType::EmailOpen, DataType::CustomEvent];
const DEMO_DAYS: i64 = 3;

pub async fn run(args: DemoArgs, global: &Global, ui: &Ui) -> Result<(), Error> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    let start = today - TimeDelta::days(DEMO_DAYS);
    let config = MockConfig::default()
        .with_records_per_day(args.records_per_day)
        .with_data_start(start.date_naive())
        .with_rate_limit(iterable_export_mock::RateLimit::new(
            DEMO_REQUESTS_PER_MINUTE,
            Duration::from_secs(60),
        ))
        .with_jobs(jobs_check::mock_jobs());
    let mock = MockServer::start(config.clone()).await.map_err(|e| Error::Io {
        context: "cannot start the mock server".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    ui.line(&format!(
        "demo: mock Iterable server at {} ({} records per day and data type, {} requests/min allowed)",
        mock.base_url(),
        args.records_per_day,
        DEMO_REQUESTS_PER_MINUTE
    ));
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(DEMO_REQUESTS_PER_MINUTE))
        .read_timeout(global.read_timeout)
        .retry_policy(RetryPolicy::default().with_max_retries(global.max_retries))
        // The demo's jobs finish in a fraction of a second: look for their files every 100 ms
        // at first (the default, for Iterable, is every second, doubling up to 5 minutes).
        .job_polling(
            Duration::from_millis(100),
            Duration::from_millis(400),
            Duration::from_secs(600),
        )
        .build()?;

    let started = Instant::now();
    let mut failure = None;
    #[cfg_attr(not(feature = "parquet"), allow(unused_mut))]
    let mut formats = vec![FormatArg::Ndjson, FormatArg::Csv];
    #[cfg(feature = "parquet")]
    formats.push(FormatArg::Parquet);
    for format in formats {
        ui.line(&format!(
            "demo: exporting {} from {} to {} as {}{} into {}/",
            DEMO_DATA_TYPES.map(|d| d.to_string()).join(", "),
            start.format("%Y-%m-%d"),
            today.format("%Y-%m-%d"),
            format.extension(),
            if format.is_parquet() {
                " (a directory per data type, a partition per day)"
            } else {
                ""
            },
            args.output.display()
        ));
        let export_args = ExportArgs {
            data_types: DEMO_DATA_TYPES
                .iter()
                .copied()
                .map(crate::args::DataTypeArg::One)
                .collect(),
            start: Some(start),
            end: Some(today),
            range: None,
            only_fields: Vec::new(),
            omit_fields: Vec::new(),
            format,
            parquet: crate::parquet::ParquetArgs::default(),
            output: args.output.clone(),
            window: Duration::from_secs(86_400),
            max_window: Duration::from_secs(86_400),
            state: None,
            requests_per_minute: DEMO_REQUESTS_PER_MINUTE,
            lookback: Duration::from_secs(300),
            via: crate::jobs::Via::DataJson,
            downloads: 4,
            spool_files: 32,
            job_requests_per_second: 1,
        };
        let results = export::run(&client, export_args, ui).await;
        export::print_summary(ui, &client, &results, started.elapsed());
        for (name, result) in &results {
            match result {
                Ok(report) => {
                    let check = match &report.output {
                        Some(path) => {
                            let (config, data_type, path) = (config.clone(), name.clone(), path.clone());
                            tokio::task::spawn_blocking(move || {
                                verify(&config, &data_type, format, &path, (start, today))
                            })
                            .await
                            .unwrap_or_else(|e| Err(format!("the check of {name} stopped: {e}")))
                        }
                        None => Err(format!("{name}: no output file to check")),
                    };
                    if let Ok(Some(line)) = &check {
                        ui.line(&format!("demo: checked {name}: {line}"));
                    }
                    if let Err(message) = check {
                        failure = Some(Error::Io {
                            context: format!("{name}: the file does not hold exactly the records the mock served"),
                            source: std::io::Error::other(message),
                        });
                    }
                }
                Err(err) => {
                    failure = Some(Error::Io {
                        context: format!("{name} failed"),
                        source: std::io::Error::other(err.to_string()),
                    })
                }
            }
        }
    }
    if failure.is_none()
        && let Err(err) = jobs_check::run(&client, &mock, &args.output, (start, today), ui).await
    {
        failure = Some(err);
    }
    mock.shutdown().await;
    if let Some(err) = failure {
        return Err(err);
    }
    ui.line(&format!(
        "demo: done — every file holds exactly the records the mock served; see {}/",
        args.output.display()
    ));
    Ok(())
}

/// Checks the output of `data_type` in `format`: [`verify_file`], or for Parquet
/// [`parquet_check::verify`], which returns a line to print.
fn verify(
    config: &MockConfig,
    data_type: &str,
    format: FormatArg,
    path: &Path,
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Option<String>, String> {
    #[cfg(feature = "parquet")]
    if format.is_parquet() {
        return parquet_check::verify(config, data_type, path, span).map(Some);
    }
    verify_file(config, data_type, format, path, span).map(|()| None)
}

/// Checks that `path` holds exactly the records the mock served for `data_type` in `[start, end)`:
/// the same records, each as often (compared as sorted 128-bit digests, so 150 000 records take
/// 2.4 MB whatever their size), and for CSV the mock's header row first. The order is not
/// compared: a window that was split or retried may deliver its records in another order.
fn verify_file(
    config: &MockConfig,
    data_type: &str,
    format: FormatArg,
    path: &Path,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<(), String> {
    let csv = matches!(format, FormatArg::Csv);
    let mock_error = |e: iterable_export_mock::MockError| format!("{data_type}: {e}");
    let (expected_header, served) = if csv {
        (
            Some(iterable_export_mock::expected_csv_header(data_type).map_err(mock_error)?),
            iterable_export_mock::expected_csv(config, data_type, start, end).map_err(mock_error)?,
        )
    } else {
        (
            None,
            iterable_export_mock::expected_ndjson(config, data_type, start, end).map_err(mock_error)?,
        )
    };
    let mut expected: Vec<[u64; 2]> = served.map(|record| digest(&record)).collect();

    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut got = Vec::with_capacity(expected.len());
    let mut header = None;
    for_each_record(std::io::BufReader::new(file), csv, |record| {
        if csv && header.is_none() {
            header = Some(record.to_vec());
        } else {
            got.push(digest(record));
        }
    })
    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Some(expected_header) = expected_header
        && header.as_deref() != Some(expected_header.as_slice())
    {
        return Err(format!("{}: the first row is not the CSV header", path.display()));
    }
    expected.sort_unstable();
    got.sort_unstable();
    if got == expected {
        return Ok(());
    }
    let (missing, unexpected) = difference(&expected, &got);
    Err(format!(
        "{}: {} records, the mock served {}: {missing} missing, {unexpected} not served or duplicated",
        path.display(),
        got.len(),
        expected.len()
    ))
}

/// A record's digest: two differently keyed SipHash runs (std's, deterministic within the
/// process), 128 bits in all: no collision to fear among a few hundred thousand records.
fn digest(record: &[u8]) -> [u64; 2] {
    use std::hash::{Hash, Hasher};
    let mut out = [0u64; 2];
    for (key, slot) in (0u8..).zip(out.iter_mut()) {
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        record.hash(&mut hasher);
        *slot = hasher.finish();
    }
    out
}

/// How many of `expected` are missing from `got`, and how many of `got` are not in `expected`
/// (both sorted; duplicates count).
fn difference(expected: &[[u64; 2]], got: &[[u64; 2]]) -> (usize, usize) {
    let (mut i, mut j, mut missing, mut unexpected) = (0, 0, 0, 0);
    while i < expected.len() || j < got.len() {
        match (expected.get(i), got.get(j)) {
            (Some(e), Some(g)) if e == g => (i, j) = (i + 1, j + 1),
            (Some(e), Some(g)) if e < g => (i, missing) = (i + 1, missing + 1),
            (Some(_), None) => (i, missing) = (i + 1, missing + 1),
            _ => (j, unexpected) = (j + 1, unexpected + 1),
        }
    }
    (missing, unexpected)
}

/// Calls `each` with every record of `reader`, without its `\n`: a line for NDJSON; for CSV, a
/// line break inside a quoted cell does not end the record (quotes inside cells are doubled, so
/// an odd number of quotes on a line opens or closes a cell).
fn for_each_record(mut reader: impl BufRead, csv: bool, mut each: impl FnMut(&[u8])) -> std::io::Result<()> {
    let (mut line, mut record, mut quoted) = (Vec::new(), Vec::new(), false);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let terminated = line.last() == Some(&b'\n');
        if terminated {
            line.pop();
        }
        if csv && line.iter().filter(|b| **b == b'"').count() % 2 == 1 {
            quoted = !quoted;
        }
        record.extend_from_slice(&line);
        if quoted && terminated {
            record.push(b'\n');
            continue;
        }
        each(&record);
        record.clear();
    }
    if !record.is_empty() {
        each(&record);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str, csv: bool) -> Vec<String> {
        let mut out = Vec::new();
        for_each_record(text.as_bytes(), csv, |r| {
            out.push(String::from_utf8_lossy(r).into_owned())
        })
        .expect("reading from memory cannot fail");
        out
    }

    #[test]
    fn records_split_on_line_breaks_outside_quotes() {
        assert_eq!(
            records("{\"a\":1}\n{\"b\":\"x\\ny\"}\n", false),
            ["{\"a\":1}", "{\"b\":\"x\\ny\"}"]
        );
        assert_eq!(
            records("a,b\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n3,\"x\r\ny\"\n", true),
            ["a,b", "1,\"two\nlines\"", "2,\"say \"\"hi\"\"\"", "3,\"x\r\ny\""]
        );
        assert_eq!(
            records("x\n\ny", false),
            ["x", "", "y"],
            "an empty line is a record: never skipped"
        );
    }

    #[test]
    fn verify_file_accepts_exactly_the_served_records_in_any_order() {
        let config = MockConfig::default().with_records_per_day(50);
        let day = |d: u32| {
            chrono::NaiveDate::from_ymd_opt(2024, 1, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("a valid date")
                .and_utc()
        };
        let span = (day(1), day(2));
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("out");
        let write = |header: Option<Vec<u8>>, records: &[Vec<u8>]| {
            let mut text = header.map(|h| [h, b"\n".to_vec()].concat()).unwrap_or_default();
            for r in records {
                text.extend_from_slice(r);
                text.push(b'\n');
            }
            std::fs::write(&path, text).expect("writing a temporary file");
        };
        let check = |format| verify_file(&config, "emailSend", format, &path, span);
        let check_csv = |data_type: &str| verify_file(&config, data_type, FormatArg::Csv, &path, span);

        let mut lines: Vec<Vec<u8>> = iterable_export_mock::expected_ndjson(&config, "emailSend", span.0, span.1)
            .expect("a known data type")
            .collect();
        lines.reverse();
        write(None, &lines);
        assert_eq!(check(FormatArg::Ndjson), Ok(()));
        write(None, &lines[1..]);
        let err = check(FormatArg::Ndjson).expect_err("a record is missing");
        assert!(
            err.ends_with("49 records, the mock served 50: 1 missing, 0 not served or duplicated"),
            "{err}"
        );
        let mut twice = lines.clone();
        twice[0] = twice[1].clone();
        write(None, &twice);
        let err = check(FormatArg::Ndjson).expect_err("a record is duplicated");
        assert!(
            err.ends_with("50 records, the mock served 50: 1 missing, 1 not served or duplicated"),
            "{err}"
        );

        // CSV, with a data type some of whose cells hold line breaks.
        let csv_rows = |data_type: &str| -> Vec<Vec<u8>> {
            iterable_export_mock::expected_csv(&config, data_type, span.0, span.1)
                .expect("a known data type")
                .collect()
        };
        let data_type = iterable_export_mock::DataType::ALL
            .iter()
            .map(|d| d.as_str())
            .find(|d| csv_rows(d).iter().any(|r| r.contains(&b'\n')))
            .expect("some data type has rows spanning lines");
        let header = iterable_export_mock::expected_csv_header(data_type).expect("a known data type");
        let rows = csv_rows(data_type);
        write(Some(header.clone()), &rows);
        assert_eq!(check_csv(data_type), Ok(()));
        write(None, &rows);
        let err = check_csv(data_type).expect_err("no header");
        assert!(err.ends_with("the first row is not the CSV header"), "{err}");
        write(Some(header), &rows[1..]);
        let err = check_csv(data_type).expect_err("a row is missing");
        assert!(
            err.ends_with("49 records, the mock served 50: 1 missing, 0 not served or duplicated"),
            "{err}"
        );
    }

    #[test]
    fn difference_counts_missing_and_unexpected_records() {
        let (a, b, c) = ([0, 1], [0, 2], [0, 3]);
        assert_eq!(difference(&[a, b, c], &[a, b, c]), (0, 0));
        assert_eq!(difference(&[a, b, c], &[a, c]), (1, 0));
        assert_eq!(difference(&[a, c], &[a, b, b, c]), (0, 2));
        assert_eq!(difference(&[a, b], &[b, c]), (1, 1));
    }
}
