//! Fixtures of the library's tests; those shared with the other crates' tests come from
//! `test-support`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iterable_export::{Client, RateLimit, RetryPolicy, Sink, Window};
use iterable_export_mock::{MockConfig, MockServer};

pub use test_support::*;

/// Fast retries, a generous limit: tests should not sleep for real.
pub fn fast_retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(max_retries)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20))
}

/// A mock started with `config` and a [`client`] of it.
pub async fn mock_and_client(config: MockConfig) -> Result<(MockServer, Client), BoxError> {
    let mock = start(config).await?;
    let client = client(&mock)?;
    Ok((mock, client))
}

/// A client of `mock` with a generous limit and [`fast_retries`].
pub fn client(mock: &MockServer) -> Result<Client, iterable_export::Error> {
    Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(fast_retries(3))
        .build()
}

// ---------------------------------------------------------------------------------------------
// With a held clock (`hold_clock`).

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
