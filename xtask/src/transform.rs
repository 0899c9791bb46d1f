//! Transformations applied to the parsed spec before progenitor sees it.
//!
//! The spec file is never edited to please the generator: each difference between what the spec
//! says and what progenitor (or the real Iterable API) needs is one small, named function here,
//! with the reason it exists and tests for it. They work on the document as a JSON tree so that
//! constructs `openapiv3` cannot represent (OpenAPI 3.1 keywords) can still be found and named.

use anyhow::{Result, bail};
use serde_json::{Map, Value, json};

/// Applies every transformation, in order.
pub fn apply_all(doc: &mut Value) -> Result<()> {
    downgrade_31_to_303(doc)?;
    error_bodies_as_raw(doc)?;
    hoist_component_parameter_enums(doc)?;
    date_time_params_as_text(doc)?;
    user_events_body_as_raw(doc)?;
    Ok(())
}

/// Keywords of OpenAPI 3.1 / JSON Schema 2020-12 that have no OpenAPI 3.0 meaning.
const SCHEMA_31_ONLY: &[&str] = &[
    "const",
    "examples",
    "$defs",
    "prefixItems",
    "$schema",
    "$id",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "unevaluatedProperties",
    "unevaluatedItems",
    "patternProperties",
    "contains",
    "minContains",
    "maxContains",
    "propertyNames",
    "contentEncoding",
    "contentMediaType",
];

/// Top-level and `info` keys that only OpenAPI 3.1 defines.
const DOCUMENT_31_ONLY: &[&str] = &[
    "/webhooks",
    "/jsonSchemaDialect",
    "/components/pathItems",
    "/info/summary",
    "/info/license/identifier",
];

/// progenitor accepts only OpenAPI 3.0.x, and our spec declares 3.1.0. A 3.1 document that uses
/// no 3.1-only construct means the same as 3.0.3, so relabelling it is safe — but only then: a
/// construct 3.0 cannot express would be silently misread, so its presence is an error naming
/// the construct and where it is.
pub fn downgrade_31_to_303(doc: &mut Value) -> Result<()> {
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if version.starts_with("3.0.") {
        return Ok(());
    }
    if !version.starts_with("3.1.") {
        bail!("/openapi: unsupported OpenAPI version {version:?}; expected 3.0.x or 3.1.x");
    }
    for pointer in DOCUMENT_31_ONLY {
        if doc.pointer(pointer).is_some() {
            bail!(
                "{pointer}: OpenAPI 3.1-only construct `{}`; progenitor reads OpenAPI 3.0 only, remove it or express it in 3.0 terms",
                pointer.rsplit('/').next().unwrap_or(pointer)
            );
        }
    }
    find_31_constructs(doc, "", false)?;
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("openapi".into(), Value::String("3.0.3".into()));
    }
    Ok(())
}

