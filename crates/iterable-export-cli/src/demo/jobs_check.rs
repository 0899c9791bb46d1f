//! The demo's export through asynchronous export jobs (`export --via jobs`), checked against the
//! data.json export of the same data type and against what the mock's file host saw.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use iterable_export::{Client, DataType, Error};
use iterable_export_mock::{JobsConfig, MockServer};

use crate::args::{ExportArgs, FormatArg};
use crate::ui::{Ui, human_bytes};

/// The data type the demo exports through jobs.
const JOBS_DATA_TYPE: DataType = DataType::EmailSend;
/// The demo's job requests (starts and file listings) per second. The client's default, and
/// Iterable's limit, is 1; the demo's mock allows twice this, so the client's limiter paces them.
const DEMO_JOB_REQUESTS_PER_SECOND: u32 = 10;
/// Files the mock cuts each day's job into, so that several are downloaded at once.
const FILES_PER_JOB: u64 = 8;
/// Files downloaded at once (`--downloads`).
const DOWNLOADS: u16 = 4;

/// The embedded mock's jobs: quick (a job runs 300 ms, a file appears every 20 ms) and limited to
/// twice the demo's job request rate. The file size is set once the data.json file's size is known.
pub(super) fn mock_jobs() -> JobsConfig {
    JobsConfig::default()
        .with_job_duration(Duration::from_millis(300))
        .with_file_interval(Duration::from_millis(20))
        .with_rate_limit(iterable_export_mock::RateLimit::new(
            2 * DEMO_JOB_REQUESTS_PER_SECOND,
            Duration::from_secs(1),
        ))
}

fn failed(context: String, message: String) -> Error {
    Error::Io {
        context,
        source: std::io::Error::other(message),
    }
}

