//! The export jobs: the registry the handlers share, each job's state, and the task that drives
//! a job through its states on tokio's clock (wait for a running slot, let files appear one by
//! one, restart or fail when a fault says so, complete).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::state::lock;
use crate::data::{FilePiece, FileSplitter, mix};
use crate::observe::{FileHostHit, JobCounters};
use crate::{JobFault, JobInfo, JobSpec, JobState, MockConfig};

/// The id of the n-th job is `JOB_ID_BASE + n`.
pub(crate) const JOB_ID_BASE: i64 = 1_000_000;

/// The clock of the jobs: tokio's (for progress and URL expiry) and the wall clock shown in
/// `scheduledStartTime`/`endTime` (the configured fixed clock, moving with tokio's, or the
/// system clock).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: Instant,
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    pub(crate) fn wall(&self) -> DateTime<Utc> {
        match self.fixed {
            Some(t) => t + self.epoch.elapsed(),
            None => Utc::now(),
        }
    }

    /// Milliseconds of tokio's clock since the server started (the URLs' expiry times).
    pub(crate) fn millis(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The faults one job took when it started.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobFaults {
    fail_after: Option<u32>,
    /// `(after_files, pause)`, in the order injected.
    restarts: Vec<(u32, Duration)>,
    cap: Option<u64>,
    /// Its start answers 500 ([`JobFault::StartError`]).
    start_error: bool,
}

/// One file of a job.
#[derive(Debug, Clone)]
pub(crate) struct JobFile {
    pub(crate) name: String,
    pub(crate) piece: FilePiece,
}

/// What changes while a job runs.
#[derive(Debug)]
pub(crate) struct JobData {
    pub(crate) state: JobState,
    pub(crate) files: Vec<JobFile>,
    pub(crate) bytes: u64,
    pub(crate) truncated: bool,
    pub(crate) scheduled_start: Option<DateTime<Utc>>,
    pub(crate) end_time: Option<DateTime<Utc>>,
    pub(crate) cancel_requested: bool,
    pub(crate) restarts: u32,
    /// Requests to the files endpoint so far (the call numbers of [`JobFault::FilesError`]).
    pub(crate) file_listings: u64,
    pub(crate) complete_downloads: u64,
    pub(crate) downloads_while_running: u64,
    /// Listings still to hand out expired URLs ([`JobFault::ExpiredUrls`]).
    pub(crate) expired_listings: u32,
    /// Calls of the files endpoint that answer 500 ([`JobFault::FilesError`]).
    pub(crate) failing_calls: Vec<u32>,
    /// `(file number, bytes)`: files whose next download is cut ([`JobFault::CutFile`]).
    pub(crate) cuts: Vec<(u32, u64)>,
}

impl JobData {
    /// Moves to `state`, unless the job is final already or is being cancelled (then only
    /// `cancelled` is taken).
    fn set(&mut self, state: JobState) {
        if self.state.is_final() || (self.state == JobState::Cancelling && state != JobState::Cancelled) {
            return;
        }
        self.state = state;
    }
}

/// A job.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: i64,
    pub(crate) spec: JobSpec,
    /// The configuration when it started (its data and its timing).
    pub(crate) config: MockConfig,
    faults: JobFaults,
    clock: Clock,
    cancel: watch::Sender<bool>,
    /// Complete downloads of its files so far ([`JobsConfig::running_until_downloaded`](crate::JobsConfig)).
    pub(crate) downloaded: watch::Sender<u64>,
    pub(crate) data: Mutex<JobData>,
}

impl Job {
    pub(crate) fn info(&self) -> JobInfo {
        let d = lock(&self.data);
        JobInfo {
            id: self.id,
            spec: self.spec.clone(),
            state: d.state,
            files: d.files.iter().map(|f| f.name.clone()).collect(),
            bytes_ready: d.bytes,
            truncated: d.truncated,
            cancel_requested: d.cancel_requested,
            restarts: d.restarts,
            file_listings: d.file_listings,
            complete_downloads: d.complete_downloads,
            downloads_while_running: d.downloads_while_running,
        }
    }

    fn set_running(&self) {
        let mut d = lock(&self.data);
        d.set(JobState::Running);
        if d.state == JobState::Running && d.scheduled_start.is_none() {
            d.scheduled_start = Some(self.clock.wall());
        }
    }

