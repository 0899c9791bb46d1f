//! `iterable-export singer`, syncing: exact records, STATE that resumes exactly once, retries
//! without duplicates, tap-iterable's state migrated, config errors; and the fixtures of the
//! tap's tests (the catalog's are in `singer_catalog.rs`).

use std::path::Path;
use std::time::Duration;

use iterable_export_mock::{Fault, MockConfig, MockServer};
use serde_json::{Value, json};

use crate::common::*;

/// A config file for the mock: `extra` is merged into it.
pub(crate) fn write_config(dir: &Path, mock: &MockServer, extra: Value) -> Result<std::path::PathBuf, BoxError> {
    let mut config = json!({
        "api_key": mock.api_key(),
        "start_date": "2024-01-01T00:00:00Z",
        "base_url": mock.base_url(),
        "requests_per_minute": 6000,
    });
    if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
        config.extend(extra);
    }
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string())?;
    Ok(path)
}

/// The tap's own catalog with `streams` selected.
pub(crate) async fn write_catalog(
    dir: &Path,
    mock: &MockServer,
    streams: &[&str],
) -> Result<std::path::PathBuf, BoxError> {
    let config = write_config(dir, mock, json!({}))?;
    let out = bare_command()
        .line("singer --config")
        .with(&config)
        .with("--discover")
        .run()
        .await?
        .code(0);
    let mut catalog: Value = serde_json::from_slice(&out.get_output().stdout)?;
    for stream in catalog["streams"].as_array_mut().ok_or("no streams")? {
        let chosen = streams.contains(&stream["tap_stream_id"].as_str().unwrap_or_default());
        stream["metadata"][0]["metadata"]["selected"] = Value::Bool(chosen);
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, catalog.to_string())?;
    Ok(path)
}

/// Runs a sync; gives its standard output.
pub(crate) async fn sync(
    dir: &Path,
    mock: &MockServer,
    extra: Value,
    state: Option<&Path>,
) -> Result<Vec<u8>, BoxError> {
    let config = write_config(dir, mock, extra)?;
    let mut cmd = bare_command();
    cmd.arg("singer")
        .arg("--config")
        .arg(&config)
        .arg("--catalog")
        .arg(dir.join("catalog.json"));
    if let Some(state) = state {
        cmd.arg("--state").arg(state);
    }
    let out = cmd.run().await?.code(0);
    Ok(out.get_output().stdout.clone())
}

/// The messages of a tap's output, one per line (every line must be a JSON object).
pub(crate) fn messages(out: &[u8]) -> Vec<Value> {
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(l))))
        .collect()
}

