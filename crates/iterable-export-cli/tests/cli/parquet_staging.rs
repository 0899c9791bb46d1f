//! Parquet outputs replaced whole: an export without a state file and `convert` stage `DIR/<dataType>` and swap it
//! in when complete; staging directories a killed run left are removed by the next run; a continued export whose
//! committed files are gone is refused.

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use iterable_export_mock::{Fault, MockServer};

use crate::common::*;
use crate::parquet::{EXPORT, convert_file, expected_by_day, lake, names, rows_by_day, tree, visible};

/// The beginning of the stale-staging warning.
const STALE: &str = "removed what an interrupted run left in";

/// An export without a state file into `dir` (no `--state`).
fn export_without_state(mock: &MockServer, dir: &Path, line: &str) -> Command {
    command(mock).line(line).with("-o").with(dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_without_state_replaces_the_earlier_one_only_when_complete() -> TestResult {
    let config = config(2000);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    export_without_state(&mock, dir.path(), EXPORT).run().await?.code(0);
    let root = lake(dir.path());
    let before = tree(&root);
    assert_eq!(
        rows_by_day(&root),
        expected_by_day(&config, day_at(0, 12), day_at(2, 12))
    );
    assert_eq!(names(dir.path()), ["emailSend"]);

    // The next run's first window (data start at 2024-01-01: half a day) commits, its second (a whole day) is cut
    // mid-body, and with no retry the run fails.
    let (w1, w2) = (
        (
            Utc.with_ymd_and_hms(2023, 12, 31, 12, 0, 0).single().expect("a time"),
            day_at(0, 12),
        ),
        (day_at(0, 12), day_at(1, 11) + chrono::TimeDelta::minutes(55)),
    );
    let first = expected_body(&config, "emailSend", w1.0, w1.1);
    let second = expected_body(&config, "emailSend", w2.0, w2.1);
    let cut = (first.len() + second.len()) as u64 / 2;
    assert!((first.len() as u64) < cut && cut < second.len() as u64);
    mock.inject(Fault::Truncate {
        after_bytes: cut,
        count: 10,
    });
    let failing = "export --data-type emailSend --format parquet --start 2023-12-31T12:00:00Z \
                   --end 2024-01-02T12:00:00Z --window 1d --max-window 1d --max-retries 0";
    let requests = mock.requests().len();
    let output = export_without_state(&mock, dir.path(), failing).run().await?.code(6);
    let first_records = first.iter().filter(|b| **b == b'\n').count();
    assert!(first_records > 900, "{first_records}");
    assert!(
        stderr(&output).contains(&format!("done, {first_records} records so far")),
        "the first window committed: {}",
        stderr(&output)
    );
    let served: Vec<(u64, bool)> = mock.requests()[requests..]
        .iter()
        .map(|r| (r.bytes_sent, r.completed))
        .collect();
    assert_eq!(served, [(first.len() as u64, true), (cut, false)]);
    // The earlier export is untouched, byte for byte, and the staging directory is gone.
    assert_eq!(tree(&root), before);
    assert_eq!(names(dir.path()), ["emailSend"]);

    // A run that completes replaces it exactly: only its own files, its records, `_SUCCESS`.
    mock.clear_faults();
    let next = "export --data-type emailSend --format parquet --start 2024-01-04T00:00:00Z \
                --end 2024-01-05T00:00:00Z --window 1d --max-window 1d";
    export_without_state(&mock, dir.path(), next).run().await?.code(0);
    let files = visible(&root);
    assert!(
        !files.is_empty()
            && files
                .iter()
                .all(|f| f.starts_with("dt=2024-01-04/part-20240104T000000Z-")),
        "{files:?}"
    );
    assert_eq!(rows_by_day(&root), expected_by_day(&config, day_at(3, 0), day_at(4, 0)));
    let hidden: Vec<String> = tree(&root)
        .into_keys()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p.starts_with('_'))
        .collect();
    assert_eq!(hidden, ["_SUCCESS", "_committed", "_lock"]);
    assert_eq!(names(dir.path()), ["emailSend"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_runs_staging_directory_is_removed_by_the_next_run_never_a_live_ones() -> TestResult {
    let config = config(2000);
    let mock = start(config.clone()).await?;
    // The first body pauses (for longer than the test waits: the run is killed) after 100 000 bytes.
    mock.inject(Fault::Stall {
        after_bytes: 100_000,
        duration: Duration::from_secs(600),
        count: 1,
    });
    let dir = tempfile::tempdir()?;
    let mut child = child_command(&mock)
        .args(words(EXPORT))
        .arg("-o")
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let staging = format!(".staging-emailSend-{}", child.id());
    let held = wait_held(&mock, &mut child, 1, 100_000).await;
    if held.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    held?;
    assert_eq!(names(dir.path()), [staging.as_str(), "emailSend"]);

    // A conversion into the same directory while the export runs is refused, and leaves its staging alone.
    let input = tempfile::tempdir()?;
    let file = input.path().join("emailSend.ndjson");
    std::fs::write(&file, expected_body(&config, "emailSend", day_at(0, 0), day_at(1, 0)))?;
    let convert = || {
        bare_command()
            .line("convert --data-type emailSend")
            .with(&file)
            .with("-o")
            .with(dir.path())
            .assert()
    };
    let refused = convert().code(7);
    assert!(
        stderr(&refused).contains("is locked: another export holds it"),
        "{}",
        stderr(&refused)
    );
    assert!(!stderr(&refused).contains(STALE));
    assert_eq!(names(dir.path()), [staging.as_str(), "emailSend"]);

    child.kill()?; // SIGKILL: its staging directory stays behind.
    child.wait()?;
    assert_eq!(names(dir.path()), [staging.as_str(), "emailSend"]);

    // The next run removes it, and says so once.
    let done = convert().code(0);
    let text = stderr(&done);
    assert_eq!(text.matches(STALE).count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "{STALE} {}: {staging} (the staging directory of emailSend, whose run did not finish)",
            dir.path().display()
        )),
        "{text}"
    );
    assert_eq!(names(dir.path()), ["emailSend"]);
    assert_eq!(visible(&lake(dir.path())), ["dt=2024-01-01/part-all.parquet"]);

    // An export with a state file holds the data type's lock too: it removes dead runs' staging directories.
    let dead = [".staging-emailSend-4000000001", ".staging-emailSend-4000000002"];
    for name in dead {
        std::fs::create_dir_all(dir.path().join(name).join("emailSend"))?;
        std::fs::write(dir.path().join(name).join("emailSend/_lock"), "")?;
    }
    // Another data type's is not this one's to remove.
    std::fs::create_dir(dir.path().join(".staging-emailSendSkip-4000000003"))?;
    let state = tempfile::tempdir()?;
    let done = command(&mock)
        .line(EXPORT)
        .with("-o")
        .with(dir.path())
        .with("--state")
        .with(state.path().join("state.json"))
        .run()
        .await?
        .code(0);
    let text = stderr(&done);
    assert_eq!(text.matches(STALE).count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "{STALE} {}: {}, {} (the staging directories of emailSend",
            dir.path().display(),
            dead[0],
            dead[1]
        )),
        "{text}"
    );
    assert_eq!(names(dir.path()), [".staging-emailSendSkip-4000000003", "emailSend"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn continuing_an_export_whose_committed_file_is_gone_is_refused_and_writes_nothing() -> TestResult {
    let config = config(2000);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock).line(EXPORT).into_dir(dir.path()).run().await?.code(0);
    let root = lake(dir.path());
    let gone = "dt=2024-01-02/part-20240101T120000Z-20240102T120000Z.parquet";
    std::fs::remove_file(root.join(gone))?;
    let before = tree(&root);
    let state = std::fs::read(dir.path().join("state.json"))?;
    let commits = read_state(&dir.path().join("state.json"))?["exports"]["emailSend.parquet"]["committed_len"].clone();
    assert!(commits.as_u64().is_some_and(|c| c >= 2), "{commits}");
    let requests = mock.requests().len();

    let output = command(&mock)
        .line("export --data-type emailSend --format parquet --end 2024-01-04T12:00:00Z --window 1d --max-window 1d")
        .into_dir(dir.path())
        .run()
        .await?
        .code(7);
    assert!(
        stderr(&output).contains(&format!(
            "{}: 1 file of the {commits} commits to continue from is missing ({gone}); continuing would leave a hole in \
             the export: restore what is missing, or start the export over from the beginning (to start over: \
             delete the state file, or its entry)",
            root.display()
        )),
        "{}",
        stderr(&output)
    );
    assert_eq!(tree(&root), before, "nothing changed, _SUCCESS included");
    assert_eq!(std::fs::read(dir.path().join("state.json"))?, state);
    assert_eq!(mock.requests().len(), requests, "no request was sent");
    Ok(())
}

/// The warning of a run that put back a directory a killed swap left staged.
const RECOVERED: &str = "a run was stopped while putting it in place";

/// Lays out in `dir` what a run killed between the renames of its swap leaves: no `dir/emailSend`, and in
/// `dir/.staging-emailSend-<pid>` the earlier export (day 0) aside as `old` and the new one (day 1) complete. Returns
/// the new one's files.
fn killed_swap(config: &iterable_export_mock::MockConfig, work: &Path, dir: &Path, pid: u32) -> Result<Tree, BoxError> {
    let (earlier, newer) = (work.join("earlier.ndjson"), work.join("newer.ndjson"));
    std::fs::write(&earlier, expected_body(config, "emailSend", day_at(0, 0), day_at(1, 0)))?;
    std::fs::write(&newer, expected_body(config, "emailSend", day_at(1, 0), day_at(2, 0)))?;
    convert_file(&earlier, &work.join("a")).code(0);
    convert_file(&newer, &work.join("b")).code(0);
    let complete = tree(&work.join("b/emailSend"));
    let staging = dir.join(format!(".staging-emailSend-{pid}"));
    std::fs::create_dir_all(&staging)?;
    std::fs::rename(work.join("a/emailSend"), staging.join("old"))?;
    std::fs::rename(work.join("b/emailSend"), staging.join("emailSend"))?;
    Ok(complete)
}

type Tree = std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>;

#[tokio::test(flavor = "multi_thread")]
async fn a_swap_killed_between_its_renames_is_completed_by_the_next_run() -> TestResult {
    let config = config(500);
    let work = tempfile::tempdir()?;
    let dir = work.path().join("lake");
    let complete = killed_swap(&config, work.path(), &dir, 4000000009)?;

    // The next run puts the complete one in place before anything else: its own failure leaves that one.
    let bad = work.path().join("bad.ndjson");
    std::fs::write(&bad, "{oops\n")?;
    let failed = convert_file(&bad, &dir).code(7);
    let text = stderr(&failed);
    assert_eq!(text.matches(RECOVERED).count(), 1, "{text}");
    assert_eq!(text.matches(STALE).count(), 1, "{text}");
    assert_eq!(tree(&lake(&dir)), complete);
    assert_eq!(names(&dir), ["emailSend"]);
    assert_eq!(
        rows_by_day(&lake(&dir)),
        expected_by_day(&config, day_at(1, 0), day_at(2, 0))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_with_state_completes_a_killed_swap_before_writing() -> TestResult {
    let config = config(500);
    let mock = start(config.clone()).await?;
    let work = tempfile::tempdir()?;
    let dir = work.path().join("lake");
    let state = work.path().join("state.json");
    let with_state = |line: &str| {
        command(&mock)
            .line(line)
            .with("-o")
            .with(&dir)
            .with("--state")
            .with(&state)
    };

    // A new export with a state file: the complete directory is put back first (and then replaced, as a new
    // export with a state file replaces its directory), not removed as a dead run's staging.
    killed_swap(&config, work.path(), &dir, 4000000009)?;
    let text = stderr(&with_state(EXPORT).run().await?.code(0));
    assert_eq!(text.matches(RECOVERED).count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "{}/emailSend was missing: a run was stopped while putting it in place; its complete export, \
             {}/.staging-emailSend-4000000009/emailSend, is back there",
            dir.display(),
            dir.display()
        )),
        "{text}"
    );
    // What remains of the staging directory, the earlier export moved aside, is removed once.
    assert!(
        text.contains(&format!(
            "{STALE} {}: .staging-emailSend-4000000009 (the staging directory of emailSend",
            dir.display()
        )),
        "{text}"
    );
    assert_eq!(text.matches(STALE).count(), 1, "{text}");
    assert_eq!(names(&dir), ["emailSend"]);
    assert_eq!(
        rows_by_day(&lake(&dir)),
        expected_by_day(&config, day_at(0, 12), day_at(2, 12))
    );

    // Continuing it: the directory its state file describes, found staged complete, is put back before the
    // check that its commits are there, and the incremental run carries on from it.
    let staging = dir.join(".staging-emailSend-4000000010");
    std::fs::create_dir(&staging)?;
    std::fs::rename(lake(&dir), staging.join("emailSend"))?;
    let next = "export --data-type emailSend --format parquet --end 2024-01-04T12:00:00Z --window 1d \
                --max-window 1d --requests-per-minute 6000";
    let text = stderr(&with_state(next).run().await?.code(0));
    assert_eq!(text.matches(RECOVERED).count(), 1, "{text}");
    assert_eq!(names(&dir), ["emailSend"], "the emptied staging directory is removed");
    assert_eq!(
        rows_by_day(&lake(&dir)),
        expected_by_day(&config, day_at(0, 12), day_at(3, 12))
    );
    Ok(())
}
