//! Whatever the operator accepts, the proxy loads; whatever the proxy would refuse, the operator
//! refuses first, naming the field.
//!
//! Each resource below goes through what the cluster does — offline admission (the CRD schema
//! and its CEL rules, as the API server applies them), then the operator's `plan` (validate,
//! compile, build) — and the route ConfigMap it yields is served by the real `gatehouse-proxy`
//! binary, which must become ready on it and report the operator's digest. The resources sit on
//! the edges of what is allowed (tabs and UTF-8 in header values, templated values, media types
//! with parameters, the shortest and longest timeouts); their hostile neighbours (CR/LF, control
//! characters, malformed media types, zero timeouts) must be refused before anything is written.
#![allow(clippy::unwrap_used)]

// Shared with render_to_proxy, which uses all of it; this test needs only part.
#[allow(dead_code)]
#[path = "render_to_proxy/proxy.rs"]
mod proxy;

use gatehouse_api::resource::{ReadError, Resource};
use gatehouse_api::table_file::from_config_map;
use gatehouse_operator::plan::{Found, plan};
use gatehouse_operator::settings::ProxySettings;
use proxy::Proxy;
use serde_json::{Value, json};

fn gateway(route: Value) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "Gateway",
        "metadata": {"name": "edge-cases", "namespace": "shop", "generation": 1},
        "spec": {"contracts": [{"version": "v1", "routes": [
            {"name": "product", "match": {"path": "/products/{id}"},
             "backend": {"service": "catalog", "port": 8080, "path": "/items/{id}"}},
            route
        ]}]}
    })
}

fn aggregator(step_headers: Value, step_timeout: &str, timeout: &str) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "Aggregator",
        "metadata": {"name": "page", "namespace": "shop", "generation": 1},
        "spec": {"endpoints": [{
            "name": "page",
            "match": {"path": "/pages/{id}"},
            "steps": [{"name": "product", "timeout": step_timeout,
                       "call": {"service": "catalog", "path": "/items/{id}", "headers": step_headers}}],
            "response": ".product",
            "timeout": timeout
        }]}
    })
}

/// Resources on the edges of what is allowed.
fn allowed() -> Vec<(&'static str, Value)> {
    vec![
        (
            "header values with tabs, UTF-8 and placeholders",
            gateway(json!({"name": "edits", "match": {"path": "/edits/{id}"},
                "backend": {"service": "catalog"},
                "requestHeaders": {"set": {"x-tab": "a\tb", "x-utf8": "crème brûlée ✓", "x-id": "id={id}; client={client}"},
                                   "add": {"x-request": "{requestId}"}, "remove": ["x-drop"]},
                "responseHeaders": {"set": {"cache-control": "public, max-age=60"}}})),
        ),
        (
            "media types with parameters and quoted strings",
            gateway(json!({"name": "doc", "match": {"path": "/doc"},
                "respond": {"status": 200, "body": "{}",
                            "contentType": "application/vnd.shop.v1+json; charset=utf-8; profile=\"a b\""}})),
        ),
        (
            "the shortest and longest timeouts",
            gateway(
                json!({"name": "slow", "match": {"path": "/slow"}, "timeout": "99999h1ms",
                "backend": {"service": "catalog"}}),
            ),
        ),
        (
            "a 1 ms timeout",
            gateway(
                json!({"name": "fast", "match": {"path": "/fast"}, "timeout": "1ms",
                "backend": {"service": "catalog"}}),
            ),
        ),
        (
            "step headers with placeholders and UTF-8",
            aggregator(
                json!({"x-product": "{id}", "x-note": "déjà vu\t1"}),
                "1ms",
                "2s",
            ),
        ),
    ]
}

