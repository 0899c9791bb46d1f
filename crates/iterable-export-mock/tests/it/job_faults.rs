//! Faults of the export jobs: failed job, running → enqueued restart, the size cap
//! (`exportTruncated`), a file cut mid-body, 500 on the files endpoint, expired URLs. Each ends
//! in exact states, names and bytes.

use std::time::Duration;

use futures::StreamExt;
use iterable_export_mock::{JobFault, JobState, MockServer};
use serde_json::json;

use crate::job_support::{
    END, S, all_files, config, download, files, ready, run_to_end, start, start_raw, state, tick, until,
};
use crate::{R, client, hold_clock};

const NDJSON: &str = "application/x-json-stream";

/// Proves: a job with `Fail { after_files: 3 }` lists 3 files (still downloadable, exact bytes)
/// and ends `failed`; the next job, without the fault, completes with every file.
#[tokio::test(start_paused = true)]
async fn failed_job_keeps_its_listed_files() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    mock.inject_job_fault(JobFault::Fail { job: 1, after_files: 3 });
    let id = start(&mock, "emailSend", NDJSON).await?;
    assert!(mock.pending_job_faults().is_empty(), "the first job took it");
    assert_eq!(run_to_end(&mock, id, 10_000).await?, JobState::Failed);
    let (listed, page) = all_files(&mock, id).await?;
    assert_eq!(page["jobState"], "failed");
    let expected = mock.expected_job(id)?;
    assert_eq!(listed.len(), 3);
    for ((name, url), want) in listed.iter().zip(&expected.files) {
        assert_eq!(name, &want.name);
        assert_eq!(download(url).await?.2, want.body);
    }
    let next = start(&mock, "emailSend", NDJSON).await?;
    assert_eq!(run_to_end(&mock, next, 30_000).await?, JobState::Completed);
    assert_eq!(all_files(&mock, next).await?.0.len(), expected.files.len());
    Ok(())
}

/// Proves: `Restart` sends a running job back to `enqueued` after 2 files for the pause (its
/// listed files stay downloadable meanwhile), then it runs again, goes on with file 3 and
/// completes with exactly the files of the window; `restarts` counts it.
#[tokio::test(start_paused = true)]
async fn restarted_job_goes_on_and_its_files_stay_valid() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    mock.inject_job_fault(JobFault::Restart {
        job: 1,
        after_files: 2,
        pause: Duration::from_secs(5),
    });
    let id = start(&mock, "emailSend", NDJSON).await?;
    until("the job runs", || state(&mock, id) == JobState::Running).await?;
    tick(200).await;
    until("the restart", || mock.job(id).is_some_and(|j| j.restarts == 1)).await?;
    let (_, page) = files(&mock, id, None).await?;
    assert_eq!(page["jobState"], "enqueued");
    let early = page["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(early.len(), 2);
    let info = mock.job(id).ok_or("job")?;
    assert_eq!((info.state, info.restarts), (JobState::Enqueued, 1));
    let expected = mock.expected_job(id)?;
    let first_url = early[0]["url"].as_str().ok_or("url")?;
    assert_eq!(download(first_url).await?.2, expected.files[0].body);
    tick(4_800).await;
    assert_eq!(mock.job(id).ok_or("job")?.state, JobState::Enqueued);
    tick(200).await;
    until("running again", || state(&mock, id) == JobState::Running).await?;
    assert_eq!(ready(&mock, id), 2);
    tick(100).await;
    until("the third file", || ready(&mock, id) == 3).await?;
    assert_eq!(run_to_end(&mock, id, 30_000).await?, JobState::Completed);
    let (listed, _) = all_files(&mock, id).await?;
    assert_eq!(listed.len(), expected.files.len());
    let mut body = Vec::new();
    for (_, url) in &listed {
        body.extend(download(url).await?.2);
    }
    assert_eq!(body, expected.concatenated());
    assert_eq!(body, crate::expected_body(&mock, "emailSend", S, END)?);
    // the URL listed before the restart still works
    assert_eq!(download(first_url).await?.2, expected.files[0].body);
    assert_eq!(mock.job(id).ok_or("job")?.restarts, 1);
    Ok(())
}

/// Proves: a job whose window exceeds its cap (`Cap`) completes with `exportTruncated: true` and
/// files holding only the start of the window (a prefix of the data.json body, at most the cap);
/// a job without the fault is whole.
#[tokio::test(start_paused = true)]
async fn a_window_over_the_cap_is_truncated() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    mock.inject_job_fault(JobFault::Cap { job: 1, bytes: 50_000 });
    let id = start(&mock, "emailSend", NDJSON).await?;
    assert_eq!(run_to_end(&mock, id, 30_000).await?, JobState::Completed);
    let (listed, page) = all_files(&mock, id).await?;
    assert_eq!(page["exportTruncated"], true);
    let expected = mock.expected_job(id)?;
    assert!(expected.truncated);
    assert_eq!(listed.len(), expected.files.len());
    let mut body = Vec::new();
    for (_, url) in &listed {
        body.extend(download(url).await?.2);
    }
    let whole = crate::expected_body(&mock, "emailSend", S, END)?;
    assert!(body.len() <= 50_000 && body.len() > 40_000, "{}", body.len());
    assert_eq!(body[..], whole[..body.len()]);
    assert!(body.ends_with(b"\n"));
    assert!(mock.job(id).ok_or("job")?.truncated);
    let whole_job = start(&mock, "emailSend", NDJSON).await?;
    assert_eq!(run_to_end(&mock, whole_job, 30_000).await?, JobState::Completed);
    assert_eq!(files(&mock, whole_job, None).await?.1["exportTruncated"], false);
    Ok(())
}

