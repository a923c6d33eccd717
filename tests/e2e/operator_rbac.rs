//! The operator under test holds exactly the chart's RBAC, not the suite's admin rights: the
//! rules of `deploy/gatehouse.yaml` (rendered from the chart) granted in the test namespace, as
//! the chart's single-namespace mode does, to a ServiceAccount whose token is all the operator
//! process gets. So the API server's RBAC, escalation checks included (the operator creates each
//! proxy's Role and RoleBinding), decides what the operator may do.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use serde_json::{Value, json};

use crate::cluster::{apply, service_account_token, write_kubeconfig};
use crate::operator_process::workspace;

/// The operator's ServiceAccount in the test namespace.
const ACCOUNT: &str = "gatehouse-operator";

/// The rules of the chart's `kind`/`name` object in `deploy/gatehouse.yaml`.
fn chart_rules(kind: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(workspace().join("deploy/gatehouse.yaml")).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    documents
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/gatehouse.yaml has no {kind} {name}"))["rules"]
        .clone()
}

/// Grants the chart's operator rules and leader-election rules in `namespace` to a new
/// ServiceAccount; returns a kubeconfig holding only its token.
pub async fn chart_identity(client: &Client, namespace: &str, dir: &Path) -> PathBuf {
    let account: ServiceAccount = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": ACCOUNT, "namespace": namespace},
    }))
    .unwrap();
    apply(client, namespace, &account).await;
    for (role, rules) in [
        (
            "gatehouse-operator",
            chart_rules("ClusterRole", "gatehouse"),
        ),
        (
            "gatehouse-leader-election",
            chart_rules("Role", "gatehouse-leader-election"),
        ),
    ] {
        let granted: Role = serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": role, "namespace": namespace},
            "rules": rules,
        }))
        .unwrap();
        apply(client, namespace, &granted).await;
        let binding: RoleBinding = serde_json::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}],
        }))
        .unwrap();
        apply(client, namespace, &binding).await;
    }
    let token = service_account_token(client, namespace, ACCOUNT).await;
    std::fs::create_dir_all(dir).unwrap();
    let kubeconfig = dir.join("operator.kubeconfig");
    write_kubeconfig(&kubeconfig, &token, None, namespace);
    kubeconfig
}
