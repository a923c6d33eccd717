//! Issue 16's scale on the real API server: one Gateway exposing 200 Contracts of 50 routes
//! (10,000 routes). The operator serves every one, the route table it stores is the one
//! `render`'s compile makes of the same objects (digest for digest), and one Contract's change
//! reaches the stored table (the time is printed, not asserted).

use std::time::Instant;

use gatehouse_api::crd::{Contract, ExposureState, Gateway};
use gatehouse_api::exposure::Catalog;
use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::RouteTable;
use gatehouse_api::table_file::from_config_map;
use gatehouse_operator::plan::{Found, plan};
use gatehouse_operator::settings::ProxySettings;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::{apply, stored_table, wait_for};
use crate::scenario::backend_service;

const GATEWAY: &str = "platform";
const CONTRACTS: usize = 200;
const ROUTES: usize = 50;
/// The label that picks them.
const LABEL: &str = "scale";

/// Contract `c`: version v1 under `/team-C`, `routes` GET routes to Service `teams`.
fn contract(c: usize, routes: usize) -> Contract {
    let routes: Vec<Value> = (0..routes)
        .map(|r| {
            json!({"name": format!("r{r}"),
                   "match": {"path": format!("/items-{r}/{{id}}"), "methods": ["GET"]},
                   "backend": {"service": "teams", "port": 8080, "path": format!("/t{c}/{{id}}")}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Contract",
        "metadata": {"name": format!("team-{c}"), "labels": {"exposed": LABEL}},
        "spec": {"versions": [{"version": "v1", "basePath": format!("/team-{c}"), "routes": routes}]}
    }))
    .unwrap()
}

async fn stored(client: &Client, namespace: &str) -> (ConfigMap, RouteTable) {
    stored_table(client, namespace, &proxy_name(Kind::Gateway, GATEWAY)).await
}

/// Runs the step in `namespace`.
pub async fn run(client: &Client, namespace: &str) {
    apply(client, namespace, &backend_service("teams")).await;
    let started = Instant::now();
    for c in 0..CONTRACTS {
        apply(client, namespace, &contract(c, ROUTES)).await;
    }
    let gateway: Gateway = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": GATEWAY},
        "spec": {"expose": [{"selector": {"matchLabels": {"exposed": LABEL}}}]}
    }))
    .unwrap();
    apply(client, namespace, &gateway).await;
    let what = format!("Gateway {GATEWAY} to serve {CONTRACTS} Contracts");
    let live: Gateway = wait_for(client, namespace, GATEWAY, &what, |g: Option<&Gateway>| {
        g.and_then(|g| g.status.as_ref()).is_some_and(|s| {
            s.routes == Some((CONTRACTS * ROUTES) as i32)
                && s.exposed_contracts.len() == CONTRACTS
                && s.exposed_contracts
                    .iter()
                    .all(|e| e.state == ExposureState::Served)
        })
    })
    .await
    .expect("the Gateway");
    println!(
        "{CONTRACTS} Contracts of {ROUTES} routes applied and served {:?} after the first apply",
        started.elapsed()
    );

    // The same objects, compiled as `render` compiles them, give the same table.
    let (config_map, table) = stored(client, namespace).await;
    let contracts: Api<Contract> = Api::namespaced(client.clone(), namespace);
    let listed = contracts.list(&ListParams::default()).await.unwrap().items;
    let found = Found {
        catalog: std::sync::Arc::new(Catalog::new(
            listed.into_iter().map(std::sync::Arc::new),
            Vec::new(),
        )),
        ..Found::default()
    };
    let offline = plan(&Resource::Gateway(live), &found, &ProxySettings::default())
        .expect("render's compile accepts them");
    assert_eq!(table.routes.len(), CONTRACTS * ROUTES);
    assert_eq!(
        table.digest(),
        offline.table.digest(),
        "the stored table is the one render makes"
    );
    let stored_bytes: usize = config_map
        .binary_data
        .iter()
        .flatten()
        .map(|(_, v)| v.0.len())
        .sum();
    assert!(stored_bytes > 0, "a table this large is stored gzipped");
    println!(
        "the stored table ({} routes, {} KiB gzipped) is render's, digest {}",
        table.routes.len(),
        stored_bytes / 1024,
        table.digest()
    );

    // One team adds a route: the stored table has it, the others' routes unchanged.
    let changed = contract(CONTRACTS / 2, ROUTES + 1);
    let started = Instant::now();
    apply(client, namespace, &changed).await;
    let new_id = format!("{namespace}/team-{}/v1/r{ROUTES}", CONTRACTS / 2);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let what = format!("the route table to hold {new_id}");
    let name = proxy_name(Kind::Gateway, GATEWAY);
    crate::cluster::within(
        &what,
        kube::runtime::wait::await_condition(config_maps, &name, |c: Option<&ConfigMap>| {
            c.and_then(from_config_map)
                .and_then(Result::ok)
                .and_then(|json| RouteTable::from_bytes(&json).ok())
                .is_some_and(|t| t.routes.iter().any(|r| r.id == new_id))
        }),
    )
    .await
    .unwrap();
    println!(
        "one Contract's change stored in the {}-route table {:?} after its apply returned",
        CONTRACTS * ROUTES + 1,
        started.elapsed()
    );
    let (_, after) = stored(client, namespace).await;
    let others = |t: &RouteTable| {
        t.routes
            .iter()
            .filter(|r| {
                !r.id
                    .starts_with(&format!("{namespace}/team-{}/", CONTRACTS / 2))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&after), others(&table));
}
