//! The proxy's Role (`rbac.authorization.k8s.io/v1`): read access, by `resourceNames`, to exactly
//! the objects the proxy watches through the API — its route ConfigMap (named like the proxy) and
//! the client Secrets its table names (API keys, JWKS) — and to nothing else of the namespace.
//!
//! `resourceNames` permits `get`, and `list`/`watch` only with a `metadata.name` field selector,
//! which is how the proxy watches. A rule with an empty `resourceNames` would grant every object
//! of its kind, so the Secret rule exists only when the table names a Secret.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::{PolicyRule, Role};

use super::Scope;

/// `get`, and `list`/`watch` of the named objects: what a watch with a field selector needs.
fn read(resource: &str, names: Vec<String>) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec![resource.to_owned()]),
        resource_names: Some(names),
        verbs: ["get", "list", "watch"].map(str::to_owned).to_vec(),
        ..PolicyRule::default()
    }
}

pub(super) fn render_role(scope: &Scope, secrets: &BTreeSet<String>) -> Role {
    let mut rules = vec![read("configmaps", vec![scope.name.clone()])];
    if !secrets.is_empty() {
        rules.push(read("secrets", secrets.iter().cloned().collect()));
    }
    Role {
        metadata: scope.metadata(),
        rules: Some(rules),
    }
}
