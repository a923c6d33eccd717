//! The proxy's RoleBinding: grants the proxy's Role to the proxy's ServiceAccount, both of the
//! proxy's name, in its namespace.

use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};

use super::Scope;

pub(super) fn render_role_binding(scope: &Scope) -> RoleBinding {
    RoleBinding {
        metadata: scope.metadata(),
        // Immutable once created: it always names the Role of the same name.
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: scope.name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: scope.name.clone(),
            namespace: Some(scope.namespace.clone()),
            ..Subject::default()
        }]),
    }
}
