//! Contract resources: what a Gateway or EdgeService that exposes them serves — references,
//! grants, version subsets, conflicts settled by age, and the last good generation of a
//! Contract that cannot be served as it is now.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use gatehouse_api::compile::{CompileContext, Compiled};
use gatehouse_api::crd::{Contract, ContractGrant, ExposedContract, ExposureState};
use gatehouse_api::exposure::Catalog;
use gatehouse_api::resource::{Bundle, Document, Resource};
use gatehouse_api::route_table::{Action, RouteTable};

/// Every document of a YAML text.
fn documents(yaml: &str) -> Vec<Document> {
    Document::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// A Contract in `namespace`, created at `created` (RFC 3339), with generation `generation`.
fn contract(namespace: &str, name: &str, created: &str, generation: i64, versions: &str) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Contract\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  generation: {generation}\n  creationTimestamp: \"{created}\"\n  labels: {{team: {name}}}\nspec:\n  versions:\n{versions}\n"
    )
}

/// One version with one GET route `route` at `path` to Service `service`.
fn version(version: &str, base: &str, route: &str, path: &str, service: &str) -> String {
    format!(
        "    - version: {version}\n      basePath: {base}\n      routes:\n        - {{name: {route}, match: {{path: \"{path}\", methods: [GET]}}, backend: {{service: {service}, port: 8080}}}}\n"
    )
}

/// Contract `orders` of namespace `platform` (created after the catalog) at `generation`: one
/// version `v1` at `/orders/v1` with route `list` at `path`, to Service `orders`.
fn orders(path: &str, generation: i64) -> String {
    contract(
        "platform",
        "orders",
        "2026-01-02T00:00:00Z",
        generation,
        &version("v1", "/orders/v1", "list", path, "orders"),
    )
}

/// A Gateway `edge` of namespace `platform` with client `web`, exposing `expose` (YAML list
/// items).
fn gateway(expose: &str) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: edge\n  namespace: platform\nspec:\n  clients:\n    - name: web\n      apiKeys: {{secretRef: {{name: web-keys}}}}\n  expose:\n{expose}\n"
    )
}

/// Reads the objects of `yaml` together; compiles the only resource over `previous`.
fn compile_over(yaml: &str, previous: Option<&RouteTable>) -> Compiled {
    compile_after(yaml, previous, None)
}

/// [`compile_over`], also given what the compile `last` made of the Contracts.
fn compile_after(yaml: &str, previous: Option<&RouteTable>, last: Option<&Compiled>) -> Compiled {
    let bundle = Bundle::new(documents(yaml), "default");
    let context = CompileContext {
        catalog: bundle.catalog.clone(),
        compiled: last.map(|c| Arc::new(c.contracts.clone())),
        ..CompileContext::default()
    };
    assert_eq!(bundle.resources.len(), 1);
    bundle.resources[0]
        .compile_over(&context, previous)
        .unwrap_or_else(|p| panic!("{p:?}"))
}

fn ids(table: &RouteTable) -> Vec<&str> {
    table.routes.iter().map(|r| r.id.as_str()).collect()
}

fn outcome<'a>(compiled: &'a Compiled, name: &str) -> &'a ExposedContract {
    compiled
        .exposed
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no outcome for {name}: {:#?}", compiled.exposed))
}

