//! Field selection: the per-property metadata `--discover` prints, the fields a catalog
//! deselects, and the removal of those fields from the SCHEMA and from each record's bytes.
//!
//! A field is emitted when its breadcrumb (`["properties", "<field>"]`) says `selected: true`,
//! or has no `selected` and `selected-by-default` is not `false` (the Singer SDK's reading).
//! `automatic` fields — the key properties and the replication key — are always emitted; this
//! tap decides which fields are automatic (a catalog's `inclusion: automatic` on another field,
//! as Meltano writes for fields it has no discovered metadata of, does not keep a field the
//! catalog deselects). A deselected field is never emitted, whether the schema has it or not;
//! fields the catalog says nothing about (unknown fields Iterable adds, which the permissive
//! schema lets through) are kept. Nested fields (`["properties", "a", "properties", "b"]`) are
//! deselected the same way.
//!
//! The records are filtered as bytes: the members kept are copied as received (every number's
//! digits, every string's escapes), only the removed members and the separators around them
//! go.

use serde_json::{Value, json};

use super::catalog::Stream;

/// The metadata of each top-level property of `schema`: `inclusion` (`automatic` for the key
/// properties and the replication key, `available` otherwise) and `selected-by-default: true`.
pub(crate) fn discovered(stream: Stream, schema: &Value) -> Vec<Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, _)| {
            let inclusion = if automatic(stream, name) {
                "automatic"
            } else {
                "available"
            };
            json!({
                "breadcrumb": ["properties", name],
                "metadata": { "inclusion": inclusion, "selected-by-default": true },
            })
        })
        .collect()
}

/// A field the stream always emits, whatever the catalog says.
fn automatic(stream: Stream, name: &str) -> bool {
    name == stream.replication_key() || stream.key_properties().contains(&name)
}

/// The fields a catalog deselects in one stream: names, each dropped whole or with fields of
/// its own deselected.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Deselected {
    fields: Vec<(String, Node)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Drop,
    Within(Deselected),
}

