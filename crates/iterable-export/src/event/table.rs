//! The one table that declares a record type: [`typed_record!`] expands a list of typed fields into the struct,
//! its documentation, the name matching, the typed accessors, and the serde and JSON Schema impls, which call the
//! machinery in [`record`](super::record).

/// Declares a record type from one table of its typed fields.
///
/// ```text
/// typed_record! {
///     /// The struct's documentation; the table of typed fields is appended as "# Typed fields".
///     pub struct Event("an Iterable event") {
///     //  Rust name:  type          = "wire name", "description";
///         email:      String        = "email",     "the user's email address";
///         created_at: DateTime<Utc> = "createdAt", "when the event happened";
///     }
///     field enum EventField;
///     time field created_at;
///     other names ["itblInternal": Json, "city": Str, "hrefIndex"];
/// }
/// ```
///
/// - A row is a public field `Option<type>`; the type is a [`FieldType`] (`String`, `i64`, `DateTime<Utc>`).
/// - The string in parentheses completes "invalid type: …, expected" when a record is not a JSON object.
/// - `field enum` names the private enum of the typed fields (one variant per row, named like the Rust field).
/// - `time field` names the row that places a record in time: what windows select by, and what a day-partitioned
///   output (Parquet) is partitioned by.
/// - `other names` lists frequent names of fields that are not typed: they are kept without allocating a
///   `String` per record. A name that is also a row is reported as an unreachable pattern (a warning). A name
///   followed by `: Kind` (a [`ColumnKind`]: `Str`, `Int`, `Time`, `Bool`, `Json`) also gets a column of that
///   type in typed output formats (Parquet), after the rows' columns.
///
/// It expands to the struct (documented fields, the doc table, `Clone`, `Debug`, `Default`, `PartialEq`,
/// `Serialize`, `Deserialize`, `JsonSchema`), the field enum with its [`Field`] impl (the [`FieldInfo`] table
/// and the name matching), and the [`Record`] impl (one `match` classifying a field name, typed accessors).
/// Public methods such as `get` and `insert` are written beside the invocation (their examples name the type)
/// and call the functions of [`record`](super::record).
///
/// [`FieldType`]: super::record::FieldType
/// [`ColumnKind`]: super::record::ColumnKind
/// [`Field`]: super::record::Field
/// [`FieldInfo`]: super::record::FieldInfo
/// [`Record`]: super::record::Record
macro_rules! typed_record {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident($what:literal) {
            $($field:ident: $ty:ty = $wire:literal, $doc:literal;)+
        }
        field enum $fields:ident;
        time field $time:ident;
        other names [$($other:literal $(: $column:ident)?),* $(,)?];
    ) => {
        $(#[$attr])*
        ///
        /// # Typed fields
        ///
        /// | field | wire name | type | description |
        /// |---|---|---|---|
        $(#[doc = concat!(
            "| [`", stringify!($field), "`](Self::", stringify!($field), ") | `", $wire, "` | `",
            stringify!($ty), "` | ", $doc, " |"
        )])+
        #[derive(Clone, Debug, Default)]
        $vis struct $name {
            $(
                #[doc = concat!("`", $wire, "`: ", $doc, ".")]
                pub $field: Option<$ty>,
            )+
            /// All fields in wire order: positions of the typed ones, and the values of the others.
            wire: $crate::event::record::WireOrder<$fields>,
        }

        #[doc = concat!("The typed fields of [`", stringify!($name), "`].")]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum $fields {
            $($field),+
        }

        const _: () = {
            use std::borrow::Cow;

            use $crate::event::record::{
                self as record, ColumnInfo, ColumnKind, Field, FieldInfo, FieldType, Key, Record, Target, Typed,
            };

            impl Field for $fields {
                const INFO: &'static [FieldInfo] = &[$(FieldInfo {
                    wire: $wire,
                    doc: $doc,
                    kind: <$ty as FieldType>::KIND,
                }),+];
                const ALL: &'static [Self] = &[$(Self::$field),+];

                #[inline]
                fn index(self) -> usize {
                    self as usize
                }

                #[inline]
                fn from_wire(name: &str) -> Option<Self> {
                    match name {
                        $($wire => Some(Self::$field),)+
                        _ => None,
                    }
                }
            }

            impl Record for $name {
                type Field = $fields;
                const EXPECTING: &'static str = concat!($what, " (a JSON object)");
                const TIME: $fields = $fields::$time;
                const OTHER_COLUMNS: &'static [ColumnInfo] = &[
                    $($(ColumnInfo { wire: $other, kind: ColumnKind::$column },)?)*
                ];

                #[inline]
                fn classify(name: &str) -> Key<$fields> {
                    match name {
                        $($wire => Key::Known($fields::$field),)+
                        $($other => Key::Other(Cow::Borrowed($other)),)*
                        _ => Key::Other(Cow::Owned(name.to_owned())),
                    }
                }

                #[inline]
                fn typed(&self, k: $fields) -> Typed<'_> {
                    match k {
                        $($fields::$field => FieldType::typed(&self.$field),)+
                    }
                }

                #[inline]
                fn target(&mut self, k: $fields) -> Target<'_> {
                    match k {
                        $($fields::$field => FieldType::target(&mut self.$field),)+
                    }
                }

                #[inline]
                fn wire(&self) -> &record::WireOrder<$fields> {
                    &self.wire
                }

                #[inline]
                fn wire_mut(&mut self) -> &mut record::WireOrder<$fields> {
                    &mut self.wire
                }
            }

            /// Two records are equal when their typed fields are equal and their other fields are the same JSON
            /// text in the same order.
            impl PartialEq for $name {
                fn eq(&self, other: &Self) -> bool {
                    record::eq(self, other)
                }
            }

            impl serde::Serialize for $name {
                fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    $crate::event::ser::serialize(self, serializer)
                }
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    $crate::event::de::deserialize(deserializer)
                }
            }

            impl schemars::JsonSchema for $name {
                fn schema_name() -> Cow<'static, str> {
                    stringify!($name).into()
                }

                fn schema_id() -> Cow<'static, str> {
                    concat!(env!("CARGO_CRATE_NAME"), "::", stringify!($name)).into()
                }

                fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                    record::json_schema::<$fields>()
                }
            }
        };
    };
}

