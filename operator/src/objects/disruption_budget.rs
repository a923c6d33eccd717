//! The PodDisruptionBudget (`policy/v1`), present whenever more than one replica is possible, so
//! that a node drain never takes every proxy pod at once.

use gatehouse_api::crd::DeploymentSettings;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Scope;

/// The most replicas the Deployment can run under these settings.
pub(super) fn max_replicas(settings: &DeploymentSettings) -> i32 {
    match (&settings.autoscaling, settings.fixed_replicas()) {
        (Some(autoscaling), _) => autoscaling.max_replicas,
        (None, Some(replicas)) => replicas,
        // Scaled by something else: assume it may run several.
        (None, None) => i32::MAX,
    }
}

pub(super) fn render_disruption_budget(
    scope: &Scope,
    settings: &DeploymentSettings,
) -> Option<PodDisruptionBudget> {
    if max_replicas(settings) <= 1 {
        return None;
    }
    let budget = settings.disruption_budget.as_ref();
    let min_available = budget.and_then(|b| b.min_available.clone());
    let max_unavailable = budget
        .and_then(|b| b.max_unavailable.clone())
        .or_else(|| min_available.is_none().then_some(IntOrString::Int(1)));
    Some(PodDisruptionBudget {
        metadata: scope.metadata(),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(scope.label_selector()),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}
