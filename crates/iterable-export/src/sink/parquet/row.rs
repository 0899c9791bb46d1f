//! One NDJSON line decoded straight into a row of the schema's columns, without an intermediate record: one
//! serde pass over the object, each field's value borrowed from the line as its raw JSON text and sorted by name
//! into its column's cell (a typed value when it fits the column) or into the row's `_extra` object (unknown
//! fields, values that contradict their column's type, `null`s, times whose text the column does not rebuild).
//!
//! The row is staged, not appended to the Arrow builders at once: which builders (which day's encoder) it goes
//! to is known only once its time field is read, which may come last. Staging borrows from the chunk of lines
//! and reuses its buffers, so a record costs no allocation (but for a string column's value written with escapes).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::schema::Columns;
use crate::event::record::ColumnKind;
use crate::event::time::parse_time;

/// A column's value in the row being decoded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell<'c> {
    /// No value: the column is `NULL`.
    Null,
    /// A string column's text (borrowed from the line unless it was written with escapes).
    Str(Cow<'c, str>),
    Int(i64),
    /// Microseconds since the epoch.
    Time(i64),
    Bool(bool),
    /// A JSON column's text, as it arrived.
    Json(&'c str),
}

/// A row being decoded from lines of one chunk (`'c`), its buffers kept from one line to the next.
pub(crate) struct Row<'c> {
    /// One cell per column, in schema order.
    pub(crate) cells: Vec<Cell<'c>>,
    /// The row's `_extra` object (empty: `NULL`).
    pub(crate) extra: String,
    /// The UTC day of the record's time field, read leniently as [`Event`](crate::Event) reads it (epoch
    /// milliseconds too): `None` when it has none.
    pub(crate) day: Option<NaiveDate>,
    /// Values of the rows decoded so far that contradicted their column's type.
    pub(crate) mismatched: u64,
    /// The typed fields seen in the line (a set of column positions; the typed fields come first).
    seen: u64,
    /// The first pass met a typed field twice (see [`Row::decode`]).
    repeated: bool,
    /// The name and column (`None`: no column) of each field position of the last line: lines of one export
    /// have their fields in the same order, so that a name is compared once, not hashed and looked up.
    last_names: Vec<(String, Option<usize>)>,
}

/// What is wrong with a line that is not one JSON object.
pub(crate) type LineError = String;

impl<'c> Row<'c> {
    pub(crate) fn new(columns: &Columns) -> Self {
        Row {
            cells: vec![Cell::Null; columns.columns.len()],
            extra: String::with_capacity(256),
            day: None,
            mismatched: 0,
            seen: 0,
            repeated: false,
            last_names: Vec::new(),
        }
    }

    /// The column of the field at `position` of a line (`None`: it has none).
    #[inline]
    fn column_of(&mut self, columns: &Columns, position: usize, name: &str) -> Option<usize> {
        if let Some((last, column)) = self.last_names.get(position)
            && last == name
        {
            return *column;
        }
        let column = columns.by_name.get(name).copied();
        if position == self.last_names.len() {
            self.last_names.push((name.to_owned(), column));
        } else if let Some(last) = self.last_names.get_mut(position) {
            last.0.clear();
            last.0.push_str(name);
            last.1 = column;
        }
        column
    }

    /// Decodes a line into the row (replacing the previous line's).
    ///
    /// A typed field given twice keeps its last value only, as when decoding an [`Event`](crate::Event) (nothing
    /// of the earlier one is kept, not even in `_extra`): a line where that happens, rare, is decoded again, its
    /// earlier occurrences skipped. Any other field given twice fills its column once, the first time a value
    /// fits; the others go to `_extra`.
    ///
    /// # Errors
    /// What is wrong with a line that is not UTF-8 or not one JSON object.
    pub(crate) fn decode(&mut self, columns: &Columns, line: &'c [u8]) -> Result<(), LineError> {
        let text = std::str::from_utf8(line).map_err(|e| format!("not UTF-8: {e}"))?;
        let mismatched = self.mismatched;
        match self.pass(columns, text, None) {
            Err(_) if self.repeated => {
                self.mismatched = mismatched;
                let mut occurrences = vec![0u32; columns.typed];
                parse(text, Count(&mut occurrences, columns, columns.expecting))?;
                // Each typed field's occurrences to skip: all but the last.
                occurrences.iter_mut().for_each(|n| *n = n.saturating_sub(1));
                self.pass(columns, text, Some(&mut occurrences))
            }
            other => other,
        }
    }

