//! Each validation rule, with a case it refuses and a close case it accepts.
#![allow(clippy::unwrap_used)]
//!
//! Schema and CEL rules run through [`gatehouse_api::admission`] (what the API server does on
//! apply); the rest through `compile` (what the operator does before it writes a table).

use gatehouse_api::compile::CompileContext;
use gatehouse_api::resource::{ReadError, Resource};
use serde_json::{Value, json};

#[path = "rules/access.rs"]
mod access;

fn gateway() -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "Gateway",
        "metadata": {"name": "public", "namespace": "shop"},
        "spec": {
            "clients": [{"name": "web"}],
            "contracts": [{
                "version": "v1",
                "routes": [
                    {"name": "product", "match": {"path": "/products/{id}"},
                     "backend": {"service": "catalog", "port": 8080, "path": "/items/{id}"}},
                    {"name": "status", "match": {"path": "/status"},
                     "respond": {"body": "ok"}}
                ]
            }]
        }
    })
}

fn aggregator() -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "Aggregator",
        "metadata": {"name": "page", "namespace": "shop"},
        "spec": {
            "endpoints": [{
                "name": "page",
                "match": {"path": "/pages/{id}"},
                "steps": [
                    {"name": "product", "call": {"service": "catalog", "path": "/items/{id}"}, "timeout": "500ms"},
                    {"name": "seller", "call": {"service": "sellers", "path": "/sellers/{product.sellerId}"},
                     "after": ["product"], "timeout": "500ms"}
                ],
                "response": "{id: .product.id, seller: .seller.name}",
                "timeout": "2s"
            }]
        }
    })
}

/// Sets the value at a JSON pointer, creating objects on the way.
fn with(mut doc: Value, pointer: &str, value: Value) -> Value {
    let mut node = &mut doc;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        node = match node {
            Value::Array(items) => {
                let index: usize = part.parse().unwrap();
                if index == items.len() {
                    items.push(Value::Null);
                }
                &mut items[index]
            }
            Value::Object(map) => map.entry(part.to_string()).or_insert(Value::Null),
            other => panic!("cannot descend into {other}"),
        };
        if last {
            *node = value.clone();
        } else if node.is_null() {
            *node = json!({});
        }
    }
    doc
}

/// Runs admission then compile; returns every problem as `path: message`.
fn problems(doc: &Value) -> Vec<String> {
    match Resource::from_value(0, doc.clone()) {
        Err(ReadError::Rejected { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => vec![other.to_string()],
        Ok(resource) => match resource.compile(&CompileContext::default()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        },
    }
}

#[track_caller]
fn refused(doc: Value, expected: &str) {
    let found = problems(&doc);
    assert!(
        found.iter().any(|p| p.contains(expected)),
        "expected a problem containing {expected:?}, got {found:#?}"
    );
}

#[track_caller]
fn accepted(doc: Value) {
    let found = problems(&doc);
    assert!(found.is_empty(), "expected no problem, got {found:#?}");
}

#[test]
fn base_documents_are_valid() {
    accepted(gateway());
    accepted(aggregator());
}

#[test]
fn resource_name_must_fit_the_objects_it_names() {
    refused(
        with(gateway(), "/metadata/name", json!("1public")),
        "metadata.name must be a DNS label",
    );
    refused(
        with(gateway(), "/metadata/name", json!("a".repeat(53))),
        "at most 52 characters",
    );
    accepted(with(gateway(), "/metadata/name", json!("a".repeat(52))));
}

/// Route, client, step and endpoint names and contract versions are list-map keys: the API
/// server refuses a repeated key itself, with its own wording, and so does offline admission.
#[test]
fn names_and_versions_must_be_unique() {
    let route = gateway()["spec"]["contracts"][0]["routes"][1].clone();
    refused(
        with(gateway(), "/spec/contracts/0/routes/2", route.clone()),
        r#"spec.contracts[0].routes[2]: Duplicate value: map[string]interface {}{"name":"status"}"#,
    );
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/2",
        with(
            with(route, "/name", json!("status2")),
            "/match/path",
            json!("/status2"),
        ),
    ));

    let contract = gateway()["spec"]["contracts"][0].clone();
    refused(
        with(gateway(), "/spec/contracts/1", contract.clone()),
        r#"spec.contracts[1]: Duplicate value: map[string]interface {}{"version":"v1"}"#,
    );
    accepted(with(
        gateway(),
        "/spec/contracts/1",
        with(contract, "/version", json!("v2")),
    ));

    refused(
        with(gateway(), "/spec/clients/1", json!({"name": "web"})),
        r#"spec.clients[1]: Duplicate value: map[string]interface {}{"name":"web"}"#,
    );
    accepted(with(
        gateway(),
        "/spec/clients/1",
        json!({"name": "partner"}),
    ));

    let step = aggregator()["spec"]["endpoints"][0]["steps"][0].clone();
    refused(
        with(aggregator(), "/spec/endpoints/0/steps/2", step.clone()),
        r#"spec.endpoints[0].steps[2]: Duplicate value: map[string]interface {}{"name":"product"}"#,
    );
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/steps/2",
        with(step, "/name", json!("stock")),
    ));

    let endpoint = aggregator()["spec"]["endpoints"][0].clone();
    refused(
        with(aggregator(), "/spec/endpoints/1", endpoint.clone()),
        r#"spec.endpoints[1]: Duplicate value: map[string]interface {}{"name":"page"}"#,
    );
    accepted(with(
        aggregator(),
        "/spec/endpoints/1",
        with(
            with(endpoint, "/name", json!("other")),
            "/match/path",
            json!("/other/{id}"),
        ),
    ));
}

