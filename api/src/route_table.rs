//! The RouteTable: the one contract between the operator and the proxy.
//!
//! A route table is what a proxy serves: every route with its match, its action and its edits.
//! Upstreams are named (service, host, port), never addresses: the proxy looks them up and keeps
//! following them while the table serves. It is deterministic — routes sorted by id, maps
//! ordered, no defaults left implicit — so the same resource always yields the same bytes and
//! GitOps tools never see a spurious diff. It never holds secret material: clients' keys are
//! referenced by Secret name only.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use sha2::{Digest, Sha256};

use crate::validate::Problem;

/// Format version written into every table; a proxy refuses tables of another version.
pub const FORMAT: &str = "gatehouse.dev/route-table/v1";

/// File name of the table inside the route ConfigMap (and so inside the mounted volume).
pub const FILE_NAME: &str = "routes.json";

/// A compiled route table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTable {
    /// Always [`FORMAT`].
    pub format: String,
    /// The resource this table was compiled from.
    pub source: TableSource,
    /// For an EdgeService, the one client it serves; `{client}` resolves to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_client: Option<String>,
    /// Known clients, sorted by name.
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    /// Routes, sorted by id. Precedence is decided by the proxy's router, not by this order.
    pub routes: Vec<RouteEntry>,
    /// How the HTTPS listener terminates TLS; absent when the resource declares no HTTPS
    /// listener (the proxy then refuses TLS handshakes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsEntry>,
    /// When set, requests on the plain HTTP listener are answered `308` to the same host, path
    /// and query over HTTPS on this port, instead of being served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect_port: Option<u16>,
    /// How a caller's address is found behind other proxies; absent: the connection's peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<ClientAddressEntry>,
    /// Source addresses every route serves; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ranges: Option<SourceRangesEntry>,
    /// Where the clients' global rate limits keep their budgets; absent when no client has
    /// one (a standalone proxy may then be given `--redis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisEntry>,
    /// The Contract resources whose routes the table serves, sorted by namespace and name;
    /// absent when it serves inline contracts only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contracts: Vec<ContractSource>,
}

/// Where a caller's address comes from when proxies stand in front of the gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientAddressEntry {
    /// This many proxies each append to `X-Forwarded-For`: the caller is the entry this many
    /// places left of the peer (the leftmost when there are fewer).
    TrustedHops(u32),
    /// Proxies in these ranges (normal form, see [`crate::prepare::address_range`]) are
    /// trusted: the caller is the first address, from the peer leftwards, outside them.
    TrustedProxies(Vec<String>),
}

/// Address ranges in normal form ([`crate::prepare::address_range`]): `10.0.0.0/8`,
/// `192.0.2.7/32`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceRangesEntry {
    /// When not empty, only callers in one of these are served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Callers in these are refused, whatever `allow` says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// TLS termination: which certificate answers which server name, and what a handshake may
/// negotiate. Certificates are referenced by Secret name only (`tls.crt`, `tls.key`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsEntry {
    /// Certificates in the resource's order; the first is the default one.
    pub certificates: Vec<CertificateEntry>,
    /// What a client gets whose server name (SNI) no certificate lists, or that sends none.
    pub unknown_server_name: UnknownServerName,
    /// Lowest TLS version a handshake may negotiate (the highest is always TLS 1.3).
    pub min_version: TlsVersion,
}

/// One certificate and the server names it answers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateEntry {
    /// Name of the `kubernetes.io/tls` Secret holding `tls.crt` and `tls.key`.
    pub secret: String,
    /// Server names, lower case: exact (`api.example.com`) or a leading wildcard
    /// (`*.example.com`, any name ending in `.example.com`). An exact name wins over a
    /// wildcard, a longer wildcard over a shorter one.
    pub hosts: Vec<String>,
}

/// What a handshake whose server name no certificate lists gets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum UnknownServerName {
    /// The first certificate.
    Default,
    /// The handshake is refused.
    Refuse,
}

/// A TLS protocol version.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    Tls13,
}

/// Which resource a table was compiled from.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TableSource {
    /// `Gateway`, `EdgeService` or `Aggregator`.
    pub kind: String,
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
    /// `metadata.generation` of the resource, when it had one.
    pub generation: Option<i64>,
}

/// A Contract resource whose routes a table serves: their ids are
/// `NAMESPACE/NAME/VERSION/ROUTE`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractSource {
    /// Namespace of the Contract.
    pub namespace: String,
    /// Name of the Contract.
    pub name: String,
    /// The `metadata.generation` whose routes are served, when it had one.
    pub generation: Option<i64>,
    /// The versions served.
    pub versions: Vec<String>,
}

