//! The controllers against an in-memory API server (kube's `tower-test` mock service): each
//! scenario asserts the exact requests a reconcile sends.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

/// `Programmed` as the proxy replicas report it.
#[path = "controller/programmed.rs"]
mod programmed;

/// Gateways that expose Contract resources.
#[path = "controller/contracts.rs"]
mod contracts;

/// Statuses written in the background.
#[path = "controller/status_writes.rs"]
mod status_writes;

/// Who calls which contract version, and retiring versions still called.
#[path = "controller/usage.rs"]
mod usage;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_api::compile::CompileContext;
use gatehouse_api::crd::{Aggregator, Gateway};
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::RouteTable;
use gatehouse_operator::controller::context::{Clock, Context};
use gatehouse_operator::controller::reconcile::{error_policy, reconcile};
use gatehouse_operator::metrics::Metrics;
use gatehouse_operator::settings::ProxySettings;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, Store};
use serde_json::{Value, json};
use support::{FakeApi, Recorded, collection};

const NS: &str = "shop";
const APPLY: &str = "?&force=true&fieldManager=gatehouse-operator";

fn now() -> Timestamp {
    "2025-01-02T03:04:05Z".parse().unwrap()
}

/// A context whose EndpointSlice store `endpoints` lists the proxy pods.
fn context_with(fake: &FakeApi, endpoints: Store<EndpointSlice>) -> Arc<Context> {
    Arc::new(Context::new(
        fake.client(),
        ProxySettings::default(),
        Clock::Fixed(now()),
        Arc::new(Metrics::new()),
        endpoints,
    ))
}

/// A context that knows of no proxy pod (none has started yet).
fn context(fake: &FakeApi) -> Arc<Context> {
    context_with(fake, reflector::store().0)
}

fn example(path: &str) -> Value {
    let text =
        std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let resource = Resource::from_yaml(&text).unwrap().remove(0);
    let mut value = match resource {
        Resource::Gateway(r) => serde_json::to_value(r),
        Resource::EdgeService(r) => serde_json::to_value(r),
        Resource::Aggregator(r) => serde_json::to_value(r),
    }
    .unwrap();
    value["metadata"]["namespace"] = json!(NS);
    value["metadata"]["uid"] = json!(format!(
        "uid-{}",
        value["metadata"]["name"].as_str().unwrap()
    ));
    value["metadata"]["generation"] = json!(1);
    value
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS}})
}

/// A namespace holding the public Gateway, the Services it names and the product-page
/// Aggregator.
fn shop() -> FakeApi {
    let fake = FakeApi::default();
    for name in ["catalog", "orders", "orders-v2"] {
        fake.put(NS, "services", service(name));
    }
    fake.put(
        NS,
        "aggregators",
        example("examples/aggregator/product-page.yaml"),
    );
    fake.put(NS, "gateways", example("examples/gateway/public.yaml"));
    fake
}

fn gateway(fake: &FakeApi) -> Arc<Gateway> {
    Arc::new(serde_json::from_value(fake.get(NS, "gateways", "public").unwrap()).unwrap())
}

/// Reconciles the public Gateway as the fake holds it, then waits for the status writer, so
/// that the log holds every request the reconcile caused.
async fn reconcile_gateway(fake: &FakeApi, ctx: &Arc<Context>) -> Action {
    let object = gateway(fake);
    let action = tokio::time::timeout(Duration::from_secs(10), reconcile(object, ctx.clone()))
        .await
        .expect("reconcile finished")
        .expect("reconcile succeeded");
    tokio::time::timeout(Duration::from_secs(10), ctx.status.flush())
        .await
        .expect("statuses written");
    action
}

fn lines(log: &[Recorded]) -> Vec<String> {
    log.iter().map(Recorded::line).collect()
}

fn object(plural: &str) -> String {
    format!("{}/public-gateway", collection(NS, plural))
}

fn body<'a>(log: &'a [Recorded], line: &str) -> &'a Value {
    log.iter()
        .find(|r| r.line() == line)
        .and_then(|r| r.body.as_ref())
        .unwrap_or_else(|| panic!("no request {line}"))
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn compiled_public_gateway(generation: i64) -> RouteTable {
    let mut value = example("examples/gateway/public.yaml");
    value["metadata"]["generation"] = json!(generation);
    let gateway: Gateway = serde_json::from_value(value).unwrap();
    let context = CompileContext {
        aggregator_ports: [("product-page".to_owned(), 80)].into(),
        ..CompileContext::default()
    };
    Resource::Gateway(gateway).compile(&context).unwrap()
}

/// Every child of the public Gateway, in the order they are read and applied.
const CHILDREN: [&str; 9] = [
    "serviceaccounts",
    "roles",
    "rolebindings",
    "configmaps",
    "services",
    "deployments",
    "horizontalpodautoscalers",
    "poddisruptionbudgets",
    "networkpolicies",
];

/// Dereference, then a read of every child (before anything is written).
fn read_everything() -> Vec<String> {
    let mut expected = vec![
        format!("GET {}?", collection(NS, "services")),
        format!("GET {}?", collection(NS, "aggregators")),
    ];
    expected.extend(CHILDREN.map(|plural| format!("GET {}", object(plural))));
    expected
}

fn status_patch() -> String {
    format!("PATCH {}/public/status{APPLY}", collection(NS, "gateways"))
}

