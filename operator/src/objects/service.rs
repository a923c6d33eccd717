//! The proxy Service: type, port and annotations from the spec, traffic to the proxy port.
//!
//! A ClusterIP Service also exposes the admin port (metrics, health) inside the cluster. A
//! NodePort or LoadBalancer Service does not: `/metrics` and `/config` must never reach the
//! outside world; Prometheus scrapes the pods directly (see the pod annotations).

use gatehouse_api::crd::{ServiceSettings, ServiceType};
use gatehouse_api::naming::{ADMIN_PORT, PROXY_PORT};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ADMIN_PORT_NAME, PROXY_PORT_NAME, Scope};

pub(super) fn render_service(scope: &Scope, settings: &ServiceSettings) -> Service {
    let mut metadata = scope.metadata();
    if !settings.annotations.is_empty() {
        metadata.annotations = Some(settings.annotations.clone());
    }
    let mut ports = vec![ServicePort {
        name: Some(PROXY_PORT_NAME.to_owned()),
        port: settings.port,
        target_port: Some(IntOrString::Int(i32::from(PROXY_PORT))),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }];
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
            selector: Some(scope.selector.clone()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
