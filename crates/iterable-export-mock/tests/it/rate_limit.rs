//! Rate limit: rolling window, 429 body, Retry-After, rejected requests do not use a slot.
//!
//! The mock's rolling window runs on tokio's clock, so these tests pause it and hold it still
//! (see [`hold_clock`]): every request of a burst arrives at the same instant, and the window's
//! edges are checked to the millisecond without depending on how fast the machine is.

use std::time::Duration;

use iterable_export_mock::{MockConfig, MockServer, RateLimit};
use tokio::time::advance;

use crate::{R, get, hold_clock};

const Q: &str = "/export/data.json?dataTypeName=emailSend&range=Today";

fn config(retry_after: bool) -> MockConfig {
    MockConfig::default()
        .with_records_per_day(2)
        .with_rate_limit(RateLimit::new(4, Duration::from_secs(2)).with_retry_after(retry_after))
}

async fn status_and_retry(mock: &MockServer, path: &str) -> Result<(u16, Option<String>, String), crate::E> {
    let resp = get(mock, path).await?;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, retry, resp.text().await?))
}

async fn status(mock: &MockServer, path: &str) -> Result<u16, crate::E> {
    Ok(status_and_retry(mock, path).await?.0)
}

/// Proves: 4 requests per rolling 2 s on data.json; the 5th gets Iterable's 429 body without
/// `Retry-After`; data.csv has its own window; other endpoints are not limited; rejected requests
/// use no slot; the slots free exactly 2 s after the requests that took them.
#[tokio::test(start_paused = true)]
async fn fifth_request_in_the_window_gets_429_without_retry_after() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config(false)).await?;
    for _ in 0..4 {
        assert_eq!(status(&mock, Q).await?, 200);
    }
    let (status_5, retry, body) = status_and_retry(&mock, Q).await?;
    assert_eq!(status_5, 429);
    assert_eq!(retry, None);
    assert_eq!(
        body,
        r#"{"msg":"Exceeded rate limit for endpoint: /api/export/data.json, project: 1 ","code":"RateLimitExceeded","params":{}}"#
    );
    // data.csv has its own window
    assert_eq!(
        status(&mock, "/export/data.csv?dataTypeName=emailSend&range=Today").await?,
        200
    );
    // other endpoints are not limited
    for _ in 0..6 {
        assert_eq!(status(&mock, "/experiments/metrics?experimentId=1").await?, 200);
    }
    // at t = 1 s and t = 1.999 s: still limited; these rejections must not use slots
    advance(Duration::from_secs(1)).await;
    for _ in 0..2 {
        assert_eq!(status(&mock, Q).await?, 429);
    }
    advance(Duration::from_millis(999)).await;
    assert_eq!(status(&mock, Q).await?, 429, "one millisecond before the window ends");
    // at t = 2 s the four first requests left the window: four slots again, then 429
    advance(Duration::from_millis(1)).await;
    for i in 0..4 {
        assert_eq!(status(&mock, Q).await?, 200, "request {i} after the window");
    }
    assert_eq!(status(&mock, Q).await?, 429);
    let c = mock.counters();
    assert_eq!(c.rate_limited, 5);
    assert_eq!(c.by_status.get(&429), Some(&5));
    assert_eq!(c.by_status.get(&200), Some(&(4 + 1 + 6 + 4)));
    Ok(())
}

/// Proves: `Retry-After` is the whole seconds until the oldest slot frees, rounded up; waiting
/// that long is enough; `reset_rate_limit` frees every slot.
#[tokio::test(start_paused = true)]
async fn retry_after_is_seconds_until_a_slot_frees() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(config(true).with_project_id(8575)).await?;
    let path = "/export/data.csv?dataTypeName=emailSend&range=Today";
    for _ in 0..4 {
        assert_eq!(status(&mock, path).await?, 200);
    }
    let (status_5, retry, body) = status_and_retry(&mock, path).await?;
    assert_eq!(status_5, 429);
    assert_eq!(retry.as_deref(), Some("2"));
    assert_eq!(
        body,
        r#"{"msg":"Exceeded rate limit for endpoint: /api/export/data.csv, project: 8575 ","code":"RateLimitExceeded","params":{}}"#
    );
    advance(Duration::from_millis(1200)).await;
    let (status_6, retry, _) = status_and_retry(&mock, path).await?;
    assert_eq!((status_6, retry.as_deref()), (429, Some("1")), "0.8 s left, rounded up");
    advance(Duration::from_millis(799)).await;
    let (status_7, retry, _) = status_and_retry(&mock, path).await?;
    assert_eq!((status_7, retry.as_deref()), (429, Some("1")), "1 ms left, rounded up");
    // honouring it works: at t = 2 s every slot is free again
    advance(Duration::from_millis(1)).await;
    for _ in 0..4 {
        assert_eq!(status(&mock, path).await?, 200);
    }
    assert_eq!(status(&mock, path).await?, 429);
    // reset frees every slot
    mock.reset_rate_limit();
    for _ in 0..4 {
        assert_eq!(status(&mock, path).await?, 200);
    }
    assert_eq!(status(&mock, path).await?, 429);
    assert_eq!(mock.counters().rate_limited, 5);
    Ok(())
}
