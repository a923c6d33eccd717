//! Live configuration on a real API server: a `gatehouse-proxy` process in its in-cluster mode
//! (`--config-map`), holding only the token of its own ServiceAccount — so exactly the Role the
//! operator made for it — reaches the API server through a relay the test can cut.
//!
//! It asserts that a route change is served as soon as the proxy reports the new digest, that a
//! rotated or deleted API key Secret is refused at once, that the proxy keeps serving while the
//! API cannot be reached (and that one started then serves the mounted files), that the Role
//! lets it read nothing else, that the operator's `Programmed` follows the digest the proxy
//! reports through an EndpointSlice pointing at it (`localhost`: all agree, one lags), and that
//! a route ConfigMap edited or deleted by another hand is written back at once (the operator
//! watches its children as metadata).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_api::crd::Gateway;
use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::table_file::from_config_map;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::{apply, condition, proxy_kubeconfig, reports, secret, wait_for, within};
use crate::scenario::not_programmed;

const GATEWAY: &str = "live";
const SECRET: &str = "live-keys";
pub(crate) const BACKEND: &str = "live-backend";

/// Every step of the live configuration scenario.
pub async fn run(client: &Client, namespace: &str) {
    let child = proxy_name(Kind::Gateway, GATEWAY);
    let backend = Backend::start().await;
    apply(client, namespace, &key_secret(namespace, "key-one")).await;
    apply(
        client,
        namespace,
        &crate::scenario::backend_service(BACKEND),
    )
    .await;
    let gateway = apply(client, namespace, &gateway(namespace, &["first"])).await;
    let config_map = table_of(client, namespace, &child, gateway.metadata.generation).await;
    let role: Role = Api::namespaced(client.clone(), namespace)
        .get(&child)
        .await
        .expect("the proxy's Role");
    assert_eq!(
        serde_json::to_value(&role.rules).unwrap(),
        json!([
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [child],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [SECRET],
             "verbs": ["get", "list", "watch"]},
        ]),
        "the proxy may read its ConfigMap and the Secrets its table names, nothing else"
    );

    let relay = Relay::start(&api_server()).await;
    let dir = scratch_dir(namespace);
    let kubeconfig = proxy_kubeconfig(client, namespace, &child, &dir, Some(&relay.address)).await;
    assert_least_privilege(&kubeconfig, namespace, &child).await;

    let proxy = LocalProxy::start(
        &dir,
        "first",
        &child,
        namespace,
        &kubeconfig,
        &[],
        &backend,
        &[],
    );
    let served = proxy.wait_for_status("/v1/first", "key-one", 200).await;
    println!("the local proxy serves /v1/first from the API after {served:?}");
    assert_eq!(
        proxy.config().await["feed"],
        "kubernetes",
        "the table came through the API (no file was mounted)"
    );
    assert_eq!(
        proxy.config().await["digest"],
        config_map.annotations()["gatehouse.dev/route-table-digest"].as_str()
    );

    let slice = endpoint_slice(namespace, &child, proxy.admin_port);
    apply(client, namespace, &slice).await;
    let digest =
        programmed_by_replicas(client, namespace, &gateway, "1 of 1 ready replica serves").await;
    println!("Programmed follows the local proxy's digest {digest}");

    // A route change: served once the proxy reports the new digest.
    let changed = apply(
        client,
        namespace,
        &self::gateway(namespace, &["first", "second"]),
    )
    .await;
    let accepted = Instant::now();
    let latency = proxy.wait_for_status("/v1/second", "key-one", 200).await;
    println!(
        "new route served {latency:?} after the apply returned ({:?} in all)",
        accepted.elapsed()
    );
    let new_digest =
        programmed_by_replicas(client, namespace, &changed, "1 of 1 ready replica serves").await;
    assert_ne!(new_digest, digest);
    assert_eq!(proxy.config().await["digest"], new_digest.as_str());

    // A large table travels gzipped (`routes.json.gz`): served and programmed the same way.
    let large = apply(client, namespace, &large_gateway(namespace)).await;
    let last = format!("/v1/bulk/126/{}", "x".repeat(500));
    let latency = proxy.wait_for_status(&last, "key-one", 200).await;
    println!("a table of 128 long routes (gzipped) served {latency:?} after the apply returned");
    let large_digest =
        programmed_by_replicas(client, namespace, &large, "1 of 1 ready replica serves").await;
    let stored: ConfigMap = Api::namespaced(client.clone(), namespace)
        .get(&child)
        .await
        .unwrap();
    assert!(stored.data.is_none(), "only the gzipped entry");
    let packed = &stored.binary_data.as_ref().unwrap()["routes.json.gz"].0;
    let json = from_config_map(&stored).unwrap().unwrap();
    assert!(json.len() > 64 * 1024 && packed.len() * 5 < json.len());
    assert_eq!(proxy.config().await["digest"], large_digest.as_str());
    assert_eq!(large_digest, gatehouse_api::route_table::digest_of(&json));
    route_config_map_is_kept(client, namespace, &child, &large_digest, &stored).await;
    assert_eq!(proxy.config().await["digest"], large_digest.as_str());
    assert_eq!(proxy.get(&last, "key-one").await.0, 200);

    // A replica that does not answer: Pending, then Programmed again once it does.
    proxy.signal("STOP");
    let lagging = apply(
        client,
        namespace,
        &self::gateway(namespace, &["first", "third"]),
    )
    .await;
    let pending = not_programmed(client, namespace, &lagging, "Pending").await;
    assert!(
        pending.starts_with("0 of 1 ready replica serve route table")
            && pending.contains("1 did not answer"),
        "{pending}"
    );
    proxy.signal("CONT");
    programmed_by_replicas(client, namespace, &lagging, "1 of 1 ready replica serves").await;
    proxy.wait_for_status("/v1/third", "key-one", 200).await;
    proxy.wait_for_status("/v1/second", "key-one", 404).await;

    // The API cannot be reached: the proxy keeps serving what it has.
    relay.cut();
    let before = proxy.config().await["digest"].clone();
    for _ in 0..20 {
        assert_eq!(proxy.get("/v1/third", "key-one").await.0, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(proxy.config().await["digest"], before);
    // One started while the API cannot be reached serves the mounted copy (as the kubelet
    // would have written it).
    let mounted = mount(&dir.join("mounted"), client, namespace, &child).await;
    let restarted = LocalProxy::start(
        &dir,
        "restarted",
        &child,
        namespace,
        &kubeconfig,
        &[&mounted],
        &backend,
        &[],
    );
    restarted.wait_for_status("/v1/third", "key-one", 200).await;
    let config = restarted
        .wait_for_config("its admin listener", |c| c["loaded"] == true)
        .await;
    assert_eq!(config["feed"], "files", "{config}");
    relay.restore();
    restarted
        .wait_for_config("the table from the API once it is back", |c| {
            c["feed"] == "kubernetes"
        })
        .await;
    drop(restarted);
    // Changes flow again once the first proxy's watch is back (after its backoff).
    apply(
        client,
        namespace,
        &self::gateway(namespace, &["third", "fourth"]),
    )
    .await;
    let back = proxy.wait_for_status("/v1/fourth", "key-one", 200).await;
    println!("after the outage, a change reached the first proxy in {back:?}");

    // A rotated key is refused at once; a deleted Secret revokes every key it held.
    apply(client, namespace, &key_secret(namespace, "key-two")).await;
    let rotated = proxy.wait_for_status("/v1/third", "key-one", 401).await;
    assert_eq!(proxy.get("/v1/third", "key-two").await.0, 200);
    println!("a rotated key was refused {rotated:?} after the Secret changed");
    Api::<Secret>::namespaced(client.clone(), namespace)
        .delete(SECRET, &DeleteParams::default())
        .await
        .unwrap();
    let revoked = proxy.wait_for_status("/v1/third", "key-two", 401).await;
    println!("a deleted Secret's key was refused {revoked:?} after the delete");
    assert_eq!(proxy.get("/v1/third", "").await.0, 401);

    Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .delete(&slice.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    drop(proxy);
    println!(
        "live configuration: served through the API, revoked at once, kept serving without it"
    );
}

/// The route ConfigMap once it holds the table of `generation`.
pub(crate) async fn table_of(
    client: &Client,
    namespace: &str,
    name: &str,
    generation: Option<i64>,
) -> ConfigMap {
    let wanted = generation.map(|g| format!("\"generation\":{g}"));
    wait_for(
        client,
        namespace,
        name,
        "the route ConfigMap of the live Gateway",
        move |c: Option<&ConfigMap>| {
            let json = c.and_then(from_config_map).and_then(Result::ok);
            json.zip(wanted.as_ref())
                .is_some_and(|(t, w)| String::from_utf8_lossy(&t).contains(w.as_str()))
        },
    )
    .await
    .unwrap()
}

/// Waits until the Gateway is `Programmed=True` for its generation with a message holding
/// `replicas` (e.g. `1 of 1 ready replica serves`); returns the digest it reports.
async fn programmed_by_replicas(
    client: &Client,
    namespace: &str,
    gateway: &Gateway,
    replicas: &str,
) -> String {
    let generation = gateway.metadata.generation;
    let expected = replicas.to_owned();
    let live = wait_for(
        client,
        namespace,
        GATEWAY,
        "Programmed=True from the replicas' digests",
        |g: Option<&Gateway>| {
            let status = g.and_then(|g| g.status.as_ref());
            reports(status, generation, "Programmed", "True", "Programmed")
                && condition(status, "Programmed").is_some_and(|c| c.message.contains(&expected))
        },
    )
    .await
    .unwrap();
    live.status.unwrap().route_table_digest.unwrap()
}

/// The route ConfigMap is the operator's, which watches its children's metadata: one edited by
/// another hand is written back, one deleted is made again, each with the table `digest` names.
async fn route_config_map_is_kept(
    client: &Client,
    namespace: &str,
    name: &str,
    digest: &str,
    stored: &ConfigMap,
) {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let holds = |c: Option<&ConfigMap>, uid: Option<&str>| {
        c.is_some_and(|c| {
            c.annotations()
                .get("gatehouse.dev/route-table-digest")
                .map(String::as_str)
                == Some(digest)
                && uid.is_none_or(|uid| c.uid().as_deref() != Some(uid))
        })
    };
    let forged = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "annotations": {"gatehouse.dev/route-table-digest": "sha256:forged"}},
    });
    let edited = Instant::now();
    config_maps
        .patch(
            name,
            &PatchParams::apply("e2e-intruder").force(),
            &Patch::Apply(forged),
        )
        .await
        .unwrap();
    wait_for(
        client,
        namespace,
        name,
        "the edited route ConfigMap written back",
        |c: Option<&ConfigMap>| holds(c, None),
    )
    .await;
    println!(
        "a route ConfigMap edited by hand was written back {:?} after the edit",
        edited.elapsed()
    );
    let deleted = Instant::now();
    config_maps
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    let uid = stored.uid();
    let again = wait_for(
        client,
        namespace,
        name,
        "the deleted route ConfigMap made again",
        |c: Option<&ConfigMap>| holds(c, uid.as_deref()),
    )
    .await
    .unwrap();
    assert_eq!(
        from_config_map(&again).unwrap().unwrap(),
        from_config_map(stored).unwrap().unwrap()
    );
    println!(
        "a deleted route ConfigMap was made again {:?} after the delete",
        deleted.elapsed()
    );
}

