//! `iterable-export singer`, the catalog: discovery (names, keys, metadata, Draft 4 schemas),
//! stream selection and field selection.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::common::*;
use crate::singer::{assert_served, messages, raw_records, save_last_state, sync, write_catalog, write_config};

/// Draft 4 knows these keywords (validation and metadata); a schema that uses only them, with
/// Draft 4's type names, is one a Draft 4 validator reads as intended.
const DRAFT4_KEYWORDS: &[&str] = &[
    "$schema",
    "id",
    "$ref",
    "title",
    "description",
    "default",
    "type",
    "properties",
    "additionalProperties",
    "patternProperties",
    "required",
    "items",
    "additionalItems",
    "enum",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "dependencies",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "definitions",
];
const DRAFT4_TYPES: &[&str] = &["array", "boolean", "integer", "number", "null", "object", "string"];

/// Asserts `schema` (and every subschema) is Draft 4; gives the number of subschemas checked.
fn assert_draft4(schema: &Value, at: &str) -> usize {
    let map = schema
        .as_object()
        .unwrap_or_else(|| panic!("{at}: a schema must be an object: {schema}"));
    let mut checked = 1;
    for (key, value) in map {
        assert!(
            DRAFT4_KEYWORDS.contains(&key.as_str()),
            "{at}: {key} is not a Draft 4 keyword"
        );
        match key.as_str() {
            "type" => {
                let types: Vec<&Value> = value.as_array().map_or_else(|| vec![value], |a| a.iter().collect());
                for t in types {
                    assert!(DRAFT4_TYPES.contains(&t.as_str().unwrap_or_default()), "{at}: type {t}");
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" => {
                assert!(value.is_boolean(), "{at}: {key} must be a boolean in Draft 4");
            }
            "properties" | "definitions" | "patternProperties" => {
                for (name, sub) in value.as_object().expect("an object of schemas") {
                    checked += assert_draft4(sub, &format!("{at}/{key}/{name}"));
                }
            }
            "items" | "not" if value.is_object() => checked += assert_draft4(value, &format!("{at}/{key}")),
            "allOf" | "anyOf" | "oneOf" => {
                for (i, sub) in value.as_array().expect("an array of schemas").iter().enumerate() {
                    checked += assert_draft4(sub, &format!("{at}/{key}/{i}"));
                }
            }
            _ => {}
        }
    }
    if map
        .get("type")
        .is_some_and(|t| t == "object" || t.as_array().is_some_and(|a| a.contains(&json!("object"))))
    {
        assert_eq!(
            map.get("additionalProperties"),
            Some(&Value::Bool(true)),
            "{at}: permissive"
        );
    }
    checked
}

/// Proves: --discover prints 53 streams named as the Python connectors name them, each with its
/// key, replication key, standard metadata and a Draft 4, permissive schema; an unknown config
/// key is reported on stderr, not fatal.
#[tokio::test(flavor = "multi_thread")]
async fn discover_prints_every_stream_with_keys_metadata_and_a_draft4_schema() -> TestResult {
    let mock = start(config(1)).await?;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &mock, json!({"select_fields": true}))?;
    let out = bare_command()
        .line("singer --config")
        .with(&config)
        .with("--discover")
        .run()
        .await?
        .code(0)
        .stderr(contains("warning: config key `select_fields` is not used by this tap"));
    let catalog: Value = serde_json::from_slice(&out.get_output().stdout)?;
    let streams = catalog["streams"].as_array().ok_or("no streams")?;
    assert_eq!(streams.len(), 53);
    let names: Vec<&str> = streams.iter().filter_map(|s| s["tap_stream_id"].as_str()).collect();
    for name in [
        "email_send",
        "email_open",
        "email_click",
        "email_unsubscribe",
        "email_bounce",
        "users",
        "custom_event",
        "purchase",
        "in_app_send_skip",
        "web_push_send",
        "hosted_unsubscribe_click",
        "sms_usage_info",
        "whatsapp_send",
        "unknown_session",
        "journey_exit",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let by_name = |name: &str| streams.iter().find(|s| s["tap_stream_id"] == name).expect("the stream");
    let send = by_name("email_send");
    assert_eq!(send["key_properties"], json!(["messageId"]));
    assert_eq!(send["replication_key"], "createdAt");
    assert_eq!(
        send["metadata"][0],
        json!({"breadcrumb": [], "metadata": {
            "inclusion": "available", "selected-by-default": true, "table-key-properties": ["messageId"],
            "valid-replication-keys": ["createdAt"], "forced-replication-method": "INCREMENTAL",
            "data-type-name": "emailSend"}})
    );
    // Then one entry per property, in the schema's order: the key and the replication key
    // automatic, every other field available; all selected by default.
    let metadata = send["metadata"].as_array().ok_or("metadata")?;
    let properties: Vec<&String> = send["schema"]["properties"]
        .as_object()
        .ok_or("properties")?
        .keys()
        .collect();
    assert_eq!((metadata.len(), properties.len()), (13, 12));
    for (entry, field) in metadata[1..].iter().zip(properties) {
        let inclusion = if field == "createdAt" || field == "messageId" {
            "automatic"
        } else {
            "available"
        };
        assert_eq!(
            entry,
            &json!({"breadcrumb": ["properties", field], "metadata": {"inclusion": inclusion, "selected-by-default": true}})
        );
    }
    assert_eq!(by_name("email_open")["key_properties"], json!([]));
    assert_eq!(by_name("purchase")["key_properties"], json!(["id"]));
    let users = by_name("users");
    assert_eq!(
        (users["key_properties"].clone(), users["replication_key"].clone()),
        (json!(["email"]), json!("profileUpdatedAt"))
    );
    assert!(users["schema"]["properties"]["profileUpdatedAt"].is_object());
    for stream in streams {
        let schema = &stream["schema"];
        let keys = stream["key_properties"].as_array().ok_or("key_properties")?;
        for key in keys.iter().chain([&stream["replication_key"]]) {
            let key = key.as_str().ok_or("a key is a name")?;
            assert!(
                schema["properties"][key].is_object(),
                "{key} of {}",
                stream["tap_stream_id"]
            );
        }
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
        assert_eq!(schema["type"], "object");
        assert!(assert_draft4(schema, stream["tap_stream_id"].as_str().unwrap_or_default()) > 4);
    }
    let send_schema = &send["schema"]["properties"];
    assert_eq!(send_schema["campaignId"]["type"], json!(["integer", "null", "string"]));
    assert_eq!(send_schema["createdAt"]["type"], json!(["string", "integer", "null"]));
    assert_eq!(mock.counters().requests, 0, "discovery sends no request");
    Ok(())
}

/// Proves: a catalog whose selection changes between syncs keeps every stream exact: a stream
/// selected later starts at start_date, a deselected stream's bookmark passes through the
/// syncs that skip it unchanged, and once selected again it continues from it — every record
/// of both streams once.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_selection_keeps_each_streams_bookmark() -> TestResult {
    let config = config(400);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let mut all = Vec::new();
    let mut state = None;
    for (streams, end) in [
        (&["email_send"][..], "2024-01-02T00:00:00Z"),
        (&["email_send", "users"], "2024-01-03T00:00:00Z"),
        (&["users"], "2024-01-04T00:00:00Z"),
        (&["users", "email_send"], "2024-01-05T00:00:00Z"),
    ] {
        write_catalog(dir.path(), &mock, streams).await?;
        let out = sync(
            dir.path(),
            &mock,
            json!({"end_date": end, "lookback": "10m"}),
            state.as_deref(),
        )
        .await?;
        let last = messages(&out)
            .into_iter()
            .rfind(|m| m["type"] == "STATE")
            .ok_or("no STATE")?;
        let bookmarks = &last["value"]["bookmarks"];
        if streams == ["users"] {
            assert_eq!(
                bookmarks["email_send"]["replication_key_value"], "2024-01-03T00:00:00Z",
                "the deselected stream's bookmark is passed on unchanged"
            );
            assert!(raw_records(&out, "email_send").is_empty());
        }
        for stream in streams {
            assert_eq!(bookmarks[stream]["replication_key_value"], end);
        }
        state = Some(save_last_state(&out, dir.path())?);
        all.extend_from_slice(&out);
    }
    assert_served(&all, "email_send", &config, "emailSend", 4);
    assert_served(&all, "users", &config, "user", 4);
    Ok(())
}

