//! Windowed exports through jobs: one job per window, its files downloaded in parallel and
//! delivered to a [`Sink`] as one window attempt (begin, records, commit or abort), so the
//! exactly-once guarantees of `data.json` exports hold unchanged.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;

use chrono::SubsecRound;
use futures::TryStreamExt;
use tokio::sync::OwnedSemaphorePermit;

use super::download::Spooled;
use super::resume::fit_resumed;
use super::spool::Spool;
use super::starting::{Starting, join};
use super::{ExportJob, ExportJobRequest, JobState};
use crate::{CsvRecords, Error, Format, Lines, Result, Sink, Window, WindowOptions, WindowedSummary, plan_windows};

use super::options::JobOptions;

/// How one window's attempt ended, when it did not commit.
enum Outcome {
    /// `exportTruncated`: split the window.
    Truncated(i64),
    /// The job failed: start another one.
    Failed(Error),
    /// Give up on the window.
    Fatal(Error),
    /// The sink failed: stop at once.
    Sink(Error),
}

impl ExportJobRequest {
    /// Exports `[start, end)` (set with [`between`](Self::between)) into `sink`, one job per
    /// window of `options.size` ([`plan_windows`]); see [`export_plan`](Self::export_plan).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] without dates; see [`export_plan`](Self::export_plan).
    pub async fn export_windows<S: Sink>(
        &self,
        options: WindowOptions,
        jobs: JobOptions,
        sink: &mut S,
    ) -> Result<WindowedSummary> {
        self.validate()?;
        let Some((start, end)) = self.dates() else {
            return Err(Error::InvalidRequest(
                "a windowed export needs dates: call between(start, end)".into(),
            ));
        };
        let windows = plan_windows(start.trunc_subsecs(0), end.trunc_subsecs(0), options.size);
        self.export_plan(windows, options, jobs, sink).await
    }

    /// Exports the given windows, in order, into `sink`, one export job each: the job is
    /// started (at most [`max_running_jobs`](crate::ClientBuilder::max_running_jobs) at once,
    /// `jobs.lookahead` windows ahead when a job slot is free, slots taken in window order), its
    /// files downloaded as soon as they are listed, while the job runs (`jobs.downloads` at a
    /// time, at most `jobs.spool_files` on disk), and once the job completed each complete
    /// file's records handed to the sink in name order; the window is committed when every file
    /// was delivered, aborted otherwise — so every record reaches the sink once, as with
    /// [`Export::export_plan`](crate::Export::export_plan).
    ///
    /// A job that reports `exportTruncated` (Iterable's 100 GB cap) has its window split in two
    /// halves, each run as a job; a job that fails is started again up to `jobs.job_retries`
    /// times. When the export stops with an error, the jobs it started ahead are cancelled.
    ///
    /// Jobs of `jobs.resume` are continued for their windows; one without delivered files whose
    /// window overlaps these windows without being one of them is cancelled first (its window is
    /// exported by new jobs).
    ///
    /// # Errors
    /// [`Error::WindowFailed`] naming the window whose job kept failing, could not be split
    /// further, or failed with an error retrying cannot fix; errors of the sink.
    pub async fn export_plan<S: Sink>(
        &self,
        windows: impl IntoIterator<Item = Window>,
        options: WindowOptions,
        jobs: JobOptions,
        sink: &mut S,
    ) -> Result<WindowedSummary> {
        self.validate()?;
        let format = options.format;
        let planned = fit_resumed(windows.into_iter().collect(), &jobs.resume)?;
        self.cancel_stale(&planned, &jobs.resume).await;
        let mut queue: VecDeque<Window> = planned.into();
        let mut started: VecDeque<(Window, Starting)> = VecDeque::new();
        let mut failures: HashMap<Window, u32> = HashMap::new();
        let mut resume = jobs.resume.clone();
        let mut summary = WindowedSummary::default();
        let result = loop {
            while started.len() <= jobs.lookahead
                && let Some(&window) = queue.front()
            {
                // Job slots are taken in window order: the window exported next waits for one
                // here, later windows start only with a free one. A later window's start
                // taking the slot an earlier one waits for would wait for ever.
                let permit = if started.is_empty() {
                    self.slot().await
                } else {
                    match self.client().jobs_shared().slots.clone().try_acquire_owned() {
                        Ok(permit) => Some(permit),
                        Err(_) => break,
                    }
                };
                queue.pop_front();
                let point = resume.iter().position(|r| r.window == window).map(|i| resume.remove(i));
                started.push_back((window, self.spawn_start(window, format, point, &jobs, permit)));
            }
            let Some((window, starting)) = started.pop_front() else {
                break Ok(summary);
            };
            let job = match join(starting).await {
                Ok(job) => job,
                Err(err) => {
                    break Err(window_failed(
                        self,
                        &window,
                        failures.get(&window).copied().unwrap_or(0) + 1,
                        err,
                    ));
                }
            };
            let job_id = job.id();
            let outcome = match self.run_window(job, &window, format, &jobs, sink).await {
                Ok((records, bytes)) => {
                    summary.windows += 1;
                    summary.records += records;
                    summary.bytes += bytes;
                    continue;
                }
                Err(outcome) => outcome,
            };
            match outcome {
                Outcome::Sink(err) => break Err(err),
                Outcome::Fatal(err) => {
                    break Err(window_failed(
                        self,
                        &window,
                        failures.get(&window).copied().unwrap_or(0) + 1,
                        err,
                    ));
                }
                Outcome::Truncated(job_id) => {
                    let Some((first, second)) = window.halves() else {
                        break Err(window_failed(
                            self,
                            &window,
                            1,
                            Error::Job {
                                job_id,
                                message:
                                    "it hit Iterable's 100 GB cap (exportTruncated) in a window too short to split"
                                        .into(),
                            },
                        ));
                    };
                    tracing::warn!(data_type = %self.data_type(), %window, job_id, "the job was truncated at 100 GB; splitting the window");
                    self.client().count_window_split();
                    summary.splits += 1;
                    self.make_room(&mut started, &mut queue).await;
                    // `first` holds a slot before `second` may wait for one.
                    let permit = self.slot().await;
                    started.push_front((second, self.spawn_start(second, format, None, &jobs, None)));
                    started.push_front((first, self.spawn_start(first, format, None, &jobs, permit)));
                }
                Outcome::Failed(err) => {
                    let failed = failures.entry(window).or_insert(0);
                    *failed += 1;
                    if *failed > jobs.job_retries {
                        break Err(window_failed(self, &window, *failed, err));
                    }
                    tracing::warn!(data_type = %self.data_type(), %window, job_id, error = %err, "the job failed; starting another one");
                    summary.retries += 1;
                    self.client().count_retry();
                    self.make_room(&mut started, &mut queue).await;
                    let permit = self.slot().await;
                    started.push_front((window, self.spawn_start(window, format, None, &jobs, permit)));
                }
            }
        };
        if result.is_err() {
            self.cancel_ahead(&mut started, &mut queue).await;
        }
        result
    }

