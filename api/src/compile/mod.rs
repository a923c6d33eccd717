//! compile: validated resources → RouteTable. Pure and deterministic.

mod exposed;
mod retire;

pub use exposed::ContractCache;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::crd::{
    Access, Aggregation, Aggregator, BackendProtocol, BackendRef, Client, ClientAddress,
    ContractVersion, Cors, Deprecation, EdgeService, ExposedContract, ExposingKind, FailurePolicy,
    Gateway, HeaderModifier, HttpMode, Lifecycle, Listeners, MinTlsVersion, PathType, RedisStore,
    RequestLimits, Route, RouteMatch, SourceRanges, StringMap, UnknownServerNamePolicy,
};
use crate::exposure::{self, Catalog, Exposer, Unresolved};
use crate::naming::{Kind, proxy_name};
use crate::rate_limits::{self, Owner};
use crate::route_table::*;
use crate::usage::{self, InUse};
use crate::validate::{self, ExposerClients, Problem, routes_base_path};
use crate::{duration, path, prepare, versioning};

/// Upstream timeout of a route that sets none.
pub const DEFAULT_ROUTE_TIMEOUT_MS: u64 = 30_000;

/// What compile needs to know beyond the resource itself.
#[derive(Clone, Debug)]
pub struct CompileContext {
    /// Cluster DNS domain. Defaults to `cluster.local`.
    pub cluster_domain: String,
    /// Service port of each known Aggregator in the namespace, by name. An Aggregator missing
    /// here is assumed to listen on 80 (the default).
    pub aggregator_ports: BTreeMap<String, u16>,
    /// The Redis server of global rate limits for resources that name none (the operator's
    /// `--redis-address`).
    pub redis: Option<RedisStore>,
    /// The proxy is given its Redis server on its command line (`--redis`, standalone), so a
    /// global limit needs no `spec.redis`.
    pub redis_from_proxy: bool,
    /// The Contracts and ContractGrants there are, for the resources that expose Contracts.
    pub catalog: Arc<Catalog>,
    /// What the last compile of the same resource made of its Contracts
    /// ([`Compiled::contracts`]): a Contract whose inputs did not change is taken from it
    /// instead of validated and compiled again. The table is the same either way.
    pub compiled: Option<Arc<ContractCache>>,
    /// Who called which contract version lately: retiring or removing a version called within
    /// the window is refused. `None` (render, standalone): nothing is known to be in use.
    pub in_use: Option<Arc<InUse>>,
}

impl Default for CompileContext {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".to_owned(),
            aggregator_ports: BTreeMap::new(),
            redis: None,
            redis_from_proxy: false,
            catalog: Arc::default(),
            compiled: None,
            in_use: None,
        }
    }
}

struct Scope<'a> {
    namespace: &'a str,
    context: &'a CompileContext,
    /// The resource's own limits, for routes and contracts that set none.
    limits: Option<&'a RequestLimits>,
}

