//! [`UserEvents`]: the body of `/export/userEvents`, NDJSON or `{"events":[...]}`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};

use super::{ByteStream, Lines, Records, decode_error, parse_json};
use crate::{Error, Event, Result};

/// The events of a `/export/userEvents` body.
///
/// Iterable sends one JSON event per line (with a `_type` field); the spec describes a `{"events": [...]}` object
/// instead. Both are accepted and both are streamed: the form is recognised from the first bytes (an object whose
/// first key is `"events"` with an array value), and array elements are split incrementally, so memory stays
/// bounded by the largest event. In the object form, errors give the line and byte offset where the event starts;
/// a body that ends before the array is closed is an [`Error::Decode`]; anything after the array is ignored.
///
/// ```
/// use futures::{StreamExt, stream};
/// use iterable_export::UserEvents;
///
/// # futures::executor::block_on(async {
/// for body in [
///     "{\"_type\":\"emailSend\",\"email\":\"a@b.c\"}\n{\"_type\":\"emailOpen\",\"email\":\"a@b.c\"}\n",
///     "{\"events\": [\n {\"_type\":\"emailSend\",\"email\":\"a@b.c\"},\n {\"_type\":\"emailOpen\",\"email\":\"a@b.c\"}\n]}",
/// ] {
///     let events = UserEvents::from_stream(stream::iter([Ok(bytes::Bytes::from(body))]), 1 << 20);
///     let types: Vec<String> = events.map(|e| e.unwrap().event_type.unwrap()).collect().await;
///     assert_eq!(types, ["emailSend", "emailOpen"]);
/// }
/// # });
/// ```
///
/// # Cancel safety
///
/// [`next()`](futures::StreamExt::next) and [`try_next()`](futures::TryStreamExt::try_next) are
/// cancel-safe: the first bytes read to recognise the form, the received chunks and a partial
/// event all live in this `UserEvents`, not in the `next()` future, and an event is taken out only
/// in the poll that returns it. Dropping a `next()` future that has not completed loses no byte
/// and no event; the next call goes on where it stopped. Only dropping the `UserEvents` drops the
/// body.
pub struct UserEvents {
    inner: Inner,
    max: usize,
}

enum Inner {
    /// Reading the first bytes to tell the two forms apart.
    Sniff {
        body: ByteStream,
        buf: BytesMut,
    },
    Ndjson(Records<Event>),
    Wrapped {
        body: ByteStream,
        splitter: ArraySplitter,
    },
    Done,
}

impl std::fmt::Debug for UserEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let form = match &self.inner {
            Inner::Sniff { .. } => "unknown yet",
            Inner::Ndjson(_) => "ndjson",
            Inner::Wrapped { .. } => "events object",
            Inner::Done => "done",
        };
        f.debug_struct("UserEvents")
            .field("form", &form)
            .field("max", &self.max)
            .finish()
    }
}

/// Whether the body starts like `{"events":[` (`None`: not enough bytes yet).
fn is_wrapped(buf: &[u8]) -> Option<bool> {
    let mut it = buf.iter().copied().filter(|b| !b.is_ascii_whitespace());
    // Whitespace inside the key is not skipped by the filter above, so compare the key on the raw bytes.
    match it.next()? {
        b'{' => {}
        _ => return Some(false),
    }
    let start = buf.iter().position(|&b| b == b'{')? + 1;
    let rest = &buf[start..];
    let q = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &rest[q..];
    let key = b"\"events\"";
    let n = rest.len().min(key.len());
    if rest[..n] != key[..n] {
        return Some(false);
    }
    if rest.len() < key.len() {
        return None;
    }
    let mut after = rest[key.len()..].iter().copied().filter(|b| !b.is_ascii_whitespace());
    if after.next()? != b':' {
        return Some(false);
    }
    Some(after.next()? == b'[')
}

impl UserEvents {
    pub(crate) fn new(body: ByteStream, max_line_length: usize) -> Self {
        UserEvents {
            inner: Inner::Sniff {
                body,
                buf: BytesMut::new(),
            },
            max: max_line_length,
        }
    }

