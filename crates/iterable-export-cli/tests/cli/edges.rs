//! Exactly-once at the edges: locking, lost renames on either side of the checkpoint, look-back
//! limits.

use std::path::Path;
use std::time::Duration;

use crate::common::*;

fn args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let d = dir.display().to_string();
    let mut args: Vec<String> = ["export", "--data-type", "emailSend", "--output", &d]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn state_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut all = args(dir, extra);
    all.push("--state".into());
    all.push(dir.join("state.json").display().to_string());
    all
}

/// A cron job overlapping a manual run: while one export holds the state file (it waits for the
/// rate limit before its second window), a second one on the same state file fails at once with
/// exit 7 naming the lock, and so does a run without a state file writing the same output; neither
/// sends a request or changes a file.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_the_same_files_fails_at_once_with_exit_7() -> TestResult {
    let mock = start(config(100)).await?;
    let dir = tempfile::tempdir()?;
    let first_args = state_args(
        dir.path(),
        &[
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-04",
            "--window",
            "1d",
            "--max-window",
            "1d",
            "--requests-per-minute",
            "1",
        ],
    );
    let mut cmd = command(&mock)?;
    cmd.args(&first_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = cmd.spawn()?;
    // The first window is committed when the state file records it; the next one waits a minute.
    let state_path = dir.path().join("state.json");
    let mut waited = 0;
    loop {
        let committed = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|s| s["exports"]["emailSend.ndjson"]["records"].as_u64());
        if committed == Some(100) {
            break;
        }
        waited += 1;
        assert!(waited < 3000, "the first run did not commit its first window");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let state_before = std::fs::read(&state_path)?;
    let part_before = std::fs::read(dir.path().join("emailSend.ndjson.part"))?;

    let second = run_expecting(&mock, &first_args, 7).await?;
    assert_stderr_contains(&second, ".state.json.lock is locked: another export holds it");
    let third = run_expecting(
        &mock,
        args(dir.path(), &["--start", "2024-01-01", "--end", "2024-01-02"]),
        7,
    )
    .await?;
    assert_stderr_contains(&third, "emailSend.ndjson.part is locked: another export holds it");

    assert_eq!(mock.counters().requests, 1, "the refused runs sent nothing");
    assert_eq!(std::fs::read(&state_path)?, state_before);
    assert_eq!(std::fs::read(dir.path().join("emailSend.ndjson.part"))?, part_before);
    first.kill()?;
    tokio::task::spawn_blocking(move || first.wait()).await??;
    Ok(())
}

fn set_done(state_path: &Path, done: bool) -> TestResult {
    let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state_path)?)?;
    state["exports"]["emailSend.ndjson"]["done"] = serde_json::Value::Bool(done);
    std::fs::write(state_path, serde_json::to_vec_pretty(&state)?)?;
    Ok(())
}