impl Scope<'_> {
    /// The cluster DNS name of Service `service`.
    fn service_host(&self, service: &str) -> String {
        format!(
            "{service}.{}.svc.{}",
            self.namespace, self.context.cluster_domain
        )
    }

    fn upstream(&self, service: &str, port: u16, path: Option<String>, weight: u32) -> Upstream {
        Upstream {
            service: service.to_owned(),
            host: self.service_host(service),
            port,
            path,
            weight,
            protocol: UpstreamProtocol::Http1,
            tls: None,
        }
    }

    fn backend(&self, backend: &BackendRef) -> Upstream {
        let weight = backend.weight.map_or(1, |w| u32::try_from(w).unwrap_or(0));
        match (&backend.service, &backend.aggregator) {
            (Some(service), _) => Upstream {
                protocol: match backend.protocol.unwrap_or_default() {
                    BackendProtocol::Http => UpstreamProtocol::Http1,
                    BackendProtocol::Http2 | BackendProtocol::H2c | BackendProtocol::Grpc => {
                        UpstreamProtocol::H2c
                    }
                },
                tls: backend.tls.as_ref().map(|tls| UpstreamTls {
                    server_name: tls
                        .server_name
                        .clone()
                        .unwrap_or_else(|| self.service_host(service)),
                    ca_secret: tls.ca_secret_ref.as_ref().map(|s| s.name.clone()),
                    client_certificate: tls
                        .client_certificate_secret_ref
                        .as_ref()
                        .map(|s| s.name.clone()),
                }),
                ..self.upstream(service, port(backend.port), backend.path.clone(), weight)
            },
            (None, aggregator) => {
                let name = aggregator.as_deref().unwrap_or_default();
                let port = self
                    .context
                    .aggregator_ports
                    .get(name)
                    .copied()
                    .unwrap_or(80);
                let service = proxy_name(Kind::Aggregator, name);
                self.upstream(&service, port, backend.path.clone(), weight)
            }
        }
    }

    fn aggregate(&self, aggregation: &Aggregation) -> AggregatePlan {
        AggregatePlan {
            steps: aggregation
                .steps
                .iter()
                .map(|step| StepPlan {
                    name: step.name.clone(),
                    upstream: self.upstream(&step.call.service, port(step.call.port), None, 1),
                    method: step.call.method.as_str().to_owned(),
                    path: step.call.path.clone(),
                    headers: lower_keys(&step.call.headers),
                    body: step.call.body.clone(),
                    after: sorted(step.after.clone()),
                    optional: step.optional,
                    timeout_ms: step
                        .timeout
                        .as_deref()
                        .and_then(|t| duration::parse_millis(t).ok()),
                    filter: step.filter.clone(),
                })
                .collect(),
            response: aggregation.response.clone(),
            timeout_ms: duration::parse_millis(&aggregation.timeout)
                .unwrap_or(DEFAULT_ROUTE_TIMEOUT_MS),
            failure_policy: match aggregation.failure_policy {
                FailurePolicy::AllOrNothing => StepFailurePolicy::AllOrNothing,
                FailurePolicy::BestEffort => StepFailurePolicy::BestEffort,
            },
            max_step_response_bytes: u64::try_from(aggregation.max_step_response_bytes)
                .unwrap_or(0),
        }
    }

    fn route(&self, id: String, contract: &ContractVersion, route: &Route) -> RouteEntry {
        let base_path = routes_base_path(contract);
        let full_path = path::join(&base_path, &route.matches.path);
        let action = if let Some(backend) = &route.backend {
            Action::Proxy {
                upstreams: vec![self.backend(backend)],
            }
        } else if let Some(backends) = &route.backends {
            Action::Proxy {
                upstreams: backends.iter().map(|b| self.backend(b)).collect(),
            }
        } else if let Some(aggregation) = &route.aggregate {
            Action::Aggregate(self.aggregate(aggregation))
        } else if let Some(redirect) = &route.redirect {
            Action::Redirect(RedirectAction {
                scheme: redirect
                    .scheme
                    .map(|s| format!("{s:?}").to_ascii_lowercase()),
                host: redirect.host.clone(),
                port: redirect.port.and_then(|p| u16::try_from(p).ok()),
                path: redirect.path.clone(),
                status: u16::try_from(redirect.status_code).unwrap_or(302),
            })
        } else {
            let respond = route
                .respond
                .clone()
                .unwrap_or_else(|| crate::crd::DirectResponse {
                    status: 404,
                    body: None,
                    content_type: String::new(),
                });
            Action::Respond(RespondAction {
                status: u16::try_from(respond.status).unwrap_or(500),
                content_type: respond.content_type,
                body: respond.body,
            })
        };
        let timeout_ms = route
            .timeout
            .as_deref()
            .and_then(|t| duration::parse_millis(t).ok())
            .or_else(|| {
                route
                    .aggregate
                    .as_ref()
                    .and_then(|a| duration::parse_millis(&a.timeout).ok())
            })
            .unwrap_or(DEFAULT_ROUTE_TIMEOUT_MS);
        let mut entry = match_entry(
            id,
            Some(contract.version.clone()),
            full_path,
            &route.matches,
            action,
            timeout_ms,
        );
        entry.base_path = Some(base_path);
        entry.tunnel_timeout_ms = route
            .tunnel_timeout
            .as_deref()
            .and_then(|t| duration::parse_millis(t).ok());
        entry.request_headers = header_edits(route.request_headers.as_ref());
        entry.response_headers = header_edits(route.response_headers.as_ref());
        entry.clients = allowed_clients(contract.access.as_ref(), route.access.as_ref());
        entry.source_ranges = [&contract.access, &route.access]
            .into_iter()
            .flatten()
            .filter_map(|access| access.source_ranges.as_ref())
            .map(source_ranges_entry)
            .collect();
        entry.cors = route
            .cors
            .as_ref()
            .or(contract.cors.as_ref())
            .map(|cors| Box::new(cors_entry(cors, &route.matches)));
        let levels = [route.limits.as_ref(), contract.limits.as_ref(), self.limits];
        entry.max_body_bytes = most_specific(levels, |l| l.max_body_bytes);
        entry.max_in_flight = most_specific(levels, |l| l.max_in_flight);
        entry.state = version_state(contract.lifecycle);
        entry.deprecation = route
            .deprecation
            .as_ref()
            .or(contract.deprecation.as_ref())
            .map(|d| Box::new(deprecation_entry(d)));
        entry.retries = route.retries.as_ref().map(|r| Retries {
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            statuses: sorted(
                r.statuses
                    .iter()
                    .filter_map(|s| u16::try_from(*s).ok())
                    .collect(),
            ),
        });
        entry
    }

    /// The routes of inline contracts: ids `VERSION/ROUTE`, sorted.
    fn contracts(&self, contracts: &[ContractVersion]) -> Vec<RouteEntry> {
        let mut routes = self.contract_routes("", contracts.iter());
        routes.sort_by(|a, b| a.id.cmp(&b.id));
        routes
    }

    /// The routes of these contract versions, ids `PREFIXVERSION/ROUTE`.
    fn contract_routes<'c>(
        &self,
        prefix: &str,
        versions: impl Iterator<Item = &'c ContractVersion>,
    ) -> Vec<RouteEntry> {
        versions
            .flat_map(|contract| {
                contract.routes.iter().map(move |route| {
                    self.route(
                        format!("{prefix}{}/{}", contract.version, route.name),
                        contract,
                        route,
                    )
                })
            })
            .collect()
    }
}