pub(crate) use typed_record;

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    super::typed_record! {
        /// A record type declared only here, to show that the table serves more than `Event`.
        pub struct TestUser("an Iterable user") {
            email:              String        = "email",            "the user's email address";
            user_id:            String        = "userId",           "the user's ID";
            signup_date:        DateTime<Utc> = "signupDate",       "when the user signed up";
            profile_updated_at: DateTime<Utc> = "profileUpdatedAt", "when the profile last changed";
        }
        field enum TestUserField;
        time field profile_updated_at;
        other names ["firstName": Str, "lastName"];
    }

    #[test]
    fn another_record_type_from_the_same_table() {
        let line = r#"{"email":"a@b.c","firstName":"Ada","signupDate":"2020-01-01T00:00:00Z","profileUpdatedAt":"2021-04-14 16:25:55 +00:00","x":[1e2]}"#;
        let user: TestUser = serde_json::from_str(line).expect("a user");
        assert_eq!(user.email.as_deref(), Some("a@b.c"));
        assert_eq!(user.signup_date.map(|t| t.timestamp()), Some(1_577_836_800));
        assert_eq!(user.profile_updated_at.map(|t| t.timestamp()), Some(1_618_417_555));
        assert_eq!(serde_json::to_string(&user).expect("serializes"), line);
        let err = serde_json::from_str::<TestUser>("[]").expect_err("not an object");
        assert!(
            err.to_string().contains("expected an Iterable user (a JSON object)"),
            "{err}"
        );
        let schema = serde_json::to_value(schemars::schema_for!(TestUser)).expect("schema");
        let properties: Vec<&String> = schema["properties"].as_object().expect("properties").keys().collect();
        assert_eq!(properties, ["email", "userId", "signupDate", "profileUpdatedAt"]);
        assert_eq!(
            schema["properties"]["signupDate"]["type"],
            serde_json::json!(["string", "integer", "null"])
        );
    }
}
