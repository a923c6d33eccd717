//! replicas: the ready proxy pods of a resource, read from a reflector store of EndpointSlices
//! (no API call per reconcile), and what each one answers on its admin `/config`.
//!
//! The EndpointSlice controller copies the proxy Service's labels onto its slices, so one watch
//! with the operator's label finds every proxy's slices; `kubernetes.io/service-name` says whose.
//! Replicas are asked concurrently over plain HTTP/1.1 with a short timeout: a replica that does
//! not answer is reported as such, never waited for.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gatehouse_api::naming::ADMIN_PORT;
use gatehouse_api::usage::{USAGE_PATH, UsageReport};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, ReflectHandle, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use super::agreement::{Answer, ConfigReport};
use super::scoped;
use crate::objects::{ADMIN_PORT_NAME, MANAGED_BY_SELECTOR};

/// The label the EndpointSlice controller sets to the name of the slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// How long a replica has to answer `/config`.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// A `/config` report is a few hundred bytes; anything past this is not one.
const MAX_REPORT_BYTES: usize = 64 * 1024;
/// A `/usage` report is about 100 bytes per client and version.
const MAX_USAGE_BYTES: usize = 8 * 1024 * 1024;

/// Slice changes one subscriber may hold back before the store waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;

/// A store of the operator's EndpointSlices, `subscribers` streams of the slices it took in
/// (each yields a slice after the store holds it, so whoever it triggers reads the store as
/// changed), and the task that keeps them current (run it while the controllers run; the store
/// is ready once the first list is in).
pub fn watch_endpoint_slices(
    client: &Client,
    namespace: Option<&str>,
    subscribers: usize,
) -> (
    Store<EndpointSlice>,
    Vec<ReflectHandle<EndpointSlice>>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (store, writer) = reflector::store_shared(SUBSCRIBER_BUFFER);
    let handles = (0..subscribers)
        .filter_map(|_| writer.subscribe())
        .collect();
    let config = watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let events = watcher(scoped::<EndpointSlice>(client, namespace), config)
        .default_backoff()
        .modify(|slice| slice.managed_fields_mut().clear());
    let task = events.reflect_shared(writer).for_each(|event| async move {
        if let Err(error) = event {
            warn!(%error, "EndpointSlice watch");
        }
    });
    (store, handles, task)
}

/// Name of the Service whose endpoints `slice` lists.
pub fn service_of(slice: &EndpointSlice) -> Option<&str> {
    slice.labels().get(SERVICE_NAME_LABEL).map(String::as_str)
}

/// One ready proxy pod and where its admin port listens.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Replica {
    /// The pod's name, when the endpoint names it.
    pub pod: Option<String>,
    /// Its admin address, `host:port`.
    pub address: String,
}

impl std::fmt::Display for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pod {
            Some(pod) => write!(f, "{pod} ({})", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// The ready endpoints of Service `service` in `namespace`, once each (a pod listed by two
/// slices, e.g. its IPv4 and IPv6 addresses, is asked once, on the first address in slice
/// order). Slices of address type `FQDN` name hosts, looked up when asked; a name under
/// `localhost.` is the loopback address, as RFC 6761 has resolvers answer (the API server
/// refuses loopback IPs in EndpointSlices, so this is how a proxy running beside a test cluster
/// is listed). An endpoint is ready unless `conditions.ready` is false (unset means ready). The
/// admin port is the slices' port named `admin` (ClusterIP Services), else 9901 (the Service
/// does not expose it, but the pod listens there). Pure.
pub fn ready_replicas(
    slices: &[Arc<EndpointSlice>],
    namespace: &str,
    service: &str,
) -> Vec<Replica> {
    let mut ours: Vec<&EndpointSlice> = slices
        .iter()
        .map(AsRef::as_ref)
        .filter(|slice| slice.namespace().as_deref() == Some(namespace))
        .filter(|slice| service_of(slice) == Some(service))
        .collect();
    ours.sort_by(|a, b| {
        (&a.address_type, a.metadata.name.as_deref())
            .cmp(&(&b.address_type, b.metadata.name.as_deref()))
    });
    let mut replicas: BTreeMap<String, Replica> = BTreeMap::new();
    for slice in ours {
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(ADMIN_PORT_NAME))
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(ADMIN_PORT);
        for endpoint in &slice.endpoints {
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let Some(address) = endpoint
                .addresses
                .iter()
                .find_map(|a| admin_address(&slice.address_type, a, port))
            else {
                continue;
            };
            let pod = endpoint.target_ref.as_ref().and_then(|r| r.name.clone());
            let key = pod.clone().unwrap_or_else(|| address.clone());
            replicas.entry(key).or_insert(Replica { pod, address });
        }
    }
    replicas.into_values().collect()
}

/// `host:port` of an endpoint address of a slice of `address_type`; `None` when it is not one.
fn admin_address(address_type: &str, address: &str, port: u16) -> Option<String> {
    if address_type == "FQDN" {
        let host = address.trim_end_matches('.');
        let loopback = host == "localhost" || host.ends_with(".localhost");
        return Some(if loopback {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port).to_string()
        } else {
            format!("{host}:{port}")
        });
    }
    address
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port).to_string())
}

