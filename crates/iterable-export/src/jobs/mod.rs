//! Asynchronous export jobs (`POST /export/start` and friends): [`ExportJobRequest`] starts a
//! job, [`ExportJob`] lists its files as they appear, `download.rs` fetches a file from its
//! pre-signed URL without the API key, `spool.rs` downloads a window's files while its job runs
//! and hands them on in name order once it completed, and `windows.rs` feeds whole windows
//! through the same
//! [`Sink`](crate::Sink) machinery as `data.json` exports (`starting.rs` starts a window's job in
//! a task of its own, `resume.rs` fits the windows around resumed jobs). `orphans.rs` finds and
//! cancels the job a failed start may have created.

mod download;
mod job;
mod options;
mod orphans;
mod resume;
mod spool;
mod starting;
mod state;
mod windows;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use iterable_export_gen::types::{StartExportRequest, StartExportRequestOutputFormat};

pub use self::job::{ExportJob, JobFile};
pub use self::options::{JobObserver, JobOptions, JobResume};
pub use self::state::{JobState, UnknownJobState};
use crate::rate_limit::Limiter;
use crate::{Client, DataType, Export, Format, RateLimit, Result};

/// Iterable's limit on starting jobs and listing their files: 1 request per second per
/// organization.
pub(crate) const DEFAULT_JOBS_RATE_LIMIT: RateLimit = RateLimit::new(1, Duration::from_secs(1));

/// Iterable's limit on cancelling jobs: 1 request per second per project.
const CANCEL_RATE_LIMIT: RateLimit = RateLimit::new(1, Duration::from_secs(1));

/// Iterable runs at most 4 jobs per organization at once.
pub(crate) const DEFAULT_MAX_RUNNING_JOBS: usize = 4;

/// How jobs without new files are polled ([`ClientBuilder::job_polling`](crate::ClientBuilder::job_polling)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Polling {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) give_up_after: Duration,
}

impl Default for Polling {
    /// What a production client (Estuary's) does: 1 s doubling up to 300 s, giving up after 24 h.
    fn default() -> Self {
        Polling {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// What every clone of a client shares for export jobs.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Start, files and cancel requests.
    pub(crate) limiter: Arc<Limiter>,
    /// Cancel requests besides: Iterable's own limit for them.
    pub(crate) cancels: Arc<Limiter>,
    /// One permit per job that may run at once.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    /// Downloads of file URLs: no API key.
    pub(crate) downloads: reqwest::Client,
    /// Jobs this client started or resumed that are still enqueued or running.
    pub(crate) active: Mutex<BTreeSet<i64>>,
    /// Held by one start at a time, from noting the project's jobs to knowing its job's id: the
    /// jobs that appear meanwhile are that start's (see `orphans.rs`).
    pub(crate) starting: tokio::sync::Mutex<()>,
    /// Starts whose export was dropped while their request was out: they finish, and cancel
    /// the job they got ([`Client::settle_abandoned_starts`]).
    pub(crate) abandoned: Mutex<Vec<tokio::task::JoinHandle<Option<i64>>>>,
    pub(crate) counters: JobCounters,
    pub(crate) polling: Polling,
}

impl Shared {
    pub(crate) fn new(limit: RateLimit, max_running: usize, polling: Polling, downloads: reqwest::Client) -> Self {
        Shared {
            limiter: Limiter::new(limit),
            cancels: Limiter::new(CANCEL_RATE_LIMIT),
            slots: Arc::new(tokio::sync::Semaphore::new(max_running.max(1))),
            downloads,
            active: Mutex::new(BTreeSet::new()),
            starting: tokio::sync::Mutex::new(()),
            abandoned: Mutex::new(Vec::new()),
            counters: JobCounters::default(),
            polling,
        }
    }

    pub(crate) fn active(&self) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
        // Every update is one insert or remove: the set stays consistent after a panic.
        self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn abandoned(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<Option<i64>>>> {
        // Every update is one push or take.
        self.abandoned.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Counters behind [`JobStats`].
#[derive(Debug, Default)]
pub(crate) struct JobCounters {
    pub(crate) enqueued: AtomicU64,
    pub(crate) running: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) files_listed: AtomicU64,
    pub(crate) files_downloaded: AtomicU64,
    pub(crate) bytes_downloaded: AtomicU64,
    pub(crate) downloads_retried: AtomicU64,
    pub(crate) files_discarded: AtomicU64,
    pub(crate) urls_refreshed: AtomicU64,
    pub(crate) orphans_cancelled: AtomicU64,
    pub(crate) stale_cancelled: AtomicU64,
}

impl JobCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(1)));
    }