/// Power lost between the checkpoint and the rename, in both orders: the next run completes the
/// export instead of failing, and the file holds every record once.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_rename_on_either_side_of_the_checkpoint_is_completed() -> TestResult {
    let config = config(300);
    let mock = start(config.clone()).await?;
    let span = [
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-03",
        "--requests-per-minute",
        "6000",
    ];
    let expected = expected_body(&config, "emailSend", day(0), day(2));

    // The checkpoint says done, the rename did not reach the disk.
    let dir = tempfile::tempdir()?;
    let (file, part) = (
        dir.path().join("emailSend.ndjson"),
        dir.path().join("emailSend.ndjson.part"),
    );
    run_expecting(&mock, state_args(dir.path(), &span), 0).await?;
    std::fs::rename(&file, &part)?;
    let requests = mock.counters().requests;
    run_expecting(&mock, state_args(dir.path(), &span), 0).await?;
    assert_eq!(mock.counters().requests, requests, "nothing is downloaded again");
    assert!(!part.exists());
    assert_exact(&file, &expected)?;
    // ... and an incremental run continues from it.
    std::fs::rename(&file, &part)?;
    run_expecting(
        &mock,
        state_args(dir.path(), &["--end", "2024-01-04", "--requests-per-minute", "6000"]),
        0,
    )
    .await?;
    assert!(!part.exists());
    assert_exact(&file, &expected_body(&config, "emailSend", day(0), day(3)))?;

    // The rename happened, the checkpoint saying done did not.
    let dir = tempfile::tempdir()?;
    let (file, state) = (dir.path().join("emailSend.ndjson"), dir.path().join("state.json"));
    run_expecting(&mock, state_args(dir.path(), &span), 0).await?;
    set_done(&state, false)?;
    let requests = mock.counters().requests;
    run_expecting(&mock, state_args(dir.path(), &span), 0).await?;
    assert_eq!(mock.counters().requests, requests, "nothing is downloaded again");
    assert_exact(&file, &expected)?;
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state)?)?;
    assert_eq!(saved["exports"]["emailSend.ndjson"]["done"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn look_backs_are_whole_seconds_up_to_a_day() -> TestResult {
    let mock = start(config(10)).await?;
    let dir = tempfile::tempdir()?;
    for (lookback, message) in [
        ("300500ms", "is not a whole number of seconds"),
        ("1day 1s", "longer than the longest look-back, 24h"),
    ] {
        let output = run_expecting(
            &mock,
            state_args(dir.path(), &["--start", "2024-01-01", "--lookback", lookback]),
            2,
        )
        .await?;
        assert_stderr_contains(&output, message);
    }
    assert_eq!(mock.counters().requests, 0);
    Ok(())
}

/// A sub-second look-back used to be accepted and then never matched a window start, so the
/// next run duplicated the tail. With whole seconds — the smallest (0s, none), an odd one and the
/// largest — two incremental runs hold every record exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn incremental_runs_with_edge_look_backs_are_exact() -> TestResult {
    let config = config(2000);
    let mock = start(config.clone()).await?;
    for lookback in ["0s", "301s", "24h"] {
        let dir = tempfile::tempdir()?;
        let common = ["--requests-per-minute", "6000", "--lookback", lookback];
        let mut first: Vec<&str> = vec!["--start", "2024-01-01", "--end", "2024-01-03"];
        first.extend(common);
        run_expecting(&mock, state_args(dir.path(), &first), 0).await?;
        let mut second: Vec<&str> = vec!["--end", "2024-01-04T12:00:00Z"];
        second.extend(common);
        run_expecting(&mock, state_args(dir.path(), &second), 0).await?;
        assert_exact(
            &dir.path().join("emailSend.ndjson"),
            &expected_body(&config, "emailSend", day(0), day(3) + chrono::TimeDelta::hours(12)),
        )?;
    }
    Ok(())
}

/// The state file's directory is created like the output directory, before its lock file.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_file_in_a_new_directory_works() -> TestResult {
    let config = config(50);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("new/deeper/state.json");
    let mut all = args(
        dir.path(),
        &[
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--requests-per-minute",
            "6000",
        ],
    );
    all.extend(["--state".to_owned(), state.display().to_string()]);
    run_expecting(&mock, all, 0).await?;
    assert!(state.exists());
    assert_exact(
        &dir.path().join("emailSend.ndjson"),
        &expected_body(&config, "emailSend", day(0), day(1)),
    )?;
    Ok(())
}

/// `--data-type all`: every one of the 53 data types, each file exactly what the mock served.
#[tokio::test(flavor = "multi_thread")]
async fn all_data_types_export_exactly() -> TestResult {
    let config = config(48);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path().display().to_string();
    let args = [
        "export",
        "--data-type",
        "all",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-01T06:00:00Z",
        "--requests-per-minute",
        "6000",
        "--output",
        &d,
    ];
    run_expecting(&mock, args, 0).await?;
    let all = iterable_export::ALL_DATA_TYPES;
    assert_eq!(all.len(), 53);
    for data_type in all {
        let name = data_type.to_string();
        let expected = expected_body(&config, &name, day(0), day(0) + chrono::TimeDelta::hours(6));
        assert_exact(&dir.path().join(format!("{name}.ndjson")), &expected)?;
    }
    assert_eq!(mock.counters().requests, 53, "one request per data type");
    Ok(())
}
