//! Requests: `/export/data.json`, `/export/data.csv`, `/export/userEvents`, `/experiments/metrics`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use chrono::{DateTime, SubsecRound, Utc};
use futures::Stream;
use serde::de::DeserializeOwned;

use crate::decode::ByteStream;
use crate::{Client, CsvRecords, Error, Event, Lines, Records, Result, UserEvents};

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Time {
    Default,
    Range(Range),
    Dates {
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
    },
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fields {
    All,
    Only(Vec<String>),
    Omit(Vec<String>),
    Both,
}

/// An export of one data type, from `/export/data.json` or `/export/data.csv`. Created by
/// [`Client::export`]; cheap to clone, and reusable: each terminal call sends a new request.
///
/// Dates have second precision: sub-second parts are truncated from both ends the same way,
/// so adjacent windows never overlap or leave a gap. The start is inclusive, the end exclusive.
#[derive(Debug, Clone)]
pub struct Export {
    client: Client,
    data_type: DataType,
    time: Time,
    fields: Fields,
}

impl Client {
    /// Starts an export of `data_type`. Choose the time span with [`Export::between`] or
    /// [`Export::range`] (without either, the API exports `Today`), then decode with
    /// [`Export::ndjson`], [`Export::lines`] or [`Export::csv`].
    ///
    /// ```no_run
    /// use chrono::{TimeZone, Utc};
    /// use futures::TryStreamExt;
    /// use iterable_export::{Client, DataType};
    ///
    /// # async fn demo(client: Client) -> iterable_export::Result<()> {
    /// let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    /// let end = Utc.with_ymd_and_hms(2024, 2, 1, 0, 0, 0).unwrap();
    /// let mut events = client
    ///     .export(DataType::EmailSend)
    ///     .between(start, end)
    ///     .only_fields(["email", "createdAt", "messageId"])
    ///     .ndjson()
    ///     .await?;
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{:?}", event.message_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn export(&self, data_type: DataType) -> Export {
        Export {
            client: self.clone(),
            data_type,
            time: Time::Default,
            fields: Fields::All,
        }
    }
}

impl Export {
    /// Exports records created in `[start, end)`.
    pub fn between(self, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        self.start(start).end(end)
    }

    /// Sets the inclusive start; [`Export::end`] must be set too.
    pub fn start(mut self, start: DateTime<Utc>) -> Self {
        self.time = match self.time {
            Time::Default => Time::Dates {
                start: Some(start),
                end: None,
            },
            Time::Dates { end, .. } => Time::Dates {
                start: Some(start),
                end,
            },
            Time::Range(_) | Time::Both => Time::Both,
        };
        self
    }

    /// Sets the exclusive end; [`Export::start`] must be set too.
    pub fn end(mut self, end: DateTime<Utc>) -> Self {
        self.time = match self.time {
            Time::Default => Time::Dates {
                start: None,
                end: Some(end),
            },
            Time::Dates { start, .. } => Time::Dates { start, end: Some(end) },
            Time::Range(_) | Time::Both => Time::Both,
        };
        self
    }

    /// Exports a predefined range instead of dates.
    pub fn range(mut self, range: Range) -> Self {
        self.time = match self.time {
            Time::Default | Time::Range(_) => Time::Range(range),
            Time::Dates { .. } | Time::Both => Time::Both,
        };
        self
    }

