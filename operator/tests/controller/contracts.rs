//! A Gateway that exposes Contract resources: it compiles against the Contract and grant
//! stores the Context holds, over the table its route ConfigMap holds, and its status says how
//! each Contract fared.

use std::sync::Arc;

use gatehouse_api::crd::{Contract, ContractGrant, Gateway};
use gatehouse_api::route_table::RouteTable;
use gatehouse_api::table_file;
use gatehouse_operator::controller::context::{Clock, Context};
use gatehouse_operator::controller::contract_status::{ContractStatusContext, reconcile_contract};
use gatehouse_operator::controller::contracts::ContractStores;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::support::{FakeApi, collection};
use super::{
    APPLY, NS, body, condition, context, lines, object, patched_status, reconcile_gateway, service,
};

/// Gateway `public` of the shop namespace, with client `web`, exposing Contract `orders` of its
/// own namespace and Contract `payments` of namespace billing.
fn exposing_gateway() -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": NS, "uid": "uid-public", "generation": 1},
        "spec": {
            "clients": [{"name": "web", "apiKeys": {"secretRef": {"name": "web-api-keys"}}}],
            "expose": [
                {"contract": "orders"},
                {"contract": "payments", "namespace": "billing"}
            ]
        }
    })
}

/// Contract `name` of `namespace` at `generation`: version v1 under `/NAME/v1`, one GET route
/// to Service `service`, callable by `clients` (empty: any).
fn contract(
    namespace: &str,
    name: &str,
    generation: i64,
    service: &str,
    clients: &[&str],
) -> Contract {
    let mut version = json!({
        "version": "v1",
        "basePath": format!("/{name}/v1"),
        "routes": [{"name": "list", "match": {"path": "/items", "methods": ["GET"]},
                    "backend": {"service": service, "port": 8080}}]
    });
    if !clients.is_empty() {
        version["access"] = json!({"clients": clients});
    }
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "Contract",
        "metadata": {"name": name, "namespace": namespace, "generation": generation,
                     "uid": format!("uid-{name}")},
        "spec": {"versions": [version]}
    }))
    .unwrap()
}

/// A grant of namespace billing letting Gateways of the shop namespace expose its Contracts.
fn grant() -> ContractGrant {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "ContractGrant",
        "metadata": {"name": "shop", "namespace": "billing"},
        "spec": {"from": [{"namespace": NS, "kind": "Gateway"}]}
    }))
    .unwrap()
}

/// The Context over Contract and grant stores this test fills.
struct Catalog {
    ctx: Arc<Context>,
    contracts: Writer<Contract>,
    grants: Writer<ContractGrant>,
}

impl Catalog {
    fn new(fake: &FakeApi) -> Self {
        let (contracts, contract_writer) = reflector::store();
        let (grants, grant_writer) = reflector::store();
        let ctx = Arc::into_inner(context(fake))
            .unwrap()
            .with_contracts(ContractStores { contracts, grants }, None);
        Self {
            ctx: Arc::new(ctx),
            contracts: contract_writer,
            grants: grant_writer,
        }
    }

    fn put(&mut self, contract: Contract) {
        self.contracts
            .apply_watcher_event(&watcher::Event::Apply(contract));
    }

    fn grant(&mut self, grant: ContractGrant) {
        self.grants
            .apply_watcher_event(&watcher::Event::Apply(grant));
    }
}

/// The table the route ConfigMap holds now.
fn fake_table(fake: &FakeApi) -> RouteTable {
    let stored: ConfigMap =
        serde_json::from_value(fake.get(NS, "configmaps", "public-gateway").unwrap()).unwrap();
    RouteTable::from_bytes(&table_file::from_config_map(&stored).unwrap().unwrap()).unwrap()
}

/// The table the ConfigMap applied in `log` holds.
fn applied_table(log: &[super::support::Recorded]) -> RouteTable {
    let config_map: ConfigMap = serde_json::from_value(
        body(log, &format!("PATCH {}{APPLY}", object("configmaps"))).clone(),
    )
    .unwrap();
    RouteTable::from_bytes(&table_file::from_config_map(&config_map).unwrap().unwrap()).unwrap()
}

fn ids(table: &RouteTable) -> Vec<&str> {
    table.routes.iter().map(|r| r.id.as_str()).collect()
}

/// `(namespace, name, state, reason, servedGeneration)` of each `status.exposedContracts`.
fn exposed(status: &Value) -> Vec<(String, String, String, Value, Value)> {
    status["exposedContracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_owned();
            (
                text("namespace"),
                text("name"),
                text("state"),
                e["reason"].clone(),
                e["servedGeneration"].clone(),
            )
        })
        .collect()
}

fn entry(
    ns: &str,
    name: &str,
    state: &str,
    reason: Value,
    generation: Value,
) -> (String, String, String, Value, Value) {
    (
        ns.to_owned(),
        name.to_owned(),
        state.to_owned(),
        reason,
        generation,
    )
}

