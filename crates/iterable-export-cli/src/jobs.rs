//! `export --via jobs`: each span's windows run as asynchronous export jobs (the library's
//! `ExportJobRequest::export_windows`), the state remembers every window's job and the last file
//! already in the output, progress shows jobs and files, and Ctrl-C cancels this run's jobs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use iterable_export::{Client, Export, JobOptions, JobResume, RateLimit, Sink, Window, WindowOptions};

use crate::args::ExportArgs;
use crate::checkpoint::{Checkpoint, Checkpoints};
use crate::export::Report;
use crate::plan::{Job, usage};
use crate::state::{Entry, State};
use crate::ui::{Ui, human_bytes};

/// How `export` fetches records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// Stream /export/data.json or /export/data.csv, window by window.
    #[value(name = "data-json")]
    DataJson,
    /// Asynchronous export jobs: files prepared by Iterable, downloaded in parallel.
    Jobs,
}

/// Exit code of a run interrupted by Ctrl-C (128 + SIGINT).
const INTERRUPTED: i32 = 130;

/// What an export through jobs needs besides the plan.
pub(crate) struct ViaJobs {
    export: Export,
    spans: Vec<Window>,
    marks: Vec<JobResume>,
    options: WindowOptions,
    downloads: usize,
    spool_files: usize,
    checkpoint: Option<(Arc<Checkpoints>, String)>,
}

impl ViaJobs {
    /// `None` unless `--via jobs`.
    pub(crate) fn new(
        args: &ExportArgs,
        options: WindowOptions,
        shared: Option<Arc<Checkpoints>>,
        job: &Job,
    ) -> Option<ViaJobs> {
        (args.via == Via::Jobs).then(|| ViaJobs {
            export: job.export.clone(),
            spans: job.spans.clone(),
            marks: job.entry.iter().flat_map(|entry| entry.jobs.iter().cloned()).collect(),
            // Fixed windows of --window: a job's window does not grow.
            options: options.with_max_size(args.window),
            downloads: usize::from(args.downloads),
            spool_files: usize::try_from(args.spool_files).unwrap_or(usize::MAX),
            checkpoint: shared.map(|shared| (shared, job.key.clone())),
        })
    }

    /// Exports the planned spans through export jobs into `sink`, continuing the jobs the
    /// state remembers.
    pub(crate) async fn export<S: Sink>(self, sink: &mut S) -> iterable_export::Result<()> {
        if self.spans.is_empty() {
            return Err(usage(
                "--via jobs exports dates: give --start/--end (or --state), not --range",
            ));
        }
        // Files download while their job runs and wait in the system's temporary directory until
        // it completed (at most --spool-files, 32 by default, or --downloads + 2 if more, files
        // of at most 10 MB: ≈ 320 MB by default), where a killed run leaves nothing in the output.
        let spool_files = self.spool_files.max(self.downloads + 2);
        let mut jobs = JobOptions::default()
            .with_downloads(self.downloads)
            .with_spool_files(spool_files);
        for mark in self.marks {
            jobs = jobs.with_resume(mark);
        }
        if let Some((shared, key)) = self.checkpoint {
            jobs = jobs.with_observer(move |window, job_id| {
                let checkpoint = Checkpoint {
                    shared: shared.clone(),
                    key: key.clone(),
                };
                let window = *window;
                tokio::spawn(async move {
                    let saved = checkpoint
                        .update(move |entry| {
                            // A resumed job keeps its mark (and the last file already written).
                            if !entry.jobs.iter().any(|j| j.window == window && j.job_id == job_id) {
                                // The window's earlier job goes, and so do the jobs without files
                                // of windows it overlaps (no longer planned: the library cancelled
                                // them).
                                entry.jobs.retain(|j| {
                                    let overlaps = j.window.start < window.end && window.start < j.window.end;
                                    j.window != window && !(overlaps && j.after_file.is_none())
                                });
                                entry.jobs.push(JobResume::new(window, job_id, None));
                            }
                        })
                        .await;
                    if let Err(err) = saved {
                        tracing::warn!(job_id, error = %err, "could not remember the export job in the state file");
                    }
                });
            });
        }
        for span in &self.spans {
            let request = self.export.clone().between(span.start, span.end).into_job();
            request.export_windows(self.options, jobs.clone(), sink).await?;
        }
        Ok(())
    }
}

