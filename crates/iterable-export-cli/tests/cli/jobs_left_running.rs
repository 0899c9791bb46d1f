//! `export --via jobs` and the jobs that would be left running at Iterable: those a state
//! remembers for windows no longer planned, and the job a start that answered 500 created.

use std::time::Duration;

use iterable_export_mock::JobFault;

use crate::common::*;
use crate::jobs::{SPAN, jobs_config, output};

#[tokio::test]
async fn remembered_jobs_without_files_whose_windows_are_no_longer_planned_are_cancelled() -> TestResult {
    let config = jobs_config(100, 4_000, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    // The first run's two jobs stay enqueued: restarted at once, out of the running slots for
    // 10 minutes.
    for job in [1, 2] {
        mock.inject_job_fault(JobFault::Restart {
            job,
            after_files: 0,
            pause: Duration::from_secs(600),
        });
    }
    let dir = tempfile::tempdir()?;
    let state_path = dir.path().join("state.json");
    let mut child = child_command(&mock)
        .args(words(SPAN))
        .args(dir_args(dir.path()))
        .arg("--quiet")
        .spawn()?;
    wait_until("both jobs in the state", || {
        read_state(&state_path)
            .ok()
            .and_then(|s| s["exports"]["emailSend.ndjson"]["jobs"].as_array().map(Vec::len))
            == Some(2)
    })
    .await?;
    child.kill()?;
    child.wait()?;
    assert!(
        mock.jobs().iter().all(|job| !job.cancel_requested),
        "a kill cancels nothing"
    );

    // Half-day windows: the day windows of the remembered jobs (no file of theirs in the
    // output) are no longer planned. Their jobs are cancelled, each half gets a job.
    let assert = command(&mock)
        .line(&SPAN.replace("--window 1d", "--window 12h"))
        .into_dir(dir.path())
        .run()
        .await?;
    let err = stderr(&assert);
    assert.success();
    assert!(
        err.contains("jobs cancelled: 0 created by a start that failed, 2 remembered for windows no longer planned"),
        "{err}"
    );
    let cancelled: Vec<(i64, bool)> = mock.jobs().iter().map(|job| (job.id, job.cancel_requested)).collect();
    assert_eq!(
        cancelled,
        [
            (1_000_001, true),
            (1_000_002, true),
            (1_000_003, false),
            (1_000_004, false),
            (1_000_005, false),
            (1_000_006, false)
        ]
    );
    assert_eq!(mock.job_counters().cancels, 2);
    let half = chrono::TimeDelta::hours(12);
    let mut want = Vec::new();
    for start in [day(0), day(0) + half, day(1), day(1) + half] {
        want.extend(expected_body(&config, "emailSend", start, start + half));
    }
    assert_eq!(output(dir.path())?, want);
    let state = read_state(&state_path)?;
    assert_eq!(state["exports"]["emailSend.ndjson"]["done"], true);
    assert!(state["exports"]["emailSend.ndjson"].get("jobs").is_none(), "{state}");
    Ok(())
}

#[tokio::test]
async fn the_job_a_start_answered_500_created_is_cancelled_and_the_output_is_exact() -> TestResult {
    let config = jobs_config(100, 4_000, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    mock.inject_job_fault(JobFault::StartError { job: 1 });
    let dir = tempfile::tempdir()?;
    let assert = command(&mock).line(SPAN).into_dir(dir.path()).run().await?;
    let err = stderr(&assert);
    assert.success();
    assert!(
        err.contains("jobs cancelled: 1 created by a start that failed, 0 remembered for windows no longer planned"),
        "{err}"
    );
    let cancelled: Vec<(i64, bool)> = mock.jobs().iter().map(|job| (job.id, job.cancel_requested)).collect();
    assert_eq!(cancelled, [(1_000_001, true), (1_000_002, false), (1_000_003, false)]);
    let counters = mock.job_counters();
    assert_eq!((counters.start_errors, counters.starts, counters.cancels), (1, 2, 1));
    let mut want = expected_body(&config, "emailSend", day(0), day(1));
    want.extend(expected_body(&config, "emailSend", day(1), day(2)));
    assert_eq!(output(dir.path())?, want);
    Ok(())
}
