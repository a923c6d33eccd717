//! The steps of the end-to-end scenario, in order.

use std::fmt::Debug;
use std::time::Duration;

use gatehouse_api::crd::{Aggregator, EdgeService, Gateway, ProxyStatus};
use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::RouteTable;
use gatehouse_api::table_file::from_config_map;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::DeleteParams;
use kube::runtime::wait::conditions::is_deleted;
use kube::{Api, Client, Resource as KubeResource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::cluster::{apply, condition, reports, table_applied, wait_for};
use crate::operator_process::{
    MONITORING_NAMESPACE, OPERATOR_NAMESPACE, OperatorProcess, workspace,
};

const OPERATOR: &str = "gatehouse-operator";
const DIGEST_ANNOTATION: &str = "gatehouse.dev/route-table-digest";

/// A Gatehouse kind as the suite handles it.
pub(crate) trait Proxy:
    KubeResource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Send
    + Serialize
    + DeserializeOwned
    + 'static
{
    const KIND: Kind;
    fn proxy_status(&self) -> Option<&ProxyStatus>;
    fn autoscaled(&self) -> bool;
}

impl Proxy for Gateway {
    const KIND: Kind = Kind::Gateway;
    fn proxy_status(&self) -> Option<&ProxyStatus> {
        self.status.as_ref()
    }
    fn autoscaled(&self) -> bool {
        self.spec.deployment.autoscaling.is_some()
    }
}

impl Proxy for EdgeService {
    const KIND: Kind = Kind::EdgeService;
    fn proxy_status(&self) -> Option<&ProxyStatus> {
        self.status.as_ref()
    }
    fn autoscaled(&self) -> bool {
        self.spec.deployment.autoscaling.is_some()
    }
}

impl Proxy for Aggregator {
    const KIND: Kind = Kind::Aggregator;
    fn proxy_status(&self) -> Option<&ProxyStatus> {
        self.status.as_ref()
    }
    fn autoscaled(&self) -> bool {
        self.spec.deployment.autoscaling.is_some()
    }
}

pub(crate) fn example(path: &str, namespace: &str) -> Resource {
    let text = std::fs::read_to_string(workspace().join(path)).unwrap();
    let mut resource = Resource::from_yaml(&text).unwrap().remove(0);
    let metadata = match &mut resource {
        Resource::Gateway(r) => &mut r.metadata,
        Resource::EdgeService(r) => &mut r.metadata,
        Resource::Aggregator(r) => &mut r.metadata,
    };
    metadata.namespace = Some(namespace.to_owned());
    resource
}

pub(crate) fn backend_service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 8080}]}
    }))
    .unwrap()
}

async fn get<K>(client: &Client, namespace: &str, name: &str) -> Option<K>
where
    K: KubeResource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.unwrap()
}

/// The fields of an object the operator's field manager owns (server-side apply).
fn owned_fields<K: KubeResource>(object: &K) -> serde_json::Value {
    object
        .managed_fields()
        .iter()
        .find(|m| m.manager.as_deref() == Some(OPERATOR) && m.operation.as_deref() == Some("Apply"))
        .and_then(|m| m.fields_v1.as_ref())
        .map(|f| f.0.clone())
        .unwrap_or_else(|| panic!("{OPERATOR} applied {}", object.name_any()))
}

fn sorted<const N: usize>(mut names: [&str; N]) -> [&str; N] {
    names.sort_unstable();
    names
}

