//! The route ConfigMap: the compiled table under `routes.json`, or gzipped under
//! `routes.json.gz` once it is large ([`gatehouse_api::table_file`]), mounted by the proxy as a
//! directory so that updates reach running pods without a restart.

use std::collections::BTreeMap;

use gatehouse_api::route_table::{RouteTable, digest_of};
use gatehouse_api::table_file::Stored;
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
    let mut config_map = ConfigMap {
        metadata,
        ..ConfigMap::default()
    };
    Stored::pack(bytes).into_config_map(&mut config_map);
    config_map
}
