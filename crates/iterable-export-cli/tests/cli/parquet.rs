//! `export --format parquet` and `convert`: the files read back with the `parquet` crate's Arrow reader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use chrono::{TimeZone, Utc};
use iterable_export_mock::{Fault, MockConfig};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::common::*;

/// Two days from noon to noon in fixed 1-day windows: each window touches two UTC days.
pub(crate) const EXPORT: &str = "export --data-type emailSend --format parquet --start 2024-01-01T12:00:00Z \
                      --end 2024-01-03T12:00:00Z --window 1d --max-window 1d --requests-per-minute 6000";

/// Visible files under `root` (not starting with `_` or `.`), relative paths, sorted.
pub(crate) fn visible(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
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

/// `(messageId, createdAt as RFC 3339)` of every row of every visible file, by `dt=` directory.
pub(crate) fn rows_by_day(root: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for file in visible(root) {
        let dt = file.split('/').next().expect("a dt= directory").to_owned();
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(root.join(&file)).expect("open"))
            .expect("a Parquet file")
            .build()
            .expect("a reader");
        for batch in reader {
            let batch = batch.expect("a batch");
            let ids = batch
                .column_by_name("messageId")
                .expect("messageId")
                .as_string::<i32>()
                .clone();
            let times = batch
                .column_by_name("createdAt")
                .expect("createdAt")
                .as_primitive::<TimestampMicrosecondType>()
                .clone();
            for row in 0..batch.num_rows() {
                assert!(!ids.is_null(row) && !times.is_null(row), "{file} row {row}");
                let time = Utc.timestamp_micros(times.value(row)).single().expect("a time");
                out.entry(dt.clone())
                    .or_default()
                    .push((ids.value(row).to_owned(), time.to_rfc3339()));
            }
        }
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

/// What the mock serves for `[start, end)`, grouped as [`rows_by_day`] reads it.
pub(crate) fn expected_by_day(
    config: &MockConfig,
    start: chrono::DateTime<Utc>,
    end: chrono::DateTime<Utc>,
) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in sorted_lines(&expected_body(config, "emailSend", start, end)) {
        let record: serde_json::Value = serde_json::from_slice(line).expect("JSON");
        let created = record["createdAt"].as_str().expect("createdAt");
        let time = iterable_export::parse_iterable_time(created).expect("a time");
        out.entry(format!("dt={}", time.format("%Y-%m-%d"))).or_default().push((
            record["messageId"].as_str().expect("messageId").to_owned(),
            time.to_rfc3339(),
        ));
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

pub(crate) fn lake(dir: &Path) -> PathBuf {
    dir.join("emailSend")
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_export_writes_each_record_once_in_its_days_partition() -> TestResult {
    let config = config(2000);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock).line(EXPORT).into_dir(dir.path()).run().await?.code(0);
    let root = lake(dir.path());
    assert_eq!(
        visible(&root),
        [
            "dt=2024-01-01/part-20240101T120000Z-20240102T120000Z.parquet",
            "dt=2024-01-02/part-20240101T120000Z-20240102T120000Z.parquet",
            "dt=2024-01-02/part-20240102T120000Z-20240103T120000Z.parquet",
            "dt=2024-01-03/part-20240102T120000Z-20240103T120000Z.parquet",
        ]
    );
    assert!(root.join("_SUCCESS").exists());
    let expected = expected_by_day(&config, day_at(0, 12), day_at(2, 12));
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ["dt=2024-01-01", "dt=2024-01-02", "dt=2024-01-03"]
    );
    assert_eq!(expected.values().map(Vec::len).sum::<usize>(), 4000);
    let got = rows_by_day(&root);
    for (dt, rows) in &expected {
        assert_eq!(got.get(dt).map(Vec::len), Some(rows.len()), "{dt}");
    }
    assert_eq!(got, expected);

    // `--partition none`: the windows' files directly under the data type's directory.
    let flat = tempfile::tempdir()?;
    command(&mock)
        .line(EXPORT)
        .line("--partition none --compression snappy")
        .with("--output")
        .with(flat.path())
        .run()
        .await?
        .code(0);
    assert_eq!(
        visible(&lake(flat.path())),
        [
            "part-20240101T120000Z-20240102T120000Z.parquet",
            "part-20240102T120000Z-20240103T120000Z.parquet"
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_parquet_export_leaves_no_visible_partial_file_and_resumes_exactly() -> TestResult {
    let config = config(4000);
    let mock = start(config.clone()).await?;
    // Every body pauses for 150 ms after 100 000 bytes (a sixth of a window).
    mock.inject(Fault::Stall {
        after_bytes: 100_000,
        duration: Duration::from_millis(150),
        count: 100,
    });
    let dir = tempfile::tempdir()?;
    let mut child = child_command(&mock)
        .args(words(EXPORT))
        .args(dir_args(dir.path()))
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    // Killed in the middle of the second window's body.
    kill_when_held(&mock, &mut child, 2, 100_000).await?;
    mock.clear_faults();
    let root = lake(dir.path());
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json"))?)?;
    let entry = &state["exports"]["emailSend.parquet"];
    assert_eq!(entry["done"], false);
    assert_eq!(entry["cursor"], "2024-01-02T12:00:00Z", "{entry}");
    assert_eq!(entry["committed_len"], 1, "one commit: the first window");
    assert_eq!(
        visible(&root),
        [
            "dt=2024-01-01/part-20240101T120000Z-20240102T120000Z.parquet",
            "dt=2024-01-02/part-20240101T120000Z-20240102T120000Z.parquet",
        ],
        "only the committed window is visible"
    );
    assert!(!root.join("_SUCCESS").exists());
    assert_eq!(
        rows_by_day(&root),
        expected_by_day(&config, day_at(0, 12), day_at(1, 12)),
        "the committed window's records, each once"
    );

    command(&mock)
        .line(EXPORT)
        .into_dir(dir.path())
        .run()
        .await?
        .code(0)
        .stderr(contains("resumed from 2024-01-02T12:00:00+00:00"));
    assert_eq!(
        rows_by_day(&root),
        expected_by_day(&config, day_at(0, 12), day_at(2, 12))
    );
    let hidden_temporary = std::fs::read_dir(root.join("dt=2024-01-02"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .count();
    assert_eq!(
        hidden_temporary, 0,
        "the resumed run removed the killed window's temporary file"
    );
    assert!(root.join("_SUCCESS").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn convert_writes_the_same_layout_and_a_bad_line_leaves_nothing_visible() -> TestResult {
    let config = config(2000);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("emailSend.ndjson");
    let mut body = expected_body(&config, "emailSend", day_at(0, 12), day_at(2, 12));
    std::fs::write(&input, &body)?;
    let out = dir.path().join("lake");
    bare_command()
        .line("convert --data-type emailSend --format parquet")
        .with(&input)
        .with("-o")
        .with(&out)
        .assert()
        .code(0)
        .stderr(contains("4000 records"));
    let root = lake(&out);
    assert_eq!(
        visible(&root),
        [
            "dt=2024-01-01/part-all.parquet",
            "dt=2024-01-02/part-all.parquet",
            "dt=2024-01-03/part-all.parquet"
        ]
    );
    assert_eq!(
        rows_by_day(&root),
        expected_by_day(&config, day_at(0, 12), day_at(2, 12))
    );

    // Values that contradict their column's type are kept in `_extra` and counted in the summary.
    let odd = dir.path().join("odd.ndjson");
    std::fs::write(
        &odd,
        "{\"createdAt\":\"2024-01-05 00:00:00 +00:00\",\"campaignId\":\"123\",\"userId\":42,\"messageId\":\"m\"}\n",
    )?;
    bare_command()
        .line("convert --data-type emailSend")
        .with(&odd)
        .with("-o")
        .with(dir.path().join("odd"))
        .assert()
        .code(0)
        .stderr(contains("1 records (90 B) converted"))
        .stderr(contains("(2 values contradicted their column's type; kept in _extra)"));

    // A blank line (skipped), then a line that is not JSON: line 4003 of the file.
    body.extend_from_slice(b"\n{\"createdAt\":\"2024-01-05 00:00:00 +00:00\",\"messageId\":\"x\"}\n{oops\n");
    std::fs::write(&input, &body)?;
    let bad = dir.path().join("bad");
    bare_command()
        .line("convert --data-type emailSend")
        .with(&input)
        .with("-o")
        .with(&bad)
        .assert()
        .code(7)
        .stderr(contains("line 4003 is not a record; nothing was written"));
    // Converted in a staging directory, removed with the error: nothing at all is left.
    assert_eq!(names(&bad), Vec::<String>::new());
    Ok(())
}

/// `convert --data-type emailSend INPUT -o OUT`, run to its end.
pub(crate) fn convert_file(input: &Path, out: &Path) -> assert_cmd::assert::Assert {
    bare_command()
        .line("convert --data-type emailSend")
        .with(input)
        .with("-o")
        .with(out)
        .assert()
}

/// The names in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// Every file under `root` (hidden ones too) with its bytes, by relative path.
pub(crate) fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.insert(path.strip_prefix(root).expect("under root").to_owned(), bytes);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_convert_leaves_the_earlier_output_unchanged() -> TestResult {
    let config = config(500);
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("emailSend.ndjson");
    let mut body = expected_body(&config, "emailSend", day_at(0, 12), day_at(1, 12));
    std::fs::write(&input, &body)?;
    let out = dir.path().join("lake");
    let convert = || convert_file(&input, &out);
    convert().code(0).stderr(contains("500 records"));
    let root = lake(&out);
    let before = tree(&root);
    assert_eq!(
        before
            .keys()
            .map(|p| p.to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        [
            "_SUCCESS",
            "_committed",
            "_lock",
            "dt=2024-01-01/part-all.parquet",
            "dt=2024-01-02/part-all.parquet"
        ]
    );

    // Line 501 is not a record: the first conversion's files stay, byte for byte, and no staging directory is left.
    body.extend_from_slice(b"{oops\n");
    std::fs::write(&input, &body)?;
    convert()
        .code(7)
        .stderr(contains("line 501 is not a record; nothing was written"));
    assert_eq!(tree(&root), before);
    assert_eq!(names(&out), ["emailSend"]);

    // A good conversion replaces the directory: the new records, and again no staging directory.
    body.truncate(body.len() - b"{oops\n".len());
    body.extend_from_slice(b"{\"createdAt\":\"2024-01-05 00:00:00 +00:00\",\"messageId\":\"x\"}\n");
    std::fs::write(&input, &body)?;
    convert().code(0).stderr(contains("501 records"));
    assert_eq!(
        visible(&root),
        [
            "dt=2024-01-01/part-all.parquet",
            "dt=2024-01-02/part-all.parquet",
            "dt=2024-01-05/part-all.parquet"
        ]
    );
    assert!(root.join("_SUCCESS").exists());
    assert_eq!(names(&out), ["emailSend"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn continuing_after_the_directory_was_deleted_is_refused_and_writes_nothing() -> TestResult {
    let config = config(2000);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock).line(EXPORT).into_dir(dir.path()).run().await?.code(0);
    let root = lake(dir.path());
    assert_eq!(visible(&root).len(), 4);
    std::fs::remove_dir_all(&root)?;
    let state = std::fs::read(dir.path().join("state.json"))?;
    let requests = mock.requests().len();

    command(&mock)
        .line("export --data-type emailSend --format parquet --end 2024-01-04T12:00:00Z --window 1d --max-window 1d")
        .into_dir(dir.path())
        .run()
        .await?
        .code(7)
        .stderr(contains(format!(
            "{} is gone, with the 2 commits the state file records",
            root.display()
        )))
        .stderr(contains(
            "delete the state file (or its entry) to export from the start again",
        ));
    assert!(!root.exists(), "nothing was written");
    assert_eq!(std::fs::read(dir.path().join("state.json"))?, state);
    assert_eq!(mock.requests().len(), requests, "no request was sent");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn convert_stops_at_a_line_longer_than_an_export_reads_and_counts_blank_lines() -> TestResult {
    const MAX: usize = iterable_export::DEFAULT_MAX_LINE_LENGTH;
    assert_eq!(MAX, 16 * 1024 * 1024);
    // A record of exactly `len` bytes.
    let record = |day: u32, len: usize| {
        let head = format!("{{\"createdAt\":\"2024-01-0{day} 00:00:00 +00:00\",\"messageId\":\"");
        let mut line = head.into_bytes();
        line.resize(len - 2, b'a');
        line.extend_from_slice(b"\"}");
        line
    };
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("emailSend.ndjson");
    let out = dir.path().join("lake");
    let convert = || convert_file(&input, &out);

    // Blank lines are counted, and a line of exactly the maximum is a record.
    let mut body = [
        record(5, 100),
        b"\n\n \t\r\n".to_vec(),
        record(6, MAX),
        b"\r\n".to_vec(),
    ]
    .concat();
    std::fs::write(&input, &body)?;
    let text = stderr(&convert().code(0));
    assert_eq!(body.len(), 16_777_324);
    assert!(text.contains("2 records (16.8 MB) converted"), "{text}");
    assert!(text.contains("lake/emailSend (2 blank lines skipped)"), "{text}");
    let root = lake(&out);
    assert_eq!(
        visible(&root),
        ["dt=2024-01-05/part-all.parquet", "dt=2024-01-06/part-all.parquet"]
    );
    let before = tree(&root);

    // One byte more on line 5: the conversion stops there, and the earlier output stays as it was.
    body.extend_from_slice(&record(7, MAX + 1));
    body.extend_from_slice(b"\n");
    body.extend_from_slice(&record(8, 100));
    std::fs::write(&input, &body)?;
    let failed = convert().code(7);
    assert!(
        stderr(&failed).contains(&format!(
            "{} line 5 is longer than 16777216 bytes (16 MiB), the longest record an export reads; nothing was \
             written",
            input.display()
        )),
        "{}",
        stderr(&failed)
    );
    assert_eq!(tree(&root), before);
    assert_eq!(names(&out), ["emailSend"]);
    Ok(())
}
