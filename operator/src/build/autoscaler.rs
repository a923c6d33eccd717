//! The HorizontalPodAutoscaler (`autoscaling/v2`), present only when autoscaling is set. It then
//! owns the Deployment's replica count: the Deployment is built without `replicas`.

use gatehouse_api::crd::DeploymentSettings;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

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
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(autoscaling.target_cpu_utilization_percentage),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    })
}
