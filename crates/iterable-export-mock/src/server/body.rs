//! Streaming an export body: records are generated chunk by chunk (about `chunk_size` bytes each,
//! never the whole body in memory), and the body faults (cuts, stalls, malformed and blank
//! lines, a missing final newline) act on the bytes as they go.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::response::{CT_CSV, CT_NDJSON};
use super::state::Shared;
use crate::Fault;
use crate::data::{FieldFilter, Layout, RecordStream, push_csv_header};
use crate::observe::LogEntry;

/// Generates an export body chunk by chunk.
pub(super) struct ExportBody {
    records: RecordStream,
    filter: FieldFilter,
    csv_columns: Option<Vec<&'static str>>,
    header_done: bool,
    emitted: u64,
    malformed_after: Option<u64>,
    blank_every: Option<u64>,
    no_final_newline: bool,
    carry: bool,
    /// Records still to send (a job's file); `None`: to the window's end.
    remaining: Option<u64>,
}

impl ExportBody {
    /// The body for `records`: NDJSON with `filter`, or CSV with `csv_columns` (a header row, then
    /// one row per record).
    pub(super) fn new(records: RecordStream, filter: FieldFilter, csv_columns: Option<Vec<&'static str>>) -> Self {
        ExportBody {
            records,
            filter,
            csv_columns,
            header_done: false,
            emitted: 0,
            malformed_after: None,
            blank_every: None,
            no_final_newline: false,
            carry: false,
            remaining: None,
        }
    }

    /// A job's file: the header row (CSV), then `count` records from where `records` is.
    pub(super) fn file(records: RecordStream, layout: Layout, count: u64) -> Self {
        let (filter, columns) = match layout {
            Layout::Ndjson(filter) => (filter, None),
            Layout::Csv(columns) => (FieldFilter::All, Some(columns)),
        };
        let mut body = ExportBody::new(records, filter, columns);
        body.remaining = Some(count);
        body
    }

    /// The body's content type.
    pub(super) fn content_type(&self) -> &'static str {
        if self.csv_columns.is_some() { CT_CSV } else { CT_NDJSON }
    }

    /// Appends to `out` until it holds at least `target` bytes; returns false when the body ended.
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> bool {
        if self.carry {
            out.push(b'\n');
            self.carry = false;
        }
        if !self.header_done {
            self.header_done = true;
            if let Some(cols) = &self.csv_columns {
                push_csv_header(out, cols);
            }
        }
        while out.len() < target {
            if self.malformed_after == Some(self.emitted) {
                self.write_malformed(out);
            }
            if self.remaining == Some(0) || !self.records.advance() {
                if self.malformed_after.is_some() {
                    self.write_malformed(out);
                }
                if self.no_final_newline && out.last() == Some(&b'\n') {
                    out.pop();
                }
                return false;
            }
            match &self.csv_columns {
                Some(cols) => self.records.rec.write_csv(out, cols),
                None => self.records.rec.write_ndjson(out, &self.filter, None),
            }
            self.emitted += 1;
            if let Some(r) = &mut self.remaining {
                *r -= 1;
            }
            if let Some(e) = self.blank_every
                && self.emitted.is_multiple_of(e)
            {
                out.push(b'\n');
            }
        }
        if self.no_final_newline && out.last() == Some(&b'\n') {
            out.pop();
            self.carry = true;
        }
        true
    }

    fn write_malformed(&mut self, out: &mut Vec<u8>) {
        self.malformed_after = None;
        if self.csv_columns.is_some() {
            out.extend_from_slice(b"malformed row\n");
        } else {
            out.extend_from_slice(b"{\"createdAt\":\"2024-01-01 00:00:00 +00:00\",\"email\":\n");
        }
    }
}

/// The body of an export response, with the byte-level faults.
pub(super) struct BodyStream {
    export: ExportBody,
    buf: Vec<u8>,
    chunk: usize,
    more: bool,
    pending: Option<Bytes>,
    sent: u64,
    truncate_at: Option<u64>,
    stall: Option<(u64, Duration)>,
    stall_next: Option<Duration>,
    error_next: bool,
    completed: bool,
    entry: Arc<LogEntry>,
    shared: Arc<Shared>,
    /// Called once with whether the whole body was sent, when the stream ends or is dropped.
    on_finish: Option<Box<dyn FnOnce(bool) + Send>>,
    /// The `Content-Length` sent, if any: the body is complete once that many bytes went (the
    /// server may stop polling the stream then).
    declared_len: Option<u64>,
    /// Wait for the bytes before a cut on the real clock (job files: their tests hold tokio's
    /// paused clock still, where a timer would never fire), not on tokio's.
    real_time_cut: bool,
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        self.entry.finish(self.completed);
        if let Some(f) = self.on_finish.take() {
            f(self.completed);
        }
    }
}

