//! Routes: how a request is matched and the one thing a matched request gets.

use super::string_map::StringMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::access::{Access, RequestLimits};
use super::aggregation::Aggregation;
use super::method::HttpMethod;
use super::patterns::*;

/// How `match.path` is compared with the request path.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PathType {
    /// The whole request path must match; `{name}` segments match any one segment.
    #[default]
    Exact,
    /// The request path must start with these segments (whole segments only: `/api` matches
    /// `/api` and `/api/x`, never `/apix`).
    Prefix,
}

/// A request header a route requires.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderCondition {
    /// Header name, compared case-insensitively.
    #[schemars(length(max = MAX_NAME), pattern(HEADER_NAME))]
    pub name: String,
    /// Exact value the header must have. When absent the header only has to be present.
    #[schemars(length(max = MAX_PATH))]
    pub value: Option<String>,
}

/// A query parameter a route requires.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryCondition {
    /// Query parameter name, compared exactly.
    #[schemars(length(min = 1, max = MAX_NAME))]
    pub name: String,
    /// Exact value the parameter must have. When absent the parameter only has to be present.
    #[schemars(length(max = MAX_PATH))]
    pub value: Option<String>,
}

/// Which requests a route serves. Every condition given must hold.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// Request path, relative to the contract's base path: literal segments and whole-segment
    /// parameters, e.g. `/products/{id}`. Parameters can be used in backend paths, redirects
    /// and header values as `{id}`.
    #[schemars(length(min = 1, max = MAX_PATH), pattern(PATH_TEMPLATE))]
    pub path: String,
    /// `Exact` (default) matches the whole path; `Prefix` matches these leading segments.
    #[serde(default)]
    pub path_type: PathType,
    /// Methods served, each at most once. Empty means every method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7), extend("x-kubernetes-list-type" = "set"))]
    pub methods: Vec<HttpMethod>,
    /// Headers the request must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS))]
    pub headers: Vec<HeaderCondition>,
    /// Query parameters the request must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS))]
    pub query_params: Vec<QueryCondition>,
    /// Host the request must be addressed to (`Host` header, port ignored). A leading `*.`
    /// matches any one label. When absent every host matches.
    #[schemars(length(max = 253), pattern(HOSTNAME))]
    pub host: Option<String>,
}

/// A Kubernetes Service, or an Aggregator, that requests are sent to.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.service) != has(self.aggregator)").message("a backend names exactly one of service or aggregator"))]
#[x_kube(validation = Rule::new("!has(self.port) || has(self.service)").message("port applies only to a service backend; an Aggregator is reached on its own Service port"))]
#[x_kube(validation = Rule::new("!has(self.protocol) || has(self.service)").message("protocol applies only to a service backend; an Aggregator speaks HTTP/1.1"))]
#[x_kube(validation = Rule::new("!has(self.tls) || has(self.service)").message("tls applies only to a service backend; an Aggregator is reached in the cluster"))]
#[x_kube(validation = Rule::new("!has(self.tls) || !has(self.protocol) || self.protocol != 'H2C'").message("H2C is HTTP/2 in cleartext; over tls, HTTP/2 is protocol HTTP2 (or GRPC)"))]
pub struct BackendRef {
    /// Name of a Service in the same namespace.
    #[schemars(length(max = MAX_NAME), pattern(DNS_LABEL))]
    pub service: Option<String>,
    /// Name of an Aggregator in the same namespace; requests go to that Aggregator's proxy.
    #[schemars(length(max = MAX_NAME), pattern(DNS_LABEL))]
    pub aggregator: Option<String>,
    /// Service port. Defaults to 80.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Path sent upstream instead of the request path, with the match's parameters, e.g.
    /// `/items/{id}`. On a `Prefix` route it replaces the matched prefix and the rest of the
    /// request path is appended. When absent the request path (below the contract's base path)
    /// is sent unchanged.
    #[schemars(length(min = 1, max = MAX_PATH), pattern(PATH_TEMPLATE))]
    pub path: Option<String>,
    /// Share of requests this backend receives relative to the others in `backends`.
    /// Defaults to 1; 0 sends it nothing (a drained backend).
    #[schemars(range(min = 0, max = 10000))]
    pub weight: Option<i32>,
    /// How the gateway speaks to the Service: `HTTP` (default, HTTP/1.1), `HTTP2` (HTTP/2:
    /// over `tls` by ALPN `h2`, otherwise in cleartext with prior knowledge), `H2C` (HTTP/2 in
    /// cleartext with prior knowledge; not with `tls`) or `GRPC` (HTTP/2 as `HTTP2`, for gRPC
    /// servers). Over HTTP/2, trailers and streams in both directions pass through; a gRPC
    /// call the gateway cannot complete is answered with a gRPC status (`UNAVAILABLE`,
    /// `DEADLINE_EXCEEDED`…) rather than a problem body.
    pub protocol: Option<BackendProtocol>,
    /// Speak TLS to the Service (a backend behind its own TLS, or outside the cluster through
    /// an `ExternalName` Service): the gateway verifies the backend's certificate, sends the
    /// server name by SNI and, when asked, presents a client certificate. `HTTP` is then
    /// HTTP/1.1 over TLS, `HTTP2` and `GRPC` HTTP/2 over TLS (ALPN `h2`). A backend whose
    /// certificate does not verify gets no request (the client gets 502); nothing falls back
    /// to cleartext. Connections are kept and reused, as cleartext ones are.
    pub tls: Option<BackendTls>,
}

