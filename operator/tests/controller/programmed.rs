//! `Programmed` follows what the ready proxy replicas say they serve: real HTTP servers on
//! 127.0.0.1 stand in for the pods, listed by EndpointSlices in the store the Context holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_operator::controller::context::Context;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::support::pods::{FakePod, closed_address, endpoint_slice, refusing, report};
use super::support::{FakeApi, Recorded, collection};
use super::{
    NS, body, compiled_public_gateway, condition, context_with, reconcile_gateway, shop,
    status_patch, writes,
};

/// The public Gateway's proxy Service.
const PROXY: &str = "public-gateway";

/// The proxy pods of a test, and the EndpointSlice store that lists them.
struct Pods {
    ctx: Arc<Context>,
    slices: Writer<EndpointSlice>,
    pods: Vec<FakePod>,
}

impl Pods {
    fn new(fake: &FakeApi) -> Self {
        let (store, slices) = reflector::store();
        Self {
            ctx: context_with(fake, store),
            slices,
            pods: Vec::new(),
        }
    }

    /// Lists a pod of Service `service` at `address` as the EndpointSlice controller would.
    fn list(&mut self, service: &str, pod: &str, address: SocketAddr, ready: Option<bool>) {
        let slice = endpoint_slice(NS, service, pod, address, ready);
        self.slices
            .apply_watcher_event(&watcher::Event::Apply(slice));
    }

    /// Starts a pod answering `report` and lists it.
    async fn start(&mut self, service: &str, pod: &str, report: Value, ready: Option<bool>) {
        let started = FakePod::start(pod, report).await;
        self.list(service, pod, started.address, ready);
        self.pods.push(started);
    }

    /// Removes a pod's slice, as the EndpointSlice controller does when the pod is gone.
    fn unlist(&mut self, service: &str, pod: &str, address: SocketAddr) {
        let slice = endpoint_slice(NS, service, pod, address, Some(true));
        self.slices
            .apply_watcher_event(&watcher::Event::Delete(slice));
    }

    fn pod(&self, name: &str) -> &FakePod {
        self.pods.iter().find(|p| p.name == name).unwrap()
    }

    /// How often each pod was asked, by name.
    fn asked(&self) -> Vec<(String, usize)> {
        self.pods
            .iter()
            .map(|p| (p.name.clone(), p.asked()))
            .collect()
    }
}

fn current() -> String {
    compiled_public_gateway(1).digest()
}

/// The `Programmed` condition as it must be patched (the clock is fixed).
fn programmed(status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": "Programmed",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": "2025-01-02T03:04:05Z",
    })
}

fn proxies(ready: i32, current: i32, stale: i32, refused: i32, unreachable: i32) -> Value {
    json!({
        "ready": ready,
        "current": current,
        "stale": stale,
        "refused": refused,
        "unreachable": unreachable,
    })
}

fn patched_status(log: &[Recorded]) -> &Value {
    &body(log, &status_patch())["status"]
}

/// The status patch in `log` carries exactly this `Programmed` condition and these counts.
fn assert_patched(log: &[Recorded], expected: &Value, counts: Value) {
    let status = patched_status(log);
    assert_eq!(condition(status, "Programmed"), expected);
    assert_eq!(status["proxies"], counts);
}

/// `Programmed=True` with `ready` replicas all serving `digest`.
fn all_serve(ready: usize, digest: &str) -> Value {
    let (replicas, serve) = if ready == 1 {
        ("replica", "serves")
    } else {
        ("replicas", "serve")
    };
    programmed(
        "True",
        "Programmed",
        &format!("{ready} of {ready} ready {replicas} {serve} route table {digest} (6 routes)"),
    )
}

/// `(reason, type)` of every event posted.
fn events(log: &[Recorded]) -> Vec<(String, String)> {
    let events = format!("POST {}?", collection(NS, "events"));
    log.iter()
        .filter(|r| r.line() == events)
        .map(|r| {
            let event = r.body.as_ref().unwrap();
            let field = |k: &str| event[k].as_str().unwrap().to_owned();
            (field("reason"), field("type"))
        })
        .collect()
}

fn event(reason: &str, type_: &str) -> (String, String) {
    (reason.to_owned(), type_.to_owned())
}

fn after(millis: u64) -> Action {
    Action::requeue(Duration::from_millis(millis))
}

/// A second look at the same facts sends reads only, and returns when to look next.
async fn unchanged(fake: &FakeApi, ctx: &Arc<Context>) -> Action {
    let action = reconcile_gateway(fake, ctx).await;
    assert_eq!(writes(&fake.take_log()), Vec::<String>::new(), "no write");
    action
}

