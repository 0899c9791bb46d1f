//! The catalog: one stream per data type, its name, keys and JSON Schema; which streams a
//! catalog selects.

use std::path::Path;

use iterable_export::{DataType, Error, Event, User};
use serde_json::{Value, json};

use super::draft4::draft4;
use super::fields::{self, Deselected};

/// One Singer stream: a data type with its name, keys and schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stream {
    pub(crate) data_type: DataType,
}

/// Send events whose record *is* the message: its `messageId` is unique per record. Other
/// message events (opens, clicks, bounces, skips, …) carry the `messageId` of the message they
/// are about, so a user opening a message twice gives two records with one `messageId`: as a
/// key, a target that upserts would keep one of them. They get no key (append), as tap-iterable
/// gives every event stream.
const SENDS: &[DataType] = &[
    DataType::EmailSend,
    DataType::PushSend,
    DataType::SmsSend,
    DataType::InAppSend,
    DataType::WebPushSend,
    DataType::WhatsAppSend,
    DataType::RcsSend,
    DataType::EmbeddedSend,
];

impl Stream {
    /// Every stream, in the spec's order of data types.
    pub(crate) fn all() -> impl Iterator<Item = Stream> {
        iterable_export::ALL_DATA_TYPES
            .iter()
            .map(|&data_type| Stream { data_type })
    }

    /// The stream of a name, as [`Stream::name`] spells it.
    pub(crate) fn by_name(name: &str) -> Option<Stream> {
        Stream::all().find(|s| s.name() == name)
    }

    /// The stream's name: the data type in snake_case, as tap-iterable and
    /// airbyte-source-iterable name their streams (`emailSend` → `email_send`), with their two
    /// irregular names — `user` → `users`, `emailUnSubscribe` → `email_unsubscribe` — and
    /// `WhatsApp` as one word (`whatsAppSend` → `whatsapp_send`).
    pub(crate) fn name(self) -> String {
        match self.data_type {
            DataType::User => return "users".into(),
            DataType::EmailUnSubscribe => return "email_unsubscribe".into(),
            _ => {}
        }
        let wire = self.data_type.to_string();
        let mut name = String::with_capacity(wire.len() + 4);
        for c in wire.replace("whatsApp", "whatsapp").chars() {
            if c.is_ascii_uppercase() {
                name.push('_');
                name.push(c.to_ascii_lowercase());
            } else {
                name.push(c);
            }
        }
        name
    }

    /// The time field that windows the data type: `profileUpdatedAt` for the user table,
    /// `createdAt` for events.
    pub(crate) fn replication_key(self) -> &'static str {
        iterable_export::time_field(self.data_type)
    }

    /// The record's identity: `messageId` for sends, `id` (the order id) for purchases, `email`
    /// for users (tap-iterable's key); none for other events, which have no identity of their
    /// own (see [`SENDS`]).
    pub(crate) fn key_properties(self) -> &'static [&'static str] {
        match self.data_type {
            DataType::User => &["email"],
            DataType::Purchase => &["id"],
            t if SENDS.contains(&t) => &["messageId"],
            _ => &[],
        }
    }

    /// The stream's JSON Schema, from the typed record (schemars), made acceptable to a Draft 4
    /// validator and permissive (see [`draft4`]). A key that is not a typed field (`id` of a
    /// purchase) is added as a nullable string: targets look keys up among the properties.
    pub(crate) fn schema(self) -> Value {
        let schema = if self.data_type == DataType::User {
            schemars::schema_for!(User)
        } else {
            schemars::schema_for!(Event)
        };
        let mut schema = draft4(schema.to_value());
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            for key in self.key_properties() {
                properties
                    .entry(*key)
                    .or_insert_with(|| json!({ "type": ["string", "null"], "description": "the record's identity" }));
            }
        }
        schema
    }

    /// The catalog entry: Singer's standard metadata on the empty breadcrumb, then each
    /// property's (see [`fields::discovered`]).
    fn catalog_entry(self) -> Value {
        let name = self.name();
        let key = self.replication_key();
        let schema = self.schema();
        let mut metadata = vec![json!({
            "breadcrumb": [],
            "metadata": {
                "inclusion": "available",
                "selected-by-default": true,
                "table-key-properties": self.key_properties(),
                "valid-replication-keys": [key],
                "forced-replication-method": "INCREMENTAL",
                "data-type-name": self.data_type.to_string(),
            }
        })];
        metadata.extend(fields::discovered(self, &schema));
        json!({
            "tap_stream_id": name,
            "stream": name,
            "schema": schema,
            "key_properties": self.key_properties(),
            "replication_key": key,
            "replication_method": "INCREMENTAL",
            "metadata": metadata,
        })
    }
}