#[test]
fn a_route_does_exactly_one_thing() {
    let message = "a route does exactly one thing";
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/respond",
            json!({"body": "x"}),
        ),
        message,
    );
    let mut none = gateway();
    none["spec"]["contracts"][0]["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("backend");
    refused(none, message);
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/1/respond",
        json!({"status": 204}),
    ));
}

#[test]
fn backend_rules() {
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/backend/aggregator",
            json!("page"),
        ),
        "a backend names exactly one of service or aggregator",
    );
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/backend",
            json!({"aggregator": "page", "port": 80}),
        ),
        "port applies only to a service backend",
    );
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/0/backend",
        json!({"aggregator": "page"}),
    ));

    let weighted =
        |w1: i64, w2: i64| json!([{"service": "a", "weight": w1}, {"service": "b", "weight": w2}]);
    let mut doc = gateway();
    doc["spec"]["contracts"][0]["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("backend");
    refused(
        with(
            doc.clone(),
            "/spec/contracts/0/routes/0/backends",
            weighted(0, 0),
        ),
        "at least one backend must have a weight above 0",
    );
    accepted(with(
        doc,
        "/spec/contracts/0/routes/0/backends",
        weighted(0, 1),
    ));
}

#[test]
fn retries_only_where_something_is_proxied() {
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/1/retries",
            json!({"attempts": 2}),
        ),
        "retries apply only to routes that proxy to backend or backends",
    );
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/0/retries",
        json!({"attempts": 2}),
    ));
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/retries",
            json!({"attempts": 9}),
        ),
        "retries.attempts",
    );
}

#[test]
fn match_rules() {
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/match/methods",
            json!(["GET", "HEAD", "GET"]),
        ),
        // The API server's own wording for a repeated item of a `set` list.
        "spec.contracts[0].routes[0].match.methods[2]: Duplicate value: \"GET\"",
    );
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/match/methods",
            json!(["FETCH"]),
        ),
        "match.methods[0]",
    );
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/0/match/methods",
        json!(["GET", "HEAD"]),
    ));
    for bad in [
        "products",
        "/products/id}",
        "/products/{id",
        "/a b",
        "/products/{Id}",
    ] {
        refused(
            with(
                gateway(),
                "/spec/contracts/0/routes/1/match/path",
                json!(bad),
            ),
            "spec.contracts[0].routes[1].match.path",
        );
    }
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/1/match/host",
            json!("Not A Host"),
        ),
        "match.host",
    );
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/1/match/host",
        json!("*.example.com"),
    ));
}

#[test]
fn redirect_status_must_be_a_redirect() {
    let mut doc = gateway();
    doc["spec"]["contracts"][0]["routes"][1]
        .as_object_mut()
        .unwrap()
        .remove("respond");
    refused(
        with(
            doc.clone(),
            "/spec/contracts/0/routes/1/redirect",
            json!({"path": "/v2/status", "statusCode": 200}),
        ),
        "statusCode must be 301, 302, 303, 307 or 308",
    );
    accepted(with(
        doc,
        "/spec/contracts/0/routes/1/redirect",
        json!({"path": "/v2/status", "statusCode": 308}),
    ));
}