/// The status the public Gateway's status patch in `log` sent.
fn patched_status(log: &[Recorded]) -> &Value {
    &body(log, &status_patch())["status"]
}

fn apply_and_read_every_object() -> Vec<String> {
    let mut expected = read_everything();
    expected.extend(CHILDREN.map(|plural| format!("PATCH {}{APPLY}", object(plural))));
    expected.push(status_patch());
    expected
}

#[tokio::test]
async fn first_reconcile_applies_every_object_and_reports_status() {
    let fake = shop();
    let ctx = context(&fake);
    let action = reconcile_gateway(&fake, &ctx).await;
    assert_eq!(action, Action::requeue(Duration::from_millis(200)));

    let log = fake.take_log();
    let events = format!("POST {}?", collection(NS, "events"));
    let mut expected = apply_and_read_every_object();
    expected.extend(std::iter::repeat_n(events.clone(), 5));
    assert_eq!(lines(&log), expected);

    let table = compiled_public_gateway(1);
    let config_map = body(&log, &format!("PATCH {}{APPLY}", object("configmaps")));
    assert_eq!(config_map["apiVersion"], "v1");
    assert_eq!(config_map["kind"], "ConfigMap");
    let served = config_map["data"]["routes.json"].as_str().unwrap();
    assert_eq!(served.as_bytes(), table.to_bytes());
    assert_eq!(
        config_map["metadata"]["annotations"]["gatehouse.dev/route-table-digest"],
        table.digest()
    );
    let owner = &config_map["metadata"]["ownerReferences"][0];
    assert_eq!(
        owner,
        &json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway", "name": "public", "uid": "uid-public", "controller": true})
    );

    let deployment = body(&log, &format!("PATCH {}{APPLY}", object("deployments")));
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "the HPA owns replicas"
    );
    assert_eq!(
        deployment["metadata"]["ownerReferences"][0]["uid"],
        "uid-public"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "public-gateway");
    assert_eq!(pod["automountServiceAccountToken"], true);

    // The proxy may read its ConfigMap and its clients' Secrets, by name, and nothing else.
    let role = body(&log, &format!("PATCH {}{APPLY}", object("roles")));
    assert_eq!(
        (&role["apiVersion"], &role["kind"]),
        (&json!("rbac.authorization.k8s.io/v1"), &json!("Role"))
    );
    assert_eq!(role["metadata"]["ownerReferences"][0], *owner);
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["public-gateway"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"],
             "resourceNames": ["partner-api-keys", "web-api-keys"],
             "verbs": ["get", "list", "watch"]}
        ])
    );
    let binding = body(&log, &format!("PATCH {}{APPLY}", object("rolebindings")));
    assert_eq!(
        (&binding["apiVersion"], &binding["kind"]),
        (
            &json!("rbac.authorization.k8s.io/v1"),
            &json!("RoleBinding")
        )
    );
    assert_eq!(binding["metadata"]["ownerReferences"][0], *owner);
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "public-gateway"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "public-gateway", "namespace": NS}])
    );
    let service_account = body(&log, &format!("PATCH {}{APPLY}", object("serviceaccounts")));
    assert_eq!(service_account["automountServiceAccountToken"], false);

    let status_patch = body(&log, &status_patch());
    assert_eq!(status_patch["apiVersion"], "gatehouse.dev/v1alpha1");
    assert_eq!(status_patch["kind"], "Gateway");
    let status = &status_patch["status"];
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        status["address"],
        "public-gateway.shop.svc.cluster.local:80"
    );
    assert_eq!(status["routeTableDigest"], table.digest());
    assert_eq!(status["routes"], 6);
    assert_eq!(status["contracts"][0]["version"], "v1");
    assert_eq!(status["contracts"][0]["routes"], 6);
    let summary: Vec<(String, String, String)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["lastTransitionTime"], "2025-01-02T03:04:05Z");
            assert_eq!(c["observedGeneration"], 1);
            let field = |k: &str| c[k].as_str().unwrap().to_owned();
            (field("type"), field("status"), field("reason"))
        })
        .collect();
    let expect = |t: &str, s: &str, r: &str| (t.to_owned(), s.to_owned(), r.to_owned());
    assert_eq!(
        summary,
        [
            expect("Accepted", "True", "Accepted"),
            expect("ResolvedRefs", "True", "ResolvedRefs"),
            // The table is in place, but no proxy pod runs here to serve it.
            expect("Programmed", "False", "Pending"),
            // No kubelet runs these pods yet: the Deployment is not available.
            expect("Ready", "False", "DeploymentUnavailable"),
        ]
    );

    let reasons: Vec<&str> = log
        .iter()
        .filter(|r| r.line() == events)
        .map(|r| r.body.as_ref().unwrap()["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "Accepted",
            "ResolvedRefs",
            "Pending",
            "DeploymentUnavailable",
            "RouteTableUpdated"
        ]
    );
}

#[tokio::test]
async fn second_reconcile_of_an_unchanged_resource_writes_nothing() {
    let fake = shop();
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    fake.take_log();

    let action = reconcile_gateway(&fake, &ctx).await;
    // Still no replica to serve the table: looked at again, later each time.
    assert_eq!(action, Action::requeue(Duration::from_millis(400)));
    let log = fake.take_log();
    let writes: Vec<String> = lines(&log)
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "no write on the second pass");
    let mut expected: Vec<String> = apply_and_read_every_object()
        .into_iter()
        .filter(|l| l.starts_with("GET "))
        .collect();
    // The first read of the route ConfigMap is its metadata only; its hash matches, so the
    // whole object is read to find drift (a changed table is written without that read).
    expected.push("GET /api/v1/namespaces/shop/configmaps/public-gateway".to_owned());
    assert_eq!(lines(&log), expected);
}

