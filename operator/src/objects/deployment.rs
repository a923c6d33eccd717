//! The proxy Deployment: hardened pods that serve their resource's route table.
//!
//! The proxy watches its route ConfigMap and its clients' Secrets through the Kubernetes API
//! (`--config-map`, `--namespace`, with the pod's own token: its Role permits exactly those), so
//! a change is served as soon as the API server has it. The same objects are mounted as files:
//! the proxy reads them at start-up and falls back to them whenever the API cannot be reached.
//!
//! The pod template depends only on the image, the resources and the client Secrets — never on
//! the routes, so a route change never restarts a pod. Without autoscaling `replicas` is written;
//! with it, never (the HPA owns the count).

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_api::crd::DeploymentSettings;
use gatehouse_api::naming::{ADMIN_PORT, PROXY_PORT, TLS_PORT};
use gatehouse_api::route_table::digest_of;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretVolumeSource, SecurityContext, TopologySpreadConstraint, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Exposed, Scope};
use crate::settings::ProxySettings;

/// Name of the proxy container.
pub const CONTAINER_NAME: &str = "proxy";
/// Name of the traffic port (container and Service).
pub const PROXY_PORT_NAME: &str = "http";
/// Name of the HTTPS port, on the container and the Service.
pub const TLS_PORT_NAME: &str = "https";
/// Name of the admin port (container and Service).
pub const ADMIN_PORT_NAME: &str = "admin";
/// Where the route ConfigMap is mounted (as a directory: subPath mounts never update).
pub const ROUTES_DIR: &str = "/etc/gatehouse/routes";
/// Where each client Secret is mounted, under its own name.
pub const SECRETS_DIR: &str = "/etc/gatehouse/secrets";
/// The proxy drains for this long on SIGTERM (`--shutdown-grace`).
const PROXY_DRAIN_SECONDS: i64 = 20;
/// Kubernetes kills the pod after this long: longer than the drain, so the drain completes.
pub const TERMINATION_GRACE_SECONDS: i64 = 30;
/// The non-root user of the proxy image (distroless `nonroot`).
const PROXY_USER: i64 = 65532;

pub(super) fn render_deployment(
    scope: &Scope,
    settings: &DeploymentSettings,
    secrets: &BTreeSet<String>,
    proxy: &ProxySettings,
    exposed: Exposed,
) -> Deployment {
    let replicas = settings.fixed_replicas();
    Deployment {
        metadata: scope.metadata(),
        spec: Some(DeploymentSpec {
            replicas,
            selector: scope.label_selector(),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                // Keep full capacity during a rollout: new pods come up before old ones go.
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".to_owned())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(scope.labels()),
                    annotations: Some(scrape_annotations()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(scope, settings, proxy, secrets, exposed)),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn scrape_annotations() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), ADMIN_PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ])
}

/// A volume name (a DNS label of at most 63 characters) for a Secret's volume.
fn secret_volume_name(secret: &str) -> String {
    let name = format!("secret-{secret}");
    if name.len() <= 63 {
        return name;
    }
    let hash = digest_of(secret.as_bytes());
    let hash = hash.trim_start_matches("sha256:");
    let prefix: String = secret.chars().take(40).collect();
    format!("secret-{}-{}", prefix.trim_end_matches('-'), &hash[..12])
}

