//! apply: make the cluster hold the built objects — server-side apply with the one field
//! manager, forced — skipping every object that already holds them, and deleting an autoscaler
//! or disruption budget this operator made that is no longer wanted.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::FIELD_MANAGER;
use crate::build::{ProxyObjects, stamped_hash};

/// Why an object could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("cannot {verb} {kind} {namespace}/{name}: {source}")]
pub struct ApplyError {
    verb: &'static str,
    kind: String,
    namespace: String,
    name: String,
    source: kube::Error,
}

/// What apply did.
#[derive(Debug)]
pub struct Applied {
    /// The live Deployment after apply (its status tells readiness).
    pub deployment: Deployment,
    /// True when the route ConfigMap was written (it did not hold this table yet).
    pub table_written: bool,
}

/// Applies every object, in order, and removes unwanted optional ones.
pub async fn apply_objects(
    client: &Client,
    namespace: &str,
    objects: &ProxyObjects,
    owner_uid: Option<&str>,
) -> Result<Applied, ApplyError> {
    ensure(client, namespace, &objects.service_account).await?;
    let (_, table_written) = ensure(client, namespace, &objects.config_map).await?;
    ensure(client, namespace, &objects.service).await?;
    let (deployment, _) = ensure_deployment(client, namespace, &objects.deployment).await?;
    let name = objects.deployment.name_any();
    match &objects.autoscaler {
        Some(autoscaler) => drop(ensure(client, namespace, autoscaler).await?),
        None => {
            remove_if_owned::<HorizontalPodAutoscaler>(client, namespace, &name, owner_uid).await?
        }
    }
    match &objects.disruption_budget {
        Some(budget) => drop(ensure(client, namespace, budget).await?),
        None => remove_if_owned::<PodDisruptionBudget>(client, namespace, &name, owner_uid).await?,
    }
    Ok(Applied {
        deployment,
        table_written,
    })
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
) -> Result<(Deployment, bool), ApplyError> {
    let name = desired.name_any();
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let live = read_live(&api, namespace, &name).await?;
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

/// Reads the live Deployment, for readiness, when nothing is applied.
pub async fn read_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Deployment>, ApplyError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|source| error::<Deployment>("read", namespace, name, source))
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

/// Server-side applies `desired` unless the live object already holds it. Returns the live
/// object and whether it was written.
async fn ensure<K>(client: &Client, namespace: &str, desired: &K) -> Result<(K, bool), ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let live = read_live(&api, namespace, &desired.name_any()).await?;
    apply_unless_held(&api, namespace, desired, live).await
}

async fn read_live<K>(api: &Api<K>, namespace: &str, name: &str) -> Result<Option<K>, ApplyError>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    api.get_opt(name)
        .await
        .map_err(|source| error::<K>("read", namespace, name, source))
}

async fn apply_unless_held<K>(
    api: &Api<K>,
    namespace: &str,
    desired: &K,
    live: Option<K>,
) -> Result<(K, bool), ApplyError>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
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

/// Deletes the object `name` when it exists and is controlled by the resource `owner_uid`.
async fn remove_if_owned<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    owner_uid: Option<&str>,
) -> Result<(), ApplyError>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let live = api
        .get_opt(name)
        .await
        .map_err(|source| error::<K>("read", namespace, name, source))?;
    let owned = live.is_some_and(|live| {
        live.owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == owner_uid)
    });
    if owned {
        api.delete(name, &DeleteParams::default())
            .await
            .map_err(|source| error::<K>("delete", namespace, name, source))?;
    }
    Ok(())
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
