//! Helpers of the export-job tests: a small configuration, the endpoints' requests, and moving
//! a held paused clock until a job ends.

use std::time::Duration;

use iterable_export_mock::{JobState, JobsConfig, MockConfig, MockServer, RateLimit};
use serde_json::{Value, json};
use tokio::time::advance;

use crate::{E, client, enc, get_all, let_run, small};

pub const S: &str = "2024-01-01 00:00:00";
pub const END: &str = "2024-01-04 00:00:00";

/// 200 records a day, files of at most 8 000 bytes, no limits, a file every 100 ms, 1 s jobs.
pub fn config() -> MockConfig {
    small(200).with_jobs(
        JobsConfig::default()
            .with_max_file_bytes(8_000)
            .with_rate_limit(RateLimit::unlimited())
            .with_cancel_rate_limit(RateLimit::unlimited())
            .with_file_interval(Duration::from_millis(100))
            .with_job_duration(Duration::from_secs(1)),
    )
}

/// `POST /export/start` with `body` (sent as is); (status, parsed JSON body).
pub async fn start_raw(mock: &MockServer, body: &str) -> Result<(u16, Value), E> {
    let resp = client()
        .post(format!("{}/export/start", mock.base_url()))
        .header("Api-Key", mock.api_key())
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, serde_json::from_slice(&resp.bytes().await?)?))
}

/// Starts a job for `dataTypeName` over [S, END) in `format`; its id.
pub async fn start(mock: &MockServer, data_type: &str, format: &str) -> Result<i64, E> {
    let body = json!({"dataTypeName": data_type, "outputFormat": format, "startDateTime": S, "endDateTime": END});
    let (status, v) = start_raw(mock, &body.to_string()).await?;
    assert_eq!(status, 200, "{v}");
    v["jobId"].as_i64().ok_or_else(|| format!("no jobId in {v}").into())
}

/// `GET /export/{id}/files[?startAfter=]`: (status, JSON body).
pub async fn files(mock: &MockServer, id: i64, start_after: Option<&str>) -> Result<(u16, Value), E> {
    let q = start_after
        .map(|a| format!("?startAfter={}", enc(a)))
        .unwrap_or_default();
    let (status, _, body) = get_all(mock, &format!("/export/{id}/files{q}")).await?;
    Ok((status, serde_json::from_slice(&body)?))
}

/// Every file of a job, paging with `startAfter`: (name, url) pairs and the last page's body.
pub async fn all_files(mock: &MockServer, id: i64) -> Result<(Vec<(String, String)>, Value), E> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (status, page) = files(mock, id, after.as_deref()).await?;
        assert_eq!(status, 200, "{page}");
        let listed = page["files"].as_array().cloned().unwrap_or_default();
        assert!(listed.len() <= 10);
        for f in &listed {
            let name = f["file"].as_str().ok_or("file name")?.to_owned();
            let url = f["url"].as_str().ok_or("url")?.to_owned();
            out.push((name, url));
        }
        match out.last() {
            Some((last, _)) if !listed.is_empty() => after = Some(last.clone()),
            _ => return Ok((out, page)),
        }
    }
}

/// Downloads a URL without a key: (status, content length header, body).
pub async fn download(url: &str) -> Result<(u16, Option<u64>, Vec<u8>), E> {
    let resp = client().get(url).send().await?;
    let status = resp.status().as_u16();
    let len = resp.content_length();
    Ok((status, len, resp.bytes().await?.to_vec()))
}

/// Advances the held clock by `ms` and lets the jobs' tasks run.
pub async fn tick(ms: u64) {
    advance(Duration::from_millis(ms)).await;
    let_run(5).await;
}

/// Advances until job `id` is in a final state (at most `max_ms`).
pub async fn run_to_end(mock: &MockServer, id: i64, max_ms: u64) -> Result<JobState, E> {
    let mut waited = 0;
    loop {
        let state = mock.job(id).ok_or("no such job")?.state;
        if state.is_final() {
            return Ok(state);
        }
        if waited >= max_ms {
            return Err(format!("job {id} still {state} after {max_ms} ms").into());
        }
        tick(100).await;
        waited += 100;
    }
}

/// Lets the mock's tasks run until `cond` holds. The held clock does not move meanwhile, so
/// this waits only for the tasks to catch up with it (real time, a hang guard of 10 s, never a
/// timing assertion).
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) -> Result<(), E> {
    for _ in 0..2_000 {
        if cond() {
            return Ok(());
        }
        let_run(5).await;
    }
    Err(format!("the mock never reached: {what}").into())
}

/// The state of job `id` (`Cancelled` for an unknown id, which no test expects).
pub fn state(mock: &MockServer, id: i64) -> JobState {
    mock.job(id).map_or(JobState::Cancelled, |j| j.state)
}

/// Files that job `id` has listed so far.
pub fn ready(mock: &MockServer, id: i64) -> usize {
    mock.job(id).map_or(0, |j| j.files.len())
}