impl ContractSource {
    /// What the ids of this contract's routes start with: `NAMESPACE/NAME/`.
    pub fn id_prefix(&self) -> String {
        format!("{}/{}/", self.namespace, self.name)
    }
}

impl TableSource {
    /// The resource as the owner of its clients' rate-limit budgets.
    pub fn owner(&self) -> crate::rate_limits::Owner<'_> {
        crate::rate_limits::Owner {
            kind: &self.kind,
            namespace: &self.namespace,
            name: &self.name,
        }
    }
}

/// A client and how it is recognised. Secrets are referenced, never copied.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientEntry {
    /// Client name.
    pub name: String,
    /// API-key recognition: the Secret holding the keys and the header carrying one.
    pub api_key: Option<ApiKeyEntry>,
    /// JWT recognition.
    pub jwt: Option<JwtEntry>,
    /// Client-certificate recognition (mutual TLS on the HTTPS listener).
    pub certificate: Option<ClientCertificateEntry>,
    /// Token-bucket limit.
    pub rate_limit: Option<RateLimitEntry>,
    /// Most requests in flight at once from this client, per proxy; absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
}

/// Where a client's API keys live.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// Secret name; the proxy reads it from its mounted Secret volume.
    pub secret: String,
    /// Request header carrying the key (lower case).
    pub header: String,
}

/// How a client's certificates are recognised.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertificateEntry {
    /// Secret holding `ca.crt`, the authorities that sign the client's certificates.
    pub ca_secret: String,
    /// Names one of which the certificate carries (SAN or subject common name, ASCII case
    /// ignored); empty accepts any certificate the authorities signed.
    pub names: Vec<String>,
}

/// How a client's JWTs are checked.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtEntry {
    /// Required issuer.
    pub issuer: String,
    /// Accepted audiences, sorted; empty accepts any.
    pub audiences: Vec<String>,
    /// Secret holding `jwks.json`.
    pub jwks_secret: String,
}

/// A rate limit (GCRA): `burst` at once, then `requests_per_second`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitEntry {
    /// Sustained requests per second.
    pub requests_per_second: u32,
    /// Bucket size.
    pub burst: u32,
    /// Shared by every replica through the table's Redis; absent: each replica on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalLimitEntry>,
}

/// A rate limit whose budget lives in Redis.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalLimitEntry {
    /// The budget's name, unique in the Redis server: `KIND/NAMESPACE/NAME/CLIENT` for a
    /// resource's own, `NAMESPACE/BUDGET` for a named one. Its key is `gatehouse:rl:BUDGET`.
    pub budget: String,
    /// What a replica does when Redis cannot answer in time.
    pub on_redis_failure: RedisFailure,
}

/// What a replica does with a globally limited request when Redis cannot answer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum RedisFailure {
    /// Enforce the replica's share of the limit locally.
    LocalShare,
    /// Refuse with 503.
    Refuse,
}

/// The Redis server global rate limits draw from. Its password is referenced by Secret name
/// (data key `password`), never copied.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisEntry {
    /// `host:port`.
    pub address: String,
    /// ACL user; absent: the default user.
    pub username: Option<String>,
    /// Secret holding `password`.
    pub password_secret: Option<String>,
    /// TLS to the server; absent: plain TCP.
    pub tls: Option<RedisTlsEntry>,
    /// How long a request waits for the server's answer.
    pub timeout_ms: u64,
}

/// TLS to the Redis server.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisTlsEntry {
    /// Secret holding `ca.crt`; absent: the web PKI roots.
    pub ca_secret: Option<String>,
}

/// How a route's path is compared.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub enum PathKind {
    /// Literal segments only; the whole path must be equal.
    Exact,
    /// Some segments are `{param}`s; the whole path must match segment by segment.
    Template,
    /// The leading segments must match (literal or `{param}`); more may follow.
    Prefix,
}

