//! Header work on proxied messages: the route's templated edits (remove, set, add),
//! hop-by-hop removal and the `X-Forwarded-*` / `X-Request-Id` headers.

use gatehouse_api::prepare::{self, HeaderValueTemplate};
use gatehouse_api::route_table::HeaderEdits;
use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::rewrite::TemplateVars;

/// Request id header, read from the client when present and generated otherwise.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Hop-by-hop headers (RFC 9110 §7.6.1) a proxy must not forward. `transfer-encoding` is left
/// to Pingora, which re-frames bodies itself.
// Header names as constants: `HeaderName::from_static` is evaluated when the program is
// compiled, not per request (called with a name not known at compile time, as in a loop over
// strings, it parses the name each time: ~100 instructions per name).
const HOP_BY_HOP: [HeaderName; 7] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::UPGRADE,
    http::header::PROXY_AUTHORIZATION,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// A route's header edits, parsed once per table load.
#[derive(Clone, Debug, Default)]
pub struct PreparedEdits {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, HeaderValueTemplate)>,
    add: Vec<(HeaderName, HeaderValueTemplate)>,
}

/// Why edits could not be prepared (the table check refuses such a table first).
#[derive(Debug, thiserror::Error)]
#[error("header edit {name:?}: {reason}")]
pub struct EditError {
    name: String,
    reason: String,
}

impl PreparedEdits {
    /// Parses names and value templates with [`gatehouse_api::prepare`], the checks the
    /// operator's validation runs too.
    pub fn prepare(edits: &HeaderEdits) -> Result<Self, EditError> {
        let error = |name: &str| {
            let name = name.to_owned();
            move |reason| EditError { name, reason }
        };
        let name = |n: &str| prepare::header_name(n).map_err(error(n));
        let entry = |(n, v): (&String, &String)| {
            Ok((name(n)?, prepare::header_value(v).map_err(error(n))?))
        };
        Ok(Self {
            remove: edits
                .remove
                .iter()
                .map(|n| name(n))
                .collect::<Result<_, _>>()?,
            set: edits
                .set
                .iter()
                .map(entry)
                .collect::<Result<_, EditError>>()?,
            add: edits
                .add
                .iter()
                .map(entry)
                .collect::<Result<_, EditError>>()?,
        })
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Applies remove, then set, then add.
    pub fn apply(&self, target: &mut impl HeaderTarget, vars: &TemplateVars<'_>) {
        for name in &self.remove {
            target.remove(name);
        }
        for (name, value) in &self.set {
            if let Some(value) = render(value, vars) {
                target.insert(name.clone(), value);
            }
        }
        for (name, value) in &self.add {
            if let Some(value) = render(value, vars) {
                target.append(name.clone(), value);
            }
        }
    }
}

fn render(value: &HeaderValueTemplate, vars: &TemplateVars<'_>) -> Option<HeaderValue> {
    match value {
        HeaderValueTemplate::Fixed(v) => Some(v.clone()),
        // A parameter holding bytes not allowed in a header value drops the edit.
        HeaderValueTemplate::Templated(t) => HeaderValue::from_str(&vars.render(t)).ok(),
    }
}

/// A header map that edits can change: Pingora's request and response headers.
pub trait HeaderTarget {
    /// Removes every value of `name`.
    fn remove(&mut self, name: &HeaderName);
    /// Replaces every value of `name`.
    fn insert(&mut self, name: HeaderName, value: HeaderValue);
    /// Adds a value beside the existing ones.
    fn append(&mut self, name: HeaderName, value: HeaderValue);
    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&HeaderValue>;
}

macro_rules! header_target {
    ($ty:ty) => {
        impl HeaderTarget for $ty {
            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
            fn insert(&mut self, name: HeaderName, value: HeaderValue) {
                // Inserting a valid name and value into Pingora's header map cannot fail.
                let _ = self.insert_header(name, value);
            }
            fn append(&mut self, name: HeaderName, value: HeaderValue) {
                let _ = self.append_header(name, value);
            }
            fn get(&self, name: &str) -> Option<&HeaderValue> {
                self.headers.get(name)
            }
        }
    };
}

header_target!(RequestHeader);
header_target!(ResponseHeader);

/// Removes hop-by-hop headers, including those the `Connection` header names. An upgrade
/// request keeps `connection` and `upgrade` so that Pingora can tunnel it.
pub fn remove_hop_by_hop<T: HeaderTarget>(target: &mut T, keep_upgrade: bool) {
    let listed: Vec<HeaderName> = target
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
                .filter(|n| !(keep_upgrade && n.as_str() == "upgrade"))
                .collect()
        })
        .unwrap_or_default();
    for name in listed {
        target.remove(&name);
    }
    for name in &HOP_BY_HOP {
        if keep_upgrade && (name == http::header::CONNECTION || name == http::header::UPGRADE) {
            continue;
        }
        target.remove(name);
    }
}

