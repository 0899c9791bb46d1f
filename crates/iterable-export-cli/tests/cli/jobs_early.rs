//! `export --via jobs` downloading each job's files while the job runs: the mock's jobs stay
//! `running` until each of their files was downloaded (a CLI that waited for a job to complete
//! before downloading would never see one complete; the run's timeout is a hang guard only).

use std::time::Duration;

use iterable_export_mock::{JobFault, JobsConfig, RateLimit};

use crate::common::*;
use crate::jobs::{SPAN, output};

#[tokio::test]
async fn files_downloaded_while_jobs_run_give_the_data_json_bytes_and_a_truncated_jobs_are_discarded() -> TestResult {
    let config = config(300).with_jobs(
        JobsConfig::default()
            .with_max_file_bytes(8_000)
            .with_job_duration(Duration::from_millis(20))
            .with_file_interval(Duration::from_millis(2))
            .with_running_until_downloaded(true)
            .with_rate_limit(RateLimit::unlimited()),
    );
    let mock = start(config.clone()).await?;
    // The first day's job hits a 30 kB cap once its files were downloaded: split in halves.
    // (Each job has fewer files than the spool holds, 32: the mock waits for all of them.)
    mock.inject_job_fault(JobFault::Cap { job: 1, bytes: 30_000 });
    let dir = tempfile::tempdir()?;
    let mut cli = command(&mock);
    cli.timeout(Duration::from_secs(120));
    let assert = cli.line(SPAN).into_dir(dir.path()).run().await?;
    let err = stderr(&assert);
    assert.success();
    let noon = day(0) + chrono::Duration::hours(12);
    let mut expected = expected_body(&config, "emailSend", day(0), noon);
    expected.extend(expected_body(&config, "emailSend", noon, day(1)));
    expected.extend(expected_body(&config, "emailSend", day(1), day(2)));
    assert_eq!(output(dir.path())?, expected);
    // Every file of every job, the capped one's too, downloaded once, while its job ran.
    let jobs = mock.jobs();
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    for job in &jobs {
        let files = job.files.len() as u64;
        assert!(files > 1, "{job:?}");
        assert_eq!((job.complete_downloads, job.downloads_while_running), (files, files));
    }
    let capped: Vec<usize> = jobs
        .iter()
        .filter(|job| job.truncated)
        .map(|job| job.files.len())
        .collect();
    assert_eq!(capped.len(), 1);
    assert!(
        err.contains(&format!(
            "job files discarded undelivered: {} downloaded while their job ran",
            capped[0]
        )),
        "{err}"
    );
    assert!(err.contains("jobs: 4 completed"), "{err}");
    assert!(!mock.file_host_received_api_key());
    Ok(())
}