    fn gauge(&self, state: Option<JobState>) -> Option<&AtomicU64> {
        match state? {
            JobState::Enqueued => Some(&self.enqueued),
            JobState::Running => Some(&self.running),
            _ => None,
        }
    }

    /// A job moved from `old` to `new` (`None`: not seen before / gone).
    pub(crate) fn transition(&self, old: Option<JobState>, new: Option<JobState>) {
        if old == new {
            return;
        }
        if let Some(gauge) = self.gauge(old) {
            Self::sub(gauge);
        }
        if let Some(gauge) = self.gauge(new) {
            Self::add(gauge, 1);
        }
        if new == Some(JobState::Completed) {
            Self::add(&self.done, 1);
        }
    }
}

/// What the export jobs of a client (and its clones) did so far: [`Client::job_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobStats {
    /// Jobs waiting to run now.
    pub enqueued: u64,
    /// Jobs running now.
    pub running: u64,
    /// Jobs seen completed.
    pub done: u64,
    /// Files listed.
    pub files_listed: u64,
    /// Files downloaded completely.
    pub files_downloaded: u64,
    /// Bytes of completely downloaded files.
    pub bytes_downloaded: u64,
    /// Downloads started again (a cut body, a transient error).
    pub downloads_retried: u64,
    /// Files downloaded (or downloading) while their job ran, deleted undelivered because the
    /// job then reported `exportTruncated` or failed.
    pub files_discarded: u64,
    /// Expired URLs replaced by listing their page again.
    pub urls_refreshed: u64,
    /// Jobs found at Iterable after a start failed in a way that does not say whether the job
    /// was created (a 5xx, a timeout, a lost connection), and cancelled.
    pub orphans_cancelled: u64,
    /// Jobs of a resumed export, remembered without delivered files, whose windows the export
    /// no longer plans: cancelled.
    pub stale_cancelled: u64,
}

impl Client {
    /// Starts configuring an asynchronous export job of `data_type` (`POST /export/start`):
    /// Iterable prepares the export in files of at most 10 MB, downloaded in parallel from
    /// pre-signed URLs. Choose the span with [`ExportJobRequest::between`], the fields and the
    /// format, then [`start`](ExportJobRequest::start) one job or run windows into a sink with
    /// [`export_windows`](ExportJobRequest::export_windows).
    ///
    /// ```no_run
    /// use chrono::{TimeZone, Utc};
    /// use iterable_export::{Client, DataType, FileSink, Format, JobOptions, WindowOptions};
    ///
    /// # async fn demo(client: Client) -> iterable_export::Result<()> {
    /// let start = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap();
    /// let end = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    /// let mut sink = FileSink::create("email-sends.ndjson")?;
    /// let summary = client
    ///     .export_job(DataType::EmailSend)
    ///     .between(start, end)
    ///     .export_windows(WindowOptions::default(), JobOptions::default(), &mut sink)
    ///     .await?;
    /// sink.finish().await?;
    /// println!("{} records", summary.records);
    /// # Ok(()) }
    /// ```
    pub fn export_job(&self, data_type: DataType) -> ExportJobRequest {
        ExportJobRequest {
            export: self.export(data_type),
        }
    }

    /// What this client's export jobs did so far.
    pub fn job_stats(&self) -> JobStats {
        let c = &self.jobs_shared().counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        JobStats {
            enqueued: get(&c.enqueued),
            running: get(&c.running),
            done: get(&c.done),
            files_listed: get(&c.files_listed),
            files_downloaded: get(&c.files_downloaded),
            bytes_downloaded: get(&c.bytes_downloaded),
            downloads_retried: get(&c.downloads_retried),
            files_discarded: get(&c.files_discarded),
            urls_refreshed: get(&c.urls_refreshed),
            orphans_cancelled: get(&c.orphans_cancelled),
            stale_cancelled: get(&c.stale_cancelled),
        }
    }

