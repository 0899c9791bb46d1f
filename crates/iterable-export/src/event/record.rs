//! Records with typed fields that keep every other field: the machinery that the expansion of the table macro
//! ([`typed_record!`](super::table::typed_record)) calls: field positions, typed values, edits, the JSON Schema.
//!
//! [`Event`](super::Event) is one such record; a record type with other typed fields (a user, say) is another
//! invocation of the macro. Everything that depends on a field's type goes through [`FieldType`] and [`Kind`],
//! so a schema for another format (Parquet, Singer) is a function of [`Field::INFO`].

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemars::Schema;
use serde_json::value::RawValue;

use super::de::parse_known;
use super::ser::{Value, slot_value, unplaced};

/// What the table says about one typed field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldInfo {
    /// The field's name in the JSON.
    pub(crate) wire: &'static str,
    /// One line saying what it holds.
    pub(crate) doc: &'static str,
    /// Its type.
    pub(crate) kind: Kind,
}

/// The types a typed field can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `String`.
    Str,
    /// `i64`.
    Int,
    /// `DateTime<Utc>`, read from Iterable's and other forms (see `time.rs`).
    Time,
}

impl Kind {
    /// The JSON Schema of a field of this kind (always nullable: a field may be `null` or missing).
    fn json_schema(self, doc: &str) -> serde_json::Value {
        match self {
            Kind::Str => serde_json::json!({ "type": ["string", "null"], "description": doc }),
            Kind::Int => serde_json::json!({ "type": ["integer", "null"], "format": "int64", "description": doc }),
            Kind::Time => serde_json::json!({
                "type": ["string", "integer", "null"],
                "description": format!("{doc}: `2021-04-14 16:25:55 +00:00`, RFC 3339, or epoch milliseconds"),
            }),
        }
    }
}

/// The type of a column in a typed output format (Parquet): a typed field's [`Kind`], or the type the table of
/// [`typed_record!`](super::table::typed_record) gives a frequent field that is not typed (`"itblInternal": Json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) enum ColumnKind {
    /// Text.
    Str,
    /// A 64-bit integer.
    Int,
    /// A time, read as [`Kind::Time`] is.
    Time,
    /// `true` or `false`.
    Bool,
    /// Any JSON value, kept as its JSON text (objects, arrays, numbers that need not be integers).
    Json,
}

impl From<Kind> for ColumnKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Str => ColumnKind::Str,
            Kind::Int => ColumnKind::Int,
            Kind::Time => ColumnKind::Time,
        }
    }
}

/// A field that is not typed but has a column of its own in typed output formats.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(crate) struct ColumnInfo {
    /// The field's name in the JSON.
    pub(crate) wire: &'static str,
    /// Its column's type.
    pub(crate) kind: ColumnKind,
}

/// A Rust type a typed field can have: how to read it as a [`Typed`] value and write into it through a [`Target`].
pub(crate) trait FieldType: Sized {
    const KIND: Kind;
    fn typed(v: &Option<Self>) -> Typed<'_>;
    fn target(v: &mut Option<Self>) -> Target<'_>;
}

impl FieldType for String {
    const KIND: Kind = Kind::Str;
    fn typed(v: &Option<Self>) -> Typed<'_> {
        Typed::Str(v.as_deref().map(Cow::Borrowed))
    }
    fn target(v: &mut Option<Self>) -> Target<'_> {
        Target::Str(v)
    }
}

impl FieldType for i64 {
    const KIND: Kind = Kind::Int;
    fn typed(v: &Option<Self>) -> Typed<'_> {
        Typed::Int(*v)
    }
    fn target(v: &mut Option<Self>) -> Target<'_> {
        Target::Int(v)
    }
}

impl FieldType for DateTime<Utc> {
    const KIND: Kind = Kind::Time;
    fn typed(v: &Option<Self>) -> Typed<'_> {
        Typed::Time(*v)
    }
    fn target(v: &mut Option<Self>) -> Target<'_> {
        Target::Time(v)
    }
}

/// The value of a typed field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Typed<'a> {
    Str(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Time(Option<DateTime<Utc>>),
}

impl Typed<'_> {
    pub(crate) fn is_some(&self) -> bool {
        match self {
            Typed::Str(v) => v.is_some(),
            Typed::Int(v) => v.is_some(),
            Typed::Time(v) => v.is_some(),
        }
    }
}

