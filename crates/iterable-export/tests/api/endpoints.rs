//! Every endpoint against the mock: byte-exact bodies, decoding, parameters on the wire.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use iterable_export::{Client, DataType, Event, Range, User};

use crate::common::*;

#[tokio::test]
async fn lines_are_the_served_body_byte_for_byte() -> TestResult {
    let config = config(300);
    let (mock, client) = mock_and_client(config.clone()).await?;
    let (from, to) = (day_at(0, 6), day(2));
    let lines: Vec<bytes::Bytes> = client
        .export(DataType::EmailSend)
        .between(from, to)
        .lines()
        .await?
        .try_collect()
        .await?;
    let mut body = Vec::new();
    for line in &lines {
        body.extend_from_slice(line);
        body.push(b'\n');
    }
    let expected = expected_body(&config, "emailSend", from, to);
    assert_eq!(lines.len(), 300 * 3 / 4 + 300);
    assert_eq!(body, expected);
    assert_eq!(mock.counters().requests, 1);
    Ok(())
}

#[tokio::test]
async fn events_decode_every_record_and_round_trip() -> TestResult {
    let config = config(200);
    let (_mock, client) = mock_and_client(config.clone()).await?;
    for data_type in [
        DataType::EmailSend,
        DataType::EmailOpen,
        DataType::CustomEvent,
        DataType::Purchase,
    ] {
        let events: Vec<Event> = client
            .export(data_type)
            .between(day(3), day(4))
            .ndjson()
            .await?
            .try_collect()
            .await?;
        let expected: Vec<Vec<u8>> =
            iterable_export_mock::expected_ndjson(&config, &data_type.to_string(), day(3), day(4))?.collect();
        assert_eq!(events.len(), expected.len(), "{data_type}");
        assert_eq!(events.len(), 200, "{data_type}");
        for (event, line) in events.iter().zip(&expected) {
            assert!(
                event.created_at.is_some_and(|t| t >= day(3) && t < day(4)),
                "{data_type}: {event:?}"
            );
            assert_eq!(
                serde_json::to_vec(event)?,
                *line,
                "{data_type}: serializing reproduces the record"
            );
        }
    }
    Ok(())
}

/// Proves: the user table streams into typed `User`s (by `users()` and `ndjson_as::<User>()`): the
/// window selects by `profileUpdatedAt`, records have no `createdAt`, and every field (dotted
/// internal ones, nested custom objects, arrays, unicode) is written back byte for byte.
#[tokio::test]
async fn users_decode_into_typed_records_selected_by_profile_update() -> TestResult {
    let config = config(4);
    let (_mock, client) = mock_and_client(config.clone()).await?;
    let (from, to) = (day_at(1, 6), day(3));
    let export = client.export(DataType::User).between(from, to);
    let users: Vec<User> = export.users().await?.try_collect().await?;
    let again: Vec<User> = export.ndjson_as::<User>().await?.try_collect().await?;
    assert_eq!(users, again);
    let expected: Vec<Vec<u8>> = iterable_export_mock::expected_ndjson(&config, "user", from, to)?.collect();
    // 4 a day at 03:00, 09:00, 15:00, 21:00: three on day 1 from 06:00, four on day 2
    assert_eq!(users.len(), 7);
    assert_eq!(users.len(), expected.len());
    let mut nested = 0;
    for (user, line) in users.iter().zip(&expected) {
        assert!(user.email.is_some() && user.user_id.is_some(), "{user:?}");
        let updated = user.profile_updated_at.ok_or("no profileUpdatedAt")?;
        assert!(updated >= from && updated < to, "{user:?}");
        assert!(user.signup_date.is_some_and(|t| t < updated), "{user:?}");
        assert!(user.field("createdAt").is_none(), "{user:?}");
        assert!(user.get("itblInternal.emailDomain").is_some(), "{user:?}");
        nested += usize::from(user.get("consents").is_some_and(|v| v.get().starts_with('{')));
        assert_eq!(serde_json::to_vec(user)?, *line, "serializing reproduces the record");
    }
    assert_eq!(nested, 7, "from the second day of data on, users have the nested field");
    Ok(())
}

