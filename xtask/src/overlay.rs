//! OpenAPI Overlay 1.0.0 documents (`spec/overlays/*.yaml`), applied to the parsed spec before
//! the transformations of [`crate::transform`].
//!
//! The spec file stays byte-identical to what we were given; what we add or correct is data in
//! overlay files, each citing where its facts come from (`info.x-source`). The rules are those of
//! the [Overlay Specification 1.0.0](https://spec.openapis.org/overlay/v1.0.0.html), with its
//! merge rules as 1.1.0 spells them out:
//!
//! - Overlays are applied in file-name order; the actions of one overlay in their order, each to
//!   the result of the previous one.
//! - `target` is an RFC 9535 JSONPath query (evaluated by `serde_json_path`). It must select
//!   objects or arrays, never primitives or `null`.
//! - `update` on an object is merged recursively: a property only in the target stays, a property
//!   only in `update` is added, and for a property in both a primitive replaces a primitive, an
//!   array is appended to an array and an object is merged into an object; any other combination
//!   is an error. `update` on an array appends its elements when it is an array, otherwise the
//!   value itself.
//! - `remove: true` removes every selected node from its object or array.
//!
//! Stricter than the specification, because a silent overlay is a wrong client: a target that
//! selects nothing is an error (the specification lets it pass), so is an action with neither
//! `update` nor `remove: true` or with both, an unknown field that is not an `x-` extension, an
//! overlay without `info.x-source`, and an overlay that turns a valid OpenAPI document into an
//! invalid one. Every error names the file, the action (`actions[i]` and its description) and the
//! JSONPath or location involved.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use serde_json_path::{JsonPath, NormalizedPath};

/// The Overlay Specification versions this engine implements (`1.0.x`).
const SUPPORTED: &str = "1.0.";

/// One overlay file, read and checked.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// How errors and the generated header name the file (`spec/overlays/10-data-types.yaml`).
    pub label: String,
    /// The file's text, as read (its SHA-256 goes into the generated header).
    pub text: String,
    /// `info.title`.
    pub title: String,
    /// `info.x-source`: where the overlay's facts come from.
    pub source: String,
    actions: Vec<Action>,
}

#[derive(Debug, Clone)]
struct Action {
    target: String,
    path: JsonPath,
    description: Option<String>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Update(Value),
    Remove,
}

/// Reads every overlay (`*.yaml`, `*.yml`; hidden files skipped) in `root/dir`, sorted by file
/// name. A missing directory means no overlays. `dir` is how labels name the directory.
pub fn load_dir(root: &Path, dir: &str) -> Result<Vec<Overlay>> {
    let path = root.join(dir);
    let entries = match std::fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot list the overlays in {}", path.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list the overlays in {}", path.display()))?;
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if lossy.starts_with('.') || !(lossy.ends_with(".yaml") || lossy.ends_with(".yml")) {
            continue;
        }
        let Some(name) = name.to_str() else {
            bail!(
                "{dir}/{lossy}: overlay file names must be UTF-8 (they are sorted and named in the generated header); rename it"
            );
        };
        names.push(name.to_owned());
    }
    names.sort();
    names
        .iter()
        .map(|name| {
            let label = format!("{dir}/{name}");
            let text = std::fs::read_to_string(path.join(name))
                .with_context(|| format!("{label}: cannot read the overlay"))?;
            Overlay::parse(&label, text)
        })
        .collect()
}

/// Applies `overlays` to `doc` in order.
pub fn apply_all(doc: &mut Value, overlays: &[Overlay]) -> Result<()> {
    overlays.iter().try_for_each(|overlay| overlay.apply(doc))
}

