//! ownership: which existing objects a resource may write. Pure.
//!
//! A child's name is derived from the resource's (`NAME-gateway`), so it can already be taken by
//! something else: a user's own Service, an object of an older resource of the same name that
//! the garbage collector has not removed yet. Writing it would take it over (server-side apply
//! with force rewrites its fields, and the owner reference would let the garbage collector
//! delete it with the resource). Only an object whose controller owner reference carries this
//! resource's uid is ours to change; any other is a [`Conflict`].

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// An existing object, with the name of a child, that the resource does not control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Its kind, e.g. `Service`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `Kind/name` of its controller, when it has one.
    pub controller: Option<String>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{} already exists and ",
            self.kind, self.namespace, self.name
        )?;
        match &self.controller {
            Some(controller) => write!(f, "is controlled by {controller}"),
            None => f.write_str("no controller owns it"),
        }
    }
}

fn controller_of(metadata: &ObjectMeta) -> Option<&OwnerReference> {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.controller == Some(true))
}

/// True when the object's controller owner reference names the resource `owner_uid`.
pub fn is_controlled_by(metadata: &ObjectMeta, owner_uid: Option<&str>) -> bool {
    owner_uid.is_some_and(|uid| controller_of(metadata).is_some_and(|owner| owner.uid == uid))
}

/// The conflict an existing object of kind `kind` makes, if it is not controlled by `owner_uid`.
pub fn conflict(kind: &str, metadata: &ObjectMeta, owner_uid: Option<&str>) -> Option<Conflict> {
    if is_controlled_by(metadata, owner_uid) {
        return None;
    }
    Some(Conflict {
        kind: kind.to_owned(),
        namespace: metadata.namespace.clone().unwrap_or_default(),
        name: metadata.name.clone().unwrap_or_default(),
        controller: controller_of(metadata).map(|owner| {
            let uid = if owner.uid.is_empty() {
                String::new()
            } else {
                format!(" (uid {})", owner.uid)
            };
            format!("{} {}{uid}", owner.kind, owner.name)
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(owners: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta {
            name: Some("payments-gateway".to_owned()),
            namespace: Some("shop".to_owned()),
            owner_references: Some(owners),
            ..ObjectMeta::default()
        }
    }

    fn owner(kind: &str, name: &str, uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "gatehouse.dev/v1alpha1".to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn only_the_controller_with_this_uid_makes_an_object_ours() {
        let ours = metadata(vec![owner("Gateway", "payments", "uid-1", true)]);
        assert_eq!(conflict("Service", &ours, Some("uid-1")), None);

        // A Gateway of the same name, deleted and created again: another uid.
        let older = conflict("Service", &ours, Some("uid-2")).unwrap();
        assert_eq!(
            older.to_string(),
            "Service shop/payments-gateway already exists and is controlled by Gateway payments \
             (uid uid-1)"
        );

        // An owner reference that is not the controller does not make it ours.
        let shared = metadata(vec![owner("Gateway", "payments", "uid-1", false)]);
        assert_eq!(
            conflict("Service", &shared, Some("uid-1"))
                .unwrap()
                .to_string(),
            "Service shop/payments-gateway already exists and no controller owns it"
        );

        // Without a uid (offline) nothing existing is ours.
        assert!(conflict("Service", &ours, None).is_some());
        assert!(!is_controlled_by(&metadata(Vec::new()), Some("uid-1")));
    }
}