#[tokio::test]
async fn dates_go_out_in_iterable_format_and_fields_as_a_list() -> TestResult {
    let (mock, client) = mock_and_client(config(10)).await?;
    let events: Vec<Event> = client
        .export(DataType::EmailSend)
        .between(day(0), day_at(0, 12))
        .only_fields(["email", "createdAt"])
        .ndjson()
        .await?
        .try_collect()
        .await?;
    assert_eq!(events.len(), 5);
    for event in &events {
        let names: BTreeSet<&str> = event.fields().map(|(name, _)| name).collect();
        assert_eq!(names, BTreeSet::from(["createdAt", "email"]));
    }
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let query = &requests[0].query;
    assert!(
        query.contains("startDateTime=2024-01-01+00%3A00%3A00")
            || query.contains("startDateTime=2024-01-01%2000%3A00%3A00"),
        "{query}"
    );
    assert!(
        query.contains("endDateTime=2024-01-01+12%3A00%3A00")
            || query.contains("endDateTime=2024-01-01%2012%3A00%3A00"),
        "{query}"
    );
    assert!(query.contains("onlyFields=email%2CcreatedAt"), "{query}");
    assert!(query.contains("dataTypeName=emailSend"), "{query}");
    Ok(())
}

#[tokio::test]
async fn csv_has_the_header_and_every_record() -> TestResult {
    let config = config(120);
    let (_mock, client) = mock_and_client(config.clone()).await?;
    let rows = client.export(DataType::EmailOpen).between(day(1), day(2)).csv().await?;
    let headers = rows.headers().to_vec();
    let records: Vec<_> = rows.try_collect().await?;
    assert_eq!(records.len(), 120);
    assert_eq!(headers.first().map(String::as_str), Some("createdAt"));
    let expected_ids: BTreeSet<String> = iterable_export_mock::expected_ndjson(&config, "emailOpen", day(1), day(2))?
        .map(|line| {
            serde_json::from_slice::<serde_json::Value>(&line).map(|v| v["recordId"].as_str().unwrap_or("").to_owned())
        })
        .collect::<Result<_, _>>()?;
    let ids: BTreeSet<String> = records
        .iter()
        .map(|r| r.get_by_name("recordId").unwrap_or("").to_owned())
        .collect();
    assert_eq!(ids, expected_ids);
    Ok(())
}

#[tokio::test]
async fn range_is_sent_instead_of_dates() -> TestResult {
    let (mock, client) = mock_and_client(config(10)).await?;
    let _ = client
        .export(DataType::EmailClick)
        .range(Range::Yesterday)
        .lines()
        .await?
        .try_collect::<Vec<_>>()
        .await?;
    let query = &mock.requests()[0].query;
    assert!(
        query.contains("range=Yesterday") && !query.contains("DateTime"),
        "{query}"
    );
    Ok(())
}