/// Walks the tree, tracking whether `value` is a schema object, and fails on the first 3.1-only
/// construct.
fn find_31_constructs(value: &Value, path: &str, is_schema: bool) -> Result<()> {
    let refuse = |what: &str, at: &str| -> Result<()> {
        bail!(
            "{at}: OpenAPI 3.1-only construct {what}; progenitor reads OpenAPI 3.0 only, express it in 3.0 terms (e.g. `nullable: true`, `enum`, `example`)"
        )
    };
    match value {
        Value::Object(obj) => {
            if obj.contains_key("$ref") && obj.len() > 1 {
                let siblings: Vec<&str> = obj.keys().map(String::as_str).filter(|k| *k != "$ref").collect();
                refuse(&format!("`$ref` with siblings ({})", siblings.join(", ")), path)?;
            }
            if is_schema {
                match obj.get("type") {
                    Some(Value::Array(_)) => refuse("`type` as an array", &format!("{path}/type"))?,
                    Some(Value::String(t)) if t == "null" => refuse("`type: null`", &format!("{path}/type"))?,
                    _ => {}
                }
                for key in ["exclusiveMinimum", "exclusiveMaximum"] {
                    if obj.get(key).is_some_and(Value::is_number) {
                        refuse(&format!("numeric `{key}`"), &format!("{path}/{key}"))?;
                    }
                }
                if let Some(key) = SCHEMA_31_ONLY.iter().find(|k| obj.contains_key(**k)) {
                    refuse(&format!("`{key}`"), &format!("{path}/{}", escape(key)))?;
                }
            }
            for (key, child) in obj {
                let child_path = format!("{path}/{}", escape(key));
                if is_schema {
                    match key.as_str() {
                        "properties" => walk_schema_map(child, &child_path)?,
                        "allOf" | "anyOf" | "oneOf" => walk_schema_list(child, &child_path)?,
                        "items" | "not" => find_31_constructs(child, &child_path, true)?,
                        "additionalProperties" if child.is_object() => find_31_constructs(child, &child_path, true)?,
                        // Keyword values (enum members, defaults, examples) are data, not schemas.
                        _ => {}
                    }
                } else if key == "schema" {
                    find_31_constructs(child, &child_path, true)?;
                } else if key == "schemas" && path == "/components" {
                    walk_schema_map(child, &child_path)?;
                } else if !matches!(key.as_str(), "example" | "examples" | "default") {
                    find_31_constructs(child, &child_path, false)?;
                }
            }
        }
        Value::Array(items) if !is_schema => {
            for (i, item) in items.iter().enumerate() {
                find_31_constructs(item, &format!("{path}/{i}"), false)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn walk_schema_map(map: &Value, path: &str) -> Result<()> {
    if let Some(map) = map.as_object() {
        for (name, schema) in map {
            find_31_constructs(schema, &format!("{path}/{}", escape(name)), true)?;
        }
    }
    Ok(())
}

fn walk_schema_list(list: &Value, path: &str) -> Result<()> {
    if let Some(list) = list.as_array() {
        for (i, schema) in list.iter().enumerate() {
            find_31_constructs(schema, &format!("{path}/{i}"), true)?;
        }
    }
    Ok(())
}

/// JSON Pointer escaping of one path segment (RFC 6901).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn operations_mut(doc: &mut Value) -> impl Iterator<Item = (String, &mut Map<String, Value>)> {
    const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    doc.get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .flat_map(|(path, item)| {
            let path = path.clone();
            item.as_object_mut()
                .into_iter()
                .flat_map(|item| item.iter_mut())
                .filter(|(method, _)| METHODS.contains(&method.as_str()))
                .filter_map(move |(method, op)| {
                    Some((format!("/paths/{}/{method}", escape(&path)), op.as_object_mut()?))
                })
        })
}

/// progenitor panics (`response_types.len() <= 1`) when an operation's error responses mix a
/// typed JSON body with a body-less one — data.json/data.csv declare 400 with `ErrorResponse`
/// and 401 with nothing. And the declared shapes are not what Iterable sends: a 401 may carry
/// JSON or nothing, a proxy's 502 carries HTML, a CSV endpoint may send its error as text. So
/// every error response becomes a raw body (`*/*`, the declared schema kept for readers): the
/// generated client then hands back status, headers and the bytes, and the facade decodes error
/// bodies once, in one place. `ErrorResponse` stays a generated type (it is a component).
pub fn error_bodies_as_raw(doc: &mut Value) -> Result<()> {
    for (_, op) in operations_mut(doc) {
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') || status == "default" {
                continue;
            }
            let Some(response) = response.as_object_mut() else {
                continue;
            };
            if response.contains_key("$ref") {
                continue;
            }
            let schema = response
                .get("content")
                .and_then(Value::as_object)
                .and_then(|content| content.values().find_map(|media| media.get("schema").cloned()));
            let media = match schema {
                Some(schema) => json!({ "schema": schema }),
                None => json!({}),
            };
            response.insert("content".into(), json!({ "*/*": media }));
        }
    }
    Ok(())
}

/// An enum schema written inline in a `components/parameters` entry becomes one Rust type per
/// operation that references the parameter (`ExportDataJsonDataTypeName`,
/// `ExportDataCsvDataTypeName`, …). Moving the schema to `components/schemas` under the
/// parameter's name in PascalCase (`DataTypeName`, `Range`) makes it one shared type.
pub fn hoist_component_parameter_enums(doc: &mut Value) -> Result<()> {
    let Some(params) = doc
        .pointer("/components/parameters")
        .and_then(Value::as_object)
        .cloned()
    else {
        return Ok(());
    };
    for (key, param) in params {
        let Some(schema) = param.get("schema") else { continue };
        if schema.get("enum").is_none() || schema.get("$ref").is_some() {
            continue;
        }
        let name = pascal_case(param.get("name").and_then(Value::as_str).unwrap_or(&key));
        let schemas = doc
            .as_object_mut()
            .and_then(|d| {
                Some(
                    d.entry("components")
                        .or_insert_with(|| json!({}))
                        .as_object_mut()?
                        .entry("schemas")
                        .or_insert_with(|| json!({})),
                )
            })
            .and_then(Value::as_object_mut);
        let Some(schemas) = schemas else {
            bail!("/components: not an object")
        };
        match schemas.get(&name) {
            Some(existing) if existing != schema => {
                bail!(
                    "/components/parameters/{key}: cannot hoist its enum to /components/schemas/{name}, a different schema already has that name"
                )
            }
            _ => {
                schemas.insert(name.clone(), schema.clone());
            }
        }
        if let Some(slot) = doc.pointer_mut(&format!("/components/parameters/{}/schema", escape(&key))) {
            *slot = json!({ "$ref": format!("#/components/schemas/{name}") });
        }
    }
    Ok(())
}

fn pascal_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The spec gives `startDateTime`/`endDateTime` `format: date-time`, which progenitor turns into
/// `chrono::DateTime<Utc>` serialised as RFC 3339. Iterable documents `yyyy-MM-dd HH:mm:ss`
/// (UTC) and real clients send that form, so the generated setters take text and the facade
/// formats the date the way the real API expects.
pub fn date_time_params_as_text(doc: &mut Value) -> Result<()> {
    let mut fix = |param: &mut Value| {
        let is_query = param.get("in").and_then(Value::as_str) == Some("query");
        if let Some(schema) = param.get_mut("schema").and_then(Value::as_object_mut)
            && is_query
            && schema.get("format").and_then(Value::as_str) == Some("date-time")
        {
            schema.remove("format");
        }
    };
    if let Some(params) = doc.pointer_mut("/components/parameters").and_then(Value::as_object_mut) {
        params.values_mut().for_each(&mut fix);
    }
    for (_, op) in operations_mut(doc) {
        if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
            params.iter_mut().for_each(&mut fix);
        }
    }
    Ok(())
}

