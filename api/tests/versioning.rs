//! Strict versioning in compile: a change that breaks a published version is refused, with
//! every break and its field path, and what was served keeps serving — for a Contract in the
//! gateways that expose it (its last good routes), and for a resource's inline contracts (the
//! whole resource). Passive changes and drafts go through.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use gatehouse_api::compile::{CompileContext, Compiled};
use gatehouse_api::crd::ExposureState;
use gatehouse_api::resource::{Bundle, Document};
use gatehouse_api::route_table::RouteTable;
use gatehouse_api::usage::{InUse, VersionUsage};
use gatehouse_api::validate::{Problem, ProblemKind, reason};

/// Contract `catalog` (generation `generation`) of version v1 in `lifecycle`, with `routes`
/// (flow-style YAML list items), and Contract `orders` whose one route goes to Service
/// `orders_service`;
/// a Gateway exposes both.
fn cluster(generation: i64, lifecycle: &str, routes: &str, orders_service: &str) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Contract\nmetadata: {{name: catalog, namespace: shop, generation: {generation}, creationTimestamp: \"2026-01-01T00:00:00Z\"}}\nspec:\n  versions:\n    - version: v1\n      lifecycle: {lifecycle}\n      routes: [{routes}]\n---\napiVersion: gatehouse.dev/v1alpha1\nkind: Contract\nmetadata: {{name: orders, namespace: shop, generation: {generation}, creationTimestamp: \"2026-01-02T00:00:00Z\"}}\nspec:\n  versions:\n    - version: v1\n      basePath: /orders/v1\n      lifecycle: Published\n      routes: [{{name: list, match: {{path: /orders}}, backend: {{service: {orders_service}}}}}]\n---\napiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge, namespace: shop}}\nspec:\n  expose: [{{selector: {{}}}}]\n"
    )
}

const PRODUCT: &str = "{name: product, match: {path: \"/products/{id}\", methods: [GET, PUT]}, backend: {service: catalog}}";

fn compile(
    yaml: &str,
    previous: Option<&RouteTable>,
    last: Option<&Compiled>,
) -> Result<Compiled, Vec<Problem>> {
    compile_in_use(yaml, previous, last, None)
}

/// [`compile`], knowing who called which version lately.
fn compile_in_use(
    yaml: &str,
    previous: Option<&RouteTable>,
    last: Option<&Compiled>,
    in_use: Option<InUse>,
) -> Result<Compiled, Vec<Problem>> {
    let documents = Document::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    let bundle = Bundle::new(documents, "shop");
    let context = CompileContext {
        catalog: bundle.catalog.clone(),
        compiled: last.map(|c| Arc::new(c.contracts.clone())),
        in_use: in_use.map(Arc::new),
        ..CompileContext::default()
    };
    let [resource] = bundle.resources.as_slice() else {
        panic!("one resource to compile");
    };
    resource.compile_over(&context, previous)
}

fn methods(table: &RouteTable, id: &str) -> Vec<String> {
    let route = table
        .routes
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id}"));
    route.methods.clone()
}

