//! What every reconcile shares: the client, the settings, the clock, events, metrics, backoff.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use super::backoff::RetryBackoff;
use crate::metrics::Metrics;
use crate::settings::ProxySettings;

/// Where condition timestamps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// Always this instant (tests).
    Fixed(Timestamp),
}

impl Clock {
    /// The current time.
    pub fn now(self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Fixed(at) => at,
        }
    }
}

/// Shared state of the controllers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// How proxies are run.
    pub settings: ProxySettings,
    /// Condition timestamps.
    pub clock: Clock,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-object retry delays after errors.
    pub backoff: RetryBackoff,
}

impl Context {
    /// A context whose events are reported as `gatehouse-operator` (instance: the pod name
    /// from `POD_NAME`, when set).
    pub fn new(
        client: Client,
        settings: ProxySettings,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: crate::FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            clock,
            metrics,
            backoff: RetryBackoff::default(),
        }
    }
}
