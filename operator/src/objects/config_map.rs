//! The route ConfigMap: the compiled table under `routes.json`, mounted by the proxy as a
//! directory so that updates reach running pods without a restart.

use std::collections::BTreeMap;

use gatehouse_api::route_table::{FILE_NAME, RouteTable, digest_of};
use k8s_openapi::api::core::v1::ConfigMap;

use super::{DIGEST_ANNOTATION, Scope};

pub(super) fn render_config_map(scope: &Scope, table: &RouteTable) -> ConfigMap {
    // Serialised once, for both the digest and the data (the table can be megabytes).
    let bytes = table.to_bytes();
    let mut metadata = scope.metadata();
    metadata.annotations = Some(BTreeMap::from([(
        DIGEST_ANNOTATION.to_owned(),
        digest_of(&bytes),
    )]));
    // serde_json writes UTF-8; the lossy path is never taken.
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    ConfigMap {
        metadata,
        data: Some(BTreeMap::from([(FILE_NAME.to_owned(), text)])),
        ..ConfigMap::default()
    }
}
