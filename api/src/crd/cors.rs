//! Cross-origin resource sharing: which web pages (origins) a browser lets call the routes.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::method::HttpMethod;
use super::patterns::*;

/// What browsers may do across origins (CORS, as the Fetch standard defines it). The gateway
/// answers preflight requests (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
/// itself, before clients are recognised (browsers send no credentials on them), and adds the
/// CORS headers to the responses of allowed origins. A request from an origin not listed gets
/// no CORS headers (its preflight: 403), so the browser does not let the page read the answer.
/// A route's own `cors` replaces its contract's.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.allowCredentials) || !self.allowCredentials || (!self.allowOrigins.exists(o, o == '*') && (!has(self.allowHeaders) || !self.allowHeaders.exists(h, h == '*')) && (!has(self.exposeHeaders) || !self.exposeHeaders.exists(h, h == '*')))").message("allowCredentials cannot go with '*': browsers take '*' literally on requests with credentials; list the origins and headers"))]
pub struct Cors {
    /// Origins allowed: `https://shop.example.com`, `http://localhost:3000`, a wildcard
    /// subdomain `https://*.example.com` (any subdomain of example.com, not example.com
    /// itself), or `*` (any origin). Compared without regard to ASCII case; `null` never
    /// matches.
    #[schemars(length(min = 1, max = MAX_ORIGINS), inner(length(max = 253), pattern(CORS_ORIGIN)))]
    pub allow_origins: Vec<String>,
    /// Methods allowed (`Access-Control-Allow-Methods`). Defaults to the route's methods, or,
    /// when it matches every method, GET, HEAD, POST, PUT, PATCH and DELETE.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub allow_methods: Vec<HttpMethod>,
    /// Request headers a page may send beyond the CORS-safelisted ones
    /// (`Access-Control-Allow-Headers`), e.g. `content-type`, `authorization`, `x-api-key`; `*`:
    /// any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS), inner(length(max = MAX_NAME), pattern(CORS_HEADER)))]
    pub allow_headers: Vec<String>,
    /// Response headers a page may read beyond the CORS-safelisted ones
    /// (`Access-Control-Expose-Headers`), e.g. `x-request-id`; `*`: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_CONDITIONS), inner(length(max = MAX_NAME), pattern(CORS_HEADER)))]
    pub expose_headers: Vec<String>,
    /// Whether pages may send cookies and HTTP authentication
    /// (`Access-Control-Allow-Credentials: true`). Not with `*` in any list.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer, e.g. `10m`
    /// (`Access-Control-Max-Age`, in whole seconds). Unset: the browser's default (5 s).
    #[schemars(length(max = 32), pattern(DURATION))]
    pub max_age: Option<String>,
}