    /// Decodes any stream of byte chunks, e.g. a saved userEvents body read in pieces.
    pub fn from_stream<S>(body: S, max_line_length: usize) -> Self
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        Self::new(Box::pin(body), max_line_length)
    }
}

impl Stream for UserEvents {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.inner {
                Inner::Sniff { body, buf } => {
                    let eof = match body.as_mut().poll_next(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(Ok(chunk))) => {
                            buf.extend_from_slice(&chunk);
                            false
                        }
                        Poll::Ready(Some(Err(e))) => {
                            this.inner = Inner::Done;
                            return Poll::Ready(Some(Err(e)));
                        }
                        Poll::Ready(None) => true,
                    };
                    let wrapped = match is_wrapped(buf) {
                        Some(w) => w,
                        None if eof || buf.len() > this.max => false,
                        None => continue,
                    };
                    let prefix = buf.split().freeze();
                    let Inner::Sniff { body, .. } = std::mem::replace(&mut this.inner, Inner::Done) else {
                        unreachable!()
                    };
                    this.inner = if wrapped {
                        let mut splitter = ArraySplitter::new(this.max);
                        splitter.chunk = prefix;
                        splitter.eof = eof;
                        Inner::Wrapped { body, splitter }
                    } else {
                        let body: ByteStream = if eof {
                            Box::pin(futures::stream::iter([Ok(prefix)]))
                        } else {
                            Box::pin(futures::stream::iter([Ok(prefix)]).chain(body))
                        };
                        Inner::Ndjson(Records::new(Lines::new(body, this.max)))
                    };
                }
                Inner::Ndjson(records) => {
                    let item = std::task::ready!(Pin::new(records).poll_next(cx));
                    if item.is_none() {
                        this.inner = Inner::Done;
                    }
                    return Poll::Ready(item);
                }
                Inner::Wrapped { body, splitter } => {
                    let item = match splitter.next_element() {
                        Ok(Some((bytes, line, offset))) => parse_json(&bytes, line, offset),
                        Ok(None) if splitter.finished => {
                            this.inner = Inner::Done;
                            return Poll::Ready(None);
                        }
                        Ok(None) => {
                            match body.as_mut().poll_next(cx) {
                                Poll::Pending => return Poll::Pending,
                                Poll::Ready(Some(Ok(chunk))) => splitter.chunk = chunk,
                                Poll::Ready(Some(Err(e))) => {
                                    this.inner = Inner::Done;
                                    return Poll::Ready(Some(Err(e)));
                                }
                                Poll::Ready(None) => splitter.eof = true,
                            }
                            continue;
                        }
                        Err(e) => Err(e),
                    };
                    if item.is_err() {
                        this.inner = Inner::Done;
                    }
                    return Poll::Ready(Some(item));
                }
                Inner::Done => return Poll::Ready(None),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the `[` of the events array.
    Preamble,
    /// Between elements.
    Between,
    /// Inside an element.
    Element,
    /// After the array: the rest of the body is ignored.
    Trailer,
}

/// Splits the elements of the `events` array, incrementally.
struct ArraySplitter {
    chunk: Bytes,
    /// Bytes of the current element from earlier chunks.
    partial: BytesMut,
    /// Body offset of `chunk[0]`.
    pos: u64,
    /// `'\n'` bytes before `pos`, excluding those of the current element.
    newlines: u64,
    phase: Phase,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Bytes of the current element already scanned (in `partial`, and in `chunk` before `scanned`).
    elem_line: u64,
    elem_offset: u64,
    eof: bool,
    finished: bool,
    max: usize,
}

impl ArraySplitter {
    fn new(max: usize) -> Self {
        ArraySplitter {
            chunk: Bytes::new(),
            partial: BytesMut::new(),
            pos: 0,
            newlines: 0,
            phase: Phase::Preamble,
            depth: 0,
            in_string: false,
            escape: false,
            elem_line: 0,
            elem_offset: 0,
            eof: false,
            finished: false,
            max,
        }
    }

