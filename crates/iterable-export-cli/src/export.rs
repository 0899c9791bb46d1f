//! `iterable-export export`: windows, checkpoints, resume and incremental sync.

use std::io::{BufWriter, Stdout};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use indicatif::{HumanCount, ProgressBar};
use iterable_export::{
    Client, DataType, Dedup, Error, ExclusiveLock, Export, FileSink, Format, RecordId, Sink, Window, WindowOptions,
    WriterSink,
};

use crate::args::ExportArgs;
use crate::state::{Entry, State};
use crate::ui::{Ui, human_bytes};

/// What one data type's export did.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub records: u64,
    pub bytes: u64,
    pub duration: Duration,
    pub output: Option<PathBuf>,
    pub skipped_duplicates: u64,
    pub note: Option<String>,
}

/// Where records go.
enum Target {
    File(FileSink),
    Stdout(WriterSink<BufWriter<Stdout>>),
}

impl Target {
    fn committed_len(&self) -> u64 {
        match self {
            Target::File(sink) => sink.committed_len(),
            Target::Stdout(_) => 0,
        }
    }
}

impl Sink for Target {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.begin(window).await,
            Target::Stdout(s) => s.begin(window).await,
        }
    }
    async fn header(&mut self, header: &[u8]) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.header(header).await,
            Target::Stdout(s) => s.header(header).await,
        }
    }
    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.record(record).await,
            Target::Stdout(s) => s.record(record).await,
        }
    }
    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.commit(window, records).await,
            Target::Stdout(s) => s.commit(window, records).await,
        }
    }
    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.abort(window).await,
            Target::Stdout(s) => s.abort(window).await,
        }
    }
}

/// How to open the output, decided while planning and carried out only once every data type
/// was planned and the checkpoint saved, so a refused run changes no file.
enum Opening {
    Stdout,
    Create { path: PathBuf, sync: bool },
    Resume { path: PathBuf, format: Format, len: u64 },
    Extend { path: PathBuf, format: Format, len: u64 },
}

impl Opening {
    fn open(self) -> iterable_export::Result<Target> {
        Ok(match self {
            Opening::Stdout => Target::Stdout(WriterSink::new(BufWriter::new(std::io::stdout()))?),
            Opening::Create { path, sync } => Target::File(FileSink::create(path)?.sync_on_commit(sync)),
            Opening::Resume { path, format, len } => Target::File(FileSink::resume(path, format, len)?),
            Opening::Extend { path, format, len } => Target::File(FileSink::extend(path, format, len)?),
        })
    }
}

/// Counts what is committed, drives the progress bar and writes the checkpoint.
struct Tracked {
    inner: Dedup<Target>,
    bar: ProgressBar,
    ui: Ui,
    name: String,
    attempt_records: u64,
    attempt_bytes: u64,
    records: u64,
    bytes: u64,
    checkpoint: Option<Checkpoint>,
}

struct Checkpoint {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    key: String,
}

impl Checkpoint {
    /// Updates this data type's entry and saves the state file, on a blocking thread: the
    /// `fsync`s of a save must not stall the other downloads on the runtime.
    async fn update(&self, update: impl FnOnce(&mut Entry) + Send + 'static) -> iterable_export::Result<()> {
        let (state, path, key) = (self.state.clone(), self.path.clone(), self.key.clone());
        let save = move || {
            let mut state = state.lock().map_err(|_| Error::Io {
                context: "the state is unusable after a panic".into(),
                source: std::io::Error::other("poisoned lock"),
            })?;
            if let Some(entry) = state.exports.get_mut(&key) {
                update(entry);
            }
            state.save(&path)
        };
        tokio::task::spawn_blocking(save).await.map_err(|err| Error::Io {
            context: "saving the state file failed".into(),
            source: std::io::Error::other(err.to_string()),
        })?
    }
}

impl Tracked {
    fn show(&self, records: u64, bytes: u64) {
        self.bar.set_position(bytes);
        self.bar.set_message(format!("{} records", HumanCount(records)));
    }

    async fn save(&self, update: impl FnOnce(&mut Entry) + Send + 'static) -> iterable_export::Result<()> {
        match &self.checkpoint {
            Some(checkpoint) => checkpoint.update(update).await,
            None => Ok(()),
        }
    }
}