impl BodyStream {
    pub(super) fn new(
        mut export: ExportBody,
        faults: &[Fault],
        chunk: usize,
        entry: Arc<LogEntry>,
        shared: Arc<Shared>,
    ) -> Self {
        let mut truncate_at = None;
        let mut stall = None;
        for f in faults {
            match f {
                Fault::Truncate { after_bytes, .. } => truncate_at = Some(*after_bytes),
                Fault::Stall {
                    after_bytes, duration, ..
                } => stall = Some((*after_bytes, *duration)),
                Fault::MalformedLine { after_records, .. } => export.malformed_after = Some(*after_records),
                Fault::BlankLines { every, .. } => export.blank_every = Some((*every).max(1)),
                Fault::NoFinalNewline { .. } => export.no_final_newline = true,
                Fault::Status { .. } | Fault::Redirect { .. } => {}
            }
        }
        BodyStream {
            export,
            buf: Vec::with_capacity(chunk + 4096),
            chunk,
            more: true,
            pending: None,
            sent: 0,
            truncate_at,
            stall,
            stall_next: None,
            error_next: false,
            completed: false,
            entry,
            shared,
            on_finish: None,
            declared_len: None,
            real_time_cut: false,
        }
    }

    /// Declares the body's length (sent as `Content-Length`); a cut then waits on the real clock.
    pub(super) fn with_declared_len(mut self, len: u64) -> Self {
        self.declared_len = Some(len);
        self.real_time_cut = true;
        self
    }

    /// Sets the function called once with whether the whole body was sent.
    pub(super) fn on_finish(mut self, f: impl FnOnce(bool) + Send + 'static) -> Self {
        self.on_finish = Some(Box::new(f));
        self
    }

    pub(super) fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures::stream::unfold(self, |mut st| async move {
            let item = st.next_item().await?;
            Some((item, st))
        })
    }

    fn generate(&mut self) -> Option<Bytes> {
        if !self.more {
            return None;
        }
        self.buf.clear();
        self.more = self.export.fill(&mut self.buf, self.chunk);
        if self.buf.is_empty() {
            return if self.more { Some(Bytes::new()) } else { None };
        }
        Some(Bytes::copy_from_slice(&self.buf))
    }

    async fn next_item(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            if self.error_next {
                // let the bytes already sent reach the socket, then abort the body
                if self.real_time_cut {
                    let _ = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50))).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                self.error_next = false;
                self.more = false;
                self.pending = None;
                return Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "injected fault: body cut",
                )));
            }
            if let Some(d) = self.stall_next.take() {
                tokio::time::sleep(d).await;
            }
            let mut chunk = match self.pending.take() {
                Some(c) => c,
                None => match self.generate() {
                    Some(c) => c,
                    None => {
                        if self.truncate_at.is_some_and(|t| t <= self.sent) {
                            self.error_next = true;
                            self.truncate_at = None;
                            continue;
                        }
                        self.completed = true;
                        return None;
                    }
                },
            };
            if let Some((at, d)) = self.stall
                && at < self.sent + chunk.len() as u64
            {
                self.stall = None;
                let split = at.saturating_sub(self.sent) as usize;
                if split == 0 {
                    self.pending = Some(chunk);
                    self.stall_next = Some(d);
                    continue;
                }
                self.pending = Some(chunk.split_off(split));
                self.stall_next = Some(d);
            }
            if let Some(t) = self.truncate_at
                && t <= self.sent + chunk.len() as u64
            {
                self.truncate_at = None;
                chunk.truncate((t - self.sent) as usize);
                self.pending = None;
                self.stall_next = None;
                self.error_next = true;
            }
            if chunk.is_empty() {
                continue;
            }
            let n = chunk.len() as u64;
            self.sent += n;
            if self.declared_len == Some(self.sent) && !self.error_next {
                self.completed = true;
            }
            self.entry.bytes.fetch_add(n, Ordering::AcqRel);
            self.shared.bytes.fetch_add(n, Ordering::AcqRel);
            return Some(Ok(chunk));
        }
    }
}
