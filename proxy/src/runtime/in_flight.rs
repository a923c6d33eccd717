//! Concurrency limits, kept across table reloads: one count of requests in flight per route and
//! per client. A reload hands the new table the same count (requests the old table admitted
//! still hold their permits), so a limit holds while tables change; the limit itself is the
//! table's and may change with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::registry::Registry;

/// Whose requests a count counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InFlightKey {
    /// A route, by id.
    Route(String),
    /// A client, by name.
    Client(String),
}

/// Every count while a table uses it.
#[derive(Debug, Default)]
pub struct InFlightBook {
    counts: Registry<InFlightKey, AtomicUsize>,
}

impl InFlightBook {
    /// The limit `max` on the count of `key` (shared with every table that counts `key`).
    pub fn limit(&self, key: &InFlightKey, max: usize) -> ConcurrencyLimit {
        ConcurrencyLimit {
            count: self.counts.get_or_insert_with(key, AtomicUsize::default).0,
            max,
        }
    }

    /// Forgets counts no table uses any more.
    pub fn prune(&self) {
        self.counts.prune();
    }
}

/// At most `max` requests at once.
#[derive(Debug)]
pub struct ConcurrencyLimit {
    count: Arc<AtomicUsize>,
    max: usize,
}

impl ConcurrencyLimit {
    /// A permit for one more request, unless `max` are in flight already.
    pub fn try_acquire(&self) -> Option<Permit> {
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit {
                count: self.count.clone(),
            })
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// As many requests in flight as the limit allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saturated;

/// One request in flight; dropping it ends it.
#[derive(Debug)]
pub struct Permit {
    count: Arc<AtomicUsize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_counted_until_dropped_and_shared_across_tables() {
        let book = InFlightBook::default();
        let key = InFlightKey::Route("v1/orders".into());
        let old_table = book.limit(&key, 2);
        let first = old_table.try_acquire().expect("room for one");
        let _second = old_table.try_acquire().expect("room for two");
        assert!(old_table.try_acquire().is_none(), "the third waits");
        // A reload: the new table sees the old table's requests, under its own limit.
        let new_table = book.limit(&key, 3);
        assert_eq!(new_table.in_flight(), 2);
        let _third = new_table.try_acquire().expect("room under the new limit");
        assert!(new_table.try_acquire().is_none());
        drop(first);
        assert_eq!(new_table.in_flight(), 2);
        assert!(new_table.try_acquire().is_some());
        // Another key counts on its own.
        let client = book.limit(&InFlightKey::Client("v1/orders".into()), 1);
        assert_eq!(client.in_flight(), 0);
    }
}