/// A version's life in the table's terms: a draft is left out.
fn version_state(lifecycle: Lifecycle) -> Option<VersionState> {
    match lifecycle {
        Lifecycle::Draft => None,
        Lifecycle::Published => Some(VersionState::Published),
        Lifecycle::Deprecated => Some(VersionState::Deprecated),
        Lifecycle::Retired => Some(VersionState::Retired),
    }
}

/// A deprecation in the table's terms; validation has checked its dates.
fn deprecation_entry(deprecation: &Deprecation) -> DeprecationEntry {
    DeprecationEntry {
        since: deprecation.since_seconds().unwrap_or_default(),
        sunset: deprecation.sunset_seconds().and_then(Result::ok),
        link: deprecation.link.clone(),
        sunset_link: deprecation.sunset_link.clone(),
        successor: deprecation.successor.clone(),
        gone_after_sunset: deprecation.gone_after_sunset,
    }
}

/// The routes of a contract's versions on their own (ids `VERSION/ROUTE`, sorted), as a
/// gateway of `namespace` with no settings of its own compiles them: what `diff` compares.
pub fn contract_routes(namespace: &str, versions: &[ContractVersion]) -> Vec<RouteEntry> {
    let context = CompileContext::default();
    let scope = Scope {
        namespace,
        context: &context,
        limits: None,
    };
    scope.contracts(versions)
}

/// The clients a route lets in: its own list, within its contract's; `None`: every client.
fn allowed_clients(contract: Option<&Access>, route: Option<&Access>) -> Option<Vec<String>> {
    let listed = |access: Option<&Access>| {
        access
            .map(|a| a.clients.clone())
            .filter(|clients| !clients.is_empty())
    };
    match (listed(contract), listed(route)) {
        (None, None) => None,
        (Some(only), None) | (None, Some(only)) => Some(sorted(only)),
        (Some(outer), Some(inner)) => Some(sorted(
            inner.into_iter().filter(|c| outer.contains(c)).collect(),
        )),
    }
}

/// Address ranges in normal form, sorted.
fn normal_ranges(texts: &[String]) -> Vec<String> {
    sorted(
        texts
            .iter()
            .filter_map(|text| prepare::address_range(text).ok())
            .map(|range| range.to_string())
            .collect(),
    )
}

fn source_ranges_entry(ranges: &SourceRanges) -> SourceRangesEntry {
    SourceRangesEntry {
        allow: normal_ranges(&ranges.allow),
        deny: normal_ranges(&ranges.deny),
    }
}

