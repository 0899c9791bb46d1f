//! Error paths: each status, validation before sending, key safety.

use std::time::Duration;

use futures::TryStreamExt;
use iterable_export::{Client, DataType, Error, RateLimit};
use iterable_export_mock::Fault;

use crate::common::*;

const KEY: &str = "test-api-key";

fn assert_no_key(err: &Error) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(KEY), "the key leaked: {shown}");
}

async fn lines_of(client: &Client) -> Result<usize, Error> {
    let lines: Vec<_> = client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .lines()
        .await?
        .try_collect()
        .await?;
    Ok(lines.len())
}

#[tokio::test]
async fn unauthorized_with_and_without_a_body() -> TestResult {
    for with_body in [true, false] {
        let mock = start(config(10).with_unauthorized_body(with_body)).await?;
        let client = Client::builder()
            .api_key("wrong-key")
            .base_url(mock.base_url())
            .retry_policy(fast_retries(3))
            .build()?;
        let err = lines_of(&client).await.err().ok_or("expected an error")?;
        match &err {
            Error::Unauthorized { status: 401, code, .. } => {
                assert_eq!(code.as_deref(), with_body.then_some("BadApiKey"));
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        }
        assert!(
            err.to_string()
                .contains("check the key and that its project is in the region"),
            "{err}"
        );
        assert!(!err.to_string().contains("wrong-key"));
        assert_eq!(mock.counters().requests, 1, "401 is not retried");
    }
    Ok(())
}

#[tokio::test]
async fn transient_errors_are_retried_until_success() -> TestResult {
    let (mock, client) = mock_and_client(config(20)).await?;
    mock.inject(Fault::Status { status: 500, count: 1 });
    mock.inject(Fault::Status { status: 503, count: 1 });
    mock.inject(Fault::Status { status: 429, count: 1 });
    assert_eq!(lines_of(&client).await?, 20);
    assert_eq!(mock.counters().requests, 4);
    let stats = client.stats();
    assert_eq!((stats.requests, stats.retries, stats.rate_limited), (4, 3, 1));
    Ok(())
}

#[tokio::test]
async fn html_502_becomes_a_short_excerpt_when_retries_run_out() -> TestResult {
    let (mock, client) = mock_and_client(config(20)).await?;
    mock.inject(Fault::Status { status: 502, count: 10 });
    let err = lines_of(&client).await.err().ok_or("expected an error")?;
    match &err {
        Error::Api {
            status: 502,
            code: None,
            excerpt: Some(excerpt),
            ..
        } => {
            assert!(excerpt.contains("502") && !excerpt.contains('<'), "{excerpt}");
        }
        other => panic!("expected Api 502, got {other:?}"),
    }
    assert_eq!(mock.counters().requests, 4, "1 attempt + 3 retries");
    assert_no_key(&err);
    Ok(())
}

#[tokio::test]
async fn bad_params_fail_at_once_with_iterables_message() -> TestResult {
    let (mock, client) = mock_and_client(config(20)).await?;
    mock.inject(Fault::Status { status: 400, count: 1 });
    let err = lines_of(&client).await.err().ok_or("expected an error")?;
    assert!(
        matches!(
            &err,
            Error::Api {
                status: 400,
                msg: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_eq!(mock.counters().requests, 1);
    Ok(())
}

#[tokio::test]
async fn invalid_requests_never_reach_the_server() -> TestResult {
    let (mock, client) = mock_and_client(config(20)).await?;
    let cases: Vec<Result<(), Error>> = vec![
        client
            .export(DataType::EmailSend)
            .between(day(1), day(0))
            .lines()
            .await
            .map(drop),
        client.export(DataType::EmailSend).start(day(0)).lines().await.map(drop),
        client
            .export(DataType::EmailSend)
            .only_fields(["a"])
            .omit_fields(["b"])
            .csv()
            .await
            .map(drop),
        client
            .export(DataType::EmailSend)
            .only_fields(["a,b"])
            .ndjson()
            .await
            .map(drop),
        client.user_events("not-an-email").send().await.map(drop),
        client.experiment_metrics().send().await.map(drop),
        client
            .experiment_metrics()
            .experiment_ids(0..201)
            .send()
            .await
            .map(drop),
    ];
    for case in cases {
        assert!(matches!(case, Err(Error::InvalidRequest(_))), "{case:?}");
    }
    assert_eq!(mock.counters().requests, 0);
    Ok(())
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_with_the_key() -> TestResult {
    let (mock, client) = mock_and_client(config(20)).await?;
    mock.inject(Fault::Redirect { count: 1 });
    let err = lines_of(&client).await.err().ok_or("expected an error")?;
    assert!(matches!(&err, Error::Api { status: 302, .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("not followed, so that the API key is not sent there"),
        "{err}"
    );
    assert!(
        mock.redirect_hits().is_empty(),
        "the other host was contacted: {:?}",
        mock.redirect_hits()
    );
    assert!(!mock.redirect_received_api_key());
    Ok(())
}

#[tokio::test]
async fn a_stalled_body_times_out() -> TestResult {
    let mock = start(config(2000)).await?;
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .read_timeout(Duration::from_millis(300))
        .rate_limit(RateLimit::per_minute(10_000))
        .build()?;
    mock.inject(Fault::Stall {
        after_bytes: 10_000,
        duration: Duration::from_secs(3),
        count: 1,
    });
    let err = lines_of(&client).await.err().ok_or("expected an error")?;
    assert!(
        matches!(err, Error::Timeout(d) if d == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.is_transient());
    Ok(())
}

#[tokio::test]
async fn a_truncated_body_is_a_transport_error() -> TestResult {
    let (mock, client) = mock_and_client(config(2000)).await?;
    mock.inject(Fault::Truncate {
        after_bytes: 50_000,
        count: 1,
    });
    let err = lines_of(&client).await.err().ok_or("expected an error")?;
    assert!(matches!(&err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_no_key(&err);
    Ok(())
}