fn upstream_host(table: &RouteTable, id: &str) -> String {
    let route = table.routes.iter().find(|r| r.id == id).unwrap();
    match &route.action {
        Action::Proxy { upstreams } => upstreams[0].host.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_example_teams_contracts_compile_into_the_gateway_and_the_edge() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/contracts");
    let mut all = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        all.extend(documents(&std::fs::read_to_string(file).unwrap()));
    }
    let bundle = Bundle::new(all, "default");
    assert!(bundle.contract_problems().is_empty());
    let context = CompileContext {
        catalog: bundle.catalog.clone(),
        ..CompileContext::default()
    };
    let compiled: Vec<(String, RouteTable)> = bundle
        .resources
        .iter()
        .map(|r| (r.name().to_owned(), r.compile(&context).unwrap()))
        .collect();
    let [(edge_name, edge), (gateway_name, gateway)] = &compiled[..] else {
        panic!("{compiled:?}")
    };
    assert_eq!(
        (edge_name.as_str(), gateway_name.as_str()),
        ("mobile", "public-api")
    );
    assert_eq!(
        ids(gateway),
        [
            "payments/payments/v1/create-payment",
            "shop/catalog/v1/list-products",
            "shop/catalog/v1/product",
            "shop/catalog/v2/list-products",
            "shop/catalog/v2/product",
            "shop/orders/v1/orders",
        ]
    );
    // A Contract's Services are its own namespace's.
    assert_eq!(
        upstream_host(gateway, "payments/payments/v1/create-payment"),
        "payments.payments.svc.cluster.local"
    );
    assert_eq!(
        upstream_host(gateway, "shop/catalog/v2/product"),
        "catalog.shop.svc.cluster.local"
    );
    let sources: Vec<(&str, &str, &[String])> = gateway
        .contracts
        .iter()
        .map(|c| (c.namespace.as_str(), c.name.as_str(), c.versions.as_slice()))
        .collect();
    assert_eq!(
        sources,
        [
            ("payments", "payments", &["v1".to_owned()][..]),
            ("shop", "catalog", &["v1".to_owned(), "v2".to_owned()][..]),
            ("shop", "orders", &["v1".to_owned()][..]),
        ]
    );
    // The edge exposes catalog v1 only.
    assert_eq!(
        ids(edge),
        ["shop/catalog/v1/list-products", "shop/catalog/v1/product"]
    );
    // What the operator writes, the proxy reads back unchanged.
    for (_, table) in &compiled {
        assert_eq!(&RouteTable::from_bytes(&table.to_bytes()).unwrap(), table);
        gatehouse_api::validate::check_table(table).unwrap();
    }
}

#[test]
fn an_exposed_contract_compiles_as_the_same_routes_inline_and_deterministically() {
    let versions = [
        version("v1", "/catalog/v1", "product", "/products/{id}", "catalog"),
        version("v2", "/catalog/v2", "item", "/items/{id}", "catalog"),
    ]
    .concat();
    let exposed = [
        contract("platform", "catalog", "2026-01-01T00:00:00Z", 3, &versions),
        "---\n".to_owned(),
        gateway("    - contract: catalog"),
    ]
    .concat();
    let inline = gateway("    - contract: catalog").replace(
        "  expose:\n    - contract: catalog\n",
        &format!("  contracts:\n{}", versions),
    );
    let from_contract = compile_over(&exposed, None);
    let from_inline = compile_over(&inline, None);
    assert_eq!(
        outcome(&from_contract, "catalog"),
        &ExposedContract {
            namespace: "platform".into(),
            name: "catalog".into(),
            versions: vec!["v1".into(), "v2".into()],
            state: ExposureState::Served,
            reason: None,
            message: None,
            served_generation: Some(3),
        }
    );
    // The same routes; only the ids (and the table's list of Contracts) say where they are from.
    let strip = |table: &RouteTable| {
        let mut table = table.clone();
        for route in &mut table.routes {
            route.id = route
                .id
                .rsplitn(3, '/')
                .take(2)
                .collect::<Vec<_>>()
                .join("<");
        }
        table.contracts.clear();
        table
    };
    assert_eq!(strip(&from_contract.table), strip(&from_inline.table));
    assert_eq!(ids(&from_inline.table), ["v1/product", "v2/item"]);
    assert_eq!(
        ids(&from_contract.table),
        ["platform/catalog/v1/product", "platform/catalog/v2/item"]
    );
    // The same bytes every time, whatever order the Contracts come in.
    let second = [version(
        "v1",
        "/orders/v1",
        "order",
        "/orders/{id}",
        "orders",
    )]
    .concat();
    let two = |first: bool| {
        let a = contract("platform", "catalog", "2026-01-01T00:00:00Z", 3, &versions);
        let b = contract("platform", "orders", "2026-01-02T00:00:00Z", 1, &second);
        let (x, y) = if first { (a, b) } else { (b, a) };
        [
            x,
            "---\n".into(),
            y,
            "---\n".into(),
            gateway("    - selector: {}"),
        ]
        .concat()
    };
    let bytes = compile_over(&two(true), None).table.to_bytes();
    assert_eq!(bytes, compile_over(&two(false), None).table.to_bytes());
    assert_eq!(bytes, compile_over(&two(true), None).table.to_bytes());
}

