//! Request paths in one normal form before routing, so that a route sees the path its backend
//! will resolve (RFC 3986 §6.2.2): percent-encoded unreserved characters decoded (`%2e` is `.`,
//! `%61` is `a`), the remaining escapes in upper case, dot-segments removed (§5.2.4), repeated
//! slashes merged. Refused: a path that climbs above the root, an encoded slash or backslash
//! (`%2F`, `%5C`), a raw backslash, a malformed escape. Pure; a path with nothing to change
//! comes back borrowed, and one without `%`, `\`, `//` or `/.` after a single byte scan.

use std::borrow::Cow;

/// Why a request path is refused (400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// More `..` segments than segments before them.
    #[error("the request path climbs above the root with '..'")]
    AboveRoot,
    /// `%2F` or `%5C`: backends disagree on whether it separates segments.
    #[error("the request path holds an encoded slash or backslash (%2F, %5C)")]
    EncodedSeparator,
    /// `\`: some backends treat it as a separator.
    #[error("the request path holds a backslash")]
    Backslash,
    /// `%` not followed by two hex digits.
    #[error("the request path holds a '%' that is not followed by two hex digits")]
    MalformedEscape,
    /// `%00`: a NUL byte ends the path early in any backend written in C.
    #[error("the request path holds an encoded NUL byte (%00)")]
    EncodedNul,
    /// `..;x` or `.;x`: a dot-segment with a path parameter, which Java servlet containers
    /// (Tomcat, Jetty) resolve as `..` or `.` — the classic way past a gateway's routes.
    #[error("the request path holds a dot-segment with a ';' parameter (..; or .;)")]
    DotSegmentParameter,
}

/// The normal form of a request path (without its query). Borrowed when nothing changes.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathRefusal> {
    if !may_need_normalizing(path) {
        return Ok(Cow::Borrowed(path));
    }
    let normal = rebuild(path)?;
    Ok(if normal == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(normal)
    })
}

/// The normal form of one segment: escapes of unreserved characters decoded, the others in
/// upper case. Dot-segments are left to [`normalize_path`]. Route patterns' literal segments are
/// brought to this form too, so they compare equal to normalised requests.
pub fn normalize_segment(segment: &str) -> Result<Cow<'_, str>, PathRefusal> {
    if segment.contains('\\') {
        return Err(PathRefusal::Backslash);
    }
    let Some(first) = segment.find('%') else {
        return Ok(Cow::Borrowed(segment));
    };
    let mut out = String::with_capacity(segment.len());
    out.push_str(&segment[..first]);
    let mut rest = &segment[first..];
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.as_bytes().get(at + 1..at + 3);
        let Some(&[high, low]) = escape else {
            return Err(PathRefusal::MalformedEscape);
        };
        let (Some(h), Some(l)) = (hex_value(high), hex_value(low)) else {
            return Err(PathRefusal::MalformedEscape);
        };
        match (h << 4) | l {
            b'/' | b'\\' => return Err(PathRefusal::EncodedSeparator),
            0 => return Err(PathRefusal::EncodedNul),
            byte if is_unreserved(byte) => out.push(char::from(byte)),
            _ => {
                out.push('%');
                out.push(char::from(high.to_ascii_uppercase()));
                out.push(char::from(low.to_ascii_uppercase()));
            }
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(if out == segment {
        Cow::Borrowed(segment)
    } else {
        Cow::Owned(out)
    })
}

/// One scan: only `%`, `\`, `//` and a segment starting with `.` can make a path change.
/// A byte's class comes from a table, so the loop does one load and one test per byte.
fn may_need_normalizing(path: &str) -> bool {
    /// Bit 0: changes the path wherever it is (`%`, `\`); bit 1: `/`; bit 2: `.`.
    static CLASS: [u8; 256] = {
        let mut class = [0u8; 256];
        class[b'%' as usize] = 1;
        class[b'\\' as usize] = 1;
        class[b'/' as usize] = 2;
        class[b'.' as usize] = 4;
        class
    };
    let mut after_slash = 0u8;
    for &byte in path.as_bytes() {
        let class = CLASS[usize::from(byte)];
        // `%` or `\` anywhere, or `/` or `.` right after a `/`.
        if class & (1 | after_slash) != 0 {
            return true;
        }
        after_slash = if class == 2 { 6 } else { 0 };
    }
    path.is_empty()
}

