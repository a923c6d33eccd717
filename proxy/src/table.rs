//! A loaded route table: the parsed [`RouteTable`] plus everything a request needs prepared —
//! the router, parsed templates, clients — and handles to the runtime state it shares with
//! other tables ([`crate::runtime`]: upstream addresses, which move without a rebuild, and
//! rate-limit buckets). Built off the request path and never changed afterwards; a reload
//! builds a new one.

use crate::access::{CallerAddress, SourceRules};
use crate::clients::{Clients, SecretFiles};
use crate::cors::CorsPolicy;
use crate::deprecation::{Announcement, AnnouncementError, announcement};
use crate::metrics::RouteNames;
use crate::tls::origination::{self, OriginKey, Originations};
use crate::tls::{Termination, TlsError};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_api::prepare;
use gatehouse_api::route_table::{
    Action, ClientEntry, PathKind, RouteEntry, RouteTable, TableSource, Upstream,
};
use gatehouse_api::template::Template;
use http::HeaderValue;

use crate::aggregate::plan::AggregationProgram;
use crate::headers::{EditError, PreparedEdits};
use crate::rewrite::PathRewrite;
use crate::router::Router;
use crate::runtime::Runtime;
use crate::runtime::addresses::{Lookup, ResolvedUpstream};
use crate::runtime::in_flight::{ConcurrencyLimit, InFlightKey};
use crate::upstream::PreparedUpstream;
use crate::usage::VersionCalls;

/// Methods a retry may repeat (RFC 9110 idempotent methods, as the CRD documents).
const IDEMPOTENT: [&str; 5] = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"];

/// True when `method` may be retried.
pub fn is_idempotent(method: &str) -> bool {
    IDEMPOTENT.contains(&method)
}

/// A table ready to serve.
#[derive(Debug)]
pub struct LoadedTable {
    /// `sha256:…` of the canonical table bytes (what the operator reports).
    pub digest: String,
    /// Loads since the process started, this one included.
    pub generation: u64,
    /// The resource the table was compiled from.
    pub source: TableSource,
    /// For an EdgeService, the client every request comes from.
    pub edge_client: Option<String>,
    /// Who may call, and how often.
    pub clients: Clients,
    /// The clients as the table has them (the contract documents say how they authenticate).
    pub client_entries: Vec<ClientEntry>,
    /// The route index.
    pub router: Router,
    /// Prepared routes, same order as the table's.
    pub routes: Vec<PreparedRoute>,
    /// The HTTPS listener's certificates and policy, when the table has them.
    pub tls: Option<Termination>,
    /// How TLS upstreams are connected to, by setting.
    pub originations: Originations,
    /// Plain HTTP requests are redirected to HTTPS on this port instead of served.
    pub https_redirect_port: Option<u16>,
    /// How the caller's address is found.
    pub caller_address: CallerAddress,
    /// Source ranges every request must be in.
    pub source_rules: Option<SourceRules>,
    /// True when a rule of the table or of a route looks at the caller's address.
    pub checks_addresses: bool,
}

/// One route, prepared.
#[derive(Debug)]
pub struct PreparedRoute {
    /// The route as the table has it (aggregation reads its plan from here).
    pub entry: RouteEntry,
    /// What a matched request gets.
    pub action: PreparedAction,
    /// Edits to the request before it goes upstream.
    pub request_edits: PreparedEdits,
    /// Edits to the response before it goes to the client.
    pub response_edits: PreparedEdits,
    /// Connect and read timeout of each upstream attempt.
    pub timeout: Duration,
    /// The longest an upgraded connection may stay open.
    pub tunnel_timeout: Option<Duration>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Source ranges of the route's contract and of the route; each must admit the caller.
    pub source_rules: Vec<SourceRules>,
    /// What browsers may do across origins. Boxed, as the announcement: most routes have
    /// neither, and a reload holds two tables.
    pub cors: Option<Box<CorsPolicy>>,
    /// The route's concurrency limit.
    pub concurrency: Option<ConcurrencyLimit>,
    /// Its deprecation (headers on every response) or retirement (`410 Gone`).
    pub announcement: Option<Box<Announcement>>,
    /// Its id, Contract and version, as its requests are counted.
    pub names: RouteNames,
    /// Where its calls are recorded, for a route of a published or deprecated version.
    pub calls: Option<Arc<VersionCalls>>,
}

/// When a proxied request is tried again.
#[derive(Clone, Debug, Default)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Upstream statuses that are retried.
    pub statuses: Vec<u16>,
}

