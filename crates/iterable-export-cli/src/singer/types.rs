//! The JSON types a record's typed fields hold, read without decoding the record: what a
//! stream's SCHEMA must allow so that no RECORD fails a target's validation.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Draft 4's types, one bit each (`1 << index`). A JSON number with a fraction or an exponent
/// (`1.0`, `1e2`) is a `number`, not an `integer`, as Python's `json` and `jsonschema` read it.
pub(super) const TYPES: [&str; 7] = ["null", "boolean", "integer", "number", "string", "object", "array"];

/// The bits of a schema's `type` (a name or a list of names).
pub(super) fn type_bits(types: &Value) -> u8 {
    let names: Vec<&Value> = types.as_array().map_or_else(|| vec![types], |a| a.iter().collect());
    let mut bits = 0;
    for name in names {
        if let Some(i) = TYPES.iter().position(|t| name == t) {
            bits |= 1 << i;
        }
        // Draft 4: an integer is a number.
        if name == "number" {
            bits |= 1 << 2;
        }
    }
    bits
}

/// Reads a record (a JSON object), adding the type of each typed field's value to `needed`.
pub(super) struct Check<'a> {
    pub(super) fields: &'a [(String, u8)],
    pub(super) needed: &'a mut [u8],
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key_seed(FieldOf(self.fields))? {
            match field {
                Some(i) => {
                    let bit = map.next_value_seed(TypeOf)?;
                    if let Some(needed) = self.needed.get_mut(i) {
                        *needed |= bit;
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key: the index of the typed field it names, if any.
struct FieldOf<'a>(&'a [(String, u8)]);

impl<'de> DeserializeSeed<'de> for FieldOf<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        // As bytes: serde_json then skips the UTF-8 check of every key.
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for FieldOf<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(field, _)| field.as_bytes() == name))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Option<usize>, E> {
        self.visit_bytes(name.as_bytes())
    }
}

/// A value: the bit of its Draft 4 type.
struct TypeOf;

impl<'de> DeserializeSeed<'de> for TypeOf {
    type Value = u8;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u8, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TypeOf {
    type Value = u8;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<u8, E> {
        Ok(1)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<u8, E> {
        Ok(1 << 1)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<u8, E> {
        Ok(1 << 2)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<u8, E> {
        Ok(1 << 2)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<u8, E> {
        Ok(1 << 3)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<u8, E> {
        Ok(1 << 4)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u8, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(1 << 5)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u8, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(1 << 6)
    }
}
