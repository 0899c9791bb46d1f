//! Fault injection.

use std::time::Duration;

use futures::StreamExt;
use iterable_export_mock::{Fault, MockServer, RateLimit};
use tokio::time::{Instant, advance};

use crate::{R, client, expected_body, export_path, get, get_all, hold_clock, json, let_run, lines, small};

const S: &str = "2024-01-01 00:00:00";
const E: &str = "2024-01-02 00:00:00";

fn path() -> String {
    export_path("json", "emailSend", S, E)
}

#[tokio::test]
async fn status_faults_then_success() -> R {
    let mock = MockServer::start(small(20)).await?;
    mock.inject(Fault::Status { status: 500, count: 2 });
    mock.inject(Fault::Status { status: 502, count: 1 });
    mock.inject(Fault::Status { status: 503, count: 1 });
    mock.inject(Fault::Status { status: 504, count: 1 });
    mock.inject(Fault::Status { status: 429, count: 1 });
    assert_eq!(mock.pending_faults().len(), 5);
    for _ in 0..2 {
        let (status, ct, body) = get_all(&mock, &path()).await?;
        assert_eq!((status, ct.as_str()), (500, "application/json"));
        assert_eq!(
            String::from_utf8(body)?,
            r#"{"msg":"Something went wrong. Please try again later.","code":"GenericError","params":{}}"#
        );
    }
    for code in [502u16, 503, 504] {
        let (status, ct, body) = get_all(&mock, &path()).await?;
        assert_eq!(status, code);
        assert!(ct.starts_with("text/html"), "{ct}");
        assert!(String::from_utf8(body)?.contains(&format!("<h1>{code} ")));
    }
    let (status, ct, body) = get_all(&mock, &export_path("csv", "emailSend", S, E)).await?;
    assert_eq!((status, ct.as_str()), (429, "application/json"));
    assert_eq!(json(&body)?["code"], "RateLimitExceeded");
    let (status, _, body) = get_all(&mock, &path()).await?;
    assert_eq!(status, 200);
    assert_eq!(body, expected_body(&mock, "emailSend", S, E)?);
    assert!(mock.pending_faults().is_empty());
    assert_eq!(mock.counters().faults_applied, 6);
    Ok(())
}

#[tokio::test]
async fn status_faults_do_not_use_rate_limit_slots_and_skip_other_endpoints() -> R {
    let mock = MockServer::start(small(5).with_rate_limit(RateLimit::new(1, Duration::from_secs(60)))).await?;
    mock.inject(Fault::Status { status: 500, count: 1 });
    let (status, _, _) = get_all(&mock, "/experiments/metrics?experimentId=1").await?;
    assert_eq!(status, 200);
    assert_eq!(get_all(&mock, &path()).await?.0, 500);
    assert_eq!(get_all(&mock, &path()).await?.0, 200);
    assert_eq!(get_all(&mock, &path()).await?.0, 429);
    Ok(())
}

#[tokio::test]
async fn truncated_body_is_an_incomplete_chunked_body() -> R {
    let mock = MockServer::start(small(500).with_chunk_size(4096)).await?;
    let expected = expected_body(&mock, "emailSend", S, E)?;
    assert!(expected.len() > 100_000);
    mock.inject(Fault::Truncate {
        after_bytes: 10_000,
        count: 1,
    });
    let resp = get(&mock, &path()).await?;
    assert_eq!(resp.status().as_u16(), 200);
    let mut got = Vec::new();
    let mut stream = resp.bytes_stream();
    let mut error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(error.is_some(), "the client must see an error");
    assert_eq!(got.len(), 10_000);
    assert_eq!(got.as_slice(), &expected[..10_000]);
    // the next response is whole
    let (_, _, body) = get_all(&mock, &path()).await?;
    assert_eq!(body, expected);
    let log = mock.requests();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].bytes_sent, log[0].completed), (10_000, false));
    assert_eq!(log[0].fault.as_deref(), Some("truncate:10000:1"));
    assert_eq!((log[1].bytes_sent, log[1].completed), (expected.len() as u64, true));
    Ok(())
}

