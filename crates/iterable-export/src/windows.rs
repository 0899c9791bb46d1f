//! Windowed exports: split a time span into windows, retry or split a window that fails, and
//! deliver every record to a [`Sink`] exactly once.

use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use futures::TryStreamExt;

use crate::{Error, Export, Format, Result};

/// A half-open time window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

impl Window {
    /// All of time: the one window of an export by [`Range`](crate::Range).
    pub const ALL: Window = Window {
        start: DateTime::<Utc>::MIN_UTC,
        end: DateTime::<Utc>::MAX_UTC,
    };

    /// The window's length.
    pub fn len(&self) -> TimeDelta {
        self.end - self.start
    }

    /// Whether the window is empty (`start >= end`).
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// The two halves, split at a whole second; `None` when the window is shorter than two
    /// seconds.
    pub fn halves(&self) -> Option<(Window, Window)> {
        let half_secs = self.len().num_seconds() / 2;
        if half_secs < 1 {
            return None;
        }
        let mid = self.start + TimeDelta::seconds(half_secs);
        Some((
            Window {
                start: self.start,
                end: mid,
            },
            Window {
                start: mid,
                end: self.end,
            },
        ))
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}, {})",
            self.start.format("%Y-%m-%dT%H:%M:%SZ"),
            self.end.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// Splits `[start, end)` into consecutive windows of `size` (the last one may be shorter).
/// Coverage is exact: no gap, no overlap. Times are truncated to whole seconds, as Iterable's
/// dates have second precision; `size` is rounded up to at least one second.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use std::time::{Duration, Instant};
/// use iterable_export::plan_windows;
///
/// let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
/// let end = Utc.with_ymd_and_hms(2024, 1, 3, 12, 0, 0).unwrap();
/// let windows = plan_windows(start, end, Duration::from_secs(86_400));
/// assert_eq!(windows.len(), 3);
/// assert_eq!(windows[2].start, Utc.with_ymd_and_hms(2024, 1, 3, 0, 0, 0).unwrap());
/// assert_eq!(windows[2].end, end);
/// ```
pub fn plan_windows(start: DateTime<Utc>, end: DateTime<Utc>, size: Duration) -> Vec<Window> {
    let (start, end) = (start.trunc_subsecs(0), end.trunc_subsecs(0));
    let secs = i64::try_from(size.as_secs().max(1)).unwrap_or(i64::MAX);
    let step = TimeDelta::try_seconds(secs).unwrap_or(TimeDelta::MAX);
    let mut windows = Vec::new();
    let mut cursor = start;
    while cursor < end {
        let next = cursor.checked_add_signed(step).map_or(end, |n| n.min(end));
        windows.push(Window {
            start: cursor,
            end: next,
        });
        cursor = next;
    }
    windows
}

/// Where a windowed export puts its records. The engine calls, for every window attempt:
/// [`begin`](Sink::begin), then [`header`](Sink::header) (CSV only) and
/// [`record`](Sink::record) for each record in order, then either [`commit`](Sink::commit)
/// when the window's body arrived completely, or [`abort`](Sink::abort) when the attempt failed
/// (also after a failed `commit`, before the export returns its error)
/// — after which the same records may be delivered again by a retry, or by the two halves of a
/// split window. A sink that discards everything since `begin` on `abort` therefore sees every
/// record exactly once. [`FileSink`](crate::FileSink) does that with a file.
///
/// The methods return `impl Future` (no boxing, no allocation per record), so `Sink` is not
/// dyn-compatible: to choose a sink at run time, use an enum that delegates to its variants
/// (the CLI's `Target` does: a file or standard output). That is deliberate — an export calls
/// [`record`](Sink::record) up to millions of times a second, and a boxed future per call would
/// cost an allocation each; an enum costs a branch, and keeps each variant's own methods
/// (a file's committed length, its `finish`) reachable without downcasting.
pub trait Sink: Send {
    /// A window attempt starts.
    fn begin(&mut self, window: &Window) -> impl Future<Output = Result<()>> + Send;

    /// The raw header row of a CSV body (without its line terminator). Called once per attempt
    /// before the first record; exports through jobs call it before each file's records (every
    /// file of a CSV job starts with the window's header row). Default: ignored.
    fn header(&mut self, header: &[u8]) -> impl Future<Output = Result<()>> + Send {
        let _ = header;
        async { Ok(()) }
    }

    /// One record: an NDJSON line, or a CSV record, as raw bytes without the terminator.
    fn record(&mut self, record: &[u8]) -> impl Future<Output = Result<()>> + Send;