#[test]
fn durations_must_be_well_formed() {
    for bad in ["2sec", "1.5s", "2", "-1s", "1h1m1s1ms1h"] {
        refused(
            with(gateway(), "/spec/contracts/0/routes/0/timeout", json!(bad)),
            "spec.contracts[0].routes[0].timeout",
        );
    }
    for good in ["300ms", "2s", "1m30s", "1h"] {
        accepted(with(
            gateway(),
            "/spec/contracts/0/routes/0/timeout",
            json!(good),
        ));
    }
    refused(
        with(aggregator(), "/spec/endpoints/0/timeout", json!("soon")),
        "spec.endpoints[0].timeout",
    );
}

#[test]
fn contract_versions_look_like_versions() {
    refused(
        with(gateway(), "/spec/contracts/0/version", json!("1")),
        "spec.contracts[0].version",
    );
    refused(
        with(gateway(), "/spec/contracts/0/version", json!("v0")),
        "spec.contracts[0].version",
    );
    accepted(with(
        gateway(),
        "/spec/contracts/0/version",
        json!("v2beta1"),
    ));
}

#[test]
fn scaling_rules() {
    refused(
        with(
            gateway(),
            "/spec/deployment/autoscaling",
            json!({"minReplicas": 5, "maxReplicas": 2}),
        ),
        "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
    );
    accepted(with(
        gateway(),
        "/spec/deployment/autoscaling",
        json!({"minReplicas": 2, "maxReplicas": 2}),
    ));
    // minReplicas defaults to 2, as the API server would default it.
    refused(
        with(
            gateway(),
            "/spec/deployment/autoscaling",
            json!({"maxReplicas": 1}),
        ),
        "autoscaling.minReplicas must not exceed",
    );
    refused(
        with(
            with(gateway(), "/spec/deployment/replicas", json!(3)),
            "/spec/deployment/autoscaling",
            json!({"maxReplicas": 4}),
        ),
        "set deployment.replicas or deployment.autoscaling, not both",
    );
    accepted(with(gateway(), "/spec/deployment/replicas", json!(3)));
    refused(
        with(
            gateway(),
            "/spec/deployment/disruptionBudget",
            json!({"minAvailable": 1, "maxUnavailable": "50%"}),
        ),
        "set minAvailable or maxUnavailable, not both",
    );
    accepted(with(
        gateway(),
        "/spec/deployment/disruptionBudget",
        json!({"maxUnavailable": "50%"}),
    ));
}

#[test]
fn rate_limit_burst_covers_the_rate() {
    refused(
        with(
            gateway(),
            "/spec/clients/0/rateLimit",
            json!({"requestsPerSecond": 100, "burst": 10}),
        ),
        "rateLimit.burst must be at least requestsPerSecond",
    );
    accepted(with(
        gateway(),
        "/spec/clients/0/rateLimit",
        json!({"requestsPerSecond": 100, "burst": 150}),
    ));
}

#[test]
fn unknown_fields_are_refused_like_kubectl_strict_validation() {
    refused(
        with(gateway(), "/spec/contracts/0/routes/0/timout", json!("2s")),
        "spec.contracts[0].routes[0]",
    );
    refused(with(gateway(), "/spec/replicas", json!(2)), "spec");
}

#[test]
fn template_parameters_must_come_from_the_match() {
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/backend/path",
            json!("/items/{sku}"),
        ),
        "spec.contracts[0].routes[0].backend.path: parameter {sku} is not in the match /v1/products/{id}",
    );
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/match/path",
            json!("/products/{id}/{id}"),
        ),
        "parameter {id} appears twice",
    );
    let mut doc = gateway();
    doc["spec"]["contracts"][0]["routes"][1]
        .as_object_mut()
        .unwrap()
        .remove("respond");
    refused(
        with(
            doc.clone(),
            "/spec/contracts/0/routes/1/redirect",
            json!({"path": "/v2/{id}"}),
        ),
        "routes[1].redirect.path: parameter {id} is not in the match /v1/status",
    );
    accepted(with(
        doc,
        "/spec/contracts/0/routes/1/redirect",
        json!({"path": "/v2/status"}),
    ));
    // Parameters of the contract's base path count too.
    accepted(with(
        with(
            gateway(),
            "/spec/contracts/0/basePath",
            json!("/{tenant}/v1"),
        ),
        "/spec/contracts/0/routes/0/backend/path",
        json!("/{tenant}/items/{id}"),
    ));
}