/// One route.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteEntry {
    /// `VERSION/ROUTE` for the inline contracts of gateways and edges (`v1/product`),
    /// `NAMESPACE/CONTRACT/VERSION/ROUTE` for the Contract resources they expose
    /// (`shop/catalog/v1/product`), the endpoint name for Aggregators. Unique in the table.
    pub id: String,
    /// Contract version, absent for Aggregator endpoints.
    pub contract: Option<String>,
    /// The contract's base path (`/v1`, `/{tenant}/v1`, `/`), absent for Aggregator endpoints.
    /// Without an upstream `path`, the request path below it is what goes upstream.
    pub base_path: Option<String>,
    /// Host the request must be addressed to (`*.` prefix: any one label), or any host.
    pub host: Option<String>,
    /// How `path` is compared.
    pub path_kind: PathKind,
    /// Full request path including the contract's base path, e.g. `/v1/products/{id}`.
    pub path: String,
    /// Methods served, sorted; empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Required headers, sorted by name; names are lower case.
    #[serde(default)]
    pub headers: Vec<ValueCondition>,
    /// Required query parameters, sorted by name.
    #[serde(default)]
    pub query: Vec<ValueCondition>,
    /// What a matched request gets.
    pub action: Action,
    /// Edits to the request before it goes upstream.
    #[serde(default)]
    pub request_headers: HeaderEdits,
    /// Edits to the response before it goes to the client.
    #[serde(default)]
    pub response_headers: HeaderEdits,
    /// Upper bound for the upstream exchange, in milliseconds: connect, the response head,
    /// and each further read (for a stream, an idle timeout).
    pub timeout_ms: u64,
    /// The longest an upgraded connection (a WebSocket) may stay open, in milliseconds;
    /// absent: no limit but `timeout_ms` idle.
    pub tunnel_timeout_ms: Option<u64>,
    /// Retry policy for idempotent requests.
    pub retries: Option<Retries>,
    /// The clients that may call, sorted (the contract's and the route's lists, intersected);
    /// absent: every client.
    pub clients: Option<Vec<String>>,
    /// Source address rules of the contract and of the route, in that order; each must admit
    /// the caller (the table's own `sourceRanges` apply too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ranges: Vec<SourceRangesEntry>,
    /// Largest request body, in bytes (the route's, its contract's or its gateway's limit);
    /// absent: no limit.
    pub max_body_bytes: Option<u64>,
    /// Most requests in flight at once on this route, per proxy (the route's, its
    /// contract's or its gateway's limit); absent: no limit.
    pub max_in_flight: Option<u32>,
    /// What browsers may do across origins (the route's policy, else its contract's). Boxed,
    /// as the deprecation: most routes have neither, and a proxy holds every entry of its
    /// table (twice during a reload).
    pub cors: Option<Box<CorsEntry>>,
    /// Where the route's contract version is in its life; absent for a draft and for an
    /// Aggregator endpoint. What the passivity check compares published routes by.
    pub state: Option<VersionState>,
    /// The deprecation announced on every response of the route (its own, else its
    /// version's).
    pub deprecation: Option<Box<DeprecationEntry>>,
}

/// Where a contract version is in its life, in the table's own terms (a draft is absent).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum VersionState {
    /// Promised to clients: changes only passively.
    Published,
    /// Promised, and announced as deprecated.
    Deprecated,
    /// Not served: answered `410 Gone`.
    Retired,
}

/// A deprecation as the proxy announces it (RFC 9745 `Deprecation`, RFC 8594 `Sunset`,
/// `Link` relations `deprecation` and `sunset`).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeprecationEntry {
    /// When it is deprecated, in Unix seconds.
    pub since: i64,
    /// When it is sunset, in Unix seconds.
    pub sunset: Option<i64>,
    /// URL of the page on the deprecation.
    pub link: Option<String>,
    /// URL of the page on the sunset.
    pub sunset_link: Option<String>,
    /// The version to move to, named in the `410 Gone` body.
    pub successor: Option<String>,
    /// Answer `410 Gone` once the sunset has passed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone_after_sunset: bool,
}

/// A route's CORS policy, ready to answer with.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CorsEntry {
    /// Allowed origins, ASCII lower case: `scheme://host[:port]`, `scheme://*.domain[:port]`
    /// (any subdomain), or `*`.
    pub allow_origins: Vec<String>,
    /// Methods allowed, upper case.
    pub allow_methods: Vec<String>,
    /// Request headers allowed beyond the safelisted ones, lower case; `*`: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// Response headers pages may read beyond the safelisted ones, lower case; `*`: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_credentials: bool,
    /// `Access-Control-Max-Age`, in seconds.
    pub max_age_seconds: Option<u64>,
}

/// A header or query condition: present, or present with this exact value.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueCondition {
    /// Header (lower case) or parameter name.
    pub name: String,
    /// Required value; absent means "present with any value".
    pub value: Option<String>,
}

/// Header edits, applied as remove, then set, then add. Values are templates: `{param}`,
/// `{client}` and `{requestId}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderEdits {
    /// Lower-case names to remove, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Lower-case name → value template, replacing existing values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    /// Lower-case name → value template, added beside existing values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, String>,
}

impl HeaderEdits {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// Retry policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retries {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Upstream statuses that are retried, sorted.
    pub statuses: Vec<u16>,
}

