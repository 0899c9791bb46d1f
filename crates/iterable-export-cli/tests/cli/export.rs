//! `export`, `user-events`, `experiments` and `demo`: complete, byte-exact output.

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_export_of_two_data_types_is_exact() -> TestResult {
    let config = config(500);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(
            "export --data-type emailSend --data-type emailOpen --start 2024-01-01 --end 2024-01-03T12:00:00Z \
             --window 1d --max-window 1d --requests-per-minute 6000 --output",
        )
        .with(dir.path())
        .run()
        .await?
        .code(0)
        .stderr(
            contains("emailSend")
                .and(contains("1250 records"))
                .and(contains("6 requests, 0 retries, 0 rate-limited (429), 0 windows split")),
        );
    for data_type in ["emailSend", "emailOpen"] {
        let expected = expected_body(&config, data_type, day(0), day_at(2, 12));
        assert_file_records(&dir.path().join(format!("{data_type}.ndjson")), &expected);
        assert!(!dir.path().join(format!("{data_type}.ndjson.part")).exists());
    }
    assert_eq!(mock.counters().requests, 6);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_export_has_one_header_and_every_record() -> TestResult {
    let config = config(300);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(
            "export --data-type emailOpen --start 2024-01-01 --end 2024-01-03 --window 12h --format csv --quiet \
             --requests-per-minute 6000 --output",
        )
        .with(dir.path())
        .run()
        .await?
        .code(0)
        .stderr(""); // --quiet prints nothing
    let mut reader = csv::Reader::from_path(dir.path().join("emailOpen.csv"))?;
    let headers = reader.headers()?.clone();
    let id_column = headers
        .iter()
        .position(|h| h == "recordId")
        .ok_or("no recordId column")?;
    let mut ids: Vec<String> = Vec::new();
    for record in reader.records() {
        ids.push(record?.get(id_column).unwrap_or_default().to_owned());
    }
    let mut expected: Vec<String> = iterable_export_mock::expected_ndjson(&config, "emailOpen", day(0), day(2))?
        .map(|line| {
            serde_json::from_slice::<serde_json::Value>(&line).map(|v| v["recordId"].as_str().unwrap_or("").to_owned())
        })
        .collect::<Result<_, _>>()?;
    ids.sort();
    expected.sort();
    assert_eq!(ids.len(), 600);
    assert_eq!(ids, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn export_to_stdout() -> TestResult {
    let config = config(200);
    let mock = start(config.clone()).await?;
    command(&mock)
        .line("export --data-type customEvent --start 2024-01-02 --end 2024-01-03 --output -")
        .run()
        .await?
        .code(0)
        // One window: the body exactly as served.
        .stdout(expected_body(&config, "customEvent", day(1), day(2)));
    Ok(())
}

/// Proves: an export to standard output whose bodies are cut mid-record (retried, then split)
/// still writes every record exactly once, and exits 0: only committed windows reach stdout.
#[tokio::test(flavor = "multi_thread")]
async fn stdout_export_under_truncation_faults_is_exact() -> TestResult {
    let config = config(800);
    let mock = start(config.clone()).await?;
    // The first window is cut twice (after a retry it is split in two), then no more.
    mock.inject(iterable_export_mock::Fault::Truncate {
        after_bytes: 30_000,
        count: 2,
    });
    let output = command(&mock)
        .line(
            "export --data-type emailOpen --start 2024-01-01 --end 2024-01-03 --window 6h --max-window 6h \
             --requests-per-minute 6000 --output -",
        )
        .run()
        .await?
        .code(0)
        .stderr(contains("1 windows split"));
    assert_records(
        &output.get_output().stdout,
        &expected_body(&config, "emailOpen", day(0), day(2)),
        "stdout",
    );
    let cut = mock.requests().iter().filter(|r| !r.completed).count();
    assert_eq!(cut, 2, "both cuts happened");
    assert!(mock.pending_faults().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn user_events_and_experiments_write_the_body_as_served() -> TestResult {
    let mock = start(config(50)).await?;
    let dir = tempfile::tempdir()?;
    let events = dir.path().join("events.ndjson");
    command(&mock)
        .line("user-events --email ana@example.com --output")
        .with(&events)
        .run()
        .await?
        .code(0);
    let body = std::fs::read(&events)?;
    let lines: Vec<serde_json::Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(serde_json::from_slice)
        .collect::<Result<_, _>>()?;
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l["_type"].is_string() && l["email"] == "ana@example.com")
    );
    assert_eq!(
        mock.requests()[0].query,
        "email=ana%40example.com&includeCustomEvents=true"
    );

    command(&mock)
        .line("experiments --experiment-id 1 --experiment-id 2 --campaign-id 3")
        .run()
        .await?
        .code(0)
        .stdout(predicate::str::starts_with("experimentId,campaignId,"));
    assert_eq!(mock.requests()[1].query, "campaignId=3&experimentId=1&experimentId=2");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_runs_and_verifies_its_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let assert = bare_command()
        .line("demo --records-per-day 500 --output")
        .with(dir.path())
        .run()
        .await?
        .code(0)
        .stderr(contains("demo: done"));
    let err = stderr(&assert);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(
        names,
        [
            "customEvent",
            "customEvent.csv",
            "customEvent.ndjson",
            "emailOpen",
            "emailOpen.csv",
            "emailOpen.ndjson",
            "emailSend",
            "emailSend.csv",
            "emailSend.ndjson",
            "via-jobs"
        ]
    );

    // The three days the demo exported, as it printed them.
    let from = err
        .split(" from ")
        .nth(1)
        .and_then(|rest| rest.get(..10))
        .ok_or("no `from <day>` in the output")?;
    let first = chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d")?;
    let days: Vec<chrono::NaiveDate> = (0..4).map(|d| first + chrono::TimeDelta::days(d)).collect();
    let compact = |d: chrono::NaiveDate| d.format("%Y%m%d").to_string();

    // Parquet: a partition per day, each with the day's window file, and every record once.
    for data_type in ["customEvent", "emailOpen", "emailSend"] {
        let root = dir.path().join(data_type);
        assert!(root.join("_SUCCESS").exists(), "{data_type}");
        let expected: Vec<String> = days[..3]
            .iter()
            .map(|d| {
                format!(
                    "dt={d}/part-{}T000000Z-{}T000000Z.parquet",
                    compact(*d),
                    compact(*d + chrono::TimeDelta::days(1))
                )
            })
            .collect();
        assert_eq!(crate::parquet::visible(&root), expected, "{data_type}");
        assert!(
            err.contains(&format!(
                "demo: checked {data_type}: 1500 records in 3 day partitions (dt={} 500, dt={} 500, dt={} 500), \
                 each recordId once, as served",
                days[0], days[1], days[2]
            )),
            "{err}"
        );
    }

    // Export jobs: the same bytes as data.json's export, in files of at most 1/24 of it.
    let data_json = std::fs::read(dir.path().join("emailSend.ndjson"))?;
    assert_eq!(std::fs::read(dir.path().join("via-jobs/emailSend.ndjson"))?, data_json);
    let config = iterable_export_mock::MockConfig::default()
        .with_records_per_day(500)
        .with_data_start(first)
        .with_jobs(iterable_export_mock::JobsConfig::default().with_max_file_bytes(data_json.len() as u64 / 24));
    let mut files = 0;
    for day in days.windows(2) {
        let [start, end] = [day[0], day[1]].map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
        let spec =
            iterable_export_mock::JobSpec::new("emailSend", iterable_export_mock::JobFormat::Ndjson, start, end)?;
        files += iterable_export_mock::expected_job(&config, &spec).files.len();
    }
    assert!(files >= 24, "{files} files");
    assert!(
        err.contains(&format!("demo: emailSend through 3 jobs: {files} files downloaded, ")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "byte-identical to {}; none of the {files} requests to the file host carried the API key; 0 job \
             requests refused with 429",
            dir.path().join("emailSend.ndjson").display()
        )),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_window_csv_file_is_the_body_byte_for_byte() -> TestResult {
    use futures::TryStreamExt;
    let mock = start(config(300)).await?;
    let dir = tempfile::tempdir()?;
    command(&mock)
        .line(
            "export --data-type emailClick --start 2024-01-01 --end 2024-01-03 --window 2d --max-window 2d \
             --format csv --requests-per-minute 6000 -o",
        )
        .with(dir.path())
        .run()
        .await?
        .code(0);
    let client = iterable_export::Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .build()?;
    let body: Vec<_> = client
        .export(iterable_export::DataType::EmailClick)
        .between(day(0), day(2))
        .body(iterable_export::Format::Csv)
        .await?
        .try_collect()
        .await?;
    let served = body.concat();
    assert!(served.len() > 100_000);
    assert_eq!(std::fs::read(dir.path().join("emailClick.csv"))?, served);
    Ok(())
}
