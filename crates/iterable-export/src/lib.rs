//! Fast, complete and safe exports from [Iterable](https://iterable.com)'s Export API.
//!
//! - [`Client`]: API key, US/EU [`Region`] or a base URL override, connect and read timeouts
//!   (and deliberately no total timeout), one shared rate limiter and retries.
//! - [`Client::export`]: `/export/data.json` and `/export/data.csv` as streams — raw
//!   [`Lines`], typed [`Event`]s via [`Records`], or [`CsvRecords`] — decoded incrementally
//!   with bounded memory, correct for any chunking of the body. The user table
//!   ([`DataType::User`], windowed by `profileUpdatedAt`) decodes into [`User`]s
//!   ([`Export::users`]).
//! - [`Client::user_events`] and [`Client::experiment_metrics`] for the other two endpoints.
//! - [`Export::export_windows`]: long exports split into windows, each retried or split when
//!   the server cuts it off, delivered to a [`Sink`] exactly once ([`FileSink`],
//!   [`WriterSink`], [`Dedup`]).
//! - One [`Error`] type that never contains the API key.
//!
//! # Example
//!
//! ```no_run
//! use chrono::{Duration, Utc};
//! use futures::TryStreamExt;
//! use iterable_export::{Client, DataType, Region};
//!
//! # async fn demo() -> iterable_export::Result<()> {
//! let client = Client::builder().api_key("my-server-side-key").region(Region::Us).build()?;
//! let end = Utc::now();
//! let mut events = client
//!     .export(DataType::EmailSend)
//!     .between(end - Duration::days(1), end)
//!     .ndjson()
//!     .await?;
//! let mut count = 0;
//! while let Some(event) = events.try_next().await? {
//!     if event.campaign_id == Some(42) {
//!         count += 1;
//!     }
//! }
//! println!("{count} sends of campaign 42");
//! # Ok(()) }
//! ```
//!
//! Requests go through the spec-generated client in the `iterable-export-gen` crate; this crate
//! adds what the spec does not say (see `docs/iterable-api.md` in the repository): Iterable's
//! `yyyy-MM-dd HH:mm:ss` dates and `2021-04-14 16:25:55 +00:00` timestamps, NDJSON from
//! `userEvents`, error bodies that are JSON, HTML or nothing, and the 4 requests per minute limit.
#![deny(missing_docs)]

mod client;
mod decode;
mod error;
mod event;
mod export;
mod jobs;
mod rate_limit;
mod region;
mod retry;
mod sink;
mod stats;
mod windows;

pub use client::{ApiKey, Client, ClientBuilder};
pub use decode::*;
pub use error::{Error, Result};
pub use event::*;
pub use export::{
    ALL_DATA_TYPES, Body, DataType, ExperimentMetricsRequest, Export, Format, MAX_METRICS_IDS, Range,
    UserEventsRequest, format_iterable_time,
};
pub use jobs::{
    ExportJob, ExportJobRequest, JobFile, JobObserver, JobOptions, JobResume, JobState, JobStats, UnknownJobState,
};
pub use rate_limit::{MAX_RETRY_AFTER, RateLimit};
pub use region::Region;
pub use retry::RetryPolicy;
pub use sink::{
    Dedup, ExclusiveLock, FileSink, RecordId, WriterSink, part_path, remove_stale_temporaries, sync_parent_dir,
    write_file_atomically, write_file_atomically_with,
};
#[cfg(feature = "parquet")]
pub use sink::{EXTRA_COLUMN, ParquetCompression, ParquetOptions, ParquetSink, Partition};
pub use stats::Stats;
pub use windows::{Sink, Window, WindowOptions, WindowedSummary, plan_windows};