impl Sink for Tracked {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.attempt_records = 0;
        self.attempt_bytes = 0;
        self.inner.begin(window).await
    }

    async fn header(&mut self, header: &[u8]) -> iterable_export::Result<()> {
        self.inner.header(header).await
    }

    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.inner.record(record).await?;
        self.attempt_records += 1;
        self.attempt_bytes += record.len() as u64 + 1;
        if self.attempt_records.is_multiple_of(1024) {
            self.show(self.records + self.attempt_records, self.bytes + self.attempt_bytes);
        }
        Ok(())
    }

    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        let (skipped, len) = (self.inner.skipped(), self.inner.inner().committed_len());
        self.inner.commit(window, records).await?;
        // Count what reached the output: not the look-back duplicates the dedupe dropped.
        self.records += self.attempt_records - (self.inner.skipped() - skipped);
        self.bytes += match self.inner.inner() {
            Target::File(file) => file.committed_len() - len,
            Target::Stdout(_) => self.attempt_bytes,
        };
        self.show(self.records, self.bytes);
        let (len, records_total, tail) = (
            self.inner.inner().committed_len(),
            self.records,
            self.inner.remembered().to_vec(),
        );
        let seen = self.inner.remaining_seen();
        let cursor = window.end;
        self.save(move |entry| {
            entry.cursor = cursor;
            entry.seen = seen;
            entry.committed_len = len;
            entry.records = records_total;
            entry.tail = tail;
        })
        .await?;
        if !self.ui.bars && *window != Window::ALL {
            tracing::info!("{}: window {window} done, {} records so far", self.name, self.records);
        }
        Ok(())
    }

    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.show(self.records, self.bytes);
        self.inner.abort(window).await
    }
}

/// The plan for one data type, decided from the arguments and the state file.
struct Job {
    data_type: DataType,
    key: String,
    export: Export,
    /// Spans to export in order; empty for a `--range` export.
    spans: Vec<Window>,
    opening: Opening,
    seen: Vec<RecordId>,
    /// Seen records are dropped only before this time (the previous run's end).
    seen_until: Option<DateTime<Utc>>,
    tail_from: Option<DateTime<Utc>>,
    /// Identities already remembered from the tail by the interrupted run being resumed.
    remembered: Vec<RecordId>,
    entry: Option<Entry>,
    note: Option<String>,
}

fn fields_key(args: &ExportArgs) -> String {
    if !args.only_fields.is_empty() {
        format!("only:{}", args.only_fields.join(","))
    } else if !args.omit_fields.is_empty() {
        format!("omit:{}", args.omit_fields.join(","))
    } else {
        String::new()
    }
}

/// The spans exported one after another: `[start, end)` cut at each of `cuts` that falls
/// inside it — with a checkpoint, the start of this run's look-back tail (so its records can be
/// remembered for the next incremental run) and the previous run's end (where dropping its
/// records stops). Each span is cut into (adaptive) windows.
fn spans(start: DateTime<Utc>, end: DateTime<Utc>, cuts: &[Option<DateTime<Utc>>]) -> Vec<Window> {
    let mut points: Vec<DateTime<Utc>> = cuts
        .iter()
        .flatten()
        .copied()
        .filter(|t| *t > start && *t < end)
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut spans = Vec::new();
    let mut from = start;
    for point in points.into_iter().chain((start < end).then_some(end)) {
        spans.push(Window {
            start: from,
            end: point,
        });
        from = point;
    }
    spans
}

