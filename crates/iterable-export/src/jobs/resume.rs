//! Resumed jobs and the windows planned: a window whose job already delivered files runs as it
//! is ([`fit_resumed`]); a remembered job without files whose window is no longer planned is
//! cancelled ([`ExportJobRequest::cancel_stale`]).

use super::ExportJobRequest;
use super::options::JobResume;
use crate::{Error, Result, Window};

impl ExportJobRequest {
    /// Cancels the jobs of `resume` points without delivered files whose windows overlap the
    /// `planned` windows without being one of them (the export now runs other windows there,
    /// for example with another window size): nothing would ever read their files, yet they
    /// would keep running at Iterable. A job that already ended is left as it is.
    pub(super) async fn cancel_stale(&self, planned: &[Window], resume: &[JobResume]) {
        let client = self.client();
        for mark in resume {
            let w = mark.window;
            let superseded = !planned.contains(&w) && planned.iter().any(|x| x.start < w.end && w.start < x.end);
            if mark.after_file.is_some() || !superseded {
                continue;
            }
            match client.cancel_job(mark.job_id).await {
                Ok(()) => {
                    tracing::info!(job_id = mark.job_id, window = %w, "cancelled the remembered job of a window no longer planned");
                    super::JobCounters::add(&client.jobs_shared().counters.stale_cancelled, 1);
                }
                // Refused: it already ended (400) or is gone (404).
                Err(err) if matches!(err.status(), Some(400 | 404)) => {
                    tracing::debug!(job_id = mark.job_id, error = %err, "the remembered job of a window no longer planned already ended");
                }
                Err(err) => {
                    tracing::warn!(job_id = mark.job_id, window = %w, error = %err, "could not cancel the remembered job of a window no longer planned");
                }
            }
        }
    }
}

/// `windows` fitted around the windows of the `resume` points whose files are partly in the
/// sink already: such a window must run as it is, its job continuing after its last delivered
/// file, whatever windows this run planned (another window size); a planned window running
/// across its edge would deliver those files again.
///
/// # Errors
/// [`Error::InvalidRequest`] when the windows cover only part of such a window.
pub(super) fn fit_resumed(windows: Vec<Window>, resume: &[JobResume]) -> Result<Vec<Window>> {
    let mut windows = windows;
    for mark in resume {
        let (w, Some(after)) = (mark.window, mark.after_file.as_deref()) else {
            continue;
        };
        let overlaps = |x: &Window| x.start < w.end && w.start < x.end;
        if windows.contains(&w) || !windows.iter().any(overlaps) {
            continue;
        }
        let covered: i64 = windows
            .iter()
            .filter(|x| overlaps(x))
            .map(|x| (x.end.min(w.end) - x.start.max(w.start)).num_seconds())
            .sum();
        if covered != (w.end - w.start).num_seconds() {
            return Err(Error::InvalidRequest(format!(
                "export job {} of window {w} already delivered its files up to {after}, but this export covers \
                 only part of that window: export the whole window (the same dates) to continue the job",
                mark.job_id
            )));
        }
        let mut fitted = Vec::with_capacity(windows.len() + 2);
        for x in windows {
            if !overlaps(&x) {
                fitted.push(x);
                continue;
            }
            if x.start < w.start {
                fitted.push(Window {
                    start: x.start,
                    end: w.start,
                });
            }
            if !fitted.contains(&w) {
                fitted.push(w);
            }
            if x.end > w.end {
                fitted.push(Window {
                    start: w.end,
                    end: x.end,
                });
            }
        }
        windows = fitted;
    }
    Ok(windows)
}