impl Deselected {
    /// Whether no field is deselected (records then go through untouched).
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The deselected fields, nested ones as `a.b`, for the log.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (name, node) in &self.fields {
            match node {
                Node::Drop => names.push(name.clone()),
                Node::Within(inner) => names.extend(inner.names().into_iter().map(|n| format!("{name}.{n}"))),
            }
        }
        names
    }

    fn get(&self, name: &[u8]) -> Option<&Node> {
        self.fields
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, node)| node)
    }

    /// Deselects `path` (a field, then fields within it).
    fn add(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let at = match self.fields.iter().position(|(n, _)| n == first) {
            Some(at) => at,
            None => {
                self.fields
                    .push(((*first).to_owned(), Node::Within(Deselected::default())));
                self.fields.len() - 1
            }
        };
        let node = &mut self.fields[at].1;
        match node {
            // A dropped field's fields go with it.
            Node::Drop => {}
            Node::Within(_) if rest.is_empty() => *node = Node::Drop,
            Node::Within(inner) => inner.add(rest),
        }
    }

    /// Removes the deselected fields from a schema's `properties` (and `required`).
    pub(crate) fn prune_schema(&self, schema: &mut Value) {
        for (name, node) in &self.fields {
            match node {
                Node::Drop => {
                    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
                        properties.shift_remove(name);
                    }
                    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
                        required.retain(|r| r != name.as_str());
                    }
                }
                Node::Within(inner) => {
                    if let Some(field) = schema.pointer_mut(&format!("/properties/{}", escape_pointer(name))) {
                        inner.prune_schema(field);
                    }
                }
            }
        }
    }

    /// Appends `record` (one JSON object, already checked to be one) to `out` without the
    /// deselected fields; `None` if the bytes are not one JSON object after all.
    pub(crate) fn filter_into(&self, record: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let start = record.iter().position(|b| !b.is_ascii_whitespace())?;
        let (end, _) = self.filter_object(record, start, out)?;
        record[end..].iter().all(u8::is_ascii_whitespace).then_some(())
    }

    /// Copies the object at `bytes[start]` to `out` without the deselected fields; gives the
    /// index after the object and whether a field was removed. Without any field to remove, the
    /// object is copied as it is (white space included).
    fn filter_object(&self, bytes: &[u8], start: usize, out: &mut Vec<u8>) -> Option<(usize, bool)> {
        if bytes.get(start) != Some(&b'{') {
            return None;
        }
        let mark = out.len();
        out.push(b'{');
        let mut changed = false;
        let mut kept = 0;
        let mut i = skip_space(bytes, start + 1);
        if bytes.get(i) != Some(&b'}') {
            loop {
                let key_end = skip_string(bytes, i)?;
                let colon = skip_space(bytes, key_end);
                if bytes.get(colon) != Some(&b':') {
                    return None;
                }
                let value_start = skip_space(bytes, colon + 1);
                let value_end = skip_value(bytes, value_start)?;
                let node = self.node_of(&bytes[i..key_end])?;
                if matches!(node, Some(Node::Drop)) {
                    changed = true;
                } else {
                    if kept > 0 {
                        out.push(b',');
                    }
                    kept += 1;
                    match node {
                        Some(Node::Within(inner)) if bytes.get(value_start) == Some(&b'{') => {
                            out.extend_from_slice(&bytes[i..value_start]);
                            let (_, removed) = inner.filter_object(bytes, value_start, out)?;
                            changed |= removed;
                        }
                        _ => out.extend_from_slice(&bytes[i..value_end]),
                    }
                }
                i = skip_space(bytes, value_end);
                match bytes.get(i) {
                    Some(b',') => i = skip_space(bytes, i + 1),
                    Some(b'}') => break,
                    _ => return None,
                }
            }
        }
        if changed {
            out.push(b'}');
        } else {
            out.truncate(mark);
            out.extend_from_slice(&bytes[start..=i]);
        }
        Some((i + 1, changed))
    }

    /// What is deselected under a key (its bytes with the quotes, escapes decoded when present).
    fn node_of(&self, key: &[u8]) -> Option<Option<&Node>> {
        let inner = key.get(1..key.len().checked_sub(1)?)?;
        if !inner.contains(&b'\\') {
            return Some(self.get(inner));
        }
        let name: String = serde_json::from_slice(key).ok()?;
        Some(self.get(name.as_bytes()))
    }
}