#[test]
fn of_two_contracts_claiming_the_same_requests_the_older_is_served() {
    let claims = |older: &str, newer: &str| {
        [
            contract(
                "platform",
                "catalog",
                older,
                1,
                &version("v1", "/shop", "list", "/items", "catalog"),
            ),
            "---\n".into(),
            contract(
                "platform",
                "inventory",
                newer,
                1,
                &[
                    version("v1", "/shop", "stock", "/items", "inventory"),
                    version("v2", "/inventory/v2", "stock", "/stock", "inventory"),
                ]
                .concat(),
            ),
            "---\n".into(),
            gateway("    - selector: {}"),
        ]
        .concat()
    };
    let compiled = compile_over(
        &claims("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        None,
    );
    assert_eq!(ids(&compiled.table), ["platform/catalog/v1/list"]);
    assert_eq!(outcome(&compiled, "catalog").state, ExposureState::Served);
    let refused = outcome(&compiled, "inventory");
    assert_eq!(
        (refused.state, refused.reason.as_deref()),
        (ExposureState::NotServed, Some("Conflict"))
    );
    assert_eq!(
        refused.message.as_deref(),
        Some(
            "spec.expose[0]: route platform/inventory/v1/stock claims GET /shop/items, which \
             Contract platform/catalog already serve here (the older claim wins)"
        )
    );
    // Age decides, not the name.
    let swapped = compile_over(
        &claims("2026-03-01T00:00:00Z", "2026-02-01T00:00:00Z"),
        None,
    );
    assert_eq!(
        ids(&swapped.table),
        ["platform/inventory/v1/stock", "platform/inventory/v2/stock"]
    );
    assert_eq!(
        outcome(&swapped, "catalog").reason.as_deref(),
        Some("Conflict")
    );
    // The same path with other methods, or another parameter name in the same place: a
    // different method set shares nothing, a renamed parameter claims the same requests.
    let post = claims("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z").replace(
        "stock, match: {path: \"/items\", methods: [GET]}",
        "stock, match: {path: \"/items\", methods: [POST]}",
    );
    assert_eq!(compile_over(&post, None).table.routes.len(), 3);
    // Strict compiles (render, standalone) refuse the resource, naming the Contract.
    let bundle = Bundle::new(
        documents(&claims("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")),
        "default",
    );
    let context = CompileContext {
        catalog: bundle.catalog.clone(),
        ..CompileContext::default()
    };
    let problems = bundle.resources[0].compile(&context).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "Contract platform/inventory");
    assert!(
        problems[0]
            .message
            .starts_with("Conflict: spec.expose[0]: route"),
        "{problems:?}"
    );
}

#[test]
fn inline_contracts_win_over_any_exposed_contract() {
    let yaml = [
        contract(
            "platform",
            "catalog",
            "2020-01-01T00:00:00Z",
            1,
            &version("v1", "/v1", "products", "/products", "catalog"),
        ),
        "---\n".into(),
        gateway("    - contract: catalog").replace(
            "  expose:",
            "  contracts:\n    - version: v1\n      routes:\n        - {name: products, match: {path: /products}, respond: {body: own}}\n  expose:",
        ),
    ]
    .concat();
    let compiled = compile_over(&yaml, None);
    assert_eq!(ids(&compiled.table), ["v1/products"]);
    let refused = outcome(&compiled, "catalog");
    assert_eq!(refused.reason.as_deref(), Some("Conflict"));
    assert!(
        refused
            .message
            .as_deref()
            .unwrap()
            .ends_with("which its inline contracts already serve here (the older claim wins)"),
        "{refused:?}"
    );
}