/// `line` without its member `key` — at the top level, or within the object member `within` —
/// cut out of the bytes as served: the expected record, built apart from the tap's filter.
fn without(line: &str, within: Option<&str>, key: &str) -> String {
    let members: BTreeMap<String, &RawValue> = serde_json::from_str(line).expect("a record");
    if let Some(parent) = within {
        let Some(raw) = members.get(parent) else {
            return line.into();
        };
        return line.replacen(raw.get(), &without(raw.get(), None, key), 1);
    }
    let Some(raw) = members.get(key) else {
        return line.into();
    };
    let member = format!("\"{key}\":{}", raw.get());
    for cut in [format!(",{member}"), format!("{member},"), member.clone()] {
        if line.contains(&cut) {
            return line.replacen(&cut, "", 1);
        }
    }
    panic!("{member} is not in {line}");
}

/// Deselects each path in the catalog entry as Meltano writes `!stream.field`: `selected:
/// false` on the field's breadcrumb, added when the discovered catalog has none.
fn deselect(stream: &mut Value, paths: &[&[&str]]) {
    let metadata = stream["metadata"].as_array_mut().expect("metadata");
    for path in paths {
        let breadcrumb: Vec<&str> = path.iter().flat_map(|field| ["properties", field]).collect();
        match metadata.iter_mut().find(|m| m["breadcrumb"] == json!(breadcrumb)) {
            Some(entry) => entry["metadata"]["selected"] = Value::Bool(false),
            None => metadata.push(json!({"breadcrumb": breadcrumb, "metadata": {"selected": false}})),
        }
    }
}