    fn files_ready(&self) -> usize {
        lock(&self.data).files.len()
    }

    /// Whether its start answers 500 ([`JobFault::StartError`]).
    pub(crate) fn start_fails(&self) -> bool {
        self.faults.start_error
    }

    /// The job's size cap.
    pub(crate) fn cap(&self) -> u64 {
        self.faults.cap.unwrap_or(self.config.jobs.job_cap_bytes)
    }

    /// Adds the next file.
    fn push_file(&self, piece: FilePiece) {
        let mut d = lock(&self.data);
        let name = crate::jobs::file_name(d.files.len() as u64 + 1, self.spec.format);
        d.bytes += piece.bytes;
        d.files.push(JobFile { name, piece });
    }

    /// Accepts a cancellation: false if the job cannot be cancelled (final, or cancelling).
    pub(crate) fn request_cancel(&self) -> Result<(), JobState> {
        let mut d = lock(&self.data);
        if d.state.is_final() || d.state == JobState::Cancelling {
            return Err(d.state);
        }
        d.state = JobState::Cancelling;
        d.cancel_requested = true;
        drop(d);
        self.cancel.send_replace(true);
        Ok(())
    }
}

/// The jobs of the server and what the file host observed.
#[derive(Debug)]
pub(crate) struct Jobs {
    registry: Mutex<Registry>,
    slots: Arc<Semaphore>,
    faults: Mutex<Vec<JobFault>>,
    pub(crate) counters: Mutex<JobCounters>,
    pub(crate) hits: Mutex<Vec<FileHostHit>>,
    pub(crate) clock_epoch: Instant,
    /// The key of the URL signatures.
    pub(crate) secret: u64,
}

#[derive(Debug, Default)]
struct Registry {
    started: u32,
    jobs: BTreeMap<i64, Arc<Job>>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Jobs {
    pub(crate) fn new(config: &MockConfig) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jobs {
            registry: Mutex::new(Registry::default()),
            slots: Arc::new(Semaphore::new(config.jobs.max_running.max(1))),
            faults: Mutex::new(Vec::new()),
            counters: Mutex::new(JobCounters::default()),
            hits: Mutex::new(Vec::new()),
            clock_epoch: Instant::now(),
            secret: mix(nanos ^ u64::from(std::process::id()) ^ config.seed),
        }
    }

    pub(crate) fn clock(&self, config: &MockConfig) -> Clock {
        Clock {
            epoch: self.clock_epoch,
            fixed: config.now,
        }
    }

    pub(crate) fn inject(&self, fault: JobFault) {
        lock(&self.faults).push(fault);
    }

