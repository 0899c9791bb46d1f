//! Shared fixtures.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use iterable_export::{Client, RateLimit, RetryPolicy};
use iterable_export_mock::{MockConfig, MockServer};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), BoxError>;

/// 2024-01-01 plus `days` days and `hours` hours.
pub fn day(days: i64, hours: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, hours, 0, 0)
        .single()
        .unwrap_or_default()
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
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

pub fn client(mock: &MockServer) -> Result<Client, iterable_export::Error> {
    Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(fast_retries(3))
        .build()
}

/// The exact NDJSON body the mock serves for a window (each line followed by `\n`).
pub fn expected_body(config: &MockConfig, data_type: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<u8> {
    iterable_export_mock::expected_body(config, data_type, start, end).unwrap_or_default()
}

/// Sorted lines of an NDJSON body, for order-independent comparison.
pub fn sorted_lines(body: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines
}
