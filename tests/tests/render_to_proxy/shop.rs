//! The shop's backends on loopback: small HTTP servers that answer like the real services
//! (catalog `/items`, orders, reviews, sellers) and record every request they receive.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A request as a backend received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Headers, lower-case names, every value.
    pub headers: BTreeMap<String, Vec<String>>,
}

impl Received {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.first().map(String::as_str)
    }
}

/// How a backend answers: status and JSON body for a request.
type Answer = fn(&Received) -> (u16, Value);

/// One backend server; stops when dropped.
pub struct Backend {
    /// Its Service name in the examples.
    pub service: &'static str,
    /// Where it listens.
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    async fn start(service: &'static str, answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let record = record.clone();
                    async move {
                        let seen = Received {
                            method: request.method().to_string(),
                            target: request
                                .uri()
                                .path_and_query()
                                .map(ToString::to_string)
                                .unwrap_or_default(),
                            headers: headers_of(request.headers()),
                        };
                        // Read the body so that keepalive connections stay usable.
                        let _ = request.into_body().collect().await;
                        let (status, body) = answer(&seen);
                        record.lock().expect("not poisoned").push(seen);
                        let response = Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .header("x-powered-by", service)
                            .header("x-backend", service)
                            .body(Full::new(Bytes::from(body.to_string())))
                            .expect("a valid response");
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            service,
            address,
            received,
            task,
        }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }

    /// `--resolve SERVICE=ADDRESS` for the proxy.
    pub fn resolve_arg(&self) -> String {
        format!("{}={}", self.service, self.address)
    }
}

fn headers_of(headers: &hyper::HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        out.entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    out
}

/// The shop's Services named by the examples.
pub struct Shop {
    /// `catalog`: `/items`, `/items/{id}`.
    pub catalog: Backend,
    /// `orders`: `/orders...`.
    pub orders: Backend,
    /// `orders-v2`: the same contract under `/api/orders...`.
    pub orders_v2: Backend,
    /// `reviews`: `/reviews?product={id}`.
    pub reviews: Backend,
    /// `sellers`: `/sellers/{id}`.
    pub sellers: Backend,
}

impl Shop {
    /// Starts every backend.
    pub async fn start() -> Self {
        Self {
            catalog: Backend::start("catalog", catalog).await,
            orders: Backend::start("orders", |r| orders(r, "/orders")).await,
            orders_v2: Backend::start("orders-v2", |r| orders(r, "/api/orders")).await,
            reviews: Backend::start("reviews", reviews).await,
            sellers: Backend::start("sellers", sellers).await,
        }
    }

    /// Every backend.
    pub fn backends(&self) -> [&Backend; 5] {
        [
            &self.catalog,
            &self.orders,
            &self.orders_v2,
            &self.reviews,
            &self.sellers,
        ]
    }
}

/// The segments of a target's path (query dropped).
fn segments(target: &str) -> Vec<&str> {
    let path = target.split('?').next().unwrap_or_default();
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The catalog item `id` as the catalog serves it.
pub fn catalog_item(id: &str) -> Value {
    json!({
        "id": id,
        "title": format!("Product {id}"),
        "price": 1999,
        "images": [format!("https://img.shop.test/{id}/front.jpg"), format!("https://img.shop.test/{id}/back.jpg")],
        "sellerId": format!("seller-{id}"),
        "description": "Everything the catalog knows about the item.",
    })
}

fn catalog(request: &Received) -> (u16, Value) {
    match segments(&request.target).as_slice() {
        ["items"] => (200, json!([catalog_item("1"), catalog_item("2")])),
        ["items", id] => (200, catalog_item(id)),
        _ => (404, json!({"error": "no such catalog resource"})),
    }
}

fn orders(request: &Received, base: &str) -> (u16, Value) {
    let path = request.target.split('?').next().unwrap_or_default();
    match path.strip_prefix(base) {
        Some("" | "/") => (200, json!({"orders": [], "path": path})),
        Some(rest) if rest.starts_with('/') => (200, json!({"order": &rest[1..], "path": path})),
        _ => (404, json!({"error": "no such order resource"})),
    }
}

fn reviews(request: &Received) -> (u16, Value) {
    let product = request
        .target
        .split_once("product=")
        .map(|(_, id)| id.split('&').next().unwrap_or_default().to_owned());
    match (segments(&request.target).as_slice(), product) {
        (["reviews"], Some(id)) => (200, json!([{"product": id, "stars": 5, "text": "Great"}])),
        _ => (404, json!({"error": "reviews need ?product="})),
    }
}

fn sellers(request: &Received) -> (u16, Value) {
    match segments(&request.target).as_slice() {
        ["sellers", id] => (200, json!({"id": id, "name": format!("Seller {id}")})),
        _ => (404, json!({"error": "no such seller"})),
    }
}
