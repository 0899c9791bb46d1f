//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use iterable_export::{DataType, Range, Region};

/// Export data from Iterable fast, completely and within the rate limit.
#[derive(Debug, Parser)]
#[command(
    name = "iterable-export",
    version,
    about,
    after_help = "EXIT CODES:\n  0 success\n  1 unexpected error\n  2 usage error (bad arguments)\n  3 configuration error (missing key, bad base URL or region)\n  4 authentication failed (401/403: wrong key or region)\n  5 API error (4xx/5xx after retries)\n  6 network error (connection failed, timed out, body cut short after retries)\n  7 local I/O error (output or state file)\n  8 the server sent data that could not be decoded\n\nEXAMPLES:\n  iterable-export demo\n  ITERABLE_API_KEY=... iterable-export export --data-type emailSend --start 2024-01-01 --end 2024-02-01 --output ./out"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every subcommand. Its `Debug` never shows the key.
#[derive(Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Iterable API key (a server-side key). Prefer the environment variable: a flag shows in
    /// the process list. Example: --api-key 0123abcd...
    #[arg(long, global = true, env = "ITERABLE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Data center of the project: us or eu. Example: --region eu
    #[arg(long, global = true, env = "ITERABLE_REGION", value_parser = parse_region)]
    pub region: Option<Region>,

    /// Send requests to this base URL instead of the region's (a proxy or a mock server).
    /// Plain http is refused unless the host is loopback (127.0.0.1, ::1, localhost); see
    /// --allow-insecure-http. Example: --base-url http://127.0.0.1:8080/api
    #[arg(long, global = true, env = "ITERABLE_BASE_URL")]
    pub base_url: Option<String>,

    /// DANGER: allow a plain-http --base-url to a host other than loopback. The API key then
    /// travels unencrypted: anyone on the network path can read it and export all of the
    /// project's data. Only for a trusted network (e.g. a TLS-terminating proxy nearby).
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,

    /// Retries of a failing request or window before giving up. Example: --max-retries 12
    #[arg(long, global = true, default_value_t = 8)]
    pub max_retries: u32,

    /// How long a response may send nothing before the attempt counts as failed.
    /// Example: --read-timeout 2m
    #[arg(long, global = true, value_parser = parse_duration, default_value = "5m")]
    pub read_timeout: Duration,

    /// No progress bars and no summary; only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// More log output (-v: debug, -vv: trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("region", &self.region)
            .field("base_url", &self.base_url)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("max_retries", &self.max_retries)
            .field("read_timeout", &self.read_timeout)
            .field("quiet", &self.quiet)
            .field("verbose", &self.verbose)
            .finish()
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export records of one or more data types to files (or standard output).
    Export(ExportArgs),
    /// A Singer tap (for Meltano): --discover prints the catalog; otherwise SCHEMA, RECORD and
    /// STATE messages on standard output.
    Singer(crate::singer::SingerArgs),
    /// Convert an NDJSON export on disk to Parquet, in the layout of `export --format parquet`.
    #[cfg(feature = "parquet")]
    Convert(crate::parquet::ConvertArgs),
    /// Export every event of one user.
    UserEvents(UserEventsArgs),
    /// Export experiment metrics as CSV.
    Experiments(ExperimentsArgs),
    /// Run a demo export against an embedded mock server (no API key needed).
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Newline-delimited JSON, one record per line, as the API sends it.
    Ndjson,
    /// CSV with one header row.
    Csv,
    /// Apache Parquet: typed columns, files per day under `DIR/<dataType>/` (see --partition).
    #[cfg(feature = "parquet")]
    Parquet,
}

impl From<FormatArg> for iterable_export::Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Ndjson => iterable_export::Format::Ndjson,
            FormatArg::Csv => iterable_export::Format::Csv,
            // Parquet is made from NDJSON records, which keep their JSON types.
            #[cfg(feature = "parquet")]
            FormatArg::Parquet => iterable_export::Format::Ndjson,
        }
    }
}

