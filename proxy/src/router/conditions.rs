//! Route conditions besides the path: host, methods, headers and query parameters.

use std::borrow::Cow;

use gatehouse_api::route_table::{RouteEntry, ValueCondition};

use super::RequestFacts;

/// Read access to a request's headers; names are given lower case.
pub trait RequestHeaders {
    /// True when a header `name` is present and, if `value` is given, one of its values equals it.
    fn has_header(&self, name: &str, value: Option<&str>) -> bool;
}

impl RequestHeaders for http::HeaderMap {
    fn has_header(&self, name: &str, value: Option<&str>) -> bool {
        match value {
            None => self.contains_key(name),
            Some(wanted) => self
                .get_all(name)
                .iter()
                .any(|v| v.as_bytes() == wanted.as_bytes()),
        }
    }
}

impl RequestHeaders for [(&str, &str)] {
    fn has_header(&self, name: &str, value: Option<&str>) -> bool {
        self.iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && value.is_none_or(|wanted| *v == wanted))
    }
}

/// A route's host condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum HostPattern {
    /// Equal, ignoring case.
    Exact(String),
    /// `*.SUFFIX`: exactly one label before `SUFFIX`.
    Wildcard(String),
}

/// Every condition of a route but its path.
#[derive(Clone, Debug)]
pub(super) struct Conditions {
    host: Option<HostPattern>,
    methods: Vec<String>,
    headers: Vec<ValueCondition>,
    query: Vec<ValueCondition>,
}

impl Conditions {
    pub(super) fn from_entry(entry: &RouteEntry) -> Self {
        let host = entry.host.as_deref().map(|h| {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            match h.strip_prefix("*.") {
                Some(suffix) => HostPattern::Wildcard(suffix.to_owned()),
                None => HostPattern::Exact(h),
            }
        });
        Self {
            host,
            methods: entry.methods.clone(),
            headers: entry
                .headers
                .iter()
                .map(|h| ValueCondition {
                    name: h.name.to_ascii_lowercase(),
                    value: h.value.clone(),
                })
                .collect(),
            query: entry.query.clone(),
        }
    }

    pub(super) fn host(&self) -> Option<&HostPattern> {
        self.host.as_ref()
    }

    /// True when every condition holds. `host` is already normalised.
    pub(super) fn accept<H: RequestHeaders + ?Sized>(
        &self,
        request: &RequestFacts<'_, H>,
        host: Option<&str>,
    ) -> bool {
        self.host_matches(host)
            && (self.methods.is_empty() || self.methods.iter().any(|m| m == request.method))
            && self
                .headers
                .iter()
                .all(|c| request.headers.has_header(&c.name, c.value.as_deref()))
            && self
                .query
                .iter()
                .all(|c| query_has(request.query, &c.name, c.value.as_deref()))
    }

    fn host_matches(&self, host: Option<&str>) -> bool {
        match (&self.host, host) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(HostPattern::Exact(want)), Some(host)) => want == host,
            (Some(HostPattern::Wildcard(suffix)), Some(host)) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        }
    }
}

/// True when the query has parameter `name` (with `value`, if given). Names and values are
/// compared after percent-decoding and `+` → space.
pub(crate) fn query_has(query: Option<&str>, name: &str, value: Option<&str>) -> bool {
    let Some(query) = query else {
        return false;
    };
    query.split('&').filter(|p| !p.is_empty()).any(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        decode_component(n) == name && value.is_none_or(|wanted| decode_component(v) == wanted)
    })
}

/// Decodes `%XX` escapes and `+` of a query component; invalid escapes stay as written.
pub(crate) fn decode_component(text: &str) -> Cow<'_, str> {
    if !text.contains(['%', '+']) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && hex_pair(bytes[i + 1], bytes[i + 2]).is_some() => {
                out.extend(hex_pair(bytes[i + 1], bytes[i + 2]));
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some(u8::try_from(digit(high)? * 16 + digit(low)?).unwrap_or(0))
}
