//! Export jobs against the fake of `jobs_server.rs`: limits and time — how many jobs run at once,
//! job slots when an export fails or starts a window again, polling backoff on a held clock, the
//! give-up bound, downloads going on during a slow delivery, spool files removed on every path.
//! Nothing waits on the real clock but hang guards.

use std::time::Duration;

use iterable_export::{Client, DataType, Error, JobOptions, JobState, RateLimit};

use crate::common::{MemSink, TestResult, day};
use crate::jobs::{daily, expected, iterable_time};
use crate::jobs_server::{self, Script};

/// A client with fast polling and `slots` job slots.
fn with_job_slots(base_url: &str, slots: usize) -> Result<Client, Error> {
    Client::builder()
        .api_key("k")
        .base_url(base_url)
        .jobs_rate_limit(RateLimit::new(10_000, Duration::from_secs(1)))
        .job_polling(
            Duration::from_millis(1),
            Duration::from_millis(4),
            Duration::from_secs(120),
        )
        .max_running_jobs(slots)
        .build()
}

#[tokio::test]
async fn no_more_jobs_run_at_once_than_the_client_allows() -> TestResult {
    let script = Script::default();
    let fake = jobs_server::start(script.clone()).await?;
    let client = with_job_slots(&fake.base_url, 2)?;
    let (mut first, mut second) = (MemSink::new(), MemSink::new());
    // Two exports at once, each starting 2 jobs ahead: 6 jobs would run at once without the bound.
    let options = || JobOptions::default().with_lookahead(2);
    let sends = client.export_job(DataType::EmailSend).between(day(0), day(4));
    let opens = client.export_job(DataType::EmailOpen).between(day(0), day(4));
    let (a, b) = tokio::join!(
        sends.export_windows(daily(), options(), &mut first),
        opens.export_windows(daily(), options(), &mut second),
    );
    assert_eq!((a?.records, b?.records), (100, 100));
    let starts: Vec<String> = (0..4).map(iterable_time).collect();
    assert_eq!(first.committed(), expected(&script, &starts).as_slice());
    assert_eq!(second.committed(), expected(&script, &starts).as_slice());
    let seen = fake.seen();
    assert_eq!(seen.starts.len(), 8);
    assert_eq!(seen.max_active, 2);
    Ok(())
}

#[tokio::test]
async fn a_job_that_never_completes_is_given_up_with_a_clear_error() -> TestResult {
    // Files from the first listing on: every listing moves on until all 7 are listed, so the
    // 60 ms bound is checked only afterwards, however slow the machine.
    let script = Script {
        states_before_done: vec!["enqueued"; 10_000],
        files_from_listing: 1,
        ..Script::default()
    };
    let fake = jobs_server::start(script).await?;
    let client = Client::builder()
        .api_key("k")
        .base_url(&fake.base_url)
        .jobs_rate_limit(RateLimit::new(10_000, Duration::from_secs(1)))
        .job_polling(
            Duration::from_millis(1),
            Duration::from_millis(2),
            Duration::from_millis(60),
        )
        .build()?;
    let mut job = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(1))
        .start(iterable_export::Format::Ndjson)
        .await?;
    // Its files are listed while it runs; then the listing gives up on it.
    let mut files = 0;
    let result = loop {
        match job.next_file().await {
            Ok(Some(_)) => files += 1,
            other => break other,
        }
    };
    assert_eq!(files, 7);
    match result {
        Err(Error::Job { job_id, message }) => {
            assert_eq!(job_id, 100);
            assert_eq!(
                message,
                "still enqueued 60 ms after it was started or resumed; cancel it, or run again later to resume it"
            );
        }
        other => panic!("expected Error::Job, got {other:?}"),
    }
    assert_eq!(job.state(), Some(JobState::Enqueued));
    Ok(())
}

