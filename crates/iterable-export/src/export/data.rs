//! `/export/data.json` and `/export/data.csv`: [`Export`].

use chrono::{DateTime, SubsecRound, Utc};
use serde::de::DeserializeOwned;

use super::{Body, DataType, Format, Range, format_iterable_time, invalid};
use crate::{Client, CsvRecords, Event, Lines, Records, Result, User};

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
    /// Exports records created in `[start, end)` (for the user table, [`DataType::User`]: users whose profile
    /// was updated in it, by `profileUpdatedAt`).
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

    /// The `onlyFields` and `omitFields` values (comma-separated) the request sends.
    pub(crate) fn field_lists(&self) -> (Option<String>, Option<String>) {
        match &self.fields {
            Fields::Only(list) => (Some(list.join(",")), None),
            Fields::Omit(list) => (None, Some(list.join(","))),
            _ => (None, None),
        }
    }

    /// The client this export uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Checks the request without sending it.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest) saying what to fix.
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
        let (only, omit) = self.field_lists();
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

    /// NDJSON decoded into any deserializable type, such as [`User`] or a struct of your own.
    pub async fn ndjson_as<T: DeserializeOwned>(&self) -> Result<Records<T>> {
        Ok(Records::new(self.lines().await?))
    }

    /// NDJSON decoded into [`User`]s: for an export of the user table ([`DataType::User`]), whose records have no
    /// `createdAt` and are selected by `profileUpdatedAt`. The same as `ndjson_as::<User>()`.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// use iterable_export::{Client, DataType, Range};
    ///
    /// # async fn demo(client: Client) -> iterable_export::Result<()> {
    /// // the users whose profile changed yesterday
    /// let mut users = client.export(DataType::User).range(Range::Yesterday).users().await?;
    /// while let Some(user) = users.try_next().await? {
    ///     println!("{:?} {:?} {:?}", user.email, user.profile_updated_at, user.get("itblInternal.emailDomain"));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn users(&self) -> Result<Records<User>> {
        self.ndjson_as().await
    }

    /// CSV: the header row, then records.
    pub async fn csv(&self) -> Result<CsvRecords> {
        let body = self.body(Format::Csv).await?;
        CsvRecords::new(body.into_inner(), self.client.max_line_length()).await
    }
}

pub(crate) fn format_iterable_time_trunc(time: DateTime<Utc>) -> String {
    format_iterable_time(time.trunc_subsecs(0))
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::export::test_support::{client, message};

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).single().unwrap_or_default()
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
    fn iterable_time_format() {
        assert_eq!(format_iterable_time(t(13)), "2024-01-01 13:00:00");
        let with_millis = t(13) + chrono::Duration::milliseconds(999);
        assert_eq!(format_iterable_time_trunc(with_millis), "2024-01-01 13:00:00");
    }
}
