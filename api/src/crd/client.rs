//! Clients: who calls a gateway, how they are recognised, and their limits.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::patterns::*;

/// A Secret in the same namespace. Only its name ever leaves the cluster's Secret store: the
/// route table carries the reference, never the content.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    #[schemars(length(max = 253), pattern(DNS_LABEL))]
    pub name: String,
}

/// Recognise a client by an API key sent in a header. Once any client of a gateway can be
/// recognised, a request with no valid key or token is refused with 401; the key header is not
/// passed to backends.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// Secret whose values are this client's valid keys (one key per data entry). It is mounted
    /// into the proxy pods; a changed Secret applies without a restart.
    pub secret_ref: SecretRef,
    /// Header carrying the key. Defaults to `x-api-key`.
    #[serde(default = "default_api_key_header")]
    #[schemars(length(max = MAX_NAME), pattern(HEADER_NAME))]
    pub header: String,
}

fn default_api_key_header() -> String {
    "x-api-key".to_owned()
}

/// Recognise a client by a JWT in `Authorization: Bearer`: signed by a key of the issuer's JWKS
/// (the key's `alg` when it names one; `kid` picks the key), with this `iss`, one of `audiences`,
/// and an `exp` in the future (30 s leeway). Once any client of a gateway can be recognised, a
/// request with no valid key or token is refused with 401.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuth {
    /// Required `iss` claim.
    #[schemars(length(min = 1, max = 512))]
    pub issuer: String,
    /// Accepted `aud` claims; empty accepts any audience.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS), inner(length(max = 512)))]
    pub audiences: Vec<String>,
    /// Secret holding the issuer's JSON Web Key Set under the key `jwks.json`.
    pub jwks_secret_ref: SecretRef,
}

/// Recognise a client by the certificate it presents in the TLS handshake (mutual TLS): one
/// that a certificate authority of `caSecretRef` signed and, when `names` lists any, that
/// carries one of them. Needs `listeners.https`: the HTTPS listener asks every client for a
/// certificate, a client may send none (it is then recognised by its API key or JWT, or gets
/// 401), and one signed by no listed authority fails the handshake.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateAuth {
    /// Secret holding, under `ca.crt`, the PEM certificates of the authorities that sign this
    /// client's certificates (the key cert-manager's CA issuer writes). A changed Secret
    /// applies to the next handshake, without a restart.
    pub ca_secret_ref: SecretRef,
    /// Names of this client's certificates, any one of which must appear in the certificate
    /// as a DNS, URI or email subject alternative name or as the subject's common name
    /// (compared without regard to ASCII case). Empty: any certificate the authorities signed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS), inner(length(min = 1, max = 512), pattern(HEADER_VALUE)))]
    pub names: Vec<String>,
}

/// A rate limit (GCRA, the token bucket's exact form): `burst` requests at once, then one every
/// `1/requestsPerSecond` seconds; over it, a request is refused with 429 and `Retry-After`.
/// `scope: Replica` (the default): each proxy replica enforces it on its own, so N replicas
/// admit up to N times the rate. `scope: Global`: all replicas draw from one budget in Redis
/// (`spec.redis`, or the operator's default), and every request is charged there before it is
/// admitted (one script call per request near the limit, per up to 16 far from it).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.burst) || self.burst >= self.requestsPerSecond").message("rateLimit.burst must be at least requestsPerSecond"))]
#[x_kube(validation = Rule::new("(has(self.scope) && self.scope == 'Global') || (!has(self.budget) && !has(self.onRedisFailure))").message("rateLimit.budget and rateLimit.onRedisFailure apply to scope: Global"))]
pub struct RateLimit {
    /// Sustained requests per second.
    #[schemars(range(min = 1, max = 1000000))]
    pub requests_per_second: i32,
    /// Requests allowed in a burst above the sustained rate. Defaults to `requestsPerSecond`.
    #[schemars(range(min = 1, max = 1000000))]
    pub burst: Option<i32>,
    /// Who shares the limit: `Replica` (default), each proxy replica on its own; `Global`, all
    /// replicas of the resource through Redis, whatever the autoscaler does.
    pub scope: Option<RateLimitScope>,
    /// `Global` only: the name of the budget in Redis. Resources of one namespace that name the
    /// same budget (and the same Redis) share it. Unset: the resource's own budget for this
    /// client.
    #[schemars(length(max = MAX_NAME), pattern(DNS_LABEL))]
    pub budget: Option<String>,
    /// `Global` only: what a replica does when Redis does not answer within its timeout or
    /// cannot be reached. `LocalShare` (default): it enforces its share of the limit on its
    /// own (the rate divided by the replicas seen in the last seconds), so the whole stays
    /// near the limit. `Refuse`: 503 with `Retry-After: 1` until Redis answers again.
    pub on_redis_failure: Option<RedisFailurePolicy>,
}

/// Who shares a rate limit.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum RateLimitScope {
    /// Each proxy replica enforces the limit on its own.
    #[default]
    Replica,
    /// All replicas share one budget in Redis.
    Global,
}

/// What a replica does with a globally limited request when Redis cannot answer.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum RedisFailurePolicy {
    /// Enforce this replica's share of the limit locally (fail open, with a bound).
    #[default]
    LocalShare,
    /// Refuse with 503 (fail closed).
    Refuse,
}

/// A client of a gateway: a mobile app, a web front end, a partner.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Client {
    /// Client name, shown in metrics and usable in header values as `{client}`.
    #[schemars(length(max = MAX_NAME), pattern(DNS_LABEL))]
    pub name: String,
    /// Recognise this client by an API key in a header. Once any client of a gateway can be
    /// recognised, a request with no valid key or token is refused with 401.
    pub api_keys: Option<ApiKeyAuth>,
    /// Recognise this client by a JWT in `Authorization: Bearer`, signed by a key of its issuer's
    /// JWKS, with its issuer, one of its audiences and an unexpired `exp`.
    pub jwt: Option<JwtAuth>,
    /// Recognise this client by the certificate it presents in the TLS handshake (mutual TLS
    /// on `listeners.https`).
    pub client_certificate: Option<ClientCertificateAuth>,
    /// Requests this client may make, per proxy replica or (`scope: Global`) over all
    /// replicas; over it, 429 with `Retry-After`.
    pub rate_limit: Option<RateLimit>,
    /// Most requests this client may have in flight at once, per proxy replica, over all
    /// routes; one more is answered 429 with `Retry-After: 1`, before any backend call (and
    /// before its rate limit is charged).
    #[schemars(range(min = 1, max = 1000000))]
    pub max_in_flight: Option<i32>,
}