#[tokio::test]
async fn drifted_object_is_applied_again_and_only_that_one() {
    let fake = shop();
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    fake.edit(NS, "deployments", "public-gateway", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:latest");
    });
    fake.take_log();

    reconcile_gateway(&fake, &ctx).await;
    let writes: Vec<String> = lines(&fake.take_log())
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert_eq!(writes, [format!("PATCH {}{APPLY}", object("deployments"))]);
    let repaired = fake.get(NS, "deployments", "public-gateway").unwrap();
    assert_eq!(
        repaired["spec"]["template"]["spec"]["containers"][0]["image"],
        ProxySettings::default().image
    );
}

/// A client whose Secret the Role does not name yet: the Role grows by exactly that name (and
/// the pods mount it); dropping every client leaves only the ConfigMap rule, never an empty
/// `resourceNames` that would grant every Secret.
#[tokio::test]
async fn the_role_follows_the_secrets_the_clients_name() {
    let fake = shop();
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    fake.edit(NS, "gateways", "public", |g| {
        g["metadata"]["generation"] = json!(2);
        g["spec"]["clients"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "mobile", "jwt": {"issuer": "https://id.example", "jwksSecretRef": {"name": "id-jwks"}}}));
    });
    fake.take_log();

    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    let role_patch = format!("PATCH {}{APPLY}", object("roles"));
    assert_eq!(
        writes(&log)[..3],
        [
            role_patch.clone(),
            format!("PATCH {}{APPLY}", object("configmaps")),
            format!("PATCH {}{APPLY}", object("deployments")),
        ]
    );
    assert_eq!(
        body(&log, &role_patch)["rules"][1]["resourceNames"],
        json!(["id-jwks", "partner-api-keys", "web-api-keys"])
    );

    fake.edit(NS, "gateways", "public", |g| {
        g["metadata"]["generation"] = json!(3);
        g["spec"].as_object_mut().unwrap().remove("clients");
    });
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert_eq!(
        body(&log, &role_patch)["rules"],
        json!([{"apiGroups": [""], "resources": ["configmaps"],
                "resourceNames": ["public-gateway"], "verbs": ["get", "list", "watch"]}])
    );
}

#[tokio::test]
async fn invalid_spec_reports_every_problem_and_keeps_the_last_table() {
    let fake = shop();
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let old_config_map = fake.get(NS, "configmaps", "public-gateway").unwrap();
    fake.edit(NS, "gateways", "public", |g| {
        g["metadata"]["generation"] = json!(2);
        // Two mistakes: a parameter the match does not capture, twice.
        g["spec"]["contracts"][0]["routes"][1]["backend"]["path"] = json!("/items/{sku}");
        g["spec"]["contracts"][0]["routes"][0]["backend"]["path"] = json!("/items/{slug}");
    });
    fake.take_log();

    let action = reconcile_gateway(&fake, &ctx).await;
    assert_eq!(
        action,
        Action::await_change(),
        "an invalid spec waits for a change"
    );
    let log = fake.take_log();
    let events = format!("POST {}?", collection(NS, "events"));
    assert_eq!(
        lines(&log),
        [
            format!("GET {}?", collection(NS, "services")),
            format!("GET {}?", collection(NS, "aggregators")),
            format!("GET {}", object("deployments")),
            format!("PATCH {}/public/status{APPLY}", collection(NS, "gateways")),
            events.clone(),
            events,
        ]
    );
    assert_eq!(
        fake.get(NS, "configmaps", "public-gateway").unwrap(),
        old_config_map
    );

    let status = patched_status(&log);
    assert_eq!(status["observedGeneration"], 2);
    let accepted = condition(status, "Accepted");
    assert_eq!(
        (accepted["status"].as_str(), accepted["reason"].as_str()),
        (Some("False"), Some("Invalid"))
    );
    let message = accepted["message"].as_str().unwrap();
    assert!(
        message.contains("{sku}") && message.contains("{slug}"),
        "every problem: {message}"
    );
    let old_digest = compiled_public_gateway(1).digest();
    assert_eq!(
        status["routeTableDigest"], old_digest,
        "the last accepted table is still served"
    );
    let programmed = condition(status, "Programmed");
    assert_eq!(programmed["status"], "False");
    assert!(
        programmed["message"]
            .as_str()
            .unwrap()
            .contains(&old_digest)
    );
    assert_eq!(
        condition(status, "Ready")["lastTransitionTime"],
        "2025-01-02T03:04:05Z"
    );

    // Reconciling the same invalid generation again changes nothing and writes nothing.
    reconcile_gateway(&fake, &ctx).await;
    assert!(
        lines(&fake.take_log())
            .iter()
            .all(|l| l.starts_with("GET "))
    );
}

