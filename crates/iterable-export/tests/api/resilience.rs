//! The windowed engine against faults: exactly-once delivery, splitting, rate-limit compliance,
//! `Retry-After` dates, failing sinks.
//!
//! Over 500 lines on purpose: this is the fault matrix of the README's reliability table, one
//! test per row sharing the fixtures at the bottom (held clock, recording sinks); split, the rows
//! would scatter what a reader compares side by side.
//!
//! Tests about time run on tokio's paused clock, held still (see [`hold_clock`]) and moved by
//! the test only when nothing is in flight: they assert on the limiter's and the timers' own
//! arithmetic, never on how fast the machine is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use iterable_export::{
    Client, DataType, Error, FileSink, Format, RateLimit, Sink, Window, WindowOptions, WindowedSummary,
};
use iterable_export_mock::{Fault, MockConfig, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, advance};

use crate::common::*;

const HOUR: Duration = Duration::from_secs(3600);

struct Run {
    output: Vec<u8>,
    result: Result<iterable_export::WindowedSummary, Error>,
}

async fn windowed(
    client: &Client,
    data_type: DataType,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    options: WindowOptions,
) -> Result<Run, BoxError> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("out");
    let mut sink = FileSink::create(&path)?;
    let result = client
        .export(data_type)
        .between(from, to)
        .export_windows(options, &mut sink)
        .await;
    let output = match &result {
        Ok(_) => std::fs::read(sink.finish().await?)?,
        Err(_) => std::fs::read(iterable_export::part_path(&path))?,
    };
    Ok(Run { output, result })
}

/// A windowed export into a [`MemSink`] on a task of its own; the sink's events stay observable.
#[allow(clippy::type_complexity)]
fn spawn_windowed(
    client: &Client,
    data_type: DataType,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    options: WindowOptions,
) -> (
    tokio::task::JoinHandle<(MemSink, Result<WindowedSummary, Error>)>,
    Arc<Mutex<SinkEvents>>,
) {
    let mut sink = MemSink::new();
    let events = sink.events();
    let export = client.export(data_type).between(from, to);
    let task = tokio::spawn(async move {
        let result = export.export_windows(options, &mut sink).await;
        (sink, result)
    });
    (task, events)
}

fn options(hours: u64) -> WindowOptions {
    let size = HOUR * hours as u32;
    WindowOptions::default()
        .with_size(size)
        .with_max_size(size)
        .with_min_size(Duration::from_secs(60))
        .with_split_after(2)
        .with_format(Format::Ndjson)
}

/// Exports two days in 6-hour windows (8 requests) with `faults` queued, and checks the output is
/// exactly the served records: same multiset of lines, no duplicate, none missing.
async fn exact_under(
    faults: Vec<Fault>,
    client_config: impl Fn(&MockServer) -> Result<Client, Error>,
    mock_config: MockConfig,
) -> Result<(Client, MockServer, iterable_export::WindowedSummary), BoxError> {
    let mock = start(mock_config.clone()).await?;
    let client = client_config(&mock)?;
    for fault in faults {
        mock.inject(fault);
    }
    let (from, to) = (day(0), day(2));
    let run = windowed(&client, DataType::EmailSend, from, to, options(6)).await?;
    let summary = run.result?;
    let expected = expected_body(&mock_config, "emailSend", from, to);
    assert_eq!(run.output.len(), expected.len());
    assert_eq!(sorted_lines(&run.output), sorted_lines(&expected));
    assert_eq!(summary.records, 2 * mock_config.records_per_day);
    Ok((client, mock, summary))
}