/// Waits until the resource reports its current generation fully, then checks every child.
pub(crate) async fn expect_reconciled<K: Proxy>(
    client: &Client,
    namespace: &str,
    resource: &K,
) -> String {
    let name = resource.name_any();
    let generation = resource.meta().generation;
    let what = format!("{} {name} to be accepted and programmed", K::kind(&()));
    let done = |object: Option<&K>| {
        let status = object.and_then(Proxy::proxy_status);
        reports(status, generation, "Accepted", "True", "Accepted")
            && reports(status, generation, "ResolvedRefs", "True", "ResolvedRefs")
            && table_applied(status, generation)
            && condition(status, "Ready").is_some()
    };
    let live: K = wait_for(client, namespace, &name, &what, done)
        .await
        .unwrap();
    let status = live.proxy_status().unwrap();
    let child = proxy_name(K::KIND, &name);
    let uid = live.uid().unwrap();

    let config_map: ConfigMap = get(client, namespace, &child)
        .await
        .expect("route ConfigMap");
    let json = from_config_map(&config_map)
        .expect("the route ConfigMap holds a table")
        .expect("it unpacks");
    let table = RouteTable::from_bytes(&json).expect("a valid route table");
    assert_eq!(table.source.generation, generation);
    assert_eq!(
        status.route_table_digest.as_deref(),
        Some(table.digest().as_str())
    );
    assert_eq!(config_map.annotations()[DIGEST_ANNOTATION], table.digest());
    assert_eq!(
        status.routes,
        Some(i32::try_from(table.routes.len()).unwrap())
    );
    assert_eq!(
        status.address.as_deref(),
        Some(format!("{child}.{namespace}.svc.cluster.local:80").as_str())
    );

    let deployment: Deployment = get(client, namespace, &child).await.expect("Deployment");
    let owner = deployment
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true));
    assert_eq!(
        owner.map(|o| o.uid.as_str()),
        Some(uid.as_str()),
        "controlled by {name}"
    );
    let spec_fields = &owned_fields(&deployment)["f:spec"];
    assert_eq!(
        spec_fields.get("f:replicas").is_some(),
        !live.autoscaled(),
        "the operator owns replicas exactly when no HPA does"
    );
    let available = deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        });
    let ready = condition(Some(status), "Ready").unwrap();
    if available {
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Available")
        );
    } else {
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "DeploymentUnavailable"),
            "no kubelet, no available proxy: Ready says so"
        );
        let programmed = condition(Some(status), "Programmed").unwrap();
        assert_eq!(
            (programmed.status.as_str(), programmed.reason.as_str()),
            ("False", "Pending"),
            "no ready replica serves the table: Programmed says so"
        );
        assert_eq!(status.proxies.as_ref().map(|p| p.ready), Some(0));
    }

    assert!(get::<Service>(client, namespace, &child).await.is_some());
    assert!(
        get::<ServiceAccount>(client, namespace, &child)
            .await
            .is_some()
    );
    let role: Role = get(client, namespace, &child).await.expect("Role");
    let rules = role.rules.unwrap_or_default();
    assert_eq!(
        rules[0].resource_names.as_deref(),
        Some([child.clone()].as_slice()),
        "the proxy reads its own ConfigMap"
    );
    assert!(
        rules
            .iter()
            .all(|r| r.resource_names.as_ref().is_some_and(|n| !n.is_empty())),
        "every rule names its objects: {rules:?}"
    );
    let binding: RoleBinding = get(client, namespace, &child).await.expect("RoleBinding");
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("Role", child.as_str())
    );
    assert!(
        get::<PodDisruptionBudget>(client, namespace, &child)
            .await
            .is_some()
    );
    assert_eq!(
        get::<HorizontalPodAutoscaler>(client, namespace, &child)
            .await
            .is_some(),
        live.autoscaled()
    );
    let policy: NetworkPolicy = get(client, namespace, &child).await.expect("NetworkPolicy");
    let ingress = serde_json::to_value(&policy.spec.as_ref().unwrap().ingress).unwrap();
    assert_eq!(
        ingress[1]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(sorted([
            OPERATOR_NAMESPACE,
            MONITORING_NAMESPACE,
            namespace
        ])),
        "the admin port is open to the operator's, the monitoring and the own namespace"
    );
    uid
}

