//! A local HTTP server that behaves like Iterable's Export API, for tests, benchmarks and demos.
//!
//! It serves the four endpoints of the spec under `/api`:
//!
//! | endpoint | response |
//! | --- | --- |
//! | `GET /api/export/data.json` | `application/x-ndjson`, one record per line |
//! | `GET /api/export/data.csv` | `text/csv`, header row then one row per record |
//! | `GET /api/export/userEvents` | `application/json`: one event per line with `_type` (default) or `{"events":[…]}` |
//! | `GET /api/experiments/metrics` | `text/csv` |
//!
//! and the asynchronous export jobs ([`JobsConfig`], [`JobFault`], [`expected_job`]):
//!
//! | endpoint | response |
//! | --- | --- |
//! | `POST /api/export/start` | `{"jobId": …}` for a JSON body `{dataTypeName, outputFormat, startDateTime?, …}` |
//! | `GET /api/export/{jobId}/files?startAfter=` | `{"exportTruncated", "files": [{"file", "url"}], "jobId", "jobState"}`, 10 files a page |
//! | `GET /api/export/jobs?jobState=` | `{"jobs": [{id, dataTypeName, jobState, scheduledStartTime, endTime, bytesExported}]}` |
//! | `DELETE /api/export/{jobId}` | cancels: `cancelling`, then `cancelled` |
//!
//! whose file URLs are pre-signed URLs on a third listener ([`MockServer::file_host_base_url`],
//! standing for another host) that expire and record whether the API key arrived there;
//!
//! with the real API's semantics: `Api-Key` header, `startDateTime` inclusive and `endDateTime`
//! exclusive, `range` relative to a configurable clock, `onlyFields`/`omitFields`, JSON error
//! bodies (`{"msg":…,"code":…,"params":{…}}`), 4 requests per rolling minute on
//! `data.json`/`data.csv` (configurable), plus runtime fault injection ([`Fault`]), a request log
//! and counters.
//!
//! Data are deterministic synthetic records (see [`DataType`] and [`expected_ndjson`]): every
//! record carries a unique `recordId` (`"<dataType>-<day>-<index>"`), so tests can check that an
//! export is complete and byte-exact.
//!
//! ```no_run
//! # async fn demo() -> Result<(), iterable_export_mock::MockError> {
//! use iterable_export_mock::{Fault, MockConfig, MockServer};
//!
//! let mock = MockServer::start(MockConfig::default().with_records_per_day(1000)).await?;
//! mock.inject(Fault::Status { status: 500, count: 1 });
//! println!("{} with key {}", mock.base_url(), mock.api_key());
//! // … run the client against mock.base_url() …
//! let expected = mock.expected_ndjson(
//!     "emailSend",
//!     iterable_export_mock::parse_datetime("2024-01-01 00:00:00").unwrap(),
//!     iterable_export_mock::parse_datetime("2024-01-02 00:00:00").unwrap(),
//! )?;
//! assert_eq!(expected.count(), 1000);
//! mock.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod config;
mod data;
mod dates;
mod expected;
mod fault;
mod jobs;
mod observe;
mod server;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use config::{JobsConfig, MockConfig, RateLimit};
pub use data::DataType;
pub use dates::{ExportRange, parse_datetime};
pub use expected::{
    ExpectedFile, ExpectedJob, ExpectedRecords, expected_body, expected_count, expected_csv, expected_csv_header,
    expected_csv_header_between, expected_job, expected_job_header, expected_job_records, expected_ndjson,
};
pub use fault::{Fault, JobFault};
pub use jobs::{JobFormat, JobInfo, JobSpec, JobState};
pub use observe::{Counters, FileHostHit, JobCounters, RedirectHit, RequestRecord};

/// Errors of the mock's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The listener could not be bound.
    #[error("cannot bind the mock server: {0}")]
    Bind(#[from] std::io::Error),
    /// Not one of the spec's `dataTypeName` values.
    #[error("unknown data type: {0}")]
    UnknownDataType(String),
    /// An invalid parameter (a bad fault specification, range, …).
    #[error("{0}")]
    InvalidParam(String),
}

