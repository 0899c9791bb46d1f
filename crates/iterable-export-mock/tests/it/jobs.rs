//! The asynchronous export jobs: start, files (paging, contents, progress), the jobs list, URL
//! expiry, the file host (limits and cancel: `jobs_control.rs`). Time-dependent tests pause tokio's clock and hold
//! it (see [`hold_clock`]): the jobs move only when a test advances it.

use std::time::Duration;

use iterable_export_mock::{
    JobFormat, JobSpec, JobState, JobsConfig, MockServer, RateLimit, expected_job, expected_job_header,
};
use serde_json::{Value, json};
use tokio::time::advance;

use crate::job_support::{
    END, S, all_files, config, download, files, ready, run_to_end, start, start_raw, state, tick, until,
};
use crate::{E, R, client, expected_body, get_all, hold_clock, t};
fn spec(format: JobFormat) -> Result<JobSpec, E> {
    Ok(JobSpec::new("emailSend", format, t(S)?, t(END)?)?)
}

/// Proves: an NDJSON job's files, paged 10 at a time with `startAfter`, are sorted by name, each
/// at most the file size with a matching `Content-Length`, and together exactly the `data.json`
/// body of the window; the names and bodies are those `expected_job` computes.
#[tokio::test(start_paused = true)]
async fn ndjson_files_concatenate_to_the_data_json_body() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    let id = start(&mock, "emailSend", "application/x-json-stream").await?;
    assert_eq!(id, 1_000_001);
    assert_eq!(run_to_end(&mock, id, 30_000).await?, JobState::Completed);
    let (listed, last_page) = all_files(&mock, id).await?;
    assert_eq!(last_page["jobState"], "completed");
    assert_eq!(last_page["exportTruncated"], false);
    assert_eq!(last_page["jobId"], id);
    let expected = expected_job(&mock.config(), &spec(JobFormat::Ndjson)?);
    assert!(
        expected.files.len() > 20,
        "{} files: paging is exercised",
        expected.files.len()
    );
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    let expected_names: Vec<&str> = expected.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, expected_names);
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert!(names.iter().all(|n| n.starts_with("file-") && n.ends_with(".json")));
    let mut concatenated = Vec::new();
    for ((name, url), want) in listed.iter().zip(&expected.files) {
        assert!(url.starts_with(&mock.file_host_base_url()), "{url}");
        let (status, len, body) = download(url).await?;
        assert_eq!(status, 200, "{name}");
        assert_eq!(len, Some(body.len() as u64));
        assert!(body.len() <= 8_000);
        assert_eq!(body, want.body, "{name}");
        concatenated.extend_from_slice(&body);
    }
    let data_json = expected_body(&mock, "emailSend", S, END)?;
    assert_eq!(concatenated.len(), data_json.len());
    assert_eq!(concatenated, data_json);
    // and the live data.json body is the same bytes
    let (_, _, live) = get_all(&mock, &crate::export_path("json", "emailSend", S, END)).await?;
    assert_eq!(live, concatenated);
    let n = expected.files.len() as u64;
    until("every download counted", || mock.job_counters().complete_downloads == n).await?;
    let info = mock.job(id).ok_or("job")?;
    assert_eq!(info.complete_downloads, expected.files.len() as u64);
    assert_eq!(info.bytes_ready, data_json.len() as u64);
    let c = mock.job_counters();
    assert_eq!(
        (c.starts, c.downloads, c.complete_downloads),
        (1, expected.files.len() as u64, expected.files.len() as u64)
    );
    assert_eq!(c.api_key_leaks, 0);
    assert!(!mock.file_host_received_api_key());
    // a completed job cannot be cancelled; the DELETE is still seen
    let late = client()
        .delete(format!("{}/export/{id}", mock.base_url()))
        .header("Api-Key", mock.api_key())
        .send()
        .await?;
    assert_eq!(late.status().as_u16(), 400);
    assert_eq!(
        late.text().await?,
        r#"{"msg":"Export job 1000001 cannot be cancelled: it is completed","code":"BadParams","params":{}}"#
    );
    let c = mock.job_counters();
    assert_eq!((c.cancels, c.delete_requests), (0, 1));
    assert_eq!(mock.job(id).ok_or("job")?.state, JobState::Completed);
    Ok(())
}

