//! The router: an immutable index from request facts (host, method, path, headers, query) to
//! the one route of a [`RouteTable`] that serves them. Pure: no I/O, no clock, no randomness.
//!
//! # Precedence
//! When several routes match a request, the first in this order wins:
//! 1. path kind: `Exact` before `Template` before `Prefix`;
//! 2. longer before shorter: more path segments first; at equal length, compared segment by
//!    segment from the left, a literal segment before a `{param}`;
//! 3. more conditions before fewer: a host, a method list, each header and each query
//!    condition count one each; at equal count an exact host before a `*.` wildcard host;
//! 4. route id, in byte order.
//!
//! The order is computed once, when the router is built, as a rank per route. A lookup walks a
//! segment trie (one per host key: exact host, wildcard suffix, any host), so its cost depends on
//! the request's path depth and on the routes sharing that path, never on the table's size.

mod conditions;
mod trie;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use gatehouse_api::path::{self, Segment};
use gatehouse_api::route_table::{PathKind, RouteEntry, RouteTable};

use gatehouse_api::normalize::normalize_segment;

pub use conditions::RequestHeaders;
use conditions::{Conditions, HostPattern};
use trie::{Trie, WalkStats};

/// What the router needs to know about a request.
pub struct RequestFacts<'a, H: RequestHeaders + ?Sized> {
    /// Method, upper case as sent.
    pub method: &'a str,
    /// Host the request was addressed to (`Host` header or URI authority), port allowed.
    pub host: Option<&'a str>,
    /// Path without the query.
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a H,
}

/// The route serving a request and what the path bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the route in the table's `routes`.
    pub route: usize,
    /// Values of the route's `{param}`s, in the order the pattern names them.
    pub params: Vec<String>,
    /// For a `Prefix` route, the byte offset in the request path where the part below the
    /// matched prefix starts (`/rest/of/path`, or the path's end); for full matches, the end.
    pub rest_offset: usize,
}

/// One route as the router sees it.
#[derive(Debug)]
struct IndexedRoute {
    /// Position in the table.
    index: usize,
    /// Precedence rank: lower wins.
    rank: usize,
    /// Parameter names in pattern order.
    param_names: Vec<String>,
    /// Everything besides the path that must hold.
    conditions: Conditions,
}

/// An immutable router built from a route table.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<IndexedRoute>,
    any_host: Trie,
    /// Routes of an exact host, by host.
    exact_hosts: HashMap<String, Trie>,
    /// Routes of a `*.SUFFIX` host, by suffix.
    wildcard_hosts: HashMap<String, Trie>,
}

/// Counters of one lookup, for tests that check a lookup does not scan the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupCost {
    /// Trie nodes visited.
    pub nodes: usize,
    /// Routes whose conditions were evaluated.
    pub candidates: usize,
}

impl Router {
    /// Builds the router for every route of `table`.
    pub fn build(table: &RouteTable) -> Self {
        let order = precedence_order(&table.routes);
        let mut ranks = vec![0; table.routes.len()];
        for (rank, &index) in order.iter().enumerate() {
            ranks[index] = rank;
        }
        let mut router = Router::default();
        for (index, entry) in table.routes.iter().enumerate() {
            let segments = normal_segments(&entry.path);
            let param_names = segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(name) => Some(name.clone()),
                    Segment::Literal(_) => None,
                })
                .collect();
            let conditions = Conditions::from_entry(entry);
            let trie = match conditions.host() {
                None => &mut router.any_host,
                Some(HostPattern::Exact(host)) => {
                    router.exact_hosts.entry(host.clone()).or_default()
                }
                Some(HostPattern::Wildcard(suffix)) => {
                    router.wildcard_hosts.entry(suffix.clone()).or_default()
                }
            };
            trie.insert(&segments, entry.path_kind == PathKind::Prefix, index);
            router.routes.push(IndexedRoute {
                index,
                rank: ranks[index],
                param_names,
                conditions,
            });
        }
        router
    }

    /// Number of routes indexed.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when the router has no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Parameter names of a route, in pattern order.
    pub fn param_names(&self, route: usize) -> &[String] {
        self.routes
            .get(route)
            .map_or(&[], |r| r.param_names.as_slice())
    }

    /// The route serving `request`, if any.
    pub fn lookup<H: RequestHeaders + ?Sized>(
        &self,
        request: &RequestFacts<'_, H>,
    ) -> Option<RouteMatch> {
        self.lookup_with_cost(request).0
    }

    /// [`Self::lookup`], also reporting how much work it did.
    pub fn lookup_with_cost<H: RequestHeaders + ?Sized>(
        &self,
        request: &RequestFacts<'_, H>,
    ) -> (Option<RouteMatch>, LookupCost) {
        let segments = split_path(request.path);
        let has_host_routes = !self.exact_hosts.is_empty() || !self.wildcard_hosts.is_empty();
        let host = request.host.filter(|_| has_host_routes).map(normalise_host);
        let mut best: Option<Best> = None;
        let mut cost = LookupCost::default();
        let mut consider = |route: usize, params: &[usize], matched: usize| {
            let Some(indexed) = self.routes.get(route) else {
                return;
            };
            if best.as_ref().is_some_and(|b| b.rank <= indexed.rank) {
                return;
            }
            cost.candidates += 1;
            if indexed.conditions.accept(request, host.as_deref()) {
                best = Some(Best {
                    rank: indexed.rank,
                    route: indexed.index,
                    params: params.to_vec(),
                    matched,
                });
            }
        };
        let mut stats = WalkStats::default();
        let mut walk = |trie: &Trie| {
            trie.walk(&segments, &mut stats, &mut consider);
        };
        if let Some(host) = host.as_deref() {
            if let Some(trie) = self.exact_hosts.get(host) {
                walk(trie);
            }
            if let Some((_, suffix)) = host.split_once('.')
                && let Some(trie) = self.wildcard_hosts.get(suffix)
            {
                walk(trie);
            }
        }
        walk(&self.any_host);
        cost.nodes = stats.nodes;
        let found = best.map(|b| RouteMatch {
            route: b.route,
            params: b
                .params
                .iter()
                .filter_map(|&i| segments.get(i).map(|s| s.text.to_owned()))
                .collect(),
            rest_offset: segments
                .get(b.matched)
                .map_or(request.path.len(), |s| s.start - 1),
        });
        (found, cost)
    }
}

