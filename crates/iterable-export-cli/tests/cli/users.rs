//! The user table (`--data-type user`): windowed by `profileUpdatedAt`, exported over several
//! windows in NDJSON and CSV (whose columns grow: the mock adds the custom field `consents` on the
//! second day of data and `wishlist` on the third), and incrementally with a look-back.

use chrono::{DateTime, TimeDelta, Utc};

use crate::common::*;

/// One request per day: three windows whose CSV headers all differ.
const THREE_DAYS: &str = "export --data-type user --start 2024-01-01 --end 2024-01-04 --window 1d --max-window 1d --requests-per-minute 6000";

/// The three windows of [`THREE_DAYS`].
fn three_days() -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    vec![(day(0), day(1)), (day(1), day(2)), (day(2), day(3))]
}

#[tokio::test(flavor = "multi_thread")]
async fn user_ndjson_export_over_windows_is_exact_byte_for_byte() -> TestResult {
    let config = config(4);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(THREE_DAYS)
        .line("--output")
        .with(dir.path())
        .run()
        .await?
        .code(0)
        .stderr(contains("user").and(contains("12 records")));
    assert_eq!(windows_requested(&mock), three_days());
    let expected = expected_body(&config, "user", day(0), day(3));
    assert_file_records(&dir.path().join("user.ndjson"), &expected);
    // what makes this exact comparison meaningful: nested custom objects, arrays, unicode
    let text = String::from_utf8(expected)?;
    assert!(text.contains(r#""consents":{"email":{"marketing":"#), "{text}");
    assert!(
        text.contains(r#""wishlist":["#) && text.contains(r#""tags":["#),
        "{text}"
    );
    assert!(!text.is_ascii());
    for line in text.lines() {
        let user: serde_json::Value = serde_json::from_str(line)?;
        assert!(user.get("createdAt").is_none(), "{line}");
        let updated = user["profileUpdatedAt"].as_str().ok_or("no profileUpdatedAt")?;
        assert!(
            ("2024-01-01 00:00:00".."2024-01-04 00:00:00").contains(&updated),
            "{line}"
        );
    }
    Ok(())
}

/// The CSV file a multi-window export must produce, built from the mock's per-window CSV bodies:
/// one header, the union of the windows' columns in order of first appearance, and each window's
/// rows (in the order served) with every value under its own column and empty cells for columns
/// the window did not have.
fn expected_csv_file(
    config: &iterable_export_mock::MockConfig,
    windows: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Result<(Vec<String>, Vec<Vec<String>>), BoxError> {
    let mut union: Vec<String> = Vec::new();
    let mut rows: Vec<(Vec<String>, csv::StringRecord)> = Vec::new();
    for &(start, end) in windows {
        let mut body = iterable_export_mock::expected_csv_header_between(config, "user", start, end)?;
        body.push(b'\n');
        for row in iterable_export_mock::expected_csv(config, "user", start, end)? {
            body.extend_from_slice(&row);
            body.push(b'\n');
        }
        let mut reader = csv::Reader::from_reader(body.as_slice());
        let header: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
        for column in &header {
            if !union.contains(column) {
                union.push(column.clone());
            }
        }
        for record in reader.records() {
            rows.push((header.clone(), record?));
        }
    }
    let aligned = rows
        .into_iter()
        .map(|(header, record)| {
            union
                .iter()
                .map(|column| {
                    header
                        .iter()
                        .position(|c| c == column)
                        .and_then(|i| record.get(i))
                        .unwrap_or("")
                        .to_owned()
                })
                .collect()
        })
        .collect();
    Ok((union, aligned))
}

/// The header and records of a CSV file.
fn read_csv_file(path: &std::path::Path) -> Result<(Vec<String>, Vec<Vec<String>>), BoxError> {
    let mut reader = csv::Reader::from_path(path)?;
    let header = reader.headers()?.iter().map(str::to_owned).collect();
    let mut records = Vec::new();
    for record in reader.records() {
        records.push(record?.iter().map(str::to_owned).collect());
    }
    Ok((header, records))
}

#[tokio::test(flavor = "multi_thread")]
async fn user_csv_export_over_windows_whose_columns_grow_has_one_union_header() -> TestResult {
    let config = config(4);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(THREE_DAYS)
        .line("--format csv --output")
        .with(dir.path())
        .run()
        .await?
        .code(0);
    assert_eq!(windows_requested(&mock), three_days());
    let path = dir.path().join("user.csv");
    let (header, records) = read_csv_file(&path)?;
    let (expected_header, expected_records) = expected_csv_file(&config, &three_days())?;
    // the first window's columns, then the ones the later windows added, each once
    assert_eq!(
        &expected_header[expected_header.len() - 3..],
        ["recordId", "consents", "wishlist"]
    );
    assert_eq!(header, expected_header);
    assert_eq!(records.len(), 12);
    assert_eq!(records, expected_records);
    // one header line: no other line of the file starts like it
    let text = std::fs::read_to_string(&path)?;
    assert_eq!(text.matches("email,userId,").count(), 1);
    // a nested custom object and unicode survive as the cell's JSON text
    let consents = header
        .iter()
        .position(|c| c == "consents")
        .ok_or("no consents column")?;
    let values: Vec<serde_json::Value> = records[4..]
        .iter()
        .map(|r| serde_json::from_str(&r[consents]))
        .collect::<Result<_, _>>()?;
    assert!(values.iter().all(|v| v["email"]["transactional"] == true), "{values:?}");
    assert!(
        records[..4].iter().all(|r| r[consents].is_empty()),
        "day 0 has no consents"
    );
    Ok(())
}

/// An incremental run continues where the last one ended, re-reads the look-back by
/// `profileUpdatedAt` and drops the users it already wrote: the file holds every user update
/// once.
#[tokio::test(flavor = "multi_thread")]
async fn user_incremental_sync_is_exact_without_duplicates() -> TestResult {
    // 48 a day, at 15 and 45 minutes past the hour: one (23:45) in a 20-minute look-back
    let config = config(48);
    let mock = start(config.clone()).await?;
    let lookback = day(1) - TimeDelta::minutes(20);
    assert_eq!(
        iterable_export_mock::expected_count(&config, "user", lookback, day(1))?,
        1
    );
    for format in ["ndjson", "csv"] {
        let dir = tempfile::tempdir()?;
        let export = |span: &str| {
            command(&mock)
                .line("export --data-type user --requests-per-minute 6000 --lookback 20m --format")
                .with(format)
                .line(span)
                .into_dir(dir.path())
        };
        mock.clear_requests();
        export("--start 2024-01-01 --end 2024-01-02").run().await?.code(0);
        let first_run = windows_requested(&mock).len();
        export("--end 2024-01-03T12:00:00Z")
            .run()
            .await?
            .code(0)
            .stderr(contains("(1 duplicates from the look-back dropped)"));
        let windows = windows_requested(&mock);
        let (first, second) = windows.split_at(first_run);
        assert_eq!(first.first().map(|w| w.0), Some(day(0)), "{format}");
        assert_eq!(first.last().map(|w| w.1), Some(day(1)), "{format}");
        let resumed_at = second.first().map(|w| w.0);
        assert_eq!(
            resumed_at,
            Some(lookback),
            "{format}: the second run re-reads the look-back"
        );
        assert_eq!(second.last().map(|w| w.1), Some(day_at(2, 12)), "{format}");
        let path = dir.path().join(format!("user.{format}"));
        if format == "ndjson" {
            assert_file_records(&path, &expected_body(&config, "user", day(0), day_at(2, 12)));
        } else {
            // the file's rows, as sets: the second run's windows are its own choice
            let (header, mut records) = read_csv_file(&path)?;
            let (expected_header, _) = expected_csv_file(&config, &[(day(0), day(1)), (day(1), day_at(2, 12))])?;
            assert_eq!(header, expected_header);
            let (_, mut expected) = expected_csv_file(&config, &windows_without_overlap(&windows))?;
            records.sort();
            expected.sort();
            assert_eq!(records.len(), 48 * 2 + 24);
            assert_eq!(records, expected);
        }
    }
    Ok(())
}

/// The requested windows with the look-back re-read cut off: each span once.
fn windows_without_overlap(windows: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for &(start, end) in windows {
        let start = out.last().map_or(start, |last| start.max(last.1));
        if start < end {
            out.push((start, end));
        }
    }
    out
}
