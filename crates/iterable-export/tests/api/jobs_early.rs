//! A window's files download while its job still runs, into a bounded spool, and reach the sink
//! only once the job completed (in name order): observed with the fake's counters, whose jobs
//! stay `running` until their files were downloaded, so a client that waited for completion
//! would never see one complete (each export runs under a hang guard, not a timing bound).

use std::time::Duration;

use iterable_export::{DataType, JobOptions, Sink, Window, WindowOptions};
use iterable_export_mock::JobsConfig;

use crate::common::{MemSink, TestResult, config, day, snapshot, start};
use crate::jobs::{client, daily, downloads_by_job, expected, iterable_time};
use crate::jobs_server::{self, Fake, Script};

/// A [`MemSink`] that notes, when a window begins, how many downloads the fake had seen.
struct NotingSink<'a> {
    inner: MemSink,
    fake: &'a Fake,
    downloads_at_begin: Vec<usize>,
}

impl Sink for NotingSink<'_> {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.downloads_at_begin.push(self.fake.seen().downloads.len());
        self.inner.begin(window).await
    }
    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.inner.record(record).await
    }
    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        self.inner.commit(window, records).await
    }
    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.inner.abort(window).await
    }
}

#[tokio::test]
async fn files_download_while_the_job_runs_and_reach_the_sink_once_it_completed() -> TestResult {
    let script = Script {
        running_until_downloads: Some(usize::MAX),
        ..Script::default()
    };
    let fake = jobs_server::start(script.clone()).await?;
    let client = client(&fake.base_url)?;
    let spool = tempfile::tempdir()?;
    let mut sink = NotingSink {
        inner: MemSink::new(),
        fake: &fake,
        downloads_at_begin: Vec::new(),
    };
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    let export = request.export_windows(daily(), JobOptions::default().with_spool_dir(spool.path()), &mut sink);
    let summary = tokio::time::timeout(Duration::from_secs(60), export)
        .await
        .map_err(|_| "the job never completed: its files were not downloaded while it ran")??;
    assert_eq!(
        sink.inner.committed(),
        expected(&script, &[iterable_time(0)]).as_slice()
    );
    assert_eq!((summary.windows, summary.records), (1, 25));
    let seen = fake.seen();
    // All 7 files downloaded once, each while the job ran; the window began after all of them.
    assert_eq!(downloads_by_job(&seen), [(100, 7)]);
    assert_eq!(seen.downloads_while_running, 7);
    assert_eq!(sink.downloads_at_begin, [7]);
    assert_eq!(seen.keys_at_file_host, 0);
    let stats = client.job_stats();
    assert_eq!((stats.files_downloaded, stats.files_discarded), (7, 0));
    let events = snapshot(&sink.inner.events());
    assert_eq!((events.begins.len(), events.commits, events.aborts), (1, 1, 0));
    assert_eq!(std::fs::read_dir(spool.path())?.count(), 0);
    Ok(())
}

#[tokio::test]
async fn while_the_job_runs_at_most_spool_files_files_are_downloaded() -> TestResult {
    // The job completes once 3 of its 7 files were downloaded; a spool of 3 files holds the
    // fourth back until then.
    let script = Script {
        running_until_downloads: Some(3),
        ..Script::default()
    };
    let fake = jobs_server::start(script.clone()).await?;
    let client = client(&fake.base_url)?;
    let mut sink = MemSink::new();
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    let options = JobOptions::default().with_downloads(2).with_spool_files(3);
    let export = request.export_windows(daily(), options, &mut sink);
    tokio::time::timeout(Duration::from_secs(60), export)
        .await
        .map_err(|_| "the export hung")??;
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    let seen = fake.seen();
    assert_eq!(seen.downloads_while_running, 3);
    assert_eq!(downloads_by_job(&seen), [(100, 7)]);
    Ok(())
}

#[tokio::test]
async fn a_spool_of_one_file_delivers_pages_out_of_name_order_exactly() -> TestResult {
    // Pages list their files in reverse name order: a later file may take the only spool file
    // the next file to deliver needs; it gives it up and is downloaded again.
    let script = Script {
        reverse_pages: true,
        ..Script::default()
    };
    let fake = jobs_server::start(script.clone()).await?;
    let client = client(&fake.base_url)?;
    let mut sink = MemSink::new();
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    let options = JobOptions::default().with_downloads(3).with_spool_files(1);
    let export = request.export_windows(daily(), options, &mut sink);
    tokio::time::timeout(Duration::from_secs(60), export)
        .await
        .map_err(|_| "the export hung: the next file waited for room a later file held")??;
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    let events = snapshot(&sink.events());
    assert_eq!((events.records, events.commits, events.aborts), (25, 1, 0));
    assert_eq!(fake.seen().keys_at_file_host, 0);
    Ok(())
}

#[tokio::test]
async fn a_window_through_a_job_downloaded_while_it_ran_is_byte_identical_to_its_data_json_export() -> TestResult {
    // The mock's job stays running until each of its files was downloaded once.
    let config = config(300).with_jobs(
        JobsConfig::default()
            .with_max_file_bytes(6_000)
            .with_job_duration(Duration::from_millis(10))
            .with_file_interval(Duration::from_millis(1))
            .with_running_until_downloaded(true)
            .with_rate_limit(iterable_export_mock::RateLimit::unlimited()),
    );
    let mock = start(config).await?;
    let client = crate::jobs_mock::client(&mock, 1_000)?;
    let window = WindowOptions::default().with_size(Duration::from_secs(86_400));
    let mut streamed = MemSink::new();
    client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(window, &mut streamed)
        .await?;
    let mut via_job = MemSink::new();
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    let export = request.export_windows(window, JobOptions::default(), &mut via_job);
    tokio::time::timeout(Duration::from_secs(60), export)
        .await
        .map_err(|_| "the job never completed: its files were not downloaded while it ran")??;
    assert!(!streamed.committed().is_empty());
    assert_eq!(via_job.committed(), streamed.committed());
    let jobs = mock.jobs();
    assert_eq!(jobs.len(), 1);
    let files = jobs[0].files.len() as u64;
    assert!(files > 3, "{files} files");
    assert_eq!(
        (jobs[0].complete_downloads, jobs[0].downloads_while_running),
        (files, files)
    );
    assert!(!mock.file_host_received_api_key());
    assert_eq!(mock.job_counters().api_key_leaks, 0);
    Ok(())
}