#[test]
fn header_edits_use_known_placeholders_and_header_names() {
    let edit = |set: Value| {
        with(
            gateway(),
            "/spec/contracts/0/routes/0/requestHeaders",
            json!({"set": set}),
        )
    };
    refused(
        edit(json!({"x-sku": "{sku}"})),
        "{sku} is neither a parameter of the match nor one of {client}, {requestId}",
    );
    refused(edit(json!({"x id": "1"})), "is not a header name");
    refused(edit(json!({"x-id": "{id"})), "unclosed");
    accepted(edit(
        json!({"x-id": "{id}", "x-client": "{client}", "x-request-id": "{requestId}"}),
    ));
    refused(
        with(
            gateway(),
            "/spec/contracts/0/routes/0/responseHeaders",
            json!({"remove": ["bad header"]}),
        ),
        "responseHeaders.remove[0]",
    );
}

#[test]
fn a_route_that_can_never_be_served_is_refused() {
    let shadow = json!({"name": "item", "match": {"path": "/products/{sku}"}, "backend": {"service": "items"}});
    refused(
        with(gateway(), "/spec/contracts/0/routes/2", shadow.clone()),
        "route v1/item matches exactly the same requests as route v1/product",
    );
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/2",
        with(shadow, "/match/methods", json!(["POST"])),
    ));
    refused(
        with(
            with(
                gateway(),
                "/spec/contracts/0/routes/1/match/path",
                json!("/status/"),
            ),
            "/spec/contracts/0/routes/1/match/pathType",
            json!("Prefix"),
        ),
        "a Prefix path must not end with '/'",
    );
}

#[test]
fn step_graph_rules() {
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/1/after",
            json!(["stock"]),
        ),
        "step seller waits for stock, which is not a step of this aggregation",
    );
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/1/after",
            json!(["product", "seller"]),
        ),
        "step seller cannot wait for itself",
    );
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/0/after",
            json!(["seller"]),
        ),
        "steps wait for each other in a cycle: product waits for seller waits for product",
    );
    refused(
        with(aggregator(), "/spec/endpoints/0/steps/1/after", json!([])),
        "step seller uses {product.sellerId} but does not wait for step product: add product to its after list",
    );
    // A value from a step waited for through another step is available too.
    let via = json!({"name": "shipping", "call": {"service": "shipping", "path": "/quote/{product.id}"}, "after": ["seller"]});
    accepted(with(aggregator(), "/spec/endpoints/0/steps/2", via));
}

#[test]
fn step_placeholders_must_resolve() {
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/0/call/path",
            json!("/items/{sku}"),
        ),
        "{sku} is not a match parameter",
    );
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/steps/0/call/path",
        json!("/items/{id}?lang={query.lang}&c={client}"),
    ));
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/0/call/headers",
            json!({"x-trace": "{header}"}),
        ),
        "{header} is not a match parameter",
    );
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/steps/0/call/headers",
        json!({"x-trace": "{header.x-trace}"}),
    ));
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/1/name",
            json!("query"),
        ),
        "step name query is taken by a request placeholder",
    );
}

#[test]
fn jq_rules_must_compile() {
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/response",
            json!("{id: .product.id"),
        ),
        "spec.endpoints[0].response: jq syntax error",
    );
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/response",
            json!("nosuchfunction(.)"),
        ),
        "jq rule uses undefined filter nosuchfunction",
    );
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/response",
            json!("$nosuchvariable"),
        ),
        "jq rule uses undefined variable",
    );
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/response",
        json!("{id: .product.id, path: $request.path, ok: ($steps.product.status == 200)}"),
    ));
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/0/filter",
            json!("{id,"),
        ),
        "spec.endpoints[0].steps[0].filter: jq syntax error",
    );
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/steps/0/filter",
        json!("{id, sellerId}"),
    ));
}

#[test]
fn step_timeouts_fit_the_deadline() {
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/0/timeout",
            json!("3s"),
        ),
        "step timeout 3s exceeds the aggregation's timeout 2s",
    );
    refused(
        with(
            aggregator(),
            "/spec/endpoints/0/steps/0/timeout",
            json!("1600ms"),
        ),
        "the step chain product → seller can take up to 2100ms, more than the aggregation's timeout 2s",
    );
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/steps/0/timeout",
        json!("1500ms"),
    ));
}

#[test]
fn every_problem_is_reported_at_once() {
    let doc = with(
        with(aggregator(), "/spec/endpoints/0/response", json!("{")),
        "/spec/endpoints/0/steps/0/call/path",
        json!("/items/{sku}"),
    );
    let found = problems(&doc);
    assert!(found.len() >= 2, "{found:#?}");
}

