//! compile: validated resources → RouteTable. Pure and deterministic.

use std::collections::BTreeMap;

use crate::crd::{
    Access, Aggregation, Aggregator, BackendProtocol, BackendRef, Client, ClientAddress, Contract,
    Cors, EdgeService, Gateway, HeaderModifier, HttpMode, Listeners, MinTlsVersion, PathType,
    RequestLimits, Route, RouteMatch, SourceRanges, StringMap, UnknownServerNamePolicy,
};
use crate::naming::{Kind, proxy_name};
use crate::route_table::*;
use crate::validate::{self, Problem, routes_base_path};
use crate::{duration, path, prepare};

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
}

impl Default for CompileContext {
    fn default() -> Self {
        Self {
            cluster_domain: "cluster.local".to_owned(),
            aggregator_ports: BTreeMap::new(),
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
            failure_policy: aggregation.failure_policy,
            max_step_response_bytes: u64::try_from(aggregation.max_step_response_bytes)
                .unwrap_or(0),
        }
    }

    fn route(&self, id: String, contract: &Contract, route: &Route) -> RouteEntry {
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
            .map(|cors| cors_entry(cors, &route.matches));
        let levels = [route.limits.as_ref(), contract.limits.as_ref(), self.limits];
        entry.max_body_bytes = most_specific(levels, |l| l.max_body_bytes);
        entry.max_in_flight = most_specific(levels, |l| l.max_in_flight);
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

    fn contracts(&self, contracts: &[Contract]) -> Vec<RouteEntry> {
        let mut routes: Vec<RouteEntry> = contracts
            .iter()
            .flat_map(|contract| {
                contract.routes.iter().map(move |route| {
                    self.route(
                        format!("{}/{}", contract.version, route.name),
                        contract,
                        route,
                    )
                })
            })
            .collect();
        routes.sort_by(|a, b| a.id.cmp(&b.id));
        routes
    }
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
    }
}

fn client_entry(client: &Client) -> ClientEntry {
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
        rate_limit: client.rate_limit.as_ref().map(|r| {
            let rps = u32::try_from(r.requests_per_second).unwrap_or(1);
            RateLimitEntry {
                requests_per_second: rps,
                burst: r.burst.and_then(|b| u32::try_from(b).ok()).unwrap_or(rps),
            }
        }),
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

fn finish(
    problems: Vec<Problem>,
    table: impl FnOnce() -> RouteTable,
) -> Result<RouteTable, Vec<Problem>> {
    if problems.is_empty() {
        Ok(table())
    } else {
        Err(problems)
    }
}

/// Compiles a Gateway; refuses it, with every problem, when it is invalid.
pub fn compile_gateway(
    gateway: &Gateway,
    context: &CompileContext,
) -> Result<RouteTable, Vec<Problem>> {
    let source = source(Kind::Gateway, &gateway.metadata);
    finish(validate::validate_gateway(&gateway.spec), || {
        let scope = Scope {
            namespace: &source.namespace,
            context,
            limits: gateway.spec.limits.as_ref(),
        };
        let mut clients: Vec<ClientEntry> = gateway.spec.clients.iter().map(client_entry).collect();
        clients.sort_by(|a, b| a.name.cmp(&b.name));
        RouteTable {
            tls: tls_entry(gateway.spec.listeners.as_ref()),
            https_redirect_port: https_redirect_port(gateway.spec.listeners.as_ref()),
            format: FORMAT.to_owned(),
            edge_client: None,
            clients,
            routes: scope.contracts(&gateway.spec.contracts),
            source: source.clone(),
            client_address: client_address_entry(gateway.spec.client_address.as_ref()),
            source_ranges: gateway_source_ranges(gateway.spec.access.as_ref()),
        }
    })
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

/// Compiles an EdgeService; refuses it, with every problem, when it is invalid.
pub fn compile_edge_service(
    edge: &EdgeService,
    context: &CompileContext,
) -> Result<RouteTable, Vec<Problem>> {
    let source = source(Kind::EdgeService, &edge.metadata);
    finish(validate::validate_edge_service(&edge.spec), || {
        let scope = Scope {
            namespace: &source.namespace,
            context,
            limits: edge.spec.limits.as_ref(),
        };
        RouteTable {
            tls: tls_entry(edge.spec.listeners.as_ref()),
            https_redirect_port: https_redirect_port(edge.spec.listeners.as_ref()),
            format: FORMAT.to_owned(),
            edge_client: Some(edge.spec.client.name.clone()),
            clients: vec![client_entry(&edge.spec.client)],
            routes: scope.contracts(&edge.spec.contracts),
            source: source.clone(),
            client_address: client_address_entry(edge.spec.client_address.as_ref()),
            source_ranges: gateway_source_ranges(edge.spec.access.as_ref()),
        }
    })
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
            tls: None,
            https_redirect_port: None,
            format: FORMAT.to_owned(),
            edge_client: None,
            clients: Vec::new(),
            routes,
            source: source.clone(),
            client_address: None,
            source_ranges: None,
        }
    })
}
