//! Consistency checks of a route table as a proxy loads it.
//!
//! Tables written by `compile` always pass; these checks guard the proxy against a table that
//! was edited by hand, truncated, or written by a buggy tool — such a table is refused and the
//! previous one keeps serving.

use std::collections::BTreeSet;

use super::Problem;
use super::access::{check_allow_deny, check_ranges};
use super::aggregation::check_step_graph;
use super::routes::check_path_syntax;
use crate::expression::{Expression, RULE_VARIABLES};
use crate::prepare;
use crate::route_table::{Action, ClientAddressEntry, RouteTable, SourceRangesEntry};
use crate::template::Template;

/// Checks a parsed table; returns every problem.
pub fn check_table(table: &RouteTable) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for (r, route) in table.routes.iter().enumerate() {
        let at = format!("routes[{r}]");
        if !ids.insert(route.id.as_str()) {
            problems.push(Problem::new(
                &at,
                format!("route id {} appears twice", route.id),
            ));
        }
        check_path_syntax(&format!("{at}.path"), &route.path, &mut problems);
        if let Err(message) = prepare::timeout_millis(route.timeout_ms) {
            problems.push(Problem::new(format!("{at}.timeoutMs"), message));
        }
        if let Some(Err(message)) = route.tunnel_timeout_ms.map(prepare::timeout_millis) {
            problems.push(Problem::new(format!("{at}.tunnelTimeoutMs"), message));
        }
        for (field, edits) in [
            ("requestHeaders", &route.request_headers),
            ("responseHeaders", &route.response_headers),
        ] {
            for (name, value) in edits.set.iter().chain(&edits.add) {
                let checked = prepare::header_name(name).and_then(|_| prepare::header_value(value));
                if let Err(message) = checked {
                    problems.push(Problem::new(format!("{at}.{field}[{name}]"), message));
                }
            }
            for name in &edits.remove {
                if let Err(message) = prepare::header_name(name) {
                    problems.push(Problem::new(format!("{at}.{field}.remove"), message));
                }
            }
        }
        check_route_access(&at, route, table, &mut problems);
        match &route.action {
            Action::Proxy { upstreams } => {
                if !upstreams.iter().any(|u| u.weight > 0) {
                    problems.push(Problem::new(
                        format!("{at}.action.upstreams"),
                        "no upstream has a weight above 0",
                    ));
                }
                for (u, upstream) in upstreams.iter().enumerate() {
                    if upstream.port == 0 {
                        problems.push(Problem::new(
                            format!("{at}.action.upstreams[{u}].port"),
                            "port 0",
                        ));
                    }
                    if let Some(path) = &upstream.path {
                        check_path_syntax(
                            &format!("{at}.action.upstreams[{u}].path"),
                            path,
                            &mut problems,
                        );
                    }
                    if let Some(tls) = &upstream.tls
                        && rustls::pki_types::ServerName::try_from(tls.server_name.as_str())
                            .is_err()
                    {
                        problems.push(Problem::new(
                            format!("{at}.action.upstreams[{u}].tls.serverName"),
                            format!("{:?} is not a server name", tls.server_name),
                        ));
                    }
                }
            }
            Action::Aggregate(plan) => {
                for (s, message) in check_step_graph(
                    plan.steps
                        .iter()
                        .map(|s| (s.name.as_str(), s.after.as_slice())),
                ) {
                    problems.push(Problem::new(
                        format!("{at}.action.steps[{s}].after"),
                        message,
                    ));
                }
                if let Err(message) = prepare::timeout_millis(plan.timeout_ms) {
                    problems.push(Problem::new(format!("{at}.action.timeoutMs"), message));
                }
                if let Err(message) = Expression::compile(&plan.response, &RULE_VARIABLES) {
                    problems.push(Problem::new(format!("{at}.action.response"), message));
                }
                for (s, step) in plan.steps.iter().enumerate() {
                    if let Some(filter) = &step.filter
                        && let Err(message) = Expression::compile(filter, &RULE_VARIABLES)
                    {
                        problems.push(Problem::new(
                            format!("{at}.action.steps[{s}].filter"),
                            message,
                        ));
                    }
                    let here = format!("{at}.action.steps[{s}]");
                    for text in std::iter::once(&step.path).chain(&step.body) {
                        if let Err(message) = Template::parse(text) {
                            problems.push(Problem::new(&here, message));
                        }
                    }
                    for (name, value) in &step.headers {
                        let checked = prepare::header_name(name)
                            .and_then(|_| prepare::header_template(value));
                        if let Err(message) = checked {
                            problems.push(Problem::new(format!("{here}.headers[{name}]"), message));
                        }
                    }
                    if let Err(message) = prepare::method(&step.method) {
                        problems.push(Problem::new(format!("{here}.method"), message));
                    }
                    if let Some(Err(message)) = step.timeout_ms.map(prepare::timeout_millis) {
                        problems.push(Problem::new(format!("{here}.timeoutMs"), message));
                    }
                }
            }
            Action::Redirect(redirect) => {
                if let Some(path) = &redirect.path {
                    check_path_syntax(&format!("{at}.action.path"), path, &mut problems);
                }
            }
            Action::Respond(respond) => {
                if let Err(message) = prepare::media_type(&respond.content_type) {
                    problems.push(Problem::new(format!("{at}.action.contentType"), message));
                }
            }
        }
    }
    for (c, client) in table.clients.iter().enumerate() {
        if client.max_in_flight == Some(0) {
            problems.push(Problem::new(
                format!("clients[{c}].maxInFlight"),
                "a concurrency limit must be above 0",
            ));
        }
        if client.certificate.is_some() && table.tls.is_none() {
            problems.push(Problem::new(
                format!("clients[{c}].certificate"),
                "a client certificate needs the table's tls (an HTTPS listener) to be presented on",
            ));
        }
    }
    if let Some(ranges) = &table.source_ranges {
        check_source_ranges("sourceRanges", ranges, &mut problems);
    }
    if let Some(ClientAddressEntry::TrustedProxies(ranges)) = &table.client_address {
        check_ranges("clientAddress.trustedProxies", ranges, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A route's client list names the table's clients; its ranges parse; its body limit is not 0.
fn check_route_access(
    at: &str,
    route: &crate::route_table::RouteEntry,
    table: &RouteTable,
    problems: &mut Vec<Problem>,
) {
    for name in route.clients.iter().flatten() {
        let known = table.clients.iter().any(|c| &c.name == name)
            || table.edge_client.as_ref() == Some(name);
        if !known {
            problems.push(Problem::new(
                format!("{at}.clients"),
                format!("the table has no client named {name}"),
            ));
        }
    }
    for (i, ranges) in route.source_ranges.iter().enumerate() {
        check_source_ranges(&format!("{at}.sourceRanges[{i}]"), ranges, problems);
    }
    if let Some(cors) = &route.cors {
        for origin in &cors.allow_origins {
            if prepare::cors_origin(origin).as_ref() != Ok(origin) {
                problems.push(Problem::new(
                    format!("{at}.cors.allowOrigins"),
                    format!("{origin:?} is not an origin in lower case"),
                ));
            }
        }
        for method in &cors.allow_methods {
            if let Err(message) = prepare::method(method) {
                problems.push(Problem::new(format!("{at}.cors.allowMethods"), message));
            }
        }
        for name in cors.allow_headers.iter().chain(&cors.expose_headers) {
            if name != "*"
                && let Err(message) = prepare::header_name(name)
            {
                problems.push(Problem::new(format!("{at}.cors"), message));
            }
        }
    }
    if route.max_in_flight == Some(0) {
        problems.push(Problem::new(
            format!("{at}.maxInFlight"),
            "a concurrency limit must be above 0",
        ));
    }
    if route.max_body_bytes == Some(0) {
        problems.push(Problem::new(
            format!("{at}.maxBodyBytes"),
            "a body limit must be above 0",
        ));
    }
}

fn check_source_ranges(at: &str, ranges: &SourceRangesEntry, problems: &mut Vec<Problem>) {
    check_allow_deny(at, &ranges.allow, &ranges.deny, problems);
}
