//! The aggregation engine in-process, against real upstreams on loopback: concurrency,
//! dependencies, failure policies, timeouts, limits, cancellation, connection reuse.
#![allow(clippy::unwrap_used)]

#[path = "aggregation/scripted.rs"]
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gatehouse_api::route_table::AggregatePlan;
use gatehouse_proxy::aggregate::engine::{Execution, FailureReason, Outcome};
use gatehouse_proxy::aggregate::metrics::AggregationMetrics;
use gatehouse_proxy::aggregate::plan::AggregationProgram;
use gatehouse_proxy::aggregate::transport::PooledTransport;
use gatehouse_proxy::aggregate::values::RequestValues;
use gatehouse_proxy::runtime::addresses::{AddressBook, UpstreamKey};
use serde_json::{Value, json};
use upstream::{Hold, Reply};

struct Services(HashMap<String, SocketAddr>);

/// A plan from the table's JSON form; steps name services `a`, `b`, `c`.
fn plan(steps: Value, response: &str, extra: Value) -> AggregatePlan {
    let steps: Vec<Value> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut s = s.clone();
            let service = s["service"].as_str().unwrap().to_owned();
            s.as_object_mut().unwrap().remove("service");
            s["upstream"] = json!({"service": service, "host": format!("{service}.test"), "port": 80, "weight": 1});
            s.as_object_mut().unwrap().entry("method").or_insert(json!("GET"));
            s
        })
        .collect();
    let mut plan = json!({
        "steps": steps, "response": response, "timeoutMs": 5000,
        "failurePolicy": "bestEffort", "maxStepResponseBytes": 1 << 20,
    });
    for (k, v) in extra.as_object().unwrap() {
        plan[k] = v.clone();
    }
    serde_json::from_value(plan).unwrap()
}

fn request() -> RequestValues {
    RequestValues {
        method: "GET".into(),
        path: "/pages/42".into(),
        params: vec![("id".into(), "42".into())],
        query: vec![("lang".into(), "en".into())],
        client: Some("mobile".into()),
        request_id: "req-1".into(),
        ..Default::default()
    }
}

async fn run(plan: &AggregatePlan, services: &Services, transport: &PooledTransport) -> Outcome {
    let book = AddressBook::default();
    let lookup = |key: &UpstreamKey| {
        services
            .0
            .get(&key.service)
            .copied()
            .ok_or_else(|| format!("no address for {}", key.service))
    };
    let program =
        AggregationProgram::compile(plan, |upstream| book.entry(upstream, &lookup)).unwrap();
    let metrics = AggregationMetrics::default();
    let request = request();
    Execution {
        program: &program,
        route: "page",
        request: &request,
        transport,
        metrics: &metrics,
    }
    .run()
    .await
}

fn services(pairs: &[(&str, &upstream::Upstream)]) -> Services {
    Services(
        pairs
            .iter()
            .map(|(n, u)| (n.to_string(), u.address))
            .collect(),
    )
}

fn transport() -> PooledTransport {
    PooledTransport::new(64, Duration::from_secs(30))
}