/// `export` options.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Data type to export; repeat for several (they run concurrently under one rate limit), or
    /// `all` for every type Iterable exports (53). At Iterable's 4 requests per minute, `all`
    /// needs at least 53 requests (over 13 minutes) even when every type is quiet: each type's
    /// windows start at --window and double while bodies arrive fast, so a quiet type covers a
    /// year in about 17 requests (about 4 hours for all 53), and an incremental run with --state
    /// costs 1 request per type while the time since the last run fits in a window (the look-back
    /// is de-duplicated record by record, by each record's time; 3 when --only-fields or
    /// --omit-fields leave the time field out).
    /// Example: --data-type emailSend --data-type emailOpen, or --data-type all
    #[arg(long = "data-type", required = true, value_parser = parse_data_type)]
    pub data_types: Vec<DataTypeArg>,

    /// Start of the export, inclusive: RFC 3339 or YYYY-MM-DD (midnight UTC).
    /// Example: --start 2024-01-01 or --start 2024-01-01T12:00:00Z
    #[arg(long, value_parser = parse_date, conflicts_with = "range")]
    pub start: Option<DateTime<Utc>>,

    /// End of the export, exclusive (default: now). Example: --end 2024-02-01
    #[arg(long, value_parser = parse_date, conflicts_with = "range")]
    pub end: Option<DateTime<Utc>>,

    /// A predefined range instead of dates: Today, Yesterday, BeforeToday or All (exported in
    /// one request, never split). Example: --range Yesterday
    #[arg(long, value_parser = parse_range)]
    pub range: Option<Range>,

    /// Export only these fields (comma-separated). Example: --only-fields email,createdAt,messageId
    #[arg(long, value_delimiter = ',', conflicts_with = "omit_fields")]
    pub only_fields: Vec<String>,

    /// Export every field but these (comma-separated). Example: --omit-fields transactionalData
    #[arg(long, value_delimiter = ',')]
    pub omit_fields: Vec<String>,

    /// Output format. Example: --format csv
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: FormatArg,

    #[command(flatten)]
    pub parquet: crate::parquet::ParquetArgs,

    /// Output directory (files `DIR/<dataType>.<ndjson|csv>`, for Parquet `DIR/<dataType>/`), or
    /// '-' for standard output (one data type, NDJSON or CSV only). Example: --output ./exports
    #[arg(long, short, default_value = ".")]
    pub output: PathBuf,

    /// Length of the first request's time window. Windows then double while their bodies
    /// arrive in under half a rate-limit slot (7.5 s at 4 requests/min), up to --max-window, and
    /// halve when the server cuts one off. Example: --window 12h
    #[arg(long, value_parser = parse_duration, default_value = "1d")]
    pub window: Duration,

    /// The longest window; equal to --window for fixed windows. Example: --max-window 7d
    #[arg(long, value_parser = parse_duration, default_value = "30d")]
    pub max_window: Duration,

    /// Checkpoint file: completed windows per data type, written after each window. Rerunning
    /// with it resumes an interrupted export; without --start it continues where the last run
    /// ended. Example: --state ./exports/state.json
    #[arg(long)]
    pub state: Option<PathBuf>,

    /// Export requests per minute (Iterable allows 4 per project). Lower it when other tools
    /// export from the same project. Example: --requests-per-minute 2
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub requests_per_minute: u32,

    /// With --state: how much of this run's end to remember, so that the next incremental run
    /// (--state without --start) reads it again to catch events Iterable indexed late, dropping
    /// the ones already exported. Whole seconds (Iterable's dates have second precision: a
    /// fraction such as 300500ms is refused, not rounded), from 0s (no look-back) to 24h. Each
    /// remembered record costs 16 bytes of memory and about 21 bytes of state file.
    /// Example: --lookback 10m
    #[arg(long, value_parser = parse_lookback, default_value = "5m")]
    pub lookback: Duration,

    /// How records are fetched: `data-json` streams /export/data.json (or data.csv) window by
    /// window; `jobs` starts an asynchronous export job per window (Iterable prepares files of
    /// up to 10 MB, downloaded in parallel: faster for long histories, but each job first waits
    /// to be prepared). With jobs, --window is the length of each job's window (fixed; halved
    /// when a job hits Iterable's 100 GB cap). Example: --via jobs --window 30d
    #[arg(long, value_enum, default_value = "data-json")]
    pub via: crate::jobs::Via,

    /// With --via jobs: files downloaded at once. Example: --downloads 8
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub downloads: u16,

    /// With --via jobs: job files on disk at once, at most (each up to 10 MB at Iterable, in the
    /// system's temporary directory): files download as soon as Iterable lists them, while the
    /// job still runs, and reach the output once it completed; at least --downloads + 2 are
    /// used. Example: --spool-files 128
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub spool_files: u32,

    /// With --via jobs: requests per second for starting jobs and listing their files
    /// (Iterable allows 1 per second per organization, shared by every tool). Example:
    /// --job-requests-per-second 1
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub job_requests_per_second: u32,
}

