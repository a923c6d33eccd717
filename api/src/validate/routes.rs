//! Checks of contracts, routes and endpoints.

use std::collections::BTreeMap;

use super::Problem;
use super::aggregation::check_aggregation;
use crate::crd::{
    ContractVersion, Deprecation, Endpoint, HeaderModifier, PathType, Route, RouteMatch,
};
use crate::prepare::{self, HeaderValueTemplate};
use crate::{duration, normalize, path};

/// Placeholders a header value may use besides the match's parameters.
const HEADER_VARIABLES: [&str; 2] = ["client", "requestId"];

/// The effective base path of a contract: `basePath`, or `/VERSION`.
pub fn base_path(contract: &ContractVersion) -> String {
    contract
        .base_path
        .clone()
        .unwrap_or_else(|| format!("/{}", contract.version))
}

/// What makes two matches indistinguishable; the second of two equal keys is never served.
fn match_key(full_path: &str, m: &RouteMatch) -> String {
    let mut methods: Vec<_> = m.methods.iter().map(|m| m.as_str()).collect();
    methods.sort_unstable();
    let mut headers: Vec<_> = m
        .headers
        .iter()
        .map(|h| format!("{}={:?}", h.name.to_ascii_lowercase(), h.value))
        .collect();
    headers.sort();
    let mut query: Vec<_> = m
        .query_params
        .iter()
        .map(|q| format!("{}={:?}", q.name, q.value))
        .collect();
    query.sort();
    // Parameter names do not change what a path matches: `/a/{x}` and `/a/{y}` collide.
    format!(
        "{:?} {} {:?} {:?} {:?} {:?} {:?}",
        m.path_type,
        path::shape(full_path),
        m.host,
        methods,
        headers,
        query,
        full_path.ends_with('/') && full_path != "/"
    )
}

/// Checks every contract's base path and routes, and that no two routes match the same
/// requests; `field` is the contracts' list (`spec.contracts`, or a Contract's `spec.versions`).
pub(super) fn check_contracts(
    field: &str,
    contracts: &[ContractVersion],
    problems: &mut Vec<Problem>,
) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let versions: Vec<&str> = contracts.iter().map(|c| c.version.as_str()).collect();
    for (c, contract) in contracts.iter().enumerate() {
        let base = base_path(contract);
        check_path_syntax(&format!("{field}[{c}].basePath"), &base, problems);
        if let Some(deprecation) = &contract.deprecation {
            let at = format!("{field}[{c}].deprecation");
            check_deprecation(
                &at,
                deprecation,
                &versions,
                Some(&contract.version),
                problems,
            );
        }
        for (r, route) in contract.routes.iter().enumerate() {
            let at = format!("{field}[{c}].routes[{r}]");
            let full = path::join(&base, &route.matches.path);
            check_route(&at, &full, route, problems);
            if let Some(deprecation) = &route.deprecation {
                let at = format!("{at}.deprecation");
                check_deprecation(&at, deprecation, &versions, None, problems);
            }
            let key = match_key(&full, &route.matches);
            let id = format!("{}/{}", contract.version, route.name);
            if let Some(first) = seen.get(&key) {
                problems.push(Problem::new(
                    format!("{at}.match"),
                    format!("route {id} matches exactly the same requests as route {first}, so it would never be served"),
                ));
            } else {
                seen.insert(key, id);
            }
        }
    }
}

