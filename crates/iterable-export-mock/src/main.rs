//! `iterable-export-mock`: run the mock Iterable Export API server from the command line.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use clap::Parser;
use iterable_export_mock::{Fault, JobFault, JobsConfig, MockConfig, MockServer, RateLimit, parse_datetime};

const EXAMPLES: &str = "\
Examples:
  # the defaults: 127.0.0.1:8080, key test-api-key, 100 records per day and data type
  iterable-export-mock

  # a bigger data set and a custom key
  iterable-export-mock --port 8080 --api-key secret --seed 1 --records-per-day 100000

  # Iterable's limit on a compressed clock, with Retry-After
  iterable-export-mock --rate-limit 4 --rate-window 2s --retry-after

  # no rate limit (benchmarks)
  iterable-export-mock --rate-limit 0 --records-per-day 1000000

  # the first two exports fail with 500, the third is cut after 1 MiB
  iterable-export-mock --fault status:500:2 --fault truncate:1048576:1

  # a fixed clock for range=Today/Yesterday/BeforeToday/All
  iterable-export-mock --now '2024-03-01 12:00:00'

  # export jobs for a benchmark: 10 MB files, 5 s of preparation, no limits, 30 min URLs
  iterable-export-mock --records-per-day 1000000 --job-file-size 10000000 --job-duration 5s \
    --job-file-interval 0s --jobs-rate-limit 0 --url-expiry 30m

  # the first job fails after 3 files; every job's 2nd file is cut on its first download
  iterable-export-mock --job-fault fail:1:3 --job-fault cut:0:2:1000

  curl -H 'Api-Key: test-api-key' \\
    'http://127.0.0.1:8080/api/export/data.json?dataTypeName=emailSend&startDateTime=2024-01-01%2000:00:00&endDateTime=2024-01-02%2000:00:00'

Fault forms (--fault, repeatable; the last number is how many export requests it affects):
  status:CODE:N          answer with CODE (500 GenericError JSON, 502/503/504 HTML, 429 RateLimitExceeded)
  truncate:BYTES:N       cut the body after BYTES bytes (no terminating chunk)
  stall:BYTES:DUR:N      pause DUR (e.g. 5s, 250ms) after BYTES bytes
  malformed:RECORDS:N    insert a malformed line after RECORDS records
  blank:EVERY:N          insert a blank line after every EVERY records
  no-final-newline:N     omit the body's final newline
  redirect:N             302 to a second listener that records whether Api-Key arrived

Job fault forms (--job-fault, repeatable; JOB = the n-th job started, 0 = every job):
  fail:JOB:FILES         the job fails once FILES files have appeared
  restart:JOB:FILES:DUR  running -> enqueued after FILES files, for DUR, then it goes on
  cap:JOB:BYTES          the job's size cap (exportTruncated: true beyond it)
  cut:JOB:FILE:BYTES     the first download of file FILE (1-based) stops after BYTES bytes
  expired:JOB:N          the first N file listings of the job hand out expired URLs
  files-500:JOB:CALL     the CALL-th files request of the job answers 500
  start-500:JOB          the start creating the job answers 500 (the job runs)";

