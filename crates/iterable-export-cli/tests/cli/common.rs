//! Shared fixtures: a mock server in-process, the binary run as a child process.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use iterable_export_mock::{MockConfig, MockServer};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), BoxError>;

/// 2024-01-01 plus `days` days.
pub fn day(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("fixture: 2024-01-01 is a valid date")
        + chrono::TimeDelta::days(days)
}

pub fn config(records_per_day: u64) -> MockConfig {
    MockConfig::default()
        .with_records_per_day(records_per_day)
        .with_rate_limit(iterable_export_mock::RateLimit::new(10_000, Duration::from_secs(60)))
}

pub async fn start(config: MockConfig) -> Result<MockServer, BoxError> {
    Ok(MockServer::start(config).await?)
}

/// The binary, pointed at the mock, with a clean environment.
pub fn command(mock: &MockServer) -> Result<std::process::Command, BoxError> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_iterable-export"));
    cmd.env_clear()
        .env("ITERABLE_API_KEY", mock.api_key())
        .env("ITERABLE_BASE_URL", mock.base_url())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    Ok(cmd)
}

/// Runs the command off the async runtime (the mock keeps serving on it).
pub async fn run(mut cmd: std::process::Command) -> Result<Output, BoxError> {
    Ok(tokio::task::spawn_blocking(move || cmd.output()).await??)
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The exact NDJSON body the mock serves for `[start, end)`. A broken fixture (an unknown data
/// type) fails the test here instead of expecting an empty file.
pub fn expected_body(config: &MockConfig, data_type: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<u8> {
    iterable_export_mock::expected_body(config, data_type, start, end)
        .unwrap_or_else(|e| panic!("fixture: no expected body for {data_type}: {e}"))
}

pub fn sorted_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines
}

/// Asserts an NDJSON file holds exactly the expected records (as a multiset) and ends the same.
pub fn assert_exact(path: &Path, expected: &[u8]) -> TestResult {
    let got = std::fs::read(path)?;
    assert_eq!(got.len(), expected.len(), "{}: byte count", path.display());
    assert_eq!(
        sorted_lines(&got),
        sorted_lines(expected),
        "{}: records",
        path.display()
    );
    Ok(())
}

/// Runs the binary against the mock with `args` and checks its exit code; returns the output.
pub async fn run_expecting<I, S>(mock: &MockServer, args: I, code: i32) -> Result<Output, BoxError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = command(mock)?;
    cmd.args(args);
    let output = run(cmd).await?;
    assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
    Ok(output)
}

/// Asserts the command's stderr contains `text`, showing all of stderr when it does not.
pub fn assert_stderr_contains(output: &Output, text: &str) {
    let err = stderr(output);
    assert!(err.contains(text), "stderr lacks {text:?}:\n{err}");
}

/// Asserts `got` (an NDJSON output) holds exactly the records of `expected`, each once, as a
/// multiset (windows that were split or retried may order them differently), with a readable
/// difference if not.
#[track_caller]
pub fn assert_same_records(got: &[u8], expected: &[u8], what: &str) {
    let (g, e) = (sorted_lines(got), sorted_lines(expected));
    if g != e || got.len() != expected.len() {
        let missing = e.iter().filter(|l| g.binary_search(l).is_err()).count();
        let extra = g.iter().filter(|l| e.binary_search(l).is_err()).count();
        panic!(
            "{what}: {} bytes and {} records, expected {} bytes and {} records: {missing} missing, {extra} unexpected{}",
            got.len(),
            g.len(),
            expected.len(),
            e.len(),
            if missing + extra == 0 { ", some duplicated" } else { "" },
        );
    }
}

/// The value of `name` in a request log's query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The windows `[start, end)` of the export requests the mock received, oldest first.
pub fn windows_requested(mock: &MockServer) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    mock.requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/export/data."))
        .map(|r| {
            let date = |name: &str| {
                query_param(&r.query, name)
                    .and_then(|d| iterable_export_mock::parse_datetime(&d))
                    .unwrap_or_else(|| panic!("no {name} in {:?}", r.query))
            };
            (date("startDateTime"), date("endDateTime"))
        })
        .collect()
}

/// Reads and parses the state file (written atomically: it must always parse).
pub fn read_state(path: &Path) -> Result<serde_json::Value, BoxError> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| format!("{} does not parse: {e}\n{text}", path.display()).into())
}
