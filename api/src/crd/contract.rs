//! Contracts: the versioned APIs a team publishes, as a block inside a Gateway or EdgeService
//! or as a `Contract` resource of their own that gateways expose, and the `ContractGrant` that
//! lets gateways of other namespaces expose a namespace's Contracts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::access::{Access, RequestLimits};
use super::cors::Cors;
use super::lifecycle::{Deprecation, Lifecycle, PUBLISHED_KEPT_MESSAGE};
use super::patterns::*;
use super::route::Route;

/// One version of a published contract: its routes under one base path. Clients call
/// `BASEPATH/ROUTEPATH`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.lifecycle != 'Deprecated' || has(self.deprecation)").message("a Deprecated version announces it: set deprecation (since, and a sunset if there is one)"))]
#[x_kube(validation = Rule::new("!has(self.deprecation) || self.lifecycle == 'Deprecated' || self.lifecycle == 'Retired'").message("deprecation applies to a Deprecated or Retired version; set lifecycle: Deprecated"))]
#[x_kube(validation = Rule::new("oldSelf.lifecycle == 'Draft' || self.lifecycle != 'Draft'").message("a published version cannot become a Draft again: its clients rely on it; publish the change as a new version"))]
#[x_kube(validation = Rule::new("oldSelf.lifecycle != 'Published' || self.lifecycle != 'Retired'").message("a Published version is retired only once Deprecated: set lifecycle: Deprecated (with deprecation) first"))]
#[x_kube(validation = Rule::new("oldSelf.lifecycle == 'Draft' || oldSelf.lifecycle == 'Retired' || (has(self.basePath) ? self.basePath : '/' + self.version) == (has(oldSelf.basePath) ? oldSelf.basePath : '/' + oldSelf.version)").message("the basePath of a published version cannot change: every route's path would; publish a new version instead"))]
#[x_kube(validation = Rule::new("oldSelf.lifecycle == 'Draft' || oldSelf.lifecycle == 'Retired' || oldSelf.routes.all(o, has(o.deprecation) || self.routes.exists(n, n.name == o.name))").message("a route of a published version cannot be removed or renamed: deprecate it first, or publish a new version"))]
pub struct ContractVersion {
    /// Contract version: `v1`, `v2`, `v2beta1`…
    #[schemars(length(max = 32), pattern(CONTRACT_VERSION))]
    pub version: String,
    /// Path prefix of every route in this contract. Defaults to `/VERSION` (e.g. `/v1`); `/`
    /// serves the routes unprefixed.
    #[schemars(length(min = 1, max = 256), pattern(PATH_TEMPLATE))]
    pub base_path: Option<String>,
    /// The routes; names are unique within the contract (the list is keyed by name).
    #[schemars(length(min = 1, max = MAX_ROUTES))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub routes: Vec<Route>,
    /// Who may call this contract's routes (clients, source addresses), on top of the
    /// gateway's `access`.
    pub access: Option<Access>,
    /// Limits on this contract's requests; a route's own override them.
    pub limits: Option<RequestLimits>,
    /// What browsers may do across origins on this contract's routes; a route's own `cors`
    /// replaces it.
    pub cors: Option<Cors>,
    /// Where this version is in its life: `Draft` (the default: served, free to change),
    /// `Published` (changes only passively), `Deprecated` (announced on every response; set
    /// `deprecation`) or `Retired` (every route answers `410 Gone`).
    #[serde(default, skip_serializing_if = "Lifecycle::is_draft")]
    #[schemars(extend("default" = "Draft"))]
    pub lifecycle: Lifecycle,
    /// The deprecation of this version, announced on every response of it: for a
    /// `Deprecated` or `Retired` version.
    pub deprecation: Option<Deprecation>,
}

/// An API a team publishes on its own, for gateways and edges to expose: its versions, each
/// with a base path and routes exactly as a gateway's inline `contracts` have them.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "Contract",
    doc = "A Gatehouse Contract: a versioned API a team publishes, served by the Gateways and EdgeServices that expose it.",
    namespaced,
    derive = "PartialEq",
    status = "ContractStatus",
    shortname = "ghc",
    category = "gatehouse",
    printcolumn = r#"{"name":"Versions","type":"string","jsonPath":".status.versions"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Exposed","type":"integer","jsonPath":".status.exposedCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("oldSelf.versions.all(o, o.lifecycle != 'Published' || self.versions.exists(n, n.version == o.version))").message(PUBLISHED_KEPT_MESSAGE))]
