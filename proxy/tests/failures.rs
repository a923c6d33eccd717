//! Failure handling through the real proxy: retries, and the 404/502/503/504 problem bodies.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::tables::*;
use common::*;
use gatehouse_api::route_table::{PathKind, RouteEntry};
use http_body_util::Full;

async fn serve(routes: Vec<RouteEntry>, name: &str) -> (Proxy, std::path::PathBuf) {
    let dir = temp_dir(name);
    let file = dir.join("routes.json");
    std::fs::write(&file, bytes(routes)).unwrap();
    let proxy = Proxy::start(&["--routes", file.to_str().unwrap()], &dir).await;
    proxy.wait_admin("/readyz", 200).await;
    (proxy, dir)
}

/// Answers 503 to the first request of each method, 200 afterwards.
async fn fails_once() -> Upstream {
    let calls = Arc::new(AtomicUsize::new(0));
    Upstream::start(Arc::new(move |_seen: SeenRequest| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if n.is_multiple_of(2) {
                full(503, "busy")
            } else {
                full(200, "ok")
            }
        }) as UpFuture
    }))
    .await
}

fn problem_of(reply: &Reply, status: u16, route: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    assert_eq!(body["route"], route);
    assert_eq!(body["requestId"], reply.header("x-request-id").unwrap());
    // Never internals: no address, no error chain.
    assert!(!reply.text().contains("127.0.0.1"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_statuses_for_idempotent_methods_only() {
    let flaky = fails_once().await;
    let (proxy, _dir) = serve(
        vec![with_retries(
            proxy(
                "v1/flaky",
                PathKind::Prefix,
                "/v1/flaky",
                vec![upstream("flaky", flaky.port(), None, 1)],
            ),
            1,
            &[503],
        )],
        "retry-status",
    )
    .await;
    let reply = proxy.send(get("/v1/flaky")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
    assert_eq!(flaky.requests().len(), 2);

    // POST is not idempotent: the 503 goes to the client as is, and the upstream saw it once.
    let post = request("POST", "/v1/flaky")
        .body(Full::new(Bytes::from("x")))
        .unwrap();
    let reply = proxy.send(post).await;
    assert_eq!((reply.status, reply.text().as_str()), (503, "busy"));
    assert_eq!(flaky.requests().len(), 3);
    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains(r#"gatehouse_upstream_errors_total{route="v1/flaky",upstream="flaky",kind="retried_status"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_connect_failures_on_another_upstream() {
    let good = Upstream::named("good").await;
    let refused = free_port();
    let (proxy, _dir) = serve(
        vec![with_retries(
            proxy(
                "v1/pair",
                PathKind::Prefix,
                "/v1/pair",
                vec![
                    upstream("refused", refused, None, 1),
                    upstream("good", good.port(), None, 1),
                ],
            ),
            1,
            &[],
        )],
        "retry-connect",
    )
    .await;
    for _ in 0..20 {
        let reply = proxy.send(get("/v1/pair")).await;
        assert_eq!((reply.status, reply.text().as_str()), (200, "good"));
    }
    assert_eq!(good.requests().len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_then_ejected_upstream_gives_502_then_503() {
    let refused = free_port();
    let (proxy, _dir) = serve(
        vec![proxy(
            "v1/down",
            PathKind::Prefix,
            "/v1/down",
            vec![upstream("down", refused, None, 1)],
        )],
        "502-503",
    )
    .await;
    // The first failures are answered 502; after three in a row the upstream is ejected and
    // the route has no healthy upstream left: 503.
    for _ in 0..3 {
        problem_of(&proxy.send(get("/v1/down")).await, 502, "v1/down");
    }
    let reply = proxy.send(get("/v1/down")).await;
    problem_of(&reply, 503, "v1/down");
    assert_eq!(reply.json()["title"], "No healthy upstream");
    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains(
            r#"gatehouse_upstream_errors_total{route="v1/down",upstream="down",kind="connect"} 3"#
        ),
        "{metrics}"
    );
    // Requests are counted when their logging phase ends, just after the response is sent.
    proxy
        .wait_for("/metrics", |r| {
            r.text().contains(
                r#"gatehouse_requests_total{route="v1/down",status_class="5xx",client="anonymous",contract="",version="v1"} 4"#,
            )
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_upstream_gives_504() {
    let (_never_tx, never_rx) = tokio::sync::watch::channel(());
    let slow = Upstream::start(Arc::new(move |_seen: SeenRequest| {
        let mut never = never_rx.clone();
        Box::pin(async move {
            // Waits for a signal that never comes while the test runs.
            let _ = never.changed().await;
            full(200, "late")
        }) as UpFuture
    }))
    .await;
    let (proxy, _dir) = serve(
        vec![with_timeout(
            proxy(
                "v1/slow",
                PathKind::Prefix,
                "/v1/slow",
                vec![upstream("slow", slow.port(), None, 1)],
            ),
            300,
        )],
        "504",
    )
    .await;
    let reply = proxy.send(get("/v1/slow")).await;
    problem_of(&reply, 504, "v1/slow");
    let metrics = proxy.metrics().await;
    assert!(metrics.contains(r#"kind="timeout"} 1"#), "{metrics}");
}
