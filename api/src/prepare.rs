//! Header names, header values, media types and methods exactly as the proxy puts them on the
//! wire.
//!
//! This is the one preparation of these values: `validate` calls it on a resource (and reports
//! the resource's field path), [`crate::validate::check_table`] calls it on a table a proxy is
//! about to load, and the proxy builds its prepared table from what it returns. So the operator
//! never accepts a value that the proxy would refuse, and the two cannot drift apart.

use std::sync::LazyLock;

use http::{HeaderName, HeaderValue, Method};
use ipnet::IpNet;
use regex::Regex;

use crate::crd::patterns::MEDIA_TYPE;

use crate::template::Template;

/// A header value: fixed, or rendered per request from a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValueTemplate {
    /// No placeholder: the value itself, checked once.
    Fixed(HeaderValue),
    /// Placeholders (`{id}`, `{client}`, `{requestId}`): the literal text between them is
    /// checked once; a rendered value that is not a valid header value is dropped per request.
    Templated(Template),
}

/// Parses a header name. Names are those the CRD allows (letters, digits, `-`, `_`, not
/// starting with `-` or `_`), which every proxy on the path agrees on.
pub fn header_name(name: &str) -> Result<HeaderName, String> {
    let mut chars = name.chars();
    let shaped = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !shaped {
        return Err(format!(
            "{name:?} is not a header name: use letters, digits, '-' and '_'"
        ));
    }
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name: use letters, digits, '-' and '_'"))
}