#[tokio::test]
async fn status_faults_are_retried_and_counted() -> TestResult {
    for status in [500u16, 502, 503, 504, 429] {
        let faults = vec![Fault::Status { status, count: 3 }];
        let (client, mock, summary) = exact_under(faults, client, config(400)).await?;
        assert_eq!(summary.windows, 8, "status {status}");
        assert_eq!(client.stats().retries, 3, "status {status}");
        assert_eq!(client.stats().requests, 11, "status {status}");
        assert_eq!(mock.counters().requests, 11, "status {status}");
        assert_eq!(
            client.stats().rate_limited,
            if status == 429 { 3 } else { 0 },
            "status {status}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_429_storm_with_and_without_retry_after() -> TestResult {
    for retry_after in [true, false] {
        let mock_config = config(200).with_rate_limit(
            iterable_export_mock::RateLimit::new(10_000, Duration::from_secs(60)).with_retry_after(retry_after),
        );
        let faults = vec![Fault::Status { status: 429, count: 5 }];
        let fast_limit = |mock: &MockServer| {
            // A limit of 600/min makes the penalty after a 429 without Retry-After 100 ms.
            Client::builder()
                .api_key(mock.api_key())
                .base_url(mock.base_url())
                .rate_limit(RateLimit::per_minute(600))
                .retry_policy(fast_retries(6))
                .build()
        };
        let (client, _mock, _) = exact_under(faults, fast_limit, mock_config).await?;
        assert_eq!(client.stats().rate_limited, 5, "retry_after {retry_after}");
        assert_eq!(client.stats().retries, 5, "retry_after {retry_after}");
    }
    Ok(())
}

#[tokio::test]
async fn truncation_at_random_offsets_never_loses_or_duplicates() -> TestResult {
    for seed in [1u64, 7, 42, 1234] {
        // Offsets spread over a window's body (~400 records of ~1 kB per 6 hours).
        let offset = (seed * 7919) % 200_000 + 1;
        let faults = vec![Fault::Truncate {
            after_bytes: offset,
            count: 1,
        }];
        let (client, _mock, summary) = exact_under(faults, client, config(1600).with_seed(seed)).await?;
        assert_eq!((summary.retries, summary.splits), (1, 0), "seed {seed}: {summary:?}");
        assert_eq!(client.stats().requests, 9, "seed {seed}");
    }
    Ok(())
}

/// Proves: a window cut mid-body `split_after` (2) times is split in half, the halves are
/// delivered, and the next window is back at full size: 8 windows, one of them in two halves.
#[tokio::test]
async fn a_window_that_keeps_failing_mid_body_is_split() -> TestResult {
    // After a split the engine halves the window size and doubles it again after a window that
    // arrived in less than half a rate-limit slot. A slot of a minute (10 000 requests a week)
    // makes every body here fast, on any machine; with the usual 6 ms slot the count of windows
    // would depend on the machine's speed.
    let long_slots = |mock: &MockServer| {
        Client::builder()
            .api_key(mock.api_key())
            .base_url(mock.base_url())
            .rate_limit(RateLimit::new(10_000, Duration::from_secs(7 * 86_400)))
            .retry_policy(fast_retries(3))
            .build()
    };
    let (client, _mock, summary) = exact_under(
        vec![Fault::Truncate {
            after_bytes: 5_000,
            count: 2,
        }],
        long_slots,
        config(800),
    )
    .await?;
    assert_eq!(summary.splits, 1);
    assert_eq!(summary.windows, 9, "8 windows, one of them in two halves");
    assert_eq!(client.stats().windows_split, 1);
    Ok(())
}

/// Proves: a body that stalls longer than the read timeout fails after the read timeout of
/// silence — not before it, and without waiting for the stall to end — and the window is retried
/// and delivered exactly once. The clock is paused and held (see [`hold_clock`]): it moves only
/// when the test says so, so the 250 ms are the client's timer, not the machine's speed.
#[tokio::test(start_paused = true)]
async fn a_stall_longer_than_the_read_timeout_is_retried() -> TestResult {
    let _clock = hold_clock();
    let mock_config = config(800);
    let mock = start(mock_config.clone()).await?;
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .read_timeout(Duration::from_millis(250))
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(fast_retries(3))
        .build()?;
    mock.inject(Fault::Stall {
        after_bytes: 20_000,
        duration: Duration::from_secs(2),
        count: 1,
    });
    let t0 = Instant::now();
    let (from, to) = (day(0), day(2));
    let (task, events) = spawn_windowed(&client, DataType::EmailSend, from, to, options(6));
    // The first body stops after 20 000 bytes; let the client read them.
    wait_for("the first body to stall", || {
        mock.requests().first().is_some_and(|r| r.bytes_sent == 20_000)
    })
    .await;
    let_run(20).await;
    // Move the clock in 10 ms steps until the attempt fails.
    let failed_at = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "no read timeout before the stall ended"
        );
        advance(Duration::from_millis(10)).await;
        let_run(2).await;
        if client.stats().retries == 1 {
            break t0.elapsed();
        }
    };
    assert!(
        failed_at >= Duration::from_millis(250),
        "the attempt failed after {failed_at:?} of silence, before the read timeout"
    );
    let first = &mock.requests()[0];
    assert_eq!((first.bytes_sent, first.completed), (20_000, false), "still stalled");
    // The retry's backoff is at most 5 ms; after that nothing needs the clock any more.
    while client.stats().requests < 2 {
        assert!(
            t0.elapsed() < failed_at + Duration::from_secs(1),
            "the retry was never sent"
        );
        advance(Duration::from_millis(1)).await;
        let_run(1).await;
    }
    wait_for("the export to finish", || task.is_finished()).await;
    let (sink, result) = task.await?;
    let summary = result?;
    assert_eq!((summary.windows, summary.retries, summary.splits), (8, 1, 0));
    assert_records(
        sink.committed(),
        &expected_body(&mock_config, "emailSend", from, to),
        "output",
    );
    assert_eq!(mock.counters().requests, 9);
    let events = snapshot(&events);
    assert_eq!((events.begins.len(), events.commits, events.aborts), (9, 8, 1));
    Ok(())
}

