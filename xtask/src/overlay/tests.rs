//! Tests of `overlay`.

use serde_json::json;

use super::*;

fn spec() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": { "title": "t", "version": "1" },
        "paths": {},
        "components": {
            "parameters": {
                "kind": { "name": "kind", "in": "query", "description": "old",
                          "schema": { "type": "string", "enum": ["a", "b"] } }
            },
            "schemas": {
                "Thing": { "type": "object", "properties": { "id": { "type": "integer" }, "gone": { "type": "string" } } }
            }
        }
    })
}

fn overlay(actions: &str) -> Result<Overlay> {
    let text =
        format!("overlay: 1.0.0\ninfo:\n  title: test\n  version: 1.0.0\n  x-source: a test\nactions:\n{actions}");
    Overlay::parse("spec/overlays/test.yaml", text)
}

fn apply(actions: &str) -> Result<Value> {
    let mut doc = spec();
    overlay(actions)?.apply(&mut doc)?;
    Ok(doc)
}

fn error(result: Result<impl std::fmt::Debug>) -> String {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => format!("{err:#}"),
    }
}

#[test]
fn update_merges_objects_recursively_and_appends_arrays() -> Result<()> {
    let doc = apply(
        "  - target: $.components.parameters.kind
    description: more values
    update:
      description: new
      x-note: added
      schema:
        enum: [c]
        nullable: true
",
    )?;
    let kind = &doc["components"]["parameters"]["kind"];
    assert_eq!(kind["description"], "new", "a primitive replaces a primitive");
    assert_eq!(kind["x-note"], "added", "a new property is added");
    assert_eq!(kind["schema"]["enum"], json!(["a", "b", "c"]), "arrays are appended");
    assert_eq!(kind["schema"]["type"], "string", "untouched properties stay");
    assert_eq!(kind["schema"]["nullable"], true);
    assert_eq!(kind["name"], "kind");
    Ok(())
}

#[test]
fn update_of_an_array_target_appends_an_item_or_the_items_of_an_array() -> Result<()> {
    let doc = apply(
        "  - target: $.components.parameters.kind.schema.enum
    update: c
  - target: $.components.parameters.kind.schema.enum
    update: [d, e]
",
    )?;
    assert_eq!(
        doc["components"]["parameters"]["kind"]["schema"]["enum"],
        json!(["a", "b", "c", "d", "e"])
    );
    Ok(())
}

#[test]
fn update_applies_to_every_selected_node() -> Result<()> {
    let doc = apply(
        "  - target: $.components.schemas.Thing.properties.*
    update:
      x-seen: true
",
    )?;
    let properties = &doc["components"]["schemas"]["Thing"]["properties"];
    assert_eq!(properties["id"]["x-seen"], true);
    assert_eq!(properties["gone"]["x-seen"], true);
    Ok(())
}

#[test]
fn remove_deletes_object_members_and_array_elements() -> Result<()> {
    let doc = apply(
        "  - target: $.components.schemas.Thing.properties.gone
    remove: true
",
    )?;
    assert_eq!(
        doc["components"]["schemas"]["Thing"]["properties"],
        json!({ "id": { "type": "integer" } })
    );

    // Several elements of one array: none is skipped because another moved.
    let mut doc = json!({ "openapi": "3.0.3", "info": { "title": "t", "version": "1" }, "paths": {},
            "tags": [{ "name": "a" }, { "name": "x" }, { "name": "b" }, { "name": "x" }, { "name": "x" }] });
    overlay("  - target: $.tags[?@.name == 'x']\n    remove: true\n")?.apply(&mut doc)?;
    assert_eq!(doc["tags"], json!([{ "name": "a" }, { "name": "b" }]));
    Ok(())
}

#[test]
fn remove_then_update_replaces_an_array() -> Result<()> {
    let doc = apply(
        "  - target: $.components.parameters.kind.schema.enum
    remove: true
  - target: $.components.parameters.kind.schema
    update:
      enum: [z, y]
",
    )?;
    assert_eq!(
        doc["components"]["parameters"]["kind"]["schema"]["enum"],
        json!(["z", "y"])
    );
    Ok(())
}

#[test]
fn files_apply_in_file_name_order() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("overlays");
    std::fs::create_dir(&dir)?;
    let file = |value: &str| {
        format!(
            "overlay: 1.0.0\ninfo: {{title: t, version: '1', x-source: test}}\nactions:\n  - target: $.info\n    update: {{description: {value}}}\n  - target: $.components.parameters.kind.schema.enum\n    update: {value}\n"
        )
    };
    // Written in the opposite order of their names.
    std::fs::write(dir.join("20-second.yaml"), file("second"))?;
    std::fs::write(dir.join("10-first.yml"), file("first"))?;
    std::fs::write(dir.join("README.md"), "not an overlay")?;
    std::fs::write(dir.join(".10-first.yaml.swp"), "editor junk")?;
    let overlays = load_dir(tmp.path(), "overlays")?;
    let labels: Vec<&str> = overlays.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(labels, ["overlays/10-first.yml", "overlays/20-second.yaml"]);
    let mut doc = spec();
    apply_all(&mut doc, &overlays)?;
    assert_eq!(doc["info"]["description"], "second", "the later file wins");
    assert_eq!(
        doc["components"]["parameters"]["kind"]["schema"]["enum"],
        json!(["a", "b", "first", "second"])
    );
    assert!(load_dir(tmp.path(), "missing")?.is_empty(), "no directory, no overlays");
    Ok(())
}

