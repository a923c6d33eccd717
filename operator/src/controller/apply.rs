//! apply: make the cluster hold the built objects — server-side apply with the one field
//! manager, forced — skipping every object that already holds them, and deleting an optional
//! object (autoscaler, disruption budget, NetworkPolicy) this operator made that is no longer
//! wanted.
//!
//! Every child is read before anything is written. When one of them exists and is not
//! controlled by this resource ([`super::ownership`]), nothing at all is written: the resource
//! reports the conflict. A write the API server refuses for good (400 Bad Request, 422 Invalid)
//! stops the apply and is reported too ([`Refusal`]); any other error is returned, to be retried.

use std::fmt::{self, Debug};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, PartialObjectMeta, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ownership::{Conflict, conflict, is_controlled_by};
use crate::FIELD_MANAGER;
use crate::objects::{ProxyObjects, stamped_hash};

/// Why an object could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("cannot {verb} {kind} {namespace}/{name}: {source}")]
pub struct ApplyError {
    verb: &'static str,
    kind: String,
    namespace: String,
    name: String,
    source: kube::Error,
}

impl ApplyError {
    /// The refusal, when the API server refused a write for good: the request itself is wrong
    /// (400 Bad Request, 422 Invalid), so sending it again cannot succeed. Conflicts (409),
    /// throttling (429), server errors and timeouts are passing and not refusals.
    pub fn refusal(&self) -> Option<Refusal> {
        let kube::Error::Api(status) = &self.source else {
            return None;
        };
        (self.verb != "read" && matches!(status.code, 400 | 422)).then(|| Refusal {
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        })
    }
}

/// A write of a child that the API server refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Kind of the refused object.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// HTTP status code (400 or 422).
    pub code: u16,
    /// The API's reason, e.g. `Invalid`.
    pub reason: String,
    /// The API's message.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the API server refused {} {}/{} ({}",
            self.kind, self.namespace, self.name, self.code
        )?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        write!(f, "): {}", self.message)
    }
}

/// Why apply stopped short of writing every object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// Objects with the children's names exist and are not this resource's: nothing was written.
    NameConflict(Vec<Conflict>),
    /// The API server refused an object; the ones before it were applied, the rest were not.
    Refused(Refusal),
}

impl Blocked {
    /// The reason `Programmed=False` reports.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NameConflict(_) => "NameConflict",
            Self::Refused(_) => "ApplyFailed",
        }
    }
}

/// What apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The live Deployment, when it is this resource's (its status tells readiness).
    pub deployment: Option<Deployment>,
    /// True when the route ConfigMap now holds the built table.
    pub table_in_place: bool,
    /// True when the route ConfigMap was written (it did not hold this table yet).
    pub table_written: bool,
    /// The route ConfigMap's resourceVersion after this pass wrote it: its watch event is this
    /// very write's echo ([`super::own_writes`]).
    pub table_version: Option<String>,
    /// Set when not every object could be applied.
    pub blocked: Option<Blocked>,
}

/// The live copies of every child a proxy may have.
struct Live {
    service_account: Option<ServiceAccount>,
    role: Option<Role>,
    role_binding: Option<RoleBinding>,
    /// Only the metadata: the table can be megabytes (see [`ensure_config_map`]).
    config_map: Option<PartialObjectMeta<ConfigMap>>,
    service: Option<Service>,
    deployment: Option<Deployment>,
    autoscaler: Option<HorizontalPodAutoscaler>,
    disruption_budget: Option<PodDisruptionBudget>,
    network_policy: Option<NetworkPolicy>,
}

impl Live {
    /// Reads every child at once: one round trip of waiting, not nine in a row (nor two: a
    /// table change waits for these reads).
    async fn read(client: &Client, namespace: &str, name: &str) -> Result<Self, ApplyError> {
        let (
            service_account,
            role,
            role_binding,
            config_map,
            service,
            deployment,
            autoscaler,
            disruption_budget,
            network_policy,
        ) = tokio::try_join!(
            read_live(client, namespace, name),
            read_live(client, namespace, name),
            read_live(client, namespace, name),
            read_live_metadata::<ConfigMap>(client, namespace, name),
            read_live(client, namespace, name),
            read_live(client, namespace, name),
            read_live(client, namespace, name),
            read_live(client, namespace, name),
            read_live(client, namespace, name),
        )?;
        Ok(Self {
            service_account,
            role,
            role_binding,
            config_map,
            service,
            deployment,
            autoscaler,
            disruption_budget,
            network_policy,
        })
    }

