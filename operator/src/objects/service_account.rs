//! The proxy's ServiceAccount: an identity with no API token, since the proxy never calls the
//! API server.

use k8s_openapi::api::core::v1::ServiceAccount;

use super::Scope;

pub(super) fn render_service_account(scope: &Scope) -> ServiceAccount {
    ServiceAccount {
        metadata: scope.metadata(),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}
