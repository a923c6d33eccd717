//! A route's upstreams: passive health (ejection after consecutive connect failures) and the
//! weighted choice between them. Where each upstream is comes from the address book
//! ([`crate::runtime::addresses`]), which can move it while tables serve.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::rewrite::PathRewrite;
use crate::runtime::addresses::ResolvedUpstream;
use crate::tls::origination::Origination;
use gatehouse_api::route_table::UpstreamProtocol;

/// Consecutive connect failures after which an upstream address is ejected.
pub const EJECT_AFTER_FAILURES: u32 = 3;
/// How long an ejected address gets no traffic before it is tried again.
pub const EJECT_FOR: Duration = Duration::from_secs(10);

/// Milliseconds since the process started: the clock of ejections.
pub fn now_millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Passive health of one upstream address, shared by every upstream at that address in every
/// table (the address book keeps one per address in use).
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

/// An upstream ready to be used by requests.
#[derive(Debug)]
pub struct PreparedUpstream {
    /// Service name as written in the resource (metric label).
    pub service: String,
    /// Where it is now: refreshed in the background, shared with every table that names it.
    /// Without an address (never resolved yet) the upstream is never chosen.
    pub resolved: Arc<ResolvedUpstream>,
    /// `Host` header sent upstream: `HOST:PORT` of the upstream.
    pub authority: String,
    /// Relative weight.
    pub weight: u32,
    /// HTTP/1.1 or HTTP/2.
    pub protocol: UpstreamProtocol,
    /// How to connect over TLS; cleartext without.
    pub tls: Option<Arc<Origination>>,
    /// How the request path maps to the upstream path.
    pub rewrite: PathRewrite,
}

impl PreparedUpstream {
    /// Its address now, when it may be chosen (weight above 0, resolved, not ejected): one
    /// atomic load of the address book entry.
    fn available(&self, now: u64) -> Option<SocketAddr> {
        if self.weight == 0 {
            return None;
        }
        let endpoint = self.resolved.endpoint();
        let endpoint = endpoint.as_ref()?;
        endpoint
            .health
            .is_available(now)
            .then_some(endpoint.address)
    }

    /// The address to connect to now.
    pub fn address(&self) -> Option<SocketAddr> {
        self.resolved.address()
    }

    /// Records a working connection to `address`. Health is the address's: when the upstream
    /// moved since `address` was chosen, the record of its new address is left alone.
    pub fn connected(&self, address: Option<SocketAddr>) {
        if let Some(endpoint) = self.resolved.endpoint().as_ref()
            && Some(endpoint.address) == address
        {
            endpoint.health.connected();
        }
    }

    /// Records a failed connect to `address` (see [`PreparedUpstream::connected`]).
    pub fn connect_failed(&self, address: Option<SocketAddr>, now: u64) {
        if let Some(endpoint) = self.resolved.endpoint().as_ref()
            && Some(endpoint.address) == address
        {
            endpoint.health.connect_failed(now);
        }
    }
}

/// Picks an upstream by weight among the usable ones, preferring those not in `tried`
/// (a retry goes elsewhere when it can), and the address to connect to. `roll` is a uniform
/// random number.
pub fn choose_upstream(
    upstreams: &[PreparedUpstream],
    tried: &[usize],
    now: u64,
    roll: u64,
) -> Option<(usize, SocketAddr)> {
    let pick = |accept: &dyn Fn(usize) -> bool| {
        let total: u64 = upstreams
            .iter()
            .enumerate()
            .filter(|(i, u)| accept(*i) && u.available(now).is_some())
            .map(|(_, u)| u64::from(u.weight))
            .sum();
        if total == 0 {
            return None;
        }
        let mut point = roll % total;
        for (i, u) in upstreams.iter().enumerate() {
            if !accept(i) {
                continue;
            }
            let Some(address) = u.available(now) else {
                continue;
            };
            let weight = u64::from(u.weight);
            if point < weight {
                return Some((i, address));
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
            resolved: Arc::new(ResolvedUpstream::fixed(SocketAddr::from((
                [127, 0, 0, 1],
                port,
            )))),
            authority: format!("s{port}:80"),
            weight,
            protocol: UpstreamProtocol::Http1,
            tls: None,
            rewrite: PathRewrite::Keep,
        }
    }

    #[test]
    fn weights_split_the_roll_space() {
        let ups = [upstream(90, 1), upstream(10, 2)];
        let counts = (0..100u64).fold([0, 0], |mut c, roll| {
            c[choose_upstream(&ups, &[], 0, roll).unwrap().0] += 1;
            c
        });
        assert_eq!(counts, [90, 10]);
    }

    #[test]
    fn zero_weight_unresolved_and_ejected_are_skipped() {
        let mut unresolved = upstream(5, 3);
        unresolved.resolved = Arc::default();
        let ejected = upstream(5, 4);
        for _ in 0..EJECT_AFTER_FAILURES {
            ejected.connect_failed(ejected.address(), 100);
        }
        let ups = [upstream(0, 1), unresolved, ejected, upstream(1, 2)];
        for roll in 0..20 {
            assert_eq!(
                choose_upstream(&ups, &[], 100, roll),
                Some((3, ups[3].address().unwrap()))
            );
        }
        assert!(ups[2].available(100 + 10_000).is_some());
        ups[2].connected(ups[2].address());
        assert!(ups[2].available(100).is_some());
        assert_eq!(choose_upstream(&ups[..2], &[], 0, 7), None);
    }

    #[test]
    fn health_is_recorded_only_for_the_address_connected_to() {
        let up = upstream(1, 1);
        let elsewhere = Some(SocketAddr::from(([127, 0, 0, 1], 9)));
        for _ in 0..EJECT_AFTER_FAILURES {
            up.connect_failed(elsewhere, 0);
        }
        assert!(
            up.available(0).is_some(),
            "failures of a former address do not eject the current one"
        );
        for _ in 0..EJECT_AFTER_FAILURES {
            up.connect_failed(up.address(), 0);
        }
        assert!(up.available(0).is_none());
        up.connected(elsewhere);
        assert!(up.available(0).is_none());
    }

    #[test]
    fn retries_prefer_untried_upstreams() {
        let ups = [upstream(1, 1), upstream(1, 2)];
        for roll in 0..10 {
            assert_eq!(choose_upstream(&ups, &[0], 0, roll).map(|c| c.0), Some(1));
        }
        assert!(choose_upstream(&ups, &[0, 1], 0, 3).is_some());
    }
}