fn gateway(namespace: &str, paths: &[&str]) -> Gateway {
    let routes: Vec<Value> = paths
        .iter()
        .map(|path| {
            json!({"name": path, "match": {"path": format!("/{path}")},
                   "backend": {"service": BACKEND, "port": 8080}})
        })
        .collect();
    gateway_of(namespace, routes)
}

/// The live Gateway with `/first` and 127 routes of long paths (`/bulk/I/xxx…`): a table of
/// over 64 KiB, which the operator stores gzipped.
fn large_gateway(namespace: &str) -> Gateway {
    let long = "x".repeat(500);
    let mut routes = vec![json!({"name": "first", "match": {"path": "/first"},
                                 "backend": {"service": BACKEND, "port": 8080}})];
    routes.extend((0..127).map(|i| {
        json!({"name": format!("bulk-{i}"), "match": {"path": format!("/bulk/{i}/{long}")},
               "backend": {"service": BACKEND, "port": 8080}})
    }));
    gateway_of(namespace, routes)
}

fn gateway_of(namespace: &str, routes: Vec<Value>) -> Gateway {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": namespace},
        "spec": {
            "clients": [{"name": "web", "apiKeys": {"secretRef": {"name": SECRET}}}],
            "contracts": [{"version": "v1", "routes": routes}],
            "deployment": {"networkPolicy": false},
        }
    }))
    .unwrap()
}

