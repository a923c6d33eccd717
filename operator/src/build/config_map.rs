//! The route ConfigMap: the compiled table under `routes.json`, mounted by the proxy as a
//! directory so that updates reach running pods without a restart.

use std::collections::BTreeMap;

use gatehouse_api::route_table::{FILE_NAME, RouteTable};
use k8s_openapi::api::core::v1::ConfigMap;

use super::{DIGEST_ANNOTATION, Scope};

pub(super) fn render_config_map(scope: &Scope, table: &RouteTable) -> ConfigMap {
    let mut metadata = scope.metadata();
    metadata.annotations = Some(BTreeMap::from([(
        DIGEST_ANNOTATION.to_owned(),
        table.digest(),
    )]));
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(
            FILE_NAME.to_owned(),
            String::from_utf8_lossy(&table.to_bytes()).into_owned(),
        )])),
        ..ConfigMap::default()
    }
}
