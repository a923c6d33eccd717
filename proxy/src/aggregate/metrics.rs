//! Aggregation metrics: per endpoint and per step latency, failures by reason.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    route: String,
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    route: String,
    step: String,
    reason: &'static str,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~32 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The aggregation metric families.
#[derive(Clone, Debug)]
pub struct AggregationMetrics {
    endpoint_seconds: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    step_seconds: Family<StepLabels, Histogram, fn() -> Histogram>,
    step_failures: Family<FailureLabels, Counter>,
}

impl Default for AggregationMetrics {
    fn default() -> Self {
        Self {
            endpoint_seconds: Family::new_with_constructor(latency_histogram),
            step_seconds: Family::new_with_constructor(latency_histogram),
            step_failures: Family::default(),
        }
    }
}

impl AggregationMetrics {
    /// Creates the families and registers them (the registry adds the `gatehouse_` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "aggregation_duration_seconds",
            "Time to answer an aggregated call, by route and outcome (complete, partial, failed, deadline)",
            metrics.endpoint_seconds.clone(),
        );
        registry.register(
            "aggregation_step_duration_seconds",
            "Time of one aggregation step's upstream call, by route and step",
            metrics.step_seconds.clone(),
        );
        registry.register(
            "aggregation_step_failures",
            "Aggregation steps that failed, by route, step and reason (connect, timeout, deadline, status, too_large, protocol, filter, skipped)",
            metrics.step_failures.clone(),
        );
        metrics
    }

    pub(crate) fn observe_endpoint(&self, route: &str, outcome: &'static str, elapsed: Duration) {
        self.endpoint_seconds
            .get_or_create(&EndpointLabels {
                route: route.to_owned(),
                outcome,
            })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn observe_step(&self, route: &str, step: &str, elapsed: Duration) {
        self.step_seconds
            .get_or_create(&StepLabels {
                route: route.to_owned(),
                step: step.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn count_failure(&self, route: &str, step: &str, reason: &'static str) {
        self.step_failures
            .get_or_create(&FailureLabels {
                route: route.to_owned(),
                step: step.to_owned(),
                reason,
            })
            .inc();
    }
}
