//! Configuration of the asynchronous export jobs.

use std::time::Duration;

use crate::RateLimit;

/// How the export jobs (`POST /export/start`, `GET /export/{jobId}/files`, …) behave.
///
/// Times run on tokio's clock (like [`RateLimit`]): a test that pauses time controls a job's
/// progress with `tokio::time::advance`.
///
/// A job waits `enqueued` for one of [`max_running`](JobsConfig::max_running) slots, then runs:
/// its files appear one every [`file_interval`](JobsConfig::file_interval), and it completes
/// once every file has appeared and it has run for [`job_duration`](JobsConfig::job_duration).
///
/// ```
/// use iterable_export_mock::{JobsConfig, MockConfig, RateLimit};
/// use std::time::Duration;
///
/// let config = MockConfig::default().with_jobs(
///     JobsConfig::default()
///         .with_max_file_bytes(64 * 1024)
///         .with_job_duration(Duration::from_secs(5))
///         .with_file_interval(Duration::from_millis(500))
///         .with_rate_limit(RateLimit::unlimited()),
/// );
/// assert_eq!(config.jobs.max_running, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobsConfig {
    /// The most bytes a file holds (default 10 MB, Iterable's size; a file holds at least one
    /// record, so a single longer record makes a longer file).
    pub max_file_bytes: u64,
    /// The most bytes a job's files hold together (default 100 GB, Iterable's cap). A job whose
    /// window holds more stops there and reports `exportTruncated: true`.
    pub job_cap_bytes: u64,
    /// The shortest time a job runs before it is `completed` (default 2 s).
    pub job_duration: Duration,
    /// The time between two files appearing while a job runs (default 100 ms); the first file
    /// appears this long after the job starts running.
    pub file_interval: Duration,
    /// How long a file URL stays valid (default 30 minutes).
    pub url_expiry: Duration,
    /// How long a cancelled job stays `cancelling` before it is `cancelled` (default 1 s).
    pub cancel_duration: Duration,
    /// Jobs running at once (default 4); more stay `enqueued` until a slot frees. Read when
    /// the server starts.
    pub max_running: usize,
    /// Files per page of `GET /export/{jobId}/files` (default 10).
    pub files_per_page: usize,
    /// The limit that `POST /export/start` and `GET /export/{jobId}/files` share (default 1
    /// request per second).
    pub rate_limit: RateLimit,
    /// The limit of `DELETE /export/{jobId}` (default 1 request per second).
    pub cancel_rate_limit: RateLimit,
    /// A job whose files have all appeared stays `running` until the file host completed as
    /// many downloads of its files as it has files (default false): a client that downloads only
    /// once a job completed never sees it complete. A job over its cap reports
    /// `exportTruncated` only then.
    pub running_until_downloaded: bool,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_file_bytes: 10_000_000,
            job_cap_bytes: 100_000_000_000,
            job_duration: Duration::from_secs(2),
            file_interval: Duration::from_millis(100),
            url_expiry: Duration::from_secs(30 * 60),
            cancel_duration: Duration::from_secs(1),
            max_running: 4,
            files_per_page: 10,
            rate_limit: RateLimit::new(1, Duration::from_secs(1)),
            cancel_rate_limit: RateLimit::new(1, Duration::from_secs(1)),
            running_until_downloaded: false,
        }
    }
}

impl JobsConfig {
    /// Sets [`JobsConfig::max_file_bytes`].
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Sets [`JobsConfig::job_cap_bytes`].
    pub fn with_job_cap_bytes(mut self, bytes: u64) -> Self {
        self.job_cap_bytes = bytes;
        self
    }

    /// Sets [`JobsConfig::job_duration`].
    pub fn with_job_duration(mut self, duration: Duration) -> Self {
        self.job_duration = duration;
        self
    }

    /// Sets [`JobsConfig::file_interval`].
    pub fn with_file_interval(mut self, interval: Duration) -> Self {
        self.file_interval = interval;
        self
    }

    /// Sets [`JobsConfig::url_expiry`].
    pub fn with_url_expiry(mut self, expiry: Duration) -> Self {
        self.url_expiry = expiry;
        self
    }

    /// Sets [`JobsConfig::cancel_duration`].
    pub fn with_cancel_duration(mut self, duration: Duration) -> Self {
        self.cancel_duration = duration;
        self
    }

    /// Sets [`JobsConfig::max_running`].
    pub fn with_max_running(mut self, jobs: usize) -> Self {
        self.max_running = jobs;
        self
    }

    /// Sets [`JobsConfig::files_per_page`].
    pub fn with_files_per_page(mut self, files: usize) -> Self {
        self.files_per_page = files;
        self
    }

    /// Sets [`JobsConfig::rate_limit`].
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Sets [`JobsConfig::running_until_downloaded`].
    pub fn with_running_until_downloaded(mut self, hold: bool) -> Self {
        self.running_until_downloaded = hold;
        self
    }

    /// Sets [`JobsConfig::cancel_rate_limit`].
    pub fn with_cancel_rate_limit(mut self, limit: RateLimit) -> Self {
        self.cancel_rate_limit = limit;
        self
    }
}
