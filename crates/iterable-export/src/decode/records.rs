//! [`Records`]: NDJSON lines decoded into records.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use serde::de::DeserializeOwned;

use super::{Lines, parse_json};
use crate::{Event, Result};

/// The records of an NDJSON body, one per line, decoded into `T` (by default [`Event`], which keeps every field).
///
/// Errors are [`Error::Decode`](crate::Error::Decode) with the line's number and byte offset; the stream ends after
/// any error. See [`Lines`] for how lines are split.
///
/// ```
/// use futures::{StreamExt, stream};
/// use iterable_export::{Event, Records};
///
/// # futures::executor::block_on(async {
/// let body = bytes::Bytes::from_static(b"{\"email\":\"a@b.c\",\"campaignId\":1}\n{\"email\":\"d@e.f\"}\n");
/// let records: Vec<Event> = Records::from_stream(stream::iter([Ok(body)]), 1 << 20)
///     .map(|r| r.unwrap())
///     .collect()
///     .await;
/// assert_eq!(records[0].campaign_id, Some(1));
/// assert_eq!(records[1].email.as_deref(), Some("d@e.f"));
/// # });
/// ```
///
/// # Cancel safety
///
/// [`next()`](futures::StreamExt::next) and [`try_next()`](futures::TryStreamExt::try_next) are
/// cancel-safe, as for [`Lines`]: the received bytes and the partial line live in this `Records`
/// (not in the `next()` future), and a line is parsed only in the poll that returns its record.
/// Dropping a `next()` future that has not completed loses no byte and no record; the next call
/// goes on where it stopped. Only dropping the `Records` drops the body.
pub struct Records<T = Event> {
    lines: Lines,
    done: bool,
    _record: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Records<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("lines", &self.lines)
            .field("done", &self.done)
            .finish()
    }
}

impl<T> Records<T> {
    pub(crate) fn new(lines: Lines) -> Self {
        Records {
            lines,
            done: false,
            _record: PhantomData,
        }
    }

    /// Decodes any stream of byte chunks, e.g. a saved export file read in pieces.
    pub fn from_stream<S>(body: S, max_line_length: usize) -> Self
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        Self::new(Lines::from_stream(body, max_line_length))
    }

    /// 1-based line number of the last record yielded.
    pub fn line_number(&self) -> u64 {
        self.lines.line_number()
    }

    /// Body bytes received so far.
    pub fn bytes_read(&self) -> u64 {
        self.lines.bytes_read()
    }
}

impl<T: DeserializeOwned> Stream for Records<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut this.lines).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => None,
            Poll::Ready(Some(Ok(line))) => Some(parse_json(&line, this.lines.line_number(), this.lines.line_offset())),
            Poll::Ready(Some(Err(e))) => Some(Err(e)),
        };
        this.done = !matches!(item, Some(Ok(_)));
        Poll::Ready(item)
    }
}