#[test]
fn external_scaling_excludes_replicas_and_autoscaling() {
    refused(
        with(
            with(gateway(), "/spec/deployment/externallyScaled", json!(true)),
            "/spec/deployment/replicas",
            json!(2),
        ),
        "an externally scaled deployment takes neither replicas nor autoscaling",
    );
    accepted(with(
        gateway(),
        "/spec/deployment/externallyScaled",
        json!(true),
    ));
    accepted(with(
        gateway(),
        "/spec/deployment/autoscaling",
        json!({"maxReplicas": 5, "targetRequestsPerSecond": 300}),
    ));
}

#[test]
fn timeouts_of_zero_are_refused() {
    for zero in ["0s", "0ms", "0m0s", "00h"] {
        refused(
            with(gateway(), "/spec/contracts/0/routes/0/timeout", json!(zero)),
            "spec.contracts[0].routes[0].timeout: a timeout must be above 0",
        );
        refused(
            with(aggregator(), "/spec/endpoints/0/timeout", json!(zero)),
            "spec.endpoints[0].timeout: a timeout must be above 0",
        );
        refused(
            with(
                aggregator(),
                "/spec/endpoints/0/steps/0/timeout",
                json!(zero),
            ),
            "spec.endpoints[0].steps[0].timeout: a timeout must be above 0",
        );
    }
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/0/timeout",
        json!("1ms"),
    ));
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/steps/0/timeout",
        json!("0h500ms"),
    ));
}

/// Values a proxy can never send: a header value that holds CR or LF would start a header (or
/// a response) of its own.
const CONTROL_VALUES: [&str; 5] = ["a\r\nx-injected: 1", "a\nb", "a\rb", "nul\0", "esc\u{1b}"];

#[test]
fn header_values_hold_no_control_characters() {
    for bad in CONTROL_VALUES {
        for (pointer, field) in [
            (
                "/spec/contracts/0/routes/0/requestHeaders/set/x-id",
                "spec.contracts[0].routes[0].requestHeaders.set",
            ),
            (
                "/spec/contracts/0/routes/0/responseHeaders/add/x-id",
                "spec.contracts[0].routes[0].responseHeaders.add",
            ),
            (
                "/spec/endpoints/0/steps/0/call/headers/x-id",
                "spec.endpoints[0].steps[0].call.headers",
            ),
        ] {
            let doc = if pointer.starts_with("/spec/endpoints") {
                aggregator()
            } else {
                gateway()
            };
            refused(with(doc, pointer, json!(bad)), field);
        }
    }
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/0/requestHeaders/set",
        json!({"x-tab": "a\tb", "x-utf8": "crème brûlée", "x-id": "id={id}"}),
    ));
    accepted(with(
        aggregator(),
        "/spec/endpoints/0/steps/0/call/headers",
        json!({"x-product": "{id}; lang=fr"}),
    ));
}

#[test]
fn a_direct_response_content_type_is_a_media_type() {
    let content_type = |value: &str| {
        with(
            gateway(),
            "/spec/contracts/0/routes/1/respond/contentType",
            json!(value),
        )
    };
    for bad in [
        "json",
        "text/",
        "text/plain\r\nset-cookie: a=b",
        "text/plain; charset",
        "text plain",
        "",
    ] {
        refused(
            content_type(bad),
            "spec.contracts[0].routes[1].respond.contentType",
        );
    }
    for good in [
        "application/json",
        "application/problem+json",
        "text/html; charset=utf-8",
        "text/plain;charset=\"utf-8\"",
        "application/vnd.shop.v1+json; q=1; profile=\"a b\"",
    ] {
        accepted(content_type(good));
    }
}

