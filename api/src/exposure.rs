//! Which Contract resources a Gateway or EdgeService exposes: its `expose` entries resolved
//! against the Contracts and ContractGrants there are. Pure: the operator passes what its
//! caches hold, `render` and standalone mode what the files hold.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::core::{Selector, SelectorExt};

use crate::crd::{Contract, ContractExposure, ContractGrant, ExposingKind};

/// The Contracts and ContractGrants a compile can see, by namespace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    /// Contracts by namespace, then name.
    contracts: BTreeMap<String, BTreeMap<String, Arc<Contract>>>,
    /// Grants by namespace.
    grants: BTreeMap<String, Vec<Arc<ContractGrant>>>,
}

impl Catalog {
    /// A catalog of these objects; an object without a namespace is in `default`.
    pub fn new(
        contracts: impl IntoIterator<Item = Arc<Contract>>,
        grants: impl IntoIterator<Item = Arc<ContractGrant>>,
    ) -> Self {
        let mut catalog = Self::default();
        for contract in contracts {
            catalog
                .contracts
                .entry(namespace_of(&contract.metadata).to_owned())
                .or_default()
                .insert(contract.metadata.name.clone().unwrap_or_default(), contract);
        }
        for grant in grants {
            catalog
                .grants
                .entry(namespace_of(&grant.metadata).to_owned())
                .or_default()
                .push(grant);
        }
        catalog
    }

    /// Whether it holds no Contract.
    pub fn is_empty(&self) -> bool {
        self.contracts.values().all(BTreeMap::is_empty)
    }

    /// The Contract `namespace/name`.
    pub fn contract(&self, namespace: &str, name: &str) -> Option<&Arc<Contract>> {
        self.contracts.get(namespace)?.get(name)
    }

    /// Every Contract, by namespace and name.
    pub fn contracts(&self) -> impl Iterator<Item = &Arc<Contract>> {
        self.contracts.values().flat_map(BTreeMap::values)
    }

    /// Whether `exposer` may expose the Contract `name` of `namespace`: always in its own
    /// namespace, elsewhere when a ContractGrant of that namespace lets it.
    pub fn permits(&self, namespace: &str, name: &str, exposer: &Exposer<'_>) -> bool {
        namespace == exposer.namespace
            || self.grants.get(namespace).is_some_and(|grants| {
                grants.iter().any(|grant| {
                    let spec = &grant.spec;
                    (spec.contracts.is_empty() || spec.contracts.iter().any(|c| c == name))
                        && spec.from.iter().any(|from| {
                            from.namespace == exposer.namespace
                                && from.kind.is_none_or(|kind| kind == exposer.kind)
                                && from.name.as_deref().is_none_or(|n| n == exposer.name)
                        })
                })
            })
    }
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// Whether an exposer in `exposer_namespace` with these `expose` entries picks, or would pick,
/// the Contract whose metadata is `contract`: an entry of its namespace names it or has a
/// selector its labels match (a selector that cannot be read matches nothing). For watches:
/// which exposers a changed Contract concerns.
pub fn picks(
    expose: &[ContractExposure],
    exposer_namespace: &str,
    contract: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    let name = contract.name.as_deref().unwrap_or_default();
    let no_labels = BTreeMap::new();
    let labels = contract.labels.as_ref().unwrap_or(&no_labels);
    expose.iter().any(|entry| {
        entry.namespace.as_deref().unwrap_or(exposer_namespace) == namespace_of(contract)
            && match (&entry.contract, &entry.selector) {
                (Some(wanted), _) => wanted == name,
                (None, Some(selector)) => {
                    Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels))
                }
                (None, None) => false,
            }
    })
}

/// Whether these `expose` entries of an exposer in `exposer_namespace` reach into `namespace`,
/// another namespace, where ContractGrants decide. For watches: which exposers a changed grant
/// concerns.
pub fn reaches_into(expose: &[ContractExposure], exposer_namespace: &str, namespace: &str) -> bool {
    namespace != exposer_namespace
        && expose
            .iter()
            .any(|entry| entry.namespace.as_deref() == Some(namespace))
}

/// The Gateway or EdgeService that exposes contracts.
#[derive(Clone, Copy, Debug)]
pub struct Exposer<'a> {
    /// Its kind.
    pub kind: ExposingKind,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
}

impl Exposer<'_> {
    /// `Gateway NAMESPACE/NAME`.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            ExposingKind::Gateway => "Gateway",
            ExposingKind::EdgeService => "EdgeService",
        };
        format!("{kind} {}/{}", self.namespace, self.name)
    }
}