#[test]
fn another_namespace_s_contract_is_served_only_where_a_grant_lets_it() {
    let payments = contract(
        "payments",
        "payments",
        "2026-01-01T00:00:00Z",
        1,
        &version("v1", "/payments/v1", "pay", "/pay", "payments"),
    );
    let exposing = gateway("    - contract: payments\n      namespace: payments");
    let grant = |from: &str, contracts: &str| {
        format!(
            "---\napiVersion: gatehouse.dev/v1alpha1\nkind: ContractGrant\nmetadata:\n  name: g\n  namespace: payments\nspec:\n  from:\n{from}\n{contracts}\n"
        )
    };
    let served = |extra: &str| {
        let compiled = compile_over(
            &[payments.as_str(), "---\n", &exposing, extra].concat(),
            None,
        );
        let outcome = outcome(&compiled, "payments").clone();
        (compiled.table.routes.len(), outcome.reason)
    };
    let refused = (0, Some("RefNotPermitted".to_owned()));
    assert_eq!(served(""), refused);
    for (from, contracts) in [
        ("    - namespace: other", ""),
        ("    - namespace: platform\n      kind: EdgeService", ""),
        ("    - namespace: platform\n      name: another", ""),
        ("    - namespace: platform", "  contracts: [refunds]"),
    ] {
        assert_eq!(
            served(&grant(from, contracts)),
            refused,
            "{from} {contracts}"
        );
    }
    for (from, contracts) in [
        ("    - namespace: platform", ""),
        (
            "    - namespace: platform\n      kind: Gateway\n      name: edge",
            "  contracts: [payments]",
        ),
    ] {
        assert_eq!(
            served(&grant(from, contracts)),
            (1, None),
            "{from} {contracts}"
        );
    }
    let compiled = compile_over(&[payments.as_str(), "---\n", &exposing].concat(), None);
    assert_eq!(
        outcome(&compiled, "payments").message.as_deref(),
        Some(
            "spec.expose[0]: Contract payments/payments is in another namespace, and no \
             ContractGrant there lets Gateway platform/edge expose it"
        )
    );
    // A selector into another namespace is granted the same way.
    let selected =
        gateway("    - selector: {matchLabels: {team: payments}}\n      namespace: payments");
    let compiled = compile_over(&[payments.as_str(), "---\n", &selected].concat(), None);
    assert_eq!(
        outcome(&compiled, "payments").reason.as_deref(),
        Some("RefNotPermitted")
    );
}

#[test]
fn unresolved_references_and_missing_versions_are_reported() {
    let catalog = contract(
        "platform",
        "catalog",
        "2026-01-01T00:00:00Z",
        1,
        &[
            version("v1", "/catalog/v1", "list", "/items", "catalog"),
            version("v2", "/catalog/v2", "list", "/items", "catalog"),
        ]
        .concat(),
    );
    let yaml = [
        catalog.as_str(),
        "---\n",
        &gateway(
            "    - contract: nothing\n    - contract: catalog\n      versions: [v2, v3]\n    - selector: {matchLabels: {team: none}}",
        ),
    ]
    .concat();
    let compiled = compile_over(&yaml, None);
    assert_eq!(compiled.unresolved.len(), 1);
    assert_eq!(
        (
            compiled.unresolved[0].at.as_str(),
            compiled.unresolved[0].message.as_str()
        ),
        ("spec.expose[0].contract", "no Contract platform/nothing")
    );
    assert_eq!(ids(&compiled.table), ["platform/catalog/v2/list"]);
    let partial = outcome(&compiled, "catalog");
    assert_eq!(
        (
            partial.state,
            partial.reason.as_deref(),
            partial.message.as_deref()
        ),
        (
            ExposureState::Served,
            Some("VersionNotFound"),
            Some("spec.expose[1].versions: Contract platform/catalog publishes no v3; v2 served")
        )
    );
    let none = compile_over(&yaml.replace("versions: [v2, v3]", "versions: [v3]"), None);
    assert_eq!(outcome(&none, "catalog").state, ExposureState::NotServed);
    assert!(none.table.routes.is_empty());
}