/// A local server that behaves like Iterable's Export API (data.json, data.csv, userEvents,
/// experiments/metrics) with deterministic synthetic data, rate limiting and fault injection.
#[derive(Debug, Parser)]
#[command(name = "iterable-export-mock", version, after_help = EXAMPLES)]
struct Args {
    /// Port to listen on (0: an ephemeral port).
    #[arg(long, default_value_t = 8080, env = "ITERABLE_MOCK_PORT")]
    port: u16,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "ITERABLE_MOCK_HOST")]
    host: IpAddr,

    /// The accepted Api-Key header value.
    #[arg(
        long,
        default_value = "test-api-key",
        env = "ITERABLE_MOCK_API_KEY",
        hide_env_values = true
    )]
    api_key: String,

    /// Seed of the synthetic data (same seed, same records).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Records per day and data type (e.g. 1000000 for about 600 MB per day of emailSend).
    #[arg(long, default_value_t = 100)]
    records_per_day: u64,

    /// First day with data (YYYY-MM-DD); earlier windows are empty.
    #[arg(long, default_value = "2024-01-01")]
    data_start: NaiveDate,

    /// A fixed clock for `range` (e.g. '2024-03-01 12:00:00' or 2024-03-01T12:00:00Z);
    /// default: the system clock.
    #[arg(long, value_parser = parse_now)]
    now: Option<chrono::DateTime<Utc>>,

    /// Requests allowed per window on data.json and data.csv, each endpoint separately (0: no limit).
    #[arg(long, default_value_t = 4)]
    rate_limit: u32,

    /// Length of the rolling rate-limit window (e.g. 60s, 2s, 500ms).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    rate_window: Duration,

    /// Send Retry-After (seconds until a slot frees, rounded up) with 429 responses.
    #[arg(long)]
    retry_after: bool,

    /// /export/userEvents returns {"events":[...]} instead of one event per line.
    #[arg(long)]
    user_events_wrapped: bool,

    /// Send 401 responses without a body.
    #[arg(long)]
    no_401_body: bool,

    /// Project id shown in 429 messages.
    #[arg(long, default_value_t = 1)]
    project_id: u64,

    /// Target size of export body chunks in bytes.
    #[arg(long, default_value_t = 65_536)]
    chunk_size: usize,

    /// Inject a fault into the next export requests (repeatable); see the forms below.
    #[arg(long = "fault", value_name = "FAULT")]
    faults: Vec<Fault>,

    /// Export jobs: the most bytes per file.
    #[arg(long, default_value_t = 10_000_000)]
    job_file_size: u64,

    /// Export jobs: the most bytes per job (exportTruncated beyond).
    #[arg(long, default_value_t = 100_000_000_000)]
    job_cap: u64,

    /// Export jobs: the shortest time a job runs before it is completed (e.g. 2s, 0s).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    job_duration: Duration,

    /// Export jobs: the time between two files appearing while a job runs.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    job_file_interval: Duration,

    /// Export jobs: how long a file URL stays valid.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    url_expiry: Duration,

    /// Export jobs: jobs running at once (more stay enqueued).
    #[arg(long, default_value_t = 4)]
    max_running_jobs: usize,

    /// Export jobs: requests per window that start and files share, and of cancel (0: no limit).
    #[arg(long, default_value_t = 1)]
    jobs_rate_limit: u32,

    /// Export jobs: the length of that window.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    jobs_rate_window: Duration,

    /// Inject a fault into the export jobs (repeatable); see the job fault forms below.
    #[arg(long = "job-fault", value_name = "JOB_FAULT")]
    job_faults: Vec<JobFault>,
}

fn parse_now(s: &str) -> Result<chrono::DateTime<Utc>, String> {
    parse_datetime(s).ok_or_else(|| format!("not a date-time: {s}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = MockConfig::default()
        .with_bind(SocketAddr::new(args.host, args.port))
        .with_api_key(args.api_key)
        .with_seed(args.seed)
        .with_records_per_day(args.records_per_day)
        .with_data_start(args.data_start)
        .with_rate_limit(RateLimit::new(args.rate_limit, args.rate_window).with_retry_after(args.retry_after))
        .with_user_events_wrapped(args.user_events_wrapped)
        .with_unauthorized_body(!args.no_401_body)
        .with_project_id(args.project_id)
        .with_chunk_size(args.chunk_size)
        .with_jobs(
            JobsConfig::default()
                .with_max_file_bytes(args.job_file_size)
                .with_job_cap_bytes(args.job_cap)
                .with_job_duration(args.job_duration)
                .with_file_interval(args.job_file_interval)
                .with_url_expiry(args.url_expiry)
                .with_max_running(args.max_running_jobs)
                .with_rate_limit(
                    RateLimit::new(args.jobs_rate_limit, args.jobs_rate_window).with_retry_after(args.retry_after),
                )
                .with_cancel_rate_limit(
                    RateLimit::new(args.jobs_rate_limit, args.jobs_rate_window).with_retry_after(args.retry_after),
                ),
        );
    config.now = args.now;
    let server = match MockServer::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("iterable-export-mock: {e}");
            return ExitCode::FAILURE;
        }
    };
    for f in args.faults {
        server.inject(f);
    }
    for f in args.job_faults {
        server.inject_job_fault(f);
    }
    // One write, errors ignored: a caller that reads the first line and closes the pipe must not
    // make a later line's write fail (println! would panic and stop the server).
    let banner = format!(
        "iterable-export-mock listening on {}\nredirect target on {}\nfile host on {}\n",
        server.base_url(),
        server.redirect_base_url(),
        server.file_host_base_url()
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            eprintln!("iterable-export-mock: shutting down");
            server.shutdown().await;
        }
    }
    ExitCode::SUCCESS
}
