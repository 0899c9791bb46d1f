//! Cutting a window's export body into the files of an export job: whole records, each file at
//! most a maximum size (CSV files each start with the header row), the whole job at most a cap.
//! A file is kept as where it starts in the record stream and how many records it holds, so its
//! bytes can be generated again whenever it is downloaded.

use super::record::FieldFilter;
use super::stream::{Position, RecordStream};
use super::text::push_csv_header;

/// One file of a job: its records are the `records` records from `start` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FilePiece {
    pub(crate) start: Position,
    pub(crate) records: u64,
    /// The file's length (the header row included, for CSV).
    pub(crate) bytes: u64,
}

/// How a record is written: NDJSON with a field filter, or CSV with these columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    Ndjson(FieldFilter),
    Csv(Vec<&'static str>),
}

impl Layout {
    /// Appends the record the stream is at.
    pub(crate) fn write(&self, records: &RecordStream, out: &mut Vec<u8>) {
        match self {
            Layout::Ndjson(filter) => records.rec.write_ndjson(out, filter, None),
            Layout::Csv(columns) => records.rec.write_csv(out, columns),
        }
    }

    /// Appends what each file starts with (CSV: the header row).
    pub(crate) fn write_header(&self, out: &mut Vec<u8>) {
        if let Layout::Csv(columns) = self {
            push_csv_header(out, columns);
        }
    }
}

/// Splits a record stream into files, one at a time.
pub(crate) struct FileSplitter {
    records: RecordStream,
    layout: Layout,
    header_len: u64,
    max_file_bytes: u64,
    cap: u64,
    total: u64,
    /// A record read but left for the next file: where it starts and its length.
    carry: Option<(Position, u64)>,
    buf: Vec<u8>,
    done: bool,
    truncated: bool,
}

impl FileSplitter {
    /// Files of at most `max_file_bytes` (unless one record alone is longer), all together at
    /// most `cap` bytes.
    pub(crate) fn new(records: RecordStream, layout: Layout, max_file_bytes: u64, cap: u64) -> Self {
        let mut header = Vec::new();
        layout.write_header(&mut header);
        FileSplitter {
            records,
            layout,
            header_len: header.len() as u64,
            max_file_bytes,
            cap,
            total: 0,
            carry: None,
            buf: Vec::new(),
            done: false,
            truncated: false,
        }
    }

    /// True once the cap stopped the split (the files hold only part of the window).
    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }

    /// The next record's position and length, if any.
    fn next_record(&mut self) -> Option<(Position, u64)> {
        if let Some(c) = self.carry.take() {
            return Some(c);
        }
        let pos = self.records.position();
        if !self.records.advance() {
            return None;
        }
        self.buf.clear();
        self.layout.write(&self.records, &mut self.buf);
        Some((pos, self.buf.len() as u64))
    }

    /// The next file; `None` when the records (or the cap) are reached.
    pub(crate) fn next_file(&mut self) -> Option<FilePiece> {
        if self.done {
            return None;
        }
        let mut piece: Option<FilePiece> = None;
        loop {
            let Some((pos, len)) = self.next_record() else {
                self.done = true;
                break;
            };
            let (added, fits_file) = match &piece {
                None => (self.header_len + len, true),
                Some(p) => (len, p.bytes + len <= self.max_file_bytes),
            };
            if !fits_file {
                self.carry = Some((pos, len));
                break;
            }
            if self.total + added > self.cap {
                self.truncated = true;
                self.done = true;
                break;
            }
            self.total += added;
            match &mut piece {
                None => {
                    piece = Some(FilePiece {
                        start: pos,
                        records: 1,
                        bytes: added,
                    })
                }
                Some(p) => {
                    p.records += 1;
                    p.bytes += added;
                }
            }
        }
        piece
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::data::{DataParams, DataType};

    fn stream() -> RecordStream {
        let params = DataParams {
            seed: 1,
            records_per_day: 50,
            first_day: 19_723,
        };
        let t = |d: i64| DateTime::<Utc>::from_timestamp(d * 86_400, 0).unwrap_or_default();
        RecordStream::new(params, DataType::EmailClick, t(19_723), t(19_725))
    }

    /// The whole body: every record in order, as the `data.json` body.
    fn body(layout: &Layout) -> Vec<u8> {
        let mut s = stream();
        let mut out = Vec::new();
        while s.advance() {
            layout.write(&s, &mut out);
        }
        out
    }

    /// The files' bytes, generated again from their start positions.
    fn files(split: &mut FileSplitter, layout: &Layout) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(p) = split.next_file() {
            let mut s = stream();
            s.seek(p.start);
            let mut f = Vec::new();
            layout.write_header(&mut f);
            for _ in 0..p.records {
                assert!(s.advance());
                layout.write(&s, &mut f);
            }
            assert_eq!(f.len() as u64, p.bytes);
            out.push(f);
        }
        out
    }

    #[test]
    fn ndjson_files_are_the_body_cut_at_record_ends() {
        let layout = Layout::Ndjson(FieldFilter::All);
        let whole = body(&layout);
        for max in [1u64, 700, 5_000, 1 << 30] {
            let mut split = FileSplitter::new(stream(), layout.clone(), max, u64::MAX);
            let parts = files(&mut split, &layout);
            assert_eq!(parts.concat(), whole, "max {max}");
            assert!(!split.truncated());
            let longest_record = whole
                .split_inclusive(|b| *b == b'\n')
                .map(<[u8]>::len)
                .max()
                .unwrap_or(0);
            assert!(parts.iter().all(|p| p.len() as u64 <= max.max(longest_record as u64)));
            assert!(parts.iter().all(|p| p.ends_with(b"\n")));
            if max == 1 {
                assert_eq!(parts.len(), 100, "one record per file");
            }
            if max == 1 << 30 {
                assert_eq!(parts.len(), 1);
            }
        }
    }

    #[test]
    fn csv_files_each_have_the_header_and_the_cap_cuts() {
        let columns = stream().columns();
        let layout = Layout::Csv(columns);
        let mut header = Vec::new();
        layout.write_header(&mut header);
        let mut split = FileSplitter::new(stream(), layout.clone(), 4_000, u64::MAX);
        let parts = files(&mut split, &layout);
        assert!(parts.len() > 3);
        let rows: Vec<u8> = parts.iter().flat_map(|p| p[header.len()..].to_vec()).collect();
        assert!(parts.iter().all(|p| p.starts_with(&header) && p.len() <= 4_000));
        let whole = body(&layout);
        assert_eq!(rows, whole);
        // a cap of two and a half files: two files, truncated
        let cap = parts[0].len() + parts[1].len() + parts[2].len() / 2;
        let mut capped = FileSplitter::new(stream(), layout.clone(), 4_000, cap as u64);
        let kept = files(&mut capped, &layout);
        assert!(capped.truncated());
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[..2], parts[..2]);
        assert!(parts[2].starts_with(&kept[2]) && kept[2].len() < parts[2].len());
        assert_eq!(kept.iter().map(Vec::len).sum::<usize>() as u64, capped.total);
        assert!(capped.total <= cap as u64);
    }
}