/// The spec says `/export/userEvents` answers one JSON object `{"events": [...]}`; the real API
/// streams one JSON event per line. A typed success response would make the generated client
/// buffer the whole body and then fail on the real format, so the success body becomes raw
/// bytes (the facade streams and decodes both forms). The documented object shape is kept as
/// the component schema `UserEventsResponse`.
pub fn user_events_body_as_raw(doc: &mut Value) -> Result<()> {
    let pointer = "/paths/~1export~1userEvents/get/responses/200/content";
    let Some(content) = doc.pointer_mut(pointer) else {
        bail!(
            "{pointer}: not found; the userEvents transformation no longer matches the spec, update xtask/src/transform.rs"
        );
    };
    let schema = content.pointer("/application~1json/schema").cloned();
    *content = json!({ "application/x-ndjson": { "schema": { "type": "string" } } });
    if let Some(schema) = schema {
        if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
            schemas.insert("UserEventsResponse".into(), schema);
        }
        if let Some(content) = doc.pointer_mut(pointer) {
            content["application/json"] = json!({ "schema": { "$ref": "#/components/schemas/UserEventsResponse" } });
            // progenitor treats any application/json content as the typed body; keep the shape
            // visible to readers of the transformed document without making it the body type.
            if let Some(obj) = content.as_object_mut() {
                let shape = obj.remove("application/json");
                obj.insert("*/*".into(), shape.unwrap_or_default());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
