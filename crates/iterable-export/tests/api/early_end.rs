//! Bodies that end early without an error: a proxy answering with connection-delimited bodies
//! (no length, no chunking, then close) that stops in the middle of a record. Our mock cannot
//! produce this (its bodies are chunked), so a small server of its own serves it here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use iterable_export::{Client, DataType, Format, RateLimit, WindowOptions, WriterSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{TestResult, day, fast_retries};

/// Serves `body` with `Connection: close` and no length to every request; the first `cut_first`
/// responses stop at `cut_at` bytes of the body. Returns the base URL and the request counter.
async fn close_delimited_server(
    body: Vec<u8>,
    content_type: &'static str,
    cut_first: usize,
    cut_at: usize,
) -> std::io::Result<(String, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                // Read the request head; its content does not matter here.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => head.extend_from_slice(&buf[..k]),
                    }
                }
                let end = if n < cut_first { cut_at } else { body.len() };
                let response = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.write_all(&body[..end]).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok((format!("http://{addr}/api"), requests))
}

fn client(base_url: &str) -> Result<Client, iterable_export::Error> {
    Client::builder()
        .api_key("test-key")
        .base_url(base_url)
        .rate_limit(RateLimit::per_minute(10_000))
        .retry_policy(fast_retries(3))
        .build()
}

fn ndjson_body(records: usize) -> Vec<u8> {
    (0..records)
        .map(|i| format!("{{\"email\":\"user{i}@example.com\",\"createdAt\":\"2024-01-01 00:00:00 +00:00\",\"messageId\":\"m{i}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

async fn export(base_url: &str, format: Format) -> Result<(Vec<u8>, u64, u64), iterable_export::Error> {
    let client = client(base_url)?;
    // This server answers every request with the same body, so a split window would be served
    // twice: keep the window whole and count on retries.
    let options = WindowOptions::default().with_format(format).with_split_after(10);
    let mut sink = WriterSink::new(Vec::new())?;
    let summary = client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .export_windows(options, &mut sink)
        .await?;
    Ok((sink.finish().await?, summary.records, summary.retries))
}

/// The offset at which line `n` (0-based) of `body` starts.
fn line_start(body: &[u8], n: usize) -> Result<usize, &'static str> {
    let previous_end = body
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .ok_or("body too short")?;
    Ok(previous_end.0 + 1)
}

#[tokio::test]
async fn an_ndjson_body_closed_mid_record_is_retried_not_committed() -> TestResult {
    let body = ndjson_body(3000);
    // Twice cut inside record 1,234 (the export would have committed 1,233 records and half of one).
    let cut_at = line_start(&body, 1233)? + 19;
    let (base_url, requests) = close_delimited_server(body.clone(), "application/x-ndjson", 2, cut_at).await?;
    let (out, records, retries) = export(&base_url, Format::Ndjson).await?;
    assert!(
        out == body,
        "the output is the whole body, once ({} bytes, expected {})",
        out.len(),
        body.len()
    );
    assert_eq!(records, 3000);
    assert_eq!(retries, 2);
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    Ok(())
}

#[tokio::test]
async fn a_complete_last_record_without_a_newline_is_accepted() -> TestResult {
    let mut body = ndjson_body(10);
    body.pop();
    let (base_url, requests) = close_delimited_server(body.clone(), "application/x-ndjson", 0, 0).await?;
    let (out, records, retries) = export(&base_url, Format::Ndjson).await?;
    body.push(b'\n');
    assert!(out == body, "{} bytes, expected {}", out.len(), body.len());
    assert_eq!((records, retries), (10, 0));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test]
async fn a_csv_body_closed_mid_record_is_retried_not_committed() -> TestResult {
    let mut body = b"email,createdAt,messageId\n".to_vec();
    for i in 0..500 {
        body.extend_from_slice(format!("user{i}@example.com,2024-01-01 00:00:00 +00:00,\"m,{i}\"\n").as_bytes());
    }
    // Cut once inside a quoted field, once after the second field of a record.
    let record_300 = line_start(&body, 301)?;
    let in_quotes = record_300 + "user300@example.com,2024-01-01 00:00:00 +00:00,\"m".len();
    let (base_url, requests) = close_delimited_server(body.clone(), "text/csv", 1, in_quotes).await?;
    let (out, records, retries) = export(&base_url, Format::Csv).await?;
    assert!(out == body, "{} bytes, expected {}", out.len(), body.len());
    assert_eq!((records, retries), (500, 1));
    assert_eq!(requests.load(Ordering::SeqCst), 2);

    let two_fields = record_300 + "user300@example.com,2024-01-01 00:00:00 +00:00".len();
    let (base_url, requests) = close_delimited_server(body.clone(), "text/csv", 1, two_fields).await?;
    let (out, records, retries) = export(&base_url, Format::Csv).await?;
    assert!(out == body, "{} bytes, expected {}", out.len(), body.len());
    assert_eq!((records, retries), (500, 1));
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    Ok(())
}
