//! versioning: what a change does to the clients of a contract's published versions — passive,
//! possibly breaking, or breaking — classified as oasdiff classifies OpenAPI changes, from the
//! compiled routes of the contract before and after (the same code for the operator, which
//! refuses breaking changes, and for `gatehouse-operator diff`).
//!
//! A version is compared route by route, by name: a route's name is its identity in a
//! published version (it is in metrics and error bodies), so renaming one is removing it.
//! Drafts are free to change; a retired version is answered `410 Gone` and may go.

mod matches;
mod objects;
mod routes;

pub use objects::{ObjectChanges, changes};

use std::collections::BTreeMap;
use std::fmt;

use crate::route_table::{DeprecationEntry, RouteEntry, VersionState};

/// How a change affects the clients of a published version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A client that worked before keeps working.
    Passive,
    /// Some clients may notice: a stricter limit, fewer allowed callers, another kind of
    /// answer, an earlier sunset, a deprecated part removed. Allowed, and reported.
    PossiblyBreaking,
    /// A request that was served is no longer served the same way. Refused.
    Breaking,
}

impl Class {
    /// How `diff` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passive => "passive",
            Self::PossiblyBreaking => "possibly breaking",
            Self::Breaking => "breaking",
        }
    }
}

/// One change, where it is, and what it does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Its class.
    pub class: Class,
    /// Field path, list items by key: `spec.versions[version=v1].routes[name=product].match.methods`.
    pub path: String,
    /// What changed, in the user's terms.
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects changes under one field path.
struct Changes<'a> {
    at: &'a str,
    found: &'a mut Vec<Change>,
}

impl Changes<'_> {
    fn push(&mut self, class: Class, field: &str, message: String) {
        self.found.push(Change {
            class,
            path: format!("{}{field}", self.at),
            message,
        });
    }
}

/// One version of a contract as its compiled routes have it.
struct Version<'a> {
    state: Option<VersionState>,
    base_path: &'a str,
    /// By route name.
    routes: BTreeMap<&'a str, &'a RouteEntry>,
}

/// The versions of one contract's routes, by version. Every route carries its version
/// (`contract`) and ends its id with `/ROUTE`.
fn versions<'a>(
    routes: impl IntoIterator<Item = &'a RouteEntry>,
) -> BTreeMap<&'a str, Version<'a>> {
    let mut versions: BTreeMap<&str, Version<'_>> = BTreeMap::new();
    for route in routes {
        let Some(version) = route.contract.as_deref() else {
            continue;
        };
        let name = route.id.rsplit('/').next().unwrap_or_default();
        versions
            .entry(version)
            .or_insert_with(|| Version {
                state: route.state,
                base_path: route.base_path.as_deref().unwrap_or("/"),
                routes: BTreeMap::new(),
            })
            .routes
            .insert(name, route);
    }
    versions
}

fn state_name(state: Option<VersionState>) -> &'static str {
    match state {
        None => "Draft",
        Some(VersionState::Published) => "Published",
        Some(VersionState::Deprecated) => "Deprecated",
        Some(VersionState::Retired) => "Retired",
    }
}

fn is_promised(state: Option<VersionState>) -> bool {
    matches!(
        state,
        Some(VersionState::Published | VersionState::Deprecated)
    )
}

/// Every change from `old` to `new`, the compiled routes of one contract (all of its versions),
/// with paths under `field` (`spec.versions` for a Contract, `spec.contracts` for inline ones).
/// Breaking first, then possibly breaking, then passive; by path within each.
pub fn classify<'a>(
    field: &str,
    old: impl IntoIterator<Item = &'a RouteEntry>,
    new: impl IntoIterator<Item = &'a RouteEntry>,
) -> Vec<Change> {
    let (old, new) = (versions(old), versions(new));
    let mut found = Vec::new();
    for (name, before) in &old {
        let at = format!("{field}[version={name}]");
        let mut changes = Changes {
            at: &at,
            found: &mut found,
        };
        match new.get(name) {
            None => removed_version(&mut changes, before.state),
            Some(after) => compare_versions(&mut changes, before, after),
        }
    }
    for (name, after) in new.iter().filter(|(name, _)| !old.contains_key(*name)) {
        found.push(Change {
            class: Class::Passive,
            path: format!("{field}[version={name}]"),
            message: format!("version added ({})", state_name(after.state)),
        });
    }
    found.sort_by(|a, b| b.class.cmp(&a.class).then_with(|| a.cmp(b)));
    found
}

fn removed_version(changes: &mut Changes<'_>, state: Option<VersionState>) {
    match state {
        Some(VersionState::Published) => changes.push(
            Class::Breaking,
            "",
            "published version removed: its clients rely on it; deprecate it first".to_owned(),
        ),
        Some(VersionState::Deprecated) => changes.push(
            Class::PossiblyBreaking,
            "",
            "deprecated version removed: clients still calling it get 404".to_owned(),
        ),
        Some(VersionState::Retired) | None => changes.push(
            Class::Passive,
            "",
            format!("{} version removed", state_name(state).to_ascii_lowercase()),
        ),
    }
}

