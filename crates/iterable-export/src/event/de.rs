//! Deserializing a record: one pass over the JSON object, typed fields parsed leniently (a value that does not fit
//! keeps its JSON), every other field's JSON text appended to one buffer as it arrived.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::DateTime;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::record::{Field, Key, Kind, Record, Slot, Span, Target, Typed, WireOrder};
use super::time::parse_time;

/// A record from a JSON object (see the module).
pub(crate) fn deserialize<'de, R: Record, D: Deserializer<'de>>(deserializer: D) -> Result<R, D::Error> {
    deserializer.deserialize_map(RecordVisitor(PhantomData))
}

struct RecordVisitor<R>(PhantomData<fn() -> R>);

impl<'de, R: Record> Visitor<'de> for RecordVisitor<R> {
    type Value = R;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(R::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<R, A::Error> {
        let mut record = R::default();
        *record.wire_mut() = WireOrder::with_typical_capacity();
        let mut seen = 0u64;
        // serde_json's streaming deserializer does not know how many fields follow; its `Value` and `&Value`
        // deserializers do (and the latter lends keys but not raw JSON text).
        let streaming = map.size_hint().is_none();
        while let Some((key, key_lent)) = map.next_key_seed(KeySeed(PhantomData::<fn() -> R>))? {
            match key {
                Key::Known(k) => {
                    let keep = map.next_value_seed(KnownSeed(record.target(k)))?;
                    let wire = record.wire_mut();
                    if seen & k.bit() != 0 {
                        // A repeated key: the last value wins, as with any serde type.
                        wire.slots.retain(|s| !s.is_field(k));
                    }
                    seen |= k.bit();
                    let slot = match keep {
                        None => Slot::Known(k),
                        Some(raw) => Slot::KnownRaw(k, wire.push_text(raw.get())),
                    };
                    wire.slots.push(slot);
                }
                Key::Other(name) => {
                    let wire = record.wire_mut();
                    let start = wire.text.len();
                    if streaming && key_lent {
                        // The input is borrowed (`from_str`, `from_slice`): the value's text too, without an
                        // allocation per field.
                        let raw: &'de RawValue = map.next_value()?;
                        wire.text.push_str(raw.get());
                    } else {
                        // `from_reader`, `from_value`, `&Value`, or a key with escapes.
                        let raw: Box<RawValue> = map.next_value()?;
                        wire.text.push_str(raw.get());
                    }
                    let end = wire.text.len();
                    wire.slots.push(Slot::Other(name, Span { start, end }));
                }
            }
        }
        Ok(record)
    }
}

/// Classifies a field name; `true` when the deserializer lends it from its input (as serde_json does for
/// `from_str` and `from_slice`, but for names with escapes).
struct KeySeed<R>(PhantomData<fn() -> R>);

impl<'de, R: Record> DeserializeSeed<'de> for KeySeed<R> {
    type Value = (Key<R::Field>, bool);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, R: Record> Visitor<'de> for KeySeed<R> {
    type Value = (Key<R::Field>, bool);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    #[inline]
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok((R::classify(v), true))
    }

    #[inline]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((R::classify(v), false))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        let key = match R::Field::from_wire(&v) {
            Some(k) => Key::Known(k),
            None => Key::Other(Cow::Owned(v)),
        };
        Ok((key, false))
    }
}

