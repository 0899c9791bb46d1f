//! [`Lines`]: NDJSON bodies split into lines.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;

use super::ByteStream;
use crate::{Error, Result};

/// Splits a byte stream into lines, whatever the chunk boundaries.
///
/// The splitter is synchronous: feed it chunks with [`LineSplitter::push`] and take lines with
/// [`LineSplitter::next_line`]. A line inside one chunk is returned as a slice of that chunk (no copy); only a
/// line spanning chunks is copied, once.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    /// Unread rest of the current chunk.
    chunk: Bytes,
    /// Start of a line whose end has not arrived yet.
    partial: BytesMut,
    /// Body offset of the next unread line.
    offset: u64,
    /// Physical lines completed so far (blank ones included).
    lines: u64,
    /// Number and offset of the last line returned.
    last_line: u64,
    last_offset: u64,
    max: usize,
}

/// What [`LineSplitter::next_line`] found.
#[derive(Debug)]
pub(crate) enum Next {
    /// A non-blank line without its terminator.
    Line(Bytes),
    /// The chunk is used up: push more (or call [`LineSplitter::finish`]).
    NeedMore,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            chunk: Bytes::new(),
            partial: BytesMut::new(),
            offset: 0,
            lines: 0,
            last_line: 0,
            last_offset: 0,
            max,
        }
    }

    /// Adds a chunk; call only after `next_line` returned [`Next::NeedMore`].
    pub(crate) fn push(&mut self, chunk: Bytes) {
        debug_assert!(self.chunk.is_empty());
        self.chunk = chunk;
    }

    /// 1-based number of the last line returned (0 before the first).
    pub(crate) fn line_number(&self) -> u64 {
        self.last_line
    }

    /// Body offset of the start of the last line returned.
    pub(crate) fn line_offset(&self) -> u64 {
        self.last_offset
    }

    fn too_long(&self) -> Error {
        Error::LineTooLong {
            line: self.lines + 1,
            offset: self.offset,
            max: self.max,
        }
    }

    /// Returns the next complete line, or asks for more input. Blank lines are skipped.
    #[inline]
    pub(crate) fn next_line(&mut self) -> Result<Next> {
        loop {
            let Some(i) = memchr::memchr(b'\n', &self.chunk) else {
                if !self.chunk.is_empty() {
                    // A line of `max` bytes may still be followed by "\r\n": keep at most max + 1 bytes.
                    if self.partial.len() + self.chunk.len() > self.max.saturating_add(1) {
                        return Err(self.too_long());
                    }
                    self.partial.extend_from_slice(&self.chunk);
                    self.chunk.clear();
                }
                return Ok(Next::NeedMore);
            };
            let line = if self.partial.is_empty() {
                let mut line = self.chunk.split_to(i + 1);
                line.truncate(i);
                line
            } else {
                if self.partial.len() + i > self.max.saturating_add(1) {
                    return Err(self.too_long());
                }
                self.partial.extend_from_slice(&self.chunk[..i]);
                self.chunk.advance(i + 1);
                self.partial.split().freeze()
            };
            if let Some(line) = self.complete(line, 1)? {
                return Ok(Next::Line(line));
            }
        }
    }

    /// Accounts for a completed line of `line.len() + terminator_len` body bytes; `None` when it is blank.
    #[inline]
    fn complete(&mut self, mut line: Bytes, terminator_len: u64) -> Result<Option<Bytes>> {
        let full_len = line.len() as u64 + terminator_len;
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > self.max {
            return Err(self.too_long());
        }
        self.lines += 1;
        let start = self.offset;
        self.offset += full_len;
        // Blank: empty or only whitespace (checking stops at the first other byte, usually the first).
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        self.last_line = self.lines;
        self.last_offset = start;
        Ok(Some(line))
    }

    /// At the end of the body: the last line if it had no terminator.
    pub(crate) fn finish(&mut self) -> Result<Option<Bytes>> {
        debug_assert!(self.chunk.is_empty());
        if self.partial.is_empty() {
            return Ok(None);
        }
        let line = self.partial.split().freeze();
        self.complete(line, 0)
    }

    /// Like [`LineSplitter::finish`], for NDJSON: a last line without a terminator must be a
    /// complete JSON value. A body that ends cleanly in the middle of a record (a proxy closing a
    /// connection-delimited response early, with no error) leaves a prefix of a JSON value
    /// there, and that is reported as [`Error::Transport`] (transient: the request is worth
    /// retrying) instead of being handed on as a record. A complete final record without a
    /// newline is accepted. (A prefix of a JSON value fails to parse either at its end or, cut
    /// inside a number or a literal such as `12.` or `tru`, as a syntax error: both count.)
    pub(crate) fn finish_ndjson(&mut self) -> Result<Option<Bytes>> {
        let Some(line) = self.finish()? else {
            return Ok(None);
        };
        match serde_json::from_slice::<serde::de::IgnoredAny>(&line) {
            Ok(_) => Ok(Some(line)),
            Err(_) => Err(cut_off(self.last_line, self.last_offset)),
        }
    }
}

