//! usage: who calls which contract version, gathered from the proxy replicas once a minute
//! (`--usage-interval`; their admin `/usage`: pods, not the API server) and kept in each resource's `status.usage`,
//! the record that outlives proxy restarts. What compile refuses by ([`in_use`]) is the record
//! and every call seen since, so a retirement is judged on the freshest knowledge.
//!
//! Status writes are few: a caller's first call of a version is written at the next gathering;
//! a known caller's time only once it is an hour ahead of the record (a status write rewrites
//! the whole resource). Calls older than the window are dropped, and at most
//! [`MAX_STATUS_ENTRIES`] are kept, the latest.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gatehouse_api::naming::proxy_name;
use gatehouse_api::usage::{self, InUse, UsageKey, UsageReport, VersionUsage};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::ApiResource;
use kube::runtime::reflector::Store;
use tracing::debug;

use super::ProxyResource;
use super::context::Context;
use super::reconcile::object_key;
use super::replicas::ready_replicas;
use super::status_writer::Target;

/// How far a known caller's last call may run ahead of the record before it is rewritten.
pub const REWRITE_AFTER: Duration = Duration::from_secs(3600);
/// Most entries `status.usage` keeps.
pub const MAX_STATUS_ENTRIES: usize = 1000;

/// Every call seen since the operator started, per resource (`Kind/namespace/name`).
#[derive(Debug, Default)]
pub struct UsageLedger {
    seen: Mutex<HashMap<String, Vec<VersionUsage>>>,
}

impl UsageLedger {
    /// Adds what `reports` say of `key`'s calls; returns all calls seen of it.
    pub fn add(&self, key: &str, reports: &[UsageReport]) -> Vec<VersionUsage> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let known = seen.entry(key.to_owned()).or_default();
        let merged = usage::merge(
            std::iter::once(known.as_slice()).chain(reports.iter().map(|r| r.calls.as_slice())),
        );
        known.clone_from(&merged);
        merged
    }

    /// Every call seen of `key`.
    pub fn seen(&self, key: &str) -> Vec<VersionUsage> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(key).cloned().unwrap_or_default()
    }
}

/// The start of the window that ends `now`.
fn window_start(now: Timestamp, window: Duration) -> Timestamp {
    let window = SignedDuration::try_from(window).unwrap_or(SignedDuration::MAX);
    now.checked_sub(window).unwrap_or(Timestamp::MIN)
}

/// What `status.usage` should say, from what it says (`recorded`) and the calls `seen`: see
/// the module doc. Pure.
pub fn for_status(
    recorded: &[VersionUsage],
    seen: &[VersionUsage],
    now: Timestamp,
    window: Duration,
) -> Vec<VersionUsage> {
    let on_record: BTreeMap<UsageKey, Timestamp> =
        recorded.iter().map(|u| (u.key(), u.last_call.0)).collect();
    let rewrite_after = SignedDuration::try_from(REWRITE_AFTER).unwrap_or(SignedDuration::MAX);
    let mut next: Vec<VersionUsage> =
        usage::since(&usage::merge([recorded, seen]), window_start(now, window))
            .into_iter()
            .map(|mut latest| {
                if let Some(&kept) = on_record.get(&latest.key())
                    && latest.last_call.0.duration_since(kept) < rewrite_after
                {
                    latest.last_call.0 = kept;
                }
                latest
            })
            .collect();
    if next.len() > MAX_STATUS_ENTRIES {
        next.sort_by(|a, b| {
            b.last_call
                .0
                .cmp(&a.last_call.0)
                .then(a.key().cmp(&b.key()))
        });
        next.truncate(MAX_STATUS_ENTRIES);
        next.sort_by_key(VersionUsage::key);
    }
    next
}

/// The calls within the window that ends `now`: what compile refuses retirements by. Pure.
pub fn in_use(
    recorded: &[VersionUsage],
    seen: &[VersionUsage],
    now: Timestamp,
    window: Duration,
) -> InUse {
    if window.is_zero() {
        return InUse::default();
    }
    InUse {
        calls: usage::since(&usage::merge([recorded, seen]), window_start(now, window)),
        window,
    }
}

/// Gathers the usage of every resource in `store` `every` so often (`--usage-interval`, a
/// minute) until `stop` resolves.
pub async fn gather<K: ProxyResource>(
    store: Store<K>,
    ctx: Arc<Context>,
    every: Duration,
    stop: impl Future<Output = ()> + Send,
) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stop => return,
        }
        for object in store.state() {
            gather_one(&ctx, object.as_ref()).await;
        }
    }
}

