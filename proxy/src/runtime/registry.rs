//! A registry of shared state that lives exactly as long as some table uses it: it hands out
//! one `Arc` per key and keeps only a `Weak` itself, so an entry no table holds any more is gone
//! (and [`Registry::prune`] forgets its key) without anyone having to list what was removed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Shared values by key; see the module doc. Only table builds and background work lock it,
/// never requests.
#[derive(Debug)]
pub struct Registry<K, V> {
    entries: Mutex<HashMap<K, Weak<V>>>,
}

impl<K, V> Default for Registry<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V> Registry<K, V> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Weak<V>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` while anything still holds it, else a new one from `make`; the flag
    /// is true when it is new.
    pub fn get_or_insert_with(&self, key: &K, make: impl FnOnce() -> V) -> (Arc<V>, bool) {
        let mut entries = self.lock();
        if let Some(live) = entries.get(key).and_then(Weak::upgrade) {
            return (live, false);
        }
        let value = Arc::new(make());
        entries.insert(key.clone(), Arc::downgrade(&value));
        (value, true)
    }

    /// Every value still in use, with its key; forgets the keys of the others.
    pub fn live(&self) -> Vec<(K, Arc<V>)> {
        let mut entries = self.lock();
        let mut live = Vec::with_capacity(entries.len());
        entries.retain(|key, weak| match weak.upgrade() {
            Some(value) => {
                live.push((key.clone(), value));
                true
            }
            None => false,
        });
        live
    }

    /// Forgets the keys of values nothing holds any more.
    pub fn prune(&self) {
        self.lock().retain(|_, weak| weak.strong_count() > 0);
    }

    /// Keys known (live, or dropped since the last prune).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no key is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_shares_one_value_while_held_and_is_forgotten_after() {
        let registry: Registry<&str, u32> = Registry::default();
        let (first, new) = registry.get_or_insert_with(&"a", || 1);
        assert!(new);
        let (again, new) = registry.get_or_insert_with(&"a", || 2);
        assert!(!new, "a held key is reused");
        assert!(Arc::ptr_eq(&first, &again));
        let (_b, _) = registry.get_or_insert_with(&"b", || 3);
        drop((first, again));
        assert_eq!(registry.len(), 2, "forgotten only when pruned");
        registry.prune();
        assert_eq!(registry.len(), 1);
        let live: Vec<_> = registry.live().into_iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(live, [("b", 3)]);
        let (fresh, new) = registry.get_or_insert_with(&"a", || 4);
        assert!(new, "a dropped key starts afresh");
        assert_eq!(*fresh, 4);
    }
}
