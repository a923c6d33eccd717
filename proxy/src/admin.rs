//! The admin listener: `/healthz` (alive), `/readyz` (a table is loaded and the proxy is not
//! draining), `/metrics` (Prometheus text), `/config` (digest, generation and feed of the
//! served table, and the last refusal) and `/usage` (each client's last call of each published
//! or deprecated contract version, see [`crate::usage`]) and the OpenAPI documents of those
//! versions (`/.well-known/gatehouse/openapi…`, see [`crate::contract_documents`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Serialize;

use gatehouse_api::usage::USAGE_PATH;

use crate::contract_documents::{self, DOCUMENTS_PREFIX};
use crate::metrics::ProxyMetrics;
use crate::reload::{Feed, Refused, TableStore};

/// Prometheus text exposition media type.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The admin endpoints.
pub struct AdminApp {
    store: Arc<TableStore>,
    metrics: Arc<ProxyMetrics>,
    draining: Arc<AtomicBool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigView<'a> {
    loaded: bool,
    digest: Option<&'a str>,
    generation: u64,
    routes: usize,
    source: Option<&'a gatehouse_api::route_table::TableSource>,
    /// Where the served table came from.
    feed: Option<Feed>,
    /// The newest table offered and refused, unless a later one loaded (the operator reports
    /// its error in `Programmed`).
    refused: Option<Refused>,
}

impl AdminApp {
    /// Admin endpoints over the proxy's store and metrics. `draining` turns `/readyz` to 503
    /// once a shutdown started.
    pub fn new(
        store: Arc<TableStore>,
        metrics: Arc<ProxyMetrics>,
        draining: Arc<AtomicBool>,
    ) -> Self {
        Self {
            store,
            metrics,
            draining,
        }
    }

    /// The response for `path`.
    pub fn answer(&self, path: &str) -> (StatusCode, &'static str, Vec<u8>) {
        const TEXT: &str = "text/plain; charset=utf-8";
        match path {
            "/healthz" => (StatusCode::OK, TEXT, b"ok\n".to_vec()),
            "/readyz" => {
                if self.draining.load(Ordering::Acquire) {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        TEXT,
                        b"draining\n".to_vec(),
                    )
                } else if self.store.current().is_some() {
                    (StatusCode::OK, TEXT, b"ready\n".to_vec())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        TEXT,
                        b"no route table loaded\n".to_vec(),
                    )
                }
            }
            "/metrics" => (
                StatusCode::OK,
                METRICS_CONTENT_TYPE,
                self.metrics.encode().into_bytes(),
            ),
            "/config" => {
                let table = self.store.current();
                let view = ConfigView {
                    loaded: table.is_some(),
                    digest: table.as_deref().map(|t| t.digest.as_str()),
                    generation: table.as_deref().map_or(0, |t| t.generation),
                    routes: table.as_deref().map_or(0, |t| t.routes.len()),
                    source: table.as_deref().map(|t| &t.source),
                    feed: self.store.serving_feed(),
                    refused: self.store.refused(),
                };
                json(&view)
            }
            USAGE_PATH => json(&self.store.runtime().usage.report()),
            documents if documents.starts_with(DOCUMENTS_PREFIX) => {
                let table = self.store.current();
                match table.and_then(|t| contract_documents::document(&t, documents)) {
                    Some((body, media_type)) => (StatusCode::OK, media_type, body),
                    None => (
                        StatusCode::NOT_FOUND,
                        TEXT,
                        b"no such contract document\n".to_vec(),
                    ),
                }
            }
            _ => (StatusCode::NOT_FOUND, TEXT, b"not found\n".to_vec()),
        }
    }
}

/// `value` as a JSON answer.
fn json(value: &impl Serialize) -> (StatusCode, &'static str, Vec<u8>) {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    (StatusCode::OK, "application/json", body)
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (status, content_type, body) = self.answer(session.req_header().uri.path());
        let length = body.len();
        Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, length)
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