    fn skip(&mut self, n: usize) {
        self.newlines += memchr::memchr_iter(b'\n', &self.chunk[..n]).count() as u64;
        self.pos += n as u64;
        self.chunk.advance(n);
    }

    /// The next element, its line and offset; `None` when more input is needed (or, with `finished`, at the end).
    fn next_element(&mut self) -> Result<Option<(Bytes, u64, u64)>> {
        loop {
            match self.phase {
                Phase::Preamble => match memchr::memchr(b'[', &self.chunk) {
                    Some(i) => {
                        self.skip(i + 1);
                        self.phase = Phase::Between;
                    }
                    None => {
                        let n = self.chunk.len();
                        self.skip(n);
                        return self.at_end("the events array never started");
                    }
                },
                Phase::Between => match self.chunk.iter().position(|b| !b.is_ascii_whitespace() && *b != b',') {
                    Some(i) => {
                        self.skip(i);
                        if self.chunk[0] == b']' {
                            self.skip(1);
                            self.phase = Phase::Trailer;
                        } else {
                            self.phase = Phase::Element;
                            self.elem_line = self.newlines + 1;
                            self.elem_offset = self.pos;
                            (self.depth, self.in_string, self.escape) = (0, false, false);
                        }
                    }
                    None => {
                        let n = self.chunk.len();
                        self.skip(n);
                        return self.at_end("the body ended inside the events array");
                    }
                },
                Phase::Element => {
                    let end = self.scan();
                    let Some(end) = end else {
                        if self.partial.len() + self.chunk.len() > self.max {
                            return Err(self.too_long());
                        }
                        self.partial.extend_from_slice(&self.chunk);
                        self.pos += self.chunk.len() as u64;
                        self.chunk.clear();
                        if self.eof && !self.partial.is_empty() {
                            // A truncated element: let the JSON parser say what is missing.
                            self.finished = true;
                            self.phase = Phase::Trailer;
                            let bytes = self.partial.split().freeze();
                            return Ok(Some((bytes, self.elem_line, self.elem_offset)));
                        }
                        return self.at_end("the body ended inside the events array");
                    };
                    if self.partial.len() + end > self.max {
                        return Err(self.too_long());
                    }
                    let bytes = if self.partial.is_empty() {
                        self.chunk.split_to(end)
                    } else {
                        self.partial.extend_from_slice(&self.chunk[..end]);
                        self.chunk.advance(end);
                        self.partial.split().freeze()
                    };
                    self.pos += end as u64;
                    self.newlines += memchr::memchr_iter(b'\n', &bytes).count() as u64;
                    self.phase = Phase::Between;
                    return Ok(Some((bytes, self.elem_line, self.elem_offset)));
                }
                Phase::Trailer => {
                    self.chunk.clear();
                    self.finished = self.eof;
                    return Ok(None);
                }
            }
        }
    }

    fn at_end(&mut self, what: &str) -> Result<Option<(Bytes, u64, u64)>> {
        if self.eof {
            self.finished = true;
            return Err(decode_error(
                self.newlines + 1,
                self.pos,
                format_args!("{what}: the body was cut short"),
            ));
        }
        Ok(None)
    }

    fn too_long(&self) -> Error {
        Error::LineTooLong {
            line: self.elem_line,
            offset: self.elem_offset,
            max: self.max,
        }
    }

    /// Scans `chunk` from the start for the end of the current element (exclusive index); `None` if it is not in
    /// `chunk`. The scan state carries over to the next chunk.
    fn scan(&mut self) -> Option<usize> {
        let bytes = &self.chunk[..];
        let mut i = 0;
        let first = self.partial.is_empty();
        while i < bytes.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                let j = memchr::memchr2(b'"', b'\\', &bytes[i..])?;
                i += j;
                if bytes[i] == b'\\' {
                    self.escape = true;
                } else {
                    self.in_string = false;
                }
                i += 1;
                continue;
            }
            match bytes[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth == 0 => return Some(i),
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                b',' | b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 && (i > 0 || !first) => return Some(i),
                _ => {}
            }
            i += 1;
        }
        None
    }
}
