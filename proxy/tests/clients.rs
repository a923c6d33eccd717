//! Clients over real HTTP: API keys from a kubelet-style Secret volume name the caller (and
//! refuse everyone else before any backend sees the request), rotated keys apply without a
//! restart, and a client's rate limit answers 429 with `Retry-After`.
#![allow(clippy::unwrap_used)]

mod common;

use common::tables::*;
use common::*;
use gatehouse_api::route_table::{ApiKeyEntry, ClientEntry, PathKind, RateLimitEntry, RouteTable};

fn keyed(name: &str, secret: &str, header: &str, limit: Option<(u32, u32)>) -> ClientEntry {
    ClientEntry {
        name: name.to_owned(),
        api_key: Some(ApiKeyEntry {
            secret: secret.to_owned(),
            header: header.to_owned(),
        }),
        jwt: None,
        rate_limit: limit.map(|(requests_per_second, burst)| RateLimitEntry {
            requests_per_second,
            burst,
        }),
    }
}

/// A Gateway table with two keyed clients and one route that tells the backend who called.
fn gateway(backend_port: u16) -> RouteTable {
    let mut route = proxy(
        "v1/orders",
        PathKind::Exact,
        "/v1/orders",
        vec![upstream("orders", backend_port, None, 1)],
    );
    route.request_headers = edits(&[("x-client", "{client}")], &[], &[]);
    let mut table = table(vec![route]);
    table.clients = vec![
        keyed("partner", "partner-keys", "x-partner-key", Some((1, 2))),
        keyed("web", "web-keys", "x-api-key", None),
    ];
    table
}

fn with_header(name: &str, value: &str) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    request("GET", "/v1/orders")
        .header(name, value)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_name_the_client_refuse_everyone_else_and_rotate_without_a_restart() {
    let backend = Upstream::named("orders").await;
    let dir = temp_dir("clients");
    let secrets = dir.join("secrets");
    let mut web_keys = ConfigMapDir::new(&secrets.join("web-keys"));
    web_keys.publish_file("primary", b"web-key-1\n");
    let mut partner_keys = ConfigMapDir::new(&secrets.join("partner-keys"));
    partner_keys.publish_file("key", b"partner-key-1");
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    mount.publish(&gateway(backend.port()).to_bytes());
    let routes = mount.routes_path();
    let proxy = Proxy::start(
        &[
            "--routes",
            routes.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
        &dir,
    )
    .await;
    proxy.wait_admin("/readyz", 200).await;

    // No key, a wrong key, a key in the other client's header: 401, and no backend call.
    for request in [
        get("/v1/orders"),
        with_header("x-api-key", "web-key-2"),
        with_header("x-api-key", "partner-key-1"),
    ] {
        let reply = proxy.send(request).await;
        assert_eq!(reply.status, 401, "{}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()["title"], "Unauthorized");
        assert_eq!(reply.json()["route"], "v1/orders");
    }
    assert!(
        backend.requests().is_empty(),
        "refused requests never reach a backend"
    );

    // A valid key names its client; the key itself stays at the gateway.
    let reply = proxy.send(with_header("x-api-key", "web-key-1")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = backend.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-client"), Some("web"));
    assert_eq!(seen[0].header("x-api-key"), None);

    // The partner may send a burst of 2, then waits for its next token.
    for _ in 0..2 {
        let reply = proxy
            .send(with_header("x-partner-key", "partner-key-1"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let limited = proxy
        .send(with_header("x-partner-key", "partner-key-1"))
        .await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(limited.json()["title"], "Too many requests");
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(
        backend.requests().last().unwrap().header("x-client"),
        Some("partner")
    );
    assert_eq!(
        backend.requests().len(),
        3,
        "the limited call is not sent on"
    );
    // The web client has no limit of its own.
    for _ in 0..5 {
        assert_eq!(
            proxy
                .send(with_header("x-api-key", "web-key-1"))
                .await
                .status,
            200
        );
    }
    let metrics = proxy.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("client=\"partner\"") && l.contains("4xx")),
        "refusals are counted per client:\n{metrics}"
    );
    assert!(!metrics.contains("partner-key-1") && !proxy.log_text().contains("web-key-1"));

    // Rotation: the kubelet swaps the Secret volume; the new key works, the old one stops.
    web_keys.publish_file("primary", b"web-key-2\n");
    proxy.wait_generation(2).await;
    let reply = proxy.send(with_header("x-api-key", "web-key-2")).await;
    assert_eq!(
        reply.status,
        200,
        "the rotated key is accepted: {}",
        reply.text()
    );
    assert_eq!(
        proxy
            .send(with_header("x-api-key", "web-key-1"))
            .await
            .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_whose_secret_is_not_mounted_keeps_the_table_out() {
    let dir = temp_dir("clients-missing");
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    mount.publish(&gateway(free_port()).to_bytes());
    let routes = mount.routes_path();
    let empty = dir.join("no-secrets");
    let proxy = Proxy::start(
        &[
            "--routes",
            routes.to_str().unwrap(),
            "--secrets-dir",
            empty.to_str().unwrap(),
        ],
        &dir,
    )
    .await;
    let mut log = String::new();
    for _ in 0..200 {
        log = proxy.log_text();
        if log.contains("route table refused") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        log.contains("client partner: Secret partner-keys is not mounted"),
        "{log}"
    );
    assert_eq!(send(proxy.admin, get("/readyz")).await.unwrap().status, 503);
    assert_eq!(proxy.send(get("/v1/orders")).await.status, 503);
}
