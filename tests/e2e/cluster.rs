//! Talking to the cluster under test: apply, read, and wait on watch events (never on sleeps).

use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use gatehouse_api::crd::ProxyStatus;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{Condition as WaitCondition, await_condition};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The field manager of everything the suite itself applies (never the operator's).
pub const TEST_MANAGER: &str = "gatehouse-e2e";
/// How long any one wait may take.
pub const WAIT: Duration = Duration::from_secs(90);

/// Server-side applies `object` as the test.
pub async fn apply<K>(client: &Client, namespace: &str, object: &K) -> K
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.meta().name.clone().expect("a name");
    api.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {} {name}: {e}", K::kind(&())))
}

/// A namespaced kind the suite watches.
pub trait Watched:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Send
    + DeserializeOwned
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Send
        + DeserializeOwned
        + 'static
{
}

/// Waits (on watch events) until `condition` holds for the object `name`; returns it.
pub async fn wait_for<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    what: &str,
    condition: impl WaitCondition<K>,
) -> Option<K>
where
    K: Watched,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    within(what, await_condition(api, name, condition))
        .await
        .unwrap_or_else(|e| panic!("watching {} {name}: {e}", K::kind(&())))
}

/// Waits (on watch events) until the object `name` exists; returns it.
pub async fn wait_exists<K: Watched>(client: &Client, namespace: &str, name: &str) -> K {
    let what = format!("the {} {name}", K::kind(&()));
    wait_for(client, namespace, name, &what, |o: Option<&K>| o.is_some())
        .await
        .expect("it exists")
}

/// Runs `future` with the suite's timeout, failing the test with `what` when it runs out.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

/// A condition of a status.
pub fn condition<'a>(status: Option<&'a ProxyStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// True when the status describes `generation` and the condition has this status and reason.
pub fn reports(
    status: Option<&ProxyStatus>,
    generation: Option<i64>,
    type_: &str,
    expected: &str,
    reason: &str,
) -> bool {
    status.is_some_and(|s| s.observed_generation == generation)
        && condition(status, type_).is_some_and(|c| {
            c.status == expected && c.reason == reason && c.observed_generation == generation
        })
}

/// A token of the ServiceAccount `account` (an hour long).
pub async fn service_account_token(client: &Client, namespace: &str, account: &str) -> String {
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        }))
        .unwrap();
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(account, &kube::api::PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("a token of ServiceAccount {account}: {e}"))
        .status
        .expect("a token")
        .token
}

/// Writes a kubeconfig at `path` that reaches the suite's API server (or `address`, a relay to
/// it) with `token` only.
pub fn write_kubeconfig(path: &Path, token: &str, address: Option<&str>, namespace: &str) {
    let suite = kube::config::Kubeconfig::read().expect("the suite's kubeconfig");
    let cluster = suite.clusters[0].cluster.clone().expect("a cluster");
    let server = match address {
        Some(address) => format!("https://{address}"),
        None => cluster.server.clone().expect("a server"),
    };
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {
            "server": server,
            "certificate-authority": cluster.certificate_authority,
            "certificate-authority-data": cluster.certificate_authority_data,
            "tls-server-name": cluster.tls_server_name,
        }}],
        "users": [{"name": "e2e", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e", "namespace": namespace}}],
        "current-context": "e2e",
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// Writes `dir/kubeconfig` for a local proxy of `child`: its own ServiceAccount's token only,
/// reaching the API server (or `address`, a relay to it). Returns the file.
pub async fn proxy_kubeconfig(
    client: &Client,
    namespace: &str,
    child: &str,
    dir: &Path,
    address: Option<&str>,
) -> std::path::PathBuf {
    let kubeconfig = dir.join("kubeconfig");
    let token = service_account_token(client, namespace, child).await;
    write_kubeconfig(&kubeconfig, &token, address, namespace);
    kubeconfig
}

/// True when the route ConfigMap holds the table of `generation` and `Programmed` says what the
/// replicas serve: `True` once every ready replica serves it, or — with no ready replica, as on a
/// cluster without kubelets — `False`/`Pending`, "no ready replica serves it yet".
pub fn table_applied(status: Option<&ProxyStatus>, generation: Option<i64>) -> bool {
    reports(status, generation, "Programmed", "True", "Programmed")
        || (reports(status, generation, "Programmed", "False", "Pending")
            && condition(status, "Programmed")
                .is_some_and(|c| c.message.contains("no ready replica serves it yet")))
}

/// Secret `name` of `type_` (Opaque when `None`) with `string_data` (key → value).
pub fn secret(
    namespace: &str,
    name: &str,
    type_: Option<&str>,
    string_data: serde_json::Value,
) -> k8s_openapi::api::core::v1::Secret {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": type_.unwrap_or("Opaque"),
        "metadata": {"name": name, "namespace": namespace},
        "stringData": string_data,
    }))
    .unwrap()
}

/// The route ConfigMap `name` (a proxy's, e.g. `public-gateway`) and the table it holds.
pub async fn stored_table(
    client: &Client,
    namespace: &str,
    name: &str,
) -> (
    k8s_openapi::api::core::v1::ConfigMap,
    gatehouse_api::route_table::RouteTable,
) {
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    let config_map = config_maps
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("the route ConfigMap {name}: {e}"));
    let json = gatehouse_api::table_file::from_config_map(&config_map)
        .expect("a table")
        .expect("it unpacks");
    let table = gatehouse_api::route_table::RouteTable::from_bytes(&json).expect("a valid table");
    (config_map, table)
}

/// What `kubectl get` prints for the object at `path` (e.g.
/// `/apis/gatehouse.dev/v1alpha1/namespaces/shop/contracts/orders`): the API server's Table
/// rendering of its printer columns, as (column name, cell) pairs.
pub async fn printed_columns(client: &Client, path: &str) -> Vec<(String, serde_json::Value)> {
    let request = hyper::Request::get(path)
        .header(
            "Accept",
            "application/json;as=Table;g=meta.k8s.io;v=v1,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let table: serde_json::Value = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("the Table of {path}: {e}"));
    let names = table["columnDefinitions"]
        .as_array()
        .expect("column definitions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned());
    let cells = table["rows"][0]["cells"]
        .as_array()
        .expect("one row")
        .clone();
    names.zip(cells).collect()
}