/// A route's action, prepared.
#[derive(Debug)]
pub enum PreparedAction {
    /// Proxy to one of these upstreams.
    Proxy(Vec<PreparedUpstream>),
    /// Run the route's aggregation, compiled when the table loaded.
    Aggregate(Arc<AggregationProgram>),
    /// Redirect.
    Redirect {
        /// Target scheme; absent keeps the request's.
        scheme: Option<String>,
        /// Target host; absent keeps the request's.
        host: Option<String>,
        /// Target port; absent keeps the request's.
        port: Option<u16>,
        /// Target path template; absent keeps the request's path.
        path: Option<Template>,
        /// 301, 302, 303, 307 or 308.
        status: u16,
    },
    /// Answer directly.
    Respond {
        /// Status.
        status: u16,
        /// `Content-Type`.
        content_type: HeaderValue,
        /// Body.
        body: Bytes,
    },
}

/// Why a checked table still could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A client is configured wrongly (a header name or a rate that cannot be used).
    #[error("{0}")]
    Clients(String),
    /// A header edit is not a valid header.
    #[error("route {route}: {source}")]
    Edit {
        /// Route id.
        route: String,
        /// What is wrong.
        source: EditError,
    },
    /// A template does not parse.
    #[error("route {route}: {message}")]
    Template {
        /// Route id.
        route: String,
        /// What is wrong.
        message: String,
    },
    /// The TLS policy cannot be built.
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// An access rule (an address range, a CORS policy) cannot be used.
    #[error("{0}")]
    Access(String),
    /// A deprecation cannot be announced in headers.
    #[error("{0}")]
    Deprecation(#[from] AnnouncementError),
    /// A content type is not a media type.
    #[error("route {route}: content type: {message}")]
    ContentType {
        /// Route id.
        route: String,
        /// What is wrong.
        message: String,
    },
}

/// What building needs besides the table.
pub struct BuildContext<'a> {
    /// The state tables share: addresses, health, buckets.
    pub runtime: &'a Runtime,
    /// The Secrets client API keys and certificates are read from.
    pub secrets: &'a SecretFiles,
    /// The table served now: a certificate whose Secret became unusable keeps serving.
    pub previous: Option<&'a LoadedTable>,
}

/// Where a build gets its shared upstream entries from.
struct SharedUpstreams<'a> {
    runtime: &'a Runtime,
    lookup: &'a Lookup<'a>,
    originations: &'a Originations,
}