/// Proves: with `CutFile { file: 2, after_bytes: 1000 }` the first download of the second file
/// declares the whole length, sends 1000 bytes and fails; the second download is whole.
#[tokio::test(start_paused = true)]
async fn a_file_is_cut_on_its_first_download() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    mock.inject_job_fault(JobFault::CutFile {
        job: 1,
        file: 2,
        after_bytes: 1_000,
    });
    let id = start(&mock, "emailSend", NDJSON).await?;
    assert_eq!(run_to_end(&mock, id, 30_000).await?, JobState::Completed);
    let (listed, _) = all_files(&mock, id).await?;
    let expected = mock.expected_job(id)?;
    let want = &expected.files[1].body;
    let resp = client().get(&listed[1].1).send().await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.content_length(), Some(want.len() as u64));
    let mut got = Vec::new();
    let mut failed = false;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the client sees the cut");
    assert_eq!(got[..], want[..1_000]);
    assert_eq!(download(&listed[1].1).await?.2, *want);
    assert_eq!(download(&listed[0].1).await?.2, expected.files[0].body);
    until("the downloads counted", || mock.job_counters().complete_downloads == 2).await?;
    let c = mock.job_counters();
    assert_eq!((c.downloads, c.cut_downloads, c.complete_downloads), (3, 1, 2));
    let cut = mock
        .requests()
        .into_iter()
        .find(|r| r.fault.is_some())
        .ok_or("a logged cut")?;
    assert_eq!((cut.bytes_sent, cut.completed), (1_000, false));
    Ok(())
}

/// Proves: `FilesError { call: 2 }` answers the second files request with Iterable's 500
/// GenericError; the first and third are normal.
#[tokio::test(start_paused = true)]
async fn the_nth_files_request_gets_a_500() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    mock.inject_job_fault(JobFault::FilesError { job: 1, call: 2 });
    let id = start(&mock, "emailSend", NDJSON).await?;
    assert_eq!(files(&mock, id, None).await?.0, 200);
    assert_eq!(
        files(&mock, id, None).await?,
        (
            500,
            json!({"msg": "Something went wrong. Please try again later.", "code": "GenericError", "params": {}})
        )
    );
    assert_eq!(files(&mock, id, None).await?.0, 200);
    let c = mock.job_counters();
    assert_eq!((c.files_errors, c.file_listings), (1, 2));
    assert_eq!(mock.job(id).ok_or("job")?.file_listings, 3);
    Ok(())
}

/// Proves: `ExpiredUrls { listings: 1 }` makes the first listing's URLs answer 403 "Request has
/// expired"; the next listing's URLs work. With `job: 0` every job gets it and it stays queued.
#[tokio::test(start_paused = true)]
async fn expired_urls_until_listed_again() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    mock.inject_job_fault(JobFault::ExpiredUrls { job: 0, listings: 1 });
    for n in 1..=2 {
        let id = start(&mock, "emailSend", NDJSON).await?;
        assert_eq!(id, 1_000_000 + n);
        assert_eq!(run_to_end(&mock, id, 30_000).await?, JobState::Completed);
        let (_, page) = files(&mock, id, None).await?;
        let stale = page["files"][0]["url"].as_str().ok_or("url")?.to_owned();
        let (status, _, body) = download(&stale).await?;
        assert_eq!(status, 403);
        assert!(String::from_utf8(body)?.contains("<Message>Request has expired</Message>"));
        let (_, page) = files(&mock, id, None).await?;
        let fresh = page["files"][0]["url"].as_str().ok_or("url")?.to_owned();
        assert_eq!(download(&fresh).await?.2, mock.expected_job(id)?.files[0].body);
    }
    assert_eq!(
        mock.pending_job_faults(),
        [JobFault::ExpiredUrls { job: 0, listings: 1 }]
    );
    assert_eq!(mock.job_counters().expired, 2);
    Ok(())
}

/// Proves: `StartError { job: 1 }` creates the first job, which runs and is listed by
/// `GET /export/jobs`, but its start answers Iterable's 500 GenericError without the id; the
/// next start answers 200 with the second job's id.
#[tokio::test(start_paused = true)]
async fn a_start_error_creates_the_job_but_answers_500() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    mock.inject_job_fault(JobFault::StartError { job: 1 });
    let body = json!({"dataTypeName": "emailSend", "outputFormat": NDJSON, "startDateTime": S, "endDateTime": END});
    assert_eq!(
        start_raw(&mock, &body.to_string()).await?,
        (
            500,
            json!({"msg": "Something went wrong. Please try again later.", "code": "GenericError", "params": {}})
        )
    );
    let (status, _, list) = crate::get_all(&mock, "/export/jobs").await?;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&list)?;
    assert_eq!(list["jobs"][0]["id"], 1_000_001);
    assert_eq!(list["jobs"][0]["dataTypeName"], "emailSend");
    let orphan = mock.job(1_000_001).ok_or("the job the failed start created")?;
    assert!(!orphan.state.is_final(), "{:?}", orphan.state);
    assert_eq!(start(&mock, "emailSend", NDJSON).await?, 1_000_002);
    let c = mock.job_counters();
    assert_eq!((c.start_errors, c.starts), (1, 1));
    assert_eq!(mock.pending_job_faults(), []);
    Ok(())
}