/// The records of `stream`, as the exact bytes each RECORD message holds, one per line.
pub(crate) fn raw_records(out: &[u8], stream: &str) -> Vec<u8> {
    let prefix = format!(r#"{{"type":"RECORD","stream":"{stream}","time_extracted":""#);
    let mut body = Vec::new();
    for line in out.split(|b| *b == b'\n').filter(|l| l.starts_with(prefix.as_bytes())) {
        let text = std::str::from_utf8(line).expect("UTF-8");
        let at = text.find(r#","record":"#).expect("a record") + r#","record":"#.len();
        body.extend_from_slice(&text.as_bytes()[at..text.len() - 1]);
        body.push(b'\n');
    }
    body
}

/// Asserts the RECORDs of `stream` in `out` are byte for byte the records the mock serves for
/// `data_type` from 2024-01-01 for `days` days, each once.
#[track_caller]
pub(crate) fn assert_served(out: &[u8], stream: &str, config: &MockConfig, data_type: &str, days: i64) {
    let what = format!("{stream} over {days} day(s)");
    assert_records(
        &raw_records(out, stream),
        &expected_body(config, data_type, day(0), day(days)),
        &what,
    );
}

/// The value of the last STATE message, written to `dir/state.json` (what a target hands back).
pub(crate) fn save_last_state(out: &[u8], dir: &Path) -> Result<std::path::PathBuf, BoxError> {
    let state = messages(out)
        .into_iter()
        .rfind(|m| m["type"] == "STATE")
        .ok_or("no STATE message")?;
    let path = dir.join("state.json");
    std::fs::write(&path, state["value"].to_string())?;
    Ok(path)
}

/// Proves: a sync of two streams emits SCHEMA before each stream's records, every record byte
/// for byte as the mock served it (unknown fields, nested objects, unicode), each once, with a
/// time_extracted, a STATE after each window and a last STATE whose bookmarks end at end_date.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_emits_exactly_the_served_records() -> TestResult {
    let config = config(300);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    write_catalog(dir.path(), &mock, &["email_send", "users"]).await?;
    let out = sync(
        dir.path(),
        &mock,
        json!({"end_date": "2024-01-03T00:00:00Z", "lookback": 0}),
        None,
    )
    .await?;
    assert_served(&out, "email_send", &config, "emailSend", 2);
    assert_served(&out, "users", &config, "user", 2);
    let messages = messages(&out);
    let kinds: Vec<String> = messages
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["type"].as_str().unwrap_or_default(),
                m["stream"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Vec::new(), |mut runs, kind| {
            if runs.last() != Some(&kind) {
                runs.push(kind);
            }
            runs
        });
    // Two windows of a day per stream, a STATE after each.
    assert_eq!(
        kinds,
        [
            "SCHEMA:email_send",
            "RECORD:email_send",
            "STATE:",
            "RECORD:email_send",
            "STATE:",
            "SCHEMA:users",
            "RECORD:users",
            "STATE:",
            "RECORD:users",
            "STATE:"
        ]
    );
    let schema = &messages[0];
    assert_eq!(schema["key_properties"], json!(["messageId"]));
    assert_eq!(schema["bookmark_properties"], json!(["createdAt"]));
    let record = &messages[1];
    assert!(chrono::DateTime::parse_from_rfc3339(record["time_extracted"].as_str().unwrap_or_default()).is_ok());
    let last = &messages[messages.len() - 1]["value"]["bookmarks"];
    assert_eq!(last["email_send"]["replication_key_value"], "2024-01-03T00:00:00Z");
    assert_eq!(last["users"]["replication_key"], "profileUpdatedAt");
    assert_eq!(last["users"]["replication_key_value"], "2024-01-03T00:00:00Z");
    Ok(())
}

/// Proves: two incremental syncs (each continuing from the last STATE, re-reading a 20-minute
/// look-back) and a third killed mid-window then resumed from the last STATE it emitted give
/// every served record exactly once, byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn incremental_and_resumed_syncs_give_every_record_once() -> TestResult {
    let config: MockConfig = config(2000);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    write_catalog(dir.path(), &mock, &["email_send"]).await?;
    let look = json!({"lookback": "20m"});
    let with_end = |end: &str| {
        let mut extra = look.clone();
        extra["end_date"] = json!(end);
        extra
    };
    let mut all = sync(dir.path(), &mock, with_end("2024-01-02T00:00:00Z"), None).await?;
    let state = save_last_state(&all, dir.path())?;
    let second = sync(dir.path(), &mock, with_end("2024-01-03T00:00:00Z"), Some(&state)).await?;
    let state = save_last_state(&second, dir.path())?;
    all.extend_from_slice(&second);
    assert_served(&all, "email_send", &config, "emailSend", 2);

    // The third sync, killed while its second request's body is held (its windows: the
    // look-back and a day, a day, the last 20 minutes): the window before it was emitted with
    // its STATE, the one in flight was not.
    mock.clear_requests();
    mock.inject(Fault::Stall {
        after_bytes: 50_000,
        duration: Duration::from_millis(200),
        count: 100,
    });
    let config_path = write_config(dir.path(), &mock, with_end("2024-01-05T00:00:00Z"))?;
    let partial = dir.path().join("partial.out");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("iterable-export"))
        .env_clear()
        .arg("singer")
        .arg("--config")
        .arg(&config_path)
        .arg("--catalog")
        .arg(dir.path().join("catalog.json"))
        .arg("--state")
        .arg(&state)
        .stdout(std::fs::File::create(&partial)?)
        .stderr(std::process::Stdio::null())
        .spawn()?;
    kill_when_held(&mock, &mut child, 2, 50_000).await?;
    mock.clear_faults();
    let third = std::fs::read(&partial)?;
    let state = save_last_state(&third, dir.path())?;
    let emitted = raw_records(&third, "email_send");
    assert!(!emitted.is_empty(), "the windows before the kill were emitted");
    all.extend_from_slice(&third);
    let resumed = sync(dir.path(), &mock, with_end("2024-01-05T00:00:00Z"), Some(&state)).await?;
    all.extend_from_slice(&resumed);
    assert_served(&all, "email_send", &config, "emailSend", 4);
    Ok(())
}

