//! usage: who still calls which contract version — each client's last call of each published
//! or deprecated version, to the minute. The proxy records it and answers it on its admin
//! `/usage`; the operator merges what its replicas say into the resource's `status.usage`,
//! and refuses to retire a version a client called within the usage window
//! ([`InUse`], checked by compile).
//!
//! Pure: merging, windowing and the refusal's wording, for both sides.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where the proxy's admin listener answers its [`UsageReport`].
pub const USAGE_PATH: &str = "/usage";

/// Annotation of the object that holds a contract version (a Contract, or the Gateway or
/// EdgeService of an inline contract): versions, comma separated, that may be retired or
/// removed although clients called them within the usage window. The operator records each
/// such retirement in a Warning Event.
pub const RETIRE_IN_USE_ANNOTATION: &str = "gatehouse.dev/retire-in-use";

/// How long a call keeps a deprecated version from being retired, unless the operator is told
/// otherwise (`--usage-window`).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// One client's last call of one contract version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionUsage {
    /// The Contract resource (`NAMESPACE/NAME`); absent for the resource's own inline
    /// contracts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// The contract version.
    pub version: String,
    /// The calling client's name; absent for callers no client rule identified (anonymous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// When it last called, to the minute.
    pub last_call: Time,
}

/// Whose usage a [`VersionUsage`] records: contract, version, client.
pub type UsageKey = (Option<String>, String, Option<String>);

impl VersionUsage {
    /// Its contract, version and client.
    pub fn key(&self) -> UsageKey {
        (
            self.contract.clone(),
            self.version.clone(),
            self.client.clone(),
        )
    }

    /// The caller as a person reads it: the client's name, or `anonymous callers`.
    pub fn caller(&self) -> &str {
        self.client.as_deref().unwrap_or("anonymous callers")
    }
}

/// A proxy's admin `/usage` answer: every last call it saw since it started, sorted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// The last calls.
    #[serde(default)]
    pub calls: Vec<VersionUsage>,
}

/// `time` cut down to the minute.
pub fn to_minute(time: Timestamp) -> Timestamp {
    let second = time.as_second();
    Timestamp::from_second(second - second.rem_euclid(60)).unwrap_or(time)
}

/// Every call of `sets`, the latest per contract, version and client, sorted by key.
pub fn merge<'a>(sets: impl IntoIterator<Item = &'a [VersionUsage]>) -> Vec<VersionUsage> {
    let mut latest: BTreeMap<UsageKey, Timestamp> = BTreeMap::new();
    for usage in sets.into_iter().flatten() {
        let at = latest.entry(usage.key()).or_insert(usage.last_call.0);
        if usage.last_call.0 > *at {
            *at = usage.last_call.0;
        }
    }
    latest
        .into_iter()
        .map(|((contract, version, client), at)| VersionUsage {
            contract,
            version,
            client,
            last_call: Time(at),
        })
        .collect()
}

/// The calls since `since`.
pub fn since(calls: &[VersionUsage], since: Timestamp) -> Vec<VersionUsage> {
    calls
        .iter()
        .filter(|c| c.last_call.0 >= since)
        .cloned()
        .collect()
}

/// What compile needs to refuse retiring a version still in use: the calls within the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InUse {
    /// The last calls within the window, merged ([`merge`]).
    pub calls: Vec<VersionUsage>,
    /// The window, for messages.
    pub window: Duration,
}

impl InUse {
    /// The calls of `version` of `contract` (`None`: the inline contracts), latest first.
    pub fn of(&self, contract: Option<&str>, version: &str) -> Vec<&VersionUsage> {
        let mut calls: Vec<&VersionUsage> = self
            .calls
            .iter()
            .filter(|c| c.contract.as_deref() == contract && c.version == version)
            .collect();
        calls.sort_by(|a, b| {
            b.last_call
                .0
                .cmp(&a.last_call.0)
                .then(a.client.cmp(&b.client))
        });
        calls
    }

    /// Why retiring or removing `version` of `contract` is refused, when a client called it
    /// within the window: `clients called it within the last 720h: mobile (last
    /// 2026-12-07T10:31:00Z), …`.
    pub fn refusal(&self, contract: Option<&str>, version: &str) -> Option<String> {
        let calls = self.of(contract, version);
        (!calls.is_empty()).then(|| {
            let callers: Vec<String> = calls
                .iter()
                .map(|c| format!("{} (last {})", c.caller(), c.last_call.0))
                .collect();
            format!(
                "clients called it within the last {}: {}",
                window_text(self.window),
                callers.join(", ")
            )
        })
    }
}

/// A window as the duration format writes it: `720h`, `90m`, `45s`.
pub fn window_text(window: Duration) -> String {
    let seconds = window.as_secs();
    if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

/// The versions `annotations` allow to retire while in use ([`RETIRE_IN_USE_ANNOTATION`]).
pub fn retire_anyway(annotations: Option<&BTreeMap<String, String>>) -> BTreeSet<String> {
    annotations
        .and_then(|a| a.get(RETIRE_IN_USE_ANNOTATION))
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(version: &str, client: Option<&str>, at: &str) -> VersionUsage {
        VersionUsage {
            contract: None,
            version: version.to_owned(),
            client: client.map(str::to_owned),
            last_call: Time(at.parse().unwrap()),
        }
    }

    #[test]
    fn merging_keeps_the_latest_call_per_client_and_version() {
        let a = [
            call("v1", Some("web"), "2026-12-01T10:00:00Z"),
            call("v1", None, "2026-12-01T09:00:00Z"),
        ];
        let b = [
            call("v1", Some("web"), "2026-12-02T10:00:00Z"),
            call("v2", Some("web"), "2026-11-01T10:00:00Z"),
        ];
        assert_eq!(
            merge([&a[..], &b[..]]),
            [
                call("v1", None, "2026-12-01T09:00:00Z"),
                call("v1", Some("web"), "2026-12-02T10:00:00Z"),
                call("v2", Some("web"), "2026-11-01T10:00:00Z"),
            ]
        );
    }

    #[test]
    fn a_refusal_names_each_caller_latest_first() {
        let in_use = InUse {
            calls: vec![
                call("v1", Some("web"), "2026-12-01T10:00:00Z"),
                call("v1", None, "2026-12-03T08:00:00Z"),
                call("v2", Some("web"), "2026-12-03T10:00:00Z"),
            ],
            window: DEFAULT_WINDOW,
        };
        assert_eq!(
            in_use.refusal(None, "v1").as_deref(),
            Some(
                "clients called it within the last 720h: anonymous callers (last \
                 2026-12-03T08:00:00Z), web (last 2026-12-01T10:00:00Z)"
            )
        );
        assert_eq!(in_use.refusal(Some("shop/catalog"), "v1"), None);
        assert_eq!(in_use.refusal(None, "v3"), None);
    }

    #[test]
    fn the_override_lists_versions() {
        let annotations: BTreeMap<String, String> =
            [(RETIRE_IN_USE_ANNOTATION.to_owned(), " v1, v2 ,".to_owned())].into();
        assert_eq!(
            retire_anyway(Some(&annotations)),
            BTreeSet::from(["v1".to_owned(), "v2".to_owned()])
        );
        assert!(retire_anyway(None).is_empty());
    }

    #[test]
    fn minutes_drop_the_seconds() {
        let at: Timestamp = "2026-12-07T22:53:44.5Z".parse().unwrap();
        assert_eq!(to_minute(at).to_string(), "2026-12-07T22:53:00Z");
    }
}
