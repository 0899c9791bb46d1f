//! [`Event`]: one exported Iterable record, typed where it matters and complete everywhere else.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One record of an Iterable export (`/export/data.json`, `/export/userEvents`): an event (emailSend, emailOpen,
/// customEvent, purchase, …) or a user.
///
/// The fields most programs need are typed; **every** other field is kept, in order, with its JSON value as it
/// arrived ([`RawValue`]). Serializing an `Event` with `serde_json` writes all fields back with their wire names,
/// in their original positions, and the original text of values that were not in canonical form (a `createdAt`
/// in RFC 3339, a `campaignId` sent as a string, …): a compact record round-trips byte for byte. (Only a typed
/// string field written with escapes that serde_json writes differently, such as `\u00e9` or `\/`, comes back as
/// the same string in other bytes.)
///
/// # Typed fields
///
/// | field | wire name | type |
/// |---|---|---|
/// | [`email`](Self::email) | `email` | string |
/// | [`user_id`](Self::user_id) | `userId` | string |
/// | [`created_at`](Self::created_at) | `createdAt` | time, see below |
/// | [`campaign_id`](Self::campaign_id) | `campaignId` | integer |
/// | [`template_id`](Self::template_id) | `templateId` | integer |
/// | [`message_id`](Self::message_id) | `messageId` | string |
/// | [`event_name`](Self::event_name) | `eventName` | string |
/// | [`event_type`](Self::event_type) | `_type` | string (userEvents) |
/// | [`content_id`](Self::content_id) | `contentId` | integer |
/// | [`channel_id`](Self::channel_id) | `channelId` | integer |
/// | [`message_type_id`](Self::message_type_id) | `messageTypeId` | integer |
/// | [`workflow_id`](Self::workflow_id) | `workflowId` | integer |
///
/// `createdAt` is accepted as Iterable writes it (`2021-04-14 16:25:55 +00:00`, any offset, optional fraction of a
/// second), as RFC 3339 (`2021-04-14T16:25:55Z`), without a zone (taken as UTC) and as epoch milliseconds (an
/// integer). A time set in code is written in Iterable's form, in UTC.
///
/// # Values of the wrong type
///
/// A typed field whose value does not fit never makes the record fail; its original JSON is kept and written back:
/// - an integer field sent as a string of digits (`"campaignId":"123"`) is parsed (`Some(123)`);
/// - a string field sent as a number (`"userId":42`) becomes its decimal text (`Some("42")`);
/// - `createdAt` that is not a recognised time, `null`, and any other mismatch leave the field `None`; the raw
///   value is then available from [`get`](Self::get).
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
/// `Event` implements `Deserialize` for JSON (`serde_json::from_slice`, `from_str`, `from_reader`, `from_value`);
/// its unknown fields are [`RawValue`]s, which other data formats do not support.
#[derive(Clone, Debug, Default)]
pub struct Event {
    /// `email`.
    pub email: Option<String>,
    /// `userId`.
    pub user_id: Option<String>,
    /// `createdAt`: when the event happened (for users: when the profile was created).
    pub created_at: Option<DateTime<Utc>>,
    /// `campaignId`.
    pub campaign_id: Option<i64>,
    /// `templateId`.
    pub template_id: Option<i64>,
    /// `messageId`.
    pub message_id: Option<String>,
    /// `eventName` (custom events).
    pub event_name: Option<String>,
    /// `_type`: the event type (`emailSend`, `emailUnSubscribe`, …), sent by `/export/userEvents`.
    pub event_type: Option<String>,
    /// `contentId`.
    pub content_id: Option<i64>,
    /// `channelId`.
    pub channel_id: Option<i64>,
    /// `messageTypeId`.
    pub message_type_id: Option<i64>,
    /// `workflowId`.
    pub workflow_id: Option<i64>,
    /// All fields in wire order: positions of the typed ones, and the values of the others.
    slots: Vec<Slot>,
    /// The JSON text of the values in `slots`, one after the other (one allocation instead of one per field).
    text: String,
}

/// Where a value's JSON text lies in [`Event::text`].
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

/// The typed fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    Email,
    UserId,
    CreatedAt,
    CampaignId,
    TemplateId,
    MessageId,
    EventName,
    EventType,
    ContentId,
    ChannelId,
    MessageTypeId,
    WorkflowId,
}