/// True when the request's `TE` lists `trailers` (as every gRPC client sends).
pub fn accepts_trailers<T: HeaderTarget>(target: &T) -> bool {
    target
        .get("te")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("trailers")
            })
        })
}

/// What the forwarding headers need from the downstream connection.
#[derive(Clone, Copy, Debug)]
pub struct ForwardedFacts<'a> {
    /// The client's IP address, when the connection is over IP.
    pub client_ip: Option<std::net::IpAddr>,
    /// `http`: this listener speaks plain HTTP.
    pub scheme: &'a str,
    /// The request's `Host`.
    pub host: Option<&'a str>,
    /// The request id.
    pub request_id: &'a str,
}

/// Sets `X-Forwarded-For` (appending the client), `X-Forwarded-Proto` and `X-Forwarded-Host`
/// (kept when an ingress in front already set them) and `X-Request-Id`.
pub fn set_forwarding_headers<T: HeaderTarget>(target: &mut T, facts: &ForwardedFacts<'_>) {
    if let Some(ip) = facts.client_ip {
        let value = match target.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(existing) if !existing.is_empty() => format!("{existing}, {ip}"),
            _ => ip.to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            target.insert(X_FORWARDED_FOR, value);
        }
    }
    if target.get("x-forwarded-proto").is_none()
        && let Ok(value) = HeaderValue::from_str(facts.scheme)
    {
        target.insert(X_FORWARDED_PROTO, value);
    }
    if target.get("x-forwarded-host").is_none()
        && let Some(value) = facts.host.and_then(|h| HeaderValue::from_str(h).ok())
    {
        target.insert(X_FORWARDED_HOST, value);
    }
    if let Ok(value) = HeaderValue::from_str(facts.request_id) {
        target.insert(REQUEST_ID, value);
    }
}

/// A new request id: 32 lower-case hex digits.
pub fn new_request_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn request() -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.insert_header("connection", "keep-alive, x-secret")
            .unwrap();
        r.insert_header("x-secret", "1").unwrap();
        r.insert_header("keep-alive", "timeout=5").unwrap();
        r.insert_header("x-old", "gone").unwrap();
        r.insert_header("x-tag", "a").unwrap();
        r
    }

    #[test]
    fn edits_remove_then_set_then_add_with_templates() {
        let edits = HeaderEdits {
            remove: vec!["x-old".to_owned()],
            set: BTreeMap::from([("x-client".to_owned(), "{client}/{id}".to_owned())]),
            add: BTreeMap::from([("x-tag".to_owned(), "b-{requestId}".to_owned())]),
        };
        let prepared = PreparedEdits::prepare(&edits).unwrap();
        let mut r = request();
        let names = ["id".to_owned()];
        let values = ["42".to_owned()];
        prepared.apply(
            &mut r,
            &TemplateVars {
                param_names: &names,
                params: &values,
                client: Some("web"),
                request_id: "r1",
            },
        );
        assert!(r.headers.get("x-old").is_none());
        assert_eq!(r.headers.get("x-client").unwrap(), "web/42");
        let tags: Vec<_> = r.headers.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b-r1"]);
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut r = request();
        remove_hop_by_hop(&mut r, false);
        for gone in ["connection", "keep-alive", "x-secret"] {
            assert!(r.headers.get(gone).is_none(), "{gone}");
        }
        assert!(r.headers.get("x-tag").is_some());
    }

    #[test]
    fn forwarding_headers_append_and_keep() {
        let mut r = request();
        r.insert_header("x-forwarded-for", "10.0.0.1").unwrap();
        r.insert_header("x-forwarded-proto", "https").unwrap();
        set_forwarding_headers(
            &mut r,
            &ForwardedFacts {
                client_ip: Some("127.0.0.2".parse().unwrap()),
                scheme: "http",
                host: Some("shop.test"),
                request_id: "abc",
            },
        );
        assert_eq!(
            r.headers.get("x-forwarded-for").unwrap(),
            "10.0.0.1, 127.0.0.2"
        );
        assert_eq!(r.headers.get("x-forwarded-proto").unwrap(), "https");
        assert_eq!(r.headers.get("x-forwarded-host").unwrap(), "shop.test");
        assert_eq!(r.headers.get("x-request-id").unwrap(), "abc");
        assert_eq!(new_request_id().len(), 32);
    }
}
