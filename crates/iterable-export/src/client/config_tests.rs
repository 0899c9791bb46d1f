//! Configuration at its edges: plain http, extreme values, connect timeouts. Everything runs on
//! loopback; nothing waits on a wall-clock bound.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use iterable_export_mock::{Fault, MockConfig, MockServer};

use super::Throttle;
use crate::{Client, ClientBuilder, DataType, Error, Range, RateLimit, RetryPolicy, Sink, Window, WindowOptions};

type TestResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn builder(base_url: &str) -> ClientBuilder {
    Client::builder().api_key("test-key").base_url(base_url)
}

fn config_error(result: crate::Result<Client>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(other) => format!("not a configuration error: {other:?}"),
        Ok(client) => format!("accepted: {client:?}"),
    }
}

// --- The API key never travels in clear ---------------------------------------------------------

#[test]
fn plain_http_to_another_host_is_refused_at_build() {
    let message = config_error(builder("http://example.com/api").build());
    assert_eq!(
        message,
        "refusing to send the API key unencrypted to http://example.com/api: plain http is only allowed to a \
         loopback host (127.0.0.0/8, ::1, localhost), because anyone on the network path could read the key and \
         export the project's data; use https, or, if the network to that host is trusted, opt in with \
         `danger_allow_plaintext_api_key(true)` (CLI: --allow-insecure-http)"
    );
    for url in [
        "http://10.0.0.1:8080/api",
        "http://192.168.1.20/api",
        "http://[2001:db8::1]/api",
        "http://localhost.example.com/api",
        "http://127.0.0.1.example.com/api",
        "http://proxy/api",
    ] {
        let message = config_error(builder(url).build());
        assert!(
            message.starts_with("refusing to send the API key unencrypted"),
            "{url}: {message}"
        );
    }
}

#[test]
fn plain_http_from_the_environment_is_refused_too() {
    let result = Client::from_env_with(|name| match name {
        "ITERABLE_API_KEY" => Some("k".into()),
        "ITERABLE_BASE_URL" => Some("http://example.com/api".into()),
        _ => None,
    });
    assert!(config_error(result).starts_with("refusing to send the API key unencrypted to http://example.com/api"));
}

#[test]
fn plain_http_is_accepted_with_the_opt_in() -> TestResult {
    let client = builder("http://example.com/api")
        .danger_allow_plaintext_api_key(true)
        .build()?;
    assert_eq!(client.base_url(), "http://example.com/api");
    // The opt-in can be withdrawn again.
    let message = config_error(
        builder("http://example.com/api")
            .danger_allow_plaintext_api_key(true)
            .danger_allow_plaintext_api_key(false)
            .build(),
    );
    assert!(
        message.starts_with("refusing to send the API key unencrypted"),
        "{message}"
    );
    Ok(())
}

#[test]
fn plain_http_to_loopback_and_https_anywhere_are_accepted() -> TestResult {
    for (url, normalized) in [
        ("http://127.0.0.1:8080/api", "http://127.0.0.1:8080/api"),
        ("http://127.255.0.9/api", "http://127.255.0.9/api"),
        ("http://localhost:8080/api", "http://localhost:8080/api"),
        ("http://LocalHost/api", "http://localhost/api"),
        ("http://[::1]:8080/api", "http://[::1]:8080/api"),
        ("http://[::ffff:127.0.0.1]:8080/api", "http://[::ffff:7f00:1]:8080/api"),
        ("https://example.com/api", "https://example.com/api"),
        ("https://10.0.0.1:8443/api", "https://10.0.0.1:8443/api"),
    ] {
        let client = builder(url).build()?;
        assert_eq!(client.base_url(), normalized, "{url}");
    }
    Ok(())
}

// --- No configuration value panics --------------------------------------------------------------

#[test]
fn zero_timeouts_are_refused() {
    assert_eq!(
        config_error(builder("http://127.0.0.1:1/api").read_timeout(Duration::ZERO).build()),
        "the read timeout is zero, so every request would time out at once; use a positive duration \
         (up to 365 days; longer counts as that)"
    );
    assert_eq!(
        config_error(
            builder("http://127.0.0.1:1/api")
                .connect_timeout(Duration::ZERO)
                .build()
        ),
        "the connect timeout is zero, so every request would time out at once; use a positive duration \
         (up to 365 days; longer counts as that)"
    );
}

#[test]
fn zero_requests_per_period_is_refused() {
    assert_eq!(
        config_error(
            builder("http://127.0.0.1:1/api")
                .rate_limit(RateLimit::new(0, Duration::MAX))
                .build()
        ),
        "the rate limit allows 0 requests per 18446744073709551615.999999999s, so no export request could ever \
         be sent; allow at least 1"
    );
}

