//! [`Event`]: one exported Iterable record, typed where it matters and complete everywhere else.
//!
//! - `mod.rs`: the type, declared by one table of its typed fields, and its methods;
//! - `table.rs`: the table macro, `typed_record!`; `record.rs`: the machinery its expansion calls (both serve any
//!   record type);
//! - `de.rs` and `ser.rs`: reading and writing records as JSON;
//! - `time.rs`: Iterable's time formats;
//! - `user.rs`: [`User`], a record of the user table, declared by the same macro.

pub(crate) mod de;
pub(crate) mod placed;
pub(crate) mod record;
pub(crate) mod ser;
mod table;
pub(crate) mod time;
mod user;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

pub use placed::time_field;
use table::typed_record;
pub use time::parse_iterable_time;
pub use user::User;

typed_record! {
    /// One record of an Iterable export (`/export/data.json`, `/export/userEvents`): an event (emailSend,
    /// emailOpen, customEvent, purchase, …) or a user.
    ///
    /// The fields most programs need are typed (see the table below); **every** other field is kept, in order,
    /// with its JSON value as it arrived ([`RawValue`]). Serializing an `Event` with `serde_json` writes all fields
    /// back with their wire names, in their original positions, and the original text of values that were not in
    /// canonical form (a `createdAt` in RFC 3339, a `campaignId` sent as a string, …): a compact record
    /// round-trips byte for byte. (Only a typed string field written with escapes that serde_json writes
    /// differently, such as `\u00e9` or `\/`, comes back as the same string in other bytes.)
    ///
    /// # Example
    ///
    /// ```
    /// use iterable_export::Event;
    ///
    /// let line = r#"{"email":"a@example.com","createdAt":"2021-04-14 16:25:55 +00:00","campaignId":123,"itblInternal":{"documentCreatedAt":"2021-04-14 16:25:55 +00:00"},"city":"Paris"}"#;
    /// let event: Event = serde_json::from_str(line)?;
    /// assert_eq!(event.email.as_deref(), Some("a@example.com"));
    /// assert_eq!(event.campaign_id, Some(123));
    /// assert_eq!(event.created_at.unwrap().to_rfc3339(), "2021-04-14T16:25:55+00:00");
    /// assert_eq!(event.get("city").unwrap().get(), r#""Paris""#);
    /// assert_eq!(serde_json::to_string(&event)?, line); // byte-faithful
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    ///
    /// `Event` implements `Deserialize` for JSON (`serde_json::from_slice`, `from_str`, `from_reader`,
    /// `from_value`); its unknown fields are [`RawValue`]s, which other data formats do not support.
    ///
    /// # Times
    ///
    /// `createdAt` is accepted as Iterable writes it (`2021-04-14 16:25:55 +00:00`, any offset, optional fraction
    /// of a second), as RFC 3339 (`2021-04-14T16:25:55Z`), without a zone (taken as UTC) and as epoch
    /// milliseconds (an integer). A time set in code is written in Iterable's form, in UTC.
    ///
    /// # Values of the wrong type
    ///
    /// A typed field whose value does not fit never makes the record fail; its original JSON is kept and written
    /// back:
    /// - an integer field sent as a string of digits (`"campaignId":"123"`) is parsed (`Some(123)`);
    /// - a string field sent as a number (`"userId":42`) becomes its decimal text (`Some("42")`);
    /// - `createdAt` that is not a recognised time, `null`, and any other mismatch leave the field `None`; the raw
    ///   value is then available from [`get`](Self::get).
    pub struct Event("an Iterable event") {
        email:           String        = "email",         "the user's email address";
        user_id:         String        = "userId",        "the user's ID";
        created_at:      DateTime<Utc> = "createdAt",     "when it happened (for a user: when it was created)";
        campaign_id:     i64           = "campaignId",    "the campaign";
        template_id:     i64           = "templateId",    "the template";
        message_id:      String        = "messageId",     "the message";
        event_name:      String        = "eventName",     "the name of a custom event";
        event_type:      String        = "_type",         "the event type (`emailSend`, …), from `/export/userEvents`";
        content_id:      i64           = "contentId",     "the content";
        channel_id:      i64           = "channelId",     "the channel";
        message_type_id: i64           = "messageTypeId", "the message type";
        workflow_id:     i64           = "workflowId",    "the workflow (journey)";
    }
    field enum EventField;
    time field created_at;
    other names [
        "messageBusId": Str, "catalogCollectionCount": Int, "catalogLookupCount": Int,
        "productRecommendationCount": Int, "transactionalData": Json, "itblInternal": Json, "city": Str,
        "country": Str, "region": Str, "ip": Str, "userAgent": Str, "userAgentDevice": Str, "url": Str,
        "hrefIndex": Int, "linkId", "linkUrl": Str, "recipientState": Str, "status": Str, "id": Str, "total": Json,
        "items": Json, "dataFields": Json, "campaignName": Str, "templateName": Str, "workflowName": Str,
        "emailListIds": Json, "emailSubject": Str, "unsubSource": Str, "bounceMessage": Str, "platformEndpoint": Str,
        "signupDate", "profileUpdatedAt", "firstName", "lastName", "phoneNumber", "locale", "eventUpdatedAt",
        "isCustomEvent": Bool,
    ];
}