/// Every step; panics on the first broken expectation.
pub async fn run(client: &Client, namespace: &str, operator: &mut OperatorProcess) {
    operator.wait_ready(Duration::from_secs(60)).await;
    let lease = wait_for::<Lease>(
        client,
        namespace,
        OPERATOR,
        "the leader Lease",
        |l: Option<&Lease>| {
            l.and_then(|l| l.spec.as_ref()?.holder_identity.as_ref())
                .is_some_and(|h| !h.is_empty())
        },
    )
    .await;
    println!("leader: {:?}", lease.and_then(|l| l.spec?.holder_identity));

    crate::invalid_examples::refuse_every_invalid_example(client, namespace).await;
    for name in ["catalog", "orders", "orders-v2", "reviews", "sellers"] {
        apply(client, namespace, &backend_service(name)).await;
    }
    let Resource::Aggregator(aggregator) =
        example("examples/aggregator/product-page.yaml", namespace)
    else {
        panic!("product-page is an Aggregator")
    };
    let Resource::Gateway(gateway) = example("examples/gateway/public.yaml", namespace) else {
        panic!("public is a Gateway")
    };
    let Resource::EdgeService(edge) = example("examples/edge/mobile.yaml", namespace) else {
        panic!("mobile is an EdgeService")
    };
    let aggregator = apply(client, namespace, &aggregator).await;
    let applied_gateway = apply(client, namespace, &gateway).await;
    let edge = apply(client, namespace, &edge).await;
    expect_reconciled(client, namespace, &aggregator).await;
    expect_reconciled(client, namespace, &edge).await;
    let gateway_uid = expect_reconciled(client, namespace, &applied_gateway).await;
    println!("examples reconciled");

    change_a_route(client, namespace, gateway.clone()).await;
    refuse_an_invalid_change(client, namespace, gateway).await;
    resolve_a_late_service(client, namespace).await;
    never_take_over_a_users_service(client, namespace).await;
    report_a_child_the_api_server_refuses(client, namespace).await;
    // Each step's future is boxed: together they would not fit the test thread's stack.
    Box::pin(crate::live::run(client, namespace)).await;
    Box::pin(crate::live_tls::run(client, namespace)).await;
    Box::pin(crate::limit_access::run(client, namespace)).await;
    Box::pin(crate::global_limits::run(client, namespace)).await;
    Box::pin(crate::contracts::run(client, namespace)).await;
    Box::pin(crate::versioning::run(client, namespace)).await;
    Box::pin(crate::usage::run(client, namespace)).await;
    Box::pin(crate::contracts_scale::run(client, namespace)).await;
    delete_and_collect(client, namespace, &gateway_uid).await;

    let metrics = operator.metrics().await;
    assert!(
        metrics.contains("gatehouse_operator_reconciles_total{kind=\"Gateway\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("gatehouse_operator_leader 1"), "{metrics}");
}

async fn change_a_route(client: &Client, namespace: &str, mut gateway: Gateway) {
    let child = proxy_name(Kind::Gateway, "public");
    let before: Deployment = get(client, namespace, &child).await.unwrap();
    let old_digest = get::<ConfigMap>(client, namespace, &child)
        .await
        .unwrap()
        .annotations()[DIGEST_ANNOTATION]
        .clone();

    gateway.spec.contracts[0].routes[0].timeout = Some("7s".to_owned());
    let changed = apply(client, namespace, &gateway).await;
    let generation = changed.metadata.generation;
    let programmed = wait_for(
        client,
        namespace,
        "public",
        "the route change to be programmed",
        |g: Option<&Gateway>| {
            let status = g.and_then(|g| g.status.as_ref());
            table_applied(status, generation)
        },
    )
    .await
    .unwrap();
    let new_digest = programmed.status.unwrap().route_table_digest.unwrap();
    assert_ne!(new_digest, old_digest);
    let config_map: ConfigMap = get(client, namespace, &child).await.unwrap();
    assert_eq!(config_map.annotations()[DIGEST_ANNOTATION], new_digest);
    let table = RouteTable::from_bytes(&from_config_map(&config_map).unwrap().unwrap()).unwrap();
    let contract = &gateway.spec.contracts[0];
    let id = format!("{}/{}", contract.version, contract.routes[0].name);
    let route = table
        .routes
        .iter()
        .find(|r| r.id == id)
        .expect("the changed route");
    assert_eq!(route.timeout_ms, 7000, "{route:?}");

    let after: Deployment = get(client, namespace, &child).await.unwrap();
    assert_eq!(
        serde_json::to_value(&after.spec.as_ref().unwrap().template).unwrap(),
        serde_json::to_value(&before.spec.as_ref().unwrap().template).unwrap(),
        "a route change never touches the pod template (no restart)"
    );
    assert_eq!(
        after.annotations().get("gatehouse.dev/desired-hash"),
        before.annotations().get("gatehouse.dev/desired-hash"),
        "the Deployment was not re-applied"
    );
    println!("route change programmed without touching the pods");
}

/// Waits until the Gateway `name` reports `(type, status, reason)` for `generation`.
async fn gateway_reports(
    client: &Client,
    namespace: &str,
    (name, generation): (&str, Option<i64>),
    (type_, expected, reason): (&str, &str, &str),
    what: &str,
) -> Option<Gateway> {
    wait_for(client, namespace, name, what, |g: Option<&Gateway>| {
        reports(
            g.and_then(|g| g.status.as_ref()),
            generation,
            type_,
            expected,
            reason,
        )
    })
    .await
}

/// Waits until the Gateway `name`'s table of `generation` is applied ([`table_applied`]).
async fn gateway_applied(
    client: &Client,
    namespace: &str,
    (name, generation): (&str, Option<i64>),
    what: &str,
) -> Option<Gateway> {
    wait_for(client, namespace, name, what, |g: Option<&Gateway>| {
        table_applied(g.and_then(|g| g.status.as_ref()), generation)
    })
    .await
}

async fn refuse_an_invalid_change(client: &Client, namespace: &str, mut gateway: Gateway) {
    let child = proxy_name(Kind::Gateway, "public");
    let served = get::<ConfigMap>(client, namespace, &child).await.unwrap();

    gateway.spec.contracts[0].routes[0].timeout = Some("7s".to_owned());
    let product = gateway.spec.contracts[0]
        .routes
        .iter_mut()
        .find(|r| r.name == "product")
        .unwrap();
    product.backend.as_mut().unwrap().path = Some("/items/{sku}".to_owned());
    let invalid = apply(client, namespace, &gateway).await;
    let generation = invalid.metadata.generation;
    let refused = gateway_reports(
        client,
        namespace,
        ("public", generation),
        ("Accepted", "False", "Invalid"),
        "Accepted=False",
    )
    .await
    .unwrap();
    let status = refused.status.unwrap();
    let accepted = condition(Some(&status), "Accepted").unwrap();
    assert!(accepted.message.contains("{sku}"), "{}", accepted.message);
    let programmed = condition(Some(&status), "Programmed").unwrap();
    assert_eq!(
        (programmed.status.as_str(), programmed.reason.as_str()),
        ("False", "NotAccepted")
    );
    let digest = &served.annotations()[DIGEST_ANNOTATION];
    assert_eq!(
        status.route_table_digest.as_ref(),
        Some(digest),
        "the served table is reported"
    );

    let still: ConfigMap = get(client, namespace, &child).await.unwrap();
    assert_eq!(
        still.data, served.data,
        "the last accepted table keeps serving"
    );
    assert_eq!(
        still.resource_version(),
        served.resource_version(),
        "not even rewritten"
    );
    println!("invalid change refused, last table kept");
}

async fn resolve_a_late_service(client: &Client, namespace: &str) {
    let late: Gateway = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": "late", "namespace": namespace},
        "spec": {"contracts": [{"version": "v1", "routes": [
            {"name": "things", "match": {"path": "/things"}, "backend": {"service": "late-backend", "port": 8080}}
        ]}]}
    }))
    .unwrap();
    let late = apply(client, namespace, &late).await;
    let generation = late.metadata.generation;
    let missing = wait_for(
        client,
        namespace,
        "late",
        "ResolvedRefs=False",
        |g: Option<&Gateway>| {
            let status = g.and_then(|g| g.status.as_ref());
            reports(
                status,
                generation,
                "ResolvedRefs",
                "False",
                "BackendNotFound",
            ) && table_applied(status, generation)
        },
    )
    .await
    .unwrap();
    let message = &condition(missing.status.as_ref(), "ResolvedRefs")
        .unwrap()
        .message;
    assert!(message.contains("late-backend"), "{message}");

    apply(client, namespace, &backend_service("late-backend")).await;
    gateway_reports(
        client,
        namespace,
        ("late", generation),
        ("ResolvedRefs", "True", "ResolvedRefs"),
        "ResolvedRefs=True once the Service exists",
    )
    .await;
    println!("a Service created later resolves the reference");
}

