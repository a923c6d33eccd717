//! The status every Gatehouse resource reports.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// A published contract as it is being served.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractStatus {
    /// Contract version.
    pub version: String,
    /// Digest of the contract's compiled routes.
    pub digest: String,
    /// Number of routes.
    pub routes: i32,
}

/// Observed state of a Gateway, EdgeService or Aggregator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// The `metadata.generation` this status describes.
    pub observed_generation: Option<i64>,
    /// `Accepted` (the spec is valid), `ResolvedRefs` (every referenced Service and Aggregator
    /// exists), `Programmed` (the route ConfigMap holds this generation's table) and `Ready`
    /// (the proxy Deployment is available).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Proxy pods that exist.
    pub replicas: Option<i32>,
    /// Proxy pods that are ready.
    pub ready_replicas: Option<i32>,
    /// In-cluster address of the proxy Service (`host:port`).
    pub address: Option<String>,
    /// Number of routes (or endpoints) being served.
    pub routes: Option<i32>,
    /// Digest of the route table being served.
    pub route_table_digest: Option<String>,
    /// Contracts being served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contracts: Vec<ContractStatus>,
}