    /// The window is complete: make its records permanent.
    fn commit(&mut self, window: &Window, records: u64) -> impl Future<Output = Result<()>> + Send;

    /// The attempt failed: forget every record received since [`begin`](Sink::begin).
    fn abort(&mut self, window: &Window) -> impl Future<Output = Result<()>> + Send;

    /// Exports through jobs ([`ExportJobRequest::export_plan`](crate::ExportJobRequest::export_plan))
    /// only: every record of the window's job up to and including its file `file` (`records`
    /// of them in that file) was handed over since [`begin`](Sink::begin). A sink may make the
    /// records received so far permanent here, as in [`commit`](Sink::commit), and remember
    /// `(window, job_id, file)`: a resumed export given that point
    /// ([`JobOptions::with_resume`](crate::JobOptions::with_resume)) continues the same job after
    /// that file, and an [`abort`](Sink::abort) later in the window must then only forget what
    /// came after this call. Once a sink was called here, the export never hands the window's
    /// earlier files over again. Default: nothing (the window commits as a whole).
    fn job_file_done(
        &mut self,
        window: &Window,
        job_id: i64,
        file: &str,
        records: u64,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (window, job_id, file, records);
        async { Ok(()) }
    }
}

/// How a windowed export splits and retries.
///
/// Start from [`WindowOptions::default`] (1-day windows growing up to 30 days, split down to a
/// minute after 2 failures, NDJSON) and adjust with the `with_*` methods; fields may be added in
/// later versions. Every value is accepted, none panics: sizes are rounded up to whole seconds
/// (at least one), a size beyond what dates can represent means one window to the end, a
/// `max_size` below `size` means fixed windows of `size`, a `min_size` of zero lets windows be
/// split down to one second, and a `split_after` of 0 acts as 1.
///
/// ```
/// use std::time::Duration;
/// use iterable_export::{Format, WindowOptions};
///
/// let hour = Duration::from_secs(3600);
/// let options = WindowOptions::default()
///     .with_size(6 * hour)
///     .with_max_size(6 * hour) // fixed 6-hour windows
///     .with_format(Format::Csv);
/// assert_eq!(options.size, 6 * hour);
/// assert_eq!(options.split_after, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowOptions {
    /// Length of each window ([`Export::export_windows`]: of the first window).
    pub size: Duration,
    /// [`Export::export_windows`] doubles the window, up to this length, after a window whose
    /// body arrived in less than half of the rate limit's interval (15 s at 4 requests per
    /// minute): with a per-request limit, small windows waste most of each request's slot.
    /// Set it to `size` for fixed windows.
    pub max_size: Duration,
    /// Windows are not split below this length.
    pub min_size: Duration,
    /// Failures mid-body of one window before it is split in half (0 acts as 1).
    pub split_after: u32,
    /// NDJSON or CSV.
    pub format: Format,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            size: Duration::from_secs(86_400),
            max_size: Duration::from_secs(30 * 86_400),
            min_size: Duration::from_secs(60),
            split_after: 2,
            format: Format::Ndjson,
        }
    }
}

impl WindowOptions {
    /// Sets the length of each window ([`Export::export_windows`]: of the first window).
    pub const fn with_size(mut self, size: Duration) -> Self {
        self.size = size;
        self
    }

    /// Sets the longest window [`Export::export_windows`] grows to; equal to `size` for fixed
    /// windows.
    pub const fn with_max_size(mut self, max_size: Duration) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets the length below which windows are not split.
    pub const fn with_min_size(mut self, min_size: Duration) -> Self {
        self.min_size = min_size;
        self
    }

    /// Sets how many failures mid-body of one window split it in half (0 acts as 1).
    pub const fn with_split_after(mut self, split_after: u32) -> Self {
        self.split_after = split_after;
        self
    }

    /// Sets the format: NDJSON or CSV.
    pub const fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
}

/// What a windowed export did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowedSummary {
    /// Windows committed (split halves count separately).
    pub windows: u64,
    /// Records delivered and committed.
    pub records: u64,
    /// Body bytes of committed windows.
    pub bytes: u64,
    /// Attempts that failed mid-body and were retried.
    pub retries: u64,
    /// Windows split in half.
    pub splits: u64,
}

