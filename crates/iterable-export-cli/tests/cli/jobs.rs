//! `export --via jobs` against the mock's asynchronous export API: exact output, faults, a
//! resumed run that continues the same job, and Ctrl-C cancelling this run's jobs.

use std::path::Path;
use std::time::Duration;

use iterable_export_mock::{JobFault, JobsConfig, MockConfig, MockServer, RateLimit};

use crate::common::*;

/// Two daily windows of emailSend, through jobs, fast limits (the mock's own are off).
/// (No look-back: its tail would be a window of its own.)
pub(crate) const SPAN: &str = "export --data-type emailSend --start 2024-01-01 --end 2024-01-03 --window 1d --via jobs \
                    --job-requests-per-second 1000 --lookback 0s";

pub(crate) fn jobs_config(records_per_day: u64, file_bytes: u64, duration: Duration) -> MockConfig {
    config(records_per_day).with_jobs(
        JobsConfig::default()
            .with_max_file_bytes(file_bytes)
            .with_job_duration(duration)
            .with_file_interval(Duration::from_millis(5))
            .with_rate_limit(RateLimit::unlimited()),
    )
}

/// What the two windows of [`SPAN`] hold: the data.json bodies of each day, in order.
fn expected(config: &MockConfig) -> Vec<u8> {
    let mut out = expected_body(config, "emailSend", day(0), day(1));
    out.extend(expected_body(config, "emailSend", day(1), day(2)));
    out
}

pub(crate) fn output(dir: &Path) -> Result<Vec<u8>, BoxError> {
    Ok(std::fs::read(dir.join("emailSend.ndjson"))?)
}

#[tokio::test]
async fn an_export_via_jobs_is_exact_and_no_key_reaches_the_file_host() -> TestResult {
    let config = jobs_config(300, 4_000, Duration::from_millis(50));
    let mock = start(config.clone()).await?;
    // Faults of the first job: a file cut mid-body, expired URLs, a 500 on a listing, a restart.
    mock.inject_job_fault(JobFault::CutFile {
        job: 1,
        file: 2,
        after_bytes: 100,
    });
    mock.inject_job_fault(JobFault::ExpiredUrls { job: 1, listings: 2 });
    mock.inject_job_fault(JobFault::FilesError { job: 2, call: 2 });
    let dir = tempfile::tempdir()?;
    let assert = command(&mock).line(SPAN).into_dir(dir.path()).run().await?;
    let err = stderr(&assert);
    assert.success();
    assert_eq!(output(dir.path())?, expected(&config));
    let counters = mock.job_counters();
    assert_eq!(counters.starts, 2);
    assert_eq!(counters.cut_downloads, 1);
    assert!(counters.expired >= 1, "{counters:?}");
    assert_eq!(counters.api_key_leaks, 0);
    assert!(!mock.file_host_received_api_key());
    let files: usize = mock.jobs().iter().map(|job| job.files.len()).sum();
    assert!(files > 4, "the bodies span several files: {files}");
    assert_eq!(counters.complete_downloads, files as u64);
    assert!(err.contains("jobs: 2 completed"), "{err}");
    let state = read_state(&dir.path().join("state.json"))?;
    assert_eq!(state["exports"]["emailSend.ndjson"]["done"], true);
    assert!(state["exports"]["emailSend.ndjson"].get("jobs").is_none(), "{state}");
    Ok(())
}

