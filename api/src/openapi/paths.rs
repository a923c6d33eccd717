//! A version's routes as an OpenAPI paths object, relative to the version's server URL.
//!
//! OpenAPI has one operation per path and method, and holds `/a/{x}` and `/a/{y}` to be the
//! same path; Gatehouse tells routes apart by more (headers, query, host, exact or prefix), and
//! `/a/{x}` and `/a/{y}` do match the same requests. So routes of one shape share the first
//! one's path (and parameter names), and routes of one path and method share the first one's
//! operation, the others listed under its `x-gatehouse-alternatives`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::Named;
use super::operation::{self, Context};
use crate::path;

/// The base path the document's paths are relative to, without a trailing slash: `/v1`, or
/// `""` (server `/`) when the base path is `/`, has parameters (it would need server variables,
/// whose defaults would be made up) or does not lead every route's path.
pub(super) fn server_base<'a>(routes: &[Named<'a>]) -> &'a str {
    let base = routes
        .first()
        .and_then(|route| route.entry.base_path.as_deref())
        .unwrap_or("/")
        .trim_end_matches('/');
    let fits = path::params(base).is_empty()
        && routes
            .iter()
            .all(|route| below(base, &route.entry.path).is_some());
    if fits { base } else { "" }
}

/// The server URL of a [`server_base`]: a relative URL, which OpenAPI 3.1 allows.
pub(super) fn server_url(base: &str) -> &str {
    if base.is_empty() { "/" } else { base }
}

/// `path` relative to `base` (a [`server_base`]); none when it is not below it.
fn below<'p>(base: &str, path: &'p str) -> Option<&'p str> {
    match path.strip_prefix(base)? {
        "" => Some("/"),
        rest if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

/// The paths object of `routes` (in the table's order) below `base`.
pub(super) fn paths(routes: &[Named<'_>], base: &str, context: &Context<'_>) -> Value {
    // The document's path of each shape: the first route's.
    let mut shapes: BTreeMap<(String, bool), String> = BTreeMap::new();
    let mut items: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for route in routes {
        let relative = below(base, &route.entry.path).unwrap_or(&route.entry.path);
        let trailing_slash = relative.len() > 1 && relative.ends_with('/');
        let shared = shapes
            .entry((path::shape(relative), trailing_slash))
            .or_insert_with(|| relative.to_owned())
            .clone();
        let params = path::params(&shared);
        let item = items.entry(shared).or_default();
        for operation in operation::operations(context, route, &params) {
            let mut object = operation.object;
            object.insert("operationId".into(), unique(operation.id, &mut ids).into());
            add(item, operation.method, object);
        }
    }
    items
        .into_iter()
        .map(|(path, item)| (path, Value::Object(item)))
        .collect::<Map<_, _>>()
        .into()
}

/// `id`, or `id_2`, `id_3`… when taken: an operationId is unique in its document.
fn unique(id: String, taken: &mut BTreeSet<String>) -> String {
    let mut candidate = id.clone();
    let mut n = 1;
    while taken.contains(&candidate) {
        n += 1;
        candidate = format!("{id}_{n}");
    }
    taken.insert(candidate.clone());
    candidate
}

/// Puts `operation` under `method` of `item`, or among the alternatives of the operation there.
fn add(item: &mut Map<String, Value>, method: &str, operation: Map<String, Value>) {
    let Some(Value::Object(first)) = item.get_mut(method) else {
        item.insert(method.to_owned(), operation.into());
        return;
    };
    let alternatives = first
        .entry("x-gatehouse-alternatives")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(alternatives) = alternatives {
        alternatives.push(operation.into());
    }
}
