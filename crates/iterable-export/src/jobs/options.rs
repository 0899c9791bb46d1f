//! How an export through jobs runs: its limits and observers ([`JobOptions`]), and where an
//! interrupted one continues ([`JobResume`]).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::Window;

/// Called with each window's job id when the job is started or resumed.
pub type JobObserver = Arc<dyn Fn(&Window, i64) + Send + Sync>;

/// Where an interrupted export through jobs stopped inside a window: the window's job, and the
/// last of its files the sink made permanent ([`Sink::job_file_done`](crate::Sink::job_file_done)), if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct JobResume {
    /// The window the job exports.
    pub window: Window,
    /// The job's id.
    pub job_id: i64,
    /// The last file whose records are permanent in the sink; the job continues after it.
    pub after_file: Option<String>,
}

impl JobResume {
    /// Job `job_id` of `window`, continued after `after_file` (from its first file when `None`).
    pub fn new(window: Window, job_id: i64, after_file: Option<String>) -> Self {
        JobResume {
            window,
            job_id,
            after_file,
        }
    }
}

/// How a windowed export runs its jobs. Start from [`JobOptions::default`] (4 parallel
/// downloads; at most 32 spool files on disk; 3 jobs started ahead, so with the current one
/// Iterable's 4 at once; 3 retries of a failed job; spool files in the system's temporary
/// directory) and adjust with the `with_*` methods.
///
/// ```
/// use iterable_export::JobOptions;
///
/// let options = JobOptions::default().with_downloads(8).with_job_retries(1);
/// assert_eq!(options.downloads, 8);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct JobOptions {
    /// Files downloaded at once (0 acts as 1). Memory is bounded by the downloads in flight:
    /// each file goes to a temporary file, and only complete files are read back.
    pub downloads: usize,
    /// Files of the window being exported on disk at once, at most (0 acts as 1): downloading,
    /// downloaded and waiting (files download as soon as they are listed, while the job still
    /// runs, but reach the sink only once it completed), or being delivered. Iterable's files
    /// hold at most 10 MB, so the default 32 bounds the spool at about 320 MB. Fewer than
    /// `downloads + 2` limits the parallel downloads; a full spool holds the next downloads
    /// back until the job completed and its first files were delivered.
    pub spool_files: usize,
    /// Jobs of later windows started while a window downloads, so that Iterable prepares them
    /// meanwhile (bounded by the client's job slots).
    pub lookahead: usize,
    /// Jobs started again for a window whose job failed, before the export fails naming it.
    pub job_retries: u32,
    /// Where downloaded files wait until complete (default: the system's temporary directory).
    pub spool_dir: Option<PathBuf>,
    /// Jobs to continue instead of starting new ones, for their windows (a resumed run).
    pub resume: Vec<JobResume>,
    /// Told every window's job id (to remember it for a resumed run).
    pub observer: Option<JobObserver>,
}

impl fmt::Debug for JobOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobOptions")
            .field("downloads", &self.downloads)
            .field("spool_files", &self.spool_files)
            .field("lookahead", &self.lookahead)
            .field("job_retries", &self.job_retries)
            .field("spool_dir", &self.spool_dir)
            .field("resume", &self.resume)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            downloads: 4,
            spool_files: 32,
            lookahead: 3,
            job_retries: 3,
            spool_dir: None,
            resume: Vec::new(),
            observer: None,
        }
    }
}

impl JobOptions {
    /// Sets how many files download at once.
    pub fn with_downloads(mut self, downloads: usize) -> Self {
        self.downloads = downloads;
        self
    }

    /// Sets how many job files may be on disk at once ([`spool_files`](Self::spool_files)).
    pub fn with_spool_files(mut self, files: usize) -> Self {
        self.spool_files = files;
        self
    }

    /// Sets how many jobs of later windows are started ahead.
    pub fn with_lookahead(mut self, lookahead: usize) -> Self {
        self.lookahead = lookahead;
        self
    }

    /// Sets how many times a window whose job failed is tried with a new job.
    pub fn with_job_retries(mut self, retries: u32) -> Self {
        self.job_retries = retries;
        self
    }

    /// Sets where downloaded files wait.
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// Continues a job for its window instead of starting a new one (may be given for several
    /// windows). A job that cannot be listed any more is replaced by a new one, unless some of
    /// its files were already made permanent (then the export fails naming the job). A job
    /// without such files whose window the export no longer plans, but overlaps, is cancelled.
    pub fn with_resume(mut self, resume: JobResume) -> Self {
        self.resume.push(resume);
        self
    }

    /// Calls `observer` with each window's job id.
    pub fn with_observer(mut self, observer: impl Fn(&Window, i64) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }
}