/// Proves: a stall pauses the body after exactly `after_bytes` bytes for exactly `duration`, then
/// the body goes on to the end, complete. Tokio's clock is paused and held still, so "not before
/// 800 ms" and "at 800 ms" are exact, whatever the machine's load.
#[tokio::test(start_paused = true)]
async fn stall_pauses_mid_body() -> R {
    let _clock = hold_clock();
    let mock = MockServer::start(small(100)).await?;
    let expected = expected_body(&mock, "emailSend", S, E)?;
    assert!(expected.len() > 20_000);
    mock.inject(Fault::Stall {
        after_bytes: 5_000,
        duration: Duration::from_millis(800),
        count: 1,
    });
    let start = Instant::now();
    let resp = get(&mock, &path()).await?;
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while got.len() < 5_000 {
        got.extend_from_slice(&stream.next().await.ok_or("the body ended before the stall")??);
    }
    // Without the stall the first chunk (64 KiB) would hold the whole body.
    assert_eq!(got.len(), 5_000, "the stall cuts the body after exactly 5000 bytes");
    assert_eq!(start.elapsed(), Duration::ZERO);
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Some(chunk) = stream.next().await {
            rest.extend_from_slice(&chunk?);
        }
        Ok::<_, reqwest::Error>((rest, start.elapsed()))
    });
    // One millisecond before the stall ends, nothing more has come.
    advance(Duration::from_millis(799)).await;
    let_run(20).await;
    assert!(!rest.is_finished(), "the body went on before the stall ended");
    let log = mock.requests();
    assert_eq!((log[0].bytes_sent, log[0].completed), (5_000, false));
    // At 800 ms the rest arrives, and the body is complete.
    advance(Duration::from_millis(1)).await;
    let (rest, ended_at) = rest.await??;
    assert_eq!(ended_at, Duration::from_millis(800));
    got.extend_from_slice(&rest);
    assert_eq!(got, expected);
    let log = mock.requests();
    assert_eq!((log[0].bytes_sent, log[0].completed), (expected.len() as u64, true));
    Ok(())
}

#[tokio::test]
async fn malformed_and_blank_lines_and_no_final_newline() -> R {
    let mock = MockServer::start(small(300).with_chunk_size(1024)).await?;
    let expected = expected_body(&mock, "emailSend", S, E)?;
    let exp_lines = lines(&expected);

    mock.inject(Fault::MalformedLine {
        after_records: 2,
        count: 1,
    });
    let (_, _, body) = get_all(&mock, &path()).await?;
    let got = lines(&body);
    assert_eq!(got.len(), 301);
    assert!(json(got[2]).is_err());
    assert_eq!(&got[..2], &exp_lines[..2]);
    assert_eq!(&got[3..], &exp_lines[2..]);

    mock.inject(Fault::BlankLines { every: 100, count: 1 });
    let (_, _, body) = get_all(&mock, &path()).await?;
    let got = lines(&body);
    assert_eq!(got.len(), 303);
    assert!(got[100].is_empty() && got[201].is_empty() && got[302].is_empty());
    let non_blank: Vec<&[u8]> = got.into_iter().filter(|l| !l.is_empty()).collect();
    assert_eq!(non_blank, exp_lines);

    mock.inject(Fault::NoFinalNewline { count: 1 });
    let (_, _, body) = get_all(&mock, &path()).await?;
    assert_eq!(body.as_slice(), &expected[..expected.len() - 1]);

    // CSV too
    mock.inject(Fault::NoFinalNewline { count: 1 });
    let csv_path = export_path("csv", "emailSend", S, E);
    let (_, _, body) = get_all(&mock, &csv_path).await?;
    assert_ne!(body.last(), Some(&b'\n'));
    let (_, _, whole) = get_all(&mock, &csv_path).await?;
    assert_eq!(body.as_slice(), &whole[..whole.len() - 1]);
    Ok(())
}

#[tokio::test]
async fn redirect_records_whether_the_key_followed() -> R {
    let mock = MockServer::start(small(10)).await?;
    let expected = expected_body(&mock, "emailSend", S, E)?;
    // a client that does not follow
    mock.inject(Fault::Redirect { count: 1 });
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let resp = no_follow
        .get(format!("{}{}", mock.base_url(), path()))
        .header("Api-Key", mock.api_key())
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(location, format!("{}{}", mock.redirect_base_url(), path()));
    // following without the key: served, no leak
    let body = client().get(&location).send().await?.bytes().await?;
    assert_eq!(body.as_ref(), expected.as_slice());
    assert!(!mock.redirect_received_api_key());
    assert_eq!(mock.redirect_hits().len(), 1);
    // a client that forwards its custom header across hosts leaks the key
    mock.inject(Fault::Redirect { count: 1 });
    let (status, _, body) = get_all(&mock, &path()).await?;
    assert_eq!(status, 200);
    assert_eq!(body, expected);
    let hits = mock.redirect_hits();
    assert_eq!(hits.len(), 2);
    assert!(hits[1].api_key_present);
    assert!(mock.redirect_received_api_key());
    Ok(())
}