fn gateway_to_catalog(name: &str, namespace: &str, deployment: serde_json::Value) -> Gateway {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "contracts": [{"version": "v1", "routes": [
                {"name": "things", "match": {"path": "/things"}, "backend": {"service": "catalog", "port": 8080}}
            ]}],
            "deployment": deployment,
        }
    }))
    .unwrap()
}

/// Waits until the accepted Gateway reports `Programmed=False` with `reason` for its generation;
/// returns the condition's message.
pub(crate) async fn not_programmed(
    client: &Client,
    namespace: &str,
    gateway: &Gateway,
    reason: &str,
) -> String {
    let generation = gateway.metadata.generation;
    let what = format!("Programmed=False {reason}");
    let blocked = wait_for(
        client,
        namespace,
        &gateway.name_any(),
        &what,
        |g: Option<&Gateway>| {
            let status = g.and_then(|g| g.status.as_ref());
            reports(status, generation, "Programmed", "False", reason)
                && reports(status, generation, "Accepted", "True", "Accepted")
        },
    )
    .await
    .unwrap();
    condition(blocked.status.as_ref(), "Programmed")
        .unwrap()
        .message
        .clone()
}

/// A user's Service already has the name the Gateway's Service would get: the operator leaves it
/// exactly as it is, writes nothing else for the Gateway and says why, until the user's Service
/// goes away.
async fn never_take_over_a_users_service(client: &Client, namespace: &str) {
    let child = proxy_name(Kind::Gateway, "payments");
    let users: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": child, "labels": {"team": "billing"}},
        "spec": {"selector": {"app": "billing"}, "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}
    }))
    .unwrap();
    let users = apply(client, namespace, &users).await;
    let gateway = apply(
        client,
        namespace,
        &gateway_to_catalog("payments", namespace, json!({})),
    )
    .await;
    let generation = gateway.metadata.generation;
    let message = &not_programmed(client, namespace, &gateway, "NameConflict").await;
    assert!(
        message.starts_with(&format!(
            "Service {namespace}/{child} already exists and no controller owns it"
        )),
        "{message}"
    );

    let still: Service = get(client, namespace, &child).await.unwrap();
    assert_eq!(
        serde_json::to_value(&still.spec.as_ref().unwrap().selector).unwrap(),
        json!({"app": "billing"})
    );
    let ports = serde_json::to_value(&still.spec.as_ref().unwrap().ports).unwrap();
    assert_eq!(ports[0]["port"], 443);
    assert_eq!(ports.as_array().unwrap().len(), 1, "{ports}");
    assert!(
        still.owner_references().is_empty(),
        "no owner reference added"
    );
    assert!(
        still
            .managed_fields()
            .iter()
            .all(|m| m.manager.as_deref() != Some(OPERATOR)),
        "the operator never wrote the user's Service"
    );
    assert_eq!(still.resource_version(), users.resource_version());
    assert!(get::<ConfigMap>(client, namespace, &child).await.is_none());
    assert!(get::<Deployment>(client, namespace, &child).await.is_none());
    assert!(
        get::<ServiceAccount>(client, namespace, &child)
            .await
            .is_none()
    );

    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    services
        .delete(&child, &DeleteParams::default())
        .await
        .unwrap();
    wait_for::<Service>(
        client,
        namespace,
        &child,
        "the user's Service to be deleted",
        is_deleted(&users.uid().unwrap()),
    )
    .await;
    let programmed = gateway_applied(
        client,
        namespace,
        ("payments", generation),
        "the table applied once the user's Service is gone",
    )
    .await
    .unwrap();
    let ours: Service = get(client, namespace, &child).await.unwrap();
    assert_eq!(
        ours.owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.as_str()),
        programmed.uid().as_deref()
    );
    println!("a user's Service is never taken over; the Gateway is programmed once it is gone");
}