#[tokio::test]
async fn independent_steps_run_concurrently() {
    let up = upstream::start(vec![
        (
            "/a",
            Reply::json(r#"{"v":1}"#).held(Hold::UntilConcurrent(3)),
        ),
        (
            "/b",
            Reply::json(r#"{"v":2}"#).held(Hold::UntilConcurrent(3)),
        ),
        (
            "/c",
            Reply::json(r#"{"v":3}"#).held(Hold::UntilConcurrent(3)),
        ),
    ])
    .await;
    let program = plan(
        json!([{"name": "a", "service": "s", "path": "/a"}, {"name": "b", "service": "s", "path": "/b"}, {"name": "c", "service": "s", "path": "/c"}]),
        "[.a.v, .b.v, .c.v]",
        json!({}),
    );
    let outcome = run(&program, &services(&[("s", &up)]), &transport()).await;
    assert_eq!(
        outcome,
        Outcome::Answer {
            body: json!([1, 2, 3]),
            partial: vec![]
        }
    );
    // Every upstream request was held until all three were in flight together.
    assert_eq!(up.seen.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_dependent_step_receives_values_from_its_predecessor_and_the_request() {
    let up = upstream::start(vec![
        (
            "/items/42",
            Reply::json(r#"{"id": 42, "title": "Lamp", "seller": {"id": "s 7"}}"#),
        ),
        ("/sellers/s%207", Reply::json(r#"{"name": "Ada"}"#)),
    ])
    .await;
    let program = plan(
        json!([
            {"name": "product", "service": "catalog", "path": "/items/{id}"},
            {"name": "seller", "service": "sellers", "path": "/sellers/{product.seller.id}?lang={query.lang}", "after": ["product"],
             "headers": {"x-client": "{client}"}},
        ]),
        "{title: .product.title, by: .seller.name, client: $request.client}",
        json!({}),
    );
    let outcome = run(
        &program,
        &services(&[("catalog", &up), ("sellers", &up)]),
        &transport(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Answer {
            body: json!({"title": "Lamp", "by": "Ada", "client": "mobile"}),
            partial: vec![]
        }
    );
    assert_eq!(up.seen.paths(), ["/items/42", "/sellers/s%207?lang=en"]);
    assert_eq!(
        up.seen
            .header("/sellers/s%207?lang=en", "x-client")
            .as_deref(),
        Some("mobile")
    );
    assert_eq!(
        up.seen.header("/items/42", "x-request-id").as_deref(),
        Some("req-1")
    );
    let budget: u64 = up
        .seen
        .header("/items/42", "x-gatehouse-timeout-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        budget > 0 && budget <= 5000,
        "the remaining budget is passed down: {budget}"
    );
}

#[tokio::test]
async fn a_failed_optional_step_becomes_null_and_is_listed_under_best_effort() {
    let up = upstream::start(vec![
        ("/items/42", Reply::json(r#"{"id": 42}"#)),
        ("/reviews", Reply::status(503)),
    ])
    .await;
    let program = plan(
        json!([{"name": "product", "service": "s", "path": "/items/{id}"}, {"name": "reviews", "service": "s", "path": "/reviews", "optional": true}]),
        "{id: .product.id, reviews: .reviews}",
        json!({}),
    );
    let Outcome::Answer { body, partial } =
        run(&program, &services(&[("s", &up)]), &transport()).await
    else {
        panic!()
    };
    assert_eq!(body["id"], 42);
    assert_eq!(body["reviews"], Value::Null);
    assert_eq!(
        body["errors"],
        json!([{"step": "reviews", "reason": "status", "message": "upstream answered 503"}])
    );
    assert_eq!(partial[0].reason, FailureReason::Status(503));
}

#[tokio::test]
async fn a_failed_step_fails_the_call_with_502_naming_it() {
    let up = upstream::start(vec![
        ("/items/42", Reply::json("{}")),
        ("/reviews", Reply::status(500)),
    ])
    .await;
    let steps = json!([{"name": "product", "service": "s", "path": "/items/{id}"}, {"name": "reviews", "service": "s", "path": "/reviews", "optional": true}]);
    // allOrNothing: even an optional step's failure fails the call.
    let program = plan(steps.clone(), ".", json!({"failurePolicy": "allOrNothing"}));
    let outcome = run(&program, &services(&[("s", &up)]), &transport()).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            status: 502,
            step: Some("reviews".into()),
            detail: "step reviews failed: upstream answered 500".into()
        }
    );
    // bestEffort: a required step's failure fails it too.
    let mut required = steps;
    required[1]["optional"] = json!(false);
    let outcome = run(
        &plan(required, ".", json!({})),
        &services(&[("s", &up)]),
        &transport(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            status: 502,
            step: Some("reviews".into()),
            detail: "required step reviews failed: upstream answered 500".into()
        }
    );
}

#[tokio::test]
async fn step_timeouts_and_the_deadline_give_their_documented_answers() {
    let up = upstream::start(vec![
        ("/fast", Reply::json(r#"{"ok": true}"#)),
        ("/slow", Reply::json("{}").held(Hold::Forever)),
    ])
    .await;
    let s = services(&[("s", &up)]);
    // An optional step over its own timeout: null, listed as a timeout.
    let optional = plan(
        json!([{"name": "fast", "service": "s", "path": "/fast"}, {"name": "slow", "service": "s", "path": "/slow", "optional": true, "timeoutMs": 50}]),
        "{fast: .fast.ok, slow: .slow}",
        json!({}),
    );
    let Outcome::Answer { body, partial } = run(&optional, &s, &transport()).await else {
        panic!()
    };
    assert_eq!(
        (body["fast"].clone(), body["slow"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(partial[0].reason, FailureReason::Timeout);
    // A required step over its own timeout: 504 naming it.
    let required = plan(
        json!([{"name": "slow", "service": "s", "path": "/slow", "timeoutMs": 50}]),
        ".",
        json!({}),
    );
    let Outcome::Failed {
        status,
        step,
        detail,
    } = run(&required, &s, &transport()).await
    else {
        panic!()
    };
    assert_eq!((status, step.as_deref()), (504, Some("slow")));
    assert_eq!(detail, "required step slow failed: timed out after 50ms");
    // No step timeout: the aggregation's deadline ends a required step with 504…
    let required = plan(
        json!([{"name": "slow", "service": "s", "path": "/slow"}]),
        ".",
        json!({"timeoutMs": 100}),
    );
    let Outcome::Failed {
        status,
        step,
        detail,
    } = run(&required, &s, &transport()).await
    else {
        panic!()
    };
    assert_eq!((status, step.as_deref()), (504, Some("slow")));
    // Whichever timer fires first (the step's, bounded by the deadline, or the deadline's
    // own), the answer is the same.
    assert_eq!(
        detail,
        "required step slow failed: the aggregation's deadline of 100ms passed"
    );
    // …and answers with what it has when only optional steps are left; a step waiting for a
    // step that ran out of time is never started.
    let optional = plan(
        json!([
            {"name": "fast", "service": "s", "path": "/fast"},
            {"name": "slow", "service": "s", "path": "/slow", "optional": true},
            {"name": "next", "service": "s", "path": "/next", "after": ["slow"], "optional": true},
        ]),
        "{fast: .fast.ok, slow: .slow, next: .next}",
        json!({"timeoutMs": 100}),
    );
    let Outcome::Answer { body, partial } = run(&optional, &s, &transport()).await else {
        panic!()
    };
    assert_eq!(body["fast"], json!(true));
    let reasons: Vec<(&str, &FailureReason)> = partial
        .iter()
        .map(|e| (e.step.as_str(), &e.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("slow", &FailureReason::Deadline),
            ("next", &FailureReason::Skipped)
        ]
    );
    assert!(
        !up.seen.paths().contains(&"/next".to_owned()),
        "the dependent step never started"
    );
}

#[tokio::test]
async fn the_response_rule_reshapes_and_renames_and_filters_pick_fields() {
    let up = upstream::start(vec![
        ("/items/42", Reply::json(r#"{"id": 42, "title": "Lamp", "price": {"amount": 30, "currency": "EUR"}, "internal": "x"}"#)),
        ("/text", Reply { status: 200, body: "plain words".into(), content_type: "text/plain", hold: Hold::None }),
    ])
    .await;
    let program = plan(
        json!([
            {"name": "product", "service": "s", "path": "/items/{id}", "filter": "{id, title, price: .price.amount}"},
            {"name": "note", "service": "s", "path": "/text"},
        ]),
        "{productId: .product.id, name: .product.title, cost: .product.price, keys: (.product | keys), note: .note}",
        json!({}),
    );
    let Outcome::Answer { body, .. } = run(&program, &services(&[("s", &up)]), &transport()).await
    else {
        panic!()
    };
    assert_eq!(
        body,
        json!({"productId": 42, "name": "Lamp", "cost": 30, "keys": ["id", "price", "title"], "note": "plain words"})
    );
}

#[tokio::test]
async fn an_oversize_step_response_is_refused() {
    let big = format!("\"{}\"", "x".repeat(4096));
    let up = upstream::start(vec![("/big", Reply::json(&big))]).await;
    let program = plan(
        json!([{"name": "big", "service": "s", "path": "/big"}]),
        ".",
        json!({"maxStepResponseBytes": 1024}),
    );
    let outcome = run(&program, &services(&[("s", &up)]), &transport()).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            status: 502,
            step: Some("big".into()),
            detail: "required step big failed: response larger than 1024 bytes".into()
        }
    );
}

#[tokio::test]
async fn dropping_the_call_closes_outstanding_step_connections() {
    let up = upstream::start(vec![("/slow", Reply::json("{}").held(Hold::Forever))]).await;
    let program = plan(
        json!([{"name": "slow", "service": "s", "path": "/slow"}]),
        ".",
        json!({}),
    );
    let s = services(&[("s", &up)]);
    let t = transport();
    let call = run(&program, &s, &t);
    let seen = up.seen.clone();
    // Race the call against the upstream having received the request: then the call is dropped,
    // as the proxy drops it when the client goes away.
    tokio::select! {
        _ = call => panic!("the held step cannot finish"),
        () = seen.wait_for(|s| s.in_flight.load(Ordering::SeqCst) == 1) => {}
    }
    up.seen
        .wait_for(|s| s.closed_while_held.load(Ordering::SeqCst) == 1)
        .await;
}

#[tokio::test]
async fn step_connections_are_reused_across_calls() {
    let up = upstream::start(vec![("/a", Reply::json("1"))]).await;
    let program = plan(
        json!([{"name": "a", "service": "s", "path": "/a"}]),
        ".a",
        json!({}),
    );
    let (s, t) = (services(&[("s", &up)]), transport());
    for _ in 0..3 {
        assert_eq!(
            run(&program, &s, &t).await,
            Outcome::Answer {
                body: json!(1),
                partial: vec![]
            }
        );
    }
    assert_eq!(up.seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_service_fails_its_step() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let program = plan(
        json!([{"name": "gone", "service": "s", "path": "/"}]),
        ".",
        json!({}),
    );
    let outcome = run(
        &program,
        &Services(HashMap::from([("s".to_owned(), closed)])),
        &transport(),
    )
    .await;
    let Outcome::Failed { status, detail, .. } = outcome else {
        panic!()
    };
    assert_eq!(status, 502);
    assert!(
        detail.starts_with("required step gone failed: could not connect"),
        "{detail}"
    );
}

#[tokio::test]
async fn rules_and_filters_read_the_steps_and_request_documents() {
    let up = upstream::start(vec![
        ("/items/42", Reply::json(r#"{"id": 42}"#)),
        ("/stock/42", Reply::json(r#"{"n": 3}"#)),
    ])
    .await;
    let program = plan(
        json!([
            {"name": "product", "service": "catalog", "path": "/items/{id}"},
            {"name": "stock", "service": "catalog", "path": "/stock/{product.id}", "after": ["product"],
             "filter": "{n, productStatus: $steps.product.status, client: $request.client}"},
        ]),
        "{stock: .stock, statuses: ($steps | map_values(.status)), timed: ($steps.product.durationMs >= 0), method: $request.method}",
        json!({}),
    );
    let outcome = run(&program, &services(&[("catalog", &up)]), &transport()).await;
    assert_eq!(
        outcome,
        Outcome::Answer {
            body: json!({
                "stock": {"n": 3, "productStatus": 200, "client": "mobile"},
                "statuses": {"product": 200, "stock": 200},
                "timed": true,
                "method": "GET"
            }),
            partial: vec![]
        }
    );
}