/// Proves: a window cut off mid-body is retried and its records are emitted once (the cut
/// attempt's records never reach standard output).
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_window_emits_no_duplicates() -> TestResult {
    let config = config(500);
    let mock = start(config.clone()).await?;
    mock.inject(Fault::Truncate {
        after_bytes: 60_000,
        count: 1,
    });
    let dir = tempfile::tempdir()?;
    write_catalog(dir.path(), &mock, &["email_send"]).await?;
    let out = sync(
        dir.path(),
        &mock,
        json!({"end_date": "2024-01-02T00:00:00Z", "lookback": 0}),
        None,
    )
    .await?;
    assert_served(&out, "email_send", &config, "emailSend", 1);
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "the cut window and its retry");
    assert!(!requests[0].completed);
    Ok(())
}

/// Proves: a bad config exits with the configuration code (3), names the key, and sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_exits_3_naming_the_key() -> TestResult {
    let mock = start(config(1)).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.json");
    for (config, message) in [
        (
            json!({"api_key": "k"}),
            "error: singer: configuration error: config key `start_date`: missing: where streams without a bookmark start, e.g. \"2024-01-01T00:00:00Z\"",
        ),
        (
            json!({"api_key": "k", "start_date": "2024-01-01", "requests_per_minute": "four"}),
            "error: singer: configuration error: config key `requests_per_minute`: must be a whole number from 1 (Iterable allows 4), not \"four\"",
        ),
        (
            json!({"api_key": "k", "start_date": "2024-01-01", "base_url": "ftp://example.com/api"}),
            "error: singer: configuration error: config key `base_url`: bad base URL \"ftp://example.com/api\": expected an http or https URL such as https://api.iterable.com/api",
        ),
    ] {
        std::fs::write(&path, config.to_string())?;
        let out = bare_command().line("singer --config").with(&path).run().await?.code(3);
        assert_eq!(stderr(&out).lines().last(), Some(message));
        assert!(out.get_output().stdout.is_empty());
    }
    assert_eq!(mock.counters().requests, 0);
    Ok(())
}

/// Proves: an end_date in the future ends the sync now, not then: its bookmark says complete up
/// to the sync's time, so records created between the sync and end_date are left to the next
/// sync (a bookmark in the future would have skipped them for good).
#[tokio::test(flavor = "multi_thread")]
async fn an_end_date_in_the_future_ends_the_sync_now() -> TestResult {
    let mock = start(config(24)).await?;
    let dir = tempfile::tempdir()?;
    write_catalog(dir.path(), &mock, &["email_send"]).await?;
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let start_date = (before - chrono::TimeDelta::hours(2)).to_rfc3339();
    let end_date = (before + chrono::TimeDelta::days(2)).to_rfc3339();
    let out = sync(
        dir.path(),
        &mock,
        json!({"start_date": start_date, "end_date": end_date, "lookback": 0}),
        None,
    )
    .await?;
    let after = chrono::Utc::now();
    let state = save_last_state(&out, dir.path())?;
    let bookmark = &read_state(&state)?["bookmarks"]["email_send"];
    for key in ["replication_key_value", "end"] {
        let time = chrono::DateTime::parse_from_rfc3339(bookmark[key].as_str().ok_or("a time")?)?;
        assert!(time >= before && time <= after, "{key} {time} is not the sync's time");
    }
    for (_, end) in windows_requested(&mock) {
        assert!(end <= after, "a window ends in the future: {end}");
    }
    Ok(())
}

