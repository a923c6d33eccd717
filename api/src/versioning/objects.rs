//! The changes between two sets of objects (two checkouts of a repository, say): every
//! Contract's versions, and every Gateway's and EdgeService's inline contracts, by object.

use std::collections::BTreeMap;

use super::{Change, classify};
use crate::compile::contract_routes;
use crate::crd::ContractVersion;
use crate::resource::Bundle;

/// The changes to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectChanges {
    /// `KIND NAMESPACE/NAME`.
    pub object: String,
    /// Its changes, breaking first (see [`classify`]).
    pub changes: Vec<Change>,
}

/// The contract versions of every object of `bundle` that publishes some, by object.
fn published(bundle: &Bundle) -> BTreeMap<String, (&str, &[ContractVersion])> {
    let contracts = bundle.catalog.contracts().map(|c| {
        let namespace = c.metadata.namespace.as_deref().unwrap_or_default();
        let name = c.metadata.name.as_deref().unwrap_or_default();
        (
            format!("Contract {namespace}/{name}"),
            (namespace, c.spec.versions.as_slice()),
        )
    });
    let inline = bundle
        .resources
        .iter()
        .filter(|r| !r.contracts().is_empty())
        .map(|r| {
            let object = format!("{} {}/{}", r.kind().as_str(), r.namespace(), r.name());
            (object, (r.namespace(), r.contracts()))
        });
    contracts.chain(inline).collect()
}

/// Every change from `old` to `new`, by object (sorted); objects without changes are left out.
/// An object only in `old` has lost all its versions; one only in `new` has added them.
pub fn changes(old: &Bundle, new: &Bundle) -> Vec<ObjectChanges> {
    let (old, new) = (published(old), published(new));
    let objects: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    objects
        .into_iter()
        .filter_map(|object| {
            let field = if object.starts_with("Contract ") {
                "spec.versions"
            } else {
                "spec.contracts"
            };
            let routes = |side: &BTreeMap<String, (&str, &[ContractVersion])>| {
                side.get(object)
                    .map(|(namespace, versions)| contract_routes(namespace, versions))
                    .unwrap_or_default()
            };
            let changes = classify(field, &routes(&old), &routes(&new));
            (!changes.is_empty()).then(|| ObjectChanges {
                object: object.clone(),
                changes,
            })
        })
        .collect()
}
