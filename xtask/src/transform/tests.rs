//! Tests of `transform`.

use super::*;

fn doc31(extra: Value) -> Value {
    let mut doc = json!({ "openapi": "3.1.0", "info": { "title": "t", "version": "1" }, "paths": {} });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    doc
}

fn refusal(extra: Value) -> String {
    let mut doc = doc31(extra);
    match downgrade_31_to_303(&mut doc) {
        Ok(()) => panic!("accepted a 3.1-only construct"),
        Err(err) => {
            assert_eq!(
                doc["openapi"], "3.1.0",
                "the document must not be relabelled on refusal"
            );
            err.to_string()
        }
    }
}

#[test]
fn relabels_plain_31_document() -> Result<()> {
    let mut doc =
        doc31(json!({ "components": { "schemas": { "A": { "type": "string", "nullable": true, "example": "x" } } } }));
    downgrade_31_to_303(&mut doc)?;
    assert_eq!(doc["openapi"], "3.0.3");
    Ok(())
}

#[test]
fn leaves_30_documents_alone() -> Result<()> {
    let mut doc = json!({ "openapi": "3.0.1", "webhooks": {} });
    downgrade_31_to_303(&mut doc)?;
    assert_eq!(doc["openapi"], "3.0.1");
    Ok(())
}

#[test]
fn refuses_unknown_versions() {
    let mut doc = json!({ "openapi": "2.0" });
    let err = downgrade_31_to_303(&mut doc).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("/openapi: unsupported OpenAPI version \"2.0\"; expected 3.0.x or 3.1.x")
    );
}

#[test]
fn refuses_type_arrays_naming_the_location() {
    let msg = refusal(
        json!({ "components": { "schemas": { "A": { "properties": { "b": { "type": ["string", "null"] } } } } } }),
    );
    assert!(
        msg.starts_with("/components/schemas/A/properties/b/type: OpenAPI 3.1-only construct `type` as an array"),
        "{msg}"
    );
}

#[test]
fn refuses_type_null() {
    let msg = refusal(
        json!({ "components": { "schemas": { "A": { "anyOf": [{ "type": "string" }, { "type": "null" }] } } } }),
    );
    assert!(
        msg.starts_with("/components/schemas/A/anyOf/1/type: OpenAPI 3.1-only construct `type: null`"),
        "{msg}"
    );
}

#[test]
fn refuses_schema_keywords_in_parameters() {
    let paths = json!({ "paths": { "/a/b": { "get": { "parameters": [{ "name": "x", "in": "query", "schema": { "const": 1 } }] } } } });
    let msg = refusal(paths);
    assert!(
        msg.starts_with("/paths/~1a~1b/get/parameters/0/schema/const: OpenAPI 3.1-only construct `const`"),
        "{msg}"
    );
}

#[test]
fn refuses_examples_defs_and_prefix_items() {
    for (key, value) in [
        ("examples", json!(["a"])),
        ("$defs", json!({})),
        ("prefixItems", json!([])),
    ] {
        let msg = refusal(json!({ "components": { "schemas": { "A": { key: value } } } }));
        assert!(msg.contains(&format!("construct `{key}`")), "{msg}");
    }
}

#[test]
fn refuses_numeric_exclusive_bounds_but_not_boolean_ones() -> Result<()> {
    let msg = refusal(json!({ "components": { "schemas": { "A": { "type": "integer", "exclusiveMinimum": 0 } } } }));
    assert!(msg.contains("numeric `exclusiveMinimum`"), "{msg}");
    let mut doc = doc31(
        json!({ "components": { "schemas": { "A": { "type": "integer", "minimum": 0, "exclusiveMinimum": true } } } }),
    );
    downgrade_31_to_303(&mut doc)?;
    Ok(())
}

#[test]
fn refuses_ref_with_siblings_and_webhooks() {
    let msg = refusal(
        json!({ "components": { "schemas": { "A": { "$ref": "#/components/schemas/B", "description": "x" } } } }),
    );
    assert!(msg.contains("`$ref` with siblings (description)"), "{msg}");
    let msg = refusal(json!({ "webhooks": {} }));
    assert!(
        msg.starts_with("/webhooks: OpenAPI 3.1-only construct `webhooks`"),
        "{msg}"
    );
}

