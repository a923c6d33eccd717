//! Aggregation: routes whose action is `aggregate` (and Aggregator endpoints) answer with one
//! payload built from several upstream calls.
//!
//! [`plan`] compiles a route's plan when the table loads (templates, jq rules, step graph, the
//! address book entries of its upstreams, whose addresses the refresher keeps current);
//! [`engine`] runs it per request, bounded by step timeouts and one deadline; [`transport`]
//! sends step calls through a pooled keepalive connector; this module is the seam the gateway
//! calls, turning an outcome into an HTTP answer.

pub mod engine;
pub mod metrics;
pub mod plan;
pub mod transport;
pub mod values;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::problem::{PROBLEM_CONTENT_TYPE, ProblemKind, problem_body_with_detail};
use engine::{Execution, Outcome};
use metrics::AggregationMetrics;
use plan::AggregationProgram;
use transport::PooledTransport;
use values::RequestValues;

/// Header listing the optional steps that failed in a partial answer (`bestEffort`).
pub const PARTIAL_HEADER: &str = "gatehouse-partial";

/// What outlives requests: the pooled transport of step calls.
pub struct AggregateRuntime {
    /// Step calls, with keepalive connections shared across requests.
    pub transport: PooledTransport,
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

/// Runs a route's aggregation and turns the outcome into a response: the rule's JSON (with the
/// partial header when optional steps failed), or a problem body naming the failed step.
pub async fn serve_aggregate(
    runtime: &AggregateRuntime,
    metrics: &AggregationMetrics,
    route: &str,
    program: &AggregationProgram,
    request: &RequestValues,
) -> AggregateResponse {
    let outcome = Execution {
        program,
        route,
        request,
        transport: &runtime.transport,
        metrics,
    }
    .run()
    .await;
    match outcome {
        Outcome::Answer { body, partial } => {
            let mut headers = vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )];
            if !partial.is_empty() {
                let failed: Vec<&str> = partial.iter().map(|e| e.step.as_str()).collect();
                if let Ok(value) = HeaderValue::from_str(&failed.join(", ")) {
                    headers.push((HeaderName::from_static(PARTIAL_HEADER), value));
                }
            }
            AggregateResponse {
                status: 200,
                headers,
                body: Bytes::from(body.to_string()),
            }
        }
        Outcome::Failed {
            status,
            step,
            detail,
        } => {
            let kind = if status == 504 {
                ProblemKind::UpstreamTimeout
            } else {
                ProblemKind::UpstreamFailed
            };
            let body = problem_body_with_detail(kind, &detail, Some(route), &request.request_id);
            let mut problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if let (Some(step), Some(object)) = (step, problem.as_object_mut()) {
                object.insert("step".to_owned(), step.into());
            }
            AggregateResponse {
                status,
                headers: vec![(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
                )],
                body: Bytes::from(problem.to_string()),
            }
        }
    }
}
