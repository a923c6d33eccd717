//! The HorizontalPodAutoscaler (`autoscaling/v2`), present only when autoscaling is set. It then
//! owns the Deployment's replica count: the Deployment is built without `replicas`.

use gatehouse_api::crd::{Autoscaling, DeploymentSettings};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
    MetricIdentifier, MetricSpec, MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The per-pod custom metric a metrics adapter derives from the proxy's request counter.
pub const REQUESTS_PER_SECOND_METRIC: &str = "gatehouse_requests_per_second";

use super::Scope;

pub(super) fn render_autoscaler(
    scope: &Scope,
    settings: &DeploymentSettings,
) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = settings.autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: scope.metadata(),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: scope.name.clone(),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(metrics(autoscaling)),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    })
}

/// CPU utilisation and/or requests per second per pod; the HPA follows whichever asks for more.
fn metrics(autoscaling: &Autoscaling) -> Vec<MetricSpec> {
    let cpu = autoscaling.cpu_target().map(|target| MetricSpec {
        type_: "Resource".to_owned(),
        resource: Some(ResourceMetricSource {
            name: "cpu".to_owned(),
            target: MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(target),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    });
    let requests = autoscaling
        .target_requests_per_second
        .map(|target| MetricSpec {
            type_: "Pods".to_owned(),
            pods: Some(PodsMetricSource {
                metric: MetricIdentifier {
                    name: REQUESTS_PER_SECOND_METRIC.to_owned(),
                    selector: None,
                },
                target: MetricTarget {
                    type_: "AverageValue".to_owned(),
                    average_value: Some(Quantity(target.to_string())),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        });
    cpu.into_iter().chain(requests).collect()
}
