//! Who calls which contract version: the replicas' `/usage` lands in `status.usage` (written
//! only when it says something new); retiring a version a client called within the window is
//! refused (`Accepted=False`, `VersionInUse`, the route table kept), and the annotation
//! `gatehouse.dev/retire-in-use` retires it anyway, with a Warning Event.

use std::time::Duration;

use gatehouse_operator::controller::usage::gather_one;
use kube::runtime::reflector;
use kube::runtime::watcher;
use serde_json::json;

use super::support::pods::{FakePod, endpoint_slice, report};
use super::support::{FakeApi, collection};
use super::{
    NS, condition, context_with, event_reasons, gateway, patched_status, reconcile_gateway, shop,
    status_patch, writes,
};

/// The public Gateway's contract v1 in `lifecycle` (deprecated since 2024-12-01), at
/// `generation`, with `annotations`.
fn versioned(fake: &FakeApi, lifecycle: &str, generation: i64, annotations: serde_json::Value) {
    fake.edit(NS, "gateways", "public", |gateway| {
        gateway["metadata"]["generation"] = json!(generation);
        gateway["metadata"]["annotations"] = annotations;
        let v1 = &mut gateway["spec"]["contracts"][0];
        v1["lifecycle"] = json!(lifecycle);
        v1["deprecation"] = json!({"since": "2024-12-01T00:00:00Z"});
    });
}

#[tokio::test]
async fn usage_is_recorded_and_keeps_a_version_in_use_from_retiring_unless_told() {
    let fake = shop();
    versioned(&fake, "Deprecated", 1, json!({}));
    let (store, mut slices) = reflector::store();
    let ctx = context_with(&fake, store);
    let pod = FakePod::start("pod-a", report("sha256:whatever")).await;
    slices.apply_watcher_event(&watcher::Event::Apply(endpoint_slice(
        NS,
        "public-gateway",
        "pod-a",
        pod.address,
        Some(true),
    )));
    reconcile_gateway(&fake, &ctx).await;
    fake.take_log();

    // The clock reads 2025-01-02T03:04:05Z: web called an hour ago; the anonymous call is
    // older than the 30-day window, and does not count.
    pod.answer_usage(json!({"calls": [
        {"version": "v1", "lastCall": "2024-11-01T00:00:00Z"},
        {"version": "v1", "client": "web", "lastCall": "2025-01-02T02:04:00Z"},
    ]}));
    let gather = || async {
        gather_one(&ctx, gateway(&fake).as_ref()).await;
        tokio::time::timeout(Duration::from_secs(10), ctx.status.flush())
            .await
            .unwrap();
        fake.take_log()
    };
    let log = gather().await;
    assert_eq!(writes(&log), [status_patch()]);
    assert_eq!(
        patched_status(&log)["usage"],
        json!([{"version": "v1", "client": "web", "lastCall": "2025-01-02T02:04:00Z"}])
    );
    // The same answer again, and a later call of web not yet an hour ahead: nothing written.
    pod.answer_usage(json!({"calls": [
        {"version": "v1", "client": "web", "lastCall": "2025-01-02T03:00:00Z"},
    ]}));
    assert_eq!(writes(&gather().await), Vec::<String>::new());

    // Retiring v1 is refused, naming who called it and when; the table stays.
    versioned(&fake, "Retired", 2, json!({}));
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    let config_map = format!("PATCH {}/public-gateway?", collection(NS, "configmaps"));
    assert!(
        !writes(&log).iter().any(|w| w.starts_with(&config_map)),
        "{:?}",
        writes(&log)
    );
    let accepted = condition(patched_status(&log), "Accepted");
    assert_eq!(
        (
            &accepted["status"],
            &accepted["reason"],
            &accepted["message"]
        ),
        (
            &json!("False"),
            &json!("VersionInUse"),
            &json!(
                "spec.contracts[version=v1]: version v1 may not be retired or removed yet: \
                 clients called it within the last 720h: web (last 2025-01-02T03:00:00Z); wait \
                 until they have moved on, or list v1 in the annotation \
                 gatehouse.dev/retire-in-use of Gateway shop/public to retire it anyway"
            )
        )
    );
    assert!(event_reasons(&log).contains(&"VersionInUse".to_owned()));

    // Told to retire it anyway: the table without v1's routes is written, and a Warning says
    // whose calls it ends.
    versioned(
        &fake,
        "Retired",
        3,
        json!({"gatehouse.dev/retire-in-use": "v1"}),
    );
    reconcile_gateway(&fake, &ctx).await;
    let log = fake.take_log();
    assert!(
        writes(&log).iter().any(|w| w.starts_with(&config_map)),
        "{:?}",
        writes(&log)
    );
    assert_eq!(
        condition(patched_status(&log), "Accepted")["status"],
        json!("True")
    );
    let warning = format!("POST {}?", collection(NS, "events"));
    let retired: Vec<&serde_json::Value> = log
        .iter()
        .filter(|r| r.line() == warning)
        .filter_map(|r| r.body.as_ref())
        .filter(|e| e["reason"] == "RetiredInUse")
        .collect();
    assert_eq!(retired.len(), 1, "{:?}", event_reasons(&log));
    assert_eq!(retired[0]["type"], "Warning");
    assert_eq!(
        retired[0]["note"],
        "Gateway shop/public version v1 retired or removed although clients called it within \
         the last 720h: web (last 2025-01-02T03:00:00Z) (gatehouse.dev/retire-in-use)"
    );
}
