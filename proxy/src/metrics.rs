//! Prometheus metrics of the data plane, served on the admin listener's `/metrics`.

use std::sync::{Arc, Mutex};

use crate::aggregate::metrics::AggregationMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a served request. The route's are shared with its prepared route
/// ([`RouteNames`]), so counting a request allocates only the client's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route id, or `none` when no route matched.
    pub route: Arc<String>,
    /// `2xx`, `3xx`, `4xx`, `5xx` (or `1xx`, `0xx` for a dropped connection).
    pub status_class: &'static str,
    /// Calling client's name, or `anonymous`.
    pub client: String,
    /// The Contract resource of the route (`NAMESPACE/NAME`); empty for the resource's own
    /// inline contracts and Aggregator endpoints.
    pub contract: Arc<String>,
    /// The route's contract version (`v1`); empty for an Aggregator endpoint or no route.
    pub version: Arc<String>,
}

/// A route's names as its requests are counted: made once when the table loads.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq)]
pub struct RouteNames {
    /// Its id.
    pub id: Arc<String>,
    /// `NAMESPACE/NAME` of the Contract it is of; empty for inline contracts.
    pub contract: Arc<String>,
    /// Its contract version; empty for an Aggregator endpoint.
    pub version: Arc<String>,
}

impl RouteNames {
    /// The names of the route `id` of contract version `version`: a Contract's route ids are
    /// `NAMESPACE/CONTRACT/VERSION/ROUTE`, inline ones `VERSION/ROUTE`.
    pub fn of(id: &str, version: Option<&str>) -> Self {
        let mut parts = id.splitn(3, '/');
        let contract = match (parts.next(), parts.next(), parts.next()) {
            (Some(namespace), Some(name), Some(rest)) if rest.contains('/') => {
                format!("{namespace}/{name}")
            }
            _ => String::new(),
        };
        Self {
            id: Arc::new(id.to_owned()),
            contract: Arc::new(contract),
            version: Arc::new(version.unwrap_or_default().to_owned()),
        }
    }
}

/// Labels of a per-route latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route id, or `none`.
    pub route: Arc<String>,
}

/// Labels of an upstream failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    /// Route id.
    pub route: String,
    /// Upstream service name, or empty when none could be chosen.
    pub upstream: String,
    /// `connect`, `timeout`, `failed`, `no_healthy_upstream` or `retried_status`.
    pub kind: String,
}

/// Labels of a request the gateway refused before any backend call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// Route id, or `none` when the request was refused before routing.
    pub route: String,
    /// `source_range`, `cors_origin`, `body_too_large`, `unauthorized`, `client_not_allowed`,
    /// `client_busy`, `route_busy`, `rate_limited` or `rate_limit_unavailable`.
    pub reason: String,
}

/// Labels of a global rate-limit decision Redis did not make.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FallbackLabels {
    /// `timeout`, `error`, `down` (not asked: it failed less than a second ago) or
    /// `unconfigured` (no Redis server).
    pub reason: &'static str,
}

/// Labels of a reload attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `failed`.
    pub result: String,
}

/// Labels of the loaded table's info metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// `sha256:…` of the canonical table.
    pub digest: String,
    /// Kind of the source resource.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// How a TLS handshake on the HTTPS listener ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum HandshakeOutcome {
    /// Completed.
    Done,
    /// Refused or broken: no certificate for the name, no common version or cipher, not TLS.
    Failed,
    /// Not completed within the request head timeout.
    TimedOut,
    /// The served table has no certificates (or no table is served yet).
    NoCertificates,
}

impl HandshakeOutcome {
    /// The label value: `done`, `failed`, `timed_out`, `no_certificates`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::NoCertificates => "no_certificates",
        }
    }
}

/// Labels of a TLS handshake.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandshakeLabels {
    /// How it ended: [`HandshakeOutcome::as_str`].
    pub outcome: &'static str,
}

