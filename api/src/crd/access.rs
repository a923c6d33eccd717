//! Limit access: who may call (clients, source addresses), how the caller's address is found
//! behind other proxies, and how large a request may be.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::patterns::*;

/// Source addresses, as CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`) or single addresses
/// (`192.0.2.7`, `2001:db8::7`). The caller's address is the connection's peer, or the one
/// `spec.clientAddress` finds in `X-Forwarded-For`. A caller outside them gets 403 and the
/// request never reaches a backend.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.allow) && size(self.allow) > 0) || (has(self.deny) && size(self.deny) > 0)").message("sourceRanges needs allow or deny ranges"))]
pub struct SourceRanges {
    /// When set, only callers from one of these ranges are served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_RANGES), inner(length(max = 64), pattern(ADDRESS_RANGE)))]
    pub allow: Vec<String>,
    /// Callers from these ranges are refused, even when `allow` lists a range that holds them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_RANGES), inner(length(max = 64), pattern(ADDRESS_RANGE)))]
    pub deny: Vec<String>,
}

/// Who may call. On a Gateway or EdgeService it applies to every route; on a contract, to its
/// routes; on a route, to it. Every level that sets a rule must admit a request: a route can
/// narrow its contract's and its gateway's access, never widen it.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// Names of the clients (`spec.clients`) that may call. A recognised client not named
    /// gets 403; a caller no client's credentials recognise gets 401. Empty: every client.
    /// Only on contracts and routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CLIENTS), inner(length(max = MAX_NAME), pattern(DNS_LABEL)))]
    pub clients: Vec<String>,
    /// The source addresses served; a caller outside them gets 403.
    pub source_ranges: Option<SourceRanges>,
}

/// How the proxy finds a caller's address when other proxies (a cloud load balancer, a CDN)
/// stand in front of it and each appends the address it received from to `X-Forwarded-For`.
/// Without it, the caller is the connection's peer and `X-Forwarded-For` is not believed:
/// anyone can write that header. Set at most one of `trustedHops` and `trustedProxies`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.trustedHops) && has(self.trustedProxies) && size(self.trustedProxies) > 0)").message("set trustedHops or trustedProxies, not both"))]
pub struct ClientAddress {
    /// The number of proxies in front of the gateway, each of which appends to
    /// `X-Forwarded-For`: the caller is the address that many entries from the right of the
    /// peer (1: the last entry of `X-Forwarded-For`). With fewer entries, the leftmost.
    #[schemars(range(min = 1, max = 16))]
    pub trusted_hops: Option<i32>,
    /// Address ranges of the proxies in front of the gateway: walking from the peer leftwards
    /// through `X-Forwarded-For`, the caller is the first address outside them (a peer outside
    /// them is the caller itself, whatever it wrote in the header).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_RANGES), inner(length(max = 64), pattern(ADDRESS_RANGE)))]
    pub trusted_proxies: Vec<String>,
}

/// Limits on what one request may carry.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestLimits {
    /// Largest request body, in bytes. A larger `Content-Length` is answered 413 before
    /// anything reaches a backend; a body sent without one (chunked, HTTP/2 frames) is
    /// streamed until it grows past the limit, then the request is cut off (413 when the
    /// response has not started). The most specific level that sets it wins (route, contract,
    /// gateway). Unset everywhere: no limit.
    #[schemars(range(min = 1, max = 1099511627776_i64))]
    pub max_body_bytes: Option<i64>,
    /// Most requests the route may have in flight at once, per proxy replica; one more is
    /// answered 503 with `Retry-After: 1`, before any backend call. An upgraded connection (a
    /// WebSocket) counts while it is open. Each route counts its own requests; set on a
    /// contract or a gateway, it is the limit of each of their routes. The most specific level
    /// that sets it wins. Unset everywhere: no limit.
    #[schemars(range(min = 1, max = 1000000))]
    pub max_in_flight: Option<i32>,
}
