//! The status every Gatehouse resource reports.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::contract::ExposureState;

/// A published contract as it is being served.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServedContract {
    /// Contract version.
    pub version: String,
    /// Digest of the contract's compiled routes.
    pub digest: String,
    /// Number of routes.
    pub routes: i32,
}

/// A Contract resource a Gateway or EdgeService exposes, and whether it serves it.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposedContract {
    /// Namespace of the Contract.
    pub namespace: String,
    /// Name of the Contract.
    pub name: String,
    /// The versions served (or, when nothing is, the versions exposed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Whether its routes are served: this generation's, the last good generation's, or none.
    pub state: ExposureState,
    /// Why not this generation, in one CamelCase word: `Invalid`, `UnknownClient`, `Conflict`,
    /// `RefNotPermitted`, `VersionNotFound`.
    pub reason: Option<String>,
    /// The details, with the field path.
    pub message: Option<String>,
    /// The Contract generation whose routes are served.
    pub served_generation: Option<i64>,
}

/// What the ready proxy pods answered when the operator asked each one (its admin `/config`)
/// which route table it serves. `Programmed` is `True` only when `current` equals `ready`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ProxiesStatus {
    /// Ready proxy pods (the ready endpoints of the proxy Service's EndpointSlices); each is
    /// asked which route table it serves.
    #[serde(default)]
    pub ready: i32,
    /// Ready pods serving `routeTableDigest`.
    #[serde(default)]
    pub current: i32,
    /// Ready pods still serving another route table, or none yet.
    #[serde(default)]
    pub stale: i32,
    /// Ready pods that refused `routeTableDigest`; the `Programmed` message carries their error.
    #[serde(default)]
    pub refused: i32,
    /// Ready pods that gave no report (no answer within 2 s, an error, or not a report); the
    /// `Programmed` message names each with the error.
    #[serde(default)]
    pub unreachable: i32,
}

/// Observed state of a Gateway, EdgeService or Aggregator.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// The `metadata.generation` this status describes.
    pub observed_generation: Option<i64>,
    /// `Accepted` (the spec is valid), `ResolvedRefs` (every referenced Service and Aggregator
    /// exists), `Programmed` (every ready proxy pod serves this generation's route table) and
    /// `Ready` (the proxy Deployment is available).
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
    pub contracts: Vec<ServedContract>,
    /// The Contract resources exposed (`spec.expose`), and whether each is served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_contracts: Vec<ExposedContract>,
    /// Which route table the ready proxy pods serve, by count.
    pub proxies: Option<ProxiesStatus>,
    /// Who still calls which contract version: each client's last call of each published or
    /// deprecated version served, to the minute, as the proxy pods saw it; calls older than
    /// the operator's usage window (`--usage-window`, 30 days unless set) are dropped, and at
    /// most the latest 1,000 are kept. A new caller shows within about a minute; a known one's
    /// time is rewritten at most hourly.
    /// Retiring or removing a version called within the window is refused (`VersionInUse`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<crate::usage::VersionUsage>,
}
