//! CSV round trips, userEvents, experiments metrics, content types.

use iterable_export_mock::{DataType, MockServer};
use serde_json::Value;

use crate::{R, export_path, get_all, json, lines, small, t};

#[tokio::test]
async fn csv_round_trips_through_a_csv_parser() -> R {
    let mock = MockServer::start(small(200)).await?;
    let (s, e) = ("2024-01-05 00:00:00", "2024-01-06 00:00:00");
    let (mut commas, mut quotes, mut newlines) = (0, 0, 0);
    for dt in [
        DataType::EmailSend,
        DataType::EmailClick,
        DataType::Purchase,
        DataType::CustomEvent,
        DataType::UserUpdate,
        DataType::SmsSend,
    ] {
        let (status, ct, body) = get_all(&mock, &export_path("csv", dt.as_str(), s, e)).await?;
        assert_eq!((status, ct.as_str()), (200, "text/csv"));
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body.as_slice());
        let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
        assert_eq!(header, dt.fields());
        let expected: Vec<Vec<u8>> = mock.expected_ndjson(dt.as_str(), t(s)?, t(e)?)?.collect();
        let mut n = 0;
        for (row, line) in reader.records().zip(&expected) {
            let row = row?;
            assert_eq!(row.len(), header.len());
            let v = json(line)?;
            for (col, cell) in header.iter().zip(row.iter()) {
                commas += usize::from(cell.contains(','));
                quotes += usize::from(cell.contains('"'));
                newlines += usize::from(cell.contains('\n'));
                match v.get(col) {
                    None => assert_eq!(cell, "", "{dt} {col}"),
                    Some(Value::String(s)) => assert_eq!(cell, s, "{dt} {col}"),
                    Some(other) => assert_eq!(&serde_json::from_str::<Value>(cell)?, other, "{dt} {col}"),
                }
            }
            n += 1;
        }
        assert_eq!(n, 200, "{dt}");
        assert_eq!(reader.records().count(), 0);
    }
    assert!(commas > 0 && quotes > 0 && newlines > 0, "{commas} {quotes} {newlines}");
    Ok(())
}

#[tokio::test]
async fn user_events_per_line_or_wrapped() -> R {
    let mock = MockServer::start(small(10)).await?;
    let (status, ct, body) = get_all(&mock, "/export/userEvents?email=jos%C3%A9%40example.com").await?;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let events = lines(&body);
    assert!((3..=10).contains(&events.len()), "{}", events.len());
    let mut types = Vec::new();
    for l in &events {
        let v = json(l)?;
        assert_eq!(v["email"], "josé@example.com");
        types.push(v["_type"].as_str().ok_or("no _type")?.to_owned());
    }
    assert_eq!(body.last(), Some(&b'\n'));
    // the same events, wrapped
    mock.update_config(|c| c.user_events_wrapped = true);
    let (status, ct, wrapped) = get_all(&mock, "/export/userEvents?email=jos%C3%A9%40example.com").await?;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_slice(&wrapped)?;
    let arr = v["events"].as_array().ok_or("no events")?;
    assert_eq!(arr.len(), events.len());
    for (a, l) in arr.iter().zip(&events) {
        assert_eq!(a, &json(l)?);
    }
    // without custom events
    let (_, _, body) = get_all(
        &mock,
        "/export/userEvents?email=jos%C3%A9%40example.com&includeCustomEvents=false",
    )
    .await?;
    let v: Value = serde_json::from_slice(&body)?;
    let n_custom = types.iter().filter(|t| *t == "customEvent").count();
    assert_eq!(v["events"].as_array().map(Vec::len), Some(events.len() - n_custom));
    // errors
    for q in ["", "?email=nobody", "?email=a%40b.c&includeCustomEvents=maybe"] {
        let (status, ct, body) = get_all(&mock, &format!("/export/userEvents{q}")).await?;
        assert_eq!((status, ct.as_str()), (400, "application/json"), "{q}");
        assert_eq!(json(&body)?["code"], "BadParams");
    }
    Ok(())
}

