//! The operator's own route ConfigMap writes, so that their watch events do not bring the
//! resource back for a reconcile that would find nothing to do.
//!
//! The controllers watch the children they own, to repair what others change or delete. Each
//! write of a route ConfigMap — one per change of a resource — comes back as a watch event,
//! and that reconcile re-reads every child and re-compiles the table at the very moment the
//! proxies are taking the new one (for 2,000 routes: 60–200 ms of CPU on the machine of
//! `bench/RESULTS.md`). The write's answer carries the object's new `resourceVersion`; the
//! event that shows the same version is that write's echo and is dropped. Any other version —
//! someone else's edit, a deletion, a relist after the watch restarted — passes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;

/// `namespace/name` → the resourceVersion the operator's last write of it produced.
#[derive(Clone, Debug, Default)]
pub struct OwnWrites(Arc<Mutex<HashMap<String, String>>>);

impl OwnWrites {
    /// Remembers that writing `namespace/name` produced `version`.
    pub fn record(&self, namespace: &str, name: &str, version: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(format!("{namespace}/{name}"), version);
    }

    /// True when `object`, as a watch shows it, is the echo of the operator's own last write
    /// (then forgotten: a version is seen once).
    pub fn is_echo<K: ResourceExt>(&self, object: &K) -> bool {
        let key = format!(
            "{}/{}",
            object.namespace().unwrap_or_default(),
            object.name_any()
        );
        let mut versions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if versions
            .get(&key)
            .is_some_and(|v| object.resource_version().as_ref() == Some(v))
        {
            versions.remove(&key);
            return true;
        }
        false
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
        own.record("shop", "public-gateway", "8".to_owned());
        assert!(!own.is_echo(&config_map("7")), "an older version");
        assert!(own.is_echo(&config_map("8")), "the echo");
        assert!(
            !own.is_echo(&config_map("8")),
            "a relist shows it again: passes"
        );
        own.record("shop", "public-gateway", "9".to_owned());
        assert!(!own.is_echo(&config_map("10")), "someone else's edit");
    }
}
