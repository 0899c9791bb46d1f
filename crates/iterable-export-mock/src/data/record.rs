//! A generated record (field names and values in a reusable buffer) and its writers: one NDJSON
//! line (optionally with `_type`, as `/export/userEvents` sends it) or one CSV row; and the
//! `onlyFields`/`omitFields` filter.

use super::text::{push_csv_cell, push_i64, push_json_str};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Raw text, to be JSON-escaped (NDJSON) or CSV-quoted (CSV).
    Str,
    /// JSON text (number, bool, null, object, array), written as is.
    Raw,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    kind: Kind,
    start: u32,
    end: u32,
}

/// One generated record: field names and their values, in a reusable buffer.
#[derive(Debug, Default)]
pub(crate) struct Rec {
    pub(super) vals: Vec<u8>,
    fields: Vec<Field>,
}

impl Rec {
    pub(super) fn clear(&mut self) {
        self.vals.clear();
        self.fields.clear();
    }

    /// Where the next value starts in the buffer.
    pub(super) fn begin(&self) -> u32 {
        self.vals.len() as u32
    }

    /// Adds the field `name` whose value `write` appends to the buffer.
    fn field(&mut self, name: &'static str, kind: Kind, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.begin();
        write(&mut self.vals);
        self.span(name, kind, start, self.begin());
    }

    /// Adds the field `name` whose value is already at `start..end` of the buffer.
    fn span(&mut self, name: &'static str, kind: Kind, start: u32, end: u32) {
        self.fields.push(Field { name, kind, start, end });
    }

    /// A string field (JSON-escaped in NDJSON).
    pub(super) fn str(&mut self, name: &'static str, s: &str) {
        self.str_with(name, |b| b.extend_from_slice(s.as_bytes()));
    }

    /// A string field that `write` appends as raw text.
    pub(super) fn str_with(&mut self, name: &'static str, write: impl FnOnce(&mut Vec<u8>)) {
        self.field(name, Kind::Str, write);
    }

    /// A field of JSON text (number, bool, null, object, array) that `write` appends.
    pub(super) fn raw_with(&mut self, name: &'static str, write: impl FnOnce(&mut Vec<u8>)) {
        self.field(name, Kind::Raw, write);
    }

    /// An integer field.
    pub(super) fn int(&mut self, name: &'static str, v: i64) {
        self.raw_with(name, |b| push_i64(b, v));
    }

    /// A field of JSON text.
    pub(super) fn raw(&mut self, name: &'static str, s: &str) {
        self.raw_with(name, |b| b.extend_from_slice(s.as_bytes()));
    }

    /// A field of JSON text that the caller already wrote at `start..end` of the buffer (for
    /// values written in another order than they are listed).
    pub(super) fn raw_span(&mut self, name: &'static str, start: u32, end: u32) {
        self.span(name, Kind::Raw, start, end);
    }

    fn value(&self, f: &Field) -> &[u8] {
        &self.vals[f.start as usize..f.end as usize]
    }

    /// Writes the record as one NDJSON line (with the trailing `\n`).
    pub(crate) fn write_ndjson(&self, out: &mut Vec<u8>, filter: &FieldFilter, type_field: Option<&str>) {
        out.push(b'{');
        let mut first = true;
        if let Some(t) = type_field {
            out.extend_from_slice(b"\"_type\":");
            push_json_str(out, t.as_bytes());
            first = false;
        }
        for f in &self.fields {
            if !filter.keeps(f.name) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(f.name.as_bytes());
            out.extend_from_slice(b"\":");
            let v = self.value(f);
            match f.kind {
                Kind::Str => push_json_str(out, v),
                Kind::Raw => out.extend_from_slice(v),
            }
        }
        out.extend_from_slice(b"}\n");
    }

    /// Writes the record as one CSV row for `columns` (with the trailing `\n`).
    pub(crate) fn write_csv(&self, out: &mut Vec<u8>, columns: &[&'static str]) {
        let mut k = 0;
        for (c, col) in columns.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            let found = if k < self.fields.len() && self.fields[k].name == *col {
                Some(k)
            } else {
                self.fields.iter().position(|f| f.name == *col)
            };
            if let Some(p) = found {
                push_csv_cell(out, self.value(&self.fields[p]));
                k = p + 1;
            }
        }
        out.push(b'\n');
    }
}

/// `onlyFields` / `omitFields`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum FieldFilter {
    #[default]
    All,
    Only(Vec<String>),
    Omit(Vec<String>),
}

impl FieldFilter {
    pub(crate) fn keeps(&self, name: &str) -> bool {
        match self {
            FieldFilter::All => true,
            FieldFilter::Only(v) => v.iter().any(|n| n == name),
            FieldFilter::Omit(v) => !v.iter().any(|n| n == name),
        }
    }

    pub(crate) fn parse_list(s: &str) -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}
