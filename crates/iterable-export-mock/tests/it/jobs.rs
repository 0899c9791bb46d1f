//! The asynchronous export jobs: start, files (paging, contents, progress), the jobs list,
//! cancel, limits, URL expiry, the file host. Time-dependent tests pause tokio's clock and hold
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
use crate::{E, R, client, expected_body, get_all, hold_clock, let_run, small, t};
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

/// Proves: at most 4 jobs run at once; a fifth and sixth stay `enqueued` and start, in order,
/// when slots free.
#[tokio::test(start_paused = true)]
async fn at_most_four_jobs_run_at_once() -> R {
    let _clock = hold_clock();
    let jobs = JobsConfig::default()
        .with_rate_limit(RateLimit::unlimited())
        .with_file_interval(Duration::ZERO)
        .with_job_duration(Duration::from_secs(10));
    let mock = MockServer::start(config().with_jobs(jobs)).await?;
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = start(&mock, "emailSend", "application/x-json-stream").await?;
        ids.push(id);
        if n < 4 {
            until("a free slot taken", || state(&mock, id) == JobState::Running).await?;
        } else {
            let_run(5).await;
        }
        tick(1_000).await;
    }
    ids.push(start(&mock, "emailClick", "text/csv").await?);
    let_run(5).await;
    let states = || mock.jobs().iter().map(|j| j.state).collect::<Vec<_>>();
    use JobState::{Completed, Enqueued, Running};
    assert_eq!(states(), [Running, Running, Running, Running, Enqueued, Enqueued]);
    // the first completes at 10 s (started at 0): the fifth runs; the sixth waits for the second
    tick(5_500).await;
    let want = [Completed, Running, Running, Running, Running, Enqueued];
    until("the fifth job runs", || states() == want).await?;
    tick(1_000).await;
    let want = [Completed, Completed, Running, Running, Running, Running];
    until("the sixth job runs", || states() == want).await?;
    assert_eq!(ids, (1_000_001..=1_000_006).collect::<Vec<i64>>());
    Ok(())
}

/// Proves: `DELETE /export/{jobId}` answers 200, the job is `cancelling` then, after
/// `cancel_duration`, `cancelled` (endTime set), its slot frees; a second DELETE is a 400;
/// observations show the DELETE arrived.
#[tokio::test(start_paused = true)]
async fn delete_cancels_a_job() -> R {
    let _clock = hold_clock();
    let jobs = JobsConfig::default()
        .with_rate_limit(RateLimit::unlimited())
        .with_cancel_rate_limit(RateLimit::unlimited())
        .with_max_running(1)
        .with_job_duration(Duration::from_secs(60));
    let mock = MockServer::start(config().with_jobs(jobs)).await?;
    let first = start(&mock, "emailSend", "text/csv").await?;
    until("the first job runs", || state(&mock, first) == JobState::Running).await?;
    let second = start(&mock, "emailSend", "text/csv").await?;
    let_run(5).await;
    assert_eq!(mock.job(second).ok_or("job")?.state, JobState::Enqueued);
    let delete = |id: i64| {
        client()
            .delete(format!("{}/export/{id}", mock.base_url()))
            .header("Api-Key", mock.api_key())
            .send()
    };
    let resp = delete(first).await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.text().await?,
        r#"{"msg":"Cancelling export job 1000001","code":"Success","params":{}}"#
    );
    let info = mock.job(first).ok_or("job")?;
    assert_eq!((info.state, info.cancel_requested), (JobState::Cancelling, true));
    let (_, page) = files(&mock, first, None).await?;
    assert_eq!(page["jobState"], "cancelling");
    tick(900).await;
    assert_eq!(mock.job(first).ok_or("job")?.state, JobState::Cancelling);
    assert_eq!(mock.job(second).ok_or("job")?.state, JobState::Enqueued);
    tick(100).await;
    until("cancelled, the slot taken", || {
        state(&mock, first) == JobState::Cancelled && state(&mock, second) == JobState::Running
    })
    .await?;
    let again = delete(first).await?;
    assert_eq!(again.status().as_u16(), 400);
    assert_eq!(
        again.text().await?,
        r#"{"msg":"Export job 1000001 cannot be cancelled: it is cancelled","code":"BadParams","params":{}}"#
    );
    // an enqueued job can be cancelled too; an unknown one is a 404
    assert_eq!(delete(second).await?.status().as_u16(), 200);
    assert_eq!(delete(999).await?.status().as_u16(), 404);
    let c = mock.job_counters();
    assert_eq!((c.cancels, c.delete_requests), (2, 4));
    let deletes = mock.requests().iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(deletes, 4);
    Ok(())
}