#[tokio::test]
async fn a_contract_of_another_namespace_is_served_once_a_grant_lets_it() {
    let fake = FakeApi::default();
    fake.put(NS, "gateways", exposing_gateway());
    let mut catalog = Catalog::new(&fake);
    catalog.put(contract(NS, "orders", 1, "orders", &["web"]));
    catalog.put(contract("billing", "payments", 4, "payments", &[]));
    fake.put(NS, "services", service("orders"));

    reconcile_gateway(&fake, &catalog.ctx).await;
    let log = fake.take_log();
    // The Services of the Contract it may serve are listed (in the Contract's namespace), then
    // the table it replaces is read (there is none yet).
    assert_eq!(
        lines(&log)[..2],
        [
            format!("GET {}?", collection(NS, "services")),
            format!("GET {}", object("configmaps"))
        ]
    );
    let table = applied_table(&log);
    assert_eq!(ids(&table), ["shop/orders/v1/list"]);
    let orders = &table.routes[0];
    assert_eq!(orders.path, "/orders/v1/items");
    let status = patched_status(&log);
    assert_eq!(
        exposed(status),
        [
            entry(
                "billing",
                "payments",
                "NotServed",
                json!("RefNotPermitted"),
                Value::Null
            ),
            entry(NS, "orders", "Served", Value::Null, json!(1)),
        ]
    );
    let resolved = condition(status, "ResolvedRefs");
    assert_eq!(
        (&resolved["status"], &resolved["reason"]),
        (&json!("False"), &json!("RefNotPermitted"))
    );
    assert_eq!(
        resolved["message"],
        "Contract billing/payments (RefNotPermitted): spec.expose[1]: Contract billing/payments \
         is in another namespace, and no ContractGrant there lets Gateway shop/public expose it; \
         its routes are not served"
    );
    assert_eq!(condition(status, "Accepted")["status"], "True");

    catalog.grant(grant());
    reconcile_gateway(&fake, &catalog.ctx).await;
    let log = fake.take_log();
    // Its Service does not exist: said, and served all the same (as for inline routes).
    let billing_services = format!("GET {}?", collection("billing", "services"));
    assert!(
        lines(&log).contains(&billing_services),
        "{:#?}",
        lines(&log)
    );
    let resolved = condition(patched_status(&log), "ResolvedRefs");
    assert_eq!(
        (
            &resolved["status"],
            &resolved["reason"],
            &resolved["message"]
        ),
        (
            &json!("False"),
            &json!("BackendNotFound"),
            &json!(
                "Service \"payments\" of namespace billing (named by Contract billing/payments) \
                 not found; requests to these backends fail until they exist"
            )
        )
    );
    assert_eq!(
        ids(&applied_table(&log)),
        ["billing/payments/v1/list", "shop/orders/v1/list"]
    );

    fake.put(
        "billing",
        "services",
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "payments", "namespace": "billing"}}),
    );
    reconcile_gateway(&fake, &catalog.ctx).await;
    let log = fake.take_log();
    let table = fake_table(&fake);
    assert_eq!(
        ids(&table),
        ["billing/payments/v1/list", "shop/orders/v1/list"]
    );
    // The Contract's Services are its own namespace's.
    let host = |id: &str| match &table.routes.iter().find(|r| r.id == id).unwrap().action {
        gatehouse_api::route_table::Action::Proxy { upstreams } => upstreams[0].host.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        host("billing/payments/v1/list"),
        "payments.billing.svc.cluster.local"
    );
    let status = patched_status(&log);
    assert_eq!(
        exposed(status),
        [
            entry("billing", "payments", "Served", Value::Null, json!(4)),
            entry(NS, "orders", "Served", Value::Null, json!(1)),
        ]
    );
    let resolved = condition(status, "ResolvedRefs");
    assert_eq!(
        (&resolved["status"], &resolved["message"]),
        (
            &json!("True"),
            &json!(
                "every referenced Service, Aggregator, Contract, TLS, CA and Redis Secret resolves"
            )
        )
    );
}

