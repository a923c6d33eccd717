//! The Pingora `ProxyHttp` implementation: a thin driver that admits a request (head limits,
//! `Host`, path normal form: `admit.rs`), asks the router which route serves it and delegates to
//! the small modules that do the work (rewrite, headers, upstream choice, local responses,
//! aggregation).

mod admit;
mod context;
mod errors;
pub mod refuse;
mod respond;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::{HttpPeer, Peer};

use crate::tunnel::{TUNNEL_GROUP, TunnelConnect};
use pingora::{Error, ErrorType};

pub use context::{InFlight, RequestContext};
use refuse::{
    Recognised, address_refused, declared_body_length, global_admission, preflight_answer,
    recognise_client,
};
use respond::{Decorate, LocalResponse, write_local_response};

use crate::aggregate::values::RequestValues;
use crate::aggregate::{AggregateRuntime, serve_aggregate};
use crate::cors;
use crate::head_guard;
use crate::headers::{
    ForwardedFacts, REQUEST_ID, accepts_trailers, new_request_id, remove_hop_by_hop,
    set_forwarding_headers,
};
use crate::metrics::ProxyMetrics;
use crate::problem::ProblemKind;
use crate::reload::TableStore;
use crate::request_head::HeadLimits;
use crate::rewrite::{RedirectOrigin, TemplateVars, redirect_location};
use crate::router::RequestFacts;
use crate::table::{PreparedAction, is_idempotent};
use crate::upstream::{choose_upstream, now_millis};
use gatehouse_api::route_table::UpstreamProtocol;

/// How long an idle upstream connection stays in the keepalive pool.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent streams the proxy opens on one HTTP/2 upstream connection before it opens
/// another.
const UPSTREAM_H2_STREAMS: usize = 100;
/// How often an HTTP/2 upstream connection is pinged, so that a dead one is noticed between
/// requests (long gRPC streams included).
const UPSTREAM_H2_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Longest client-supplied `X-Request-Id` that is kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// What the gateway accepts from clients, whatever the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientPolicy {
    /// Size limits of request heads.
    pub head_limits: HeadLimits,
}

/// The gateway: serves whatever table the store holds.
pub struct Gateway {
    store: Arc<TableStore>,
    metrics: Arc<ProxyMetrics>,
    aggregate: Arc<AggregateRuntime>,
    in_flight: Arc<AtomicUsize>,
    policy: ClientPolicy,
}

impl Gateway {
    /// A gateway over `store`. `in_flight` counts requests being served (graceful shutdown
    /// waits for it to reach zero).
    pub fn new(
        store: Arc<TableStore>,
        metrics: Arc<ProxyMetrics>,
        aggregate: Arc<AggregateRuntime>,
        in_flight: Arc<AtomicUsize>,
        policy: ClientPolicy,
    ) -> Self {
        Self {
            store,
            metrics,
            aggregate,
            in_flight,
            policy,
        }
    }

