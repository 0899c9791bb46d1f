//! [`ExportJob`]: one job's state and its files, listed page by page as they appear.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use futures::Stream;
use iterable_export_gen::types::{ExportFile, ExportFilesResponse};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::{JobCounters, JobState};
use crate::client::Throttle;
use crate::{Client, Error, Format, Result};

/// One file of an export job: its name and its pre-signed URL (valid about 30 minutes).
///
/// `Debug` shows the URL without its query, which holds the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct JobFile {
    /// The file's name (`file-1679086247925.csv`); files are listed in name order.
    pub name: String,
    /// The pre-signed URL. Never send the API key there.
    pub url: String,
    /// The `startAfter` of the listing that returned it: listing it again gives a fresh URL.
    pub(crate) page_after: Option<String>,
}

impl fmt::Debug for JobFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.split('?').next().unwrap_or_default();
        f.debug_struct("JobFile")
            .field("name", &self.name)
            .field("url", &url)
            .finish_non_exhaustive()
    }
}

/// A started export job: its id and last seen state, and its files, listed with `startAfter`
/// paging and polled with backoff (by default 1 s doubling up to 300 s, see
/// [`ClientBuilder::job_polling`](crate::ClientBuilder::job_polling)) while the job runs. A job may go
/// from `running` back to `enqueued` (Iterable restarted it): files already listed stay valid.
/// The listing ends when the job is `completed` and every file is listed.
///
/// Created by [`ExportJobRequest::start`](crate::ExportJobRequest::start) or
/// [`resume`](crate::ExportJobRequest::resume). While the job is enqueued or running it holds one
/// of the client's job slots and is listed by [`Client::active_jobs`].
pub struct ExportJob {
    client: Client,
    id: i64,
    format: Format,
    state: Option<JobState>,
    truncated: bool,
    permit: Option<OwnedSemaphorePermit>,
    pending: VecDeque<JobFile>,
    start_after: Option<String>,
    resumed_after: Option<String>,
    /// Names of the files listed so far.
    listed: HashSet<String>,
    listed_all: bool,
    delay: Duration,
    give_up_at: Instant,
}

impl fmt::Debug for ExportJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportJob")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("truncated", &self.truncated)
            .field("start_after", &self.start_after)
            .finish_non_exhaustive()
    }
}

impl ExportJob {
    pub(crate) fn new(client: Client, id: i64, format: Format, permit: Option<OwnedSemaphorePermit>) -> Self {
        client.jobs_shared().active().insert(id);
        let polling = client.jobs_shared().polling;
        ExportJob {
            client,
            id,
            format,
            state: None,
            truncated: false,
            permit,
            pending: VecDeque::new(),
            start_after: None,
            resumed_after: None,
            listed: HashSet::new(),
            listed_all: false,
            delay: polling.initial,
            give_up_at: Instant::now() + polling.give_up_after,
        }
    }

    /// The job's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The format of its files.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The state last seen (`None` before the first listing).
    pub fn state(&self) -> Option<JobState> {
        self.state
    }

    /// Whether Iterable reported `exportTruncated`: the job hit the 100 GB cap, so its files
    /// hold only part of its window.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Skips the files up to and including `name` (a resumed job whose first files are
    /// already written).
    pub fn skip_through(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.start_after = Some(name.clone());
        self.resumed_after = Some(name);
        self.pending.clear();
    }

    /// The file given to [`skip_through`](Self::skip_through), if any.
    pub fn resumed_after(&self) -> Option<&str> {
        self.resumed_after.as_deref()
    }

    /// Cancels the job (`DELETE /export/{jobId}`).
    ///
    /// # Errors
    /// The API's error.
    pub async fn cancel(&mut self) -> Result<()> {
        self.client.cancel_job(self.id).await?;
        self.observe(JobState::Cancelling);
        Ok(())
    }

    /// The next file, waiting for the job while it has none yet; `None` when the job is
    /// completed and every file was returned.
    ///
    /// # Errors
    /// [`Error::Job`] when the job failed, was cancelled, is in an unknown state or did not
    /// complete within 24 hours; the API's errors (after the client's retries).
    pub async fn next_file(&mut self) -> Result<Option<JobFile>> {
        loop {
            if let Some(file) = self.pending.pop_front() {
                return Ok(Some(file));
            }
            if self.listed_all {
                return Ok(None);
            }
            let page = list_page(&self.client, self.id, self.start_after.clone()).await?;
            let state = self.observe_page(&page)?;
            if self.take_page(page.files)? {
                self.delay = self.client.jobs_shared().polling.initial;
                continue;
            }
            match state {
                JobState::Completed => self.listed_all = true,
                JobState::Enqueued | JobState::Running => {
                    if Instant::now() + self.delay > self.give_up_at {
                        return Err(Error::Job {
                            job_id: self.id,
                            message: format!(
                                "still {state} {} after it was started or resumed; cancel it, or run again \
                                 later to resume it",
                                approximately(self.client.jobs_shared().polling.give_up_after)
                            ),
                        });
                    }
                    tracing::debug!(job_id = self.id, %state, delay_s = self.delay.as_secs(), "waiting for the job's files");
                    tokio::time::sleep(self.delay).await;
                    self.delay = (self.delay * 2).min(self.client.jobs_shared().polling.max);
                }
                JobState::Failed | JobState::Cancelling | JobState::Cancelled => {
                    return Err(Error::Job {
                        job_id: self.id,
                        message: format!("the job is {state}"),
                    });
                }
            }
        }
    }

