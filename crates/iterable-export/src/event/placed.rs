//! Where a raw record lies in time: its data type's time field, read from its bytes without
//! decoding the rest of it (for de-duplicating a look-back record by record).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::record::{Field as _, Record};
use super::{Event, User};
use crate::DataType;

/// The field that places a record of `data_type` in time: the one Iterable selects a window's
/// records by (`createdAt` for events, `profileUpdatedAt` for the user table).
///
/// ```
/// use iterable_export::{DataType, time_field};
///
/// assert_eq!(time_field(DataType::EmailSend), "createdAt");
/// assert_eq!(time_field(DataType::User), "profileUpdatedAt");
/// ```
pub fn time_field(data_type: DataType) -> &'static str {
    if data_type == DataType::User {
        <User as Record>::TIME.wire_name()
    } else {
        <Event as Record>::TIME.wire_name()
    }
}

/// The time in `field` of an NDJSON record (one JSON object), in any form the typed records
/// accept (Iterable's text, RFC 3339, epoch milliseconds). `None` when the record is not an
/// object, lacks the field, or its value is not a time.
pub(crate) fn json_record_time(record: &[u8], field: &str) -> Option<DateTime<Utc>> {
    let mut de = serde_json::Deserializer::from_slice(record);
    FindTime { field }.deserialize(&mut de).ok().flatten()
}

/// The time of a text value, or of epoch milliseconds.
pub(crate) fn text_time(value: &str) -> Option<DateTime<Utc>> {
    super::time::parse_time(value.trim()).map(|(t, _)| t).or_else(|| {
        value
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
    })
}

struct FindTime<'f> {
    field: &'f str,
}

impl<'de> DeserializeSeed<'de> for FindTime<'_> {
    type Value = Option<DateTime<Utc>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindTime<'_> {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_field) = map.next_key_seed(KeyIs(self.field))? {
            if found.is_none() && is_field {
                found = map.next_value::<TimeValue>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether a key is the field's name, compared where serde_json holds it (no copy per key).
struct KeyIs<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// A time field's value: text or epoch milliseconds; anything else is no time.
struct TimeValue(Option<DateTime<Utc>>);

impl<'de> serde::Deserialize<'de> for TimeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimeValueVisitor)
    }
}

struct TimeValueVisitor;

impl<'de> Visitor<'de> for TimeValueVisitor {
    type Value = TimeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a time")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeValue, E> {
        Ok(TimeValue(super::time::parse_time(v.trim()).map(|(t, _)| t)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TimeValue, E> {
        Ok(TimeValue(DateTime::from_timestamp_millis(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TimeValue, E> {
        Ok(TimeValue(
            i64::try_from(v).ok().and_then(DateTime::from_timestamp_millis),
        ))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<TimeValue, E> {
        Ok(TimeValue(None))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<TimeValue, E> {
        Ok(TimeValue(None))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<TimeValue, E> {
        Ok(TimeValue(None))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<TimeValue, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TimeValue(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TimeValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(TimeValue(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Option<DateTime<Utc>> {
        crate::parse_iterable_time(s)
    }

    #[test]
    fn the_time_field_is_found_in_any_accepted_form_and_nothing_else_counts() {
        let t = at("2021-04-14 16:25:55 +00:00");
        for line in [
            r#"{"email":"a@b.c","createdAt":"2021-04-14 16:25:55 +00:00","x":{"createdAt":"1999-01-01"}}"#,
            r#"{"x":[{"createdAt":"1999-01-01 00:00:00 +00:00"}],"createdAt":"2021-04-14T16:25:55Z"}"#,
            r#"{"createdAt":"2021-04-14 18:25:55 +02:00"}"#,
            r#"{"createdAt":1618417555000}"#,
            "{\"created\\u0041t\":\"2021-04-14 16:25:55 +00:00\"}",
        ] {
            assert_eq!(json_record_time(line.as_bytes(), "createdAt"), t, "{line}");
        }
        for line in [
            r#"{"createdAt":null}"#,
            r#"{"createdAt":"soon"}"#,
            r#"{"createdAt":1.5}"#,
            r#"{"createdAt":{"a":1}}"#,
            r#"{"profileUpdatedAt":"2021-04-14 16:25:55 +00:00"}"#,
            r#"["createdAt","2021-04-14 16:25:55 +00:00"]"#,
            r#"{"createdAt":"2021-04-14 16:25:55 +00:00""#,
            "",
        ] {
            assert_eq!(json_record_time(line.as_bytes(), "createdAt"), None, "{line}");
        }
        assert_eq!(text_time(" 1618417555000 "), t);
        assert_eq!(text_time("2021-04-14 16:25:55 +00:00"), t);
        assert_eq!(text_time(""), None);
    }
}