    /// Answers a request whose route does not proxy; `true` when a response was written.
    async fn serve_locally(
        &self,
        session: &mut Session,
        ctx: &mut RequestContext,
    ) -> pingora::Result<bool> {
        let Some(route) = ctx.route() else {
            return Ok(false);
        };
        let vars = TemplateVars {
            param_names: ctx.param_names(),
            params: ctx.params(),
            client: ctx.client.as_deref(),
            request_id: &ctx.request_id,
        };
        let response = match &route.action {
            PreparedAction::Proxy(_) => return Ok(false),
            PreparedAction::Respond {
                status,
                content_type,
                body,
            } => LocalResponse {
                status: *status,
                headers: vec![(http::header::CONTENT_TYPE, content_type.clone())],
                body: body.clone(),
                problem: None,
            },
            PreparedAction::Redirect {
                scheme,
                host,
                port,
                path,
                status,
            } => {
                let request = session.req_header();
                let origin = RedirectOrigin {
                    scheme: if over_tls(session) { "https" } else { "http" },
                    host: request_host(request).unwrap_or("localhost"),
                    path: request.uri.path(),
                    query: request.uri.query(),
                };
                let path = path.as_ref().map(|t| vars.render(t));
                let location = redirect_location(
                    scheme.as_deref(),
                    host.as_deref(),
                    *port,
                    path.as_deref(),
                    &origin,
                );
                LocalResponse::redirect(*status, &location)
            }
            PreparedAction::Aggregate(program) => {
                let values = request_values(session.req_header(), &vars);
                let run = serve_aggregate(
                    &self.aggregate,
                    &self.metrics.aggregation,
                    &route.entry.id,
                    program,
                    &values,
                );
                let Some(answer) = until_client_leaves(session, run).await else {
                    // Dropping the aggregation closed its outstanding step connections.
                    return Err(Error::explain(
                        ErrorType::ConnectionClosed,
                        "client closed the connection during an aggregation",
                    ));
                };
                LocalResponse {
                    status: answer.status,
                    headers: answer.headers,
                    body: answer.body,
                    problem: None,
                }
            }
        };
        write_local_response(
            session,
            response,
            &ctx.request_id,
            Decorate::Route(route, &vars),
        )
        .await?;
        Ok(true)
    }
}

/// The address an attempt connects to: its peer's, or for a TLS upstream (whose peer is the
/// handoff socket, `tls::handoff`) the upstream's current one.
fn attempt_address(
    peer: &HttpPeer,
    upstream: &crate::upstream::PreparedUpstream,
) -> Option<std::net::SocketAddr> {
    peer.address()
        .as_inet()
        .copied()
        .or_else(|| upstream.address())
}

/// True when the request came over the HTTPS listener.
fn over_tls(session: &Session) -> bool {
    session
        .digest()
        .is_some_and(|digest| digest.ssl_digest.is_some())
}

/// `308` to the same host (its port replaced by `port`), path and query over HTTPS: what the
/// plain listener answers when it only redirects.
fn https_redirect(request: &RequestHeader, port: u16) -> LocalResponse {
    let origin = RedirectOrigin {
        scheme: "http",
        host: request_host(request).unwrap_or("localhost"),
        path: request.uri.path(),
        query: request.uri.query(),
    };
    let location = redirect_location(Some("https"), None, Some(port), None, &origin);
    LocalResponse::redirect(308, &location)
}

/// The `Host` header, or the URI's authority.
fn request_host(request: &RequestHeader) -> Option<&str> {
    request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri.authority().map(|a| a.as_str()))
}

