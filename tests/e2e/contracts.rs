//! Contract resources on the real API server: a Gateway that exposes its namespace's Contracts
//! by label serves their routes; a Contract changed is served without the Gateway changing (the
//! operator watches Contracts); one broken keeps its last good routes and the Gateway says
//! why; one relabelled or deleted leaves the table. Each Contract's status names the Gateway
//! and how it serves it, and an invalid one says why.
//!
//! The operator under test watches one namespace, so grants across namespaces are not tried
//! here (the controller tests do).

use gatehouse_api::crd::{Contract, ContractStatus, ExposureState, Gateway};
use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::route_table::RouteTable;
use kube::api::DeleteParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::{apply, condition, printed_columns, secret, stored_table, wait_for};
use crate::scenario::{backend_service, expect_reconciled};

const GATEWAY: &str = "team-apis";

/// Contract `name` labelled `audience`, version v1 with one route per entry of `routes`
/// (name, path), to Service `name`; callable by `clients` (empty: any client).
fn contract(name: &str, audience: &str, routes: &[(&str, &str)], clients: &[&str]) -> Contract {
    let routes: Vec<Value> = routes
        .iter()
        .map(|(route, path)| {
            json!({"name": route, "match": {"path": path, "methods": ["GET"]},
                   "backend": {"service": name, "port": 8080}})
        })
        .collect();
    let mut version = json!({"version": "v1", "basePath": format!("/{name}/v1"), "routes": routes});
    if !clients.is_empty() {
        version["access"] = json!({"clients": clients});
    }
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Contract",
        "metadata": {"name": name, "labels": {"audience": audience}},
        "spec": {"versions": [version]}
    }))
    .unwrap()
}

async fn served_table(client: &Client, namespace: &str) -> RouteTable {
    stored_table(client, namespace, &proxy_name(Kind::Gateway, GATEWAY))
        .await
        .1
}

fn ids(table: &RouteTable) -> Vec<&str> {
    table.routes.iter().map(|r| r.id.as_str()).collect()
}

/// Waits until the Gateway's status says of Contract `name`: `state` at `generation` (`None`:
/// the Gateway exposes no such Contract any more).
async fn wait_exposed(
    client: &Client,
    namespace: &str,
    name: &str,
    expected: Option<(ExposureState, Option<i64>)>,
) -> Gateway {
    let what = format!("Gateway {GATEWAY} to report Contract {name} as {expected:?}");
    wait_for(client, namespace, GATEWAY, &what, |g: Option<&Gateway>| {
        let exposed = g
            .and_then(|g| g.status.as_ref())
            .map(|s| s.exposed_contracts.as_slice())
            .unwrap_or_default();
        let found = exposed
            .iter()
            .find(|e| e.name == name)
            .map(|e| (e.state, e.served_generation));
        found == expected
    })
    .await
    .expect("the Gateway")
}

/// Waits until Contract `name`'s status satisfies `done`; returns it.
async fn wait_contract(
    client: &Client,
    namespace: &str,
    name: &str,
    done: impl Fn(&ContractStatus) -> bool,
) -> Contract {
    let what = format!("Contract {name}'s status");
    wait_for(client, namespace, name, &what, |c: Option<&Contract>| {
        c.and_then(|c| c.status.as_ref()).is_some_and(&done)
    })
    .await
    .expect("the Contract")
}

/// `(status, reason)` of the Contract's `Accepted` condition.
fn accepted(status: &ContractStatus) -> (&str, &str) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .expect("an Accepted condition");
    (c.status.as_str(), c.reason.as_str())
}

