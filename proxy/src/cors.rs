//! CORS (the Fetch standard's cross-origin protocol) for a route: which origins are allowed,
//! the answer to a preflight, and the headers an allowed origin's responses carry. Pure;
//! prepared with the table.

use gatehouse_api::route_table::CorsEntry;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers to add to a response.
pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// One allowed origin.
#[derive(Clone, Debug, PartialEq, Eq)]
enum OriginRule {
    /// `*`.
    Any,
    /// `scheme://host[:port]`, lower case.
    Exact(String),
    /// `scheme://*.domain[:port]`: `scheme://` and `.domain[:port]`, lower case.
    Subdomain { scheme: String, suffix: String },
}

impl OriginRule {
    fn parse(text: &str) -> Self {
        if text == "*" {
            return Self::Any;
        }
        match text.split_once("://*.") {
            Some((scheme, rest)) => Self::Subdomain {
                scheme: format!("{scheme}://"),
                suffix: format!(".{rest}"),
            },
            None => Self::Exact(text.to_owned()),
        }
    }

    /// `origin` is lower case.
    fn admits(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => exact == origin,
            Self::Subdomain { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|authority| authority.strip_suffix(suffix.as_str()))
                .is_some_and(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                }),
        }
    }
}

/// A route's CORS policy, prepared.
#[derive(Clone, Debug)]
pub struct CorsPolicy {
    origins: Vec<OriginRule>,
    credentials: bool,
    allow_methods: HeaderValue,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

/// A comma-separated header value of `items`, or none when there are none.
fn list(items: &[String]) -> Result<Option<HeaderValue>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&items.join(", "))
        .map(Some)
        .map_err(|_| format!("{items:?} is not a header value"))
}

impl CorsPolicy {
    /// Prepares a table's policy.
    pub fn prepare(entry: &CorsEntry) -> Result<Self, String> {
        Ok(Self {
            origins: entry
                .allow_origins
                .iter()
                .map(|o| OriginRule::parse(o))
                .collect(),
            credentials: entry.allow_credentials,
            allow_methods: list(&entry.allow_methods)?
                .unwrap_or_else(|| HeaderValue::from_static("GET, HEAD, POST")),
            allow_headers: list(&entry.allow_headers)?,
            expose_headers: list(&entry.expose_headers)?,
            max_age: entry.max_age_seconds.map(HeaderValue::from),
        })
    }

