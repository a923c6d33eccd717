//! Limit access on the real API server: the access example (source ranges, trusted
//! `X-Forwarded-For`, client lists, body and concurrency limits) is accepted and its table
//! carries the rules; a route that would widen its contract's client list is refused with the
//! field named, and the last table keeps serving.

use gatehouse_api::crd::Gateway;
use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::{ClientAddressEntry, RouteTable};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use serde_json::json;

use crate::cluster::{apply, condition, reports, secret, stored_table, wait_for};
use crate::scenario::{backend_service, example, expect_reconciled};

const PARTNERS: &str = "partners";

async fn served_table(client: &Client, namespace: &str) -> (ConfigMap, RouteTable) {
    stored_table(client, namespace, &proxy_name(Kind::Gateway, PARTNERS)).await
}

/// Runs the step in `namespace`.
pub async fn run(client: &Client, namespace: &str) {
    apply(client, namespace, &backend_service("settlements")).await;
    for owner in ["acme", "globex", "initech"] {
        let keys = secret(
            namespace,
            &format!("{owner}-keys"),
            None,
            json!({"key": format!("{owner}-e2e-key")}),
        );
        apply(client, namespace, &keys).await;
    }
    // The password of the Redis its global rate limits use.
    let redis_auth = secret(namespace, "redis-auth", None, json!({"password": "e2e"}));
    apply(client, namespace, &redis_auth).await;
    let Resource::Gateway(partners) = example("examples/gateway/partners.yaml", namespace) else {
        panic!("partners is a Gateway")
    };
    let applied = apply(client, namespace, &partners).await;
    expect_reconciled(client, namespace, &applied).await;
    let (served, table) = served_table(client, namespace).await;
    assert_eq!(
        table.client_address,
        Some(ClientAddressEntry::TrustedHops(1))
    );
    let settlements = table
        .routes
        .iter()
        .find(|r| r.id == "v1/settlements")
        .expect("the settlements route");
    assert_eq!(
        settlements.clients.as_deref(),
        Some(&["acme".to_owned()][..])
    );
    assert_eq!(settlements.max_in_flight, Some(50));
    assert_eq!(settlements.source_ranges[0].allow[0], "198.51.100.0/24");
    println!("access rules accepted and compiled");

    // A route that lets in a client its contract does not: refused, field named, table kept.
    let mut widened = partners.clone();
    let route = widened.spec.contracts[0]
        .routes
        .iter_mut()
        .find(|r| r.name == "settlements")
        .expect("the settlements route");
    route.access.as_mut().expect("its access").clients = vec!["initech".to_owned()];
    let refused = apply(client, namespace, &widened).await;
    let generation = refused.metadata.generation;
    let what = "the widened Gateway to be Accepted=False";
    let live: Gateway = wait_for(client, namespace, PARTNERS, what, |g: Option<&Gateway>| {
        reports(
            g.and_then(|g| g.status.as_ref()),
            generation,
            "Accepted",
            "False",
            "Invalid",
        )
    })
    .await
    .expect("the Gateway");
    let accepted = condition(live.status.as_ref(), "Accepted").expect("an Accepted condition");
    assert!(
        accepted
            .message
            .contains("spec.contracts[0].routes[1].access.clients[0]"),
        "{}",
        accepted.message
    );
    let (still, _) = served_table(client, namespace).await;
    assert_eq!(
        still.data, served.data,
        "the last accepted table keeps serving"
    );
    println!("a widening route refused with its field, the last table kept");
}