/// Proves: refused connections (nothing listening yet) are transient: each is retried after the
/// backoff until the server listens, then the export is exact. The port is bound by the test from
/// the start — connections to a bound socket that does not listen are refused, and no other
/// process can take the port — and the clock is held, so the number of refusals is exact.
#[tokio::test(start_paused = true)]
async fn a_server_refusing_connections_for_a_while() -> TestResult {
    let _clock = hold_clock();
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let port = socket.local_addr()?.port();
    let client = Client::builder()
        .api_key("test-api-key")
        .base_url(format!("http://127.0.0.1:{port}/api"))
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(
            iterable_export::RetryPolicy::default()
                .with_max_retries(100)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_millis(20)),
        )
        .build()?;
    let mock_config = config(100);
    let (task, events) = spawn_windowed(&client, DataType::EmailSend, day(0), day(1), options(24));
    let mut mock = None;
    let mut socket = Some(socket);
    for refused in 1..=5 {
        wait_for("a refused attempt", || client.stats().retries == refused).await;
        assert_eq!(client.stats().requests, refused);
        if refused == 5
            && let Some(socket) = socket.take()
        {
            mock = Some(MockServer::start_on(socket.listen(1024)?, mock_config.clone()).await?);
        }
        // The backoff (10 to 20 ms with jitter) ends.
        advance(Duration::from_millis(20)).await;
    }
    wait_for("the export to finish", || task.is_finished()).await;
    let (sink, result) = task.await?;
    assert_eq!(result?.records, 100);
    assert_records(
        sink.committed(),
        &expected_body(&mock_config, "emailSend", day(0), day(1)),
        "output",
    );
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries), (6, 5), "{stats:?}");
    assert_eq!(mock.ok_or("the mock never started")?.counters().requests, 1);
    let events = snapshot(&events);
    assert_eq!((events.begins.len(), events.commits, events.aborts), (1, 1, 0));
    Ok(())
}

