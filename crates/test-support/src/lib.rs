//! Fixtures shared by the integration tests of the library, the mock and the CLI (not published).
//!
//! A fixture that cannot be built panics with a message saying which one and why: a broken
//! fixture must fail the test, never turn into an empty expectation that a broken export meets.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use iterable_export_mock::{MockConfig, MockServer};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), BoxError>;

// ---------------------------------------------------------------------------------------------
// Dates and the mock.

/// Midnight (UTC) of 2024-01-01 plus `days` days.
pub fn day(days: i64) -> DateTime<Utc> {
    day_at(days, 0)
}

/// 2024-01-01 plus `days` days, at `hours`:00:00 UTC.
pub fn day_at(days: i64, hours: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, hours, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("fixture: 2024-01-01 {hours}:00:00 is not a valid time"))
        + chrono::TimeDelta::days(days)
}

/// A mock serving `records_per_day` records a day, with a rate limit no test reaches by accident
/// (tests about the limit set their own).
pub fn config(records_per_day: u64) -> MockConfig {
    MockConfig::default()
        .with_records_per_day(records_per_day)
        .with_rate_limit(iterable_export_mock::RateLimit::new(10_000, Duration::from_secs(60)))
}

pub async fn start(config: MockConfig) -> Result<MockServer, BoxError> {
    Ok(MockServer::start(config).await?)
}

/// The exact NDJSON body the mock serves for `[start, end)` (each line followed by `\n`). A broken
/// fixture (an unknown data type) fails the test here instead of expecting an empty body.
pub fn expected_body(config: &MockConfig, data_type: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<u8> {
    iterable_export_mock::expected_body(config, data_type, start, end)
        .unwrap_or_else(|e| panic!("fixture: no expected body for {data_type}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Comparing records.

/// The non-empty lines of an NDJSON body, sorted: for order-independent comparison.
pub fn sorted_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines
}

/// Asserts an NDJSON output holds exactly the expected records, each once, and the same bytes:
/// compared as multisets, since windows that were split or retried (or a span exported in
/// windows) give the same records in another order. Shows a readable difference if not.
#[track_caller]
pub fn assert_records(got: &[u8], expected: &[u8], what: &str) {
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

/// [`assert_records`] for the NDJSON file at `path` (which must exist).
#[track_caller]
pub fn assert_file_records(path: &Path, expected: &[u8]) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_records(&got, expected, &path.display().to_string());
}

// ---------------------------------------------------------------------------------------------
// A paused clock that only the test moves.

/// Keeps tokio's paused clock still while it lives. A paused clock normally auto-advances to the
/// next timer whenever the runtime is idle — also while a response is merely on its way through
/// a loopback socket, which would fire read timeouts or limiter waits at random. A running
/// `spawn_blocking` task inhibits auto-advance (documented in `tokio::time::pause`), so while
/// this guard lives, time moves only by `tokio::time::advance`. For
/// `#[tokio::test(start_paused = true)]` tests.
#[derive(Debug)]
pub struct ClockHold(Option<std::sync::mpsc::Sender<()>>);

pub fn hold_clock() -> ClockHold {
    let (release, held) = std::sync::mpsc::channel::<()>();
    drop(tokio::task::spawn_blocking(move || {
        let _ = held.recv();
    }));
    ClockHold(Some(release))
}

impl Drop for ClockHold {
    fn drop(&mut self) {
        // Dropping the sender ends the blocking task, which allows auto-advance again.
        self.0.take();
    }
}

/// Lets the runtime run the other tasks (mock, client) for about `ms` ms of real time, without
/// moving a held clock.
pub async fn let_run(ms: u64) {
    tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(ms)))
        .await
        .expect("a sleeping blocking task cannot fail");
}