impl LoadedTable {
    /// Prepares a checked table. Looks up the upstreams no table used before (blocking DNS):
    /// call it off the request path. What serves but not fully is said in `warnings`: an
    /// upstream without address (kept, unusable until the refresher resolves it) and a client
    /// whose Secret is missing or unusable (recognised by nobody). `digest` is the one of the
    /// table's bytes as delivered (what the operator wrote, and compares with); without it the
    /// table is serialised once more to name it.
    pub fn build(
        mut table: RouteTable,
        digest: Option<String>,
        generation: u64,
        context: &BuildContext<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, BuildError> {
        let digest = digest.unwrap_or_else(|| table.digest());
        let clients = Clients::build(
            &table.clients,
            context.secrets,
            table.redis.as_ref(),
            context.runtime,
            warnings,
        )
        .map_err(BuildError::Clients)?;
        let tls = table
            .tls
            .as_ref()
            .map(|entry| {
                let previous = context.previous.and_then(|p| p.tls.as_ref());
                Termination::build(entry, &table.clients, context.secrets, previous, warnings)
            })
            .transpose()?;
        let originations = origination::build(
            &table,
            context.secrets,
            context.previous.map(|p| &p.originations),
            warnings,
        );
        let router = Router::build(&table);
        let mut routes = Vec::with_capacity(table.routes.len());
        // One reading of the hosts file for the whole build.
        let round = context.runtime.resolver().round();
        let shared = SharedUpstreams {
            runtime: context.runtime,
            lookup: &|key| round.lookup(key),
            originations: &originations,
        };
        // The entries move into the prepared routes: no second copy of the table while it builds.
        for entry in std::mem::take(&mut table.routes) {
            routes.push(prepare_route(entry, &shared, warnings)?);
        }
        let source_rules = table
            .source_ranges
            .as_ref()
            .map(SourceRules::prepare)
            .transpose()
            .map_err(BuildError::Access)?;
        let checks_addresses =
            source_rules.is_some() || routes.iter().any(|r| !r.source_rules.is_empty());
        Ok(Self {
            caller_address: CallerAddress::prepare(table.client_address.as_ref())
                .map_err(BuildError::Access)?,
            source_rules,
            checks_addresses,
            digest,
            generation,
            source: table.source,
            edge_client: table.edge_client,
            clients,
            router,
            routes,
            tls,
            originations,
            https_redirect_port: table.https_redirect_port,
            client_entries: table.clients,
        })
    }

    /// Its routes and clients as a table again (what the contract documents are made from).
    pub fn route_table(&self) -> RouteTable {
        RouteTable {
            clients: self.client_entries.clone(),
            routes: self.routes.iter().map(|r| r.entry.clone()).collect(),
            ..RouteTable::empty(self.source.clone())
        }
    }
}

/// The shared entry of `upstream`; one without address is reported in `unresolved`, naming
/// the route.
fn shared_upstream(
    upstream: &Upstream,
    route: &str,
    shared: &SharedUpstreams<'_>,
    unresolved: &mut Vec<String>,
) -> Arc<ResolvedUpstream> {
    let resolved = shared.runtime.addresses.entry(upstream, shared.lookup);
    if resolved.address().is_none() {
        let reason = resolved.failure().unwrap_or_default();
        unresolved.push(format!(
            "route {route}: upstream {}:{} does not resolve: {reason}; requests to it answer 503 \
             until it resolves (looked up again every resolve interval)",
            upstream.host, upstream.port
        ));
    }
    resolved
}

fn prepare_route(
    entry: RouteEntry,
    shared: &SharedUpstreams<'_>,
    unresolved: &mut Vec<String>,
) -> Result<PreparedRoute, BuildError> {
    let edit_error = |source| BuildError::Edit {
        route: entry.id.clone(),
        source,
    };
    let template_error = |message| BuildError::Template {
        route: entry.id.clone(),
        message,
    };
    let action = match &entry.action {
        Action::Proxy { upstreams } => PreparedAction::Proxy(
            upstreams
                .iter()
                .map(|upstream| PreparedUpstream {
                    service: upstream.service.clone(),
                    resolved: shared_upstream(upstream, &entry.id, shared, unresolved),
                    authority: format!("{}:{}", upstream.host, upstream.port),
                    weight: upstream.weight,
                    protocol: upstream.protocol,
                    tls: upstream.tls.as_ref().and_then(|tls| {
                        let key = OriginKey::new(tls, upstream.protocol);
                        shared.originations.get(&key).cloned()
                    }),
                    rewrite: PathRewrite::for_upstream(
                        upstream.path.as_deref(),
                        entry.base_path.as_deref(),
                        entry.path_kind == PathKind::Prefix,
                    ),
                })
                .collect(),
        ),
        Action::Aggregate(plan) => {
            let program = AggregationProgram::compile(plan, |upstream| {
                shared_upstream(upstream, &entry.id, shared, unresolved)
            })
            .map_err(|message| BuildError::Template {
                route: entry.id.clone(),
                message,
            })?;
            PreparedAction::Aggregate(Arc::new(program))
        }
        Action::Redirect(redirect) => PreparedAction::Redirect {
            scheme: redirect.scheme.clone(),
            host: redirect.host.clone(),
            port: redirect.port,
            path: redirect
                .path
                .as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(template_error)?,
            status: redirect.status,
        },
        Action::Respond(respond) => PreparedAction::Respond {
            status: respond.status,
            content_type: prepare::media_type(&respond.content_type).map_err(|message| {
                BuildError::ContentType {
                    route: entry.id.clone(),
                    message,
                }
            })?,
            body: Bytes::from(respond.body.clone().unwrap_or_default()),
        },
    };
    let source_rules = entry
        .source_ranges
        .iter()
        .map(SourceRules::prepare)
        .collect::<Result<_, _>>()
        .map_err(|message| BuildError::Access(format!("route {}: {message}", entry.id)))?;
    let cors = entry
        .cors
        .as_deref()
        .map(|cors| CorsPolicy::prepare(cors).map(Box::new))
        .transpose()
        .map_err(|message| BuildError::Access(format!("route {}: cors: {message}", entry.id)))?;
    let concurrency = entry.max_in_flight.map(|max| {
        let key = InFlightKey::Route(entry.id.clone());
        shared
            .runtime
            .in_flight
            .limit(&key, usize::try_from(max).unwrap_or(usize::MAX))
    });
    let names = RouteNames::of(&entry.id, entry.contract.as_deref());
    Ok(PreparedRoute {
        announcement: announcement(&entry)?.map(Box::new),
        calls: shared.runtime.usage.calls_of(&entry, &names.contract),
        names,
        source_rules,
        cors,
        concurrency,
        request_edits: PreparedEdits::prepare(&entry.request_headers).map_err(edit_error)?,
        response_edits: PreparedEdits::prepare(&entry.response_headers).map_err(edit_error)?,
        timeout: Duration::from_millis(entry.timeout_ms),
        tunnel_timeout: entry.tunnel_timeout_ms.map(Duration::from_millis),
        retry: entry
            .retries
            .as_ref()
            .map(|r| RetryPolicy {
                attempts: r.attempts,
                statuses: r.statuses.clone(),
            })
            .unwrap_or_default(),
        action,
        entry,
    })
}

/// A table shared between requests: cloning is cheap.
pub type SharedTable = Arc<LoadedTable>;
