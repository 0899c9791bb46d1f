//! `iterable-export`: export Iterable data to files, completely and within the rate limit.

mod args;
mod checkpoint;
#[cfg(feature = "demo")]
mod demo;
mod export;
mod jobs;
mod parquet;
mod plan;
mod singer;
mod state;
mod ui;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use futures::TryStreamExt;
use iterable_export::{Client, Error, RateLimit, RetryPolicy};

use crate::args::{Cli, Command, ExperimentsArgs, Global, UserEventsArgs};
use crate::ui::Ui;

/// Documented exit codes (see `--help`).
mod exit {
    pub const UNEXPECTED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const CONFIG: u8 = 3;
    pub const AUTH: u8 = 4;
    pub const API: u8 = 5;
    pub const NETWORK: u8 = 6;
    pub const IO: u8 = 7;
    pub const DECODE: u8 = 8;
}

fn exit_code(err: &Error) -> u8 {
    match err {
        Error::InvalidRequest(_) => exit::USAGE,
        Error::Config(_) => exit::CONFIG,
        Error::Unauthorized { .. } => exit::AUTH,
        // An export job that failed, was cancelled or hit the 100 GB cap in a window too short to split.
        Error::Api { .. } | Error::RateLimited { .. } | Error::Job { .. } => exit::API,
        Error::Transport { .. } | Error::Timeout(_) | Error::ConnectTimeout(_) => exit::NETWORK,
        Error::Io { .. } => exit::IO,
        Error::Decode { .. } | Error::LineTooLong { .. } => exit::DECODE,
        Error::WindowFailed { source, .. } => exit_code(source),
        _ => exit::UNEXPECTED,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::init(cli.global.quiet, cli.global.verbose);
    // One thread is plenty: an export is I/O-bound (the CLI uses ~0.3 s of CPU per GB), and fewer
    // threads keep resident memory down.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(exit::UNEXPECTED);
        }
    };
    let code = runtime.block_on(run(cli, &ui));
    ExitCode::from(code)
}

/// Prints an error as one line with what to do, and returns its exit code.
fn report(ui: &Ui, context: &str, err: &Error) -> u8 {
    let prefix = if context.is_empty() {
        String::new()
    } else {
        format!("{context}: ")
    };
    ui.line(&format!("error: {prefix}{err}"));
    exit_code(err)
}

async fn run(cli: Cli, ui: &Ui) -> u8 {
    match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo(args) => match demo::run(args, &cli.global, ui).await {
            Ok(()) => 0,
            Err(err) => report(ui, "demo", &err),
        },
        Command::Export(args) => {
            let client = match client(&cli.global, args.requests_per_minute) {
                Ok(client) => client,
                Err(err) => return report(ui, "", &err),
            };
            let started = Instant::now();
            let results = jobs::run(&client, args, ui).await;
            export::print_summary(ui, &client, &results, started.elapsed());
            let mut code = 0;
            for (name, result) in &results {
                if let Err(err) = result {
                    let c = report(ui, name, err);
                    if code == 0 {
                        code = c;
                    }
                }
            }
            code
        }
        Command::Singer(args) => singer::run(args, cli.global, ui).await,
        #[cfg(feature = "parquet")]
        Command::Convert(args) => match parquet::convert(args, ui).await {
            Ok(()) => 0,
            Err(err) => report(ui, "convert", &err),
        },
        Command::UserEvents(args) => single(&cli.global, ui, "user-events", |client| user_events(client, args)).await,
        Command::Experiments(args) => single(&cli.global, ui, "experiments", |client| experiments(client, args)).await,
    }
}

/// Runs a one-request subcommand.
async fn single<F, Fut>(global: &Global, ui: &Ui, name: &str, command: F) -> u8
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = iterable_export::Result<()>>,
{
    match client(global, RateLimit::default().requests) {
        Ok(client) => match command(client).await {
            Ok(()) => 0,
            Err(err) => report(ui, name, &err),
        },
        Err(err) => report(ui, "", &err),
    }
}

