//! Runtime state: what must outlive any one route table. A table is rebuilt on every reload
//! (every Secret rotation, every new generation); the state requests build up — rate-limit
//! buckets, counts of requests in flight, upstream addresses and their passive health, Redis
//! connections — belongs to the one [`Runtime`] the
//! [`crate::reload::TableStore`] holds. Tables take shared handles to it, keyed by what
//! identifies each piece (a client and its limit, an upstream, an address), so an unchanged
//! client or upstream keeps its state across a reload, and state no table uses any more is
//! dropped (see [`registry`]).
//!
//! The refresher thread looks every upstream in use up again each `--resolve-interval-ms`
//! (see [`addresses`]).

pub mod addresses;
pub mod buckets;
pub mod hosts;
pub mod in_flight;
pub mod redis;
pub mod registry;
pub mod resolver;

use std::sync::Arc;
use std::time::Duration;

use addresses::{AddressBook, AddressEvent};
use buckets::BucketBook;
use in_flight::InFlightBook;
use redis::RedisBook;
use resolver::Resolver;

use crate::usage::UsageBook;

/// The state shared by every table; see the module doc.
#[derive(Debug, Default)]
pub struct Runtime {
    resolver: Resolver,
    /// Where each upstream in use is now, and the health of each address.
    pub addresses: AddressBook,
    /// Each client's rate-limit bucket.
    pub buckets: BucketBook,
    /// Requests in flight per route and per client, for concurrency limits.
    pub in_flight: InFlightBook,
    /// The Redis servers of global rate limits.
    pub redis: RedisBook,
    /// Who called which contract version last.
    pub usage: UsageBook,
}

impl Runtime {
    /// Empty state that looks upstreams up with `resolver`.
    pub fn new(resolver: Resolver) -> Self {
        Self {
            resolver,
            addresses: AddressBook::default(),
            buckets: BucketBook::default(),
            in_flight: InFlightBook::default(),
            redis: RedisBook::default(),
            usage: UsageBook::default(),
        }
    }

    /// The same, with `redis` (`--redis`) for tables that name no Redis server.
    pub fn with_redis(mut self, redis: RedisBook) -> Self {
        self.redis = redis;
        self
    }

    /// How upstreams are looked up.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// One refresher round: every upstream in use looked up again (blocking), state no table
    /// uses forgotten. Returns the address changes.
    pub fn refresh(&self) -> Vec<AddressEvent> {
        let round = self.resolver.round();
        let events = self.addresses.refresh(&|key| round.lookup(key));
        self.prune();
        events
    }

    /// Forgets state no table uses any more.
    pub fn prune(&self) {
        self.addresses.prune();
        self.buckets.prune();
        self.in_flight.prune();
        self.redis.prune();
    }

    /// Runs [`Runtime::refresh`] every `interval` on a thread of its own, logging each change
    /// once. Lookups block that thread, never a request.
    pub fn spawn_refresher(
        self: Arc<Self>,
        interval: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("upstream-resolver".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    for event in self.refresh() {
                        event.log();
                    }
                }
            })
    }
}