/// Proves: a state file exactly as tap-iterable writes it (`currently_syncing`, a bookmark of
/// its replication key per stream in singer-python's time format, bookmarks of streams this tap
/// does not have) is migrated, saying so on stderr: each stream continues from tap-iterable's
/// time (the first request starts there), its other keys pass on unchanged, and a second sync
/// from the STATE the first emitted continues from this tap's bookmarks — every record from the
/// migrated times once.
#[tokio::test(flavor = "multi_thread")]
async fn tap_iterables_state_is_migrated() -> TestResult {
    let config = config(300);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    write_catalog(dir.path(), &mock, &["email_send", "users"]).await?;
    let state = dir.path().join("tap-iterable.json");
    let theirs = json!({
        "currently_syncing": "users",
        "bookmarks": {
            "campaigns": {"updatedAt": "2024-01-01T10:18:55.000000Z"},
            "email_send": {"createdAt": "2024-01-02T00:00:00.000000Z"},
            "users": {"profileUpdatedAt": "2024-01-01T12:00:00.000000Z"}
        }
    });
    std::fs::write(&state, theirs.to_string())?;
    let config_path = write_config(
        dir.path(),
        &mock,
        json!({"end_date": "2024-01-03T00:00:00Z", "lookback": "10m"}),
    )?;
    let first = bare_command()
        .line("singer --config")
        .with(&config_path)
        .with("--catalog")
        .with(dir.path().join("catalog.json"))
        .with("--state")
        .with(&state)
        .run()
        .await?
        .code(0);
    let message = stderr(&first);
    for (stream, from) in [
        ("email_send", "2024-01-02T00:00:00Z"),
        ("users", "2024-01-01T12:00:00Z"),
    ] {
        let bookmark = &theirs["bookmarks"][stream];
        assert!(
            message.contains(&format!(
                "the state file {}: the bookmark of {stream} is tap-iterable's ({bookmark}): migrated, {stream} \
                 continues from {from}",
                state.display()
            )),
            "{message}"
        );
    }
    let mut all = first.get_output().stdout.clone();
    let starts: Vec<_> = windows_requested(&mock).iter().map(|w| w.0).collect();
    assert_eq!(
        starts.first(),
        Some(&day(1)),
        "email_send starts at tap-iterable's time"
    );
    assert!(starts.contains(&day_at(0, 12)), "users starts at tap-iterable's time");
    assert!(starts.iter().all(|s| *s >= day_at(0, 12)), "nothing before: {starts:?}");
    let last = messages(&all)
        .into_iter()
        .rfind(|m| m["type"] == "STATE")
        .ok_or("no STATE")?;
    assert_eq!(last["value"]["currently_syncing"], "users");
    assert_eq!(
        last["value"]["bookmarks"]["campaigns"],
        theirs["bookmarks"]["campaigns"]
    );
    for stream in ["email_send", "users"] {
        assert_eq!(
            last["value"]["bookmarks"][stream]["replication_key_value"],
            "2024-01-03T00:00:00Z"
        );
    }

    let ours = save_last_state(&all, dir.path())?;
    let second = sync(
        dir.path(),
        &mock,
        json!({"end_date": "2024-01-04T00:00:00Z", "lookback": "10m"}),
        Some(&ours),
    )
    .await?;
    all.extend_from_slice(&second);
    assert_records(
        &raw_records(&all, "email_send"),
        &expected_body(&config, "emailSend", day(1), day(3)),
        "email_send from tap-iterable's bookmark",
    );
    assert_records(
        &raw_records(&all, "users"),
        &expected_body(&config, "user", day_at(0, 12), day(3)),
        "users from tap-iterable's bookmark",
    );
    Ok(())
}