fn compare_versions(changes: &mut Changes<'_>, before: &Version<'_>, after: &Version<'_>) {
    let lifecycle = ".lifecycle";
    match (before.state, after.state) {
        (None, None) => {
            if routes_differ(before, after) {
                changes.push(
                    Class::Passive,
                    "",
                    "draft changed (a draft is free to change)".to_owned(),
                );
            }
            return;
        }
        (None, Some(_)) => {
            let state = state_name(after.state);
            changes.push(Class::Passive, lifecycle, format!("Draft became {state}"));
            return;
        }
        (Some(VersionState::Retired), _) => {
            if after.state != before.state || routes_differ(before, after) {
                changes.push(Class::Passive, "", "retired version changed".to_owned());
            }
            return;
        }
        (Some(_), None) => changes.push(
            Class::Breaking,
            lifecycle,
            format!(
                "{} version became a Draft again: publish the change as a new version",
                state_name(before.state)
            ),
        ),
        (Some(VersionState::Published), Some(VersionState::Retired)) => changes.push(
            Class::Breaking,
            lifecycle,
            "Published version retired without being Deprecated first".to_owned(),
        ),
        (Some(VersionState::Deprecated), Some(VersionState::Retired)) => changes.push(
            Class::PossiblyBreaking,
            lifecycle,
            "version retired: every route of it answers 410 Gone".to_owned(),
        ),
        (Some(from), Some(to)) if from != to => changes.push(
            Class::Passive,
            lifecycle,
            format!(
                "{} became {}",
                state_name(before.state),
                state_name(after.state)
            ),
        ),
        _ => {}
    }
    if !is_promised(after.state) {
        return;
    }
    if before.base_path != after.base_path {
        changes.push(
            Class::Breaking,
            ".basePath",
            format!(
                "basePath changed from {} to {}: every route's path changes; publish a new version instead",
                before.base_path, after.base_path
            ),
        );
    }
    let shared = shared_deprecation(before, after);
    if let Some((old, new)) = shared {
        routes::compare_deprecation(changes, old, new);
    }
    for (name, old) in &before.routes {
        let at = format!("{}.routes[name={name}]", changes.at);
        let mut route = Changes {
            at: &at,
            found: changes.found,
        };
        match after.routes.get(name) {
            None if old.deprecation.is_some() => route.push(
                Class::PossiblyBreaking,
                "",
                "deprecated route removed: clients still calling it get 404".to_owned(),
            ),
            None => route.push(
                Class::Breaking,
                "",
                "route removed (or renamed): its requests are no longer served; deprecate it first, or publish a new version".to_owned(),
            ),
            Some(new) => routes::compare(&mut route, old, new, shared.is_some()),
        }
    }
    for name in after
        .routes
        .keys()
        .filter(|n| !before.routes.contains_key(*n))
    {
        changes.push(
            Class::Passive,
            &format!(".routes[name={name}]"),
            "route added".to_owned(),
        );
    }
}

/// The deprecation before and after, when every route (two or more) the version kept has the
/// same: then it is the version's own and is reported once.
fn shared_deprecation<'a>(
    before: &Version<'a>,
    after: &Version<'a>,
) -> Option<(Option<&'a DeprecationEntry>, Option<&'a DeprecationEntry>)> {
    let mut kept = before.routes.iter().filter_map(|(name, old)| {
        Some((
            old.deprecation.as_deref(),
            after.routes.get(name)?.deprecation.as_deref(),
        ))
    });
    let first = kept.next()?;
    let mut count = 1;
    let same = kept.all(|pair| {
        count += 1;
        pair == first
    });
    (same && count > 1).then_some(first)
}

fn routes_differ(before: &Version<'_>, after: &Version<'_>) -> bool {
    before.routes.len() != after.routes.len()
        || before
            .routes
            .iter()
            .zip(&after.routes)
            .any(|((a, x), (b, y))| a != b || x != y)
}

/// The promised versions (published or deprecated) of `old` that `new` retires or no longer
/// has, sorted: what the clients still calling them lose (see [`crate::usage`]).
pub fn ended<'a>(
    old: impl IntoIterator<Item = &'a RouteEntry>,
    new: impl IntoIterator<Item = &'a RouteEntry>,
) -> Vec<&'a str> {
    let new = versions(new);
    versions(old)
        .into_iter()
        .filter(|(_, before)| is_promised(before.state))
        .filter(|(name, _)| {
            new.get(name)
                .is_none_or(|after| after.state == Some(VersionState::Retired))
        })
        .map(|(name, _)| name)
        .collect()
}

/// The breaking changes, as problems that refuse the change.
pub fn breaking_problems(changes: &[Change]) -> Vec<crate::validate::Problem> {
    changes
        .iter()
        .filter(|c| c.class == Class::Breaking)
        .map(|c| crate::validate::Problem::breaking(c.path.clone(), c.message.clone()))
        .collect()
}

/// Whether any change is breaking.
pub fn breaks(changes: &[Change]) -> bool {
    changes.iter().any(|c| c.class == Class::Breaking)
}

/// Whether a table's route is one its resource publishes inline (id `VERSION/ROUTE`), not one
/// of an exposed Contract (`NAMESPACE/CONTRACT/VERSION/ROUTE`) nor an Aggregator endpoint.
pub fn is_inline(route: &RouteEntry) -> bool {
    route.contract.is_some() && route.id.matches('/').count() == 1
}

#[cfg(test)]
mod tests;
