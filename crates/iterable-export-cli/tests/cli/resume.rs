//! Checkpoints: kill at any moment and resume, incremental syncs with a de-duplicated look-back.

use std::time::Duration;

use chrono::TimeDelta;
use iterable_export_mock::Fault;

use crate::common::*;

fn export_args(dir: &std::path::Path) -> Vec<String> {
    let d = dir.display().to_string();
    [
        "export",
        "--data-type",
        "emailSend",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-03",
        "--window",
        "6h",
        "--max-window",
        "6h",
        "--requests-per-minute",
        "6000",
        "--output",
        &d,
        "--state",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("{d}/state.json")])
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_at_any_moment_then_resumed_is_exact() -> TestResult {
    for kill_after_ms in [150u64, 700, 1300] {
        let config = config(4000);
        let mock = start(config.clone()).await?;
        // Every body pauses 200 ms midway, so the kill lands inside some window.
        mock.inject(Fault::Stall {
            after_bytes: 100_000,
            duration: Duration::from_millis(200),
            count: 100,
        });
        let dir = tempfile::tempdir()?;
        let mut cmd = command(&mock)?;
        cmd.args(export_args(dir.path()))
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let mut child = cmd.spawn()?;
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        child.kill()?; // SIGKILL
        tokio::task::spawn_blocking(move || child.wait()).await??;
        let before = mock.counters().requests;
        assert!(
            !dir.path().join("emailSend.ndjson").exists(),
            "killed at {kill_after_ms} ms: no complete-looking file"
        );

        let mut cmd = command(&mock)?;
        cmd.args(export_args(dir.path()));
        let output = run(cmd).await?;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_exact(
            &dir.path().join("emailSend.ndjson"),
            &expected_body(&config, "emailSend", day(0), day(2)),
        )?;
        let total = mock.counters().requests;
        // 8 windows (7 plus the 5-minute tail split off for the next run = 9 requests); the kill
        // can cost at most the one window that was in flight.
        assert!(
            total <= 9 + 1,
            "killed at {kill_after_ms} ms: {before} + {} requests",
            total - before
        );
        if before > 0 {
            assert!(stderr(&output).contains("resumed from"), "{}", stderr(&output));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn incremental_sync_continues_and_drops_the_look_back_duplicates() -> TestResult {
    let config = config(2880); // one record every 30 s: 10 in the 5-minute look-back
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path().display().to_string();
    let state = format!("{d}/state.json");
    let first = [
        "export",
        "--data-type",
        "emailSend",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-02",
        "-o",
        &d,
        "--state",
        &state,
    ];
    let mut cmd = command(&mock)?;
    cmd.args(first);
    let output = run(cmd).await?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let next = [
        "export",
        "--data-type",
        "emailSend",
        "--end",
        "2024-01-03",
        "-o",
        &d,
        "--state",
        &state,
    ];
    let mut cmd = command(&mock)?;
    cmd.args(next);
    let output = run(cmd).await?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_exact(
        &dir.path().join("emailSend.ndjson"),
        &expected_body(&config, "emailSend", day(0), day(2)),
    )?;
    let dropped = iterable_export_mock::expected_count(&config, "emailSend", day(1) - TimeDelta::minutes(5), day(1))?;
    assert!(dropped > 0);
    assert!(
        stderr(&output).contains(&format!("({dropped} duplicates from the look-back dropped)")),
        "{}",
        stderr(&output)
    );
    let query = &mock.requests().last().map(|r| r.query.clone()).unwrap_or_default();
    assert!(query.contains("endDateTime=2024-01-03"), "{query}");

    let mut cmd = command(&mock)?;
    cmd.args(next);
    let output = run(cmd).await?;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("already complete, nothing new to export"),
        "{}",
        stderr(&output)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_for_another_span_is_refused_and_left_valid() -> TestResult {
    let mock = start(config(100)).await?;
    mock.inject(Fault::Status { status: 400, count: 1 });
    let dir = tempfile::tempdir()?;
    let mut cmd = command(&mock)?;
    cmd.args(export_args(dir.path()));
    let output = run(cmd).await?;
    assert_eq!(output.status.code(), Some(5), "a 400 fails fast: {}", stderr(&output));
    let state = std::fs::read_to_string(dir.path().join("state.json"))?;
    let parsed: serde_json::Value = serde_json::from_str(&state)?;
    assert_eq!(parsed["exports"]["emailSend.ndjson"]["done"], false);
    assert_eq!(parsed["exports"]["emailSend.ndjson"]["committed_len"], 0);

    let d = dir.path().display().to_string();
    let mut cmd = command(&mock)?;
    cmd.args([
        "export",
        "--data-type",
        "emailSend",
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-03",
        "-o",
        &d,
        "--state",
        &format!("{d}/state.json"),
    ]);
    let output = run(cmd).await?;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("the state file holds an unfinished export of emailSend.ndjson"),
        "{}",
        stderr(&output)
    );
    Ok(())
}
