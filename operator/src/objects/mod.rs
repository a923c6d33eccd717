//! objects: one valid resource and its compiled route table → the objects that run its proxy.
//!
//! Pure and deterministic, one file per object. Every object carries the common labels, a
//! controller owner reference (when the resource has a uid, i.e. came from the cluster) and a
//! hash of its own content, which lets apply skip objects that already hold what it would send.

mod autoscaler;
mod config_map;
mod deployment;
mod disruption_budget;
mod network_policy;
mod role;
mod role_binding;
mod service;
mod service_account;

use std::collections::BTreeMap;

use gatehouse_api::crd::{DeploymentSettings, ServiceSettings};
use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::{RouteTable, digest_of};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;

use crate::settings::ProxySettings;

pub use deployment::{
    ADMIN_PORT_NAME, CONTAINER_NAME, PROXY_PORT_NAME, ROUTES_DIR, SECRETS_DIR,
    TERMINATION_GRACE_SECONDS, TLS_PORT_NAME,
};
pub use network_policy::NAMESPACE_NAME_LABEL;

/// Annotation holding the hash of everything else in the object, as built.
pub const HASH_ANNOTATION: &str = "gatehouse.dev/desired-hash";
/// Annotation on the route ConfigMap holding the digest of the table it carries.
pub const DIGEST_ANNOTATION: &str = "gatehouse.dev/route-table-digest";
/// `app.kubernetes.io/managed-by` value of every object the operator makes.
pub const MANAGED_BY: &str = "gatehouse-operator";
/// Label selecting every object the operator makes.
pub const MANAGED_BY_SELECTOR: &str = "app.kubernetes.io/managed-by=gatehouse-operator";

/// The objects of one proxy. The HPA exists only with autoscaling, the PDB only when more than
/// one replica is possible, the NetworkPolicy unless turned off.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyObjects {
    /// The proxy pods' identity (its token is mounted only into the pods, which ask for it).
    pub service_account: ServiceAccount,
    /// What the proxy may read: its route ConfigMap and its clients' Secrets, by name.
    pub role: Role,
    /// Grants [`Self::role`] to [`Self::service_account`].
    pub role_binding: RoleBinding,
    /// The route table.
    pub config_map: ConfigMap,
    /// The Service in front of the pods.
    pub service: Service,
    /// The proxy pods.
    pub deployment: Deployment,
    /// The autoscaler, when `deployment.autoscaling` is set.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    /// The disruption budget, when more than one replica is possible.
    pub disruption_budget: Option<PodDisruptionBudget>,
    /// The ingress rules of the proxy pods, unless turned off.
    pub network_policy: Option<NetworkPolicy>,
}

impl ProxyObjects {
    /// The digest of the route table, as the ConfigMap's annotation has it.
    pub fn table_digest(&self) -> Option<&str> {
        self.config_map
            .metadata
            .annotations
            .as_ref()?
            .get(DIGEST_ANNOTATION)
            .map(String::as_str)
    }

    /// Every object as JSON, in the order they are applied (the identity and its rights, then
    /// the ConfigMap, before the pods that use them; the Deployment before what scales or
    /// protects it).
    pub fn manifests(&self) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        let mut manifests = vec![
            serde_json::to_value(&self.service_account)?,
            serde_json::to_value(&self.role)?,
            serde_json::to_value(&self.role_binding)?,
            serde_json::to_value(&self.config_map)?,
            serde_json::to_value(&self.service)?,
            serde_json::to_value(&self.deployment)?,
        ];
        if let Some(autoscaler) = &self.autoscaler {
            manifests.push(serde_json::to_value(autoscaler)?);
        }
        if let Some(budget) = &self.disruption_budget {
            manifests.push(serde_json::to_value(budget)?);
        }
        if let Some(policy) = &self.network_policy {
            manifests.push(serde_json::to_value(policy)?);
        }
        Ok(manifests)
    }
}