#[test]
fn a_contract_that_cannot_be_served_now_keeps_its_last_good_routes_and_others_update() {
    let good = contract(
        "platform",
        "catalog",
        "2026-01-01T00:00:00Z",
        1,
        &version("v1", "/catalog/v1", "list", "/items", "catalog"),
    );
    let yaml = |catalog: &str, orders: &str| {
        [
            catalog,
            "---\n",
            orders,
            "---\n",
            &gateway("    - selector: {}"),
        ]
        .concat()
    };
    let first = compile_over(&yaml(&good, &orders("/orders", 1)), None);
    assert_eq!(
        ids(&first.table),
        ["platform/catalog/v1/list", "platform/orders/v1/list"]
    );
    // The catalog team breaks its contract (two versions on one base path serve the same
    // requests) while the orders team changes its own.
    let broken = contract(
        "platform",
        "catalog",
        "2026-01-01T00:00:00Z",
        2,
        &[
            version("v1", "/catalog/v1", "list", "/items", "catalog-v2"),
            version("v2", "/catalog/v1", "list", "/items", "catalog-v2"),
        ]
        .concat(),
    );
    let second = compile_over(
        &yaml(&broken, &orders("/all-orders", 2)),
        Some(&first.table),
    );
    let kept = outcome(&second, "catalog");
    assert_eq!(
        (kept.state, kept.reason.as_deref(), kept.served_generation),
        (ExposureState::LastGoodServed, Some("Invalid"), Some(1))
    );
    assert!(
        kept.message.as_deref().unwrap().starts_with(
            "spec.versions[1].routes[0].match: route v2/list matches exactly the same requests as route v1/list"
        ),
        "{kept:?}"
    );
    // Generation 1's route, to generation 1's Service.
    assert_eq!(
        upstream_host(&second.table, "platform/catalog/v1/list"),
        "catalog.platform.svc.cluster.local"
    );
    assert_eq!(
        second
            .table
            .routes
            .iter()
            .find(|r| r.id == "platform/orders/v1/list")
            .unwrap()
            .path,
        "/orders/v1/all-orders"
    );
    assert_eq!(outcome(&second, "orders").served_generation, Some(2));
    let catalog_source = second
        .table
        .contracts
        .iter()
        .find(|c| c.name == "catalog")
        .unwrap();
    assert_eq!(catalog_source.generation, Some(1));
    // And it stays kept over the table that kept it, until the Contract is good again.
    let third = compile_over(
        &yaml(&broken, &orders("/all-orders", 2)),
        Some(&second.table),
    );
    assert_eq!(third.table, second.table);
    let fixed = good
        .replace("generation: 1", "generation: 3")
        .replace("service: catalog,", "service: catalog-v3,");
    let fourth = compile_over(&yaml(&fixed, &orders("/all-orders", 2)), Some(&third.table));
    assert_eq!(outcome(&fourth, "catalog").state, ExposureState::Served);
    assert_eq!(
        upstream_host(&fourth.table, "platform/catalog/v1/list"),
        "catalog-v3.platform.svc.cluster.local"
    );
    // A Contract changed to claim another's requests keeps its last good routes too.
    let grabbing = orders("/items", 4).replace("/orders/v1", "/catalog/v1");
    let fifth = compile_over(&yaml(&fixed, &grabbing), Some(&fourth.table));
    let kept = outcome(&fifth, "orders");
    assert_eq!(
        (kept.state, kept.reason.as_deref(), kept.served_generation),
        (ExposureState::LastGoodServed, Some("Conflict"), Some(2))
    );
    assert_eq!(fifth.table.routes.len(), 2);
    // Without a table to keep from, nothing of it is served.
    let fresh = compile_over(&yaml(&broken, &orders("/orders", 1)), None);
    assert_eq!(outcome(&fresh, "catalog").state, ExposureState::NotServed);
    assert_eq!(ids(&fresh.table), ["platform/orders/v1/list"]);
}

