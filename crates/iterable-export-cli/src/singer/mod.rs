//! `iterable-export singer`: a Singer tap (for Meltano and any Singer target). `--discover`
//! prints the catalog; a sync writes SCHEMA, RECORD and STATE messages to standard output, and
//! logs to standard error.
//!
//! - `config.rs`: the config file; `catalog.rs`: streams, keys, schemas and selection;
//! - `draft4.rs`: schemas made Draft 4 and permissive;
//! - `fields.rs`: field selection (discovered metadata, deselected fields left out);
//! - `state.rs`: bookmarks (and tap-iterable's, migrated) and what each sync exports;
//! - `messages.rs`: the messages.
//!
//! A sync exports one selected stream after another with the engine `export` uses (windows,
//! rate limit, retries, splitting, look-back de-duplication), and emits a window's records only
//! once the window is complete, followed by a STATE whose bookmark says so: a sync started from
//! the last STATE a target saw continues exactly there.

mod catalog;
mod config;
mod draft4;
mod fields;
mod messages;
mod state;
mod types;

use std::path::PathBuf;

use chrono::{TimeDelta, Utc};
use iterable_export::{Client, Dedup, Sink, Window, WindowOptions};

use self::catalog::{Selected, Stream};
use self::config::Config;
use self::messages::Records;
use self::state::{Bookmark, State, next_pass};
use crate::args::Global;
use crate::ui::Ui;

/// `singer` options: what Meltano (or any Singer runner) passes to a tap.
#[derive(Debug, clap::Args)]
pub struct SingerArgs {
    /// The tap's JSON config: api_key and start_date (as tap-iterable names them), and
    /// optionally end_date, region, base_url, requests_per_minute, lookback.
    /// Example: --config config.json
    #[arg(long)]
    pub config: PathBuf,

    /// Print the catalog (every stream, its schema and metadata) and exit.
    #[arg(long)]
    pub discover: bool,

    /// The catalog: streams with `selected: true` in the metadata of their empty breadcrumb (else
    /// `selected-by-default: true`) are synced (default: every stream). Example: --catalog catalog.json
    #[arg(long, visible_alias = "properties")]
    pub catalog: Option<PathBuf>,

    /// The last STATE a target emitted: the sync continues exactly where it stopped.
    /// Example: --state state.json
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// Runs the tap; returns the exit code.
pub async fn run(args: SingerArgs, mut global: Global, ui: &Ui) -> u8 {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(err) => return crate::report(ui, "singer", &err),
    };
    for key in &config.unknown {
        ui.line(&format!(
            "warning: config key `{key}` is not used by this tap (it reads {})",
            config::KEYS.join(", ")
        ));
    }
    if args.discover {
        let catalog = catalog::discover();
        let text = serde_json::to_string_pretty(&catalog).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        return match std::io::Write::write_all(&mut out, format!("{text}\n").as_bytes()) {
            Ok(()) => 0,
            Err(source) => crate::report(
                ui,
                "singer",
                &iterable_export::Error::Io {
                    context: "cannot write the catalog".into(),
                    source,
                },
            ),
        };
    }
    global.api_key = Some(config.api_key.clone());
    if config.region.is_some() {
        global.region = config.region;
    }
    if config.base_url.is_some() {
        global.base_url = config.base_url.clone();
    }
    let result = async {
        // With api_key checked and region typed, what the client refuses is the base URL.
        let client = crate::client(&global, config.requests_per_minute).map_err(|err| match err {
            iterable_export::Error::Config(message) if config.base_url.is_some() => {
                iterable_export::Error::Config(format!("config key `base_url`: {message}"))
            }
            other => other,
        })?;
        sync(&client, &config, &args).await
    }
    .await;
    match result {
        Ok(()) => 0,
        Err(err) => crate::report(ui, "singer", &err),
    }
}

async fn sync(client: &Client, config: &Config, args: &SingerArgs) -> iterable_export::Result<()> {
    let streams = catalog::selected(args.catalog.as_deref())?;
    let names: Vec<String> = streams.iter().map(|s| s.stream.name()).collect();
    let mut state = match &args.state {
        Some(path) => State::load(path, &names)?,
        None => State::default(),
    };
    // Never past now: a bookmark in the future would skip, for good, what is created between
    // this sync and end_date.
    let now = Utc::now();
    let end = config.end_date.map_or(now, |end| end.min(now));
    let lookback = TimeDelta::from_std(config.lookback).unwrap_or(TimeDelta::zero());
    let mut out = messages::stdout()?;
    tracing::info!("syncing {} stream(s) up to {}", streams.len(), end.to_rfc3339());
    for Selected {
        stream,
        schema,
        deselected,
    } in streams
    {
        let name = stream.name();
        let mut wrapped = Records::new(out, stream, schema).deselecting(deselected);
        wrapped.write_schema().await?;
        let mut records = 0;
        // At most two passes: the end of an interrupted sync, then the new span.
        while let Some(pass) = next_pass(
            state.get(&name),
            stream.replication_key(),
            config.start_date,
            end,
            lookback,
        ) {
            let passed;
            (wrapped, state, passed) = run_pass(client, stream, &name, pass, wrapped, state).await?;
            records += passed;
        }
        out = wrapped.out;
        tracing::info!("{name}: {records} records");
    }
    out.write_unspooled(messages::state(state.to_value())).await?;
    out.finish().await?;
    Ok(())
}

/// Exports one pass of a stream; gives back the stream's records sink and the state.
async fn run_pass(
    client: &Client,
    stream: Stream,
    name: &str,
    pass: state::Pass,
    records: Records,
    state: State,
) -> iterable_export::Result<(Records, State, u64)> {
    let mut sink = Bookmarking {
        inner: Dedup::new(records, pass.seen, Some(pass.tail_from))
            .with_drop_until(pass.seen_until)
            .with_remembered(pass.remembered)
            .with_time_field(iterable_export::time_field(stream.data_type)),
        state,
        name: name.to_owned(),
        bookmark: pass.bookmark,
        attempt: 0,
        records: 0,
    };
    let options = WindowOptions::default();
    for span in &pass.spans {
        client
            .export(stream.data_type)
            .between(span.start, span.end)
            .export_windows(options, &mut sink)
            .await?;
    }
    let Bookmarking {
        inner, state, records, ..
    } = sink;
    Ok((inner.into_inner(), state, records))
}

/// Emits a STATE after each window's records, with the stream's bookmark advanced to the
/// window's end.
struct Bookmarking {
    inner: Dedup<Records>,
    state: State,
    name: String,
    bookmark: Bookmark,
    attempt: u64,
    records: u64,
}

impl Sink for Bookmarking {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.attempt = 0;
        self.inner.begin(window).await
    }

    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.attempt += 1;
        self.inner.record(record).await
    }

    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        let skipped = self.inner.skipped();
        self.inner.commit(window, records).await?;
        self.records += self.attempt - (self.inner.skipped() - skipped);
        self.bookmark.replication_key_value = window.end;
        self.bookmark.seen = self.inner.remaining_seen();
        self.bookmark.tail = self.inner.remembered().to_vec();
        self.state.set(&self.name, self.bookmark.clone());
        let message = messages::state(self.state.to_value());
        self.inner.inner_mut().out.write_unspooled(message).await?;
        tracing::info!("{}: window {window} done, {} records so far", self.name, self.records);
        Ok(())
    }

    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.inner.abort(window).await
    }
}
