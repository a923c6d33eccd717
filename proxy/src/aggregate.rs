//! Aggregation: routes whose action is `aggregate` (and Aggregator endpoints) answer with one
//! payload built from several upstream calls.
//!
//! This module is the seam the proxy calls; the engine that runs the plan's steps lands here
//! later. Until then every aggregate route answers `501 Not Implemented` with a problem body.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gatehouse_api::route_table::{Action, AggregatePlan};
use http::{HeaderMap, HeaderName, HeaderValue};
use pingora::connectors::http::Connector;

use crate::problem::{PROBLEM_CONTENT_TYPE, ProblemKind, problem_body};
use crate::table::PreparedRoute;
use crate::upstream::Resolver;

/// What outlives requests and an aggregation needs: a pooled upstream connector and the
/// resolver of step upstreams (`--resolve` overrides, then DNS — resolve off the hot path or
/// cache, DNS blocks).
pub struct AggregateRuntime {
    /// Pooled HTTP/1 connector for step calls (keepalive shared across requests).
    pub connector: Connector,
    /// Step upstream resolution.
    pub resolver: Arc<Resolver>,
}

/// One aggregate request, as the proxy hands it over.
pub struct AggregateRequest<'a> {
    /// The matched route; its `entry.action` is [`Action::Aggregate`].
    pub route: &'a PreparedRoute,
    /// The route's path parameter names, in pattern order.
    pub param_names: &'a [String],
    /// Their values.
    pub params: &'a [String],
    /// Request method.
    pub method: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The calling client's name, when known.
    pub client: Option<&'a str>,
    /// The request id (send it on step calls).
    pub request_id: &'a str,
    /// When the whole aggregation must be answered (the plan's `timeoutMs` from the start).
    pub deadline: Instant,
}

impl AggregateRequest<'_> {
    /// The route's plan.
    pub fn plan(&self) -> Option<&AggregatePlan> {
        match &self.route.entry.action {
            Action::Aggregate(plan) => Some(plan),
            _ => None,
        }
    }
}

/// The complete response of an aggregation.
pub struct AggregateResponse {
    /// Status code.
    pub status: u16,
    /// Headers besides `content-length` (the proxy sets it).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Bytes,
}

/// Runs an aggregation. Not implemented yet: answers 501 with a problem body.
pub async fn serve_aggregate(
    _runtime: &AggregateRuntime,
    request: AggregateRequest<'_>,
) -> AggregateResponse {
    AggregateResponse {
        status: ProblemKind::NotImplemented.status(),
        headers: vec![(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        )],
        body: Bytes::from(problem_body(
            ProblemKind::NotImplemented,
            Some(&request.route.entry.id),
            request.request_id,
        )),
    }
}
