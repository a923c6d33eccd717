//! Upstream addresses over real HTTP, with a resolver the test controls (`--hosts-file`,
//! rewritten while the proxy runs): a name that appears after the table loaded starts serving,
//! a name that moves takes its traffic along — for proxied routes and aggregation steps alike —
//! and a name whose lookup starts failing keeps its last good address; all without any table
//! change. `--resolve` overrides still win over the hosts file.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::tables::*;
use common::*;
use gatehouse_api::route_table::{Action, PathKind, RouteEntry, Upstream as TableUpstream};

/// A name no system resolver answers (RFC 6761 `.invalid`): only the hosts file can.
const ORDERS: &str = "orders.gatehouse.invalid";
const CATALOG: &str = "catalog.gatehouse.invalid";

fn named_upstream(service: &str, host: &str, port: u16) -> TableUpstream {
    let mut up = upstream(service, port, None, 1);
    up.host = host.to_owned();
    up
}

/// `/v1/orders` proxies to ORDERS, `/v1/page` aggregates one call to it, `/v1/catalog` proxies
/// to CATALOG.
fn routes(port: u16) -> Vec<RouteEntry> {
    let mut page = proxy("v1/page", PathKind::Exact, "/v1/page", Vec::new());
    page.action = Action::Aggregate(
        serde_json::from_value(serde_json::json!({
            "steps": [{
                "name": "orders", "method": "GET", "path": "/orders",
                "upstream": {"service": "orders", "host": ORDERS, "port": port, "weight": 1},
            }],
            "response": "{server: .orders}", "timeoutMs": 5000,
            "failurePolicy": "allOrNothing", "maxStepResponseBytes": 65536,
        }))
        .unwrap(),
    );
    vec![
        proxy(
            "v1/orders",
            PathKind::Exact,
            "/v1/orders",
            vec![named_upstream("orders", ORDERS, port)],
        ),
        page,
        proxy(
            "v1/catalog",
            PathKind::Exact,
            "/v1/catalog",
            vec![named_upstream("catalog", CATALOG, port)],
        ),
    ]
}

/// Replaces the hosts file in one rename, as a resolver would see an edit.
fn write_hosts(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Sends `target` until `accept` holds (a hang guard, not a timing assertion).
async fn wait_reply(proxy: &Proxy, target: &str, accept: impl Fn(&Reply) -> bool) -> Reply {
    for _ in 0..3000 {
        let reply = proxy.send(get(target)).await;
        if accept(&reply) {
            return reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{target} never answered as expected:\n{}", proxy.log_text());
}

/// Waits until the proxy log contains `needle`.
async fn wait_log(proxy: &Proxy, needle: &str) {
    for _ in 0..3000 {
        if proxy.log_text().contains(needle) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the log never said {needle:?}:\n{}", proxy.log_text());
}

#[tokio::test(flavor = "multi_thread")]
async fn names_that_appear_move_or_stop_resolving_are_followed_without_a_table_change() {
    // Two servers on the same port, told apart by their loopback address only.
    let first = Upstream::named("first").await;
    let port = first.port();
    let second_address: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let _second = Upstream::start_on(
        second_address,
        Arc::new(|_| Box::pin(async { full(200, "second") }) as UpFuture),
    )
    .await;

    let dir = temp_dir("resolution");
    let hosts = dir.join("hosts");
    write_hosts(&hosts, "# nothing yet\n");
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    mount.publish(&bytes(routes(port)));
    let override_catalog = format!("catalog=127.0.0.1:{port}");
    let proxy = Proxy::start(
        &[
            "--routes",
            mount.routes_path().to_str().unwrap(),
            "--hosts-file",
            hosts.to_str().unwrap(),
            "--resolve-interval-ms",
            "50",
            "--resolve",
            &override_catalog,
        ],
        &dir,
    )
    .await;
    proxy.wait_generation(1).await;

    // (a) The name is not there yet: the route answers 503, the aggregation fails its step.
    let reply = proxy.send(get("/v1/orders")).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.json()["title"], "No healthy upstream");
    let page = proxy.send(get("/v1/page")).await;
    assert_eq!(page.status, 502, "{}", page.text());
    assert!(
        proxy
            .log_text()
            .contains(&format!("upstream {ORDERS}:{port} does not resolve")),
        "the load reports it:\n{}",
        proxy.log_text()
    );
    assert_eq!(proxy.send(get("/v1/catalog")).await.text(), "first");

    // The name appears: served within a few rounds, by the same table.
    write_hosts(
        &hosts,
        &format!("127.0.0.1 {ORDERS}\n127.0.0.2 {CATALOG}\n"),
    );
    wait_reply(&proxy, "/v1/orders", |r| r.status == 200).await;
    assert_eq!(proxy.send(get("/v1/orders")).await.text(), "first");
    let page = proxy.send(get("/v1/page")).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json(), serde_json::json!({"server": "first"}));
    assert_eq!(
        proxy.send(get("/v1/catalog")).await.text(),
        "first",
        "a --resolve override wins over the hosts file"
    );

    // (b) The name moves to the second server: proxied and aggregated traffic follow it.
    write_hosts(
        &hosts,
        &format!("127.0.0.2 {ORDERS}\n127.0.0.2 {CATALOG}\n"),
    );
    wait_reply(&proxy, "/v1/orders", |r| r.text() == "second").await;
    wait_reply(&proxy, "/v1/page", |r| {
        r.status == 200 && r.json()["server"] == "second"
    })
    .await;
    wait_log(
        &proxy,
        &format!("moved from 127.0.0.1:{port} to 127.0.0.2:{port}"),
    )
    .await;

    // (c) The entry goes (the lookup now fails): the last good address keeps serving.
    write_hosts(&hosts, "# emptied\n");
    let keeping = format!("keeping 127.0.0.2:{port}");
    wait_log(&proxy, &keeping).await;
    for _ in 0..10 {
        let reply = proxy.send(get("/v1/orders")).await;
        assert_eq!((reply.status, reply.text().as_str()), (200, "second"));
    }
    let page = proxy.send(get("/v1/page")).await;
    assert_eq!(page.json(), serde_json::json!({"server": "second"}));
    // Ten more rounds pass, still serving (each round logs only changes).
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(proxy.send(get("/v1/orders")).await.text(), "second");
    }
    let log = proxy.log_text();
    assert_eq!(
        log.matches(&keeping).count(),
        1,
        "a failing name is reported once, not every round:\n{log}"
    );

    // None of this was a reload.
    let config = send(proxy.admin, get("/config")).await.unwrap().json();
    assert_eq!(config["generation"], 1);
}