/// Every metric of the proxy.
pub struct ProxyMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    refusals: Family<RefusalLabels, Counter>,
    fallbacks: Family<FallbackLabels, Counter>,
    table_info: Family<TableLabels, Gauge>,
    table_generation: Gauge,
    table_routes: Gauge,
    in_flight: Gauge,
    handshakes: Family<HandshakeLabels, Counter>,
    current_table: Mutex<Option<TableLabels>>,
    /// Aggregation figures: per endpoint and per step.
    pub aggregation: AggregationMetrics,
    /// What a request no route matched is counted under (`none`).
    no_route: RouteNames,
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyMetrics {
    /// Registers every metric under the `gatehouse_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests served, by route, status class and client",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from request start to the end of the response, by route",
            latency.clone(),
        );
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream attempts that failed, by route, upstream and kind",
            upstream_errors.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refused_requests",
            "Requests the gateway refused before any backend call, by route and reason",
            refusals.clone(),
        );
        let fallbacks = Family::<FallbackLabels, Counter>::default();
        registry.register(
            "rate_limit_fallbacks",
            "Global rate-limit decisions Redis did not make, where the client's onRedisFailure \
             answered instead, by reason",
            fallbacks.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "route_table_reloads",
            "Route table loads, by result (ok, failed)",
            reloads.clone(),
        );
        let table_info = Family::<TableLabels, Gauge>::default();
        registry.register(
            "route_table_info",
            "The loaded route table (value 1): its digest and source resource",
            table_info.clone(),
        );
        let table_generation = Gauge::default();
        registry.register(
            "route_table_generation",
            "Number of route tables loaded since start",
            table_generation.clone(),
        );
        let table_routes = Gauge::default();
        registry.register(
            "route_table_routes",
            "Routes in the loaded route table",
            table_routes.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Requests being served now",
            in_flight.clone(),
        );
        let handshakes = Family::<HandshakeLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the HTTPS listener, by outcome",
            handshakes.clone(),
        );
        let aggregation = AggregationMetrics::register(&mut registry);
        Self {
            registry,
            aggregation,
            requests,
            latency,
            upstream_errors,
            reloads,
            refusals,
            fallbacks,
            table_info,
            table_generation,
            table_routes,
            in_flight,
            handshakes,
            current_table: Mutex::new(None),
            no_route: RouteNames::of("none", None),
        }
    }

    /// Counts a finished request and its latency.
    pub fn request_done(
        &self,
        route: Option<&RouteNames>,
        status: u16,
        client: Option<&str>,
        seconds: f64,
    ) {
        let class = match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            5 => "5xx",
            _ => "0xx",
        };
        let route = route.unwrap_or(&self.no_route);
        self.requests
            .get_or_create(&RequestLabels {
                route: Arc::clone(&route.id),
                status_class: class,
                client: client.unwrap_or("anonymous").to_owned(),
                contract: Arc::clone(&route.contract),
                version: Arc::clone(&route.version),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: Arc::clone(&route.id),
            })
            .observe(seconds);
    }

    /// Counts a failed upstream attempt.
    pub fn upstream_error(&self, route: &str, upstream: &str, kind: &str) {
        self.upstream_errors
            .get_or_create(&UpstreamErrorLabels {
                route: route.to_owned(),
                upstream: upstream.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts a request refused before any backend call.
    pub fn refused(&self, route: &str, reason: &str) {
        self.refusals
            .get_or_create(&RefusalLabels {
                route: route.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a global rate-limit decision Redis did not make.
    pub fn rate_limit_fallback(&self, reason: &'static str) {
        self.fallbacks
            .get_or_create(&FallbackLabels { reason })
            .inc();
    }

    /// Counts a reload attempt.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads
            .get_or_create(&ReloadLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Publishes the loaded table's identity.
    pub fn table_loaded(&self, labels: TableLabels, generation: u64, routes: usize) {
        let mut current = self
            .current_table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(previous) = current.take() {
            self.table_info.remove(&previous);
        }
        self.table_info.get_or_create(&labels).set(1);
        *current = Some(labels);
        self.table_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.table_routes
            .set(i64::try_from(routes).unwrap_or(i64::MAX));
    }

    /// Counts a TLS handshake.
    pub fn handshake(&self, outcome: HandshakeOutcome) {
        self.handshakes
            .get_or_create(&HandshakeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// One more request in flight.
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// One request less in flight.
    pub fn request_finished(&self) {
        self.in_flight.dec();
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
