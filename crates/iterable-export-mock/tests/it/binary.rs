//! The binary: flags, base URL on start, faults from flags.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::R;

const BIN: &str = env!("CARGO_BIN_EXE_iterable-export-mock");

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_documents_every_flag() -> R {
    let out = Command::new(BIN).arg("--help").output()?;
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout)?;
    for flag in [
        "--port",
        "--host",
        "--api-key",
        "--seed",
        "--records-per-day",
        "--data-start",
        "--now",
        "--rate-limit",
        "--rate-window",
        "--retry-after",
        "--user-events-wrapped",
        "--no-401-body",
        "--project-id",
        "--chunk-size",
        "--fault",
        "Examples:",
        "status:500:2",
        "--job-file-size",
        "--job-cap",
        "--job-duration",
        "--job-file-interval",
        "--url-expiry",
        "--max-running-jobs",
        "--jobs-rate-limit",
        "--jobs-rate-window",
        "--job-fault",
        "restart:JOB:FILES:DUR",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    Ok(())
}

#[tokio::test]
async fn binary_serves_with_flags() -> R {
    let mut child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--api-key",
            "secret",
            "--records-per-day",
            "3",
            "--rate-limit",
            "0",
            "--fault",
            "status:503:1",
            "--now",
            "2024-01-05 12:00:00",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let guard = Kill(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let base = line.trim().rsplit(' ').next().unwrap_or("").to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/api"),
        "{line}"
    );
    let client = reqwest::Client::new();
    let url = format!("{base}/export/data.json?dataTypeName=emailSend&range=Yesterday");
    let first = client.get(&url).header("Api-Key", "secret").send().await?;
    assert_eq!(first.status().as_u16(), 503);
    let second = client.get(&url).header("Api-Key", "secret").send().await?;
    assert_eq!(second.status().as_u16(), 200);
    assert_eq!(second.text().await?.lines().count(), 3);
    drop(guard);
    Ok(())
}

/// Proves: the jobs flags reach the server (file size, no limit, instant jobs) and `--job-fault`
/// applies: the first job fails after 2 files, whose bytes are those of the window's start.
#[tokio::test]
async fn binary_runs_jobs_with_flags() -> R {
    let mut child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--records-per-day",
            "50",
            "--jobs-rate-limit",
            "0",
            "--job-duration",
            "0s",
            "--job-file-interval",
            "0s",
            "--job-file-size",
            "3000",
            "--job-fault",
            "fail:1:2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let guard = Kill(child);
    let lines = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        for _ in 0..3 {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            lines.push(line.trim().to_owned());
        }
        Ok::<_, std::io::Error>(lines)
    })
    .await??;
    let base = lines[0].rsplit(' ').next().unwrap_or("").to_owned();
    let file_host = lines[2]
        .strip_prefix("file host on ")
        .ok_or("no file host line")?
        .to_owned();
    let client = reqwest::Client::new();
    let start = client
        .post(format!("{base}/export/start"))
        .header("Api-Key", "test-api-key")
        .body(r#"{"dataTypeName":"emailSend","outputFormat":"application/x-json-stream","startDateTime":"2024-01-01","endDateTime":"2024-01-02"}"#)
        .send()
        .await?;
    assert_eq!(start.text().await?, r#"{"jobId":1000001}"#);
    // the job runs on the binary's real clock: poll (a hang guard, not a timing assertion)
    let mut page = serde_json::Value::Null;
    for _ in 0..500 {
        page = client
            .get(format!("{base}/export/1000001/files"))
            .header("Api-Key", "test-api-key")
            .send()
            .await?
            .json()
            .await?;
        if page["jobState"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(page["jobState"], "failed");
    let files = page["files"].as_array().ok_or("files")?;
    assert_eq!(files.len(), 2);
    let mut body = Vec::new();
    for f in files {
        let url = f["url"].as_str().ok_or("url")?;
        assert!(url.starts_with(&file_host), "{url}");
        let bytes = client.get(url).send().await?.bytes().await?;
        assert!(bytes.len() <= 3000);
        body.extend_from_slice(&bytes);
    }
    let config = iterable_export_mock::MockConfig::default().with_records_per_day(50);
    let whole =
        iterable_export_mock::expected_body(&config, "emailSend", crate::t("2024-01-01")?, crate::t("2024-01-02")?)?;
    assert!(body.len() > 3000);
    assert_eq!(body[..], whole[..body.len()]);
    drop(guard);
    Ok(())
}
