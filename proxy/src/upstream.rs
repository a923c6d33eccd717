//! Upstream endpoints: address resolution (with `--resolve` overrides), passive health
//! (ejection after consecutive connect failures) and the weighted choice between a route's
//! upstreams.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gatehouse_api::route_table::Upstream;

use crate::rewrite::PathRewrite;

/// Consecutive connect failures after which an upstream address is ejected.
pub const EJECT_AFTER_FAILURES: u32 = 3;
/// How long an ejected address gets no traffic before it is tried again.
pub const EJECT_FOR: Duration = Duration::from_secs(10);

/// Maps upstream names to addresses: `--resolve` overrides first, then DNS.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    overrides: HashMap<String, SocketAddr>,
}

/// A `--resolve NAME=HOST:PORT` that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No `=`.
    #[error("--resolve {0:?}: expected NAME=HOST:PORT")]
    Shape(String),
    /// The target does not resolve.
    #[error("--resolve {text:?}: {reason}")]
    Target {
        /// The argument.
        text: String,
        /// Why.
        reason: String,
    },
}

impl Resolver {
    /// Builds a resolver from `NAME=HOST:PORT` overrides; `NAME` matches an upstream's service
    /// name or its host.
    pub fn from_overrides<'a>(
        specs: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ResolveError> {
        let mut overrides = HashMap::new();
        for spec in specs {
            let (name, target) = spec
                .split_once('=')
                .ok_or_else(|| ResolveError::Shape(spec.to_owned()))?;
            let address = target
                .to_socket_addrs()
                .map_err(|e| ResolveError::Target {
                    text: spec.to_owned(),
                    reason: e.to_string(),
                })?
                .next()
                .ok_or_else(|| ResolveError::Target {
                    text: spec.to_owned(),
                    reason: "resolves to no address".to_owned(),
                })?;
            overrides.insert(name.to_ascii_lowercase(), address);
        }
        Ok(Self { overrides })
    }

    /// The address of `upstream`, or why there is none. Blocks on DNS: call it off the
    /// request path (table loads do).
    pub fn resolve(&self, upstream: &Upstream) -> Result<SocketAddr, String> {
        for name in [&upstream.service, &upstream.host] {
            if let Some(address) = self.overrides.get(&name.to_ascii_lowercase()) {
                return Ok(*address);
            }
        }
        (upstream.host.as_str(), upstream.port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| "resolves to no address".to_owned())
    }
}

/// Milliseconds since the process started: the clock of ejections.
pub fn now_millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Passive health of one upstream address, shared by every table that uses it.
#[derive(Debug, Default)]
pub struct UpstreamHealth {
    consecutive_failures: AtomicU32,
    ejected_until: AtomicU64,
}

impl UpstreamHealth {
    /// Records a failed connect; ejects after [`EJECT_AFTER_FAILURES`] in a row.
    pub fn connect_failed(&self, now: u64) {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= EJECT_AFTER_FAILURES {
            let until = now.saturating_add(u64::try_from(EJECT_FOR.as_millis()).unwrap_or(0));
            self.ejected_until.store(until, Ordering::Relaxed);
        }
    }

    /// Records a working connection.
    pub fn connected(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            self.ejected_until.store(0, Ordering::Relaxed);
        }
    }

    /// False while ejected.
    pub fn is_available(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) <= now
    }
}

/// Health records by address, kept across table reloads.
#[derive(Debug, Default)]
pub struct HealthBook {
    entries: Mutex<HashMap<SocketAddr, Arc<UpstreamHealth>>>,
}

impl HealthBook {
    /// The record of `address`, created on first use.
    pub fn get(&self, address: SocketAddr) -> Arc<UpstreamHealth> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.entry(address).or_default().clone()
    }
}

