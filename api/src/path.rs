//! Request paths with whole-segment parameters: `/products/{id}`.

/// One segment of a path pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// Must equal this text.
    Literal(String),
    /// Matches any one non-empty segment and binds it to this name.
    Param(String),
}

/// What a pattern matches, whatever its parameters are called: `products/{}/reviews` for
/// `/products/{id}/reviews` (`/a/{x}` and `/a/{y}` match the same paths).
pub fn shape(pattern: &str) -> String {
    let shape: Vec<String> = segments(pattern)
        .into_iter()
        .map(|s| match s {
            Segment::Literal(text) => text,
            Segment::Param(_) => "{}".to_owned(),
        })
        .collect();
    shape.join("/")
}

/// Splits a pattern into segments. `/` has none; a trailing slash adds no segment.
pub fn segments(pattern: &str) -> Vec<Segment> {
    pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect()
}

/// Parameter names of a pattern, in order.
pub fn params(pattern: &str) -> Vec<String> {
    segments(pattern)
        .into_iter()
        .filter_map(|s| match s {
            Segment::Param(name) => Some(name),
            Segment::Literal(_) => None,
        })
        .collect()
}

/// Joins a contract base path and a route path: `/v1` + `/products` = `/v1/products`;
/// `/` + `/products` = `/products`.
pub fn join(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path == "/" && !base.is_empty() {
        return base.to_owned();
    }
    format!("{base}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_and_params() {
        assert_eq!(
            segments("/products/{id}/reviews/"),
            [
                Segment::Literal("products".into()),
                Segment::Param("id".into()),
                Segment::Literal("reviews".into())
            ]
        );
        assert!(segments("/").is_empty());
        assert_eq!(params("/a/{x}/{y}"), ["x", "y"]);
    }

    #[test]
    fn joins_base_paths() {
        assert_eq!(join("/v1", "/products"), "/v1/products");
        assert_eq!(join("/", "/products"), "/products");
        assert_eq!(join("/v1/", "/"), "/v1");
        assert_eq!(join("/", "/"), "/");
    }
}
