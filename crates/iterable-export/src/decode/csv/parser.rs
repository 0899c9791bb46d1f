//! The synchronous part of [`CsvRecords`](super::CsvRecords): csv-core plus raw-byte, line and
//! offset bookkeeping, and the signs of a body cut off inside its last record.

use bytes::{Buf, Bytes, BytesMut};
use csv_core::ReadRecordResult;

use super::super::decode_error;
use crate::{Error, Result};

/// One record as parsed, before it is paired with the headers.
pub(super) struct Parsed {
    pub(super) data: String,
    pub(super) ends: Vec<usize>,
    pub(super) raw: Bytes,
    pub(super) line: u64,
    pub(super) offset: u64,
    /// The record was completed by the end of the body rather than by its terminator: the
    /// last record of a body that may have been cut off.
    pub(super) at_end: bool,
    /// The raw bytes ended with a line terminator.
    pub(super) terminated: bool,
    /// An odd number of `"`: the body ended inside a quoted field.
    pub(super) open_quote: bool,
}

pub(super) enum Step {
    Record(Parsed),
    NeedMore,
    End,
}

/// The synchronous part: csv-core plus raw-byte, line and offset bookkeeping.
pub(super) struct CsvParser {
    reader: csv_core::Reader,
    chunk: Bytes,
    /// Raw bytes of the current record received in earlier chunks (or earlier calls).
    pending: BytesMut,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// Body offset just after everything handed to csv-core so far.
    pos: u64,
    /// `'\n'` bytes before `pos`, excluding those of the current record.
    newlines: u64,
    /// Line and offset of the current record's first byte.
    rec_line: u64,
    rec_offset: u64,
    eof: bool,
    /// Whether the first 3 bytes were seen (csv-core only recognises a byte order mark that arrives whole).
    started: bool,
    head: BytesMut,
    max: usize,
}

fn is_terminator(b: &u8) -> bool {
    *b == b'\n' || *b == b'\r'
}

fn count_newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

impl CsvParser {
    pub(super) fn new(max: usize) -> Self {
        CsvParser {
            reader: csv_core::Reader::new(),
            chunk: Bytes::new(),
            pending: BytesMut::new(),
            out: vec![0; 1024],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            pos: 0,
            newlines: 0,
            rec_line: 1,
            rec_offset: 0,
            eof: false,
            started: false,
            head: BytesMut::new(),
            max,
        }
    }

    pub(super) fn push(&mut self, chunk: Bytes) {
        if self.started {
            self.chunk = chunk;
        } else {
            self.head.extend_from_slice(&chunk);
            if self.head.len() >= 3 {
                self.start();
            }
        }
    }

    pub(super) fn finish(&mut self) {
        self.eof = true;
        if !self.started {
            self.start();
        }
    }

    fn start(&mut self) {
        self.started = true;
        self.chunk = self.head.split().freeze();
        if self.chunk.starts_with(b"\xef\xbb\xbf") {
            // It belongs to no record (and csv-core never sees it).
            self.chunk.advance(3);
            self.pos = 3;
        }
    }

    /// Drops terminators between records (they belong to no record) and notes where a record starts.
    fn trim_start(&mut self, piece: &mut Bytes) {
        if self.pending.is_empty() {
            let n = piece.iter().take_while(|b| is_terminator(b)).count();
            self.newlines += count_newlines(&piece[..n]);
            self.pos += n as u64;
            piece.advance(n);
            self.rec_line = self.newlines + 1;
            self.rec_offset = self.pos;
        }
    }

    fn too_long(&self) -> Error {
        Error::LineTooLong {
            line: self.rec_line,
            offset: self.rec_offset,
            max: self.max,
        }
    }

    pub(super) fn step(&mut self) -> Result<Step> {
        loop {
            // csv-core takes empty input as the end of the data.
            if self.chunk.is_empty() && !self.eof {
                return Ok(Step::NeedMore);
            }
            let (res, nin, nout, nend) = self.reader.read_record(
                &self.chunk,
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            self.out_len += nout;
            self.ends_len += nend;
            let mut piece = self.chunk.split_to(nin);
            self.trim_start(&mut piece);
            self.pos += piece.len() as u64;
            match res {
                ReadRecordResult::Record => return self.record(piece).map(Step::Record),
                ReadRecordResult::End => return Ok(Step::End),
                _ => {
                    if self.pending.len() + piece.len() > self.max {
                        return Err(self.too_long());
                    }
                    self.pending.extend_from_slice(&piece);
                }
            }
            match res {
                ReadRecordResult::OutputFull => {
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                // csv-core asks for input even at the end in some states: nothing more will come.
                _ if self.eof => return Ok(Step::End),
                _ => return Ok(Step::NeedMore),
            }
        }
    }

    fn record(&mut self, piece: Bytes) -> Result<Parsed> {
        let mut raw = if self.pending.is_empty() {
            piece
        } else {
            self.pending.extend_from_slice(&piece);
            self.pending.split().freeze()
        };
        self.newlines += count_newlines(&raw);
        let terminated = raw.last().is_some_and(is_terminator);
        let open_quote = self.eof && memchr::memchr_iter(b'"', &raw).count() % 2 == 1;
        while raw.last().is_some_and(is_terminator) {
            raw.truncate(raw.len() - 1);
        }
        if raw.len() > self.max {
            return Err(self.too_long());
        }
        let (line, offset) = (self.rec_line, self.rec_offset);
        let data = String::from_utf8(self.out[..self.out_len].to_vec())
            .map_err(|e| decode_error(line, offset, format_args!("CSV record is not UTF-8: {e}")))?;
        let ends = self.ends[..self.ends_len].to_vec();
        self.out_len = 0;
        self.ends_len = 0;
        Ok(Parsed {
            data,
            ends,
            raw,
            line,
            offset,
            at_end: self.eof,
            terminated,
            open_quote,
        })
    }
}