/// Asks proxy replicas what they serve.
#[derive(Clone, Debug)]
pub struct ReplicaClient {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl Default for ReplicaClient {
    fn default() -> Self {
        Self::new(ASK_TIMEOUT)
    }
}

impl ReplicaClient {
    /// A client that gives each replica `timeout` to answer.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { http, timeout }
    }

    /// Every replica's answer, asked all at once, in the order given.
    pub async fn ask_all(&self, replicas: &[Replica]) -> Vec<Answer> {
        futures::future::join_all(replicas.iter().map(|replica| self.ask(replica))).await
    }

    async fn ask(&self, replica: &Replica) -> Answer {
        let report = match tokio::time::timeout(self.timeout, self.config(&replica.address)).await {
            Ok(report) => report,
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        Answer {
            replica: replica.to_string(),
            report,
        }
    }

    async fn config(&self, address: &str) -> Result<ConfigReport, String> {
        self.get_json(address, "/config", MAX_REPORT_BYTES)
            .await
            .map_err(|e| e.to_string())
    }

    /// What every replica says about who called which contract version; a replica that did
    /// not answer within the timeout is left out (its calls are asked again next time), with
    /// a warning.
    pub async fn usage_all(&self, replicas: &[Replica]) -> Vec<UsageReport> {
        let asked = replicas.iter().map(|replica| async move {
            let asked = self.get_json(&replica.address, USAGE_PATH, MAX_USAGE_BYTES);
            match tokio::time::timeout(self.timeout, asked).await {
                Ok(Ok(report)) => Some(report),
                // A proxy older than usage recording: nothing to record from it.
                Ok(Err(AskError::NotFound(_))) => {
                    debug!(%replica, "usage: not recorded by this proxy");
                    None
                }
                Ok(Err(error)) => {
                    warn!(%replica, %error, "usage");
                    None
                }
                Err(_) => {
                    warn!(%replica, "usage: no answer in time");
                    None
                }
            }
        });
        futures::future::join_all(asked)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The JSON answer of `path` on the replica at `address`, of at most `limit` bytes.
    async fn get_json<T: DeserializeOwned>(
        &self,
        address: &str,
        path: &str,
        limit: usize,
    ) -> Result<T, AskError> {
        let uri: Uri = format!("http://{address}{path}")
            .parse()
            .map_err(|e| format!("bad address: {e}"))?;
        let response = self.http.get(uri).await.map_err(|e| with_causes(&e))?;
        let status = response.status();
        if status == hyper::StatusCode::NOT_FOUND {
            return Err(AskError::NotFound(path.to_owned()));
        }
        if !status.is_success() {
            return Err(format!("{path} answered {status}").into());
        }
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| format!("reading {path}: {e}"))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("{path} is not a report: {e}").into())
    }
}