#[tokio::test]
async fn missing_service_and_aggregator_are_named_and_routes_still_served() {
    let fake = FakeApi::default();
    fake.put(NS, "services", service("catalog"));
    fake.put(NS, "gateways", example("examples/gateway/public.yaml"));
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();

    assert!(lines(&log).contains(&format!("PATCH {}{APPLY}", object("configmaps"))));
    let status = patched_status(&log);
    let resolved = condition(status, "ResolvedRefs");
    assert_eq!(
        (resolved["status"].as_str(), resolved["reason"].as_str()),
        (Some("False"), Some("BackendNotFound"))
    );
    let message = resolved["message"].as_str().unwrap();
    for missing in [
        "Service \"orders\"",
        "Service \"orders-v2\"",
        "Aggregator \"product-page\"",
    ] {
        assert!(message.contains(missing), "{missing} in {message}");
    }
    assert!(!message.contains("catalog"));
    assert_eq!(condition(status, "Accepted")["status"], "True");
    assert_eq!(condition(status, "Programmed")["reason"], "Pending");

    // The Services appear: the next reconcile resolves them, and only the status changes.
    fake.put(NS, "services", service("orders"));
    fake.put(NS, "services", service("orders-v2"));
    fake.put(
        NS,
        "aggregators",
        example("examples/aggregator/product-page.yaml"),
    );
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    let status = patched_status(&log);
    assert_eq!(condition(status, "ResolvedRefs")["status"], "True");
}

#[tokio::test]
async fn dropping_autoscaling_deletes_the_autoscaler_and_writes_replicas() {
    let fake = shop();
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    fake.edit(NS, "gateways", "public", |g| {
        g["metadata"]["generation"] = json!(2);
        g["spec"]["deployment"] = json!({"replicas": 3});
    });
    fake.take_log();

    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert!(lines(&log).contains(&format!("DELETE {}?", object("horizontalpodautoscalers"))));
    assert!(
        fake.get(NS, "horizontalpodautoscalers", "public-gateway")
            .is_none()
    );
    let deployment = body(&log, &format!("PATCH {}{APPLY}", object("deployments")));
    assert_eq!(deployment["spec"]["replicas"], 3);
}

#[tokio::test]
async fn api_errors_are_retried_with_growing_delays() {
    let fake = shop();
    fake.fail(&collection(NS, "services"), 500);
    let ctx = context(&fake);
    let object = gateway(&fake);
    let error = reconcile(object.clone(), ctx.clone()).await.unwrap_err();
    assert_eq!(error.step(), "dereference");
    assert_eq!(
        lines(&fake.take_log()),
        [format!("GET {}?", collection(NS, "services"))]
    );
    assert_eq!(
        error_policy(object.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(1))
    );
    assert_eq!(
        error_policy(object.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );
    assert!(ctx.metrics.encode().contains(
        "gatehouse_operator_reconcile_errors_total{kind=\"Gateway\",step=\"dereference\"} 2"
    ));
}

#[tokio::test]
async fn aggregator_reads_only_services() {
    let fake = FakeApi::default();
    for name in ["catalog", "reviews", "sellers"] {
        fake.put(NS, "services", service(name));
    }
    fake.put(
        NS,
        "aggregators",
        example("examples/aggregator/product-page.yaml"),
    );
    let ctx = context(&fake);
    let object: Arc<Aggregator> = Arc::new(
        serde_json::from_value(fake.get(NS, "aggregators", "product-page").unwrap()).unwrap(),
    );
    reconcile(object, ctx).await.unwrap();
    let log = lines(&fake.take_log());
    assert_eq!(log[0], format!("GET {}?", collection(NS, "services")));
    assert!(
        !log.iter()
            .any(|l| l.starts_with(&format!("GET {}?", collection(NS, "aggregators"))))
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("horizontalpodautoscalers/product-page-aggregator?"))
    );
    let deployment = fake
        .get(NS, "deployments", "product-page-aggregator")
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
}

/// `apiVersion` and `kind` of a child collection.
fn type_of(plural: &str) -> (&'static str, &'static str) {
    match plural {
        "serviceaccounts" => ("v1", "ServiceAccount"),
        "roles" => ("rbac.authorization.k8s.io/v1", "Role"),
        "rolebindings" => ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        "configmaps" => ("v1", "ConfigMap"),
        "services" => ("v1", "Service"),
        "deployments" => ("apps/v1", "Deployment"),
        "horizontalpodautoscalers" => ("autoscaling/v2", "HorizontalPodAutoscaler"),
        "poddisruptionbudgets" => ("policy/v1", "PodDisruptionBudget"),
        "networkpolicies" => ("networking.k8s.io/v1", "NetworkPolicy"),
        other => panic!("no child {other}"),
    }
}

/// Somebody else's object with the name the Gateway's child would have.
fn foreign_object(plural: &str, owner: Option<Value>) -> Value {
    let (api_version, kind) = type_of(plural);
    let mut object = json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": "public-gateway", "namespace": NS, "labels": {"team": "billing"}},
    });
    if let Some(owner) = owner {
        object["metadata"]["ownerReferences"] = json!([owner]);
    }
    if plural == "services" {
        object["spec"] = json!({"selector": {"app": "billing"}, "ports": [{"port": 443}]});
    }
    if plural == "rolebindings" {
        object["roleRef"] =
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "billing"});
    }
    object
}

fn writes(log: &[Recorded]) -> Vec<String> {
    lines(log)
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect()
}