#[test]
fn without_the_previous_table_the_last_compile_keeps_last_good_routes_just_the_same() {
    // The operator compiles over its last compile, not over the table read back from the
    // route ConfigMap: each step must give what a compile over the previous table gives.
    let catalog = |generation: i64, versions: &[(&str, &str)], service: &str| {
        let versions: Vec<String> = versions
            .iter()
            .map(|(v, base)| version(v, base, "list", "/items", service))
            .collect();
        contract(
            "platform",
            "catalog",
            "2026-01-01T00:00:00Z",
            generation,
            &versions.concat(),
        )
    };
    let both = [("v1", "/catalog/v1"), ("v2", "/catalog/v2")];
    // Two versions on one base path serve the same requests: invalid.
    let broken = catalog(
        2,
        &[("v1", "/catalog/v1"), ("v2", "/catalog/v1")],
        "catalog-v2",
    );
    let fixed = catalog(3, &both, "catalog-v3");
    let all = gateway("    - selector: {}");
    let only_v1 = gateway("    - contract: catalog\n      versions: [v1]\n    - contract: orders");
    let steps = [
        (catalog(1, &both, "catalog"), orders("/orders", 1), &all),
        (broken.clone(), orders("/all-orders", 2), &all),
        (broken.clone(), orders("/all-orders", 2), &all),
        // Still broken, now exposed for v1 only: generation 1's v1 routes keep serving.
        (broken, orders("/all-orders", 2), &only_v1),
        (fixed.clone(), orders("/all-orders", 2), &all),
        // Orders grabs the catalog's requests: its generation 2 keeps serving.
        (
            fixed,
            orders("/items", 4).replace("/orders/v1", "/catalog/v1"),
            &all,
        ),
    ];
    let (mut by_table, mut by_cache): (Option<Compiled>, Option<Compiled>) = (None, None);
    let mut states = Vec::new();
    for (step, (catalog, orders, exposer)) in steps.iter().enumerate() {
        let yaml = [catalog.as_str(), "---\n", orders, "---\n", exposer].concat();
        let over_table = compile_over(&yaml, by_table.as_ref().map(|c| &c.table));
        let over_cache = compile_after(&yaml, None, by_cache.as_ref());
        assert_eq!(over_cache.table, over_table.table, "step {step}");
        assert_eq!(over_cache.exposed, over_table.exposed, "step {step}");
        states.push(["catalog", "orders"].map(|name| {
            let o = outcome(&over_cache, name);
            (o.state, o.served_generation)
        }));
        by_table = Some(over_table);
        by_cache = Some(over_cache);
    }
    use ExposureState::{LastGoodServed, Served};
    assert_eq!(
        states,
        [
            [(Served, Some(1)), (Served, Some(1))],
            [(LastGoodServed, Some(1)), (Served, Some(2))],
            [(LastGoodServed, Some(1)), (Served, Some(2))],
            [(LastGoodServed, Some(1)), (Served, Some(2))],
            [(Served, Some(3)), (Served, Some(2))],
            [(Served, Some(3)), (LastGoodServed, Some(2))],
        ]
    );
    let narrowed = compile_after(
        &[steps[3].0.as_str(), "---\n", &steps[3].1, "---\n", &only_v1].concat(),
        None,
        Some(&compile_over(
            &[steps[0].0.as_str(), "---\n", &steps[0].1, "---\n", &all].concat(),
            None,
        )),
    );
    assert_eq!(
        ids(&narrowed.table),
        ["platform/catalog/v1/list", "platform/orders/v1/list"]
    );
}

#[test]
fn a_contract_naming_clients_the_exposer_lacks_is_not_served_there() {
    let orders = contract(
        "platform",
        "orders",
        "2026-01-01T00:00:00Z",
        1,
        &[
            version("v1", "/orders/v1", "list", "/orders", "orders"),
            version("v2", "/orders/v2", "list", "/orders", "orders"),
        ]
        .concat()
        .replacen(
            "      routes:",
            "      access: {clients: [partner]}\n      routes:",
            1,
        ),
    );
    let compiled = compile_over(
        &[orders.as_str(), "---\n", &gateway("    - contract: orders")].concat(),
        None,
    );
    let refused = outcome(&compiled, "orders");
    assert_eq!(refused.reason.as_deref(), Some("UnknownClient"));
    assert_eq!(
        refused.message.as_deref(),
        Some(
            "as exposed by Gateway platform/edge: spec.versions[0].access.clients[0]: \
             spec.clients has no client named partner"
        )
    );
    // Exposing only the version that names no client is fine.
    let v2 = compile_over(
        &[
            orders.as_str(),
            "---\n",
            &gateway("    - contract: orders\n      versions: [v2]"),
        ]
        .concat(),
        None,
    );
    assert_eq!(outcome(&v2, "orders").reason, None);
    assert_eq!(ids(&v2.table), ["platform/orders/v2/list"]);
}

#[test]
fn a_catalog_sees_contracts_and_grants_of_every_namespace() {
    let read = |yaml: &str| match documents(yaml).remove(0) {
        Document::Contract(c) => Arc::new(c),
        other => panic!("{other:?}"),
    };
    let a: Arc<Contract> = read(&contract(
        "a",
        "x",
        "2026-01-01T00:00:00Z",
        1,
        &version("v1", "/x", "r", "/r", "s"),
    ));
    let b: Arc<Contract> = read(&contract(
        "b",
        "x",
        "2026-01-01T00:00:00Z",
        1,
        &version("v1", "/x", "r", "/r", "s"),
    ));
    let catalog = Catalog::new([a, b], Vec::<Arc<ContractGrant>>::new());
    assert!(!catalog.is_empty());
    assert_eq!(catalog.contracts().count(), 2);
    assert!(catalog.contract("b", "x").is_some());
    assert!(catalog.contract("c", "x").is_none());
    // A Contract is not a resource that runs a proxy.
    assert!(
        Resource::from_yaml(&contract(
            "a",
            "x",
            "2026-01-01T00:00:00Z",
            1,
            &version("v1", "/x", "r", "/r", "s")
        ))
        .is_err()
    );
}