/// Parses a typed field's JSON the same way deserialization does; `true` when the original text must be kept.
pub(crate) fn parse_known(kind: Kind, raw: &RawValue) -> serde_json::Result<(Typed<'static>, bool)> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let (mut s, mut i, mut t) = (None, None, None);
    let target = match kind {
        Kind::Str => Target::Str(&mut s),
        Kind::Int => Target::Int(&mut i),
        Kind::Time => Target::Time(&mut t),
    };
    let keep = KnownSeed(target).deserialize(&mut de)?;
    let typed = match kind {
        Kind::Str => Typed::Str(s.map(Cow::Owned)),
        Kind::Int => Typed::Int(i),
        Kind::Time => Typed::Time(t),
    };
    Ok((typed, keep.is_some()))
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
        self.0.clear();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    /// For each field: whether the deserializer lent its name, and whether it knew the number of fields.
    struct Probe;

    impl<'de> Visitor<'de> for Probe {
        type Value = Vec<(bool, bool)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = Vec::new();
            let streaming = map.size_hint().is_none();
            while let Some((_, lent)) = map.next_key_seed(KeySeed(PhantomData::<fn() -> Event>))? {
                map.next_value::<de::IgnoredAny>()?;
                seen.push((lent, streaming));
            }
            Ok(seen)
        }
    }

    /// Decoding stays as fast as serde_json's raw values allow only while serde_json, on borrowed input, lends
    /// field names and does not know the number of fields: then every field that is not typed is borrowed as a
    /// `&RawValue` and appended to the record's text. Otherwise each becomes a `Box<RawValue>`: still correct,
    /// but measured 4–10 % slower (`cargo bench -p iterable-export --bench decode -- records_event`).
    #[test]
    fn serde_json_lends_field_names_of_borrowed_input_and_streams_maps() {
        let json = r#"{"city":"Paris","x\u0079":1}"#;
        let lent = [(true, true), (false, true)];
        let message = "serde_json no longer lends field names from borrowed input (from_str, from_slice), or now \
                       reports a map's size while streaming: Event still decodes correctly, but through a \
                       Box<RawValue> per field that is not typed (4-10 % slower). Find serde_json's new way of \
                       telling borrowed input apart and use it in event/de.rs (RecordVisitor::visit_map)";
        let mut from_str = serde_json::Deserializer::from_str(json);
        assert_eq!(from_str.deserialize_map(Probe).expect("from_str"), lent, "{message}");
        let mut from_slice = serde_json::Deserializer::from_slice(json.as_bytes());
        assert_eq!(
            from_slice.deserialize_map(Probe).expect("from_slice"),
            lent,
            "{message}"
        );
    }

    /// The sources whose raw values are not borrowed take the other route.
    #[test]
    fn sources_that_cannot_lend_raw_values_are_told_apart() {
        let json = r#"{"city":"Paris"}"#;
        let mut from_reader = serde_json::Deserializer::from_reader(json.as_bytes());
        assert_eq!(
            from_reader.deserialize_map(Probe).expect("from_reader"),
            [(false, true)]
        );
        let value: serde_json::Value = serde_json::from_str(json).expect("value");
        assert_eq!((&value).deserialize_map(Probe).expect("&Value"), [(true, false)]);
        assert_eq!(value.deserialize_map(Probe).expect("Value"), [(false, false)]);
    }

    /// Every JSON source gives the same record.
    #[test]
    fn every_json_source_decodes_alike() {
        let json = r#"{"a":[1e2,12.50,"\u00e9\/"],"campaignId":"7","x\u0079":{"k":null},"email":"e"}"#;
        let from_str: Event = serde_json::from_str(json).expect("from_str");
        // Values come back byte for byte; a name is written unescaped.
        let written = json.replace(r"x\u0079", "xy");
        assert_eq!(serde_json::to_string(&from_str).expect("serializes"), written);
        let from_slice: Event = serde_json::from_slice(json.as_bytes()).expect("from_slice");
        let from_reader: Event = serde_json::from_reader(json.as_bytes()).expect("from_reader");
        assert_eq!(from_slice, from_str);
        assert_eq!(from_reader, from_str);
        let value: serde_json::Value = serde_json::from_str(json).expect("value");
        let borrowed = Event::deserialize(&value).expect("&Value");
        let owned: Event = serde_json::from_value(value.clone()).expect("Value");
        assert_eq!(borrowed, owned);
        assert_eq!(serde_json::to_value(&owned).expect("to_value"), value);
        assert_eq!(owned.campaign_id, Some(7));
    }
}
