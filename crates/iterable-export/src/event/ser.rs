//! Serializing a record: every field in wire order, typed fields as their original JSON while it still matches
//! the typed value, in canonical form otherwise, and typed fields set in code after the others.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::de::parse_known;
use super::record::{Field, Record, Slot, Typed};
use super::time::IterableTime;

/// A value to write.
pub(crate) enum Value<'a> {
    Raw(&'a RawValue),
    Typed(Typed<'a>),
}

impl<'a> Value<'a> {
    /// The JSON of the value. Strings, integers and formatted times always serialize; were one not to, the field
    /// would be left out rather than panic.
    pub(crate) fn into_raw(self) -> Option<Cow<'a, RawValue>> {
        match self {
            Value::Raw(raw) => Some(Cow::Borrowed(raw)),
            Value::Typed(t) => serde_json::value::to_raw_value(&TypedSer(&t)).ok().map(Cow::Owned),
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

/// What is written for a slot: `None` when the field was cleared in code.
pub(crate) fn slot_value<'a, R: Record>(r: &'a R, slot: &'a Slot<R::Field>) -> Option<Value<'a>> {
    let wire = r.wire();
    match slot {
        Slot::Known(k) => {
            let v = r.typed(*k);
            v.is_some().then_some(Value::Typed(v))
        }
        Slot::KnownRaw(k, span) => {
            let v = r.typed(*k);
            match wire.raw_of(*span) {
                Some(raw) if parse_known(k.info().kind, raw).is_ok_and(|(orig, _)| orig == v) => Some(Value::Raw(raw)),
                _ => v.is_some().then_some(Value::Typed(v)),
            }
        }
        Slot::Other(_, span) => wire.raw_of(*span).map(Value::Raw),
    }
}

/// Typed fields set in code that have no position yet; they are written after the others.
pub(crate) fn unplaced<R: Record>(r: &R) -> impl Iterator<Item = R::Field> + '_ {
    let placed = r.wire().placed();
    R::Field::ALL
        .iter()
        .copied()
        .filter(move |k| placed & k.bit() == 0 && r.typed(*k).is_some())
}

/// A record as a map of its fields (see the module).
pub(crate) fn serialize<R: Record, S: Serializer>(r: &R, serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(None)?;
    for slot in &r.wire().slots {
        if let Some(v) = slot_value(r, slot) {
            map.serialize_entry(slot.name(), &v)?;
        }
    }
    for k in unplaced(r) {
        map.serialize_entry(k.wire_name(), &Value::Typed(r.typed(k)))?;
    }
    map.end()
}