/// TLS from the gateway to a backend.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendTls {
    /// Secret holding, under `ca.crt`, the PEM certificates of the authorities the backend's
    /// certificate must chain to. Defaults to the public web PKI's (Mozilla's root program,
    /// built into the proxy).
    pub ca_secret_ref: Option<super::client::SecretRef>,
    /// The name sent by SNI and that the backend's certificate must carry. Defaults to the
    /// Service's cluster DNS name (`SERVICE.NAMESPACE.svc.CLUSTER_DOMAIN`).
    #[schemars(length(max = 253), pattern(DNS_NAME))]
    pub server_name: Option<String>,
    /// A `kubernetes.io/tls` Secret whose certificate the gateway presents when the backend
    /// asks for one (mutual TLS to the backend).
    pub client_certificate_secret_ref: Option<super::client::SecretRef>,
}

/// How the gateway speaks to a backend.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum BackendProtocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http,
    /// HTTP/2: over TLS by ALPN `h2`, in cleartext with prior knowledge.
    Http2,
    /// HTTP/2 in cleartext, with prior knowledge.
    H2c,
    /// gRPC: HTTP/2, as `HTTP2`.
    Grpc,
}

/// Header edits applied in order: remove, then set, then add.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderModifier {
    /// Headers to set, replacing any existing value. Names hold letters, digits, `-` and `_`;
    /// values hold no control characters (CR, LF, NUL…) and may use `{param}` path parameters,
    /// `{client}` (the calling client's name) and `{requestId}`.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_CONDITIONS, "additionalProperties" = header_values_schema()))]
    pub set: StringMap,
    /// Headers to add, keeping any existing values. Values are templated like `set`.
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_CONDITIONS, "additionalProperties" = header_values_schema()))]
    pub add: StringMap,
    /// Headers to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS), inner(length(max = MAX_NAME), pattern(HEADER_NAME)))]
    pub remove: Vec<String>,
}

/// Retry policy for proxied requests. Only idempotent methods (GET, HEAD, OPTIONS, PUT,
/// DELETE) are retried, and only when the upstream refused the connection or answered with one
/// of `statuses`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    #[schemars(range(min = 1, max = 5))]
    pub attempts: i32,
    /// Upstream statuses that are retried. Defaults to 502, 503 and 504.
    #[serde(default = "default_retry_statuses")]
    #[schemars(length(max = 8), inner(range(min = 500, max = 599)))]
    pub statuses: Vec<i32>,
}

fn default_retry_statuses() -> Vec<i32> {
    vec![502, 503, 504]
}

/// Scheme of a redirect target.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Scheme {
    Http,
    Https,
}

/// An HTTP redirect. Parts not given are kept from the request.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Redirect {
    /// Scheme of the target.
    pub scheme: Option<Scheme>,
    /// Host of the target.
    #[schemars(length(max = 253), pattern(HOSTNAME))]
    pub host: Option<String>,
    /// Port of the target.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Path of the target, with the match's parameters, e.g. `/v2/products/{id}`.
    #[schemars(length(min = 1, max = MAX_PATH), pattern(PATH_TEMPLATE))]
    pub path: Option<String>,
    /// Status code: 301, 302 (default), 303, 307 or 308.
    #[serde(default = "default_redirect_status")]
    #[x_kube(validation = Rule::new("self in [301, 302, 303, 307, 308]").message("a redirect's statusCode must be 301, 302, 303, 307 or 308"))]
    pub status_code: i32,
}

fn default_redirect_status() -> i32 {
    302
}

