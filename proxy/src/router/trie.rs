//! A segment trie: literal children by text, one shared `{param}` child, and the routes that
//! end at each node (full matches) or start matching there (prefixes).

use std::collections::HashMap;

use gatehouse_api::path::Segment;

use super::PathSegment;

/// One trie node.
#[derive(Debug, Default)]
pub(super) struct Trie {
    literals: HashMap<Box<str>, Trie>,
    param: Option<Box<Trie>>,
    /// Exact and Template routes whose pattern ends here.
    full: Vec<usize>,
    /// Prefix routes whose pattern ends here.
    prefix: Vec<usize>,
}

/// What a walk visited.
#[derive(Debug, Default)]
pub(super) struct WalkStats {
    pub(super) nodes: usize,
}

impl Trie {
    /// Adds a route's pattern.
    pub(super) fn insert(&mut self, pattern: &[Segment], is_prefix: bool, route: usize) {
        let mut node = self;
        for segment in pattern {
            node = match segment {
                Segment::Literal(text) => node.literals.entry(text.as_str().into()).or_default(),
                Segment::Param(_) => node.param.get_or_insert_with(Box::default),
            };
        }
        if is_prefix {
            node.prefix.push(route);
        } else {
            node.full.push(route);
        }
    }

    /// Calls `consider(route, param_positions, matched_segments)` for every route whose pattern
    /// matches `segments` (prefix routes: whose pattern matches their leading segments).
    pub(super) fn walk(
        &self,
        segments: &[PathSegment<'_>],
        stats: &mut WalkStats,
        consider: &mut impl FnMut(usize, &[usize], usize),
    ) {
        let mut params = Vec::with_capacity(4);
        self.walk_from(0, segments, &mut params, stats, consider);
    }

    fn walk_from(
        &self,
        depth: usize,
        segments: &[PathSegment<'_>],
        params: &mut Vec<usize>,
        stats: &mut WalkStats,
        consider: &mut impl FnMut(usize, &[usize], usize),
    ) {
        stats.nodes += 1;
        for &route in &self.prefix {
            consider(route, params, depth);
        }
        let Some(segment) = segments.get(depth) else {
            for &route in &self.full {
                consider(route, params, depth);
            }
            return;
        };
        if let Some(child) = self.literals.get(segment.text) {
            child.walk_from(depth + 1, segments, params, stats, consider);
        }
        if let Some(child) = &self.param {
            params.push(depth);
            child.walk_from(depth + 1, segments, params, stats, consider);
            params.pop();
        }
    }
}
