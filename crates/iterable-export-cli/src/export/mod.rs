//! `iterable-export export`: windows, checkpoints, resume and incremental sync.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use iterable_export::{Client, Dedup, Error, ExclusiveLock, WindowOptions};

use crate::args::ExportArgs;
use crate::checkpoint::{Checkpoint, Checkpoints};
use crate::plan::{Opening, plan_job, usage};
use crate::state::State;
use crate::ui::{Ui, human_bytes};

mod tracked;

pub(crate) use self::tracked::Target;
use self::tracked::{Tracked, finish};

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

/// Runs `export`: every data type concurrently, under the client's one rate limiter.
pub async fn run(client: &Client, args: ExportArgs, ui: &Ui) -> Vec<(String, iterable_export::Result<Report>)> {
    let mut results = Vec::new();
    let to_stdout = args.output.as_os_str() == "-";
    let data_types = args.data_types();
    if to_stdout && data_types.len() > 1 {
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
    if let Some(dir) = args
        .state
        .as_deref()
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        && let Err(err) = std::fs::create_dir_all(dir)
    {
        results.push((
            "export".into(),
            Err(Error::Io {
                context: format!("cannot create {}", dir.display()),
                source: err,
            }),
        ));
        return results;
    }
    // Before the state is read: one run at a time per state file, held until this run ends (the
    // operating system releases it if the process dies). Output files are locked by their sinks
    // (each `.part` file), all opened before the first request.
    let _state_lock = match args
        .state
        .as_deref()
        .map(|path| ExclusiveLock::acquire(State::lock_path(path)))
    {
        Some(Err(err)) => {
            results.push(("export".into(), Err(err)));
            return results;
        }
        Some(Ok(lock)) => Some(lock),
        None => None,
    };
    // Held: a state write that a kill interrupted left its temporary file; no writer owns it now.
    if let Some(path) = &args.state
        && let Err(err) = iterable_export::remove_stale_temporaries(path)
    {
        results.push(("export".into(), Err(err)));
        return results;
    }
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
    for data_type in &data_types {
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
    // Outputs another export is writing refuse this run before the state file is saved (the
    // outputs to resume or extend were checked, and locked, while planning).
    for job in &jobs {
        if let Err(err) = crate::parquet::check_create(&args, &job.opening) {
            results.push((job.data_type.to_string(), Err(err)));
            return results;
        }
    }

    let shared = match (state, &args.state) {
        (Some(mut state), Some(path)) => {
            for job in &jobs {
                if let Some(entry) = &job.entry {
                    state.exports.insert(job.key.clone(), entry.clone());
                }
            }
            if let Err(err) = state.save(path) {
                results.push(("export".into(), Err(err)));
                return results;
            }
            Some(Arc::new(Checkpoints {
                path: path.clone(),
                state: tokio::sync::Mutex::new((state, 0)),
                saved: tokio::sync::Mutex::new(0),
            }))
        }
        _ => None,
    };

    let options = WindowOptions::default()
        .with_size(args.window)
        .with_max_size(args.max_window.max(args.window))
        .with_format(args.format.into());
    // Every output is opened (and its `.part` file locked) before any download starts, so a run
    // that collides with another one stops at once.
    let mut opened = Vec::new();
    for mut job in jobs {
        match crate::parquet::open(
            &args,
            job.data_type,
            std::mem::replace(&mut job.opening, Opening::Stdout),
        ) {
            Ok(target) => opened.push((job, target)),
            Err(err) => {
                results.push((job.data_type.to_string(), Err(err)));
                return results;
            }
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (job, target) in opened {
        let checkpoint = shared.as_ref().map(|shared| Checkpoint {
            shared: shared.clone(),
            key: job.key.clone(),
        });
        let name = job.data_type.to_string();
        let bar = ui.bar(&name);
        let ui = ui.clone();
        let via_jobs = crate::jobs::ViaJobs::new(&args, options, shared.clone(), &job);
        tasks.spawn(async move {
            let started = Instant::now();
            let mut sink = Tracked {
                inner: {
                    let dedup = Dedup::new(target, job.seen, job.tail_from)
                        .with_drop_until(job.seen_until)
                        .with_remembered(job.remembered);
                    match job.time_field {
                        Some(field) => dedup.with_time_field(field),
                        None => dedup,
                    }
                },
                bar: bar.clone(),
                ui,
                name: name.clone(),
                attempt_records: 0,
                attempt_bytes: 0,
                records: 0,
                bytes: 0,
                checkpoint,
                job_mark: None,
            };
            let result = if let Some(via_jobs) = via_jobs {
                via_jobs.export(&mut sink).await
            } else if job.spans.is_empty() {
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
                Err(err) => {
                    // A staged Parquet directory goes; the earlier export stays as it was.
                    if let Target::File(output) = sink.inner.into_inner() {
                        output.abandon().await;
                    }
                    Err(err)
                }
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
