//! Usage on the real API server: a local `gatehouse-proxy` (in-cluster mode, its own
//! ServiceAccount's token) serves a Gateway whose v1 is deprecated, listed by an EndpointSlice
//! the operator finds it through. A client's calls land in `status.usage`; retiring v1 is then
//! refused (`Accepted=False`, `VersionInUse`, naming the client) while the route ConfigMap keeps
//! its table and the proxy keeps serving v1; the annotation `gatehouse.dev/retire-in-use`
//! retires it anyway: the proxy answers 410 and a Warning Event `RetiredInUse` says whose calls
//! it ended.

use gatehouse_api::crd::Gateway;
use gatehouse_api::naming::{Kind, proxy_name};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::{apply, condition, proxy_kubeconfig, secret, stored_table, wait_for, within};
use crate::live::{BACKEND, Backend, LocalProxy, endpoint_slice, scratch_dir};

const GATEWAY: &str = "usage";
const SECRET: &str = "usage-keys";

/// The usage Gateway, v1 in `lifecycle`, with `annotations`.
fn gateway(namespace: &str, lifecycle: &str, annotations: Value) -> Gateway {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": namespace, "annotations": annotations},
        "spec": {
            "clients": [{"name": "mobile", "apiKeys": {"secretRef": {"name": SECRET}}}],
            "contracts": [{
                "version": "v1", "lifecycle": lifecycle,
                "deprecation": {"since": "2026-01-01T00:00:00Z"},
                "routes": [{"name": "product", "match": {"path": "/product"},
                            "backend": {"service": BACKEND, "port": 8080}}],
            }],
            "deployment": {"networkPolicy": false},
        }
    }))
    .unwrap()
}

/// Every step of the usage scenario.
pub async fn run(client: &Client, namespace: &str) {
    let child = proxy_name(Kind::Gateway, GATEWAY);
    let backend = Backend::start().await;
    let keys: Secret = secret(namespace, SECRET, None, json!({"key": "mobile-key"}));
    apply(client, namespace, &keys).await;
    let applied = apply(
        client,
        namespace,
        &gateway(namespace, "Deprecated", json!({})),
    )
    .await;
    crate::live::table_of(client, namespace, &child, applied.metadata.generation).await;

    let dir = scratch_dir(&format!("{namespace}-usage"));
    let kubeconfig = proxy_kubeconfig(client, namespace, &child, &dir, None).await;
    let proxy = LocalProxy::start(
        &dir,
        "usage",
        &child,
        namespace,
        &kubeconfig,
        &[],
        &backend,
        &[],
    );
    proxy
        .wait_for_status("/v1/product", "mobile-key", 200)
        .await;
    apply(
        client,
        namespace,
        &endpoint_slice(namespace, &child, proxy.admin_port),
    )
    .await;

    // The operator asks the pod every second in this suite (`--usage-interval 1s`).
    let recorded = wait_for(
        client,
        namespace,
        GATEWAY,
        "mobile's calls of v1 in status.usage",
        |g: Option<&Gateway>| {
            g.and_then(|g| g.status.as_ref()).is_some_and(|s| {
                s.usage
                    .iter()
                    .any(|u| u.client.as_deref() == Some("mobile"))
            })
        },
    )
    .await
    .unwrap();
    let usage = &recorded.status.as_ref().unwrap().usage;
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(
        (usage[0].contract.as_deref(), usage[0].version.as_str()),
        (None, "v1")
    );
    println!("status.usage records {usage:?}");

    // Retiring v1: refused, the table and the proxy unchanged.
    let before = stored_table(client, namespace, &child).await.1.digest();
    let retired = apply(client, namespace, &gateway(namespace, "Retired", json!({}))).await;
    let generation = retired.metadata.generation;
    let refused = wait_for(
        client,
        namespace,
        GATEWAY,
        "Accepted=False VersionInUse",
        |g: Option<&Gateway>| {
            let status = g.and_then(|g| g.status.as_ref());
            condition(status, "Accepted")
                .is_some_and(|c| c.reason == "VersionInUse" && c.observed_generation == generation)
        },
    )
    .await
    .unwrap();
    let message = &condition(refused.status.as_ref(), "Accepted")
        .unwrap()
        .message;
    assert!(
        message.starts_with(
            "spec.contracts[version=v1]: version v1 may not be retired or removed yet: clients \
             called it within the last 720h: mobile (last "
        ),
        "{message}"
    );
    let after = stored_table(client, namespace, &child).await.1.digest();
    assert_eq!(after, before, "the route ConfigMap keeps its table");
    assert_eq!(proxy.get("/v1/product", "mobile-key").await.0, 200);

    // Retired anyway: 410, and the Warning.
    let annotated = json!({"gatehouse.dev/retire-in-use": "v1"});
    apply(client, namespace, &gateway(namespace, "Retired", annotated)).await;
    let gone = proxy
        .wait_for_status("/v1/product", "mobile-key", 410)
        .await;
    println!("retired anyway: 410 Gone {gone:?} after the apply");
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let warning = within("the RetiredInUse Event", async {
        loop {
            let listed = events.list(&ListParams::default()).await.unwrap();
            if let Some(event) = listed.items.into_iter().find(|e| {
                e.reason.as_deref() == Some("RetiredInUse")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(GATEWAY)
            }) {
                return event;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let note = warning.note.unwrap_or_default();
    assert!(
        note.starts_with(&format!(
            "Gateway {namespace}/{GATEWAY} version v1 retired or removed although clients called it"
        )) && note.contains("mobile (last "),
        "{note}"
    );
}