#[tokio::test]
async fn a_job_that_fails_is_started_again() -> TestResult {
    let config = jobs_config(100, 4_000, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    mock.inject_job_fault(JobFault::Fail { job: 1, after_files: 1 });
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(SPAN)
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    assert_eq!(output(dir.path())?, expected(&config));
    // The failed job, its replacement, the second day's job.
    assert_eq!(mock.job_counters().starts, 3);
    Ok(())
}

/// The mock's jobs, oldest first, as `(id, cancel requested)`.
fn jobs_seen(mock: &MockServer) -> Vec<(i64, bool)> {
    let mut jobs: Vec<(i64, bool)> = mock.jobs().iter().map(|j| (j.id, j.cancel_requested)).collect();
    jobs.sort_unstable();
    jobs
}

/// Runs [`SPAN`] into `dir` with one download at a time and kills it once the state says some
/// of the first job's files are in the output; returns that job and its last file there.
async fn kill_mid_first_job(mock: &MockServer, dir: &Path) -> Result<(i64, String), BoxError> {
    let state_path = dir.join("state.json");
    let mut child = child_command(mock)
        .args(words(SPAN))
        .args(dir_args(dir))
        .args(["--downloads", "1", "--quiet"])
        .spawn()?;
    wait_until("a file of the first job in the state", || {
        read_state(&state_path)
            .ok()
            .and_then(|s| {
                s["exports"]["emailSend.ndjson"]["jobs"][0]["after_file"]
                    .as_str()
                    .map(str::to_owned)
            })
            .is_some()
    })
    .await?;
    child.kill()?;
    child.wait()?;
    let state = read_state(&state_path)?;
    let mark = state["exports"]["emailSend.ndjson"]["jobs"][0].clone();
    let (job_id, after) = (
        mark["job_id"].as_i64().unwrap_or_default(),
        mark["after_file"].as_str().unwrap_or_default().to_owned(),
    );
    assert!([1_000_001, 1_000_002].contains(&job_id), "{state}");
    Ok((job_id, after))
}

#[tokio::test]
async fn a_run_killed_mid_job_resumes_the_same_job_without_downloading_finished_files_again() -> TestResult {
    // Small files: the first day's job has dozens, downloaded one at a time.
    let config = jobs_config(400, 1_500, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (job_id, after) = kill_mid_first_job(&mock, dir.path()).await?;
    let starts_before = mock.job_counters().starts;

    command(&mock)
        .line(SPAN)
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    assert_eq!(output(dir.path())?, expected(&config));
    // The first job was continued, not started again; the second day got one job.
    assert!(starts_before <= 2);
    assert_eq!(mock.job_counters().starts, 2);
    assert!(
        mock.jobs().iter().all(|job| !job.cancel_requested),
        "a kill cancels nothing"
    );
    // The files up to the remembered one were downloaded once, by the first run.
    let first_job = mock.job(job_id).ok_or("the first job")?;
    for name in first_job.files.iter().filter(|name| **name <= after) {
        let downloads = mock
            .file_host_hits()
            .iter()
            .filter(|hit| hit.path.ends_with(&format!("/{job_id}/{name}")) && hit.status == 200)
            .count();
        assert_eq!(downloads, 1, "{name} was downloaded again");
    }
    assert!(!mock.file_host_received_api_key());
    Ok(())
}

#[tokio::test]
async fn a_run_killed_mid_job_resumes_only_via_jobs_and_keeps_the_jobs_window_under_another_window_size() -> TestResult
{
    let config = jobs_config(400, 1_500, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (job_id, after) = kill_mid_first_job(&mock, dir.path()).await?;
    let starts_before = mock.job_counters().starts;
    // The unfinished output (its temporary file) and the state, as the kill left them. A kill
    // that lands mid state write also leaves that write's temporary file, which the next run
    // removes (checked at the end).
    let stale = |name: &std::ffi::OsStr| {
        let name = name.to_string_lossy();
        name.starts_with(".state.json.") && name.ends_with(".tmp")
    };
    let files = || -> Result<Vec<(std::ffi::OsString, Vec<u8>)>, BoxError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir.path())? {
            let entry = entry?;
            if !stale(&entry.file_name()) {
                files.push((entry.file_name(), std::fs::read(entry.path())?));
            }
        }
        files.sort();
        Ok(files)
    };
    let before = files()?;
    let names: Vec<_> = before.iter().map(|f| f.0.to_string_lossy().into_owned()).collect();
    assert_eq!(names, [".state.json.lock", "emailSend.ndjson.part", "state.json"]);
    // data.json would export the job's window from its start again: refused.
    let refused = command(&mock)
        .line(&SPAN.replace("--via jobs", "--via data-json"))
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .code(2);
    let message = stderr(&refused);
    assert!(
        message.contains(&format!("export job {job_id} of window"))
            && message.contains(&after)
            && message.contains("resume with --via jobs"),
        "{message}"
    );
    assert_eq!(files()?, before);
    // Half-day windows: the job's day stays one window, the job continues.
    command(&mock)
        .line(&SPAN.replace("--window 1d", "--window 12h"))
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    // The kill lands in the first day's job, or (on a loaded machine) in the second day's, started ahead, after the
    // first day was complete. Either way the interrupted job keeps its whole day; only a day without a job is split.
    let interrupted = mock.job(job_id).ok_or("the interrupted job")?.spec.start;
    let noon = day(1) + chrono::TimeDelta::hours(12);
    let mut want = expected_body(&config, "emailSend", day(0), day(1));
    let new_jobs = if interrupted == day(0) {
        want.extend(expected_body(&config, "emailSend", day(1), noon));
        want.extend(expected_body(&config, "emailSend", noon, day(2)));
        2
    } else {
        assert_eq!(interrupted, day(1), "the job {job_id} in the state");
        want.extend(expected_body(&config, "emailSend", day(1), day(2)));
        0
    };
    assert_eq!(output(dir.path())?, want, "interrupted in the job of {interrupted}");
    assert_eq!(
        mock.job_counters().starts,
        starts_before + new_jobs,
        "the interrupted job continued, one job per half of a day without one"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())?
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name()))
        .filter(|name| stale(name))
        .collect();
    assert_eq!(left, Vec::<std::ffi::OsString>::new(), "stale temporary state files");
    assert!(!mock.file_host_received_api_key());
    Ok(())
}