impl Export {
    /// Exports `[start, end)` (set with [`Export::between`]) window by window into `sink`:
    /// [`plan_windows`] with `options.size`, then [`Export::export_plan`].
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] without dates; see [`Export::export_plan`].
    pub async fn export_windows<S: Sink>(&self, options: WindowOptions, sink: &mut S) -> Result<WindowedSummary> {
        self.validate()?;
        let Some((start, end)) = self.dates() else {
            return Err(Error::InvalidRequest(
                "a windowed export needs dates: call between(start, end) instead of range(...)".into(),
            ));
        };
        let plan = Plan::Adaptive {
            cursor: start.trunc_subsecs(0),
            end: end.trunc_subsecs(0),
            size: whole_seconds(options.size),
            max: whole_seconds(options.max_size.max(options.size)),
            pending: VecDeque::new(),
        };
        self.run_plan(plan, options, sink).await
    }

    /// Exports the given windows, in order, into `sink` (the export's own dates are replaced by
    /// each window's). An export given a [`Range`](crate::Range) ignores `windows`: it is
    /// delivered as the one window [`Window::ALL`] and never split.
    ///
    /// Every request waits for the client's rate limiter; failures before the body (429, 5xx,
    /// connection errors) are retried by the client's [`RetryPolicy`](crate::RetryPolicy); a body
    /// that fails midway is aborted in the sink and the window retried, and after
    /// `split_after` such failures split in half (down to `min_size`). When retries run out the
    /// export fails with [`Error::WindowFailed`] naming the window: no window is ever skipped.
    /// Checkpoint in [`Sink::commit`], which runs after each complete window.
    ///
    /// # Errors
    /// [`Error::WindowFailed`] for a window that kept failing or failed with an error retrying
    /// cannot fix; errors of the sink.
    pub async fn export_plan<S: Sink>(
        &self,
        windows: impl IntoIterator<Item = Window>,
        options: WindowOptions,
        sink: &mut S,
    ) -> Result<WindowedSummary> {
        let plan = if self.predefined_range().is_some() {
            Plan::Fixed(VecDeque::from([Window::ALL]))
        } else {
            Plan::Fixed(windows.into_iter().collect())
        };
        self.run_plan(plan, options, sink).await
    }

    async fn run_plan<S: Sink>(&self, mut plan: Plan, options: WindowOptions, sink: &mut S) -> Result<WindowedSummary> {
        self.validate()?;
        let ranged = self.predefined_range().is_some();
        let slot = self.client().rate_limit().min_interval();
        let mut summary = WindowedSummary::default();
        let policy = self.client().retry_policy();
        let min = TimeDelta::from_std(options.min_size).unwrap_or(TimeDelta::MAX);
        while let Some(window) = plan.next() {
            let attempt = if ranged {
                self.clone()
            } else {
                self.clone().between(window.start, window.end)
            };
            attempt.validate()?;
            let mut failures = 0u32;
            loop {
                sink.begin(&window).await?;
                let err = match deliver(&attempt, options.format, sink).await {
                    Ok((records, bytes, elapsed)) => {
                        if let Err(err) = sink.commit(&window, records).await {
                            // The window's state in the sink is unknown: take it back to the last
                            // commit (a file is truncated) before giving up.
                            let _ = sink.abort(&window).await;
                            return Err(err);
                        }
                        plan.completed(elapsed < slot / 2);
                        summary.windows += 1;
                        summary.records += records;
                        summary.bytes += bytes;
                        break;
                    }
                    Err(Failure::Sink(err)) => {
                        sink.abort(&window).await?;
                        return Err(err);
                    }
                    Err(Failure::Request(err)) => err,
                };
                sink.abort(&window).await?;
                let err = match err {
                    // The client already retried the request itself: give up on the window.
                    Attempt::Open(err) => {
                        let attempts = failures.saturating_add(if err.is_transient() {
                            policy.max_retries.saturating_add(1)
                        } else {
                            1
                        });
                        return Err(window_failed(self, ranged, &window, attempts, err));
                    }
                    Attempt::Body(err) => err,
                };
                failures += 1;
                if !err.is_transient() || failures > policy.max_retries {
                    return Err(window_failed(self, ranged, &window, failures, err));
                }
                if !ranged
                    && failures >= options.split_after
                    && min.checked_mul(2).is_some_and(|m| window.len() >= m)
                    && let Some((first, second)) = window.halves()
                {
                    tracing::warn!(data_type = %self.data_type(), %window, error = %err, "splitting the window after repeated failures");
                    self.client().count_window_split();
                    summary.splits += 1;
                    plan.split(first, second);
                    break;
                }
                summary.retries += 1;
                self.client().count_retry();
                let delay = policy.backoff(failures);
                tracing::warn!(data_type = %self.data_type(), %window, error = %err, delay_ms = delay.as_millis() as u64, "window failed mid-body; retrying");
                tokio::time::sleep(delay).await;
            }
        }
        Ok(summary)
    }
}