/// Builds every object of the resource's proxy.
pub fn render(resource: &Resource, table: &RouteTable, settings: &ProxySettings) -> ProxyObjects {
    let scope = Scope::new(resource);
    let (deployment_settings, service_settings) = runtime_settings(resource);
    let exposed = Exposed::of(resource);
    let secrets = table.secrets();
    ProxyObjects {
        service_account: stamp(service_account::render_service_account(&scope)),
        role: stamp(role::render_role(&scope, &secrets)),
        role_binding: stamp(role_binding::render_role_binding(&scope)),
        config_map: stamp(config_map::render_config_map(&scope, table)),
        service: stamp(service::render_service(&scope, service_settings, exposed)),
        deployment: stamp(deployment::render_deployment(
            &scope,
            deployment_settings,
            &secrets,
            settings,
            exposed,
        )),
        autoscaler: autoscaler::render_autoscaler(&scope, deployment_settings).map(stamp),
        disruption_budget: disruption_budget::render_disruption_budget(&scope, deployment_settings)
            .map(stamp),
        network_policy: network_policy::render_network_policy(
            &scope,
            deployment_settings,
            &settings.network_policy,
            exposed,
        )
        .map(stamp),
    }
}

/// The proxy settings of a resource: its Deployment and Service.
pub fn runtime_settings(resource: &Resource) -> (&DeploymentSettings, &ServiceSettings) {
    match resource {
        Resource::Gateway(r) => (&r.spec.deployment, &r.spec.service),
        Resource::EdgeService(r) => (&r.spec.deployment, &r.spec.service),
        Resource::Aggregator(r) => (&r.spec.deployment, &r.spec.service),
    }
}

/// The listeners a proxy exposes, by their Service ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exposed {
    /// Plain HTTP (to the container's `PROXY_PORT`).
    pub http: Option<i32>,
    /// HTTPS (to the container's `TLS_PORT`).
    pub https: Option<i32>,
}

impl Exposed {
    /// What `spec.listeners` declares; without it (and for an Aggregator), plain HTTP on
    /// `service.port`.
    pub fn of(resource: &Resource) -> Self {
        let listeners = match resource {
            Resource::Gateway(r) => r.spec.listeners.as_ref(),
            Resource::EdgeService(r) => r.spec.listeners.as_ref(),
            Resource::Aggregator(_) => None,
        };
        match listeners {
            None => Self {
                http: Some(runtime_settings(resource).1.port),
                https: None,
            },
            Some(listeners) => Self {
                http: listeners.http.as_ref().map(|l| l.port),
                https: listeners.https.as_ref().map(|l| l.port),
            },
        }
    }
}

/// `app.kubernetes.io/component` of a kind's objects.
pub fn component(kind: Kind) -> &'static str {
    match kind {
        Kind::Gateway => "gateway",
        Kind::EdgeService => "edge",
        Kind::Aggregator => "aggregator",
    }
}

/// The controller owner reference pointing at the resource; `None` without a uid (offline).
pub fn owner_reference(resource: &Resource) -> Option<OwnerReference> {
    use kube::Resource as _;
    match resource {
        Resource::Gateway(r) => r.controller_owner_ref(&()),
        Resource::EdgeService(r) => r.controller_owner_ref(&()),
        Resource::Aggregator(r) => r.controller_owner_ref(&()),
    }
}

/// Labels that select one proxy's pods. Never change them: a Deployment's selector is immutable.
pub fn selector_labels(kind: Kind, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "gatehouse-proxy".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), name.to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            component(kind).to_owned(),
        ),
    ])
}

/// What every object of one proxy shares: name, namespace, labels, owner.
struct Scope {
    name: String,
    namespace: String,
    selector: BTreeMap<String, String>,
    owner: Option<OwnerReference>,
}

impl Scope {
    fn new(resource: &Resource) -> Self {
        Self {
            name: proxy_name(resource.kind(), resource.name()),
            namespace: resource.namespace().to_owned(),
            selector: selector_labels(resource.kind(), resource.name()),
            owner: owner_reference(resource),
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector.clone();
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            MANAGED_BY.to_owned(),
        );
        labels
    }

    fn metadata(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: self.owner.clone().map(|owner| vec![owner]),
            ..ObjectMeta::default()
        }
    }

    fn label_selector(&self) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(self.selector.clone()),
            ..Default::default()
        }
    }
}

/// Adds [`HASH_ANNOTATION`]: the digest of the object as built, before the annotation.
fn stamp<K: kube::Resource + Serialize>(mut object: K) -> K {
    // Serialising k8s-openapi structs into a Vec cannot fail; an empty hash would only cost
    // one extra apply.
    let hash = serde_json::to_vec(&object)
        .map(|bytes| digest_of(&bytes))
        .unwrap_or_default();
    object
        .meta_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_ANNOTATION.to_owned(), hash);
    object
}

/// The hash an object was stamped with.
pub fn stamped_hash<K: kube::Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .annotations
        .as_ref()?
        .get(HASH_ANNOTATION)
        .map(String::as_str)
}
