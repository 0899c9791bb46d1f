//! Streaming decoders for export bodies: NDJSON [`Lines`] and [`Records`], [`CsvRecords`] and [`UserEvents`].
//!
//! All decoders work on a stream of byte chunks as they arrive from the network, whatever the chunk boundaries
//! (a UTF-8 character or a `"\r\n"` split between chunks, blank lines, no final newline). Memory is bounded by the
//! longest line or record: one longer than the maximum ends the stream with [`Error::LineTooLong`](crate::Error)
//! without being buffered. Decoding errors are [`Error::Decode`](crate::Error) with the 1-based line number and the
//! byte offset of the start of the line in the body. Errors from the body pass through unchanged. After an error, a
//! decoder's stream ends.

mod csv;
mod lines;
mod records;
mod user_events;

pub use self::csv::{CsvDeserialize, CsvRecord, CsvRecords};
pub use self::lines::Lines;
pub use self::records::Records;
pub use self::user_events::UserEvents;

/// A response body: a stream of byte chunks.
pub(crate) type ByteStream = std::pin::Pin<Box<dyn futures::Stream<Item = crate::Result<bytes::Bytes>> + Send>>;

/// Default maximum line length: 16 MiB.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 16 * 1024 * 1024;

/// The error for a line that could not be decoded.
pub(crate) fn decode_error(line: u64, offset: u64, message: impl std::fmt::Display) -> crate::Error {
    crate::Error::Decode {
        line,
        offset,
        message: message.to_string(),
    }
}

/// Parses one JSON record. UTF-8 is checked once for the whole record, which lets serde_json skip its per-string
/// checks (markedly faster than `from_slice`).
#[inline]
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], line: u64, offset: u64) -> crate::Result<T> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| decode_error(line, offset, format_args!("invalid UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| decode_error(line, offset, e))
}
