//! [`CsvRecords`]: CSV bodies (`/export/data.csv`, `/experiments/metrics`) split into records.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use serde::de::DeserializeOwned;

mod parser;

use self::parser::{CsvParser, Parsed, Step};
use super::{ByteStream, decode_error};
use crate::Result;

/// The records of a CSV body. The header row is read when the decoder is created ([`headers`](Self::headers)); the
/// stream yields the records after it.
///
/// Quoted fields may contain commas, doubled quotes and line breaks; records may end with `"\n"` or `"\r\n"`; blank
/// lines are skipped; a UTF-8 byte order mark is ignored; records may have more or fewer fields than the header,
/// except the last one when it has no terminator: a body that ends cleanly inside its last record (a quoted field
/// left open, a header row without its terminator, or an unterminated record with another field count than the
/// header's: a connection closed early without an error) ends the stream with a transient [`Error::Transport`](crate::Error::Transport) instead of yielding the partial record.
/// Fields must be UTF-8. Memory is bounded by the maximum record length (the record's bytes as received, without
/// its terminator): a longer record ends the stream with [`Error::LineTooLong`](crate::Error::LineTooLong). Decoding errors carry the line
/// number and byte offset where the record starts.
///
/// ```
/// use futures::{StreamExt, stream};
/// use iterable_export::CsvRecords;
///
/// # futures::executor::block_on(async {
/// let body = "email,note\r\na@b.c,\"hello, \"\"world\"\"\nbye\"\r\n";
/// let mut records = CsvRecords::from_stream(stream::iter([Ok(bytes::Bytes::from(body))]), 1 << 20).await?;
/// assert_eq!(records.headers(), ["email", "note"]);
/// let record = records.next().await.unwrap()?;
/// assert_eq!(record.get_by_name("note"), Some("hello, \"world\"\nbye"));
/// assert_eq!(record.raw(), &b"a@b.c,\"hello, \"\"world\"\"\nbye\""[..]);
/// assert!(records.next().await.is_none());
/// # Ok::<(), iterable_export::Error>(())
/// # }).unwrap();
/// ```
///
/// # Cancel safety
///
/// [`next()`](futures::StreamExt::next) and [`try_next()`](futures::TryStreamExt::try_next) are
/// cancel-safe, on this type and on [`CsvDeserialize`]: the received chunks, csv-core's state and
/// a partial record live in this `CsvRecords`, not in the `next()` future, and a record is taken
/// out only in the poll that returns it. Dropping a `next()` future that has not completed loses
/// no byte and no record; the next call goes on where it stopped.
///
/// Creating the decoder is not cancel-safe: the future of [`CsvRecords::from_stream`] (and of
/// [`Export::csv`](crate::Export::csv)) owns the body while it reads the header row, so dropping
/// it before it completes drops the body too. Start again from a new body (a new request).
pub struct CsvRecords {
    body: ByteStream,
    parser: CsvParser,
    headers: Arc<[String]>,
    /// The same, for the `csv` crate's deserializer.
    header_record: Arc<csv::StringRecord>,
    header_raw: Bytes,
    bytes_read: u64,
    done: bool,
}