#[tokio::test]
async fn experiment_metrics_csv_with_repeated_ids() -> R {
    let mock = MockServer::start(small(10)).await?;
    let (status, ct, body) = get_all(&mock, "/experiments/metrics?experimentId=1&experimentId=2&campaignId=7").await?;
    assert_eq!((status, ct.as_str()), (200, "text/csv"));
    let mut reader = csv::Reader::from_reader(body.as_slice());
    assert_eq!(reader.headers()?.get(0), Some("experimentId"));
    let mut ids = Vec::new();
    for row in reader.records() {
        let row = row?;
        ids.push(row.get(0).unwrap_or("").to_owned());
        assert_eq!(row.len(), 12);
    }
    ids.dedup();
    assert_eq!(ids, ["1", "2", "71"]);
    let (status, _, header_only) = get_all(&mock, "/experiments/metrics").await?;
    assert_eq!((status, lines(&header_only).len()), (200, 1));
    // 200 ids are fine, 201 are not
    let q = |n: usize| {
        (0..n)
            .map(|i| format!("experimentId={i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let (status, _, body) = get_all(&mock, &format!("/experiments/metrics?{}", q(200))).await?;
    assert_eq!(status, 200);
    let mut seen: Vec<i64> = Vec::new();
    for row in csv::Reader::from_reader(body.as_slice()).records() {
        let id: i64 = row?.get(0).unwrap_or("").parse()?;
        if seen.last() != Some(&id) {
            seen.push(id);
        }
    }
    assert_eq!(seen, (0..200).collect::<Vec<i64>>());
    let (status, ct, body) = get_all(&mock, &format!("/experiments/metrics?{}&campaignId=1", q(200))).await?;
    assert_eq!((status, ct.as_str()), (400, "application/json"));
    assert_eq!(json(&body)?["code"], "BadParams");
    let (status, _, _) = get_all(&mock, "/experiments/metrics?experimentId=abc").await?;
    assert_eq!(status, 400);
    Ok(())
}

#[tokio::test]
async fn every_valid_response_has_the_spec_content_type() -> R {
    let mock = MockServer::start(small(5).with_now(t("2024-01-03 10:00:00")?)).await?;
    for dt in DataType::ALL {
        for range in ["Today", "All"] {
            let (status, ct, _) = get_all(&mock, &format!("/export/data.json?dataTypeName={dt}&range={range}")).await?;
            assert_eq!((status, ct.as_str()), (200, "application/x-ndjson"), "{dt}");
            let (status, ct, _) = get_all(&mock, &format!("/export/data.csv?dataTypeName={dt}&range={range}")).await?;
            assert_eq!((status, ct.as_str()), (200, "text/csv"), "{dt}");
        }
    }
    let (status, ct, _) = get_all(&mock, "/experiments/metrics?experimentId=3").await?;
    assert_eq!((status, ct.as_str()), (200, "text/csv"));
    let (status, ct, _) = get_all(&mock, "/export/userEvents?email=a%40example.com").await?;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    // errors are JSON with msg and code
    for path in [
        "/export/data.json?dataTypeName=bogus",
        "/export/data.csv?dataTypeName=bogus",
        "/export/userEvents",
        "/experiments/metrics?campaignId=x",
        "/no/such/endpoint",
    ] {
        let (status, ct, body) = get_all(&mock, path).await?;
        assert!(status >= 400, "{path}");
        assert_eq!(ct, "application/json", "{path}");
        let v = json(&body)?;
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{path}");
        assert!(v["code"].as_str().is_some(), "{path}");
    }
    let (status, _, body) = get_all(&mock, "/no/such/endpoint").await?;
    assert_eq!((status, json(&body)?["code"].as_str()), (404, Some("NotFound")));
    Ok(())
}