/// Why a replica gave no answer to a question.
#[derive(Debug, thiserror::Error)]
enum AskError {
    /// It does not know the path (a proxy older than the question).
    #[error("{0} answered 404 Not Found")]
    NotFound(String),
    /// Anything else, in words.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for AskError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

/// What went wrong, with its causes: `cause: inner cause: …`. The client's own message
/// ("client error (Connect)") is left out when there is a cause, which says more.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let (mut message, mut cause) = match error.source() {
        Some(cause) => (cause.to_string(), cause.source()),
        None => (error.to_string(), None),
    };
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn endpoint(address: &str, pod: Option<&str>, ready: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![address.to_owned()],
            conditions: Some(EndpointConditions {
                ready,
                ..EndpointConditions::default()
            }),
            target_ref: pod.map(|name| ObjectReference {
                kind: Some("Pod".to_owned()),
                name: Some(name.to_owned()),
                ..ObjectReference::default()
            }),
            ..Endpoint::default()
        }
    }

    fn slice(
        name: &str,
        namespace: &str,
        service: &str,
        address_type: &str,
        admin_port: Option<i32>,
        endpoints: Vec<Endpoint>,
    ) -> Arc<EndpointSlice> {
        Arc::new(EndpointSlice {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some([(SERVICE_NAME_LABEL.to_owned(), service.to_owned())].into()),
                ..ObjectMeta::default()
            },
            address_type: address_type.to_owned(),
            endpoints,
            ports: Some(
                [("http", Some(8080)), ("admin", admin_port)]
                    .into_iter()
                    .filter_map(|(name, port)| {
                        port.map(|port| EndpointPort {
                            name: Some(name.to_owned()),
                            port: Some(port),
                            ..EndpointPort::default()
                        })
                    })
                    .collect(),
            ),
        })
    }

    fn addresses(replicas: &[Replica]) -> Vec<String> {
        replicas.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn fqdn_endpoints_are_asked_by_name_and_localhost_names_on_loopback() {
        let slices = [slice(
            "public-gateway-local",
            "shop",
            "public-gateway",
            "FQDN",
            Some(19901),
            vec![
                endpoint("public-gateway.localhost", None, Some(true)),
                endpoint("proxy-1.example.internal.", None, None),
                endpoint("down.example.internal", None, Some(false)),
            ],
        )];
        assert_eq!(
            addresses(&ready_replicas(&slices, "shop", "public-gateway")),
            ["127.0.0.1:19901", "proxy-1.example.internal:19901"]
        );
    }

    #[test]
    fn ready_endpoints_of_the_proxy_service_once_each() {
        let slices = [
            slice(
                "public-gateway-b",
                "shop",
                "public-gateway",
                "IPv4",
                Some(9901),
                vec![
                    endpoint("10.0.0.3", Some("pod-c"), None),
                    endpoint("10.0.0.4", Some("pod-d"), Some(false)),
                ],
            ),
            slice(
                "public-gateway-a",
                "shop",
                "public-gateway",
                "IPv4",
                Some(9901),
                vec![
                    endpoint("10.0.0.1", Some("pod-a"), Some(true)),
                    endpoint("10.0.0.2", Some("pod-b"), Some(true)),
                ],
            ),
            // The same pods by their IPv6 addresses: asked once, on IPv4.
            slice(
                "public-gateway-v6",
                "shop",
                "public-gateway",
                "IPv6",
                Some(9901),
                vec![endpoint("fd00::1", Some("pod-a"), Some(true))],
            ),
            // Somebody else's.
            slice(
                "other-gateway-a",
                "shop",
                "other-gateway",
                "IPv4",
                Some(9901),
                vec![endpoint("10.0.1.1", Some("other"), None)],
            ),
            slice(
                "public-gateway-a",
                "elsewhere",
                "public-gateway",
                "IPv4",
                Some(9901),
                vec![endpoint("10.0.2.1", Some("far"), None)],
            ),
        ];
        assert_eq!(
            addresses(&ready_replicas(&slices, "shop", "public-gateway")),
            [
                "pod-a (10.0.0.1:9901)",
                "pod-b (10.0.0.2:9901)",
                "pod-c (10.0.0.3:9901)"
            ]
        );
    }

    #[test]
    fn without_an_admin_port_the_pods_port_is_asked() {
        let slices = [slice(
            "public-gateway-a",
            "shop",
            "public-gateway",
            "IPv6",
            None,
            vec![
                endpoint("fd00::7", None, None),
                endpoint("not-an-ip", None, None),
            ],
        )];
        assert_eq!(
            addresses(&ready_replicas(&slices, "shop", "public-gateway")),
            ["[fd00::7]:9901"]
        );
    }

    #[tokio::test]
    async fn a_replica_that_does_not_answer_in_time_is_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap();
        // Accepts, reads nothing, answers nothing.
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let (garbled, answer_garbage) =
            answering(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").await;
        let client = ReplicaClient::new(Duration::from_millis(200));
        let replicas = [silent, garbled].map(|address| Replica {
            pod: None,
            address: address.to_string(),
        });
        let answers = client.ask_all(&replicas).await;
        assert_eq!(answers[0].report, Err("no answer within 200 ms".to_owned()));
        let error = answers[1].report.clone().unwrap_err();
        assert!(error.starts_with("/config is not a report: "), "{error}");
        hold.abort();
        answer_garbage.abort();
    }

    /// A server on loopback answering every request with `response`.
    async fn answering(response: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = [0; 1024];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(response).await;
            }
        });
        (address, task)
    }

    #[tokio::test]
    async fn usage_is_what_the_replicas_that_record_it_say() {
        let body =
            br#"{"calls":[{"version":"v1","client":"web","lastCall":"2026-12-07T10:00:00Z"}]}"#;
        let mut answer =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        answer.extend_from_slice(body);
        let (recording, a) = answering(answer.leak()).await;
        // A proxy older than usage recording, and one that fails.
        let (older, b) = answering(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        let (failing, c) = answering(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n").await;
        let replicas = [recording, older, failing].map(|address| Replica {
            pod: None,
            address: address.to_string(),
        });
        let reports = ReplicaClient::new(Duration::from_secs(5))
            .usage_all(&replicas)
            .await;
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].calls.len(), 1);
        assert_eq!(reports[0].calls[0].client.as_deref(), Some("web"));
        for task in [a, b, c] {
            task.abort();
        }
    }
}