/// `looks` more reconciles of the same facts, each writing nothing: when each asks back.
async fn next_looks(fake: &FakeApi, ctx: &Arc<Context>, looks: usize) -> Vec<Action> {
    let mut delays = Vec::new();
    for _ in 0..looks {
        delays.push(unchanged(fake, ctx).await);
    }
    delays
}

#[tokio::test]
async fn programmed_when_every_ready_replica_serves_the_table() {
    let fake = shop();
    let digest = current();
    let mut pods = Pods::new(&fake);
    for pod in ["pod-a", "pod-b", "pod-c"] {
        pods.start(PROXY, pod, report(&digest), Some(true)).await;
    }
    // Neither a pod that is not ready nor another proxy's pod is asked.
    pods.start(PROXY, "pod-d", report("sha256:old"), Some(false))
        .await;
    pods.start("other-gateway", "pod-x", report("sha256:other"), None)
        .await;
    let ctx = pods.ctx.clone();

    assert_eq!(
        reconcile_gateway(&fake, &ctx).await,
        Action::requeue(Duration::from_secs(600)),
        "they agree: back to the long resync"
    );
    let log = fake.take_log();
    assert_patched(&log, &all_serve(3, &digest), proxies(3, 3, 0, 0, 0));
    assert_eq!(patched_status(&log)["routeTableDigest"], digest);
    assert!(events(&log).contains(&event("Programmed", "Normal")));
    let once = |n| {
        ["pod-a", "pod-b", "pod-c", "pod-d", "pod-x"]
            .into_iter()
            .map(|p| (p.to_owned(), if p < "pod-d" { n } else { 0 }))
            .collect::<Vec<_>>()
    };
    assert_eq!(pods.asked(), once(1));

    assert_eq!(
        unchanged(&fake, &ctx).await,
        Action::requeue(Duration::from_secs(600))
    );
    assert_eq!(pods.asked(), once(2), "asked again, nothing written");
}

#[tokio::test]
async fn pending_while_a_replica_lags_or_does_not_answer() {
    let fake = shop();
    let digest = current();
    let mut pods = Pods::new(&fake);
    pods.start(PROXY, "pod-a", report(&digest), Some(true))
        .await;
    pods.start(PROXY, "pod-b", report(&digest), None).await;
    pods.start(PROXY, "pod-c", report("sha256:old"), Some(true))
        .await;
    let gone = closed_address().await;
    pods.list(PROXY, "pod-d", gone, Some(true));
    let ctx = pods.ctx.clone();

    assert_eq!(reconcile_gateway(&fake, &ctx).await, after(200));
    let log = fake.take_log();
    let status = patched_status(&log);
    let pending = condition(status, "Programmed");
    let message = pending["message"].as_str().unwrap();
    let heard = format!(
        "2 of 4 ready replicas serve route table {digest} (6 routes); 1 still serves sha256:old; \
         1 did not answer (pod-d ({gone}): "
    );
    assert!(
        message.starts_with(&heard) && message.contains("Connection refused"),
        "{message}"
    );
    assert_eq!(pending, &programmed("False", "Pending", message));
    assert_eq!(status["proxies"], proxies(4, 2, 1, 0, 1));
    assert!(
        events(&log).contains(&event("Pending", "Normal")),
        "a table on its way is no warning: {:?}",
        events(&log)
    );

    // Same answers: nothing written, asked again later each time, at least every 5 s.
    let delays = next_looks(&fake, &ctx, 6).await;
    assert_eq!(delays, [400, 800, 1600, 3200, 5000, 5000].map(after));

    // The laggard catches up: the status says so, and the next look comes soon again.
    pods.pod("pod-c").answer(report(&digest));
    assert_eq!(reconcile_gateway(&fake, &ctx).await, after(200));
    let log = fake.take_log();
    let status = patched_status(&log);
    let message = condition(status, "Programmed")["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "3 of 4 ready replicas serve route table {digest} (6 routes); 1 did not answer \
             (pod-d ({gone}): "
        )),
        "{message}"
    );
    assert_eq!(status["proxies"], proxies(4, 3, 0, 0, 1));
    assert_eq!(events(&log), [], "still Pending: no news");

    // The silent pod is gone: every ready replica serves the table.
    pods.unlist(PROXY, "pod-d", gone);
    assert_eq!(
        reconcile_gateway(&fake, &ctx).await,
        Action::requeue(Duration::from_secs(600))
    );
    let log = fake.take_log();
    assert_patched(&log, &all_serve(3, &digest), proxies(3, 3, 0, 0, 0));
    assert_eq!(events(&log), [event("Programmed", "Normal")]);
}