/// Proves: fields a catalog deselects (in the schema, `selected-by-default: false` without
/// `selected`, not in the schema, nested) are absent from every RECORD — each record otherwise
/// byte for byte as served, unknown fields kept — and from the SCHEMA; a key or the replication
/// key deselected is emitted anyway, with a warning; a deselection the tap cannot apply (within
/// an array's items) is refused (exit 2) before any request.
#[tokio::test(flavor = "multi_thread")]
async fn deselected_fields_are_left_out_of_records_and_schema() -> TestResult {
    let config = config(300);
    let mock = start(config.clone()).await?;
    let dir = tempfile::tempdir()?;
    let path = write_catalog(dir.path(), &mock, &["email_send", "users"]).await?;
    let mut catalog: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    for stream in catalog["streams"].as_array_mut().ok_or("streams")? {
        match stream["tap_stream_id"].as_str() {
            Some("email_send") => {
                deselect(
                    stream,
                    &[
                        &["campaignId"],
                        &["messageId"],
                        &["transactionalData"],
                        &["itblInternal", "documentUpdatedAt"],
                    ],
                );
                let metadata = stream["metadata"].as_array_mut().ok_or("metadata")?;
                let template = metadata
                    .iter_mut()
                    .find(|m| m["breadcrumb"] == json!(["properties", "templateId"]))
                    .ok_or("templateId")?;
                template["metadata"] = json!({"inclusion": "available", "selected-by-default": false});
            }
            Some("users") => deselect(stream, &[&["userId"], &["profileUpdatedAt"], &["phoneNumber"]]),
            _ => {}
        }
    }
    std::fs::write(&path, catalog.to_string())?;
    let config_path = write_config(
        dir.path(),
        &mock,
        json!({"end_date": "2024-01-02T00:00:00Z", "lookback": 0}),
    )?;
    let out = bare_command()
        .line("singer --config")
        .with(&config_path)
        .with("--catalog")
        .with(&path)
        .run()
        .await?
        .code(0)
        .stderr(contains(
            r#"email_send: the catalog deselects ["properties","messageId"], which is always emitted (a key or the replication key)"#,
        ))
        .stderr(contains(r#"users: the catalog deselects ["properties","profileUpdatedAt"], which is always emitted"#));
    let out = out.get_output().stdout.clone();

    let expected = |data_type: &str, cuts: &[(Option<&str>, &str)]| {
        let body = expected_body(&config, data_type, day(0), day(1));
        let mut lines = String::new();
        for line in String::from_utf8(body).expect("UTF-8").lines() {
            let mut line = line.to_owned();
            for (within, key) in cuts {
                line = without(&line, *within, key);
            }
            lines.push_str(&line);
            lines.push('\n');
        }
        lines.into_bytes()
    };
    let sends = expected(
        "emailSend",
        &[
            (None, "campaignId"),
            (None, "templateId"),
            (None, "transactionalData"),
            (Some("itblInternal"), "documentUpdatedAt"),
        ],
    );
    assert_records(&raw_records(&out, "email_send"), &sends, "email_send");
    let text = String::from_utf8(sends)?;
    assert_eq!(text.lines().count(), 300);
    assert!(!text.contains("\"campaignId\"") && !text.contains("documentUpdatedAt"));
    assert!(text.contains("\"messageBusId\"") && text.contains("documentCreatedAt"));
    let users = expected("user", &[(None, "userId"), (None, "phoneNumber")]);
    assert_records(&raw_records(&out, "users"), &users, "users");

    let schemas: Vec<(String, Vec<String>)> = messages(&out)
        .into_iter()
        .filter(|m| m["type"] == "SCHEMA")
        .map(|m| {
            let fields = m["schema"]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect());
            (
                m["stream"].as_str().unwrap_or_default().to_owned(),
                fields.unwrap_or_default(),
            )
        })
        .collect();
    let send_fields = [
        "email",
        "userId",
        "createdAt",
        "messageId",
        "eventName",
        "_type",
        "contentId",
        "channelId",
        "messageTypeId",
        "workflowId",
    ];
    assert_eq!(
        schemas,
        [
            ("email_send".to_owned(), send_fields.map(String::from).to_vec()),
            (
                "users".to_owned(),
                ["email", "signupDate", "profileUpdatedAt"].map(String::from).to_vec()
            )
        ]
    );

    // A field within an array's items cannot be cut out of the bytes: refused, nothing sent.
    mock.clear_requests();
    for stream in catalog["streams"].as_array_mut().ok_or("streams")? {
        if stream["tap_stream_id"] == "users" {
            let metadata = stream["metadata"].as_array_mut().ok_or("metadata")?;
            metadata.push(json!({"breadcrumb": ["properties", "tags", "items"], "metadata": {"selected": false}}));
        }
    }
    std::fs::write(&path, catalog.to_string())?;
    let refused = bare_command()
        .line("singer --config")
        .with(&config_path)
        .with("--catalog")
        .with(&path)
        .run()
        .await?;
    let message = stderr(&refused);
    let refused = refused.code(2);
    assert_eq!(
        message.lines().last(),
        Some(
            format!(
                "error: singer: invalid request: the catalog {}: deselects [\"properties\",\"tags\",\"items\"] in users, \
                 which this tap cannot leave out of records (only fields and fields of objects, \
                 [\"properties\", \"a\", \"properties\", \"b\"]); select it, or deselect the field that holds it",
                path.display()
            )
            .as_str()
        )
    );
    assert!(refused.get_output().stdout.is_empty());
    assert_eq!(mock.requests().len(), 0);
    Ok(())
}
