//! Error paths: exact exit codes and one-line messages, nothing that looks complete on failure.

use iterable_export_mock::Fault;

use crate::common::*;

fn last_line(assert: &assert_cmd::assert::Assert) -> String {
    stderr(assert).lines().last().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_key_exits_3_and_says_how_to_set_it() -> TestResult {
    let mock = start(config(10)).await?;
    let mut cmd = command(&mock);
    cmd.env_remove("ITERABLE_API_KEY");
    let output = cmd
        .line("export --data-type emailSend --range All -o -")
        .run()
        .await?
        .code(3);
    assert_eq!(
        last_line(&output),
        "error: configuration error: no API key: set ITERABLE_API_KEY (or pass --api-key) to a server-side key from Iterable's Integrations > API Keys page"
    );
    assert_eq!(mock.counters().requests, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_key_exits_4_without_showing_the_key() -> TestResult {
    let mock = start(config(10)).await?;
    let dir = tempfile::tempdir()?;
    let mut cmd = command(&mock);
    cmd.env("ITERABLE_API_KEY", "wrong-secret-key");
    let output = cmd
        .line("export --data-type emailSend --start 2024-01-01 --end 2024-01-02 -o")
        .with(dir.path())
        .run()
        .await?
        .code(4)
        .stderr(contains("wrong-secret-key").not());
    let line = last_line(&output);
    assert!(line.starts_with("error: emailSend: export of emailSend window [2024-01-01T00:00:00Z, 2024-01-02T00:00:00Z) failed after 1 attempt(s): the API key was rejected (HTTP 401); check the key"), "{line}");
    assert!(!dir.path().join("emailSend.ndjson").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_exit_5_and_leave_only_a_part_file() -> TestResult {
    let mock = start(config(10)).await?;
    mock.inject(Fault::Status {
        status: 500,
        count: 100,
    });
    let dir = tempfile::tempdir()?;
    let output = command(&mock)
        .line("export --data-type emailSend --start 2024-01-01 --end 2024-01-02 --max-retries 1 -o")
        .with(dir.path())
        .run()
        .await?
        .code(5);
    assert!(last_line(&output).ends_with("failed after 2 attempt(s): Iterable API error: HTTP 500 [GenericError]: Something went wrong. Please try again later."), "{}", last_line(&output));
    assert!(!dir.path().join("emailSend.ndjson").exists());
    assert!(dir.path().join("emailSend.ndjson.part").exists());
    assert_eq!(mock.counters().requests, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_refused_exits_6() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let mut cmd = bare_command();
    cmd.env("ITERABLE_API_KEY", "k");
    let output = cmd
        .line("export --data-type emailSend --range All --max-retries 0 --base-url")
        .with(format!("http://127.0.0.1:{port}/api"))
        .with("-o")
        .with(dir.path())
        .run()
        .await?
        .code(6);
    assert!(
        last_line(&output).contains("cannot connect to the server; check the base URL/region"),
        "{}",
        last_line(&output)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2_and_name_the_argument() -> TestResult {
    let mock = start(config(10)).await?;
    let cases = [
        ("export --data-type nope --range All", "\"nope\" is not a data type"),
        (
            "export --data-type emailSend --start 2024-02-01 --end 2024-01-01",
            "must be before --end",
        ),
        (
            "export --data-type emailSend --start tomorrow",
            "\"tomorrow\" is not a date",
        ),
        (
            "export --data-type emailSend",
            "give --start (and optionally --end) or --range",
        ),
        (
            "export --data-type emailSend --data-type emailOpen --range All -o -",
            "--output - (standard output) takes one --data-type",
        ),
        (
            "experiments --experiment-id 1 --window 1d",
            "unexpected argument '--window'",
        ),
    ];
    let cwd = tempfile::tempdir()?;
    for (line, message) in cases {
        let mut cmd = command(&mock);
        cmd.current_dir(cwd.path());
        cmd.line(line)
            .run()
            .await?
            .code(2)
            .stderr(contains(message).and(contains("panicked").not()));
    }
    assert_eq!(mock.counters().requests, 0);
    assert_eq!(
        std::fs::read_dir(cwd.path())?.count(),
        0,
        "a refused command leaves no file behind"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_subcommand_has_help_with_examples() -> TestResult {
    for sub in ["export", "user-events", "experiments", "demo"] {
        assert_cmd::cargo::cargo_bin_cmd!("iterable-export")
            .args([sub, "--help"])
            .assert()
            .code(0)
            .stdout(contains("Example: --"));
    }
    Ok(())
}