/// The best candidate so far.
struct Best {
    rank: usize,
    route: usize,
    params: Vec<usize>,
    matched: usize,
}

/// A request path segment and where it starts in the path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PathSegment<'a> {
    pub(crate) text: &'a str,
    pub(crate) start: usize,
}

/// Splits a request path into non-empty segments, like [`path::segments`] does for patterns.
fn split_path(path: &str) -> Vec<PathSegment<'_>> {
    let mut segments = Vec::with_capacity(8);
    let mut start = 0;
    for piece in path.split('/') {
        if !piece.is_empty() {
            segments.push(PathSegment { text: piece, start });
        }
        start += piece.len() + 1;
    }
    segments
}

/// A pattern's segments with literals in the normal form requests are brought to
/// ([`normalize_segment`]): `/%7Euser` matches what `/~user` does. A literal with no normal
/// form (a backslash, an encoded slash) is kept as written; no normalised request can match it.
fn normal_segments(pattern: &str) -> Vec<Segment> {
    let mut segments = path::segments(pattern);
    for segment in &mut segments {
        if let Segment::Literal(text) = segment
            && let Ok(Cow::Owned(normal)) = normalize_segment(text)
        {
            *text = normal;
        }
    }
    segments
}

/// Lower-cases a host and drops its port and a trailing dot.
fn normalise_host(host: &str) -> String {
    let without_port = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(']') => {
            name
        }
        _ => host,
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// Route indices in precedence order (see the module docs).
fn precedence_order(routes: &[RouteEntry]) -> Vec<usize> {
    let keys: Vec<_> = routes.iter().map(precedence_key).collect();
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by(|&a, &b| compare_keys(&keys[a], &keys[b]).then(routes[a].id.cmp(&routes[b].id)));
    order
}

struct PrecedenceKey {
    kind: PathKind,
    /// `true` for a literal segment, per position.
    literals: Vec<bool>,
    conditions: usize,
    exact_host: bool,
}

fn precedence_key(entry: &RouteEntry) -> PrecedenceKey {
    let segments = path::segments(&entry.path);
    // A table's path kind says Exact only for literal paths; trust the segments over it.
    let kind = match entry.path_kind {
        PathKind::Prefix => PathKind::Prefix,
        _ if segments.iter().any(|s| matches!(s, Segment::Param(_))) => PathKind::Template,
        _ => PathKind::Exact,
    };
    PrecedenceKey {
        kind,
        literals: segments
            .iter()
            .map(|s| matches!(s, Segment::Literal(_)))
            .collect(),
        conditions: usize::from(entry.host.is_some())
            + usize::from(!entry.methods.is_empty())
            + entry.headers.len()
            + entry.query.len(),
        exact_host: entry.host.as_deref().is_some_and(|h| !h.starts_with("*.")),
    }
}

fn compare_keys(a: &PrecedenceKey, b: &PrecedenceKey) -> Ordering {
    a.kind
        .cmp(&b.kind)
        .then(b.literals.len().cmp(&a.literals.len()))
        // `true` (literal) sorts before `false` (param) when compared reversed.
        .then_with(|| b.literals.cmp(&a.literals))
        .then(b.conditions.cmp(&a.conditions))
        .then(b.exact_host.cmp(&a.exact_host))
}

#[cfg(test)]
mod tests;