/// A deprecation's dates are real and in order, and its successor is another of the contract's
/// `versions` (`own`: the deprecated version itself, when it is one).
fn check_deprecation(
    at: &str,
    deprecation: &Deprecation,
    versions: &[&str],
    own: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    let since = deprecation.since_seconds();
    if let Err(message) = &since {
        problems.push(Problem::new(format!("{at}.since"), message.clone()));
    }
    match (since, deprecation.sunset_seconds()) {
        (_, Some(Err(message))) => problems.push(Problem::new(format!("{at}.sunset"), message)),
        (Ok(since), Some(Ok(sunset))) if sunset < since => problems.push(Problem::new(
            format!("{at}.sunset"),
            "sunset may not be before since (the deprecation date)",
        )),
        _ => {}
    }
    if let Some(successor) = deprecation.successor.as_deref() {
        if Some(successor) == own {
            problems.push(Problem::new(
                format!("{at}.successor"),
                format!("a version cannot succeed itself: name the version clients move to instead of {successor}"),
            ));
        } else if !versions.contains(&successor) {
            problems.push(Problem::new(
                format!("{at}.successor"),
                format!(
                    "successor {successor} is not a version of this contract (it has {})",
                    versions.join(", ")
                ),
            ));
        }
    }
}

pub(super) fn check_endpoints(endpoints: &[Endpoint], problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (e, endpoint) in endpoints.iter().enumerate() {
        let at = format!("spec.endpoints[{e}]");
        check_match(&at, &endpoint.matches.path, &endpoint.matches, problems);
        let params = unique_params(&at, &endpoint.matches.path, problems);
        check_aggregation(&at, &params, &endpoint.aggregation, problems);
        let key = match_key(&endpoint.matches.path, &endpoint.matches);
        if let Some(first) = seen.get(&key) {
            problems.push(Problem::new(
                format!("{at}.match"),
                format!("endpoint {} matches exactly the same requests as endpoint {first}, so it would never be served", endpoint.name),
            ));
        } else {
            seen.insert(key, endpoint.name.clone());
        }
    }
}

fn check_route(at: &str, full_path: &str, route: &Route, problems: &mut Vec<Problem>) {
    check_match(at, full_path, &route.matches, problems);
    let params = unique_params(at, full_path, problems);
    let actions = [
        route.backend.is_some(),
        route.backends.is_some(),
        route.aggregate.is_some(),
        route.redirect.is_some(),
        route.respond.is_some(),
    ];
    if actions.iter().filter(|set| **set).count() != 1 {
        problems.push(Problem::new(
            at,
            "a route does exactly one thing: set one of backend, backends, aggregate, redirect or respond",
        ));
    }
    if let Some(backend) = &route.backend
        && let Some(p) = &backend.path
    {
        check_path_params(
            &format!("{at}.backend.path"),
            p,
            &params,
            full_path,
            problems,
        );
    }
    for (b, backend) in route.backends.iter().flatten().enumerate() {
        if let Some(p) = &backend.path {
            check_path_params(
                &format!("{at}.backends[{b}].path"),
                p,
                &params,
                full_path,
                problems,
            );
        }
    }
    if let Some(redirect) = &route.redirect
        && let Some(p) = &redirect.path
    {
        check_path_params(
            &format!("{at}.redirect.path"),
            p,
            &params,
            full_path,
            problems,
        );
    }
    if let Some(aggregation) = &route.aggregate {
        check_aggregation(&format!("{at}.aggregate"), &params, aggregation, problems);
    }
    for (field, edits) in [
        ("requestHeaders", &route.request_headers),
        ("responseHeaders", &route.response_headers),
    ] {
        if let Some(edits) = edits {
            check_header_edits(&format!("{at}.{field}"), edits, &params, problems);
        }
    }
    if let Some(timeout) = &route.timeout
        && let Err(message) = duration::parse_timeout_millis(timeout)
    {
        problems.push(Problem::new(format!("{at}.timeout"), message));
    }
    if let Some(respond) = &route.respond
        && let Err(message) = prepare::media_type(&respond.content_type)
    {
        problems.push(Problem::new(format!("{at}.respond.contentType"), message));
    }
}

