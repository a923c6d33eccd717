//! The committed CRD YAML is exactly what the generator prints, and the CRDs are structural
#![allow(clippy::unwrap_used)]
//! schemas a Kubernetes 1.28+ API server accepts.

use std::path::{Path, PathBuf};

use gatehouse_api::crd::{definitions, definitions_yaml};
use serde_json::Value;

/// Every file that holds a copy of the generated CRDs.
fn copies() -> [PathBuf; 2] {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        root.join("crds/gatehouse.yaml"),
        root.join("charts/gatehouse/files/crds.yaml"),
    ]
}

#[test]
fn committed_crds_match_the_generator() {
    let generated = definitions_yaml().expect("CRDs serialise");
    for path in copies() {
        if std::env::var_os("GATEHOUSE_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} differs from `gatehouse-operator crds`; regenerate with \
             `GATEHOUSE_BLESS=1 cargo test -p gatehouse-api --test crds`",
            path.display()
        );
    }
}

/// The fields of `JSONSchemaProps` an API server understands (apiextensions.k8s.io/v1).
const KNOWN_KEYWORDS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "nullable",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// Checks the structural-schema rules the API server enforces on a CRD: every node has a type
/// (or is int-or-string / preserves unknown fields), no `$ref`/`definitions`, only known
/// keywords, no `properties` beside `additionalProperties`, and no `anyOf`/`oneOf`/`allOf`
/// (we use none: the server restricts their shape, and CEL does the same job with a message).
fn check_structural(path: &str, node: &Value, problems: &mut Vec<String>) {
    let Value::Object(map) = node else {
        problems.push(format!("{path}: schema node is not an object"));
        return;
    };
    for key in map.keys() {
        if !KNOWN_KEYWORDS.contains(&key.as_str()) {
            problems.push(format!("{path}: unknown keyword {key}"));
        }
    }
    for combinator in ["anyOf", "oneOf", "allOf", "not"] {
        if map.contains_key(combinator) {
            problems.push(format!("{path}: uses {combinator}"));
        }
    }
    let typed = map.contains_key("type")
        || map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        || map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !typed {
        problems.push(format!("{path}: no type"));
    }
    if map.contains_key("properties") && map.contains_key("additionalProperties") {
        problems.push(format!(
            "{path}: properties and additionalProperties together"
        ));
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (name, child) in props {
            check_structural(&format!("{path}.{name}"), child, problems);
        }
    }
    if let Some(items) = map.get("items") {
        check_structural(&format!("{path}[]"), items, problems);
    }
    if let Some(extra @ Value::Object(_)) = map.get("additionalProperties") {
        check_structural(&format!("{path}{{}}"), extra, problems);
    }
    check_list_type(path, map, problems);
    if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
        for rule in rules {
            let keys: Vec<&str> = rule
                .as_object()
                .map(|r| r.keys().map(String::as_str).collect())
                .unwrap_or_default();
            // `reason`, `fieldPath` and `optionalOldSelf` are newer than 1.28: keep to these.
            if keys
                .iter()
                .any(|k| !["rule", "message", "messageExpression"].contains(k))
            {
                problems.push(format!("{path}: validation rule uses {keys:?}"));
            }
            if rule.get("message").is_none() {
                problems.push(format!("{path}: validation rule without a message"));
            }
        }
    }
}

/// What the API server demands of list types: `map` lists of objects whose keys are scalar
/// properties that are required or defaulted (else it refuses the CRD), keys only on maps.
fn check_list_type(path: &str, map: &serde_json::Map<String, Value>, problems: &mut Vec<String>) {
    let list_type = map.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys = map.get("x-kubernetes-list-map-keys");
    match (list_type, keys) {
        (None, None) | (Some("atomic" | "set"), None) => {}
        (Some("map"), Some(Value::Array(keys))) if !keys.is_empty() => {
            let items = map.get("items").cloned().unwrap_or_default();
            if items.get("type") != Some(&Value::from("object")) {
                problems.push(format!("{path}: list-type map of non-objects"));
            }
            let required = items.get("required").and_then(Value::as_array);
            for key in keys {
                let Some(key) = key.as_str() else {
                    problems.push(format!("{path}: list-map key {key} is not a string"));
                    continue;
                };
                let property = &items["properties"][key];
                let scalar = ["string", "integer", "number", "boolean"]
                    .iter()
                    .any(|t| property.get("type") == Some(&Value::from(*t)));
                let present = required.is_some_and(|r| r.contains(&Value::from(key)))
                    || property.get("default").is_some();
                if !scalar || !present {
                    problems.push(format!(
                        "{path}: list-map key {key} must be a required (or defaulted) scalar"
                    ));
                }
            }
        }
        other => problems.push(format!("{path}: list type {other:?} is not valid")),
    }
}

fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn crds_are_structural_and_use_only_keywords_kubernetes_1_28_knows() {
    for crd in definitions() {
        let mut problems = Vec::new();
        check_structural(&crd.spec.names.kind, &schema_of(&crd), &mut problems);
        assert!(
            problems.is_empty(),
            "{}: {problems:#?}",
            crd.spec.names.kind
        );
    }
}

#[test]
fn crds_have_status_subresource_short_names_category_and_printer_columns() {
    for crd in definitions() {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "gatehouse.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            names.categories.as_deref(),
            Some(&["gatehouse".to_owned()][..])
        );
        assert!(
            names
                .short_names
                .as_ref()
                .is_some_and(|s| s[0].starts_with("gh"))
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version.served && version.storage);
        // What each kind's columns show: the proxy's state, the Contract's versions and who
        // serves it, a grant's age.
        let (has_status, wanted): (bool, &[&str]) = match names.kind.as_str() {
            "Contract" => (true, &["Versions", "Accepted", "Exposed", "Age"]),
            "ContractGrant" => (false, &["Age"]),
            _ => (true, &["Ready", "Replicas", "Address", "Age"]),
        };
        assert_eq!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            has_status,
            "{}",
            names.kind
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for &wanted in wanted {
            assert!(
                columns.contains(&wanted),
                "{} lacks column {wanted}: {columns:?}",
                names.kind
            );
        }
    }
}

/// Every field of every CRD has a description: they are what `kubectl explain` shows.
#[test]
fn every_field_is_documented() {
    fn walk(path: &str, node: &Value, missing: &mut Vec<String>) {
        if let Some(Value::Object(props)) = node.get("properties") {
            for (name, child) in props {
                let here = format!("{path}.{name}");
                let skip = path.is_empty()
                    && ["apiVersion", "kind", "metadata"].contains(&name.as_str())
                    || here.starts_with(".status.conditions");
                if !skip && child.get("description").is_none() {
                    missing.push(here.clone());
                }
                walk(&here, child, missing);
            }
        }
        if let Some(items) = node.get("items") {
            walk(path, items, missing);
        }
    }
    for crd in definitions() {
        let mut missing = Vec::new();
        walk("", &schema_of(&crd), &mut missing);
        assert!(
            missing.is_empty(),
            "{}: undocumented {missing:#?}",
            crd.spec.names.kind
        );
    }
}

/// A conservative stand-in for the API server's CEL cost estimate: a rule on a list costs
/// items² × 10 when it nests two comprehensions, items × 10 with one, and 10 otherwise; it runs
/// once per possible instance (the product of the enclosing lists' maxItems). The server refuses
/// a CRD whose rules could cost more than 100,000,000 together, and refuses any rule that
/// iterates an unbounded list; we stay far below with explicit bounds on every list.
#[test]
fn cel_rules_iterate_only_bounded_lists_and_stay_inside_the_cost_budget() {
    fn walk(
        path: &str,
        node: &Value,
        cardinality: u64,
        total: &mut u64,
        problems: &mut Vec<String>,
    ) {
        let max_items = node.get("maxItems").and_then(Value::as_u64);
        if let Some(Value::Array(rules)) = node.get("x-kubernetes-validations") {
            for rule in rules {
                let text = rule["rule"].as_str().unwrap_or_default();
                let comprehensions = ["all(", "exists(", "exists_one(", "map(", "filter("]
                    .iter()
                    .map(|m| text.matches(m).count() as u32)
                    .sum::<u32>();
                let iterates_self = text.starts_with("self.all") || text.starts_with("self.exists");
                let cost = match (iterates_self, max_items) {
                    (true, None) => {
                        problems.push(format!(
                            "{path}: rule {text:?} iterates a list with no maxItems"
                        ));
                        0
                    }
                    (true, Some(n)) => n.pow(comprehensions) * 10,
                    (false, _) => 10 * u64::from(comprehensions.max(1)),
                };
                *total += cost * cardinality;
            }
        }
        if let Some(Value::Object(props)) = node.get("properties") {
            for (name, child) in props {
                walk(
                    &format!("{path}.{name}"),
                    child,
                    cardinality,
                    total,
                    problems,
                );
            }
        }
        if let Some(items) = node.get("items") {
            let n = max_items.unwrap_or(u64::MAX / 1_000_000_000);
            walk(
                &format!("{path}[]"),
                items,
                cardinality.saturating_mul(n),
                total,
                problems,
            );
        }
    }
    for crd in definitions() {
        let (mut total, mut problems) = (0, Vec::new());
        walk(
            &crd.spec.names.kind,
            &schema_of(&crd),
            1,
            &mut total,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:#?}");
        assert!(
            total < 50_000_000,
            "{}: estimated CEL cost {total}",
            crd.spec.names.kind
        );
    }
}
