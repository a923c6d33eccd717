//! Who calls which contract version: each client's last call of each published or deprecated
//! version, to the minute, since the proxy started, answered on the admin `/usage` (the
//! operator merges it into the resource's `status.usage`; see `gatehouse_api::usage`).
//!
//! Kept across table reloads and never forgotten while the proxy runs: there are only as many
//! entries as versions times clients. A request costs the time, one read lock, one hash lookup
//! of the client's name (none for an anonymous caller) and one atomic store; a client's first
//! call of a version takes the write lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use gatehouse_api::route_table::{RouteEntry, VersionState};
use gatehouse_api::usage::{UsageReport, VersionUsage};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A contract version: its Contract (`NAMESPACE/NAME`, empty for inline contracts) and name.
type VersionKey = (String, String);

/// The last calls of every version, by version.
#[derive(Debug, Default)]
pub struct UsageBook {
    versions: Mutex<BTreeMap<VersionKey, Arc<VersionCalls>>>,
}

/// The last call of one version by each client, and by anonymous callers, in Unix minutes
/// (0: none).
#[derive(Debug, Default)]
pub struct VersionCalls {
    clients: RwLock<HashMap<String, AtomicI64>>,
    anonymous: AtomicI64,
}

impl UsageBook {
    /// Where the calls of `route` are recorded: the calls of its version, shared by every
    /// route of it and every table; `None` for a draft, a retired version or an Aggregator
    /// endpoint, whose calls nobody needs to know.
    pub fn calls_of(&self, route: &RouteEntry, contract: &str) -> Option<Arc<VersionCalls>> {
        if !matches!(
            route.state,
            Some(VersionState::Published | VersionState::Deprecated)
        ) {
            return None;
        }
        let version = route.contract.clone()?;
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        Some(Arc::clone(
            versions.entry((contract.to_owned(), version)).or_default(),
        ))
    }

    /// Every last call, sorted by contract, version and client.
    pub fn report(&self) -> UsageReport {
        let versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut calls = Vec::new();
        for ((contract, version), usage) in versions.iter() {
            let clients = usage.clients.read().unwrap_or_else(PoisonError::into_inner);
            let anonymous = usage.anonymous.load(Ordering::Relaxed);
            let mut seen: Vec<(Option<&str>, i64)> = clients
                .iter()
                .map(|(client, minute)| (Some(client.as_str()), minute.load(Ordering::Relaxed)))
                .chain((anonymous > 0).then_some((None, anonymous)))
                .collect();
            seen.sort();
            calls.extend(seen.into_iter().filter_map(|(client, minute)| {
                Some(VersionUsage {
                    contract: (!contract.is_empty()).then(|| contract.clone()),
                    version: version.clone(),
                    client: client.map(str::to_owned),
                    last_call: Time(Timestamp::from_second(minute * 60).ok()?),
                })
            }));
        }
        UsageReport { calls }
    }
}

/// Now, in Unix minutes.
fn this_minute() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(seconds / 60).unwrap_or(i64::MAX)
}

impl VersionCalls {
    /// Records a call by `client` (`None`: anonymous) now.
    pub fn record(&self, client: Option<&str>) {
        self.record_at(client, this_minute());
    }

    fn record_at(&self, client: Option<&str>, minute: i64) {
        let Some(client) = client else {
            self.anonymous.fetch_max(minute, Ordering::Relaxed);
            return;
        };
        {
            let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = clients.get(client) {
                last.fetch_max(minute, Ordering::Relaxed);
                return;
            }
        }
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(client.to_owned())
            .or_default()
            .fetch_max(minute, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(version: &str, state: Option<VersionState>) -> RouteEntry {
        let mut route: RouteEntry = serde_json::from_value(serde_json::json!({
            "id": format!("{version}/product"),
            "contract": version,
            "pathKind": "exact",
            "path": "/v1/products",
            "action": {"type": "respond", "status": 200, "contentType": "text/plain"},
            "timeoutMs": 1000,
        }))
        .unwrap();
        route.state = state;
        route
    }

    #[test]
    fn the_last_call_of_each_client_of_each_promised_version_is_kept() {
        let book = UsageBook::default();
        let v1 = book
            .calls_of(&route("v1", Some(VersionState::Deprecated)), "")
            .unwrap();
        let v2 = book
            .calls_of(&route("v2", Some(VersionState::Published)), "shop/catalog")
            .unwrap();
        // Routes of the same version, in any table, share one record.
        let again = book
            .calls_of(&route("v1", Some(VersionState::Deprecated)), "")
            .unwrap();
        assert!(Arc::ptr_eq(&v1, &again));
        assert!(book.calls_of(&route("v0", None), "").is_none());
        assert!(
            book.calls_of(&route("v0", Some(VersionState::Retired)), "")
                .is_none()
        );
        v1.record_at(Some("web"), 29_000_002);
        v1.record_at(Some("web"), 29_000_001);
        v1.record_at(None, 29_000_000);
        v2.record_at(Some("mobile"), 29_000_003);
        let report = serde_json::to_value(book.report()).unwrap();
        assert_eq!(
            report,
            serde_json::json!({"calls": [
                {"version": "v1", "lastCall": "2025-02-19T21:20:00Z"},
                {"version": "v1", "client": "web", "lastCall": "2025-02-19T21:22:00Z"},
                {"contract": "shop/catalog", "version": "v2", "client": "mobile",
                 "lastCall": "2025-02-19T21:23:00Z"},
            ]})
        );
    }
}
