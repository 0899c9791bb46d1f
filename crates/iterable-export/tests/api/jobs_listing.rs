//! Export jobs whose files listing misbehaves (pages out of name order, a page repeating the
//! `startAfter` file, a job that reports `exportTruncated` only when resumed), and a resumed run
//! planning other windows, and a job given up: every record still reaches the sink exactly once,
//! or the export stops with a clear error, and no job is left behind.

use std::time::Duration;

use iterable_export::{DataType, Error, JobOptions, JobResume, Window, WindowOptions};

use crate::common::{MemSink, TestResult, day};
use crate::jobs::{
    client, daily, expected, export_one_day, first_lines, first_run_stopping_after_file_3, iterable_time,
};
use crate::jobs_server::{self, Script};

/// Exports day 0 through a fake started with `script`; the export must end within 30 s.
async fn one_day(script: &Script) -> Result<(jobs_server::Fake, MemSink), crate::common::BoxError> {
    let fake = jobs_server::start(script.clone()).await?;
    let client = client(&fake.base_url)?;
    let mut sink = MemSink::new();
    let request = client.export_job(DataType::EmailSend).between(day(0), day(1));
    let export = request.export_windows(daily(), JobOptions::default(), &mut sink);
    tokio::time::timeout(Duration::from_secs(30), export)
        .await
        .map_err(|_| "the export did not end: the listing looped")??;
    Ok((fake, sink))
}

#[tokio::test]
async fn pages_out_of_name_order_deliver_each_file_once() -> TestResult {
    // Pages [2,1,0], then after file-0000 (the page's last) [3,2,1], ...: files listed again.
    let script = Script {
        reverse_pages: true,
        ..Script::default()
    };
    let (fake, sink) = one_day(&script).await?;
    assert_eq!(
        String::from_utf8_lossy(sink.committed()),
        String::from_utf8_lossy(&expected(&script, &[iterable_time(0)]))
    );
    let mut downloaded: Vec<usize> = fake.seen().downloads.iter().map(|(_, i)| *i).collect();
    downloaded.sort_unstable();
    assert_eq!(downloaded, [0, 1, 2, 3, 4, 5, 6], "each of the 7 files downloaded once");
    Ok(())
}

#[tokio::test]
async fn a_page_starting_with_the_start_after_file_neither_repeats_it_nor_loops() -> TestResult {
    let script = Script {
        inclusive_start_after: true,
        ..Script::default()
    };
    let (fake, sink) = one_day(&script).await?;
    assert_eq!(
        String::from_utf8_lossy(sink.committed()),
        String::from_utf8_lossy(&expected(&script, &[iterable_time(0)]))
    );
    assert_eq!(fake.seen().downloads.len(), 7);
    assert_eq!(fake.seen().keys_at_file_host, 0);
    Ok(())
}

