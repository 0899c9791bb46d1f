//! Fixtures of the CLI's tests: the mock server in-process, the binary run as a child process
//! through `assert_cmd`. Fixtures shared with the other crates' tests come from `test-support`.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use assert_cmd::assert::Assert;
use chrono::{DateTime, Utc};
use iterable_export_mock::MockServer;

pub use assert_cmd::Command;
pub use predicates::prelude::*;
pub use predicates::str::contains;
pub use test_support::*;

/// The binary as a `std` command (for runs a test kills), pointed at the mock, with a clean
/// environment.
pub fn child_command(mock: &MockServer) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("iterable-export"));
    cmd.env_clear()
        .env("ITERABLE_API_KEY", mock.api_key())
        .env("ITERABLE_BASE_URL", mock.base_url())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// The binary pointed at the mock, with a clean environment.
pub fn command(mock: &MockServer) -> Command {
    Command::from_std(child_command(mock))
}

/// The binary with an empty environment.
pub fn bare_command() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("iterable-export");
    cmd.env_clear();
    cmd
}

/// The words of a command line written in a test, split on white space (paths, which may hold
/// any character, are passed as arguments of their own).
pub fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split_whitespace()
}

/// `--output <dir> --state <dir>/state.json`: an export into `dir` that keeps its state there.
pub fn dir_args(dir: &Path) -> [OsString; 4] {
    [
        "--output".into(),
        dir.into(),
        "--state".into(),
        dir.join("state.json").into(),
    ]
}

/// Builds and runs a command line of the binary, by value so that it chains into [`Cli::run`].
pub trait Cli: Sized {
    /// Appends the [`words`] of `line`.
    fn line(self, line: &str) -> Self;
    /// Appends one argument.
    fn with(self, arg: impl AsRef<OsStr>) -> Self;
    /// Appends [`dir_args`].
    fn into_dir(self, dir: &Path) -> Self;
    /// Runs the command to its end off the async runtime (the mock keeps serving on it).
    fn run(self) -> impl Future<Output = Result<Assert, BoxError>> + Send;
}

impl Cli for Command {
    fn line(mut self, line: &str) -> Self {
        self.args(words(line));
        self
    }

    fn with(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.arg(arg);
        self
    }

    fn into_dir(mut self, dir: &Path) -> Self {
        self.args(dir_args(dir));
        self
    }

    async fn run(mut self) -> Result<Assert, BoxError> {
        Ok(tokio::task::spawn_blocking(move || self.assert()).await?)
    }
}

/// The standard error of a finished run, as text.
pub fn stderr(assert: &Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

/// The value of `name` in a request log's query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The windows `[start, end)` of the export requests the mock received, oldest first.
pub fn windows_requested(mock: &MockServer) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    mock.requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/export/data."))
        .map(|r| {
            let date = |name: &str| {
                query_param(&r.query, name)
                    .and_then(|d| iterable_export_mock::parse_datetime(&d))
                    .unwrap_or_else(|| panic!("no {name} in {:?}", r.query))
            };
            (date("startDateTime"), date("endDateTime"))
        })
        .collect()
}

/// Reads and parses the state file (written atomically: it must always parse).
pub fn read_state(path: &Path) -> Result<serde_json::Value, BoxError> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| format!("{} does not parse: {e}\n{text}", path.display()).into())
}

/// Waits until `done()` holds, polling every 2 ms. The CLI runs as another process, which tokio's
/// paused clock cannot drive: the loop waits on what the test asserts on (mock counters, the state
/// file), and the 60 s limit only turns a hang into a failure, never a bound the test relies on.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> TestResult {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        if std::time::Instant::now() > give_up {
            return Err(format!("gave up waiting for {what}").into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Waits until request number `from` (1-based) or a later one is held mid-body by a stall after
/// `held_at` body bytes. Fails if `child` ends first.
pub async fn wait_held(mock: &MockServer, child: &mut std::process::Child, from: usize, held_at: u64) -> TestResult {
    let mut ended = None;
    wait_until(&format!("request {from} held after {held_at} bytes"), || {
        let held = mock
            .requests()
            .iter()
            .skip(from - 1)
            .any(|r| r.bytes_sent == held_at && !r.completed);
        if !held && let Ok(Some(status)) = child.try_wait() {
            ended = Some(status);
        }
        held || ended.is_some()
    })
    .await?;
    match ended {
        Some(status) => Err(format!("the run ended ({status}) before request {from} was held").into()),
        None => Ok(()),
    }
}

/// [`wait_held`], then kills the child (SIGKILL) and waits for it.
pub async fn kill_when_held(
    mock: &MockServer,
    child: &mut std::process::Child,
    from: usize,
    held_at: u64,
) -> TestResult {
    wait_held(mock, child, from, held_at).await?;
    child.kill()?;
    child.wait()?;
    Ok(())
}