    fn pass(&mut self, columns: &Columns, text: &'c str, skip: Option<&mut [u32]>) -> Result<(), LineError> {
        self.cells.iter_mut().for_each(|c| *c = Cell::Null);
        self.extra.clear();
        self.day = None;
        self.seen = 0;
        self.repeated = false;
        parse(
            text,
            Fields {
                row: self,
                columns,
                skip,
            },
        )?;
        if !self.extra.is_empty() {
            self.extra.push('}');
        }
        Ok(())
    }

    /// Puts a field's value into column `i`, or its JSON `text` into `_extra` (a value that does not fit, a column
    /// already filled by a repeated name, a time whose text the column does not rebuild).
    fn put(&mut self, i: usize, kind: ColumnKind, name: &Name<'_>, text: &'c str) {
        if !matches!(self.cells[i], Cell::Null) {
            self.put_extra(name, text);
            return;
        }
        let (cell, keep) = match cell(kind, text) {
            Some(Fit::Cell(cell)) => (cell, false),
            Some(Fit::Time(t, exact)) => {
                let (us, whole) = micros(t);
                (Cell::Time(us), !(exact && whole))
            }
            Some(Fit::Null) => (Cell::Null, true),
            None => {
                self.mismatched += 1;
                (Cell::Null, true)
            }
        };
        self.cells[i] = cell;
        if keep {
            self.put_extra(name, text);
        }
    }

    fn put_extra(&mut self, name: &Name<'_>, text: &str) {
        self.extra.push(if self.extra.is_empty() { '{' } else { ',' });
        match name {
            // Lent by serde_json: written without escapes, so it has no character JSON must escape.
            Name::Lent(name) => {
                self.extra.push('"');
                self.extra.push_str(name);
                self.extra.push('"');
            }
            // A `String` cannot fail to take JSON.
            Name::Owned(name) => drop(serde_json::to_writer(StringWriter(&mut self.extra), name)),
        }
        self.extra.push(':');
        self.extra.push_str(text);
    }
}

/// Deserializes one JSON object from all of `text` with `visitor`.
fn parse<'c, V: Visitor<'c, Value = ()>>(text: &'c str, visitor: V) -> Result<(), LineError> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(visitor)
        .and_then(|()| de.end())
        .map_err(|e| format!("not a JSON object: {e}"))
}

/// A field name: lent from the line (no escapes), or decoded.
enum Name<'c> {
    Lent(&'c str),
    Owned(String),
}

impl Name<'_> {
    fn as_str(&self) -> &str {
        match self {
            Name::Lent(name) => name,
            Name::Owned(name) => name,
        }
    }
}

struct NameSeed;

impl<'c> DeserializeSeed<'c> for NameSeed {
    type Value = Name<'c>;

    fn deserialize<D: Deserializer<'c>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'c> Visitor<'c> for NameSeed {
    type Value = Name<'c>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    #[inline]
    fn visit_borrowed_str<E: de::Error>(self, v: &'c str) -> Result<Self::Value, E> {
        Ok(Name::Lent(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Name::Owned(v.to_owned()))
    }
}

/// The fields of a line into a row.
struct Fields<'r, 'c> {
    row: &'r mut Row<'c>,
    columns: &'r Columns,
    /// Occurrences of each typed field to skip (the second pass over a line with a repeated typed field).
    skip: Option<&'r mut [u32]>,
}

impl<'c> Visitor<'c> for Fields<'_, 'c> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.columns.expecting)
    }

    fn visit_map<A: MapAccess<'c>>(self, mut map: A) -> Result<(), A::Error> {
        let Fields { row, columns, mut skip } = self;
        let mut position = 0;
        while let Some(name) = map.next_key_seed(NameSeed)? {
            let column = row.column_of(columns, position, name.as_str());
            position += 1;
            let Some(i) = column else {
                let raw: &'c RawValue = map.next_value()?;
                row.put_extra(&name, raw.get());
                continue;
            };
            if i < columns.typed {
                if let Some(skip) = skip.as_deref_mut()
                    && skip[i] > 0
                {
                    skip[i] -= 1;
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                let bit = 1u64 << i;
                if row.seen & bit != 0 {
                    row.repeated = true;
                    return Err(de::Error::custom("a typed field is repeated"));
                }
                row.seen |= bit;
            }
            let raw: &'c RawValue = map.next_value()?;
            let text = raw.get();
            if i == columns.time {
                row.day = lenient_time(text).map(|t| t.date_naive());
            }
            row.put(i, columns.columns[i].kind, &name, text);
        }
        Ok(())
    }
}

