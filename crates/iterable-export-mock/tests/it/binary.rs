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
