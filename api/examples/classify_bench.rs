//! The passivity classification of a 2,000-route change, worst case: 16 published versions of
//! 125 routes each, and every route touched (a method added, a header condition dropped, the
//! backend changed; one in five also loses a method, a breaking change). Prints the time of
//! `classify` alone and with the compile of both sides, median and max of the runs.
//!
//! `cargo run --release -p gatehouse-api --example classify_bench [RUNS]` (bench/versioning/run.sh)
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use gatehouse_api::compile::contract_routes;
use gatehouse_api::crd::ContractVersion;
use gatehouse_api::versioning::{Class, classify};
use serde_json::{Value, json};

const VERSIONS: usize = 16;
const ROUTES: usize = 125;

fn versions(touched: bool) -> Vec<ContractVersion> {
    let versions: Vec<Value> = (1..=VERSIONS)
        .map(|v| {
            let routes: Vec<Value> = (0..ROUTES)
                .map(|r| {
                    let mut methods = vec!["GET", "PUT"];
                    let mut headers = vec![json!({"name": "X-Tenant"})];
                    let mut service = format!("svc-{}", r % 7);
                    if touched {
                        methods.push("PATCH");
                        headers.clear();
                        service.push_str("-next");
                        if r % 5 == 0 {
                            methods.retain(|m| *m != "PUT");
                        }
                    }
                    json!({
                        "name": format!("route-{r}"),
                        "match": {
                            "path": format!("/things-{r}/{{id}}/parts/{{part}}"),
                            "methods": methods,
                            "headers": headers,
                            "queryParams": [{"name": "view", "value": "full"}],
                            "host": "api.example.com",
                        },
                        "backend": {"service": service, "port": 8080, "path": "/items/{id}"},
                        "timeout": if touched { "5s" } else { "2s" },
                    })
                })
                .collect();
            json!({"version": format!("v{v}"), "lifecycle": "Published", "routes": routes})
        })
        .collect();
    serde_json::from_value(Value::Array(versions)).unwrap()
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    format!(
        "median {:.1} ms, max {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    )
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let (old, new) = (versions(false), versions(true));
    let mut alone = Vec::new();
    let mut with_compile = Vec::new();
    let mut found = None;
    for _ in 0..runs {
        let started = Instant::now();
        let (before, after) = (contract_routes("shop", &old), contract_routes("shop", &new));
        let compiled = started.elapsed();
        let changes = classify("spec.versions", &before, &after);
        let total = started.elapsed();
        alone.push(total - compiled);
        with_compile.push(total);
        found = Some((before.len(), changes));
    }
    let (routes, changes) = found.unwrap();
    let count = |class| changes.iter().filter(|c| c.class == class).count();
    println!(
        "{routes} routes, every one touched: {} changes ({} breaking, {} possibly breaking, {} passive)",
        changes.len(),
        count(Class::Breaking),
        count(Class::PossiblyBreaking),
        count(Class::Passive)
    );
    println!("classify: {} ({runs} runs)", summary(alone));
    println!("compile both sides + classify: {}", summary(with_compile));
}