    /// The existing objects that would be written and are not controlled by `owner_uid`.
    fn conflicts(&self, objects: &ProxyObjects, owner_uid: Option<&str>) -> Vec<Conflict> {
        fn check<K: Resource<DynamicType = ()>>(
            live: Option<&K>,
            wanted: bool,
            owner_uid: Option<&str>,
        ) -> Option<Conflict> {
            let live = live.filter(|_| wanted)?;
            conflict(&K::kind(&()), live.meta(), owner_uid)
        }
        [
            check(self.service_account.as_ref(), true, owner_uid),
            check(self.role.as_ref(), true, owner_uid),
            check(self.role_binding.as_ref(), true, owner_uid),
            check(self.config_map.as_ref(), true, owner_uid),
            check(self.service.as_ref(), true, owner_uid),
            check(self.deployment.as_ref(), true, owner_uid),
            check(
                self.autoscaler.as_ref(),
                objects.autoscaler.is_some(),
                owner_uid,
            ),
            check(
                self.disruption_budget.as_ref(),
                objects.disruption_budget.is_some(),
                owner_uid,
            ),
            check(
                self.network_policy.as_ref(),
                objects.network_policy.is_some(),
                owner_uid,
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Reads every child, then — unless one of them is not this resource's — applies every object
/// in order and removes unwanted optional ones.
pub async fn apply_objects(
    client: &Client,
    namespace: &str,
    objects: &ProxyObjects,
    owner_uid: Option<&str>,
) -> Result<Applied, ApplyError> {
    let live = Live::read(client, namespace, &objects.deployment.name_any()).await?;
    let conflicts = live.conflicts(objects, owner_uid);
    if !conflicts.is_empty() {
        return Ok(Applied {
            deployment: live
                .deployment
                .filter(|d| is_controlled_by(d.meta(), owner_uid)),
            blocked: Some(Blocked::NameConflict(conflicts)),
            ..Applied::default()
        });
    }
    let mut applied = Applied::default();
    if let Err(error) = apply_all(client, namespace, objects, live, owner_uid, &mut applied).await {
        applied.blocked = Some(Blocked::Refused(error.refusal().ok_or(error)?));
    }
    Ok(applied)
}

/// Applies the objects in order, recording progress in `applied`; stops at the first error.
async fn apply_all(
    client: &Client,
    namespace: &str,
    objects: &ProxyObjects,
    live: Live,
    owner_uid: Option<&str>,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    // Until the Deployment is applied, readiness is that of the live one (it is ours: no conflict).
    applied.deployment.clone_from(&live.deployment);
    ensure(
        client,
        namespace,
        &objects.service_account,
        live.service_account,
    )
    .await?;
    // The proxy's rights before the pods that use them.
    ensure(client, namespace, &objects.role, live.role).await?;
    ensure(client, namespace, &objects.role_binding, live.role_binding).await?;
    let (config_map, written) =
        ensure_config_map(client, namespace, &objects.config_map, live.config_map).await?;
    applied.table_in_place = true;
    applied.table_written = written;
    if written {
        applied.table_version = config_map.metadata.resource_version;
    }
    ensure(client, namespace, &objects.service, live.service).await?;
    let (deployment, _) =
        ensure_deployment(client, namespace, &objects.deployment, live.deployment).await?;
    applied.deployment = Some(deployment);
    let name = objects.deployment.name_any();
    let optional = (namespace, name.as_str(), owner_uid);
    ensure_optional(
        client,
        optional,
        objects.autoscaler.as_ref(),
        live.autoscaler,
    )
    .await?;
    ensure_optional(
        client,
        optional,
        objects.disruption_budget.as_ref(),
        live.disruption_budget,
    )
    .await?;
    ensure_optional(
        client,
        optional,
        objects.network_policy.as_ref(),
        live.network_policy,
    )
    .await
}

/// Field manager that keeps a Deployment's replica count while ownership passes from the operator
/// to an autoscaler.
pub const REPLICAS_HANDOVER_MANAGER: &str = "gatehouse-operator-replicas-handover";

/// The replica count to hand over: set when the operator's own apply still owns
/// `spec.replicas` of the live Deployment. Applying without the field would then remove it and
/// the Deployment would fall back to one replica until the autoscaler acts.
pub fn replicas_to_hand_over(live: &Deployment) -> Option<i32> {
    let owned = live.metadata.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:spec"))
                .is_some_and(|spec| spec.get("f:replicas").is_some())
    });
    if owned {
        live.spec.as_ref()?.replicas
    } else {
        None
    }
}

/// [`ensure`] for the Deployment, with the replica hand-over: before the first apply without
/// `replicas`, the current count is written under a second field manager (an update, not an
/// apply), so dropping the field from our apply keeps the value for the autoscaler (or KEDA) to
/// take over — the hand-over the server-side apply documentation describes.
async fn ensure_deployment(
    client: &Client,
    namespace: &str,
    desired: &Deployment,
    live: Option<Deployment>,
) -> Result<(Deployment, bool), ApplyError> {
    let name = desired.name_any();
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let autoscaled = desired.spec.as_ref().is_some_and(|s| s.replicas.is_none());
    if let Some(replicas) = live
        .as_ref()
        .filter(|live| autoscaled && !holds(desired, live))
        .and_then(replicas_to_hand_over)
    {
        let params = PatchParams {
            field_manager: Some(REPLICAS_HANDOVER_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        api.patch(&name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|source| {
                error::<Deployment>("hand over replicas of", namespace, &name, source)
            })?;
    }
    apply_unless_held(&api, namespace, desired, live).await
}

/// Reads the live Deployment, for readiness, when nothing is applied; `None` when it does not
/// exist or is not controlled by the resource `owner_uid`.
pub async fn read_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    owner_uid: Option<&str>,
) -> Result<Option<Deployment>, ApplyError> {
    let live: Option<Deployment> = read_live(client, namespace, name).await?;
    Ok(live.filter(|d| is_controlled_by(d.meta(), owner_uid)))
}

fn error<K: Resource<DynamicType = ()>>(
    verb: &'static str,
    namespace: &str,
    name: &str,
    source: kube::Error,
) -> ApplyError {
    ApplyError {
        verb,
        kind: K::kind(&()).into_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    }
}

/// What every child kind is to the client.
trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
}

impl<K> Child for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

/// Server-side applies `desired` unless the `live` object already holds it. Returns the live
/// object and whether it was written.
async fn ensure<K: Child>(
    client: &Client,
    namespace: &str,
    desired: &K,
    live: Option<K>,
) -> Result<(K, bool), ApplyError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    apply_unless_held(&api, namespace, desired, live).await
}

/// An optional object: applied when `desired`, else deleted when the live one is controlled by
/// the resource `owner_uid` (anybody else's is left alone).
async fn ensure_optional<K: Child>(
    client: &Client,
    (namespace, name, owner_uid): (&str, &str, Option<&str>),
    desired: Option<&K>,
    live: Option<K>,
) -> Result<(), ApplyError> {
    if let Some(desired) = desired {
        return ensure(client, namespace, desired, live).await.map(drop);
    }
    if live.is_some_and(|live| is_controlled_by(live.meta(), owner_uid)) {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(|source| error::<K>("delete", namespace, name, source))?;
    }
    Ok(())
}

/// [`ensure`] for the route ConfigMap, whose table can be megabytes: only its metadata was read,
/// and the whole object is read only when its hash says it may already hold the table (to find
/// drift). A changed table is written without reading the old one. Returns what the API
/// server answered (when written) and whether it was written.
async fn ensure_config_map(
    client: &Client,
    namespace: &str,
    desired: &ConfigMap,
    live: Option<PartialObjectMeta<ConfigMap>>,
) -> Result<(ConfigMap, bool), ApplyError> {
    let maybe_held = stamped_hash(desired).is_some()
        && live.as_ref().and_then(stamped_hash) == stamped_hash(desired);
    let live = if maybe_held {
        read_live(client, namespace, &desired.name_any()).await?
    } else {
        None
    };
    ensure(client, namespace, desired, live).await
}

async fn read_live_metadata<K: Child>(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<PartialObjectMeta<K>>, ApplyError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.get_metadata_opt(name)
        .await
        .map_err(|source| error::<K>("read", namespace, name, source))
}

async fn read_live<K: Child>(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, ApplyError> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|source| error::<K>("read", namespace, name, source))
}

