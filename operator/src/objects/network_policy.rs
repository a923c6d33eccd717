//! The NetworkPolicy (`networking.k8s.io/v1`) of the proxy pods, present unless turned off (by
//! the resource's `deployment.networkPolicy`, else the operator's setting). It restricts ingress
//! only: the traffic port stays open to every source, and the admin port (metrics, health,
//! `/config`) is reachable only from the resource's namespace, the operator's and the monitoring
//! namespace. Egress is left alone: upstreams may live anywhere.
//!
//! Kubelet probes are not affected: traffic from a pod's own node is always allowed.

use std::collections::BTreeSet;

use gatehouse_api::crd::DeploymentSettings;
use gatehouse_api::naming::{ADMIN_PORT, PROXY_PORT, TLS_PORT};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Exposed, Scope};
use crate::settings::NetworkPolicySettings;

/// The label every namespace carries with its own name (Kubernetes 1.21+).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn tcp(ports: impl IntoIterator<Item = u16>) -> Option<Vec<NetworkPolicyPort>> {
    let ports = ports.into_iter().map(|port| NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".to_owned()),
        ..NetworkPolicyPort::default()
    });
    Some(ports.collect())
}

/// The container ports of the listeners the Service exposes.
fn traffic_ports(exposed: Exposed) -> Vec<u16> {
    let http = exposed.http.map(|_| PROXY_PORT);
    let https = exposed.https.map(|_| TLS_PORT);
    http.into_iter().chain(https).collect()
}

pub(super) fn render_network_policy(
    scope: &Scope,
    deployment: &DeploymentSettings,
    settings: &NetworkPolicySettings,
    exposed: Exposed,
) -> Option<NetworkPolicy> {
    if !deployment.network_policy.unwrap_or(settings.enabled) {
        return None;
    }
    let admin_namespaces: BTreeSet<String> = settings
        .admin_namespaces
        .iter()
        .cloned()
        .chain([scope.namespace.clone()])
        .collect();
    let admin_peer = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.to_owned(),
                operator: "In".to_owned(),
                values: Some(admin_namespaces.into_iter().collect()),
            }]),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    Some(NetworkPolicy {
        metadata: scope.metadata(),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(scope.label_selector()),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![
                // No `from`: every source.
                NetworkPolicyIngressRule {
                    ports: tcp(traffic_ports(exposed)),
                    ..NetworkPolicyIngressRule::default()
                },
                NetworkPolicyIngressRule {
                    from: Some(vec![admin_peer]),
                    ports: tcp([ADMIN_PORT]),
                },
            ]),
            ..NetworkPolicySpec::default()
        }),
    })
}