/// Counts the occurrences of each typed field of a line.
struct Count<'r>(&'r mut [u32], &'r Columns, &'static str);

impl<'c> Visitor<'c> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.2)
    }

    fn visit_map<A: MapAccess<'c>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key_seed(NameSeed)? {
            map.next_value::<IgnoredAny>()?;
            if let Some(&i) = self.1.by_name.get(name.as_str())
                && i < self.1.typed
            {
                self.0[i] += 1;
            }
        }
        Ok(())
    }
}

/// How a field's JSON fits a column.
enum Fit<'c> {
    Cell(Cell<'c>),
    /// A time, and whether its JSON is exactly how the time is written back (otherwise `_extra` keeps it too).
    Time(DateTime<Utc>, bool),
    /// `null`: the column is `NULL`, and `_extra` keeps the `null` (not a contradiction).
    Null,
}

/// A field's JSON text as a value of a column of `kind` (`None`: a value that contradicts the column's type).
/// Only a value whose JSON is rebuilt exactly (as the same JSON value) from the column fits: an integer written as
/// an integer, a string as a string.
fn cell(kind: ColumnKind, text: &str) -> Option<Fit<'_>> {
    if text == "null" {
        return Some(if kind == ColumnKind::Json {
            Fit::Cell(Cell::Json(text))
        } else {
            Fit::Null
        });
    }
    let cell = match kind {
        ColumnKind::Json => Cell::Json(text),
        ColumnKind::Str => Cell::Str(string(text)?),
        // JSON's grammar has no `+`, no leading zeros; `-0` is rebuilt as `0`, another text (and for some
        // readers another value), so it stays in `_extra`.
        ColumnKind::Int => match text.parse::<i64>() {
            Ok(n) if text != "-0" => Cell::Int(n),
            _ => return None,
        },
        ColumnKind::Bool => match text {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => return None,
        },
        ColumnKind::Time => {
            let (t, exact) = parse_time(&string(text)?)?;
            return Some(Fit::Time(t, exact));
        }
    };
    Some(Fit::Cell(cell))
}

/// The time as a column value: microseconds since the epoch, and whether no precision was lost.
fn micros(t: DateTime<Utc>) -> (i64, bool) {
    (t.timestamp_micros(), t.timestamp_subsec_nanos().is_multiple_of(1000))
}

/// The value of a JSON string (`None` for any other JSON): its text between the quotes when it has no escapes
/// (the usual case, without a parser), decoded otherwise.
fn string(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        // Valid JSON (the parser checked it): a string without a backslash has no escaped quote either.
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str(text).ok()
}

/// A time field's value as [`Event`](crate::Event) reads it, which places the record in its day: a string in any
/// accepted form, or epoch milliseconds (an integer, or a number with a whole value below 9·10¹⁵).
fn lenient_time(text: &str) -> Option<DateTime<Utc>> {
    match text.as_bytes().first()? {
        b'"' => parse_time(&string(text)?).map(|(t, _)| t),
        b'-' | b'0'..=b'9' => {
            if let Ok(n) = text.parse::<i64>() {
                return DateTime::from_timestamp_millis(n);
            }
            let integer = text.bytes().all(|b| b == b'-' || b.is_ascii_digit());
            let v: f64 = text.parse().ok()?;
            #[allow(clippy::cast_possible_truncation)]
            let whole = (!integer && v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64);
            whole.and_then(DateTime::from_timestamp_millis)
        }
        _ => None,
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

#[cfg(test)]
mod tests;