/// Exports [`JOBS_DATA_TYPE`] for `[start, end)` through export jobs into `DIR/via-jobs/`, checks
/// that the file is byte-identical to the data.json export `DIR/<dataType>.ndjson`, that every
/// file the mock prepared was downloaded, and that no request to the file host carried the API
/// key; prints what it did.
pub(super) async fn run(
    client: &Client,
    mock: &MockServer,
    output: &Path,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    ui: &Ui,
) -> Result<(), Error> {
    let name = JOBS_DATA_TYPE.to_string();
    let reference = output.join(format!("{name}.ndjson"));
    let reference_len = std::fs::metadata(&reference)
        .map_err(|e| Error::Io {
            context: format!("cannot read {}", reference.display()),
            source: e,
        })?
        .len();
    let days = u64::try_from((end - start).num_days()).unwrap_or(1).max(1);
    let file_bytes = (reference_len / (days * FILES_PER_JOB)).max(1);
    mock.update_config(|config| config.jobs.max_file_bytes = file_bytes);
    let dir = output.join("via-jobs");
    ui.line(&format!(
        "demo: exporting {name} from {} to {} through export jobs (files of at most {}, {DOWNLOADS} downloads at \
         once, {DEMO_JOB_REQUESTS_PER_SECOND} job requests/s) into {}/",
        start.format("%Y-%m-%d"),
        end.format("%Y-%m-%d"),
        human_bytes(file_bytes),
        dir.display()
    ));
    let args = ExportArgs {
        data_types: vec![crate::args::DataTypeArg::One(JOBS_DATA_TYPE)],
        start: Some(start),
        end: Some(end),
        range: None,
        only_fields: Vec::new(),
        omit_fields: Vec::new(),
        format: FormatArg::Ndjson,
        parquet: crate::parquet::ParquetArgs::default(),
        output: dir.clone(),
        window: Duration::from_secs(86_400),
        max_window: Duration::from_secs(86_400),
        state: None,
        requests_per_minute: super::DEMO_REQUESTS_PER_MINUTE,
        lookback: Duration::from_secs(300),
        via: crate::jobs::Via::Jobs,
        downloads: DOWNLOADS,
        spool_files: 32,
        job_requests_per_second: DEMO_JOB_REQUESTS_PER_SECOND,
    };
    let mut results = crate::jobs::run(client, args, ui).await;
    let report = match results.pop() {
        Some((_, Ok(report))) if results.is_empty() => report,
        Some((_, Err(err))) => return Err(failed(format!("{name} through export jobs failed"), err.to_string())),
        _ => return Err(failed(format!("{name} through export jobs"), "no single result".into())),
    };
    let path = report
        .output
        .clone()
        .ok_or_else(|| failed(format!("{name} through export jobs"), "no output file".into()))?;

    let (a, b) = (path.clone(), reference.clone());
    tokio::task::spawn_blocking(move || same_bytes(&a, &b))
        .await
        .unwrap_or_else(|e| Err(format!("the comparison stopped: {e}")))
        .map_err(|message| {
            failed(
                format!("{name}: the export through jobs differs from data.json's"),
                message,
            )
        })?;

    let counters = mock.job_counters();
    let mut prepared = 0;
    for job in mock.jobs() {
        let expected = mock
            .expected_job(job.id)
            .map_err(|e| failed(format!("job {}", job.id), e.to_string()))?;
        prepared += expected.files.len() as u64;
    }
    if counters.complete_downloads != prepared {
        return Err(failed(
            format!("{name} through export jobs"),
            format!(
                "the mock prepared {prepared} files in {} jobs, {} were downloaded whole",
                counters.starts, counters.complete_downloads
            ),
        ));
    }
    let hits = mock.file_host_hits().len();
    if mock.file_host_received_api_key() || counters.api_key_leaks > 0 {
        return Err(failed(
            format!("{name} through export jobs"),
            format!(
                "{} of {hits} requests to the file host carried the API key",
                counters.api_key_leaks
            ),
        ));
    }
    ui.line(&format!(
        "{:<22} {:>11} records {:>10} in {:>7.1}s -> {}",
        name,
        report.records,
        human_bytes(report.bytes),
        report.duration.as_secs_f64(),
        path.display()
    ));
    ui.line(&format!(
        "demo: {name} through {} jobs: {prepared} files downloaded, {} in all, byte-identical to {}; none of the \
         {hits} requests to the file host carried the API key; {} job requests refused with 429",
        counters.starts,
        human_bytes(report.bytes),
        reference.display(),
        counters.rate_limited
    ));
    Ok(())
}

/// Whether files `a` and `b` hold the same bytes; otherwise where they first differ.
fn same_bytes(a: &Path, b: &Path) -> Result<(), String> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(|e| format!("cannot read {}: {e}", a.display()))?;
        let m = read_full(&mut fb, &mut bb).map_err(|e| format!("cannot read {}: {e}", b.display()))?;
        if let Some(i) = ba[..n.min(m)].iter().zip(&bb[..n.min(m)]).position(|(x, y)| x != y) {
            return Err(format!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                offset + i as u64
            ));
        }
        if n != m {
            return Err(format!(
                "{} and {} differ in length: one ends at byte {}",
                a.display(),
                b.display(),
                offset + n.min(m) as u64
            ));
        }
        if n == 0 {
            return Ok(());
        }
        offset += n as u64;
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_names_the_first_difference() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("writing a temporary file");
            path
        };
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut changed = big.clone();
        changed[150_000] ^= 1;
        let (a, b, c, d) = (
            write("a", &big),
            write("b", &big),
            write("c", &changed),
            write("d", &big[..199_999]),
        );
        assert_eq!(same_bytes(&a, &b), Ok(()));
        let err = same_bytes(&a, &c).expect_err("one byte differs");
        assert!(err.ends_with("differ at byte 150000"), "{err}");
        let err = same_bytes(&a, &d).expect_err("one byte shorter");
        assert!(err.ends_with("differ in length: one ends at byte 199999"), "{err}");
    }
}