/// Runs the step in `namespace`.
pub async fn run(client: &Client, namespace: &str) {
    for name in ["catalog", "orders"] {
        apply(client, namespace, &backend_service(name)).await;
    }
    let keys = secret(namespace, "web-keys", None, json!({"key": "web-e2e-key"}));
    apply(client, namespace, &keys).await;
    apply(
        client,
        namespace,
        &contract("catalog", "public", &[("items", "/items")], &[]),
    )
    .await;
    apply(
        client,
        namespace,
        &contract("orders", "public", &[("list", "/orders")], &["web"]),
    )
    .await;
    let gateway: Gateway = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": GATEWAY},
        "spec": {
            "clients": [{"name": "web", "apiKeys": {"secretRef": {"name": "web-keys"}}}],
            "expose": [{"selector": {"matchLabels": {"audience": "public"}}}]
        }
    }))
    .unwrap();
    let applied = apply(client, namespace, &gateway).await;
    expect_reconciled(client, namespace, &applied).await;
    let table = served_table(client, namespace).await;
    let catalog_id = format!("{namespace}/catalog/v1/items");
    let orders_id = format!("{namespace}/orders/v1/list");
    assert_eq!(ids(&table), [catalog_id.as_str(), orders_id.as_str()]);
    wait_exposed(
        client,
        namespace,
        "orders",
        Some((ExposureState::Served, Some(1))),
    )
    .await;
    // The Contract says so too.
    let orders = wait_contract(client, namespace, "orders", |s| s.exposed_count == Some(1)).await;
    let status = orders.status.as_ref().unwrap();
    let exposer = &status.exposed_by[0];
    assert_eq!(
        (exposer.kind.as_str(), exposer.name.as_str(), exposer.state),
        ("Gateway", GATEWAY, ExposureState::Served)
    );
    assert_eq!(accepted(status), ("True", "Accepted"));
    assert_eq!(status.versions.as_deref(), Some("v1"));
    // As `kubectl get contracts` prints it.
    let columns = printed_columns(
        client,
        &format!("/apis/gatehouse.dev/v1alpha1/namespaces/{namespace}/contracts/orders"),
    )
    .await;
    let column = |name: &str| {
        columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, cell)| cell.clone())
            .unwrap_or_else(|| panic!("a {name} column in {columns:?}"))
    };
    assert_eq!(
        (column("Versions"), column("Accepted"), column("Exposed")),
        (json!("v1"), json!("True"), json!(1))
    );
    println!("a Gateway serves the Contracts its selector picks, and each Contract names it");

    // The orders team adds a route: served, though the Gateway did not change.
    apply(
        client,
        namespace,
        &contract(
            "orders",
            "public",
            &[("list", "/orders"), ("one", "/orders/{id}")],
            &["web"],
        ),
    )
    .await;
    wait_exposed(
        client,
        namespace,
        "orders",
        Some((ExposureState::Served, Some(2))),
    )
    .await;
    let table = served_table(client, namespace).await;
    assert!(ids(&table).contains(&format!("{namespace}/orders/v1/one").as_str()));
    println!("a changed Contract is served without the Gateway changing");

    // A new Contract routes to a Service its namespace lacks: said, until the Service appears.
    apply(
        client,
        namespace,
        &contract("search", "public", &[("find", "/find")], &[]),
    )
    .await;
    let resolved_refs = |wanted: (&'static str, &'static str)| {
        move |g: Option<&Gateway>| {
            condition(g.and_then(|g| g.status.as_ref()), "ResolvedRefs")
                .is_some_and(|c| (c.status.as_str(), c.reason.as_str()) == wanted)
        }
    };
    let missing = wait_for(
        client,
        namespace,
        GATEWAY,
        "ResolvedRefs=False BackendNotFound for the search Contract's Service",
        resolved_refs(("False", "BackendNotFound")),
    )
    .await
    .expect("the Gateway");
    assert_eq!(
        condition(missing.status.as_ref(), "ResolvedRefs")
            .unwrap()
            .message,
        format!(
            "Service \"search\" of namespace {namespace} (named by Contract {namespace}/search) \
             not found; requests to these backends fail until they exist"
        )
    );
    apply(client, namespace, &backend_service("search")).await;
    wait_for(
        client,
        namespace,
        GATEWAY,
        "ResolvedRefs=True once the search Service exists",
        resolved_refs(("True", "ResolvedRefs")),
    )
    .await;
    Api::<Contract>::namespaced(client.clone(), namespace)
        .delete("search", &DeleteParams::default())
        .await
        .expect("delete the search Contract");
    wait_exposed(client, namespace, "search", None).await;
    println!("a served Contract's missing Service is reported until it exists");

    // Then names a client the Gateway lacks: its generation 2 keeps serving, the Gateway says
    // why, and the catalog is untouched.
    apply(
        client,
        namespace,
        &contract("orders", "public", &[("list", "/orders")], &["nobody"]),
    )
    .await;
    let live = wait_exposed(
        client,
        namespace,
        "orders",
        Some((ExposureState::LastGoodServed, Some(2))),
    )
    .await;
    let status = live.status.as_ref();
    let resolved = condition(status, "ResolvedRefs").expect("ResolvedRefs");
    assert_eq!(
        (resolved.status.as_str(), resolved.reason.as_str()),
        ("False", "InvalidContract")
    );
    assert!(
        resolved
            .message
            .contains("spec.versions[0].access.clients[0]")
            && resolved
                .message
                .contains("its routes of generation 2 keep serving"),
        "{}",
        resolved.message
    );
    assert_eq!(
        condition(status, "Accepted").map(|c| c.status.as_str()),
        Some("True")
    );
    let table = served_table(client, namespace).await;
    assert!(ids(&table).contains(&format!("{namespace}/orders/v1/one").as_str()));
    assert!(ids(&table).contains(&catalog_id.as_str()));
    let orders = wait_contract(client, namespace, "orders", |s| {
        s.exposed_by
            .first()
            .is_some_and(|e| e.state == ExposureState::LastGoodServed)
    })
    .await;
    let status = orders.status.as_ref().unwrap();
    assert_eq!(status.exposed_count, Some(0));
    assert_eq!(
        status.exposed_by[0].reason.as_deref(),
        Some("UnknownClient")
    );
    // Valid on its own: only this Gateway lacks the client.
    assert_eq!(accepted(status), ("True", "Accepted"));
    println!("a broken Contract keeps its last good routes, the Gateway names the field");

    // A Contract invalid on its own says so in its status, exposed or not.
    let text = std::fs::read_to_string(
        crate::operator_process::workspace()
            .join("examples/not-accepted/contract-shadowed-route.yaml"),
    )
    .unwrap();
    let mut shadowed: Contract = serde_saphyr::from_str(&text).unwrap();
    shadowed.metadata.name = Some("catalog-shadowed".to_owned());
    apply(client, namespace, &shadowed).await;
    let shadowed = wait_contract(client, namespace, "catalog-shadowed", |s| {
        !s.conditions.is_empty()
    })
    .await;
    let status = shadowed.status.as_ref().unwrap();
    assert_eq!(accepted(status).0, "False");
    assert!(
        status.conditions[0].message.contains(
            "spec.versions[1].routes[0].match: route v2/product matches exactly the same \
             requests as route v1/product"
        ),
        "{:?}",
        status.conditions
    );
    println!("an invalid Contract is reported in its own status");

    // The catalog leaves the audience, orders is deleted: both leave the table.
    let relabelled = contract("catalog", "internal", &[("items", "/items")], &[]);
    apply(client, namespace, &relabelled).await;
    wait_exposed(client, namespace, "catalog", None).await;
    let contracts: Api<Contract> = Api::namespaced(client.clone(), namespace);
    contracts
        .delete("orders", &DeleteParams::default())
        .await
        .expect("deleting Contract orders");
    let live = wait_exposed(client, namespace, "orders", None).await;
    assert!(served_table(client, namespace).await.routes.is_empty());
    assert_eq!(live.status.as_ref().and_then(|s| s.routes), Some(0));
    println!("a relabelled or deleted Contract leaves the table");
}