fn client_request_id(request: &RequestHeader) -> Option<String> {
    let id = request.headers.get(REQUEST_ID)?.to_str().ok()?;
    (!id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN).then(|| id.to_owned())
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestContext;

    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {
        // No response compression: Pingora's default registers a disabled compression module
        // that still runs on every response.
    }

    fn new_ctx(&self) -> Self::CTX {
        RequestContext::new(InFlight::start(
            self.metrics.clone(),
            self.in_flight.clone(),
        ))
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        // The head is complete. The wait for the next request on a kept-alive connection is
        // bounded by the same connection guard (its timer is reused; Pingora's own keep-alive
        // timeout would register a new timer for every request).
        head_guard::head_received(session);
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<bool> {
        ctx.request_id = client_request_id(session.req_header()).unwrap_or_else(new_request_id);
        if let Err(refusal) = admit::admit(session, &self.policy.head_limits) {
            // Whatever follows a refused head is not read: the connection closes.
            session.set_keepalive(None);
            let response = LocalResponse::problem_with_detail(
                refusal.kind(),
                &refusal.to_string(),
                None,
                &ctx.request_id,
            );
            write_local_response(session, response, &ctx.request_id, Decorate::Nothing).await?;
            return Ok(true);
        }
        let Some(table) = self.store.current() else {
            let response = LocalResponse::problem(ProblemKind::NotReady, None, &ctx.request_id);
            write_local_response(session, response, &ctx.request_id, Decorate::Nothing).await?;
            return Ok(true);
        };
        if let Some(port) = table.https_redirect_port
            && !over_tls(session)
        {
            let response = https_redirect(session.req_header(), port);
            write_local_response(session, response, &ctx.request_id, Decorate::Nothing).await?;
            return Ok(true);
        }
        ctx.client = table.edge_client.clone();
        let request = session.req_header();
        // The caller's address, when a rule looks at it (`None` inside: unknown).
        let caller = table.checks_addresses.then(|| {
            let peer = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip());
            table.caller_address.caller(peer, &request.headers)
        });
        if let (Some(caller), Some(rules)) = (caller, &table.source_rules)
            && !rules.admits(caller)
        {
            let (response, why) = address_refused(caller, "this gateway", None, &ctx.request_id);
            self.metrics.refused("none", why);
            write_local_response(session, response, &ctx.request_id, Decorate::Nothing).await?;
            return Ok(true);
        }
        // A preflight is routed by the method it asks about; when no route with a CORS
        // policy serves that, it is an ordinary OPTIONS request.
        let preflight = cors::preflight_method(&request.method, &request.headers);
        let facts = |method| RequestFacts {
            method,
            host: request_host(request),
            path: request.uri.path(),
            query: request.uri.query(),
            headers: &request.headers,
        };
        ctx.matched = table
            .router
            .lookup(&facts(preflight.unwrap_or(request.method.as_str())));
        let is_preflight = preflight.is_some()
            && ctx
                .matched
                .as_ref()
                .is_some_and(|m| table.routes.get(m.route).is_some_and(|r| r.cors.is_some()));
        if preflight.is_some() && !is_preflight {
            ctx.matched = table.router.lookup(&facts(request.method.as_str()));
        }
        let idempotent = is_idempotent(request.method.as_str());
        ctx.table = Some(table);
        let Some(route) = ctx.route() else {
            let response = LocalResponse::problem(ProblemKind::NoRoute, None, &ctx.request_id);
            write_local_response(session, response, &ctx.request_id, Decorate::Nothing).await?;
            return Ok(true);
        };
        if let Some(announcement) = &route.announcement
            && let Some(detail) = announcement.gone(SystemTime::now())
        {
            let successor = announcement.successor.as_deref();
            let response =
                LocalResponse::gone(detail, successor, Some(ctx.route_id()), &ctx.request_id);
            write_local_response(session, response, &ctx.request_id, Decorate::Cors(route)).await?;
            return Ok(true);
        }
        let refused = if let Some(caller) = caller
            && !route.source_rules.iter().all(|rules| rules.admits(caller))
        {
            let (response, why) =
                address_refused(caller, "this route", Some(ctx.route_id()), &ctx.request_id);
            Some((response, Some(why)))
        } else if is_preflight {
            // Answered here, before credentials: browsers send none on a preflight.
            Some(preflight_answer(
                route,
                session.req_header(),
                &ctx.request_id,
            ))
        } else if let Some(limit) = route.entry.max_body_bytes
            && declared_body_length(session.req_header()).is_some_and(|length| length > limit)
        {
            // The body is not read: the connection closes after the answer.
            session.set_keepalive(None);
            let response = LocalResponse::problem_with_detail(
                ProblemKind::PayloadTooLarge,
                &format!("the request body is larger than this route accepts ({limit} bytes)"),
                Some(ctx.route_id()),
                &ctx.request_id,
            );
            Some((response, Some(refuse::reason::BODY_TOO_LARGE)))
        } else {
            ctx.retries_left = if idempotent { route.retry.attempts } else { 0 };
            match recognise_client(session, ctx) {
                Recognised::Admitted => None,
                Recognised::Refused(refused) => Some(refused),
                // Boxed: the Redis call's state stays out of every other request's future.
                Recognised::Global(limit) => {
                    Box::pin(global_admission(&limit, ctx, &self.metrics)).await
                }
            }
            .map(|(response, why)| (response, Some(why)))
        };
        if let Some((response, why)) = refused {
            if let Some(why) = why {
                self.metrics.refused(ctx.route_id(), why);
            }
            let route = ctx.route().map_or(Decorate::Nothing, Decorate::Cors);
            write_local_response(session, response, &ctx.request_id, route).await?;
            return Ok(true);
        }
        self.serve_locally(session, ctx).await
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        let limit = ctx.route().and_then(|route| route.entry.max_body_bytes);
        if let (Some(limit), Some(chunk)) = (limit, body.as_ref()) {
            ctx.body_bytes = ctx.body_bytes.saturating_add(chunk.len() as u64);
            if ctx.body_bytes > limit {
                // A body without a `Content-Length` (or with a false one) that grew past the
                // limit: the upstream request is cut off, the client told why.
                ctx.problem = Some(ProblemKind::PayloadTooLarge);
                self.metrics
                    .refused(ctx.route_id(), refuse::reason::BODY_TOO_LARGE);
                *body = None;
                return Err(Error::explain(
                    ErrorType::HTTPStatus(413),
                    "request body over the route's limit",
                ));
            }
        }
        Ok(())
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        let choice = ctx.route().and_then(|route| match &route.action {
            PreparedAction::Proxy(upstreams) => {
                let (index, address) =
                    choose_upstream(upstreams, &ctx.tried, now_millis(), fastrand::u64(..))?;
                let upstream = &upstreams[index];
                Some((
                    index,
                    address,
                    route.timeout,
                    route.tunnel_timeout,
                    upstream.protocol,
                    upstream.tls.clone(),
                ))
            }
            _ => None,
        });
        let Some((index, address, timeout, tunnel_timeout, protocol, tls)) = choice else {
            ctx.problem = Some(ProblemKind::NoHealthyUpstream);
            self.metrics
                .upstream_error(ctx.route_id(), "", "no_healthy_upstream");
            return Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "no healthy upstream",
            ));
        };
        ctx.upstream = Some(index);
        ctx.tried.push(index);
        let tunnel = tunnel_timeout.filter(|_| session.is_upgrade_req());
        let mut peer = match (tls, tunnel) {
            (tls, Some(limit)) => {
                // An upgrade bounded in time: a connection of its own (`tunnel.rs`).
                let mut peer = HttpPeer::new(address, false, String::new());
                peer.group_key = TUNNEL_GROUP;
                peer.options.total_connection_timeout = Some(timeout);
                peer.options.custom_l4 = Some(Arc::new(TunnelConnect {
                    address,
                    tls,
                    deadline: tokio::time::Instant::now() + limit,
                }));
                peer
            }
            (None, None) => HttpPeer::new(address, false, String::new()),
            (Some(origination), None) => {
                let mut peer = origination.peer(address)?;
                // TCP and the TLS handshake, within the route's timeout.
                peer.options.total_connection_timeout = Some(timeout);
                peer
            }
        };
        peer.options.connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
        if protocol == UpstreamProtocol::H2c {
            // Prior knowledge: HTTP/2 only, many streams over one connection.
            peer.options.set_http_version(2, 2);
            peer.options.max_h2_streams = UPSTREAM_H2_STREAMS;
            peer.options.h2_ping_interval = Some(UPSTREAM_H2_PING_INTERVAL);
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        // API keys stay at the gateway: backends learn the caller from `{client}` edits.
        if let Some(table) = &ctx.table {
            for header in table.clients.key_headers() {
                upstream_request.remove_header(header);
            }
        }
        let Some(route) = ctx.route() else {
            return Ok(());
        };
        let PreparedAction::Proxy(upstreams) = &route.action else {
            return Ok(());
        };
        let Some(upstream) = ctx.upstream.and_then(|i| upstreams.get(i)) else {
            return Ok(());
        };
        let vars = TemplateVars {
            param_names: ctx.param_names(),
            params: ctx.params(),
            client: ctx.client.as_deref(),
            request_id: &ctx.request_id,
        };
        let request = session.req_header();
        let path = request.uri.path();
        let rest = ctx
            .matched
            .as_ref()
            .and_then(|m| path.get(m.rest_offset..))
            .unwrap_or("");
        let target = upstream
            .rewrite
            .apply(path, rest, request.uri.query(), &vars);
        let uri = http::Uri::try_from(target)
            .map_err(|e| Error::because(ErrorType::InternalError, "upstream path", e))?;
        upstream_request.set_uri(uri);
        // `TE: trailers` is hop-by-hop, but an HTTP/2 upstream (gRPC) needs to hear it.
        let trailers = upstream.protocol == UpstreamProtocol::H2c && accepts_trailers(request);
        remove_hop_by_hop(upstream_request, session.is_upgrade_req());
        if trailers {
            upstream_request.insert_header(http::header::TE, "trailers")?;
        }
        let host = request_host(request).map(str::to_owned);
        set_forwarding_headers(
            upstream_request,
            &ForwardedFacts {
                client_ip: session
                    .client_addr()
                    .and_then(|a| a.as_inet())
                    .map(|a| a.ip()),
                scheme: if over_tls(session) { "https" } else { "http" },
                host: host.as_deref(),
                request_id: &ctx.request_id,
            },
        );
        if let Ok(authority) = HeaderValue::from_str(&upstream.authority) {
            upstream_request.insert_header(http::header::HOST, authority)?;
        }
        route.request_edits.apply(upstream_request, &vars);
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        let status = upstream_response.status.as_u16();
        let retry = ctx.retries_left > 0
            && ctx
                .route()
                .is_some_and(|r| r.retry.statuses.contains(&status));
        if retry {
            ctx.retries_left -= 1;
            ctx.retrying_status = true;
            self.metrics
                .upstream_error(ctx.route_id(), self.upstream_name(ctx), "retried_status");
            let mut error =
                Error::explain(ErrorType::HTTPStatus(status), "retrying upstream status");
            error.set_retry(true);
            return Err(error);
        }
        remove_hop_by_hop(upstream_response, status == 101 || session.is_upgrade_req());
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        if let Ok(id) = HeaderValue::from_str(&ctx.request_id) {
            upstream_response.insert_header(REQUEST_ID, id)?;
        }
        if let Some(policy) = ctx.route().and_then(|route| route.cors.as_ref()) {
            // The route's policy replaces whatever CORS headers the backend sent.
            let theirs: Vec<_> = upstream_response
                .headers
                .keys()
                .filter(|name| cors::is_cors_response_header(name))
                .cloned()
                .collect();
            for name in theirs {
                upstream_response.remove_header(&name);
            }
            for (name, value) in policy.response_headers(&session.req_header().headers) {
                upstream_response.append_header(name, value)?;
            }
        }
        if let Some(announcement) = ctx.route().and_then(|r| r.announcement.as_ref()) {
            for (name, value) in &announcement.headers {
                upstream_response.append_header(name.clone(), value.clone())?;
            }
        }
        if let Some(route) = ctx.route()
            && !route.response_edits.is_empty()
        {
            let vars = TemplateVars {
                param_names: ctx.param_names(),
                params: ctx.params(),
                client: ctx.client.as_deref(),
                request_id: &ctx.request_id,
            };
            route.response_edits.apply(upstream_response, &vars);
        }
        Ok(())
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        peer: &HttpPeer,
        _fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut Self::CTX,
    ) -> pingora::Result<()> {
        if let Some(upstream) = self.current_upstream(ctx) {
            upstream.connected(attempt_address(peer, upstream));
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(upstream) = self.current_upstream(ctx) {
            upstream.connect_failed(attempt_address(peer, upstream), now_millis());
        }
        let kind = if matches!(e.etype(), ErrorType::ConnectTimedout) {
            "timeout"
        } else {
            "connect"
        };
        self.metrics
            .upstream_error(ctx.route_id(), self.upstream_name(ctx), kind);
        // Nothing reached the upstream: retrying is safe, within the route's budget.
        let retry = ctx.retries_left > 0;
        if retry {
            ctx.retries_left -= 1;
        }
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Self::CTX,
        client_reused: bool,
    ) -> Box<Error> {
        if std::mem::take(&mut ctx.retrying_status) {
            return e;
        }
        if ctx.problem.is_some() {
            // The gateway itself stopped the request (a body over the limit): never again.
            let mut e = e;
            e.set_retry(false);
            return e;
        }
        let kind = match e.etype() {
            ErrorType::ReadTimedout | ErrorType::WriteTimedout => "timeout",
            _ => "failed",
        };
        if *e.esource() == pingora::ErrorSource::Upstream {
            self.metrics
                .upstream_error(ctx.route_id(), self.upstream_name(ctx), kind);
        }
        let mut e = match (peer.address().as_inet(), self.current_upstream(ctx)) {
            (None, Some(upstream)) => {
                let address = attempt_address(peer, upstream);
                e.more_context(format!("Peer: {address:?} over TLS"))
            }
            _ => e.more_context(format!("Peer: {peer}")),
        };
        // A request already (partly) sent is repeated only when it is idempotent and its body
        // is still buffered; a stale pooled connection is retried once on a fresh one.
        if !is_idempotent(session.req_header().method.as_str())
            || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let kind = ctx.problem.take().or_else(|| errors::classify(e));
        let Some(kind) = kind else {
            // The client went away: nobody to answer.
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        if session.response_written().is_none() {
            let route = ctx.route().map(|r| r.entry.id.clone());
            let response = LocalResponse::problem(kind, route.as_deref(), &ctx.request_id);
            let decorate = ctx.route().map_or(Decorate::Nothing, Decorate::Cors);
            if let Err(write_error) =
                write_local_response(session, response, &ctx.request_id, decorate).await
            {
                tracing::debug!("could not write the error response: {write_error}");
            }
        }
        FailToProxy {
            error_code: kind.status(),
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Self::CTX, error: &Error) -> bool {
        // Upstream failures are counted in metrics; logging each one would put I/O on the hot
        // path exactly when an upstream is struggling.
        *error.esource() != pingora::ErrorSource::Internal
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Self::CTX) {
        head_guard::request_done(session);
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        if let Some(calls) = ctx.route().and_then(|r| r.calls.as_deref()) {
            calls.record(ctx.client.as_deref());
        }
        self.metrics.request_done(
            ctx.route().map(|r| &r.names),
            status,
            ctx.client.as_deref(),
            ctx.started.elapsed().as_secs_f64(),
        );
    }
}

impl Gateway {
    fn current_upstream<'a>(
        &self,
        ctx: &'a RequestContext,
    ) -> Option<&'a crate::upstream::PreparedUpstream> {
        match &ctx.route()?.action {
            PreparedAction::Proxy(upstreams) => upstreams.get(ctx.upstream?),
            _ => None,
        }
    }

    fn upstream_name<'a>(&self, ctx: &'a RequestContext) -> &'a str {
        self.current_upstream(ctx)
            .map_or("", |u| u.service.as_str())
    }
}

/// What an aggregation may read from the request.
fn request_values(request: &RequestHeader, vars: &TemplateVars<'_>) -> RequestValues {
    let query = request
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect();
    RequestValues {
        method: request.method.as_str().to_owned(),
        path: request.uri.path().to_owned(),
        params: vars
            .param_names
            .iter()
            .cloned()
            .zip(vars.params.iter().cloned())
            .collect(),
        query,
        headers: request
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        client: vars.client.map(str::to_owned),
        request_id: vars.request_id.to_owned(),
    }
}

/// Runs `work` until it finishes, or until the client closes its connection — then `work` is
/// dropped (cancelling whatever it waits for) and `None` returned. A request body the work does
/// not use is read and discarded meanwhile.
async fn until_client_leaves<T>(
    session: &mut Session,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            done = &mut work => return Some(done),
            read = session.downstream_session.read_body_or_idle(false) => {
                if read.is_err() {
                    return None;
                }
            }
        }
    }
}
