//! Where a matched request goes: the upstream path (rewrite with path parameters, prefix
//! replacement, base-path stripping) and redirect locations. Pure string work.

use std::borrow::Cow;

use gatehouse_api::template::Template;

/// Values a template can use: the route's path parameters, `{client}` and `{requestId}`.
#[derive(Clone, Copy, Debug)]
pub struct TemplateVars<'a> {
    /// The route's parameter names, in pattern order.
    pub param_names: &'a [String],
    /// Their values for this request, same order.
    pub params: &'a [String],
    /// The calling client's name, when known.
    pub client: Option<&'a str>,
    /// The request id.
    pub request_id: &'a str,
}

impl<'a> TemplateVars<'a> {
    /// Renders `template`; unknown placeholders render empty.
    pub fn render(&self, template: &'a Template) -> String {
        template.render(|name| self.lookup(name))
    }

    fn lookup(&self, name: &str) -> Option<Cow<'a, str>> {
        match name {
            "client" => self.client.map(Cow::Borrowed),
            "requestId" => Some(Cow::Borrowed(self.request_id)),
            _ => self
                .param_names
                .iter()
                .position(|n| n == name)
                .and_then(|i| self.params.get(i))
                .map(|v| Cow::Borrowed(v.as_str())),
        }
    }
}

/// How a route maps request paths to upstream paths, decided when the table is loaded.
#[derive(Clone, Debug)]
pub enum PathRewrite {
    /// Send the request path unchanged.
    Keep,
    /// Strip this many leading segments: the contract's base path (`/v1`, `/{tenant}/v1`).
    StripSegments(usize),
    /// Send this template; on a Prefix route, the part of the request path below the matched
    /// prefix is appended.
    Replace {
        /// The upstream path template.
        template: Template,
        /// The route is a Prefix route.
        append_rest: bool,
    },
}

impl PathRewrite {
    /// The rewrite for an upstream: `upstream_path` when given, else the request path with the
    /// route's base path (as many segments as it has) stripped.
    pub fn for_upstream(
        upstream_path: Option<&str>,
        base_path: Option<&str>,
        is_prefix: bool,
    ) -> Self {
        if let Some(template) = upstream_path.and_then(|p| Template::parse(p).ok()) {
            return Self::Replace {
                template,
                append_rest: is_prefix,
            };
        }
        match base_path.map(|b| gatehouse_api::path::segments(b).len()) {
            Some(n) if n > 0 => Self::StripSegments(n),
            _ => Self::Keep,
        }
    }

    /// The path and query sent upstream. `rest` is the part of the request path below a
    /// Prefix route's matched prefix (empty for full matches).
    pub fn apply(
        &self,
        path: &str,
        rest: &str,
        query: Option<&str>,
        vars: &TemplateVars<'_>,
    ) -> String {
        let mut out = match self {
            Self::Keep => path.to_owned(),
            Self::StripSegments(n) => {
                // The route matched, so the path starts with the base path's segments.
                let mut rest = path;
                for _ in 0..*n {
                    let trimmed = rest.trim_start_matches('/');
                    rest = trimmed.find('/').map_or("", |i| &trimmed[i..]);
                }
                rest.to_owned()
            }
            Self::Replace {
                template,
                append_rest,
            } => {
                let rendered = template.render(|name| vars.lookup(name));
                if *append_rest && !rest.is_empty() && rest != "/" {
                    let mut joined = rendered.trim_end_matches('/').to_owned();
                    joined.push_str(rest);
                    joined
                } else {
                    rendered
                }
            }
        };
        if out.is_empty() {
            out.push('/');
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            out.push('?');
            out.push_str(query);
        }
        out
    }
}

/// The parts of a request a redirect keeps when the route does not set them.
#[derive(Clone, Copy, Debug)]
pub struct RedirectOrigin<'a> {
    /// `http` or `https` as the client used it.
    pub scheme: &'a str,
    /// `Host` header, possibly with a port.
    pub host: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Raw query.
    pub query: Option<&'a str>,
}