fn check_match(at: &str, full_path: &str, m: &RouteMatch, problems: &mut Vec<Problem>) {
    check_path_syntax(&format!("{at}.match.path"), &m.path, problems);
    // The proxy routes on the normalised request path (`crate::normalize`): a literal that no
    // normalised path holds would make a route that is never served.
    for segment in full_path
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
    {
        let never = match normalize::normalize_segment(segment) {
            Err(refusal) => Some(format!("the gateway answers 400 when {refusal}")),
            Ok(normal) if normal == "." || normal == ".." => Some(
                "requests are normalised before routing, so '.' and '..' segments are resolved"
                    .to_owned(),
            ),
            Ok(normal) if normal.starts_with(".;") || normal.starts_with("..;") => Some(format!(
                "the gateway answers 400 when {}",
                normalize::PathRefusal::DotSegmentParameter
            )),
            Ok(_) => None,
        };
        if let Some(why) = never {
            problems.push(Problem::new(
                format!("{at}.match.path"),
                format!("segment {segment:?} of {full_path} can never match a request: {why}"),
            ));
        }
    }
    if m.path_type == PathType::Prefix && full_path.ends_with('/') && full_path != "/" {
        problems.push(Problem::new(
            format!("{at}.match.path"),
            "a Prefix path must not end with '/': prefixes match whole segments",
        ));
    }
}

/// Checks a path or path template is `/`-separated literal segments and whole `{name}` segments.
pub(crate) fn check_path_syntax(at: &str, text: &str, problems: &mut Vec<Problem>) {
    if !text.starts_with('/') {
        problems.push(Problem::new(
            at,
            format!("path {text:?} must start with '/'"),
        ));
        return;
    }
    for segment in text.split('/').filter(|s| !s.is_empty()) {
        let is_param = segment.len() > 2
            && segment.starts_with('{')
            && segment.ends_with('}')
            && is_identifier(&segment[1..segment.len() - 1]);
        if !is_param && segment.contains(['{', '}']) {
            problems.push(Problem::new(
                at,
                format!("segment {segment:?} of {text:?} must be literal text or a whole {{name}} parameter"),
            ));
        }
    }
}

/// A name usable as a parameter or step: a letter, then letters, digits or `_`.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The match's parameters; a parameter named twice is a problem.
fn unique_params(at: &str, full_path: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    let params = path::params(full_path);
    for (i, name) in params.iter().enumerate() {
        if params[..i].contains(name) {
            problems.push(Problem::new(
                format!("{at}.match.path"),
                format!("parameter {{{name}}} appears twice in {full_path}"),
            ));
        }
    }
    params
}

fn check_path_params(
    at: &str,
    text: &str,
    params: &[String],
    full_path: &str,
    problems: &mut Vec<Problem>,
) {
    check_path_syntax(at, text, problems);
    for name in path::params(text) {
        if !params.contains(&name) {
            problems.push(Problem::new(
                at,
                format!("parameter {{{name}}} is not in the match {full_path}"),
            ));
        }
    }
}

fn check_header_edits(
    at: &str,
    edits: &HeaderModifier,
    params: &[String],
    problems: &mut Vec<Problem>,
) {
    for (field, entries) in [("set", &edits.set), ("add", &edits.add)] {
        for (name, value) in entries {
            let here = format!("{at}.{field}[{name}]");
            if let Err(message) = prepare::header_name(name) {
                problems.push(Problem::new(&here, message));
            }
            match prepare::header_value(value) {
                Err(message) => problems.push(Problem::new(&here, message)),
                Ok(HeaderValueTemplate::Fixed(_)) => {}
                Ok(HeaderValueTemplate::Templated(template)) => {
                    for var in template.vars() {
                        if !params.iter().any(|p| p == var) && !HEADER_VARIABLES.contains(&var) {
                            problems.push(Problem::new(
                                &here,
                                format!("{{{var}}} is neither a parameter of the match nor one of {{client}}, {{requestId}}"),
                            ));
                        }
                    }
                }
            }
        }
    }
    for (i, name) in edits.remove.iter().enumerate() {
        if let Err(message) = prepare::header_name(name) {
            problems.push(Problem::new(format!("{at}.remove[{i}]"), message));
        }
    }
}
