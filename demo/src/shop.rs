//! The demo shop's backends — catalog, reviews, sellers, orders — as small HTTP servers on
//! loopback, answering fixed JSON like real services would.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A demo backend: its Service name in the quickstart resources and how it answers.
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    /// Service name, as the resources in `examples/quickstart/` write it.
    pub service: &'static str,
    answer: fn(&str, &str, &str) -> (StatusCode, Value),
}

/// Every backend of the shop.
pub const BACKENDS: [Backend; 4] = [
    Backend {
        service: "catalog",
        answer: catalog,
    },
    Backend {
        service: "reviews",
        answer: reviews,
    },
    Backend {
        service: "sellers",
        answer: sellers,
    },
    Backend {
        service: "orders",
        answer: orders,
    },
];

fn product(id: &str) -> Option<Value> {
    let (title, price, seller) = match id {
        "1" => ("Desk lamp", 39.5, "s-7"),
        "2" => ("Reading chair", 249.0, "s-3"),
        "42" => ("Walnut bookshelf", 189.0, "s-7"),
        _ => return None,
    };
    Some(json!({
        "id": id, "title": title, "price": price, "currency": "EUR", "sellerId": seller,
        "stock": 12, "images": [format!("https://img.example/{id}/1.jpg"), format!("https://img.example/{id}/2.jpg")],
        "description": "Solid wood, made to last. Ships in 2 days.", "warehouse": "ams-2",
    }))
}

fn catalog(_method: &str, path: &str, _query: &str) -> (StatusCode, Value) {
    match path.strip_prefix("/items") {
        Some("" | "/") => (
            StatusCode::OK,
            json!(
                ["1", "2", "42"]
                    .iter()
                    .filter_map(|id| product(id))
                    .collect::<Vec<_>>()
            ),
        ),
        Some(rest) => match product(rest.trim_start_matches('/')) {
            Some(item) => (StatusCode::OK, item),
            None => (StatusCode::NOT_FOUND, json!({"error": "no such item"})),
        },
        None => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

fn reviews(_method: &str, path: &str, query: &str) -> (StatusCode, Value) {
    let product = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("product="))
        .unwrap_or_default();
    match (path, product) {
        ("/reviews", "42") => (
            StatusCode::OK,
            json!([{"stars": 5, "text": "Sturdy and beautiful."}, {"stars": 4, "text": "Took an hour to assemble."}]),
        ),
        ("/reviews", _) => (StatusCode::OK, json!([])),
        _ => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

fn sellers(_method: &str, path: &str, _query: &str) -> (StatusCode, Value) {
    match path {
        "/sellers/s-7" => (
            StatusCode::OK,
            json!({"id": "s-7", "name": "Oak & Iron", "rating": 4.8}),
        ),
        "/sellers/s-3" => (
            StatusCode::OK,
            json!({"id": "s-3", "name": "Nordic Seats", "rating": 4.5}),
        ),
        _ => (StatusCode::NOT_FOUND, json!({"error": "no such seller"})),
    }
}

fn orders(method: &str, path: &str, _query: &str) -> (StatusCode, Value) {
    match (method, path) {
        ("GET", "/orders") => (
            StatusCode::OK,
            json!([{"id": "o-1001", "status": "shipped", "items": ["42"]}]),
        ),
        ("POST", "/orders") => (
            StatusCode::CREATED,
            json!({"id": "o-1002", "status": "received"}),
        ),
        _ => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

async fn handle(
    backend: Backend,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let (status, body) = (backend.answer)(request.method().as_str(), &path, &query);
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        "x-served-by",
        hyper::header::HeaderValue::from_static(backend.service),
    );
    Ok(response)
}

/// Starts a backend on an ephemeral loopback port and returns its address.
pub async fn start(backend: Backend) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(backend, request));
                // A client that goes away mid-request is not the demo's concern.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}