/// Asks the ready replicas of `object` who called what, and hands over its status when
/// `status.usage` should say otherwise.
pub async fn gather_one<K: ProxyResource>(ctx: &Context, object: &K) {
    let key = object_key(object);
    let namespace = object.namespace().unwrap_or_default();
    let resource = object.to_resource();
    let service = proxy_name(resource.kind(), resource.name());
    let replicas = ready_replicas(&ctx.endpoints.state(), &namespace, &service);
    let reports = ctx.replicas.usage_all(&replicas).await;
    let seen = ctx.usage.add(&key, &reports);
    let window = ctx.settings.usage_window;
    let now = ctx.clock.now();
    let target = Target {
        resource: ApiResource::erase::<K>(&()),
        namespace,
        name: object.name_any(),
        reference: object.object_ref(&()),
    };
    let written = ctx
        .status
        .update(&key, object.proxy_status(), target, |previous| {
            let usage = for_status(&previous.usage, &seen, now, window);
            (usage != previous.usage).then(|| {
                let mut next = previous.clone();
                next.usage = usage;
                next
            })
        });
    debug!(%key, replicas = replicas.len(), written, "usage gathered");
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn call(version: &str, client: &str, at: &str) -> VersionUsage {
        VersionUsage {
            contract: None,
            version: version.to_owned(),
            client: Some(client.to_owned()),
            last_call: Time(at.parse().unwrap()),
        }
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn a_new_caller_is_written_a_known_one_hourly_and_old_calls_drop_out() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        // As the status holds it: sorted.
        let recorded = [
            call("v1", "tv", "2026-12-07T10:30:00Z"),
            call("v1", "web", "2026-12-07T11:00:00Z"),
            call("v1", "old", "2026-11-01T00:00:00Z"),
        ];
        let seen = [
            // 59 minutes ahead of the record: not rewritten.
            call("v1", "web", "2026-12-07T11:59:00Z"),
            // An hour ahead: rewritten.
            call("v1", "tv", "2026-12-07T11:30:00Z"),
            call("v2", "mobile", "2026-12-07T11:58:00Z"),
        ];
        assert_eq!(
            for_status(&recorded, &seen, now, 30 * DAY),
            [
                call("v1", "tv", "2026-12-07T11:30:00Z"),
                call("v1", "web", "2026-12-07T11:00:00Z"),
                call("v2", "mobile", "2026-12-07T11:58:00Z"),
            ]
        );
        // Nothing an hour ahead: the same record, so no write.
        let again = for_status(&recorded[..2], &seen[..1], now, 30 * DAY);
        assert_eq!(again, recorded[..2]);
    }

    #[test]
    fn the_record_keeps_the_latest_calls_when_there_are_too_many() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let seen: Vec<VersionUsage> = (0..MAX_STATUS_ENTRIES + 5)
            .map(|i| {
                let at = now - SignedDuration::from_mins(i64::try_from(i).unwrap());
                VersionUsage {
                    last_call: Time(at),
                    ..call("v1", &format!("client-{i:04}"), "2026-12-07T12:00:00Z")
                }
            })
            .collect();
        let kept = for_status(&[], &seen, now, 30 * DAY);
        assert_eq!(kept.len(), MAX_STATUS_ENTRIES);
        assert_eq!(kept.first().unwrap().client.as_deref(), Some("client-0000"));
        assert_eq!(kept.last().unwrap().client.as_deref(), Some("client-0999"));
    }

    #[test]
    fn in_use_is_the_freshest_of_record_and_seen_within_the_window() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        let recorded = [
            call("v1", "web", "2026-12-07T11:00:00Z"),
            call("v1", "old", "2026-12-05T11:00:00Z"),
        ];
        let seen = [call("v1", "web", "2026-12-07T11:59:00Z")];
        assert_eq!(
            in_use(&recorded, &seen, now, DAY),
            InUse {
                calls: vec![call("v1", "web", "2026-12-07T11:59:00Z")],
                window: DAY,
            }
        );
    }

    #[test]
    fn the_ledger_keeps_the_latest_of_every_report() {
        let ledger = UsageLedger::default();
        let report = |calls: Vec<VersionUsage>| UsageReport { calls };
        ledger.add(
            "Gateway/shop/public",
            &[report(vec![call("v1", "web", "2026-12-07T11:00:00Z")])],
        );
        let all = ledger.add(
            "Gateway/shop/public",
            &[
                report(vec![call("v1", "web", "2026-12-07T10:00:00Z")]),
                report(vec![call("v1", "tv", "2026-12-07T09:00:00Z")]),
            ],
        );
        assert_eq!(
            all,
            [
                call("v1", "tv", "2026-12-07T09:00:00Z"),
                call("v1", "web", "2026-12-07T11:00:00Z"),
            ]
        );
        assert_eq!(ledger.seen("Gateway/shop/public"), all);
        assert!(ledger.seen("Gateway/shop/other").is_empty());
    }
}
