//! Statuses are written in the background (`status_writer`): a reconcile does not wait for its
//! status, a failed write is tried again, only the newest status waiting is sent, and no event
//! is lost on the way.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_operator::controller::context::Context;
use gatehouse_operator::controller::reconcile::reconcile;
use serde_json::json;

use super::support::{FakeApi, Recorded, collection};
use super::{
    NS, body, compiled_public_gateway, context, event_reasons, gateway, lines, reconcile_gateway,
    shop, status_patch, writes,
};

fn status_path() -> String {
    format!("{}/public/status", collection(NS, "gateways"))
}

fn status_patches(log: &[Recorded]) -> Vec<&Recorded> {
    log.iter().filter(|r| r.line() == status_patch()).collect()
}

/// Waits until the fake has recorded a status write attempt, returning the log so far.
async fn first_status_attempt(fake: &FakeApi) -> Vec<Recorded> {
    let mut log = Vec::new();
    for _ in 0..200 {
        log.extend(fake.take_log());
        if !status_patches(&log).is_empty() {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no status write was tried: {:?}", lines(&log));
}

/// The shop reconciled once while the API server refuses status writes with `code`: returns
/// the fake, the context and the requests up to the first status attempt.
async fn reconciled_with_status_refused(
    code: u16,
    message: &str,
) -> (FakeApi, Arc<Context>, Vec<Recorded>) {
    let fake = shop();
    let ctx = context(&fake);
    fake.refuse_writes(&status_path(), code, message);
    reconcile(gateway(&fake), ctx.clone()).await.unwrap();
    let log = first_status_attempt(&fake).await;
    (fake, ctx, log)
}

async fn flushed(ctx: &Arc<Context>) {
    tokio::time::timeout(Duration::from_secs(10), ctx.status.flush())
        .await
        .expect("statuses written");
}

#[tokio::test]
async fn a_failing_status_write_neither_blocks_nor_loses_the_newest_status() {
    // The reconcile is done once its objects are applied; the status is still being tried.
    let (fake, ctx, log) =
        reconciled_with_status_refused(500, "etcdserver: request timed out").await;
    assert!(
        writes(&log).contains(&format!(
            "PATCH {}/public-gateway?&force=true&fieldManager=gatehouse-operator",
            collection(NS, "configmaps")
        )),
        "the table was delivered: {:?}",
        writes(&log)
    );
    assert_eq!(
        event_reasons(&log),
        Vec::<String>::new(),
        "no event before its status"
    );
    assert!(
        ctx.metrics.encode().contains(
            "gatehouse_operator_reconcile_errors_total{kind=\"Gateway\",step=\"status\"} 1"
        )
    );

    // A change arrives while the write keeps failing: its table is delivered at once too.
    fake.edit(NS, "gateways", "public", |g| {
        g["metadata"]["generation"] = json!(2);
    });
    reconcile(gateway(&fake), ctx.clone()).await.unwrap();
    let table = compiled_public_gateway(2);
    let log = fake.take_log();
    let config_map = format!(
        "PATCH {}/public-gateway?&force=true&fieldManager=gatehouse-operator",
        collection(NS, "configmaps")
    );
    assert_eq!(
        body(&log, &config_map)["metadata"]["annotations"]["gatehouse.dev/route-table-digest"],
        table.digest()
    );

    // The API server takes writes again: only the newest status is sent from now on, and the
    // events of both reconciles follow it.
    fake.accept_writes(&status_path());
    flushed(&ctx).await;
    let log = fake.take_log();
    let sent = status_patches(&log);
    assert!(!sent.is_empty());
    for patch in &sent {
        let status = &patch.body.as_ref().unwrap()["status"];
        assert_eq!(status["routeTableDigest"], table.digest(), "{status}");
        assert_eq!(status["observedGeneration"], 2);
    }
    // The second repeats the first's reason: the recorder counts it into the first's Event (a
    // PATCH of its series) instead of posting another.
    let updates: Vec<String> = log
        .iter()
        .filter(|r| r.uri.starts_with(&collection(NS, "events")))
        .filter(|r| r.body.as_ref().unwrap()["reason"] == "RouteTableUpdated")
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(updates, ["POST", "PATCH"], "{:?}", lines(&log));
    let stored = fake.get(NS, "gateways", "public").unwrap();
    assert_eq!(stored["status"]["routeTableDigest"], table.digest());

    // What was written is what the next look compares with: nothing is written twice.
    reconcile_gateway(&fake, &ctx).await;
    assert!(
        status_patches(&fake.take_log()).is_empty(),
        "no second write of the same status"
    );
}

#[tokio::test]
async fn the_status_of_a_resource_deleted_meanwhile_is_dropped() {
    let (fake, ctx, _) = reconciled_with_status_refused(503, "the server is shutting down").await;

    fake.delete(NS, "gateways", "public");
    fake.accept_writes(&status_path());
    flushed(&ctx).await;
    let log = fake.take_log();
    assert_eq!(
        status_patches(&log).len(),
        1,
        "tried once more, then forgotten"
    );
    assert_eq!(event_reasons(&log), Vec::<String>::new());
}

/// The route ConfigMap write's own watch event is known for what it is (`own_writes`), so the
/// controller does not reconcile again for it; an edit by anyone else is news.
#[tokio::test]
async fn the_echo_of_the_table_write_is_known_and_an_edit_is_not() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let fake = shop();
    let ctx = context(&fake);
    reconcile_gateway(&fake, &ctx).await;
    let stored = || -> ConfigMap {
        serde_json::from_value(fake.get(NS, "configmaps", "public-gateway").unwrap()).unwrap()
    };
    let written = stored();
    assert!(ctx.own_writes.is_echo(&written), "the write's own version");
    assert!(!ctx.own_writes.is_echo(&written), "seen once");

    fake.edit(NS, "gateways", "public", |g| {
        g["metadata"]["generation"] = json!(2);
    });
    reconcile_gateway(&fake, &ctx).await;
    let mut edited = stored();
    edited.metadata.resource_version = Some("someone-else".to_owned());
    assert!(!ctx.own_writes.is_echo(&edited), "another writer's version");
}