#[tokio::test]
async fn exhausted_retries_name_the_window_and_keep_what_was_committed() -> TestResult {
    let mock_config = config(400);
    let (mock, client) = mock_and_client(mock_config.clone()).await?;
    // The first two windows succeed; then every attempt fails.
    let run = {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out");
        let mut sink = FileSink::create(&path)?;
        let export = client.export(DataType::EmailSend);
        let first = export
            .clone()
            .between(day(0), day_at(0, 12))
            .export_windows(options(6), &mut sink)
            .await?;
        assert_eq!(first.windows, 2);
        mock.inject(Fault::Status {
            status: 500,
            count: 100,
        });
        let err = export
            .between(day_at(0, 12), day(1))
            .export_windows(options(6), &mut sink)
            .await
            .err()
            .ok_or("expected an error")?;
        (std::fs::read(iterable_export::part_path(&path))?, err)
    };
    let (output, err) = run;
    assert!(
        matches!(&err, Error::WindowFailed { window, .. } if window == "[2024-01-01T12:00:00Z, 2024-01-01T18:00:00Z)"),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("export of emailSend window [2024-01-01T12:00:00Z, 2024-01-01T18:00:00Z) failed after 4 attempt(s): Iterable API error: HTTP 500 [GenericError]"), "{err}");
    assert_eq!(err.status(), Some(500));
    assert_eq!(
        sorted_lines(&output),
        sorted_lines(&expected_body(&mock_config, "emailSend", day(0), day_at(0, 12)))
    );
    Ok(())
}

#[tokio::test]
async fn non_transient_errors_fail_fast() -> TestResult {
    let (mock, client) = mock_and_client(config(100)).await?;
    mock.inject(Fault::Status { status: 400, count: 1 });
    let run = windowed(&client, DataType::EmailSend, day(0), day(1), options(6)).await?;
    let err = run.result.err().ok_or("expected an error")?;
    assert!(
        matches!(&err, Error::WindowFailed { attempts: 1, source, .. } if matches!(**source, Error::Api { status: 400, .. })),
        "{err:?}"
    );
    assert_eq!(mock.counters().requests, 1);
    assert!(run.output.is_empty());
    Ok(())
}

/// A mock serving `records_per_day` and a client without retries, both held to 4 requests per
/// `per` on the same (paused) clock.
async fn limited_to_4(records_per_day: u64, per: Duration) -> Result<(MockConfig, MockServer, Client), BoxError> {
    let mock_config = config(records_per_day).with_rate_limit(iterable_export_mock::RateLimit::new(4, per));
    let mock = start(mock_config.clone()).await?;
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::new(4, per))
        .retry_policy(fast_retries(0))
        .build()?;
    Ok((mock_config, mock, client))
}

/// Proves: one client's limiter, shared by three concurrent windowed exports (4 windows each),
/// lets exactly 4 requests through per rolling interval — never a 5th early: the mock enforces
/// the same limit on the same paused clock and answers no 429 — and releases the waiting ones as
/// soon as a slot frees (within 10 % of the interval), so 12 requests take two intervals. Every
/// record arrives once. The clock is paused and held; the test moves it in 10 ms steps, each
/// only when no request is in flight, so what is measured is the limiter, not the machine.
#[tokio::test(start_paused = true)]
async fn rate_limit_compliance_zero_429s_near_the_minimum_time() -> TestResult {
    let _clock = hold_clock();
    let per = Duration::from_secs(1);
    let (mock_config, mock, client) = limited_to_4(40, per).await?;
    let t0 = Instant::now();
    let data_types = [DataType::EmailSend, DataType::EmailOpen, DataType::Purchase];
    let runs: Vec<_> = data_types
        .iter()
        .map(|dt| spawn_windowed(&client, *dt, day(0), day(1), options(6)))
        .collect();
    let quiescent = || {
        let sent = client.stats().requests;
        let committed: u64 = runs.iter().map(|(_, events)| snapshot(events).commits).sum();
        sent == mock.counters().requests && sent == committed
    };
    // (time, requests sent so far), observed whenever nothing is in flight.
    let mut seen = Vec::new();
    loop {
        settle("the requests in flight", &quiescent).await;
        seen.push((t0.elapsed(), client.stats().requests));
        if runs.iter().all(|(task, _)| task.is_finished()) {
            break;
        }
        assert!(t0.elapsed() < per * 10, "the exports did not finish: {seen:?}");
        advance(Duration::from_millis(10)).await;
    }
    let sent_before = |t: Duration| seen.iter().filter(|(at, _)| *at < t).map(|(_, n)| *n).max();
    let first_time = |n: u64| seen.iter().find(|(_, sent)| *sent >= n).map(|(at, _)| *at);
    assert_eq!(sent_before(per), Some(4), "{seen:?}");
    assert_eq!(sent_before(per * 2), Some(8), "{seen:?}");
    let second = first_time(5).ok_or("no 5th request")?;
    let third = first_time(9).ok_or("no 9th request")?;
    assert!(
        second <= per.mul_f64(1.1),
        "the 5th request waited {second:?}, not about {per:?}"
    );
    assert!(third <= (per * 2).mul_f64(1.1), "the 9th request waited {third:?}");
    assert_eq!(seen.last().map(|(_, n)| *n), Some(12));
    for ((task, _), data_type) in runs.into_iter().zip(data_types) {
        let (sink, result) = task.await?;
        assert_eq!(result?.records, 40, "{data_type}");
        let expected = expected_body(&mock_config, &data_type.to_string(), day(0), day(1));
        assert_records(sink.committed(), &expected, &data_type.to_string());
    }
    let counters = mock.counters();
    assert_eq!(counters.rate_limited, 0, "the client provoked 429s");
    assert_eq!(counters.requests, 12, "no request was wasted");
    Ok(())
}

