//! The operator's own route ConfigMap writes, so that their watch events do not bring the
//! resource back for a reconcile that would find nothing to do.
//!
//! The controllers watch the children they own, to repair what others change or delete. Each
//! write of a route ConfigMap — one per change of a resource — comes back as a watch event,
//! and that reconcile re-reads every child and re-compiles the table at the very moment the
//! proxies are taking the new one (for 2,000 routes: 60–200 ms of CPU on the machine of
//! `bench/RESULTS.md`). The write's answer carries the object's new `resourceVersion`; the
//! event that shows the same version is that write's echo and is dropped. The event often
//! arrives before the answer, so a write is announced first ([`OwnWrites::expect`]): while it
//! is in flight, the event of the ConfigMap holding the table being written (its digest
//! annotation) is its echo. Any other version or digest — someone else's edit, a deletion, a
//! relist after the watch restarted — passes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;

use crate::objects::DIGEST_ANNOTATION;

/// Where the operator's last write of one ConfigMap stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Write {
    /// About to be written with the table of this digest; no answer yet.
    InFlight(String),
    /// Its echo (of this resourceVersion) came before the write's answer, and was dropped.
    EchoSeen(String),
    /// Written: the answer gave this resourceVersion; its echo has not come yet.
    Written(String),
}

/// `namespace/name` → where the operator's last write of it stands.
#[derive(Clone, Debug, Default)]
pub struct OwnWrites(Arc<Mutex<HashMap<String, Write>>>);

impl OwnWrites {
    fn writes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Write>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Announces a write of `namespace/name` holding the table of `digest`.
    pub fn expect(&self, namespace: &str, name: &str, digest: &str) {
        self.writes().insert(
            format!("{namespace}/{name}"),
            Write::InFlight(digest.to_owned()),
        );
    }

    /// Remembers that writing `namespace/name` produced `version` (`None`: nothing was
    /// written after all).
    pub fn record(&self, namespace: &str, name: &str, version: Option<String>) {
        let key = format!("{namespace}/{name}");
        let mut writes = self.writes();
        match (writes.remove(&key), version) {
            // Its echo has come and gone already.
            (Some(Write::EchoSeen(seen)), Some(version)) if seen == version => {}
            (_, Some(version)) => {
                writes.insert(key, Write::Written(version));
            }
            (_, None) => {}
        }
    }

    /// [`Self::is_echo`] for the watch of the controller of `kind`: only for an object a
    /// resource of that kind controls (every kind's controller watches every route ConfigMap,
    /// and the first watch to see an echo takes it as seen).
    pub fn is_echo_for<K: ResourceExt>(&self, kind: &str, object: &K) -> bool {
        let ours = object
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && o.kind == kind);
        ours && self.is_echo(object)
    }

    /// True when `object`, as a watch shows it, is the echo of the operator's own last write
    /// (a version is seen once).
    pub fn is_echo<K: ResourceExt>(&self, object: &K) -> bool {
        let key = format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        );
        let mut writes = self.writes();
        let version = object.resource_version();
        match writes.get(&key) {
            Some(Write::Written(written)) if version.as_ref() == Some(written) => {
                writes.remove(&key);
                true
            }
            Some(Write::InFlight(digest))
                if object.annotations().get(DIGEST_ANNOTATION) == Some(digest) =>
            {
                match version {
                    Some(version) => writes.insert(key, Write::EchoSeen(version)),
                    None => writes.remove(&key),
                };
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn config_map(version: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("public-gateway".to_owned()),
                namespace: Some("shop".to_owned()),
                resource_version: Some(version.to_owned()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn only_the_echo_of_the_last_own_write_is_dropped_and_only_once() {
        let own = OwnWrites::default();
        assert!(!own.is_echo(&config_map("7")), "nothing written yet");
        own.record("shop", "public-gateway", Some("8".to_owned()));
        assert!(!own.is_echo(&config_map("7")), "an older version");
        assert!(own.is_echo(&config_map("8")), "the echo");
        assert!(
            !own.is_echo(&config_map("8")),
            "a relist shows it again: passes"
        );
        own.record("shop", "public-gateway", Some("9".to_owned()));
        assert!(!own.is_echo(&config_map("10")), "someone else's edit");
    }

    fn holding(version: &str, digest: &str) -> ConfigMap {
        let mut config_map = config_map(version);
        config_map.metadata.annotations = Some(
            [(DIGEST_ANNOTATION.to_owned(), digest.to_owned())]
                .into_iter()
                .collect(),
        );
        config_map
    }

    #[test]
    fn only_the_controlling_kind_s_watch_takes_the_echo() {
        let own = OwnWrites::default();
        let mut written = config_map("8");
        written.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                kind: "Gateway".to_owned(),
                controller: Some(true),
                ..Default::default()
            },
        ]);
        own.record("shop", "public-gateway", Some("8".to_owned()));
        // The EdgeService and Aggregator controllers' watches see it first: not theirs.
        assert!(!own.is_echo_for("EdgeService", &written));
        assert!(!own.is_echo_for("Aggregator", &written));
        assert!(
            own.is_echo_for("Gateway", &written),
            "still known as the echo"
        );
    }

    #[test]
    fn an_echo_before_the_write_s_answer_is_dropped_by_the_digest_being_written() {
        let own = OwnWrites::default();
        own.expect("shop", "public-gateway", "sha256:new");
        assert!(
            !own.is_echo(&holding("7", "sha256:old")),
            "another table: someone else's"
        );
        assert!(own.is_echo(&holding("8", "sha256:new")), "the echo, early");
        // The answer comes: the echo is not awaited again, and nothing else is dropped.
        own.record("shop", "public-gateway", Some("8".to_owned()));
        assert!(!own.is_echo(&holding("8", "sha256:new")), "a relist");
        assert!(!own.is_echo(&holding("9", "sha256:new")), "a later edit");

        // Announced, then not written (the ConfigMap held the table already): nothing dropped.
        own.expect("shop", "public-gateway", "sha256:same");
        own.record("shop", "public-gateway", None);
        assert!(!own.is_echo(&holding("10", "sha256:same")));
    }
}