/// An upstream ready to be used by requests.
#[derive(Debug)]
pub struct PreparedUpstream {
    /// Service name as written in the resource (metric label).
    pub service: String,
    /// Resolved address; `None` when resolution failed (the upstream is never chosen).
    pub address: Option<SocketAddr>,
    /// `Host` header sent upstream: `HOST:PORT` of the upstream.
    pub authority: String,
    /// Relative weight.
    pub weight: u32,
    /// How the request path maps to the upstream path.
    pub rewrite: PathRewrite,
    /// Passive health.
    pub health: Arc<UpstreamHealth>,
}

impl PreparedUpstream {
    fn usable(&self, now: u64) -> bool {
        self.weight > 0 && self.address.is_some() && self.health.is_available(now)
    }
}

/// Picks an upstream by weight among the usable ones, preferring those not in `tried`
/// (a retry goes elsewhere when it can). `roll` is a uniform random number.
pub fn choose_upstream(
    upstreams: &[PreparedUpstream],
    tried: &[usize],
    now: u64,
    roll: u64,
) -> Option<usize> {
    let pick = |accept: &dyn Fn(usize) -> bool| {
        let total: u64 = upstreams
            .iter()
            .enumerate()
            .filter(|(i, u)| accept(*i) && u.usable(now))
            .map(|(_, u)| u64::from(u.weight))
            .sum();
        if total == 0 {
            return None;
        }
        let mut point = roll % total;
        for (i, u) in upstreams.iter().enumerate() {
            if !(accept(i) && u.usable(now)) {
                continue;
            }
            let weight = u64::from(u.weight);
            if point < weight {
                return Some(i);
            }
            point -= weight;
        }
        None
    };
    pick(&|i| !tried.contains(&i)).or_else(|| pick(&|_| true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(weight: u32, port: u16) -> PreparedUpstream {
        PreparedUpstream {
            service: format!("s{port}"),
            address: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            authority: format!("s{port}:80"),
            weight,
            rewrite: PathRewrite::Keep,
            health: Arc::default(),
        }
    }

    #[test]
    fn weights_split_the_roll_space() {
        let ups = [upstream(90, 1), upstream(10, 2)];
        let counts = (0..100u64).fold([0, 0], |mut c, roll| {
            c[choose_upstream(&ups, &[], 0, roll).unwrap()] += 1;
            c
        });
        assert_eq!(counts, [90, 10]);
    }

    #[test]
    fn zero_weight_unresolved_and_ejected_are_skipped() {
        let mut unresolved = upstream(5, 3);
        unresolved.address = None;
        let ejected = upstream(5, 4);
        for _ in 0..EJECT_AFTER_FAILURES {
            ejected.health.connect_failed(100);
        }
        let ups = [upstream(0, 1), unresolved, ejected, upstream(1, 2)];
        for roll in 0..20 {
            assert_eq!(choose_upstream(&ups, &[], 100, roll), Some(3));
        }
        assert!(ups[2].health.is_available(100 + 10_000));
        ups[2].health.connected();
        assert!(ups[2].health.is_available(100));
        assert_eq!(choose_upstream(&ups[..2], &[], 0, 7), None);
    }

    #[test]
    fn retries_prefer_untried_upstreams() {
        let ups = [upstream(1, 1), upstream(1, 2)];
        for roll in 0..10 {
            assert_eq!(choose_upstream(&ups, &[0], 0, roll), Some(1));
        }
        assert!(choose_upstream(&ups, &[0, 1], 0, 3).is_some());
    }

    #[test]
    fn overrides_match_service_or_host() {
        let resolver = Resolver::from_overrides(["catalog=127.0.0.1:9000"]).unwrap();
        let up = Upstream {
            service: "catalog".to_owned(),
            host: "catalog.shop.svc.cluster.local".to_owned(),
            port: 8080,
            path: None,
            weight: 1,
        };
        assert_eq!(
            resolver.resolve(&up).unwrap(),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert!(Resolver::from_overrides(["nope"]).is_err());
    }
}