impl Overlay {
    /// Parses and checks an overlay; `label` names it in errors.
    pub fn parse(label: &str, text: String) -> Result<Overlay> {
        let doc: Value = serde_yaml_ng::from_str(&text).map_err(|err| anyhow!("{label}: malformed YAML: {err}"))?;
        let fail = |what: String| anyhow!("{label}: {what}");
        let Some(root) = doc.as_object() else {
            return Err(fail(format!(
                "not an Overlay document: expected a mapping with `overlay`, `info` and `actions`, found {}",
                kind(&doc)
            )));
        };
        check_fields(root, &["overlay", "info", "extends", "actions"], "the document").map_err(&fail)?;
        match root.get("overlay") {
            Some(Value::String(v)) if v.strip_prefix(SUPPORTED).is_some_and(is_number) => {}
            Some(Value::String(v)) => {
                return Err(fail(format!(
                    "`overlay: {v}` is not supported; this generator implements the Overlay Specification 1.0.x (`overlay: 1.0.0`)"
                )));
            }
            Some(other) => {
                return Err(fail(format!(
                    "`overlay` must be a version string such as \"1.0.0\", found {}",
                    kind(other)
                )));
            }
            None => {
                return Err(fail(
                    "`overlay: 1.0.0` is missing (an Overlay document starts with it)".into(),
                ));
            }
        }
        let info = match root.get("info") {
            Some(Value::Object(info)) => info,
            Some(other) => return Err(fail(format!("`info` must be a mapping, found {}", kind(other)))),
            None => {
                return Err(fail(
                    "`info` (with `title`, `version` and `x-source`) is missing".into(),
                ));
            }
        };
        check_fields(info, &["title", "version"], "`info`").map_err(&fail)?;
        let title = required_str(info, "title", "info").map_err(&fail)?;
        required_str(info, "version", "info").map_err(&fail)?;
        let source = match info.get("x-source") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(fail(
                    "`info.x-source` is missing: say where the overlay's facts come from (a document, its version and where it is published)"
                        .into(),
                ));
            }
        };
        if let Some(extends) = root.get("extends")
            && !extends.is_string()
        {
            return Err(fail(format!("`extends` must be a URI string, found {}", kind(extends))));
        }
        let actions = match root.get("actions") {
            Some(Value::Array(actions)) if !actions.is_empty() => actions,
            Some(Value::Array(_)) => {
                return Err(fail("`actions` is empty; an overlay needs at least one action".into()));
            }
            Some(other) => return Err(fail(format!("`actions` must be a list, found {}", kind(other)))),
            None => return Err(fail("`actions` is missing".into())),
        };
        let actions = actions
            .iter()
            .enumerate()
            .map(|(i, action)| parse_action(action).map_err(|what| fail(format!("actions[{i}]{what}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Overlay {
            label: label.to_owned(),
            text,
            title,
            source,
            actions,
        })
    }

    /// Applies the overlay's actions to `doc`, in order. On error `doc` may be partly changed;
    /// the caller discards it.
    pub fn apply(&self, doc: &mut Value) -> Result<()> {
        let valid_before = validate(doc).is_ok();
        // The first action of the trailing run of actions after which the document was invalid:
        // the one to blame if it is still invalid at the end. (A document may be invalid between
        // two actions: the specification allows removing something and re-creating it.)
        let mut broken_by = None;
        for (i, action) in self.actions.iter().enumerate() {
            self.apply_action(action, doc).map_err(|what| self.error(i, &what))?;
            if valid_before {
                match validate(doc) {
                    Ok(()) => broken_by = None,
                    Err(_) => broken_by = broken_by.or(Some(i)),
                }
            }
        }
        if let (Some(i), Err(problem)) = (broken_by, validate(doc)) {
            return Err(self.error(
                i,
                &format!("leaves an invalid OpenAPI document: {problem}; fix the action's `update`"),
            ));
        }
        Ok(())
    }

    fn error(&self, i: usize, what: &str) -> anyhow::Error {
        let action = &self.actions[i];
        let mut text = format!("{}: actions[{i}]", self.label);
        if let Some(description) = &action.description {
            let first = description.lines().next().unwrap_or_default().trim();
            let _ = write!(text, " ({first:?})");
        }
        let _ = write!(text, ", target `{}`: {what}", action.target);
        anyhow!(text)
    }

    fn apply_action(&self, action: &Action, doc: &mut Value) -> Result<(), String> {
        let mut selected: Vec<NormalizedPath<'_>> = action
            .path
            .query_located(doc)
            .dedup()
            .all()
            .into_iter()
            .map(|node| node.to_location())
            .collect();
        if selected.is_empty() {
            return Err(
                "selects nothing in the document (as the previous actions and overlays left it); fix the target or drop the action"
                    .into(),
            );
        }
        for path in &selected {
            let node = doc.pointer(&path.to_json_pointer()).unwrap_or(&Value::Null);
            if !node.is_object() && !node.is_array() {
                return Err(format!(
                    "selects {} at {path}; Overlay 1.0 targets must be objects or arrays (to change a value, target the object that holds it and `update` that property)",
                    kind(node)
                ));
            }
        }
        // Owned pointers: the borrow of `doc` by the query ends here.
        selected.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
        let selected: Vec<(String, String)> = selected.iter().map(|p| (p.to_json_pointer(), p.to_string())).collect();
        match &action.kind {
            Kind::Remove => {
                // Deepest and last first, so that removing one node never moves another selected one.
                for (pointer, shown) in &selected {
                    remove(doc, pointer).map_err(|what| format!("cannot remove {shown}: {what}"))?;
                }
            }
            Kind::Update(update) => {
                for (pointer, shown) in &selected {
                    let Some(node) = doc.pointer_mut(pointer) else { continue };
                    merge_into_target(node, update, shown)?;
                }
            }
        }
        Ok(())
    }
}