fn pod_spec(
    scope: &Scope,
    settings: &DeploymentSettings,
    proxy: &ProxySettings,
    secrets: &BTreeSet<String>,
    exposed: Exposed,
) -> PodSpec {
    let mut volumes = vec![
        Volume {
            name: "routes".to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: scope.name.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            // The root filesystem is read-only; Pingora keeps its pid file and upgrade socket here.
            name: "tmp".to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("16Mi".to_owned())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let mut mounts = vec![
        VolumeMount {
            name: "routes".to_owned(),
            mount_path: ROUTES_DIR.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "tmp".to_owned(),
            mount_path: "/tmp".to_owned(),
            ..VolumeMount::default()
        },
    ];
    for secret in secrets {
        let name = secret_volume_name(secret);
        volumes.push(Volume {
            name: name.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name,
            mount_path: format!("{SECRETS_DIR}/{secret}"),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    PodSpec {
        service_account_name: Some(scope.name.clone()),
        // The ServiceAccount mounts no token by itself; the proxy needs one to watch the API.
        automount_service_account_token: Some(true),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(PROXY_USER),
            run_as_group: Some(PROXY_USER),
            fs_group: Some(PROXY_USER),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..PodSecurityContext::default()
        }),
        topology_spread_constraints: Some(
            ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
                .into_iter()
                .map(|key| TopologySpreadConstraint {
                    max_skew: 1,
                    topology_key: key.to_owned(),
                    when_unsatisfiable: "ScheduleAnyway".to_owned(),
                    label_selector: Some(scope.label_selector()),
                    ..TopologySpreadConstraint::default()
                })
                .collect(),
        ),
        containers: vec![proxy_container(scope, settings, proxy, mounts, exposed)],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

fn proxy_container(
    scope: &Scope,
    settings: &DeploymentSettings,
    proxy: &ProxySettings,
    mounts: Vec<VolumeMount>,
    exposed: Exposed,
) -> Container {
    let resources = settings.resources.clone().unwrap_or_else(default_resources);
    let mut args = vec![
        // The mounted copy: read at start-up, and served whenever the API cannot be reached.
        // The directory: the table is `routes.json`, or `routes.json.gz` once it is large.
        "--routes".to_owned(),
        ROUTES_DIR.to_owned(),
        "--config-map".to_owned(),
        scope.name.clone(),
        "--namespace".to_owned(),
        scope.namespace.clone(),
        "--listen".to_owned(),
        format!("0.0.0.0:{PROXY_PORT}"),
        "--admin".to_owned(),
        format!("0.0.0.0:{ADMIN_PORT}"),
        "--shutdown-grace".to_owned(),
        PROXY_DRAIN_SECONDS.to_string(),
        "--threads".to_owned(),
        proxy_threads(&resources).to_string(),
    ];
    let mut ports = vec![container_port(PROXY_PORT_NAME, PROXY_PORT)];
    if exposed.https.is_some() {
        args.extend(["--listen-tls".to_owned(), format!("0.0.0.0:{TLS_PORT}")]);
        ports.push(container_port(TLS_PORT_NAME, TLS_PORT));
    }
    ports.push(container_port(ADMIN_PORT_NAME, ADMIN_PORT));
    Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(proxy.image.clone()),
        image_pull_policy: Some(proxy.image_pull_policy.clone()),
        args: Some(args),
        ports: Some(ports),
        liveness_probe: Some(admin_probe("/healthz", 10, 3)),
        readiness_probe: Some(admin_probe("/readyz", 5, 2)),
        resources: Some(resources),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(PROXY_USER),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }
}

fn admin_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(ADMIN_PORT_NAME.to_owned()),
            scheme: Some("HTTP".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// The most worker threads a proxy pod gets, whatever its CPU.
const MAX_PROXY_THREADS: u64 = 64;

/// Worker threads for the proxy: one per CPU of the container's CPU limit, or of its CPU request
/// when it has no limit, rounded up; at least 1, at most [`MAX_PROXY_THREADS`]. A pod given two
/// CPUs then uses two, and the default (a 100m request) runs one thread.
fn proxy_threads(resources: &ResourceRequirements) -> u64 {
    let cpu = |list: &Option<BTreeMap<String, Quantity>>| {
        list.as_ref()
            .and_then(|l| l.get("cpu"))
            .and_then(cpu_millis)
    };
    cpu(&resources.limits)
        .or_else(|| cpu(&resources.requests))
        .map_or(1, |millis| millis.div_ceil(1000))
        .clamp(1, MAX_PROXY_THREADS)
}

/// A CPU quantity (`2`, `1.5`, `500m`, `1k`, `2e3`…) in millicores, rounded up, computed in
/// decimal (no floating-point error); `None` for a form a CPU amount does not take.
fn cpu_millis(quantity: &Quantity) -> Option<u64> {
    let text = quantity.0.trim();
    // One suffix at most: an exponent, `m`, `k`, or none (the API server has checked the syntax).
    let (number, mut exponent) = if let Some(number) = text.strip_suffix('m') {
        (number, 0)
    } else if let Some(number) = text.strip_suffix('k') {
        (number, 6)
    } else if let Some((number, power)) = text.split_once(['e', 'E']) {
        (number, power.parse::<i32>().ok()? + 3)
    } else {
        (text, 3)
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{whole}{fraction}");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    exponent -= i32::try_from(fraction.len()).ok()?;
    let mantissa: u128 = digits.parse().ok()?;
    let scale = 10u128.checked_pow(exponent.unsigned_abs());
    let millis = match scale {
        // Too large to count: more CPUs than any thread count needs.
        None if exponent >= 0 => u128::MAX,
        None => u128::from(mantissa > 0),
        Some(scale) if exponent >= 0 => mantissa.saturating_mul(scale),
        Some(scale) => mantissa.div_ceil(scale),
    };
    Some(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Requests of 100m CPU and 64Mi memory, a 256Mi memory limit (no CPU limit: throttling a
/// proxy adds latency to every request; the HPA scales on the request instead).
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".to_owned())),
            ("memory".to_owned(), Quantity("64Mi".to_owned())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("256Mi".to_owned()),
        )])),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::{cpu_millis, default_resources, proxy_threads, secret_volume_name};

    #[test]
    fn cpu_quantities_read_as_millicores() {
        for (text, millis) in [
            ("2", Some(2000)),
            ("1.5", Some(1500)),
            ("500m", Some(500)),
            ("2500m", Some(2500)),
            ("0.1", Some(100)),
            ("1k", Some(1_000_000)),
            ("2e3", Some(2_000_000)),
            ("15e-1", Some(1500)),
            ("0.3", Some(300)),
            ("1.0001", Some(1001)),
            ("lots", None),
            ("-1", None),
            ("1Ki", None),
            ("1e40", Some(u64::MAX)),
            ("1e-40", Some(1)),
            ("", None),
        ] {
            assert_eq!(cpu_millis(&Quantity(text.to_owned())), millis, "{text}");
        }
    }

    #[test]
    fn the_proxy_gets_a_thread_per_cpu_of_its_limit_or_else_its_request() {
        let cpu = |cpu: &str| {
            Some(BTreeMap::from([(
                "cpu".to_owned(),
                Quantity(cpu.to_owned()),
            )]))
        };
        let with = |requests, limits| ResourceRequirements {
            requests,
            limits,
            ..ResourceRequirements::default()
        };
        assert_eq!(proxy_threads(&default_resources()), 1);
        assert_eq!(proxy_threads(&with(cpu("500m"), cpu("2500m"))), 3);
        assert_eq!(proxy_threads(&with(cpu("2"), None)), 2);
        assert_eq!(proxy_threads(&with(None, None)), 1);
        assert_eq!(proxy_threads(&with(cpu("1000"), None)), 64);
        assert_eq!(proxy_threads(&with(cpu("none"), None)), 1);
        assert_eq!(proxy_threads(&with(None, cpu("1e40"))), 64);
    }

    #[test]
    fn secret_volume_names_fit_a_dns_label() {
        assert_eq!(secret_volume_name("web-api-keys"), "secret-web-api-keys");
        let long = "k".repeat(200);
        let name = secret_volume_name(&long);
        assert!(name.len() <= 63, "{name}");
        assert_ne!(name, secret_volume_name(&"k".repeat(199)));
    }
}
