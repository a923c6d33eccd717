//! End to end without a cluster: the shop's example resources → `gatehouse-operator render`
//! (the library function and the real binary) → the route ConfigMap's `routes.json` → a real
//! `gatehouse-proxy --routes` per resource → real loopback backends that answer like the shop's
//! services and record what they receive.
//!
//! One helper per example (`serve_gateway`, `serve_edge`, `serve_aggregator`) starts that
//! resource's proxy wired the way the cluster would wire it: Services through `--resolve` to
//! the shop's backends, an Aggregator backend to the Aggregator's own proxy. Aggregate routes
//! are only checked for reaching the right proxy and route, not for what they answer.
#![allow(clippy::unwrap_used)]

#[path = "render_to_proxy/proxy.rs"]
mod proxy;
#[path = "render_to_proxy/rendered.rs"]
mod rendered;
#[path = "render_to_proxy/shop.rs"]
mod shop;

use std::collections::BTreeMap;

use gatehouse_api::naming::{Kind, proxy_name};
use proxy::{HOST, Proxy, Reply, get, request};
use rendered::{NAMESPACE, Rendered};
use serde_json::Value;
use shop::{Shop, catalog_item};

/// The Aggregator `product-page`, served from the library's render.
async fn serve_aggregator(rendered: &Rendered, shop: &Shop) -> Proxy {
    let routes = rendered.route_config_map(Kind::Aggregator, "product-page");
    let resolve: Vec<String> = shop.backends().iter().map(|b| b.resolve_arg()).collect();
    Proxy::serve("aggregator", &routes.json, &resolve).await
}

/// The Gateway `public`, its product-page backend pointing at the Aggregator's proxy.
async fn serve_gateway(rendered: &Rendered, shop: &Shop, aggregator: &Proxy) -> Proxy {
    serve_contract_proxy(rendered, Kind::Gateway, "public", shop, aggregator).await
}

/// The EdgeService `mobile`, its product-page backend pointing at the Aggregator's proxy.
async fn serve_edge(rendered: &Rendered, shop: &Shop, aggregator: &Proxy) -> Proxy {
    serve_contract_proxy(rendered, Kind::EdgeService, "mobile", shop, aggregator).await
}

async fn serve_contract_proxy(
    rendered: &Rendered,
    kind: Kind,
    name: &str,
    shop: &Shop,
    aggregator: &Proxy,
) -> Proxy {
    let routes = rendered.route_config_map(kind, name);
    let mut resolve: Vec<String> = shop.backends().iter().map(|b| b.resolve_arg()).collect();
    // The Aggregator's Service, as the table names it.
    let aggregator_service = proxy_name(Kind::Aggregator, "product-page");
    resolve.push(proxy::resolve(&aggregator_service, aggregator.listen));
    Proxy::serve(&proxy_name(kind, name), &routes.json, &resolve).await
}

/// The whole shop: backends, the Aggregator's proxy and the Gateway's, from the real binary.
struct PublicGateway {
    shop: Shop,
    aggregator: Proxy,
    gateway: Proxy,
    rendered: Rendered,
}

impl PublicGateway {
    async fn start() -> Self {
        let rendered = Rendered::by_binary();
        let shop = Shop::start().await;
        let aggregator = serve_aggregator(&rendered, &shop).await;
        let gateway = serve_gateway(&rendered, &shop, &aggregator).await;
        Self {
            shop,
            aggregator,
            gateway,
            rendered,
        }
    }

    /// The rendered table of the Gateway, as JSON.
    fn table(&self) -> Value {
        let routes = self.rendered.route_config_map(Kind::Gateway, "public");
        serde_json::from_str(&routes.json).unwrap()
    }
}

/// Asserts a problem response of the proxy itself.
fn assert_problem(reply: &Reply, status: u16, title: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = reply.json();
    assert_eq!(problem["status"], status);
    assert_eq!(problem["title"], title);
    assert_eq!(
        problem["requestId"].as_str(),
        reply.header("x-request-id"),
        "the problem names the request id it was answered with"
    );
    problem
}

