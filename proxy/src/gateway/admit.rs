//! The first look at a request, before routing: its head against the limits and the `Host`
//! rules ([`crate::request_head`]), then its path brought to normal form
//! ([`gatehouse_api::normalize`]) in the request itself, so routing, rewrites, redirects and
//! aggregations all see the normalised path. Thin glue over the two pure checks.

use std::borrow::Cow;

use pingora::proxy::Session;

use crate::problem::ProblemKind;
use crate::request_head::{HeadLimits, HeadRefusal, check_request_head};
use gatehouse_api::normalize::{PathRefusal, normalize_path};

/// Why a request is answered before routing.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The head is too large or its `Host` is missing, repeated or invalid.
    #[error(transparent)]
    Head(#[from] HeadRefusal),
    /// The path has no acceptable normal form.
    #[error(transparent)]
    Path(#[from] PathRefusal),
    /// The normal form did not make a URI again (not expected: it only drops or decodes
    /// characters of a target that parsed); refused rather than routed un-normalised.
    #[error("the request path could not be normalised")]
    Unrepresentable,
}

impl Refusal {
    /// The problem answered.
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::Head(HeadRefusal::RequestLineTooLong(_)) => ProblemKind::UriTooLong,
            Self::Head(HeadRefusal::HeadTooLarge(_)) => ProblemKind::HeadersTooLarge,
            Self::Head(_) | Self::Path(_) | Self::Unrepresentable => ProblemKind::BadRequest,
        }
    }
}

/// Checks the request head and normalises the request path in place (the query is kept as
/// sent).
pub fn admit(session: &mut Session, limits: &HeadLimits) -> Result<(), Refusal> {
    let raw_head = session
        .downstream_session
        .as_http1()
        .map(|h1| h1.get_headers_raw_bytes());
    let request = session.req_header();
    check_request_head(
        raw_head.as_deref(),
        request.version,
        &request.headers,
        limits,
    )?;
    let Cow::Owned(path) = normalize_path(request.uri.path())? else {
        return Ok(());
    };
    let mut parts = request.uri.clone().into_parts();
    let target = match request.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    parts.path_and_query =
        Some(http::uri::PathAndQuery::try_from(target).map_err(|_| Refusal::Unrepresentable)?);
    let uri = http::Uri::from_parts(parts).map_err(|_| Refusal::Unrepresentable)?;
    session.req_header_mut().set_uri(uri);
    Ok(())
}
