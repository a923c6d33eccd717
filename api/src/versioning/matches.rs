//! Which requests a route's match takes, before and after: its path below the version's base
//! path, its host, its methods and its required headers and query parameters.

use super::{Changes, Class};
use crate::path::{self, Segment};
use crate::route_table::{PathKind, RouteEntry, ValueCondition};

/// The route's path below its version's base path (which the version compares on its own).
fn relative(route: &RouteEntry) -> &str {
    let base = route
        .base_path
        .as_deref()
        .unwrap_or("/")
        .trim_end_matches('/');
    match route.path.strip_prefix(base) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => &route.path,
    }
}

/// Whether segment `new` matches whatever `old` matched.
fn segment_covers(new: &Segment, old: &Segment) -> bool {
    match (new, old) {
        (Segment::Param(_), _) => true,
        (Segment::Literal(a), Segment::Literal(b)) => a == b,
        (Segment::Literal(_), Segment::Param(_)) => false,
    }
}

/// Whether every path the old match took, the new one takes.
fn path_covers(new: &RouteEntry, old: &RouteEntry) -> bool {
    let (n, o) = (path::segments(relative(new)), path::segments(relative(old)));
    let slash = |r: &RouteEntry| relative(r).len() > 1 && relative(r).ends_with('/');
    let covered = n.iter().zip(&o).all(|(n, o)| segment_covers(n, o));
    match (new.path_kind, old.path_kind) {
        (PathKind::Prefix, _) => covered && n.len() <= o.len(),
        (_, PathKind::Prefix) => false,
        _ => covered && n.len() == o.len() && slash(new) == slash(old),
    }
}

fn kind_name(kind: PathKind) -> &'static str {
    match kind {
        PathKind::Prefix => "Prefix",
        PathKind::Exact | PathKind::Template => "Exact",
    }
}

/// The path and path type.
pub(super) fn compare_path(changes: &mut Changes<'_>, old: &RouteEntry, new: &RouteEntry) {
    let (from, to) = (relative(old), relative(new));
    let (from_kind, to_kind) = (kind_name(old.path_kind), kind_name(new.path_kind));
    if from == to && from_kind == to_kind {
        return;
    }
    if !path_covers(new, old) {
        let message = if from == to {
            format!(
                "path type narrowed from {from_kind} to {to_kind}: longer paths under {from} are no longer served"
            )
        } else {
            format!(
                "path changed from {from} ({from_kind}) to {to} ({to_kind}): requests to the old path are no longer served"
            )
        };
        changes.push(Class::Breaking, ".match.path", message);
        return;
    }
    let (n, o) = (path::segments(to), path::segments(from));
    let mut renamed = false;
    for (n, o) in n.iter().zip(&o) {
        if let (Segment::Param(n), Segment::Param(o)) = (n, o)
            && n != o
        {
            renamed = true;
            changes.push(
                Class::Breaking,
                ".match.path",
                format!("path parameter {{{o}}} renamed to {{{n}}}: the contract's parameters are part of what clients are promised"),
            );
        }
    }
    if !renamed {
        changes.push(
            Class::Passive,
            ".match.path",
            format!("match widened from {from} ({from_kind}) to {to} ({to_kind})"),
        );
    }
}

/// Whether host pattern `new` takes every host `old` took (`None`: any host).
fn host_covers(new: Option<&str>, old: Option<&str>) -> bool {
    match (new, old) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(n), Some(o)) if n == o => true,
        (Some(n), Some(o)) => n.strip_prefix("*.").is_some_and(|suffix| {
            !o.starts_with("*.")
                && o.strip_suffix(suffix)
                    .and_then(|label| label.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.'))
        }),
    }
}

/// The host.
pub(super) fn compare_host(changes: &mut Changes<'_>, old: Option<&str>, new: Option<&str>) {
    if old == new {
        return;
    }
    let shown = |h: Option<&str>| h.map_or("any host".to_owned(), |h| format!("host {h}"));
    let (class, effect) = if host_covers(new, old) {
        (Class::Passive, "widened")
    } else {
        (Class::Breaking, "narrowed")
    };
    changes.push(
        class,
        ".match.host",
        format!("match {effect} from {} to {}", shown(old), shown(new)),
    );
}

/// The methods (empty: every method).
pub(super) fn compare_methods(changes: &mut Changes<'_>, old: &[String], new: &[String]) {
    let at = ".match.methods";
    match (old.is_empty(), new.is_empty()) {
        (_, true) if !old.is_empty() => changes.push(
            Class::Passive,
            at,
            format!("every method served (was {})", old.join(", ")),
        ),
        (true, false) => changes.push(
            Class::Breaking,
            at,
            format!(
                "methods narrowed from every method to {}: the others are no longer served",
                new.join(", ")
            ),
        ),
        _ => {
            for method in old.iter().filter(|m| !new.contains(m)) {
                changes.push(Class::Breaking, at, format!("method {method} removed"));
            }
            for method in new.iter().filter(|m| !old.contains(m)) {
                changes.push(Class::Passive, at, format!("method {method} added"));
            }
        }
    }
}

/// Required headers or query parameters (`what`: `header`, `query parameter`).
pub(super) fn compare_conditions(
    changes: &mut Changes<'_>,
    (field, what): (&str, &str),
    old: &[ValueCondition],
    new: &[ValueCondition],
) {
    for condition in new {
        let name = &condition.name;
        let before = old.iter().find(|o| o.name == *name);
        let message = match (
            before.map(|b| b.value.as_deref()),
            condition.value.as_deref(),
        ) {
            (None, _) => {
                format!("{what} {name} now required: requests without it are no longer served")
            }
            (Some(None), Some(value)) => format!("{what} {name} must now be {value:?}"),
            (Some(Some(was)), Some(value)) if was != value => {
                format!("{what} {name} must now be {value:?} instead of {was:?}")
            }
            (Some(Some(was)), None) => {
                changes.push(
                    Class::Passive,
                    field,
                    format!("{what} {name} may have any value (was {was:?})"),
                );
                continue;
            }
            _ => continue,
        };
        changes.push(Class::Breaking, field, message);
    }
    for condition in old.iter().filter(|o| !new.iter().any(|n| n.name == o.name)) {
        changes.push(
            Class::Passive,
            field,
            format!("{what} {} no longer required", condition.name),
        );
    }
}