async fn apply_unless_held<K: Child>(
    api: &Api<K>,
    namespace: &str,
    desired: &K,
    live: Option<K>,
) -> Result<(K, bool), ApplyError> {
    if let Some(live) = live
        && holds(desired, &live)
    {
        return Ok((live, false));
    }
    let name = desired.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api
        .patch(&name, &params, &Patch::Apply(desired))
        .await
        .map_err(|source| error::<K>("apply", namespace, &name, source))?;
    Ok((applied, true))
}

/// True when the live object was applied from this very build (same hash annotation) and still
/// holds every field of it (nobody changed them since: drift is repaired by applying again).
pub fn holds<K: Resource + Serialize>(desired: &K, live: &K) -> bool {
    if stamped_hash(desired).is_none() || stamped_hash(desired) != stamped_hash(live) {
        return false;
    }
    match (serde_json::to_value(desired), serde_json::to_value(live)) {
        (Ok(desired), Ok(live)) => contains(&live, &desired),
        _ => false,
    }
}

/// True when `live` has every field of `desired` with the same value. Fields the API server
/// adds (defaults, status, metadata) are ignored; empty values match absent ones.
fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (_, Value::Null) => true,
        (Value::Object(live), Value::Object(desired)) => desired.iter().all(|(key, value)| {
            live.get(key)
                .map_or_else(|| is_empty(value), |live| contains(live, value))
        }),
        (Value::Array(live), Value::Array(desired)) => {
            live.len() == desired.len() && live.iter().zip(desired).all(|(l, d)| contains(l, d))
        }
        (Value::Null, desired) => is_empty(desired),
        (live, desired) => live == desired,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn replicas_are_handed_over_only_while_our_apply_owns_them() {
        use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
            FieldsV1, ManagedFieldsEntry, ObjectMeta,
        };

        let deployment = |manager: &str, operation: &str, fields: serde_json::Value| Deployment {
            metadata: ObjectMeta {
                managed_fields: Some(vec![ManagedFieldsEntry {
                    manager: Some(manager.to_owned()),
                    operation: Some(operation.to_owned()),
                    fields_v1: Some(FieldsV1(fields)),
                    ..ManagedFieldsEntry::default()
                }]),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(4),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        };
        let ours = json!({"f:spec": {"f:replicas": {}, "f:template": {}}});
        assert_eq!(
            super::replicas_to_hand_over(&deployment("gatehouse-operator", "Apply", ours.clone())),
            Some(4)
        );
        // Already handed over (our apply no longer lists it), or owned by someone else: nothing to do.
        let without = json!({"f:spec": {"f:template": {}}});
        assert_eq!(
            super::replicas_to_hand_over(&deployment("gatehouse-operator", "Apply", without)),
            None
        );
        assert_eq!(
            super::replicas_to_hand_over(&deployment("kube-controller-manager", "Update", ours)),
            None
        );
    }

    #[test]
    fn server_defaults_do_not_count_as_drift() {
        let desired = json!({"spec": {"ports": [{"port": 80}], "selector": {"a": "b"}, "x": []}});
        let live = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP"}], "selector": {"a": "b"}, "clusterIP": "10.0.0.1"}, "status": {}});
        assert!(contains(&live, &desired));
    }

    #[test]
    fn changed_or_removed_fields_are_drift() {
        let desired = json!({"spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}});
        assert!(!contains(
            &json!({"spec": {"ports": [{"port": 81}], "selector": {"a": "b"}}}),
            &desired
        ));
        assert!(!contains(
            &json!({"spec": {"ports": [{"port": 80}, {"port": 9}], "selector": {"a": "b"}}}),
            &desired
        ));
        assert!(!contains(
            &json!({"spec": {"ports": [{"port": 80}]}}),
            &desired
        ));
    }
}