#[test]
fn a_target_that_selects_nothing_names_file_action_and_path() {
    let err = error(apply(
        "  - target: $.components.parameters.kind
    update: { description: x }
  - target: $.components.parameters.nope
    description: |-
      Fix the nope parameter.
      More text.
    update: { description: x }
",
    ));
    assert_eq!(
        err,
        "spec/overlays/test.yaml: actions[1] (\"Fix the nope parameter.\"), target `$.components.parameters.nope`: selects nothing in the document (as the previous actions and overlays left it); fix the target or drop the action"
    );
}

#[test]
fn primitive_targets_are_refused() {
    let err = error(apply(
        "  - target: $.components.parameters.kind.name\n    update: other\n",
    ));
    assert!(
            err.contains("actions[0], target `$.components.parameters.kind.name`: selects a string at $['components']['parameters']['kind']['name']; Overlay 1.0 targets must be objects or arrays"),
            "{err}"
        );
}

#[test]
fn incompatible_merges_name_the_location() {
    let err = error(apply(
        "  - target: $.components.parameters.kind
    update: { schema: { enum: not-a-list } }
",
    ));
    assert!(
        err.contains("cannot merge a string into an array at $['components']['parameters']['kind']['schema']['enum']"),
        "{err}"
    );
    let err = error(apply("  - target: $.components.parameters.kind\n    update: [1]\n"));
    assert!(
        err.contains("`update` must be a mapping of properties to merge, found an array"),
        "{err}"
    );
}

#[test]
fn an_invalid_result_names_the_action_that_broke_the_document() {
    let err = error(apply(
        "  - target: $.components.parameters.kind
    description: harmless
    update: { description: fine }
  - target: $.components.parameters.kind
    description: breaks it
    update: { in: 42 }
",
    ));
    assert!(
            err.starts_with("spec/overlays/test.yaml: actions[1] (\"breaks it\"), target `$.components.parameters.kind`: leaves an invalid OpenAPI document: at components.parameters.kind"),
            "{err}"
        );
    let err = error(apply(
        "  - target: $.components.schemas
    update: { Other: { $ref: '#/components/schemas/Missing' } }
",
    ));
    assert!(
            err.contains("leaves an invalid OpenAPI document: at /components/schemas/Other/$ref: `#/components/schemas/Missing` points at nothing"),
            "{err}"
        );
}

#[test]
fn a_document_may_be_invalid_between_two_actions() -> Result<()> {
    let doc = apply(
        "  - target: $.components.schemas.Thing
    remove: true
  - target: $.components.schemas
    update: { Other: { $ref: '#/components/schemas/Thing' } }
  - target: $.components.schemas
    update: { Thing: { type: string } }
",
    )?;
    assert_eq!(doc["components"]["schemas"]["Thing"], json!({ "type": "string" }));
    Ok(())
}

#[test]
fn malformed_overlays_are_refused_with_the_reason() {
    let cases: &[(&str, &str)] = &[
        (
            "overlay: 1.0.0\ninfo: [unclosed\n",
            "spec/overlays/bad.yaml: malformed YAML: ",
        ),
        ("- a list\n", "not an Overlay document: expected a mapping"),
        (
            "overlay: 2.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{target: $, update: {}}]\n",
            "`overlay: 2.0.0` is not supported",
        ),
        (
            "info: {title: t, version: '1', x-source: s}\nactions: [{target: $, update: {}}]\n",
            "`overlay: 1.0.0` is missing",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1'}\nactions: [{target: $, update: {}}]\n",
            "`info.x-source` is missing",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, x-source: s}\nactions: [{target: $, update: {}}]\n",
            "`info.version` is missing",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: 1.5, x-source: s}\nactions: [{target: $, update: {}}]\n",
            "`info.version` must be a string, found a number (quote it)",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: []\n",
            "`actions` is empty",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{target: $, update: {}}]\nextra: 1\n",
            "the document has an unknown field `extra`",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{target: $, updat: {}}]\n",
            "actions[0]: the action has an unknown field `updat`",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{update: {}}]\n",
            "actions[0]: `target` (a JSONPath such as `$.components.schemas`) is missing",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{target: '$.a[', update: {}}]\n",
            "actions[0]: target `$.a[` is not an RFC 9535 JSONPath",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{target: $.a, description: d}]\n",
            "actions[0] (\"d\"): target `$.a`: does nothing; give it an `update` or `remove: true`",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{target: $.a, update: {}, remove: true}]\n",
            "has both `update` and `remove: true`",
        ),
        (
            "overlay: 1.0.0\ninfo: {title: t, version: '1', x-source: s}\nactions: [{target: $.a, remove: yes please}]\n",
            "`remove` must be true or false, found a string",
        ),
    ];
    for (text, expected) in cases {
        let err = error(Overlay::parse("spec/overlays/bad.yaml", (*text).to_owned()));
        assert!(err.starts_with("spec/overlays/bad.yaml: "), "{err}");
        assert!(err.contains(expected), "{text}\n→ {err}\nexpected: {expected}");
    }
}

#[test]
fn the_root_cannot_be_removed() {
    let err = error(apply("  - target: $\n    remove: true\n"));
    assert!(
        err.contains("cannot remove $: the document itself cannot be removed"),
        "{err}"
    );
}

#[test]
fn an_unreadable_overlay_names_the_file() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("overlays");
    std::fs::create_dir(&dir)?;
    std::fs::write(dir.join("10-binary.yaml"), [0xff, 0xfe, 0x00])?;
    let err = error(load_dir(tmp.path(), "overlays"));
    assert!(
        err.starts_with("overlays/10-binary.yaml: cannot read the overlay"),
        "{err}"
    );
    Ok(())
}
