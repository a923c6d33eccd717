//! The address book: where each upstream in use is now. One entry per upstream (service, host,
//! port), shared by every route and aggregation step of every table that names it, holding its
//! current [`Endpoint`] — an address and that address's passive health record — behind an
//! atomic pointer, so a request reads it with one atomic load and never waits on DNS.
//!
//! A new entry is looked up when the table that first names it is built; after that the
//! background refresher looks every entry up again each `--resolve-interval-ms` and swaps in a
//! new endpoint when the address moved. A lookup that fails keeps the last good address. Each
//! change (first address, move, first failure or a new reason, recovery) is one
//! [`AddressEvent`], logged once; rounds that change nothing say nothing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::{ArcSwapOption, Guard};
use gatehouse_api::route_table::Upstream;
#[cfg(test)]
use gatehouse_api::route_table::UpstreamProtocol;

use super::registry::Registry;
use crate::upstream::UpstreamHealth;

/// What identifies an upstream's address: overrides match its service or host, the hosts file
/// and DNS its host, and the port is its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UpstreamKey {
    /// Service name as written in the resource.
    pub service: String,
    /// Host name looked up.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl UpstreamKey {
    /// The key of a table's upstream.
    pub fn of(upstream: &Upstream) -> Self {
        Self {
            service: upstream.service.clone(),
            host: upstream.host.clone(),
            port: upstream.port,
        }
    }
}

impl std::fmt::Display for UpstreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}:{})", self.service, self.host, self.port)
    }
}

/// Where an upstream is now.
#[derive(Debug)]
pub struct Endpoint {
    /// Its address.
    pub address: SocketAddr,
    /// Passive health of that address (shared with every upstream at the same address).
    pub health: Arc<UpstreamHealth>,
}

/// One upstream's current endpoint; see the module doc.
#[derive(Debug, Default)]
pub struct ResolvedUpstream {
    current: ArcSwapOption<Endpoint>,
    /// The reason of the failing lookups since the last success (what was logged).
    failure: Mutex<Option<String>>,
}

impl ResolvedUpstream {
    /// An upstream fixed at `address` (tests of what uses endpoints).
    #[cfg(test)]
    pub(crate) fn fixed(address: SocketAddr) -> Self {
        let resolved = Self::default();
        resolved.current.store(Some(Arc::new(Endpoint {
            address,
            health: Arc::default(),
        })));
        resolved
    }

    /// The current endpoint (one atomic load, no lock, no allocation); `None` until the first
    /// lookup succeeds.
    pub fn endpoint(&self) -> Guard<Option<Arc<Endpoint>>> {
        self.current.load()
    }

    /// The current address.
    pub fn address(&self) -> Option<SocketAddr> {
        self.endpoint().as_ref().map(|e| e.address)
    }

    /// Why the lookups fail, while they do.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies one lookup's outcome; the change, if it is one.
    fn apply(
        &self,
        key: &UpstreamKey,
        outcome: Result<SocketAddr, String>,
        health: &Registry<SocketAddr, UpstreamHealth>,
    ) -> Option<AddressEvent> {
        // Serialises the build's first lookup with the refresher's.
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.address();
        match outcome {
            Ok(address) if current == Some(address) => {
                failure.take().map(|_| AddressEvent::Recovered {
                    key: key.clone(),
                    address,
                })
            }
            Ok(address) => {
                *failure = None;
                let (health, _) = health.get_or_insert_with(&address, UpstreamHealth::default);
                self.current
                    .store(Some(Arc::new(Endpoint { address, health })));
                Some(AddressEvent::Resolved {
                    key: key.clone(),
                    from: current,
                    to: address,
                })
            }
            Err(reason) if failure.as_deref() == Some(reason.as_str()) => None,
            Err(reason) => {
                *failure = Some(reason.clone());
                Some(AddressEvent::Failed {
                    key: key.clone(),
                    reason,
                    keeping: current,
                })
            }
        }
    }
}

