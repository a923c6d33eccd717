//! Routing through the real proxy: match kinds, precedence, rewrites, header edits,
//! redirects, direct responses, weights and the aggregation seam.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::tables::*;
use common::*;
use gatehouse_api::route_table::{Action, AggregatePlan, PathKind, RedirectAction, ValueCondition};
use http_body_util::Full;

async fn serve(
    routes: Vec<gatehouse_api::route_table::RouteEntry>,
    name: &str,
) -> (Proxy, std::path::PathBuf) {
    let dir = temp_dir(name);
    let file = dir.join("routes.json");
    std::fs::write(&file, bytes(routes)).unwrap();
    let proxy = Proxy::start(&["--routes", file.to_str().unwrap()], &dir).await;
    proxy.wait_admin("/readyz", 200).await;
    (proxy, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn match_kinds_and_precedence() {
    let mut post_only = respond("v1/post-only", PathKind::Template, "/v1/products/{id}");
    post_only.methods = vec!["POST".to_owned()];
    let mut beta = respond("v1/beta", PathKind::Template, "/v1/products/{id}");
    beta.headers = vec![ValueCondition {
        name: "x-beta".to_owned(),
        value: Some("on".to_owned()),
    }];
    let mut search = respond("v1/search-en", PathKind::Exact, "/v1/search");
    search.query = vec![ValueCondition {
        name: "lang".to_owned(),
        value: Some("en".to_owned()),
    }];
    let mut hosted = respond("v1/hosted", PathKind::Prefix, "/v1");
    hosted.host = Some("*.shop.test".to_owned());
    let (proxy, _dir) = serve(
        vec![
            respond("v1/everything", PathKind::Prefix, "/v1"),
            respond("v1/products", PathKind::Prefix, "/v1/products"),
            respond("v1/product", PathKind::Template, "/v1/products/{id}"),
            respond("v1/new-product", PathKind::Exact, "/v1/products/new"),
            respond("v1/search", PathKind::Exact, "/v1/search"),
            post_only,
            beta,
            search,
            hosted,
        ],
        "precedence",
    )
    .await;
    let served = |reply: Reply| {
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.text()
    };
    assert_eq!(
        served(proxy.send(get("/v1/products/new")).await),
        "v1/new-product"
    );
    assert_eq!(
        served(proxy.send(get("/v1/products/42")).await),
        "v1/product"
    );
    assert_eq!(
        served(proxy.send(get("/v1/products/42/reviews")).await),
        "v1/products"
    );
    assert_eq!(served(proxy.send(get("/v1/products")).await), "v1/products");
    assert_eq!(
        served(proxy.send(get("/v1/productsx")).await),
        "v1/everything"
    );
    let post = request("POST", "/v1/products/42")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(served(proxy.send(post).await), "v1/post-only");
    let beta = request("GET", "/v1/products/42")
        .header("x-beta", "on")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(served(proxy.send(beta).await), "v1/beta");
    assert_eq!(
        served(proxy.send(get("/v1/search?lang=en")).await),
        "v1/search-en"
    );
    assert_eq!(
        served(proxy.send(get("/v1/search?lang=de")).await),
        "v1/search"
    );
    let hosted = hyper::Request::builder()
        .uri("/v1/anything")
        .header("host", "eu.shop.test:8080")
        .body(Full::new(Bytes::new()))
        .unwrap();
    // Host is a condition: the hosted prefix has more conditions than the plain one.
    let reply = send(proxy.listen, hosted).await.unwrap();
    assert_eq!(served(reply), "v1/hosted");

    let missing = proxy.send(get("/v2/products")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    let problem = missing.json();
    assert_eq!(problem["status"], 404);
    assert_eq!(
        problem["requestId"],
        missing.header("x-request-id").unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrites_headers_and_forwarding() {
    let catalog = Upstream::named("catalog").await;
    let orders = Upstream::named("orders").await;
    let mut product = proxy(
        "v1/product",
        PathKind::Template,
        "/v1/products/{id}",
        vec![upstream("catalog", catalog.port(), Some("/items/{id}"), 1)],
    );
    product.request_headers = edits(
        &[("x-product", "p-{id}"), ("x-rid", "{requestId}")],
        &[("x-tag", "gatehouse")],
        &["x-drop-me"],
    );
    product.response_headers = edits(&[("cache-control", "max-age=60")], &[], &["x-powered-by"]);
    let (proxy, _dir) = serve(
        vec![
            product,
            proxy_route_orders(orders.port()),
            proxy(
                "v1/orders-v2",
                PathKind::Prefix,
                "/v1/v2orders",
                vec![upstream("orders", orders.port(), Some("/api/orders"), 1)],
            ),
        ],
        "rewrites",
    )
    .await;

    let reply = proxy
        .send(
            request("GET", "/v1/products/42?fields=all")
                .header("x-drop-me", "1")
                .header("x-tag", "client")
                .header("x-request-id", "client-id-1")
                .header("x-forwarded-for", "10.1.2.3")
                .header("connection", "keep-alive, x-hop")
                .header("x-hop", "secret")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "catalog");
    assert_eq!(reply.header("cache-control"), Some("max-age=60"));
    assert_eq!(reply.header("x-powered-by"), None);
    assert_eq!(reply.header("x-request-id"), Some("client-id-1"));
    let seen = catalog.requests().pop().unwrap();
    assert_eq!(seen.target, "/items/42?fields=all");
    assert_eq!(seen.header("x-product"), Some("p-42"));
    assert_eq!(seen.header("x-rid"), Some("client-id-1"));
    assert_eq!(seen.headers["x-tag"], ["client", "gatehouse"]);
    assert_eq!(seen.header("x-drop-me"), None);
    assert_eq!(seen.header("x-hop"), None);
    assert_eq!(seen.header("x-forwarded-for"), Some("10.1.2.3, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("gateway.test"));
    assert_eq!(seen.header("x-request-id"), Some("client-id-1"));

    // Without Upstream.path the contract's base path is stripped; with it on a Prefix route
    // the matched prefix is replaced and the rest appended.
    proxy.send(get("/v1/orders/7/lines")).await;
    proxy.send(get("/v1/v2orders/7/lines?x=1")).await;
    let targets: Vec<String> = orders.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/orders/7/lines", "/api/orders/7/lines?x=1"]);

    // A generated request id when the client sends none, the same on both sides.
    let reply = proxy.send(get("/v1/products/1")).await;
    let generated = reply.header("x-request-id").unwrap().to_owned();
    assert_eq!(generated.len(), 32);
    assert_eq!(
        catalog.requests().pop().unwrap().header("x-request-id"),
        Some(generated.as_str())
    );
}

fn proxy_route_orders(port: u16) -> gatehouse_api::route_table::RouteEntry {
    proxy(
        "v1/orders",
        PathKind::Prefix,
        "/v1/orders",
        vec![upstream("orders", port, None, 1)],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_direct_responses_and_an_aggregate_route() {
    let mut cart = respond("v1/cart", PathKind::Exact, "/v1/cart");
    cart.action = Action::Redirect(RedirectAction {
        scheme: Some("https".to_owned()),
        host: None,
        port: None,
        path: Some("/v1/orders/cart".to_owned()),
        status: 308,
    });
    let mut old = respond("v1/old", PathKind::Template, "/v1/old/{id}");
    old.action = Action::Redirect(RedirectAction {
        scheme: None,
        host: Some("new.shop.test".to_owned()),
        port: Some(8443),
        path: Some("/v2/items/{id}".to_owned()),
        status: 301,
    });
    let mut page = respond("v1/page", PathKind::Template, "/v1/products/{id}/page");
    page.action = Action::Aggregate(AggregatePlan {
        steps: Vec::new(),
        response: ".".to_owned(),
        timeout_ms: 1000,
        failure_policy: serde_json::from_value(serde_json::json!("allOrNothing")).unwrap(),
        max_step_response_bytes: 1024,
    });
    let mut status = respond("v1/status", PathKind::Exact, "/v1/status");
    status.response_headers = edits(&[("x-served-by", "gatehouse-{requestId}")], &[], &[]);
    let (proxy, _dir) = serve(vec![cart, old, page, status], "local").await;

    let reply = proxy.send(get("/v1/cart?from=menu")).await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://gateway.test/v1/orders/cart?from=menu")
    );
    let reply = proxy.send(get("/v1/old/9")).await;
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.header("location"),
        Some("http://new.shop.test:8443/v2/items/9")
    );

    let reply = proxy.send(get("/v1/status")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/plain"));
    let id = reply.header("x-request-id").unwrap();
    assert_eq!(
        reply.header("x-served-by"),
        Some(format!("gatehouse-{id}").as_str())
    );

    // An aggregation of no step answers its rule's value over an empty document.
    let reply = proxy.send(get("/v1/products/3/page")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn weights_share_traffic() {
    let heavy = Upstream::named("heavy").await;
    let light = Upstream::named("light").await;
    let (proxy, _dir) = serve(
        vec![proxy(
            "v1/split",
            PathKind::Prefix,
            "/v1/split",
            vec![
                upstream("heavy", heavy.port(), None, 3),
                upstream("light", light.port(), None, 1),
                upstream("drained", free_port(), None, 0),
            ],
        )],
        "weights",
    )
    .await;
    let total = 400;
    for _ in 0..total {
        assert_eq!(proxy.send(get("/v1/split/x")).await.status, 200);
    }
    let heavy_share = heavy.requests().len() as f64 / f64::from(total);
    assert_eq!(
        heavy.requests().len() + light.requests().len(),
        total as usize
    );
    // Expected 0.75; ±0.1 is more than four standard deviations at 400 requests.
    assert!(
        (0.65..=0.85).contains(&heavy_share),
        "heavy share {heavy_share}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_stream_both_ways() {
    use http_body_util::BodyExt;
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release = Arc::new(std::sync::Mutex::new(Some(release_rx)));
    let streamer = Upstream::start(Arc::new(move |seen: SeenRequest| {
        let release = release.clone();
        Box::pin(async move {
            if seen.method == "POST" {
                // Echo the uploaded body's length.
                return full(200, seen.body.len().to_string());
            }
            let (mut sender, body) = http_body_util::channel::Channel::<Bytes>::new(4);
            let wait = release.lock().unwrap().take();
            tokio::spawn(async move {
                sender.send_data(Bytes::from_static(b"first;")).await.ok();
                if let Some(wait) = wait {
                    wait.await.ok();
                }
                sender.send_data(Bytes::from_static(b"second")).await.ok();
            });
            hyper::Response::new(body.boxed())
        }) as UpFuture
    }))
    .await;
    let (proxy, _dir) = serve(
        vec![proxy(
            "v1/stream",
            PathKind::Prefix,
            "/v1/stream",
            vec![upstream("s", streamer.port(), None, 1)],
        )],
        "stream",
    )
    .await;
    let response = open(proxy.listen, get("/v1/stream")).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    // The first chunk arrived while the upstream is still holding the rest back.
    assert_eq!(&first[..], b"first;");
    release_tx.send(()).unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second");

    let upload = vec![7u8; 3 * 1024 * 1024];
    let reply = proxy
        .send(
            request("POST", "/v1/stream/up")
                .body(Full::new(Bytes::from(upload)))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.text(), (3 * 1024 * 1024).to_string());
}