#[test]
fn a_contract_change_that_breaks_a_published_version_keeps_its_last_good_routes() {
    let first = compile(&cluster(1, "Published", PRODUCT, "orders"), None, None).unwrap();
    // Generation 2 drops PUT from a published route (breaking); orders changes passively.
    let narrowed = PRODUCT.replace("[GET, PUT]", "[GET]");
    let yaml = cluster(2, "Published", &narrowed, "orders-v2");
    let over_table = compile(&yaml, Some(&first.table), None).unwrap();
    let over_cache = compile(&yaml, None, Some(&first)).unwrap();
    assert_eq!(
        over_cache.table, over_table.table,
        "the cache keeps last good routes the same"
    );
    assert_eq!(over_cache.exposed, over_table.exposed);
    let catalog = &over_table.exposed[0];
    assert_eq!(
        (
            catalog.name.as_str(),
            catalog.state,
            catalog.served_generation,
            catalog.reason.as_deref()
        ),
        (
            "catalog",
            ExposureState::LastGoodServed,
            Some(1),
            Some("BreakingChange")
        )
    );
    let message = catalog.message.as_deref().unwrap();
    assert!(
        message.contains(
            "Contract shop/catalog generation 2 breaks what the served generation 1 promises"
        ) && message.contains(
            "spec.versions[version=v1].routes[name=product].match.methods: method PUT removed"
        ),
        "{message}"
    );
    assert_eq!(
        methods(&over_table.table, "shop/catalog/v1/product"),
        ["GET", "PUT"]
    );
    // The other team's change is served all the same.
    let orders = &over_table.exposed[1];
    assert_eq!(
        (orders.state, orders.served_generation),
        (ExposureState::Served, Some(2))
    );
    let list = over_table
        .table
        .routes
        .iter()
        .find(|r| r.id == "shop/orders/v1/list");
    assert!(
        format!("{list:?}").contains("orders-v2.shop.svc"),
        "{list:?}"
    );

    // A passive generation 3 (a method and a route added) replaces generation 1.
    let widened = format!(
        "{}, {{name: reviews, match: {{path: \"/products/{{id}}/reviews\"}}, backend: {{service: reviews}}}}",
        PRODUCT.replace("[GET, PUT]", "[GET, PUT, DELETE]")
    );
    let third = compile(
        &cluster(3, "Published", &widened, "orders-v2"),
        Some(&over_table.table),
        Some(&over_table),
    )
    .unwrap();
    let catalog = &third.exposed[0];
    assert_eq!(
        (
            catalog.state,
            catalog.served_generation,
            catalog.reason.as_deref()
        ),
        (ExposureState::Served, Some(3), None)
    );
    assert_eq!(
        methods(&third.table, "shop/catalog/v1/product"),
        ["DELETE", "GET", "PUT"]
    );
}

#[test]
fn a_draft_changes_freely_and_publishing_starts_the_promise() {
    let first = compile(&cluster(1, "Draft", PRODUCT, "orders"), None, None).unwrap();
    let moved = PRODUCT.replace("/products/{id}", "/items/{sku}");
    let second = compile(
        &cluster(2, "Draft", &moved, "orders"),
        Some(&first.table),
        None,
    )
    .unwrap();
    assert_eq!(second.exposed[0].state, ExposureState::Served);
    let published = compile(
        &cluster(3, "Published", &moved, "orders"),
        Some(&second.table),
        None,
    )
    .unwrap();
    assert_eq!(published.exposed[0].state, ExposureState::Served);
    let back = compile(
        &cluster(4, "Published", PRODUCT, "orders"),
        Some(&published.table),
        None,
    )
    .unwrap();
    assert_eq!(back.exposed[0].reason.as_deref(), Some("BreakingChange"));
    assert!(
        back.table
            .routes
            .iter()
            .any(|r| r.path == "/v1/items/{sku}"),
        "generation 3 keeps serving"
    );
}

/// A Gateway with inline contract v1 in `lifecycle` holding `routes`.
fn inline(lifecycle: &str, routes: &str) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge, namespace: shop}}\nspec:\n  contracts:\n    - version: v1\n      lifecycle: {lifecycle}\n      routes: [{routes}]\n"
    )
}

