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

use crate::crd::{Access, AggregatorSpec, ClientAddress, Contract, EdgeServiceSpec, GatewaySpec};

/// One thing wrong with a resource, and where.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Field path, e.g. `spec.contracts[0].routes[2].backend.path`.
    pub path: String,
    /// What is wrong, in the user's terms.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
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
    contracts: &[Contract],
    gateway_access: Option<&Access>,
    client_address: Option<&ClientAddress>,
    known: &access::KnownClients<'_>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    routes::check_contracts(contracts, &mut problems);
    access::check_gateway_access(gateway_access, client_address, &mut problems);
    access::check_contracts_access(contracts, known, &mut problems);
    problems
}

/// Validates an Aggregator's spec.
pub fn validate_aggregator(spec: &AggregatorSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    routes::check_endpoints(&spec.endpoints, &mut problems);
    problems
}