/// The CRD cannot compare quantities, so a request above its limit reaches the Deployment API,
/// which refuses it (422): the status says so, with the API's words.
async fn report_a_child_the_api_server_refuses(client: &Client, namespace: &str) {
    let over =
        json!({"resources": {"requests": {"memory": "512Mi"}, "limits": {"memory": "256Mi"}}});
    let gateway = apply(
        client,
        namespace,
        &gateway_to_catalog("refused", namespace, over),
    )
    .await;
    let message = &not_programmed(client, namespace, &gateway, "ApplyFailed").await;
    let child = proxy_name(Kind::Gateway, "refused");
    assert!(
        message.starts_with(&format!(
            "the API server refused Deployment {namespace}/{child} (422 Invalid): "
        )) && message.contains("must be less than or equal to memory limit"),
        "{message}"
    );
    assert!(get::<Deployment>(client, namespace, &child).await.is_none());

    let fixed =
        json!({"resources": {"requests": {"memory": "128Mi"}, "limits": {"memory": "256Mi"}}});
    let gateway = apply(
        client,
        namespace,
        &gateway_to_catalog("refused", namespace, fixed),
    )
    .await;
    let generation = gateway.metadata.generation;
    gateway_applied(
        client,
        namespace,
        ("refused", generation),
        "the table applied once the spec is fixed",
    )
    .await;
    assert!(get::<Deployment>(client, namespace, &child).await.is_some());
    println!("a child the API server refuses is reported as ApplyFailed, and clears when fixed");
}