#[test]
fn extreme_but_meaningful_values_are_accepted() -> TestResult {
    let client = builder("http://127.0.0.1:1/api")
        .rate_limit(RateLimit::new(u32::MAX, Duration::MAX))
        .retry_policy(
            RetryPolicy::default()
                .with_max_retries(u32::MAX)
                .with_initial_backoff(Duration::MAX)
                .with_max_backoff(Duration::MAX),
        )
        .max_line_length(usize::MAX)
        .build()?;
    assert_eq!(client.rate_limit(), RateLimit::new(u32::MAX, Duration::MAX));
    assert_eq!(client.retry_policy().max_retries, u32::MAX);
    let client = builder("http://127.0.0.1:1/api")
        .rate_limit(RateLimit::new(1, Duration::ZERO))
        .retry_policy(RetryPolicy::none().with_initial_backoff(Duration::ZERO))
        .max_line_length(0)
        .build()?;
    assert_eq!(client.rate_limit().min_interval(), Duration::ZERO);
    Ok(())
}

fn mock_config() -> MockConfig {
    MockConfig::default()
        .with_records_per_day(50)
        .with_rate_limit(iterable_export_mock::RateLimit::unlimited())
}

fn day(days: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap_or_default() + chrono::TimeDelta::days(days)
}

/// Longest timeouts: reqwest adds the read timeout to an instant, which `Duration::MAX` would
/// overflow (a panic) without the cap.
#[tokio::test]
async fn the_longest_timeouts_work() -> TestResult {
    let mock = MockServer::start(mock_config()).await?;
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .read_timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .rate_limit(RateLimit::new(u32::MAX, Duration::MAX))
        .retry_policy(RetryPolicy::none())
        .build()?;
    let lines = client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .lines()
        .await?;
    let mut lines = lines;
    let mut count = 0u64;
    while futures::TryStreamExt::try_next(&mut lines).await?.is_some() {
        count += 1;
    }
    assert_eq!(count, 50);
    Ok(())
}

/// A transient failure retried with the longest backoffs: saturated delays (tokio sleeps them
/// in paused time), no overflow, the exact number of attempts.
#[tokio::test(start_paused = true)]
async fn retries_with_the_longest_backoffs_do_not_overflow() -> TestResult {
    let client = builder("http://127.0.0.1:1/api")
        .retry_policy(
            RetryPolicy::default()
                .with_max_retries(3)
                .with_initial_backoff(Duration::MAX)
                .with_max_backoff(Duration::MAX),
        )
        .build()?;
    let mut attempts = 0u32;
    let result: crate::Result<()> = client
        .with_retries(Throttle::Unlimited, || {
            attempts += 1;
            async {
                Err(Error::Transport {
                    message: "cut".into(),
                    source: None,
                })
            }
        })
        .await;
    assert!(
        matches!(result, Err(Error::Transport { ref message, .. }) if message == "cut"),
        "{result:?}"
    );
    assert_eq!(attempts, 4);
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries), (4, 3));

    // 429s without Retry-After use the same saturated backoff; their budget is 4 × max_retries.
    let mut attempts = 0u32;
    let result: crate::Result<()> = client
        .with_retries(Throttle::Unlimited, || {
            attempts += 1;
            async {
                Err(Error::RateLimited {
                    retry_after: None,
                    msg: None,
                })
            }
        })
        .await;
    assert!(matches!(result, Err(Error::RateLimited { .. })), "{result:?}");
    assert_eq!(attempts, 13);
    Ok(())
}

/// A sink that keeps committed records and counts windows.
#[derive(Default)]
struct Collect {
    pending: Vec<Vec<u8>>,
    committed: Vec<Vec<u8>>,
    windows: Vec<Window>,
}

impl Sink for Collect {
    async fn begin(&mut self, _window: &Window) -> crate::Result<()> {
        self.pending.clear();
        Ok(())
    }

    async fn record(&mut self, record: &[u8]) -> crate::Result<()> {
        self.pending.push(record.to_vec());
        Ok(())
    }

    async fn commit(&mut self, window: &Window, _records: u64) -> crate::Result<()> {
        self.committed.append(&mut self.pending);
        self.windows.push(*window);
        Ok(())
    }

    async fn abort(&mut self, _window: &Window) -> crate::Result<()> {
        self.pending.clear();
        Ok(())
    }
}

fn expected_lines(config: &MockConfig, start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>) -> Vec<Vec<u8>> {
    let body = iterable_export_mock::expected_body(config, "emailSend", start, end).unwrap_or_default();
    let mut lines: Vec<Vec<u8>> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines.sort_unstable();
    lines
}

async fn windowed(
    mock: &MockServer,
    options: WindowOptions,
    days: i64,
) -> Result<(crate::WindowedSummary, Collect), Box<dyn std::error::Error + Send + Sync>> {
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(
            RetryPolicy::default()
                .with_max_retries(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(1)),
        )
        .build()?;
    let mut sink = Collect::default();
    let summary = client
        .export(DataType::EmailSend)
        .between(day(0), day(days))
        .export_windows(options, &mut sink)
        .await?;
    sink.committed.sort_unstable();
    Ok((summary, sink))
}

#[tokio::test]
async fn the_longest_window_sizes_make_one_window() -> TestResult {
    let mock = MockServer::start(mock_config()).await?;
    let options = WindowOptions::default()
        .with_size(Duration::MAX)
        .with_max_size(Duration::MAX)
        .with_min_size(Duration::MAX);
    let (summary, sink) = windowed(&mock, options, 3).await?;
    assert_eq!((summary.windows, summary.records, summary.splits), (1, 150, 0));
    assert_eq!(
        sink.windows,
        [Window {
            start: day(0),
            end: day(3)
        }]
    );
    assert_eq!(sink.committed, expected_lines(&mock.config(), day(0), day(3)));
    Ok(())
}