#[test]
fn render_binary_prints_exactly_what_the_library_renders() {
    let by_binary = Rendered::by_binary();
    let by_library = Rendered::by_library();
    assert_eq!(by_binary.yaml, by_library.yaml);
    for (kind, name) in [
        (Kind::Gateway, "public"),
        (Kind::EdgeService, "mobile"),
        (Kind::Aggregator, "product-page"),
    ] {
        let routes = by_binary.route_config_map(kind, name);
        let table = routes.table();
        assert_eq!(
            table.digest(),
            routes.digest,
            "{name}: annotation names the table"
        );
        assert_eq!(
            String::from_utf8(table.to_bytes()).unwrap(),
            routes.json,
            "{name}: the ConfigMap holds the canonical bytes"
        );
        assert_eq!(table.source.name, name);
        assert_eq!(table.source.namespace, NAMESPACE);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_proxy_serves_the_table_its_config_map_names() {
    let rendered = Rendered::by_library();
    let shop = Shop::start().await;
    let aggregator = serve_aggregator(&rendered, &shop).await;
    let gateway = serve_gateway(&rendered, &shop, &aggregator).await;
    let edge = serve_edge(&rendered, &shop, &aggregator).await;
    for (proxy, kind, name) in [
        (&gateway, Kind::Gateway, "public"),
        (&edge, Kind::EdgeService, "mobile"),
        (&aggregator, Kind::Aggregator, "product-page"),
    ] {
        let routes = rendered.route_config_map(kind, name);
        let config = proxy.admin("/config").await.json();
        assert_eq!(config["loaded"], true, "{name}: {config}");
        assert_eq!(config["digest"], routes.digest, "{name}");
        assert_eq!(config["routes"], routes.table().routes.len(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_product_route_rewrites_the_path_and_edits_headers() {
    let shop = PublicGateway::start().await;
    let product = request("GET", "/v1/products/42")
        .header("x-request-id", "e2e-product-42")
        .header("x-client", "forged")
        .body(Default::default())
        .unwrap();
    let reply = shop.gateway.send(product).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), catalog_item("42"));
    assert_eq!(reply.header("x-backend"), Some("catalog"));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(
        reply.header("x-powered-by"),
        None,
        "removed by responseHeaders"
    );
    assert_eq!(reply.header("x-request-id"), Some("e2e-product-42"));

    let received = shop.shop.catalog.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let upstream = &received[0];
    assert_eq!(upstream.method, "GET");
    assert_eq!(upstream.target, "/items/42");
    assert_eq!(
        upstream.header("host"),
        Some(format!("catalog.{NAMESPACE}.svc.cluster.local:8080").as_str()),
        "the Service's cluster host and port as rendered"
    );
    assert_eq!(upstream.header("x-request-id"), Some("e2e-product-42"));
    assert_ne!(
        upstream.header("x-client"),
        Some("forged"),
        "requestHeaders.set replaces what the client sent"
    );
    assert_eq!(upstream.header("x-forwarded-host"), Some(HOST));
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_list_products_route_sends_the_backend_path_and_keeps_the_query() {
    let shop = PublicGateway::start().await;
    let reply = shop.gateway.send(get("/v1/products?page=2")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json().as_array().map(Vec::len), Some(2));
    let targets: Vec<String> = shop
        .shop
        .catalog
        .received()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(targets, ["/items?page=2"]);
    let not_served = request("POST", "/v1/products")
        .body(Default::default())
        .unwrap();
    assert_problem(&shop.gateway.send(not_served).await, 404, "No route");
    assert_eq!(
        shop.shop.catalog.received().len(),
        1,
        "POST never reached the catalog"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_status_route_responds_without_a_backend() {
    let shop = PublicGateway::start().await;
    let reply = shop.gateway.send(get("/v1/status")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.text(), r#"{"status":"ok"}"#);
    let head = shop
        .gateway
        .send(
            request("HEAD", "/v1/status")
                .body(Default::default())
                .unwrap(),
        )
        .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for backend in shop.shop.backends() {
        assert!(
            backend.received().is_empty(),
            "{} was called",
            backend.service
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_cart_route_redirects_permanently_keeping_host_and_query() {
    let shop = PublicGateway::start().await;
    let reply = shop.gateway.send(get("/v1/cart?from=e2e")).await;
    assert_eq!(reply.status, 308, "{}", reply.text());
    assert_eq!(
        reply.header("location"),
        Some(format!("http://{HOST}/v1/orders/cart?from=e2e").as_str())
    );
    for backend in shop.shop.backends() {
        assert!(
            backend.received().is_empty(),
            "{} was called",
            backend.service
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_orders_route_shares_requests_by_weight() {
    let shop = PublicGateway::start().await;
    let table = shop.table();
    let orders_route = table["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "v1/orders")
        .expect("the orders route is rendered");
    let weights: BTreeMap<String, f64> = orders_route["action"]["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["service"].as_str().unwrap().to_owned(),
                u["weight"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(weights.keys().collect::<Vec<_>>(), ["orders", "orders-v2"]);
    let total_weight: f64 = weights.values().sum();

    const REQUESTS: usize = 1000;
    let mut connection = shop.gateway.connect().await;
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..REQUESTS {
        let mut reply = connection
            .send(get(&format!("/v1/orders/{i}")))
            .await
            .unwrap();
        // The example's `web` client may send 400 at once, then 200/s: wait when told to.
        while reply.status == 429 {
            assert!(reply.header("retry-after").is_some(), "{}", reply.text());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            reply = connection
                .send(get(&format!("/v1/orders/{i}")))
                .await
                .unwrap();
        }
        assert_eq!(reply.status, 200, "{}", reply.text());
        let backend = reply.header("x-backend").unwrap().to_owned();
        assert_eq!(reply.json()["order"], i.to_string(), "{backend}");
        *served.entry(backend).or_default() += 1;
    }

    for (service, weight) in &weights {
        let share = weight / total_weight;
        let expected = REQUESTS as f64 * share;
        let deviation = (REQUESTS as f64 * share * (1.0 - share)).sqrt();
        let got = served.get(service).copied().unwrap_or_default() as f64;
        assert!(
            (got - expected).abs() <= 6.0 * deviation,
            "{service}: {got} of {REQUESTS} requests, expected {expected} ± {:.0}",
            6.0 * deviation
        );
    }
    // Each backend got the path of its own contract: orders below /orders, orders-v2 below
    // its backend path /api/orders.
    for (backend, base) in [
        (&shop.shop.orders, "/orders/"),
        (&shop.shop.orders_v2, "/api/orders/"),
    ] {
        let received = backend.received();
        assert_eq!(
            received.len(),
            served[backend.service],
            "{}",
            backend.service
        );
        assert!(
            received.iter().all(|r| r.target.starts_with(base)),
            "{}: {:?}",
            backend.service,
            received
                .iter()
                .map(|r| &r.target)
                .find(|t| !t.starts_with(base))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_unknown_path_answers_a_404_problem() {
    let shop = PublicGateway::start().await;
    for target in [
        "/v1/unknown",
        "/v2/products/42",
        "/products/42",
        "/v1/productsx",
    ] {
        let reply = shop.gateway.send(get(target)).await;
        let problem = assert_problem(&reply, 404, "No route");
        assert!(problem.get("route").is_none(), "{target}: {problem}");
    }
    for backend in shop.shop.backends() {
        assert!(
            backend.received().is_empty(),
            "{} was called",
            backend.service
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_product_page_route_reaches_the_aggregator_proxy() {
    let shop = PublicGateway::start().await;
    assert_eq!(shop.aggregator.requests_of_route("product-page").await, 0);
    let page = request("GET", "/v1/products/42/page")
        .header("x-request-id", "e2e-page-42")
        .body(Default::default())
        .unwrap();
    let reply = shop.gateway.send(page).await;
    assert_eq!(reply.header("x-request-id"), Some("e2e-page-42"));
    // The Gateway sent it to the Aggregator's Service, below the contract's base path, where
    // it matched the Aggregator's endpoint.
    assert_eq!(
        shop.gateway
            .counted_requests_of_route("v1/product-page", 1)
            .await,
        1
    );
    assert_eq!(
        shop.aggregator
            .counted_requests_of_route("product-page", 1)
            .await,
        1
    );
    assert_eq!(shop.aggregator.requests_of_route("none").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_orders_route_names_the_edge_client_upstream() {
    let rendered = Rendered::by_library();
    let shop = Shop::start().await;
    let aggregator = serve_aggregator(&rendered, &shop).await;
    let edge = serve_edge(&rendered, &shop, &aggregator).await;

    for method in ["GET", "POST"] {
        let orders = request(method, "/v1/orders")
            .header("x-client", "forged")
            .body(Default::default())
            .unwrap();
        let reply = edge.send(orders).await;
        assert_eq!(reply.status, 200, "{method}: {}", reply.text());
        assert_eq!(reply.header("x-backend"), Some("orders"));
    }
    let received = shop.orders.received();
    let seen: Vec<(&str, &str, Option<&str>)> = received
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str(), r.header("x-client")))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/orders", Some("mobile")),
            ("POST", "/orders", Some("mobile"))
        ]
    );
    let delete = request("DELETE", "/v1/orders")
        .body(Default::default())
        .unwrap();
    assert_problem(&edge.send(delete).await, 404, "No route");
    assert_problem(&edge.send(get("/v1/status")).await, 404, "No route");
    assert_eq!(shop.orders.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_product_page_route_reaches_the_aggregator_proxy() {
    let rendered = Rendered::by_library();
    let shop = Shop::start().await;
    let aggregator = serve_aggregator(&rendered, &shop).await;
    let edge = serve_edge(&rendered, &shop, &aggregator).await;
    edge.send(get("/v1/products/7/page")).await;
    assert_eq!(
        edge.counted_requests_of_route("v1/product-page", 1).await,
        1
    );
    assert_eq!(
        aggregator
            .counted_requests_of_route("product-page", 1)
            .await,
        1
    );
    assert_eq!(aggregator.requests_of_route("none").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregator_proxy_answers_404_outside_its_endpoints() {
    let rendered = Rendered::by_library();
    let shop = Shop::start().await;
    let aggregator = serve_aggregator(&rendered, &shop).await;
    for target in [
        "/v1/products/42/page",
        "/products/42",
        "/products/42/page/x",
    ] {
        assert_problem(&aggregator.send(get(target)).await, 404, "No route");
    }
    let post = request("POST", "/products/42/page")
        .body(Default::default())
        .unwrap();
    assert_problem(&aggregator.send(post).await, 404, "No route");
    // Once the four unmatched requests are counted, none was counted for the endpoint.
    assert_eq!(aggregator.counted_requests_of_route("none", 4).await, 4);
    assert_eq!(aggregator.requests_of_route("product-page").await, 0);
    for backend in shop.backends() {
        assert!(
            backend.received().is_empty(),
            "{} was called",
            backend.service
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_refuses_a_request_without_a_valid_api_key() {
    let shop = PublicGateway::start().await;
    let without_key = hyper::Request::builder()
        .uri("/v1/products/42")
        .header("host", HOST)
        .body(http_body_util::Empty::new())
        .unwrap();
    assert_problem(&shop.gateway.send(without_key).await, 401, "Unauthorized");
    let wrong_key = hyper::Request::builder()
        .uri("/v1/products/42")
        .header("host", HOST)
        .header("x-api-key", "not-a-key")
        .body(http_body_util::Empty::new())
        .unwrap();
    assert_problem(&shop.gateway.send(wrong_key).await, 401, "Unauthorized");
    for backend in shop.shop.backends() {
        assert!(
            backend.received().is_empty(),
            "{} was called",
            backend.service
        );
    }
    // With the `web` client's key (what `get` sends) the same request is served.
    assert_eq!(shop.gateway.send(get("/v1/products/42")).await.status, 200);
}
