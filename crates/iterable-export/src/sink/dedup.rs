//! [`Dedup`]: de-duplication of the look-back an incremental sync reads again.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};

use super::RecordId;
use crate::{Result, Sink, Window};

/// Wraps a sink for incremental syncs that re-read a look-back: records whose identity is in
/// `seen` (collected by the previous run) are dropped — as many times as they occur there, so
/// two identical records stay two — and the identities of records in windows that start at or
/// after `remember_from` are collected for the next run (dropped ones included: the output has
/// them from the earlier run).
///
/// Windows start on whole seconds (Iterable's dates have second precision), so `remember_from`
/// and the drop limit are truncated to whole seconds too.
///
/// Both decisions are taken per window: a window that starts at or after `remember_from` is
/// remembered, one that starts before the drop limit is de-duplicated. Given the records' time
/// field ([`with_time_field`](Self::with_time_field)), a window that spans one of those instants
/// decides record by record, by the record's own time, so an incremental run need not cut its
/// span there (one request instead of three).
#[derive(Debug)]
pub struct Dedup<S> {
    inner: S,
    /// Occurrences still to drop, per identity.
    seen: HashMap<RecordId, u32>,
    /// Identities dropped in the current attempt (given back on abort).
    taken: Vec<RecordId>,
    remember_from: Option<DateTime<Utc>>,
    remembered: Vec<RecordId>,
    pending: Vec<RecordId>,
    collecting: bool,
    /// The current window's CSV columns: CSV records are identified by their values per column
    /// ([`RecordId::of_csv`]), NDJSON records by their bytes.
    columns: Option<Vec<String>>,
    skipped: u64,
    drop_until: Option<DateTime<Utc>>,
    dropping: By,
    /// The records' time field, when they carry it.
    time_field: Option<String>,
    /// Its position in the current window's CSV columns.
    time_column: Option<usize>,
    collect: By,
}

/// How a window decides for its records: all, none, or each by its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    All,
    None,
    Time,
}

impl By {
    /// For a window `[start, end)` and an instant that splits records into before and after:
    /// the decision of the records at or after it when `after` (else of those before it).
    fn window(window: &Window, at: DateTime<Utc>, after: bool, per_record: bool) -> By {
        let (all_after, all_before) = (window.start >= at, window.end <= at);
        match (all_after, all_before, after) {
            (true, _, true) | (_, true, false) => By::All,
            (true, _, false) | (_, true, true) => By::None,
            _ if per_record => By::Time,
            // Without the records' times, the window's start decides, as it always did.
            (_, _, after) => {
                if after {
                    By::None
                } else {
                    By::All
                }
            }
        }
    }
}

impl<S: Sink> Dedup<S> {
    /// Wraps `inner`; `seen` lists the identities to drop, once per occurrence.
    pub fn new(inner: S, seen: impl IntoIterator<Item = RecordId>, remember_from: Option<DateTime<Utc>>) -> Self {
        let mut counts = HashMap::new();
        for id in seen {
            *counts.entry(id).or_insert(0u32) += 1;
        }
        Dedup {
            inner,
            seen: counts,
            taken: Vec::new(),
            remember_from: remember_from.map(|t| t.trunc_subsecs(0)),
            remembered: Vec::new(),
            pending: Vec::new(),
            collecting: false,
            columns: None,
            skipped: 0,
            drop_until: None,
            dropping: By::All,
            time_field: None,
            time_column: None,
            collect: By::None,
        }
    }

    /// The name of the field that places a record in time (see
    /// [`time_field`](crate::time_field)): a window that spans `remember_from` or the drop limit
    /// then remembers and de-duplicates record by record, by that field's value, instead of by
    /// the window's start. A record without a readable time is remembered and de-duplicated
    /// (remembering too much costs only memory; its identical twin would have the same time).
    pub fn with_time_field(mut self, field: impl Into<String>) -> Self {
        self.time_field = Some(field.into());
        self
    }

    /// Drops seen records only in windows that start before `until` (the end of the previous
    /// run: later records are new, even when identical to an old one).
    pub fn with_drop_until(mut self, until: Option<DateTime<Utc>>) -> Self {
        self.drop_until = until.map(|t| t.trunc_subsecs(0));
        self
    }