/// The error for a body that ended, without a transport error, inside the record at `line`.
pub(crate) fn cut_off(line: u64, offset: u64) -> Error {
    Error::Transport {
        message: format!(
            "the response body ended in the middle of a record (line {line}, byte offset {offset}): \
             the connection was closed early"
        ),
        source: None,
    }
}

/// The lines of an NDJSON body, as raw bytes.
///
/// Each item is one line without its terminator (`"\n"` or `"\r\n"`); blank lines (empty or only whitespace) are
/// skipped. A last line without a terminator must be a complete JSON value: a body that ended cleanly inside a
/// record (a connection closed early, without an error) ends the stream with a transient
/// [`Error::Transport`] instead of yielding the partial record. Lines lying inside
/// one received chunk are slices of it (no copy). Memory is bounded by the maximum line length: a longer line ends
/// the stream with [`Error::LineTooLong`] without being buffered. Errors from the body pass through unchanged, and
/// the stream ends after any error.
///
/// ```
/// use futures::{StreamExt, stream};
/// use iterable_export::Lines;
///
/// # futures::executor::block_on(async {
/// let chunks = vec![Ok(bytes::Bytes::from_static(b"{\"a\":1}\r\n\n{\"a\"")), Ok(bytes::Bytes::from_static(b":2}"))];
/// let mut lines = Lines::from_stream(stream::iter(chunks), 1024);
/// assert_eq!(&lines.next().await.unwrap()?[..], b"{\"a\":1}");
/// assert_eq!(&lines.next().await.unwrap()?[..], b"{\"a\":2}");
/// assert_eq!(lines.line_number(), 3);
/// assert!(lines.next().await.is_none());
/// # Ok::<(), iterable_export::Error>(())
/// # }).unwrap();
/// ```
///
/// # Cancel safety
///
/// [`next()`](futures::StreamExt::next) and [`try_next()`](futures::TryStreamExt::try_next) are
/// cancel-safe. Their future does nothing but call `poll_next`, and `poll_next` keeps everything
/// in this `Lines`: a chunk is moved into the line buffer in the same poll that receives it, and a
/// line is taken out only in the poll that returns it. So dropping a `next()` future that has not
/// completed (the losing branch of `tokio::select!`, an expired `tokio::time::timeout`) loses no
/// byte and no line; the next call goes on where that one stopped, and line numbers and offsets
/// stay right. Only dropping the `Lines` itself drops the body (and its connection).
pub struct Lines {
    body: ByteStream,
    splitter: LineSplitter,
    bytes_read: u64,
    done: bool,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("line_number", &self.line_number())
            .field("bytes_read", &self.bytes_read)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Lines {
    pub(crate) fn new(body: ByteStream, max_line_length: usize) -> Self {
        Lines {
            body,
            splitter: LineSplitter::new(max_line_length),
            bytes_read: 0,
            done: false,
        }
    }

    /// Splits any stream of byte chunks, e.g. a saved export file read in pieces.
    ///
    /// `max_line_length` bounds the memory used (see [`DEFAULT_MAX_LINE_LENGTH`](crate::DEFAULT_MAX_LINE_LENGTH)).
    pub fn from_stream<S>(body: S, max_line_length: usize) -> Self
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        Self::new(Box::pin(body), max_line_length)
    }

    /// 1-based number of the last line yielded, counting blank lines too (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.splitter.line_number()
    }

    /// Byte offset in the body of the start of the last line yielded.
    pub fn line_offset(&self) -> u64 {
        self.splitter.line_offset()
    }

    /// Body bytes received so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Bytes>>> {
        self.done = true;
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Lines {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.splitter.next_line() {
                Ok(Next::Line(line)) => return Poll::Ready(Some(Ok(line))),
                Ok(Next::NeedMore) => {}
                Err(e) => return this.fail(e),
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.bytes_read += chunk.len() as u64;
                    this.splitter.push(chunk);
                }
                Poll::Ready(Some(Err(e))) => return this.fail(e),
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(this.splitter.finish_ndjson().transpose());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
