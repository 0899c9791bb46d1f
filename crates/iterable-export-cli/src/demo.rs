//! `iterable-export demo`: a real export against the embedded mock server.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use iterable_export::{Client, DataType, Error, RateLimit, RetryPolicy};
use iterable_export_mock::{MockConfig, MockServer};

use crate::args::{DemoArgs, ExportArgs, FormatArg, Global};
use crate::export;
use crate::ui::Ui;

/// The demo's mock allows this many export requests per minute (Iterable allows 4), so the demo
/// finishes in seconds while still going through the client's rate limiter.
const DEMO_REQUESTS_PER_MINUTE: u32 = 600;
const DEMO_DATA_TYPES: [DataType; 3] = [DataType::EmailSend, DataType::EmailOpen, DataType::CustomEvent];
const DEMO_DAYS: i64 = 3;

pub async fn run(args: DemoArgs, global: &Global, ui: &Ui) -> Result<(), Error> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    let start = today - TimeDelta::days(DEMO_DAYS);
    let config = MockConfig::default()
        .with_records_per_day(args.records_per_day)
        .with_data_start(start.date_naive())
        .with_rate_limit(iterable_export_mock::RateLimit::new(
            DEMO_REQUESTS_PER_MINUTE,
            Duration::from_secs(60),
        ));
    let mock = MockServer::start(config.clone()).await.map_err(|e| Error::Io {
        context: "cannot start the mock server".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    ui.line(&format!(
        "demo: mock Iterable server at {} ({} records per day and data type, {} requests/min allowed)",
        mock.base_url(),
        args.records_per_day,
        DEMO_REQUESTS_PER_MINUTE
    ));
    let client = Client::builder()
        .api_key(mock.api_key())
        .base_url(mock.base_url())
        .rate_limit(RateLimit::per_minute(DEMO_REQUESTS_PER_MINUTE))
        .read_timeout(global.read_timeout)
        .retry_policy(RetryPolicy::default().with_max_retries(global.max_retries))
        .build()?;

    let started = Instant::now();
    let mut failure = None;
    for format in [FormatArg::Ndjson, FormatArg::Csv] {
        ui.line(&format!(
            "demo: exporting {} from {} to {} as {} into {}/",
            DEMO_DATA_TYPES.map(|d| d.to_string()).join(", "),
            start.format("%Y-%m-%d"),
            today.format("%Y-%m-%d"),
            iterable_export::Format::from(format).extension(),
            args.output.display()
        ));
        let export_args = ExportArgs {
            data_types: DEMO_DATA_TYPES.to_vec(),
            start: Some(start),
            end: Some(today),
            range: None,
            only_fields: Vec::new(),
            omit_fields: Vec::new(),
            format,
            output: args.output.clone(),
            window: Duration::from_secs(86_400),
            max_window: Duration::from_secs(86_400),
            state: None,
            requests_per_minute: DEMO_REQUESTS_PER_MINUTE,
            lookback: Duration::from_secs(300),
        };
        let results = export::run(&client, export_args, ui).await;
        for (name, result) in &results {
            match result {
                Ok(report) => {
                    let expected = iterable_export_mock::expected_count(&config, name, start, today).unwrap_or(0);
                    if report.records != expected {
                        failure = Some(Error::Decode {
                            line: 0,
                            offset: 0,
                            message: format!(
                                "{name}: exported {} records, the mock served {expected}",
                                report.records
                            ),
                        });
                    }
                }
                Err(err) => {
                    failure = Some(Error::Io {
                        context: format!("{name} failed"),
                        source: std::io::Error::other(err.to_string()),
                    })
                }
            }
        }
        export::print_summary(ui, &client, &results, started.elapsed());
    }
    mock.shutdown().await;
    if let Some(err) = failure {
        return Err(err);
    }
    ui.line(&format!(
        "demo: done — every file holds exactly the records the mock served; see {}/",
        args.output.display()
    ));
    Ok(())
}