    /// The identities still to drop, once per remaining occurrence: what a checkpoint must keep
    /// so that a resumed run drops exactly what this one had not dropped yet.
    pub fn remaining_seen(&self) -> Vec<RecordId> {
        let mut ids: Vec<RecordId> = self
            .seen
            .iter()
            .flat_map(|(id, left)| std::iter::repeat_n(*id, *left as usize))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Continues a remembered list (after resuming an interrupted run that had committed part
    /// of its tail).
    pub fn with_remembered(mut self, remembered: Vec<RecordId>) -> Self {
        self.remembered = remembered;
        self
    }

    /// Identities of committed records in windows at or after `remember_from`.
    pub fn remembered(&self) -> &[RecordId] {
        &self.remembered
    }

    /// Records of committed windows dropped because the previous run had them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped sink, to use between windows (to write what belongs between them, such as a
    /// progress message after a commit). Records must go through the `Dedup`.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the sink.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The record's time, by [`with_time_field`](Self::with_time_field); `None` when it has none.
    fn record_time(&self, record: &[u8]) -> Result<Option<DateTime<Utc>>> {
        let Some(field) = self.time_field.as_deref() else {
            return Ok(None);
        };
        if self.columns.is_none() {
            return Ok(crate::event::placed::json_record_time(record, field));
        }
        let Some(column) = self.time_column else {
            return Ok(None);
        };
        let fields = super::columns::parse_record(record)?;
        Ok(fields
            .get(column)
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(crate::event::placed::text_time))
    }

    fn give_back(&mut self) {
        for id in self.taken.drain(..) {
            *self.seen.entry(id).or_insert(0) += 1;
        }
    }
}

impl<S: Sink> Sink for Dedup<S> {
    async fn begin(&mut self, window: &Window) -> Result<()> {
        self.pending.clear();
        self.give_back();
        self.columns = None;
        self.time_column = None;
        let per_record = self.time_field.is_some();
        self.collect = self
            .remember_from
            .map_or(By::None, |from| By::window(window, from, true, per_record));
        self.dropping = self
            .drop_until
            .map_or(By::All, |until| By::window(window, until, false, per_record));
        self.collecting = self.collect != By::None;
        self.inner.begin(window).await
    }

    async fn header(&mut self, header: &[u8]) -> Result<()> {
        let columns = super::columns::parse_names(header)?;
        self.time_column = self
            .time_field
            .as_deref()
            .and_then(|field| columns.iter().position(|c| c == field));
        self.columns = Some(columns);
        self.inner.header(header).await
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        let mut dropping = self.dropping != By::None && !self.seen.is_empty();
        let mut collecting = self.collecting;
        if !dropping && !collecting {
            return self.inner.record(record).await;
        }
        if (dropping && self.dropping == By::Time) || (collecting && self.collect == By::Time) {
            let time = self.record_time(record)?;
            if let Some(time) = time {
                if self.dropping == By::Time {
                    dropping = self.drop_until.is_none_or(|until| time < until);
                }
                if self.collect == By::Time {
                    collecting = self.remember_from.is_some_and(|from| time >= from);
                }
            }
            if !dropping && !collecting {
                return self.inner.record(record).await;
            }
        }
        let id = match &self.columns {
            Some(columns) => RecordId::of_csv(columns, record)?,
            None => RecordId::of(record),
        };
        if collecting {
            self.pending.push(id);
        }
        if dropping
            && let Some(left) = self.seen.get_mut(&id)
            && *left > 0
        {
            *left -= 1;
            self.taken.push(id);
            return Ok(());
        }
        self.inner.record(record).await
    }

    async fn commit(&mut self, window: &Window, records: u64) -> Result<()> {
        self.inner.commit(window, records).await?;
        self.remembered.append(&mut self.pending);
        self.skipped += self.taken.len() as u64;
        self.taken.clear();
        self.seen.retain(|_, left| *left > 0);
        Ok(())
    }

    async fn abort(&mut self, window: &Window) -> Result<()> {
        self.pending.clear();
        self.give_back();
        self.inner.abort(window).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::test_window as window;
    use super::*;
    use crate::Error;
    use crate::FileSink;

    fn read(path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| Error::io("read", e))
    }

    #[tokio::test]
    async fn dedup_drops_seen_records_and_remembers_the_tail() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let seen = vec![RecordId::of(b"old")];
        let w = window();
        let mut sink = Dedup::new(FileSink::create(&path)?, seen, Some(w.start));
        sink.begin(&w).await?;
        sink.record(b"old").await?;
        sink.record(b"new").await?;
        sink.abort(&w).await?;
        sink.begin(&w).await?;
        sink.record(b"old").await?;
        sink.record(b"new").await?;
        sink.commit(&w, 1).await?;
        assert_eq!(sink.skipped(), 1);
        assert_eq!(sink.remembered(), [RecordId::of(b"old"), RecordId::of(b"new")]);
        sink.into_inner().finish().await?;
        assert_eq!(read(&path)?, b"new\n");
        Ok(())
    }

    #[tokio::test]
    async fn dedup_drops_each_seen_occurrence_once() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let w = window();
        let mut sink = Dedup::new(FileSink::create(&path)?, vec![RecordId::of(b"same")], None);
        sink.begin(&w).await?;
        sink.record(b"same").await?;
        sink.record(b"same").await?;
        sink.commit(&w, 2).await?;
        assert_eq!(sink.skipped(), 1);
        sink.into_inner().finish().await?;
        assert_eq!(read(&path)?, b"same\n");
        Ok(())
    }

