//! End-to-end suite against a real cluster (whatever `KUBECONFIG` points at).
//!
//! Run it with `GATEHOUSE_E2E=1 cargo test -p gatehouse-tests --test e2e -- --test-threads=1
//! --nocapture`. Without `GATEHOUSE_E2E=1` it skips (and passes), since CI has no cluster.
//!
//! It installs the CRDs, creates a fresh namespace, starts the operator binary as a child process
//! (one namespace, leader election on) holding only the chart's RBAC in that namespace (a
//! ServiceAccount token: `operator_rbac.rs`), applies the shop examples and asserts on what
//! the API server holds: objects, owner references, field ownership, status conditions (after
//! checking that the API server refuses every file of `examples/invalid/` with its message); then
//! changes a route, applies an invalid change, references a Service before it exists, puts a
//! user's Service where a Gateway's would go (never taken over: `NameConflict` until it is
//! deleted), has a Deployment refused by the API server (`ApplyFailed`), deletes a Gateway, stops
//! the operator with SIGTERM, and removes the namespace.
//!
//! The suite never waits for pods to run: the review cluster has no kubelet, so proxies stay
//! Pending and `Ready` must say so (`False`, `DeploymentUnavailable`). On a cluster whose
//! kubelets do run the proxy image, `Ready` must instead match the Deployment's availability.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing step should fail loudly

mod cluster;
mod contracts;
mod contracts_scale;
mod global_limits;
mod invalid_examples;
mod limit_access;
mod live;
mod live_tls;
mod operator_process;
mod operator_rbac;
mod scenario;
mod usage;
mod versioning;

use std::panic::AssertUnwindSafe;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::wait::conditions::is_crd_established;
use kube::{Api, Client};
use serde_json::json;

use cluster::{TEST_MANAGER, within};
use operator_process::{OperatorProcess, operator_binary, workspace};

fn enabled() -> bool {
    std::env::var("GATEHOUSE_E2E").as_deref() == Ok("1")
}

/// Applies `crds/*.yaml` server-side and waits until every CRD is established.
async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut files: Vec<_> = std::fs::read_dir(workspace().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let documents: Vec<CustomResourceDefinition> =
            serde_saphyr::from_multiple(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for crd in documents {
            let name = crd.metadata.name.clone().unwrap();
            api.patch(
                &name,
                &PatchParams::apply(TEST_MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("installing CRD {name}: {e}"));
            within(
                &format!("CRD {name} to be established"),
                await_condition(api.clone(), &name, is_crd_established()),
            )
            .await
            .unwrap();
        }
    }
}

async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "gatehouse-e2e"}}
    }))
    .unwrap();
    api.patch(
        name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&namespace),
    )
    .await
    .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
}

#[tokio::test]
async fn operator_reconciles_the_shop_on_a_real_cluster() {
    if !enabled() {
        println!("e2e skipped: set GATEHOUSE_E2E=1 and point KUBECONFIG at a cluster to run it");
        return;
    }
    let client = Client::try_default()
        .await
        .expect("GATEHOUSE_E2E=1 needs a cluster: set KUBECONFIG");
    let binary = operator_binary();
    install_crds(&client).await;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let namespace = format!("gatehouse-e2e-{stamp}-{}", std::process::id());
    create_namespace(&client, &namespace).await;
    println!("e2e namespace {namespace}");

    let scratch = std::env::temp_dir().join(format!("{namespace}-scratch"));
    let identity = operator_rbac::chart_identity(&client, &namespace, &scratch).await;
    let mut operator = OperatorProcess::start(&binary, &namespace, &identity);
    let outcome = AssertUnwindSafe(scenario::run(&client, &namespace, &mut operator))
        .catch_unwind()
        .await;
    let exit = operator.terminate();
    let released = if outcome.is_ok() {
        scenario::lease_released(&client, &namespace).await
    } else {
        true
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Err(error) = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
    {
        eprintln!("could not delete namespace {namespace}: {error}");
    }
    if let Err(panic) = outcome {
        eprintln!("operator logs: {}", operator.log.display());
        std::panic::resume_unwind(panic);
    }
    assert!(
        exit.success(),
        "the operator exits cleanly on SIGTERM: {exit}"
    );
    assert!(released, "the operator releases its Lease on shutdown");
}