fn event_reasons(log: &[Recorded]) -> Vec<String> {
    let events = format!("POST {}?", collection(NS, "events"));
    log.iter()
        .filter(|r| r.line() == events)
        .map(|r| {
            r.body.as_ref().unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// A user's object with a child's name is never written: not even the children whose names are
/// free are applied, and the status says which object is in the way. Every kind of child.
#[tokio::test]
async fn an_object_the_gateway_does_not_control_is_never_written() {
    for plural in CHILDREN {
        let fake = shop();
        let foreign = foreign_object(plural, None);
        fake.put(NS, plural, foreign.clone());
        let ctx = context(&fake);
        let action = reconcile_gateway(&fake, &ctx).await;
        assert_eq!(action, Action::requeue(Duration::from_secs(60)), "{plural}");

        let log = fake.take_log();
        let mut expected = read_everything();
        expected.push(status_patch());
        expected.extend(std::iter::repeat_n(
            format!("POST {}?", collection(NS, "events")),
            4,
        ));
        assert_eq!(lines(&log), expected, "{plural}: no PATCH but the status");
        assert_eq!(
            fake.get(NS, plural, "public-gateway").unwrap(),
            foreign,
            "{plural} untouched"
        );
        assert!(fake.get(NS, "configmaps", "public-gateway").is_none() || plural == "configmaps");

        let status = &body(&log, &status_patch())["status"];
        assert_eq!(status["observedGeneration"], 1);
        let programmed = condition(status, "Programmed");
        assert_eq!(
            (programmed["status"].as_str(), programmed["reason"].as_str()),
            (Some("False"), Some("NameConflict")),
            "{plural}"
        );
        let kind = type_of(plural).1;
        let message = programmed["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "{kind} shop/public-gateway already exists and no controller owns it; nothing is applied"
            )),
            "{message}"
        );
        assert_eq!(condition(status, "Accepted")["status"], "True");
        assert_eq!(condition(status, "Ready")["reason"], "DeploymentMissing");
        assert!(status.get("routeTableDigest").is_none(), "no table written");
        assert!(event_reasons(&log).contains(&"NameConflict".to_owned()));

        // Unchanged: nothing new to say, nothing written.
        reconcile_gateway(&fake, &ctx).await;
        assert_eq!(writes(&fake.take_log()), Vec::<String>::new(), "{plural}");
    }
}

#[tokio::test]
async fn the_conflict_clears_once_the_users_object_is_gone() {
    let fake = shop();
    fake.put(NS, "services", foreign_object("services", None));
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    fake.take_log();

    fake.delete(NS, "services", "public-gateway");
    let action = reconcile_gateway(&fake, &ctx).await;
    assert_eq!(action, Action::requeue(Duration::from_millis(200)));
    let log = fake.take_log();
    let mut expected = apply_and_read_every_object();
    expected.extend(std::iter::repeat_n(
        format!("POST {}?", collection(NS, "events")),
        3,
    ));
    assert_eq!(lines(&log), expected);
    let status = &body(&log, &status_patch())["status"];
    assert_eq!(condition(status, "Programmed")["reason"], "Pending");
    assert_eq!(
        event_reasons(&log),
        ["Pending", "DeploymentUnavailable", "RouteTableUpdated"]
    );
    let service = fake.get(NS, "services", "public-gateway").unwrap();
    assert_eq!(
        service["metadata"]["ownerReferences"][0]["uid"],
        "uid-public"
    );
}

/// A Gateway deleted and created again under the same name has a new uid: the old one's
/// objects, still waiting for the garbage collector, are not its own.
#[tokio::test]
async fn an_object_controlled_by_another_resource_is_named_with_its_controller() {
    let fake = shop();
    let old_owner = json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway", "name": "public", "uid": "uid-before", "controller": true});
    fake.put(
        NS,
        "deployments",
        foreign_object("deployments", Some(old_owner)),
    );
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert_eq!(writes(&log)[0], status_patch());
    let message = condition(&body(&log, &status_patch())["status"], "Programmed")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(
            "Deployment shop/public-gateway already exists and is controlled by Gateway public \
             (uid uid-before)"
        ),
        "{message}"
    );
}

/// An optional object that is not wanted and not ours is neither a conflict nor deleted.
#[tokio::test]
async fn an_unwanted_optional_object_of_somebody_else_is_left_alone() {
    let fake = shop();
    fake.edit(NS, "gateways", "public", |g| {
        g["spec"]["deployment"] = json!({"replicas": 3, "networkPolicy": false});
    });
    let foreign = foreign_object("horizontalpodautoscalers", None);
    fake.put(NS, "horizontalpodautoscalers", foreign.clone());
    fake.put(
        NS,
        "networkpolicies",
        foreign_object("networkpolicies", None),
    );
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert!(
        writes(&log).iter().all(|l| !l.starts_with("DELETE ")),
        "{:#?}",
        writes(&log)
    );
    assert_eq!(
        fake.get(NS, "horizontalpodautoscalers", "public-gateway")
            .unwrap(),
        foreign
    );
    let status = &body(&log, &status_patch())["status"];
    assert_eq!(condition(status, "Programmed")["reason"], "Pending");
}

