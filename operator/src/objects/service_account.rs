//! The proxy's ServiceAccount: the identity its Role is bound to. It does not mount its token
//! into every pod that uses it (`automountServiceAccountToken: false`); the proxy pods, which
//! watch their ConfigMap and Secrets through the API, ask for it in their own spec.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::Scope;

pub(super) fn render_service_account(scope: &Scope) -> ServiceAccount {
    ServiceAccount {
        metadata: scope.metadata(),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