/// Where a typed field's value goes.
#[derive(Debug)]
pub(crate) enum Target<'a> {
    Str(&'a mut Option<String>),
    Int(&'a mut Option<i64>),
    Time(&'a mut Option<DateTime<Utc>>),
}

impl Target<'_> {
    /// Sets the field to `None`.
    pub(crate) fn clear(self) {
        match self {
            Target::Str(t) => *t = None,
            Target::Int(t) => *t = None,
            Target::Time(t) => *t = None,
        }
    }

    /// Sets the field to `v` (`None` when `v` is of another kind).
    fn set(self, v: Typed<'_>) {
        match (self, v) {
            (Target::Str(t), Typed::Str(v)) => *t = v.map(Cow::into_owned),
            (Target::Int(t), Typed::Int(v)) => *t = v,
            (Target::Time(t), Typed::Time(v)) => *t = v,
            (target, _) => target.clear(),
        }
    }
}

/// The enum of a record's typed fields (made by [`typed_record!`](super::table::typed_record)).
pub(crate) trait Field: Copy + Eq + std::fmt::Debug + 'static {
    /// The table, in declaration order.
    const INFO: &'static [FieldInfo];
    /// All fields, in declaration order.
    const ALL: &'static [Self];
    /// The position in [`INFO`](Self::INFO) and [`ALL`](Self::ALL).
    fn index(self) -> usize;
    /// The field of a wire name.
    fn from_wire(name: &str) -> Option<Self>;

    fn info(self) -> &'static FieldInfo {
        &Self::INFO[self.index()]
    }

    fn wire_name(self) -> &'static str {
        self.info().wire
    }

    /// This field in a set of fields (up to 64).
    #[inline]
    fn bit(self) -> u64 {
        const { assert!(Self::ALL.len() <= 64, "a record has at most 64 typed fields") };
        1 << self.index()
    }
}

/// A record type made by [`typed_record!`](super::table::typed_record).
pub(crate) trait Record: Default {
    type Field: Field;
    /// What a record is, for deserialization errors.
    const EXPECTING: &'static str;
    /// The field that places a record in time (windows select by it; day partitions follow it).
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    const TIME: Self::Field;
    /// Frequent fields that are not typed but have a column in typed output formats, in table order.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    const OTHER_COLUMNS: &'static [ColumnInfo];
    /// A field name: a typed field, or another name (borrowed when it is a frequent one).
    fn classify(name: &str) -> Key<Self::Field>;
    fn typed(&self, k: Self::Field) -> Typed<'_>;
    fn target(&mut self, k: Self::Field) -> Target<'_>;
    fn wire(&self) -> &WireOrder<Self::Field>;
    fn wire_mut(&mut self) -> &mut WireOrder<Self::Field>;
}

/// A field name, classified.
pub(crate) enum Key<K> {
    Known(K),
    Other(Cow<'static, str>),
}

/// Where a value's JSON text lies in [`WireOrder::text`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// One field position.
#[derive(Clone, Debug)]
pub(crate) enum Slot<K> {
    /// A typed field whose value is in canonical form.
    Known(K),
    /// A typed field and its original JSON, which is written back while the typed value still matches it.
    KnownRaw(K, Span),
    /// Any other field.
    Other(Cow<'static, str>, Span),
}

impl<K: Field> Slot<K> {
    pub(crate) fn name(&self) -> &str {
        match self {
            Slot::Known(k) | Slot::KnownRaw(k, _) => k.wire_name(),
            Slot::Other(name, _) => name,
        }
    }

    pub(crate) fn is_field(&self, k: K) -> bool {
        matches!(self, Slot::Known(x) | Slot::KnownRaw(x, _) if *x == k)
    }
}

/// All fields of a record in wire order: positions of the typed ones, and the JSON text of the others.
#[derive(Clone, Debug)]
pub(crate) struct WireOrder<K> {
    pub(crate) slots: Vec<Slot<K>>,
    /// The JSON text of the values in `slots`, one after the other (one allocation instead of one per field).
    pub(crate) text: String,
}

impl<K> Default for WireOrder<K> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            text: String::new(),
        }
    }
}

impl<K: Field> WireOrder<K> {
    /// Room for a typical record, so that decoding one rarely reallocates.
    pub(crate) fn with_typical_capacity() -> Self {
        Self {
            slots: Vec::with_capacity(20),
            text: String::with_capacity(512),
        }
    }

    pub(crate) fn text_of(&self, span: Span) -> &str {
        &self.text[span.start..span.end]
    }

    /// The stored JSON of a value (always valid: it was parsed or checked when stored).
    pub(crate) fn raw_of(&self, span: Span) -> Option<&RawValue> {
        serde_json::from_str(self.text_of(span)).ok()
    }

    pub(crate) fn push_text(&mut self, json: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(json);
        Span {
            start,
            end: self.text.len(),
        }
    }