const ALL_KNOWN: [Known; 12] = [
    Known::Email,
    Known::UserId,
    Known::CreatedAt,
    Known::CampaignId,
    Known::TemplateId,
    Known::MessageId,
    Known::EventName,
    Known::EventType,
    Known::ContentId,
    Known::ChannelId,
    Known::MessageTypeId,
    Known::WorkflowId,
];

impl Known {
    fn wire_name(self) -> &'static str {
        match self {
            Known::Email => "email",
            Known::UserId => "userId",
            Known::CreatedAt => "createdAt",
            Known::CampaignId => "campaignId",
            Known::TemplateId => "templateId",
            Known::MessageId => "messageId",
            Known::EventName => "eventName",
            Known::EventType => "_type",
            Known::ContentId => "contentId",
            Known::ChannelId => "channelId",
            Known::MessageTypeId => "messageTypeId",
            Known::WorkflowId => "workflowId",
        }
    }

    #[inline]
    fn from_wire(name: &str) -> Option<Known> {
        Some(match name {
            "email" => Known::Email,
            "userId" => Known::UserId,
            "createdAt" => Known::CreatedAt,
            "campaignId" => Known::CampaignId,
            "templateId" => Known::TemplateId,
            "messageId" => Known::MessageId,
            "eventName" => Known::EventName,
            "_type" => Known::EventType,
            "contentId" => Known::ContentId,
            "channelId" => Known::ChannelId,
            "messageTypeId" => Known::MessageTypeId,
            "workflowId" => Known::WorkflowId,
            _ => return None,
        })
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// Classifies a field name in one match: a typed field, a name seen often enough to be worth not allocating for,
/// or another name.
#[inline]
fn classify(name: &str) -> Key {
    match name {
        "email" => Key::Known(Known::Email),
        "userId" => Key::Known(Known::UserId),
        "createdAt" => Key::Known(Known::CreatedAt),
        "campaignId" => Key::Known(Known::CampaignId),
        "templateId" => Key::Known(Known::TemplateId),
        "messageId" => Key::Known(Known::MessageId),
        "eventName" => Key::Known(Known::EventName),
        "_type" => Key::Known(Known::EventType),
        "contentId" => Key::Known(Known::ContentId),
        "channelId" => Key::Known(Known::ChannelId),
        "messageTypeId" => Key::Known(Known::MessageTypeId),
        "workflowId" => Key::Known(Known::WorkflowId),
        "messageBusId" => Key::Other(Cow::Borrowed("messageBusId")),
        "catalogCollectionCount" => Key::Other(Cow::Borrowed("catalogCollectionCount")),
        "catalogLookupCount" => Key::Other(Cow::Borrowed("catalogLookupCount")),
        "productRecommendationCount" => Key::Other(Cow::Borrowed("productRecommendationCount")),
        "transactionalData" => Key::Other(Cow::Borrowed("transactionalData")),
        "itblInternal" => Key::Other(Cow::Borrowed("itblInternal")),
        "city" => Key::Other(Cow::Borrowed("city")),
        "country" => Key::Other(Cow::Borrowed("country")),
        "region" => Key::Other(Cow::Borrowed("region")),
        "ip" => Key::Other(Cow::Borrowed("ip")),
        "userAgent" => Key::Other(Cow::Borrowed("userAgent")),
        "userAgentDevice" => Key::Other(Cow::Borrowed("userAgentDevice")),
        "url" => Key::Other(Cow::Borrowed("url")),
        "hrefIndex" => Key::Other(Cow::Borrowed("hrefIndex")),
        "linkId" => Key::Other(Cow::Borrowed("linkId")),
        "linkUrl" => Key::Other(Cow::Borrowed("linkUrl")),
        "recipientState" => Key::Other(Cow::Borrowed("recipientState")),
        "status" => Key::Other(Cow::Borrowed("status")),
        "id" => Key::Other(Cow::Borrowed("id")),
        "total" => Key::Other(Cow::Borrowed("total")),
        "items" => Key::Other(Cow::Borrowed("items")),
        "dataFields" => Key::Other(Cow::Borrowed("dataFields")),
        "campaignName" => Key::Other(Cow::Borrowed("campaignName")),
        "templateName" => Key::Other(Cow::Borrowed("templateName")),
        "workflowName" => Key::Other(Cow::Borrowed("workflowName")),
        "emailListIds" => Key::Other(Cow::Borrowed("emailListIds")),
        "emailSubject" => Key::Other(Cow::Borrowed("emailSubject")),
        "unsubSource" => Key::Other(Cow::Borrowed("unsubSource")),
        "bounceMessage" => Key::Other(Cow::Borrowed("bounceMessage")),
        "platformEndpoint" => Key::Other(Cow::Borrowed("platformEndpoint")),
        "signupDate" => Key::Other(Cow::Borrowed("signupDate")),
        "profileUpdatedAt" => Key::Other(Cow::Borrowed("profileUpdatedAt")),
        "firstName" => Key::Other(Cow::Borrowed("firstName")),
        "lastName" => Key::Other(Cow::Borrowed("lastName")),
        "phoneNumber" => Key::Other(Cow::Borrowed("phoneNumber")),
        "locale" => Key::Other(Cow::Borrowed("locale")),
        "eventUpdatedAt" => Key::Other(Cow::Borrowed("eventUpdatedAt")),
        "isCustomEvent" => Key::Other(Cow::Borrowed("isCustomEvent")),
        _ => Key::Other(Cow::Owned(name.to_owned())),
    }
}

/// One field position.
#[derive(Clone, Debug)]
enum Slot {
    /// A typed field whose value is in canonical form.
    Known(Known),
    /// A typed field and its original JSON, which is written back while the typed value still matches it.
    KnownRaw(Known, Span),
    /// Any other field.
    Other(Cow<'static, str>, Span),
}

impl Slot {
    fn name(&self) -> &str {
        match self {
            Slot::Known(k) | Slot::KnownRaw(k, _) => k.wire_name(),
            Slot::Other(name, _) => name,
        }
    }
}

/// Two events are equal when their typed fields are equal and their other fields are the same JSON text in the
/// same order.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        let slot_eq = |a: &Slot, b: &Slot| match (a, b) {
            (Slot::Known(a), Slot::Known(b)) => a == b,
            (Slot::KnownRaw(a, x), Slot::KnownRaw(b, y)) => a == b && self.text_of(*x) == other.text_of(*y),
            (Slot::Other(a, x), Slot::Other(b, y)) => a == b && self.text_of(*x) == other.text_of(*y),
            _ => false,
        };
        ALL_KNOWN.iter().all(|&k| self.typed(k) == other.typed(k))
            && self.slots.len() == other.slots.len()
            && self.slots.iter().zip(&other.slots).all(|(a, b)| slot_eq(a, b))
    }
}