/// A Contract an `expose` entry picked.
#[derive(Clone, Debug)]
pub struct Picked {
    /// The Contract.
    pub contract: Arc<Contract>,
    /// The versions exposed, in the Contract's order: those the entries name that it has, or
    /// all of its versions.
    pub versions: Vec<String>,
    /// Versions an entry names that the Contract does not publish.
    pub missing_versions: Vec<String>,
    /// The first entry that picked it: `spec.expose[N]`.
    pub at: String,
    /// Whether the exposer may expose it (its own namespace, or a grant).
    pub permitted: bool,
}

impl Picked {
    /// The Contract's namespace.
    pub fn namespace(&self) -> &str {
        namespace_of(&self.contract.metadata)
    }

    /// The Contract's name.
    pub fn name(&self) -> &str {
        self.contract.metadata.name.as_deref().unwrap_or_default()
    }
}

/// An `expose` entry that resolves to nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// The entry: `spec.expose[N]`.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// What a resource's `expose` entries resolve to.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    /// The Contracts picked, each once, oldest first (by creation, then namespace and name):
    /// the order in which they claim requests.
    pub picked: Vec<Picked>,
    /// Entries that name no Contract, or whose selector cannot be read.
    pub unresolved: Vec<Unresolved>,
}

/// Resolves `expose` for `exposer` against `catalog`.
pub fn resolve(
    exposer: &Exposer<'_>,
    expose: &[ContractExposure],
    catalog: &Catalog,
) -> Resolution {
    let mut picked: BTreeMap<(String, String), Picked> = BTreeMap::new();
    let mut unresolved = Vec::new();
    for (i, entry) in expose.iter().enumerate() {
        let at = format!("spec.expose[{i}]");
        let namespace = entry.namespace.as_deref().unwrap_or(exposer.namespace);
        let found: Vec<&Arc<Contract>> = match (&entry.contract, &entry.selector) {
            (Some(name), _) => match catalog.contract(namespace, name) {
                Some(contract) => vec![contract],
                None => {
                    unresolved.push(Unresolved {
                        at: format!("{at}.contract"),
                        message: format!("no Contract {namespace}/{name}"),
                    });
                    continue;
                }
            },
            (None, Some(selector)) => match Selector::try_from(selector.clone()) {
                Ok(selector) => catalog
                    .contracts
                    .get(namespace)
                    .into_iter()
                    .flat_map(BTreeMap::values)
                    .filter(|c| {
                        selector.matches(c.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
                    })
                    .collect(),
                Err(e) => {
                    unresolved.push(Unresolved {
                        at: format!("{at}.selector"),
                        message: format!("the selector cannot be read: {e}"),
                    });
                    continue;
                }
            },
            // The schema requires one of the two.
            (None, None) => continue,
        };
        for contract in found {
            let name = contract.metadata.name.clone().unwrap_or_default();
            let published: Vec<&str> = contract
                .spec
                .versions
                .iter()
                .map(|v| v.version.as_str())
                .collect();
            let pick = picked
                .entry((namespace.to_owned(), name.clone()))
                .or_insert_with(|| Picked {
                    contract: contract.clone(),
                    versions: Vec::new(),
                    missing_versions: Vec::new(),
                    at: at.clone(),
                    permitted: catalog.permits(namespace, &name, exposer),
                });
            if entry.versions.is_empty() {
                pick.versions = published.iter().map(|v| (*v).to_owned()).collect();
            } else {
                for version in &entry.versions {
                    if !published.contains(&version.as_str()) {
                        pick.missing_versions.push(version.clone());
                    } else if !pick.versions.contains(version) {
                        pick.versions.push(version.clone());
                    }
                }
                // In the Contract's order.
                pick.versions
                    .sort_by_key(|v| published.iter().position(|p| p == v));
            }
        }
    }
    let mut picked: Vec<Picked> = picked.into_values().collect();
    for pick in &mut picked {
        pick.missing_versions.sort();
        pick.missing_versions.dedup();
    }
    picked.sort_by(|a, b| {
        let created = |p: &Picked| p.contract.metadata.creation_timestamp.clone().map(|t| t.0);
        // Without a creation time (files), after every timed one, then by namespace and name.
        (created(a).is_none(), created(a), a.namespace(), a.name()).cmp(&(
            created(b).is_none(),
            created(b),
            b.namespace(),
            b.name(),
        ))
    });
    Resolution { picked, unresolved }
}
