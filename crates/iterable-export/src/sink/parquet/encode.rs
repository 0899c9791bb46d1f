//! Records into Arrow columns: each NDJSON line decoded by the record type's own decoder, its fields sorted into
//! the typed columns, and everything else (unknown fields, values that contradict their column's type) kept with
//! its original JSON text in `_extra`.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use chrono::{DateTime, NaiveDate, Utc};

use super::schema::{Column, Columns};
use crate::event::record::{ColumnKind, Field, Record, Slot, Typed};
use crate::event::time::parse_time;
use crate::{Error, Result};

/// The rows a new column builder has room for before it grows (doubling).
const ROWS: usize = 16;

/// One column being filled.
enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Time(TimestampMicrosecondBuilder),
    Bool(BooleanBuilder),
}

impl Builder {
    /// Starts small (the builders' own default is 1,024 rows per column): a chunk of records spread over many days
    /// has an encoder per day, most of them with a few rows.
    fn new(kind: ColumnKind) -> Builder {
        match kind {
            ColumnKind::Str | ColumnKind::Json => Builder::Str(StringBuilder::with_capacity(ROWS, ROWS * 16)),
            ColumnKind::Int => Builder::Int(Int64Builder::with_capacity(ROWS)),
            ColumnKind::Time => Builder::Time(TimestampMicrosecondBuilder::with_capacity(ROWS).with_timezone("UTC")),
            ColumnKind::Bool => Builder::Bool(BooleanBuilder::with_capacity(ROWS)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Str(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// A column's value taken from a field's JSON, or why it cannot be.
enum Cell<'a> {
    Str(std::borrow::Cow<'a, str>),
    Int(i64),
    /// A time, and whether its JSON is exactly how the time is written back (otherwise `_extra` keeps it too).
    Time(DateTime<Utc>, bool),
    Bool(bool),
    Json(&'a str),
    /// `null`: the column is `NULL`, and `_extra` keeps the `null` (not a contradiction).
    Null,
    /// A value that contradicts the column's type.
    Mismatch,
}

/// The time as a column value: microseconds since the epoch, and whether no precision was lost.
fn micros(t: DateTime<Utc>) -> (i64, bool) {
    let us = t.timestamp_micros();
    (us, t.timestamp_subsec_nanos().is_multiple_of(1000))
}

/// A field's JSON text as a value of a column of `kind`. Only a value whose JSON is rebuilt exactly (as the same
/// JSON value) from the column fits: an integer written as an integer, a string as a string.
fn cell(kind: ColumnKind, text: &str) -> Cell<'_> {
    if text == "null" {
        return if kind == ColumnKind::Json {
            Cell::Json(text)
        } else {
            Cell::Null
        };
    }
    match kind {
        ColumnKind::Json => Cell::Json(text),
        ColumnKind::Str => match string(text) {
            Some(s) => Cell::Str(s),
            None => Cell::Mismatch,
        },
        // JSON's grammar has no `+`, no leading zeros; `-0` is rebuilt as `0`, another text (and for some
        // readers another value), so it stays in `_extra`.
        ColumnKind::Int => match text.parse::<i64>() {
            Ok(n) if text != "-0" => Cell::Int(n),
            _ => Cell::Mismatch,
        },
        ColumnKind::Bool => match text {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => Cell::Mismatch,
        },
        ColumnKind::Time => match string(text).and_then(|s| parse_time(&s)) {
            Some((t, exact)) => Cell::Time(t, exact),
            None => Cell::Mismatch,
        },
    }
}

/// The value of a JSON string (`None` for any other JSON): its text between the quotes when it has no escapes
/// (the usual case, without a parser), decoded otherwise.
fn string(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        // Valid JSON (the decoder checked it): a string without a backslash has no escaped quote either.
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    serde_json::from_str(text).ok()
}

/// Fills the columns of one record type from NDJSON lines.
pub(crate) struct Encoder<R> {
    columns: Arc<Columns>,
    builders: Vec<Builder>,
    extra: StringBuilder,
    /// Which columns the current row has filled.
    filled: Vec<bool>,
    /// The current row's `_extra` object.
    extra_text: String,
    rows: usize,
    /// Values of this encoder's rows that contradicted their column's type.
    pub(crate) mismatched: u64,
    _record: std::marker::PhantomData<fn() -> R>,
}

impl<R: Record + serde::de::DeserializeOwned> Encoder<R> {
    pub(crate) fn new(columns: Arc<Columns>) -> Self {
        let builders = columns.columns.iter().map(|c| Builder::new(c.kind)).collect();
        let filled = vec![false; columns.columns.len()];
        Encoder {
            columns,
            builders,
            extra: StringBuilder::with_capacity(ROWS, ROWS * 64),
            filled,
            extra_text: String::new(),
            rows: 0,
            mismatched: 0,
            _record: std::marker::PhantomData,
        }
    }

    /// Rows since the last [`finish`](Self::finish).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes a line, and the UTC day of its time field (`None`: no time, or not one).
    ///
    /// # Errors
    /// What is wrong with a line that is not a JSON object.
    pub(crate) fn decode(line: &[u8]) -> std::result::Result<(R, Option<NaiveDate>), String> {
        // One UTF-8 check of the whole line, then serde_json's `str` reader, which checks no string again.
        let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
        let record: R = serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
        let day = match record.typed(R::TIME) {
            Typed::Time(Some(t)) => Some(t.date_naive()),
            _ => None,
        };
        Ok((record, day))
    }

    /// Adds one decoded record as a row.
    pub(crate) fn push(&mut self, record: &R) {
        self.filled.iter_mut().for_each(|f| *f = false);
        self.extra_text.clear();
        let wire = record.wire();
        for slot in &wire.slots {
            match slot {
                Slot::Known(k) => {
                    let i = k.index();
                    match record.typed(*k) {
                        Typed::Str(Some(s)) => self.put(i, &Cell::Str(s), k.wire_name(), None),
                        Typed::Int(Some(n)) => self.put(i, &Cell::Int(n), k.wire_name(), None),
                        Typed::Time(Some(t)) if micros(t).1 => self.put(i, &Cell::Time(t, true), k.wire_name(), None),
                        Typed::Time(Some(t)) => {
                            // Iterable's own form with nanoseconds: the column keeps microseconds, `_extra` the text.
                            let text = format!("\"{}\"", crate::event::time::IterableTime(t));
                            self.put(i, &Cell::Time(t, true), k.wire_name(), Some(&text));
                        }
                        _ => {}
                    }
                }
                Slot::KnownRaw(k, span) => {
                    let text = wire.text_of(*span);
                    let cell = cell(k.info().kind.into(), text);
                    self.put(k.index(), &cell, k.wire_name(), Some(text));
                }
                Slot::Other(name, span) => {
                    let text = wire.text_of(*span);
                    match self.columns.by_name.get(&**name) {
                        Some(&i) => {
                            let cell = cell(self.columns.columns[i].kind, text);
                            self.put(i, &cell, name, Some(text));
                        }
                        None => self.put_extra(name, text),
                    }
                }
            }
        }
        for (i, builder) in self.builders.iter_mut().enumerate() {
            if !self.filled[i] {
                builder.append_null();
            }
        }
        if self.extra_text.is_empty() {
            self.extra.append_null();
        } else {
            self.extra_text.push('}');
            self.extra.append_value(&self.extra_text);
        }
        self.rows += 1;
    }

    /// Puts a field's value into column `i`, or its JSON `text` into `_extra` (a value that does not fit, a column
    /// already filled by a repeated key, a time whose text the column does not rebuild).
    fn put(&mut self, i: usize, cell: &Cell<'_>, name: &str, text: Option<&str>) {
        let column: Column = self.columns.columns[i];
        if self.filled[i] {
            if let Some(text) = text {
                self.put_extra(name, text);
            }
            return;
        }
        let mut keep_text = false;
        match (&mut self.builders[i], cell) {
            (Builder::Str(b), Cell::Str(s)) => b.append_value(s),
            (Builder::Str(b), Cell::Json(s)) => b.append_value(s),
            (Builder::Int(b), Cell::Int(n)) => b.append_value(*n),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Builder::Time(b), Cell::Time(t, exact)) => {
                let (us, whole) = micros(*t);
                b.append_value(us);
                keep_text = !(*exact && whole);
            }
            (_, Cell::Null) => {
                if let Some(text) = text {
                    self.put_extra(name, text);
                }
                return;
            }
            _ => {
                self.mismatched += 1;
                if let Some(text) = text {
                    self.put_extra(name, text);
                }
                return;
            }
        }
        debug_assert_eq!(column.kind == ColumnKind::Time, matches!(cell, Cell::Time(..)));
        self.filled[i] = true;
        if keep_text && let Some(text) = text {
            self.put_extra(name, text);
        }
    }

    fn put_extra(&mut self, name: &str, text: &str) {
        self.extra_text.push(if self.extra_text.is_empty() { '{' } else { ',' });
        // A `String` cannot fail to take JSON.
        let _ = serde_json::to_writer(StringWriter(&mut self.extra_text), name);
        self.extra_text.push(':');
        self.extra_text.push_str(text);
    }

    /// The rows since the last call, as a batch.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let mut arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        arrays.push(Arc::new(self.extra.finish()));
        self.rows = 0;
        RecordBatch::try_new(self.columns.schema.clone(), arrays).map_err(|e| {
            Error::io(
                "cannot assemble a batch of Parquet rows",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            )
        })
    }
}

/// Appends JSON text to a `String` (serde_json writes UTF-8 only).
struct StringWriter<'a>(&'a mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(std::io::Error::other)?;
        self.0.push_str(text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
