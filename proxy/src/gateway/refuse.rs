//! Why a routed request is answered by the gateway before any backend call: its address
//! outside the route's source ranges, a CORS preflight, a body over the limit, a caller the
//! route does not let in, one request too many in flight, or over its rate limit (or its
//! global rate limit undecidable, when the client refuses then). Each
//! decision is a problem response (or the preflight's answer) for `request_filter` to write.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::RequestContext;
use super::respond::LocalResponse;
use crate::clients::Admission;
use crate::global_limit::{GlobalLimit, Verdict};
use crate::metrics::ProxyMetrics;
use crate::problem::ProblemKind;
use crate::runtime::in_flight::{ConcurrencyLimit, Saturated};
use crate::table::PreparedRoute;
use crate::tls::peers;

/// `Retry-After` of a request refused for one too many in flight: by then some have ended.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why the gateway refused a request: the `reason` of `gatehouse_refused_requests_total`.
pub mod reason {
    /// The caller's address is outside the source ranges.
    pub const SOURCE_RANGE: &str = "source_range";
    /// A preflight from an origin the route's CORS policy does not allow.
    pub const CORS_ORIGIN: &str = "cors_origin";
    /// The body is larger than the route accepts.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// No valid credential.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// A recognised client the route does not let in.
    pub const CLIENT_NOT_ALLOWED: &str = "client_not_allowed";
    /// The client has as many requests in flight as it may.
    pub const CLIENT_BUSY: &str = "client_busy";
    /// The route has as many requests in flight as it may.
    pub const ROUTE_BUSY: &str = "route_busy";
    /// The client is over its rate limit.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Redis could not decide a global rate limit and the client refuses then.
    pub const RATE_LIMIT_UNAVAILABLE: &str = "rate_limit_unavailable";
}