    /// Exports only these fields (wire names, e.g. `createdAt`).
    pub fn only_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = fields.into_iter().map(Into::into).collect();
        self.fields = match self.fields {
            Fields::All | Fields::Only(_) => Fields::Only(list),
            Fields::Omit(_) | Fields::Both => Fields::Both,
        };
        self
    }

    /// Exports every field but these.
    pub fn omit_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = fields.into_iter().map(Into::into).collect();
        self.fields = match self.fields {
            Fields::All | Fields::Omit(_) => Fields::Omit(list),
            Fields::Only(_) | Fields::Both => Fields::Both,
        };
        self
    }

    /// The data type being exported.
    pub fn data_type(&self) -> DataType {
        self.data_type
    }

    /// The `[start, end)` dates, when the export was given dates.
    pub fn dates(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self.time {
            Time::Dates {
                start: Some(start),
                end: Some(end),
            } => Some((start, end)),
            _ => None,
        }
    }

    /// The predefined range, when the export was given one.
    pub fn predefined_range(&self) -> Option<Range> {
        match self.time {
            Time::Range(range) => Some(range),
            _ => None,
        }
    }

    /// The client this export uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Checks the request without sending it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] saying what to fix.
    pub fn validate(&self) -> Result<()> {
        match &self.time {
            Time::Both => {
                return Err(invalid(
                    "both a range and dates were given: use either `range` or `between`",
                ));
            }
            Time::Dates {
                start: Some(start),
                end: Some(end),
            } => {
                if start.trunc_subsecs(0) >= end.trunc_subsecs(0) {
                    return Err(invalid(format!(
                        "the start ({}) must be before the end ({}); dates have second precision",
                        start.to_rfc3339(),
                        end.to_rfc3339()
                    )));
                }
            }
            Time::Dates { start: None, .. } => {
                return Err(invalid(
                    "an end date was given without a start date: set both, or use a range",
                ));
            }
            Time::Dates { end: None, .. } => {
                return Err(invalid(
                    "a start date was given without an end date: set both, or use a range",
                ));
            }
            Time::Default | Time::Range(_) => {}
        }
        match &self.fields {
            Fields::Both => Err(invalid("both only_fields and omit_fields were given: use one of them")),
            Fields::Only(list) | Fields::Omit(list) => validate_field_names(list),
            Fields::All => Ok(()),
        }
    }

    /// Sends the request and returns the raw body, for writing it somewhere byte for byte.
    ///
    /// # Errors
    /// Validation errors before sending; the API's error for an error status.
    pub async fn body(&self, format: Format) -> Result<Body> {
        self.validate()?;
        self.client
            .with_retries(crate::client::Throttle::ExportLimit, || self.open(format))
            .await
    }

    /// One attempt, no retry, no rate limiting.
    async fn open(&self, format: Format) -> Result<Body> {
        let generated = self.client.generated();
        let (start, end, range) = match self.time {
            Time::Dates { start, end } => (
                start.map(format_iterable_time_trunc),
                end.map(format_iterable_time_trunc),
                None,
            ),
            Time::Range(range) => (None, None, Some(range)),
            _ => (None, None, None),
        };
        let (only, omit) = match &self.fields {
            Fields::Only(list) => (Some(list.join(",")), None),
            Fields::Omit(list) => (None, Some(list.join(","))),
            _ => (None, None),
        };
        tracing::debug!(data_type = %self.data_type, ?format, start, end, ?range, "export request");
        // The two generated builders are distinct types with the same setters.
        macro_rules! send_with_params {
            ($builder:expr) => {{
                let mut request = $builder.data_type_name(self.data_type);
                if let Some(start) = start {
                    request = request.start_date_time(start);
                }
                if let Some(end) = end {
                    request = request.end_date_time(end);
                }
                if let Some(range) = range {
                    request = request.range(range);
                }
                if let Some(only) = only {
                    request = request.only_fields(only);
                }
                if let Some(omit) = omit {
                    request = request.omit_fields(omit);
                }
                request.send().await
            }};
        }
        let result = match format {
            Format::Ndjson => send_with_params!(generated.export_data_json()),
            Format::Csv => send_with_params!(generated.export_data_csv()),
        };
        Ok(Body {
            inner: self.client.body(result).await?,
        })
    }

    /// NDJSON as raw lines (bytes without the line terminator; blank lines skipped), no parsing.
    pub async fn lines(&self) -> Result<Lines> {
        let body = self.body(Format::Ndjson).await?;
        Ok(Lines::new(body.into_inner(), self.client.max_line_length()))
    }

    /// NDJSON decoded into [`Event`]s.
    pub async fn ndjson(&self) -> Result<Records<Event>> {
        self.ndjson_as().await
    }

    /// NDJSON decoded into any deserializable type.
    pub async fn ndjson_as<T: DeserializeOwned>(&self) -> Result<Records<T>> {
        Ok(Records::new(self.lines().await?))
    }

    /// CSV: the header row, then records.
    pub async fn csv(&self) -> Result<CsvRecords> {
        let body = self.body(Format::Csv).await?;
        CsvRecords::new(body.into_inner(), self.client.max_line_length()).await
    }
}

fn format_iterable_time_trunc(time: DateTime<Utc>) -> String {
    format_iterable_time(time.trunc_subsecs(0))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidRequest(msg.into())
}