/// Proves: every file of a CSV job starts with the header row (with `onlyFields`, only those
/// columns) and its rows, without the headers, are exactly the records of the window.
#[tokio::test(start_paused = true)]
async fn csv_files_each_start_with_the_header() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config()).await?;
    let body = json!({"dataTypeName": "emailOpen", "outputFormat": "text/csv", "startDateTime": S,
        "endDateTime": "2024-01-02T12:00:00Z", "onlyFields": "email,createdAt,city", "delimiter": ","});
    let (status, v) = start_raw(&mock, &body.to_string()).await?;
    assert_eq!(status, 200, "{v}");
    let id = v["jobId"].as_i64().ok_or("jobId")?;
    assert_eq!(run_to_end(&mock, id, 30_000).await?, JobState::Completed);
    let spec = JobSpec::new("emailOpen", JobFormat::Csv, t(S)?, t("2024-01-02 12:00:00")?)?.with_only_fields(&[
        "email",
        "createdAt",
        "city",
    ]);
    let header = expected_job_header(&mock.config(), &spec).ok_or("a CSV header")?;
    assert_eq!(header, b"createdAt,email,city", "in the order records carry them");
    let expected = expected_job(&mock.config(), &spec);
    let (listed, _) = all_files(&mock, id).await?;
    assert_eq!(listed.len(), expected.files.len());
    assert!(listed.len() >= 3, "{} files", listed.len());
    let mut rows = 0;
    for ((name, url), want) in listed.iter().zip(&expected.files) {
        assert!(name.ends_with(".csv"));
        let (status, _, body) = download(url).await?;
        assert_eq!(status, 200);
        assert!(body.starts_with(b"createdAt,email,city\n"));
        assert_eq!(body, want.body);
        rows += body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() - 1;
    }
    assert_eq!(
        rows as u64,
        mock.expected_count("emailOpen", t(S)?, t("2024-01-02 12:00:00")?)?
    );
    assert_eq!(rows as u64, expected.records());
    Ok(())
}

/// Proves: files appear one per `file_interval` while the job runs (10 per page), the job is
/// `running` until every file appeared and `job_duration` passed, then `completed`; the jobs
/// list shows the state, times and bytes, and filters by state case-insensitively.
#[tokio::test(start_paused = true)]
async fn files_appear_while_the_job_runs() -> R {
    let _clock = hold_clock();
    let jobs = JobsConfig::default()
        .with_max_file_bytes(16_000)
        .with_rate_limit(RateLimit::unlimited())
        .with_file_interval(Duration::from_secs(1))
        .with_job_duration(Duration::from_secs(30));
    let mock = MockServer::start(config().with_jobs(jobs).with_now(t("2024-06-01 12:00:00")?)).await?;
    let id = start(&mock, "emailSend", "application/x-json-stream").await?;
    let total = expected_job(&mock.config(), &spec(JobFormat::Ndjson)?).files.len();
    assert!(total > 12 && total < 30, "{total}");
    until("the job runs", || state(&mock, id) == JobState::Running).await?;
    let (_, page) = files(&mock, id, None).await?;
    assert_eq!(page["jobState"], "running");
    assert_eq!(page["files"], json!([]));
    tick(1_000).await;
    until("the first file", || ready(&mock, id) == 1).await?;
    let (_, page) = files(&mock, id, None).await?;
    assert_eq!(page["files"].as_array().map(Vec::len), Some(1));
    tick(11_000).await;
    until("12 files", || ready(&mock, id) == 12).await?;
    let (_, page) = files(&mock, id, None).await?;
    assert_eq!(
        (page["jobState"].as_str(), page["files"].as_array().map(Vec::len)),
        (Some("running"), Some(10))
    );
    let tenth = page["files"][9]["file"].as_str().ok_or("name")?.to_owned();
    let (_, rest) = files(&mock, id, Some(&tenth)).await?;
    assert_eq!(rest["files"].as_array().map(Vec::len), Some(2));
    let (_, list) = get_all(&mock, "/export/jobs?jobState=Running")
        .await
        .map(|(s, _, b)| (s, b))?;
    let list: Value = serde_json::from_slice(&list)?;
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["jobs"][0]["jobState"], "running");
    assert_eq!(list["jobs"][0]["scheduledStartTime"], "2024-06-01 12:00:00 +00:00");
    assert_eq!(list["jobs"][0]["endTime"], Value::Null);
    // every file appeared at `total` s; the job completes at 30 s
    tick(((total - 12) as u64) * 1_000).await;
    until("every file", || ready(&mock, id) == total).await?;
    assert_eq!(mock.job(id).ok_or("job")?.state, JobState::Running);
    tick((30 - total as u64) * 1_000 - 100).await;
    assert_eq!(mock.job(id).ok_or("job")?.state, JobState::Running);
    tick(100).await;
    until("completed", || state(&mock, id) == JobState::Completed).await?;
    let (status, _, list) = get_all(&mock, "/export/jobs").await?;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_slice(&list)?;
    let bytes = expected_body(&mock, "emailSend", S, END)?.len() as u64;
    assert_eq!(
        list,
        json!({"jobs": [{"id": id, "dataTypeName": "emailSend", "jobState": "completed",
            "scheduledStartTime": "2024-06-01 12:00:00 +00:00", "endTime": "2024-06-01 12:00:30 +00:00",
            "bytesExported": bytes}]})
    );
    let (_, _, none) = get_all(&mock, "/export/jobs?jobState=enqueued").await?;
    assert_eq!(serde_json::from_slice::<Value>(&none)?, json!({"jobs": []}));
    let (status, _, bad) = get_all(&mock, "/export/jobs?jobState=done").await?;
    assert_eq!(status, 400);
    assert_eq!(
        String::from_utf8(bad)?,
        r#"{"msg":"Invalid jobState: done","code":"BadParams","params":{}}"#
    );
    Ok(())
}

