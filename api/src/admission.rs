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
    defaults: Defaults,
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
                    defaults: Defaults::new(&schema),
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
///
/// Nor does a rule get fields it cannot read: an object node's rules are handed only the fields
/// their text names ([`View`]), so the root rule on `metadata.name` no longer converts the whole
/// spec, nor a route's rules its aggregation steps.
#[derive(Default)]
struct RuleTree {
    /// This node's rules, as a kube-cel schema with no children.
    rules: Option<kube::core::cel::CompiledSchema>,
    /// Which of the node's fields its rules can read; `None`: the whole value.
    view: Option<View>,
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
        let view = if node.is_map || node.preserve_unknown_fields {
            None
        } else {
            View::of(&node)
        };
        Self {
            view,
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
        let viewed;
        let seen = match &self.view {
            Some(view) => {
                viewed = view.apply(value);
                viewed.as_ref().unwrap_or(value)
            }
            None => value,
        };
        if let Some(rules) = &self.rules
            && let Err(errors) = kube::core::cel::validate_compiled(rules, seen, None)
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

/// The schema's `default`s, arranged by the nodes that hold them: only the paths that lead to a
/// default are kept, so applying them walks a few fields instead of copying the document.
#[derive(Debug, Default)]
struct Defaults {
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
    fn new(schema: &Value) -> Self {
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
    fn apply(&self, value: &mut Value) {
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

/// How much of one field an object node's rules can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldUse {
    /// Named only as `has(self.NAME)`: the rules see that it is there, not what it holds.
    Presence,
    /// Named otherwise: the rules get it whole.
    Whole,
}

/// The fields of an object that its node's rules can read, worked out once from the rules' text.
///
/// CEL reaches an object's declared field only by its name (`self.name`, or `self.__name__`
/// for a CEL keyword), so a field whose name is not a token of any rule or message expression
/// cannot change the outcome and is left out; one named only inside `has(self.NAME)` is
/// replaced by an empty value of the same JSON kind. Any doubt keeps the whole value: a rule
/// that uses `self` other than as `self.` (`self == …`, `size(self)`) or `oldSelf` keeps all
/// of it, a field whose name CEL must escape is kept, and a name that also appears as a
/// variable, function or inside a string literal only keeps more than needed.
#[derive(Debug)]
struct View {
    /// Sorted by name; fields not listed are hidden.
    fields: Vec<(String, FieldUse)>,
}

impl View {
    fn of(node: &kube::core::cel::CompiledSchema) -> Option<Self> {
        let mut texts = Vec::new();
        for validation in &node.validations {
            // A rule that did not compile is reported by kube-cel with the whole value.
            let compiled = validation.as_ref().ok()?;
            texts.push(compiled.rule.rule.as_str());
            texts.extend(compiled.rule.message_expression.as_deref());
        }
        let mut fields: Vec<(String, FieldUse)> = Vec::new();
        for text in texts {
            for (at, token) in identifiers(text) {
                let after = &text[at + token.len()..];
                if token == "oldSelf" || (token == "self" && !after.starts_with('.')) {
                    return None;
                }
                // `__name__` is how CEL spells a field named like a keyword.
                let name = token
                    .strip_prefix("__")
                    .and_then(|t| t.strip_suffix("__"))
                    .unwrap_or(token);
                let usage = if text[..at].ends_with("has(self.") && after.starts_with(')') {
                    FieldUse::Presence
                } else {
                    FieldUse::Whole
                };
                match fields.iter_mut().find(|(n, _)| n == name) {
                    Some((_, known)) if usage == FieldUse::Whole => *known = FieldUse::Whole,
                    Some(_) => {}
                    None => fields.push((name.to_owned(), usage)),
                }
            }
        }
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Some(Self { fields })
    }

    /// The part of `value` the rules can read; `None` when that is all of it.
    fn apply(&self, value: &Value) -> Option<Value> {
        let Value::Object(object) = value else {
            return None;
        };
        let mut seen = Map::new();
        for (name, field) in object {
            let plain =
                !name.contains("__") && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let usage = match self.fields.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                Ok(index) => Some(self.fields[index].1),
                // Escaped in CEL (`__dash__`, `__dot__`…): keep it rather than match spellings.
                Err(_) if !plain => Some(FieldUse::Whole),
                Err(_) => None,
            };
            match usage {
                Some(FieldUse::Whole) => {
                    seen.insert(name.clone(), field.clone());
                }
                Some(FieldUse::Presence) => {
                    seen.insert(name.clone(), empty_like(field));
                }
                None => {}
            }
        }
        Some(Value::Object(seen))
    }
}

/// An empty value of the same JSON kind.
fn empty_like(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Bool(_) => Value::Bool(false),
        Value::Number(_) => Value::from(0),
        Value::String(_) => Value::String(String::new()),
        Value::Array(_) => Value::Array(Vec::new()),
        Value::Object(_) => Value::Object(Map::new()),
    }
}

/// The identifier tokens of a CEL text with their byte offsets (string literals included: a
/// name inside a literal only makes a field look used, never hidden).
fn identifiers(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = None;
    let bytes = text.as_bytes();
    (0..=bytes.len()).filter_map(move |index| {
        let ident = bytes
            .get(index)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
        match (ident, start) {
            (true, None) => {
                start = Some(index);
                None
            }
            (false, Some(from)) => {
                start = None;
                Some((from, &text[from..index]))
            }
            _ => None,
        }
    })
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

/// Checks a resource as the API server would: schema first, then — only when the schema
/// holds, as the server does — the schema's defaults and the CEL rules. Returns every problem.
/// `object` is left as the server would store it: defaulted when admitted.
pub fn admit(kind: Kind, object: &mut Value) -> Result<(), Vec<Problem>> {
    let compiled = compiled(kind);
    // `is_valid` is the cheap check; the errors are collected only for an object that fails it.
    let mut problems: Vec<Problem> = if compiled.validator.is_valid(object) {
        Vec::new()
    } else {
        compiled
            .validator
            .iter_errors(object)
            .map(|error| {
                Problem::new(
                    field_path(error.instance_path().as_str()),
                    error.to_string(),
                )
            })
            .collect()
    };
    check_list_types(&compiled.schema, object, &mut Vec::new(), &mut problems);
    if problems.is_empty() {
        // Defaults first, as the server applies them before it runs the rules.
        compiled.defaults.apply(object);
        compiled.rules.check(object, &mut Vec::new(), &mut problems);
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn view(rules: &[&str]) -> Option<View> {
        let schema = json!({
            "type": "object",
            "properties": {
                "backend": {"type": "object"},
                "backends": {"type": "array", "items": {"type": "object"}},
                "name": {"type": "string"},
                "steps": {"type": "array", "items": {"type": "object"}},
            },
            "x-kubernetes-validations": rules
                .iter()
                .map(|rule| json!({"rule": rule, "message": "m"}))
                .collect::<Vec<_>>(),
        });
        View::of(&kube::core::cel::compile_schema(&schema))
    }

    #[test]
    fn a_view_holds_only_the_fields_its_rules_name() {
        let value = json!({
            "backend": {"service": "a", "port": 80},
            "backends": [{"service": "b"}],
            "name": "x",
            "steps": [{"name": "s"}],
            "a-b": "escaped in CEL, so kept",
        });
        let only_presence = view(&["has(self.backend) != has(self.backends)"]).unwrap();
        assert_eq!(
            only_presence.apply(&value),
            Some(json!({"backend": {}, "backends": [], "a-b": "escaped in CEL, so kept"}))
        );
        // A field read anywhere else, by any rule of the node, is handed over whole.
        let read = view(&[
            "has(self.backend)",
            "!has(self.backend.port) || self.name != ''",
        ]);
        assert_eq!(
            read.unwrap().apply(&value),
            Some(json!({
                "backend": {"service": "a", "port": 80},
                "name": "x",
                "a-b": "escaped in CEL, so kept",
            }))
        );
    }

    #[test]
    fn a_rule_that_reads_self_whole_sees_the_whole_value() {
        assert!(view(&["size(self) > 0"]).is_none());
        assert!(view(&["has(self.name)", "self == oldSelf"]).is_none());
        let value = json!({"name": "x"});
        let whole = view(&["has(self.name)"]).unwrap();
        assert_eq!(whole.apply(&json!(["not", "an", "object"])), None);
        assert_eq!(whole.apply(&value), Some(json!({"name": ""})));
    }

    #[test]
    fn defaults_apply_in_place_as_the_schema_walk_applies_them() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut checked = 0;
        for dir in ["gateway", "edge", "aggregator"] {
            for file in std::fs::read_dir(examples.join(dir)).unwrap() {
                let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
                let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
                for mut document in documents.into_iter().filter(|d| !d.is_null()) {
                    let kind = match document["kind"].as_str() {
                        Some("Gateway") => Kind::Gateway,
                        Some("EdgeService") => Kind::EdgeService,
                        Some("Aggregator") => Kind::Aggregator,
                        _ => continue,
                    };
                    let compiled = compiled(kind);
                    let expected = kube::core::cel::apply_defaults(&compiled.schema, &document);
                    assert_ne!(expected, document, "the example sets every default itself");
                    compiled.defaults.apply(&mut document);
                    assert_eq!(document, expected);
                    checked += 1;
                }
            }
        }
        assert!(checked >= 3, "{checked}");
    }

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