#[tokio::test]
async fn turning_the_network_policy_off_deletes_it() {
    let fake = shop();
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let policy = fake.get(NS, "networkpolicies", "public-gateway").unwrap();
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "public"
    );
    assert_eq!(
        policy["metadata"]["ownerReferences"][0]["uid"],
        "uid-public"
    );
    fake.edit(NS, "gateways", "public", |g| {
        g["metadata"]["generation"] = json!(2);
        g["spec"]["deployment"]["networkPolicy"] = json!(false);
    });
    fake.take_log();

    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert!(lines(&log).contains(&format!("DELETE {}?", object("networkpolicies"))));
    assert!(fake.get(NS, "networkpolicies", "public-gateway").is_none());
}

const PDB_REFUSED: &str = "PodDisruptionBudget.policy \"public-gateway\" is invalid: \
     spec.maxUnavailable: Invalid value: \"one\": a valid percent string must be a numeric string \
     followed by an ending '%'";

/// A child the API server refuses for good is reported for this generation, with the API's
/// words, and not retried until the resource changes (or a slow requeue).
#[tokio::test]
async fn a_child_the_api_server_refuses_is_reported_and_not_retried_hot() {
    for code in [422, 400] {
        let fake = shop();
        fake.refuse_writes(&object("poddisruptionbudgets"), code, PDB_REFUSED);
        let ctx = context(&fake);
        let action = reconcile_gateway(&fake, &ctx).await;
        assert_eq!(action, Action::requeue(Duration::from_secs(300)), "{code}");

        let log = fake.take_log();
        let mut expected = read_everything();
        // Applied in order up to the refused budget; the NetworkPolicy after it is not.
        expected.extend(
            CHILDREN[..8]
                .iter()
                .map(|plural| format!("PATCH {}{APPLY}", object(plural))),
        );
        expected.push(status_patch());
        expected.extend(std::iter::repeat_n(
            format!("POST {}?", collection(NS, "events")),
            5,
        ));
        assert_eq!(lines(&log), expected, "{code}");

        let status = &body(&log, &status_patch())["status"];
        assert_eq!(status["observedGeneration"], 1);
        assert_eq!(condition(status, "Accepted")["status"], "True");
        let programmed = condition(status, "Programmed");
        assert_eq!(
            (
                programmed["status"].as_str(),
                programmed["reason"].as_str(),
                programmed["observedGeneration"].as_i64()
            ),
            (Some("False"), Some("ApplyFailed"), Some(1))
        );
        let reason = if code == 422 { "Invalid" } else { "BadRequest" };
        let message = programmed["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "the API server refused PodDisruptionBudget shop/public-gateway ({code} {reason}): {PDB_REFUSED}"
            )),
            "{message}"
        );
        // The ConfigMap before it was written: the status names the table it serves.
        let table = compiled_public_gateway(1);
        assert_eq!(status["routeTableDigest"], table.digest());
        assert!(message.contains(&table.digest()), "{message}");
        let reasons = event_reasons(&log);
        assert!(reasons.contains(&"ApplyFailed".to_owned()), "{reasons:?}");

        // The refusal is over (say the cluster admits it now): the next pass programs it.
        fake.accept_writes(&object("poddisruptionbudgets"));
        reconcile_gateway(&fake, &ctx).await;
        let log = fake.take_log();
        assert_eq!(
            writes(&log)[..2],
            [
                format!("PATCH {}{APPLY}", object("poddisruptionbudgets")),
                format!("PATCH {}{APPLY}", object("networkpolicies")),
            ]
        );
        let status = &body(&log, &status_patch())["status"];
        assert_eq!(condition(status, "Programmed")["reason"], "Pending");
    }
}

/// Passing errors on a child write (server errors, throttling, conflicts) keep the backoff.
#[tokio::test]
async fn passing_errors_on_a_child_are_retried_with_backoff() {
    for code in [500, 503, 429, 409] {
        let fake = shop();
        fake.refuse_writes(&object("deployments"), code, "try again later");
        let ctx = context(&fake);
        let object_ = gateway(&fake);
        let error = reconcile(object_.clone(), ctx.clone()).await.unwrap_err();
        assert_eq!(error.step(), "apply", "{code}");
        assert!(
            writes(&fake.take_log())
                .iter()
                .all(|l| !l.contains("/status")),
            "{code}: no status written"
        );
        assert_eq!(
            error_policy(object_, &error, ctx),
            Action::requeue(Duration::from_secs(1)),
            "{code}"
        );
    }
}

/// The requests for Secrets in `log`.
fn secret_requests(log: &[Recorded]) -> Vec<String> {
    lines(log)
        .into_iter()
        .filter(|l| l.contains("/secrets"))
        .collect()
}

/// One `GET` by name of each Secret in `names`.
fn reads_by_name(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|name| format!("GET {}/{name}", collection(NS, "secrets")))
        .collect()
}

/// The Secrets the proxy's Role lets it read.
fn readable_secrets(fake: &FakeApi) -> Value {
    let role = fake.get(NS, "roles", "public-gateway").unwrap();
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["resources"] == json!(["secrets"]))
        .map(|rule| rule["resourceNames"].clone())
        .unwrap()
}

/// A Secret of type `type_` holding `data`.
fn secret_of(name: &str, type_: &str, data: &[(&str, &str)]) -> Value {
    let data = data
        .iter()
        .map(|(key, value)| {
            (
                (*key).to_owned(),
                k8s_openapi::ByteString(value.as_bytes().to_vec()),
            )
        })
        .collect();
    let mut secret = serde_json::to_value(k8s_openapi::api::core::v1::Secret {
        data: Some(data),
        type_: Some(type_.to_owned()),
        ..Default::default()
    })
    .unwrap();
    secret["metadata"] = json!({"name": name, "namespace": NS});
    secret
}

