//! Aggregator: composite APIs, each endpoint one call that fans out to several backends.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::aggregation::Aggregation;
use super::patterns::*;
use super::route::RouteMatch;
use super::runtime::{DeploymentSettings, ServiceSettings};
use super::status::ProxyStatus;

/// One composite API call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Endpoint name, unique within the Aggregator. Shown in metrics and error responses.
    #[schemars(length(max = MAX_NAME), pattern(DNS_LABEL))]
    pub name: String,
    /// Which requests this endpoint serves.
    #[serde(rename = "match")]
    pub matches: RouteMatch,
    /// The backend calls and the rule that merges them.
    #[serde(flatten)]
    pub aggregation: Aggregation,
}

/// A composite API: endpoints that each call several backends and answer with one payload.
/// Gateways and edges reach it as a backend by name.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "Aggregator",
    doc = "A Gatehouse Aggregator: composite endpoints that fan out to several backends and answer with one payload.",
    namespaced,
    derive = "PartialEq",
    status = "ProxyStatus",
    shortname = "ghagg",
    category = "gatehouse",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Endpoints","type":"integer","jsonPath":".status.routes"}"#,
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".status.address"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 52").message("metadata.name must be a DNS label of at most 52 characters starting with a letter: it names the proxy's Service and Deployment")
)]
#[serde(rename_all = "camelCase")]
pub struct AggregatorSpec {
    /// The composite endpoints; names are unique (the list is keyed by name).
    #[schemars(length(min = 1, max = MAX_ENDPOINTS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub endpoints: Vec<Endpoint>,
    /// The proxy Deployment.
    #[serde(default)]
    pub deployment: DeploymentSettings,
    /// The proxy Service.
    #[serde(default)]
    pub service: ServiceSettings,
}