fn parse_action(action: &Value) -> Result<Action, String> {
    let Some(action) = action.as_object() else {
        return Err(format!(": an action must be a mapping, found {}", kind(action)));
    };
    let description = match action.get("description") {
        None => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(other) => return Err(format!(": `description` must be a string, found {}", kind(other))),
    };
    let named = |what: String| match &description {
        Some(d) => format!(" ({:?}): {what}", d.lines().next().unwrap_or_default().trim()),
        None => format!(": {what}"),
    };
    check_fields(action, &["target", "description", "update", "remove"], "the action").map_err(&named)?;
    let target = match action.get("target") {
        Some(Value::String(t)) => t.clone(),
        Some(other) => {
            return Err(named(format!(
                "`target` must be a JSONPath string, found {}",
                kind(other)
            )));
        }
        None => {
            return Err(named(
                "`target` (a JSONPath such as `$.components.schemas`) is missing".into(),
            ));
        }
    };
    let path = JsonPath::parse(&target)
        .map_err(|err| named(format!("target `{target}` is not an RFC 9535 JSONPath: {err}")))?;
    let remove = match action.get("remove") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(named(format!("`remove` must be true or false, found {}", kind(other)))),
    };
    let kind = match (action.get("update"), remove) {
        (Some(_), true) => {
            return Err(named(format!(
                "target `{target}`: has both `update` and `remove: true`; the update would be ignored, keep one"
            )));
        }
        (None, true) => Kind::Remove,
        (Some(update), false) => Kind::Update(update.clone()),
        (None, false) => {
            return Err(named(format!(
                "target `{target}`: does nothing; give it an `update` or `remove: true`"
            )));
        }
    };
    Ok(Action {
        target,
        path,
        description,
        kind,
    })
}

/// Fails on a field that is neither one of `known` nor an `x-` extension.
fn check_fields(object: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), String> {
    match object
        .keys()
        .find(|k| !known.contains(&k.as_str()) && !k.starts_with("x-"))
    {
        Some(field) => Err(format!(
            "{what} has an unknown field `{field}` (allowed: {}, and `x-` extensions)",
            known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )),
        None => Ok(()),
    }
}