fn validate_field_names(list: &[String]) -> Result<()> {
    if list.is_empty() {
        return Err(invalid(
            "the field list is empty: name at least one field, e.g. only_fields([\"email\"])",
        ));
    }
    for name in list {
        if name.trim().is_empty() {
            return Err(invalid("a field name is empty"));
        }
        if name.contains(',') {
            return Err(invalid(format!(
                "the field name {name:?} contains a comma: pass each field separately"
            )));
        }
    }
    Ok(())
}

/// The events of one user, from `/export/userEvents`. Created by [`Client::user_events`].
#[derive(Debug, Clone)]
pub struct UserEventsRequest {
    client: Client,
    email: String,
    include_custom_events: Option<bool>,
}

impl Client {
    /// Exports every event of the user with this email address. The real API answers one JSON
    /// event per line (with a `_type` field); the spec's `{"events": [...]}` form is accepted
    /// too. Both are streamed.
    ///
    /// ```no_run
    /// # use futures::TryStreamExt;
    /// # async fn demo(client: iterable_export::Client) -> iterable_export::Result<()> {
    /// let mut events = client.user_events("a@example.com").include_custom_events(true).send().await?;
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{:?} {:?}", event.event_type, event.created_at);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn user_events(&self, email: impl Into<String>) -> UserEventsRequest {
        UserEventsRequest {
            client: self.clone(),
            email: email.into(),
            include_custom_events: None,
        }
    }
}

impl UserEventsRequest {
    /// Whether custom events are included (the API's default is `true`).
    pub fn include_custom_events(mut self, include: bool) -> Self {
        self.include_custom_events = Some(include);
        self
    }

    /// Checks the request without sending it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the email is not an address.
    pub fn validate(&self) -> Result<()> {
        validate_email(&self.email)
    }

    /// Sends the request (retrying transient failures) and returns the raw body.
    pub async fn body(&self) -> Result<Body> {
        self.validate()?;
        self.client
            .with_retries(crate::client::Throttle::Unlimited, || self.open())
            .await
    }

    async fn open(&self) -> Result<Body> {
        let mut request = self
            .client
            .generated()
            .export_user_events()
            .email(self.email.trim().to_owned());
        if let Some(include) = self.include_custom_events {
            request = request.include_custom_events(include);
        }
        Ok(Body {
            inner: self.client.body(request.send().await).await?,
        })
    }

    /// Sends the request and streams the user's events.
    pub async fn send(&self) -> Result<UserEvents> {
        let body = self.body().await?;
        Ok(UserEvents::new(body.into_inner(), self.client.max_line_length()))
    }
}

fn validate_email(email: &str) -> Result<()> {
    let email = email.trim();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "{email:?} is not an email address (expected e.g. user@example.com)"
        )))
    }
}

/// Experiment metrics as CSV, from `/experiments/metrics`. Created by
/// [`Client::experiment_metrics`].
#[derive(Debug, Clone)]
pub struct ExperimentMetricsRequest {
    client: Client,
    experiment_ids: Vec<i64>,
    campaign_ids: Vec<i64>,
}

/// The most IDs (experiments and campaigns together) one metrics request may carry.
pub const MAX_METRICS_IDS: usize = 200;

impl Client {
    /// Exports metrics of email experiments, selected by experiment and/or campaign IDs
    /// (1 to 200 IDs in all).
    ///
    /// ```no_run
    /// # use futures::TryStreamExt;
    /// # async fn demo(client: iterable_export::Client) -> iterable_export::Result<()> {
    /// let mut rows = client.experiment_metrics().experiment_ids([1, 2]).campaign_ids([3]).send().await?;
    /// println!("{:?}", rows.headers());
    /// while let Some(row) = rows.try_next().await? {
    ///     println!("{:?}", row.get(0));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn experiment_metrics(&self) -> ExperimentMetricsRequest {
        ExperimentMetricsRequest {
            client: self.clone(),
            experiment_ids: Vec::new(),
            campaign_ids: Vec::new(),
        }
    }
}

impl ExperimentMetricsRequest {
    /// Adds experiment IDs.
    pub fn experiment_ids(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.experiment_ids.extend(ids);
        self
    }

    /// Adds campaign IDs.
    pub fn campaign_ids(mut self, ids: impl IntoIterator<Item = i64>) -> Self {
        self.campaign_ids.extend(ids);
        self
    }

