//! HTTPS on a real API server: a Gateway with an HTTPS listener and a redirecting plain one,
//! its `kubernetes.io/tls` Secret, and a local `gatehouse-proxy` in its in-cluster mode (its own
//! ServiceAccount's token only). The operator's Service, Deployment and Role carry the
//! listeners; the proxy serves the Secret's certificate through the API, picks up a renewed
//! Secret at the next handshake, and keeps the last good certificate when a Secret goes bad.
//! Then partners recognised by client certificates: their CA Secret reaches the proxy through
//! the API, and a CA Secret that goes bad is reported and vouches for nobody. Last, a backend
//! behind its own TLS: nothing reaches it until its CA Secret exists, then one pooled
//! connection carries the requests.

use std::time::{Duration, Instant};

use gatehouse_api::crd::Gateway;
use gatehouse_api::naming::{Kind, proxy_name};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::DeleteParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::{WAIT, apply, condition, proxy_kubeconfig, secret, wait_exists, wait_for};
use crate::live::{Backend, LocalProxy, free_port, http, scratch_dir, table_of};
#[allow(dead_code)]
#[path = "../../proxy/tests/common/tls.rs"]
mod tls;
use tls::{Leaf, TestCa, handshake, https_get, presented};
use tokio_rustls::TlsConnector;

const GATEWAY: &str = "secure";
const SECRET: &str = "secure-tls";
const CA_SECRET: &str = "partners-ca";
const HOST: &str = "secure.shop.test";
const LEDGER: &str = "ledger";
const LEDGER_CA: &str = "ledger-ca";