fn usage(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

fn plan_job(
    client: &Client,
    args: &ExportArgs,
    data_type: DataType,
    state: Option<&State>,
    now: DateTime<Utc>,
) -> iterable_export::Result<Option<Job>> {
    let format: Format = args.format.into();
    let key = format!("{data_type}.{}", format.extension());
    let to_stdout = args.output.as_os_str() == "-";
    let path = args.output.join(&key);
    let mut export = client.export(data_type);
    if !args.only_fields.is_empty() {
        export = export.only_fields(args.only_fields.iter().cloned());
    }
    if !args.omit_fields.is_empty() {
        export = export.omit_fields(args.omit_fields.iter().cloned());
    }
    let lookback = TimeDelta::from_std(args.lookback).unwrap_or(TimeDelta::zero());

    let fresh = if to_stdout {
        Opening::Stdout
    } else {
        Opening::Create {
            path: path.clone(),
            sync: state.is_some(),
        }
    };
    if let Some(range) = args.range {
        return Ok(Some(Job {
            data_type,
            key,
            export: export.range(range),
            spans: Vec::new(),
            opening: fresh,
            seen: Vec::new(),
            seen_until: None,
            tail_from: None,
            remembered: Vec::new(),
            entry: None,
            note: None,
        }));
    }

    let end = args.end.unwrap_or(now).trunc_subsecs(0);
    let existing = state.and_then(|s| s.exports.get(&key)).cloned();
    let fields = fields_key(args);
    if let Some(entry) = &existing
        && entry.fields != fields
    {
        return Err(usage(format!(
            "the state file's export of {key} used fields {:?}, this run asks for {fields:?}: use the same fields, \
             or another state file",
            entry.fields
        )));
    }
    if let Some(entry) = &existing
        && !to_stdout
        && entry.output != path
    {
        return Err(usage(format!(
            "the state file's export of {key} writes to {}, this run to {}: use --output {} or another state file",
            entry.output.display(),
            path.display(),
            entry
                .output
                .parent()
                .map_or_else(|| ".".into(), |p| p.display().to_string())
        )));
    }

    // A finished run whose final rename was lost (a power cut after the checkpoint said done):
    // the `.part` file is the complete output the checkpoint describes; publish it.
    if let Some(entry) = existing.as_ref().filter(|e| e.done)
        && FileSink::complete_rename(&entry.output, entry.committed_len)?
    {
        tracing::info!("{}: completed the interrupted rename of the finished export", entry.output.display());
    }

    // An unfinished run: resume it exactly where its last checkpoint left it.
    if let Some(entry) = existing.as_ref().filter(|e| !e.done) {
        if args.start.is_some_and(|s| s.trunc_subsecs(0) != entry.start)
            || args.end.is_some_and(|e| e.trunc_subsecs(0) != entry.end)
        {
            return Err(usage(format!(
                "the state file holds an unfinished export of {key} for [{}, {}): rerun with the same --start/--end \
                 (or none) to resume it, or use another state file",
                entry.start.to_rfc3339(),
                entry.end.to_rfc3339()
            )));
        }
        FileSink::check_resume(&entry.output, entry.committed_len)?;
        let opening = Opening::Resume {
            path: entry.output.clone(),
            format,
            len: entry.committed_len,
        };
        let spans = spans(entry.cursor, entry.end, &[Some(entry.tail_from), entry.seen_until]);
        let note = Some(format!("resumed from {}", entry.cursor.to_rfc3339()));
        return Ok(Some(Job {
            data_type,
            key,
            export,
            spans,
            opening,
            seen: entry.seen.clone(),
            seen_until: entry.seen_until,
            tail_from: Some(entry.tail_from),
            remembered: entry.tail.clone(),
            entry: Some(entry.clone()),
            note,
        }));
    }

    let (start, seen, seen_until, opening, note) = match (&existing, args.start) {
        // Incremental: continue from the last run's end, re-reading the tail it remembered (the
        // look-back it was run with), so that everything re-read can be recognised.
        (Some(entry), None) => {
            if end <= entry.end {
                return Ok(None);
            }
            FileSink::check_extend(&entry.output, entry.committed_len)?;
            let opening = Opening::Extend {
                path: entry.output.clone(),
                format,
                len: entry.committed_len,
            };
            let note = Some(format!(
                "incremental from {}, re-reading from {}",
                entry.end.to_rfc3339(),
                entry.tail_from.to_rfc3339()
            ));
            (entry.tail_from, entry.tail.clone(), Some(entry.end), opening, note)
        }
        (Some(entry), Some(start)) if entry.done && start.trunc_subsecs(0) == entry.start && end == entry.end => {
            return Ok(None);
        }
        (_, Some(start)) => {
            if start.trunc_subsecs(0) >= end {
                return Err(usage(format!(
                    "--start ({}) must be before --end ({})",
                    start.to_rfc3339(),
                    end.to_rfc3339()
                )));
            }
            (start.trunc_subsecs(0), Vec::new(), None, fresh, None)
        }
        (None, None) => {
            return Err(usage(
                "give --start (and optionally --end) or --range; or --state with the file of an earlier run to \
                 continue where it ended",
            ));
        }
    };
    if start >= end {
        return Err(usage(format!(
            "--start ({}) must be before --end ({})",
            start.to_rfc3339(),
            end.to_rfc3339()
        )));
    }
    let tail_from = end.checked_sub_signed(lookback).unwrap_or(start).max(start);
    let committed_len = match &opening {
        Opening::Extend { len, .. } | Opening::Resume { len, .. } => *len,
        Opening::Stdout | Opening::Create { .. } => 0,
    };
    let entry = state.map(|_| Entry {
        start,
        end,
        cursor: start,
        committed_len,
        records: 0,
        done: false,
        output: path.clone(),
        fields: fields.clone(),
        seen: seen.clone(),
        seen_until,
        tail_from,
        tail: Vec::new(),
    });
    Ok(Some(Job {
        data_type,
        key,
        export: export.between(start, end),
        spans: spans(start, end, &[state.map(|_| tail_from), seen_until]),
        opening,
        seen,
        seen_until,
        tail_from: state.map(|_| tail_from),
        remembered: Vec::new(),
        entry,
        note,
    }))
}

/// Runs `export`: every data type concurrently, under the client's one rate limiter.
pub async fn run(client: &Client, args: ExportArgs, ui: &Ui) -> Vec<(String, iterable_export::Result<Report>)> {
    let mut results = Vec::new();
    let to_stdout = args.output.as_os_str() == "-";
    if to_stdout && args.data_types.len() > 1 {
        results.push((
            "export".into(),
            Err(usage(
                "--output - (standard output) takes one --data-type; give a directory for several",
            )),
        ));
        return results;
    }
    if to_stdout && args.state.is_some() {
        results.push((
            "export".into(),
            Err(usage(
                "--state needs files to resume into: give --output DIR instead of -",
            )),
        ));
        return results;
    }
    if args.range.is_some() && args.state.is_some() {
        results.push((
            "export".into(),
            Err(usage("--state works with dates (--start/--end), not with --range")),
        ));
        return results;
    }
    if !to_stdout && let Err(err) = std::fs::create_dir_all(&args.output) {
        results.push((
            "export".into(),
            Err(Error::Io {
                context: format!("cannot create {}", args.output.display()),
                source: err,
            }),
        ));
        return results;
    }
    // Before the state is read: one run at a time per state file, held until this run ends (the
    // operating system releases it if the process dies). Output files are locked by their sinks
    // (each `.part` file), all opened before the first request.
    let _state_lock = match args.state.as_deref().map(|path| ExclusiveLock::acquire(State::lock_path(path))) {
        Some(Err(err)) => {
            results.push(("export".into(), Err(err)));
            return results;
        }
        Some(Ok(lock)) => Some(lock),
        None => None,
    };
    let state = match &args.state {
        Some(path) => match State::load(path) {
            Ok(state) => Some(state),
            Err(err) => {
                results.push(("export".into(), Err(err)));
                return results;
            }
        },
        None => None,
    };
    let now = Utc::now();
    let mut jobs = Vec::new();
    for data_type in &args.data_types {
        let name = format!("{data_type}");
        match plan_job(client, &args, *data_type, state.as_ref(), now) {
            Ok(Some(job)) => jobs.push(job),
            Ok(None) => results.push((
                name.clone(),
                Ok(Report {
                    name,
                    records: 0,
                    bytes: 0,
                    duration: Duration::ZERO,
                    output: None,
                    skipped_duplicates: 0,
                    note: Some("already complete, nothing new to export".into()),
                }),
            )),
            Err(err) => results.push((name, Err(err))),
        }
    }
    if results.iter().any(|(_, r)| r.is_err()) {
        return results;
    }

    let shared = state.map(|mut state| {
        for job in &jobs {
            if let Some(entry) = &job.entry {
                state.exports.insert(job.key.clone(), entry.clone());
            }
        }
        Arc::new(Mutex::new(state))
    });
    if let (Some(shared), Some(path)) = (&shared, &args.state)
        && let Ok(state) = shared.lock()
        && let Err(err) = state.save(path)
    {
        results.push(("export".into(), Err(err)));
        return results;
    }

    let options = WindowOptions::default()
        .with_size(args.window)
        .with_max_size(args.max_window.max(args.window))
        .with_format(args.format.into());
    // Every output is opened (and its `.part` file locked) before any download starts, so a run
    // that collides with another one stops at once.
    let mut opened = Vec::new();
    for mut job in jobs {
        match std::mem::replace(&mut job.opening, Opening::Stdout).open() {
            Ok(target) => opened.push((job, target)),
            Err(err) => {
                results.push((job.data_type.to_string(), Err(err)));
                return results;
            }
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (job, target) in opened {
        let checkpoint = match (&shared, &args.state) {
            (Some(state), Some(path)) => Some(Checkpoint {
                state: state.clone(),
                path: path.clone(),
                key: job.key.clone(),
            }),
            _ => None,
        };
        let name = job.data_type.to_string();
        let bar = ui.bar(&name);
        let ui = ui.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let mut sink = Tracked {
                inner: Dedup::new(target, job.seen, job.tail_from)
                    .with_drop_until(job.seen_until)
                    .with_remembered(job.remembered),
                bar: bar.clone(),
                ui,
                name: name.clone(),
                attempt_records: 0,
                attempt_bytes: 0,
                records: 0,
                bytes: 0,
                checkpoint,
            };
            let result = if job.spans.is_empty() {
                job.export.export_plan(Vec::new(), options, &mut sink).await.map(drop)
            } else {
                let mut result = Ok(());
                for span in &job.spans {
                    let export = job.export.clone().between(span.start, span.end);
                    if let Err(err) = export.export_windows(options, &mut sink).await {
                        result = Err(err);
                        break;
                    }
                }
                result
            };
            let finished = match result {
                Ok(_) => finish(sink).await,
                Err(err) => Err(err),
            };
            match &finished {
                Ok(_) => bar.finish(),
                Err(_) => bar.abandon(),
            }
            let report = finished.map(|f| Report {
                name: name.clone(),
                records: f.records,
                bytes: f.bytes,
                duration: started.elapsed(),
                output: f.output,
                skipped_duplicates: f.skipped,
                note: job.note,
            });
            (name, report)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            Err(err) => results.push((
                "export".into(),
                Err(Error::Io {
                    context: "an export task failed".into(),
                    source: std::io::Error::other(err.to_string()),
                }),
            )),
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    results
}

/// What a finished export leaves behind.
struct Finished {
    output: Option<PathBuf>,
    records: u64,
    bytes: u64,
    skipped: u64,
}

/// Completes the output (rename, or flush) and marks the checkpoint done.
async fn finish(sink: Tracked) -> iterable_export::Result<Finished> {
    let Tracked {
        inner,
        records,
        bytes,
        checkpoint,
        ..
    } = sink;
    let skipped = inner.skipped();
    let remembered = inner.remembered().to_vec();
    let output = match inner.into_inner() {
        Target::File(file) => Some(file.finish().await?),
        Target::Stdout(out) => {
            out.finish().await?;
            None
        }
    };
    if let Some(checkpoint) = checkpoint {
        checkpoint
            .update(move |entry| {
                entry.done = true;
                entry.cursor = entry.end;
                entry.tail = remembered;
            })
            .await?;
    }
    Ok(Finished {
        output,
        records,
        bytes,
        skipped,
    })
}

/// Prints the per-data-type summary.
pub fn print_summary(
    ui: &Ui,
    client: &Client,
    results: &[(String, iterable_export::Result<Report>)],
    elapsed: Duration,
) {
    if !ui.summary {
        return;
    }
    for (_, result) in results {
        if let Ok(r) = result {
            let secs = r.duration.as_secs_f64().max(1e-9);
            let output = r
                .output
                .as_deref()
                .map_or_else(|| "stdout".to_owned(), |p: &Path| p.display().to_string());
            let mut line = format!(
                "{:<22} {:>11} records {:>10} in {:>7.1}s {:>10}/s -> {output}",
                r.name,
                r.records,
                human_bytes(r.bytes),
                r.duration.as_secs_f64(),
                human_bytes((r.bytes as f64 / secs) as u64),
            );
            if r.skipped_duplicates > 0 {
                line.push_str(&format!(
                    " ({} duplicates from the look-back dropped)",
                    r.skipped_duplicates
                ));
            }
            if let Some(note) = &r.note {
                line.push_str(&format!(" [{note}]"));
            }
            ui.line(&line);
        }
    }
    let stats = client.stats();
    ui.line(&format!(
        "total {:.1}s: {} requests, {} retries, {} rate-limited (429), {} windows split, {:.1}s waiting for the rate limit",
        elapsed.as_secs_f64(),
        stats.requests,
        stats.retries,
        stats.rate_limited,
        stats.windows_split,
        stats.rate_limit_wait.as_secs_f64()
    ));
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_tail_is_its_own_span() {
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap_or_default();
        let end = start + TimeDelta::days(2);
        let minutes = |spans: Vec<Window>| -> Vec<(i64, i64)> {
            spans
                .iter()
                .map(|w| ((w.start - start).num_minutes(), (w.end - start).num_minutes()))
                .collect()
        };
        let five = end - TimeDelta::minutes(5);
        assert_eq!(minutes(spans(start, end, &[Some(five)])), vec![(0, 2875), (2875, 2880)]);
        assert_eq!(minutes(spans(start, end, &[None])), vec![(0, 2880)]);
        assert_eq!(
            minutes(spans(
                start,
                end,
                &[Some(five), Some(start + TimeDelta::days(1)), Some(five)]
            )),
            vec![(0, 1440), (1440, 2875), (2875, 2880)]
        );
        assert_eq!(
            minutes(spans(start, end, &[Some(start - TimeDelta::minutes(5)), Some(end)])),
            vec![(0, 2880)]
        );
        assert_eq!(minutes(spans(end, end, &[])), Vec::<(i64, i64)>::new());
    }
}