/// The value of a typed field.
#[derive(Clone, Debug, PartialEq)]
enum Typed<'a> {
    Str(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Time(Option<DateTime<Utc>>),
}

impl Typed<'_> {
    fn is_some(&self) -> bool {
        match self {
            Typed::Str(v) => v.is_some(),
            Typed::Int(v) => v.is_some(),
            Typed::Time(v) => v.is_some(),
        }
    }
}

impl Event {
    /// An event without fields.
    pub fn new() -> Self {
        Self::default()
    }

    fn text_of(&self, span: Span) -> &str {
        &self.text[span.start..span.end]
    }

    /// The stored JSON of a value (always valid: it was parsed or checked when stored).
    fn raw_of(&self, span: Span) -> Option<&RawValue> {
        serde_json::from_str(self.text_of(span)).ok()
    }

    fn push_text(&mut self, json: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(json);
        Span {
            start,
            end: self.text.len(),
        }
    }

    fn typed(&self, k: Known) -> Typed<'_> {
        fn s(v: &Option<String>) -> Typed<'_> {
            Typed::Str(v.as_deref().map(Cow::Borrowed))
        }
        match k {
            Known::Email => s(&self.email),
            Known::UserId => s(&self.user_id),
            Known::CreatedAt => Typed::Time(self.created_at),
            Known::CampaignId => Typed::Int(self.campaign_id),
            Known::TemplateId => Typed::Int(self.template_id),
            Known::MessageId => s(&self.message_id),
            Known::EventName => s(&self.event_name),
            Known::EventType => s(&self.event_type),
            Known::ContentId => Typed::Int(self.content_id),
            Known::ChannelId => Typed::Int(self.channel_id),
            Known::MessageTypeId => Typed::Int(self.message_type_id),
            Known::WorkflowId => Typed::Int(self.workflow_id),
        }
    }

    fn target(&mut self, k: Known) -> Target<'_> {
        match k {
            Known::Email => Target::Str(&mut self.email),
            Known::UserId => Target::Str(&mut self.user_id),
            Known::CreatedAt => Target::Time(&mut self.created_at),
            Known::CampaignId => Target::Int(&mut self.campaign_id),
            Known::TemplateId => Target::Int(&mut self.template_id),
            Known::MessageId => Target::Str(&mut self.message_id),
            Known::EventName => Target::Str(&mut self.event_name),
            Known::EventType => Target::Str(&mut self.event_type),
            Known::ContentId => Target::Int(&mut self.content_id),
            Known::ChannelId => Target::Int(&mut self.channel_id),
            Known::MessageTypeId => Target::Int(&mut self.message_type_id),
            Known::WorkflowId => Target::Int(&mut self.workflow_id),
        }
    }

    fn set_typed(&mut self, k: Known, v: Typed<'_>) {
        let int = |v: Typed<'_>| if let Typed::Int(i) = v { i } else { None };
        let string = |v: Typed<'_>| {
            if let Typed::Str(s) = v {
                s.map(Cow::into_owned)
            } else {
                None
            }
        };
        match k {
            Known::Email => self.email = string(v),
            Known::UserId => self.user_id = string(v),
            Known::CreatedAt => self.created_at = if let Typed::Time(t) = v { t } else { None },
            Known::CampaignId => self.campaign_id = int(v),
            Known::TemplateId => self.template_id = int(v),
            Known::MessageId => self.message_id = string(v),
            Known::EventName => self.event_name = string(v),
            Known::EventType => self.event_type = string(v),
            Known::ContentId => self.content_id = int(v),
            Known::ChannelId => self.channel_id = int(v),
            Known::MessageTypeId => self.message_type_id = int(v),
            Known::WorkflowId => self.workflow_id = int(v),
        }
    }

    /// What is written for a slot: `None` when the field was cleared in code.
    fn slot_value<'a>(&'a self, slot: &'a Slot) -> Option<Value<'a>> {
        match slot {
            Slot::Known(k) => {
                let v = self.typed(*k);
                v.is_some().then_some(Value::Typed(v))
            }
            Slot::KnownRaw(k, span) => {
                let v = self.typed(*k);
                match self.raw_of(*span) {
                    Some(raw) if parse_known(*k, raw).is_ok_and(|(orig, _)| orig == v) => Some(Value::Raw(raw)),
                    _ => v.is_some().then_some(Value::Typed(v)),
                }
            }
            Slot::Other(_, span) => self.raw_of(*span).map(Value::Raw),
        }
    }

    /// Typed fields set in code that have no position yet; they are written after the others.
    fn unplaced(&self) -> impl Iterator<Item = Known> + '_ {
        let placed = self.slots.iter().fold(0u16, |m, s| match s {
            Slot::Known(k) | Slot::KnownRaw(k, _) => m | k.bit(),
            Slot::Other(..) => m,
        });
        ALL_KNOWN
            .into_iter()
            .filter(move |k| placed & k.bit() == 0 && self.typed(*k).is_some())
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
        self.slots.iter().find_map(|s| match s {
            Slot::Other(n, span) if n == name => self.raw_of(*span),
            Slot::KnownRaw(k, span) if k.wire_name() == name && !self.typed(*k).is_some() => self.raw_of(*span),
            _ => None,
        })
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
        let placed = self.slots.iter().filter_map(|s| Some((s.name(), self.slot_value(s)?)));
        let unplaced = self.unplaced().map(|k| (k.wire_name(), Value::Typed(self.typed(k))));
        placed.chain(unplaced).map(|(name, v)| (name, v.into_raw()))
    }

    /// The fields without a typed field, in wire order.
    pub fn other_fields(&self) -> impl Iterator<Item = (&str, &RawValue)> + '_ {
        self.slots.iter().filter_map(|s| match s {
            Slot::Other(name, span) => Some((&**name, self.raw_of(*span)?)),
            _ => None,
        })
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
        let slot = match Known::from_wire(name) {
            Some(k) => {
                let (typed, keep) = parse_known(k, &value).unwrap_or((Typed::Str(None), true));
                self.set_typed(k, typed);
                if keep {
                    Slot::KnownRaw(k, self.push_text(value.get()))
                } else {
                    Slot::Known(k)
                }
            }
            None => Slot::Other(
                match classify(name) {
                    Key::Other(name) => name,
                    Key::Known(_) => Cow::Owned(name.to_owned()),
                },
                self.push_text(value.get()),
            ),
        };
        match self.slots.iter_mut().find(|s| s.name() == name) {
            Some(s) => *s = slot,
            None => self.slots.push(slot),
        }
    }

    /// Removes a field (typed or not) and returns its JSON value.
    pub fn remove(&mut self, name: &str) -> Option<Box<RawValue>> {
        let value = self.field(name).map(Cow::into_owned);
        self.slots.retain(|s| s.name() != name);
        if let Some(k) = Known::from_wire(name) {
            self.set_typed(k, Typed::Str(None));
        }
        value
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

/// A value to write.
enum Value<'a> {
    Raw(&'a RawValue),
    Typed(Typed<'a>),
}

impl<'a> Value<'a> {
    fn into_raw(self) -> Cow<'a, RawValue> {
        match self {
            Value::Raw(raw) => Cow::Borrowed(raw),
            #[allow(clippy::unwrap_used)] // strings, integers and formatted times always serialize
            Value::Typed(t) => Cow::Owned(serde_json::value::to_raw_value(&TypedSer(&t)).unwrap()),
        }
    }
}

struct TypedSer<'a, 'b>(&'a Typed<'b>);

impl Serialize for TypedSer<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Typed::Str(Some(v)) => s.serialize_str(v),
            Typed::Int(Some(v)) => s.serialize_i64(*v),
            Typed::Time(Some(t)) => s.collect_str(&IterableTime(*t)),
            _ => s.serialize_unit(),
        }
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Raw(raw) => raw.serialize(s),
            Value::Typed(t) => TypedSer(t).serialize(s),
        }
    }
}