/// Where the caller's address comes from; `None`: the connection's peer.
fn client_address_entry(address: Option<&ClientAddress>) -> Option<ClientAddressEntry> {
    let address = address?;
    if let Some(hops) = address.trusted_hops.and_then(|h| u32::try_from(h).ok()) {
        return Some(ClientAddressEntry::TrustedHops(hops));
    }
    (!address.trusted_proxies.is_empty())
        .then(|| ClientAddressEntry::TrustedProxies(normal_ranges(&address.trusted_proxies)))
}

/// The resource-wide source ranges, when it sets any.
fn gateway_source_ranges(access: Option<&Access>) -> Option<SourceRangesEntry> {
    access?.source_ranges.as_ref().map(source_ranges_entry)
}

/// Methods a CORS policy allows when it names none and its route matches every method.
const CORS_DEFAULT_METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

fn cors_entry(cors: &Cors, m: &RouteMatch) -> CorsEntry {
    let methods = if !cors.allow_methods.is_empty() {
        &cors.allow_methods
    } else {
        &m.methods
    };
    let allow_methods = if methods.is_empty() {
        CORS_DEFAULT_METHODS.map(str::to_owned).to_vec()
    } else {
        sorted(methods.iter().map(|m| m.as_str().to_owned()).collect())
    };
    let lower = |items: &[String]| -> Vec<String> {
        sorted(items.iter().map(|i| i.to_ascii_lowercase()).collect())
    };
    CorsEntry {
        allow_origins: lower(&cors.allow_origins),
        allow_methods,
        allow_headers: lower(&cors.allow_headers),
        expose_headers: lower(&cors.expose_headers),
        allow_credentials: cors.allow_credentials,
        max_age_seconds: cors
            .max_age
            .as_deref()
            .and_then(|age| duration::parse_millis(age).ok())
            .map(|ms| ms / 1000),
    }
}

/// A limit as the most specific level that sets it has it (levels from the most specific).
fn most_specific<V, T: TryFrom<V>>(
    levels: [Option<&RequestLimits>; 3],
    field: impl Fn(&RequestLimits) -> Option<V>,
) -> Option<T> {
    levels
        .into_iter()
        .flatten()
        .find_map(&field)
        .and_then(|value| T::try_from(value).ok())
}

fn port(port: Option<i32>) -> u16 {
    port.and_then(|p| u16::try_from(p).ok()).unwrap_or(80)
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items.dedup();
    items
}

fn lower_keys(map: &StringMap) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn header_edits(edits: Option<&HeaderModifier>) -> HeaderEdits {
    edits.map_or_else(HeaderEdits::default, |e| HeaderEdits {
        remove: sorted(e.remove.iter().map(|n| n.to_ascii_lowercase()).collect()),
        set: lower_keys(&e.set),
        add: lower_keys(&e.add),
    })
}

fn match_entry(
    id: String,
    contract: Option<String>,
    full_path: String,
    m: &RouteMatch,
    action: Action,
    timeout_ms: u64,
) -> RouteEntry {
    let path_kind = match m.path_type {
        PathType::Prefix => PathKind::Prefix,
        PathType::Exact if full_path.contains('{') => PathKind::Template,
        PathType::Exact => PathKind::Exact,
    };
    RouteEntry {
        id,
        contract,
        base_path: None,
        host: m.host.clone(),
        path_kind,
        path: full_path,
        methods: sorted(m.methods.iter().map(|m| m.as_str().to_owned()).collect()),
        headers: sorted(
            m.headers
                .iter()
                .map(|h| ValueCondition {
                    name: h.name.to_ascii_lowercase(),
                    value: h.value.clone(),
                })
                .collect(),
        ),
        query: sorted(
            m.query_params
                .iter()
                .map(|q| ValueCondition {
                    name: q.name.clone(),
                    value: q.value.clone(),
                })
                .collect(),
        ),
        action,
        request_headers: HeaderEdits::default(),
        response_headers: HeaderEdits::default(),
        timeout_ms,
        tunnel_timeout_ms: None,
        retries: None,
        clients: None,
        source_ranges: Vec::new(),
        max_body_bytes: None,
        max_in_flight: None,
        cors: None,
        state: None,
        deprecation: None,
    }
}

