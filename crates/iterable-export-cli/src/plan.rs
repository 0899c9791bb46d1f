//! Planning an export: what each data type exports (spans, look-back, de-duplication) and how
//! its output is opened, decided from the arguments and the state file before anything changes.

use std::path::PathBuf;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use iterable_export::{Client, DataType, Error, Export, FileSink, Format, RecordId, Window, WriterSink};
use std::io::BufWriter;

use crate::args::ExportArgs;
use crate::export::Target;
use crate::state::{Entry, State};

/// How to open the output, decided while planning and carried out only once every data type
/// was planned and the checkpoint saved, so a refused run changes no file.
pub(crate) enum Opening {
    Stdout,
    Create { path: PathBuf, sync: bool },
    Resume { path: PathBuf, format: Format, len: u64 },
    Extend { path: PathBuf, format: Format, len: u64 },
}

impl Opening {
    pub(crate) fn open(self) -> iterable_export::Result<Target> {
        Ok(match self {
            Opening::Stdout => Target::Stdout(WriterSink::new(BufWriter::new(std::io::stdout()))?),
            Opening::Create { path, sync } => Target::File(FileSink::create(path)?.sync_on_commit(sync).into()),
            Opening::Resume { path, format, len } => Target::File(FileSink::resume(path, format, len)?.into()),
            Opening::Extend { path, format, len } => Target::File(FileSink::extend(path, format, len)?.into()),
        })
    }
}

/// The plan for one data type, decided from the arguments and the state file.
pub(crate) struct Job {
    pub(crate) data_type: DataType,
    pub(crate) key: String,
    pub(crate) export: Export,
    /// Spans to export in order; empty for a `--range` export.
    pub(crate) spans: Vec<Window>,
    pub(crate) opening: Opening,
    pub(crate) seen: Vec<RecordId>,
    /// Seen records are dropped only before this time (the previous run's end).
    pub(crate) seen_until: Option<DateTime<Utc>>,
    pub(crate) tail_from: Option<DateTime<Utc>>,
    /// Identities already remembered from the tail by the interrupted run being resumed.
    pub(crate) remembered: Vec<RecordId>,
    /// The records' time field, when the export keeps it: the look-back is then de-duplicated
    /// record by record, and the spans are not cut at the look-back's instants.
    pub(crate) time_field: Option<&'static str>,
    pub(crate) entry: Option<Entry>,
    pub(crate) note: Option<String>,
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

/// The field that places `data_type`'s records in time, when the export keeps it (not left out
/// by `--only-fields` or `--omit-fields`).
fn kept_time_field(args: &ExportArgs, data_type: DataType) -> Option<&'static str> {
    let field = iterable_export::time_field(data_type);
    let kept = (args.only_fields.is_empty() || args.only_fields.iter().any(|f| f == field))
        && !args.omit_fields.iter().any(|f| f == field);
    kept.then_some(field)
}

/// Where an incremental export's spans must be cut: at the start of the look-back tail and at
/// the previous run's end, unless the records carry their time (then [`Dedup`] decides record
/// by record, and one span costs one request where three spans cost three).
///
/// [`Dedup`]: iterable_export::Dedup
fn look_back_cuts(
    time_field: Option<&str>,
    tail_from: Option<DateTime<Utc>>,
    seen_until: Option<DateTime<Utc>>,
) -> Vec<Option<DateTime<Utc>>> {
    if time_field.is_some() {
        Vec::new()
    } else {
        vec![tail_from, seen_until]
    }
}

/// The spans exported one after another: `[start, end)` cut at each of `cuts` that falls
/// inside it — with a checkpoint, the start of this run's look-back tail (so its records can be
/// remembered for the next incremental run) and the previous run's end (where dropping its
/// records stops). Each span is cut into (adaptive) windows.
pub(crate) fn spans(start: DateTime<Utc>, end: DateTime<Utc>, cuts: &[Option<DateTime<Utc>>]) -> Vec<Window> {
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

pub(crate) fn usage(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

pub(crate) fn plan_job(
    client: &Client,
    args: &ExportArgs,
    data_type: DataType,
    state: Option<&State>,
    now: DateTime<Utc>,
) -> iterable_export::Result<Option<Job>> {
    let format: Format = args.format.into();
    let key = format!("{data_type}.{}", args.format.extension());
    let to_stdout = args.output.as_os_str() == "-";
    let path = args.format.output_path(&args.output, data_type);
    let mut export = client.export(data_type);
    if !args.only_fields.is_empty() {
        export = export.only_fields(args.only_fields.iter().cloned());
    }
    if !args.omit_fields.is_empty() {
        export = export.omit_fields(args.omit_fields.iter().cloned());
    }
    let lookback = TimeDelta::from_std(args.lookback).unwrap_or(TimeDelta::zero());
    let time_field = kept_time_field(args, data_type);

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
            time_field: None,
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
        tracing::info!(
            "{}: completed the interrupted rename of the finished export",
            entry.output.display()
        );
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
        args.format.check_continue(&entry.output, entry.committed_len, true)?;
        crate::jobs::check_resume(args.via, entry)?;
        let opening = Opening::Resume {
            path: entry.output.clone(),
            format,
            len: entry.committed_len,
        };
        let spans = spans(
            entry.cursor,
            entry.end,
            &look_back_cuts(time_field, Some(entry.tail_from), entry.seen_until),
        );
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
            time_field,
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
            args.format.check_continue(&entry.output, entry.committed_len, false)?;
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
        jobs: Vec::new(),
    });
    Ok(Some(Job {
        data_type,
        key,
        export: export.between(start, end),
        spans: spans(
            start,
            end,
            &look_back_cuts(time_field, state.map(|_| tail_from), seen_until),
        ),
        opening,
        seen,
        seen_until,
        tail_from: state.map(|_| tail_from),
        remembered: Vec::new(),
        time_field,
        entry,
        note,
    }))
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
