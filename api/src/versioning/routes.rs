//! One route of a published version, before and after: its match (see [`super::matches`]),
//! then how it answers and who may call it.

use super::matches::{compare_conditions, compare_host, compare_methods, compare_path};
use super::{Changes, Class};
use crate::route_table::{Action, DeprecationEntry, RouteEntry};

/// Every change to a route that kept its name; its deprecation too unless `version_wide` (the
/// version reports a deprecation that all its routes share).
pub(super) fn compare(
    changes: &mut Changes<'_>,
    old: &RouteEntry,
    new: &RouteEntry,
    version_wide: bool,
) {
    compare_path(changes, old, new);
    compare_host(changes, old.host.as_deref(), new.host.as_deref());
    compare_methods(changes, &old.methods, &new.methods);
    let headers = (".match.headers", "header");
    compare_conditions(changes, headers, &old.headers, &new.headers);
    let query = (".match.queryParams", "query parameter");
    compare_conditions(changes, query, &old.query, &new.query);
    compare_action(changes, &old.action, &new.action);
    compare_handling(changes, old, new);
    compare_callers(changes, old, new);
    if !version_wide {
        compare_deprecation(
            changes,
            old.deprecation.as_deref(),
            new.deprecation.as_deref(),
        );
    }
}

fn action_kind(action: &Action) -> &'static str {
    match action {
        Action::Proxy { .. } => "proxies to backends",
        Action::Aggregate(_) => "aggregates",
        Action::Redirect(_) => "redirects",
        Action::Respond(_) => "responds directly",
    }
}

fn compare_action(changes: &mut Changes<'_>, old: &Action, new: &Action) {
    if old == new {
        return;
    }
    let (from, to) = (action_kind(old), action_kind(new));
    if from == to {
        let what = match new {
            Action::Proxy { .. } => "backends changed",
            Action::Aggregate(_) => "aggregation changed",
            Action::Redirect(_) => "redirect changed",
            Action::Respond(_) => "direct response changed",
        };
        changes.push(Class::Passive, "", what.to_owned());
    } else {
        changes.push(
            Class::PossiblyBreaking,
            "",
            format!("the route {to} instead of: it {from}; clients get another kind of answer"),
        );
    }
}

/// Timeouts, retries and header edits: passive.
fn compare_handling(changes: &mut Changes<'_>, old: &RouteEntry, new: &RouteEntry) {
    let mut changed = Vec::new();
    if old.timeout_ms != new.timeout_ms || old.tunnel_timeout_ms != new.tunnel_timeout_ms {
        changed.push("timeouts");
    }
    if old.retries != new.retries {
        changed.push("retries");
    }
    if old.request_headers != new.request_headers || old.response_headers != new.response_headers {
        changed.push("header edits");
    }
    if !changed.is_empty() {
        changes.push(
            Class::Passive,
            "",
            format!("{} changed", changed.join(", ")),
        );
    }
}

/// A limit: `None` is none. Lower is stricter.
fn stricter<T: PartialOrd + Copy>(old: Option<T>, new: Option<T>) -> bool {
    match (old, new) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(new)) => new < old,
    }
}

/// Who may call, limits and CORS: narrowing may refuse callers that were served.
fn compare_callers(changes: &mut Changes<'_>, old: &RouteEntry, new: &RouteEntry) {
    let narrowed_clients = match (&old.clients, &new.clients) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(new)) => old.iter().any(|c| !new.contains(c)),
    };
    let mut tighter = Vec::new();
    let mut looser = Vec::new();
    if narrowed_clients {
        tighter.push("fewer clients may call");
    } else if old.clients != new.clients {
        looser.push("more clients may call");
    }
    if old.source_ranges != new.source_ranges {
        if new.source_ranges.is_empty() {
            looser.push("source address rules removed");
        } else {
            tighter.push("source address rules changed");
        }
    }
    for (name, before, after) in [
        ("max body size", old.max_body_bytes, new.max_body_bytes),
        (
            "max requests in flight",
            old.max_in_flight.map(u64::from),
            new.max_in_flight.map(u64::from),
        ),
    ] {
        if stricter(before, after) {
            tighter.push(name);
        } else if before != after {
            looser.push(name);
        }
    }
    match (&old.cors, &new.cors) {
        (None, Some(_)) => looser.push("CORS policy added"),
        (Some(_), None) => tighter.push("CORS policy removed"),
        (Some(a), Some(b)) if a != b => tighter.push("CORS policy changed"),
        _ => {}
    }
    if !tighter.is_empty() {
        changes.push(
            Class::PossiblyBreaking,
            "",
            format!(
                "{}: callers that were served may be refused",
                tighter.join(", ")
            ),
        );
    }
    if !looser.is_empty() {
        changes.push(Class::Passive, "", format!("{} (wider)", looser.join(", ")));
    }
}

/// A deprecation announced, changed or withdrawn.
pub(super) fn compare_deprecation(
    changes: &mut Changes<'_>,
    old: Option<&DeprecationEntry>,
    new: Option<&DeprecationEntry>,
) {
    let at = ".deprecation";
    match (old, new) {
        (None, Some(_)) => changes.push(Class::Passive, at, "deprecated".to_owned()),
        (Some(_), None) => changes.push(Class::Passive, at, "no longer deprecated".to_owned()),
        (Some(old), Some(new)) if old != new => {
            let earlier = match (old.sunset, new.sunset) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => b < a,
                _ => false,
            };
            if earlier {
                changes.push(
                    Class::PossiblyBreaking,
                    at,
                    "sunset moved earlier".to_owned(),
                );
            } else if new.gone_after_sunset && !old.gone_after_sunset {
                changes.push(
                    Class::PossiblyBreaking,
                    at,
                    "answers 410 Gone after the sunset".to_owned(),
                );
            } else {
                changes.push(Class::Passive, at, "deprecation changed".to_owned());
            }
        }
        _ => {}
    }
}