impl Event {
    /// An event without fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw JSON value of a field that has no typed field (or of a typed field whose value did not fit its type,
    /// such as `"campaignId":null`). Use the typed fields for the others, or [`field`](Self::field) for any field.
    ///
    /// ```
    /// let event: iterable_export::Event = serde_json::from_str(r#"{"email":"a@b.c","total":12.5}"#)?;
    /// assert_eq!(event.get("total").map(|v| v.get()), Some("12.5"));
    /// assert!(event.get("email").is_none());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn get(&self, name: &str) -> Option<&RawValue> {
        record::get(self, name)
    }

    /// The JSON value of any field, typed ones included, as it would be serialized.
    ///
    /// ```
    /// let event: iterable_export::Event = serde_json::from_str(r#"{"campaignId":7}"#)?;
    /// assert_eq!(event.field("campaignId").unwrap().get(), "7");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn field(&self, name: &str) -> Option<Cow<'_, RawValue>> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// All fields in wire order (the order in which they are serialized), with their JSON values.
    ///
    /// ```
    /// let event: iterable_export::Event = serde_json::from_str(r#"{"ip":"::1","email":"a@b.c"}"#)?;
    /// let names: Vec<&str> = event.fields().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["ip", "email"]);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = (&str, Cow<'_, RawValue>)> + '_ {
        record::fields(self)
    }

    /// The fields without a typed field, in wire order.
    pub fn other_fields(&self) -> impl Iterator<Item = (&str, &RawValue)> + '_ {
        record::other_fields(self)
    }

    /// Sets a field from JSON, keeping its position if it exists and appending it otherwise. A typed field is parsed
    /// into its typed value (leniently, as when deserializing).
    ///
    /// ```
    /// use serde_json::value::RawValue;
    /// let mut event = iterable_export::Event::new();
    /// event.insert("campaignId", RawValue::from_string("12".into())?);
    /// event.insert("source", RawValue::from_string(r#""import""#.into())?);
    /// assert_eq!(event.campaign_id, Some(12));
    /// assert_eq!(serde_json::to_string(&event)?, r#"{"campaignId":12,"source":"import"}"#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn insert(&mut self, name: &str, value: Box<RawValue>) {
        record::insert(self, name, &value);
    }

    /// Removes a field (typed or not) and returns its JSON value.
    pub fn remove(&mut self, name: &str) -> Option<Box<RawValue>> {
        record::remove(self, name)
    }

    /// `transactionalData`, which Iterable sends either as an object or as a JSON-encoded string: the decoded JSON
    /// in both cases. A string that is not JSON is returned as the string.
    ///
    /// ```
    /// let a: iterable_export::Event = serde_json::from_str(r#"{"transactionalData":{"orderId":"A1"}}"#)?;
    /// let b: iterable_export::Event = serde_json::from_str(r#"{"transactionalData":"{\"orderId\":\"A1\"}"}"#)?;
    /// assert_eq!(a.transactional_data().unwrap().get(), r#"{"orderId":"A1"}"#);
    /// assert_eq!(b.transactional_data().unwrap().get(), r#"{"orderId":"A1"}"#);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn transactional_data(&self) -> Option<Cow<'_, RawValue>> {
        let raw = self.get("transactionalData")?;
        if raw.get().starts_with('"')
            && let Ok(text) = serde_json::from_str::<String>(raw.get())
            && let Ok(inner) = RawValue::from_string(text.trim().to_owned())
        {
            return Some(Cow::Owned(inner));
        }
        Some(Cow::Borrowed(raw))
    }

    /// [`transactional_data`](Self::transactional_data) deserialized into `T`.
    pub fn transactional_data_as<T: serde::de::DeserializeOwned>(&self) -> Option<serde_json::Result<T>> {
        self.transactional_data().map(|raw| serde_json::from_str(raw.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> Event {
        let e: Event = serde_json::from_str(s).expect("parses");
        assert_eq!(serde_json::to_string(&e).expect("serializes"), s);
        e
    }

    #[test]
    fn lenient_and_faithful() {
        let e =
            rt(r#"{"campaignId":"123","userId":42,"createdAt":1618417555000,"templateId":null,"messageId":{"a":1}}"#);
        assert_eq!(e.campaign_id, Some(123));
        assert_eq!(e.user_id.as_deref(), Some("42"));
        assert_eq!(e.created_at.map(|t| t.timestamp()), Some(1_618_417_555));
        assert_eq!(e.template_id, None);
        assert_eq!(e.get("templateId").map(RawValue::get), Some("null"));
        assert_eq!(e.message_id, None);
        assert_eq!(e.get("messageId").map(RawValue::get), Some(r#"{"a":1}"#));
        rt(r#"{"createdAt":"2021-04-14T16:25:55Z","email":"x"}"#);
        rt(r#"{"createdAt":"not a time"}"#);
    }

    #[test]
    fn edits() {
        let mut e: Event = serde_json::from_str(r#"{"a":1,"createdAt":"2021-04-14T16:25:55Z","email":"x"}"#).unwrap();
        e.email = None;
        e.campaign_id = Some(5);
        e.created_at = e.created_at.map(|t| t + chrono::TimeDelta::seconds(1));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"a":1,"createdAt":"2021-04-14 16:25:56 +00:00","campaignId":5}"#
        );
        assert_eq!(e.remove("a").unwrap().get(), "1");
        assert_eq!(e.remove("campaignId").unwrap().get(), "5");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"createdAt":"2021-04-14 16:25:56 +00:00"}"#
        );
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let e: Event = serde_json::from_str(r#"{"email":"a","x":1,"email":"b"}"#).unwrap();
        assert_eq!(e.email.as_deref(), Some("b"));
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"x":1,"email":"b"}"#);
    }

    #[test]
    fn from_value_and_reader() {
        let s = r#"{"email":"a","itblInternal":{"x":[1,2]},"campaignId":3}"#;
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        let a: Event = serde_json::from_value(v).unwrap();
        let b: Event = serde_json::from_reader(s.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&b).unwrap(), s);
    }
}
