//! Export jobs against the mock's asynchronous export API (real shapes, lowercase states, its
//! 1/s limit with 429s, files appearing while a job runs, a file host on another listener):
//! truncation, restarts, the shared limit, and CSV; exact output and no key at the file host.

use std::time::Duration;

use iterable_export::{Client, DataType, Format, JobOptions, RateLimit, Window, WindowOptions};
use iterable_export_mock::{JobFault, JobsConfig, MockConfig, MockServer};

use crate::common::{MemSink, TestResult, config, day, expected_body, fast_retries, start};

fn jobs_config(records_per_day: u64, file_bytes: u64) -> MockConfig {
    config(records_per_day).with_jobs(
        JobsConfig::default()
            .with_max_file_bytes(file_bytes)
            .with_job_duration(Duration::from_millis(30))
            .with_file_interval(Duration::from_millis(2))
            .with_rate_limit(iterable_export_mock::RateLimit::unlimited()),
    )
}

pub(crate) fn client(mock: &MockServer, jobs_per_second: u32) -> Result<Client, iterable_export::Error> {
    Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .jobs_rate_limit(RateLimit::new(jobs_per_second, Duration::from_secs(1)))
        .job_polling(
            Duration::from_millis(5),
            Duration::from_millis(20),
            Duration::from_secs(120),
        )
        .retry_policy(fast_retries(3))
        .build()
}

fn daily() -> WindowOptions {
    WindowOptions::default().with_size(Duration::from_secs(86_400))
}

/// Exports day 0 of emailSend through jobs, in daily windows.
async fn export_day_0(client: &Client) -> iterable_export::Result<(iterable_export::WindowedSummary, MemSink)> {
    let mut sink = MemSink::new();
    let summary = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(daily(), JobOptions::default(), &mut sink)
        .await?;
    Ok((summary, sink))
}

#[tokio::test]
async fn a_capped_job_is_split_and_a_restarted_job_is_followed_to_the_exact_records() -> TestResult {
    let config = jobs_config(200, 5_000);
    let mock = start(config.clone()).await?;
    // The first job hits a 12 kB cap (exportTruncated); the second (the first half) restarts
    // after two files.
    mock.inject_job_fault(JobFault::Cap { job: 1, bytes: 12_000 });
    mock.inject_job_fault(JobFault::Restart {
        job: 2,
        after_files: 2,
        pause: Duration::from_millis(20),
    });
    let client = client(&mock, 1_000)?;
    let spool = tempfile::tempdir()?;
    let mut sink = MemSink::new();
    let summary = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(daily(), JobOptions::default().with_spool_dir(spool.path()), &mut sink)
        .await?;
    let noon = day(0) + chrono::Duration::hours(12);
    let mut expected = expected_body(&config, "emailSend", day(0), noon);
    expected.extend(expected_body(&config, "emailSend", noon, day(1)));
    assert_eq!(sink.committed(), expected.as_slice());
    assert_eq!((summary.windows, summary.splits), (2, 1));
    let jobs = mock.jobs();
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().any(|job| job.truncated));
    assert_eq!(jobs.iter().map(|job| job.restarts).sum::<u32>(), 1);
    // The capped job's files may have downloaded while it ran (the exact output shows none was
    // delivered); none is left in the spool.
    assert_eq!(std::fs::read_dir(spool.path())?.count(), 0);
    assert_eq!(mock.job_counters().api_key_leaks, 0);
    assert!(!mock.file_host_received_api_key());
    Ok(())
}

#[tokio::test]
async fn the_mocks_one_request_per_second_limit_is_kept_by_the_shared_limiter() -> TestResult {
    // The mock enforces 1 start-or-files request per second (429 above it); so does the client.
    let config = config(100).with_jobs(
        JobsConfig::default()
            .with_max_file_bytes(20_000)
            .with_job_duration(Duration::from_millis(10))
            .with_file_interval(Duration::from_millis(1)),
    );
    let mock = start(config.clone()).await?;
    let client = client(&mock, 1)?;
    let mut sink = MemSink::new();
    client
        .export_job(DataType::EmailOpen)
        .between(day(0), day(2))
        .export_windows(daily(), JobOptions::default(), &mut sink)
        .await?;
    assert_eq!(
        sink.committed(),
        expected_body(&config, "emailOpen", day(0), day(2)).as_slice()
    );
    let counters = mock.job_counters();
    assert_eq!(counters.rate_limited, 0, "{counters:?}");
    assert_eq!(counters.starts, 2);
    Ok(())
}

#[tokio::test]
async fn csv_jobs_hand_each_files_header_to_the_sink_and_every_row_once() -> TestResult {
    let config = jobs_config(150, 4_000);
    let mock = start(config.clone()).await?;
    let client = client(&mock, 1_000)?;
    let window = Window {
        start: day(0),
        end: day(1),
    };
    let mut job = client
        .export_job(DataType::EmailClick)
        .between(window.start, window.end)
        .start(Format::Csv)
        .await?;
    let mut names = Vec::new();
    while let Some(file) = job.next_file().await? {
        assert!(file.url.starts_with(&mock.file_host_base_url()), "{file:?}");
        names.push(file.name);
    }
    let expected = mock.expected_job(job.id())?;
    assert_eq!(names, expected.files.iter().map(|f| f.name.clone()).collect::<Vec<_>>());
    assert!(names.len() > 2, "{names:?}");
    assert!(names.iter().all(|name| name.ends_with(".csv")));
    // Through the windowed export, into a sink that keeps CSV rows: every row once, in order.
    let mut sink = MemSink::new();
    let summary = client
        .export_job(DataType::EmailClick)
        .between(window.start, window.end)
        .export_windows(daily().with_format(Format::Csv), JobOptions::default(), &mut sink)
        .await?;
    let rows: Vec<u8> = iterable_export_mock::expected_job_records(
        &config,
        &iterable_export_mock::JobSpec::new(
            "emailClick",
            iterable_export_mock::JobFormat::Csv,
            window.start,
            window.end,
        )?,
    )
    .flat_map(|row| row.into_iter().chain([b'\n']))
    .collect();
    assert_eq!(sink.committed(), rows.as_slice());
    assert_eq!(summary.records, expected.records() as u64);
    Ok(())
}

#[tokio::test]
async fn the_job_a_start_answered_500_created_is_found_in_the_job_list_and_cancelled() -> TestResult {
    let config = jobs_config(100, 4_000);
    let mock = start(config.clone()).await?;
    mock.inject_job_fault(JobFault::StartError { job: 1 });
    let client = client(&mock, 1_000)?;
    let (summary, sink) = export_day_0(&client).await?;
    assert_eq!(
        sink.committed(),
        expected_body(&config, "emailSend", day(0), day(1)).as_slice()
    );
    assert_eq!(summary.windows, 1);
    let jobs: Vec<(i64, bool)> = mock.jobs().iter().map(|j| (j.id, j.cancel_requested)).collect();
    assert_eq!(jobs, [(1_000_001, true), (1_000_002, false)]);
    let counters = mock.job_counters();
    assert_eq!((counters.start_errors, counters.starts, counters.cancels), (1, 1, 1));
    assert!(
        mock.file_host_hits().iter().all(|hit| !hit.path.contains("/1000001/")),
        "the orphan's files were downloaded"
    );
    assert_eq!(client.job_stats().orphans_cancelled, 1);
    Ok(())
}
