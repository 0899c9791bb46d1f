//! Decodes every record of one export window into [`Event`](iterable_export::Event) and prints
//! how many there were. Used by the end-to-end benchmark (`bench/e2e.sh`).
//!
//! ```sh
//! cargo run --release -p iterable-export --example decode_events -- \
//!     --base-url http://127.0.0.1:8080/api --api-key test-api-key \
//!     --data-type emailSend --start 2024-01-01 --end 2024-01-02
//! ```
//!
//! Prints `records=N other_fields=U seconds=S` on standard output: `other_fields` is the number
//! of fields beyond `Event`'s typed ones, kept as raw JSON (preserved, not dropped), `seconds` the
//! time from sending the request to the last record.

use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use iterable_export::{Client, DataType, RateLimit};

struct Args {
    base_url: String,
    api_key: String,
    data_type: DataType,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

fn parse_day(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|e| format!("not a date (YYYY-MM-DD or RFC 3339): {s}: {e}"))
}

fn parse_args() -> Result<Args, String> {
    let mut base_url = None;
    let mut api_key = std::env::var("ITERABLE_API_KEY").ok();
    let mut data_type = DataType::EmailSend;
    let mut start = None;
    let mut end = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--base-url" => base_url = Some(value()?),
            "--api-key" => api_key = Some(value()?),
            "--data-type" => {
                let v = value()?;
                data_type = v.parse().map_err(|_| format!("unknown data type: {v}"))?;
            }
            "--start" => start = Some(parse_day(&value()?)?),
            "--end" => end = Some(parse_day(&value()?)?),
            "-h" | "--help" => {
                return Err(
                    "usage: decode_events --base-url URL [--api-key KEY] [--data-type emailSend] \
                            --start DATE --end DATE"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Args {
        base_url: base_url.ok_or("--base-url is required")?,
        api_key: api_key.ok_or("--api-key (or ITERABLE_API_KEY) is required")?,
        data_type,
        start: start.ok_or("--start is required")?,
        end: end.ok_or("--end is required")?,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("decode_events: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("decode_events: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> iterable_export::Result<()> {
    let client = Client::builder()
        .api_key(args.api_key)
        .base_url(args.base_url)
        .rate_limit(RateLimit::per_minute(600))
        .build()?;
    let started = Instant::now();
    let mut events = client
        .export(args.data_type)
        .between(args.start, args.end)
        .ndjson()
        .await?;
    let mut records: u64 = 0;
    let mut other: u64 = 0;
    while let Some(event) = events.try_next().await? {
        records += 1;
        other += event.other_fields().count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("records={records} other_fields={other} seconds={seconds:.3}");
    Ok(())
}
