//! The asynchronous export jobs' controls: at most four running, cancel, the shared 1/s limit,
//! the start body's validation. Time-dependent tests pause tokio's clock and hold
//! it (see [`hold_clock`]): the jobs move only when a test advances it.

use std::time::Duration;

use iterable_export_mock::{JobState, JobsConfig, MockServer, RateLimit};
use serde_json::json;
use tokio::time::advance;

use crate::job_support::{S, config, files, start, start_raw, state, tick, until};
use crate::{R, client, get_all, hold_clock, let_run, small, t};
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
