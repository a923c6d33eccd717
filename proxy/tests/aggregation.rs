//! Aggregate routes through the real proxy binary: a compiled Aggregator served over HTTP to
//! real upstreams on loopback — the reshaped answer, partial answers, failures naming the step,
//! client disconnects cancelling steps, tables with a broken rule or a cycle refused at load.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "aggregation/scripted.rs"]
mod upstream;

use std::sync::atomic::Ordering;

use common::{ConfigMapDir, Proxy, get, temp_dir};
use gatehouse_api::compile::CompileContext;
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::{Action, RouteTable};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use upstream::{Hold, Reply};

const PAGE: &str = r#"
apiVersion: gatehouse.dev/v1alpha1
kind: Aggregator
metadata: {name: product-page}
spec:
  endpoints:
    - name: product-page
      match: {path: "/products/{id}/page", methods: [GET]}
      steps:
        - {name: product, call: {service: catalog, path: "/items/{id}"}, filter: "{id, title, sellerId}"}
        - {name: reviews, call: {service: reviews, path: "/reviews?product={id}"}, optional: true}
        - {name: seller, call: {service: sellers, path: "/sellers/{product.sellerId}"}, after: [product]}
      response: '{id: .product.id, name: .product.title, seller: .seller.name, reviews: (.reviews // [])}'
      timeout: 5s
"#;

fn compiled() -> RouteTable {
    Resource::from_yaml(PAGE).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap()
}

async fn serve(
    table: &RouteTable,
    backends: &upstream::Upstream,
    name: &str,
) -> (Proxy, ConfigMapDir) {
    let mut dir = ConfigMapDir::new(&temp_dir(name));
    dir.publish(&table.to_bytes());
    let target = backends.address.to_string();
    let resolve: Vec<String> = ["catalog", "reviews", "sellers"]
        .iter()
        .map(|s| format!("{s}={target}"))
        .collect();
    let mut args = vec![
        "--routes",
        dir.routes_path().to_str().unwrap().to_owned().leak() as &str,
    ];
    for r in &resolve {
        args.push("--resolve");
        args.push(r.clone().leak());
    }
    let proxy = Proxy::start(&args, &dir.root).await;
    proxy.wait_admin("/readyz", 200).await;
    (proxy, dir)
}

fn shop(reviews: Reply, seller: Reply) -> Vec<(&'static str, Reply)> {
    vec![
        (
            "/items/42",
            Reply::json(r#"{"id": 42, "title": "Lamp", "sellerId": "s7", "internal": "x"}"#),
        ),
        ("/reviews", reviews),
        ("/sellers/s7", seller),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aggregated_call_answers_one_reshaped_payload() {
    let backends = upstream::start(shop(
        Reply::json(r#"[{"stars": 5}]"#),
        Reply::json(r#"{"name": "Ada"}"#),
    ))
    .await;
    let (proxy, _dir) = serve(&compiled(), &backends, "agg-ok").await;
    let reply = proxy.send(get("/products/42/page")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"id": 42, "name": "Lamp", "seller": "Ada", "reviews": [{"stars": 5}]})
    );
    assert_eq!(reply.header("gatehouse-partial"), None);
    let paths = backends.seen.paths();
    assert!(
        paths.contains(&"/reviews?product=42".to_owned())
            && paths.contains(&"/sellers/s7".to_owned()),
        "{paths:?}"
    );
    // The request id the client sees is the one every step call carried.
    let id = reply.header("x-request-id").unwrap().to_owned();
    assert_eq!(backends.seen.header("/items/42", "x-request-id"), Some(id));
    let metrics = proxy.metrics().await;
    assert!(metrics.contains("gatehouse_aggregation_step_duration_seconds_count{route=\"product-page\",step=\"seller\"} 1"), "{metrics}");
    assert!(metrics.contains("gatehouse_aggregation_duration_seconds_count{route=\"product-page\",outcome=\"complete\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_optional_failure_gives_a_partial_answer_and_a_required_one_a_502_naming_the_step() {
    let backends = upstream::start(shop(Reply::status(503), Reply::status(500))).await;
    let (proxy, _dir) = serve(&compiled(), &backends, "agg-fail").await;
    let reply = proxy.send(get("/products/42/page")).await;
    assert_eq!(reply.status, 502);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = reply.json();
    assert_eq!(problem["step"], "seller");
    assert_eq!(problem["route"], "product-page");
    assert_eq!(
        problem["detail"],
        "required step seller failed: upstream answered 500"
    );

    let partial =
        upstream::start(shop(Reply::status(503), Reply::json(r#"{"name": "Ada"}"#))).await;
    let (proxy, _dir) = serve(&compiled(), &partial, "agg-partial").await;
    let reply = proxy.send(get("/products/42/page")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("gatehouse-partial"), Some("reviews"));
    let body = reply.json();
    assert_eq!(
        body["reviews"],
        json!([]),
        "the rule's fallback for a null step"
    );
    assert_eq!(
        body["errors"],
        json!([{"step": "reviews", "reason": "status", "message": "upstream answered 503"}])
    );
    assert!(proxy.metrics().await.contains("gatehouse_aggregation_step_failures_total{route=\"product-page\",step=\"reviews\",reason=\"status\"} 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_cancels_the_outstanding_steps() {
    let backends = upstream::start(shop(
        Reply::json("[]").held(Hold::Forever),
        Reply::json(r#"{"name": "Ada"}"#),
    ))
    .await;
    let (proxy, _dir) = serve(&compiled(), &backends, "agg-cancel").await;
    let mut client = tokio::net::TcpStream::connect(proxy.listen).await.unwrap();
    client
        .write_all(b"GET /products/42/page HTTP/1.1\r\nhost: shop.test\r\n\r\n")
        .await
        .unwrap();
    backends
        .seen
        .wait_for(|s| {
            s.paths().iter().any(|p| p.starts_with("/reviews"))
                && s.in_flight.load(Ordering::SeqCst) == 1
        })
        .await;
    drop(client);
    backends
        .seen
        .wait_for(|s| s.closed_while_held.load(Ordering::SeqCst) == 1)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_with_a_broken_rule_or_a_cycle_is_refused_and_the_old_one_keeps_serving() {
    let backends =
        upstream::start(shop(Reply::json("[]"), Reply::json(r#"{"name": "Ada"}"#))).await;
    let good = compiled();
    let (proxy, mut dir) = serve(&good, &backends, "agg-refuse").await;
    let served = proxy
        .wait_for("/config", |r| r.json()["loaded"] == true)
        .await
        .json();

    let mut broken_rule = serde_json::to_value(&good).unwrap();
    broken_rule["routes"][0]["action"]["response"] = json!("{id: ");
    let mut cycle = serde_json::to_value(&good).unwrap();
    cycle["routes"][0]["action"]["steps"][0]["after"] = json!(["seller"]);
    for (n, bad) in [broken_rule, cycle].iter().enumerate() {
        dir.publish(serde_json::to_string_pretty(bad).unwrap().as_bytes());
        proxy
            .wait_for("/metrics", |r| {
                r.text().contains(&format!(
                    "gatehouse_route_table_reloads_total{{result=\"failed\"}} {}",
                    n + 1
                ))
            })
            .await;
        assert_eq!(
            proxy.wait_admin("/config", 200).await.json()["digest"],
            served["digest"]
        );
        let reply = proxy.send(get("/products/42/page")).await;
        assert_eq!(reply.status, 200, "the previous table still serves");
    }
    assert!(matches!(good.routes[0].action, Action::Aggregate(_)));
}
