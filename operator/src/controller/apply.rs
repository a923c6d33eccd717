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
    let (deployment, _) = ensure(client, namespace, &objects.deployment).await?;
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
    let name = desired.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let live = api
        .get_opt(&name)
        .await
        .map_err(|source| error::<K>("read", namespace, &name, source))?;
    if let Some(live) = live
        && holds(desired, &live)
    {
        return Ok((live, false));
    }
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