#[test]
fn a_contract_concerns_the_exposers_whose_entries_pick_it_by_name_or_labels() {
    use gatehouse_api::crd::ContractExposure;
    use gatehouse_api::exposure::{picks, reaches_into};
    let entries = |yaml: &str| -> Vec<ContractExposure> { serde_saphyr::from_str(yaml).unwrap() };
    let contract = |namespace: &str, name: &str, team: &str| {
        let mut meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        };
        meta.labels = Some([("team".to_owned(), team.to_owned())].into());
        meta
    };
    let by_name = entries("- contract: orders\n");
    assert!(picks(&by_name, "shop", &contract("shop", "orders", "a")));
    assert!(!picks(&by_name, "shop", &contract("shop", "payments", "a")));
    // Another namespace's Contract of the same name is not the one named.
    assert!(!picks(
        &by_name,
        "shop",
        &contract("billing", "orders", "a")
    ));

    let by_labels = entries("- selector: {matchLabels: {team: a}}\n  namespace: billing\n");
    assert!(picks(&by_labels, "shop", &contract("billing", "x", "a")));
    assert!(!picks(&by_labels, "shop", &contract("billing", "x", "b")));
    assert!(!picks(&by_labels, "shop", &contract("shop", "x", "a")));
    let everything = entries("- selector: {}\n");
    assert!(picks(&everything, "shop", &contract("shop", "any", "z")));
    let unreadable = entries("- selector: {matchExpressions: [{key: team, operator: In}]}\n");
    assert!(!picks(&unreadable, "shop", &contract("shop", "any", "z")));

    // Grants of a namespace matter to the exposers that reach into it, never to its own.
    assert!(reaches_into(&by_labels, "shop", "billing"));
    assert!(!reaches_into(&by_labels, "shop", "shop"));
    assert!(!reaches_into(&by_name, "shop", "billing"));
    assert!(!reaches_into(&by_labels, "billing", "billing"));
}

#[test]
fn a_compile_reuses_what_the_last_one_made_of_unchanged_contracts_and_nothing_else() {
    let exposer = gateway("    - selector: {}");
    let limited = exposer.replace("spec:\n", "spec:\n  limits: {maxBodyBytes: 1024}\n");
    let compile = |contract: &str, exposer: &str, last: Option<&Compiled>| -> Compiled {
        let bundle = Bundle::new(documents(&[contract, "---\n", exposer].concat()), "default");
        let context = CompileContext {
            catalog: bundle.catalog.clone(),
            compiled: last.map(|c| Arc::new(c.contracts.clone())),
            ..CompileContext::default()
        };
        bundle.resources[0]
            .compile_over(&context, None)
            .unwrap_or_else(|p| panic!("{p:?}"))
    };
    let path = |compiled: &Compiled| compiled.table.routes[0].path.clone();
    let first = compile(&orders("/orders", 1), &exposer, None);
    assert_eq!(first.contracts.len(), 1);
    assert_eq!(path(&first), "/orders/v1/orders");

    // One generation is one spec (the API server moves it on with every change), so a spec
    // changed under the same generation shows where the routes came from: the last compile.
    let reused = compile(&orders("/elsewhere", 1), &exposer, Some(&first));
    assert_eq!(reused.table, first.table);
    // A new generation is compiled again, and gives what a compile from nothing gives.
    let next = compile(&orders("/elsewhere", 2), &exposer, Some(&first));
    assert_eq!(path(&next), "/orders/v1/elsewhere");
    assert_eq!(
        next.table,
        compile(&orders("/elsewhere", 2), &exposer, None).table
    );
    // So is every Contract once the exposer changes what their compile depends on (its limits).
    let relimited = compile(&orders("/elsewhere", 1), &limited, Some(&first));
    assert_eq!(path(&relimited), "/orders/v1/elsewhere");
    assert_eq!(relimited.table.routes[0].max_body_bytes, Some(1024));
    // A Contract without a generation (read from a file) is never taken from the cache.
    let unversioned = orders("/orders", 1).replace("  generation: 1\n", "");
    let from_file = compile(&unversioned, &exposer, None);
    assert!(from_file.contracts.is_empty());
}
