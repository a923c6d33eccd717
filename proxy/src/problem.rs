//! Error responses users can act on: small `application/problem+json` bodies (RFC 9457) that
//! name the route and the request id, and never carry internals (addresses, error chains).

use serde::Serialize;

/// Media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Why the proxy answered with an error itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// No route matches the request.
    NoRoute,
    /// No route table is loaded yet.
    NotReady,
    /// Every upstream of the route is unresolvable or ejected after connect failures.
    NoHealthyUpstream,
    /// The upstream refused or reset the connection, or answered with something unreadable.
    UpstreamFailed,
    /// The upstream did not connect or answer within the route's timeout.
    UpstreamTimeout,
    /// The request itself could not be read, or its path or `Host` is refused.
    BadRequest,
    /// The request line is over the configured limit.
    UriTooLong,
    /// The request head is over the configured limit.
    HeadersTooLarge,
    /// The gateway's clients use API keys and the request carries none that is valid.
    Unauthorized,
    /// The caller may not call: its address is outside the source ranges, or the route does
    /// not let its client in.
    Forbidden,
    /// The request body is larger than the route accepts.
    PayloadTooLarge,
    /// The client is over its rate limit.
    RateLimited,
    /// The client has as many requests in flight as it may.
    ClientBusy,
    /// The route has as many requests in flight as it may.
    RouteBusy,
    /// The client's global rate limit cannot be checked (Redis does not answer) and the
    /// client is refused then.
    LimitUnavailable,
    /// The route's contract version is retired, or past its sunset.
    Gone,
    /// A fault in the proxy.
    Internal,
}

impl ProblemKind {
    /// HTTP status of the problem.
    pub fn status(self) -> u16 {
        match self {
            Self::NoRoute => 404,
            Self::NotReady | Self::NoHealthyUpstream => 503,
            Self::UpstreamFailed => 502,
            Self::UpstreamTimeout => 504,
            Self::BadRequest => 400,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::PayloadTooLarge => 413,
            Self::RateLimited | Self::ClientBusy => 429,
            Self::RouteBusy | Self::LimitUnavailable => 503,
            Self::Gone => 410,
            Self::Internal => 500,
        }
    }

    /// Short, stable title.
    pub fn title(self) -> &'static str {
        match self {
            Self::NoRoute => "No route",
            Self::NotReady => "Not ready",
            Self::NoHealthyUpstream => "No healthy upstream",
            Self::UpstreamFailed => "Upstream failed",
            Self::UpstreamTimeout => "Upstream timeout",
            Self::BadRequest => "Bad request",
            Self::UriTooLong => "URI too long",
            Self::HeadersTooLarge => "Request header fields too large",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::PayloadTooLarge => "Content too large",
            Self::RateLimited | Self::ClientBusy => "Too many requests",
            Self::RouteBusy => "Route at capacity",
            Self::LimitUnavailable => "Rate limit unavailable",
            Self::Gone => "Gone",
            Self::Internal => "Internal error",
        }
    }

    /// What happened, in words a caller can act on.
    pub fn detail(self) -> &'static str {
        match self {
            Self::NoRoute => "no route of this gateway matches the request's host, method and path",
            Self::NotReady => "the gateway has not loaded its routes yet; retry shortly",
            Self::NoHealthyUpstream => "no backend of this route is available right now",
            Self::UpstreamFailed => "the backend of this route refused or broke the connection",
            Self::UpstreamTimeout => "the backend of this route did not answer in time",
            Self::BadRequest => "the request could not be read",
            Self::UriTooLong => "the request line is longer than this gateway accepts",
            Self::HeadersTooLarge => "the request headers are larger than this gateway accepts",
            Self::Unauthorized => "this gateway needs a valid API key in the client's key header",
            Self::Forbidden => "the caller may not call this route",
            Self::PayloadTooLarge => "the request body is larger than this route accepts",
            Self::RateLimited => {
                "this client is over its rate limit; retry after the time in Retry-After"
            }
            Self::ClientBusy => {
                "this client has as many requests in flight as it may; retry after the time in Retry-After"
            }
            Self::RouteBusy => {
                "this route has as many requests in flight as it may; retry after the time in Retry-After"
            }
            Self::LimitUnavailable => {
                "this client's rate limit cannot be checked right now; retry after the time in Retry-After"
            }
            Self::Gone => "this version of the API is no longer served",
            Self::Internal => "the gateway failed to handle the request",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    /// For `Gone`: the version to move to.
    #[serde(skip_serializing_if = "Option::is_none")]
    successor: Option<&'a str>,
    request_id: &'a str,
}

/// The JSON body of a problem.
pub fn problem_body(kind: ProblemKind, route: Option<&str>, request_id: &str) -> Vec<u8> {
    problem_body_with_detail(kind, kind.detail(), route, request_id)
}

/// The JSON body of a problem with a specific detail text (no internals in it, please).
pub fn problem_body_with_detail(
    kind: ProblemKind,
    detail: &str,
    route: Option<&str>,
    request_id: &str,
) -> Vec<u8> {
    problem_json(kind, detail, route, None, request_id)
}

/// The JSON body of `410 Gone`, with the version to move to as the `successor` member.
pub fn gone_body(
    detail: &str,
    successor: Option<&str>,
    route: Option<&str>,
    request_id: &str,
) -> Vec<u8> {
    problem_json(ProblemKind::Gone, detail, route, successor, request_id)
}

fn problem_json(
    kind: ProblemKind,
    detail: &str,
    route: Option<&str>,
    successor: Option<&str>,
    request_id: &str,
) -> Vec<u8> {
    let body = ProblemBody {
        kind: "about:blank",
        title: kind.title(),
        status: kind.status(),
        detail,
        route,
        successor,
        request_id,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_route_and_request_id() {
        let body: serde_json::Value = serde_json::from_slice(&problem_body(
            ProblemKind::UpstreamTimeout,
            Some("v1/a"),
            "r1",
        ))
        .unwrap();
        assert_eq!(body["status"], 504);
        assert_eq!(body["title"], "Upstream timeout");
        assert_eq!(body["route"], "v1/a");
        assert_eq!(body["requestId"], "r1");
        let body: serde_json::Value =
            serde_json::from_slice(&problem_body(ProblemKind::NoRoute, None, "r2")).unwrap();
        assert!(body.get("route").is_none());
    }
}
