//! gRPC callers: a problem the gateway answers itself reaches a gRPC client as a gRPC status in
//! a trailers-only response (HTTP 200, `grpc-status`, `grpc-message`), which every gRPC library
//! reads, rather than a problem+json body it cannot.

use http::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::problem::ProblemKind;

/// Content type of gRPC requests (`application/grpc`, `application/grpc+proto`…).
const GRPC_CONTENT_TYPE: &str = "application/grpc";

/// What `grpc-message` escapes: everything outside printable ASCII, and `%` (gRPC over HTTP/2).
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// gRPC status codes the gateway answers with (`google.rpc.Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum GrpcCode {
    /// The gateway's deadline for the backend passed.
    DeadlineExceeded = 4,
    /// The caller may not call: its address or its client is not let in.
    PermissionDenied = 7,
    /// A limit was hit: the client's rate, or the size of its metadata or its message.
    ResourceExhausted = 8,
    /// No route serves the method.
    Unimplemented = 12,
    /// The request could not be handled.
    Internal = 13,
    /// The backend cannot be reached now; safe to retry.
    Unavailable = 14,
    /// The caller has no valid credentials.
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The code for a problem. As in gRPC's HTTP-to-gRPC mapping, except that a rate limit is
    /// `RESOURCE_EXHAUSTED` and the backend's timeout `DEADLINE_EXCEEDED` (the call may have
    /// run: not retried blindly as `UNAVAILABLE` would be).
    pub fn of(kind: ProblemKind) -> Self {
        match kind {
            ProblemKind::NoRoute | ProblemKind::Gone => Self::Unimplemented,
            ProblemKind::NotReady
            | ProblemKind::NoHealthyUpstream
            | ProblemKind::UpstreamFailed => Self::Unavailable,
            ProblemKind::UpstreamTimeout => Self::DeadlineExceeded,
            ProblemKind::UriTooLong
            | ProblemKind::HeadersTooLarge
            | ProblemKind::PayloadTooLarge
            | ProblemKind::RateLimited
            | ProblemKind::ClientBusy => Self::ResourceExhausted,
            ProblemKind::RouteBusy | ProblemKind::LimitUnavailable => Self::Unavailable,
            ProblemKind::Unauthorized => Self::Unauthenticated,
            ProblemKind::Forbidden => Self::PermissionDenied,
            ProblemKind::BadRequest | ProblemKind::Internal => Self::Internal,
        }
    }
}

/// True when the request is a gRPC call.
pub fn is_grpc(request: &RequestHeader) -> bool {
    request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..GRPC_CONTENT_TYPE.len()))
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(GRPC_CONTENT_TYPE))
}

/// The trailers-only response head for `kind`: HTTP 200 with the status in its headers.
pub fn status_response(kind: ProblemKind) -> pingora::Result<ResponseHeader> {
    let mut header = ResponseHeader::build(200, Some(4))?;
    header.insert_header(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(GRPC_CONTENT_TYPE),
    )?;
    header.insert_header("grpc-status", (GrpcCode::of(kind) as u8).to_string())?;
    let message = format!("{}: {}", kind.title(), kind.detail());
    header.insert_header(
        "grpc-message",
        utf8_percent_encode(&message, MESSAGE_ESCAPES).to_string(),
    )?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: Option<&str>) -> RequestHeader {
        let mut request = RequestHeader::build("POST", b"/shop.Catalog/Get", None).unwrap();
        if let Some(value) = content_type {
            request.insert_header("content-type", value).unwrap();
        }
        request
    }

    #[test]
    fn grpc_calls_are_known_by_their_content_type() {
        assert!(is_grpc(&request(Some("application/grpc"))));
        assert!(is_grpc(&request(Some("application/grpc+proto"))));
        assert!(is_grpc(&request(Some("Application/GRPC"))));
        assert!(!is_grpc(&request(Some("application/json"))));
        assert!(!is_grpc(&request(Some("application/gr"))));
        assert!(!is_grpc(&request(None)));
    }

    #[test]
    fn a_problem_becomes_a_status_and_an_escaped_message() {
        let header = status_response(ProblemKind::NoHealthyUpstream).unwrap();
        assert_eq!(header.status, 200);
        assert_eq!(header.headers["grpc-status"], "14");
        assert_eq!(header.headers["content-type"], "application/grpc");
        let message = header.headers["grpc-message"].to_str().unwrap();
        assert!(
            message.starts_with("No healthy upstream: no backend"),
            "{message}"
        );
        assert_eq!(
            GrpcCode::of(ProblemKind::UpstreamTimeout),
            GrpcCode::DeadlineExceeded
        );
        assert_eq!(
            GrpcCode::of(ProblemKind::Unauthorized),
            GrpcCode::Unauthenticated
        );
    }
}
