//! Integration tests of the mock server (one binary, one module per area).

mod binary;
mod data;
mod endpoints;
mod errors;
mod faults;
mod job_faults;
mod job_support;
mod jobs;
mod jobs_control;
mod observe;
mod rate_limit;

use chrono::{DateTime, Utc};
use iterable_export_mock::{MockConfig, MockServer, RateLimit};

pub use test_support::{BoxError as E, TestResult as R, hold_clock, let_run};

/// A config with small data and no rate limit.
pub fn small(records_per_day: u64) -> MockConfig {
    MockConfig::default()
        .with_records_per_day(records_per_day)
        .with_rate_limit(RateLimit::unlimited())
}

pub fn t(s: &str) -> Result<DateTime<Utc>, E> {
    iterable_export_mock::parse_datetime(s).ok_or_else(|| format!("bad date {s}").into())
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// GET `path_and_query` (relative to the base URL) with the right key.
pub async fn get(mock: &MockServer, path_and_query: &str) -> Result<reqwest::Response, E> {
    Ok(client()
        .get(format!("{}{}", mock.base_url(), path_and_query))
        .header("Api-Key", mock.api_key())
        .send()
        .await?)
}

/// GET and return (status, content type, body).
pub async fn get_all(mock: &MockServer, path_and_query: &str) -> Result<(u16, String, Vec<u8>), E> {
    let resp = get(mock, path_and_query).await?;
    let status = resp.status().as_u16();
    let ct = content_type(&resp);
    Ok((status, ct, resp.bytes().await?.to_vec()))
}

pub fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The expected NDJSON body: every expected line followed by `\n`.
pub fn expected_body(mock: &MockServer, dt: &str, start: &str, end: &str) -> Result<Vec<u8>, E> {
    let mut body = Vec::new();
    for line in mock.expected_ndjson(dt, t(start)?, t(end)?)? {
        body.extend_from_slice(&line);
        body.push(b'\n');
    }
    Ok(body)
}

/// URL-encodes a query value.
pub fn enc(s: &str) -> String {
    url_encode(s)
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `/export/data.json?dataTypeName=..&startDateTime=..&endDateTime=..`
pub fn export_path(ext: &str, dt: &str, start: &str, end: &str) -> String {
    format!(
        "/export/data.{ext}?dataTypeName={dt}&startDateTime={}&endDateTime={}",
        enc(start),
        enc(end)
    )
}

pub fn lines(body: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

pub fn json(line: &[u8]) -> Result<serde_json::Value, E> {
    Ok(serde_json::from_slice(line)?)
}