    /// Checks the request without sending it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for no IDs or more than [`MAX_METRICS_IDS`].
    pub fn validate(&self) -> Result<()> {
        let count = self.experiment_ids.len() + self.campaign_ids.len();
        if count == 0 {
            return Err(invalid("no experiment or campaign IDs: give at least one"));
        }
        if count > MAX_METRICS_IDS {
            return Err(invalid(format!(
                "{count} IDs given, but one request takes at most {MAX_METRICS_IDS}: split them into several requests"
            )));
        }
        Ok(())
    }

    /// Sends the request (retrying transient failures) and returns the raw CSV body.
    pub async fn body(&self) -> Result<Body> {
        self.validate()?;
        self.client
            .with_retries(crate::client::Throttle::Unlimited, || self.open())
            .await
    }

    async fn open(&self) -> Result<Body> {
        let mut request = self.client.generated().export_experiment_metrics();
        if !self.experiment_ids.is_empty() {
            request = request.experiment_id(self.experiment_ids.clone());
        }
        if !self.campaign_ids.is_empty() {
            request = request.campaign_id(self.campaign_ids.clone());
        }
        Ok(Body {
            inner: self.client.body(request.send().await).await?,
        })
    }

    /// Sends the request and streams the CSV rows.
    pub async fn send(&self) -> Result<CsvRecords> {
        let body = self.body().await?;
        CsvRecords::new(body.into_inner(), self.client.max_line_length()).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn client() -> Result<Client> {
        Client::builder()
            .api_key("k")
            .base_url("http://127.0.0.1:9/api")
            .build()
    }

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).single().unwrap_or_default()
    }

    fn message(result: Result<()>) -> String {
        match result {
            Err(Error::InvalidRequest(msg)) => msg,
            other => format!("not InvalidRequest: {other:?}"),
        }
    }

    #[test]
    fn validation_catches_each_mistake() -> Result<()> {
        let c = client()?;
        let e = |x: Export| message(x.validate());
        assert!(
            e(c.export(DataType::EmailSend).between(t(2), t(1)))
                .starts_with("the start (2024-01-01T02:00:00+00:00) must be before")
        );
        assert!(e(c.export(DataType::EmailSend).between(t(1), t(1))).starts_with("the start"));
        assert!(e(c.export(DataType::EmailSend).start(t(1))).starts_with("a start date was given without an end date"));
        assert!(e(c.export(DataType::EmailSend).end(t(1))).starts_with("an end date was given without a start date"));
        assert!(
            e(c.export(DataType::EmailSend).range(Range::All).between(t(1), t(2)))
                .starts_with("both a range and dates")
        );
        assert!(
            e(c.export(DataType::EmailSend).only_fields(["a"]).omit_fields(["b"]))
                .starts_with("both only_fields and omit_fields")
        );
        assert_eq!(
            e(c.export(DataType::EmailSend).only_fields([""])),
            "a field name is empty"
        );
        assert!(e(c.export(DataType::EmailSend).omit_fields(["a,b"])).contains("contains a comma"));
        assert!(
            e(c.export(DataType::EmailSend).only_fields(Vec::<String>::new())).starts_with("the field list is empty")
        );
        c.export(DataType::EmailSend)
            .between(t(1), t(2))
            .only_fields(["email"])
            .validate()?;
        c.export(DataType::EmailSend).range(Range::All).validate()?;
        c.export(DataType::EmailSend).validate()?;
        Ok(())
    }

    #[test]
    fn emails_and_metric_ids_are_validated() -> Result<()> {
        let c = client()?;
        for bad in ["", "a", "a@", "@b.com", "a@b", "a b@c.com", "a@b@c.com", "a@.com"] {
            assert!(
                message(c.user_events(bad).validate()).contains("is not an email address"),
                "{bad}"
            );
        }
        c.user_events("a@example.com").validate()?;
        assert_eq!(
            message(c.experiment_metrics().validate()),
            "no experiment or campaign IDs: give at least one"
        );
        let too_many = c.experiment_metrics().experiment_ids(0..150).campaign_ids(0..51);
        assert!(message(too_many.validate()).starts_with("201 IDs given, but one request takes at most 200"));
        c.experiment_metrics()
            .experiment_ids(0..100)
            .campaign_ids(0..100)
            .validate()?;
        Ok(())
    }

    #[test]
    fn iterable_time_format() {
        assert_eq!(format_iterable_time(t(13)), "2024-01-01 13:00:00");
        let with_millis = t(13) + chrono::Duration::milliseconds(999);
        assert_eq!(format_iterable_time_trunc(with_millis), "2024-01-01 13:00:00");
    }

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