/// Refuses to resume, other than via jobs, an export whose state holds a job with files already
/// in the output: data.json would export that job's window again from its start and repeat them.
pub(crate) fn check_resume(via: Via, entry: &Entry) -> iterable_export::Result<()> {
    match entry.jobs.iter().find(|mark| mark.after_file.is_some()) {
        Some(mark) if via != Via::Jobs => Err(usage(format!(
            "the state file holds export job {} of window {}, whose files up to {} are already in {}: resume \
             with --via jobs (data.json would export that window again from its start and repeat them)",
            mark.job_id,
            mark.window,
            mark.after_file.as_deref().unwrap_or_default(),
            entry.output.display()
        ))),
        _ => Ok(()),
    }
}

/// Updates an entry at a commit: `mark` (a job's last file in the output) replaces the
/// window's mark; the marks of windows before `cursor` (committed) go.
pub(crate) fn remember(entry: &mut Entry, cursor: DateTime<Utc>, mark: Option<JobResume>) {
    if let Some(mark) = mark {
        match entry.jobs.iter_mut().find(|j| j.window == mark.window) {
            Some(slot) => *slot = mark,
            None => entry.jobs.push(mark),
        }
    }
    entry.jobs.retain(|j| j.window.end > cursor);
}

/// Runs `export`: through jobs with progress and Ctrl-C handling, otherwise as before.
pub(crate) async fn run(client: &Client, args: ExportArgs, ui: &Ui) -> Vec<(String, iterable_export::Result<Report>)> {
    if args.via != Via::Jobs {
        return crate::export::run(client, args, ui).await;
    }
    let limit = RateLimit::new(args.job_requests_per_second, Duration::from_secs(1));
    let client = &match client.with_job_limits(limit, 4) {
        Ok(client) => client,
        Err(err) => return vec![("export".into(), Err(err))],
    };
    let state_path = args.state.clone();
    let progress = spawn_progress(client.clone(), ui);
    let results = tokio::select! {
        results = crate::export::run(client, args, ui) => results,
        () = interrupt() => {
            interrupted(client, ui, state_path.as_deref()).await;
            std::process::exit(INTERRUPTED);
        }
    };
    if let Some(progress) = progress {
        progress.abort();
    }
    if ui.summary {
        let stats = client.job_stats();
        ui.line(&format!(
            "jobs: {} completed; files: {} listed, {} downloaded ({}), {} downloaded again, {} expired URLs refreshed",
            stats.done,
            stats.files_listed,
            stats.files_downloaded,
            human_bytes(stats.bytes_downloaded),
            stats.downloads_retried,
            stats.urls_refreshed
        ));
        if stats.files_discarded > 0 {
            ui.line(&format!(
                "job files discarded undelivered: {} downloaded while their job ran, which then failed or reported \
                 exportTruncated",
                stats.files_discarded
            ));
        }
        if stats.orphans_cancelled + stats.stale_cancelled > 0 {
            ui.line(&format!(
                "jobs cancelled: {} created by a start that failed, {} remembered for windows no longer planned",
                stats.orphans_cancelled, stats.stale_cancelled
            ));
        }
    }
    results
}