fn client_entry(client: &Client, owner: &Owner<'_>) -> ClientEntry {
    ClientEntry {
        name: client.name.clone(),
        api_key: client.api_keys.as_ref().map(|k| ApiKeyEntry {
            secret: k.secret_ref.name.clone(),
            header: k.header.to_ascii_lowercase(),
        }),
        jwt: client.jwt.as_ref().map(|j| JwtEntry {
            issuer: j.issuer.clone(),
            audiences: sorted(j.audiences.clone()),
            jwks_secret: j.jwks_secret_ref.name.clone(),
        }),
        certificate: client
            .client_certificate
            .as_ref()
            .map(|c| ClientCertificateEntry {
                ca_secret: c.ca_secret_ref.name.clone(),
                names: c.names.clone(),
            }),
        max_in_flight: client.max_in_flight.and_then(|m| u32::try_from(m).ok()),
        rate_limit: rate_limits::rate_limit_entry(client, owner),
    }
}

fn source(
    kind: Kind,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> TableSource {
    TableSource {
        kind: kind.as_str().to_owned(),
        namespace: meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        name: meta.name.clone().unwrap_or_default(),
        generation: meta.generation,
    }
}

fn finish<T>(problems: Vec<Problem>, table: impl FnOnce() -> T) -> Result<T, Vec<Problem>> {
    if problems.is_empty() {
        Ok(table())
    } else {
        Err(problems)
    }
}

/// A Gateway or EdgeService compiled: its table, and how each Contract it exposes fared.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The route table.
    pub table: RouteTable,
    /// Each Contract its `expose` picked, and whether it is served, by namespace and name.
    pub exposed: Vec<ExposedContract>,
    /// `expose` entries that resolve to nothing.
    pub unresolved: Vec<Unresolved>,
    /// What this compile made of each exposed Contract, for the next compile of the same
    /// resource ([`CompileContext::compiled`]).
    pub contracts: ContractCache,
    /// Versions retired or removed although clients called them within the usage window,
    /// because their object's annotation said so: what the operator's Warning Events say.
    pub retired_in_use: Vec<String>,
}

impl Compiled {
    /// The table when every `expose` entry resolves and every exposed Contract is served as
    /// it is now; else every reason why not. What `render` and standalone mode serve, where
    /// nothing of an older table can be kept.
    pub fn strict(self) -> Result<RouteTable, Vec<Problem>> {
        let mut problems: Vec<Problem> = self
            .unresolved
            .into_iter()
            .map(|u| Problem::new(u.at, u.message))
            .collect();
        problems.extend(self.exposed.into_iter().filter_map(|e| {
            let reason = e.reason?;
            Some(Problem::new(
                format!("Contract {}/{}", e.namespace, e.name),
                format!("{reason}: {}", e.message.unwrap_or_default()),
            ))
        }));
        finish(problems, || self.table)
    }
}

/// The Contracts of `expose` served after the inline routes: the table's routes and contracts.
fn with_exposed(
    mut table: RouteTable,
    mut retired_in_use: Vec<String>,
    exposer: exposed::ExposerScope<'_>,
    expose: &[crate::crd::ContractExposure],
) -> Compiled {
    let resolution = exposure::resolve(&exposer.exposer, expose, &exposer.context.catalog);
    let mut served = exposed::serve(&exposer, &resolution, &table.routes);
    retired_in_use.append(&mut served.retired_in_use);
    served.cache.promised_inline = table
        .routes
        .iter()
        .filter(|r| r.state.is_some())
        .cloned()
        .collect();
    table.routes.extend(served.routes);
    table.routes.sort_by(|a, b| a.id.cmp(&b.id));
    table.contracts = served.sources;
    Compiled {
        table,
        exposed: served.outcomes,
        unresolved: resolution.unresolved,
        contracts: served.cache,
        retired_in_use,
    }
}

/// Compiles a Gateway; refuses it, with every problem, when it is invalid. Every Contract it
/// exposes must be served as it is now (see [`Compiled::strict`]).
pub fn compile_gateway(
    gateway: &Gateway,
    context: &CompileContext,
) -> Result<RouteTable, Vec<Problem>> {
    compile_gateway_over(gateway, context, None)?.strict()
}