#[test]
fn parameter_examples_are_not_schema_examples() -> Result<()> {
    let paths = json!({ "paths": { "/a": { "get": { "parameters": [{ "name": "x", "in": "query", "examples": { "one": { "value": 1 } }, "schema": { "type": "integer" } }] } } } });
    let mut doc = doc31(paths);
    downgrade_31_to_303(&mut doc)?;
    Ok(())
}

fn op(responses: Value) -> Value {
    json!({ "openapi": "3.0.3", "paths": { "/x": { "get": { "responses": responses } } } })
}

#[test]
fn error_bodies_become_raw_and_keep_their_schema() -> Result<()> {
    let schema = json!({ "$ref": "#/components/schemas/ErrorResponse" });
    let mut doc = op(json!({
        "200": { "description": "ok", "content": { "text/csv": { "schema": { "type": "string" } } } },
        "400": { "description": "bad", "content": { "application/json": { "schema": schema } } },
        "401": { "description": "unauthorized" }
    }));
    error_bodies_as_raw(&mut doc)?;
    let responses = &doc["paths"]["/x"]["get"]["responses"];
    assert_eq!(
        responses["200"]["content"],
        json!({ "text/csv": { "schema": { "type": "string" } } })
    );
    assert_eq!(responses["400"]["content"], json!({ "*/*": { "schema": schema } }));
    assert_eq!(responses["401"]["content"], json!({ "*/*": {} }));
    Ok(())
}

#[test]
fn hoists_parameter_enums_once() -> Result<()> {
    let mut doc = json!({ "components": { "parameters": {
            "dataTypeName": { "name": "dataTypeName", "in": "query", "schema": { "type": "string", "enum": ["a", "b"] } },
            "limit": { "name": "limit", "in": "query", "schema": { "type": "integer" } }
        } } });
    hoist_component_parameter_enums(&mut doc)?;
    assert_eq!(
        doc["components"]["schemas"]["DataTypeName"],
        json!({ "type": "string", "enum": ["a", "b"] })
    );
    assert_eq!(
        doc["components"]["parameters"]["dataTypeName"]["schema"],
        json!({ "$ref": "#/components/schemas/DataTypeName" })
    );
    assert_eq!(
        doc["components"]["parameters"]["limit"]["schema"],
        json!({ "type": "integer" })
    );
    assert!(doc["components"]["schemas"].get("Limit").is_none());
    Ok(())
}

#[test]
fn hoisting_refuses_to_overwrite_a_different_schema() {
    let mut doc = json!({ "components": {
            "schemas": { "Range": { "type": "integer" } },
            "parameters": { "range": { "name": "range", "in": "query", "schema": { "type": "string", "enum": ["All"] } } }
        } });
    let err = hoist_component_parameter_enums(&mut doc)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("a different schema already has that name"), "{err}");
}

#[test]
fn date_time_query_params_lose_their_format() -> Result<()> {
    let mut doc = json!({ "components": { "parameters": {
            "start": { "name": "startDateTime", "in": "query", "schema": { "type": "string", "format": "date-time" } },
            "email": { "name": "email", "in": "query", "schema": { "type": "string", "format": "email" } }
        } } });
    date_time_params_as_text(&mut doc)?;
    assert_eq!(
        doc["components"]["parameters"]["start"]["schema"],
        json!({ "type": "string" })
    );
    assert_eq!(doc["components"]["parameters"]["email"]["schema"]["format"], "email");
    Ok(())
}

#[test]
fn user_events_success_becomes_raw_and_its_shape_a_component() -> Result<()> {
    let shape = json!({ "type": "object", "properties": { "events": { "type": "array" } } });
    let mut doc = json!({ "components": { "schemas": {} }, "paths": { "/export/userEvents": { "get": { "responses": {
            "200": { "description": "ok", "content": { "application/json": { "schema": shape } } }
        } } } } });
    user_events_body_as_raw(&mut doc)?;
    assert_eq!(doc["components"]["schemas"]["UserEventsResponse"], shape);
    let content = &doc["paths"]["/export/userEvents"]["get"]["responses"]["200"]["content"];
    assert!(content.get("application/json").is_none());
    assert_eq!(
        content["application/x-ndjson"],
        json!({ "schema": { "type": "string" } })
    );
    Ok(())
}

#[test]
fn user_events_transformation_fails_loudly_when_the_spec_moves() {
    let mut doc = json!({ "paths": {} });
    let err = user_events_body_as_raw(&mut doc)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("no longer matches the spec"), "{err}");
}