/// A time in Iterable's form: `2021-04-14 16:25:55 +00:00` (with `.fff`, `.ffffff` or `.fffffffff` when the time
/// has a fraction of a second).
struct IterableTime(DateTime<Utc>);

impl fmt::Display for IterableTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} +00:00", self.0.format("%Y-%m-%d %H:%M:%S%.f"))
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for slot in &self.slots {
            if let Some(v) = self.slot_value(slot) {
                map.serialize_entry(slot.name(), &v)?;
            }
        }
        for k in self.unplaced() {
            map.serialize_entry(k.wire_name(), &Value::Typed(self.typed(k)))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an Iterable event (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut event = Event {
            slots: Vec::with_capacity(20),
            text: String::with_capacity(512),
            ..Event::default()
        };
        let mut seen = 0u16;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Known(k) => {
                    let keep = map.next_value_seed(KnownSeed(event.target(k)))?;
                    if seen & k.bit() != 0 {
                        // A repeated key: the last value wins, as with any serde type.
                        event
                            .slots
                            .retain(|s| !matches!(s, Slot::Known(x) | Slot::KnownRaw(x, _) if *x == k));
                    }
                    seen |= k.bit();
                    let slot = match keep {
                        None => Slot::Known(k),
                        Some(raw) => Slot::KnownRaw(k, event.push_text(raw.get())),
                    };
                    event.slots.push(slot);
                }
                Key::Other(name) => {
                    let start = event.text.len();
                    map.next_value_seed(AppendRaw(&mut event.text))?;
                    event.slots.push(Slot::Other(
                        name,
                        Span {
                            start,
                            end: event.text.len(),
                        },
                    ));
                }
            }
        }
        Ok(event)
    }
}