/// Compiles a Gateway that replaces the table `previous`: a Contract it exposes that cannot
/// be served as it is now keeps the routes `previous` serves of it. Refuses the Gateway, with
/// every problem, when its own spec is invalid.
pub fn compile_gateway_over(
    gateway: &Gateway,
    context: &CompileContext,
    previous: Option<&RouteTable>,
) -> Result<Compiled, Vec<Problem>> {
    let source = source(Kind::Gateway, &gateway.metadata);
    let spec = &gateway.spec;
    let mut problems = validate::validate_gateway(spec);
    problems.extend(rate_limits::check_redis(
        (spec.clients.iter().enumerate()).map(|(i, c)| (format!("spec.clients[{i}]"), c)),
        spec.redis.as_ref(),
        context,
    ));
    if !problems.is_empty() {
        return Err(problems);
    }
    {
        let owner = source.owner();
        let mut clients: Vec<ClientEntry> = spec
            .clients
            .iter()
            .map(|c| client_entry(c, &owner))
            .collect();
        clients.sort_by(|a, b| a.name.cmp(&b.name));
        proxy_table(
            ProxyParts {
                source: &source,
                kind: ExposingKind::Gateway,
                contracts: &spec.contracts,
                expose: &spec.expose,
                listeners: spec.listeners.as_ref(),
                access: spec.access.as_ref(),
                client_address: spec.client_address.as_ref(),
                limits: spec.limits.as_ref(),
                known: ExposerClients::Gateway(&spec.clients),
                retire_anyway: usage::retire_anyway(gateway.metadata.annotations.as_ref()),
            },
            RouteTable {
                redis: rate_limits::redis_entry(
                    &spec.clients,
                    spec.redis.as_ref(),
                    context.redis.as_ref(),
                ),
                edge_client: None,
                clients,
                ..RouteTable::empty(source.clone())
            },
            context,
            previous,
        )
    }
}

/// What a Gateway and an EdgeService compile the same way.
struct ProxyParts<'a> {
    source: &'a TableSource,
    kind: ExposingKind,
    contracts: &'a [ContractVersion],
    expose: &'a [crate::crd::ContractExposure],
    listeners: Option<&'a Listeners>,
    access: Option<&'a Access>,
    client_address: Option<&'a ClientAddress>,
    limits: Option<&'a RequestLimits>,
    known: ExposerClients<'a>,
    /// The inline versions its annotation lets go although in use.
    retire_anyway: BTreeSet<String>,
}

/// The table of a Gateway or EdgeService: `table` (its clients and Redis) with its listeners,
/// access rules, inline contracts and the Contracts it exposes. Refused, with every break,
/// when the inline contracts change a published version of `previous` in a breaking way.
fn proxy_table(
    parts: ProxyParts<'_>,
    table: RouteTable,
    context: &CompileContext,
    previous: Option<&RouteTable>,
) -> Result<Compiled, Vec<Problem>> {
    let scope = Scope {
        namespace: &parts.source.namespace,
        context,
        limits: parts.limits,
    };
    let routes = scope.contracts(parts.contracts);
    // What clients were promised: the served table's inline routes, else the last compile's.
    let promised = |r: &&RouteEntry| versioning::is_inline(r) && r.state.is_some();
    let before: Vec<&RouteEntry> = match (previous, context.compiled.as_deref()) {
        (Some(previous), _) => previous.routes.iter().filter(promised).collect(),
        (None, Some(last)) => last.promised_inline.iter().collect(),
        (None, None) => Vec::new(),
    };
    let breaking = versioning::breaking_problems(&versioning::classify(
        "spec.contracts",
        before.iter().copied(),
        &routes,
    ));
    if !breaking.is_empty() {
        return Err(breaking);
    }
    let source = parts.source;
    let owner = format!("{} {}/{}", source.kind, source.namespace, source.name);
    let retirements = retire::check(
        "spec.contracts",
        (None, &owner),
        before,
        &routes,
        context.in_use.as_deref(),
        &parts.retire_anyway,
    );
    if !retirements.refused.is_empty() {
        return Err(retirements.refused);
    }
    let table = RouteTable {
        tls: tls_entry(parts.listeners),
        https_redirect_port: https_redirect_port(parts.listeners),
        routes,
        client_address: client_address_entry(parts.client_address),
        source_ranges: gateway_source_ranges(parts.access),
        ..table
    };
    let who = Exposer {
        kind: parts.kind,
        namespace: &parts.source.namespace,
        name: &parts.source.name,
    };
    let exposer = exposed::ExposerScope {
        // Only what exposes Contracts needs one.
        fingerprint: if parts.expose.is_empty() {
            String::new()
        } else {
            exposed::fingerprint(&who, parts.known, context, parts.limits)
        },
        exposer: who,
        clients: parts.known,
        context,
        limits: parts.limits,
        previous,
        cache: context.compiled.as_deref(),
    };
    Ok(with_exposed(
        table,
        retirements.anyway,
        exposer,
        parts.expose,
    ))
}