#[test]
fn a_breaking_change_to_inline_contracts_refuses_the_resource_with_every_break() {
    let first = compile(&inline("Published", PRODUCT), None, None).unwrap();
    let broken = PRODUCT
        .replace("[GET, PUT]", "[GET]")
        .replace("{id}", "{sku}");
    let problems = compile(&inline("Published", &broken), Some(&first.table), None).unwrap_err();
    let shown: Vec<(String, ProblemKind)> =
        problems.iter().map(|p| (p.path.clone(), p.kind)).collect();
    let at = "spec.contracts[version=v1].routes[name=product].match";
    assert_eq!(
        shown,
        [
            (format!("{at}.methods"), ProblemKind::BreakingChange),
            (format!("{at}.path"), ProblemKind::BreakingChange),
        ]
    );
    assert_eq!(reason(&problems), "BreakingChange");
    // The operator compiles over its last compile rather than the table read back: the same.
    let over_last = compile(&inline("Published", &broken), None, Some(&first)).unwrap_err();
    assert_eq!(over_last, problems);
    // Without a served table (render, a first apply) there is nothing to break.
    assert!(compile(&inline("Published", &broken), None, None).is_ok());
    // Passive: a method added. Draft: anything.
    let added = PRODUCT.replace("[GET, PUT]", "[GET, PUT, PATCH]");
    assert!(compile(&inline("Published", &added), Some(&first.table), None).is_ok());
    let draft = compile(&inline("Draft", PRODUCT), None, None).unwrap();
    assert!(compile(&inline("Draft", &broken), Some(&draft.table), None).is_ok());
}

/// Web called version v1 of Contract `contract` (`None`: inline) on 2026-12-01.
fn web_called(contract: Option<&str>) -> InUse {
    InUse {
        calls: vec![VersionUsage {
            contract: contract.map(str::to_owned),
            version: "v1".to_owned(),
            client: Some("web".to_owned()),
            last_call: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-12-01T10:00:00Z".parse().unwrap(),
            ),
        }],
        window: std::time::Duration::from_secs(30 * 24 * 3600),
    }
}

#[test]
fn retiring_a_contract_version_a_client_still_calls_keeps_it_served_unless_annotated() {
    let deprecated = "Deprecated\n      deprecation: {since: \"2026-01-01T00:00:00Z\"}";
    let retired = "Retired\n      deprecation: {since: \"2026-01-01T00:00:00Z\"}";
    let first = compile(&cluster(1, deprecated, PRODUCT, "orders"), None, None).unwrap();
    let yaml = cluster(2, retired, PRODUCT, "orders");
    let in_use = || Some(web_called(Some("shop/catalog")));
    let refused = compile_in_use(&yaml, Some(&first.table), None, in_use()).unwrap();
    let catalog = &refused.exposed[0];
    assert_eq!(
        (
            catalog.state,
            catalog.served_generation,
            catalog.reason.as_deref()
        ),
        (ExposureState::LastGoodServed, Some(1), Some("VersionInUse"))
    );
    assert_eq!(
        catalog.message.as_deref(),
        Some(
            "spec.expose[0]: Contract shop/catalog generation 2 retires versions clients still \
             call (spec.versions[version=v1]: version v1 may not be retired or removed yet: \
             clients called it within the last 720h: web (last 2026-12-01T10:00:00Z); wait \
             until they have moved on, or list v1 in the annotation gatehouse.dev/retire-in-use \
             of Contract shop/catalog to retire it anyway)"
        )
    );
    assert_eq!(
        refused.table.routes, first.table.routes,
        "v1 is served as before"
    );
    assert!(refused.retired_in_use.is_empty());

    // Nobody called it: retired. Another Contract's calls do not count.
    let quiet = compile_in_use(&yaml, Some(&first.table), None, Some(web_called(None))).unwrap();
    assert_eq!(quiet.exposed[0].state, ExposureState::Served);
    assert_eq!(quiet.exposed[0].served_generation, Some(2));

    // The annotation retires it anyway, and says whose calls it ends.
    let anyway = yaml.replace(
        "metadata: {name: catalog, namespace: shop,",
        "metadata: {name: catalog, namespace: shop, annotations: {gatehouse.dev/retire-in-use: v1},",
    );
    let retired = compile_in_use(&anyway, Some(&first.table), None, in_use()).unwrap();
    assert_eq!(
        (
            retired.exposed[0].state,
            retired.exposed[0].reason.as_deref()
        ),
        (ExposureState::Served, None)
    );
    assert_eq!(
        retired.retired_in_use,
        [
            "Contract shop/catalog version v1 retired or removed although clients called it \
          within the last 720h: web (last 2026-12-01T10:00:00Z) (gatehouse.dev/retire-in-use)"
        ]
    );
}