    /// Waits until the job starts of dropped exports have ended, each cancelling the job it got.
    /// A windowed export dropped (for example on Ctrl-C) while a `POST /export/start` was on
    /// its way lets that start finish in the background instead of leaving a job nobody knows
    /// of; call this before the program exits. Returns the ids of the jobs so cancelled.
    pub async fn settle_abandoned_starts(&self) -> Vec<i64> {
        let mut cancelled = Vec::new();
        loop {
            let pending: Vec<_> = std::mem::take(&mut *self.jobs_shared().abandoned());
            if pending.is_empty() {
                return cancelled;
            }
            for task in pending {
                if let Ok(Some(id)) = task.await {
                    cancelled.push(id);
                }
            }
        }
    }

    /// The ids of the jobs this client (and its clones) started or resumed that were last seen
    /// enqueued or running: what to cancel when the program is interrupted.
    pub fn active_jobs(&self) -> Vec<i64> {
        self.jobs_shared().active().iter().copied().collect()
    }

    /// Cancels job `job_id` (`DELETE /export/{jobId}`), retrying transient failures. Cancels
    /// wait for the same limiter as starts and listings, so a 429 holds them all back instead
    /// of being retried at once, and besides for Iterable's own limit on cancels (1 per second
    /// per project).
    ///
    /// # Errors
    /// The API's error (404 for an unknown job, 400 for a job that already ended).
    pub async fn cancel_job(&self, job_id: i64) -> Result<()> {
        let result = self
            .with_retries(crate::client::Throttle::JobsLimit, || async {
                self.jobs_shared().cancels.acquire().await;
                let sent = self.generated().cancel_export().job_id(job_id).send().await;
                match sent {
                    Ok(_) => Ok(()),
                    Err(err) => Err(crate::error::from_generated(err, self.timeouts()).await),
                }
            })
            .await;
        if result.is_ok() {
            self.jobs_shared().active().remove(&job_id);
        }
        result
    }
}

impl Export {
    /// The same export (data type, dates, fields) through asynchronous export jobs.
    pub fn into_job(self) -> ExportJobRequest {
        ExportJobRequest { export: self }
    }
}

/// An export job to start: the span, fields and format of [`Client::export_job`]. Cheap to
/// clone; each [`start`](Self::start) starts a new job.
#[derive(Debug, Clone)]
pub struct ExportJobRequest {
    export: Export,
}

impl ExportJobRequest {
    /// Exports records created in `[start, end)` (users: updated, by `profileUpdatedAt`).
    pub fn between(self, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        ExportJobRequest {
            export: self.export.between(start, end),
        }
    }

