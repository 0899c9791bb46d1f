//! Shared fixtures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use iterable_export::{Client, RateLimit, RetryPolicy, Sink, Window};
use iterable_export_mock::{MockConfig, MockServer};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), BoxError>;

/// 2024-01-01 plus `days` days and `hours` hours.
pub fn day(days: i64, hours: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, hours, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("fixture: 2024-01-01 {hours}:00:00 is not a valid time"))
        + chrono::TimeDelta::days(days)
}

/// A mock without a meaningful rate limit (tests that care set their own).
pub fn config(records_per_day: u64) -> MockConfig {
    MockConfig::default()
        .with_records_per_day(records_per_day)
        .with_rate_limit(iterable_export_mock::RateLimit::new(10_000, Duration::from_secs(60)))
}

pub async fn start(config: MockConfig) -> Result<MockServer, BoxError> {
    Ok(MockServer::start(config).await?)
}

/// Fast retries, a generous limit: tests should not sleep for real.
pub fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(max_retries)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20))
}

pub fn client(mock: &MockServer) -> Result<Client, iterable_export::Error> {
    Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(fast_retries(3))
        .build()
}

/// The exact NDJSON body the mock serves for a window (each line followed by `\n`). A broken
/// fixture (an unknown data type) fails the test here instead of expecting an empty body.
pub fn expected_body(config: &MockConfig, data_type: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<u8> {
    iterable_export_mock::expected_body(config, data_type, start, end)
        .unwrap_or_else(|e| panic!("fixture: no expected body for {data_type}: {e}"))
}

/// Asserts an NDJSON output holds exactly the expected records, each once (as a multiset: the
/// mock orders a window's records its own way, so a span exported in windows is the same records
/// in another order), showing a readable difference if not.
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

/// Sorted lines of an NDJSON body, for order-independent comparison.
pub fn sorted_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines
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

/// Waits (in real time, the held clock standing still) until `done()`. The generous limit only
/// turns a hang into a failure; it is not a timing assertion.
pub async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < give_up, "gave up waiting for {what}");
        let_run(1).await;
    }
}

/// Waits until `quiescent()` holds and still holds after every ready task ran a few more times:
/// then nothing is in flight, and only a timer (moved by the test) can make progress.
pub async fn settle(what: &str, quiescent: impl Fn() -> bool) {
    loop {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        wait_for(what, &quiescent).await;
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        if quiescent() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An in-memory sink that records what the engine did.

/// What a [`MemSink`] saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SinkEvents {
    /// The window of every `begin`, in order.
    pub begins: Vec<Window>,
    /// `record` calls (including records later aborted).
    pub records: u64,
    pub commits: u64,
    pub aborts: u64,
}

/// An NDJSON sink in memory: committed records stay, aborted ones are dropped (the exactly-once
/// contract of [`Sink`]). Cheap to observe from another task through [`MemSink::events`].
#[derive(Debug, Default)]
pub struct MemSink {
    out: Vec<u8>,
    mark: usize,
    events: Arc<Mutex<SinkEvents>>,
}

impl MemSink {
    pub fn new() -> Self {
        MemSink::default()
    }

    /// A handle on the events, readable while the sink is in use.
    pub fn events(&self) -> Arc<Mutex<SinkEvents>> {
        self.events.clone()
    }

    /// The committed records, each followed by `\n`.
    pub fn committed(&self) -> &[u8] {
        &self.out[..self.mark]
    }

    fn log(&self) -> std::sync::MutexGuard<'_, SinkEvents> {
        self.events.lock().expect("a test sink's lock is never poisoned")
    }
}

/// A snapshot of a sink's events.
pub fn snapshot(events: &Mutex<SinkEvents>) -> SinkEvents {
    events.lock().expect("a test sink's lock is never poisoned").clone()
}

impl Sink for MemSink {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.out.truncate(self.mark);
        self.log().begins.push(*window);
        Ok(())
    }

    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.out.extend_from_slice(record);
        self.out.push(b'\n');
        self.log().records += 1;
        Ok(())
    }

    async fn commit(&mut self, _window: &Window, _records: u64) -> iterable_export::Result<()> {
        self.mark = self.out.len();
        self.log().commits += 1;
        Ok(())
    }

    async fn abort(&mut self, _window: &Window) -> iterable_export::Result<()> {
        self.out.truncate(self.mark);
        self.log().aborts += 1;
        Ok(())
    }
}