    /// True when any origin is allowed and no credentials: `*` answers every origin the
    /// same, so responses do not vary by origin.
    fn answers_any_alike(&self) -> bool {
        !self.credentials && self.origins.contains(&OriginRule::Any)
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, when it is allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        if self.answers_any_alike() {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins
            .iter()
            .any(|rule| rule.admits(&text))
            .then(|| origin.clone())
    }

    /// The headers of the answer to a preflight from `origin`; `None` when the origin is not
    /// allowed (the answer then carries no CORS header).
    pub fn preflight(&self, headers: &HeaderMap) -> Option<Headers> {
        let allow_origin = self.allow_origin(headers.get(ORIGIN))?;
        let mut answer = vec![
            (ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin),
            (ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone()),
        ];
        if let Some(allowed) = &self.allow_headers {
            answer.push((ACCESS_CONTROL_ALLOW_HEADERS, allowed.clone()));
        }
        if let Some(age) = &self.max_age {
            answer.push((ACCESS_CONTROL_MAX_AGE, age.clone()));
        }
        if self.credentials {
            answer.push((
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        answer.push((VARY, HeaderValue::from_static(PREFLIGHT_VARY)));
        Some(answer)
    }

    /// The headers a response to a request with `headers` carries: for an allowed origin,
    /// `Access-Control-Allow-Origin` and what goes with it; and `Vary: Origin` whenever the
    /// answer depends on the origin, so caches keep the variants apart.
    pub fn response_headers(&self, headers: &HeaderMap) -> Headers {
        let mut added = Vec::new();
        if let Some(allow_origin) = self.allow_origin(headers.get(ORIGIN)) {
            added.push((ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin));
            if self.credentials {
                added.push((
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                ));
            }
            if let Some(exposed) = &self.expose_headers {
                added.push((ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone()));
            }
        }
        if !self.answers_any_alike() {
            added.push((VARY, HeaderValue::from_static("Origin")));
        }
        added
    }
}

/// What a preflight's answer varies by.
const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// The method a preflight asks about: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn preflight_method<'a>(method: &http::Method, headers: &'a HeaderMap) -> Option<&'a str> {
    if method != http::Method::OPTIONS || !headers.contains_key(ORIGIN) {
        return None;
    }
    headers
        .get(ACCESS_CONTROL_REQUEST_METHOD)?
        .to_str()
        .ok()
        .filter(|m| !m.is_empty())
}

/// True for the CORS headers a backend may set itself, which a route with a policy replaces.
pub fn is_cors_response_header(name: &HeaderName) -> bool {
    name.as_str().starts_with("access-control-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str], credentials: bool) -> CorsPolicy {
        CorsPolicy::prepare(&CorsEntry {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["content-type".into(), "x-api-key".into()],
            expose_headers: vec!["x-request-id".into()],
            allow_credentials: credentials,
            max_age_seconds: Some(600),
        })
        .expect("a valid policy")
    }

    fn from(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_str(origin).expect("a value"));
        headers
    }

    fn get<'a>(headers: &'a Headers, name: &HeaderName) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn exact_and_subdomain_origins_and_nothing_else() {
        let p = policy(
            &["https://shop.example.com", "https://*.example.org:8443"],
            false,
        );
        for (origin, allowed) in [
            ("https://shop.example.com", true),
            ("HTTPS://SHOP.EXAMPLE.COM", true),
            ("http://shop.example.com", false),
            ("https://shop.example.com:443", false),
            ("https://evil-shop.example.com", false),
            ("https://a.example.org:8443", true),
            ("https://a.b.example.org:8443", true),
            ("https://example.org:8443", false),
            ("https://a.example.org", false),
            ("https://evilexample.org:8443", false),
            ("null", false),
        ] {
            let answer = p.response_headers(&from(origin));
            assert_eq!(
                get(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN).is_some(),
                allowed,
                "{origin}"
            );
            assert_eq!(get(&answer, &VARY), Some("Origin"), "{origin}");
        }
        // The allowed origin is echoed as sent.
        let answer = p.response_headers(&from("https://shop.example.com"));
        assert_eq!(
            get(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://shop.example.com")
        );
        assert_eq!(
            get(&answer, &ACCESS_CONTROL_EXPOSE_HEADERS),
            Some("x-request-id")
        );
        assert_eq!(get(&answer, &ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
    }

    #[test]
    fn any_origin_is_a_star_without_credentials_and_an_echo_with_them() {
        let open = policy(&["*"], false);
        let answer = open.response_headers(&from("https://anyone.example"));
        assert_eq!(get(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
        assert_eq!(get(&answer, &VARY), None);
        // A request without Origin is not a CORS request: nothing but Vary, if anything.
        assert!(open.response_headers(&HeaderMap::new()).is_empty());
        let strict = policy(&["https://app.example"], true);
        let answer = strict.response_headers(&from("https://app.example"));
        assert_eq!(
            get(&answer, &ACCESS_CONTROL_ALLOW_ORIGIN),
            Some("https://app.example")
        );
        assert_eq!(
            get(&answer, &ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
    }

    #[test]
    fn a_preflight_answers_with_the_policy_or_not_at_all() {
        let p = policy(&["https://shop.example.com"], true);
        let answer = p
            .preflight(&from("https://shop.example.com"))
            .expect("allowed");
        assert_eq!(
            get(&answer, &ACCESS_CONTROL_ALLOW_METHODS),
            Some("GET, POST")
        );
        assert_eq!(
            get(&answer, &ACCESS_CONTROL_ALLOW_HEADERS),
            Some("content-type, x-api-key")
        );
        assert_eq!(get(&answer, &ACCESS_CONTROL_MAX_AGE), Some("600"));
        assert_eq!(
            get(&answer, &ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
        assert_eq!(get(&answer, &VARY), Some(PREFLIGHT_VARY));
        assert!(p.preflight(&from("https://evil.example")).is_none());
        assert!(p.preflight(&HeaderMap::new()).is_none());
    }

    #[test]
    fn a_preflight_is_options_with_origin_and_a_requested_method() {
        let mut headers = from("https://shop.example.com");
        assert_eq!(preflight_method(&http::Method::OPTIONS, &headers), None);
        headers.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("PUT"),
        );
        assert_eq!(
            preflight_method(&http::Method::OPTIONS, &headers),
            Some("PUT")
        );
        assert_eq!(preflight_method(&http::Method::GET, &headers), None);
        headers.remove(ORIGIN);
        assert_eq!(preflight_method(&http::Method::OPTIONS, &headers), None);
    }
}