/// Proves: a job without files is listed again after 1 s, then 2, 4, … doubling up to 300 s,
/// and not before. The clock is paused and held: it moves only when the test says so.
#[tokio::test(start_paused = true)]
async fn a_job_without_files_is_polled_after_1_s_doubling_up_to_300_s() -> TestResult {
    let _clock = crate::common::hold_clock();
    let script = Script {
        states_before_done: vec!["enqueued"; 11],
        files_from_listing: 12,
        ..Script::default()
    };
    let fake = jobs_server::start(script).await?;
    let client = Client::builder()
        .api_key("k")
        .base_url(&fake.base_url)
        .jobs_rate_limit(RateLimit::new(10_000, Duration::from_secs(1)))
        .build()?;
    let job = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(1))
        .start(iterable_export::Format::Ndjson)
        .await?;
    let task = tokio::spawn(async move {
        let mut job = job;
        let mut files = 0;
        while job.next_file().await?.is_some() {
            files += 1;
        }
        Ok::<_, Error>(files)
    });
    let listings = || fake.seen().listings;
    crate::common::wait_for("the first listing", || listings() == 1).await;
    // Move the clock in 10 ms steps; whenever the client sends a listing, let it arrive (in real
    // time, the clock standing still), so the fake records its time on the held clock.
    let t0 = tokio::time::Instant::now();
    while listings() < 12 {
        assert!(t0.elapsed() < Duration::from_secs(1_200), "the listings stopped");
        tokio::time::advance(Duration::from_millis(10)).await;
        for _ in 0..8 {
            tokio::task::yield_now().await;
        }
        // Requests: the jobs noted before the start, the start, and every listing.
        let sent = client.stats().requests as usize - 2;
        if sent > listings() {
            crate::common::wait_for("the listing to arrive", || listings() >= sent).await;
        }
    }
    // The completed job's pages follow without a timer: wait for them before reading the times.
    crate::common::wait_for("the listing to end", || task.is_finished()).await;
    let at = fake.seen().listed_at;
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300];
    assert_eq!(gaps.len(), expected.len() + 3, "{gaps:?}");
    for (gap, secs) in gaps.iter().zip(expected) {
        // Never early; late only by the clock's steps while the response was on its way.
        let delay = Duration::from_secs(secs);
        assert!(*gap >= delay && *gap < delay + Duration::from_secs(1), "{gaps:?}");
    }
    // Then the pages of the completed job's files, one after another without waiting.
    assert!(
        gaps[expected.len()..].iter().all(|gap| *gap < Duration::from_secs(1)),
        "{gaps:?}"
    );
    assert_eq!(task.await??, 7);
    Ok(())
}