#[tokio::test]
async fn ctrl_c_cancels_the_jobs_of_the_run_and_says_how_to_resume() -> TestResult {
    // Jobs that run for a minute: the run is interrupted while it waits for them.
    let config = jobs_config(100, 4_000, Duration::from_secs(60));
    let mock = start(config).await?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("stderr.log");
    let mut child = child_command(&mock)
        .args(words(SPAN))
        .args(dir_args(dir.path()))
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    // The first window's job and the one started ahead for the second.
    wait_until("two jobs started", || mock.jobs().len() == 2).await?;
    wait_until("both jobs in the state", || {
        read_state(&dir.path().join("state.json"))
            .ok()
            .and_then(|s| s["exports"]["emailSend.ndjson"]["jobs"].as_array().map(Vec::len))
            == Some(2)
    })
    .await?;
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill").args(["-INT", &pid]).status()?;
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert_eq!(status.code(), Some(130));
    assert_eq!(jobs_seen(&mock), [(1_000_001, true), (1_000_002, true)]);
    assert_eq!(mock.job_counters().cancels, 2);
    let err = std::fs::read_to_string(&log)?;
    assert!(
        err.contains("interrupted: cancelled export job(s) [1000001, 1000002]"),
        "{err}"
    );
    assert!(err.contains("run the same command again to resume"), "{err}");
    Ok(())
}

/// Runs `line` into `dir` and returns `(file name, bytes)` of every output file, sorted.
async fn outputs(mock: &MockServer, line: &str, dir: &Path) -> Result<Vec<(String, Vec<u8>)>, BoxError> {
    command(mock)
        .line(line)
        .into_dir(dir)
        .with("--quiet")
        .run()
        .await?
        .success();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".ndjson") || name.ends_with(".csv") {
            files.push((name, std::fs::read(entry.path())?));
        }
    }
    files.sort();
    Ok(files)
}

#[tokio::test]
async fn jobs_write_what_data_json_writes_in_ndjson_and_csv_and_users_with_growing_columns() -> TestResult {
    let config = jobs_config(150, 6_000, Duration::from_millis(20));
    let mock = start(config).await?;
    let span = "export --data-type emailSend --data-type user --start 2024-01-01 --end 2024-01-04 --window 1d \
                --max-window 1d --lookback 0s --requests-per-minute 100000 --job-requests-per-second 1000";
    for format in ["ndjson", "csv"] {
        let (streamed, jobs) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let expected = outputs(&mock, &format!("{span} --format {format}"), streamed.path()).await?;
        let got = outputs(&mock, &format!("{span} --format {format} --via jobs"), jobs.path()).await?;
        assert_eq!(expected.len(), 2, "{format}");
        for ((name, want), (got_name, bytes)) in expected.iter().zip(&got) {
            assert_eq!(name, got_name);
            assert!(!want.is_empty(), "{name}");
            assert!(bytes == want, "{name} via jobs differs from {name} via data.{format}");
        }
        assert_eq!(got.len(), 2);
    }
    // 2 types x 3 days x 2 formats.
    assert_eq!(mock.job_counters().starts, 12);
    assert!(!mock.file_host_received_api_key());
    Ok(())
}