/// A change of an upstream's address book entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressEvent {
    /// The upstream resolved for the first time (`from` is `None`) or moved.
    Resolved {
        /// The upstream.
        key: UpstreamKey,
        /// The previous address.
        from: Option<SocketAddr>,
        /// The new one.
        to: SocketAddr,
    },
    /// A lookup failed (the first failure, or a different reason than the last).
    Failed {
        /// The upstream.
        key: UpstreamKey,
        /// Why.
        reason: String,
        /// The last good address, still used.
        keeping: Option<SocketAddr>,
    },
    /// Lookups work again and still give the address that was kept.
    Recovered {
        /// The upstream.
        key: UpstreamKey,
        /// Its address.
        address: SocketAddr,
    },
}

impl AddressEvent {
    /// Writes the event to the log.
    pub fn log(&self) {
        match self {
            Self::Resolved { key, from, to } => match from {
                Some(from) => tracing::info!("upstream {key} moved from {from} to {to}"),
                None => tracing::info!("upstream {key} resolves to {to}"),
            },
            Self::Failed {
                key,
                reason,
                keeping: Some(address),
            } => tracing::warn!("upstream {key} does not resolve ({reason}); keeping {address}"),
            Self::Failed {
                key,
                reason,
                keeping: None,
            } => tracing::warn!(
                "upstream {key} does not resolve ({reason}); requests to it answer 503 until it does"
            ),
            Self::Recovered { key, address } => {
                tracing::info!("upstream {key} resolves again, still to {address}");
            }
        }
    }
}

/// How one upstream is looked up (a [`super::resolver::LookupRound`], or a test's stand-in).
pub type Lookup<'a> = dyn Fn(&UpstreamKey) -> Result<SocketAddr, String> + 'a;

/// Every upstream in use and the health of every address in use; see the module doc.
#[derive(Debug, Default)]
pub struct AddressBook {
    entries: Registry<UpstreamKey, ResolvedUpstream>,
    health: Registry<SocketAddr, UpstreamHealth>,
}

impl AddressBook {
    /// The entry of `upstream`, shared with every table that still holds it. A new entry is
    /// looked up with `lookup` now (a failure leaves it without address; the table build
    /// reports it); an existing one is left to the refresher.
    pub fn entry(&self, upstream: &Upstream, lookup: &Lookup<'_>) -> Arc<ResolvedUpstream> {
        let key = UpstreamKey::of(upstream);
        let (entry, new) = self
            .entries
            .get_or_insert_with(&key, ResolvedUpstream::default);
        if new {
            entry.apply(&key, lookup(&key), &self.health);
        }
        entry
    }

    /// Looks every upstream still in use up again (blocking: the refresher's thread calls it)
    /// and returns the changes.
    pub fn refresh(&self, lookup: &Lookup<'_>) -> Vec<AddressEvent> {
        self.entries
            .live()
            .into_iter()
            .filter_map(|(key, entry)| entry.apply(&key, lookup(&key), &self.health))
            .collect()
    }

    /// Forgets upstreams and addresses no table uses any more.
    pub fn prune(&self) {
        self.entries.prune();
        self.health.prune();
    }

