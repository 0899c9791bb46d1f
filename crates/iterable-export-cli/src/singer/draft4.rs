//! JSON Schema as Singer targets read it: Draft 4, and permissive, so that no record Iterable
//! sends fails a target's validation.

use serde_json::Value;

/// Keywords of later drafts that a Draft 4 validator does not know or reads otherwise.
const NOT_DRAFT4: &[&str] = &[
    "$defs",
    "const",
    "examples",
    "contentEncoding",
    "contentMediaType",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "contains",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
];

/// Formats Draft 4 defines; others (`int64`) are dropped: a validator ignores them at best and
/// a target may read them as a column type at worst.
const DRAFT4_FORMATS: &[&str] = &["date-time", "email", "hostname", "ipv4", "ipv6", "uri"];

/// Rewrites a schemars (2020-12) schema into Draft 4 and makes it permissive:
/// - `$schema` is Draft 4's; `$defs` become `definitions` (and `$ref`s follow); `const` becomes
///   a one-value `enum`; numeric `exclusiveMinimum`/`exclusiveMaximum` become Draft 4's boolean
///   form; other later keywords and unknown formats are dropped;
/// - every object allows additional properties; every typed field is nullable, and an integer
///   field also accepts a string (Iterable has sent ids as strings of digits, which the library
///   reads: see `Event`), so no record the API sends fails a target's validation.
pub(crate) fn draft4(mut schema: Value) -> Value {
    convert(&mut schema);
    if let Value::Object(map) = &mut schema {
        map.insert("$schema".into(), "http://json-schema.org/draft-04/schema#".into());
        // The record itself is an object, never null.
        map.insert("type".into(), "object".into());
    }
    schema
}

fn convert(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(convert),
        Value::Object(map) => {
            map.remove("$schema");
            if let Some(defs) = map.remove("$defs") {
                map.insert("definitions".into(), defs);
            }
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(rest) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/definitions/{rest}");
            }
            if let Some(c) = map.remove("const") {
                map.insert("enum".into(), Value::Array(vec![c]));
            }
            for (numeric, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
                if let Some(n @ Value::Number(_)) = map.get(numeric).cloned() {
                    map.insert(bound.into(), n);
                    map.insert(numeric.into(), Value::Bool(true));
                }
            }
            for keyword in NOT_DRAFT4 {
                map.remove(*keyword);
            }
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !DRAFT4_FORMATS.contains(&f))
            {
                map.remove("format");
            }
            if let Some(types) = map.get_mut("type") {
                *types = permissive(types);
            }
            if map.get("type").is_some_and(|t| has_type(t, "object")) {
                map.insert("additionalProperties".into(), Value::Bool(true));
            }
            for (key, child) in map.iter_mut() {
                // Property names are data, not keywords: only their schemas are converted.
                if key == "properties" || key == "definitions" {
                    if let Value::Object(children) = child {
                        children.values_mut().for_each(convert);
                    }
                } else if key != "enum" {
                    convert(child);
                }
            }
        }
        _ => {}
    }
}

fn has_type(types: &Value, name: &str) -> bool {
    match types {
        Value::String(t) => t == name,
        Value::Array(ts) => ts.iter().any(|t| t == name),
        _ => false,
    }
}

/// A `type` with `null` added, and `string` beside `integer`.
fn permissive(types: &Value) -> Value {
    let mut list: Vec<Value> = match types {
        Value::Array(ts) => ts.clone(),
        other => vec![other.clone()],
    };
    for extra in ["string", "null"] {
        let wanted = extra == "null" || has_type(types, "integer");
        if wanted && !list.iter().any(|t| t == extra) {
            list.push(extra.into());
        }
    }
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn later_keywords_become_draft4() {
        let schema = draft4(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "const": {"const": 1},
                "n": {"type": "integer", "format": "int64", "exclusiveMinimum": 0},
                "r": {"$ref": "#/$defs/R"},
                "examples": {"type": ["string", "null"], "examples": ["a"]}
            },
            "$defs": {"R": {"type": "object", "properties": {}, "additionalProperties": false}}
        }));
        assert_eq!(
            schema,
            json!({
                "$schema": "http://json-schema.org/draft-04/schema#",
                "type": "object",
                "additionalProperties": true,
                "properties": {
                    "const": {"enum": [1]},
                    "n": {"type": ["integer", "string", "null"], "minimum": 0, "exclusiveMinimum": true},
                    "r": {"$ref": "#/definitions/R"},
                    "examples": {"type": ["string", "null"]}
                },
                "definitions": {"R": {"type": ["object", "null"], "properties": {}, "additionalProperties": true}}
            })
        );
    }
}