/// Proves: windows double while bodies arrive fast, up to `max_size`: 60 days take 6 requests
/// (1, 2, 4, 8, 16 days, then the 29 left) instead of 60, within the rate limit, every record
/// once. A limit of 4 per hour makes a slot 15 minutes, so every body here counts as fast
/// whatever the machine's load; the 5th and 6th requests wait an hour for the limiter on the
/// paused clock, which the test moves (a minute at a time, only when nothing is in flight), and
/// the mock enforces the same limit on the same clock.
#[tokio::test(start_paused = true)]
async fn windows_grow_while_bodies_arrive_fast() -> TestResult {
    let _clock = hold_clock();
    let per = HOUR;
    let (mock_config, mock, client) = limited_to_4(10, per).await?;
    let options = WindowOptions::default()
        .with_size(HOUR * 24)
        .with_max_size(HOUR * 24 * 30);
    let t0 = Instant::now();
    let (task, events) = spawn_windowed(&client, DataType::EmailSend, day(0), day(60), options);
    let quiescent = || {
        let sent = client.stats().requests;
        sent == mock.counters().requests && sent == snapshot(&events).commits
    };
    loop {
        settle("the request in flight", &quiescent).await;
        if task.is_finished() {
            break;
        }
        assert!(t0.elapsed() < per * 3, "the export did not finish");
        advance(Duration::from_secs(60)).await;
    }
    let (sink, result) = task.await?;
    let summary = result?;
    let days: Vec<i64> = snapshot(&events)
        .begins
        .iter()
        .map(|w| w.len().num_seconds() / 86_400)
        .collect();
    assert_eq!(days, [1, 2, 4, 8, 16, 29]);
    assert_eq!(summary.windows, 6);
    assert_eq!(mock.counters().requests, 6);
    assert_eq!(mock.counters().rate_limited, 0);
    assert_records(
        sink.committed(),
        &expected_body(&mock_config, "emailSend", day(0), day(60)),
        "output",
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Retry-After as an HTTP date.

/// A minimal HTTP/1.1 server on loopback for what the mock cannot send: answers request `n`
/// (1-based) with `respond(n)` (a whole raw response) and closes the connection.
struct RawServer {
    base_url: String,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    async fn start(respond: impl Fn(u64) -> String + Send + Sync + 'static) -> Result<RawServer, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}/api", listener.local_addr()?);
        let requests = Arc::new(AtomicU64::new(0));
        let respond = Arc::new(respond);
        let task = tokio::spawn({
            let requests = requests.clone();
            async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let (requests, respond) = (requests.clone(), respond.clone());
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 4096];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                        let _ = stream.write_all(respond(n).as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        });
        Ok(RawServer {
            base_url,
            requests,
            task,
        })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const THREE_RECORDS: &str = concat!(
    r#"{"createdAt":"2024-01-01 01:00:00 +00:00","email":"a@example.com","recordId":"r1"}"#,
    "\n",
    r#"{"createdAt":"2024-01-01 02:00:00 +00:00","email":"b@example.com","recordId":"r2"}"#,
    "\n",
    r#"{"createdAt":"2024-01-01 03:00:00 +00:00","email":"c@example.com","recordId":"r3"}"#,
    "\n",
);

/// The first request gets a 429 whose `Retry-After` is an IMF-fixdate 30 s ahead (of the real
/// clock, which is what the client compares it with); every other one the three records.
fn retry_after_date_then_records(n: u64) -> String {
    if n == 1 {
        let at = chrono::Utc::now() + chrono::TimeDelta::seconds(30);
        let body = r#"{"msg":"Exceeded rate limit","code":"RateLimitExceeded","params":{}}"#;
        format!(
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            at.format("%a, %d %b %Y %H:%M:%S GMT"),
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{THREE_RECORDS}",
            THREE_RECORDS.len()
        )
    }
}

/// Proves: `Retry-After: <HTTP date>` is honoured: the retry waits until that date (29 to 30 s
/// here), not the limiter's usual penalty (6 ms at this limit) nor longer, and the export then
/// completes exactly. The clock is held; the test moves it a second at a time, only when no
/// request is in flight.
#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured() -> TestResult {
    let _clock = hold_clock();
    let server = RawServer::start(retry_after_date_then_records).await?;
    let client = Client::builder()
        .api_key("test-api-key")
        .base_url(server.base_url.clone())
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(fast_retries(3))
        .build()?;
    let t0 = Instant::now();
    let (task, events) = spawn_windowed(&client, DataType::EmailSend, day(0), day(1), options(24));
    wait_for("the 429", || client.stats().rate_limited == 1).await;
    let retried_at = loop {
        settle("the request in flight", || client.stats().requests == server.requests()).await;
        if server.requests() == 2 {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "never retried");
        advance(Duration::from_secs(1)).await;
    };
    // 30 s ahead, to the whole second: 29 to 30 s; 20 s leaves room for a slow machine between
    // the server's clock and the client's.
    assert!(
        (Duration::from_secs(20)..=Duration::from_secs(31)).contains(&retried_at),
        "retried after {retried_at:?}"
    );
    wait_for("the export to finish", || task.is_finished()).await;
    let (sink, result) = task.await?;
    assert_eq!(result?.records, 3);
    assert_records(sink.committed(), THREE_RECORDS.as_bytes(), "output");
    let stats = client.stats();
    assert_eq!(
        (stats.requests, stats.rate_limited, stats.retries),
        (2, 1, 1),
        "{stats:?}"
    );
    assert_eq!(server.requests(), 2);
    assert_eq!(snapshot(&events).commits, 1);

    // Without retries the error carries the wait the date means.
    let server = RawServer::start(retry_after_date_then_records).await?;
    let client = Client::builder()
        .api_key("test-api-key")
        .base_url(server.base_url.clone())
        .retry_policy(iterable_export::RetryPolicy::none())
        .build()?;
    let mut sink = MemSink::new();
    let err = client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(options(24), &mut sink)
        .await
        .err()
        .ok_or("expected the 429 to fail the export")?;
    let Error::WindowFailed { source, attempts, .. } = &err else {
        panic!("not WindowFailed: {err:?}");
    };
    assert_eq!(*attempts, 1);
    assert!(
        matches!(**source, Error::RateLimited { retry_after: Some(d), .. }
            if (Duration::from_secs(20)..=Duration::from_secs(30)).contains(&d)),
        "{source:?}"
    );
    assert_eq!(server.requests(), 1);
    assert!(sink.committed().is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A sink that fails.

/// A [`MemSink`] that fails with an I/O error on its `fail_on_record`-th record or its
/// `fail_on_commit`-th commit.
struct FailingSink {
    inner: MemSink,
    fail_on_record: Option<u64>,
    fail_on_commit: Option<u64>,
    records: u64,
    commits: u64,
}

impl FailingSink {
    fn new(fail_on_record: Option<u64>, fail_on_commit: Option<u64>) -> Self {
        FailingSink {
            inner: MemSink::new(),
            fail_on_record,
            fail_on_commit,
            records: 0,
            commits: 0,
        }
    }
}

fn disk_full(context: String) -> Error {
    Error::Io {
        context,
        source: std::io::Error::other("disk full"),
    }
}

impl Sink for FailingSink {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.inner.begin(window).await
    }

    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.records += 1;
        if Some(self.records) == self.fail_on_record {
            return Err(disk_full(format!("test sink: cannot store record {}", self.records)));
        }
        self.inner.record(record).await
    }

    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        self.commits += 1;
        if Some(self.commits) == self.fail_on_commit {
            return Err(disk_full(format!("test sink: cannot commit window {}", self.commits)));
        }
        self.inner.commit(window, records).await
    }

    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.inner.abort(window).await
    }
}

/// Exports 2024-01-01 in four 6-hour windows of 25 records into `sink`, which must fail; checks
/// that the export stopped there: what the sink committed before stays (the records until
/// `committed_until`), no window after the failing one is requested (`requests` in all), and the
/// sink's error is not retried. Returns the error and the sink.
async fn export_until_the_sink_fails(
    mut sink: FailingSink,
    committed_until: DateTime<Utc>,
    requests: u64,
) -> Result<(Error, FailingSink), BoxError> {
    let mock_config = config(100);
    let (mock, client) = mock_and_client(mock_config.clone()).await?;
    let err = client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(options(6), &mut sink)
        .await
        .err()
        .ok_or("expected the sink's error")?;
    assert_records(
        sink.inner.committed(),
        &expected_body(&mock_config, "emailSend", day(0), committed_until),
        "committed",
    );
    assert_eq!(mock.counters().requests, requests, "no window after the failing one");
    assert_eq!(client.stats().retries, 0, "a sink's error is not retried");
    Ok((err, sink))
}

/// Proves: an error from the sink's `record` ends the export with exactly that error (not retried,
/// not wrapped), the window in progress is aborted, earlier windows stay committed, and no further
/// window is requested.
#[tokio::test]
async fn a_sink_that_fails_on_a_record_stops_the_export() -> TestResult {
    // Record 60 is the 10th of the third window: two windows stay committed.
    let (err, sink) = export_until_the_sink_fails(FailingSink::new(Some(60), None), day_at(0, 12), 3).await?;
    assert!(
        matches!(&err, Error::Io { context, source } if context == "test sink: cannot store record 60" && source.to_string() == "disk full"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "test sink: cannot store record 60: disk full");
    let events = snapshot(&sink.inner.events());
    assert_eq!((events.begins.len(), events.commits, events.aborts), (3, 2, 1));
    assert_eq!(events.records, 59);
    Ok(())
}

/// Proves: an error from the sink's `commit` ends the export with exactly that error, and no
/// further window is requested; what the sink committed before stays.
#[tokio::test]
async fn a_sink_that_fails_to_commit_stops_the_export() -> TestResult {
    let (err, sink) = export_until_the_sink_fails(FailingSink::new(None, Some(2)), day_at(0, 6), 2).await?;
    assert!(
        matches!(&err, Error::Io { context, .. } if context == "test sink: cannot commit window 2"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "test sink: cannot commit window 2: disk full");
    let events = snapshot(&sink.inner.events());
    assert_eq!((events.begins.len(), events.commits, events.records), (2, 1, 50));
    assert_eq!(events.aborts, 1, "the failed commit's window is taken back");
    Ok(())
}