/// The windows still to export.
enum Plan {
    /// A list fixed in advance (split halves go to its front).
    Fixed(VecDeque<Window>),
    /// Windows cut from `cursor` as the export goes, growing while bodies are fast.
    Adaptive {
        cursor: DateTime<Utc>,
        end: DateTime<Utc>,
        size: TimeDelta,
        max: TimeDelta,
        pending: VecDeque<Window>,
    },
}

impl Plan {
    fn next(&mut self) -> Option<Window> {
        match self {
            Plan::Fixed(queue) => queue.pop_front(),
            Plan::Adaptive {
                cursor,
                end,
                size,
                pending,
                ..
            } => pending.pop_front().or_else(|| {
                (*cursor < *end).then(|| {
                    let next = cursor.checked_add_signed(*size).map_or(*end, |n| n.min(*end));
                    let window = Window {
                        start: *cursor,
                        end: next,
                    };
                    *cursor = next;
                    window
                })
            }),
        }
    }

    fn split(&mut self, first: Window, second: Window) {
        match self {
            Plan::Fixed(queue) => {
                queue.push_front(second);
                queue.push_front(first);
            }
            Plan::Adaptive { size, pending, .. } => {
                pending.push_front(second);
                pending.push_front(first);
                // The server cut a window this long: do not start the next one at this size.
                *size = (*size / 2).max(TimeDelta::seconds(1));
            }
        }
    }

    fn completed(&mut self, fast: bool) {
        if let Plan::Adaptive { size, max, pending, .. } = self
            && fast
            && pending.is_empty()
        {
            *size = size.checked_mul(2).map_or(*max, |d| d.min(*max));
        }
    }
}

fn whole_seconds(d: Duration) -> TimeDelta {
    i64::try_from(d.as_secs().max(1))
        .ok()
        .and_then(TimeDelta::try_seconds)
        .unwrap_or(TimeDelta::MAX)
}

enum Failure {
    /// The request or its body failed.
    Request(Attempt),
    /// The sink failed: stop.
    Sink(Error),
}

/// Where an attempt failed.
enum Attempt {
    /// Before the body (the client's retries are exhausted).
    Open(Error),
    /// While the body arrived: retry the window, or split it.
    Body(Error),
}

fn window_failed(export: &Export, ranged: bool, window: &Window, attempts: u32, err: Error) -> Error {
    Error::WindowFailed {
        data_type: export.data_type().to_string(),
        window: if ranged {
            "(whole range)".to_owned()
        } else {
            window.to_string()
        },
        attempts,
        source: Box::new(err),
    }
}

/// One attempt at one window: open it and hand every record to the sink.
async fn deliver<S: Sink>(
    export: &Export,
    format: Format,
    sink: &mut S,
) -> std::result::Result<(u64, u64, Duration), Failure> {
    let mut records = 0u64;
    match format {
        Format::Ndjson => {
            let mut lines = export.lines().await.map_err(|e| Failure::Request(Attempt::Open(e)))?;
            let started = Instant::now();
            while let Some(line) = lines.try_next().await.map_err(|e| Failure::Request(Attempt::Body(e)))? {
                sink.record(&line).await.map_err(Failure::Sink)?;
                records += 1;
            }
            Ok((records, lines.bytes_read(), started.elapsed()))
        }
        Format::Csv => {
            let body = export
                .body(Format::Csv)
                .await
                .map_err(|e| Failure::Request(Attempt::Open(e)))?;
            let started = Instant::now();
            // Reading the header row is already part of the body.
            let mut rows = crate::CsvRecords::new(body.into_inner(), export.client().max_line_length())
                .await
                .map_err(|e| Failure::Request(Attempt::Body(e)))?;
            // An empty body has no header row: there is nothing to write for it.
            if !rows.headers().is_empty() {
                sink.header(rows.header_raw()).await.map_err(Failure::Sink)?;
            }
            while let Some(row) = rows.try_next().await.map_err(|e| Failure::Request(Attempt::Body(e)))? {
                sink.record(row.raw()).await.map_err(Failure::Sink)?;
                records += 1;
            }
            Ok((records, rows.bytes_read(), started.elapsed()))
        }
    }
}

#[cfg(test)]
mod tests;