/// What a matched request gets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// Proxy to one of the upstreams, chosen by weight.
    Proxy {
        /// Upstreams in the order the resource lists them.
        upstreams: Vec<Upstream>,
    },
    /// Run an aggregation.
    Aggregate(AggregatePlan),
    /// Redirect.
    Redirect(RedirectAction),
    /// Answer directly.
    Respond(RespondAction),
}

/// An upstream endpoint: a Kubernetes Service, addressed by DNS name.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Upstream {
    /// Service name as written in the resource (what `--resolve NAME=HOST:PORT` matches).
    pub service: String,
    /// Fully qualified host, e.g. `catalog.shop.svc.cluster.local`.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path template sent upstream (see `BackendRef.path`); absent sends the request path
    /// below the route's `basePath`.
    pub path: Option<String>,
    /// Relative weight.
    pub weight: u32,
    /// How the proxy speaks to it; absent is HTTP/1.1.
    #[serde(default, skip_serializing_if = "UpstreamProtocol::is_http1")]
    pub protocol: UpstreamProtocol,
    /// TLS to it; absent is cleartext.
    pub tls: Option<UpstreamTls>,
}

/// TLS from the proxy to an upstream.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTls {
    /// Sent by SNI; the upstream's certificate must carry it.
    pub server_name: String,
    /// Secret holding `ca.crt`, the authorities the certificate must chain to; absent: the
    /// web PKI roots built into the proxy.
    pub ca_secret: Option<String>,
    /// `kubernetes.io/tls` Secret presented when the upstream asks for a client certificate.
    pub client_certificate: Option<String>,
}

/// How the proxy speaks to an upstream.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (what gRPC servers speak without TLS); over TLS (`tls`),
    /// HTTP/2 by ALPN `h2`.
    H2c,
}

impl UpstreamProtocol {
    /// True for HTTP/1.1, the default.
    pub fn is_http1(&self) -> bool {
        *self == Self::Http1
    }
}

/// A compiled aggregation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AggregatePlan {
    /// Steps in the resource's order.
    pub steps: Vec<StepPlan>,
    /// jq rule computing the response (see `Aggregation.response`).
    pub response: String,
    /// Deadline for the whole call, in milliseconds.
    pub timeout_ms: u64,
    /// `allOrNothing` or `bestEffort`.
    pub failure_policy: StepFailurePolicy,
    /// Largest step response read, in bytes.
    pub max_step_response_bytes: u64,
}

/// What an aggregation does when a step fails: the table's own form of the resource's
/// `failurePolicy`, so that renaming a CRD variant cannot change the wire format.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum StepFailurePolicy {
    /// Any failed step answers 502 naming it.
    AllOrNothing,
    /// A failed required step answers 502; failed optional steps become `null`.
    BestEffort,
}

/// A compiled aggregation step.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepPlan {
    /// Step name.
    pub name: String,
    /// Where the call goes (`path` and `weight` unused).
    pub upstream: Upstream,
    /// Method.
    pub method: String,
    /// Path and query template.
    pub path: String,
    /// Header templates, by lower-case name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Body template.
    pub body: Option<String>,
    /// Steps that must finish first, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// A failure does not fail the call (see the failure policy).
    #[serde(default)]
    pub optional: bool,
    /// Upper bound for this call, in milliseconds; absent means the remaining deadline.
    pub timeout_ms: Option<u64>,
    /// jq filter applied to the step's body.
    pub filter: Option<String>,
}

/// A redirect.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectAction {
    /// `http` or `https`; absent keeps the request's.
    pub scheme: Option<String>,
    /// Host; absent keeps the request's.
    pub host: Option<String>,
    /// Port; absent keeps the request's.
    pub port: Option<u16>,
    /// Path template; absent keeps the request's.
    pub path: Option<String>,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
}

/// A direct response.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RespondAction {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Body.
    pub body: Option<String>,
}

/// Why a serialised table was refused.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Not JSON, or not the shape of a table.
    #[error("route table is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    /// Written by another, incompatible version.
    #[error("route table format {found:?} is not supported (expected {FORMAT:?})")]
    Format {
        /// The format the table declares.
        found: String,
    },
    /// Parsed, but inconsistent.
    #[error("route table is inconsistent: {}", crate::validate::join(.0))]
    Invalid(Vec<Problem>),
}

impl RouteTable {
    /// A table of `source` with nothing in it: no clients, routes, listeners or limits.
    pub fn empty(source: TableSource) -> Self {
        Self {
            format: FORMAT.to_owned(),
            source,
            edge_client: None,
            clients: Vec::new(),
            routes: Vec::new(),
            tls: None,
            https_redirect_port: None,
            client_address: None,
            source_ranges: None,
            redis: None,
            contracts: Vec::new(),
        }
    }

