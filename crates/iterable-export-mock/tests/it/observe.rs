//! Request log and counters.

use iterable_export_mock::MockServer;

use crate::{R, client, export_path, get_all, small};

#[tokio::test]
async fn log_and_counters() -> R {
    let mock = MockServer::start(small(10).with_api_key("s3cr3t-key")).await?;
    let p = export_path("json", "emailOpen", "2024-01-01 00:00:00", "2024-01-02 00:00:00");
    let (_, _, body) = get_all(&mock, &p).await?;
    let (_, _, csv) = get_all(&mock, "/export/data.csv?dataTypeName=emailOpen&range=All").await?;
    let unauth = client()
        .get(format!(
            "{}/export/data.json?dataTypeName=emailOpen&api_key=s3cr3t-key",
            mock.base_url()
        ))
        .send()
        .await?;
    assert_eq!(unauth.status().as_u16(), 401);
    let unauth_len = unauth.bytes().await?.len() as u64;
    let (status, _, bad) = get_all(&mock, "/export/data.json?dataTypeName=nope").await?;
    assert_eq!(status, 400);

    let log = mock.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/api/export/data.json");
    assert_eq!(log[0].query, p.split_once('?').map(|x| x.1).unwrap_or(""));
    assert_eq!(
        (log[0].status, log[0].bytes_sent, log[0].completed),
        (200, body.len() as u64, true)
    );
    assert!(log[0].api_key_present);
    assert_eq!(
        (log[1].path.as_str(), log[1].bytes_sent),
        ("/api/export/data.csv", csv.len() as u64)
    );
    assert_eq!((log[2].status, log[2].api_key_present), (401, false));
    assert_eq!(log[2].query, "dataTypeName=emailOpen&api_key=REDACTED");
    assert_eq!((log[3].status, log[3].bytes_sent), (400, bad.len() as u64));
    assert!(log.iter().all(|r| !format!("{r:?}").contains("s3cr3t")));
    assert!(log.iter().all(|r| r.fault.is_none()));

    let c = mock.counters();
    assert_eq!(c.requests, 4);
    assert_eq!(c.by_endpoint.get("/api/export/data.json"), Some(&3));
    assert_eq!(c.by_endpoint.get("/api/export/data.csv"), Some(&1));
    assert_eq!(c.by_status.get(&200), Some(&2));
    assert_eq!(c.by_status.get(&401), Some(&1));
    assert_eq!(c.by_status.get(&400), Some(&1));
    assert_eq!(
        c.bytes_sent,
        body.len() as u64 + csv.len() as u64 + unauth_len + bad.len() as u64
    );
    assert_eq!(c.rate_limited, 0);

    mock.clear_requests();
    assert!(mock.requests().is_empty());
    assert_eq!(mock.counters().requests, 4);
    Ok(())
}

#[tokio::test]
async fn log_is_bounded() -> R {
    let mock = MockServer::start(small(1).with_request_log_capacity(3)).await?;
    for i in 0..5 {
        get_all(&mock, &format!("/experiments/metrics?experimentId={i}")).await?;
    }
    let log = mock.requests();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].query, "experimentId=2");
    assert_eq!(mock.counters().requests, 5);
    Ok(())
}