/// Proves: a URL expires after `url_expiry` (403, S3-style XML "Request has expired"), listing
/// the page again gives a fresh URL that works; a tampered signature is refused; a request
/// that carries the key is counted as a leak, one that does not is not.
#[tokio::test(start_paused = true)]
async fn urls_expire_and_the_file_host_watches_for_the_key() -> R {
    let _clock = hold_clock();
    let jobs = JobsConfig::default()
        .with_rate_limit(RateLimit::unlimited())
        .with_file_interval(Duration::ZERO)
        .with_job_duration(Duration::ZERO)
        .with_url_expiry(Duration::from_secs(600));
    let mock = MockServer::start(config().with_jobs(jobs)).await?;
    let id = start(&mock, "emailSend", "application/x-json-stream").await?;
    until("completed", || state(&mock, id) == JobState::Completed).await?;
    let (_, page) = files(&mock, id, None).await?;
    assert_eq!(page["jobState"], "completed");
    let url = page["files"][0]["url"].as_str().ok_or("url")?.to_owned();
    let expected = mock.expected_job(id)?;
    assert_eq!(download(&url).await?.2, expected.files[0].body);
    advance(Duration::from_millis(599_999)).await;
    assert_eq!(download(&url).await?.0, 200);
    advance(Duration::from_millis(1)).await;
    let (status, _, body) = download(&url).await?;
    assert_eq!(status, 403);
    let body = String::from_utf8(body)?;
    assert!(body.starts_with("<?xml"), "{body}");
    assert!(
        body.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"),
        "{body}"
    );
    let (_, page) = files(&mock, id, None).await?;
    let fresh = page["files"][0]["url"].as_str().ok_or("url")?.to_owned();
    assert_ne!(fresh, url);
    assert_eq!(
        download(&fresh).await?,
        (
            200,
            Some(expected.files[0].body.len() as u64),
            expected.files[0].body.clone()
        )
    );
    // a signature that does not match
    let tampered = fresh.replace("Expires=", "Expires=9");
    let (status, _, body) = download(&tampered).await?;
    assert_eq!(status, 403);
    assert!(String::from_utf8(body)?.contains("<Code>SignatureDoesNotMatch</Code>"));
    assert_eq!(mock.job_counters().api_key_leaks, 0);
    // the key in a header, or in the query, is a leak
    let leak = client().get(&fresh).header("Api-Key", mock.api_key()).send().await?;
    assert_eq!(leak.status().as_u16(), 200);
    let _ = client()
        .get(format!("{fresh}&api_key={}", mock.api_key()))
        .send()
        .await?;
    let c = mock.job_counters();
    assert_eq!((c.api_key_leaks, c.expired, c.rejected_downloads), (2, 1, 1));
    assert!(mock.file_host_received_api_key());
    let hits = mock.file_host_hits();
    assert_eq!(hits.len(), 7);
    assert_eq!(
        hits.iter()
            .map(|h| (h.status, h.api_key_header, h.api_key_anywhere))
            .collect::<Vec<_>>(),
        [
            (200, false, false),
            (200, false, false),
            (403, false, false),
            (200, false, false),
            (403, false, false),
            (200, true, true),
            (200, false, true)
        ]
    );
    Ok(())
}