    /// The Secrets the table reads — its clients' (API keys, JWKS), its TLS certificates',
    /// its backends' and its Redis server's —
    /// sorted and unique: what the proxy mounts and watches, and what its Role lets it read.
    pub fn secrets(&self) -> BTreeSet<String> {
        let certificates = self.tls.iter().flat_map(|tls| &tls.certificates);
        self.clients
            .iter()
            .flat_map(|client| {
                let keys = client.api_key.as_ref().map(|k| k.secret.clone());
                let jwks = client.jwt.as_ref().map(|j| j.jwks_secret.clone());
                let authorities = client.certificate.as_ref().map(|c| c.ca_secret.clone());
                keys.into_iter().chain(jwks).chain(authorities)
            })
            .chain(certificates.map(|c| c.secret.clone()))
            .chain(self.redis.iter().flat_map(|redis| {
                let authority = redis.tls.as_ref().and_then(|tls| tls.ca_secret.clone());
                redis.password_secret.iter().cloned().chain(authority)
            }))
            .chain(
                self.proxied_upstreams()
                    .filter_map(|u| u.tls.as_ref())
                    .flat_map(|tls| {
                        tls.ca_secret
                            .iter()
                            .chain(&tls.client_certificate)
                            .cloned()
                            .collect::<Vec<_>>()
                    }),
            )
            .collect()
    }

    /// Every upstream the routes proxy to, with its route's repeats (Aggregator steps are not
    /// upstreams).
    pub fn proxied_upstreams(&self) -> impl Iterator<Item = &Upstream> {
        self.routes
            .iter()
            .filter_map(|route| match &route.action {
                Action::Proxy { upstreams } => Some(upstreams),
                _ => None,
            })
            .flatten()
    }

    /// The canonical bytes: JSON with one route (and one client) per line and a final newline.
    /// Same table, same bytes.
    ///
    /// Not fully indented: the table travels in a ConfigMap, whose data the API server caps at
    /// [`MAX_TABLE_BYTES`], and indentation took a third of that room. Not one line either: a
    /// line per route keeps `render` output and GitOps diffs readable route by route.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        // Writing plain structs, BTreeMaps and strings into memory cannot fail.
        let _ = self.write_to(&mut bytes);
        bytes
    }

    /// Writes [`Self::to_bytes`] to `writer`, as it is made.
    pub fn write_to(&self, writer: impl std::io::Write) -> std::io::Result<()> {
        let mut serializer =
            serde_json::Serializer::with_formatter(writer, LinePerEntry::default());
        self.serialize(&mut serializer)?;
        serializer.into_inner().write_all(b"\n")
    }

    /// `sha256:HEX` of [`Self::to_bytes`], hashed as it is serialised: a 10,000-route table's
    /// JSON (3 MB, and as much again while its buffer grows) is never held.
    pub fn digest(&self) -> String {
        use std::io::Write;
        let mut buffered = std::io::BufWriter::with_capacity(64 * 1024, Sha256::new());
        // Hashing cannot fail.
        let _ = self.write_to(&mut buffered);
        let _ = buffered.flush();
        let (hasher, _) = buffered.into_parts();
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }

    /// Parses and checks a serialised table: format version, then [`crate::validate::check_table`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TableError> {
        let table: RouteTable = serde_json::from_slice(bytes)?;
        if table.format != FORMAT {
            return Err(TableError::Format {
                found: table.format,
            });
        }
        crate::validate::check_table(&table).map_err(TableError::Invalid)?;
        Ok(table)
    }
}

/// Compact JSON, except that each entry of a top-level list starts a line.
#[derive(Default)]
struct LinePerEntry {
    depth: usize,
    /// Whether the top-level list being written has an entry (an empty one stays `[]`).
    entries: bool,
}

impl serde_json::ser::Formatter for LinePerEntry {
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        writer.write_all(b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        writer.write_all(b"}")
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        if self.depth == 2 {
            self.entries = false;
        }
        writer.write_all(b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.depth == 1 && self.entries {
            writer.write_all(b"\n")?;
        }
        writer.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if self.depth == 2 {
            self.entries = true;
        }
        let separator: &[u8] = match (first, self.depth) {
            (true, 2) => b"\n",
            (false, 2) => b",\n",
            (true, _) => b"",
            (false, _) => b",",
        };
        writer.write_all(separator)
    }
}

/// The most a route table may take once serialised: a ConfigMap's data may hold at most
/// 1 MiB (the API server refuses more), and the table is its only entry.
pub const MAX_TABLE_BYTES: usize = 1024 * 1024;

/// `sha256:HEX` of some bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