#[tokio::test]
async fn user_events_stream_in_both_forms() -> TestResult {
    let plain = start(config(50)).await?;
    let wrapped = start(config(50).with_user_events_wrapped(true)).await?;
    let a: Vec<Event> = client(&plain)?
        .user_events("ana@example.com")
        .send()
        .await?
        .try_collect()
        .await?;
    let b: Vec<Event> = client(&wrapped)?
        .user_events("ana@example.com")
        .send()
        .await?
        .try_collect()
        .await?;
    assert!(!a.is_empty());
    assert!(
        a.iter()
            .all(|e| e.event_type.is_some() && e.email.as_deref() == Some("ana@example.com")),
        "{a:?}"
    );
    let strip = |events: &[Event]| {
        events
            .iter()
            .map(|e| (e.message_id.clone(), e.created_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
    let no_custom: Vec<Event> = client(&plain)?
        .user_events("ana@example.com")
        .include_custom_events(false)
        .send()
        .await?
        .try_collect()
        .await?;
    assert!(no_custom.iter().all(|e| e.event_type.as_deref() != Some("customEvent")));
    assert!(
        plain.requests()[1].query.contains("includeCustomEvents=false"),
        "{:?}",
        plain.requests()
    );
    Ok(())
}

#[tokio::test]
async fn experiment_metrics_send_repeated_ids() -> TestResult {
    let (mock, client) = mock_and_client(config(10)).await?;
    let rows = client
        .experiment_metrics()
        .experiment_ids([1, 2])
        .campaign_ids([3])
        .send()
        .await?;
    assert_eq!(rows.headers().first().map(String::as_str), Some("experimentId"));
    let records: Vec<_> = rows.try_collect().await?;
    let experiments: BTreeSet<&str> = records.iter().filter_map(|r| r.get(0)).collect();
    assert_eq!(experiments, BTreeSet::from(["1", "2", "31"]));
    let query = &mock.requests()[0].query;
    assert!(
        query.contains("experimentId=1&experimentId=2") && query.contains("campaignId=3"),
        "{query}"
    );
    Ok(())
}

#[tokio::test]
async fn regions_resolve_to_their_hosts_and_base_url_overrides() -> TestResult {
    let eu = Client::from_env_with(|n| match n {
        "ITERABLE_API_KEY" => Some("k".into()),
        "ITERABLE_REGION" => Some("EU".into()),
        _ => None,
    })?;
    assert_eq!(eu.base_url(), "https://api.eu.iterable.com/api");
    let us = Client::builder().api_key("k").build()?;
    assert_eq!(us.base_url(), "https://api.iterable.com/api");
    let over = Client::from_env_with(|n| match n {
        "ITERABLE_API_KEY" => Some("k".into()),
        "ITERABLE_REGION" => Some("eu".into()),
        "ITERABLE_BASE_URL" => Some("http://127.0.0.1:1/api/".into()),
        _ => None,
    })?;
    assert_eq!(over.base_url(), "http://127.0.0.1:1/api");
    let bad = Client::from_env_with(|n| match n {
        "ITERABLE_API_KEY" => Some("k".into()),
        "ITERABLE_REGION" => Some("mars".into()),
        _ => None,
    });
    assert!(matches!(bad, Err(iterable_export::Error::Config(msg)) if msg.contains("ITERABLE_REGION=\"mars\"")));
    Ok(())
}

/// Iterable may compress responses: the client asks for gzip and decodes it transparently.
#[tokio::test]
async fn gzip_bodies_are_decoded() -> TestResult {
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let body =
        b"{\"email\":\"a@example.com\",\"createdAt\":\"2024-01-01 00:00:01 +00:00\"}\n{\"email\":\"b@example.com\"}\n";
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body)?;
    let gz = encoder.finish()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        let mut request = vec![0u8; 4096];
        let n = socket.read(&mut request).await?;
        let head = String::from_utf8_lossy(&request[..n]).to_ascii_lowercase();
        let header = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            gz.len()
        );
        socket.write_all(header.as_bytes()).await?;
        socket.write_all(&gz).await?;
        socket.shutdown().await?;
        Ok::<_, std::io::Error>(head)
    });
    let client = Client::builder()
        .api_key("k")
        .base_url(format!("http://{addr}/api"))
        .build()?;
    let events: Vec<Event> = client
        .export(DataType::EmailSend)
        .range(Range::All)
        .ndjson()
        .await?
        .try_collect()
        .await?;
    let head = server.await??;
    assert!(head.contains("accept-encoding: gzip"), "{head}");
    assert!(head.contains("user-agent: iterable-export/"), "{head}");
    assert_eq!(
        events.iter().map(|e| e.email.as_deref()).collect::<Vec<_>>(),
        [Some("a@example.com"), Some("b@example.com")]
    );
    Ok(())
}