fn client(global: &Global, per_minute: u32) -> iterable_export::Result<Client> {
    let Some(key) = global.api_key.as_deref().filter(|k| !k.trim().is_empty()) else {
        return Err(Error::Config(
            "no API key: set ITERABLE_API_KEY (or pass --api-key) to a server-side key from Iterable's \
             Integrations > API Keys page"
                .into(),
        ));
    };
    let mut builder = Client::builder()
        .api_key(key)
        .read_timeout(global.read_timeout)
        .rate_limit(RateLimit::per_minute(per_minute))
        .retry_policy(RetryPolicy::default().with_max_retries(global.max_retries))
        .danger_allow_plaintext_api_key(global.allow_insecure_http);
    if let Some(region) = global.region {
        builder = builder.region(region);
    }
    if let Some(url) = &global.base_url {
        builder = builder.base_url(url.clone());
    }
    builder.build()
}

/// Copies a body to a file (`.part`, locked, synced and renamed when complete, the directory
/// synced) or to standard output, with tokio's I/O: the writes and syncs run on its blocking
/// threads, not on the runtime thread that also drives the read timeout.
async fn write_body(mut body: iterable_export::Body, output: &Path) -> iterable_export::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let io = |what: &str, path: &Path, e| Error::Io {
        context: format!("{what} {}", path.display()),
        source: e,
    };
    if output.as_os_str() == "-" {
        let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
        let mut bytes = 0u64;
        while let Some(chunk) = body.try_next().await? {
            out.write_all(&chunk).await.map_err(|e| io("cannot write", output, e))?;
            bytes += chunk.len() as u64;
        }
        out.flush().await.map_err(|e| io("cannot write", output, e))?;
        return Ok(bytes);
    }
    let part = iterable_export::part_path(output);
    // Held until the file is published: another run writing the same output fails at once.
    let lock = iterable_export::ExclusiveLock::acquire(&part)?;
    let file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| io("cannot create", &part, e))?;
    let mut out = tokio::io::BufWriter::new(file);
    let mut bytes = 0u64;
    while let Some(chunk) = body.try_next().await? {
        out.write_all(&chunk).await.map_err(|e| io("cannot write", &part, e))?;
        bytes += chunk.len() as u64;
    }
    out.flush().await.map_err(|e| io("cannot write", &part, e))?;
    out.get_ref()
        .sync_all()
        .await
        .map_err(|e| io("cannot sync", &part, e))?;
    tokio::fs::rename(&part, output).await.map_err(|e| Error::Io {
        context: format!("cannot rename {} to {}", part.display(), output.display()),
        source: e,
    })?;
    let published = output.to_owned();
    tokio::task::spawn_blocking(move || iterable_export::sync_parent_dir(&published))
        .await
        .map_err(|e| {
            io(
                "cannot sync the directory of",
                output,
                std::io::Error::other(e.to_string()),
            )
        })??;
    drop(lock);
    Ok(bytes)
}

async fn user_events(client: Client, args: UserEventsArgs) -> iterable_export::Result<()> {
    let request = client
        .user_events(args.email)
        .include_custom_events(!args.no_custom_events);
    let body = request.body().await?;
    write_body(body, &args.output).await.map(drop)
}

async fn experiments(client: Client, args: ExperimentsArgs) -> iterable_export::Result<()> {
    let request = client
        .experiment_metrics()
        .experiment_ids(args.experiment_ids)
        .campaign_ids(args.campaign_ids);
    let body = request.body().await?;
    write_body(body, &args.output).await.map(drop)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    fn global(args: &[&str]) -> Global {
        let argv = ["iterable-export", "--api-key", "k"]
            .iter()
            .chain(args)
            .chain(&["experiments"]);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.global,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn plain_http_needs_the_insecure_flag() {
        let refused = client(&global(&["--base-url", "http://example.com/api"]), 4);
        let Err(err) = refused else {
            panic!("plain http to another host was accepted");
        };
        assert_eq!(exit_code(&err), exit::CONFIG);
        assert!(err.to_string().contains("(CLI: --allow-insecure-http)"), "{err}");
        let allowed = client(
            &global(&["--base-url", "http://example.com/api", "--allow-insecure-http"]),
            4,
        );
        assert_eq!(
            allowed.map(|c| c.base_url().to_owned()).ok().as_deref(),
            Some("http://example.com/api")
        );
        let loopback = client(&global(&["--base-url", "http://127.0.0.1:8080/api"]), 4);
        assert!(loopback.is_ok());
    }

    #[test]
    fn a_connect_timeout_is_a_network_error() {
        assert_eq!(
            exit_code(&Error::ConnectTimeout(Duration::from_secs(30))),
            exit::NETWORK
        );
    }
}
