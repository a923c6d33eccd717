//! Offline admission: check a resource the way the Kubernetes API server does before it stores
//! it — schema defaults, OpenAPI schema (with strict field validation, as `kubectl apply` asks
//! for), then the CRD's CEL rules — and then the checks of [`crate::validate`].
//!
//! Standalone mode uses it so that a file the cluster would refuse is refused without one too,
//! and the tests use it to prove every rule of the generated CRDs on real YAML.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::crd::definitions;
use crate::naming::Kind;
use crate::validate::Problem;

struct Compiled {
    schema: Value,
    cel: kube::core::cel::CompiledSchema,
    validator: jsonschema::Validator,
}

fn compiled(kind: Kind) -> &'static Compiled {
    static SCHEMAS: OnceLock<Vec<Compiled>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        definitions()
            .into_iter()
            .map(|crd| {
                let schema = crd.spec.versions[0]
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .map(|s| serde_json::to_value(s).unwrap_or_default())
                    .unwrap_or_default();
                let mut strict = to_json_schema(&schema);
                // The server knows these of every object; the CRD schema does not list them.
                if let Some(Value::Object(props)) = strict.get_mut("properties") {
                    props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
                    props.insert("kind".into(), serde_json::json!({"type": "string"}));
                    props.insert("metadata".into(), serde_json::json!({"type": "object"}));
                }
                // The generated schema is a plain JSON Schema: building a validator from it
                // can only fail on a bug in `to_json_schema`, which the tests exercise.
                let validator = jsonschema::draft4::new(&strict)
                    .unwrap_or_else(|e| panic!("CRD schema is not a valid JSON Schema: {e}"));
                // CEL rules are parsed once here, not at every admission.
                let mut cel = kube::core::cel::compile_schema(&schema);
                keep_rule_paths(&mut cel);
                Compiled {
                    schema,
                    cel,
                    validator,
                }
            })
            .collect()
    });
    &all[match kind {
        Kind::Gateway => 0,
        Kind::EdgeService => 1,
        Kind::Aggregator => 2,
    }]
}

/// Drops the parts of the compiled CEL tree that hold no rule. kube-cel converts the value of
/// every node it visits, subtree and all, to CEL; visiting only rule-bearing nodes and their
/// ancestors keeps that from scaling with the depth of the whole document. A dropped subtree is
/// still converted as part of its parent (without format hints: our rules read no date-time or
/// map-keyed field there), and the schema defaults are applied from the full schema beforehand.
/// Returns whether `node` holds a rule.
fn keep_rule_paths(node: &mut kube::core::cel::CompiledSchema) -> bool {
    node.properties.retain(|_, child| keep_rule_paths(child));
    if node
        .items
        .as_mut()
        .is_some_and(|items| !keep_rule_paths(items))
    {
        node.items = None;
    }
    if node
        .additional_properties
        .as_mut()
        .is_some_and(|extra| !keep_rule_paths(extra))
    {
        node.additional_properties = None;
    }
    !node.validations.is_empty()
        || !node.properties.is_empty()
        || node.items.is_some()
        || node.additional_properties.is_some()
}

/// Turns a structural OpenAPI v3 schema into a Draft 4 JSON Schema with the API server's
/// semantics: `nullable` admits null, int-or-string admits both, and objects with declared
/// properties refuse unknown fields (strict field validation).
fn to_json_schema(schema: &Value) -> Value {
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
fn field_path(pointer: &str) -> String {
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

/// One step of a field path: a property or a list index.
#[derive(Clone, Copy)]
enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

fn path_text(steps: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// The API server's structural list checks: the items of an `x-kubernetes-list-type: set`
/// and the keys of a `map` list's items must not repeat. Reported as the server reports them
/// (`spec.contracts[0].routes[2]: Duplicate value: map[string]interface {}{"name":"status"}`).
fn check_list_types<'a>(
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

/// Checks a resource as the API server would: schema first (defaults applied), then — only
/// when the schema holds, as the server does — the CEL rules. Returns every problem.
pub fn admit(kind: Kind, object: &Value) -> Result<(), Vec<Problem>> {
    let compiled = compiled(kind);
    let mut problems: Vec<Problem> = compiled
        .validator
        .iter_errors(object)
        .map(|error| {
            Problem::new(
                field_path(error.instance_path().as_str()),
                error.to_string(),
            )
        })
        .collect();
    check_list_types(&compiled.schema, object, &mut Vec::new(), &mut problems);
    if problems.is_empty() {
        // Defaults first, as the server applies them before it runs the rules.
        let defaulted = kube::core::cel::apply_defaults(&compiled.schema, object);
        if let Err(errors) = kube::core::cel::validate_compiled(&compiled.cel, &defaulted, None) {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| Problem::new(e.field_path.clone(), e.message.clone())),
            );
        }
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
