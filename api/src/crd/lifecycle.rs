//! A contract version's life — draft, published, deprecated, retired — and the deprecation a
//! version or one route announces to its clients: a leaf the contract and route types share.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::patterns::{CONTRACT_VERSION, LINK_URL, TIMESTAMP};

/// The transition rule of a resource's inline `contracts`: a Published version is not removed.
pub const INLINE_PUBLISHED_KEPT_RULE: &str = "!has(oldSelf.contracts) || oldSelf.contracts.all(o, o.lifecycle != 'Published' || (has(self.contracts) && self.contracts.exists(n, n.version == o.version)))";

/// Its message.
pub const PUBLISHED_KEPT_MESSAGE: &str = "a Published version cannot be removed: its clients rely on it; deprecate it first (lifecycle: Deprecated)";

/// Where a contract version is in its life. Only a published (or deprecated) version is held
/// to passive changes; see the README's table of what is passive and what breaks.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Lifecycle {
    /// Being written: served, and free to change in any way.
    #[default]
    Draft,
    /// Promised to clients: it may change only passively (routes, methods and wider matches
    /// added, backends and policies changed), and is never removed while published.
    Published,
    /// Still served and still held to passive changes, with `Deprecation`, `Sunset` and `Link`
    /// headers on every response (set `deprecation`). The step before retiring or removing it.
    Deprecated,
    /// No longer served: every route of it answers `410 Gone` with a problem body naming the
    /// successor. A version is retired only once deprecated.
    Retired,
}

impl Lifecycle {
    /// True for `Draft`, the default (left out when serialised).
    pub fn is_draft(&self) -> bool {
        *self == Self::Draft
    }
}

/// A deprecation announced to clients: the proxy adds `Deprecation: @SECONDS` (RFC 9745),
/// `Sunset: HTTP-DATE` (RFC 8594) and `Link: <URL>; rel="deprecation"` / `rel="sunset"` to
/// every response, and after the sunset may answer `410 Gone`.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.sunset) || timestamp(self.sunset) >= timestamp(self.since)").message("sunset may not be before since (the deprecation date)"))]
#[x_kube(validation = Rule::new("!self.goneAfterSunset || has(self.sunset)").message("goneAfterSunset needs a sunset"))]
pub struct Deprecation {
    /// When it is (or will be) deprecated, in RFC 3339, e.g. `2027-01-31T00:00:00Z`.
    #[schemars(length(max = 64), pattern(TIMESTAMP))]
    pub since: String,
    /// When it stops being served, in RFC 3339; not before `since`.
    #[schemars(length(max = 64), pattern(TIMESTAMP))]
    pub sunset: Option<String>,
    /// A page that says what is deprecated and what to use instead (`rel="deprecation"`).
    #[schemars(length(max = 2048), pattern(LINK_URL))]
    pub link: Option<String>,
    /// A page about the sunset (`rel="sunset"`).
    #[schemars(length(max = 2048), pattern(LINK_URL))]
    pub sunset_link: Option<String>,
    /// The version clients move to, e.g. `v2`: named in the `410 Gone` problem body. For a
    /// version, one of the same contract's other versions.
    #[schemars(length(max = 32), pattern(CONTRACT_VERSION))]
    pub successor: Option<String>,
    /// After `sunset`, answer `410 Gone` with a problem body instead of serving. Defaults to
    /// false: the routes keep serving, with the headers, until the version is retired.
    #[serde(default)]
    pub gone_after_sunset: bool,
}

impl Deprecation {
    /// `since` in Unix seconds.
    pub fn since_seconds(&self) -> Result<i64, String> {
        unix_seconds(&self.since)
    }

    /// `sunset` in Unix seconds, when set.
    pub fn sunset_seconds(&self) -> Option<Result<i64, String>> {
        self.sunset.as_deref().map(unix_seconds)
    }
}

/// An RFC 3339 date-time in Unix seconds (fractions dropped), or why it is not one.
pub fn unix_seconds(text: &str) -> Result<i64, String> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|error| format!("{text:?} is not an RFC 3339 date-time: {error}"))
}
