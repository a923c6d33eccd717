//! CORS over real HTTP, header by header as the Fetch standard reads them: the gateway answers
//! preflights itself (before credentials, which browsers never send on them), allowed origins'
//! responses carry the policy's headers (the backend's own CORS headers replaced), other
//! origins get none, and every answer that depends on the origin says `Vary: Origin`.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::tables::*;
use common::*;
use gatehouse_api::route_table::{ApiKeyEntry, ClientEntry, CorsEntry, PathKind, RouteEntry};

const SHOP: &str = "https://shop.example.com";

fn policy(origins: &[&str], credentials: bool) -> CorsEntry {
    CorsEntry {
        allow_origins: origins.iter().map(|s| s.to_string()).collect(),
        allow_methods: vec!["GET".into(), "POST".into()],
        allow_headers: vec!["content-type".into(), "x-api-key".into()],
        expose_headers: vec!["x-request-id".into()],
        allow_credentials: credentials,
        max_age_seconds: Some(600),
    }
}

/// A backend that sets its own, broader CORS header.
async fn permissive_backend() -> Upstream {
    Upstream::start(Arc::new(|_seen: SeenRequest| {
        Box::pin(async move {
            let mut response = full(200, "orders");
            response
                .headers_mut()
                .insert("access-control-allow-origin", "*".parse().unwrap());
            response
        }) as UpFuture
    }))
    .await
}

/// Starts the proxy with a keyed client `web` and the routes given.
async fn serve(name: &str, routes: Vec<RouteEntry>) -> Proxy {
    let dir = temp_dir(name);
    write_secret(&dir, "web-keys", "web-1");
    let mut table = table(routes);
    table.clients = vec![ClientEntry {
        name: "web".into(),
        api_key: Some(ApiKeyEntry {
            secret: "web-keys".into(),
            header: "x-api-key".into(),
        }),
        jwt: None,
        certificate: None,
        max_in_flight: None,
        rate_limit: None,
    }];
    serve_with_secrets(&dir, &table.to_bytes()).await
}

fn orders(backend: &Upstream, cors: Option<CorsEntry>) -> RouteEntry {
    let mut route = proxy(
        "v1/orders",
        PathKind::Exact,
        "/v1/orders",
        vec![upstream("orders", backend.port(), None, 1)],
    );
    route.methods = vec!["GET".into(), "POST".into()];
    route.cors = cors.map(Box::new);
    route
}

fn preflight(
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> hyper::Request<http_body_util::Full<Bytes>> {
    let mut builder = request("OPTIONS", "/v1/orders")
        .header("origin", origin)
        .header("access-control-request-method", method);
    if let Some(headers) = headers {
        builder = builder.header("access-control-request-headers", headers);
    }
    builder
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap()
}

fn from(origin: Option<&str>, key: Option<&str>) -> hyper::Request<http_body_util::Full<Bytes>> {
    let mut builder = request("GET", "/v1/orders");
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    builder
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap()
}

/// Every `Access-Control-*` header of a reply, for "none at all" checks.
fn cors_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preflight_is_answered_by_the_gateway_with_the_policy_and_without_credentials() {
    let backend = permissive_backend().await;
    let proxy = serve(
        "cors-preflight",
        vec![orders(&backend, Some(policy(&[SHOP], true)))],
    )
    .await;

    let reply = proxy
        .send(preflight(SHOP, "POST", Some("content-type, x-api-key")))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("content-type, x-api-key")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        reply.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert!(reply.body.is_empty());

    // An origin the policy does not list: refused, with no CORS header at all.
    let reply = proxy
        .send(preflight("https://evil.example", "POST", None))
        .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
    let metrics = proxy.metrics().await;
    let counted = "gatehouse_refused_requests_total{route=\"v1/orders\",reason=\"cors_origin\"} 1";
    assert!(metrics.contains(counted), "{counted} not in {metrics}");

    // A preflight for a method no route with a policy serves is an ordinary OPTIONS request:
    // no route serves OPTIONS here.
    let reply = proxy.send(preflight(SHOP, "DELETE", None)).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert!(
        backend.requests().is_empty(),
        "preflights never reach the backend"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_carry_the_policy_for_allowed_origins_only_and_replace_the_backends() {
    let backend = permissive_backend().await;
    let proxy = serve(
        "cors-actual",
        vec![orders(
            &backend,
            Some(policy(&[SHOP, "https://*.preview.example.com"], true)),
        )],
    )
    .await;

    for origin in [SHOP, "https://pr-42.preview.example.com"] {
        let reply = proxy.send(from(Some(origin), Some("web-1"))).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let allow: Vec<_> = reply
            .headers
            .get_all("access-control-allow-origin")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            allow,
            [origin],
            "one value, the origin, never the backend's '*'"
        );
        assert_eq!(
            reply.header("access-control-allow-credentials"),
            Some("true")
        );
        assert_eq!(
            reply.header("access-control-expose-headers"),
            Some("x-request-id")
        );
        assert_eq!(reply.header("vary"), Some("Origin"));
        assert_eq!(reply.header("access-control-allow-methods"), None);
    }

    // Another origin, or none: no CORS header (the backend's removed too), but Vary: Origin.
    for origin in [
        Some("https://evil.example"),
        Some("https://preview.example.com"),
        None,
    ] {
        let reply = proxy.send(from(origin, Some("web-1"))).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(cors_headers(&reply), Vec::<String>::new(), "{origin:?}");
        assert_eq!(reply.header("vary"), Some("Origin"), "{origin:?}");
    }

    // The gateway's own refusal is readable by the allowed page.
    let reply = proxy.send(from(Some(SHOP), None)).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), Some(SHOP));
}

#[tokio::test(flavor = "multi_thread")]
async fn any_origin_without_credentials_is_a_star_and_routes_without_a_policy_are_untouched() {
    let backend = permissive_backend().await;
    let mut open = policy(&["*"], false);
    open.max_age_seconds = None;
    let mut plain = proxy(
        "v1/plain",
        PathKind::Exact,
        "/v1/plain",
        vec![upstream("orders", backend.port(), None, 1)],
    );
    plain.methods = vec!["GET".into(), "OPTIONS".into()];
    let proxy = serve("cors-any", vec![orders(&backend, Some(open)), plain]).await;

    let reply = proxy
        .send(from(Some("https://anyone.example"), Some("web-1")))
        .await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("vary"), None, "'*' does not vary by origin");
    assert_eq!(reply.header("access-control-allow-credentials"), None);

    let reply = proxy
        .send(preflight("https://anyone.example", "GET", None))
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(reply.header("access-control-max-age"), None);

    // A route without a policy: the backend's headers pass as they are, and its OPTIONS
    // requests (a preflight included) go to the backend, with credentials checked.
    let request = request("GET", "/v1/plain")
        .header("origin", SHOP)
        .header("x-api-key", "web-1")
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let reply = proxy.send(request).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let options = request_options_plain(Some("web-1"));
    let reply = proxy.send(options).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(backend.requests().last().unwrap().method, "OPTIONS");
    let reply = proxy.send(request_options_plain(None)).await;
    assert_eq!(reply.status, 401);
}

fn request_options_plain(key: Option<&str>) -> hyper::Request<http_body_util::Full<Bytes>> {
    let mut builder = request("OPTIONS", "/v1/plain")
        .header("origin", SHOP)
        .header("access-control-request-method", "GET");
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    builder
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap()
}