/// The HTTPS listener's certificates and policy, in the table's own terms.
fn tls_entry(listeners: Option<&Listeners>) -> Option<TlsEntry> {
    let https = listeners?.https.as_ref()?;
    Some(TlsEntry {
        certificates: https
            .certificates
            .iter()
            .map(|c| CertificateEntry {
                secret: c.secret_name.clone(),
                hosts: c.hosts.clone(),
            })
            .collect(),
        unknown_server_name: match https.unknown_server_name {
            UnknownServerNamePolicy::Default => UnknownServerName::Default,
            UnknownServerNamePolicy::Refuse => UnknownServerName::Refuse,
        },
        min_version: match https.min_version {
            MinTlsVersion::Tls12 => TlsVersion::Tls12,
            MinTlsVersion::Tls13 => TlsVersion::Tls13,
        },
    })
}

/// The HTTPS port plain HTTP redirects to, when the plain listener only redirects.
fn https_redirect_port(listeners: Option<&Listeners>) -> Option<u16> {
    let listeners = listeners?;
    let redirects = listeners.http.as_ref()?.mode == HttpMode::RedirectToHttps;
    let port = listeners.https.as_ref()?.port;
    redirects.then(|| u16::try_from(port).ok()).flatten()
}

/// Compiles an EdgeService; refuses it, with every problem, when it is invalid. Every Contract
/// it exposes must be served as it is now (see [`Compiled::strict`]).
pub fn compile_edge_service(
    edge: &EdgeService,
    context: &CompileContext,
) -> Result<RouteTable, Vec<Problem>> {
    compile_edge_service_over(edge, context, None)?.strict()
}

/// Compiles an EdgeService that replaces the table `previous` (see [`compile_gateway_over`]).
pub fn compile_edge_service_over(
    edge: &EdgeService,
    context: &CompileContext,
    previous: Option<&RouteTable>,
) -> Result<Compiled, Vec<Problem>> {
    let source = source(Kind::EdgeService, &edge.metadata);
    let spec = &edge.spec;
    let mut problems = validate::validate_edge_service(spec);
    problems.extend(rate_limits::check_redis(
        [("spec.client".to_owned(), &spec.client)],
        spec.redis.as_ref(),
        context,
    ));
    if !problems.is_empty() {
        return Err(problems);
    }
    {
        proxy_table(
            ProxyParts {
                source: &source,
                kind: ExposingKind::EdgeService,
                contracts: &spec.contracts,
                expose: &spec.expose,
                listeners: spec.listeners.as_ref(),
                access: spec.access.as_ref(),
                client_address: spec.client_address.as_ref(),
                limits: spec.limits.as_ref(),
                known: ExposerClients::Edge(&spec.client),
                retire_anyway: usage::retire_anyway(edge.metadata.annotations.as_ref()),
            },
            RouteTable {
                redis: rate_limits::redis_entry(
                    [&spec.client],
                    spec.redis.as_ref(),
                    context.redis.as_ref(),
                ),
                edge_client: Some(spec.client.name.clone()),
                clients: vec![client_entry(&spec.client, &source.owner())],
                ..RouteTable::empty(source.clone())
            },
            context,
            previous,
        )
    }
}

/// Compiles an Aggregator; refuses it, with every problem, when it is invalid.
pub fn compile_aggregator(
    aggregator: &Aggregator,
    context: &CompileContext,
) -> Result<RouteTable, Vec<Problem>> {
    let source = source(Kind::Aggregator, &aggregator.metadata);
    finish(validate::validate_aggregator(&aggregator.spec), || {
        let scope = Scope {
            namespace: &source.namespace,
            context,
            limits: None,
        };
        let mut routes: Vec<RouteEntry> = aggregator
            .spec
            .endpoints
            .iter()
            .map(|endpoint| {
                let plan = scope.aggregate(&endpoint.aggregation);
                let timeout_ms = plan.timeout_ms;
                match_entry(
                    endpoint.name.clone(),
                    None,
                    endpoint.matches.path.clone(),
                    &endpoint.matches,
                    Action::Aggregate(plan),
                    timeout_ms,
                )
            })
            .collect();
        routes.sort_by(|a, b| a.id.cmp(&b.id));
        RouteTable {
            routes,
            ..RouteTable::empty(source.clone())
        }
    })
}