/// The name serde_json gives the newtype struct through which it hands out raw JSON text (how `RawValue`
/// itself is deserialized). Asking for it lets one visitor take the text borrowed (from `from_str`, `from_slice`)
/// or owned (`from_reader`, `from_value`), and append it to the event's text without a `Box<RawValue>` per field.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Appends a value's JSON text to a buffer.
struct AppendRaw<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for AppendRaw<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_newtype_struct(RAW_VALUE_TOKEN, self)
    }
}

impl<'de> Visitor<'de> for AppendRaw<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    /// serde_json: a one-entry map from the token to the JSON text.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if map.next_key::<de::IgnoredAny>()?.is_none() {
            return Err(de::Error::custom("expected raw JSON text"));
        }
        map.next_value_seed(AppendStr(self.0))
    }

    /// Other deserializers: take the value and write it as JSON.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        self.0.push_str(&value.to_string());
        Ok(())
    }
}

struct AppendStr<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendStr<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("raw JSON text")
    }

    #[inline]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v);
        Ok(())
    }
}

enum Key {
    Known(Known),
    Other(Cow<'static, str>),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    #[inline]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(classify(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(match Known::from_wire(&v) {
            Some(k) => Key::Known(k),
            None => Key::Other(Cow::Owned(v)),
        })
    }
}