fn key_secret(namespace: &str, key: &str) -> Secret {
    secret(namespace, SECRET, None, json!({"key": key}))
}

/// An EndpointSlice of the proxy Service with one ready endpoint: the local proxy. The API
/// server refuses loopback IPs in EndpointSlices, so it names the host `NAME.localhost` (address
/// type `FQDN`), which the operator resolves to 127.0.0.1 as RFC 6761 has `.localhost` names
/// resolved.
pub(crate) fn endpoint_slice(namespace: &str, service: &str, admin_port: u16) -> EndpointSlice {
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-local"), "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "app.kubernetes.io/managed-by": "gatehouse-operator",
                "endpointslice.kubernetes.io/managed-by": "gatehouse-e2e",
            },
        },
        "addressType": "FQDN",
        "endpoints": [{"addresses": [format!("{service}.localhost")], "conditions": {"ready": true}}],
        "ports": [{"name": "admin", "port": admin_port, "protocol": "TCP"}],
    }))
    .unwrap()
}

/// `host:port` of the API server the suite's kubeconfig names.
fn api_server() -> String {
    let config = kube::config::Kubeconfig::read().expect("the suite's kubeconfig");
    let server = config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .expect("a cluster server");
    server
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned()
}

/// The proxy's token may read its own ConfigMap and no other, nor list Secrets.
async fn assert_least_privilege(kubeconfig: &Path, namespace: &str, config_map: &str) {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    assert!(
        config_maps.get(config_map).await.is_ok(),
        "its own ConfigMap"
    );
    let forbidden = |result: Result<_, kube::Error>| matches!(result, Err(kube::Error::Api(status)) if status.code == 403);
    assert!(
        forbidden(config_maps.list(&Default::default()).await.map(|_| ())),
        "listing every ConfigMap is forbidden"
    );
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    assert!(
        forbidden(secrets.list(&Default::default()).await.map(|_| ())),
        "listing every Secret is forbidden"
    );
}

