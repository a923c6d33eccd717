//! What a Gateway or EdgeService listens on: HTTPS with certificates from `kubernetes.io/tls`
//! Secrets, plain HTTP, or plain HTTP that only redirects to HTTPS.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::patterns::{DNS_LABEL, HOSTNAME, MAX_CERTIFICATE_HOSTS, MAX_CERTIFICATES};

/// The proxy's listeners. Without `listeners` the proxy serves plain HTTP on `service.port`;
/// with it, exactly the listeners named here (at least one), on their own ports.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.https) || has(self.http)").message("listeners needs https, http or both"))]
#[x_kube(validation = Rule::new("!has(self.https) || !has(self.http) || self.https.port != self.http.port").message("listeners.https.port and listeners.http.port must differ"))]
#[x_kube(validation = Rule::new("!has(self.http) || !has(self.http.mode) || self.http.mode != 'RedirectToHTTPS' || has(self.https)").message("listeners.http.mode RedirectToHTTPS needs a listeners.https to redirect to"))]
pub struct Listeners {
    /// HTTPS: TLS termination (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN).
    pub https: Option<HttpsListener>,
    /// Plain HTTP, serving the routes or redirecting to HTTPS.
    pub http: Option<HttpListener>,
}

/// TLS termination with certificates picked by the server name the client asks for (SNI).
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpsListener {
    /// Port the Service exposes for HTTPS. Defaults to 443.
    #[serde(default = "default_https_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// The certificates, each a `kubernetes.io/tls` Secret (for instance the `secretName` of a
    /// cert-manager Certificate) with the host names it serves. A renewed Secret is served by
    /// the next handshake, without a restart. The first certificate is the default one (see
    /// `unknownServerName`). Secret names are unique (the list is keyed by `secretName`).
    #[schemars(length(min = 1, max = MAX_CERTIFICATES))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["secretName"]))]
    pub certificates: Vec<Certificate>,
    /// What a client gets whose server name no certificate lists, or that sends none:
    /// `Default` (the first certificate) or `Refuse` (the handshake fails). Defaults to
    /// `Default`.
    #[serde(default)]
    pub unknown_server_name: UnknownServerNamePolicy,
    /// Lowest TLS version accepted: `"1.2"` or `"1.3"`. Defaults to `"1.2"`; TLS 1.0 and 1.1
    /// are never accepted.
    #[serde(default)]
    pub min_version: MinTlsVersion,
}

/// One certificate and the server names it answers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Name of a `kubernetes.io/tls` Secret in the resource's namespace, holding `tls.crt`
    /// (the PEM chain, leaf first) and `tls.key` (its PEM private key).
    #[schemars(length(max = 253), pattern(DNS_LABEL))]
    pub secret_name: String,
    /// Server names this certificate answers, lower case: exact (`api.example.com`) or with a
    /// leading wildcard (`*.example.com`: any name ending in `.example.com`). An exact name wins
    /// over a wildcard and a longer wildcard over a shorter one; a name two certificates list
    /// goes to the first.
    #[schemars(length(min = 1, max = MAX_CERTIFICATE_HOSTS))]
    #[schemars(inner(length(max = 253), pattern(HOSTNAME)))]
    pub hosts: Vec<String>,
}

/// What a handshake whose server name no certificate lists gets.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum UnknownServerNamePolicy {
    /// The first certificate.
    #[default]
    Default,
    /// No certificate: the handshake fails.
    Refuse,
}

/// The lowest TLS version a handshake may negotiate.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum MinTlsVersion {
    /// TLS 1.2 (and 1.3).
    #[default]
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

/// Plain HTTP.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpListener {
    /// Port the Service exposes for plain HTTP. Defaults to 80.
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// `Serve` the routes over plain HTTP too, or `RedirectToHTTPS`: answer every request
    /// `308` to the same host, path and query over HTTPS. Defaults to `Serve`.
    #[serde(default)]
    pub mode: HttpMode,
}

/// What the plain HTTP listener does.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum HttpMode {
    /// Serve the routes.
    #[default]
    Serve,
    /// Redirect every request to HTTPS (`308`, path and query kept).
    #[serde(rename = "RedirectToHTTPS")]
    RedirectToHttps,
}

fn default_https_port() -> i32 {
    443
}

fn default_http_port() -> i32 {
    80
}