/// The first byte an HTTP field value may not hold (RFC 9110 §5.5: control characters other
/// than horizontal tab — CR and LF above all, which would split the message), with its offset.
fn forbidden_byte(text: &str) -> Option<(usize, u8)> {
    text.bytes()
        .enumerate()
        .find(|&(_, b)| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// Describes a forbidden byte for a message.
fn describe(byte: u8) -> String {
    match byte {
        b'\r' => "a carriage return (CR)".to_owned(),
        b'\n' => "a line feed (LF)".to_owned(),
        0 => "a NUL byte".to_owned(),
        other => format!("the control character 0x{other:02x}"),
    }
}

/// Parses a header value template: `{name}` placeholders, literal text that a header value may
/// hold (no CR, LF, NUL or other control character). For values rendered per request whatever
/// they hold (aggregation step headers).
pub fn header_template(text: &str) -> Result<Template, String> {
    // Placeholders hold names only, so the whole text can be checked at once.
    if let Some((at, byte)) = forbidden_byte(text) {
        return Err(format!(
            "a header value may not contain {} (found at byte {at}): {text:?}",
            describe(byte)
        ));
    }
    Template::parse(text)
}

/// Parses a header value template as [`header_template`] does, keeping a value without
/// placeholders as the header value itself.
pub fn header_value(text: &str) -> Result<HeaderValueTemplate, String> {
    let template = header_template(text)?;
    if template.is_literal() {
        HeaderValue::from_str(text)
            .map(HeaderValueTemplate::Fixed)
            .map_err(|_| format!("{text:?} is not a valid header value"))
    } else {
        Ok(HeaderValueTemplate::Templated(template))
    }
}

/// Parses a `Content-Type`: a media type (`type/subtype`, optional `; name=value` parameters,
/// RFC 9110 §8.3.1) that is also a valid header value. The check is the CRD's own pattern
/// ([`MEDIA_TYPE`]), so the schema and this agree on every value.
pub fn media_type(text: &str) -> Result<HeaderValue, String> {
    static PATTERN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(MEDIA_TYPE).ok());
    if let Some((at, byte)) = forbidden_byte(text) {
        return Err(format!(
            "a content type may not contain {} (found at byte {at}): {text:?}",
            describe(byte)
        ));
    }
    if !PATTERN.as_ref().is_some_and(|p| p.is_match(text)) {
        return Err(format!(
            "{text:?} is not a media type like application/json or text/plain; charset=utf-8"
        ));
    }
    HeaderValue::from_str(text).map_err(|_| format!("{text:?} is not a valid header value"))
}

/// Parses a request method (the CRD's enum: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS).
pub fn method(text: &str) -> Result<Method, String> {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    if !KNOWN.contains(&text) {
        return Err(format!("{text:?} is not one of {}", KNOWN.join(", ")));
    }
    Method::from_bytes(text.as_bytes()).map_err(|e| format!("{text:?}: {e}"))
}

/// Checks a timeout in milliseconds: an exchange given no time at all would fail at once.
pub fn timeout_millis(millis: u64) -> Result<u64, String> {
    if millis == 0 {
        Err("a timeout must be above 0 (every exchange would fail at once)".to_owned())
    } else {
        Ok(millis)
    }
}

/// Parses an address range: `10.0.0.0/8`, `2001:db8::/32`, or a single address (`192.0.2.7`,
/// `2001:db8::7`: a range of one). Bits below the prefix are dropped (`10.1.2.3/8` is
/// `10.0.0.0/8`); an IPv4-mapped IPv6 range is refused, as it would never match (the proxy
/// compares IPv4 callers as IPv4).
pub fn address_range(text: &str) -> Result<IpNet, String> {
    let range = match text.parse::<IpNet>() {
        Ok(range) => range,
        Err(_) => text.parse::<std::net::IpAddr>().map(IpNet::from).map_err(|_| {
            format!("{text:?} is not an address range: write 10.0.0.0/8, 2001:db8::/32 or a single address")
        })?,
    };
    if let IpNet::V6(v6) = range
        && v6.addr().to_ipv4_mapped().is_some()
    {
        return Err(format!(
            "{text:?} is an IPv4-mapped IPv6 range: write the IPv4 range itself"
        ));
    }
    Ok(range.trunc())
}

/// Checks a CORS origin and returns it in the form it is compared in (ASCII lower case): `*`,
/// `scheme://host[:port]`, or `scheme://*.domain[:port]` (any subdomain of `domain`).
pub fn cors_origin(origin: &str) -> Result<String, String> {
    let lower = origin.to_ascii_lowercase();
    if lower == "*" {
        return Ok(lower);
    }
    static SHAPE: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(crate::crd::patterns::CORS_ORIGIN).ok());
    let shaped = SHAPE.as_ref().is_some_and(|shape| shape.is_match(&lower));
    let port_fits = lower
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .is_none_or(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0));
    if !shaped || !port_fits {
        return Err(format!(
            "{origin:?} is not an origin: write scheme://host[:port] (https://shop.example.com), \
             scheme://*.domain for any subdomain, or *"
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_refuse_every_control_character_but_tab() {
        for bad in [
            "a\r\nx-injected: 1",
            "a\nb",
            "a\rb",
            "\0",
            "x\u{7f}",
            "{id}\r\n",
            "\u{1b}[31m",
        ] {
            let error = header_value(bad).expect_err(bad);
            assert!(error.contains("may not contain"), "{bad:?}: {error}");
        }
        assert!(matches!(
            header_value("gatehouse\t1 ünïcode"),
            Ok(HeaderValueTemplate::Fixed(_))
        ));
        assert!(matches!(
            header_value("client={client}; id={id}"),
            Ok(HeaderValueTemplate::Templated(_))
        ));
        assert!(header_value("{unclosed").is_err());
    }

    #[test]
    fn the_message_names_the_byte_and_where_it_is() {
        assert_eq!(
            header_value("ok\r\nx: y").unwrap_err(),
            r#"a header value may not contain a carriage return (CR) (found at byte 2): "ok\r\nx: y""#
        );
        assert_eq!(
            header_value("{id}-\n").unwrap_err(),
            r#"a header value may not contain a line feed (LF) (found at byte 5): "{id}-\n""#
        );
    }

    #[test]
    fn media_types_must_be_type_slash_subtype() {
        for good in [
            "text/plain; charset=utf-8",
            "application/json",
            "application/problem+json",
            "text/html;charset=\"utf-8\"",
            "application/vnd.api+json",
        ] {
            assert!(media_type(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "json",
            "text/",
            "/plain",
            "text/plain\r\nset-cookie: a=b",
            "text/plain; charset",
            "text plain",
        ] {
            assert!(media_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_media_type_pattern_compiles() {
        assert!(Regex::new(MEDIA_TYPE).is_ok());
    }

    #[test]
    fn header_names_methods_and_timeouts() {
        assert_eq!(
            header_name("X-Request-Id").unwrap().as_str(),
            "x-request-id"
        );
        for bad in ["", "-x", "x y", "x:y", "ä"] {
            assert!(header_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(method("PATCH").unwrap(), Method::PATCH);
        assert!(method("TRACE").is_err());
        assert!(method("get").is_err());
        assert!(timeout_millis(0).is_err());
        assert_eq!(timeout_millis(1), Ok(1));
    }

    #[test]
    fn address_ranges_come_in_normal_form() {
        for (text, normal) in [
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.0.2.7", "192.0.2.7/32"),
            ("2001:db8::7", "2001:db8::7/128"),
            ("2001:db8:1::/32", "2001:db8::/32"),
        ] {
            assert_eq!(
                address_range(text).map(|r| r.to_string()),
                Ok(normal.to_owned())
            );
        }
        for text in [
            "10.0.0.0/33",
            "10.0.0/8",
            "office",
            "::ffff:10.0.0.0/104",
            "",
        ] {
            assert!(address_range(text).is_err(), "{text}");
        }
    }

    #[test]
    fn cors_origins_are_compared_in_lower_case_and_ports_must_fit() {
        assert_eq!(
            cors_origin("HTTPS://Shop.Example.com:8443"),
            Ok("https://shop.example.com:8443".to_owned())
        );
        for good in ["*", "http://localhost:3000", "https://*.example.com"] {
            assert!(cors_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "https://shop.example.com:70000",
            "https://shop.example.com:0",
            "shop.example.com",
            "https://shop.example.com/",
            "https://a.*.example.com",
            "null",
        ] {
            assert!(cors_origin(bad).is_err(), "{bad}");
        }
    }
}