#[tokio::test]
async fn a_replica_that_refuses_the_table_is_reported_with_its_error() {
    let fake = shop();
    let digest = current();
    let error = "route products-get: the jq program does not compile: unexpected token `}`";
    let mut pods = Pods::new(&fake);
    pods.start(PROXY, "pod-a", report(&digest), Some(true))
        .await;
    pods.start(PROXY, "pod-b", report(&digest), Some(true))
        .await;
    pods.start(
        PROXY,
        "pod-c",
        refusing("sha256:old", &digest, error),
        Some(true),
    )
    .await;
    let ctx = pods.ctx.clone();

    assert_eq!(reconcile_gateway(&fake, &ctx).await, after(200));
    let log = fake.take_log();
    let message = format!(
        "1 of 3 ready replicas refused route table {digest} (6 routes): {error}; 2 serve it"
    );
    assert_patched(
        &log,
        &programmed("False", "Refused", &message),
        proxies(3, 2, 0, 1, 0),
    );
    assert!(events(&log).contains(&event("Refused", "Warning")));

    // A refusal does not go away by itself: the delay keeps growing past 5 s (the table
    // changing, or the pod restarting, brings the resource back at once).
    let delays = next_looks(&fake, &ctx, 6).await;
    assert_eq!(delays, [400, 800, 1600, 3200, 6400, 12800].map(after));
}

#[tokio::test]
async fn pending_while_no_replica_is_ready() {
    let fake = shop();
    let digest = current();
    let mut pods = Pods::new(&fake);
    // Starting, and stopping: neither is ready, neither is asked.
    pods.start(PROXY, "pod-a", report(&digest), Some(false))
        .await;
    pods.start(PROXY, "pod-b", report("sha256:old"), Some(false))
        .await;
    let ctx = pods.ctx.clone();

    assert_eq!(reconcile_gateway(&fake, &ctx).await, after(200));
    let message = format!(
        "route table {digest} (6 routes) is in the route ConfigMap; no ready replica serves it yet"
    );
    assert_patched(
        &fake.take_log(),
        &programmed("False", "Pending", &message),
        proxies(0, 0, 0, 0, 0),
    );
    assert_eq!(unchanged(&fake, &ctx).await, after(400));
    assert_eq!(
        pods.asked(),
        [("pod-a".to_owned(), 0), ("pod-b".to_owned(), 0)]
    );

    // pod-a turns ready (its slice changes: that event also triggers the reconcile).
    let address = pods.pod("pod-a").address;
    pods.list(PROXY, "pod-a", address, None);
    assert_eq!(
        reconcile_gateway(&fake, &ctx).await,
        Action::requeue(Duration::from_secs(600))
    );
    assert_patched(
        &fake.take_log(),
        &all_serve(1, &digest),
        proxies(1, 1, 0, 0, 0),
    );
}

#[tokio::test]
async fn a_replica_catching_up_at_once_is_programmed_in_one_status_write() {
    let fake = shop();
    let digest = current();
    let mut pods = Pods::new(&fake);
    pods.start(PROXY, "pod-a", report(&digest), Some(true))
        .await;
    pods.start(PROXY, "pod-b", report("sha256:old"), Some(true))
        .await;
    // pod-b takes the new table while the operator asks again (its third answer).
    pods.pod("pod-b").answer_from(3, report(&digest));
    let ctx = pods.ctx.clone();

    assert_eq!(
        reconcile_gateway(&fake, &ctx).await,
        Action::requeue(Duration::from_secs(600))
    );
    let log = fake.take_log();
    assert_eq!(
        writes(&log)
            .iter()
            .filter(|l| **l == status_patch())
            .count(),
        1,
        "one status write"
    );
    assert_patched(&log, &all_serve(2, &digest), proxies(2, 2, 0, 0, 0));
    assert!(events(&log).contains(&event("Programmed", "Normal")));
    assert!(!events(&log).contains(&event("Pending", "Normal")));
    assert_eq!(
        pods.asked(),
        [("pod-a".to_owned(), 3), ("pod-b".to_owned(), 3)],
        "asked until both serve it, no longer"
    );

    // A look that writes no table does not wait for a laggard: it says Pending at once.
    pods.pod("pod-b").answer(report("sha256:older"));
    assert_eq!(reconcile_gateway(&fake, &ctx).await, after(200));
    assert_eq!(
        pods.asked(),
        [("pod-a".to_owned(), 4), ("pod-b".to_owned(), 4)]
    );
}