    /// Typed fields that have a position.
    pub(crate) fn placed(&self) -> u64 {
        self.slots.iter().fold(0, |m, s| match s {
            Slot::Known(k) | Slot::KnownRaw(k, _) => m | k.bit(),
            Slot::Other(..) => m,
        })
    }
}

/// See the `PartialEq` impl of [`typed_record!`](super::table::typed_record).
pub(crate) fn eq<R: Record>(a: &R, b: &R) -> bool {
    let (x, y) = (a.wire(), b.wire());
    let slot_eq = |s: &Slot<R::Field>, t: &Slot<R::Field>| match (s, t) {
        (Slot::Known(s), Slot::Known(t)) => s == t,
        (Slot::KnownRaw(s, i), Slot::KnownRaw(t, j)) => s == t && x.text_of(*i) == y.text_of(*j),
        (Slot::Other(s, i), Slot::Other(t, j)) => s == t && x.text_of(*i) == y.text_of(*j),
        _ => false,
    };
    R::Field::ALL.iter().all(|&k| a.typed(k) == b.typed(k))
        && x.slots.len() == y.slots.len()
        && x.slots.iter().zip(&y.slots).all(|(s, t)| slot_eq(s, t))
}

/// The raw JSON value of a field without a typed field, or of a typed field whose value did not fit its type.
pub(crate) fn get<'a, R: Record>(r: &'a R, name: &str) -> Option<&'a RawValue> {
    let wire = r.wire();
    wire.slots.iter().find_map(|s| match s {
        Slot::Other(n, span) if n == name => wire.raw_of(*span),
        Slot::KnownRaw(k, span) if k.wire_name() == name && !r.typed(*k).is_some() => wire.raw_of(*span),
        _ => None,
    })
}

/// All fields in wire order with their JSON values, as they are serialized.
pub(crate) fn fields<R: Record>(r: &R) -> impl Iterator<Item = (&str, Cow<'_, RawValue>)> + '_ {
    let placed = r
        .wire()
        .slots
        .iter()
        .filter_map(|s| Some((s.name(), slot_value(r, s)?)));
    let unplaced = unplaced(r).map(|k| (k.wire_name(), Value::Typed(r.typed(k))));
    placed
        .chain(unplaced)
        .filter_map(|(name, v)| Some((name, v.into_raw()?)))
}

/// The fields without a typed field, in wire order.
pub(crate) fn other_fields<R: Record>(r: &R) -> impl Iterator<Item = (&str, &RawValue)> + '_ {
    let wire = r.wire();
    wire.slots.iter().filter_map(|s| match s {
        Slot::Other(name, span) => Some((&**name, wire.raw_of(*span)?)),
        _ => None,
    })
}

/// Sets a field from JSON in its position, or appended; a typed field is parsed leniently.
pub(crate) fn insert<R: Record>(r: &mut R, name: &str, value: &RawValue) {
    let slot = match R::Field::from_wire(name) {
        Some(k) => {
            let (typed, keep) = parse_known(k.info().kind, value).unwrap_or((Typed::Str(None), true));
            r.target(k).set(typed);
            if keep {
                Slot::KnownRaw(k, r.wire_mut().push_text(value.get()))
            } else {
                Slot::Known(k)
            }
        }
        None => {
            let name = match R::classify(name) {
                Key::Other(name) => name,
                Key::Known(_) => Cow::Owned(name.to_owned()),
            };
            Slot::Other(name, r.wire_mut().push_text(value.get()))
        }
    };
    let slots = &mut r.wire_mut().slots;
    match slots.iter_mut().find(|s| s.name() == name) {
        Some(s) => *s = slot,
        None => slots.push(slot),
    }
}

/// Removes a field (typed or not) and returns its JSON value.
pub(crate) fn remove<R: Record>(r: &mut R, name: &str) -> Option<Box<RawValue>> {
    let value = fields(r).find(|(n, _)| *n == name).map(|(_, v)| v.into_owned());
    r.wire_mut().slots.retain(|s| s.name() != name);
    if let Some(k) = R::Field::from_wire(name) {
        r.target(k).clear();
    }
    value
}

/// The JSON Schema of a record: an object with the typed fields as properties, and any other field allowed.
pub(crate) fn json_schema<K: Field>() -> Schema {
    let properties: serde_json::Map<String, serde_json::Value> = K::INFO
        .iter()
        .map(|f| (f.wire.to_owned(), f.kind.json_schema(f.doc)))
        .collect();
    let mut schema = serde_json::Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert(
        "description".into(),
        "An Iterable export record. The listed fields are typed; any other field is allowed and kept.".into(),
    );
    schema.insert("properties".into(), properties.into());
    schema.insert("additionalProperties".into(), true.into());
    Schema::from(schema)
}