/// `user-events` options.
#[derive(Debug, Args)]
pub struct UserEventsArgs {
    /// The user's email address. Example: --email a@example.com
    #[arg(long)]
    pub email: String,

    /// Leave custom events out.
    #[arg(long)]
    pub no_custom_events: bool,

    /// Output file, or '-' for standard output. Example: --output a.ndjson
    #[arg(long, short, default_value = "-")]
    pub output: PathBuf,
}

/// `experiments` options.
#[derive(Debug, Args)]
pub struct ExperimentsArgs {
    /// Experiment ID; repeat for several (at most 200 IDs in all). Example: --experiment-id 12
    #[arg(long = "experiment-id")]
    pub experiment_ids: Vec<i64>,

    /// Campaign ID; repeat for several. Example: --campaign-id 3456
    #[arg(long = "campaign-id")]
    pub campaign_ids: Vec<i64>,

    /// Output file, or '-' for standard output. Example: --output metrics.csv
    #[arg(long, short, default_value = "-")]
    pub output: PathBuf,
}

/// `demo` options.
#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the demo's files. Example: --output /tmp/demo
    #[arg(long, short, default_value = "iterable-export-demo")]
    pub output: PathBuf,

    /// Records per day and data type served by the mock. Example: --records-per-day 100000
    #[arg(long, default_value_t = 50_000)]
    pub records_per_day: u64,
}

fn parse_region(s: &str) -> Result<Region, String> {
    s.parse().map_err(|_| format!("{s:?} is not a region: use us or eu"))
}

/// One `--data-type`: a data type, or `all` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataTypeArg {
    /// One data type.
    One(DataType),
    /// Every data type (`ALL_DATA_TYPES`).
    All,
}

impl ExportArgs {
    /// The data types to export, in the order given, each once (`all` expanded).
    pub fn data_types(&self) -> Vec<DataType> {
        let mut types: Vec<DataType> = Vec::new();
        for arg in &self.data_types {
            let more: &[DataType] = match arg {
                DataTypeArg::One(data_type) => std::slice::from_ref(data_type),
                DataTypeArg::All => iterable_export::ALL_DATA_TYPES,
            };
            for data_type in more {
                if !types.contains(data_type) {
                    types.push(*data_type);
                }
            }
        }
        types
    }
}

/// A data type by its wire name, or `all`; the error lists the names (`ALL_DATA_TYPES`, from the
/// spec and its overlays) and points at a near miss.
fn parse_data_type(s: &str) -> Result<DataTypeArg, String> {
    if s == "all" {
        return Ok(DataTypeArg::All);
    }
    s.parse().map(DataTypeArg::One).map_err(|_| {
        let all = iterable_export::ALL_DATA_TYPES;
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        let hint = if let Some(name) = names.iter().find(|name| name.eq_ignore_ascii_case(s)) {
            format!(" (did you mean {name}?)")
        } else if matches!(s, "userNew" | "userUpdate") {
            // Names of the seed spec that Iterable answers with 400 (spec/overlays/10-all-data-types.yaml).
            " (Iterable has no such data type; the user table is `user`)".to_owned()
        } else {
            String::new()
        };
        format!(
            "{s:?} is not a data type{hint}; all, or one of the {}: {}",
            all.len(),
            names.join(", ")
        )
    })
}

