//! Gateway and EdgeService: contract-driven proxies, system-wide or for one client.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::access::{Access, ClientAddress, RequestLimits};
use super::client::Client;
use super::contract::{ContractExposure, ContractVersion};
use super::lifecycle::{INLINE_PUBLISHED_KEPT_RULE, PUBLISHED_KEPT_MESSAGE};
use super::listeners::Listeners;
use super::patterns::*;
use super::redis::RedisStore;
use super::runtime::{DeploymentSettings, ServiceSettings};
use super::status::ProxyStatus;

/// The system-wide gateway: one contract-driven entry point for every client.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "Gateway",
    doc = "A Gatehouse Gateway: the system-wide, contract-driven entry point for every client.",
    namespaced,
    derive = "PartialEq",
    status = "ProxyStatus",
    shortname = "ghgw",
    category = "gatehouse",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Routes","type":"integer","jsonPath":".status.routes"}"#,
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".status.address"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 52").message("metadata.name must be a DNS label of at most 52 characters starting with a letter: it names the proxy's Service and Deployment")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.contracts) || has(self.expose)").message("publish contracts inline (contracts), expose Contract resources (expose), or both"))]
#[x_kube(validation = Rule::new(INLINE_PUBLISHED_KEPT_RULE).message(PUBLISHED_KEPT_MESSAGE))]
#[x_kube(validation = Rule::new("!has(self.clients) || !self.clients.exists(c, has(c.clientCertificate)) || (has(self.listeners) && has(self.listeners.https))").message("a client recognised by clientCertificate needs listeners.https"))]
pub struct GatewaySpec {
    /// The clients this gateway serves and how each is recognised; names are unique (the list
    /// is keyed by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CLIENTS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub clients: Vec<Client>,
    /// Contracts published inline, one per version (the list is keyed by version). They are
    /// the resource's own: an exposed Contract never replaces their routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = MAX_CONTRACTS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["version"]))]
    pub contracts: Vec<ContractVersion>,
    /// Contract resources served here, by name or by labels. Where two contracts claim the
    /// same requests, the older one (by creation, then namespace/name) is served and the newer
    /// one is not, in both statuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = MAX_EXPOSURES))]
    pub expose: Vec<ContractExposure>,
    /// The proxy Deployment.
    #[serde(default)]
    pub deployment: DeploymentSettings,
    /// The proxy Service.
    #[serde(default)]
    pub service: ServiceSettings,
    /// What the proxy listens on: HTTPS, plain HTTP, or both. Defaults to plain HTTP on
    /// `service.port`.
    pub listeners: Option<Listeners>,
    /// Source addresses every route serves (`access.sourceRanges`); which clients may call
    /// what is set on contracts and routes.
    #[x_kube(validation = Rule::new("!has(self.clients) || size(self.clients) == 0").message("access.clients is set on contracts and routes; at the gateway, every client of spec.clients may call"))]
    pub access: Option<Access>,
    /// How the caller's address is found when proxies stand in front of the gateway. Unset:
    /// the connection's peer.
    pub client_address: Option<ClientAddress>,
    /// Limits on every request; a contract's or a route's own override them.
    pub limits: Option<RequestLimits>,
    /// The Redis server of the clients' `scope: Global` rate limits. Unset: the operator's
    /// default (the chart's `redis` values); a global limit with neither is not accepted.
    pub redis: Option<RedisStore>,
}

/// A gateway for one client (backend for frontend): its own contracts, isolated and scaled on
/// its own.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "EdgeService",
    doc = "A Gatehouse EdgeService: a gateway for one client, with its own contracts and scaling.",
    namespaced,
    derive = "PartialEq",
    status = "ProxyStatus",
    shortname = "ghedge",
    category = "gatehouse",
    printcolumn = r#"{"name":"Client","type":"string","jsonPath":".spec.client.name"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Routes","type":"integer","jsonPath":".status.routes"}"#,
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".status.address"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 52").message("metadata.name must be a DNS label of at most 52 characters starting with a letter: it names the proxy's Service and Deployment")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.contracts) || has(self.expose)").message("publish contracts inline (contracts), expose Contract resources (expose), or both"))]
#[x_kube(validation = Rule::new(INLINE_PUBLISHED_KEPT_RULE).message(PUBLISHED_KEPT_MESSAGE))]
#[x_kube(validation = Rule::new("!has(self.client.clientCertificate) || (has(self.listeners) && has(self.listeners.https))").message("a client recognised by clientCertificate needs listeners.https"))]
pub struct EdgeServiceSpec {
    /// The one client this edge serves.
    pub client: Client,
    /// Contracts published inline, one per version (the list is keyed by version). They are
    /// the resource's own: an exposed Contract never replaces their routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = MAX_CONTRACTS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["version"]))]
    pub contracts: Vec<ContractVersion>,
    /// Contract resources served here, by name or by labels. Where two contracts claim the
    /// same requests, the older one (by creation, then namespace/name) is served and the newer
    /// one is not, in both statuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = MAX_EXPOSURES))]
    pub expose: Vec<ContractExposure>,
    /// The proxy Deployment.
    #[serde(default)]
    pub deployment: DeploymentSettings,
    /// The proxy Service.
    #[serde(default)]
    pub service: ServiceSettings,
    /// What the proxy listens on: HTTPS, plain HTTP, or both. Defaults to plain HTTP on
    /// `service.port`.
    pub listeners: Option<Listeners>,
    /// Source addresses every route serves (`access.sourceRanges`); which clients may call
    /// what is set on contracts and routes.
    #[x_kube(validation = Rule::new("!has(self.clients) || size(self.clients) == 0").message("access.clients is set on contracts and routes; at the gateway, every client of spec.clients may call"))]
    pub access: Option<Access>,
    /// How the caller's address is found when proxies stand in front of the gateway. Unset:
    /// the connection's peer.
    pub client_address: Option<ClientAddress>,
    /// Limits on every request; a contract's or a route's own override them.
    pub limits: Option<RequestLimits>,
    /// The Redis server of the clients' `scope: Global` rate limits. Unset: the operator's
    /// default (the chart's `redis` values); a global limit with neither is not accepted.
    pub redis: Option<RedisStore>,
}
