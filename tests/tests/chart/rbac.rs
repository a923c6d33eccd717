//! The RBAC the chart must grant, exactly as the chart's README lists it, and the flattening of rendered
//! Role/ClusterRole rules into the same shape.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Verbs granted on one (apiGroup, resource).
pub type Rules = BTreeMap<(String, String), BTreeSet<String>>;

/// Every (apiGroup, resource) the operator may touch, and with which verbs: the chart README's RBAC list.
pub fn operator_rules() -> Rules {
    let owned = ["get", "list", "watch", "create", "patch", "delete"].as_slice();
    let read = ["get", "list", "watch"].as_slice();
    let table: [(&str, &[&str], &[&str]); 14] = [
        (
            "gatehouse.dev",
            &["gateways", "edgeservices", "aggregators"],
            &["get", "list", "watch", "patch"],
        ),
        (
            "gatehouse.dev",
            &[
                "gateways/status",
                "edgeservices/status",
                "aggregators/status",
            ],
            &["get", "patch", "update"],
        ),
        // What Gateways and EdgeServices expose: read only, by one watch of each.
        ("gatehouse.dev", &["contracts", "contractgrants"], read),
        // A Contract's status: which gateways expose it (server-side apply).
        ("gatehouse.dev", &["contracts/status"], &["patch"]),
        ("", &["configmaps", "services", "serviceaccounts"], owned),
        ("apps", &["deployments"], owned),
        ("autoscaling", &["horizontalpodautoscalers"], owned),
        ("policy", &["poddisruptionbudgets"], owned),
        ("networking.k8s.io", &["networkpolicies"], owned),
        // Each proxy's Role and RoleBinding.
        (
            "rbac.authorization.k8s.io",
            &["roles", "rolebindings"],
            owned,
        ),
        // Read only: a Role granting a proxy read access to its clients' Secrets can only be
        // created and bound by a subject that holds that access (no `escalate`, no `bind`).
        ("", &["secrets"], read),
        // The proxy Services' EndpointSlices: where the ready proxy pods are.
        ("discovery.k8s.io", &["endpointslices"], read),
        ("", &["events"], &["create", "patch"]),
        ("events.k8s.io", &["events"], &["create", "patch"]),
    ];
    rule_map(table.iter().flat_map(|(group, resources, verbs)| {
        resources
            .iter()
            .map(move |resource| (*group, *resource, *verbs))
    }))
}

/// The leader-election rights: leases only, in the release namespace.
pub fn lease_rules() -> Rules {
    rule_map([(
        "coordination.k8s.io",
        "leases",
        ["get", "create", "update", "patch"].as_slice(),
    )])
}

fn rule_map<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str, &'a [&'a str])>) -> Rules {
    let mut map: Rules = BTreeMap::new();
    for (group, resource, verbs) in entries {
        let entry = map
            .entry((group.to_owned(), resource.to_owned()))
            .or_default();
        entry.extend(verbs.iter().map(|v| (*v).to_owned()));
    }
    map
}

/// The rules of a Role or ClusterRole, flattened to (apiGroup, resource) → verbs. Refuses wildcards,
/// resourceNames and nonResourceURLs, which the chart never needs.
pub fn granted_rules(role: &Value) -> Rules {
    let mut granted: Rules = BTreeMap::new();
    for rule in role["rules"].as_array().expect("rules") {
        let keys: BTreeSet<&str> = rule
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["apiGroups", "resources", "verbs"]),
            "rule {rule}"
        );
        let strings = |field: &str| -> Vec<String> {
            let list = rule[field]
                .as_array()
                .unwrap_or_else(|| panic!("{field} in {rule}"));
            list.iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let verbs = strings("verbs");
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                assert!(
                    !group.contains('*') && !resource.contains('*'),
                    "wildcard in {rule}"
                );
                let entry = granted.entry((group.clone(), resource)).or_default();
                entry.extend(verbs.iter().cloned());
            }
        }
    }
    assert!(
        granted.values().flatten().all(|verb| verb != "*"),
        "wildcard verb in {role}"
    );
    granted
}
