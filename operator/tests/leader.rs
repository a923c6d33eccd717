//! Leader election against an in-memory API server: who writes the Lease, and when.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::time::Duration;

use gatehouse_operator::leader::{ElectionSettings, LeaderElector};
use serde_json::json;
use support::{FakeApi, Recorded, collection};

const NS: &str = "gatehouse-system";

fn lease_path() -> String {
    format!("{}/gatehouse-operator", collection(NS, "leases"))
}

fn lines(log: &[Recorded]) -> Vec<String> {
    log.iter().map(Recorded::line).collect()
}

fn elector(fake: &FakeApi, identity: &str) -> LeaderElector {
    LeaderElector::new(fake.client(), NS, ElectionSettings::new(identity))
}

#[tokio::test]
async fn first_candidate_creates_the_lease_then_renews_it() {
    let fake = FakeApi::default();
    let mut a = elector(&fake, "a");
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(
        lines(&fake.take_log()),
        [
            format!("GET {}", lease_path()),
            format!("POST {}?", collection(NS, "leases"))
        ]
    );
    let lease = fake.get(NS, "leases", "gatehouse-operator").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "a");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);

    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(
        lines(&fake.take_log()),
        [
            format!("GET {}", lease_path()),
            format!("PUT {}?", lease_path())
        ]
    );
    let renewed = fake.get(NS, "leases", "gatehouse-operator").unwrap();
    assert_eq!(renewed["spec"]["leaseTransitions"], 0);
}

#[tokio::test(start_paused = true)]
async fn a_held_lease_is_taken_only_after_it_stops_changing_for_its_duration() {
    let fake = FakeApi::default();
    let mut a = elector(&fake, "a");
    let mut b = elector(&fake, "b");
    assert!(a.try_acquire_or_renew().await.unwrap());
    fake.take_log();

    assert!(!b.try_acquire_or_renew().await.unwrap());
    assert_eq!(
        lines(&fake.take_log()),
        [format!("GET {}", lease_path())],
        "no write"
    );

    // a keeps renewing: b keeps seeing a changing record and never takes it.
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(a.try_acquire_or_renew().await.unwrap());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!b.try_acquire_or_renew().await.unwrap());

    // a stops: after the lease duration without change, b takes over.
    tokio::time::advance(Duration::from_secs(14)).await;
    assert!(!b.try_acquire_or_renew().await.unwrap());
    tokio::time::advance(Duration::from_secs(1)).await;
    fake.take_log();
    assert!(b.try_acquire_or_renew().await.unwrap());
    assert_eq!(
        lines(&fake.take_log()),
        [
            format!("GET {}", lease_path()),
            format!("PUT {}?", lease_path())
        ]
    );
    let lease = fake.get(NS, "leases", "gatehouse-operator").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);

    // a comes back: it sees b's fresh lease and does not lead.
    assert!(!a.try_acquire_or_renew().await.unwrap());
}

#[tokio::test]
async fn of_two_racing_candidates_only_one_wins() {
    let fake = FakeApi::default();
    fake.put(
        NS,
        "leases",
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "gatehouse-operator", "resourceVersion": "7"},
               "spec": {"leaseDurationSeconds": 15}}),
    );
    // b takes the free lease between a's read and a's update.
    fake.interfere_after_get(
        &lease_path(),
        json!({"holderIdentity": "b", "leaseDurationSeconds": 15}),
    );
    let mut a = elector(&fake, "a");
    assert!(
        !a.try_acquire_or_renew().await.unwrap(),
        "the update conflicts: a follows"
    );
    assert_eq!(
        lines(&fake.take_log()),
        [
            format!("GET {}", lease_path()),
            format!("PUT {}?", lease_path())
        ]
    );
    let lease = fake.get(NS, "leases", "gatehouse-operator").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
}

#[tokio::test]
async fn release_clears_the_holder_so_a_successor_need_not_wait() {
    let fake = FakeApi::default();
    let mut a = elector(&fake, "a");
    let mut b = elector(&fake, "b");
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    a.release().await.unwrap();
    let lease = fake.get(NS, "leases", "gatehouse-operator").unwrap();
    assert!(lease["spec"].get("holderIdentity").is_none());
    assert!(b.try_acquire_or_renew().await.unwrap());
}
