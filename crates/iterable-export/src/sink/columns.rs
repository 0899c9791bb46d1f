//! CSV columns that change between windows (users and custom events gain fields over time):
//! one output holds the union of the columns, every value under its own column.
//!
//! A window whose columns are the output's, in the same order, is written as received. A window
//! with a subset or another order of the output's columns has each record rewritten into the
//! output's order (missing columns empty). A window that brings new columns appends them to the
//! output's header; a file sink then rewrites what it already holds with the new header and an
//! empty field per new column at the end of each record (streaming, memory bounded by one
//! record), once per growth.

use std::io::{Read, Write};

use crate::{Error, Result};

/// The columns of an output's CSV header.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    /// The header row as written, without its terminator; `None` before the first.
    raw: Option<Vec<u8>>,
    names: Vec<String>,
}

/// How a window's columns fit the output's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The output has no header yet: write this one.
    First,
    /// The same columns in the same order: records go through as received.
    Same,
    /// For each output column, the window's column holding it (if any).
    Remap(Vec<Option<usize>>),
    /// New columns: the output's header becomes `header` (its columns plus `extra` new ones
    /// at the end), and records are remapped with `map`.
    Grow {
        header: Vec<u8>,
        extra: usize,
        map: Vec<Option<usize>>,
    },
}

impl Columns {
    /// Columns of an existing output, from its header row.
    pub(crate) fn from_header(raw: Vec<u8>) -> Result<Self> {
        let names = parse_names(&raw)?;
        Ok(Columns { raw: Some(raw), names })
    }

    /// How the window with this header row fits.
    pub(crate) fn fit(&self, header: &[u8]) -> Result<Fit> {
        let Some(raw) = &self.raw else {
            return Ok(Fit::First);
        };
        if raw == header {
            return Ok(Fit::Same);
        }
        let window = parse_names(header)?;
        // Names may repeat: the k-th column of a name matches the k-th of that name.
        let nth = |list: &[String], i: usize| list[..i].iter().filter(|n| **n == list[i]).count();
        let mut names = self.names.clone();
        for (i, name) in window.iter().enumerate() {
            let k = nth(&window, i);
            if names.iter().filter(|n| *n == name).count() <= k {
                names.push(name.clone());
            }
        }
        let map: Vec<Option<usize>> = (0..names.len())
            .map(|i| {
                let k = nth(&names, i);
                window
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| **w == names[i])
                    .nth(k)
                    .map(|(j, _)| j)
            })
            .collect();
        let extra = names.len() - self.names.len();
        if extra == 0 {
            return Ok(Fit::Remap(map));
        }
        let mut header = Vec::new();
        write_fields(&mut header, names.iter().map(String::as_bytes))?;
        header.pop(); // the terminator
        Ok(Fit::Grow { header, extra, map })
    }

    /// Takes `header` as the output's header row.
    pub(crate) fn accept(&mut self, header: &[u8]) -> Result<()> {
        self.names = parse_names(header)?;
        self.raw = Some(header.to_vec());
        Ok(())
    }

    /// Forgets the header (the first window was aborted).
    pub(crate) fn clear(&mut self) {
        *self = Columns::default();
    }
}

fn bad_csv(what: impl std::fmt::Display) -> Error {
    Error::Decode {
        line: 1,
        offset: 0,
        message: format!("cannot read a CSV header or record to align its columns: {what}"),
    }
}

/// The fields of one CSV record given as raw bytes (without its terminator).
pub(crate) fn parse_record(raw: &[u8]) -> Result<csv::ByteRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(raw);
    let mut record = csv::ByteRecord::new();
    reader.read_byte_record(&mut record).map_err(bad_csv)?;
    Ok(record)
}

pub(crate) fn parse_names(raw: &[u8]) -> Result<Vec<String>> {
    parse_record(raw)?
        .iter()
        .map(|name| String::from_utf8(name.to_vec()).map_err(bad_csv))
        .collect()
}

/// Writes one record, quoted where needed, followed by `"\n"`.
fn write_fields<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a [u8]>) -> Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(fields).map_err(bad_csv)?;
    writer.flush().map_err(|e| Error::io("cannot write a CSV record", e))
}

/// Appends `raw` rewritten into the output's columns (`map`), followed by `"\n"`.
pub(crate) fn remap(raw: &[u8], map: &[Option<usize>], out: &mut Vec<u8>) -> Result<()> {
    let record = parse_record(raw)?;
    write_fields(
        out,
        map.iter().map(|index| index.and_then(|i| record.get(i)).unwrap_or(b"")),
    )
}

