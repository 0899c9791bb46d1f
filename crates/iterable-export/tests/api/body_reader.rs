//! `Body::into_async_read`: the same bytes as the `Stream` view, and the body's errors as
//! `std::io::Error`s that hold the crate's error.

use iterable_export::{DataType, Error, Format};
use iterable_export_mock::Fault;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::common::{TestResult, config, day, expected_body, mock_and_client};

#[tokio::test]
async fn a_body_read_as_async_buf_read_is_byte_for_byte_the_export() -> TestResult {
    let (mock, client) = mock_and_client(config(2000)).await?;
    let (from, to) = (day(0), day(1));
    let expected = expected_body(&mock.config(), "emailSend", from, to);
    assert!(expected.len() > 100_000, "fixture: a body of several chunks");

    let export = client.export(DataType::EmailSend).between(from, to);
    let mut bytes = Vec::new();
    export
        .body(Format::Ndjson)
        .await?
        .into_async_read()
        .read_to_end(&mut bytes)
        .await?;
    assert!(bytes == expected, "{} bytes, expected {}", bytes.len(), expected.len());

    // The buffered view: line by line, as `AsyncBufReadExt::lines` splits them.
    let mut lines = export.body(Format::Ndjson).await?.into_async_read().lines();
    let mut count = 0;
    while let Some(line) = lines.next_line().await? {
        assert!(line.starts_with('{') && line.ends_with('}'), "line {count}: {line}");
        count += 1;
    }
    assert_eq!(count, expected.iter().filter(|b| **b == b'\n').count());
    Ok(())
}

#[tokio::test]
async fn a_body_cut_short_is_an_io_error_holding_the_transport_error() -> TestResult {
    let (mock, client) = mock_and_client(config(2000)).await?;
    mock.inject(Fault::Truncate {
        after_bytes: 50_000,
        count: 1,
    });
    let mut reader = client
        .export(DataType::EmailSend)
        .between(day(0), day(1))
        .body(Format::Ndjson)
        .await?
        .into_async_read();
    let mut bytes = Vec::new();
    let err = reader
        .read_to_end(&mut bytes)
        .await
        .err()
        .ok_or("expected the cut to be an error")?;
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err:?}");
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(matches!(inner, Some(Error::Transport { .. })), "{err:?}");
    assert!(inner.is_some_and(Error::is_transient));
    assert!(bytes.len() <= 50_000, "{} bytes before the cut", bytes.len());
    Ok(())
}