/// Every step of the HTTPS scenario.
pub async fn run(client: &Client, namespace: &str) {
    let child = proxy_name(Kind::Gateway, GATEWAY);
    let ca = TestCa::new();
    let first = ca.leaf(&[HOST]);
    apply(
        client,
        namespace,
        &tls_secret(namespace, &first.cert_pem, &first.key_pem),
    )
    .await;
    let applied = apply(client, namespace, &gateway(namespace, Step::Https)).await;
    table_of(client, namespace, &child, applied.metadata.generation).await;

    // The table comes first; the Service and Deployment are applied after it.
    let service: Service = wait_exists(client, namespace, &child).await;
    let ports: Vec<Value> = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| json!([p.name, p.port, p.target_port]))
        .collect();
    assert_eq!(
        ports,
        [
            json!(["http", 80, 8080]),
            json!(["https", 443, 8443]),
            json!(["admin", 9901, 9901])
        ],
        "the Service exposes both listeners"
    );
    let deployment: Deployment = wait_exists(client, namespace, &child).await;
    let args = serde_json::to_value(&deployment).unwrap()["spec"]["template"]["spec"]["containers"]
        [0]["args"]
        .clone();
    assert!(
        args.to_string()
            .contains("\"--listen-tls\",\"0.0.0.0:8443\""),
        "{args}"
    );
    assert_eq!(
        readable_secrets(client, namespace, &child).await,
        json!([SECRET]),
        "the proxy may read its certificate Secret, by name"
    );

    let dir = scratch_dir(namespace).join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = proxy_kubeconfig(client, namespace, &child, &dir, None).await;
    let backend = Backend::start().await;
    let ledger_ca = TestCa::new();
    let ledger_name = format!("{LEDGER}.{namespace}.svc.cluster.local");
    let ledger = TlsBackend::start(&ledger_ca.leaf(&[&ledger_name])).await;
    let resolve_ledger = format!("{LEDGER}=127.0.0.1:{}", ledger.port);
    let tls_address = format!("127.0.0.1:{}", free_port());
    let proxy = LocalProxy::start(
        &dir,
        "secure",
        &child,
        namespace,
        &kubeconfig,
        &[],
        &backend,
        &["--listen-tls", &tls_address, "--resolve", &resolve_ledger],
    );
    let address = tls_address.parse().unwrap();
    let served = wait_presented(&ca, address, &first).await;
    println!("the local proxy presents the Secret's certificate after {served:?}");
    let (status, body, _) = https_get(&ca.http1_client(), address, HOST, "/v1/hello")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "hello over TLS"));
    let (status, _) = http(&proxy.address, "/v1/hello?x=1", "").await.unwrap();
    assert_eq!(status, 308, "plain HTTP only redirects");

    // Renewal (as cert-manager does it: the same Secret, new data): the next handshake gets it.
    let renewed = ca.leaf(&[HOST]);
    apply(
        client,
        namespace,
        &tls_secret(namespace, &renewed.cert_pem, &renewed.key_pem),
    )
    .await;
    let rotated = wait_presented(&ca, address, &renewed).await;
    println!("a renewed certificate was served {rotated:?} after the Secret changed");

    // A Secret whose key is not its certificate's: the last good certificate keeps serving.
    let stranger = ca.leaf(&[HOST]);
    apply(
        client,
        namespace,
        &tls_secret(namespace, &renewed.cert_pem, &stranger.key_pem),
    )
    .await;
    let reported = resolved_refs(client, namespace, "InvalidCertificateRef").await;
    assert!(
        reported.contains(&format!(
            "TLS Secret \"{SECRET}\": the private key in tls.key does not match"
        )) && !reported.contains("BEGIN"),
        "{reported}"
    );
    println!("the broken Secret is reported: {reported}");
    let stream = handshake(&ca.http1_client(), address, HOST).await.unwrap();
    assert!(
        presented(&stream) == renewed.der,
        "the last good certificate"
    );
    proxy.wait_for_status("/v1/hello", "", 308).await;
    apply(
        client,
        namespace,
        &tls_secret(namespace, &renewed.cert_pem, &renewed.key_pem),
    )
    .await;
    resolved_refs(client, namespace, "ResolvedRefs").await;

    // Partners recognised by client certificates; their CA Secret comes through the API.
    let partners = TestCa::new();
    apply(client, namespace, &ca_secret(namespace, &partners.pem())).await;
    let with_partners = apply(client, namespace, &gateway(namespace, Step::Partners)).await;
    table_of(client, namespace, &child, with_partners.metadata.generation).await;
    let acme = partners.client_leaf("acme", &["acme.partners.test"], &[]);
    let presenting = ca.client_presenting(&acme, &[b"http/1.1"]);
    // Once the table with the partner serves, a caller without certificate or key gets 401 and
    // the partner's certificate is recognised.
    let served = wait_status(&ca.http1_client(), address, "/v1/hello", 401).await;
    let recognised = wait_status(&presenting, address, "/v1/hello", 200).await;
    println!(
        "the partner table refused anonymous callers {served:?} after the table was written; \
         the partner's certificate was recognised {recognised:?} later"
    );
    // A CA Secret gone bad: reported by the operator, and it vouches for nobody at once.
    apply(
        client,
        namespace,
        &ca_secret(namespace, "not a certificate"),
    )
    .await;
    let revoked = wait_status(&presenting, address, "/v1/hello", 401).await;
    println!("a broken CA Secret stopped recognising its partner {revoked:?} after it changed");
    let reported = resolved_refs(client, namespace, "InvalidCertificateRef").await;
    assert!(
        reported.contains(&format!(
            "CA Secret \"{CA_SECRET}\": ca.crt holds no usable PEM certificate"
        )) && reported.contains("refused with 401"),
        "{reported}"
    );
    assert_eq!(
        readable_secrets(client, namespace, &child).await,
        json!([CA_SECRET, SECRET]),
        "the proxy may read the CA Secret too, by name"
    );

    // A backend behind its own TLS, its CA Secret not there yet: nothing is sent to it.
    apply(client, namespace, &crate::scenario::backend_service(LEDGER)).await;
    let with_ledger = apply(client, namespace, &gateway(namespace, Step::TlsBackend)).await;
    table_of(client, namespace, &child, with_ledger.metadata.generation).await;
    let anonymous = ca.http1_client();
    wait_status(&anonymous, address, "/v1/ledger/entries", 502).await;
    let reported = resolved_refs(client, namespace, "InvalidCertificateRef").await;
    assert!(
        reported.contains(&format!("CA Secret \"{LEDGER_CA}\" is missing"))
            && reported.contains("fail with 502"),
        "{reported}"
    );
    assert_eq!(
        ledger.requests(),
        0,
        "no request without a verified backend"
    );
    apply(
        client,
        namespace,
        &secret(
            namespace,
            LEDGER_CA,
            None,
            json!({"ca.crt": ledger_ca.pem()}),
        ),
    )
    .await;
    let verified = wait_status(&anonymous, address, "/v1/ledger/entries", 200).await;
    println!("the backend's CA Secret reached the proxy {verified:?} after it was created");
    resolved_refs(client, namespace, "ResolvedRefs").await;
    for n in 0..10 {
        let path = format!("/v1/ledger/entries/{n}");
        let (status, body, _) = https_get(&anonymous, address, HOST, &path).await.unwrap();
        assert_eq!((status, body), (200, format!("ledger {}", &path[3..])));
    }
    assert_eq!(
        (ledger.handshakes(), ledger.server_names()),
        (1, vec![ledger_name.clone()]),
        "one pooled TLS connection, named by SNI, for every request"
    );
    assert_eq!(
        readable_secrets(client, namespace, &child).await,
        json!([LEDGER_CA, SECRET]),
        "the proxy may read the backend's CA Secret, by name"
    );

    Api::<Gateway>::namespaced(client.clone(), namespace)
        .delete(GATEWAY, &DeleteParams::default())
        .await
        .unwrap();
    drop(proxy);
    println!("HTTPS: certificates from the API, renewed without a restart, bad ones refused");
}

