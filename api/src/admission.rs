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
    rules: RuleTree,
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
                let rules = RuleTree::new(kube::core::cel::compile_schema(&schema));
                Compiled {
                    schema,
                    rules,
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

/// The CRD's CEL rules, compiled once, arranged by the schema nodes that carry them.
///
/// kube-cel's own walk converts the value at *every* node it visits, subtree and all, to CEL
/// twice (once to a value, once to bind `self`), which made admission grow with document size
/// times depth. Here each rule-bearing node is handed to kube-cel alone, as a leaf: its value is
/// converted once for its own rules. A leaf converts its children without their schema's format
/// hints (date-time, map-keyed objects); no rule of ours reads such a field below its node.
#[derive(Default)]
struct RuleTree {
    /// This node's rules, as a kube-cel schema with no children.
    rules: Option<kube::core::cel::CompiledSchema>,
    properties: Vec<(String, RuleTree)>,
    items: Option<Box<RuleTree>>,
    additional: Option<Box<RuleTree>>,
    preserve_unknown_fields: bool,
}

impl RuleTree {
    fn new(mut node: kube::core::cel::CompiledSchema) -> Self {
        let mut properties: Vec<(String, RuleTree)> = std::mem::take(&mut node.properties)
            .into_iter()
            .map(|(name, child)| (name, Self::new(child)))
            .filter(|(_, child)| !child.is_empty())
            .collect();
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        let subtree = |child: Option<Box<kube::core::cel::CompiledSchema>>| {
            child
                .map(|child| Box::new(Self::new(*child)))
                .filter(|child| !child.is_empty())
        };
        let items = subtree(node.items.take());
        let additional = subtree(node.additional_properties.take());
        Self {
            preserve_unknown_fields: node.preserve_unknown_fields,
            rules: (!node.validations.is_empty()).then_some(node),
            properties,
            items,
            additional,
        }
    }

    fn is_empty(&self) -> bool {
        self.rules.is_none()
            && self.properties.is_empty()
            && self.items.is_none()
            && self.additional.is_none()
    }

    /// Evaluates every rule that applies to `value` (already defaulted), as the API server does.
    fn check<'a>(&self, value: &'a Value, at: &mut Vec<Step<'a>>, problems: &mut Vec<Problem>) {
        if let Some(rules) = &self.rules
            && let Err(errors) = kube::core::cel::validate_compiled(rules, value, None)
        {
            let base = path_text(at);
            for error in errors {
                let path = match (base.as_str(), error.field_path.as_str()) {
                    (base, "") => base.to_owned(),
                    ("", relative) => relative.to_owned(),
                    (base, relative) if relative.starts_with('[') => format!("{base}{relative}"),
                    (base, relative) => format!("{base}.{relative}"),
                };
                problems.push(Problem::new(path, error.message.clone()));
            }
        }
        match value {
            Value::Object(fields) => {
                for (name, field) in fields {
                    let child = match self
                        .properties
                        .binary_search_by(|(p, _)| p.as_str().cmp(name))
                    {
                        Ok(index) => Some(&self.properties[index].1),
                        Err(_) if !self.preserve_unknown_fields => self.additional.as_deref(),
                        Err(_) => None,
                    };
                    if let Some(child) = child {
                        at.push(Step::Field(name));
                        child.check(field, at, problems);
                        at.pop();
                    }
                }
            }
            Value::Array(items) => {
                if let Some(child) = &self.items {
                    for (index, item) in items.iter().enumerate() {
                        at.push(Step::Index(index));
                        child.check(item, at, problems);
                        at.pop();
                    }
                }
            }
            _ => {}
        }
    }
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
        compiled
            .rules
            .check(&defaulted, &mut Vec::new(), &mut problems);
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}