/// Their hostile neighbours, and the field each refusal must name.
fn refused() -> Vec<(&'static str, Value, &'static str)> {
    let edit = |value: &str| {
        gateway(json!({"name": "edits", "match": {"path": "/edits"},
            "backend": {"service": "catalog"}, "requestHeaders": {"set": {"x-a": value}}}))
    };
    let respond = |content_type: &str| {
        gateway(json!({"name": "doc", "match": {"path": "/doc"},
            "respond": {"body": "{}", "contentType": content_type}}))
    };
    let response_edit = |value: &str| {
        gateway(json!({"name": "edits", "match": {"path": "/edits"},
            "backend": {"service": "catalog"}, "responseHeaders": {"add": {"x-a": value}}}))
    };
    let route_timeout = |timeout: &str| {
        gateway(
            json!({"name": "t", "match": {"path": "/t"}, "timeout": timeout,
            "backend": {"service": "catalog"}}),
        )
    };
    vec![
        (
            "CRLF in a request header",
            edit("1\r\nx-injected: 1"),
            "spec.contracts[0].routes[1].requestHeaders.set",
        ),
        (
            "LF in a templated request header",
            edit("{client}\nx"),
            "spec.contracts[0].routes[1].requestHeaders.set",
        ),
        (
            "NUL in a request header",
            edit("a\0b"),
            "spec.contracts[0].routes[1].requestHeaders.set",
        ),
        (
            "CR in a response header",
            response_edit("a\rb"),
            "spec.contracts[0].routes[1].responseHeaders.add",
        ),
        (
            "a content type that splits the response",
            respond("text/html\r\nset-cookie: a=b"),
            "spec.contracts[0].routes[1].respond.contentType",
        ),
        (
            "a content type that is not a media type",
            respond("html"),
            "spec.contracts[0].routes[1].respond.contentType",
        ),
        (
            "a zero route timeout",
            route_timeout("0s"),
            "spec.contracts[0].routes[1].timeout",
        ),
        (
            "a zero route timeout in two parts",
            route_timeout("0m0ms"),
            "spec.contracts[0].routes[1].timeout",
        ),
        (
            "LF in a step header",
            aggregator(json!({"x-a": "{id}\n"}), "1s", "2s"),
            "spec.endpoints[0].steps[0].call.headers",
        ),
        (
            "a zero step timeout",
            aggregator(json!({}), "0ms", "2s"),
            "spec.endpoints[0].steps[0].timeout",
        ),
        (
            "a zero aggregation timeout",
            aggregator(json!({}), "1s", "0s"),
            "spec.endpoints[0].timeout",
        ),
    ]
}

/// Admission then plan, as the cluster and the operator run them: the route table's JSON and
/// digest, or every problem as `path: message`.
fn operator_verdict(doc: &Value) -> Result<(String, String), Vec<String>> {
    let resource = match Resource::from_value(0, doc.clone()) {
        Ok(resource) => resource,
        Err(ReadError::Rejected { problems, .. }) => {
            return Err(problems.iter().map(ToString::to_string).collect());
        }
        Err(other) => return Err(vec![other.to_string()]),
    };
    let planned = plan(&resource, &Found::default(), &ProxySettings::default())
        .map_err(|problems| problems.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let json = from_config_map(&planned.objects.config_map)
        .expect("the route ConfigMap holds the table")
        .expect("it unpacks");
    let json = String::from_utf8(json).expect("JSON is UTF-8");
    Ok((json, planned.table.digest()))
}

#[tokio::test]
async fn every_table_the_operator_accepts_loads_in_the_proxy() {
    for (case, doc) in allowed() {
        let (json, digest) = operator_verdict(&doc)
            .unwrap_or_else(|problems| panic!("{case}: refused: {problems:#?}"));
        // `serve` waits for /readyz and fails with the proxy's log if it never gets there.
        let proxy = Proxy::serve("accepted", &json, &[]).await;
        let config: Value = serde_json::from_slice(&proxy.admin("/config").await.body).unwrap();
        assert_eq!(
            config["digest"],
            json!(digest),
            "{case}: the proxy serves another table"
        );
    }
}

#[test]
fn what_the_proxy_would_refuse_the_operator_refuses_first_naming_the_field() {
    for (case, doc, field) in refused() {
        match operator_verdict(&doc) {
            Ok(_) => panic!("{case}: accepted"),
            Err(problems) => assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{case}: no problem at {field}: {problems:#?}"
            ),
        }
    }
}