fn required_str(object: &Map<String, Value>, field: &str, within: &str) -> Result<String, String> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "`{within}.{field}` must be a string, found {} (quote it)",
            kind(other)
        )),
        None => Err(format!("`{within}.{field}` is missing")),
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// What a value is, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes the node at `pointer` from the object or array that holds it.
fn remove(doc: &mut Value, pointer: &str) -> Result<(), String> {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return Err("the document itself cannot be removed".into());
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer_mut(parent) {
        Some(Value::Object(object)) => {
            object.shift_remove(&key);
            Ok(())
        }
        Some(Value::Array(array)) => match key.parse::<usize>() {
            Ok(index) if index < array.len() => {
                array.remove(index);
                Ok(())
            }
            _ => Err(format!("no element {key} in its array")),
        },
        _ => Err("its parent is gone".into()),
    }
}

/// `update` applied to one selected node (an object or an array).
fn merge_into_target(node: &mut Value, update: &Value, at: &str) -> Result<(), String> {
    match (node, update) {
        (Value::Object(target), Value::Object(update)) => merge_objects(target, update, at),
        (Value::Object(_), other) => Err(format!(
            "selects an object at {at}, so `update` must be a mapping of properties to merge, found {}",
            kind(other)
        )),
        (Value::Array(target), Value::Array(items)) => {
            target.extend(items.iter().cloned());
            Ok(())
        }
        (Value::Array(target), item) => {
            target.push(item.clone());
            Ok(())
        }
        (other, _) => Err(format!("selects {} at {at}; it cannot be updated", kind(other))),
    }
}

fn merge_objects(target: &mut Map<String, Value>, update: &Map<String, Value>, at: &str) -> Result<(), String> {
    for (key, new) in update {
        let here = format!("{at}['{}']", key.replace('\\', "\\\\").replace('\'', "\\'"));
        match target.get_mut(key) {
            None => {
                target.insert(key.clone(), new.clone());
            }
            Some(Value::Object(old)) if new.is_object() => {
                if let Value::Object(new) = new {
                    merge_objects(old, new, &here)?;
                }
            }
            Some(Value::Array(old)) if new.is_array() => {
                if let Value::Array(new) = new {
                    old.extend(new.iter().cloned());
                }
            }
            Some(old) if is_primitive(old) && is_primitive(new) => *old = new.clone(),
            Some(old) => {
                return Err(format!(
                    "cannot merge {} into {} at {here} (a primitive replaces a primitive, arrays are appended, objects merged); remove the property in an earlier action to replace it",
                    kind(new),
                    kind(old)
                ));
            }
        }
    }
    Ok(())
}

fn is_primitive(value: &Value) -> bool {
    !value.is_object() && !value.is_array()
}

/// Whether `doc` is a structurally valid OpenAPI document whose local `$ref`s all resolve.
/// The error names the location.
pub fn validate(doc: &Value) -> Result<(), String> {
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => {}
        _ => return Err("`openapi` (the version, 3.x) is missing or not a string".into()),
    }
    serde_path_to_error::deserialize::<_, openapiv3::OpenAPI>(doc).map_err(|err| {
        let path = err.path().to_string();
        format!("at {path}: {}", err.into_inner())
    })?;
    dangling_ref(doc, doc, &mut String::new())
}

/// Fails on the first `$ref` to `#/…` that points at nothing.
fn dangling_ref(doc: &Value, value: &Value, at: &mut String) -> Result<(), String> {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref")
                && let Some(pointer) = target.strip_prefix('#')
                && doc.pointer(pointer).is_none()
            {
                return Err(format!("at {at}/$ref: `{target}` points at nothing"));
            }
            for (key, child) in object {
                let len = at.len();
                let _ = write!(at, "/{}", key.replace('~', "~0").replace('/', "~1"));
                dangling_ref(doc, child, at)?;
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = at.len();
                let _ = write!(at, "/{i}");
                dangling_ref(doc, child, at)?;
                at.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