fn parse_range(s: &str) -> Result<Range, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a range: use Today, Yesterday, BeforeToday or All"))
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD` (midnight UTC), as the library's
/// [`iterable_export::parse_iterable_time`] reads them.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, String> {
    iterable_export::parse_iterable_time(s).ok_or_else(|| {
        format!(
            "{:?} is not a date: use RFC 3339 (2024-01-01T00:00:00Z) or YYYY-MM-DD",
            s.trim()
        )
    })
}

/// The longest duration any flag accepts (ten years): keeps date arithmetic in range.
const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}): use e.g. 30s, 5m, 12h, 1d"))?;
    if d.is_zero() {
        return Err("the duration must be more than zero".into());
    }
    if d > MAX_DURATION {
        return Err(format!("{s:?} is too long: at most 3650 days"));
    }
    Ok(d)
}

/// The longest look-back: a day. At 1M records a day that is 16 MiB of identities in memory and
/// about 21 MiB of state file (measured in BENCHMARKS.md).
pub const MAX_LOOKBACK: Duration = Duration::from_secs(86_400);

pub(crate) fn parse_lookback(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration ({e}): use e.g. 0s, 90s, 5m, 1h"))?;
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "{s:?} is not a whole number of seconds: Iterable's dates have second precision; use e.g. {}s",
            d.as_secs()
        ));
    }
    if d > MAX_LOOKBACK {
        return Err(format!(
            "{s:?} is longer than the longest look-back, 24h: late events arrive within minutes, and each \
             remembered record costs memory and state file space"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookbacks_are_whole_seconds_up_to_a_day() {
        assert_eq!(parse_lookback("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_lookback("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_lookback("24h"), Ok(MAX_LOOKBACK));
        assert_eq!(
            parse_lookback("300500ms"),
            Err(
                "\"300500ms\" is not a whole number of seconds: Iterable's dates have second precision; use e.g. 300s"
                    .to_owned()
            )
        );
        assert!(parse_lookback("24h 1s").is_err_and(|e| e.contains("longer than the longest look-back, 24h")));
        assert!(parse_lookback("soon").is_err_and(|e| e.contains("is not a duration")));
    }

    #[test]
    fn dates_in_every_accepted_form() {
        let midnight = parse_date("2024-01-02");
        assert_eq!(
            midnight.map(|d| d.to_rfc3339()),
            Ok("2024-01-02T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_date("2024-01-02T03:04:05+02:00").map(|d| d.to_rfc3339()),
            Ok("2024-01-02T01:04:05+00:00".to_owned())
        );
        assert_eq!(
            parse_date("2024-01-02 03:04:05").map(|d| d.to_rfc3339()),
            Ok("2024-01-02T03:04:05+00:00".to_owned())
        );
        assert!(parse_date("yesterday").is_err_and(|e| e.contains("is not a date")));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("300000y").is_err_and(|e| e.contains("at most 3650 days")));
        assert!(parse_duration("soon").is_err_and(|e| e.contains("is not a duration")));
    }

    #[test]
    fn debug_output_hides_the_key() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["iterable-export", "--api-key", "secret-123", "experiments"]);
        let shown = format!("{cli:?}");
        assert!(
            shown.contains("api_key: Some(\"***\")") && !shown.contains("secret-123"),
            "{shown}"
        );
    }

    /// Every data type of the generated enum is accepted by `--data-type`, under its wire name.
    #[test]
    fn every_data_type_is_accepted_by_name() {
        use clap::Parser;
        assert!(iterable_export::ALL_DATA_TYPES.len() >= 53);
        for data_type in iterable_export::ALL_DATA_TYPES {
            let name = data_type.to_string();
            let cli = Cli::try_parse_from(["iterable-export", "export", "--data-type", &name, "--range", "All"]);
            match cli.map(|cli| cli.command) {
                Ok(Command::Export(args)) => assert_eq!(args.data_types(), [*data_type], "{name}"),
                other => panic!("--data-type {name}: {other:?}"),
            }
        }
        assert_eq!(parse_data_type("user"), Ok(DataTypeArg::One(DataType::User)));
        assert_eq!(parse_data_type("all"), Ok(DataTypeArg::All));
        assert!(parse_data_type("EmailSend").is_err_and(|e| e.contains("(did you mean emailSend?)")));
        assert!(parse_data_type("userUpdate").is_err_and(|e| e.contains("the user table is `user`")));
        assert!(
            parse_data_type("bogus").is_err_and(|e| e.starts_with("\"bogus\" is not a data type; all, or one of the "))
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn all_is_every_data_type_once_in_order() {
        use clap::Parser;
        let argv = [
            "iterable-export",
            "export",
            "--data-type",
            "user",
            "--data-type",
            "all",
            "--range",
            "All",
        ];
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Command::Export(args)) => {
                let types = args.data_types();
                assert_eq!(types.len(), iterable_export::ALL_DATA_TYPES.len());
                assert_eq!(types[0], DataType::User);
                let rest: Vec<DataType> = iterable_export::ALL_DATA_TYPES
                    .iter()
                    .copied()
                    .filter(|t| *t != DataType::User)
                    .collect();
                assert_eq!(types[1..], rest[..]);
            }
            other => panic!("{other:?}"),
        }
    }
}