/// A refusal: the response, and why (see [`reason`]).
pub(super) type Refused = (LocalResponse, &'static str);

/// The 403 for a caller outside the source ranges of `what` (naming its address, which helps
/// whoever sets `clientAddress` up, and tells the caller nothing it does not know).
pub(super) fn address_refused(
    caller: Option<std::net::IpAddr>,
    what: &str,
    route: Option<&str>,
    request_id: &str,
) -> Refused {
    let detail = match caller {
        Some(address) => format!("address {address} may not call {what}"),
        None => format!(
            "the caller's address could not be read from X-Forwarded-For, and {what} serves only some addresses"
        ),
    };
    let response =
        LocalResponse::problem_with_detail(ProblemKind::Forbidden, &detail, route, request_id);
    (response, reason::SOURCE_RANGE)
}

/// The answer to a preflight for a route with a CORS policy: 204 with the policy's headers,
/// or, for an origin it does not allow, 403 without any (and why).
pub(super) fn preflight_answer(
    route: &PreparedRoute,
    request: &RequestHeader,
    request_id: &str,
) -> (LocalResponse, Option<&'static str>) {
    let allowed = route
        .cors
        .as_ref()
        .and_then(|cors| cors.preflight(&request.headers));
    match allowed {
        Some(headers) => (
            LocalResponse {
                status: 204,
                headers,
                body: bytes::Bytes::new(),
                problem: None,
            },
            None,
        ),
        None => (
            LocalResponse::problem_with_detail(
                ProblemKind::Forbidden,
                "the request's origin may not call this route from a browser (CORS)",
                Some(&route.entry.id),
                request_id,
            ),
            Some(reason::CORS_ORIGIN),
        ),
    }
}

/// The request's `Content-Length`, when it sends one that parses.
pub(super) fn declared_body_length(request: &RequestHeader) -> Option<u64> {
    request
        .headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sets `ctx.client` to the caller the table's clients recognise, checks that the route lets
/// it in, takes a place under the client's and the route's concurrency limits and one request
/// from its rate limit; the problem response instead when the request is refused (no valid
/// credential: 401; a client the route does not let in: 403; the client at its concurrency
/// limit: 429, the route at its: 503, both with `Retry-After: 1`; over the rate limit: 429
/// with `Retry-After`). A global rate limit is left to [`global_admission`].
pub(super) fn recognise_client(session: &Session, ctx: &mut RequestContext) -> Recognised {
    let Some(table) = ctx.table.clone() else {
        return Recognised::Admitted;
    };
    let certificate = table
        .clients
        .by_certificate()
        .then(|| {
            session
                .digest()?
                .socket_digest
                .as_deref()
                .and_then(peers::of)
        })
        .flatten();
    let recognised = table.clients.recognise(
        &session.req_header().headers,
        certificate.as_deref(),
        table.edge_client.as_deref(),
    );
    let route = ctx.matched.as_ref().and_then(|m| table.routes.get(m.route));
    let allowed = route.and_then(|route| route.entry.clients.as_deref());
    let (kind, why, retry_after) = match recognised {
        Ok(None) if allowed.is_some() => (ProblemKind::Unauthorized, reason::UNAUTHORIZED, None),
        Ok(Some(client)) if allowed.is_some_and(|names| !names.iter().any(|n| n == client)) => {
            ctx.client = Some(client.to_owned());
            (ProblemKind::Forbidden, reason::CLIENT_NOT_ALLOWED, None)
        }
        Ok(client) => {
            ctx.client = client.map(str::to_owned);
            // Concurrency before the rate limit: a request turned away for being one too many
            // at once does not spend a token. The permits live as long as the request.
            let route_limit = route.and_then(|route| route.concurrency.as_ref());
            match table.clients.enter(client) {
                Err(Saturated) => (
                    ProblemKind::ClientBusy,
                    reason::CLIENT_BUSY,
                    Some(BUSY_RETRY_AFTER),
                ),
                Ok(permit) => {
                    ctx.client_permit = permit;
                    match route_limit.map(ConcurrencyLimit::try_acquire) {
                        Some(None) => (
                            ProblemKind::RouteBusy,
                            reason::ROUTE_BUSY,
                            Some(BUSY_RETRY_AFTER),
                        ),
                        route_permit => {
                            ctx.route_permit = route_permit.flatten();
                            match table.clients.admit(client) {
                                Admission::Admitted => return Recognised::Admitted,
                                Admission::Global(limit) => return Recognised::Global(limit),
                                Admission::Wait(wait) => {
                                    (ProblemKind::RateLimited, reason::RATE_LIMITED, Some(wait))
                                }
                            }
                        }
                    }
                }
            }
        }
        Err(_) => (ProblemKind::Unauthorized, reason::UNAUTHORIZED, None),
    };
    Recognised::Refused(refusal(ctx, kind, why, retry_after))
}

/// What [`recognise_client`] found.
pub(super) enum Recognised {
    /// The request goes on.
    Admitted,
    /// It is answered here.
    Refused(Refused),
    /// It goes on if its client's global limit admits it (see [`global_admission`]).
    Global(Arc<GlobalLimit>),
}

/// Asks `limit` (Redis) for the request: `None` when it goes on, else its answer: 429 with
/// `Retry-After` over the limit, 503 with `Retry-After: 1` when Redis cannot decide and the
/// client refuses then. A fallback is counted in `metrics`.
pub(super) async fn global_admission(
    limit: &GlobalLimit,
    ctx: &RequestContext,
    metrics: &ProxyMetrics,
) -> Option<Refused> {
    let (verdict, failure) = limit.admit().await;
    if let Some(failure) = failure {
        metrics.rate_limit_fallback(failure.label());
    }
    match verdict {
        Verdict::Admitted => None,
        Verdict::Wait(wait) => Some(refusal(
            ctx,
            ProblemKind::RateLimited,
            reason::RATE_LIMITED,
            Some(wait),
        )),
        Verdict::Unavailable => Some(refusal(
            ctx,
            ProblemKind::LimitUnavailable,
            reason::RATE_LIMIT_UNAVAILABLE,
            Some(BUSY_RETRY_AFTER),
        )),
    }
}

/// The problem response of a refusal, with `Retry-After` when the caller should come back.
fn refusal(
    ctx: &RequestContext,
    kind: ProblemKind,
    why: &'static str,
    retry_after: Option<Duration>,
) -> Refused {
    let mut response = LocalResponse::problem(kind, Some(ctx.route_id()), &ctx.request_id);
    if let Some(wait) = retry_after {
        // Whole seconds, rounded up: a client that waits this long finds a token.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers
            .push((http::header::RETRY_AFTER, HeaderValue::from(seconds.max(1))));
    }
    (response, why)
}
