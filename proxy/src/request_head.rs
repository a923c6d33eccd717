//! What a request head must be before anything else reads it: within the size limits (request
//! line: 414, whole head: 431) and, over HTTP/1.x, with the `Host` RFC 9112 §3.2 requires
//! (exactly one, valid; HTTP/1.0 may omit it). Pure.

use http::header::HOST;
use http::{HeaderMap, Version};

/// Default longest request line (method, target, version), in bytes — nginx's 8 KiB buffer.
pub const DEFAULT_MAX_REQUEST_LINE_BYTES: usize = 8 * 1024;
/// Default largest request head (request line and all header lines), in bytes.
pub const DEFAULT_MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// Size limits of a request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line, without its line ending.
    pub max_request_line_bytes: usize,
    /// Largest head: request line, header lines and the blank line ending them.
    pub max_request_head_bytes: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_request_line_bytes: DEFAULT_MAX_REQUEST_LINE_BYTES,
            max_request_head_bytes: DEFAULT_MAX_REQUEST_HEAD_BYTES,
        }
    }
}

/// Why a request head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadRefusal {
    /// The request line is over [`HeadLimits::max_request_line_bytes`] (414).
    #[error("the request line is longer than {0} bytes")]
    RequestLineTooLong(usize),
    /// The head is over [`HeadLimits::max_request_head_bytes`] (431).
    #[error("the request head is larger than {0} bytes")]
    HeadTooLarge(usize),
    /// An HTTP/1.1 request without `Host` (400).
    #[error("an HTTP/1.1 request needs a Host header")]
    MissingHost,
    /// More than one `Host` field (400).
    #[error("the request has more than one Host header")]
    RepeatedHost,
    /// A `Host` that is not `host[:port]` (400).
    #[error("the Host header is not a host name or address with an optional port")]
    InvalidHost,
}

/// Checks a parsed request head. `raw_head` is the head as received (HTTP/1.x; `None` for other
/// protocols, whose sizes the limits do not cover).
pub fn check_request_head(
    raw_head: Option<&[u8]>,
    version: Version,
    headers: &HeaderMap,
    limits: &HeadLimits,
) -> Result<(), HeadRefusal> {
    if let Some(raw) = raw_head {
        if request_line_len(raw) > limits.max_request_line_bytes {
            return Err(HeadRefusal::RequestLineTooLong(
                limits.max_request_line_bytes,
            ));
        }
        if raw.len() > limits.max_request_head_bytes {
            return Err(HeadRefusal::HeadTooLarge(limits.max_request_head_bytes));
        }
    }
    if !matches!(
        version,
        Version::HTTP_11 | Version::HTTP_10 | Version::HTTP_09
    ) {
        return Ok(());
    }
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => Err(HeadRefusal::MissingHost),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(HeadRefusal::RepeatedHost),
        (Some(host), None) if is_valid_host(host.as_bytes()) => Ok(()),
        (Some(_), None) => Err(HeadRefusal::InvalidHost),
    }
}

/// Length of the first line, without `\r\n` or `\n`.
fn request_line_len(raw: &[u8]) -> usize {
    match memchr::memchr(b'\n', raw) {
        Some(end) if end > 0 && raw[end - 1] == b'\r' => end - 1,
        Some(end) => end,
        None => raw.len(),
    }
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2) with a non-empty host (an `http`
/// URI's host may not be empty, RFC 9110 §4.2.1). Checked byte by byte, without allocating.
fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        match value.iter().position(|&b| b == b']') {
            Some(end) => (&value[..=end], &value[end + 1..]),
            None => return false,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &[][..]),
        }
    };
    let port = port.strip_prefix(b":").unwrap_or(port);
    // `port = *DIGIT`: `host:` is allowed.
    if !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match host {
        // IP-literal: an IPv6 address, possibly with an embedded IPv4 one.
        [b'[', inner @ .., b']'] => {
            !inner.is_empty()
                && inner
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        // reg-name or IPv4address: unreserved, pct-encoded and sub-delims.
        _ => !host.is_empty() && is_reg_name(host),
    }
}

/// The bytes a reg-name holds besides `%` escapes: unreserved and sub-delims (RFC 3986), as a
/// table so the check is one load per byte.
static REG_NAME: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        allowed[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < extra.len() {
        allowed[extra[i] as usize] = true;
        i += 1;
    }
    allowed
};

fn is_reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        if b == b'%' {
            match host.get(i + 1..i + 3) {
                Some([h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
            continue;
        }
        if !REG_NAME[usize::from(b)] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(hosts: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for host in hosts {
            map.append(HOST, HeaderValue::from_str(host).unwrap());
        }
        map
    }

    fn check(version: Version, hosts: &[&str]) -> Result<(), HeadRefusal> {
        check_request_head(None, version, &headers(hosts), &HeadLimits::default())
    }

    #[test]
    fn host_rules_of_rfc_9112() {
        assert_eq!(check(Version::HTTP_11, &["gateway.test"]), Ok(()));
        assert_eq!(check(Version::HTTP_11, &["gateway.test:8080"]), Ok(()));
        assert_eq!(check(Version::HTTP_11, &["[::1]:8080"]), Ok(()));
        assert_eq!(check(Version::HTTP_11, &["10.0.0.1"]), Ok(()));
        assert_eq!(check(Version::HTTP_11, &["[::ffff:10.0.0.1]"]), Ok(()));
        assert_eq!(check(Version::HTTP_11, &["a.test:"]), Ok(()));
        assert_eq!(check(Version::HTTP_11, &["xn--bcher-kva.example"]), Ok(()));
        assert_eq!(check(Version::HTTP_10, &[]), Ok(()));
        assert_eq!(check(Version::HTTP_2, &[]), Ok(()));
        assert_eq!(check(Version::HTTP_11, &[]), Err(HeadRefusal::MissingHost));
        for version in [Version::HTTP_11, Version::HTTP_10] {
            assert_eq!(
                check(version, &["a.test", "b.test"]),
                Err(HeadRefusal::RepeatedHost)
            );
            for invalid in [
                "",
                "user@a.test",
                "a.test/x",
                "a test",
                "a.test:port",
                ":80",
            ] {
                assert_eq!(
                    check(version, &[invalid]),
                    Err(HeadRefusal::InvalidHost),
                    "{invalid:?}"
                );
            }
        }
    }

    #[test]
    fn size_limits() {
        let limits = HeadLimits {
            max_request_line_bytes: 20,
            max_request_head_bytes: 40,
        };
        let host = headers(&["a"]);
        let check =
            |raw: &str| check_request_head(Some(raw.as_bytes()), Version::HTTP_11, &host, &limits);
        // 20 bytes of request line, then the head at exactly 40 bytes.
        assert_eq!(
            check("GET /123456 HTTP/1.1\r\nHost: a\r\nX: 12\r\n\r\n"),
            Ok(())
        );
        assert_eq!(
            check("GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Err(HeadRefusal::RequestLineTooLong(20))
        );
        assert_eq!(
            check("GET / HTTP/1.1\r\nHost: a\r\nX: 12345678901234\r\n\r\n"),
            Err(HeadRefusal::HeadTooLarge(40))
        );
        assert_eq!(request_line_len(b"GET / HTTP/1.1\n\n"), 14);
    }
}