pub struct ContractSpec {
    /// The published versions, one entry per version (the list is keyed by version). Keep a
    /// version its clients still call: removing it removes its routes from every gateway.
    #[schemars(length(min = 1, max = MAX_CONTRACTS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["version"]))]
    pub versions: Vec<ContractVersion>,
}

/// How one Gateway or EdgeService serves a Contract.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ExposureState {
    /// This generation's routes are served.
    #[default]
    Served,
    /// This generation cannot be served there (see the reason); the routes of the last
    /// generation that could keep serving.
    LastGoodServed,
    /// Nothing of the contract is served there (see the reason).
    NotServed,
}

/// One Gateway or EdgeService that exposes a Contract, as that resource's reconcile decided.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractExposer {
    /// `Gateway` or `EdgeService`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The contract versions it exposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Whether the contract is served there.
    pub state: ExposureState,
    /// Why not, or not this generation, in one CamelCase word: `Invalid`, `Conflict`,
    /// `RefNotPermitted`, `VersionNotFound`, `UnknownClient`.
    pub reason: Option<String>,
    /// The details, with the field path.
    pub message: Option<String>,
    /// The Contract generation it serves.
    pub served_generation: Option<i64>,
    /// Its clients' last calls of this contract's versions, from its `status.usage` (`contract`
    /// left out): who would lose what if a version were retired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<crate::usage::VersionUsage>,
}

/// Observed state of a Contract.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractStatus {
    /// The `metadata.generation` this status describes.
    pub observed_generation: Option<i64>,
    /// `Accepted`: the contract is valid on its own (the checks the schema cannot make, each
    /// problem with its field path). Whether a gateway serves it is in `exposedBy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The Gateways and EdgeServices that expose this contract, and whether each serves it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_by: Vec<ContractExposer>,
    /// How many of `exposedBy` serve this generation.
    pub exposed_count: Option<i32>,
    /// The versions this generation publishes, comma-separated (`v1,v2`): what `kubectl get`
    /// shows, since a printer column takes one value.
    pub versions: Option<String>,
}

/// Contracts a Gateway or EdgeService exposes: one by name, or every one whose labels match a
/// selector, in its own namespace or in one that grants it (a `ContractGrant` there).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.contract) != has(self.selector)").message("expose one Contract by name (contract) or several by labels (selector), not both"))]
pub struct ContractExposure {
    /// Name of the Contract.
    #[schemars(length(max = 253), pattern(DNS_NAME))]
    pub contract: Option<String>,
    /// Every Contract of the namespace whose labels match (`{}` matches every one).
    pub selector: Option<LabelSelector>,
    /// Namespace of the Contracts. Defaults to the resource's own; another namespace must hold
    /// a `ContractGrant` that lets this resource expose them.
    #[schemars(length(max = 63), pattern(DNS_LABEL))]
    pub namespace: Option<String>,
    /// The versions exposed, e.g. only `v2` for a client that calls nothing else. Empty: every
    /// version the contract publishes, including ones it adds later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONTRACTS), extend("x-kubernetes-list-type" = "set"))]
    #[schemars(inner(length(max = 32), pattern(CONTRACT_VERSION)))]
    pub versions: Vec<String>,
}

/// A kind of resource that exposes contracts.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
pub enum ExposingKind {
    /// A Gateway.
    Gateway,
    /// An EdgeService.
    EdgeService,
}

/// Resources of one namespace a grant lets in.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantFrom {
    /// The namespace of the Gateways and EdgeServices.
    #[schemars(length(max = 63), pattern(DNS_LABEL))]
    pub namespace: String,
    /// Only resources of this kind. Unset: Gateways and EdgeServices.
    pub kind: Option<ExposingKind>,
    /// Only the resource of this name. Unset: every one of the namespace.
    #[schemars(length(max = 52), pattern(DNS_LABEL))]
    pub name: Option<String>,
}

/// Lets Gateways and EdgeServices of other namespaces expose Contracts of this namespace, in
/// the spirit of Gateway API's ReferenceGrant: the namespace that owns the contracts decides
/// who serves them.
#[skip_serializing_none]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "ContractGrant",
    doc = "A Gatehouse ContractGrant: lets Gateways and EdgeServices of other namespaces expose this namespace's Contracts.",
    namespaced,
    derive = "PartialEq",
    shortname = "ghcg",
    category = "gatehouse",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ContractGrantSpec {
    /// Who may expose the contracts.
    #[schemars(length(min = 1, max = 64))]
    pub from: Vec<GrantFrom>,
    /// Names of the Contracts of this namespace they may expose. Empty: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "set"))]
    #[schemars(inner(length(max = 253), pattern(DNS_NAME)))]
    pub contracts: Vec<String>,
}
