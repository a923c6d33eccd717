//! Limit access over real HTTP: source ranges of the gateway and of a route admit or refuse
//! callers by address (several loopback addresses are several callers), `X-Forwarded-For` is
//! believed only as far as the table trusts it (a spoofed entry changes nothing), a route lets
//! in only its clients (403; unrecognised: 401), and bodies over a route's limit are refused —
//! declared (413 before any backend call) or streamed (cut off, 413).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use bytes::Bytes;
use common::tables::*;
use common::*;
use gatehouse_api::route_table::{
    ClientAddressEntry, PathKind, RouteEntry, RouteTable, SourceRangesEntry,
};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn ranges(allow: &[&str], deny: &[&str]) -> SourceRangesEntry {
    SourceRangesEntry {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
    }
}

/// A route proxying `path` to `backend`.
fn to(backend: &Upstream, id: &str, path: &str) -> RouteEntry {
    proxy(
        id,
        PathKind::Exact,
        path,
        vec![upstream("orders", backend.port(), None, 1)],
    )
}

fn forwarded_for(target: &str, value: &str) -> hyper::Request<http_body_util::Full<Bytes>> {
    get_with(target, "x-forwarded-for", value)
}

#[tokio::test(flavor = "multi_thread")]
async fn source_ranges_of_the_gateway_and_of_a_route_refuse_callers_before_any_backend() {
    let backend = Upstream::named("orders").await;
    let mut table = table(vec![
        to(&backend, "v1/open", "/v1/open"),
        RouteEntry {
            source_ranges: vec![ranges(&["127.0.0.2/32", "127.0.0.3/32"], &[])],
            ..to(&backend, "v1/office", "/v1/office")
        },
        RouteEntry {
            // The contract's rule and the route's own: both must admit.
            source_ranges: vec![
                ranges(&["127.0.0.0/29"], &[]),
                ranges(&[], &["127.0.0.3/32"]),
            ],
            ..to(&backend, "v1/narrow", "/v1/narrow")
        },
    ]);
    table.source_ranges = Some(ranges(&[], &["127.0.0.5/32"]));
    let proxy = serve_table("source-ranges", &table, &[]).await;

    let mut served = 0;
    for (caller, path, status) in [
        ("127.0.0.1", "/v1/open", 200),
        ("127.0.0.1", "/v1/office", 403),
        ("127.0.0.2", "/v1/office", 200),
        ("127.0.0.3", "/v1/office", 200),
        ("127.0.0.2", "/v1/narrow", 200),
        ("127.0.0.3", "/v1/narrow", 403),
        ("127.0.0.9", "/v1/narrow", 403),
        // The gateway's deny list holds for every route, and for paths no route serves: a
        // refused caller learns nothing of the routes.
        ("127.0.0.5", "/v1/open", 403),
        ("127.0.0.5", "/v1/nowhere", 403),
        ("127.0.0.1", "/v1/nowhere", 404),
    ] {
        let reply = send_from(ip(caller), proxy.listen, get(path))
            .await
            .unwrap();
        assert_eq!(reply.status, status, "{caller} {path}: {}", reply.text());
        if status == 200 {
            served += 1;
        }
        if status == 403 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json")
            );
            let body = reply.json();
            assert_eq!(body["title"], "Forbidden");
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("address {caller} may not call")),
                "{body}"
            );
        }
    }
    assert_eq!(
        backend.requests().len(),
        served,
        "refused requests never reach a backend"
    );
    let metrics = proxy.metrics().await;
    for counted in [
        "gatehouse_refused_requests_total{route=\"none\",reason=\"source_range\"} 2",
        "gatehouse_refused_requests_total{route=\"v1/office\",reason=\"source_range\"} 1",
        "gatehouse_refused_requests_total{route=\"v1/narrow\",reason=\"source_range\"} 2",
    ] {
        assert!(metrics.contains(counted), "{counted} not in {metrics}");
    }
    // IPv6 ranges never admit an IPv4 caller.
    let v6 = table_with_route_ranges(&backend, ranges(&["::1/128"], &[]));
    let proxy = serve_table("source-ranges-v6", &v6, &[]).await;
    let reply = send_from(ip("127.0.0.1"), proxy.listen, get("/v1/open"))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
}