/// A line of job progress under the bars, updated every second.
fn spawn_progress(client: Client, ui: &Ui) -> Option<tokio::task::JoinHandle<()>> {
    if !ui.bars {
        return None;
    }
    let bar = ui.bar("jobs");
    Some(tokio::spawn(async move {
        loop {
            let s = client.job_stats();
            bar.set_position(s.bytes_downloaded);
            bar.set_message(format!(
                "{} enqueued, {} running, {} done; files {}/{}",
                s.enqueued, s.running, s.done, s.files_downloaded, s.files_listed
            ));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
}

/// The first Ctrl-C (SIGINT) or SIGTERM.
async fn interrupt() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// After the first interrupt: a second one exits at once; this run's jobs are cancelled,
/// except those whose files are partly in the output (the next run continues them), and the
/// user is told where things stand. The state file already holds every commit.
async fn interrupted(client: &Client, ui: &Ui, state: Option<&Path>) {
    tokio::spawn(async {
        interrupt().await;
        eprintln!("interrupted again: exiting at once");
        std::process::exit(INTERRUPTED);
    });
    let keep: Vec<i64> = state
        .and_then(|path| State::load(path).ok())
        .map(|state| {
            state
                .exports
                .values()
                .flat_map(|entry| entry.jobs.iter())
                .filter(|mark| mark.after_file.is_some())
                .map(|mark| mark.job_id)
                .collect()
        })
        .unwrap_or_default();
    // Starts whose request was out when the export stopped finish and cancel their jobs.
    let settled = match tokio::time::timeout(Duration::from_secs(30), client.settle_abandoned_starts()).await {
        Ok(ids) => ids,
        Err(_) => {
            ui.line("warning: a job start was still under way after 30 s: its job may be left running at Iterable");
            Vec::new()
        }
    };
    let active: Vec<i64> = client
        .active_jobs()
        .into_iter()
        .filter(|id| !keep.contains(id))
        .collect();
    ui.line(&format!(
        "interrupted: cancelling {} export job(s) of this run (Ctrl-C again to exit at once)",
        active.len() + settled.len()
    ));
    let (mut cancelled, mut finished) = (settled, Vec::new());
    for id in active {
        match tokio::time::timeout(Duration::from_secs(30), client.cancel_job(id)).await {
            Ok(Ok(())) => cancelled.push(id),
            // Iterable refuses to cancel a job that already ended.
            Ok(Err(err)) if err.status() == Some(400) => finished.push(id),
            Ok(Err(err)) => ui.line(&format!("warning: could not cancel export job {id}: {err}")),
            Err(_) => ui.line(&format!("warning: cancelling export job {id} timed out")),
        }
    }
    cancelled.sort_unstable();
    let list = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let mut message = format!("interrupted: cancelled export job(s) [{}]", list(&cancelled));
    if !finished.is_empty() {
        message.push_str(&format!(" ([{}] had already ended)", list(&finished)));
    }
    if !keep.is_empty() {
        message.push_str(&format!(
            "; left job(s) [{}] for the next run, which continues them: some of their files are already in the \
             output",
            list(&keep)
        ));
    }
    match state {
        Some(path) => message.push_str(&format!(
            ". Every completed window is saved in {}: run the same command again to resume",
            path.display()
        )),
        None => message.push_str(". Without --state the output is incomplete: run the export again"),
    }
    ui.line(&message);
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).single().unwrap_or_default()
    }

    #[test]
    fn a_commit_keeps_the_marks_of_later_windows_and_a_file_mark_replaces_its_window_mark_in_place() {
        let first = Window {
            start: at(0),
            end: at(1),
        };
        let second = Window {
            start: at(1),
            end: at(2),
        };
        let mut entry = Entry {
            start: at(0),
            end: at(2),
            cursor: at(0),
            committed_len: 0,
            records: 0,
            done: false,
            output: "out".into(),
            fields: String::new(),
            seen: Vec::new(),
            seen_until: None,
            tail_from: at(2),
            tail: Vec::new(),
            jobs: vec![JobResume::new(first, 1, None), JobResume::new(second, 2, None)],
        };
        remember(
            &mut entry,
            first.start,
            Some(JobResume::new(first, 1, Some("f-1".into()))),
        );
        assert_eq!(
            entry.jobs,
            [
                JobResume::new(first, 1, Some("f-1".into())),
                JobResume::new(second, 2, None)
            ]
        );
        remember(&mut entry, first.end, None);
        assert_eq!(entry.jobs, [JobResume::new(second, 2, None)]);
        remember(&mut entry, second.end, None);
        assert!(entry.jobs.is_empty());
    }
}
