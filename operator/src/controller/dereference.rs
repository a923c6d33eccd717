//! dereference: read what a resource references — the Services and Aggregators of its
//! namespace, one list per kind and only for kinds it references; and each Secret it reads
//! certificates from (its HTTPS listener's, its clients' and its TLS backends' authorities, the
//! certificate it presents to backends), read by name and checked as the proxy will load it
//! (never logged, never kept).

use std::collections::BTreeMap;

use gatehouse_api::certificate::{certificate_authorities, certified_key, redis_password};
use gatehouse_api::crd::Aggregator;
use gatehouse_api::route_table::RouteTable;
use gatehouse_api::table_file;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tracing::warn;

use crate::plan::Found;
use crate::references::{References, SecretUse};

/// Why the references could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DereferenceError {
    /// Listing Services failed.
    #[error("cannot list Services in {namespace}: {source}")]
    Services {
        /// The namespace.
        namespace: String,
        /// The API error.
        source: kube::Error,
    },
    /// Reading a certificate Secret failed (not: it does not exist).
    #[error("cannot read Secret {namespace}/{name}: {source}")]
    Secret {
        /// The namespace.
        namespace: String,
        /// The Secret.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Reading the route ConfigMap failed (not: it does not exist).
    #[error("cannot read ConfigMap {namespace}/{name}: {source}")]
    ConfigMap {
        /// The namespace.
        namespace: String,
        /// The ConfigMap.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Listing Aggregators failed.
    #[error("cannot list Aggregators in {namespace}: {source}")]
    Aggregators {
        /// The namespace.
        namespace: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Which referenced Services and Aggregators exist in `namespace`, with the Aggregators' ports.
pub async fn dereference(
    client: &Client,
    namespace: &str,
    references: &References,
) -> Result<Found, DereferenceError> {
    let mut found = Found {
        services: Some(Default::default()),
        contract_services: BTreeMap::new(),
        aggregators: BTreeMap::new(),
        aggregators_complete: true,
        certificate_problems: BTreeMap::new(),
        catalog: Default::default(),
        compiled: None,
        in_use: None,
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for (used, name) in &references.secrets {
        let secret = secrets
            .get_opt(name)
            .await
            .map_err(|source| DereferenceError::Secret {
                namespace: namespace.to_owned(),
                name: name.clone(),
                source,
            })?;
        let data = secret.map(|secret| {
            let data = secret.data.unwrap_or_default();
            data.into_iter()
                .map(|(key, value)| (key, value.0))
                .collect::<BTreeMap<_, _>>()
        });
        let problem = match used {
            SecretUse::RedisPassword => redis_password(name, data.as_ref()).err(),
            used if used.is_certificate() => certified_key(name, data.as_ref()).err(),
            _ => certificate_authorities(name, data.as_ref()).err(),
        };
        if let Some(problem) = problem {
            found
                .certificate_problems
                .insert((*used, name.clone()), problem);
        }
    }
    if !references.services.is_empty() {
        found.services = Some(service_names(client, namespace).await?);
    }
    // The exposed Contracts' Services, one list per namespace (the own one listed once).
    for (contract_namespace, _) in references.contract_services.keys() {
        if found.contract_services.contains_key(contract_namespace) {
            continue;
        }
        let names = match &found.services {
            Some(names) if contract_namespace == namespace && !references.services.is_empty() => {
                names.clone()
            }
            _ => service_names(client, contract_namespace).await?,
        };
        found
            .contract_services
            .insert(contract_namespace.clone(), names);
    }
    if !references.aggregators.is_empty() {
        let aggregators: Api<Aggregator> = Api::namespaced(client.clone(), namespace);
        let list = aggregators
            .list(&ListParams::default())
            .await
            .map_err(|source| DereferenceError::Aggregators {
                namespace: namespace.to_owned(),
                source,
            })?;
        found.aggregators = list
            .items
            .iter()
            .map(|a| {
                let port = u16::try_from(a.spec.service.port).unwrap_or(80);
                (a.name_any(), port)
            })
            .collect();
    }
    Ok(found)
}

/// The names of the Services of `namespace` (their metadata only).
async fn service_names(
    client: &Client,
    namespace: &str,
) -> Result<std::collections::BTreeSet<String>, DereferenceError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let list = services
        .list_metadata(&ListParams::default())
        .await
        .map_err(|source| DereferenceError::Services {
            namespace: namespace.to_owned(),
            source,
        })?;
    Ok(list.items.iter().map(ResourceExt::name_any).collect())
}

/// The route table that the ConfigMap `name` of `namespace` holds, when the resource with UID
/// `owner_uid` controls it: what its proxies serve (or are about to), which a new compile
/// keeps the last good routes of its exposed Contracts from. `None` when there is no such
/// ConfigMap, another owner's, or one whose table cannot be read (logged: the Contracts that
/// cannot be served as they are now then lose their routes).
pub async fn served_table(
    client: &Client,
    namespace: &str,
    name: &str,
    owner_uid: Option<&str>,
) -> Result<Option<RouteTable>, DereferenceError> {
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let config_map =
        config_maps
            .get_opt(name)
            .await
            .map_err(|source| DereferenceError::ConfigMap {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            })?;
    let Some(config_map) = config_map else {
        return Ok(None);
    };
    let controlled = config_map
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == owner_uid);
    if !controlled {
        return Ok(None);
    }
    let read = table_file::from_config_map(&config_map).map(|bytes| {
        bytes
            .map_err(|e| e.to_string())
            .and_then(|bytes| RouteTable::from_bytes(&bytes).map_err(|e| e.to_string()))
    });
    match read {
        Some(Ok(table)) => Ok(Some(table)),
        Some(Err(error)) => {
            warn!(%namespace, %name, %error, "the route ConfigMap's table cannot be read");
            Ok(None)
        }
        None => Ok(None),
    }
}