    pub(crate) fn pending_faults(&self) -> Vec<JobFault> {
        lock(&self.faults).clone()
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn get(&self, id: i64) -> Option<Arc<Job>> {
        lock(&self.registry).jobs.get(&id).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Job>> {
        lock(&self.registry).jobs.values().cloned().collect()
    }

    pub(crate) fn counters(&self) -> JobCounters {
        lock(&self.counters).clone()
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut JobCounters)) {
        f(&mut lock(&self.counters));
    }

    /// Creates the next job and starts driving it.
    pub(crate) fn create(&self, spec: JobSpec, config: &MockConfig) -> Arc<Job> {
        let mut reg = lock(&self.registry);
        reg.started += 1;
        let n = reg.started;
        let mut data = JobData {
            state: JobState::Enqueued,
            files: Vec::new(),
            bytes: 0,
            truncated: false,
            scheduled_start: None,
            end_time: None,
            cancel_requested: false,
            restarts: 0,
            file_listings: 0,
            complete_downloads: 0,
            downloads_while_running: 0,
            expired_listings: 0,
            failing_calls: Vec::new(),
            cuts: Vec::new(),
        };
        let mut faults = JobFaults::default();
        {
            let mut queue = lock(&self.faults);
            for f in queue.iter().filter(|f| f.job() == 0 || f.job() == n) {
                match *f {
                    JobFault::Fail { after_files, .. } => faults.fail_after = Some(after_files),
                    JobFault::Restart { after_files, pause, .. } => faults.restarts.push((after_files, pause)),
                    JobFault::Cap { bytes, .. } => faults.cap = Some(bytes),
                    JobFault::CutFile { file, after_bytes, .. } => data.cuts.push((file, after_bytes)),
                    JobFault::ExpiredUrls { listings, .. } => data.expired_listings += listings,
                    JobFault::FilesError { call, .. } => data.failing_calls.push(call),
                    JobFault::StartError { .. } => faults.start_error = true,
                }
            }
            queue.retain(|f| f.job() != n);
        }
        let job = Arc::new(Job {
            id: JOB_ID_BASE + i64::from(n),
            spec,
            config: config.clone(),
            faults,
            clock: self.clock(config),
            cancel: watch::Sender::new(false),
            downloaded: watch::Sender::new(0),
            data: Mutex::new(data),
        });
        reg.jobs.insert(job.id, job.clone());
        let task = tokio::spawn(drive(job.clone(), self.slots.clone()));
        reg.tasks.retain(|t| !t.is_finished());
        reg.tasks.push(task.abort_handle());
        job
    }

    /// Stops every job's task (the server stops).
    pub(crate) fn abort_all(&self) {
        for t in lock(&self.registry).tasks.drain(..) {
            t.abort();
        }
    }
}

/// Drives a job to a final state.
async fn drive(job: Arc<Job>, slots: Arc<Semaphore>) {
    let mut cancel = job.cancel.subscribe();
    let mut permit = None;
    let outcome = tokio::select! {
        state = progress(&job, &slots, &mut permit) => state,
        _ = cancel.wait_for(|c| *c) => JobState::Cancelled,
    };
    // A cancellation accepted while the job was ending still wins: the check and the final
    // state are set under one lock, so a DELETE sees either a final job or a cancelling one.
    let cancelled = outcome == JobState::Cancelled || {
        let mut d = lock(&job.data);
        if d.state == JobState::Cancelling {
            true
        } else {
            d.set(outcome);
            d.end_time = Some(job.clock.wall());
            false
        }
    };
    if cancelled {
        tokio::time::sleep(job.config.jobs.cancel_duration).await;
        let mut d = lock(&job.data);
        d.set(JobState::Cancelled);
        d.end_time = Some(job.clock.wall());
    }
    drop(permit);
}

/// Runs the job until it completes or fails (a cancellation drops this future).
async fn progress(job: &Job, slots: &Arc<Semaphore>, permit: &mut Option<OwnedSemaphorePermit>) -> JobState {
    let cfg = &job.config.jobs;
    let (records, layout) = job.spec.records(&job.config);
    let cap = job.cap();
    let mut split = FileSplitter::new(records, layout, cfg.max_file_bytes.max(1), cap);
    let mut restarts = job.faults.restarts.clone();
    let mut ran = Duration::ZERO;
    let mut exhausted = false;
    loop {
        let Ok(p) = slots.clone().acquire_owned().await else {
            return JobState::Failed;
        };
        *permit = Some(p);
        job.set_running();
        let since = Instant::now();
        let mut due = since;
        let restart = loop {
            let ready = job.files_ready();
            let reached = |after: u32| exhausted || ready >= after as usize;
            if job.faults.fail_after.is_some_and(reached) {
                return JobState::Failed;
            }
            if let Some(i) = restarts.iter().position(|(after, _)| reached(*after)) {
                break Some(restarts.remove(i).1);
            }
            if exhausted {
                break None;
            }
            match split.next_file() {
                Some(piece) => {
                    due += cfg.file_interval;
                    tokio::time::sleep_until(due).await;
                    job.push_file(piece);
                    tokio::task::yield_now().await;
                }
                None => {
                    exhausted = true;
                    // Held until its files were downloaded: the cap shows only afterwards.
                    if split.truncated() && !cfg.running_until_downloaded {
                        lock(&job.data).truncated = true;
                    }
                }
            }
        };
        ran += since.elapsed();
        match restart {
            Some(pause) => {
                *permit = None;
                {
                    let mut d = lock(&job.data);
                    d.set(JobState::Enqueued);
                    d.restarts += 1;
                }
                tokio::time::sleep(pause).await;
            }
            None => {
                if cfg.running_until_downloaded {
                    let files = job.files_ready() as u64;
                    let _ = job.downloaded.subscribe().wait_for(|n| *n >= files).await;
                    if split.truncated() {
                        lock(&job.data).truncated = true;
                    }
                }
                tokio::time::sleep(cfg.job_duration.saturating_sub(ran)).await;
                return JobState::Completed;
            }
        }
    }
}