/// Parses a typed field's JSON the same way deserialization does; `true` when the original text must be kept.
fn parse_known(k: Known, raw: &RawValue) -> serde_json::Result<(Typed<'static>, bool)> {
    let mut scratch = Event::default();
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let keep = KnownSeed(scratch.target(k)).deserialize(&mut de)?;
    let typed = match scratch.typed(k) {
        Typed::Str(s) => Typed::Str(s.map(|s| Cow::Owned(s.into_owned()))),
        Typed::Int(i) => Typed::Int(i),
        Typed::Time(t) => Typed::Time(t),
    };
    Ok((typed, keep.is_some()))
}

/// Where a typed field's value goes.
enum Target<'a> {
    Str(&'a mut Option<String>),
    Int(&'a mut Option<i64>),
    Time(&'a mut Option<DateTime<Utc>>),
}

/// Deserializes a typed field's value leniently into its field; returns the original JSON when it is not the
/// canonical form of the value (or did not fit the type).
struct KnownSeed<'a>(Target<'a>);

type KnownOut = Option<Box<RawValue>>;

fn raw_of<T: Serialize + ?Sized, E: de::Error>(v: &T) -> Result<Box<RawValue>, E> {
    serde_json::value::to_raw_value(v).map_err(E::custom)
}

impl KnownSeed<'_> {
    #[inline]
    fn known_from_str<E: de::Error>(self, v: &str) -> Result<KnownOut, E> {
        match self.0 {
            // A string with escapes (`\u00e9`, `\/`) is written back with serde_json's escaping: the same string,
            // maybe other bytes.
            Target::Str(t) => {
                *t = Some(v.to_owned());
                Ok(None)
            }
            Target::Int(t) => {
                *t = v.trim().parse::<i64>().ok();
                Ok(Some(raw_of(v)?))
            }
            Target::Time(t) => {
                let parsed = parse_time(v);
                *t = parsed.map(|(time, _)| time);
                match parsed {
                    Some((_, true)) => Ok(None),
                    _ => Ok(Some(raw_of(v)?)),
                }
            }
        }
    }

    #[inline]
    fn known_from_i64<E: de::Error>(self, v: i64) -> Result<KnownOut, E> {
        match self.0 {
            Target::Int(t) => {
                *t = Some(v);
                Ok(None)
            }
            Target::Str(t) => {
                *t = Some(v.to_string());
                Ok(Some(raw_of(&v)?))
            }
            Target::Time(t) => {
                *t = DateTime::from_timestamp_millis(v);
                Ok(Some(raw_of(&v)?))
            }
        }
    }

    /// A value that does not fit: the field is `None` and the JSON is kept.
    fn other<E: de::Error>(self, raw: Box<RawValue>) -> Result<KnownOut, E> {
        match self.0 {
            Target::Str(t) => *t = None,
            Target::Int(t) => *t = None,
            Target::Time(t) => *t = None,
        }
        Ok(Some(raw))
    }
}