impl std::fmt::Debug for CsvRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRecords")
            .field("headers", &self.headers)
            .field("bytes_read", &self.bytes_read)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl CsvRecords {
    /// Reads the header row.
    pub(crate) async fn new(body: ByteStream, max_record_length: usize) -> Result<Self> {
        let mut this = CsvRecords {
            body,
            parser: CsvParser::new(max_record_length),
            headers: Arc::from(Vec::new()),
            header_record: Arc::new(csv::StringRecord::new()),
            header_raw: Bytes::new(),
            bytes_read: 0,
            done: false,
        };
        if let Some(header) = futures::future::poll_fn(|cx| this.poll_parsed(cx)).await {
            let header = header?;
            this.headers = (0..header.ends.len())
                .map(|i| field(&header.data, &header.ends, i).to_owned())
                .collect();
            this.header_record = Arc::new(this.headers.iter().collect());
            this.header_raw = header.raw;
        }
        Ok(this)
    }

    /// Decodes any stream of byte chunks, e.g. a saved CSV export read in pieces; reads the header row first.
    pub async fn from_stream<S>(body: S, max_record_length: usize) -> Result<Self>
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        Self::new(Box::pin(body), max_record_length).await
    }

    /// The header row (empty if the body was empty).
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The header row exactly as received, without its terminator (and without a byte-order
    /// mark); empty if the body was empty.
    pub fn header_raw(&self) -> &[u8] {
        &self.header_raw
    }

    /// Body bytes received so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Deserializes each record into `T`, by header name for structs and maps, by position for tuples and
    /// sequences. Fields are parsed as the target type requires (numbers, booleans; an empty field is `None` for
    /// an `Option`).
    ///
    /// ```
    /// use futures::{StreamExt, stream};
    /// #[derive(serde::Deserialize)]
    /// struct Metric { #[serde(rename = "experimentId")] experiment_id: i64, sends: Option<u64> }
    ///
    /// # futures::executor::block_on(async {
    /// let body = bytes::Bytes::from_static(b"experimentId,sends\n12,100\n13,\n");
    /// let records = iterable_export::CsvRecords::from_stream(stream::iter([Ok(body)]), 1 << 20).await?;
    /// let metrics: Vec<Metric> = records.deserialize().map(|m| m.unwrap()).collect().await;
    /// assert_eq!((metrics[0].experiment_id, metrics[0].sends), (12, Some(100)));
    /// assert_eq!(metrics[1].sends, None);
    /// # Ok::<(), iterable_export::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn deserialize<T: DeserializeOwned>(self) -> CsvDeserialize<T> {
        CsvDeserialize {
            records: self,
            _record: PhantomData,
        }
    }

    fn poll_parsed(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Parsed>>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.parser.step() {
                Ok(Step::Record(p)) => {
                    // A body that ended cleanly inside its last record (a connection closed
                    // early without an error): a quoted field left open, a header row without
                    // its terminator (its last column name may be cut: `email,crea`), or a
                    // final record without a terminator whose field count differs from the
                    // header's.
                    let cut = p.at_end
                        && (p.open_quote
                            || (!p.terminated && (self.headers.is_empty() || p.ends.len() != self.headers.len())));
                    if cut {
                        self.done = true;
                        return Poll::Ready(Some(Err(super::lines::cut_off(p.line, p.offset))));
                    }
                    return Poll::Ready(Some(Ok(p)));
                }
                Ok(Step::End) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
                Err(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            match self.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.bytes_read += chunk.len() as u64;
                    self.parser.push(chunk);
                }
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => self.parser.finish(),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Stream for CsvRecords {
    type Item = Result<CsvRecord>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.poll_parsed(cx).map(|p| {
            p.map(|p| {
                p.map(|p| CsvRecord {
                    headers: this.headers.clone(),
                    header_record: this.header_record.clone(),
                    data: p.data,
                    ends: p.ends,
                    raw: p.raw,
                    line: p.line,
                    offset: p.offset,
                })
            })
        })
    }
}

fn field<'a>(data: &'a str, ends: &[usize], i: usize) -> &'a str {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &data[start..ends[i]]
}

/// One CSV record: its fields (unquoted), the header row, and its bytes as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRecord {
    headers: Arc<[String]>,
    header_record: Arc<csv::StringRecord>,
    data: String,
    ends: Vec<usize>,
    raw: Bytes,
    line: u64,
    offset: u64,
}

impl CsvRecord {
    /// The field at `index`.
    pub fn get(&self, index: usize) -> Option<&str> {
        (index < self.ends.len()).then(|| field(&self.data, &self.ends, index))
    }

    /// The field under the (first) header `name`.
    pub fn get_by_name(&self, name: &str) -> Option<&str> {
        self.get(self.headers.iter().position(|h| h == name)?)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The fields in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len()).map(|i| field(&self.data, &self.ends, i))
    }

    /// The header row of the body this record came from.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// `(header, field)` pairs; fields beyond the header row are left out.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter().map(String::as_str).zip(self.iter())
    }

    /// The record's bytes exactly as received (quoting included), without the line terminator: write them followed
    /// by `"\n"` to copy the record.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// 1-based line number where the record starts.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Byte offset in the body where the record starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Deserializes the record into `T` (see [`CsvRecords::deserialize`]), with the `csv`
    /// crate's deserializer: structs and maps by header name, tuples and sequences by position.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        let fields: csv::StringRecord = self.iter().collect();
        fields
            .deserialize(Some(&self.header_record))
            .map_err(|e| decode_error(self.line, self.offset, e))
    }
}

/// The records of a CSV body deserialized into `T`; see [`CsvRecords::deserialize`].
pub struct CsvDeserialize<T> {
    records: CsvRecords,
    _record: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for CsvDeserialize<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvDeserialize")
            .field("records", &self.records)
            .finish()
    }
}

impl<T> CsvDeserialize<T> {
    /// The header row.
    pub fn headers(&self) -> &[String] {
        self.records.headers()
    }
}

impl<T: DeserializeOwned> Stream for CsvDeserialize<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let records = &mut self.records;
        Pin::new(&mut *records).poll_next(cx).map(|r| {
            r.map(|r| {
                let item = r.and_then(|record| record.deserialize());
                if item.is_err() {
                    records.done = true;
                }
                item
            })
        })
    }
}
