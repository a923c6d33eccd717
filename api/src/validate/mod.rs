//! Validation of what the CRD schema cannot check: references between fields, template
//! parameters, step graphs, jq rules, timeout budgets.
//!
//! Every function returns every problem at once, each with the field path a user would look
//! at (`spec.contracts[0].routes[2].backend.path: …`), never just the first.

mod access;
mod aggregation;
pub(crate) mod routes;
mod table;

use std::fmt;

pub use aggregation::check_step_graph;
pub use routes::base_path as routes_base_path;
pub use table::check_table;

use crate::crd::{
    Access, AggregatorSpec, Client, ClientAddress, ContractSpec, ContractVersion, EdgeServiceSpec,
    GatewaySpec,
};

/// One thing wrong with a resource, and where.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Field path, e.g. `spec.contracts[0].routes[2].backend.path`.
    pub path: String,
    /// What is wrong, in the user's terms.
    pub message: String,
    /// Whether the spec is wrong on its own, or breaks what clients were promised.
    pub kind: ProblemKind,
}

/// What kind of problem a [`Problem`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The spec is wrong on its own.
    #[default]
    Invalid,
    /// The spec is valid, but changes a published contract version in a way that breaks its
    /// clients (see [`crate::versioning`]).
    BreakingChange,
    /// The spec is valid, but retires or removes a contract version that clients called
    /// within the usage window (see [`crate::usage`]).
    VersionInUse,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            kind: ProblemKind::Invalid,
        }
    }

    /// A breaking change at `path`.
    pub fn breaking(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ProblemKind::BreakingChange,
            ..Self::new(path, message)
        }
    }

    /// A retirement of a version clients still call, at `path`.
    pub fn in_use(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ProblemKind::VersionInUse,
            ..Self::new(path, message)
        }
    }
}

/// The reason a resource with these problems is not accepted: `Invalid` when any of them is
/// invalid, else `BreakingChange` when any breaks a published version, else `VersionInUse`.
pub fn reason(problems: &[Problem]) -> &'static str {
    match problems.iter().map(|p| p.kind).min() {
        None | Some(ProblemKind::Invalid) => "Invalid",
        Some(ProblemKind::BreakingChange) => "BreakingChange",
        Some(ProblemKind::VersionInUse) => "VersionInUse",
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Problems joined with `; `, for one-line messages (status conditions, logs).
pub fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Validates a Gateway's spec.
pub fn validate_gateway(spec: &GatewaySpec) -> Vec<Problem> {
    validate_proxy(
        &spec.contracts,
        spec.access.as_ref(),
        spec.client_address.as_ref(),
        &access::KnownClients::Gateway(&spec.clients),
    )
}

/// Validates an EdgeService's spec.
pub fn validate_edge_service(spec: &EdgeServiceSpec) -> Vec<Problem> {
    validate_proxy(
        &spec.contracts,
        spec.access.as_ref(),
        spec.client_address.as_ref(),
        &access::KnownClients::Edge(&spec.client),
    )
}

/// What a Gateway and an EdgeService share: contracts and their routes, and access rules.
fn validate_proxy(
    contracts: &[ContractVersion],
    gateway_access: Option<&Access>,
    client_address: Option<&ClientAddress>,
    known: &access::KnownClients<'_>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    routes::check_contracts(INLINE, contracts, &mut problems);
    access::check_gateway_access(gateway_access, client_address, &mut problems);
    access::check_contracts_access(INLINE, contracts, known, &mut problems);
    problems
}

/// Field of a Gateway's or EdgeService's inline contracts.
const INLINE: &str = "spec.contracts";
/// Field of a Contract's versions.
const VERSIONS: &str = "spec.versions";

/// Validates a Contract on its own: what the schema cannot check of its versions and routes.
/// The clients its access rules name are checked where it is exposed
/// ([`validate_exposed_versions`]).
pub fn validate_contract(spec: &ContractSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    routes::check_contracts(VERSIONS, &spec.versions, &mut problems);
    access::check_contracts_access(
        VERSIONS,
        &spec.versions,
        &access::KnownClients::Any,
        &mut problems,
    );
    problems
}

/// The clients a Contract's access rules name that the exposing Gateway (its `clients`) or
/// EdgeService (its `client`) does not have; paths are the Contract's (`spec.versions[…]`).
pub fn validate_exposed_versions(spec: &ContractSpec, exposer: ExposerClients<'_>) -> Vec<Problem> {
    let known = match exposer {
        ExposerClients::Gateway(clients) => access::KnownClients::Gateway(clients),
        ExposerClients::Edge(client) => access::KnownClients::Edge(client),
    };
    let mut problems = Vec::new();
    access::check_contracts_access(VERSIONS, &spec.versions, &known, &mut problems);
    problems
}

/// The clients of a resource that exposes contracts.
#[derive(Clone, Copy, Debug)]
pub enum ExposerClients<'a> {
    /// A Gateway's `spec.clients`.
    Gateway(&'a [Client]),
    /// An EdgeService's `spec.client`.
    Edge(&'a Client),
}

/// Validates an Aggregator's spec.
pub fn validate_aggregator(spec: &AggregatorSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    routes::check_endpoints(&spec.endpoints, &mut problems);
    problems
}
