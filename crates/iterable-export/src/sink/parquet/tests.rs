//! Tests of `ParquetSink`: files read back with the `parquet` crate's Arrow reader.

use std::collections::BTreeMap;
use std::fs::File;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType as ArrowType;
use chrono::{TimeZone, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::value::RawValue;

use super::*;
use crate::event::time::IterableTime;

fn io<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::io(what.to_owned(), std::io::Error::other(e.to_string()))
}

fn day(d: u32, h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, d, h, 0, 0).single().unwrap_or_default()
}

fn window(from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>) -> Window {
    Window { start: from, end: to }
}

/// Every visible file under `root` (names not starting with `_` or `.`), relative, sorted.
fn visible(root: &Path) -> Vec<String> {
    files(root, false)
}

/// Every file, hidden ones included, relative, sorted.
fn all_files(root: &Path) -> Vec<String> {
    files(root, true)
}

fn files(root: &Path, hidden: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if hidden || !(name.starts_with('_') || name.starts_with('.')) {
                out.push(
                    path.strip_prefix(root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

fn read_batches(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).expect("open parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a parquet file")
        .build()
        .expect("reader");
    reader.collect::<std::result::Result<Vec<_>, _>>().expect("batches")
}

/// Rebuilds each row as (field name → JSON text): the columns, then `_extra`'s fields over them.
fn rebuild(batch: &RecordBatch) -> Vec<BTreeMap<String, String>> {
    let schema = batch.schema();
    (0..batch.num_rows())
        .map(|row| {
            let mut out = BTreeMap::new();
            for (i, field) in schema.fields().iter().enumerate() {
                let column = batch.column(i);
                if column.is_null(row) || field.name() == EXTRA_COLUMN {
                    continue;
                }
                let json = field.extension_type_name() == Some("arrow.json");
                let text = match field.data_type() {
                    ArrowType::Utf8 if json => column.as_string::<i32>().value(row).to_owned(),
                    ArrowType::Utf8 => serde_json::to_string(column.as_string::<i32>().value(row)).expect("json"),
                    ArrowType::Int64 => column.as_primitive::<Int64Type>().value(row).to_string(),
                    ArrowType::Boolean => column.as_boolean().value(row).to_string(),
                    ArrowType::Timestamp(..) => {
                        let us = column.as_primitive::<TimestampMicrosecondType>().value(row);
                        let t = Utc.timestamp_micros(us).single().expect("a time");
                        format!("\"{}\"", IterableTime(t))
                    }
                    other => panic!("unexpected column type {other}"),
                };
                out.insert(field.name().clone(), text);
            }
            let extra = batch.column_by_name(EXTRA_COLUMN).expect("_extra");
            if !extra.is_null(row) {
                let fields: BTreeMap<String, Box<RawValue>> =
                    serde_json::from_str(extra.as_string::<i32>().value(row)).expect("_extra is a JSON object");
                for (name, value) in fields {
                    out.insert(name, value.get().to_owned());
                }
            }
            out
        })
        .collect()
}

fn original(line: &str) -> BTreeMap<String, String> {
    let fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(line).expect("a JSON object");
    fields.into_iter().map(|(k, v)| (k, v.get().to_owned())).collect()
}

/// The same JSON value: the same fields, each with the same JSON text, except strings, which may be written with
/// other escapes.
fn assert_same_record(line: &str, rebuilt: &BTreeMap<String, String>) {
    let original = original(line);
    assert_eq!(
        original.keys().collect::<Vec<_>>(),
        rebuilt.keys().collect::<Vec<_>>(),
        "fields of {line}"
    );
    for (name, text) in &original {
        let again = &rebuilt[name];
        if text != again {
            assert!(text.starts_with('"'), "{name}: {text} came back as {again} in {line}");
            let a: String = serde_json::from_str(text).expect("a string");
            let b: String = serde_json::from_str(again).expect("a string");
            assert_eq!(a, b, "{name} in {line}");
        }
    }
}

async fn write_window(sink: &mut ParquetSink, w: &Window, lines: &[String]) -> Result<()> {
    sink.begin(w).await?;
    for line in lines {
        sink.record(line.as_bytes()).await?;
    }
    sink.commit(w, lines.len() as u64).await
}

fn mock_lines(data_type: &str, from: chrono::DateTime<Utc>, to: chrono::DateTime<Utc>) -> Vec<String> {
    let config = iterable_export_mock::MockConfig::default().with_records_per_day(300);
    iterable_export_mock::expected_ndjson(&config, data_type, from, to)
        .expect("a data type of the mock")
        .map(|line| String::from_utf8(line).expect("UTF-8"))
        .collect()
}

#[tokio::test]
async fn every_record_is_rebuilt_from_its_row_exactly() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let tricky = [
        r#"{"createdAt":"2024-01-01 10:00:00 +00:00","messageId":"m1","big":9007199254740993,"huge":1.5e300,"negz":-0.0,"campaignId":9007199254740993,"dataFields":{"n":9007199254740993,"f":1.5e300,"z":-0.0,"s":"zoë 🔥 \u00e9"},"email":"zoë@exämple.de","templateId":null,"itblInternal":null,"catalogLookupCount":-0}"#,
        r#"{"createdAt":"2024-01-01T11:00:00Z","email":"a\u00e9\"b","userId":"\ud83d\udd25","city":"Kraków","messageBusId":"b\\u00e9\\\"q\\\\","x.y":[1,"two",null,{"a":true}],"isCustomEvent":true,"createdAt":"2024-01-01 11:30:00.123 +00:00"}"#,
        r#"{"createdAt":1704110400000,"emailListIds":[],"total":24.50,"hrefIndex":3}"#,
        r#"{}"#,
    ];
    let cases: Vec<(DataType, Vec<String>)> = vec![
        (DataType::EmailSend, {
            let mut lines = mock_lines("emailSend", day(1, 0), day(2, 0));
            lines.extend(tricky.iter().map(|s| s.to_string()));
            lines
        }),
        (DataType::Purchase, mock_lines("purchase", day(1, 0), day(2, 0))),
        (DataType::CustomEvent, mock_lines("customEvent", day(1, 0), day(2, 0))),
        (DataType::User, mock_lines("user", day(1, 0), day(2, 0))),
    ];
    for (data_type, lines) in cases {
        assert!(lines.len() > 100, "{data_type}: {} records", lines.len());
        let options = ParquetOptions::default().with_partition(Partition::None);
        let mut sink = ParquetSink::create(dir.path(), data_type, options)?;
        let w = window(day(1, 0), day(2, 0));
        write_window(&mut sink, &w, &lines).await?;
        let root = sink.finish().await?;
        assert_eq!(visible(&root), ["part-20240101T000000Z-20240102T000000Z.parquet"]);
        let batches = read_batches(&root.join("part-20240101T000000Z-20240102T000000Z.parquet"));
        let rows: Vec<BTreeMap<String, String>> = batches.iter().flat_map(rebuild).collect();
        assert_eq!(rows.len(), lines.len(), "{data_type}");
        for (line, row) in lines.iter().zip(&rows) {
            assert_same_record(line, row);
        }
    }
    Ok(())
}

#[tokio::test]
async fn columns_are_typed_and_contradicting_values_go_to_extra_and_are_counted() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    let w = window(day(1, 0), day(2, 0));
    let lines = [
        r#"{"createdAt":"2024-01-01 05:00:00 +00:00","campaignId":"123","userId":42,"catalogLookupCount":"x","isCustomEvent":"yes","messageId":"a"}"#,
        r#"{"createdAt":"2024-01-01 06:00:00 +00:00","campaignId":7,"templateId":null,"messageId":"b","itblInternal":{"k":[1]}}"#,
    ]
    .map(String::from);
    write_window(&mut sink, &w, &lines).await?;
    assert_eq!(sink.mismatched(), 4);
    let root = sink.finish().await?;
    let path = root.join("dt=2024-01-01/part-20240101T000000Z-20240102T000000Z.parquet");
    let batches = read_batches(&path);
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let schema = batch.schema();
    let ty = |name: &str| schema.field_with_name(name).map(|f| f.data_type().clone()).expect(name);
    assert_eq!(
        ty("createdAt"),
        ArrowType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(ty("campaignId"), ArrowType::Int64);
    assert_eq!(ty("isCustomEvent"), ArrowType::Boolean);
    assert_eq!(ty("email"), ArrowType::Utf8);
    assert_eq!(
        schema
            .field_with_name("itblInternal")
            .map(|f| f.extension_type_name())
            .ok()
            .flatten(),
        Some("arrow.json")
    );
    let campaign = batch
        .column_by_name("campaignId")
        .expect("column")
        .as_primitive::<Int64Type>();
    assert!(campaign.is_null(0), "a string is not silently made an integer");
    assert_eq!(campaign.value(1), 7);
    let created = batch
        .column_by_name("createdAt")
        .expect("column")
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(created.value(0), day(1, 5).timestamp_micros());
    let extra = batch.column_by_name(EXTRA_COLUMN).expect("_extra").as_string::<i32>();
    assert_eq!(
        extra.value(0),
        r#"{"campaignId":"123","userId":42,"catalogLookupCount":"x","isCustomEvent":"yes"}"#
    );
    assert_eq!(extra.value(1), r#"{"templateId":null}"#);
    assert_eq!(
        batch
            .column_by_name("itblInternal")
            .expect("column")
            .as_string::<i32>()
            .value(1),
        r#"{"k":[1]}"#
    );
    Ok(())
}

#[tokio::test]
async fn a_window_across_midnight_writes_one_file_per_day() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    let w = window(day(1, 12), day(2, 12));
    let lines = mock_lines("emailSend", w.start, w.end);
    write_window(&mut sink, &w, &lines).await?;
    let root = sink.finish().await?;
    assert_eq!(
        visible(&root),
        [
            "dt=2024-01-01/part-20240101T120000Z-20240102T120000Z.parquet",
            "dt=2024-01-02/part-20240101T120000Z-20240102T120000Z.parquet"
        ]
    );
    let mut total = 0;
    for (dt, file) in visible(&root).iter().map(|f| (f[3..13].to_owned(), root.join(f))) {
        for batch in read_batches(&file) {
            let created = batch
                .column_by_name("createdAt")
                .expect("column")
                .as_primitive::<TimestampMicrosecondType>();
            for row in 0..batch.num_rows() {
                let t = Utc.timestamp_micros(created.value(row)).single().expect("time");
                assert_eq!(t.format("%Y-%m-%d").to_string(), dt);
            }
            total += batch.num_rows();
        }
    }
    let expected_first_day = lines
        .iter()
        .filter(|l| l.contains("\"createdAt\":\"2024-01-01"))
        .count();
    assert!(expected_first_day > 0 && expected_first_day < lines.len());
    assert_eq!(total, lines.len());
    assert!(all_files(&root).contains(&"_SUCCESS".to_owned()));
    Ok(())
}

mod lifecycle;
mod missing;
