//! Configuration.

mod jobs;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::ExportRange;
use crate::data::DataParams;

pub use jobs::JobsConfig;

/// The rate limit of `data.json` and `data.csv` (each endpoint has its own rolling window).
///
/// The window runs on tokio's clock: the real clock, except in a test that pauses tokio's time
/// (`#[tokio::test(start_paused = true)]`) with the server on its runtime, where it follows the
/// paused clock, so a test can check a client's pacing without waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per `window`; `0` disables the limit.
    pub requests: u32,
    /// The length of the rolling window (Iterable: one minute; tests can compress it).
    pub window: Duration,
    /// Whether 429 responses carry `Retry-After` (whole seconds until a slot frees, rounded up).
    pub retry_after: bool,
}

impl RateLimit {
    /// `requests` per `window`, without `Retry-After`.
    pub fn new(requests: u32, window: Duration) -> Self {
        RateLimit {
            requests,
            window,
            retry_after: false,
        }
    }

    /// No limit.
    pub fn unlimited() -> Self {
        RateLimit::new(0, Duration::from_secs(60))
    }

    /// Sets whether 429 responses carry `Retry-After`.
    pub fn with_retry_after(mut self, retry_after: bool) -> Self {
        self.retry_after = retry_after;
        self
    }
}

impl Default for RateLimit {
    /// Iterable's documented limit: 4 requests per minute, no `Retry-After`.
    fn default() -> Self {
        RateLimit::new(4, Duration::from_secs(60))
    }
}

/// Configuration of a [`MockServer`](crate::MockServer).
///
/// ```
/// use iterable_export_mock::{MockConfig, RateLimit};
/// use std::time::Duration;
///
/// let config = MockConfig::default()
///     .with_seed(7)
///     .with_records_per_day(10_000)
///     .with_rate_limit(RateLimit::new(4, Duration::from_secs(2)).with_retry_after(true));
/// assert_eq!(config.api_key, "test-api-key");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// Address to listen on (default `127.0.0.1:0`: an ephemeral port).
    pub bind: SocketAddr,
    /// The accepted `Api-Key` (default `test-api-key`).
    pub api_key: String,
    /// Seed of the synthetic data (default 1).
    pub seed: u64,
    /// Records per day and data type (default 100).
    pub records_per_day: u64,
    /// The first day with data (default 2024-01-01); windows before it are empty.
    pub data_start: NaiveDate,
    /// The clock for `range` (`None`, the default: the system clock).
    pub now: Option<DateTime<Utc>>,
    /// Rate limit of `data.json`/`data.csv` (default 4 per 60 s, no `Retry-After`).
    pub rate_limit: RateLimit,
    /// `/export/userEvents` returns `{"events":[…]}` instead of one event per line (default false).
    pub user_events_wrapped: bool,
    /// 401 responses carry Iterable's JSON body (default true); false sends an empty body.
    pub unauthorized_body: bool,
    /// The project id in 429 messages (default 1).
    pub project_id: u64,
    /// Target size of the body chunks of exports (default 64 KiB).
    pub chunk_size: usize,
    /// Entries kept in the request log (default 10 000; older ones are dropped).
    pub request_log_capacity: usize,
    /// The asynchronous export jobs (file size, timing, limits).
    pub jobs: JobsConfig,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_key: "test-api-key".to_owned(),
            seed: 1,
            records_per_day: 100,
            data_start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or(NaiveDate::MIN),
            now: None,
            rate_limit: RateLimit::default(),
            user_events_wrapped: false,
            unauthorized_body: true,
            project_id: 1,
            chunk_size: 64 * 1024,
            request_log_capacity: 10_000,
            jobs: JobsConfig::default(),
        }
    }
}

impl MockConfig {
    /// Sets [`MockConfig::bind`].
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// Sets [`MockConfig::api_key`].
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Sets [`MockConfig::seed`].
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`MockConfig::records_per_day`].
    pub fn with_records_per_day(mut self, n: u64) -> Self {
        self.records_per_day = n;
        self
    }

    /// Sets [`MockConfig::data_start`].
    pub fn with_data_start(mut self, day: NaiveDate) -> Self {
        self.data_start = day;
        self
    }

    /// Sets [`MockConfig::now`] (a fixed clock).
    pub fn with_now(mut self, now: DateTime<Utc>) -> Self {
        self.now = Some(now);
        self
    }

    /// Sets [`MockConfig::rate_limit`].
    pub fn with_rate_limit(mut self, rate_limit: RateLimit) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Sets [`MockConfig::user_events_wrapped`].
    pub fn with_user_events_wrapped(mut self, wrapped: bool) -> Self {
        self.user_events_wrapped = wrapped;
        self
    }

    /// Sets [`MockConfig::unauthorized_body`].
    pub fn with_unauthorized_body(mut self, body: bool) -> Self {
        self.unauthorized_body = body;
        self
    }

    /// Sets [`MockConfig::project_id`].
    pub fn with_project_id(mut self, id: u64) -> Self {
        self.project_id = id;
        self
    }

    /// Sets [`MockConfig::chunk_size`] (at least 1 KiB is used).
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Sets [`MockConfig::request_log_capacity`].
    pub fn with_request_log_capacity(mut self, entries: usize) -> Self {
        self.request_log_capacity = entries;
        self
    }

    /// Sets [`MockConfig::jobs`].
    pub fn with_jobs(mut self, jobs: JobsConfig) -> Self {
        self.jobs = jobs;
        self
    }

    /// The current instant of the configured clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }

    /// The window `[start, end)` that `range` means at [`MockConfig::now`].
    pub fn range_window(&self, range: ExportRange) -> (DateTime<Utc>, DateTime<Utc>) {
        range.window(self.now(), self.data_start)
    }

    pub(crate) fn data_params(&self) -> DataParams {
        DataParams {
            seed: self.seed,
            records_per_day: self.records_per_day,
            first_day: self
                .data_start
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp().div_euclid(86_400))
                .unwrap_or(0),
        }
    }
}
