//! The public side of the asynchronous export jobs (`POST /export/start` and friends): what a
//! job exports ([`JobSpec`]), its states ([`JobState`]) and what a test can observe of it
//! ([`JobInfo`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::data::{DataType, FieldFilter, Layout, RecordStream, mix};
use crate::expected::expected_job_with_cap;
use crate::observe::{FileHostHit, JobCounters};
use crate::{ExpectedJob, JobFault, MockConfig, MockError, MockServer};

/// The name of a job's file number `n` (1-based): `file-<13 digits>.<ext>`, numbers growing by
/// an irregular step, so names sort in file order and cannot be counted through.
pub(crate) fn file_name(n: u64, format: JobFormat) -> String {
    let stamp = 1_704_067_200_000 + n * 1_009 + mix(n) % 997;
    format!("file-{stamp}.{}", format.extension())
}

/// A job's `outputFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobFormat {
    /// `text/csv`: every file starts with the header row; files are named `file-<n>.csv`.
    Csv,
    /// `application/x-json-stream`: one JSON record per line; files are named `file-<n>.json`.
    Ndjson,
}

impl JobFormat {
    /// The `outputFormat` value.
    pub fn as_str(self) -> &'static str {
        match self {
            JobFormat::Csv => "text/csv",
            JobFormat::Ndjson => "application/x-json-stream",
        }
    }

    /// The extension of the job's file names (`csv` or `json`).
    pub fn extension(self) -> &'static str {
        match self {
            JobFormat::Csv => "csv",
            JobFormat::Ndjson => "json",
        }
    }
}

impl FromStr for JobFormat {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text/csv" => Ok(JobFormat::Csv),
            "application/x-json-stream" => Ok(JobFormat::Ndjson),
            other => Err(MockError::InvalidParam(format!(
                "Invalid outputFormat: {other} (expected text/csv or application/x-json-stream)"
            ))),
        }
    }
}

/// What a job exports: a data type's records in `[start, end)`, in a format, with
/// `onlyFields`/`omitFields` (at most one of them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSpec {
    /// The `dataTypeName`.
    pub data_type: DataType,
    /// The `outputFormat`.
    pub format: JobFormat,
    /// Inclusive start of the window.
    pub start: DateTime<Utc>,
    /// Exclusive end of the window.
    pub end: DateTime<Utc>,
    /// `onlyFields` (the fields kept), if given.
    pub only_fields: Option<Vec<String>>,
    /// `omitFields` (the fields dropped), if given.
    pub omit_fields: Option<Vec<String>>,
}

impl JobSpec {
    /// All fields of `data_type` in `[start, end)`.
    ///
    /// ```
    /// use iterable_export_mock::{JobFormat, JobSpec, parse_datetime};
    /// let spec = JobSpec::new(
    ///     "emailSend",
    ///     JobFormat::Ndjson,
    ///     parse_datetime("2024-01-01").unwrap(),
    ///     parse_datetime("2024-01-03").unwrap(),
    /// )?
    /// .with_only_fields(&["email", "createdAt"]);
    /// assert_eq!(spec.only_fields.as_deref().map(<[String]>::len), Some(2));
    /// # Ok::<(), iterable_export_mock::MockError>(())
    /// ```
    pub fn new(
        data_type: &str,
        format: JobFormat,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Self, MockError> {
        Ok(JobSpec {
            data_type: data_type.parse()?,
            format,
            start,
            end,
            only_fields: None,
            omit_fields: None,
        })
    }

    /// Keeps only these fields (`onlyFields`).
    pub fn with_only_fields(mut self, fields: &[&str]) -> Self {
        self.only_fields = Some(fields.iter().map(|f| (*f).to_owned()).collect());
        self
    }

    /// Drops these fields (`omitFields`).
    pub fn with_omit_fields(mut self, fields: &[&str]) -> Self {
        self.omit_fields = Some(fields.iter().map(|f| (*f).to_owned()).collect());
        self
    }

    pub(crate) fn filter(&self) -> FieldFilter {
        match (&self.only_fields, &self.omit_fields) {
            (Some(only), _) => FieldFilter::Only(only.clone()),
            (None, Some(omit)) => FieldFilter::Omit(omit.clone()),
            (None, None) => FieldFilter::All,
        }
    }

    /// The job's records under `config`, and how each is written.
    pub(crate) fn records(&self, config: &MockConfig) -> (RecordStream, Layout) {
        let records = RecordStream::new(config.data_params(), self.data_type, self.start, self.end);
        let filter = self.filter();
        let layout = match self.format {
            JobFormat::Ndjson => Layout::Ndjson(filter),
            JobFormat::Csv => Layout::Csv(records.columns().into_iter().filter(|c| filter.keeps(c)).collect()),
        };
        (records, layout)
    }
}

/// The state of a job, as the API sends it (lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for one of the organisation's running slots.
    Enqueued,
    /// Preparing files (they appear while it runs).
    Running,
    /// Every file is listed.
    Completed,
    /// The job failed (files listed before stay listed).
    Failed,
    /// A `DELETE` arrived; the job stops.
    Cancelling,
    /// Stopped by a `DELETE`.
    Cancelled,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 6] = [
        JobState::Enqueued,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelling,
        JobState::Cancelled,
    ];

    /// The lowercase name the API sends.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Enqueued => "enqueued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelling => "cancelling",
            JobState::Cancelled => "cancelled",
        }
    }

    /// True for the states a job never leaves (completed, failed, cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = MockError;

    /// Case-insensitive (`Completed` and `completed` are the same state).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| MockError::InvalidParam(format!("Invalid jobState: {s}")))
    }
}