    /// One of the client's job slots, once free.
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.client().jobs_shared().slots.clone().acquire_owned().await.ok()
    }

    /// Before a window's job is started again: when every job slot of the client is taken, the
    /// jobs started ahead are cancelled (their windows go back to the queue), so that jobs
    /// started ahead by several exports can never hold every slot while the windows they wait
    /// for cannot start.
    async fn make_room(&self, started: &mut VecDeque<(Window, Starting)>, queue: &mut VecDeque<Window>) {
        if self.client().jobs_shared().slots.available_permits() == 0 {
            self.cancel_ahead(started, queue).await;
        }
    }

    /// Cancels the jobs started ahead (they hold job slots another window may need now) and
    /// puts their windows back in front of the queue, in order.
    async fn cancel_ahead(&self, started: &mut VecDeque<(Window, Starting)>, queue: &mut VecDeque<Window>) {
        while let Some((window, starting)) = started.pop_back() {
            queue.push_front(window);
            // Still waiting for a job slot: nothing was sent, dropping it aborts it.
            if !starting.sending.load(Ordering::SeqCst) && !starting.is_finished() {
                continue;
            }
            if let Ok(mut job) = join(starting).await
                && let Err(err) = job.cancel().await
            {
                tracing::warn!(job_id = job.id(), error = %err, "could not cancel a job started ahead");
            }
        }
    }

    /// One attempt at `window` with `job`: list its files while it runs, downloading each as it
    /// is listed (`spool.rs`), and deliver them in name order once it completed untruncated.
    async fn run_window<S: Sink>(
        &self,
        mut job: ExportJob,
        window: &Window,
        format: Format,
        jobs: &JobOptions,
        sink: &mut S,
    ) -> std::result::Result<(u64, u64), Outcome> {
        let job_id = job.id();
        let dir = jobs.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
        let client = self.client();
        let mut spool = Spool::new(client, job_id, format, &dir, jobs.downloads, jobs.spool_files);
        loop {
            let listed = spool.while_listing(job.next_file()).await;
            if job.truncated() {
                // Its files are never delivered: the window is split (or the export fails).
                spool.discard();
            }
            match listed {
                Ok(Some(file)) => spool.add(file),
                Ok(None) => break,
                Err(err) => {
                    spool.discard();
                    return Err(listing_failed(&mut job, err).await);
                }
            }
        }
        if job.truncated() {
            if let Some(after) = job.resumed_after() {
                // Its files up to `after` are permanent: the halves would deliver them again.
                return Err(Outcome::Fatal(Error::Job {
                    job_id,
                    message: format!(
                        "it now reports exportTruncated (Iterable's 100 GB cap), but the output already holds \
                         its files up to {after}, so splitting the window would repeat them: remove the output \
                         and the state file and export again with shorter windows"
                    ),
                }));
            }
            return Err(Outcome::Truncated(job_id));
        }
        drop(job);
        // In name order, the order `startAfter` pages in: a file made permanent
        // ([`Sink::job_file_done`]) then means every file before it is too, which is what a
        // resumed run listing after it assumes. The spool goes on downloading while a complete
        // file is handed to the sink: it runs in a future of its own, polled alongside the
        // delivery, and passes complete files through a channel of one. When the delivery
        // stops, dropping the spool removes its files.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Spooled>>(1);
        let feeding = spool.feed(tx);
        sink.begin(window).await.map_err(Outcome::Sink)?;
        let (mut records, mut bytes) = (0u64, 0u64);
        let delivering = async {
            while let Some(file) = rx.recv().await {
                let file = file.map_err(Outcome::Fatal)?;
                let delivered = deliver(&file, format, client.max_line_length(), sink).await?;
                sink.job_file_done(window, job_id, &file.name, delivered)
                    .await
                    .map_err(Outcome::Sink)?;
                records += delivered;
                bytes += file.bytes;
            }
            Ok(())
        };
        let delivered = {
            let (feeding, delivering) = (std::pin::pin!(feeding), std::pin::pin!(delivering));
            match futures::future::select(feeding, delivering).await {
                futures::future::Either::Left(((), delivering)) => delivering.await,
                futures::future::Either::Right((delivered, _feeding)) => delivered,
            }
        };
        if let Err(outcome) = delivered {
            sink.abort(window).await.map_err(Outcome::Sink)?;
            return Err(outcome);
        }
        if let Err(err) = sink.commit(window, records).await {
            let _ = sink.abort(window).await;
            return Err(Outcome::Sink(err));
        }
        Ok((records, bytes))
    }
}

