//! Responses the gateway writes itself: direct responses, redirects, aggregation results and
//! problem bodies.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::grpc;
use crate::headers::REQUEST_ID;
use crate::problem::{
    PROBLEM_CONTENT_TYPE, ProblemKind, gone_body, problem_body, problem_body_with_detail,
};
use crate::rewrite::TemplateVars;
use crate::table::PreparedRoute;

/// A complete response to write.
pub struct LocalResponse {
    /// Status.
    pub status: u16,
    /// Headers besides `content-length` and `x-request-id`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Bytes,
    /// The problem it reports, when it reports one (a gRPC caller gets it as a gRPC status).
    pub problem: Option<ProblemKind>,
}

impl LocalResponse {
    /// A problem response.
    pub fn problem(kind: ProblemKind, route: Option<&str>, request_id: &str) -> Self {
        Self::problem_body(kind, problem_body(kind, route, request_id))
    }

    /// A problem response with a detail more specific than the kind's.
    pub fn problem_with_detail(
        kind: ProblemKind,
        detail: &str,
        route: Option<&str>,
        request_id: &str,
    ) -> Self {
        Self::problem_body(
            kind,
            problem_body_with_detail(kind, detail, route, request_id),
        )
    }

    /// `410 Gone` for a retired (or sunset) route, naming the version to move to.
    pub fn gone(
        detail: &str,
        successor: Option<&str>,
        route: Option<&str>,
        request_id: &str,
    ) -> Self {
        Self::problem_body(
            ProblemKind::Gone,
            gone_body(detail, successor, route, request_id),
        )
    }

    /// A redirect to `location` (without `Location` if it is no header value).
    pub fn redirect(status: u16, location: &str) -> Self {
        Self {
            status,
            headers: HeaderValue::from_str(location)
                .map(|v| vec![(http::header::LOCATION, v)])
                .unwrap_or_default(),
            body: Bytes::new(),
            problem: None,
        }
    }

    fn problem_body(kind: ProblemKind, body: Vec<u8>) -> Self {
        Self {
            status: kind.status(),
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
            )],
            body: Bytes::from(body),
            problem: Some(kind),
        }
    }
}

/// What a local response takes from its route.
#[derive(Clone, Copy)]
pub enum Decorate<'a> {
    /// Nothing: no route matched, or the request was refused before routing.
    Nothing,
    /// The route's CORS headers only: the gateway refused or failed the request.
    Cors(&'a PreparedRoute),
    /// The route's CORS headers and response edits: the route's own answer.
    Route(&'a PreparedRoute, &'a TemplateVars<'a>),
}

/// Writes `response`, decorated by its route as `route` says.
pub async fn write_local_response(
    session: &mut Session,
    response: LocalResponse,
    request_id: &str,
    route: Decorate<'_>,
) -> pingora::Result<()> {
    if let Some(kind) = response.problem
        && grpc::is_grpc(session.req_header())
    {
        let mut header = grpc::status_response(kind)?;
        if let Ok(id) = HeaderValue::from_str(request_id) {
            header.insert_header(REQUEST_ID, id)?;
        }
        return session.write_response_header(Box::new(header), true).await;
    }
    let mut header = ResponseHeader::build(response.status, Some(response.headers.len() + 2))?;
    for (name, value) in response.headers {
        header.append_header(name, value)?;
    }
    header.insert_header(http::header::CONTENT_LENGTH, response.body.len())?;
    if let Ok(id) = HeaderValue::from_str(request_id) {
        header.insert_header(REQUEST_ID, id)?;
    }
    let (known, edits) = match route {
        Decorate::Nothing => (None, None),
        Decorate::Cors(route) => (Some(route), None),
        Decorate::Route(route, vars) => (Some(route), Some((route, vars))),
    };
    if let Some(announcement) = known.and_then(|r| r.announcement.as_ref()) {
        for (name, value) in &announcement.headers {
            header.append_header(name.clone(), value.clone())?;
        }
    }
    if let Some(cors) = known.and_then(|r| r.cors.as_ref()) {
        for (name, value) in cors.response_headers(&session.req_header().headers) {
            header.append_header(name, value)?;
        }
    }
    if let Some((route, vars)) = edits {
        route.response_edits.apply(&mut header, vars);
    }
    let head_only = session.req_header().method == http::Method::HEAD || response.body.is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(response.body), true)
            .await?;
    }
    Ok(())
}
