//! Jobs nobody would know of: a start that created its job but failed to say so (500, a
//! connection closed unanswered), an export dropped while its start was out, and cancels held to
//! the jobs limit. Against the fake of `jobs_server.rs`.

use std::time::Duration;

use iterable_export::{Client, DataType, JobOptions, RateLimit};

use crate::common::{MemSink, TestResult, day, fast_retries, hold_clock, settle, wait_for};
use crate::jobs::{daily, expected, export_one_day, iterable_time};
use crate::jobs_server::{self, Script};

#[tokio::test]
async fn a_start_that_created_its_job_but_answered_500_cancels_that_job_before_starting_again() -> TestResult {
    let script = Script {
        start_500_after_create: 1,
        ..Script::default()
    };
    let (fake, client, sink, result) = export_one_day(&script, JobOptions::default()).await?;
    let summary = result?;
    assert_eq!((summary.windows, summary.records), (1, 25));
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    let seen = fake.seen();
    // Job 100 was created by the start that answered 500: cancelled before job 101 started.
    assert_eq!(seen.start_requests, 2);
    assert_eq!(seen.deletes, [100]);
    // Noted before the start, looked up after the failure, and again after the retry.
    assert_eq!(seen.job_lists, 3);
    assert!(
        seen.downloads.iter().all(|(job, _)| *job == 101),
        "{:?}",
        seen.downloads
    );
    assert_eq!(client.job_stats().orphans_cancelled, 1);
    assert!(client.active_jobs().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_start_whose_connection_closed_unanswered_after_creating_its_job_cancels_that_job() -> TestResult {
    let script = Script {
        start_dropped_after_create: 2,
        ..Script::default()
    };
    let (fake, client, sink, result) = export_one_day(&script, JobOptions::default()).await?;
    assert_eq!(result?.records, 25);
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    let seen = fake.seen();
    assert_eq!(seen.start_requests, 3);
    assert_eq!(seen.deletes, [100, 101]);
    assert_eq!(client.job_stats().orphans_cancelled, 2);
    Ok(())
}

#[tokio::test]
async fn more_new_jobs_than_failed_starts_are_another_programs_and_none_is_cancelled() -> TestResult {
    // The failed start created job 100, and another program job 101 of the same data type:
    // which one is this start's cannot be told, so neither is cancelled.
    let script = Script {
        start_500_after_create: 1,
        foreign_job_on_failed_start: true,
        ..Script::default()
    };
    let (fake, client, sink, result) = export_one_day(&script, JobOptions::default()).await?;
    assert_eq!(result?.records, 25);
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    let seen = fake.seen();
    assert_eq!(seen.start_requests, 2);
    assert_eq!(seen.deletes, Vec::<i64>::new());
    assert!(
        seen.downloads.iter().all(|(job, _)| *job == 102),
        "{:?}",
        seen.downloads
    );
    assert_eq!(client.job_stats().orphans_cancelled, 0);
    Ok(())
}

#[tokio::test]
async fn an_export_dropped_while_its_start_was_out_cancels_the_job_that_start_created() -> TestResult {
    // The first start creates job 100 and answers only when released.
    let script = Script {
        start_held: 1,
        ..Script::default()
    };
    let fake = jobs_server::start(script).await?;
    let client = crate::jobs::client(&fake.base_url)?;
    let export = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut sink = MemSink::new();
            let request = client.export_job(DataType::EmailSend).between(day(0), day(2));
            request.export_windows(daily(), JobOptions::default(), &mut sink).await
        })
    };
    // A hang guard, not a timing assertion.
    wait_for("the first start at the fake", || fake.seen().start_requests == 1).await;
    // Dropped (as by Ctrl-C) while the answer is on its way.
    export.abort();
    assert!(export.await.is_err_and(|e| e.is_cancelled()));
    assert_eq!(fake.seen().deletes, Vec::<i64>::new());
    fake.release_starts();
    assert_eq!(client.settle_abandoned_starts().await, [100]);
    let seen = fake.seen();
    assert_eq!(seen.deletes, [100]);
    assert_eq!(seen.start_requests, 1, "nothing started after the drop");
    assert!(client.active_jobs().is_empty());
    Ok(())
}

/// Proves: cancels wait for the jobs limiter (1 request per second here, plus the limiter's 2%
/// margin): three at once go out 1.02 s apart, not together. The clock is paused and held.
#[tokio::test(start_paused = true)]
async fn cancels_are_held_to_the_jobs_limit() -> TestResult {
    let _clock = hold_clock();
    let fake = jobs_server::start(Script::default()).await?;
    let client = Client::builder()
        .api_key("k")
        .base_url(&fake.base_url)
        .jobs_rate_limit(RateLimit::new(1, Duration::from_secs(1)))
        .retry_policy(fast_retries(0))
        .build()?;
    let cancels: Vec<_> = (0..3)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.cancel_job(100 + n).await })
        })
        .collect();
    let deletes = || fake.seen().deletes.len();
    // Every request sent has arrived; nothing else can go out until the clock moves.
    let arrived = || client.stats().requests as usize == deletes();
    wait_for("the first cancel", || deletes() >= 1).await;
    settle("the cancels sent", arrived).await;
    assert_eq!(deletes(), 1);
    tokio::time::advance(Duration::from_millis(1_019)).await;
    settle("the cancels sent", arrived).await;
    assert_eq!(deletes(), 1, "a cancel went out before its slot");
    tokio::time::advance(Duration::from_millis(1)).await;
    wait_for("the second cancel", || deletes() == 2).await;
    settle("the cancels sent", arrived).await;
    assert_eq!(deletes(), 2);
    tokio::time::advance(Duration::from_millis(1_019)).await;
    settle("the cancels sent", arrived).await;
    assert_eq!(deletes(), 2);
    tokio::time::advance(Duration::from_millis(1)).await;
    wait_for("the third cancel", || deletes() == 3).await;
    for cancel in cancels {
        cancel.await??;
    }
    let mut ids = fake.seen().deletes;
    ids.sort_unstable();
    assert_eq!(ids, [100, 101, 102]);
    Ok(())
}

#[tokio::test]
async fn a_remembered_job_without_files_whose_window_is_no_longer_planned_is_cancelled() -> TestResult {
    let fake = jobs_server::start(Script::default()).await?;
    let client = crate::jobs::client(&fake.base_url)?;
    let day_0 = iterable_export::Window {
        start: day(0),
        end: day(1),
    };
    let outside = iterable_export::Window {
        start: day(5),
        end: day(6),
    };
    // Job 7 exported day 0 in one window, job 8 a day this export does not cover; this export
    // plans half days.
    let jobs = JobOptions::default()
        .with_resume(iterable_export::JobResume::new(day_0, 7, None))
        .with_resume(iterable_export::JobResume::new(outside, 8, None));
    let half_day = Duration::from_secs(12 * 3600);
    let halves = iterable_export::WindowOptions::default()
        .with_size(half_day)
        .with_max_size(half_day);
    let mut sink = MemSink::new();
    let summary = client
        .export_job(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(halves, jobs, &mut sink)
        .await?;
    assert_eq!((summary.windows, summary.records), (2, 50));
    let seen = fake.seen();
    assert_eq!(seen.deletes, [7], "only the superseded job is cancelled");
    assert_eq!(seen.starts.len(), 2);
    assert_eq!(client.job_stats().stale_cancelled, 1);
    Ok(())
}