/// A JSON Pointer token for `name`.
fn escape_pointer(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The index after the string starting at `bytes[i]`.
fn skip_string(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match bytes.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// The index after the value starting at `bytes[i]` (valid JSON: the record was checked).
fn skip_value(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => skip_string(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = skip_string(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while bytes
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The fields the catalog entry of `stream` deselects (see the module's documentation). A
/// deselection this tap cannot apply (a breadcrumb that is not a chain of `properties`, such as
/// a field within an array's items) is an error: the field would be emitted.
pub(crate) fn deselected(stream: Stream, entry: &Value) -> Result<Deselected, String> {
    let mut out = Deselected::default();
    let name = stream.name();
    for item in entry.get("metadata").and_then(Value::as_array).into_iter().flatten() {
        let Some(breadcrumb) = item.get("breadcrumb").and_then(Value::as_array) else {
            continue;
        };
        if breadcrumb.is_empty() {
            continue;
        }
        let metadata = item.get("metadata");
        let flag = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_bool);
        let inclusion = metadata.and_then(|m| m.get("inclusion")).and_then(Value::as_str);
        let chosen = if inclusion == Some("unsupported") {
            false
        } else {
            flag("selected").or_else(|| flag("selected-by-default")).unwrap_or(true)
        };
        let path: Option<Vec<&str>> = breadcrumb
            .chunks(2)
            .map(|pair| match pair {
                [Value::String(kind), Value::String(field)] if kind == "properties" => Some(field.as_str()),
                _ => None,
            })
            .collect();
        if path.as_deref().is_some_and(|p| p.len() == 1 && automatic(stream, p[0])) {
            if !chosen {
                let breadcrumb = Value::Array(breadcrumb.clone());
                tracing::warn!(
                    "{name}: the catalog deselects {breadcrumb}, which is always emitted (a key or the replication key)"
                );
            }
            continue;
        }
        if chosen {
            continue;
        }
        match path {
            Some(path) => out.add(&path),
            None => {
                return Err(format!(
                    "deselects {} in {name}, which this tap cannot leave out of records \
                     (only fields and fields of objects, [\"properties\", \"a\", \"properties\", \"b\"]); \
                     select it, or deselect the field that holds it",
                    Value::Array(breadcrumb.clone())
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use iterable_export::DataType;

    use super::*;

    const SEND: Stream = Stream {
        data_type: DataType::EmailSend,
    };

    /// A catalog entry of email_send selecting (`true`) or deselecting each `[breadcrumb, bool]`.
    fn entry(fields: Value) -> Value {
        let mut metadata = vec![json!({"breadcrumb": [], "metadata": {"selected": true}})];
        for field in fields.as_array().expect("a list of fields") {
            metadata
                .push(json!({"breadcrumb": field[0], "metadata": {"selected": field[1], "selected-by-default": true}}));
        }
        json!({"tap_stream_id": "email_send", "metadata": metadata})
    }

    fn filter(deselected: &Deselected, record: &[u8]) -> String {
        let mut out = b"prefix:".to_vec();
        deselected.filter_into(record, &mut out).expect("one JSON object");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn discovery_marks_keys_and_the_replication_key_automatic() {
        let metadata = discovered(SEND, &SEND.schema());
        assert_eq!(metadata.len(), 12);
        let inclusion = |field: &str| {
            metadata
                .iter()
                .find(|m| m["breadcrumb"] == json!(["properties", field]))
                .map(|m| m["metadata"].clone())
        };
        assert_eq!(
            inclusion("createdAt"),
            Some(json!({"inclusion": "automatic", "selected-by-default": true}))
        );
        assert_eq!(
            inclusion("messageId"),
            Some(json!({"inclusion": "automatic", "selected-by-default": true}))
        );
        assert_eq!(
            inclusion("campaignId"),
            Some(json!({"inclusion": "available", "selected-by-default": true}))
        );
    }

    #[test]
    fn selected_then_selected_by_default_and_automatic_fields_always() {
        let catalog = json!({"tap_stream_id": "email_send", "metadata": [
            {"breadcrumb": [], "metadata": {"selected": true}},
            {"breadcrumb": ["properties", "campaignId"], "metadata": {"selected": false, "selected-by-default": true}},
            {"breadcrumb": ["properties", "templateId"], "metadata": {"selected-by-default": false}},
            {"breadcrumb": ["properties", "email"], "metadata": {"selected": true, "selected-by-default": false}},
            {"breadcrumb": ["properties", "userId"], "metadata": {"inclusion": "available"}},
            {"breadcrumb": ["properties", "createdAt"], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "messageId"], "metadata": {"selected": false, "inclusion": "available"}},
            {"breadcrumb": ["properties", "custom"], "metadata": {"inclusion": "automatic", "selected": false}},
            {"breadcrumb": ["properties", "eventName"], "metadata": {"inclusion": "automatic", "selected": true}},
            {"breadcrumb": ["properties", "notInSchema"], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "gone"], "metadata": {"inclusion": "unsupported"}},
            {"breadcrumb": ["properties", "data", "properties", "secret"], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "data", "properties", "kept"], "metadata": {"selected": true}},
            {"breadcrumb": ["properties", "x", "properties", "y"], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "x"], "metadata": {"selected": false}},
        ]});
        let deselected = deselected(SEND, &catalog).expect("a valid catalog");
        assert_eq!(
            deselected.names(),
            [
                "campaignId",
                "templateId",
                "custom",
                "notInSchema",
                "gone",
                "data.secret",
                "x"
            ]
        );
        assert_eq!(
            deselected.fields[6].1,
            Node::Drop,
            "a dropped field's fields go with it"
        );
        let mut inner = Deselected::default();
        inner.add(&["secret"]);
        assert_eq!(deselected.fields[5].1, Node::Within(inner));

        let none = entry(json!([
            [["properties", "campaignId"], true],
            [["properties", "data", "properties", "a"], true]
        ]));
        assert!(deselected_or_panic(&none).is_empty());

        let items = entry(json!([[["properties", "list", "items", "properties", "a"], false]]));
        assert_eq!(
            super::deselected(SEND, &items),
            Err("deselects [\"properties\",\"list\",\"items\",\"properties\",\"a\"] in email_send, which this tap \
                 cannot leave out of records (only fields and fields of objects, [\"properties\", \"a\", \"properties\", \"b\"]); \
                 select it, or deselect the field that holds it"
                .into())
        );
    }

    fn deselected_or_panic(entry: &Value) -> Deselected {
        deselected(SEND, entry).expect("a valid catalog")
    }

    #[test]
    fn records_lose_exactly_the_deselected_members_as_bytes() {
        let d = deselected_or_panic(&entry(json!([
            [["properties", "campaignId"], false],
            [["properties", "data", "properties", "secret"], false],
            [["properties", "email"], true]
        ])));
        // First, middle, last, escaped key, nested, duplicate, numbers kept digit for digit.
        assert_eq!(
            filter(&d, br#"{"campaignId":1,"n":1.0e2,"big":12345678901234567890}"#),
            r#"prefix:{"n":1.0e2,"big":12345678901234567890}"#
        );
        assert_eq!(
            filter(&d, br#"{"a":"x,}\"","campaign\u0049d":[1,{"b":"]"}],"z":-0.50}"#),
            r#"prefix:{"a":"x,}\"","z":-0.50}"#
        );
        assert_eq!(filter(&d, br#"{"a":1,"campaignId":null}"#), r#"prefix:{"a":1}"#);
        assert_eq!(filter(&d, br#"{"campaignId":1,"campaignId":2}"#), r#"prefix:{}"#);
        assert_eq!(
            filter(&d, br#"{"data":{"secret":"s","ok":1.50},"secret":"top"}"#),
            r#"prefix:{"data":{"ok":1.50},"secret":"top"}"#
        );
        assert_eq!(
            filter(&d, br#"{"data":"not an object"}"#),
            r#"prefix:{"data":"not an object"}"#
        );
        // Nothing to remove: the bytes as received, white space included.
        let untouched = " { \"a\" : [ 1 , 2 ] , \"data\" : { \"ok\" : true } } ";
        assert_eq!(filter(&d, untouched.as_bytes()), format!("prefix:{}", untouched.trim()));
        assert_eq!(filter(&d, b"{}"), "prefix:{}");
        assert_eq!(
            filter(&d, b" { \"campaignId\" : 1 , \"a\" : true } "),
            "prefix:{\"a\" : true}"
        );
        let mut out = Vec::new();
        for bad in [&b"[1]"[..], b"{\"a\":1", b"{\"a\" 1}", b"{\"a\":1} x"] {
            assert_eq!(d.filter_into(bad, &mut out), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_schema_loses_the_deselected_fields() {
        let d = deselected_or_panic(&entry(json!([
            [["properties", "campaignId"], false],
            [["properties", "data", "properties", "secret"], false]
        ])));
        let mut schema = json!({"type": "object", "required": ["campaignId", "email"], "properties": {
            "email": {"type": "string"}, "campaignId": {"type": "integer"},
            "data": {"type": "object", "properties": {"secret": {"type": "string"}, "ok": {"type": "number"}}}}});
        d.prune_schema(&mut schema);
        assert_eq!(
            schema,
            json!({"type": "object", "required": ["email"], "properties": {
                "email": {"type": "string"},
                "data": {"type": "object", "properties": {"ok": {"type": "number"}}}}})
        );
    }
}
