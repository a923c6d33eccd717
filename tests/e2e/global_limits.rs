//! Global rate limits on a real API server: a Gateway whose client's limit is global, its Redis
//! named in `spec.redis` with a password Secret, and a local `gatehouse-proxy` in its in-cluster
//! mode. The operator lets the proxy read the password Secret by name and writes the server into
//! the table; the proxy reads the password through the API. With a wrong password nothing is
//! admitted (the client refuses when Redis cannot decide); once the Secret is fixed, the budget
//! in Redis decides: its burst, then 429.

use gatehouse_api::crd::Gateway;
use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::route_table::RouteTable;
use gatehouse_api::table_file::from_config_map;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::Role;
use kube::{Api, Client};
use serde_json::json;

use crate::cluster::{apply, condition, proxy_kubeconfig, reports, secret, wait_for};
use crate::live::{BACKEND, Backend, LocalProxy, http, scratch_dir, table_of};
use crate::scenario::backend_service;
#[allow(dead_code)]
#[path = "../../proxy/tests/common/redis.rs"]
mod redis_server;
use redis_server::Redis;

const GATEWAY: &str = "quota";
const PASSWORD_SECRET: &str = "quota-redis";
const KEY: &str = "quota-e2e-key";

fn gateway(namespace: &str, redis_port: u16) -> Gateway {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": namespace},
        "spec": {
            "redis": {"address": format!("127.0.0.1:{redis_port}"),
                      "passwordSecretRef": {"name": PASSWORD_SECRET}, "timeout": "50ms"},
            "clients": [{"name": "acme", "apiKeys": {"secretRef": {"name": "quota-keys"}},
                         "rateLimit": {"requestsPerSecond": 1, "burst": 3, "scope": "Global",
                                       "onRedisFailure": "Refuse"}}],
            "contracts": [{"version": "v1", "routes": [
                {"name": "orders", "match": {"path": "/orders"},
                 "backend": {"service": BACKEND, "port": 8080}}]}],
            "deployment": {"networkPolicy": false},
        }
    }))
    .unwrap()
}

fn password(namespace: &str, password: &str) -> Secret {
    secret(
        namespace,
        PASSWORD_SECRET,
        None,
        json!({"password": password}),
    )
}

/// Statuses of `count` requests of acme, one after another.
async fn statuses(proxy: &LocalProxy, count: usize) -> Vec<u16> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let (status, _) = http(
            &proxy.address,
            "/v1/orders",
            &format!("x-api-key: {KEY}\r\n"),
        )
        .await
        .unwrap_or_default();
        seen.push(status);
    }
    seen
}

/// Runs the step in `namespace`.
pub async fn run(client: &Client, namespace: &str) {
    let dir = scratch_dir(namespace).join("global-limits");
    std::fs::create_dir_all(&dir).unwrap();
    let redis = Redis::start_with(&dir, Some("right-password"));
    apply(client, namespace, &backend_service(BACKEND)).await;
    apply(
        client,
        namespace,
        &secret(namespace, "quota-keys", None, json!({"key": KEY})),
    )
    .await;
    // Before its password Secret exists, the Gateway says so, naming it.
    let applied = apply(client, namespace, &gateway(namespace, redis.port)).await;
    let generation = applied.metadata.generation;
    let reported: Gateway = wait_for(
        client,
        namespace,
        GATEWAY,
        "ResolvedRefs=False for the missing Redis password Secret",
        |g: Option<&Gateway>| {
            reports(
                g.and_then(|g| g.status.as_ref()),
                generation,
                "ResolvedRefs",
                "False",
                "InvalidRedisSecretRef",
            )
        },
    )
    .await
    .expect("the Gateway");
    let message = condition(reported.status.as_ref(), "ResolvedRefs")
        .expect("ResolvedRefs")
        .message
        .clone();
    assert!(
        message.contains("Redis password Secret \"quota-redis\" is missing"),
        "{message}"
    );
    println!("a missing Redis password Secret is reported: {message}");
    apply(client, namespace, &password(namespace, "wrong-password")).await;
    let child = proxy_name(Kind::Gateway, GATEWAY);
    let config_map = table_of(client, namespace, &child, applied.metadata.generation).await;
    let table = RouteTable::from_bytes(&from_config_map(&config_map).unwrap().unwrap()).unwrap();
    let redis_entry = table.redis.expect("the table names the Redis server");
    assert_eq!(redis_entry.address, format!("127.0.0.1:{}", redis.port));
    assert_eq!(
        redis_entry.password_secret.as_deref(),
        Some(PASSWORD_SECRET)
    );
    assert_eq!(redis_entry.timeout_ms, 50);
    let role: Role = Api::namespaced(client.clone(), namespace)
        .get(&child)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&role.rules).unwrap()[1]["resourceNames"],
        json!(["quota-keys", PASSWORD_SECRET]),
        "the proxy may read the password Secret, by name"
    );

    let kubeconfig = proxy_kubeconfig(client, namespace, &child, &dir, None).await;
    let backend = Backend::start().await;
    let proxy = LocalProxy::start(
        &dir,
        "quota",
        &child,
        namespace,
        &kubeconfig,
        &[],
        &backend,
        &[],
    );
    // A wrong password: Redis cannot decide, and the client refuses then.
    proxy.wait_for_status("/v1/orders", KEY, 503).await;
    println!("a wrong Redis password: the global limit cannot be checked, 503");

    // The fixed Secret reaches the proxy through the API; the budget decides again.
    apply(client, namespace, &password(namespace, "right-password")).await;
    let took = proxy.wait_for_status("/v1/orders", KEY, 200).await;
    println!("the fixed password Secret took effect after {took:?}");
    let seen = statuses(&proxy, 6).await;
    let admitted = seen.iter().filter(|s| **s == 200).count();
    // The first admission above spent one of the burst of 3 (a second may refill one).
    assert!((2..=3).contains(&admitted), "{seen:?}");
    assert_eq!(seen.last(), Some(&429), "{seen:?}");
    let ttl: i64 = redis.query(&[
        "PTTL",
        &format!("gatehouse:rl:gateway/{namespace}/{GATEWAY}/acme"),
    ]);
    assert!(ttl > 0 && ttl <= 3_000, "PTTL {ttl}");
    println!("global limit through Redis: {seen:?}, budget key PTTL {ttl} ms");
}