    #[tokio::test]
    async fn dedup_stops_dropping_at_the_previous_end_and_reports_what_is_left() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let path = dir.path().join("out.ndjson");
        let w = window();
        let later = Window {
            start: w.end,
            end: w.end + chrono::TimeDelta::seconds(60),
        };
        let seen = vec![RecordId::of(b"a"), RecordId::of(b"b")];
        let mut sink = Dedup::new(FileSink::create(&path)?, seen, None).with_drop_until(Some(w.end));
        sink.begin(&w).await?;
        sink.record(b"a").await?;
        sink.commit(&w, 1).await?;
        assert_eq!(sink.remaining_seen(), [RecordId::of(b"b")]);
        sink.begin(&later).await?;
        sink.record(b"b").await?;
        sink.commit(&later, 1).await?;
        assert_eq!(sink.skipped(), 1);
        sink.into_inner().finish().await?;
        assert_eq!(read(&path)?, b"b\n");
        Ok(())
    }

    /// A sub-second remember-from (a look-back of 300.5 s) still remembers the window that
    /// starts at the whole second before it: the next run re-reads from that second.
    #[tokio::test]
    async fn a_subsecond_remember_from_collects_the_window_of_its_second() -> Result<()> {
        let w = window();
        let from = w.start + chrono::TimeDelta::milliseconds(500);
        let mut sink = Dedup::new(crate::WriterSink::new(Vec::new())?, Vec::new(), Some(from));
        sink.begin(&w).await?;
        sink.record(b"x").await?;
        sink.commit(&w, 1).await?;
        assert_eq!(sink.remembered(), [RecordId::of(b"x")]);
        Ok(())
    }

    /// With the records' time field, one window across the previous end and the new tail's start
    /// de-duplicates only what lies before the previous end and remembers only what lies in the
    /// tail, as three windows cut at those instants would (NDJSON and CSV alike).
    #[tokio::test]
    async fn a_window_across_both_instants_decides_record_by_record() -> Result<()> {
        let t = |s: &str| {
            crate::parse_iterable_time(s).ok_or_else(|| Error::io("time", std::io::Error::other(s.to_owned())))
        };
        let w = Window {
            start: t("2024-01-01 00:00:00")?,
            end: t("2024-01-01 03:00:00")?,
        };
        let line = |at: &str, v: u32| format!(r#"{{"createdAt":"2024-01-01 {at} +00:00","v":{v}}}"#).into_bytes();
        // Seen by the previous run, which ended at 01:00.
        let old = line("00:30:00", 1);
        let twin_after = line("01:30:00", 1);
        let seen = vec![RecordId::of(&old), RecordId::of(&twin_after)];
        let mut sink = Dedup::new(
            crate::WriterSink::new(Vec::new())?,
            seen.clone(),
            Some(t("2024-01-01 02:00:00")?),
        )
        .with_drop_until(Some(t("2024-01-01 01:00:00")?))
        .with_time_field("createdAt");
        sink.begin(&w).await?;
        let records = [
            old.clone(),
            line("00:45:00", 2),
            twin_after.clone(),
            line("02:00:00", 3),
            b"{\"v\":4}".to_vec(),
        ];
        for record in &records {
            sink.record(record).await?;
        }
        sink.commit(&w, 4).await?;
        assert_eq!(sink.skipped(), 1, "only the seen record before 01:00 is dropped");
        assert_eq!(sink.remaining_seen(), [RecordId::of(&twin_after)]);
        assert_eq!(
            sink.remembered(),
            [RecordId::of(&records[3]), RecordId::of(&records[4])],
            "from 02:00 on, and the record without a time"
        );
        let mut want = Vec::new();
        for record in &records[1..] {
            want.extend_from_slice(record);
            want.push(b'\n');
        }
        assert_eq!(sink.into_inner().finish().await?, want);

        // CSV: the time column found by name in each window's header.
        let mut csv = Dedup::new(
            crate::WriterSink::new(Vec::new())?,
            Vec::new(),
            Some(t("2024-01-01 02:00:00")?),
        )
        .with_time_field("createdAt");
        csv.begin(&w).await?;
        csv.header(b"email,createdAt").await?;
        csv.record(b"a@x.io,2024-01-01 01:59:59 +00:00").await?;
        csv.record(b"b@x.io,\"2024-01-01 02:00:00 +00:00\"").await?;
        csv.commit(&w, 2).await?;
        let b = RecordId::of_csv(
            &["email".into(), "createdAt".into()],
            b"b@x.io,\"2024-01-01 02:00:00 +00:00\"",
        )?;
        assert_eq!(csv.remembered(), [b]);

        // Without the time field, the window's start decides, as before: dropped, not remembered.
        let mut plain = Dedup::new(
            crate::WriterSink::new(Vec::new())?,
            seen,
            Some(t("2024-01-01 02:00:00")?),
        )
        .with_drop_until(Some(t("2024-01-01 01:00:00")?));
        plain.begin(&w).await?;
        plain.record(&twin_after).await?;
        plain.record(&records[3]).await?;
        plain.commit(&w, 1).await?;
        assert_eq!((plain.skipped(), plain.remembered().len()), (1, 0));
        Ok(())
    }

    /// A look-back re-read by a window whose CSV columns differ (a late event brought a new
    /// field, or the window was split differently) still recognises the records it had.
    #[tokio::test]
    async fn csv_look_back_identities_do_not_depend_on_the_windows_columns() -> Result<()> {
        let w = window();
        let mut first = Dedup::new(crate::WriterSink::new(Vec::new())?, Vec::new(), Some(w.start));
        first.begin(&w).await?;
        first.header(b"email,plan").await?;
        first.record(b"a@x.io,gold").await?;
        first.record(b"b@x.io,\"sil,ver\"").await?;
        first.commit(&w, 2).await?;
        let seen = first.remembered().to_vec();
        let mut second = Dedup::new(crate::WriterSink::new(Vec::new())?, seen, None);
        second.begin(&w).await?;
        second.header(b"plan,email,city").await?;
        second.record(b"gold,a@x.io,").await?;
        second.record(b"\"sil,ver\",b@x.io,").await?;
        second.record(b",c@x.io,Oslo").await?;
        second.commit(&w, 3).await?;
        assert_eq!(second.skipped(), 2);
        assert_eq!(second.into_inner().finish().await?, b"plan,email,city\n,c@x.io,Oslo\n");
        // Empty fields and column order do not count; column names do.
        assert_eq!(
            RecordId::of_csv(&["a".into()], b"1")?,
            RecordId::of_csv(&["a".into(), "b".into()], b"1,")?
        );
        assert_ne!(
            RecordId::of_csv(&["a".into()], b"1")?,
            RecordId::of_csv(&["b".into()], b"1")?
        );
        Ok(())
    }
}
