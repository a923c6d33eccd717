//! The proxy Service: type, ports, annotations and external traffic policy from the spec; `http` to the proxy's plain
//! port and `https` to its TLS port, as the listeners say.
//!
//! A ClusterIP Service also exposes the admin port (metrics, health) inside the cluster. A
//! NodePort or LoadBalancer Service does not: `/metrics` and `/config` must never reach the
//! outside world; Prometheus scrapes the pods directly (see the pod annotations).

use gatehouse_api::crd::{ExternalTrafficPolicy, ServiceSettings, ServiceType};
use gatehouse_api::naming::{ADMIN_PORT, PROXY_PORT, TLS_PORT};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ADMIN_PORT_NAME, Exposed, PROXY_PORT_NAME, Scope, TLS_PORT_NAME};

pub(super) fn render_service(
    scope: &Scope,
    settings: &ServiceSettings,
    exposed: Exposed,
) -> Service {
    let mut metadata = scope.metadata();
    if !settings.annotations.is_empty() {
        metadata.annotations = Some(settings.annotations.clone());
    }
    let traffic = [
        (exposed.http, PROXY_PORT_NAME, PROXY_PORT),
        (exposed.https, TLS_PORT_NAME, TLS_PORT),
    ];
    let mut ports: Vec<ServicePort> = traffic
        .into_iter()
        .filter_map(|(port, name, target)| {
            Some(ServicePort {
                name: Some(name.to_owned()),
                port: port?,
                target_port: Some(IntOrString::Int(i32::from(target))),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            })
        })
        .collect();
    if settings.service_type == ServiceType::ClusterIP {
        ports.push(ServicePort {
            name: Some(ADMIN_PORT_NAME.to_owned()),
            port: i32::from(ADMIN_PORT),
            target_port: Some(IntOrString::Int(i32::from(ADMIN_PORT))),
            protocol: Some("TCP".to_owned()),
            ..ServicePort::default()
        });
    }
    let service_type = match settings.service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(service_type.to_owned()),
            external_traffic_policy: settings.external_traffic_policy.map(|policy| {
                match policy {
                    ExternalTrafficPolicy::Cluster => "Cluster",
                    ExternalTrafficPolicy::Local => "Local",
                }
                .to_owned()
            }),
            selector: Some(scope.selector.clone()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