impl<'de> DeserializeSeed<'de> for KnownSeed<'_> {
    type Value = KnownOut;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KnownOut, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KnownSeed<'_> {
    type Value = KnownOut;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    #[inline]
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<KnownOut, E> {
        self.known_from_str(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KnownOut, E> {
        self.known_from_str(v)
    }

    #[inline]
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KnownOut, E> {
        self.known_from_i64(v)
    }

    #[inline]
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KnownOut, E> {
        match (i64::try_from(v), self.0) {
            (Ok(v), target) => KnownSeed(target).known_from_i64(v),
            (Err(_), Target::Str(t)) => {
                *t = Some(v.to_string());
                Ok(Some(raw_of(&v)?))
            }
            (Err(_), target) => KnownSeed(target).other(raw_of(&v)?),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<KnownOut, E> {
        let raw = raw_of(&v)?;
        #[allow(clippy::cast_possible_truncation)]
        let int = (v.fract() == 0.0 && v.abs() < 9.0e15).then_some(v as i64);
        match (self.0, int) {
            (Target::Int(t), Some(n)) => *t = Some(n),
            (Target::Time(t), Some(n)) => *t = DateTime::from_timestamp_millis(n),
            (target, _) => return KnownSeed(target).other(raw),
        }
        Ok(Some(raw))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KnownOut, E> {
        self.other(raw_of(&v)?)
    }

    fn visit_unit<E: de::Error>(self) -> Result<KnownOut, E> {
        self.other(raw_of(&())?)
    }

    fn visit_none<E: de::Error>(self) -> Result<KnownOut, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KnownOut, A::Error> {
        let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.other(raw_of(&v)?)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<KnownOut, A::Error> {
        let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        self.other(raw_of(&v)?)
    }
}

#[inline]
fn digits<const N: usize>(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b.get(..N)? {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Iterable's exact form `YYYY-MM-DD HH:MM:SS ±hh:mm`, without chrono's general parser. It accepts
/// a subset of what chrono's `%Y-%m-%d %H:%M:%S%.f %:z` accepts, with the same result (a property
/// test checks it); anything else is left to [`parse_time`]'s chrono fallback.
#[inline]
fn parse_iterable_fast(s: &str) -> Option<(DateTime<Utc>, bool)> {
    let b = s.as_bytes();
    if b.len() != 26 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b' ' || b[23] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits::<4>(b)? as i32, digits::<2>(&b[5..])?, digits::<2>(&b[8..])?)?;
    let time = date.and_hms_opt(digits::<2>(&b[11..])?, digits::<2>(&b[14..])?, digits::<2>(&b[17..])?)?;
    // As chrono: minutes up to 59, and an offset of less than a day (hours up to 23).
    let (offset_hours, offset_minutes) = (digits::<2>(&b[21..])?, digits::<2>(&b[24..])?);
    if offset_hours > 23 || offset_minutes > 59 {
        return None;
    }
    let offset = i64::from(offset_hours * 60 + offset_minutes) * 60;
    let offset = match b[20] {
        b'+' => offset,
        b'-' => -offset,
        _ => return None,
    };
    let utc = time.and_utc() - chrono::TimeDelta::seconds(offset);
    Some((utc, offset == 0 && b[20] == b'+'))
}

/// Iterable's time format for chrono, the first one [`parse_time`] tries.
const ITERABLE_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f %:z";

/// Parses a time in any accepted text form; `true` when `s` is exactly how [`IterableTime`] writes it.
fn parse_time(s: &str) -> Option<(DateTime<Utc>, bool)> {
    parse_iterable_fast(s).or_else(|| parse_time_chrono(s))
}

/// [`parse_time`] with chrono's parsers only: what the fast path must agree with.
fn parse_time_chrono(s: &str) -> Option<(DateTime<Utc>, bool)> {
    let t = DateTime::parse_from_str(s, ITERABLE_TIME_FORMAT)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %z"))
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc()))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .ok()?;
    Some((t, IterableTime(t).to_string() == s))
}

impl JsonSchema for Event {
    fn schema_name() -> Cow<'static, str> {
        "Event".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "iterable_export::Event".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "An Iterable export record. The listed fields are typed; any other field is allowed and kept.",
            "properties": {
                "email": { "type": ["string", "null"] },
                "userId": { "type": ["string", "null"] },
                "createdAt": {
                    "description": "`2021-04-14 16:25:55 +00:00`, RFC 3339, or epoch milliseconds",
                    "type": ["string", "integer", "null"]
                },
                "campaignId": { "type": ["integer", "null"], "format": "int64" },
                "templateId": { "type": ["integer", "null"], "format": "int64" },
                "messageId": { "type": ["string", "null"] },
                "eventName": { "type": ["string", "null"] },
                "_type": { "type": ["string", "null"], "description": "Event type, e.g. `emailUnSubscribe`" },
                "contentId": { "type": ["integer", "null"], "format": "int64" },
                "channelId": { "type": ["integer", "null"], "format": "int64" },
                "messageTypeId": { "type": ["integer", "null"], "format": "int64" },
                "workflowId": { "type": ["integer", "null"], "format": "int64" }
            },
            "additionalProperties": true
        })
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
    fn times() {
        let t = |s: &str| parse_time(s).map(|(t, c)| (t.to_rfc3339(), c));
        assert_eq!(
            t("2021-04-14 16:25:55 +00:00"),
            Some(("2021-04-14T16:25:55+00:00".into(), true))
        );
        assert_eq!(
            t("2021-04-14 18:25:55 +02:00"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55 -00:00"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55.250 +00:00"),
            Some(("2021-04-14T16:25:55.250+00:00".into(), true))
        );
        assert_eq!(
            t("2021-04-14T16:25:55Z"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(t("2021-02-30 16:25:55 +00:00"), None);
        assert_eq!(t("yesterday"), None);
    }

    #[test]
    fn offsets_out_of_chrono_range_are_refused() {
        let t = |s: &str| parse_time(s).map(|(t, c)| (t.to_rfc3339(), c));
        for bad in [
            "2021-04-14 16:25:55 +99:99",
            "2021-04-14 16:25:55 +24:00",
            "2021-04-14 16:25:55 -24:00",
            "2021-04-14 16:25:55 +00:60",
            "2021-04-14 16:25:55 +23:60",
        ] {
            assert_eq!(parse_iterable_fast(bad), None, "{bad}");
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(
            t("2021-04-14 16:25:55 +23:59"),
            Some(("2021-04-13T16:26:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55 -23:59"),
            Some(("2021-04-15T16:24:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55 +14:00"),
            Some(("2021-04-14T02:25:55+00:00".into(), false))
        );
    }

    /// Two digits: mostly in `range`, sometimes anything (out of range, `00`, `99`).
    fn two_digits(range: std::ops::RangeInclusive<u32>) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            12 => range.prop_map(|n| format!("{n:02}")),
            2 => "[0-9]{2}",
            1 => prop_oneof![Just("00".to_owned()), Just("99".to_owned()), Just("60".to_owned()), Just("24".to_owned())],
            1 => "[0-9]{1,3}",
        ]
    }

    /// A separator: mostly `expected`, sometimes another one or none.
    fn separator(expected: &'static str) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            24 => Just(expected.to_owned()),
            1 => prop::sample::select(vec!["-", ":", " ", "T", "/", "", "  ", "\t", "+", "."]).prop_map(str::to_owned),
        ]
    }

    /// Strings near `YYYY-MM-DD HH:MM:SS ±hh:mm`: random digits and out-of-range fields, other
    /// separators and signs, offsets from -99:99 to +99:99, a fraction now and then.
    fn near_iterable_time() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let date = (
            prop_oneof![8 => (1970u32..=2100).prop_map(|y| y.to_string()), 1 => "[0-9]{4}", 1 => "[0-9]{1,5}"],
            separator("-"),
            two_digits(1..=12),
            separator("-"),
            two_digits(1..=31),
        );
        let time = (
            separator(" "),
            two_digits(0..=23),
            separator(":"),
            two_digits(0..=59),
            separator(":"),
            two_digits(0..=59),
            prop_oneof![9 => Just(String::new()), 1 => "\\.[0-9]{0,10}"],
        );
        let offset = (
            separator(" "),
            prop::sample::select(vec!["+", "+", "+", "+", "-", "-", "-", "\u{2212}", "", "Z", " "]),
            two_digits(0..=23),
            separator(":"),
            two_digits(0..=59),
        );
        (
            date,
            time,
            offset,
            prop_oneof![28 => Just(""), 1 => Just(" "), 1 => Just("x")],
        )
            .prop_map(
                |((y, s1, mo, s2, d), (s3, h, s4, mi, s5, sec, frac), (s6, sign, oh, s7, om), tail)| {
                    format!("{y}{s1}{mo}{s2}{d}{s3}{h}{s4}{mi}{s5}{sec}{frac}{s6}{sign}{oh}{s7}{om}{tail}")
                },
            )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]

        /// The fast path only ever answers what chrono's parser of the same format answers, and
        /// with it `parse_time` as a whole is exactly the chrono parsers. On the exact fixed layout
        /// the fast path also accepts everything chrono does (but leap seconds, which it leaves to
        /// chrono).
        #[test]
        fn fast_path_agrees_with_chrono(s in near_iterable_time()) {
            let chrono = DateTime::parse_from_str(&s, ITERABLE_TIME_FORMAT).ok().map(|t| t.with_timezone(&Utc));
            let fast = parse_iterable_fast(&s);
            if let Some((t, canonical)) = fast {
                proptest::prop_assert_eq!(Some(t), chrono, "{:?}", s);
                proptest::prop_assert_eq!(canonical, IterableTime(t).to_string() == s, "{:?}", s);
            }
            proptest::prop_assert_eq!(parse_time(&s), parse_time_chrono(&s), "{:?}", s);
            let b = s.as_bytes();
            let fixed_layout = b.len() == 26
                && b.iter().enumerate().all(|(i, c)| match i {
                    4 | 7 => *c == b'-',
                    10 | 19 => *c == b' ',
                    13 | 16 | 23 => *c == b':',
                    20 => *c == b'+' || *c == b'-',
                    _ => c.is_ascii_digit(),
                });
            if fixed_layout && &s[17..19] != "60" {
                proptest::prop_assert_eq!(fast.map(|(t, _)| t), chrono, "{:?}", s);
            }
        }
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
