//! Jobs a start may leave behind at Iterable. A `POST /export/start` that fails without saying
//! whether the job was created (a 5xx, a read timeout, a connection lost while the answer was on
//! its way) may have created a job whose id this client never learns: it would run beside the
//! job started next for the same window, hold one of Iterable's 4 running jobs and do its work
//! for nothing.
//!
//! So before a start the ids of the project's unfinished jobs of its data type are noted
//! (`GET /export/jobs`, not rate limited); after each such failure, and once more after the
//! start succeeded (a job created late), the jobs of that data type that appeared since, are
//! enqueued or running and are not this client's, are cancelled. Starts of one client run one
//! at a time ([`Shared::starting`](super::Shared)), so every job that appears meanwhile is this
//! start's, unless another program of the project started one: each failed attempt created at
//! most one job, so when more appeared than attempts failed, none is cancelled (a warning names
//! them).
//!
//! Why cancel rather than adopt: Iterable's job list says a job's data type and state, not its
//! window, format or fields. Adopting a job that is not this start's (another program's, for
//! another window) would deliver another window's records as this one's, silently; cancelling it
//! costs that job's owner a new start and nothing else. A start that found and cancelled its
//! job is sent again, as before.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use iterable_export_gen as generated;

use super::{JobCounters, JobState};
use crate::client::Throttle;
use crate::{Client, DataType, Error, Result};

/// What one start knows of the jobs it may have created.
pub(crate) struct Orphans<'a> {
    client: &'a Client,
    data_type: String,
    /// The unfinished jobs of the data type before the first attempt; `None` when they could
    /// not be listed (then nothing can be told apart, and nothing is cancelled).
    before: Option<BTreeSet<i64>>,
    /// Attempts that failed without saying whether the job was created.
    ambiguous: AtomicU32,
    /// The jobs cancelled so far.
    cancelled: Mutex<BTreeSet<i64>>,
}

impl<'a> Orphans<'a> {
    /// Notes the project's unfinished jobs of `data_type` (a start of it is about to be sent).
    pub(crate) async fn note(client: &'a Client, data_type: DataType) -> Orphans<'a> {
        let data_type = data_type.to_string();
        let before = match unfinished(client, &data_type).await {
            Ok(ids) => Some(ids),
            Err(err) => {
                tracing::warn!(%data_type, error = %err, "could not list the export jobs before a start: a job a failed start leaves behind cannot be found");
                None
            }
        };
        Orphans {
            client,
            data_type,
            before,
            ambiguous: AtomicU32::new(0),
            cancelled: Mutex::new(BTreeSet::new()),
        }
    }

    /// After an attempt failed with `err`: when it may have created the job, cancels the job.
    pub(crate) async fn after_failure(&self, err: &Error) {
        if may_have_started(err) {
            self.ambiguous.fetch_add(1, Ordering::SeqCst);
            self.sweep(None).await;
        }
    }

    /// After the start succeeded with `job_id`: when an attempt before failed without saying
    /// whether it created a job, cancels a job that appeared since (other than `job_id`).
    pub(crate) async fn after_success(&self, job_id: i64) {
        if self.ambiguous.load(Ordering::SeqCst) > 0 {
            self.sweep(Some(job_id)).await;
        }
    }

    async fn sweep(&self, started: Option<i64>) {
        let data_type = &self.data_type;
        let Some(before) = &self.before else {
            return;
        };
        let now = match unfinished(self.client, data_type).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::warn!(%data_type, error = %err, "could not list the export jobs after a failed start: a job it may have created is left running");
                return;
            }
        };
        let shared = self.client.jobs_shared();
        let found: Vec<i64> = {
            let ours = shared.active();
            now.difference(before)
                .filter(|id| Some(**id) != started && !ours.contains(id))
                .copied()
                .collect()
        };
        if found.is_empty() {
            return;
        }
        let cancelled = lock(&self.cancelled).len();
        let ambiguous = self.ambiguous.load(Ordering::SeqCst) as usize;
        if found.len() + cancelled > ambiguous {
            tracing::warn!(%data_type, jobs = ?found, failed_starts = ambiguous, "export jobs of this data type appeared during a failed start, more than it can have created (another program may be exporting it): none is cancelled; cancel those that are not another program's");
            return;
        }
        for id in found {
            match self.client.cancel_job(id).await {
                Ok(()) => {
                    tracing::warn!(%data_type, job_id = id, "cancelled the export job a failed start created");
                    lock(&self.cancelled).insert(id);
                    JobCounters::add(&shared.counters.orphans_cancelled, 1);
                }
                Err(err) => {
                    tracing::warn!(%data_type, job_id = id, error = %err, "could not cancel the export job a failed start created");
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every update is one insert.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a failed `POST /export/start` may have created its job: the server failed (5xx), or
/// the request went out and no complete answer came back. A 4xx (429 included) created nothing.
fn may_have_started(err: &Error) -> bool {
    match err {
        Error::Api { status, .. } => *status >= 500,
        Error::Transport { .. } | Error::Timeout(_) => true,
        _ => false,
    }
}

/// The ids of the project's enqueued or running jobs of `data_type` (`GET /export/jobs`).
async fn unfinished(client: &Client, data_type: &str) -> Result<BTreeSet<i64>> {
    let listed = client
        .with_retries(Throttle::Unlimited, || async {
            match client.generated().list_export_jobs().send().await {
                Ok(response) => Ok(response.into_inner()),
                Err(err) => Err(list_error(err, client).await),
            }
        })
        .await?;
    Ok(listed
        .jobs
        .into_iter()
        .filter(|job| job.data_type_name.as_deref() == Some(data_type))
        .filter(|job| job.job_state.parse::<JobState>().is_ok_and(JobState::is_active))
        .map(|job| job.id)
        .collect())
}

/// The list's error as this crate's (it declares no error bodies: every error status arrives
/// as an unexpected response).
async fn list_error(err: generated::Error<()>, client: &Client) -> Error {
    let timeouts = client.timeouts();
    let err = match err {
        generated::Error::InvalidRequest(msg) => generated::Error::InvalidRequest(msg),
        generated::Error::CommunicationError(e) => generated::Error::CommunicationError(e),
        generated::Error::ResponseBodyError(e) => generated::Error::ResponseBodyError(e),
        generated::Error::UnexpectedResponse(r) => generated::Error::UnexpectedResponse(r),
        other => {
            return Error::Transport {
                message: format!("listing the export jobs: {other}"),
                source: None,
            };
        }
    };
    crate::error::from_generated(err, timeouts).await
}