/// Writes the ConfigMap's entries (`routes.json`, or `routes.json.gz` for a large table) into
/// `DIR/routes` and the Secret's keys into `DIR/secrets`, as the kubelet would mount them;
/// returns `DIR/routes`, the directory the operator's Deployment passes to `--routes`.
async fn mount(dir: &Path, client: &Client, namespace: &str, name: &str) -> PathBuf {
    let config_map: ConfigMap = Api::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap();
    let routes = dir.join("routes");
    std::fs::create_dir_all(&routes).unwrap();
    std::fs::create_dir_all(dir.join("secrets").join(SECRET)).unwrap();
    for (key, text) in config_map.data.iter().flatten() {
        std::fs::write(routes.join(key), text).unwrap();
    }
    for (key, bytes) in config_map.binary_data.iter().flatten() {
        std::fs::write(routes.join(key), &bytes.0).unwrap();
    }
    std::fs::write(dir.join("secrets").join(SECRET).join("key"), "key-one").unwrap();
    routes
}

pub(crate) fn scratch_dir(namespace: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-e2e-live-{namespace}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `gatehouse-proxy` process in its in-cluster mode.
pub(crate) struct LocalProxy {
    child: Child,
    /// `127.0.0.1:PORT` of its plain listener.
    pub(crate) address: String,
    admin: String,
    pub(crate) admin_port: u16,
}

impl LocalProxy {
    /// Starts one watching `config_map`; `mounted` is the `--routes` directory ([`mount`]: its
    /// secrets beside it); `extra` are more arguments (`--listen-tls ADDR`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        dir: &Path,
        label: &str,
        config_map: &str,
        namespace: &str,
        kubeconfig: &Path,
        mounted: &[&Path],
        backend: &Backend,
        extra: &[&str],
    ) -> Self {
        let port = free_port();
        let admin_port = free_port();
        let log = std::fs::File::create(dir.join(format!("{label}.log"))).unwrap();
        let mut command = Command::new(gatehouse_tests::binaries::proxy());
        command
            .args(["--config-map", config_map, "--namespace", namespace])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin", &format!("127.0.0.1:{admin_port}")])
            .args([
                "--resolve",
                &format!("{BACKEND}=127.0.0.1:{}", backend.port),
            ])
            .args(["--log-format", "text"])
            .args(extra);
        let secrets = match mounted.first() {
            Some(routes) => {
                command.arg("--routes").arg(routes);
                routes.parent().unwrap().join("secrets")
            }
            None => dir.join("no-secrets"),
        };
        command.arg("--secrets-dir").arg(secrets);
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("gatehouse-proxy starts");
        Self {
            child,
            address: format!("127.0.0.1:{port}"),
            admin: format!("127.0.0.1:{admin_port}"),
            admin_port,
        }
    }

    /// Status and body of `GET path` with an API key (none when empty).
    pub(crate) async fn get(&self, path: &str, key: &str) -> (u16, String) {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("x-api-key: {key}\r\n")
        };
        http(&self.address, path, &key)
            .await
            .unwrap_or((0, String::new()))
    }

    /// Polls (every 5 ms) until `GET path` answers `status`; returns how long it took.
    pub(crate) async fn wait_for_status(&self, path: &str, key: &str, status: u16) -> Duration {
        let started = Instant::now();
        let mut last = (0, String::new());
        while started.elapsed() < crate::cluster::WAIT {
            last = self.get(path, key).await;
            if last.0 == status {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "GET {path} never answered {status}; the last answer: {} {}",
            last.0, last.1
        );
    }

    /// Polls `/config` until `accept` holds; returns it.
    async fn wait_for_config(&self, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
        within(what, async {
            loop {
                let config = self.config().await;
                if accept(&config) {
                    return config;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    /// The admin `/config`.
    async fn config(&self) -> Value {
        let (_, body) = http(&self.admin, "/config", "").await.unwrap_or_default();
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }

    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for LocalProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (`connection: close`): status and body.
pub(crate) async fn http(address: &str, path: &str, headers: &str) -> Option<(u16, String)> {
    let mut stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(address))
        .await
        .ok()?
        .ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {address}\r\n{headers}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

pub(crate) use gatehouse_tests::ports::free_port;

/// A loopback upstream answering every request with 200 and its path.
pub(crate) struct Backend {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0_u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{path}",
                        path.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { port, task }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP relay to the API server that the test can cut (every connection closed, none
/// accepted) and restore.
struct Relay {
    address: String,
    open: Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (open, _) = tokio::sync::watch::channel(true);
        let open = Arc::new(open);
        let target = target.to_owned();
        let state = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*state.borrow() {
                    continue; // dropped: refused while cut
                }
                let target = target.clone();
                let mut closed = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = closed.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self {
            address,
            open,
            task,
        }
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}