async fn wait_deleted<K>(client: &Client, namespace: &str, name: &str)
where
    K: KubeResource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Send
        + DeserializeOwned
        + 'static,
{
    let Some(object) = get::<K>(client, namespace, name).await else {
        return;
    };
    let uid = object.uid().unwrap();
    let what = format!("{} {name} to be garbage-collected", K::kind(&()));
    wait_for::<K>(client, namespace, name, &what, is_deleted(&uid)).await;
}

async fn delete_and_collect(client: &Client, namespace: &str, gateway_uid: &str) {
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), namespace);
    gateways
        .delete("public", &DeleteParams::default())
        .await
        .unwrap();
    wait_for::<Gateway>(
        client,
        namespace,
        "public",
        "the Gateway to be deleted",
        is_deleted(gateway_uid),
    )
    .await;
    let child = proxy_name(Kind::Gateway, "public");
    wait_deleted::<ConfigMap>(client, namespace, &child).await;
    wait_deleted::<Deployment>(client, namespace, &child).await;
    wait_deleted::<Service>(client, namespace, &child).await;
    wait_deleted::<ServiceAccount>(client, namespace, &child).await;
    wait_deleted::<Role>(client, namespace, &child).await;
    wait_deleted::<RoleBinding>(client, namespace, &child).await;
    wait_deleted::<HorizontalPodAutoscaler>(client, namespace, &child).await;
    wait_deleted::<PodDisruptionBudget>(client, namespace, &child).await;
    wait_deleted::<NetworkPolicy>(client, namespace, &child).await;
    println!("deleting the Gateway garbage-collected its objects");
}

/// True once the operator's Lease has no holder (released on shutdown).
pub async fn lease_released(client: &Client, namespace: &str) -> bool {
    get::<Lease>(client, namespace, OPERATOR)
        .await
        .and_then(|l| l.spec?.holder_identity)
        .is_none_or(|h| h.is_empty())
}
