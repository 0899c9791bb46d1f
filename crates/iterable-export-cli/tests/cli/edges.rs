//! Exactly-once at the edges: locking, lost renames on either side of the checkpoint, look-back
//! limits.

use std::path::Path;
use std::time::Duration;

use iterable_export_mock::MockServer;

use crate::common::*;

/// `export --data-type emailSend` into `dir`, with `--state` there (see [`dir_args`]) and `span`.
fn export(mock: &MockServer, dir: &Path, span: &str) -> Command {
    command(mock)
        .line("export --data-type emailSend")
        .into_dir(dir)
        .line(span)
}

/// A cron job overlapping a manual run: while one export holds the state file (it waits for the
/// rate limit before its second window), a second one on the same state file fails at once with
/// exit 7 naming the lock, and so does a run without a state file writing the same output; neither
/// sends a request or changes a file.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_the_same_files_fails_at_once_with_exit_7() -> TestResult {
    let mock = start(config(100)).await?;
    let dir = tempfile::tempdir()?;
    let first_span = "--start 2024-01-01 --end 2024-01-04 --window 1d --max-window 1d --requests-per-minute 1";
    let mut first = child_command(&mock)
        .args(words("export --data-type emailSend"))
        .args(dir_args(dir.path()))
        .args(words(first_span))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
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

    export(&mock, dir.path(), first_span)
        .run()
        .await?
        .code(7)
        .stderr(contains(".state.json.lock is locked: another export holds it"));
    command(&mock)
        .line("export --data-type emailSend --output")
        .with(dir.path())
        .line("--start 2024-01-01 --end 2024-01-02")
        .run()
        .await?
        .code(7)
        .stderr(contains("emailSend.ndjson.part is locked: another export holds it"));
    // With a state file of its own: refused while planning, before its state file is written.
    let other_state = dir.path().join("other-state.json");
    command(&mock)
        .line("export --data-type emailSend --output")
        .with(dir.path())
        .line("--start 2024-01-01 --end 2024-01-02 --state")
        .with(&other_state)
        .run()
        .await?
        .code(7)
        .stderr(contains("emailSend.ndjson.part is locked: another export holds it"));
    assert!(!other_state.exists(), "a refused run writes no state file");

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
    let span = "--start 2024-01-01 --end 2024-01-03 --requests-per-minute 6000";
    let expected = expected_body(&config, "emailSend", day(0), day(2));

    // The checkpoint says done, the rename did not reach the disk.
    let dir = tempfile::tempdir()?;
    let (file, part) = (
        dir.path().join("emailSend.ndjson"),
        dir.path().join("emailSend.ndjson.part"),
    );
    export(&mock, dir.path(), span).run().await?.code(0);
    std::fs::rename(&file, &part)?;
    let requests = mock.counters().requests;
    export(&mock, dir.path(), span).run().await?.code(0);
    assert_eq!(mock.counters().requests, requests, "nothing is downloaded again");
    assert!(!part.exists());
    assert_file_records(&file, &expected);
    // ... and an incremental run continues from it.
    std::fs::rename(&file, &part)?;
    export(&mock, dir.path(), "--end 2024-01-04 --requests-per-minute 6000")
        .run()
        .await?
        .code(0);
    assert!(!part.exists());
    assert_file_records(&file, &expected_body(&config, "emailSend", day(0), day(3)));

    // The rename happened, the checkpoint saying done did not.
    let dir = tempfile::tempdir()?;
    let (file, state) = (dir.path().join("emailSend.ndjson"), dir.path().join("state.json"));
    export(&mock, dir.path(), span).run().await?.code(0);
    set_done(&state, false)?;
    let requests = mock.counters().requests;
    export(&mock, dir.path(), span).run().await?.code(0);
    assert_eq!(mock.counters().requests, requests, "nothing is downloaded again");
    assert_file_records(&file, &expected);
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
        export(&mock, dir.path(), "--start 2024-01-01 --lookback")
            .with(lookback)
            .run()
            .await?
            .code(2)
            .stderr(contains(message));
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
        for span in ["--start 2024-01-01 --end 2024-01-03", "--end 2024-01-04T12:00:00Z"] {
            export(&mock, dir.path(), span)
                .line("--requests-per-minute 6000 --lookback")
                .with(lookback)
                .run()
                .await?
                .code(0);
        }
        assert_file_records(
            &dir.path().join("emailSend.ndjson"),
            &expected_body(&config, "emailSend", day(0), day_at(3, 12)),
        );
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
    command(&mock)
        .line("export --data-type emailSend --output")
        .with(dir.path())
        .line("--start 2024-01-01 --end 2024-01-02 --requests-per-minute 6000 --state")
        .with(&state)
        .run()
        .await?
        .code(0);
    assert!(state.exists());
    assert_file_records(
        &dir.path().join("emailSend.ndjson"),
        &expected_body(&config, "emailSend", day(0), day(1)),
    );
    Ok(())
}

/// `--data-type all`: every one of the 53 data types, each file exactly what the mock served.
#[tokio::test(flavor = "multi_thread")]
async fn all_data_types_export_exactly() -> TestResult {
    let config = config(48);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(
            "export --data-type all --start 2024-01-01 --end 2024-01-01T06:00:00Z --requests-per-minute 6000 --output",
        )
        .with(dir.path())
        .run()
        .await?
        .code(0);
    let all = iterable_export::ALL_DATA_TYPES;
    assert_eq!(all.len(), 53);
    for data_type in all {
        let name = data_type.to_string();
        let expected = expected_body(&config, &name, day(0), day_at(0, 6));
        assert_file_records(&dir.path().join(format!("{name}.ndjson")), &expected);
    }
    assert_eq!(mock.counters().requests, 53, "one request per data type");
    Ok(())
}