#[tokio::test]
async fn a_failed_export_drops_the_jobs_still_waiting_for_a_slot_and_cancels_the_started_ones() -> TestResult {
    let script = Script {
        fail_first_jobs: 100,
        ..Script::default()
    };
    let fake = jobs_server::start(script).await?;
    let client = with_job_slots(&fake.base_url, 2)?;
    let mut sink = MemSink::new();
    let request = client.export_job(DataType::EmailSend).between(day(0), day(3));
    let options = JobOptions::default().with_lookahead(2).with_job_retries(0);
    let export = request.export_windows(daily(), options, &mut sink);
    // A hang guard, not a timing assertion: waiting for a slot the failed export's own jobs hold
    // would never end.
    let result = tokio::time::timeout(Duration::from_secs(30), export).await?;
    assert!(
        matches!(&result, Err(Error::WindowFailed { attempts: 1, .. })),
        "{result:?}"
    );
    let seen = fake.seen();
    // The first window's job failed; the second window's job, started ahead with the other
    // slot, was cancelled; the third window never had a free slot and was never started.
    assert_eq!(seen.starts.len(), 2);
    assert_eq!(seen.starts[1].0, iterable_time(1));
    assert_eq!(seen.deletes, [101]);
    assert!(client.active_jobs().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_window_started_again_gets_the_only_slot_before_the_windows_after_it() -> TestResult {
    let script = Script {
        fail_first_jobs: 1,
        ..Script::default()
    };
    let fake = jobs_server::start(script.clone()).await?;
    let client = with_job_slots(&fake.base_url, 1)?;
    let mut sink = MemSink::new();
    let request = client.export_job(DataType::EmailSend).between(day(0), day(2));
    let export = request.export_windows(daily(), JobOptions::default().with_lookahead(1), &mut sink);
    // A hang guard, not a timing assertion.
    let summary = tokio::time::timeout(Duration::from_secs(30), export).await??;
    let starts: Vec<String> = (0..2).map(iterable_time).collect();
    assert_eq!(sink.committed(), expected(&script, &starts).as_slice());
    assert_eq!((summary.windows, summary.retries), (2, 1));
    // The second day's job is started ahead only with a free slot: never while the first day
    // holds the only one, so nothing is started ahead only to be cancelled.
    let seen = fake.seen();
    let days: Vec<&str> = seen.starts.iter().map(|(start, _)| &start[..10]).collect();
    assert_eq!(days, ["2024-01-01", "2024-01-01", "2024-01-02"]);
    assert!(seen.deletes.is_empty());
    Ok(())
}

/// A sink whose first record waits until the fake saw `want` downloads: a slow sink, during
/// which the downloads must go on (if they did not, it would wait for ever).
struct SlowSink {
    inner: MemSink,
    fake: std::sync::Arc<jobs_server::Fake>,
    want: usize,
    /// Downloads the fake had seen when the first record went on.
    saw: Option<usize>,
}

impl iterable_export::Sink for SlowSink {
    async fn begin(&mut self, window: &iterable_export::Window) -> iterable_export::Result<()> {
        self.inner.begin(window).await
    }
    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        if self.saw.is_none() {
            self.fake.downloads_reached(self.want).await;
            self.saw = Some(self.fake.seen().downloads.len());
        }
        self.inner.record(record).await
    }
    async fn commit(&mut self, window: &iterable_export::Window, records: u64) -> iterable_export::Result<()> {
        self.inner.commit(window, records).await
    }
    async fn abort(&mut self, window: &iterable_export::Window) -> iterable_export::Result<()> {
        self.inner.abort(window).await
    }
}

#[tokio::test]
async fn downloads_go_on_while_a_file_is_handed_to_a_slow_sink() -> TestResult {
    let script = Script::default();
    let fake = std::sync::Arc::new(jobs_server::start(script.clone()).await?);
    let client = crate::jobs::client(&fake.base_url)?;
    let mut sink = SlowSink {
        inner: MemSink::new(),
        fake: fake.clone(),
        want: 3,
        saw: None,
    };
    // Two downloads at once: while file 0 is delivered, the next files download.
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    // Room for 4 spool files: file 0 being delivered, one waiting, two downloading.
    let options = JobOptions::default().with_downloads(2).with_spool_files(4);
    let export = request.export_windows(daily(), options, &mut sink);
    // A hang guard, not a timing assertion: stalled downloads would keep the sink waiting.
    tokio::time::timeout(Duration::from_secs(60), export)
        .await
        .map_err(|_| "the downloads stalled while the sink was busy")??;
    // At least 3 (file 0 is being delivered, so files 1 and 2 started), at most 4 (one
    // complete file waits while two more download).
    let saw = sink.saw.unwrap_or_default();
    assert!((3..=4).contains(&saw), "{saw} downloads while the sink was busy");
    assert_eq!(
        sink.inner.committed(),
        expected(&script, &[iterable_time(0)]).as_slice()
    );
    assert_eq!(fake.seen().downloads.len(), 7);
    Ok(())
}

/// A sink whose first record never completes.
struct StuckSink;

impl iterable_export::Sink for StuckSink {
    async fn begin(&mut self, _: &iterable_export::Window) -> iterable_export::Result<()> {
        Ok(())
    }
    async fn record(&mut self, _: &[u8]) -> iterable_export::Result<()> {
        std::future::pending().await
    }
    async fn commit(&mut self, _: &iterable_export::Window, _: u64) -> iterable_export::Result<()> {
        Ok(())
    }
    async fn abort(&mut self, _: &iterable_export::Window) -> iterable_export::Result<()> {
        Ok(())
    }
}

fn spooled(dir: &std::path::Path) -> std::io::Result<usize> {
    Ok(std::fs::read_dir(dir)?.count())
}

#[tokio::test]
async fn spool_files_are_removed_when_the_export_fails_or_is_dropped_mid_delivery() -> TestResult {
    // File 4 always answers 500: the export fails after files 0-3 were spooled and delivered.
    let script = Script {
        broken_file: Some((4, usize::MAX)),
        ..Script::default()
    };
    let fake = jobs_server::start(script).await?;
    let client = crate::jobs::client(&fake.base_url)?;
    let spool = tempfile::tempdir()?;
    let jobs = || JobOptions::default().with_downloads(2).with_spool_dir(spool.path());
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    let failed = request.export_windows(daily(), jobs(), &mut MemSink::new()).await;
    assert!(matches!(&failed, Err(Error::WindowFailed { .. })), "{failed:?}");
    assert_eq!(spooled(spool.path())?, 0);

    // Dropped (as by Ctrl-C) while the sink is stuck on file 0 and later files wait on disk.
    let fake = jobs_server::start(Script::default()).await?;
    let client = crate::jobs::client(&fake.base_url)?;
    let watched = client.clone();
    let (dir, options) = (spool.path().to_owned(), jobs());
    let export = tokio::spawn(async move {
        let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
        request.export_windows(daily(), options, &mut StuckSink).await
    });
    // Files 0 and 1 complete: both stay spooled, since file 0's delivery never ends (a hang
    // guard, not a timing assertion).
    crate::common::wait_for("two files downloaded", || watched.job_stats().files_downloaded >= 2).await;
    assert!(spooled(&dir)? >= 2, "files were spooled while the sink was stuck");
    export.abort();
    assert!(export.await.is_err_and(|e| e.is_cancelled()));
    assert_eq!(spooled(&dir)?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_job_slot_on_a_multi_threaded_runtime_the_windows_run_in_order() -> TestResult {
    let script = Script::default();
    let fake = jobs_server::start(script.clone()).await?;
    let client = with_job_slots(&fake.base_url, 1)?;
    // On a worker thread (a spawned task), as an application's exports usually run.
    let export = tokio::spawn(async move {
        let mut sink = MemSink::new();
        let request = client.export_job(DataType::EmailSend).between(day(0), day(4));
        let result = request.export_windows(daily(), JobOptions::default(), &mut sink).await;
        result.map(|_| sink)
    });
    let sink = tokio::time::timeout(Duration::from_secs(20), export)
        .await
        .map_err(|_| "the export hung: a later window's start held the only job slot")???;
    let starts: Vec<String> = (0..4).map(iterable_time).collect();
    assert_eq!(sink.committed(), expected(&script, &starts).as_slice());
    assert_eq!(fake.seen().max_active, 1);
    Ok(())
}
