//! dereference: read what a resource references — the Services and Aggregators of its
//! namespace, one list per kind and only for kinds it references; and each Secret it reads
//! certificates from (its HTTPS listener's, its clients' and its TLS backends' authorities, the
//! certificate it presents to backends), read by name and checked as the proxy will load it
//! (never logged, never kept).

use std::collections::BTreeMap;

use gatehouse_api::certificate::{certificate_authorities, certified_key, redis_password};
use gatehouse_api::crd::Aggregator;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

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
        aggregators: BTreeMap::new(),
        aggregators_complete: true,
        certificate_problems: BTreeMap::new(),
        catalog: Default::default(),
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
        let services: Api<Service> = Api::namespaced(client.clone(), namespace);
        let list = services
            .list_metadata(&ListParams::default())
            .await
            .map_err(|source| DereferenceError::Services {
                namespace: namespace.to_owned(),
                source,
            })?;
        found.services = Some(list.items.iter().map(ResourceExt::name_any).collect());
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
