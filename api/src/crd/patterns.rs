//! The regular expressions and size limits the CRD schemas enforce.
//!
//! Patterns are written in the common subset of Go RE2 (the API server) and ECMA-262 (offline
//! admission), so the same text means the same thing in both places. Limits bound every list and
//! string a CEL rule walks, which keeps each rule inside the API server's cost budget.

/// A DNS-1123 label: what Kubernetes accepts as a Service or Secret name.
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A name usable as a jq object key and a template variable: `product`, `seller_info`.
pub const IDENTIFIER: &str = r"^[a-z][a-zA-Z0-9_]*$";

/// A contract version: `v1`, `v2`, `v1beta1`, `v3alpha2`.
pub const CONTRACT_VERSION: &str = r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$";

/// A duration in the Gateway API format (GEP-2257): `300ms`, `2s`, `1m30s`, `1h`.
pub const DURATION: &str = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$";

/// A request path to match or to send upstream: literal segments and whole-segment parameters
/// such as `/products/{id}`.
pub const PATH_TEMPLATE: &str = r"^(/([A-Za-z0-9._~%!$&'()*+,;=:@-]+|\{[a-z][a-zA-Z0-9_]*\}))*/?$";

/// A path and optional query for an aggregation step, with placeholders that may name request
/// values and earlier steps' fields: `/sellers/{product.sellerId}?lang={query.lang}`.
pub const STEP_PATH: &str = r"^/[^\s{}]*(\{[A-Za-z_][A-Za-z0-9_.-]*\}[^\s{}]*)*$";

/// An HTTP header name (RFC 9110 token, restricted to the characters proxies agree on).
pub const HEADER_NAME: &str = r"^[A-Za-z0-9][A-Za-z0-9_-]*$";

/// An HTTP field value (RFC 9110 §5.5): any text without control characters other than tab —
/// above all no CR or LF, which would let a value start a header or a message of its own.
pub const HEADER_VALUE: &str = r"^[^\x00-\x08\x0A-\x1F\x7F]*$";

/// A media type (RFC 9110 §8.3.1): `type/subtype`, then `; name=value` parameters whose value
/// is a token or a quoted string: `text/plain; charset=utf-8`, `application/problem+json`.
pub const MEDIA_TYPE: &str = concat!(
    r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+/[-!#$%&'*+.^_`|~0-9A-Za-z]+",
    r#"( *; *[-!#$%&'*+.^_`|~0-9A-Za-z]+=([-!#$%&'*+.^_`|~0-9A-Za-z]+|"([^"\\\x00-\x08\x0A-\x1F\x7F]|\\[^\x00-\x08\x0A-\x1F\x7F])*"))*$"#
);

/// The CEL rule that refuses a duration of zero (`0s`, `0ms`, `0m0s`): a timeout that gives an
/// exchange no time at all would fail every request at once.
pub const NONZERO_DURATION_RULE: &str = "!self.matches('^(0+(h|m|s|ms))+$')";

/// The message of [`NONZERO_DURATION_RULE`].
pub const NONZERO_DURATION_MESSAGE: &str = "a timeout must be above 0";

/// A percentage of pods as Kubernetes' disruption budgets take it: `0%` to `100%`.
pub const PERCENT: &str = r"^(100|[1-9]?[0-9])%$";

/// A host name, optionally with a leading wildcard label: `api.example.com`, `*.example.com`.
pub const HOSTNAME: &str =
    r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A host name without wildcard, lower case: `payments.example.com`.
pub const DNS_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// An IPv4 or IPv6 address, optionally with a prefix length: `10.0.0.0/8`, `2001:db8::/32`,
/// `192.0.2.7`. The schema refuses what is plainly not one; the operator checks the rest.
pub const ADDRESS_RANGE: &str = r"^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$";

/// A CORS origin: `*`, or `scheme://host[:port]` whose host may start with a `*.` label.
pub const CORS_ORIGIN: &str = r"^(\*|[A-Za-z][A-Za-z0-9+.-]*://(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(:[0-9]{1,5})?)$";

/// A header name in a CORS list, or `*`.
pub const CORS_HEADER: &str = r"^(\*|[A-Za-z0-9][A-Za-z0-9_-]*)$";

/// Most origins one CORS policy lists.
pub const MAX_ORIGINS: usize = 32;

/// Most contracts one Gateway or EdgeService may publish.
pub const MAX_CONTRACTS: usize = 16;
/// Most entries in one resource's `expose`.
pub const MAX_EXPOSURES: usize = 256;
/// Most routes in one contract.
pub const MAX_ROUTES: usize = 128;
/// Most certificates on one HTTPS listener.
pub const MAX_CERTIFICATES: usize = 16;
/// Most host names one certificate serves.
pub const MAX_CERTIFICATE_HOSTS: usize = 32;
/// Most clients one Gateway may declare.
pub const MAX_CLIENTS: usize = 64;
/// Most endpoints in one Aggregator.
pub const MAX_ENDPOINTS: usize = 64;
/// Most steps in one aggregation.
pub const MAX_STEPS: usize = 16;
/// Most weighted backends behind one route.
pub const MAX_BACKENDS: usize = 16;
/// Most header or query conditions in one match, and most entries in one header edit.
pub const MAX_CONDITIONS: usize = 16;
/// Most address ranges in one list.
pub const MAX_RANGES: usize = 64;
/// Longest name (route, client, step, Service).
pub const MAX_NAME: usize = 63;
/// Longest path or template.
pub const MAX_PATH: usize = 1024;
/// Longest jq rule.
pub const MAX_EXPRESSION: usize = 8192;
/// Longest body of a direct response.
pub const MAX_BODY: usize = 16384;

/// An RFC 3339 date-time, e.g. `2027-01-31T00:00:00Z` (the date is checked when compiled).
pub const TIMESTAMP: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

/// An `http` or `https` URL that can stand in a `Link` header: no spaces, quotes, angle
/// brackets or control characters.
pub const LINK_URL: &str = r#"^https?://[^\s<>"\x00-\x1F\x7F]+$"#;

/// The schema of a header map's values (`additionalProperties`): strings of at most
/// [`MAX_PATH`] characters that are valid header values.
pub fn header_values_schema() -> serde_json::Value {
    serde_json::json!({"type": "string", "maxLength": MAX_PATH, "pattern": HEADER_VALUE})
}

/// A Redis server's `host` or `host:port`: a DNS name or an IPv4 address, or a bracketed IPv6
/// address with a port.
pub const REDIS_ADDRESS: &str = r"^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5})$";
