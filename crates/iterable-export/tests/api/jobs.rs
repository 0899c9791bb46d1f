//! Export jobs against the scripted fake of `jobs_server.rs`: every fault ends in the exact
//! records, once each, and no API key at the file host.

use std::time::Duration;

use iterable_export::{
    Client, DataType, Error, ExportJobRequest, JobOptions, JobState, RateLimit, Sink, Window, WindowOptions,
    WindowedSummary,
};

use crate::common::{MemSink, TestResult, day, fast_retries, snapshot};
use crate::jobs_server::{self, Script, job_lines};

pub(crate) fn client(base_url: &str) -> Result<Client, Error> {
    Client::builder()
        .api_key("test-key-never-at-the-file-host")
        .base_url(base_url)
        .jobs_rate_limit(RateLimit::new(10_000, Duration::from_secs(1)))
        .job_polling(
            Duration::from_millis(1),
            Duration::from_millis(4),
            Duration::from_secs(120),
        )
        .retry_policy(fast_retries(3))
        .build()
}

pub(crate) fn iterable_time(days: i64) -> String {
    day(days).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The records of one job per window start, in order, each followed by `\n`.
pub(crate) fn expected(script: &Script, starts: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for start in starts {
        for line in job_lines(script, start) {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// Exports day 0 of emailSend in one daily window through a fake started with `script`.
pub(crate) async fn export_one_day(
    script: &Script,
    jobs: JobOptions,
) -> Result<
    (
        jobs_server::Fake,
        Client,
        MemSink,
        iterable_export::Result<WindowedSummary>,
    ),
    crate::common::BoxError,
> {
    let fake = jobs_server::start(script.clone()).await?;
    let client = client(&fake.base_url)?;
    let mut sink = MemSink::new();
    let result = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(daily(), jobs, &mut sink)
        .await;
    Ok((fake, client, sink, result))
}

pub(crate) fn daily() -> WindowOptions {
    WindowOptions::default().with_size(Duration::from_secs(86_400))
}

#[tokio::test]
async fn a_job_export_delivers_every_record_once_and_no_key_reaches_the_file_host() -> TestResult {
    let script = Script::default();
    let fake = jobs_server::start(script.clone()).await?;
    let client = client(&fake.base_url)?;
    let mut sink = MemSink::new();
    let summary = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(3))
        .only_fields(["id", "window"])
        .export_windows(daily(), JobOptions::default(), &mut sink)
        .await?;
    let starts: Vec<String> = (0..3).map(iterable_time).collect();
    assert_eq!(sink.committed(), expected(&script, &starts).as_slice());
    assert_eq!((summary.windows, summary.records, summary.splits), (3, 75, 0));
    let seen = fake.seen();
    assert_eq!(
        seen.starts,
        (0..3)
            .map(|d| (iterable_time(d), iterable_time(d + 1)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        seen.start_bodies[0],
        serde_json::json!({
            "dataTypeName": "emailSend",
            "outputFormat": "application/x-json-stream",
            "startDateTime": iterable_time(0),
            "endDateTime": iterable_time(1),
            "onlyFields": "id,window",
        })
    );
    // 25 records in files of 4: 7 files per job, each downloaded once.
    assert_eq!(seen.downloads.len(), 21);
    assert_eq!(seen.keys_at_file_host, 0);
    assert_eq!(seen.api_requests_without_key, 0);
    assert!(seen.deletes.is_empty());
    let events = snapshot(&sink.events());
    assert_eq!((events.commits, events.aborts, events.records), (3, 0, 75));
    let stats = client.job_stats();
    assert_eq!((stats.done, stats.files_listed, stats.files_downloaded), (3, 21, 21));
    assert_eq!((stats.enqueued, stats.running), (0, 0));
    assert!(client.active_jobs().is_empty());
    Ok(())
}

#[tokio::test]
async fn expired_urls_are_refreshed_and_cut_files_downloaded_again() -> TestResult {
    let script = Script {
        expire_files: vec![1, 6],
        cut_files: vec![2, 5],
        ..Script::default()
    };
    let (fake, client, sink, summary) = export_one_day(&script, JobOptions::default().with_downloads(3)).await?;
    let summary = summary?;
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    assert_eq!(summary.records, 25);
    let seen = fake.seen();
    // 7 files, two of them expired once and two cut once.
    assert_eq!(seen.downloads.len(), 11);
    assert_eq!(seen.keys_at_file_host, 0);
    let stats = client.job_stats();
    assert_eq!((stats.urls_refreshed, stats.downloads_retried), (2, 2));
    assert_eq!(stats.files_downloaded, 7);
    // No record of a cut file reached the sink: nothing was aborted.
    let events = snapshot(&sink.events());
    assert_eq!((events.records, events.aborts), (25, 0));
    Ok(())
}

/// How many downloads of each job's files the fake saw, by job id.
pub(crate) fn downloads_by_job(seen: &jobs_server::Seen) -> Vec<(i64, usize)> {
    let mut by_job: Vec<(i64, usize)> = Vec::new();
    for (job, _) in &seen.downloads {
        match by_job.iter_mut().find(|(j, _)| j == job) {
            Some((_, n)) => *n += 1,
            None => by_job.push((*job, 1)),
        }
    }
    by_job.sort_unstable();
    by_job
}

#[tokio::test]
async fn a_failed_job_is_started_again_and_its_early_downloads_are_discarded() -> TestResult {
    // Each job runs until its 7 files were downloaded: the failed jobs' files download while
    // they run, and are deleted undelivered when they fail.
    let script = Script {
        fail_first_jobs: 2,
        running_until_downloads: Some(usize::MAX),
        ..Script::default()
    };
    let spool = tempfile::tempdir()?;
    let jobs = JobOptions::default().with_spool_dir(spool.path());
    let (fake, client, sink, summary) = export_one_day(&script, jobs).await?;
    let summary = summary?;
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    assert_eq!((summary.records, summary.retries), (25, 2));
    let seen = fake.seen();
    assert_eq!(seen.starts.len(), 3);
    assert_eq!(downloads_by_job(&seen), [(100, 7), (101, 7), (102, 7)]);
    assert_eq!(seen.downloads_while_running, 21);
    assert_eq!(client.job_stats().files_discarded, 14);
    // Only the third job's window began: nothing of the failed jobs reached the sink.
    let events = snapshot(&sink.events());
    assert_eq!((events.begins.len(), events.commits, events.aborts), (1, 1, 0));
    assert_eq!(std::fs::read_dir(spool.path())?.count(), 0);
    Ok(())
}

#[tokio::test]
async fn a_job_that_keeps_failing_fails_the_export_naming_its_window_and_cancels_the_job_started_ahead() -> TestResult {
    let script = Script {
        fail_first_jobs: 100,
        running_until_downloads: Some(usize::MAX),
        ..Script::default()
    };
    let fake = jobs_server::start(script).await?;
    let client = client(&fake.base_url)?;
    let mut sink = MemSink::new();
    let result = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(2))
        .export_windows(
            daily(),
            JobOptions::default().with_job_retries(3).with_lookahead(1),
            &mut sink,
        )
        .await;
    match result {
        Err(Error::WindowFailed {
            data_type,
            window,
            attempts,
            source,
        }) => {
            assert_eq!(data_type, "emailSend");
            assert_eq!(
                window,
                Window {
                    start: day(0),
                    end: day(1)
                }
                .to_string()
            );
            assert_eq!(attempts, 4);
            assert!(
                matches!(*source, Error::Job { ref message, .. } if message == "the job is failed"),
                "{source:?}"
            );
        }
        other => panic!("expected WindowFailed, got {other:?}"),
    }
    assert!(sink.committed().is_empty());
    let seen = fake.seen();
    let day0 = (iterable_time(0), iterable_time(1));
    assert_eq!(seen.starts.iter().filter(|s| **s == day0).count(), 4);
    // The day-0 jobs' files downloaded while they ran, then were discarded.
    assert_eq!(downloads_by_job(&seen), [(100, 7), (102, 7), (103, 7), (104, 7)]);
    assert_eq!(client.job_stats().files_discarded, 28);
    // The job started ahead for the second day ran on meanwhile, and was cancelled at the end.
    let day1_jobs: Vec<usize> = (0..seen.starts.len())
        .filter(|i| seen.starts[*i].0 == iterable_time(1))
        .collect();
    assert_eq!(day1_jobs, [1]);
    assert_eq!(seen.deletes, [101]);
    Ok(())
}

#[tokio::test]
async fn a_truncated_job_has_its_window_split_and_its_early_downloads_are_never_delivered() -> TestResult {
    // Each job runs until its 7 files were downloaded: the truncated job's files download while
    // it runs; it then completes with exportTruncated.
    let script = Script {
        truncate_longer_than: Some(43_200),
        running_until_downloads: Some(usize::MAX),
        ..Script::default()
    };
    let spool = tempfile::tempdir()?;
    let jobs = JobOptions::default().with_spool_dir(spool.path());
    let (fake, client, sink, summary) = export_one_day(&script, jobs).await?;
    let summary = summary?;
    let noon = (day(0) + chrono::Duration::hours(12))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert_eq!(
        sink.committed(),
        expected(&script, &[iterable_time(0), noon.clone()]).as_slice()
    );
    assert_eq!((summary.windows, summary.splits, summary.records), (2, 1, 50));
    let mut seen = fake.seen();
    // The halves' jobs start at once, in either order.
    seen.starts[1..].sort();
    assert_eq!(
        seen.starts,
        [
            (iterable_time(0), iterable_time(1)),
            (iterable_time(0), noon.clone()),
            (noon, iterable_time(1))
        ]
    );
    // The truncated job's 7 files were downloaded while it ran, and deleted undelivered: its
    // window never began; the halves' windows did, once each.
    assert_eq!(downloads_by_job(&seen), [(100, 7), (101, 7), (102, 7)]);
    assert_eq!(seen.downloads_while_running, 21);
    assert_eq!(client.job_stats().files_discarded, 7);
    let events = snapshot(&sink.events());
    assert_eq!(
        (events.begins.len(), events.commits, events.aborts, events.records),
        (2, 2, 0, 50)
    );
    assert_eq!(std::fs::read_dir(spool.path())?.count(), 0);
    assert_eq!(seen.keys_at_file_host, 0);
    Ok(())
}

#[tokio::test]
async fn listing_errors_are_retried_and_states_match_in_any_case() -> TestResult {
    let script = Script {
        files_500_first: 2,
        states_before_done: vec!["Enqueued", "RUNNING", "enqueued", "running"],
        completed: "Completed",
        ..Script::default()
    };
    let (_, client, sink, summary) = export_one_day(&script, JobOptions::default()).await?;
    summary?;
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    assert_eq!(client.stats().retries, 2);
    Ok(())
}

#[tokio::test]
async fn an_unknown_job_state_is_a_clear_error() -> TestResult {
    let script = Script {
        final_state_override: Some("paused"),
        ..Script::default()
    };
    let fake = jobs_server::start(script).await?;
    let client = client(&fake.base_url)?;
    let mut job = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(1))
        .start(iterable_export::Format::Ndjson)
        .await?;
    let mut files = 0;
    let err = loop {
        match job.next_file().await {
            Ok(Some(_)) => files += 1,
            Ok(None) => panic!("the listing ended although the job never completed"),
            Err(err) => break err,
        }
    };
    assert_eq!(files, 3);
    assert_eq!(
        err.to_string(),
        "export job 100: unknown export job state \"paused\": expected enqueued, running, completed, failed, \
         cancelling or cancelled (in any case); this client may be too old for the API"
    );
    assert_eq!(job.state(), Some(JobState::Running));
    job.cancel().await?;
    assert_eq!(fake.seen().deletes, [100]);
    assert!(client.active_jobs().is_empty());
    Ok(())
}

/// A [`MemSink`] that makes each delivered job file permanent, as the CLI's sink does.
pub(crate) struct FileCheckpoints {
    pub(crate) inner: MemSink,
    pub(crate) done: Vec<(i64, String, u64)>,
}

impl Sink for FileCheckpoints {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
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
    async fn job_file_done(
        &mut self,
        window: &Window,
        job_id: i64,
        file: &str,
        records: u64,
    ) -> iterable_export::Result<()> {
        self.done.push((job_id, file.to_owned(), records));
        self.inner.commit(window, records).await
    }
}

/// The first `n` lines of day 0's records.
pub(crate) fn first_lines(script: &Script, n: usize) -> Vec<u8> {
    expected(script, &[iterable_time(0)])
        .split_inclusive(|b| *b == b'\n')
        .take(n)
        .flatten()
        .copied()
        .collect()
}

/// A first run of day 0 through a fake started with `script`, whose file 4 fails on its first
/// 4 downloads (`broken_file: Some((4, 4))`; 3 retries): it stops after files 0-3, whose 16
/// records the sink made permanent (checked here).
pub(crate) async fn first_run_stopping_after_file_3(
    script: &Script,
) -> Result<(jobs_server::Fake, ExportJobRequest, FileCheckpoints), crate::common::BoxError> {
    let fake = jobs_server::start(script.clone()).await?;
    let client = client(&fake.base_url)?;
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    let mut sink = FileCheckpoints {
        inner: MemSink::new(),
        done: Vec::new(),
    };
    let first = request
        .export_windows(daily(), JobOptions::default().with_downloads(1), &mut sink)
        .await;
    assert!(
        matches!(&first, Err(Error::WindowFailed { source, .. }) if source.status() == Some(500)),
        "{first:?}"
    );
    let names: Vec<&str> = sink.done.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["file-0000.json", "file-0001.json", "file-0002.json", "file-0003.json"]
    );
    assert_eq!(sink.inner.committed(), first_lines(script, 16).as_slice());
    Ok((fake, request, sink))
}

#[tokio::test]
async fn a_resumed_export_continues_its_job_after_the_last_file_made_permanent() -> TestResult {
    let script = Script {
        broken_file: Some((4, 4)),
        ..Script::default()
    };
    let (fake, request, mut sink) = first_run_stopping_after_file_3(&script).await?;
    let downloads_before = fake.seen().downloads.len();
    // Resumed: the same job, after its fourth file.
    let window = Window {
        start: day(0),
        end: day(1),
    };
    let resume = iterable_export::JobResume::new(window, 100, Some("file-0003.json".into()));
    let summary = request
        .export_windows(daily(), JobOptions::default().with_resume(resume), &mut sink)
        .await?;
    assert_eq!(
        sink.inner.committed(),
        expected(&script, &[iterable_time(0)]).as_slice()
    );
    assert_eq!(summary.records, 9);
    let seen = fake.seen();
    assert_eq!(seen.starts.len(), 1, "no second job");
    let again: Vec<usize> = seen.downloads[downloads_before..].iter().map(|(_, i)| *i).collect();
    assert_eq!(again, [4, 5, 6], "finished files are not downloaded again");
    assert_eq!(seen.keys_at_file_host, 0);
    Ok(())
}
