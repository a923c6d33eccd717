//! The CRD's CEL rules as admission evaluates them: compiled once, arranged by the schema nodes
//! that carry them, each handed only the fields its text can read.

use serde_json::{Map, Value};

use super::{Step, path_text};
use crate::validate::Problem;

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
pub(super) struct RuleTree {
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
    pub(super) fn new(mut node: kube::core::cel::CompiledSchema) -> Self {
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
    pub(super) fn check<'a>(
        &self,
        value: &'a Value,
        at: &mut Vec<Step<'a>>,
        problems: &mut Vec<Problem>,
    ) {
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
}