/// Proves: start and files share 1 request per second (429 in the mock's usual form, the
/// rejected request uses no slot), cancel has its own 1 per second, the jobs list none.
#[tokio::test(start_paused = true)]
async fn start_and_files_share_one_request_per_second() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(small(10)).await?;
    let id = start(&mock, "emailSend", "application/x-json-stream").await?;
    let (status, body) = files(&mock, id, None).await?;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"msg": format!("Exceeded rate limit for endpoint: /api/export/{id}/files, project: 1 "),
            "code": "RateLimitExceeded", "params": {}})
    );
    let body = json!({"dataTypeName": "emailSend", "outputFormat": "text/csv"}).to_string();
    assert_eq!(start_raw(&mock, &body).await?.0, 429);
    for _ in 0..3 {
        assert_eq!(get_all(&mock, "/export/jobs").await?.0, 200);
    }
    let delete = || {
        client()
            .delete(format!("{}/export/{id}", mock.base_url()))
            .header("Api-Key", mock.api_key())
            .send()
    };
    assert_eq!(delete().await?.status().as_u16(), 200);
    assert_eq!(delete().await?.status().as_u16(), 429);
    advance(Duration::from_millis(999)).await;
    assert_eq!(files(&mock, id, None).await?.0, 429);
    advance(Duration::from_millis(1)).await;
    assert_eq!(files(&mock, id, None).await?.0, 200);
    assert_eq!(files(&mock, id, None).await?.0, 429);
    assert_eq!(mock.job_counters().rate_limited, 5);
    Ok(())
}

/// Proves: the key is required (401 as on data.json), bad bodies get 400 with Iterable's error
/// body and a message naming the problem, wrong methods 405, unknown jobs 404.
#[tokio::test]
async fn start_validates_its_body() -> R {
    let mock = MockServer::start(config()).await?;
    let cases = [
        (
            "{",
            "Request body is not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        ("[]", "Request body must be a JSON object"),
        (r#"{"outputFormat":"text/csv"}"#, "Missing required field: dataTypeName"),
        (
            r#"{"dataTypeName":"emailSend"}"#,
            "Missing required field: outputFormat",
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/xml"}"#,
            "Invalid outputFormat: text/xml (expected text/csv or application/x-json-stream)",
        ),
        (
            r#"{"dataTypeName":"nope","outputFormat":"text/csv"}"#,
            "Invalid dataTypeName: nope",
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","startDateTime":"yesterday"}"#,
            "Invalid startDateTime: yesterday",
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","startDateTime":"2024-01-02","endDateTime":"2024-01-01 00:00:00"}"#,
            "startDateTime must be before endDateTime",
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","onlyFields":"a","omitFields":"b"}"#,
            "Send either onlyFields or omitFields, not both",
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","onlyFields":["email"]}"#,
            r#"onlyFields must be a string, not ["email"]"#,
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","delimiter":"|"}"#,
            r#"Unsupported delimiter: "|" (this mock writes comma-separated files only)"#,
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","campaignId":"7"}"#,
            r#"campaignId must be an integer, not "7""#,
        ),
        (
            r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","startDate":"2024-01-01"}"#,
            "Unknown field: startDate",
        ),
    ];
    for (body, msg) in cases {
        let (status, v) = start_raw(&mock, body).await?;
        assert_eq!(status, 400, "{body}");
        assert_eq!(v, json!({"msg": msg, "code": "BadParams", "params": {}}), "{body}");
    }
    assert!(mock.jobs().is_empty());
    // the date forms data.json accepts; a missing start means the first day of data
    let ok = r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","startDateTime":"2024-01-01T06:00:00Z","endDateTime":"2024-01-02 00:00:00 +00:00"}"#;
    assert_eq!(start_raw(&mock, ok).await?.0, 200);
    let open = r#"{"dataTypeName":"emailSend","outputFormat":"text/csv","endDateTime":"2024-01-02"}"#;
    assert_eq!(start_raw(&mock, open).await?.0, 200);
    let jobs = mock.jobs();
    assert_eq!(
        (jobs[0].spec.start, jobs[0].spec.end),
        (t("2024-01-01 06:00:00")?, t("2024-01-02 00:00:00")?)
    );
    assert_eq!(
        (jobs[1].spec.start, jobs[1].spec.end),
        (t(S)?, t("2024-01-02 00:00:00")?)
    );
    // no key, wrong key
    let no_key = client()
        .post(format!("{}/export/start", mock.base_url()))
        .body(ok)
        .send()
        .await?;
    assert_eq!(no_key.status().as_u16(), 401);
    assert_eq!(
        no_key.text().await?,
        r#"{"msg":"Invalid API key","code":"BadApiKey","params":{"endpoint":"/api/export/start"}}"#
    );
    let (status, _, _) = get_all(&mock, "/export/start").await?;
    assert_eq!(status, 405);
    assert_eq!(get_all(&mock, "/export/1000001").await?.0, 405);
    assert_eq!(
        files(&mock, 42, None).await?,
        (
            404,
            json!({"msg": "Export job 42 not found", "code": "NotFound", "params": {}})
        )
    );
    assert_eq!(get_all(&mock, "/export/abc/files").await?.0, 404);
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