/// A snapshot of one job, for tests ([`MockServer::jobs`](crate::MockServer::jobs)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobInfo {
    /// The `jobId`.
    pub id: i64,
    /// What it exports.
    pub spec: JobSpec,
    /// Its state now.
    pub state: JobState,
    /// The names of the files that have appeared, in order.
    pub files: Vec<String>,
    /// Bytes of those files together (`bytesExported`).
    pub bytes_ready: u64,
    /// True once the job reached its size cap (`exportTruncated`).
    pub truncated: bool,
    /// True once a `DELETE /export/{jobId}` for it was accepted.
    pub cancel_requested: bool,
    /// How often it went from `running` back to `enqueued`.
    pub restarts: u32,
    /// Requests to `GET /export/{jobId}/files` for it (answered 200 or not).
    pub file_listings: u64,
    /// Downloads of its files that ended with the whole file sent.
    pub complete_downloads: u64,
    /// Those of them that ended while the job was enqueued or running.
    pub downloads_while_running: u64,
}

/// The export jobs, seen from a test.
impl MockServer {
    /// The base URL of the file host (the host of the job files' pre-signed URLs), e.g.
    /// `http://127.0.0.1:41236`: another port standing for another host.
    pub fn file_host_base_url(&self) -> String {
        self.shared.file_host_base.clone()
    }

    /// Queues a fault for the export jobs (see [`JobFault`] for which job takes it).
    pub fn inject_job_fault(&self, fault: JobFault) {
        self.shared.jobs.inject(fault);
    }

    /// The job faults still queued.
    pub fn pending_job_faults(&self) -> Vec<JobFault> {
        self.shared.jobs.pending_faults()
    }

    /// Removes every queued job fault (jobs keep the faults they took).
    pub fn clear_job_faults(&self) {
        self.shared.jobs.clear_faults();
    }

    /// Every job started on this server, oldest first.
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.shared.jobs.all().iter().map(|j| j.info()).collect()
    }

    /// The job with this id, if any.
    pub fn job(&self, id: i64) -> Option<JobInfo> {
        self.shared.jobs.get(id).map(|j| j.info())
    }

    /// A snapshot of the jobs' and the file host's counters.
    pub fn job_counters(&self) -> JobCounters {
        self.shared.jobs.counters()
    }

    /// The requests the file host received, oldest first.
    pub fn file_host_hits(&self) -> Vec<FileHostHit> {
        crate::server::lock(&self.shared.jobs.hits).clone()
    }

    /// True when any request to the file host carried an `Api-Key` header or the key's value
    /// anywhere (see [`JobCounters::api_key_leaks`]).
    pub fn file_host_received_api_key(&self) -> bool {
        self.shared.jobs.counters().api_key_leaks > 0
    }

    /// The files job `id` serves once it completed (with its own configuration and cap), or an
    /// error if there is no such job.
    pub fn expected_job(&self, id: i64) -> Result<ExpectedJob, MockError> {
        let job = self
            .shared
            .jobs
            .get(id)
            .ok_or_else(|| MockError::InvalidParam(format!("no export job {id}")))?;
        Ok(expected_job_with_cap(&job.config, &job.spec, job.cap()))
    }
}
