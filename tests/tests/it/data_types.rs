//! Every data type of the generated enum, end to end: the facade exports it from the mock server
//! (one NDJSON and one CSV request, a few records each) and gets exactly what the mock served.
//!
//! With `generated_value_lists_are_the_spec_enums` (pinned_calls) this closes the loop from the
//! overlay to the user: overlaid spec → generated `DataTypeName::ALL` → `ALL_DATA_TYPES` →
//! a request the mock answers with 200 → records that decode. (The CLI's `--data-type` parser is
//! tested over the same list in `crates/iterable-export-cli/src/args.rs`.)

use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use iterable_export::{ALL_DATA_TYPES, Client, CsvRecord, Event, RateLimit};
use iterable_export_mock::{MockConfig, MockServer};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Records a day per data type: enough for a few records in the window below.
const RECORDS_PER_DAY: u64 = 8;

#[tokio::test]
async fn every_data_type_exports_from_the_mock_through_the_facade() -> TestResult {
    assert_eq!(
        ALL_DATA_TYPES.len(),
        crate::pinned_calls::spec_enum("dataTypeName").len(),
        "ALL_DATA_TYPES is the spec's enum"
    );
    let config = MockConfig::default()
        .with_records_per_day(RECORDS_PER_DAY)
        .with_rate_limit(iterable_export_mock::RateLimit::unlimited());
    let mock = MockServer::start(config.clone()).await?;
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(1_000_000))
        .build()?;
    let start = Utc
        .with_ymd_and_hms(2024, 3, 1, 0, 0, 0)
        .single()
        .ok_or("fixture date")?;
    let end = Utc
        .with_ymd_and_hms(2024, 3, 1, 12, 0, 0)
        .single()
        .ok_or("fixture date")?;

    for &data_type in ALL_DATA_TYPES {
        let name = data_type.to_string();
        let expected: Vec<Vec<u8>> = iterable_export_mock::expected_ndjson(&config, &name, start, end)
            .map_err(|err| format!("the mock does not serve {name}: {err}"))?
            .collect();
        assert_eq!(expected.len() as u64, RECORDS_PER_DAY / 2, "{name}");

        let events: Vec<Event> = client
            .export(data_type)
            .between(start, end)
            .ndjson()
            .await
            .map_err(|err| format!("{name} (NDJSON): {err}"))?
            .try_collect()
            .await?;
        assert_eq!(events.len(), expected.len(), "{name}");
        for (event, line) in events.iter().zip(&expected) {
            assert_eq!(&serde_json::to_vec(event)?, line, "{name}: the event keeps every field");
            assert!(event.email.is_some(), "{name}: {event:?}");
        }

        let csv = client
            .export(data_type)
            .between(start, end)
            .csv()
            .await
            .map_err(|err| format!("{name} (CSV): {err}"))?;
        assert_eq!(
            csv.header_raw(),
            iterable_export_mock::expected_csv_header(&name)?.as_slice(),
            "{name}"
        );
        let rows: Vec<CsvRecord> = csv.try_collect().await?;
        let expected_rows: Vec<Vec<u8>> = iterable_export_mock::expected_csv(&config, &name, start, end)?.collect();
        let got_rows: Vec<&[u8]> = rows.iter().map(|row| row.raw().as_ref()).collect();
        assert_eq!(got_rows, expected_rows, "{name}");
    }
    assert_eq!(mock.counters().requests, 2 * ALL_DATA_TYPES.len() as u64);
    mock.shutdown().await;
    Ok(())
}
