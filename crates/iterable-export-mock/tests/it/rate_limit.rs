//! Rate limit: rolling window, 429 body, Retry-After, rejected requests do not use a slot.

use std::time::{Duration, Instant};

use iterable_export_mock::{MockConfig, MockServer, RateLimit};

use crate::{R, get};

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

#[tokio::test]
async fn fifth_request_in_the_window_gets_429_without_retry_after() -> R {
    let mock = MockServer::start(config(false)).await?;
    let start = Instant::now();
    for _ in 0..4 {
        assert_eq!(status_and_retry(&mock, Q).await?.0, 200);
    }
    let (status, retry, body) = status_and_retry(&mock, Q).await?;
    assert_eq!(status, 429);
    assert_eq!(retry, None);
    assert_eq!(
        body,
        r#"{"msg":"Exceeded rate limit for endpoint: /api/export/data.json, project: 1 ","code":"RateLimitExceeded","params":{}}"#
    );
    // data.csv has its own window
    let (status, _, _) = status_and_retry(&mock, "/export/data.csv?dataTypeName=emailSend&range=Today").await?;
    assert_eq!(status, 200);
    // other endpoints are not limited
    for _ in 0..6 {
        assert_eq!(
            status_and_retry(&mock, "/experiments/metrics?experimentId=1").await?.0,
            200
        );
    }
    // at t = 1 s: still limited; these rejections must not use slots
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(start.elapsed())).await;
    for _ in 0..2 {
        assert_eq!(status_and_retry(&mock, Q).await?.0, 429);
    }
    // at t = 2.1 s the four first requests left the window: four slots again, then 429
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(start.elapsed())).await;
    for i in 0..4 {
        assert_eq!(status_and_retry(&mock, Q).await?.0, 200, "request {i} after the window");
    }
    assert_eq!(status_and_retry(&mock, Q).await?.0, 429);
    let c = mock.counters();
    assert_eq!(c.rate_limited, 4);
    assert_eq!(c.by_status.get(&429), Some(&4));
    assert_eq!(c.by_status.get(&200), Some(&(4 + 1 + 6 + 4)));
    Ok(())
}

#[tokio::test]
async fn retry_after_is_seconds_until_a_slot_frees() -> R {
    let mock = MockServer::start(config(true).with_project_id(8575)).await?;
    let path = "/export/data.csv?dataTypeName=emailSend&range=Today";
    for _ in 0..4 {
        assert_eq!(status_and_retry(&mock, path).await?.0, 200);
    }
    let (status, retry, body) = status_and_retry(&mock, path).await?;
    assert_eq!(status, 429);
    assert_eq!(retry.as_deref(), Some("2"));
    assert_eq!(
        body,
        r#"{"msg":"Exceeded rate limit for endpoint: /api/export/data.csv, project: 8575 ","code":"RateLimitExceeded","params":{}}"#
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, retry, _) = status_and_retry(&mock, path).await?;
    assert_eq!((status, retry.as_deref()), (429, Some("1")));
    // honouring it works
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status_and_retry(&mock, path).await?.0, 200);
    // reset frees every slot
    mock.reset_rate_limit();
    for _ in 0..3 {
        assert_eq!(status_and_retry(&mock, path).await?.0, 200);
    }
    Ok(())
}
