//! Checks of the access rules: address ranges that parse, client names that name a client
//! who can be recognised and whom the enclosing contract lets in, and CORS policies.

use super::Problem;
use crate::crd::{Access, Client, ClientAddress, ContractVersion, Cors, SourceRanges};
use crate::{duration, prepare};

/// The clients access rules may name: a Gateway's `spec.clients`, or an EdgeService's one
/// client.
pub(super) enum KnownClients<'a> {
    /// A Gateway's clients; a named client must be recognisable by some credential.
    Gateway(&'a [Client]),
    /// An EdgeService's client: every request is its.
    Edge(&'a Client),
    /// Not known yet (a Contract checked on its own): every name may be one.
    Any,
}

impl KnownClients<'_> {
    /// Why `name` cannot be allowed, if it cannot.
    fn refuse(&self, name: &str) -> Option<String> {
        match self {
            Self::Gateway(clients) => match clients.iter().find(|c| c.name == name) {
                None => Some(format!("spec.clients has no client named {name}")),
                Some(c)
                    if c.api_keys.is_none()
                        && c.jwt.is_none()
                        && c.client_certificate.is_none() =>
                {
                    Some(format!(
                        "client {name} has no apiKeys, jwt or clientCertificate, so no request is ever recognised as it"
                    ))
                }
                Some(_) => None,
            },
            Self::Edge(client) => (client.name != name).then(|| {
                format!(
                    "this EdgeService serves client {} only, not {name}",
                    client.name
                )
            }),
            Self::Any => None,
        }
    }
}

/// Checks every range of a list.
pub(super) fn check_ranges(at: &str, ranges: &[String], problems: &mut Vec<Problem>) {
    for (i, text) in ranges.iter().enumerate() {
        if let Err(message) = prepare::address_range(text) {
            problems.push(Problem::new(format!("{at}[{i}]"), message));
        }
    }
}

/// Checks the ranges of an allow list and a deny list at `at`.
pub(super) fn check_allow_deny(
    at: &str,
    allow: &[String],
    deny: &[String],
    problems: &mut Vec<Problem>,
) {
    check_ranges(&format!("{at}.allow"), allow, problems);
    check_ranges(&format!("{at}.deny"), deny, problems);
}

fn check_source_ranges(at: &str, ranges: &SourceRanges, problems: &mut Vec<Problem>) {
    check_allow_deny(at, &ranges.allow, &ranges.deny, problems);
}

/// Checks a Gateway's or EdgeService's own `access` and `clientAddress`.
pub(super) fn check_gateway_access(
    access: Option<&Access>,
    client_address: Option<&ClientAddress>,
    problems: &mut Vec<Problem>,
) {
    if let Some(ranges) = access.and_then(|a| a.source_ranges.as_ref()) {
        check_source_ranges("spec.access.sourceRanges", ranges, problems);
    }
    if let Some(address) = client_address {
        check_ranges(
            "spec.clientAddress.trustedProxies",
            &address.trusted_proxies,
            problems,
        );
    }
}

/// Checks the `access` of every contract and route; `field` is the contracts' list
/// (`spec.contracts`, or a Contract's `spec.versions`).
pub(super) fn check_contracts_access(
    field: &str,
    contracts: &[ContractVersion],
    known: &KnownClients<'_>,
    problems: &mut Vec<Problem>,
) {
    for (c, contract) in contracts.iter().enumerate() {
        let contract_at = format!("{field}[{c}].access");
        let contract_clients = contract.access.as_ref().map(|a| a.clients.as_slice());
        if let Some(access) = &contract.access {
            check_access(&contract_at, access, known, None, problems);
        }
        if let Some(cors) = &contract.cors {
            check_cors(&format!("{field}[{c}].cors"), cors, problems);
        }
        for (r, route) in contract.routes.iter().enumerate() {
            if let Some(cors) = &route.cors {
                check_cors(&format!("{field}[{c}].routes[{r}].cors"), cors, problems);
            }
            if let Some(access) = &route.access {
                let parent = contract_clients
                    .filter(|clients| !clients.is_empty())
                    .map(|clients| (contract_at.as_str(), clients, contract.version.as_str()));
                let at = format!("{field}[{c}].routes[{r}].access");
                check_access(&at, access, known, parent, problems);
            }
        }
    }
}

/// Checks one `access`; `parent` is the enclosing contract's client list (its field path,
/// the list, its version), when it has one.
fn check_access(
    at: &str,
    access: &Access,
    known: &KnownClients<'_>,
    parent: Option<(&str, &[String], &str)>,
    problems: &mut Vec<Problem>,
) {
    if let Some(ranges) = &access.source_ranges {
        check_source_ranges(&format!("{at}.sourceRanges"), ranges, problems);
    }
    for (i, name) in access.clients.iter().enumerate() {
        let here = format!("{at}.clients[{i}]");
        if let Some(message) = known.refuse(name) {
            problems.push(Problem::new(here, message));
        } else if let Some((parent_at, allowed, version)) = parent
            && !allowed.contains(name)
        {
            problems.push(Problem::new(
                here,
                format!("contract {version} lets only the clients of {parent_at}.clients call, and {name} is not one of them: a route can narrow its contract's access, not widen it"),
            ));
        }
    }
}

/// Checks what the schema's patterns leave open: ports and the preflight cache duration.
fn check_cors(at: &str, cors: &Cors, problems: &mut Vec<Problem>) {
    for (i, origin) in cors.allow_origins.iter().enumerate() {
        if let Err(message) = prepare::cors_origin(origin) {
            problems.push(Problem::new(format!("{at}.allowOrigins[{i}]"), message));
        }
    }
    if let Some(Err(message)) = cors.max_age.as_deref().map(duration::parse_millis) {
        problems.push(Problem::new(format!("{at}.maxAge"), message));
    }
}
