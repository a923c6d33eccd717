//! Templates: text with `{name}` placeholders, used in paths, header values and step calls.
//!
//! Parsed once (when a table is validated or loaded) and rendered per request.

use std::borrow::Cow;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as is.
    Literal(String),
    /// A placeholder's name, e.g. `id`, `client`, `product.sellerId`.
    Var(String),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`. `{{` and `}}` are not escapes: braces must pair up around a name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(format!("unmatched '}}' in {text:?}"));
            }
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {text:?}"))?;
            let name = &after[..close];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                return Err(format!("placeholder {{{name}}} in {text:?} is not a name"));
            }
            pieces.push(Piece::Var(name.to_owned()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The placeholder names, in order of appearance.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Var(name) => Some(name.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// True when the template has no placeholder.
    pub fn is_literal(&self) -> bool {
        self.vars().next().is_none()
    }

    /// Renders the template; a placeholder `lookup` does not know renders as empty text.
    pub fn render<'a>(&'a self, lookup: impl Fn(&str) -> Option<Cow<'a, str>>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Var(name) => {
                    if let Some(value) = lookup(name) {
                        out.push_str(&value);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_placeholders() {
        let t = Template::parse("/items/{id}?by={product.sellerId}").unwrap();
        assert_eq!(
            t.pieces(),
            [
                Piece::Literal("/items/".into()),
                Piece::Var("id".into()),
                Piece::Literal("?by=".into()),
                Piece::Var("product.sellerId".into()),
            ]
        );
        assert_eq!(
            t.render(|n| (n == "id").then(|| "42".into())),
            "/items/42?by="
        );
    }

    #[test]
    fn refuses_unbalanced_braces() {
        assert!(Template::parse("/a/{id").unwrap_err().contains("unclosed"));
        assert!(Template::parse("/a/id}").unwrap_err().contains("unmatched"));
        assert!(Template::parse("/a/{}").unwrap_err().contains("not a name"));
        assert!(
            Template::parse("/a/{a b}")
                .unwrap_err()
                .contains("not a name")
        );
    }
}