#[tokio::test]
async fn a_resumed_job_that_reports_truncated_stops_instead_of_splitting_its_delivered_window() -> TestResult {
    // First run: file 4 fails 4 times (3 retries), files 0-3 are permanent; the job used 5
    // listings. From the 6th (the resumed run's) it reports exportTruncated.
    let script = Script {
        broken_file: Some((4, 4)),
        truncated_from_listing: Some(6),
        ..Script::default()
    };
    let (fake, request, mut sink) = first_run_stopping_after_file_3(&script).await?;
    assert_eq!(fake.seen().listings, 5);
    let first_16 = first_lines(&script, 16);
    let window = Window {
        start: day(0),
        end: day(1),
    };
    let resume = JobResume::new(window, 100, Some("file-0003.json".into()));
    let resumed = request
        .export_windows(daily(), JobOptions::default().with_resume(resume), &mut sink)
        .await;
    let Err(Error::WindowFailed { source, .. }) = &resumed else {
        panic!("expected the window to fail, got {resumed:?}");
    };
    assert!(
        matches!(source.as_ref(), Error::Job { job_id: 100, message } if message.contains("exportTruncated")
            && message.contains("file-0003.json")),
        "{source}"
    );
    // Nothing delivered twice, no job started for halves.
    assert_eq!(sink.inner.committed(), first_16.as_slice());
    assert_eq!(fake.seen().starts.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_resumed_job_keeps_its_window_when_the_run_plans_other_windows() -> TestResult {
    let script = Script {
        broken_file: Some((4, 4)),
        ..Script::default()
    };
    let (fake, request, mut sink) = first_run_stopping_after_file_3(&script).await?;
    let window = Window {
        start: day(0),
        end: day(1),
    };
    let resume = || JobOptions::default().with_resume(JobResume::new(window, 100, Some("file-0003.json".into())));
    let half_day = Duration::from_secs(12 * 3600);
    let halves = WindowOptions::default().with_size(half_day).with_max_size(half_day);
    // An export covering only the second half of that window cannot continue the job.
    let part = request
        .client()
        .export_job(DataType::EmailSend)
        .between(day(0) + half_day, day(1))
        .export_windows(halves, resume(), &mut sink)
        .await;
    assert!(
        matches!(&part, Err(Error::InvalidRequest(m)) if m.contains("only part of that window")),
        "{part:?}"
    );
    // Half-day windows over two days: the first day runs as the resumed job's window, the
    // second in halves.
    let request = request.client().export_job(DataType::EmailSend).between(day(0), day(2));
    let summary = request.export_windows(halves, resume(), &mut sink).await?;
    let half = day(1) + half_day;
    let starts = [
        iterable_time(0),
        iterable_time(1),
        half.format("%Y-%m-%d %H:%M:%S").to_string(),
    ];
    assert_eq!(
        String::from_utf8_lossy(sink.inner.committed()),
        String::from_utf8_lossy(&expected(&script, &starts))
    );
    assert_eq!((summary.windows, summary.records), (3, 9 + 25 + 25));
    let seen = fake.seen();
    assert_eq!(
        seen.starts,
        [
            (iterable_time(0), iterable_time(1)),
            (iterable_time(1), starts[2].clone()),
            (starts[2].clone(), iterable_time(2)),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_job_given_up_because_its_listing_kept_failing_is_cancelled_before_the_next_one() -> TestResult {
    // 4 listings answer 500: the first listing of job 100 fails after its 3 retries.
    let script = Script {
        files_500_first: 4,
        ..Script::default()
    };
    let (fake, sink) = one_day(&script).await?;
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    let seen = fake.seen();
    assert_eq!(seen.starts.len(), 2);
    assert_eq!(seen.deletes, [100], "the job given up is cancelled");
    Ok(())
}

#[tokio::test]
async fn a_start_refused_with_a_4xx_is_a_clear_error_at_once_and_a_429_is_waited_out() -> TestResult {
    let script = Script {
        start_refused: Some((
            "400 Bad Request",
            r#"{"code":"BadParams","msg":"Invalid field(s) in onlyFields: nope"}"#,
        )),
        ..Script::default()
    };
    let (fake, _, sink, result) = export_one_day(&script, JobOptions::default()).await?;
    let Err(err @ Error::WindowFailed { source, .. }) = &result else {
        panic!("expected the window to fail, got {result:?}");
    };
    assert_eq!(source.status(), Some(400));
    assert!(
        err.to_string().contains("Invalid field(s) in onlyFields: nope"),
        "{err}"
    );
    assert_eq!(fake.seen().start_requests, 1, "a 400 is not retried");
    assert!(sink.committed().is_empty());

    let script = Script {
        start_429_first: 2,
        ..Script::default()
    };
    let (fake, sink) = one_day(&script).await?;
    assert_eq!(sink.committed(), expected(&script, &[iterable_time(0)]).as_slice());
    assert_eq!((fake.seen().start_requests, fake.seen().starts.len()), (3, 1));
    Ok(())
}

#[tokio::test]
async fn a_listing_that_ignores_start_after_is_a_clear_error_not_an_endless_listing() -> TestResult {
    let script = Script {
        ignore_start_after: true,
        ..Script::default()
    };
    let (_, client, sink, result) = export_one_day(&script, JobOptions::default()).await?;
    let Err(Error::WindowFailed { source, .. }) = &result else {
        panic!("expected the window to fail, got {result:?}");
    };
    assert_eq!(
        source.to_string(),
        "export job 100: listing its files after file-0002.json returned file-0000.json again and nothing after \
         file-0002.json: the API did not page with startAfter, so the rest of its files cannot be listed"
    );
    assert!(sink.committed().is_empty());
    // The first page's 3 files started downloading while the job ran; they were discarded.
    assert_eq!(client.job_stats().files_discarded, 3);
    Ok(())
}
