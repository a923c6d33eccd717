//! Proxy pods as the operator sees them: real HTTP servers on 127.0.0.1 (random ports) that
//! answer `/config` and `/usage` with whatever reports the test sets, and the EndpointSlices
//! that list them.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One proxy pod's admin port.
pub struct FakePod {
    pub name: String,
    pub address: SocketAddr,
    report: Arc<Mutex<Value>>,
    /// From the `n`th question on (counting all), the pod answers this report instead.
    later: Arc<Mutex<Option<(usize, Value)>>>,
    asked: Arc<AtomicUsize>,
    /// What `/usage` answers.
    usage: Arc<Mutex<Value>>,
    server: JoinHandle<()>,
}

/// A `/config` report as the proxy writes it, serving `digest`.
pub fn report(digest: &str) -> Value {
    json!({
        "loaded": true,
        "digest": digest,
        "generation": 2,
        "routes": 6,
        "source": {"kind": "Gateway", "namespace": "shop", "name": "public", "generation": 1},
        "feed": "kubernetes",
        "refused": null,
    })
}

/// A report serving `serves` after refusing `refused` with `error`.
pub fn refusing(serves: &str, refused: &str, error: &str) -> Value {
    let mut report = report(serves);
    report["refused"] = json!({"digest": refused, "error": error});
    report
}

impl FakePod {
    /// A pod answering `report` on `GET /config`, no calls on `/usage` (404 elsewhere).
    pub async fn start(name: &str, report: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let report = Arc::new(Mutex::new(report));
        let asked = Arc::new(AtomicUsize::new(0));
        let later: Arc<Mutex<Option<(usize, Value)>>> = Arc::default();
        let usage = Arc::new(Mutex::new(json!({"calls": []})));
        let (shared, counter, switch) = (report.clone(), asked.clone(), later.clone());
        let calls = usage.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (report, asked, later) = (shared.clone(), counter.clone(), switch.clone());
                let calls = calls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let response = if request.uri().path() == "/usage" {
                            let body = serde_json::to_vec(&*calls.lock().unwrap()).unwrap();
                            Response::new(Full::new(Bytes::from(body)))
                        } else if request.uri().path() == "/config" {
                            let n = asked.fetch_add(1, Ordering::SeqCst) + 1;
                            let mut report = report.lock().unwrap();
                            let mut later = later.lock().unwrap();
                            if later.as_ref().is_some_and(|(from, _)| n >= *from) {
                                *report = later.take().unwrap().1;
                            }
                            let body = serde_json::to_vec(&*report).unwrap();
                            Response::new(Full::new(Bytes::from(body)))
                        } else {
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = StatusCode::NOT_FOUND;
                            response
                        };
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            name: name.to_owned(),
            address,
            report,
            later,
            asked,
            usage,
            server,
        }
    }

    /// From now on `/usage` answers `report`.
    pub fn answer_usage(&self, report: Value) {
        *self.usage.lock().unwrap() = report;
    }

    /// From now on the pod answers `report`.
    pub fn answer(&self, report: Value) {
        *self.report.lock().unwrap() = report;
    }

    /// From the `n`th question on (counting those already asked), the pod answers `report`:
    /// a replica catching up while the operator asks.
    pub fn answer_from(&self, n: usize, report: Value) {
        *self.later.lock().unwrap() = Some((n, report));
    }

    /// How many times `/config` was asked.
    pub fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl Drop for FakePod {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An address nothing listens on.
pub async fn closed_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The EndpointSlice the EndpointSlice controller would make for one pod of Service `service`
/// (each pod gets its own slice: they all listen on 127.0.0.1, on different ports).
pub fn endpoint_slice(
    namespace: &str,
    service: &str,
    pod: &str,
    address: SocketAddr,
    ready: Option<bool>,
) -> EndpointSlice {
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-{pod}"),
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "app.kubernetes.io/managed-by": "gatehouse-operator",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [address.ip().to_string()],
            "conditions": {"ready": ready, "serving": ready, "terminating": false},
            "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
        }],
        "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP"},
            {"name": "admin", "port": address.port(), "protocol": "TCP"},
        ],
    }))
    .unwrap()
}
