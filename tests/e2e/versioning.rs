//! Strict versioning on the real API server: each breaking edit of a published version that
//! the CRD's CEL transition rules cover is refused when it is applied, with its message; one
//! they cannot see (a method removed) is reported by the operator, `Accepted=False` with reason
//! `BreakingChange` and the field path, while the route ConfigMap keeps the table it had.

use gatehouse_api::crd::{Contract, ExposureState, Gateway};
use gatehouse_api::naming::{Kind, proxy_name};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::{TEST_MANAGER, apply, condition, reports, stored_table, wait_for};
use crate::scenario::{backend_service, expect_reconciled};

/// The versions of Contract `versioned`: v1 published (routes `product` with `methods` and
/// `search`), v2 a draft.
fn versions(methods: &[&str]) -> Value {
    json!([
        {"version": "v1", "lifecycle": "Published", "routes": [
            {"name": "product", "match": {"path": "/products/{id}", "methods": methods},
             "backend": {"service": "catalog", "port": 8080}},
            {"name": "search", "match": {"path": "/search"},
             "backend": {"service": "catalog", "port": 8080}}]},
        {"version": "v2", "routes": [
            {"name": "product", "match": {"path": "/products/{id}"},
             "backend": {"service": "catalog", "port": 8080}}]}
    ])
}

fn contract(versions: Value) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Contract",
        "metadata": {"name": "versioned", "labels": {"audience": "versioned"}},
        "spec": {"versions": versions}
    })
}

/// An edit of [`versions`] that CEL refuses: what it is, the edit, what the refusal says.
type Edit = (&'static str, fn(&mut Value), &'static str);

/// Applies `object` as the suite; the API server's refusal, if it refuses.
async fn try_apply(client: &Client, namespace: &str, object: &Value) -> Result<(), String> {
    let api: Api<Contract> = Api::namespaced(client.clone(), namespace);
    api.patch(
        "versioned",
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}

/// Runs the step in `namespace`.
pub async fn run(client: &Client, namespace: &str) {
    apply(client, namespace, &backend_service("catalog")).await;
    try_apply(client, namespace, &contract(versions(&["GET", "PUT"])))
        .await
        .expect("a published contract is created");
    let edits: [Edit; 5] = [
        (
            "a route removed",
            |v| drop(v[0]["routes"].as_array_mut().unwrap().pop()),
            "a route of a published version cannot be removed or renamed",
        ),
        (
            "back to a draft",
            |v| v[0]["lifecycle"] = json!("Draft"),
            "a published version cannot become a Draft again",
        ),
        (
            "retired at once",
            |v| v[0]["lifecycle"] = json!("Retired"),
            "a Published version is retired only once Deprecated",
        ),
        (
            "another base path",
            |v| v[0]["basePath"] = json!("/api/v1"),
            "the basePath of a published version cannot change",
        ),
        (
            "the version removed",
            |v| drop(v.as_array_mut().unwrap().remove(0)),
            "a Published version cannot be removed",
        ),
    ];
    for (what, edit, message) in &edits {
        let mut changed = versions(&["GET", "PUT"]);
        edit(&mut changed);
        let refused = try_apply(client, namespace, &contract(changed))
            .await
            .expect_err(what);
        assert!(refused.contains(message), "{what}: {refused}");
    }
    // Passive edits and a draft's change go through.
    let mut passive = versions(&["GET", "PUT", "DELETE"]);
    passive[1]["routes"][0]["match"]["path"] = json!("/items/{sku}");
    try_apply(client, namespace, &contract(passive))
        .await
        .expect("a method added and a draft changed");

    // A break CEL does not see: the Gateway keeps the last good routes, both statuses say why.
    let gateway: Gateway = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": "versioned"},
        "spec": {"expose": [{"selector": {"matchLabels": {"audience": "versioned"}}}],
                 "contracts": [{"version": "v9", "lifecycle": "Published", "routes": [
                     {"name": "own", "match": {"path": "/own", "methods": ["GET", "POST"]},
                      "backend": {"service": "catalog", "port": 8080}}]}]}
    }))
    .unwrap();
    let applied = apply(client, namespace, &gateway).await;
    expect_reconciled(client, namespace, &applied).await;
    let config_map = proxy_name(Kind::Gateway, "versioned");
    let (_, before) = stored_table(client, namespace, &config_map).await;
    let id = format!("{namespace}/versioned/v1/product");
    let methods = |table: &gatehouse_api::route_table::RouteTable| {
        let route = table.routes.iter().find(|r| r.id == id).expect("the route");
        route.methods.clone()
    };
    assert_eq!(methods(&before), ["DELETE", "GET", "PUT"]);
    try_apply(client, namespace, &contract(versions(&["GET"])))
        .await
        .expect("a method removed is not CEL's to see");
    let refused = wait_for(
        client,
        namespace,
        "versioned",
        "Contract versioned: Accepted=False, BreakingChange",
        |c: Option<&Contract>| {
            c.and_then(|c| c.status.as_ref()).is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Accepted" && c.reason == "BreakingChange")
            })
        },
    )
    .await
    .expect("the Contract");
    let status = refused.status.expect("a status");
    let accepted = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert!(
        accepted.message.contains(
            "spec.versions[version=v1].routes[name=product].match.methods: method DELETE removed"
        ) && accepted.message.contains("method PUT removed"),
        "{}",
        accepted.message
    );
    let exposer = &status.exposed_by[0];
    assert_eq!(
        (exposer.state, exposer.reason.as_deref()),
        (ExposureState::LastGoodServed, Some("BreakingChange"))
    );
    let (_, kept) = stored_table(client, namespace, &config_map).await;
    assert_eq!(kept, before, "the route ConfigMap keeps the table it had");

    // The Gateway's own published contract: a method removed refuses the whole Gateway.
    let mut narrowed = serde_json::to_value(&gateway).unwrap();
    narrowed["spec"]["contracts"][0]["routes"][0]["match"]["methods"] = json!(["GET"]);
    let narrowed: Gateway = serde_json::from_value(narrowed).unwrap();
    let applied = apply(client, namespace, &narrowed).await;
    let generation = applied.metadata.generation;
    let gateway = wait_for(
        client,
        namespace,
        "versioned",
        "Gateway versioned: Accepted=False, BreakingChange",
        |g: Option<&Gateway>| {
            let status = g.and_then(|g| g.status.as_ref());
            reports(status, generation, "Accepted", "False", "BreakingChange")
        },
    )
    .await
    .expect("the Gateway");
    let accepted = condition(gateway.status.as_ref(), "Accepted").unwrap();
    assert_eq!(
        accepted.message,
        "spec.contracts[version=v9].routes[name=own].match.methods: method POST removed"
    );
    let (_, kept) = stored_table(client, namespace, &config_map).await;
    assert_eq!(kept, before, "the last accepted table keeps serving");
}