/// What a listing error means for the window: a resumed job that cannot go on ends the export
/// (its first files are in the output); a failed, cancelled or vanished job is replaced; a job
/// whose listing kept failing is cancelled, then replaced.
async fn listing_failed(job: &mut ExportJob, err: Error) -> Outcome {
    if let Some(after) = job.resumed_after() {
        let message = format!(
            "it cannot be continued after its file {after} ({err}); the output already holds the records \
             up to that file, so a new job for the window would repeat them: remove the output and the \
             state file to start over"
        );
        return Outcome::Fatal(Error::Job {
            job_id: job.id(),
            message,
        });
    }
    if matches!(
        job.state(),
        Some(JobState::Failed | JobState::Cancelled | JobState::Cancelling)
    ) || err.status() == Some(404)
    {
        return Outcome::Failed(err);
    }
    if err.is_transient() {
        // The job may be fine (its listing kept failing): cancel it before another one is
        // started for the window, or it would hold one of Iterable's job slots.
        if let Err(cancel) = job.cancel().await {
            tracing::warn!(job_id = job.id(), error = %cancel, "could not cancel the job given up");
        }
        return Outcome::Failed(err);
    }
    Outcome::Fatal(err)
}

/// Hands one complete file's records to the sink; returns how many.
async fn deliver<S: Sink>(
    file: &Spooled,
    format: Format,
    max: usize,
    sink: &mut S,
) -> std::result::Result<u64, Outcome> {
    let body = file.body().await.map_err(Outcome::Fatal)?;
    let mut records = 0u64;
    match format {
        Format::Ndjson => {
            let mut lines = Lines::from_stream(body, max);
            while let Some(line) = lines.try_next().await.map_err(Outcome::Fatal)? {
                sink.record(&line).await.map_err(Outcome::Sink)?;
                records += 1;
            }
        }
        Format::Csv => {
            let mut rows = CsvRecords::from_stream(body, max).await.map_err(Outcome::Fatal)?;
            if !rows.headers().is_empty() {
                sink.header(rows.header_raw()).await.map_err(Outcome::Sink)?;
            }
            while let Some(row) = rows.try_next().await.map_err(Outcome::Fatal)? {
                sink.record(row.raw()).await.map_err(Outcome::Sink)?;
                records += 1;
            }
        }
    }
    if records != file.records {
        return Err(Outcome::Fatal(Error::Io {
            context: format!(
                "the downloaded job file {} held {} records when checked and {records} when read back",
                file.name, file.records
            ),
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        }));
    }
    Ok(records)
}

fn window_failed(request: &ExportJobRequest, window: &Window, attempts: u32, err: Error) -> Error {
    Error::WindowFailed {
        data_type: request.data_type().to_string(),
        window: window.to_string(),
        attempts,
        source: Box::new(err),
    }
}