    /// Exports only these fields (wire names).
    pub fn only_fields<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExportJobRequest {
            export: self.export.only_fields(fields),
        }
    }

    /// Exports every field but these.
    pub fn omit_fields<I, S>(self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExportJobRequest {
            export: self.export.omit_fields(fields),
        }
    }

    /// The data type being exported.
    pub fn data_type(&self) -> DataType {
        self.export.data_type()
    }

    /// The `[start, end)` dates, when given.
    pub fn dates(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.export.dates()
    }

    /// The client this request uses.
    pub fn client(&self) -> &Client {
        self.export.client()
    }

    /// Checks the request without sending it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest) saying what to fix.
    pub fn validate(&self) -> Result<()> {
        self.export.validate()
    }

    /// The same request for another window.
    pub(crate) fn for_window(&self, window: &crate::Window) -> Self {
        self.clone().between(window.start, window.end)
    }

    fn body(&self, format: Format) -> StartExportRequest {
        let (only_fields, omit_fields) = self.export.field_lists();
        let (start, end) = self
            .export
            .dates()
            .map_or((None, None), |(start, end)| (Some(start), Some(end)));
        StartExportRequest {
            campaign_id: None,
            data_type_name: self.export.data_type().to_string(),
            delimiter: None,
            start_date_time: start.map(crate::export::format_iterable_time_trunc),
            end_date_time: end.map(crate::export::format_iterable_time_trunc),
            omit_fields,
            only_fields,
            output_format: match format {
                Format::Ndjson => StartExportRequestOutputFormat::ApplicationXJsonStream,
                Format::Csv => StartExportRequestOutputFormat::TextCsv,
            },
        }
    }

    /// Starts a job (`POST /export/start`) once one of the client's job slots is free
    /// ([`ClientBuilder::max_running_jobs`](crate::ClientBuilder::max_running_jobs)); the slot is
    /// held until the job is seen completed, failed or cancelled, or the [`ExportJob`] dropped.
    ///
    /// Starts of a client run one at a time. A start that fails without saying whether Iterable
    /// created the job (a 5xx, a timeout, a connection lost) looks for that job in
    /// `GET /export/jobs` (a job of the data type, enqueued or running, that appeared since a
    /// list taken before the start) and cancels it before it is tried again, so no job runs
    /// unknown beside the next one ([`JobStats::orphans_cancelled`]). Cancelled rather than
    /// adopted: the list does not say a job's window, format or fields.
    ///
    /// # Errors
    /// Validation errors before sending (a job needs dates, or none for all of time; a
    /// predefined range other than that is refused); the API's error.
    pub async fn start(&self, format: Format) -> Result<ExportJob> {
        self.start_with(format, None, None).await
    }

    /// [`start`](Self::start) with `permit` as its job slot (`None`: wait for one), setting
    /// `sending` once a job slot is held, just before the request is sent (from then on,
    /// dropping the future may leave a started job behind).
    pub(crate) async fn start_with(
        &self,
        format: Format,
        sending: Option<&std::sync::atomic::AtomicBool>,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<ExportJob> {
        self.validate()?;
        if self.export.predefined_range().is_some() {
            return Err(crate::Error::InvalidRequest(
                "export jobs take dates, not a predefined range: use between(start, end)".into(),
            ));
        }
        let client = self.client();
        let permit = match permit {
            Some(permit) => Some(permit),
            None => client.jobs_shared().slots.clone().acquire_owned().await.ok(),
        };
        // One start at a time: the jobs that appear at Iterable between noting the project's
        // jobs and learning this job's id are this start's.
        let _one_at_a_time = client.jobs_shared().starting.lock().await;
        if let Some(flag) = sending {
            flag.store(true, Ordering::SeqCst);
        }
        let orphans = orphans::Orphans::note(client, self.data_type()).await;
        let body = self.body(format);
        let job_id = client
            .with_retries(crate::client::Throttle::JobsLimit, || async {
                let sent = client.generated().start_export().body(body.clone()).send().await;
                match sent {
                    Ok(response) => Ok(response.into_inner().job_id),
                    Err(err) => {
                        let err = crate::error::from_generated(err, client.timeouts()).await;
                        // Before the start is tried again: the job it may have created.
                        orphans.after_failure(&err).await;
                        Err(err)
                    }
                }
            })
            .await?;
        // A job an earlier attempt created late (after the last look).
        orphans.after_success(job_id).await;
        tracing::info!(data_type = %self.data_type(), job_id, "export job started");
        Ok(ExportJob::new(client.clone(), job_id, format, permit))
    }

    /// Continues job `job_id`, started earlier (by this or another process) with this
    /// request's span, fields and format: its files are listed from the first.
    pub async fn resume(&self, job_id: i64, format: Format) -> Result<ExportJob> {
        self.resume_with(job_id, format, None).await
    }

    /// [`resume`](Self::resume) with `permit` as its job slot (`None`: wait for one).
    pub(crate) async fn resume_with(
        &self,
        job_id: i64,
        format: Format,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<ExportJob> {
        self.validate()?;
        let client = self.client();
        let permit = match permit {
            Some(permit) => Some(permit),
            None => client.jobs_shared().slots.clone().acquire_owned().await.ok(),
        };
        Ok(ExportJob::new(client.clone(), job_id, format, permit))
    }
}