/// What a schema cannot see (a resource read without admission, as a buggy client or an older
/// API server would store it) is still refused by validation, with the field path.
#[test]
fn validation_refuses_what_the_proxy_would_refuse_without_the_schema() {
    let spec = |doc: Value| -> gatehouse_api::crd::GatewaySpec {
        serde_json::from_value(doc["spec"].clone()).unwrap()
    };
    let problems = |doc: Value| -> Vec<String> {
        gatehouse_api::validate::validate_gateway(&spec(doc))
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let found = problems(with(
        with(
            with(
                gateway(),
                "/spec/contracts/0/routes/0/requestHeaders/set/x-id",
                json!("a\r\nx-injected: 1"),
            ),
            "/spec/contracts/0/routes/1/respond/contentType",
            json!("text/html\nx: y"),
        ),
        "/spec/contracts/0/routes/0/timeout",
        json!("0s"),
    ));
    assert_eq!(
        found,
        [
            r#"spec.contracts[0].routes[0].requestHeaders.set[x-id]: a header value may not contain a carriage return (CR) (found at byte 1): "a\r\nx-injected: 1""#,
            r#"spec.contracts[0].routes[0].timeout: "0s": a timeout must be above 0 (every exchange would fail at once)"#,
            r#"spec.contracts[0].routes[1].respond.contentType: a content type may not contain a line feed (LF) (found at byte 9): "text/html\nx: y""#,
        ]
    );
}

#[test]
fn a_match_path_no_normalised_request_holds_is_refused() {
    for (path, why) in [
        ("/a/../admin", "'.' and '..' segments are resolved"),
        ("/./status", "'.' and '..' segments are resolved"),
        ("/%2e%2E/x", "'.' and '..' segments are resolved"),
        ("/files/a%2Fb", "encoded slash"),
        ("/files/a%zz", "'%' that is not followed by two hex digits"),
        ("/files/..;x", "dot-segment with a ';' parameter"),
        ("/files/a%00", "encoded NUL"),
    ] {
        refused(
            with(
                gateway(),
                "/spec/contracts/0/routes/1/match/path",
                json!(path),
            ),
            "spec.contracts[0].routes[1].match.path: segment",
        );
        refused(
            with(
                gateway(),
                "/spec/contracts/0/routes/1/match/path",
                json!(path),
            ),
            why,
        );
    }
    for path in ["/files/v1.2", "/a..b", "/~user", "/caf%C3%A9", "/%7Euser"] {
        accepted(with(
            gateway(),
            "/spec/contracts/0/routes/1/match/path",
            json!(path),
        ));
    }
}

/// Disruption budget sizes are what the PodDisruptionBudget API takes (an integer of 0 or more,
/// or a percentage up to 100%): anything else is refused here instead of by the budget later.
#[test]
fn disruption_budget_sizes_are_counts_or_percentages() {
    for field in ["minAvailable", "maxUnavailable"] {
        let budget = |value: Value| {
            with(
                gateway(),
                &format!("/spec/deployment/disruptionBudget/{field}"),
                value,
            )
        };
        for bad in [
            json!("one"),
            json!("50"),
            json!("101%"),
            json!("-1%"),
            json!("5 %"),
            json!(-1),
        ] {
            refused(
                budget(bad.clone()),
                &format!("spec.deployment.disruptionBudget.{field}"),
            );
        }
        for good in [
            json!(0),
            json!(1),
            json!(7),
            json!("0%"),
            json!("50%"),
            json!("100%"),
        ] {
            accepted(budget(good));
        }
    }
}

/// A budget asked for where at most one replica can run would block every node drain, so the
/// operator makes none: the combination is refused instead of silently dropped.
#[test]
fn a_disruption_budget_needs_more_than_one_possible_replica() {
    let message = "a disruptionBudget needs more than one possible replica";
    let budget = json!({"minAvailable": 1});
    for replicas in [0, 1] {
        refused(
            with(
                with(gateway(), "/spec/deployment/replicas", json!(replicas)),
                "/spec/deployment/disruptionBudget",
                budget.clone(),
            ),
            message,
        );
    }
    refused(
        with(
            with(
                gateway(),
                "/spec/deployment/autoscaling",
                json!({"minReplicas": 1, "maxReplicas": 1}),
            ),
            "/spec/deployment/disruptionBudget",
            budget.clone(),
        ),
        message,
    );
    // Two replicas, the default count, an autoscaler that may add one, or an external scaler.
    accepted(with(
        with(gateway(), "/spec/deployment/replicas", json!(2)),
        "/spec/deployment/disruptionBudget",
        budget.clone(),
    ));
    accepted(with(
        gateway(),
        "/spec/deployment/disruptionBudget",
        budget.clone(),
    ));
    accepted(with(
        with(
            gateway(),
            "/spec/deployment/autoscaling",
            json!({"minReplicas": 1, "maxReplicas": 2}),
        ),
        "/spec/deployment/disruptionBudget",
        budget.clone(),
    ));
    accepted(with(
        with(gateway(), "/spec/deployment/externallyScaled", json!(true)),
        "/spec/deployment/disruptionBudget",
        budget,
    ));
    // Without a budget asked for, one replica is fine (and gets none).
    accepted(with(gateway(), "/spec/deployment/replicas", json!(1)));
}