/// A running mock server. Dropping it stops accepting connections; [`MockServer::shutdown`]
/// also waits (briefly) for open connections to finish.
pub struct MockServer {
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    redirect_addr: SocketAddr,
    file_host_addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("redirect_addr", &self.redirect_addr)
            .field("file_host_addr", &self.file_host_addr)
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Binds `config.bind` (default `127.0.0.1:0`, an ephemeral port) and a second listener on
    /// an ephemeral port of the same address (the target of [`Fault::Redirect`]), and serves
    /// both on the current tokio runtime.
    pub async fn start(config: MockConfig) -> Result<MockServer, MockError> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        MockServer::start_on(listener, config).await
    }

    /// [`MockServer::start`] on a listener the caller bound (`config.bind` is ignored). With
    /// [`tokio::net::TcpSocket`], a test can bind a port first — connections to it are refused
    /// while it is not listening, and no other process can take it — and start serving on it
    /// later.
    pub async fn start_on(listener: tokio::net::TcpListener, config: MockConfig) -> Result<MockServer, MockError> {
        let addr = listener.local_addr()?;
        let redirect_listener = tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?;
        let redirect_addr = redirect_listener.local_addr()?;
        let file_host_listener = tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0)).await?;
        let file_host_addr = file_host_listener.local_addr()?;
        let shared = Arc::new(server::Shared::new(
            config,
            format!("http://{redirect_addr}"),
            format!("http://{file_host_addr}"),
        ));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let apps = [
            (listener, server::router(shared.clone(), false)),
            (redirect_listener, server::router(shared.clone(), true)),
            (file_host_listener, server::file_host::router(shared.clone())),
        ];
        for (l, app) in apps {
            let mut rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let signal = async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                };
                if let Err(e) = axum::serve(l, app).with_graceful_shutdown(signal).await {
                    tracing::warn!("mock server stopped: {e}");
                }
            }));
        }
        tracing::info!("iterable-export-mock listening on http://{addr}/api");
        Ok(MockServer {
            shared,
            addr,
            redirect_addr,
            file_host_addr,
            stop,
            tasks,
        })
    }

    /// The base URL of the API, e.g. `http://127.0.0.1:41234/api`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL (`http://127.0.0.1:PORT/api`) of the second listener that [`Fault::Redirect`]
    /// sends clients to. It serves exports without checking the key, and records every request
    /// (see [`MockServer::redirect_hits`]).
    pub fn redirect_base_url(&self) -> String {
        format!("http://{}/api", self.redirect_addr)
    }

    /// The accepted API key (default `test-api-key`).
    pub fn api_key(&self) -> String {
        self.shared.config().api_key
    }

    /// A snapshot of the current configuration.
    pub fn config(&self) -> MockConfig {
        self.shared.config()
    }

    /// Changes the configuration of the running server (the listen address cannot change).
    ///
    /// ```no_run
    /// # async fn demo(mock: iterable_export_mock::MockServer) {
    /// mock.update_config(|c| c.user_events_wrapped = true);
    /// # }
    /// ```
    pub fn update_config(&self, f: impl FnOnce(&mut MockConfig)) {
        self.shared.update_config(f);
    }

    /// Sets the clock that `range` is relative to.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.update_config(|c| c.now = Some(now));
    }

    /// Queues a fault; it applies to the next export requests (`data.json`, `data.csv`).
    /// See [`Fault`] for the order in which queued faults apply.
    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    /// The faults still queued, with their remaining counts.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.pending_faults()
    }

    /// Removes every queued fault.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Forgets the requests counted by the rate limiter (every slot is free again).
    pub fn reset_rate_limit(&self) {
        self.shared.reset_rate_limit();
    }

    /// The request log, oldest first (at most `MockConfig::request_log_capacity` entries; the
    /// API key's value is never recorded). Bytes and durations of responses still streaming are
    /// the values so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests()
    }

    /// Empties the request log (the counters are kept).
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// The requests the redirect target (see [`Fault::Redirect`]) received.
    pub fn redirect_hits(&self) -> Vec<RedirectHit> {
        self.shared.redirect_hits()
    }

    /// True when any request to the redirect target carried an `Api-Key` header (a client that
    /// leaks its key across hosts).
    pub fn redirect_received_api_key(&self) -> bool {
        self.redirect_hits().iter().any(|h| h.api_key_present)
    }

    /// [`expected_ndjson`] with this server's current configuration.
    pub fn expected_ndjson(
        &self,
        data_type: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<ExpectedRecords, MockError> {
        expected_ndjson(&self.shared.config(), data_type, start, end)
    }

    /// [`expected_count`] with this server's current configuration.
    pub fn expected_count(&self, data_type: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<u64, MockError> {
        expected_count(&self.shared.config(), data_type, start, end)
    }

    /// The window `[start, end)` that `range` means now on this server.
    pub fn range_window(&self, range: ExportRange) -> (DateTime<Utc>, DateTime<Utc>) {
        self.shared.config().range_window(range)
    }

    /// Stops accepting connections, lets open responses finish for up to 2 seconds, then stops.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.shared.jobs.abort_all();
        for t in self.tasks.iter_mut() {
            if tokio::time::timeout(Duration::from_secs(2), &mut *t).await.is_err() {
                t.abort();
            }
        }
        self.tasks.clear();
    }

    /// Runs until the server stops (for the binary).
    pub async fn wait(mut self) {
        for t in self.tasks.iter_mut() {
            let _ = (&mut *t).await;
        }
        self.tasks.clear();
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.shared.jobs.abort_all();
        for t in &self.tasks {
            t.abort();
        }
    }
}