    /// Upstreams known (in use, or dropped since the last prune).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no upstream is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Addresses with a health record (in use, or dropped since the last prune).
    pub fn health_records(&self) -> usize {
        self.health.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    fn upstream(service: &str) -> Upstream {
        Upstream {
            service: service.to_owned(),
            host: format!("{service}.shop.svc"),
            port: 80,
            path: None,
            weight: 1,
            protocol: UpstreamProtocol::Http1,
            tls: None,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    /// A lookup the test controls: host → address, anything else fails.
    struct Dns(RefCell<HashMap<String, SocketAddr>>);

    impl Dns {
        fn new() -> Self {
            Self(RefCell::new(HashMap::new()))
        }
        fn set(&self, host: &str, address: Option<SocketAddr>) {
            let mut names = self.0.borrow_mut();
            match address {
                Some(a) => names.insert(host.to_owned(), a),
                None => names.remove(host),
            };
        }
        fn lookup(&self, key: &UpstreamKey) -> Result<SocketAddr, String> {
            self.0
                .borrow()
                .get(&key.host)
                .copied()
                .ok_or_else(|| "no such host".to_owned())
        }
    }

    #[test]
    fn a_late_name_resolves_moves_and_keeps_its_last_address_when_lookups_fail() {
        let book = AddressBook::default();
        let dns = Dns::new();
        let lookup = |k: &UpstreamKey| dns.lookup(k);
        let orders = book.entry(&upstream("orders"), &lookup);
        assert_eq!(orders.address(), None, "not there yet");
        assert_eq!(orders.failure().as_deref(), Some("no such host"));
        let key = UpstreamKey::of(&upstream("orders"));

        assert_eq!(
            book.refresh(&lookup),
            [],
            "the same failure is not reported twice"
        );
        dns.set("orders.shop.svc", Some(addr(1)));
        assert_eq!(
            book.refresh(&lookup),
            [AddressEvent::Resolved {
                key: key.clone(),
                from: None,
                to: addr(1)
            }]
        );
        assert_eq!(orders.address(), Some(addr(1)), "the table's entry sees it");
        assert_eq!(book.refresh(&lookup), [], "no change, no event");

        dns.set("orders.shop.svc", Some(addr(2)));
        assert_eq!(
            book.refresh(&lookup),
            [AddressEvent::Resolved {
                key: key.clone(),
                from: Some(addr(1)),
                to: addr(2)
            }]
        );
        assert_eq!(orders.address(), Some(addr(2)));

        dns.set("orders.shop.svc", None);
        assert_eq!(
            book.refresh(&lookup),
            [AddressEvent::Failed {
                key: key.clone(),
                reason: "no such host".to_owned(),
                keeping: Some(addr(2))
            }]
        );
        assert_eq!(book.refresh(&lookup), []);
        assert_eq!(orders.address(), Some(addr(2)), "the last good address");

        dns.set("orders.shop.svc", Some(addr(2)));
        assert_eq!(
            book.refresh(&lookup),
            [AddressEvent::Recovered {
                key,
                address: addr(2)
            }]
        );
        assert_eq!(orders.failure(), None);
    }

    #[test]
    fn tables_share_entries_and_health_follows_the_address() {
        let book = AddressBook::default();
        let dns = Dns::new();
        dns.set("orders.shop.svc", Some(addr(1)));
        dns.set("billing.shop.svc", Some(addr(1)));
        let lookup = |k: &UpstreamKey| dns.lookup(k);
        let first = book.entry(&upstream("orders"), &lookup);
        let second = book.entry(&upstream("orders"), &lookup);
        assert!(Arc::ptr_eq(&first, &second), "one entry per upstream");
        let billing = book.entry(&upstream("billing"), &lookup);
        let health = |e: &ResolvedUpstream| e.endpoint().as_ref().unwrap().health.clone();
        assert!(
            Arc::ptr_eq(&health(&first), &health(&billing)),
            "one health record per address"
        );

        for _ in 0..crate::upstream::EJECT_AFTER_FAILURES {
            health(&first).connect_failed(0);
        }
        assert!(!health(&billing).is_available(0), "the address is ejected");
        dns.set("orders.shop.svc", Some(addr(2)));
        book.refresh(&lookup);
        assert!(
            health(&first).is_available(0),
            "a moved upstream takes the record of its new address"
        );
        assert!(
            !health(&billing).is_available(0),
            "the old address stays ejected"
        );
        assert_eq!(book.health_records(), 2);

        drop((first, second));
        book.prune();
        assert_eq!(book.len(), 1, "an upstream no table holds is forgotten");
        assert_eq!(book.health_records(), 1, "and so is its address's record");
        let again = book.entry(&upstream("orders"), &lookup);
        assert_eq!(again.address(), Some(addr(2)), "looked up afresh");
    }
}