/// The Secrets the proxy's Role lets it read.
async fn readable_secrets(client: &Client, namespace: &str, role: &str) -> Value {
    let role: Role = Api::namespaced(client.clone(), namespace)
        .get(role)
        .await
        .unwrap();
    serde_json::to_value(&role.rules).unwrap()[1]["resourceNames"].clone()
}

/// Waits until the Gateway's `ResolvedRefs` has `reason`; returns its message.
async fn resolved_refs(client: &Client, namespace: &str, reason: &str) -> String {
    let gateway = wait_for(
        client,
        namespace,
        GATEWAY,
        "the Gateway's ResolvedRefs",
        move |g: Option<&Gateway>| {
            condition(g.and_then(|g| g.status.as_ref()), "ResolvedRefs")
                .is_some_and(|c| c.reason == reason)
        },
    )
    .await
    .unwrap();
    condition(gateway.status.as_ref(), "ResolvedRefs")
        .unwrap()
        .message
        .clone()
}

/// Polls new handshakes until `leaf` is presented; returns how long it took.
async fn wait_presented(ca: &TestCa, address: std::net::SocketAddr, leaf: &Leaf) -> Duration {
    let started = Instant::now();
    let client = ca.http1_client();
    while started.elapsed() < WAIT {
        if let Ok(stream) = handshake(&client, address, HOST).await
            && presented(&stream) == leaf.der
        {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the proxy never presented the expected certificate");
}

/// Polls `GET path` on new connections of `connector` until it answers `status`; returns how
/// long it took.
async fn wait_status(
    connector: &TlsConnector,
    address: std::net::SocketAddr,
    path: &str,
    status: u16,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if let Ok((got, _, _)) = https_get(connector, address, HOST, path).await
            && got == status
        {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the proxy never answered {status}");
}

/// What the Gateway has, step by step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The HTTPS listener.
    Https,
    /// And a client recognised by certificates of the CA Secret.
    Partners,
    /// The HTTPS listener and a route to a backend over TLS (no clients: anyone may call).
    TlsBackend,
}

/// The Gateway at `step`.
fn gateway(namespace: &str, step: Step) -> Gateway {
    let clients = if step == Step::Partners {
        json!([{"name": "acme", "clientCertificate": {
            "caSecretRef": {"name": CA_SECRET}, "names": ["acme.partners.test"]}}])
    } else {
        json!([])
    };
    let mut routes = vec![json!({"name": "hello", "match": {"path": "/hello"},
        "respond": {"body": "hello over TLS"}})];
    if step == Step::TlsBackend {
        routes.push(
            json!({"name": "ledger", "match": {"path": "/ledger", "pathType": "Prefix"},
            "backend": {"service": LEDGER, "port": 8443,
                "tls": {"caSecretRef": {"name": LEDGER_CA}}}}),
        );
    }
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": namespace},
        "spec": {
            "clients": clients,
            "listeners": {
                "https": {"certificates": [{"secretName": SECRET, "hosts": [HOST]}]},
                "http": {"mode": "RedirectToHTTPS"},
            },
            "contracts": [{"version": "v1", "routes": routes}],
            "deployment": {"networkPolicy": false},
        }
    }))
    .unwrap()
}

fn tls_secret(namespace: &str, certificate: &str, key: &str) -> Secret {
    let data = json!({"tls.crt": certificate, "tls.key": key});
    secret(namespace, SECRET, Some("kubernetes.io/tls"), data)
}

fn ca_secret(namespace: &str, certificates: &str) -> Secret {
    secret(namespace, CA_SECRET, None, json!({"ca.crt": certificates}))
}

/// A loopback backend behind TLS (HTTP/1.1 with keep-alive), answering `ledger PATH`; counts
/// its handshakes and requests and keeps the server names asked for.
struct TlsBackend {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<(Vec<String>, usize)>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsBackend {
    async fn start(leaf: &Leaf) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), 0)));
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, recorded) = (acceptor.clone(), recorded.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let name = tls.get_ref().1.server_name().unwrap_or("").to_owned();
                    recorded.lock().unwrap().0.push(name);
                    let mut head = Vec::new();
                    let mut buffer = [0_u8; 4096];
                    loop {
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tls.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buffer[..n]),
                            }
                        }
                        let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        let text = String::from_utf8_lossy(&head[..end]).into_owned();
                        head.drain(..end);
                        recorded.lock().unwrap().1 += 1;
                        let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                        let body = format!("ledger {path}");
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if tls.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, seen, task }
    }

    fn handshakes(&self) -> usize {
        self.seen.lock().unwrap().0.len()
    }

    fn server_names(&self) -> Vec<String> {
        self.seen.lock().unwrap().0.clone()
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().1
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