/// A response the gateway writes itself, without calling a backend.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectResponse {
    /// Status code. Defaults to 200.
    #[serde(default = "default_respond_status")]
    #[schemars(range(min = 200, max = 599))]
    pub status: i32,
    /// Response body.
    #[schemars(length(max = MAX_BODY))]
    pub body: Option<String>,
    /// `Content-Type` of the body: a media type such as `application/json` or
    /// `text/html; charset=utf-8`. Defaults to `text/plain; charset=utf-8`.
    #[serde(default = "default_content_type")]
    #[schemars(length(max = 255), pattern(MEDIA_TYPE))]
    pub content_type: String,
}

fn default_respond_status() -> i32 {
    200
}

fn default_content_type() -> String {
    "text/plain; charset=utf-8".to_owned()
}

/// A named route: which requests it serves and the one thing they get (proxy to `backend` or
/// `backends`, run an inline `aggregate`, `redirect`, or `respond` directly).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.backend), has(self.backends), has(self.aggregate), has(self.redirect), has(self.respond)].filter(x, x).size() == 1").message("a route does exactly one thing: set one of backend, backends, aggregate, redirect or respond"))]
#[x_kube(validation = Rule::new("!has(self.retries) || has(self.backend) || has(self.backends)").message("retries apply only to routes that proxy to backend or backends"))]
#[x_kube(validation = Rule::new("!has(self.tunnelTimeout) || has(self.backend) || has(self.backends)").message("tunnelTimeout applies only to routes that proxy to backend or backends"))]
pub struct Route {
    /// Route name, unique within its contract. Shown in metrics and error responses.
    #[schemars(length(max = MAX_NAME), pattern(DNS_LABEL))]
    pub name: String,
    /// Which requests this route serves.
    #[serde(rename = "match")]
    pub matches: RouteMatch,
    /// Proxy to one backend.
    pub backend: Option<BackendRef>,
    /// Proxy to several backends, sharing requests by weight (canary, migration).
    #[schemars(length(min = 1, max = MAX_BACKENDS))]
    #[x_kube(validation = Rule::new("self.exists(b, !has(b.weight) || b.weight > 0)").message("at least one backend must have a weight above 0"))]
    pub backends: Option<Vec<BackendRef>>,
    /// Answer with one payload built from several backend calls.
    pub aggregate: Option<Aggregation>,
    /// Answer with a redirect.
    pub redirect: Option<Redirect>,
    /// Answer directly with a fixed response.
    pub respond: Option<DirectResponse>,
    /// Edits to the request before it goes upstream.
    pub request_headers: Option<HeaderModifier>,
    /// Edits to the response before it goes to the client.
    pub response_headers: Option<HeaderModifier>,
    /// How long the proxy waits for the backend, e.g. `2s`: to connect, for the response
    /// head, and for each further piece of the response. A stream (a WebSocket, a gRPC
    /// stream, a long download) ends with 504 or a closed connection only once the backend
    /// has sent nothing for this long, so set it above the longest quiet spell of a stream
    /// (`tunnelTimeout` bounds a WebSocket's whole life). Defaults to 30s.
    #[schemars(length(max = 32), pattern(DURATION))]
    #[x_kube(validation = Rule::new(NONZERO_DURATION_RULE).message(NONZERO_DURATION_MESSAGE))]
    pub timeout: Option<String>,
    /// The longest a connection this route upgrades (a WebSocket) may stay open, e.g. `1h`,
    /// however busy: then the gateway closes it on both sides (a WebSocket client sees the
    /// connection end and reconnects, through another replica during a rollout). Counted from
    /// the upgrade request. Unset: no limit but the idle one, `timeout`.
    #[schemars(length(max = 32), pattern(DURATION))]
    #[x_kube(validation = Rule::new(NONZERO_DURATION_RULE).message(NONZERO_DURATION_MESSAGE))]
    pub tunnel_timeout: Option<String>,
    /// Retry policy for idempotent requests.
    pub retries: Option<RetryPolicy>,
    /// Who may call this route (clients, source addresses), on top of its contract's and its
    /// gateway's `access`.
    pub access: Option<Access>,
    /// Limits on this route's requests, overriding its contract's and its gateway's.
    pub limits: Option<RequestLimits>,
    /// What browsers may do across origins on this route, replacing its contract's `cors`.
    pub cors: Option<super::cors::Cors>,
    /// A deprecation of this route alone, announced on its every response (its version's
    /// own `deprecation`, if any, is replaced). A deprecated route of a published version may
    /// be removed later; any other may not.
    pub deprecation: Option<super::lifecycle::Deprecation>,
}