#[tokio::test]
async fn an_incremental_run_via_jobs_appends_the_new_days_with_the_look_back_read_again_once() -> TestResult {
    let config = jobs_config(120, 6_000, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let common = "export --data-type emailSend --window 1d --via jobs --job-requests-per-second 1000 --lookback 1h";
    command(&mock)
        .line(&format!("{common} --start 2024-01-01 --end 2024-01-03"))
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    // Continues from the state: 2024-01-03 to 2024-01-04, re-reading the last hour.
    command(&mock)
        .line(&format!("{common} --end 2024-01-04"))
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    assert_file_records(
        &dir.path().join("emailSend.ndjson"),
        &expected_body(&config, "emailSend", day(0), day(3)),
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn parquet_via_jobs_holds_every_record_once_in_its_days_partition() -> TestResult {
    let config = jobs_config(300, 8_000, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(SPAN)
        .line("--format parquet")
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    let root = dir.path().join("emailSend");
    assert!(root.join("_SUCCESS").exists());
    // One file per job file delivered (each is committed on its own), in the two days' partitions.
    let files = crate::parquet::visible(&root);
    let job_files: usize = mock.jobs().iter().map(|job| job.files.len()).sum();
    assert!(
        files.len() >= job_files,
        "{} parquet files for {job_files} job files",
        files.len()
    );
    assert_eq!(
        crate::parquet::rows_by_day(&root),
        crate::parquet::expected_by_day(&config, day(0), day(2))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_data_type_exports_via_jobs_exactly() -> TestResult {
    let config = jobs_config(20, 100_000, Duration::from_millis(5));
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(
            "export --data-type all --start 2024-01-01 --end 2024-01-02 --window 1d --via jobs \
             --job-requests-per-second 1000 --lookback 0s",
        )
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    let mut checked = 0;
    for data_type in iterable_export::ALL_DATA_TYPES {
        let name = data_type.to_string();
        let path = dir.path().join(format!("{name}.ndjson"));
        assert_eq!(
            std::fs::read(&path)?,
            expected_body(&config, &name, day(0), day(1)),
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 53);
    assert_eq!(mock.job_counters().starts, 53);
    assert!(!mock.file_host_received_api_key());
    Ok(())
}

/// The jobs the state remembers with a file already in the output: `(job id, window start)`.
fn jobs_with_files(state: &serde_json::Value) -> Vec<(i64, String)> {
    state["exports"]["emailSend.ndjson"]["jobs"]
        .as_array()
        .map(|marks| {
            marks
                .iter()
                .filter(|mark| mark["after_file"].is_string())
                .map(|mark| {
                    let start = mark["window"]["start"].as_str().unwrap_or_default().to_owned();
                    (mark["job_id"].as_i64().unwrap_or_default(), start)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn ctrl_c_mid_download_leaves_the_job_with_files_in_the_output_running_and_a_rerun_is_exact() -> TestResult {
    let config = jobs_config(400, 1_500, Duration::from_millis(20));
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let (state_path, log) = (dir.path().join("state.json"), dir.path().join("stderr.log"));
    let mut child = child_command(&mock)
        .args(words(SPAN))
        .args(dir_args(dir.path()))
        .arg("--downloads")
        .arg("1")
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    wait_until("a job's file in the state", || {
        read_state(&state_path).is_ok_and(|state| !jobs_with_files(&state).is_empty())
    })
    .await?;
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert_eq!(status.code(), Some(130));
    let kept = jobs_with_files(&read_state(&state_path)?);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let (job_id, window_start) = kept[0].clone();
    assert!(!mock.job(job_id).ok_or("the kept job")?.cancel_requested);
    let err = std::fs::read_to_string(&log)?;
    assert!(
        err.contains(&format!(
            "left job(s) [{job_id}] for the next run, which continues them: some of their files are already in \
             the output"
        )),
        "{err}"
    );

    command(&mock)
        .line(SPAN)
        .into_dir(dir.path())
        .with("--quiet")
        .run()
        .await?
        .success();
    assert_eq!(output(dir.path())?, expected(&config));
    // The kept job was continued: its window has no other job.
    let window_start = chrono::DateTime::parse_from_rfc3339(&window_start)?.to_utc();
    let jobs_of_window: Vec<i64> = mock
        .jobs()
        .iter()
        .filter(|job| job.spec.start == window_start)
        .map(|job| job.id)
        .collect();
    assert_eq!(jobs_of_window, [job_id]);
    assert!(!mock.file_host_received_api_key());
    Ok(())
}
