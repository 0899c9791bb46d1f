//! Requests, one module per endpoint: `/export/data.json` and `/export/data.csv` ([`Export`]),
//! `/export/userEvents` ([`UserEventsRequest`]), `/experiments/metrics`
//! ([`ExperimentMetricsRequest`]); and what they share: data types, formats, response bodies.

mod data;
mod metrics;
mod user_events;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::Stream;

use crate::decode::ByteStream;
use crate::{Error, Result};

pub use self::data::Export;
pub(crate) use self::data::format_iterable_time_trunc;
pub use self::metrics::{ExperimentMetricsRequest, MAX_METRICS_IDS};
pub use self::user_events::UserEventsRequest;

/// The kind of records to export (`emailSend`, `emailOpen`, `user`, … — the 53 names Iterable accepts): the spec's
/// `dataTypeName` enum, generated from the OpenAPI document.
///
/// ```
/// use iterable_export::DataType;
///
/// let data_type: DataType = "emailSend".parse()?;
/// assert_eq!(data_type, DataType::EmailSend);
/// assert_eq!(data_type.to_string(), "emailSend");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type DataType = iterable_export_gen::types::DataTypeName;

/// A predefined time range, in UTC: `Today` (the API's default), `Yesterday`, `BeforeToday`,
/// `All`. Generated from the OpenAPI document.
pub type Range = iterable_export_gen::types::Range;

/// Every data type Iterable's export endpoints accept (53, Iterable API 1.8), in the spec's
/// order: [`DataType::ALL`], which `cargo xtask generate` emits from the spec's `dataTypeName`
/// enum with the overlays of `spec/overlays/` applied. Adding a data type is a line in an overlay.
pub const ALL_DATA_TYPES: &[DataType] = DataType::ALL;

/// Formats a time the way Iterable documents its date parameters: `yyyy-MM-dd HH:mm:ss`, UTC.
pub fn format_iterable_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The format of an export body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Newline-delimited JSON (`/export/data.json`).
    Ndjson,
    /// CSV with a header row (`/export/data.csv`).
    Csv,
}

impl Format {
    /// The usual file extension: `ndjson` or `csv`.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }
}

/// A response body as it arrives: a stream of byte chunks. Memory stays bounded by the chunk
/// size; errors (a connection cut, a read timeout) arrive as items.
///
/// Two views of the same bytes: this type is a [`Stream`] of [`Bytes`] chunks, and
/// [`Body::into_async_read`] turns it into a [`tokio::io::AsyncBufRead`] for code that reads
/// bytes (`tokio::io::copy_buf`, `lines()`, a decompressor, a CSV reader on tokio).
pub struct Body {
    inner: ByteStream,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl Stream for Body {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Body {
    pub(crate) fn into_inner(self) -> ByteStream {
        self.inner
    }

    /// The body as a [`tokio::io::AsyncBufRead`] (and so an [`AsyncRead`](tokio::io::AsyncRead)),
    /// buffering one chunk at a time, as the chunks arrive.
    ///
    /// An error of the body (a connection cut, a read timeout) becomes a [`std::io::Error`] that
    /// holds this crate's [`Error`]: get it back with
    /// `io_error.get_ref().and_then(|e| e.downcast_ref::<iterable_export::Error>())`. Its kind is
    /// [`TimedOut`](std::io::ErrorKind::TimedOut) for a timeout, otherwise
    /// [`Other`](std::io::ErrorKind::Other) (see `From<Error> for std::io::Error`). A body that
    /// ends early without an error reads as a shorter body, as with the [`Stream`].
    ///
    /// ```no_run
    /// use iterable_export::{Client, DataType, Format, Range};
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::from_env()?;
    /// let body = client.export(DataType::EmailSend).range(Range::Yesterday).body(Format::Csv).await?;
    /// let mut reader = body.into_async_read();
    /// let mut file = tokio::fs::File::create("email-sends.csv").await?;
    /// match tokio::io::copy_buf(&mut reader, &mut file).await {
    ///     Ok(bytes) => println!("{bytes} bytes"),
    ///     Err(err) => match err.get_ref().and_then(|e| e.downcast_ref::<iterable_export::Error>()) {
    ///         Some(export_error) => eprintln!("the export failed: {export_error}"),
    ///         None => eprintln!("writing the file failed: {err}"),
    ///     },
    /// }
    /// # Ok(()) }
    /// ```
    pub fn into_async_read(self) -> impl tokio::io::AsyncBufRead + Send + Unpin {
        tokio_util::io::StreamReader::new(futures::TryStreamExt::map_err(self.inner, std::io::Error::from))
    }
}

/// A request that cannot be valid, with what to fix.
fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

/// Shared by the endpoint modules' tests.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::{Client, Error, Result};

    pub(crate) fn client() -> Result<Client> {
        Client::builder()
            .api_key("k")
            .base_url("http://127.0.0.1:9/api")
            .build()
    }

    /// The message of an `InvalidRequest`, or a text that says what came instead.
    pub(crate) fn message(result: Result<()>) -> String {
        match result {
            Err(Error::InvalidRequest(msg)) => msg,
            other => format!("not InvalidRequest: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL_DATA_TYPES` is exactly the spec's enum: its count and order are those of the values
    /// the generated JSON Schema of `DataType` lists (derived from the enum the overlaid spec
    /// declares; the workspace tests check that list against the overlaid spec itself), and each
    /// name round-trips through `Display`, `FromStr` and serde.
    #[test]
    fn all_data_types_are_the_spec_enum_and_round_trip_their_wire_names() -> std::result::Result<(), serde_json::Error>
    {
        let schema = schemars::schema_for!(DataType);
        let spec_values: Vec<&str> = schema
            .get("enum")
            .and_then(serde_json::Value::as_array)
            .map(|values| values.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        assert!(spec_values.contains(&"user"), "{spec_values:?}");
        assert_eq!(ALL_DATA_TYPES.len(), spec_values.len());
        for (data_type, name) in ALL_DATA_TYPES.iter().zip(&spec_values) {
            assert_eq!(data_type.to_string(), *name);
            assert_eq!(name.parse::<DataType>().ok(), Some(*data_type));
            assert_eq!(serde_json::to_value(data_type)?, serde_json::json!(name));
        }
        Ok(())
    }
}
