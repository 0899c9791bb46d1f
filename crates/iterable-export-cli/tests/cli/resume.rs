//! Checkpoints: kill at any moment and resume, incremental syncs with a de-duplicated look-back.

use std::time::Duration;

use chrono::TimeDelta;
use iterable_export_mock::Fault;

use crate::common::*;

/// An export of two days in 6-hour windows (with `--output` and `--state`, see [`dir_args`]).
const EXPORT: &str = "export --data-type emailSend --start 2024-01-01 --end 2024-01-03 --window 6h --max-window 6h \
                      --requests-per-minute 6000";

/// Proves: an export killed (SIGKILL) in the middle of a window, at several points, and rerun
/// with the same arguments ends with exactly the served records, and the rerun requests exactly
/// the windows its checkpoint does not hold: the kill costs the one window in flight, no more.
/// Each kill is triggered by an event — the mock holding request N's body mid-way — not by a
/// delay, and what is asserted follows from what the mock and the state file show at the kill.
#[tokio::test(flavor = "multi_thread")]
async fn killed_at_any_moment_then_resumed_is_exact() -> TestResult {
    let config = config(4000);
    // The windows an uninterrupted run requests: 8 of 6 hours (the 5-minute look-back tail is
    // not a window of its own: its records are remembered by their time).
    let reference = {
        let mock = start(config.clone()).await?;
        let dir = tempfile::tempdir()?;
        command(&mock).line(EXPORT).into_dir(dir.path()).run().await?.code(0);
        windows_requested(&mock)
    };
    assert_eq!(reference.len(), 8, "{reference:?}");
    for kill_from in [2usize, 4, 6] {
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
        kill_when_held(&mock, &mut child, kill_from, 100_000).await?;
        mock.clear_faults();
        let log = mock.requests();
        let served = log.len();
        let last_completed = log.last().is_some_and(|r| r.completed);
        let state = read_state(&dir.path().join("state.json"))?;
        let entry = &state["exports"]["emailSend.ndjson"];
        assert_eq!(entry["done"], false, "killed in request {served}");
        assert!(
            !dir.path().join("emailSend.ndjson").exists(),
            "killed in request {served}: no complete-looking file"
        );
        let cursor = entry["cursor"]
            .as_str()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .ok_or_else(|| format!("no cursor in {entry}"))?;
        let committed = reference.iter().take_while(|w| w.1 <= cursor).count();
        assert_eq!(
            reference.get(committed.wrapping_sub(1)).map_or(day(0), |w| w.1),
            cursor,
            "the checkpoint ends on a window's end"
        );
        // The window in flight at the kill is not in the checkpoint; every earlier one is.
        if last_completed {
            assert!((served - 1..=served).contains(&committed), "{committed} of {served}");
        } else {
            assert_eq!(committed, served - 1, "killed mid-body in request {served}");
        }

        let rerun = command(&mock).line(EXPORT).into_dir(dir.path()).run().await?.code(0);
        if committed > 0 {
            rerun.stderr(contains(format!("resumed from {}", cursor.to_rfc3339())));
        }
        assert_file_records(
            &dir.path().join("emailSend.ndjson"),
            &expected_body(&config, "emailSend", day(0), day(2)),
        );
        assert_eq!(
            windows_requested(&mock)[served..],
            reference[committed..],
            "killed in request {served}: the rerun asks for exactly the windows not checkpointed"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_sync_continues_and_drops_the_look_back_duplicates() -> TestResult {
    let config = config(2880); // one record every 30 s: 10 in the 5-minute look-back
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let dropped = iterable_export_mock::expected_count(&config, "emailSend", day(1) - TimeDelta::minutes(5), day(1))?;
    assert!(dropped > 0);
    let export = |span: &str| {
        command(&mock)
            .line("export --data-type emailSend")
            .line(span)
            .into_dir(dir.path())
    };
    export("--start 2024-01-01 --end 2024-01-02").run().await?.code(0);

    export("--end 2024-01-03")
        .run()
        .await?
        .code(0)
        .stderr(contains(format!("({dropped} duplicates from the look-back dropped)")));
    assert_file_records(
        &dir.path().join("emailSend.ndjson"),
        &expected_body(&config, "emailSend", day(0), day(2)),
    );
    let query = &mock.requests().last().ok_or("no request")?.query.clone();
    assert!(query.contains("endDateTime=2024-01-03"), "{query}");

    export("--end 2024-01-03")
        .run()
        .await?
        .code(0)
        .stderr(contains("already complete, nothing new to export"));
    Ok(())
}

/// Proves: an incremental run costs one request per window, not three (the re-read look-back,
/// the new span and the new tail each used to be a window of their own), NDJSON and CSV alike:
/// the look-back is de-duplicated and remembered record by record, by each record's time.
#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_run_reads_the_look_back_and_the_new_span_in_one_request() -> TestResult {
    let config = config(2880); // one record every 30 s: 120 in the 1-hour look-back
    let t = |hours: i64| day(0) + TimeDelta::hours(hours);
    for format in ["ndjson", "csv"] {
        let mock = start(config.clone()).await?;
        let dir = tempfile::tempdir()?;
        let export = |end: &str| {
            command(&mock)
                .line(&format!(
                    "export --data-type emailSend --format {format} --lookback 1h --window 1d --max-window 1d \
                     --requests-per-minute 6000 --end {end}"
                ))
                .into_dir(dir.path())
        };
        export("2024-01-02")
            .with("--start")
            .with("2024-01-01")
            .run()
            .await?
            .code(0);
        assert_eq!(windows_requested(&mock), [(t(0), t(24))], "{format}: the first run");
        let dropped = iterable_export_mock::expected_count(&config, "emailSend", t(23), t(24))?;
        assert_eq!(dropped, 120);
        export("2024-01-02T06:00:00Z")
            .run()
            .await?
            .code(0)
            .stderr(contains(format!("({dropped} duplicates from the look-back dropped)")));
        export("2024-01-02T12:00:00Z")
            .run()
            .await?
            .code(0)
            .stderr(contains(format!("({dropped} duplicates from the look-back dropped)")));
        assert_eq!(
            windows_requested(&mock),
            [(t(0), t(24)), (t(23), t(30)), (t(29), t(36))],
            "{format}: one request per run, from the remembered tail's start"
        );
        let output = dir.path().join(format!("emailSend.{format}"));
        if format == "ndjson" {
            assert_file_records(&output, &expected_body(&config, "emailSend", t(0), t(36)));
        } else {
            // The file's header and rows (as a set: each run's window is served in its own order)
            // are exactly those of the three spans, each row once.
            let mut want = iterable_export_mock::expected_csv_header("emailSend")?;
            want.push(b'\n');
            for (start, end) in [(t(0), t(24)), (t(24), t(30)), (t(30), t(36))] {
                for row in iterable_export_mock::expected_csv(&config, "emailSend", start, end)? {
                    want.extend_from_slice(&row);
                    want.push(b'\n');
                }
            }
            let rows = |bytes: &[u8]| -> Result<(csv::StringRecord, Vec<csv::StringRecord>), BoxError> {
                let mut reader = csv::Reader::from_reader(bytes);
                let header = reader.headers()?.clone();
                let mut rows = reader.records().collect::<Result<Vec<_>, _>>()?;
                rows.sort_by(|a, b| a.iter().cmp(b.iter()));
                Ok((header, rows))
            };
            let (got, want) = (rows(&std::fs::read(&output)?)?, rows(&want)?);
            assert_eq!(got.1.len(), 4320, "{format}: 36 hours of a record every 30 s");
            assert_eq!(got, want, "{format}: the header and each record once");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_for_another_span_is_refused_and_left_valid() -> TestResult {
    let mock = start(config(100)).await?;
    mock.inject(Fault::Status { status: 400, count: 1 });
    let dir = tempfile::tempdir()?;
    // A 400 fails fast.
    command(&mock).line(EXPORT).into_dir(dir.path()).run().await?.code(5);
    let state = std::fs::read_to_string(dir.path().join("state.json"))?;
    let parsed: serde_json::Value = serde_json::from_str(&state)?;
    assert_eq!(parsed["exports"]["emailSend.ndjson"]["done"], false);
    assert_eq!(parsed["exports"]["emailSend.ndjson"]["committed_len"], 0);

    command(&mock)
        .line("export --data-type emailSend --start 2024-01-02 --end 2024-01-03")
        .into_dir(dir.path())
        .run()
        .await?
        .code(2)
        .stderr(contains(
            "the state file holds an unfinished export of emailSend.ndjson",
        ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_runs_closer_together_than_the_look_back_stay_exact() -> TestResult {
    let config = config(2880); // one record every 30 s
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let runs = [
        "--start 2024-01-01T00:00:00Z --end 2024-01-01T01:00:00Z",
        "--end 2024-01-01T01:02:00Z",
        "--end 2024-01-01T01:03:00Z",
        "--end 2024-01-01T01:10:00Z",
    ];
    for span in runs {
        command(&mock)
            .line("export --data-type emailSend --requests-per-minute 6000")
            .into_dir(dir.path())
            .line(span)
            .run()
            .await?
            .code(0);
    }
    let end = day(0) + TimeDelta::minutes(70);
    assert_file_records(
        &dir.path().join("emailSend.ndjson"),
        &expected_body(&config, "emailSend", day(0), end),
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stray_part_file_never_replaces_a_finished_export() -> TestResult {
    let config = config(500);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let export = |span: &str| {
        command(&mock)
            .line("export --data-type emailSend --requests-per-minute 6000")
            .into_dir(dir.path())
            .line(span)
    };
    export("--start 2024-01-01 --end 2024-01-02").run().await?.code(0);
    // A failed ad-hoc run left its .part behind.
    std::fs::write(
        dir.path().join("emailSend.ndjson.part"),
        b"{\"garbage\":true}\n{\"more\":1}\n",
    )?;
    export("--end 2024-01-03").run().await?.code(0);
    assert_file_records(
        &dir.path().join("emailSend.ndjson"),
        &expected_body(&config, "emailSend", day(0), day(2)),
    );

    // The finished file was changed behind the checkpoint's back: refuse, change nothing.
    let path = dir.path().join("emailSend.ndjson");
    let mut tampered = std::fs::read(&path)?;
    tampered.extend_from_slice(b"{\"appended\":1}\n");
    std::fs::write(&path, &tampered)?;
    export("--end 2024-01-04")
        .run()
        .await?
        .code(7)
        .stderr(contains("does not belong to this checkpoint"));
    assert_eq!(std::fs::read(&path)?, tampered);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_windows_without_records_keep_one_header() -> TestResult {
    // Data starts on 2024-01-02: the first window's body is empty (or a bare header).
    let config = config(100).with_data_start(chrono::NaiveDate::from_ymd_opt(2024, 1, 2).ok_or("date")?);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(
            "export --data-type emailSend --start 2023-12-31 --end 2024-01-03 --format csv --max-window 1d \
             --requests-per-minute 6000 -o",
        )
        .with(dir.path())
        .run()
        .await?
        .code(0);
    let text = std::fs::read_to_string(dir.path().join("emailSend.csv"))?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers()?.get(0), Some("createdAt"));
    assert_eq!(reader.records().count(), 100);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_run_moves_no_file_and_another_output_dir_is_refused() -> TestResult {
    let mock = start(config(200)).await?;
    let dir = tempfile::tempdir()?;
    let both = |span: &str| {
        command(&mock)
            .line("export --data-type emailSend --data-type emailOpen --requests-per-minute 6000")
            .into_dir(dir.path())
            .line(span)
    };
    both("--start 2024-01-01 --end 2024-01-02").run().await?.code(0);
    // emailOpen's file was changed: the incremental run is refused before touching emailSend's.
    let open = dir.path().join("emailOpen.ndjson");
    let mut changed = std::fs::read(&open)?;
    changed.truncate(changed.len() - 10);
    std::fs::write(&open, &changed)?;
    both("--end 2024-01-03")
        .run()
        .await?
        .code(7)
        .stderr(contains("does not belong to this checkpoint"));
    assert!(dir.path().join("emailSend.ndjson").exists());
    assert!(!dir.path().join("emailSend.ndjson.part").exists());

    let other = tempfile::tempdir()?;
    command(&mock)
        .line("export --data-type emailSend -o")
        .with(other.path())
        .with("--state")
        .with(dir.path().join("state.json"))
        .line("--end 2024-01-03")
        .run()
        .await?
        .code(2)
        .stderr(contains("use --output"));
    Ok(())
}