fn table_with_route_ranges(backend: &Upstream, rules: SourceRangesEntry) -> RouteTable {
    table(vec![RouteEntry {
        source_ranges: vec![rules],
        ..to(backend, "v1/open", "/v1/open")
    }])
}

#[tokio::test(flavor = "multi_thread")]
async fn x_forwarded_for_is_believed_only_as_far_as_the_table_trusts_it() {
    let backend = Upstream::named("orders").await;
    let allow_partner = ranges(&["198.51.100.0/24"], &[]);

    // No trust: the peer (127.0.0.1) is the caller, whatever the header claims.
    let untrusting = table_with_route_ranges(&backend, allow_partner.clone());
    let proxy = serve_table("xff-none", &untrusting, &[]).await;
    let reply = proxy.send(forwarded_for("/v1/open", "198.51.100.7")).await;
    assert_eq!(
        reply.status, 403,
        "a spoofed X-Forwarded-For is not believed"
    );
    drop(proxy);

    // One trusted hop (a load balancer that appends the address it received from).
    let mut one_hop = table_with_route_ranges(&backend, allow_partner.clone());
    one_hop.client_address = Some(ClientAddressEntry::TrustedHops(1));
    let proxy = serve_table("xff-hops", &one_hop, &[]).await;
    for (header, status) in [
        ("198.51.100.7", 200),
        // The caller wrote the first entry; the load balancer appended its real address.
        ("198.51.100.7, 192.0.2.1", 403),
        ("192.0.2.1, 198.51.100.7", 200),
        ("198.51.100.7:4711", 200),
        ("unknown", 403),
    ] {
        let reply = proxy.send(forwarded_for("/v1/open", header)).await;
        assert_eq!(
            reply.status,
            status,
            "X-Forwarded-For: {header}: {}",
            reply.text()
        );
    }
    let unreadable = proxy.send(forwarded_for("/v1/open", "unknown")).await;
    assert!(
        unreadable.json()["detail"]
            .as_str()
            .unwrap()
            .contains("could not be read from X-Forwarded-For")
    );
    drop(proxy);

    // Trusted proxy ranges: loopback is the proxy in front.
    let mut trusted = table_with_route_ranges(&backend, allow_partner);
    trusted.client_address = Some(ClientAddressEntry::TrustedProxies(vec![
        "127.0.0.0/8".to_owned(),
        "10.0.0.0/8".to_owned(),
    ]));
    let proxy = serve_table("xff-proxies", &trusted, &[]).await;
    for (header, status) in [
        ("192.0.2.1, 198.51.100.7, 10.1.1.1", 200),
        ("198.51.100.7, 192.0.2.1", 403),
    ] {
        let reply = proxy.send(forwarded_for("/v1/open", header)).await;
        assert_eq!(
            reply.status,
            status,
            "X-Forwarded-For: {header}: {}",
            reply.text()
        );
    }
    // The backend still learns the whole chain, the peer appended.
    let seen = backend.requests();
    let last = seen.last().unwrap();
    assert_eq!(
        last.header("x-forwarded-for"),
        Some("192.0.2.1, 198.51.100.7, 10.1.1.1, 127.0.0.1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_lets_in_only_the_clients_it_names() {
    let backend = Upstream::named("orders").await;
    let mut table = table(vec![
        to(&backend, "v1/open", "/v1/open"),
        RouteEntry {
            clients: Some(vec!["acme".to_owned()]),
            ..to(&backend, "v1/settlements", "/v1/settlements")
        },
    ]);
    table.clients = vec![keyed_client("acme"), keyed_client("globex")];
    let proxy = serve_table(
        "route-clients",
        &table,
        &[("acme-keys", "acme-1"), ("globex-keys", "globex-1")],
    )
    .await;
    for (path, key, status) in [
        ("/v1/settlements", Some("acme-1"), 200),
        ("/v1/open", Some("acme-1"), 200),
        ("/v1/settlements", Some("globex-1"), 403),
        ("/v1/open", Some("globex-1"), 200),
        ("/v1/settlements", Some("stolen"), 401),
        ("/v1/settlements", None, 401),
    ] {
        let request = match key {
            Some(key) => with_key(path, key),
            None => get(path),
        };
        let reply = proxy.send(request).await;
        assert_eq!(reply.status, status, "{path} {key:?}: {}", reply.text());
        if status == 403 {
            assert_eq!(reply.json()["route"], "v1/settlements");
        }
    }
    assert_eq!(backend.requests().len(), 3);
    let metrics = proxy.metrics().await;
    for counted in [
        "gatehouse_refused_requests_total{route=\"v1/settlements\",reason=\"client_not_allowed\"} 1",
        "gatehouse_refused_requests_total{route=\"v1/settlements\",reason=\"unauthorized\"} 2",
    ] {
        assert!(metrics.contains(counted), "{counted} not in {metrics}");
    }
    // The refusal is counted under the client's name.
    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains(
            "gatehouse_requests_total{route=\"v1/settlements\",status_class=\"4xx\",client=\"globex\",contract=\"\",version=\"v1\"} 1"
        ),
        "{metrics}"
    );
}

fn chunked_request(path: &str, chunks: &[usize]) -> Vec<u8> {
    chunked("POST", path, chunks)
}

fn chunked(method: &str, path: &str, chunks: &[usize]) -> Vec<u8> {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for size in chunks {
        raw.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        raw.extend(std::iter::repeat_n(b'x', *size));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_refused_whether_declared_or_streamed() {
    let backend = Upstream::counting().await;
    let limited = RouteEntry {
        max_body_bytes: Some(1000),
        ..to(&backend, "v1/upload", "/v1/upload")
    };
    let proxy = serve_table("body-limit", &table(vec![limited]), &[]).await;

    // Declared: refused before anything reaches the backend, and the connection is closed.
    let declared = format!(
        "POST /v1/upload HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 1001\r\n\r\n{}",
        "x".repeat(1001)
    );
    let raw = raw_exchange(proxy.listen, declared.as_bytes()).await;
    assert_eq!(raw_status(&raw), 413, "{raw}");
    assert!(raw.contains("application/problem+json"), "{raw}");
    assert!(raw.contains("(1000 bytes)"), "{raw}");
    assert!(backend.requests().is_empty());

    // At the limit: served whole.
    let reply = proxy
        .send(
            request("POST", "/v1/upload")
                .body(http_body_util::Full::new(Bytes::from(vec![b'x'; 1000])))
                .unwrap(),
        )
        .await;
    assert_eq!((reply.status, reply.text()), (200, "1000".to_owned()));

    // Streamed without a length, under the limit: served whole.
    let raw = raw_exchange(
        proxy.listen,
        &[
            chunked_request("/v1/upload", &[400, 400, 200]).as_slice(),
            b"GET /v1/none HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n",
        ]
        .concat(),
    )
    .await;
    assert_eq!(raw_status(&raw), 200, "{raw}");
    assert!(raw.contains("\r\n\r\n1000"), "{raw}");

    // Streamed past the limit: cut off, answered 413; the backend never gets the body whole.
    let raw = raw_exchange(
        proxy.listen,
        &chunked_request("/v1/upload", &[400, 400, 400]),
    )
    .await;
    assert_eq!(raw_status(&raw), 413, "{raw}");
    assert!(
        backend.largest_body() <= 1000,
        "the backend received more than the limit"
    );
    // The proxy is unharmed.
    let reply = proxy
        .send(
            request("POST", "/v1/upload")
                .body(http_body_util::Full::new(Bytes::from_static(b"ok")))
                .unwrap(),
        )
        .await;
    assert_eq!((reply.status, reply.text()), (200, "2".to_owned()));

    // An idempotent request past the limit, over a pooled upstream connection, is not tried
    // again: one cut-off attempt reaches the backend, not two.
    let before = backend.requests().len();
    let raw = raw_exchange(
        proxy.listen,
        &chunked("PUT", "/v1/upload", &[400, 400, 400]),
    )
    .await;
    assert_eq!(raw_status(&raw), 413, "{raw}");
    until_seen(&backend, before + 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        backend.requests().len(),
        before + 1,
        "a body over the limit was sent twice"
    );
    let counted =
        "gatehouse_refused_requests_total{route=\"v1/upload\",reason=\"body_too_large\"} 3";
    let metrics = proxy.metrics().await;
    assert!(metrics.contains(counted), "{counted} not in {metrics}");
}

/// A backend that holds every request until the test lets it go (one permit per request).
async fn holding_backend() -> (Upstream, std::sync::Arc<tokio::sync::Semaphore>) {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let backend = Upstream::start(std::sync::Arc::new(move |_seen: SeenRequest| {
        let held = held.clone();
        Box::pin(async move {
            held.acquire().await.unwrap().forget();
            full(200, "done")
        }) as UpFuture
    }))
    .await;
    (backend, gate)
}

/// Waits until the backend has seen `count` requests (a hang guard, not a timing assertion).
async fn until_seen(backend: &Upstream, count: usize) {
    for _ in 0..3000 {
        if backend.requests().len() >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "the backend saw {} requests, not {count}",
        backend.requests().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrency_limits_turn_away_one_too_many_per_route_and_per_client() {
    let (backend, gate) = holding_backend().await;
    let mut acme = keyed_client("acme");
    acme.max_in_flight = Some(1);
    acme.rate_limit = Some(gatehouse_api::route_table::RateLimitEntry {
        requests_per_second: 1,
        burst: 2,
        global: None,
    });
    let mut table = table(vec![
        RouteEntry {
            max_in_flight: Some(2),
            ..to(&backend, "v1/reports", "/v1/reports")
        },
        to(&backend, "v1/orders", "/v1/orders"),
    ]);
    table.clients = vec![acme, keyed_client("globex")];
    let proxy = serve_table(
        "concurrency",
        &table,
        &[("acme-keys", "acme-1"), ("globex-keys", "globex-1")],
    )
    .await;
    let listen = proxy.listen;
    let start = |path: &'static str, key: &'static str| {
        tokio::spawn(async move { send(listen, with_key(path, key)).await.unwrap() })
    };

    // The route: two in flight (different clients), the third turned away before the backend.
    let first = start("/v1/reports", "acme-1");
    let second = start("/v1/reports", "globex-1");
    until_seen(&backend, 2).await;
    let third = proxy.send(with_key("/v1/reports", "globex-1")).await;
    assert_eq!(third.status, 503, "{}", third.text());
    assert_eq!(third.header("retry-after"), Some("1"));
    assert_eq!(third.json()["title"], "Route at capacity");
    // Another route is not limited by it; the client acme is, on any route (its one place is
    // taken) — and that refusal does not spend a rate-limit token.
    let busy = proxy.send(with_key("/v1/orders", "acme-1")).await;
    assert_eq!(busy.status, 429, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("1"));
    let other = start("/v1/orders", "globex-1");
    until_seen(&backend, 3).await;
    assert_eq!(
        backend.requests().len(),
        3,
        "refused requests never reach the backend"
    );
    gate.add_permits(3);
    for done in [first, second, other] {
        assert_eq!(done.await.unwrap().status, 200);
    }
    // The places are free again; acme's second token is still there.
    let again = start("/v1/reports", "acme-1");
    until_seen(&backend, 4).await;
    gate.add_permits(1);
    assert_eq!(again.await.unwrap().status, 200);
    let metrics = proxy.metrics().await;
    for counted in [
        "gatehouse_requests_total{route=\"v1/reports\",status_class=\"5xx\",client=\"globex\",contract=\"\",version=\"v1\"} 1",
        "gatehouse_refused_requests_total{route=\"v1/reports\",reason=\"route_busy\"} 1",
        "gatehouse_refused_requests_total{route=\"v1/orders\",reason=\"client_busy\"} 1",
    ] {
        assert!(metrics.contains(counted), "{counted} not in {metrics}");
    }
}
