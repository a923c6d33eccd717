//! How a gateway's proxy runs: replicas or autoscaling, resources, disruption budget, Service.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// Replicas used when neither `replicas` nor `autoscaling` is set: two, so that one node
/// going away never takes the gateway down.
pub const DEFAULT_REPLICAS: i32 = 2;

/// Horizontal autoscaling of the proxy Deployment (an `autoscaling/v2` HorizontalPodAutoscaler).
/// With neither target set, it aims for 70% CPU; with both, it follows whichever asks for more
/// pods.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas"))]
pub struct Autoscaling {
    /// Fewest replicas. Defaults to 2.
    #[serde(default = "default_min_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most replicas.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Average CPU use, in percent of the requested CPU, that the autoscaler aims for.
    #[serde(rename = "targetCPUUtilizationPercentage")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: Option<i32>,
    /// Requests per second per pod that the autoscaler aims for. Uses the per-pod custom metric
    /// `gatehouse_requests_per_second`, which a metrics adapter (e.g. prometheus-adapter) must
    /// derive from the proxy's `gatehouse_requests_total`; see the operator's README.
    #[schemars(range(min = 1, max = 1000000))]
    pub target_requests_per_second: Option<i32>,
}

/// CPU target used when an autoscaler has no target set.
pub const DEFAULT_CPU_TARGET: i32 = 70;

fn default_min_replicas() -> i32 {
    DEFAULT_REPLICAS
}

/// How many proxy pods a voluntary disruption (node drain, upgrade) may take down at once.
/// Set at most one of the two fields; with neither, `maxUnavailable: 1` is used.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.minAvailable) && has(self.maxUnavailable))").message("set minAvailable or maxUnavailable, not both"))]
pub struct DisruptionBudget {
    /// Pods that must stay available: a number (0 or more) or a percentage (`0%` to `100%`).
    #[serde(default)]
    #[schemars(schema_with = "pods_or_percent")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be unavailable: a number (0 or more) or a percentage (`0%` to `100%`).
    #[serde(default)]
    #[schemars(schema_with = "pods_or_percent")]
    pub max_unavailable: Option<IntOrString>,
}

/// An int-or-string that the PodDisruptionBudget API takes: an integer of 0 or more, or a
/// percentage of at most 100% (`pattern` applies to strings only, `minimum` to numbers only), so
/// the API server refuses on the Gatehouse resource what it would refuse later on the budget.
fn pods_or_percent(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "nullable": true,
        "minimum": 0,
        "pattern": super::patterns::PERCENT,
    })
}

/// The proxy Deployment.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.replicas) && has(self.autoscaling))").message("set deployment.replicas or deployment.autoscaling, not both: the autoscaler owns the replica count"))]
#[x_kube(validation = Rule::new("!has(self.externallyScaled) || !self.externallyScaled || !(has(self.replicas) || has(self.autoscaling))").message("an externally scaled deployment takes neither replicas nor autoscaling"))]
#[x_kube(validation = Rule::new("!has(self.disruptionBudget) || (has(self.autoscaling) ? self.autoscaling.maxReplicas > 1 : (!has(self.replicas) || self.replicas > 1))").message("a disruptionBudget needs more than one possible replica: with deployment.replicas or autoscaling.maxReplicas at 0 or 1 a budget would block every node drain, so none is made; remove disruptionBudget or allow more replicas"))]
pub struct DeploymentSettings {
    /// Fixed number of proxy pods. When neither this, `autoscaling` nor `externallyScaled` is
    /// set, 2 are run.
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// Scale the proxy with load instead of a fixed count.
    pub autoscaling: Option<Autoscaling>,
    /// Something else (e.g. a KEDA ScaledObject) scales the proxy Deployment: the operator then
    /// neither writes `replicas` nor creates an autoscaler.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub externally_scaled: bool,
    /// CPU and memory for each proxy pod. Defaults to requests of 100m CPU and 64Mi memory and a
    /// 256Mi memory limit. The proxy runs one worker thread per CPU of the CPU limit, or of the
    /// CPU request when there is no limit, rounded up (at least 1, at most 64).
    pub resources: Option<ResourceRequirements>,
    /// Disruption budget, created whenever more than one replica is possible (setting it with at
    /// most one possible replica is refused).
    pub disruption_budget: Option<DisruptionBudget>,
    /// Guard the proxy pods with a NetworkPolicy: the traffic port open to every source, the
    /// admin port (metrics, `/config`) only to this namespace, the operator's and the monitoring
    /// namespace. Defaults to the operator's setting (`--proxy-network-policy`, the chart's
    /// `proxyNetworkPolicy.enabled`).
    pub network_policy: Option<bool>,
}

/// Kubernetes Service types a gateway can be exposed with.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[allow(missing_docs)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// Where a NodePort or LoadBalancer Service sends outside traffic, and so which address the
/// proxy sees as the peer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ExternalTrafficPolicy {
    /// To any node's proxy pod: a hop through another node replaces the caller's address with
    /// that node's (Kubernetes' default).
    Cluster,
    /// Only to proxy pods on the node the traffic reached: the caller's address is kept (the
    /// load balancer sends traffic only to nodes that run a proxy pod).
    Local,
}

/// The Service in front of the proxy pods.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.externalTrafficPolicy) || self.type != 'ClusterIP'").message("externalTrafficPolicy applies to NodePort and LoadBalancer Services"))]
pub struct ServiceSettings {
    /// Service type. Defaults to `ClusterIP`.
    #[serde(default, rename = "type")]
    pub service_type: ServiceType,
    /// Port the Service listens on for plain HTTP when `listeners` is not set (the listeners'
    /// ports replace it). Defaults to 80.
    #[serde(default = "default_service_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Annotations for the Service, e.g. for a cloud load balancer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `Local` keeps callers' own addresses, which `access.sourceRanges` then sees; `Cluster`
    /// (Kubernetes' default) may replace them with a node's. Behind a proxy that writes
    /// `X-Forwarded-For` (an L7 load balancer, a CDN), `clientAddress` is the setting instead.
    /// NodePort and LoadBalancer only.
    pub external_traffic_policy: Option<ExternalTrafficPolicy>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            service_type: ServiceType::default(),
            port: default_service_port(),
            annotations: BTreeMap::new(),
            external_traffic_policy: None,
        }
    }
}

fn default_service_port() -> i32 {
    80
}

impl DeploymentSettings {
    /// The replica count the operator writes on the Deployment: `None` when an autoscaler (its
    /// own or an external one) owns the count, so the operator never fights it.
    pub fn fixed_replicas(&self) -> Option<i32> {
        if self.autoscaling.is_some() || self.externally_scaled {
            None
        } else {
            Some(self.replicas.unwrap_or(DEFAULT_REPLICAS))
        }
    }
}

impl Autoscaling {
    /// The CPU target in force: the one set, or [`DEFAULT_CPU_TARGET`] when no target is set.
    pub fn cpu_target(&self) -> Option<i32> {
        self.target_cpu_utilization_percentage.or_else(|| {
            self.target_requests_per_second
                .is_none()
                .then_some(DEFAULT_CPU_TARGET)
        })
    }
}