    /// The files as a stream: [`next_file`](Self::next_file) until `None` or an error.
    pub fn files(self) -> impl Stream<Item = Result<JobFile>> + Send {
        futures::stream::try_unfold(self, |mut job| async move {
            Ok(job.next_file().await?.map(|file| (file, job)))
        })
    }

    /// Queues the files of a page not listed before (nor, for a resumed job, made permanent by
    /// the run that started it) and moves `startAfter` to the greatest name listed; `false`
    /// when the listing did not move on. Names order the files (`startAfter` is a name), so a
    /// file listed twice, or a page in another order, cannot deliver a file twice; a page that
    /// lists only files before `startAfter` means the API did not page, and is an error rather
    /// than a listing that ends early or never ends.
    fn take_page(&mut self, files: Vec<ExportFile>) -> Result<bool> {
        let before = self.start_after.clone();
        let mut newest = before.clone();
        let mut behind = None;
        let mut added = 0u64;
        for file in files {
            if newest.as_deref().is_none_or(|n| file.file.as_str() > n) {
                newest = Some(file.file.clone());
            }
            if behind.is_none() && before.as_deref().is_some_and(|b| file.file.as_str() < b) {
                behind = Some(file.file.clone());
            }
            let made_permanent = self.resumed_after.as_deref().is_some_and(|r| file.file.as_str() <= r);
            if made_permanent || !self.listed.insert(file.file.clone()) {
                continue;
            }
            added += 1;
            self.pending.push_back(JobFile {
                name: file.file,
                url: file.url,
                page_after: before.clone(),
            });
        }
        JobCounters::add(&self.client.jobs_shared().counters.files_listed, added);
        if newest == before
            && let (Some(behind), Some(after)) = (behind, before.as_deref())
        {
            return Err(Error::Job {
                job_id: self.id,
                message: format!(
                    "listing its files after {after} returned {behind} again and nothing after {after}: the API \
                     did not page with startAfter, so the rest of its files cannot be listed"
                ),
            });
        }
        let moved = newest != before;
        self.start_after = newest;
        Ok(moved)
    }

    fn observe_page(&mut self, page: &ExportFilesResponse) -> Result<JobState> {
        let state = page.job_state.parse::<JobState>().map_err(|err| Error::Job {
            job_id: self.id,
            message: format!("{err}; this client may be too old for the API"),
        })?;
        if page.export_truncated == Some(true) {
            self.truncated = true;
        }
        if self.state == Some(JobState::Running) && state == JobState::Enqueued {
            tracing::warn!(
                job_id = self.id,
                "the job went from running back to enqueued (Iterable restarted it)"
            );
        }
        self.observe(state);
        Ok(state)
    }

    fn observe(&mut self, state: JobState) {
        let shared = self.client.jobs_shared();
        shared.counters.transition(self.state, Some(state));
        self.state = Some(state);
        if !state.is_active() {
            shared.active().remove(&self.id);
            self.permit = None;
        }
    }
}

/// A duration as people say it: `24 h`, `90 min`, `45 s`, `60 ms`.
fn approximately(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{} ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// One listing of job `job_id`'s files after `start_after`, under the jobs limiter, retried.
pub(crate) async fn list_page(
    client: &Client,
    job_id: i64,
    start_after: Option<String>,
) -> Result<ExportFilesResponse> {
    client
        .with_retries(Throttle::JobsLimit, || async {
            let mut request = client.generated().get_export_files().job_id(job_id);
            if let Some(after) = &start_after {
                request = request.start_after(after.clone());
            }
            match request.send().await {
                Ok(response) => Ok(response.into_inner()),
                Err(err) => Err(crate::error::from_generated(err, client.timeouts()).await),
            }
        })
        .await
}

impl Drop for ExportJob {
    fn drop(&mut self) {
        // An active job given up here leaves the gauges (the CLI cancels it, or resumes it).
        let shared = self.client.jobs_shared();
        shared.counters.transition(self.state, None);
    }
}
