//! Offline admission: check a resource the way the Kubernetes API server does before it stores
//! it — schema defaults, OpenAPI schema (with strict field validation, as `kubectl apply` asks
//! for), then the CRD's CEL rules — and then the checks of [`crate::validate`].
//!
//! Standalone mode uses it so that a file the cluster would refuse is refused without one too,
//! and the tests use it to prove every rule of the generated CRDs on real YAML. The schema's
//! side (defaults, the JSON Schema, list types) is `schema.rs`; the CEL rules are `cel.rs`.

mod cel;
mod schema;

use std::sync::OnceLock;

use serde_json::Value;

use crate::crd::{CrdKind, definitions};
use crate::validate::Problem;
use cel::RuleTree;
use schema::{Defaults, check_list_types, field_path, to_json_schema};

struct Compiled {
    schema: Value,
    defaults: Defaults,
    rules: RuleTree,
    validator: jsonschema::Validator,
}

fn compiled(kind: CrdKind) -> &'static Compiled {
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
    &all[kind.index()]
}

/// One step of a field path: a property or a list index.
#[derive(Clone, Copy)]
pub(super) enum Step<'a> {
    Field(&'a str),
    Index(usize),
}

pub(super) fn path_text(steps: &[Step<'_>]) -> String {
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

/// Checks a resource as the API server would: schema first, then — only when the schema
/// holds, as the server does — the schema's defaults and the CEL rules. Returns every problem.
/// `object` is left as the server would store it: defaulted when admitted.
pub fn admit(kind: impl Into<CrdKind>, object: &mut Value) -> Result<(), Vec<Problem>> {
    let compiled = compiled(kind.into());
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
    use super::*;

    #[test]
    fn defaults_apply_in_place_as_the_schema_walk_applies_them() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let (mut checked, mut defaulted) = (0, 0);
        for dir in ["gateway", "edge", "aggregator", "contracts"] {
            for file in std::fs::read_dir(examples.join(dir)).unwrap() {
                let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
                let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
                for mut document in documents.into_iter().filter(|d| !d.is_null()) {
                    let Some(kind) = document["kind"].as_str().and_then(CrdKind::parse) else {
                        continue;
                    };
                    let compiled = compiled(kind);
                    let expected = kube::core::cel::apply_defaults(&compiled.schema, &document);
                    if expected != document {
                        defaulted += 1;
                    }
                    compiled.defaults.apply(&mut document);
                    assert_eq!(document, expected);
                    checked += 1;
                }
            }
        }
        // Most examples leave some default to the schema, so the walk has work to do.
        assert!(
            checked >= 10 && defaulted * 2 > checked,
            "{defaulted} of {checked}"
        );
    }
}