fn rebuild(path: &str) -> Result<String, PathRefusal> {
    // An empty origin-form path means `/` (RFC 9112 §3.2.1); the asterisk-form `*` and other
    // targets without a leading slash have no segments to normalise.
    let Some(rest) = path.strip_prefix('/') else {
        return Ok(if path.is_empty() { "/" } else { path }.to_owned());
    };
    let mut out = String::with_capacity(path.len());
    let mut trailing_slash = false;
    for raw in rest.split('/') {
        let segment = normalize_segment(raw)?;
        trailing_slash = true;
        match segment.as_ref() {
            // Empty segments merge; `.` stays where it is.
            "" | "." => {}
            ".." => match out.rfind('/') {
                Some(parent) => out.truncate(parent),
                None => return Err(PathRefusal::AboveRoot),
            },
            text if text.starts_with(".;") || text.starts_with("..;") => {
                return Err(PathRefusal::DotSegmentParameter);
            }
            text => {
                out.push('/');
                out.push_str(text);
                trailing_slash = false;
            }
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// RFC 3986 §2.3: ALPHA / DIGIT / `-` / `.` / `_` / `~`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(request path, normal form or refusal)`.
    const CASES: &[(&str, Result<&str, PathRefusal>)] = &[
        // Nothing to change.
        ("/", Ok("/")),
        ("/v1/products/42", Ok("/v1/products/42")),
        ("/v1/products/", Ok("/v1/products/")),
        ("/static/app.min.js", Ok("/static/app.min.js")),
        ("/a/..b/c.", Ok("/a/..b/c.")),
        ("/caf%C3%A9", Ok("/caf%C3%A9")),
        ("*", Ok("*")),
        ("", Ok("/")),
        // Dot-segments (RFC 3986 §5.2.4).
        ("/a/./b", Ok("/a/b")),
        ("/a/b/..", Ok("/a/")),
        ("/a/b/.", Ok("/a/b/")),
        ("/a/b/../", Ok("/a/")),
        ("/a/b/c/./../../g", Ok("/a/g")),
        ("/v2/public/../admin/users", Ok("/v2/admin/users")),
        ("/.", Ok("/")),
        ("/a/..", Ok("/")),
        // Encoded dots, any case and mix.
        ("/v2/public/%2e%2e/admin/users", Ok("/v2/admin/users")),
        ("/v2/public/.%2e/admin/users", Ok("/v2/admin/users")),
        ("/v2/public/%2e./admin/users", Ok("/v2/admin/users")),
        ("/v2/public/%2E%2E/admin/users", Ok("/v2/admin/users")),
        ("/v2/public/%2e%2E/admin/users", Ok("/v2/admin/users")),
        ("/a/%2e/b", Ok("/a/b")),
        // Climbing above the root.
        ("/..", Err(PathRefusal::AboveRoot)),
        ("/../a", Err(PathRefusal::AboveRoot)),
        ("/v2/../../etc/passwd", Err(PathRefusal::AboveRoot)),
        ("/a/%2e%2e/%2E%2E", Err(PathRefusal::AboveRoot)),
        // Repeated slashes merge.
        ("//", Ok("/")),
        ("/a//b", Ok("/a/b")),
        ("//a///b//", Ok("/a/b/")),
        ("/a//../b", Ok("/b")),
        // Unreserved characters decoded, other escapes upper-cased.
        ("/v2/%61dmin", Ok("/v2/admin")),
        ("/%7Euser/a%2Db_c", Ok("/~user/a-b_c")),
        ("/caf%c3%a9", Ok("/caf%C3%A9")),
        ("/a%20b", Ok("/a%20b")),
        ("/a%25b", Ok("/a%25b")),
        // Separators in disguise and malformed escapes.
        ("/%2F", Err(PathRefusal::EncodedSeparator)),
        ("/v2/admin%2fusers", Err(PathRefusal::EncodedSeparator)),
        (
            "/v2/public%5C..%5Cadmin",
            Err(PathRefusal::EncodedSeparator),
        ),
        ("/v2/public\\..\\admin", Err(PathRefusal::Backslash)),
        ("/a%2", Err(PathRefusal::MalformedEscape)),
        ("/a%zz", Err(PathRefusal::MalformedEscape)),
        ("/a%", Err(PathRefusal::MalformedEscape)),
        ("/v2/x%00y", Err(PathRefusal::EncodedNul)),
        // Dot-segments with path parameters, as servlet containers read them.
        ("/v2/..;/admin", Err(PathRefusal::DotSegmentParameter)),
        (
            "/v2/public/..;x=1/admin",
            Err(PathRefusal::DotSegmentParameter),
        ),
        ("/v2/.;/admin", Err(PathRefusal::DotSegmentParameter)),
        ("/v2/%2e%2e;/admin", Err(PathRefusal::DotSegmentParameter)),
        ("/v2/a;b/c", Ok("/v2/a;b/c")),
        ("/v2/..a;b", Ok("/v2/..a;b")),
    ];

    #[test]
    fn table_of_cases() {
        for (path, expected) in CASES {
            let got = normalize_path(path);
            assert_eq!(
                got.as_deref().map_err(|e| *e),
                *expected,
                "normalising {path:?}"
            );
        }
    }

    #[test]
    fn unchanged_paths_are_borrowed() {
        for path in ["/v1/products/42", "/static/app.js", "/a%20b", "/a/b/"] {
            assert!(
                matches!(normalize_path(path), Ok(Cow::Borrowed(p)) if p == path),
                "{path}"
            );
        }
        assert!(!may_need_normalizing("/v1/products/42/reviews"));
        assert!(!may_need_normalizing("/static/app.min.js"));
    }

    #[test]
    fn normal_forms_are_fixed_points() {
        for (path, expected) in CASES {
            if let Ok(normal) = expected {
                assert_eq!(
                    normalize_path(normal).as_deref(),
                    Ok(*normal),
                    "normal form of {path:?} changes again"
                );
            }
        }
    }

    #[test]
    fn segments_keep_dots_for_the_path_to_resolve() {
        assert_eq!(normalize_segment("%2E%2e").as_deref(), Ok(".."));
        assert_eq!(normalize_segment("caf%c3%a9").as_deref(), Ok("caf%C3%A9"));
        assert!(matches!(
            normalize_segment("plain"),
            Ok(Cow::Borrowed("plain"))
        ));
    }
}
