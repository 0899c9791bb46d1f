//! Starting a window's job in a task of its own ([`Starting`]), so that jobs of later windows
//! start while a window downloads; a start dropped once its request is out finishes in the
//! background and cancels its job.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::OwnedSemaphorePermit;

use super::options::{JobOptions, JobResume};
use super::{ExportJob, ExportJobRequest};
use crate::{Error, Format, Result, Window};

/// A job being started in a task of its own. Dropped before its request is sent, the task is
/// aborted; after, it finishes in the background and cancels the job it got
/// ([`Client::settle_abandoned_starts`](crate::Client::settle_abandoned_starts)): aborted mid
/// request, it would leave a job at Iterable nobody knows of.
pub(super) struct Starting {
    /// `None` once joined.
    task: Option<tokio::task::JoinHandle<Result<ExportJob>>>,
    /// Set once the task holds a job slot and sends `POST /export/start`: before, aborting it
    /// leaves nothing behind at Iterable.
    pub(super) sending: Arc<AtomicBool>,
    client: crate::Client,
}

impl Starting {
    pub(super) fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(tokio::task::JoinHandle::is_finished)
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        let runtime = tokio::runtime::Handle::try_current();
        let (true, Ok(runtime)) = (self.sending.load(Ordering::SeqCst), runtime) else {
            task.abort();
            return;
        };
        let cleanup = runtime.spawn(async move {
            let Ok(Ok(mut job)) = task.await else {
                return None;
            };
            match job.cancel().await {
                Ok(()) => {
                    tracing::info!(job_id = job.id(), "cancelled the job of an abandoned start");
                    Some(job.id())
                }
                Err(err) => {
                    tracing::warn!(job_id = job.id(), error = %err, "could not cancel the job of an abandoned start");
                    None
                }
            }
        });
        let mut abandoned = self.client.jobs_shared().abandoned();
        abandoned.retain(|t| !t.is_finished());
        abandoned.push(cleanup);
    }
}

impl ExportJobRequest {
    /// Starts (or resumes) `window`'s job in a task of its own, with `permit` as its job slot
    /// (`None`: the task waits for one).
    pub(super) fn spawn_start(
        &self,
        window: Window,
        format: Format,
        resume: Option<JobResume>,
        jobs: &JobOptions,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Starting {
        let request = self.for_window(&window);
        let observer = jobs.observer.clone();
        let sending = Arc::new(AtomicBool::new(false));
        let flag = sending.clone();
        let task = tokio::spawn(async move {
            let job = match resume {
                Some(point) => {
                    let mut job = request.resume_with(point.job_id, format, permit).await?;
                    if let Some(file) = point.after_file {
                        job.skip_through(file);
                    }
                    job
                }
                None => request.start_with(format, Some(&flag), permit).await?,
            };
            if let Some(observe) = observer {
                observe(&window, job.id());
            }
            Ok(job)
        });
        Starting {
            task: Some(task),
            sending,
            client: self.client().clone(),
        }
    }
}

pub(super) async fn join(starting: Starting) -> Result<ExportJob> {
    let mut starting = starting;
    // Dropped while waiting here (the export is dropped), `starting` still holds the task.
    let joined = match starting.task.as_mut() {
        Some(handle) => handle.await,
        None => return Err(Error::InvalidRequest("an export job start was joined twice".into())),
    };
    starting.task = None;
    match joined {
        Ok(result) => result,
        Err(err) => Err(Error::Io {
            context: "starting an export job failed".into(),
            source: std::io::Error::other(err.to_string()),
        }),
    }
}
