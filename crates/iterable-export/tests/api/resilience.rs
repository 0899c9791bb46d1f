//! The windowed engine against faults: exactly-once delivery, splitting, rate-limit compliance.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use iterable_export::{Client, DataType, Error, FileSink, Format, RateLimit, WindowOptions};
use iterable_export_mock::{Fault, MockConfig, MockServer};

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
        Ok(_) => std::fs::read(sink.finish()?)?,
        Err(_) => std::fs::read(iterable_export::part_path(&path))?,
    };
    Ok(Run { output, result })
}

fn options(hours: u64) -> WindowOptions {
    let size = HOUR * hours as u32;
    WindowOptions {
        size,
        max_size: size,
        min_size: Duration::from_secs(60),
        split_after: 2,
        format: Format::Ndjson,
    }
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
    let (from, to) = (day(0, 0), day(2, 0));
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

#[tokio::test]
async fn a_window_that_keeps_failing_mid_body_is_split() -> TestResult {
    let (client, _mock, summary) = exact_under(
        vec![Fault::Truncate {
            after_bytes: 5_000,
            count: 2,
        }],
        client,
        config(800),
    )
    .await?;
    assert_eq!(summary.splits, 1);
    assert_eq!(summary.windows, 9, "8 windows, one of them in two halves");
    assert_eq!(client.stats().windows_split, 1);
    Ok(())
}

#[tokio::test]
async fn a_stall_longer_than_the_read_timeout_is_retried() -> TestResult {
    let slow = |mock: &MockServer| {
        Client::builder()
            .api_key(mock.api_key())
            .base_url(mock.base_url())
            .read_timeout(Duration::from_millis(250))
            .rate_limit(RateLimit::per_minute(10_000))
            .retry_policy(fast_retries(3))
            .build()
    };
    let faults = vec![Fault::Stall {
        after_bytes: 20_000,
        duration: Duration::from_secs(2),
        count: 1,
    }];
    let (_client, _mock, summary) = exact_under(faults, slow, config(800)).await?;
    assert_eq!(summary.retries, 1);
    Ok(())
}

#[tokio::test]
async fn a_server_refusing_connections_for_a_while() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base_url = format!("http://127.0.0.1:{port}/api");
    let client = Client::builder()
        .api_key("test-api-key")
        .base_url(base_url)
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(iterable_export::RetryPolicy {
            max_retries: 100,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
        })
        .build()?;
    let mock_config = config(100).with_bind(([127, 0, 0, 1], port).into());
    let late = tokio::spawn({
        let mock_config = mock_config.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            MockServer::start(mock_config).await
        }
    });
    let run = windowed(&client, DataType::EmailSend, day(0, 0), day(1, 0), options(24)).await?;
    let _mock = late.await??;
    run.result?;
    assert_eq!(
        run.output,
        expected_body(&mock_config, "emailSend", day(0, 0), day(1, 0))
    );
    assert!(client.stats().retries >= 5, "{:?}", client.stats());
    Ok(())
}

#[tokio::test]
async fn exhausted_retries_name_the_window_and_keep_what_was_committed() -> TestResult {
    let mock_config = config(400);
    let mock = start(mock_config.clone()).await?;
    let client = client(&mock)?;
    // The first two windows succeed; then every attempt fails.
    let run = {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("out");
        let mut sink = FileSink::create(&path)?;
        let export = client.export(DataType::EmailSend);
        let first = export
            .clone()
            .between(day(0, 0), day(0, 12))
            .export_windows(options(6), &mut sink)
            .await?;
        assert_eq!(first.windows, 2);
        mock.inject(Fault::Status {
            status: 500,
            count: 100,
        });
        let err = export
            .between(day(0, 12), day(1, 0))
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
        sorted_lines(&expected_body(&mock_config, "emailSend", day(0, 0), day(0, 12)))
    );
    Ok(())
}

#[tokio::test]
async fn non_transient_errors_fail_fast() -> TestResult {
    let mock = start(config(100)).await?;
    let client = client(&mock)?;
    mock.inject(Fault::Status { status: 400, count: 1 });
    let run = windowed(&client, DataType::EmailSend, day(0, 0), day(1, 0), options(6)).await?;
    let err = run.result.err().ok_or("expected an error")?;
    assert!(
        matches!(&err, Error::WindowFailed { attempts: 1, source, .. } if matches!(**source, Error::Api { status: 400, .. })),
        "{err:?}"
    );
    assert_eq!(mock.counters().requests, 1);
    assert!(run.output.is_empty());
    Ok(())
}

#[tokio::test]
async fn rate_limit_compliance_zero_429s_near_the_minimum_time() -> TestResult {
    // A compressed clock: 4 requests per second on both sides.
    let per = Duration::from_secs(1);
    let mock_config = config(40).with_rate_limit(iterable_export_mock::RateLimit::new(4, per));
    let mock = start(mock_config.clone()).await?;
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit { requests: 4, per })
        .retry_policy(fast_retries(0))
        .build()?;
    let started = Instant::now();
    // Three data types at once, 4 windows each: 12 requests under one limiter.
    let mut tasks = Vec::new();
    for data_type in [DataType::EmailSend, DataType::EmailOpen, DataType::Purchase] {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            windowed(&client, data_type, day(0, 0), day(1, 0), options(6))
                .await
                .map(|r| {
                    (
                        data_type,
                        r.output,
                        r.result.map(|s| s.records).map_err(|e| e.to_string()),
                    )
                })
        }));
    }
    for task in tasks {
        let (data_type, output, records) = task.await?.map_err(|e| e.to_string())?;
        assert_eq!(records, Ok(40), "{data_type}");
        assert_eq!(
            sorted_lines(&output),
            sorted_lines(&expected_body(
                &mock_config,
                &data_type.to_string(),
                day(0, 0),
                day(1, 0)
            ))
        );
    }
    let elapsed = started.elapsed();
    let counters = mock.counters();
    assert_eq!(counters.rate_limited, 0, "the client provoked 429s");
    assert_eq!(counters.requests, 12, "no request was wasted");
    // 12 requests at 4 per second: the last 8 wait for two full windows.
    let minimum = per * 2;
    assert!(
        elapsed >= minimum,
        "{elapsed:?} is below the theoretical minimum {minimum:?}: the limiter let requests through early"
    );
    assert!(
        elapsed <= minimum.mul_f64(1.1) + Duration::from_millis(300),
        "{elapsed:?} is not within 10% of {minimum:?}"
    );
    Ok(())
}

#[tokio::test]
async fn windows_grow_while_bodies_arrive_fast() -> TestResult {
    let mock_config = config(10).with_rate_limit(iterable_export_mock::RateLimit::new(4, Duration::from_secs(2)));
    let mock = start(mock_config.clone()).await?;
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit {
            requests: 4,
            per: Duration::from_secs(2),
        })
        .retry_policy(fast_retries(0))
        .build()?;
    let options = WindowOptions {
        size: HOUR * 24,
        max_size: HOUR * 24 * 30,
        ..WindowOptions::default()
    };
    let run = windowed(&client, DataType::EmailSend, day(0, 0), day(60, 0), options).await?;
    let summary = run.result?;
    // 1 + 2 + 4 + 8 + 16 days, then the 30-day cap: 6 requests instead of 60.
    assert_eq!(summary.windows, 6);
    assert_eq!(mock.counters().requests, 6);
    assert_eq!(mock.counters().rate_limited, 0);
    assert_eq!(
        sorted_lines(&run.output),
        sorted_lines(&expected_body(&mock_config, "emailSend", day(0, 0), day(60, 0)))
    );
    Ok(())
}