#[tokio::test]
async fn a_contract_broken_later_keeps_its_last_good_routes_and_others_update() {
    let fake = FakeApi::default();
    // orders-v2 is missing: generation 2 of orders, which names it, is not served.
    fake.put(NS, "services", service("orders"));
    for name in ["payments", "payments-v2"] {
        fake.put(
            "billing",
            "services",
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "billing"}}),
        );
    }
    fake.put(NS, "gateways", exposing_gateway());
    let mut catalog = Catalog::new(&fake);
    catalog.put(contract(NS, "orders", 1, "orders", &["web"]));
    catalog.grant(grant());
    catalog.put(contract("billing", "payments", 1, "payments", &[]));
    reconcile_gateway(&fake, &catalog.ctx).await;
    let first = applied_table(&fake.take_log());

    // Generation 2 of orders names a client this Gateway lacks; payments moves to another
    // Service at the same time.
    catalog.put(contract(NS, "orders", 2, "orders-v2", &["nobody"]));
    catalog.put(contract("billing", "payments", 2, "payments-v2", &[]));
    reconcile_gateway(&fake, &catalog.ctx).await;
    let log = fake.take_log();
    let table = applied_table(&log);
    let route =
        |table: &RouteTable, id: &str| table.routes.iter().find(|r| r.id == id).cloned().unwrap();
    // orders: exactly the routes the ConfigMap held; payments: its new generation.
    assert_eq!(
        route(&table, "shop/orders/v1/list"),
        route(&first, "shop/orders/v1/list")
    );
    assert_ne!(
        route(&table, "billing/payments/v1/list"),
        route(&first, "billing/payments/v1/list")
    );
    let status = patched_status(&log);
    assert_eq!(
        exposed(status),
        [
            entry("billing", "payments", "Served", Value::Null, json!(2)),
            entry(
                NS,
                "orders",
                "LastGoodServed",
                json!("UnknownClient"),
                json!(1)
            ),
        ]
    );
    let resolved = condition(status, "ResolvedRefs");
    assert_eq!(resolved["reason"], "InvalidContract");
    let message = resolved["message"].as_str().unwrap();
    assert!(
        message.starts_with("Contract shop/orders (UnknownClient): as exposed by Gateway shop/public: spec.versions[0].access.clients[0]"),
        "{message}"
    );
    assert!(
        message.ends_with("; its routes of generation 1 keep serving"),
        "{message}"
    );

    // The operator took them from its last compile: it read no table back, which it does
    // before the apply step's reads of the children.
    let config_map = format!("GET {}", object("configmaps"));
    // Whether the table is read before the first child, the ServiceAccount.
    let reads_back = |log: &[super::support::Recorded]| {
        let lines = lines(log);
        let at = |line: &str| lines.iter().position(|l| l == line);
        match (
            at(&config_map),
            at(&format!("GET {}", object("serviceaccounts"))),
        ) {
            (Some(table), Some(child)) => table < child,
            _ => panic!("{lines:#?}"),
        }
    };
    assert!(!reads_back(&log));

    // After a restart it has no last compile: they come from the table the ConfigMap holds.
    let restarted = |catalog: &mut Catalog| {
        catalog.put(contract(NS, "orders", 2, "orders-v2", &["nobody"]));
        catalog.grant(grant());
        catalog.put(contract("billing", "payments", 2, "payments-v2", &[]));
    };
    let mut after_restart = Catalog::new(&fake);
    restarted(&mut after_restart);
    reconcile_gateway(&fake, &after_restart.ctx).await;
    assert!(reads_back(&fake.take_log()));
    assert_eq!(fake_table(&fake).routes, table.routes);
    // Restarted without that ConfigMap either, orders as it is now cannot be served anywhere.
    fake.delete(NS, "configmaps", "public-gateway");
    let mut from_nothing = Catalog::new(&fake);
    restarted(&mut from_nothing);
    reconcile_gateway(&fake, &from_nothing.ctx).await;
    let log = fake.take_log();
    assert_eq!(ids(&applied_table(&log)), ["billing/payments/v1/list"]);
    assert_eq!(
        exposed(patched_status(&log))[1],
        entry(
            NS,
            "orders",
            "NotServed",
            json!("UnknownClient"),
            Value::Null
        )
    );
}

#[tokio::test]
async fn a_contract_s_status_names_its_exposers_and_is_written_only_when_it_changes() {
    let fake = FakeApi::default();
    fake.put(NS, "gateways", exposing_gateway());
    let mut catalog = Catalog::new(&fake);
    let orders = contract(NS, "orders", 1, "orders", &["web"]);
    fake.put(NS, "contracts", serde_json::to_value(&orders).unwrap());
    catalog.put(orders.clone());
    reconcile_gateway(&fake, &catalog.ctx).await;
    // The Gateway as the operator's watch now holds it, with its status.
    let gateway: Gateway =
        serde_json::from_value(fake.get(NS, "gateways", "public").unwrap()).unwrap();
    let (gateways, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Apply(gateway));
    let ctx = Arc::new(ContractStatusContext {
        client: fake.client(),
        clock: Clock::Fixed(super::now()),
        gateways,
        edges: reflector::store().0,
    });
    fake.take_log();

    reconcile_contract(Arc::new(orders), ctx.clone())
        .await
        .unwrap();
    let log = fake.take_log();
    let patch = format!("PATCH {}/orders/status{APPLY}", collection(NS, "contracts"));
    assert_eq!(lines(&log), std::slice::from_ref(&patch));
    let status = &body(&log, &patch)["status"];
    assert_eq!(
        status["exposedBy"],
        json!([{"kind": "Gateway", "namespace": NS, "name": "public", "versions": ["v1"],
                "state": "Served", "servedGeneration": 1}])
    );
    assert_eq!(status["exposedCount"], 1);
    assert_eq!(status["versions"], "v1");
    assert_eq!(status["observedGeneration"], 1);
    let accepted = condition(status, "Accepted");
    assert_eq!(
        (&accepted["status"], &accepted["reason"]),
        (&json!("True"), &json!("Accepted"))
    );

    // Reconciled again as it now is: nothing to write.
    let written: Contract =
        serde_json::from_value(fake.get(NS, "contracts", "orders").unwrap()).unwrap();
    reconcile_contract(Arc::new(written), ctx).await.unwrap();
    assert!(fake.take_log().is_empty());
}