#[tokio::test]
async fn the_longest_min_size_never_splits() -> TestResult {
    let mock = MockServer::start(mock_config()).await?;
    mock.inject(Fault::Truncate {
        after_bytes: 100,
        count: 2,
    });
    let options = WindowOptions::default()
        .with_size(Duration::from_secs(86_400))
        .with_max_size(Duration::from_secs(86_400))
        .with_min_size(Duration::MAX)
        .with_split_after(1);
    let (summary, sink) = windowed(&mock, options, 1).await?;
    assert_eq!((summary.windows, summary.retries, summary.splits), (1, 2, 0));
    assert_eq!(sink.committed, expected_lines(&mock.config(), day(0), day(1)));
    Ok(())
}

#[tokio::test]
async fn zero_sizes_and_split_after_zero_split_at_the_first_failure() -> TestResult {
    let mock = MockServer::start(mock_config()).await?;
    mock.inject(Fault::Truncate {
        after_bytes: 100,
        count: 1,
    });
    // A max_size below size means fixed windows of size; a zero min_size lets windows split down
    // to a second; split_after 0 acts as 1: the first cut-off body splits the day.
    let options = WindowOptions::default()
        .with_size(Duration::from_secs(86_400))
        .with_max_size(Duration::ZERO)
        .with_min_size(Duration::ZERO)
        .with_split_after(0);
    let (summary, sink) = windowed(&mock, options, 1).await?;
    assert_eq!((summary.splits, summary.retries, summary.windows), (1, 0, 2));
    assert_eq!(
        sink.windows,
        [
            Window {
                start: day(0),
                end: day(0) + chrono::TimeDelta::hours(12)
            },
            Window {
                start: day(0) + chrono::TimeDelta::hours(12),
                end: day(1)
            },
        ]
    );
    assert_eq!(sink.committed, expected_lines(&mock.config(), day(0), day(1)));
    Ok(())
}

#[tokio::test]
async fn a_zero_window_size_means_one_second_windows() -> TestResult {
    let mock = MockServer::start(mock_config()).await?;
    let options = WindowOptions::default()
        .with_size(Duration::ZERO)
        .with_max_size(Duration::ZERO);
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(10_000))
        .build()?;
    let mut sink = Collect::default();
    let start = day(0);
    let summary = client
        .export(DataType::EmailSend)
        .between(start, start + chrono::TimeDelta::seconds(3))
        .export_windows(options, &mut sink)
        .await?;
    assert_eq!(summary.windows, 3);
    assert_eq!(
        sink.windows.iter().map(|w| w.len().num_seconds()).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    Ok(())
}

// --- A connect timeout is reported as one -----------------------------------------------------------

/// A loopback listener that never accepts, with a full accept queue: Linux drops further SYNs,
/// so a new connection attempt hangs until the client's connect timeout. Returns the listener
/// and the connections that fill its queue (both must stay alive), or `None` when the queue
/// could not be filled (another OS).
fn unaccepting_listener() -> std::io::Result<Option<(tokio::net::TcpListener, SocketAddr, Vec<std::net::TcpStream>)>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let listener = socket.listen(0)?;
    let addr = listener.local_addr()?;
    let mut fillers = Vec::new();
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(stream) => fillers.push(stream),
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => return Ok(Some((listener, addr, fillers))),
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

#[tokio::test]
async fn a_connect_timeout_is_reported_as_a_connect_timeout() -> TestResult {
    let Some((_listener, addr, _fillers)) = unaccepting_listener()? else {
        panic!("could not fill the accept queue of a loopback listener");
    };
    let client = Client::builder()
        .api_key("test-key")
        .base_url(format!("http://{addr}/api"))
        .connect_timeout(Duration::from_millis(250))
        .read_timeout(Duration::from_secs(300))
        .retry_policy(RetryPolicy::none())
        .build()?;
    let err = match client.export(DataType::EmailSend).range(Range::Today).lines().await {
        Ok(_) => panic!("a listener that never accepts answered"),
        Err(err) => err,
    };
    assert!(
        matches!(err, Error::ConnectTimeout(d) if d == Duration::from_millis(250)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "timed out connecting to the server after 250ms; check the base URL/region and your network \
         (or raise the connect timeout)"
    );
    assert!(err.is_transient());
    Ok(())
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error_not_a_timeout() -> TestResult {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let client = Client::builder()
        .api_key("test-key")
        .base_url(format!("http://{addr}/api"))
        .retry_policy(RetryPolicy::none())
        .build()?;
    let err = match client.export(DataType::EmailSend).range(Range::Today).lines().await {
        Ok(_) => panic!("a closed port answered"),
        Err(err) => err,
    };
    assert!(
        matches!(&err, Error::Transport { message, .. } if message.starts_with("cannot connect to the server")),
        "{err:?}"
    );
    Ok(())
}