/// The catalog `--discover` prints: every stream.
pub(crate) fn discover() -> Value {
    json!({ "streams": Stream::all().map(Stream::catalog_entry).collect::<Vec<_>>() })
}

/// A stream a catalog selects, with the schema its SCHEMA message carries and the fields its
/// records leave out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selected {
    pub(crate) stream: Stream,
    /// Without the deselected fields.
    pub(crate) schema: Value,
    pub(crate) deselected: Deselected,
}

impl Selected {
    /// The stream as discovered: every field.
    fn all_fields(stream: Stream) -> Selected {
        Selected {
            stream,
            schema: stream.schema(),
            deselected: Deselected::default(),
        }
    }
}

/// The streams a catalog selects, in the catalog's order, each with the schema its SCHEMA
/// message carries: the catalog's (where a Meltano `schema` override changes it), made Draft 4
/// and permissive as the discovered one is, and with no `required` fields; the discovered one
/// when the catalog has none; in either case without the fields the catalog deselects (see
/// [`fields::deselected`]). Without a catalog, every stream (each is `selected-by-default`),
/// every field. A stream is selected as the Singer SDK reads metadata: the `selected` of its
/// empty breadcrumb, else that breadcrumb's `selected-by-default`, else the legacy top-level
/// `selected`. A stream this tap does not have is an error only when selected (an older catalog
/// may list streams it dropped).
///
/// # Errors
/// [`Error::InvalidRequest`] for an unreadable catalog, a selected stream this tap does not
/// have, or a deselected field this tap cannot leave out.
pub(crate) fn selected(catalog: Option<&Path>) -> iterable_export::Result<Vec<Selected>> {
    let Some(path) = catalog else {
        return Ok(Stream::all().map(Selected::all_fields).collect());
    };
    let bad = |what: String| Error::InvalidRequest(format!("the catalog {}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| bad(format!("is not JSON ({e})")))?;
    let streams = select(&value).map_err(bad)?;
    if streams.is_empty() {
        tracing::warn!(
            "the catalog {} selects no stream: set \"selected\": true in the metadata of a stream's empty breadcrumb",
            path.display()
        );
    }
    Ok(streams)
}

/// The streams `catalog` selects (see [`selected`]); the error says what is wrong.
fn select(catalog: &Value) -> Result<Vec<Selected>, String> {
    let streams = catalog
        .get("streams")
        .and_then(Value::as_array)
        .ok_or("has no \"streams\" array; run --discover for one")?;
    let mut selected = Vec::new();
    for entry in streams {
        let id = entry
            .get("tap_stream_id")
            .or_else(|| entry.get("stream"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a stream has no tap_stream_id: {entry}"))?;
        let stream_metadata = entry
            .get("metadata")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|m| m.get("breadcrumb").and_then(Value::as_array).is_some_and(Vec::is_empty))
            .and_then(|m| m.get("metadata"));
        let flag = |map: Option<&Value>, key: &str| map.and_then(|m| m.get(key)).and_then(Value::as_bool);
        let chosen = flag(stream_metadata, "selected")
            .or_else(|| flag(stream_metadata, "selected-by-default"))
            .or_else(|| flag(Some(entry), "selected"))
            .unwrap_or(false);
        if !chosen {
            continue;
        }
        let stream = Stream::by_name(id).ok_or_else(|| {
            format!("{id:?} is selected but is not a stream of this tap; run --discover for the list")
        })?;
        if selected.iter().any(|s: &Selected| s.stream == stream) {
            continue;
        }
        let mut schema = match entry.get("schema") {
            Some(schema @ Value::Object(map)) if map.contains_key("properties") => {
                let mut schema = draft4(schema.clone());
                if let Some(map) = schema.as_object_mut() {
                    map.remove("required");
                }
                schema
            }
            _ => stream.schema(),
        };
        let deselected = fields::deselected(stream, entry)?;
        if !deselected.is_empty() {
            deselected.prune_schema(&mut schema);
            tracing::info!(
                "{id}: fields deselected in the catalog are left out: {}",
                deselected.names().join(", ")
            );
        }
        selected.push(Selected {
            stream,
            schema,
            deselected,
        });
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_python_connectors() {
        let name = |t: DataType| Stream { data_type: t }.name();
        assert_eq!(name(DataType::EmailSend), "email_send");
        assert_eq!(name(DataType::EmailUnSubscribe), "email_unsubscribe");
        assert_eq!(name(DataType::User), "users");
        assert_eq!(name(DataType::InAppSendSkip), "in_app_send_skip");
        assert_eq!(name(DataType::WhatsAppSend), "whatsapp_send");
        assert_eq!(name(DataType::HostedUnsubscribeClick), "hosted_unsubscribe_click");
        let mut names: Vec<String> = Stream::all().map(Stream::name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), iterable_export::ALL_DATA_TYPES.len(), "names are unique");
        for stream in Stream::all() {
            assert_eq!(Stream::by_name(&stream.name()), Some(stream));
        }
    }

    #[test]
    fn selection_reads_selected_then_selected_by_default_then_the_legacy_flag() {
        let entry = |id: &str, stream: Value, legacy: Option<bool>| {
            let mut entry = json!({"tap_stream_id": id, "metadata": [
                {"breadcrumb": ["properties", "createdAt"], "metadata": {"selected": true}},
                {"breadcrumb": [], "metadata": stream}
            ]});
            if let Some(legacy) = legacy {
                entry["selected"] = Value::Bool(legacy);
            }
            entry
        };
        let catalog = json!({"streams": [
            entry("email_open", json!({"selected": true, "selected-by-default": false}), None),
            entry("email_send", json!({"selected": false, "selected-by-default": true}), Some(true)),
            entry("email_click", json!({"selected-by-default": true}), None),
            entry("email_bounce", json!({"selected-by-default": false}), Some(true)),
            entry("users", json!({}), Some(true)),
            entry("purchase", json!({}), None),
            // Streams this tap does not have are an error only when selected.
            entry("campaigns", json!({"selected": false}), None),
            entry("templates", json!({}), None),
            entry("email_open", json!({"selected": true}), None),
        ]});
        let names: Vec<String> = select(&catalog)
            .expect("a valid catalog")
            .into_iter()
            .map(|s| s.stream.name())
            .collect();
        assert_eq!(names, ["email_open", "email_click", "users"]);
        // The catalog --discover prints selects every stream as it is.
        assert_eq!(
            select(&discover()).map(|s| s.len()),
            Ok(iterable_export::ALL_DATA_TYPES.len())
        );
        let unknown = json!({"streams": [entry("campaigns", json!({"selected": true}), None)]});
        assert_eq!(
            select(&unknown),
            Err("\"campaigns\" is selected but is not a stream of this tap; run --discover for the list".into())
        );
    }

    #[test]
    fn the_catalogs_schema_is_used_made_permissive() {
        let overridden = json!({"streams": [
            {"tap_stream_id": "email_send", "metadata": [{"breadcrumb": [], "metadata": {"selected": true}}],
             "schema": {"type": "object", "additionalProperties": false, "required": ["email"], "properties": {
                "email": {"type": "string"},
                "campaignId": {"type": "integer"},
                "transactionalData": {"type": "object", "properties": {"a": {"type": "string"}}}}}},
            {"tap_stream_id": "users", "metadata": [{"breadcrumb": [], "metadata": {"selected": true}}]}
        ]});
        let selected = select(&overridden).expect("a valid catalog");
        assert_eq!(
            selected[0].schema,
            json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "additionalProperties": true,
                "properties": {
                    "email": {"type": ["string", "null"]},
                    "campaignId": {"type": ["integer", "string", "null"]},
                    "transactionalData": {"type": ["object", "null"], "additionalProperties": true,
                        "properties": {"a": {"type": ["string", "null"]}}}}})
        );
        let users = Stream {
            data_type: DataType::User,
        };
        assert_eq!(selected[1], Selected::all_fields(users));
        // The discovered catalog gives back the discovered schemas, every field.
        for selected in select(&discover()).expect("the discovered catalog") {
            assert_eq!(
                selected,
                Selected::all_fields(selected.stream),
                "{}",
                selected.stream.name()
            );
        }
    }
}