/// The `Location` of a redirect.
pub fn redirect_location(
    scheme: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
    path: Option<&str>,
    origin: &RedirectOrigin<'_>,
) -> String {
    let scheme = scheme.unwrap_or(origin.scheme);
    let (origin_name, origin_port) = split_host_port(origin.host);
    let name = host.unwrap_or(origin_name);
    let port = port.map(|p| p.to_string()).or_else(|| {
        host.is_none()
            .then(|| origin_port.map(str::to_owned))
            .flatten()
    });
    let mut location = format!("{scheme}://{name}");
    if let Some(port) = port {
        let default = matches!((scheme, port.as_str()), ("http", "80") | ("https", "443"));
        if !default {
            location.push(':');
            location.push_str(&port);
        }
    }
    location.push_str(path.unwrap_or(origin.path));
    if let Some(query) = origin.query.filter(|q| !q.is_empty()) {
        location.push('?');
        location.push_str(query);
    }
    location
}

fn split_host_port(host: &str) -> (&str, Option<&str>) {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || name.starts_with('[') => {
            if port.bytes().all(|b| b.is_ascii_digit()) && !port.is_empty() {
                (name, Some(port))
            } else {
                (host, None)
            }
        }
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(names: &'a [String], values: &'a [String]) -> TemplateVars<'a> {
        TemplateVars {
            param_names: names,
            params: values,
            client: Some("web"),
            request_id: "rid",
        }
    }

    #[test]
    fn replaces_with_params() {
        let names = ["id".to_owned()];
        let values = ["42".to_owned()];
        let r = PathRewrite::for_upstream(Some("/items/{id}"), Some("/v1"), false);
        assert_eq!(
            r.apply("/v1/products/42", "", Some("a=1"), &vars(&names, &values)),
            "/items/42?a=1"
        );
    }

    #[test]
    fn prefix_replacement_appends_the_rest() {
        let r = PathRewrite::for_upstream(Some("/api/orders"), Some("/v1"), true);
        let v = vars(&[], &[]);
        assert_eq!(
            r.apply("/v1/orders/7/lines", "/7/lines", None, &v),
            "/api/orders/7/lines"
        );
        assert_eq!(r.apply("/v1/orders", "", None, &v), "/api/orders");
        let root = PathRewrite::for_upstream(Some("/"), Some("/v1"), true);
        assert_eq!(root.apply("/v1/orders/7", "/7", None, &v), "/7");
        assert_eq!(root.apply("/v1/orders", "", None, &v), "/");
    }

    #[test]
    fn strips_the_contract_base_path() {
        let v = vars(&[], &[]);
        let r = PathRewrite::for_upstream(None, Some("/v1"), true);
        assert_eq!(r.apply("/v1/orders/7", "/7", None, &v), "/orders/7");
        let custom = PathRewrite::for_upstream(None, Some("/shop/v2"), true);
        assert_eq!(
            custom.apply("/shop/v2/orders/7", "/7", None, &v),
            "/orders/7"
        );
        let templated = PathRewrite::for_upstream(None, Some("/{tenant}/v1"), false);
        assert_eq!(templated.apply("/acme/v1/orders", "", None, &v), "/orders");
        let unprefixed = PathRewrite::for_upstream(None, Some("/"), false);
        assert_eq!(unprefixed.apply("/orders", "", None, &v), "/orders");
        let aggregator = PathRewrite::for_upstream(None, None, false);
        assert_eq!(
            aggregator.apply("/products/1/page", "", Some("x=1"), &v),
            "/products/1/page?x=1"
        );
        let base_only = PathRewrite::for_upstream(None, Some("/v1"), false);
        assert_eq!(base_only.apply("/v1", "", None, &v), "/");
    }

    #[test]
    fn renders_builtin_variables() {
        let t = Template::parse("{client}-{requestId}-{missing}").unwrap();
        assert_eq!(vars(&[], &[]).render(&t), "web-rid-");
    }

    #[test]
    fn redirect_keeps_what_it_does_not_set() {
        let origin = RedirectOrigin {
            scheme: "http",
            host: "shop.test:8080",
            path: "/v1/cart",
            query: Some("x=1"),
        };
        assert_eq!(
            redirect_location(None, None, None, Some("/v1/orders/cart"), &origin),
            "http://shop.test:8080/v1/orders/cart?x=1"
        );
        assert_eq!(
            redirect_location(Some("https"), Some("example.com"), None, None, &origin),
            "https://example.com/v1/cart?x=1"
        );
        assert_eq!(
            redirect_location(Some("https"), None, Some(443), None, &origin),
            "https://shop.test/v1/cart?x=1"
        );
    }
}