/// Copies the records of a CSV file written by a sink (each record followed by `"\n"`, after a
/// header row that is skipped) to `out`, each with `extra` empty fields appended; returns the
/// bytes written. Record boundaries come from a CSV parser, so quoted line breaks stay inside
/// their records; memory is bounded by the longest record.
pub(crate) fn pad_records(mut input: impl Read, extra: usize, out: &mut impl Write) -> Result<u64> {
    let mut reader = csv_core::Reader::new();
    let (mut buf, mut start, mut end) = (vec![0u8; 64 * 1024], 0, 0);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut ends = vec![0usize; 1024];
    let mut record: Vec<u8> = Vec::new();
    let (mut header, mut eof, mut written) = (true, false, 0u64);
    let padding = vec![b','; extra];
    let io = |e| Error::io("cannot rewrite the CSV output with its new columns", e);
    loop {
        if start == end && !eof {
            end = input.read(&mut buf).map_err(io)?;
            start = 0;
            eof = end == 0;
        }
        let (result, nin, _, _) = reader.read_record(&buf[start..end], &mut scratch, &mut ends);
        record.extend_from_slice(&buf[start..start + nin]);
        start += nin;
        match result {
            csv_core::ReadRecordResult::Record => {
                let mut raw = &record[..];
                while let [rest @ .., b'\n' | b'\r'] = raw {
                    raw = rest;
                }
                if !header && !raw.is_empty() {
                    for piece in [raw, &padding[..], b"\n"] {
                        out.write_all(piece).map_err(io)?;
                    }
                    written += (raw.len() + extra + 1) as u64;
                }
                header = false;
                record.clear();
            }
            csv_core::ReadRecordResult::End => return Ok(written),
            // Field data is not needed: only where records end.
            csv_core::ReadRecordResult::OutputFull
            | csv_core::ReadRecordResult::OutputEndsFull
            | csv_core::ReadRecordResult::InputEmpty => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_fit_the_output_columns() -> Result<()> {
        let mut columns = Columns::default();
        assert_eq!(columns.fit(b"a,b")?, Fit::First);
        columns.accept(b"a,b")?;
        assert_eq!(columns.fit(b"a,b")?, Fit::Same);
        assert_eq!(columns.fit(b"b,a")?, Fit::Remap(vec![Some(1), Some(0)]));
        assert_eq!(columns.fit(b"b")?, Fit::Remap(vec![None, Some(0)]));
        assert_eq!(
            columns.fit(b"c,\"d,e\",a")?,
            Fit::Grow {
                header: b"a,b,c,\"d,e\"".to_vec(),
                extra: 2,
                map: vec![Some(2), None, Some(0), Some(1)],
            }
        );
        Ok(())
    }

    #[test]
    fn repeated_column_names_match_by_occurrence() -> Result<()> {
        let mut columns = Columns::default();
        columns.accept(b"id,tag,tag")?;
        assert_eq!(
            columns.fit(b"id,tag,tag,city")?,
            Fit::Grow {
                header: b"id,tag,tag,city".to_vec(),
                extra: 1,
                map: vec![Some(0), Some(1), Some(2), Some(3)],
            }
        );
        assert_eq!(columns.fit(b"tag,id,tag")?, Fit::Remap(vec![Some(1), Some(0), Some(2)]));
        assert_eq!(
            columns.fit(b"tag,tag,tag")?,
            Fit::Grow {
                header: b"id,tag,tag,tag".to_vec(),
                extra: 1,
                map: vec![None, Some(0), Some(1), Some(2)],
            }
        );
        Ok(())
    }

    #[test]
    fn a_header_that_is_not_utf8_is_a_clear_error() {
        let mut columns = Columns::default();
        match columns.accept(b"email,\xff") {
            Err(Error::Decode { message, .. }) => {
                assert!(
                    message.starts_with("cannot read a CSV header or record to align its columns"),
                    "{message}"
                )
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn records_are_remapped_with_quoting() -> Result<()> {
        let mut out = Vec::new();
        remap(b"x,\"y, \"\"z\"\"\nw\"", &[Some(1), None, Some(0)], &mut out)?;
        assert_eq!(out, b"\"y, \"\"z\"\"\nw\",,x\n");
        Ok(())
    }

    #[test]
    fn padding_keeps_quoted_line_breaks_inside_records_at_any_buffer_boundary() -> Result<()> {
        let body = b"a,b\n1,\"two\nlines\"\n3,4\n".repeat(5000);
        // Only the first header is a header; the repeated ones are records too.
        let mut out = Vec::new();
        let written = pad_records(&body[..], 2, &mut out)?;
        let expected: Vec<u8> = [&b"1,\"two\nlines\",,\n3,4,,\n"[..]]
            .iter()
            .flat_map(|r| r.to_vec())
            .chain(b"a,b,,\n1,\"two\nlines\",,\n3,4,,\n".repeat(4999))
            .collect();
        assert_eq!(written as usize, out.len());
        assert!(out == expected, "{} bytes, expected {}", out.len(), expected.len());
        Ok(())
    }
}
