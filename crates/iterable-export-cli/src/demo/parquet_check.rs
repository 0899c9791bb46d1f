//! The demo's check of a Parquet export: the files under `DIR/<dataType>/dt=…/` read back with the
//! `parquet` crate's reader, against what the mock served.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::Array;
use arrow_array::cast::AsArray;
use chrono::{DateTime, TimeDelta, Utc};
use iterable_export_mock::MockConfig;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{difference, digest};

/// The mock's unique id of a record (`<dataType>-<day>-<n>`). No table gives it a column, so the
/// Parquet files keep it in `_extra`.
const ID: &str = "recordId";

/// Just the id of a record (`_extra` of a row, or a whole NDJSON record).
#[derive(serde::Deserialize)]
struct Id<'a> {
    #[serde(rename = "recordId", borrow)]
    id: Cow<'a, str>,
}

/// Checks that `root` (`DIR/<dataType>`) holds exactly the records the mock served for
/// `data_type` in `[start, end)` (whole UTC days): as many in each `dt=` partition as the mock
/// served that day, and the same record ids, each once. Returns what was found, for a line of
/// output.
pub(super) fn verify(
    config: &MockConfig,
    data_type: &str,
    root: &Path,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<String, String> {
    let mock_error = |e: iterable_export_mock::MockError| format!("{data_type}: {e}");
    let mut expected_days = BTreeMap::new();
    let mut day = start;
    while day < end {
        let next = day + TimeDelta::days(1);
        let count = iterable_export_mock::expected_count(config, data_type, day, next).map_err(mock_error)?;
        expected_days.insert(format!("dt={}", day.format("%Y-%m-%d")), count);
        day = next;
    }
    let mut expected = Vec::new();
    for record in iterable_export_mock::expected_ndjson(config, data_type, start, end).map_err(mock_error)? {
        let id: Id<'_> = serde_json::from_slice(&record).map_err(|e| format!("{data_type}: a served record: {e}"))?;
        expected.push(digest(id.id.as_bytes()));
    }

    let mut days = BTreeMap::new();
    let mut got = Vec::new();
    for (dt, file) in parquet_files(root)? {
        let rows = read_ids(&file, &mut got).map_err(|e| format!("{}: {e}", file.display()))?;
        *days.entry(dt).or_insert(0u64) += rows;
    }
    if days != expected_days {
        return Err(format!(
            "{}: records per partition {days:?}, the mock served {expected_days:?}",
            root.display()
        ));
    }
    expected.sort_unstable();
    got.sort_unstable();
    if got != expected {
        let (missing, unexpected) = difference(&expected, &got);
        return Err(format!(
            "{}: {} records, the mock served {}: {missing} {ID}s missing, {unexpected} not served or duplicated",
            root.display(),
            got.len(),
            expected.len()
        ));
    }
    let partitions: Vec<String> = days.iter().map(|(dt, n)| format!("{dt} {n}")).collect();
    Ok(format!(
        "{} records in {} day partitions ({}), each {ID} once, as served",
        got.len(),
        days.len(),
        partitions.join(", ")
    ))
}

/// The visible Parquet files under `root`, with their `dt=` directory; a file elsewhere is an
/// error (the demo writes day partitions only).
fn parquet_files(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let list = |dir: &Path| -> Result<Vec<(String, PathBuf)>, String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(['_', '.']) {
                out.push((name, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    };
    let mut files = Vec::new();
    for (dt, dir) in list(root)? {
        if !dt.starts_with("dt=") || !dir.is_dir() {
            return Err(format!("{}: not a day partition", dir.display()));
        }
        for (name, file) in list(&dir)? {
            if !name.ends_with(".parquet") {
                return Err(format!("{}: not a Parquet file", file.display()));
            }
            files.push((dt.clone(), file));
        }
    }
    Ok(files)
}

/// Adds the digest of the id of every row of `file` to `ids`; returns the number of rows.
fn read_ids(file: &Path, ids: &mut Vec<[u64; 2]>) -> Result<u64, String> {
    let open = std::fs::File::open(file).map_err(|e| format!("cannot open: {e}"))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(open).map_err(|e| e.to_string())?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), [iterable_export::EXTRA_COLUMN]);
    let reader = builder.with_projection(mask).build().map_err(|e| e.to_string())?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let extra = batch
            .column_by_name(iterable_export::EXTRA_COLUMN)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| format!("no text column {}", iterable_export::EXTRA_COLUMN))?;
        for row in 0..extra.len() {
            if extra.is_null(row) {
                return Err(format!("row {}: no {ID}", rows + 1));
            }
            let id: Id<'_> = serde_json::from_str(extra.value(row)).map_err(|e| format!("row {}: {e}", rows + 1))?;
            ids.push(digest(id.id.as_bytes()));
            rows += 1;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iterable_export::{DataType, ParquetOptions, ParquetSink, Sink, Window};

    fn day(d: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2024, 1, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid date")
            .and_utc()
    }

    /// Writes `records` as one window's Parquet export of emailSend under `dir`; returns its root.
    async fn write(dir: &Path, records: &[Vec<u8>]) -> PathBuf {
        let window = Window {
            start: day(1),
            end: day(3),
        };
        let mut sink =
            ParquetSink::create(dir, DataType::EmailSend, ParquetOptions::default()).expect("a Parquet sink");
        sink.begin(&window).await.expect("begin");
        for record in records {
            sink.record(record).await.expect("a record");
        }
        sink.commit(&window, records.len() as u64).await.expect("commit");
        sink.finish().await.expect("finish")
    }

    #[tokio::test]
    async fn verify_accepts_exactly_the_served_records_and_says_what_differs() {
        let config = MockConfig::default()
            .with_records_per_day(50)
            .with_data_start(day(1).date_naive());
        let span = (day(1), day(3));
        let served: Vec<Vec<u8>> = iterable_export_mock::expected_ndjson(&config, "emailSend", span.0, span.1)
            .expect("a known data type")
            .collect();
        assert_eq!(served.len(), 100);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let check = |root: &Path| verify(&config, "emailSend", root, span);

        let root = write(dir.path(), &served).await;
        assert_eq!(
            check(&root),
            Ok(
                "100 records in 2 day partitions (dt=2024-01-01 50, dt=2024-01-02 50), each recordId once, as served"
                    .to_owned()
            )
        );

        // A record missing, in the second day.
        let root = write(dir.path(), &served[..99]).await;
        let err = check(&root).expect_err("a record is missing");
        assert!(
            err.ends_with(
                "records per partition {\"dt=2024-01-01\": 50, \"dt=2024-01-02\": 49}, the mock served \
                 {\"dt=2024-01-01\": 50, \"dt=2024-01-02\": 50}"
            ),
            "{err}"
        );

        // The right count per day, but a record twice and another missing.
        let mut twice = served.clone();
        twice[1] = twice[0].clone();
        let root = write(dir.path(), &twice).await;
        let err = check(&root).expect_err("a record is duplicated");
        assert!(
            err.ends_with("100 records, the mock served 100: 1 recordIds missing, 1 not served or duplicated"),
            "{err}"
        );

        // Something else in the data type's directory.
        std::fs::write(root.join("stray.parquet"), b"x").expect("a stray file");
        let err = check(&root).expect_err("a file outside the partitions");
        assert!(err.ends_with("stray.parquet: not a day partition"), "{err}");
    }
}
