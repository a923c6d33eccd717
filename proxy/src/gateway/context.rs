//! Per-request state shared across Pingora's phases.

use std::sync::Arc;
use std::time::Instant;

use crate::metrics::ProxyMetrics;
use crate::problem::ProblemKind;
use crate::router::RouteMatch;
use crate::runtime::in_flight::Permit;
use crate::table::{PreparedRoute, SharedTable};

/// Counts a request as in flight from creation to drop, whatever path it takes.
pub struct InFlight {
    metrics: Arc<ProxyMetrics>,
    counter: Arc<std::sync::atomic::AtomicUsize>,
}

impl InFlight {
    /// Starts counting.
    pub fn start(metrics: Arc<ProxyMetrics>, counter: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        metrics.request_started();
        counter.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self { metrics, counter }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.request_finished();
        self.counter
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What one request carries from phase to phase.
pub struct RequestContext {
    /// When the request started.
    pub started: Instant,
    /// The request id (the client's `X-Request-Id`, or a generated one).
    pub request_id: String,
    /// The table the request started with; kept to the end.
    pub table: Option<SharedTable>,
    /// The matched route and its parameters.
    pub matched: Option<RouteMatch>,
    /// The calling client's name, when known.
    pub client: Option<String>,
    /// Upstream of the current attempt (index into the route's upstreams).
    pub upstream: Option<usize>,
    /// Upstreams tried so far.
    pub tried: Vec<usize>,
    /// Retries the route's policy still allows.
    pub retries_left: u32,
    /// The current attempt failed on a retryable status (kept for `error_while_proxy`).
    pub retrying_status: bool,
    /// A problem decided before Pingora's error path runs.
    pub problem: Option<ProblemKind>,
    /// Request body bytes passed on so far (counted when the route limits them).
    pub body_bytes: u64,
    /// The request's place under its client's concurrency limit, if it has one.
    pub client_permit: Option<Permit>,
    /// The request's place under its route's concurrency limit, if it has one.
    pub route_permit: Option<Permit>,
    /// Keeps the in-flight count right.
    pub _in_flight: InFlight,
}

impl RequestContext {
    /// A fresh context.
    pub fn new(in_flight: InFlight) -> Self {
        Self {
            started: Instant::now(),
            request_id: String::new(),
            table: None,
            matched: None,
            client: None,
            upstream: None,
            tried: Vec::new(),
            retries_left: 0,
            retrying_status: false,
            problem: None,
            body_bytes: 0,
            client_permit: None,
            route_permit: None,
            _in_flight: in_flight,
        }
    }

    /// The matched route.
    pub fn route(&self) -> Option<&PreparedRoute> {
        let table = self.table.as_ref()?;
        table.routes.get(self.matched.as_ref()?.route)
    }

    /// The matched route's id, or `none`.
    pub fn route_id(&self) -> &str {
        self.route().map_or("none", |r| r.entry.id.as_str())
    }

    /// The route's parameter names.
    pub fn param_names(&self) -> &[String] {
        match (&self.table, &self.matched) {
            (Some(table), Some(m)) => table.router.param_names(m.route),
            _ => &[],
        }
    }

    /// The bound parameter values.
    pub fn params(&self) -> &[String] {
        self.matched.as_ref().map_or(&[], |m| m.params.as_slice())
    }
}
