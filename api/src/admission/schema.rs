//! The schema's side of admission: the API server's defaulting, its OpenAPI schema as a JSON
//! Schema with strict field validation, and its structural list checks.

use serde_json::{Map, Value};

use super::{Step, path_text};
use crate::validate::Problem;

/// The schema's `default`s, arranged by the nodes that hold them: only the paths that lead to a
/// default are kept, so applying them walks a few fields instead of copying the document.
#[derive(Debug, Default)]
pub(super) struct Defaults {
    /// Declared properties with a default, set when the field is missing or a non-nullable null.
    own: Vec<(String, Value, bool)>,
    /// Declared properties whose subtree holds defaults.
    properties: Vec<(String, Defaults)>,
    items: Option<Box<Defaults>>,
    additional: Option<Box<Defaults>>,
    /// Every declared property, when `additional` applies to the others.
    declared: Vec<String>,
}

impl Defaults {
    pub(super) fn new(schema: &Value) -> Self {
        let mut node = Self::default();
        let preserve =
            schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                if let Some(default) = child.get("default") {
                    let nullable = child.get("nullable") == Some(&Value::Bool(true));
                    node.own.push((name.clone(), default.clone(), nullable));
                }
                let below = Self::new(child);
                if !below.is_empty() {
                    node.properties.push((name.clone(), below));
                }
            }
        }
        let subtree = |key: &str| {
            schema
                .get(key)
                .filter(|s| s.is_object())
                .map(|s| Box::new(Self::new(s)))
                .filter(|d| !d.is_empty())
        };
        node.items = subtree("items");
        node.additional = if preserve {
            None
        } else {
            subtree("additionalProperties")
        };
        node
    }

    fn is_empty(&self) -> bool {
        self.own.is_empty()
            && self.properties.is_empty()
            && self.items.is_none()
            && self.additional.is_none()
    }

    /// Applies the defaults in place, as the API server's structural defaulting does: a default
    /// fills a missing field (or a null one the schema does not allow), then defaults apply
    /// inside every field, defaulted ones included.
    pub(super) fn apply(&self, value: &mut Value) {
        match value {
            Value::Object(fields) => {
                for (name, default, nullable) in &self.own {
                    let missing = match fields.get(name) {
                        None => true,
                        Some(Value::Null) => !nullable,
                        Some(_) => false,
                    };
                    if missing {
                        fields.insert(name.clone(), default.clone());
                    }
                }
                for (name, below) in &self.properties {
                    if let Some(field) = fields.get_mut(name) {
                        below.apply(field);
                    }
                }
                if let Some(below) = &self.additional {
                    for (name, field) in fields.iter_mut() {
                        if !self.declared.contains(name) {
                            below.apply(field);
                        }
                    }
                }
            }
            Value::Array(items) => {
                if let Some(below) = &self.items {
                    items.iter_mut().for_each(|item| below.apply(item));
                }
            }
            _ => {}
        }
    }
}

/// Turns a structural OpenAPI v3 schema into a Draft 4 JSON Schema with the API server's
/// semantics: `nullable` admits null, int-or-string admits both, and objects with declared
/// properties refuse unknown fields (strict field validation).
pub(super) fn to_json_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), to_json_schema(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), to_json_schema(value));
            }
            // CEL rules are evaluated separately; other extensions mean nothing to JSON Schema.
            k if k.starts_with("x-kubernetes-") => {}
            "nullable" | "default" | "description" | "format" => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.insert("type".into(), serde_json::json!(["integer", "string"]));
    }
    if map.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), serde_json::json!([t, "null"]));
    }
    let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if map.contains_key("properties") && !map.contains_key("additionalProperties") && !preserves {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// `/spec/contracts/0/version` → `spec.contracts[0].version`.
pub(super) fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').filter(|p| !p.is_empty()) {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

/// The API server's structural list checks: the items of an `x-kubernetes-list-type: set`
/// and the keys of a `map` list's items must not repeat. Reported as the server reports them
/// (`spec.contracts[0].routes[2]: Duplicate value: map[string]interface {}{"name":"status"}`).
pub(super) fn check_list_types<'a>(
    schema: &Value,
    value: &'a Value,
    at: &mut Vec<Step<'a>>,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            for (name, child) in fields {
                let child_schema = properties.and_then(|p| p.get(name)).or(additional);
                if let Some(child_schema) = child_schema {
                    at.push(Step::Field(name));
                    check_list_types(child_schema, child, at, problems);
                    at.pop();
                }
            }
        }
        Value::Array(items) => {
            let duplicate = |index: usize, shown: String| {
                let mut path = at.clone();
                path.push(Step::Index(index));
                Problem::new(path_text(&path), format!("Duplicate value: {shown}"))
            };
            match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => {
                    for (index, item) in items.iter().enumerate() {
                        if items[..index].contains(item) {
                            problems.push(duplicate(index, go_value(item)));
                        }
                    }
                }
                Some("map") => {
                    let mut keys: Vec<&str> = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    // Go prints a map's entries sorted by key.
                    keys.sort_unstable();
                    let key_of = |item: &Value| -> Vec<(&str, Value)> {
                        keys.iter()
                            .map(|k| (*k, item.get(*k).cloned().unwrap_or(Value::Null)))
                            .collect()
                    };
                    let mut seen = std::collections::BTreeSet::new();
                    for (index, item) in items.iter().enumerate() {
                        let key = key_of(item);
                        if !seen.insert(serde_json::to_string(&key).unwrap_or_default()) {
                            let entries: Vec<String> = key
                                .iter()
                                .map(|(k, v)| {
                                    format!("{}:{}", go_value(&Value::from(*k)), go_value(v))
                                })
                                .collect();
                            let shown =
                                format!("map[string]interface {{}}{{{}}}", entries.join(", "));
                            problems.push(duplicate(index, shown));
                        }
                    }
                }
                _ => {}
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    at.push(Step::Index(index));
                    check_list_types(item_schema, item, at, problems);
                    at.pop();
                }
            }
        }
        _ => {}
    }
}

/// A JSON scalar as Go's `%#v` prints it inside an API server message.
fn go_value(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_default_fills_a_missing_or_disallowed_null_field_and_is_defaulted_inside() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "default": "x"},
                "b": {"type": "string", "nullable": true, "default": "y"},
                "c": {"type": "string", "default": "z"},
                "d": {
                    "type": "object",
                    "default": {},
                    "properties": {"e": {"type": "integer", "default": 1}},
                },
                "m": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"f": {"type": "integer", "default": 2}},
                    },
                },
            },
        });
        let mut value = json!({"a": null, "b": null, "m": {"k": {}}});
        Defaults::new(&schema).apply(&mut value);
        assert_eq!(
            value,
            json!({"a": "x", "b": null, "c": "z", "d": {"e": 1}, "m": {"k": {"f": 2}}})
        );
    }
}
