//! The controllers against an in-memory API server (kube's `tower-test` mock service): each
//! scenario asserts the exact requests a reconcile sends.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

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
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use support::{FakeApi, Recorded, collection};

const NS: &str = "shop";
const APPLY: &str = "?&force=true&fieldManager=gatehouse-operator";

fn now() -> Timestamp {
    "2025-01-02T03:04:05Z".parse().unwrap()
}

fn context(fake: &FakeApi) -> Arc<Context> {
    Arc::new(Context::new(
        fake.client(),
        ProxySettings::default(),
        Clock::Fixed(now()),
        Arc::new(Metrics::new()),
    ))
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

async fn reconcile_gateway(fake: &FakeApi, ctx: &Arc<Context>) -> Action {
    let object = gateway(fake);
    tokio::time::timeout(Duration::from_secs(10), reconcile(object, ctx.clone()))
        .await
        .expect("reconcile finished")
        .expect("reconcile succeeded")
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

fn apply_and_read_every_object() -> Vec<String> {
    let mut expected = vec![
        format!("GET {}?", collection(NS, "services")),
        format!("GET {}?", collection(NS, "aggregators")),
    ];
    for plural in [
        "serviceaccounts",
        "configmaps",
        "services",
        "deployments",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
    ] {
        expected.push(format!("GET {}", object(plural)));
        expected.push(format!("PATCH {}{APPLY}", object(plural)));
    }
    expected.push(format!(
        "PATCH {}/public/status{APPLY}",
        collection(NS, "gateways")
    ));
    expected
}

#[tokio::test]
async fn first_reconcile_applies_every_object_and_reports_status() {
    let fake = shop();
    let ctx = context(&fake);
    let action = reconcile_gateway(&fake, &ctx).await;
    assert_eq!(action, Action::requeue(Duration::from_secs(600)));

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

    let status_patch = body(
        &log,
        &format!("PATCH {}/public/status{APPLY}", collection(NS, "gateways")),
    );
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
            expect("Programmed", "True", "Programmed"),
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
            "Programmed",
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
    assert_eq!(action, Action::requeue(Duration::from_secs(600)));
    let log = fake.take_log();
    let writes: Vec<String> = lines(&log)
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "no write on the second pass");
    let expected: Vec<String> = apply_and_read_every_object()
        .into_iter()
        .filter(|l| l.starts_with("GET "))
        .collect();
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

    let status = &body(
        &log,
        &format!("PATCH {}/public/status{APPLY}", collection(NS, "gateways")),
    )["status"];
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
    let status = &body(
        &log,
        &format!("PATCH {}/public/status{APPLY}", collection(NS, "gateways")),
    )["status"];
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
    assert_eq!(condition(status, "Programmed")["status"], "True");

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
    let status = &body(
        &log,
        &format!("PATCH {}/public/status{APPLY}", collection(NS, "gateways")),
    )["status"];
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