/// A `kubernetes.io/tls` Secret holding `certificate` (PEM) and `key` (PEM).
fn tls_secret(name: &str, certificate: &str, key: &str) -> Value {
    secret_of(
        name,
        "kubernetes.io/tls",
        &[("tls.crt", certificate), ("tls.key", key)],
    )
}

/// A self-signed certificate for `host` and its key, PEM.
fn certificate(host: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

#[tokio::test]
async fn certificate_secrets_are_read_by_name_and_a_broken_or_missing_one_is_named_in_the_status() {
    let fake = shop();
    fake.edit(NS, "gateways", "public", |g| {
        g["spec"]["listeners"] = json!({"https": {"port": 443, "certificates": [
            {"secretName": "good-tls", "hosts": ["shop.example.com"]},
            {"secretName": "mismatched-tls", "hosts": ["api.example.com"]},
            {"secretName": "absent-tls", "hosts": ["*.partners.example.com"]},
        ], "unknownServerName": "Default", "minVersion": "1.2"}});
    });
    let (good_cert, good_key) = certificate("shop.example.com");
    let (api_cert, _) = certificate("api.example.com");
    fake.put(NS, "secrets", tls_secret("good-tls", &good_cert, &good_key));
    fake.put(
        NS,
        "secrets",
        tls_secret("mismatched-tls", &api_cert, &good_key),
    );
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();

    assert_eq!(
        secret_requests(&log),
        reads_by_name(&["absent-tls", "good-tls", "mismatched-tls"]),
        "each certificate Secret is read by name, none is listed"
    );
    let status = patched_status(&log);
    let resolved = condition(status, "ResolvedRefs");
    assert_eq!(
        (resolved["status"].as_str(), resolved["reason"].as_str()),
        (Some("False"), Some("InvalidCertificateRef"))
    );
    let message = resolved["message"].as_str().unwrap();
    assert!(
        message.contains("TLS Secret \"absent-tls\" is missing"),
        "{message}"
    );
    assert!(
        message.contains(
            "TLS Secret \"mismatched-tls\": the private key in tls.key does not match the certificate"
        ),
        "{message}"
    );
    assert!(
        !message.contains("good-tls") && !message.contains("BEGIN"),
        "{message}"
    );
    // The table is still written, its certificates named for the proxy.
    let config_map = fake.get(NS, "configmaps", "public-gateway").unwrap();
    let routes = config_map["data"]["routes.json"].as_str().unwrap();
    assert!(routes.contains("\"secret\":\"absent-tls\""), "{routes}");

    // Fixed and created: resolved, and only the status changes.
    fake.put(
        NS,
        "secrets",
        tls_secret("mismatched-tls", &good_cert, &good_key),
    );
    fake.put(
        NS,
        "secrets",
        tls_secret("absent-tls", &good_cert, &good_key),
    );
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    let status = patched_status(&log);
    assert_eq!(condition(status, "ResolvedRefs")["status"], "True");
}

#[tokio::test]
async fn the_redis_password_secret_of_global_limits_is_read_by_name_and_named_when_unusable() {
    let fake = shop();
    fake.edit(NS, "gateways", "public", |g| {
        g["spec"]["redis"] = json!({"address": "redis:6379",
            "passwordSecretRef": {"name": "redis-auth"}});
        g["spec"]["clients"] = json!([
            {"name": "acme", "apiKeys": {"secretRef": {"name": "acme-keys"}},
             "rateLimit": {"requestsPerSecond": 10, "scope": "Global"}},
        ]);
    });
    let ctx = context(&fake);
    let resolved_refs = |log: &[Recorded]| condition(patched_status(log), "ResolvedRefs").clone();

    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert_eq!(secret_requests(&log), reads_by_name(&["redis-auth"]));
    let resolved = resolved_refs(&log);
    assert_eq!(resolved["reason"], "InvalidRedisSecretRef");
    assert_eq!(
        resolved["message"],
        "Redis password Secret \"redis-auth\" is missing; the proxies cannot use Redis: \
         requests of clients with a global rate limit get their onRedisFailure answer until it \
         is fixed (and new proxy pods wait for the Secret)"
    );

    fake.put(
        NS,
        "secrets",
        secret_of("redis-auth", "Opaque", &[("password", "")]),
    );
    reconcile_gateway(&fake, &ctx).await;
    let resolved = resolved_refs(&fake.take_log());
    assert!(
        resolved["message"]
            .as_str()
            .unwrap()
            .starts_with("Redis password Secret \"redis-auth\" holds an empty \"password\""),
        "{resolved}"
    );

    fake.put(
        NS,
        "secrets",
        secret_of("redis-auth", "Opaque", &[("password", "s3cret")]),
    );
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert_eq!(resolved_refs(&log)["status"], "True");
    assert!(
        !patched_status(&log).to_string().contains("s3cret"),
        "the password never reaches the status"
    );
}

#[tokio::test]
async fn client_certificate_authorities_are_read_by_name_and_a_broken_or_missing_one_is_named() {
    let fake = shop();
    let (good_cert, good_key) = certificate("shop.example.com");
    fake.put(NS, "secrets", tls_secret("good-tls", &good_cert, &good_key));
    fake.edit(NS, "gateways", "public", |g| {
        g["spec"]["listeners"] = json!({"https": {"port": 443, "certificates": [
            {"secretName": "good-tls", "hosts": ["shop.example.com"]},
        ], "unknownServerName": "Default", "minVersion": "1.2"}});
        g["spec"]["clients"] = json!([
            {"name": "acme", "clientCertificate": {"caSecretRef": {"name": "partners-ca"},
                "names": ["gateway.acme.example"]}},
            {"name": "globex", "clientCertificate": {"caSecretRef": {"name": "broken-ca"}}},
            {"name": "initech", "clientCertificate": {"caSecretRef": {"name": "absent-ca"}}},
        ]);
    });
    // Any certificate is an authority to rustls' trust store; a CA's own is what cert-manager
    // writes.
    let (ca_cert, _) = certificate("partners-ca");
    fake.put(
        NS,
        "secrets",
        secret_of("partners-ca", "Opaque", &[("ca.crt", &ca_cert)]),
    );
    fake.put(
        NS,
        "secrets",
        secret_of("broken-ca", "Opaque", &[("tls.crt", &ca_cert)]),
    );
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();

    assert_eq!(
        secret_requests(&log),
        reads_by_name(&["good-tls", "absent-ca", "broken-ca", "partners-ca"]),
        "certificates first, then authorities, each read by name, none listed"
    );
    let status = patched_status(&log);
    let resolved = condition(status, "ResolvedRefs");
    assert_eq!(resolved["reason"], "InvalidCertificateRef");
    let message = resolved["message"].as_str().unwrap();
    assert_eq!(
        message,
        "CA Secret \"absent-ca\" is missing; CA Secret \"broken-ca\": ca.crt holds no usable \
         PEM certificate (there is no ca.crt); the client certificates it signs are refused \
         with 401 until it is fixed"
    );
    // The proxy may read exactly these Secrets, and mounts them.
    let names = readable_secrets(&fake);
    assert_eq!(
        names,
        json!(["absent-ca", "broken-ca", "good-tls", "partners-ca"])
    );

    fake.put(
        NS,
        "secrets",
        secret_of("broken-ca", "Opaque", &[("ca.crt", &ca_cert)]),
    );
    fake.put(
        NS,
        "secrets",
        secret_of("absent-ca", "Opaque", &[("ca.crt", &ca_cert)]),
    );
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert_eq!(
        condition(patched_status(&log), "ResolvedRefs")["status"],
        "True"
    );
}

#[tokio::test]
async fn backend_tls_secrets_are_read_by_name_and_a_broken_or_missing_one_is_named() {
    let fake = shop();
    fake.edit(NS, "gateways", "public", |g| {
        g["spec"]["contracts"][0]["routes"][0]["backend"]["tls"] = json!({
            "caSecretRef": {"name": "catalog-ca"},
            "clientCertificateSecretRef": {"name": "gateway-client-tls"},
        });
        g["spec"]["contracts"][0]["routes"][1]["backend"]["tls"] = json!({
            "caSecretRef": {"name": "absent-ca"},
            "serverName": "catalog.internal.example",
        });
    });
    let (ca_cert, _) = certificate("catalog-ca");
    let (client_cert, _) = certificate("gateway.shop.example");
    let (_, other_key) = certificate("someone.else.example");
    fake.put(
        NS,
        "secrets",
        secret_of("catalog-ca", "Opaque", &[("ca.crt", &ca_cert)]),
    );
    fake.put(
        NS,
        "secrets",
        tls_secret("gateway-client-tls", &client_cert, &other_key),
    );
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();

    assert_eq!(
        secret_requests(&log),
        reads_by_name(&["absent-ca", "catalog-ca", "gateway-client-tls"]),
        "authorities, then the client certificate, each read by name, none listed"
    );
    let resolved = condition(patched_status(&log), "ResolvedRefs");
    assert_eq!(resolved["reason"], "InvalidCertificateRef");
    assert_eq!(
        resolved["message"].as_str().unwrap(),
        "CA Secret \"absent-ca\" is missing; TLS Secret \"gateway-client-tls\": the private key \
         in tls.key does not match the certificate in tls.crt; the proxies keep the TLS \
         settings they had for its backends, if any; otherwise requests to them fail with 502 \
         until it is fixed"
    );
    // The table names them for the proxy, which may read exactly these Secrets (and the API
    // key Secrets of the example's clients).
    let config_map = fake.get(NS, "configmaps", "public-gateway").unwrap();
    let routes = config_map["data"]["routes.json"].as_str().unwrap();
    assert!(
        routes.contains(
            "\"tls\":{\"serverName\":\"catalog.shop.svc.cluster.local\",\"caSecret\":\"catalog-ca\",\
             \"clientCertificate\":\"gateway-client-tls\"}"
        ) && routes.contains(
            "\"tls\":{\"serverName\":\"catalog.internal.example\",\"caSecret\":\"absent-ca\"}"
        ),
        "{routes}"
    );
    let names = readable_secrets(&fake);
    assert_eq!(
        names,
        json!([
            "absent-ca",
            "catalog-ca",
            "gateway-client-tls",
            "partner-api-keys",
            "web-api-keys"
        ])
    );
}
