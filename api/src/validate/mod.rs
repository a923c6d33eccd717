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

use crate::crd::{AggregatorSpec, EdgeServiceSpec, GatewaySpec};

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
    let mut problems = Vec::new();
    routes::check_contracts(&spec.contracts, &mut problems);
    access::check_gateway_access(
        spec.access.as_ref(),
        spec.client_address.as_ref(),
        &mut problems,
    );
    access::check_contracts_access(
        &spec.contracts,
        &access::KnownClients::Gateway(&spec.clients),
        &mut problems,
    );
    problems
}

/// Validates an EdgeService's spec.
pub fn validate_edge_service(spec: &EdgeServiceSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    routes::check_contracts(&spec.contracts, &mut problems);
    access::check_gateway_access(
        spec.access.as_ref(),
        spec.client_address.as_ref(),
        &mut problems,
    );
    access::check_contracts_access(
        &spec.contracts,
        &access::KnownClients::Edge(&spec.client),
        &mut problems,
    );
    problems
}

/// Validates an Aggregator's spec.
pub fn validate_aggregator(spec: &AggregatorSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    routes::check_endpoints(&spec.endpoints, &mut problems);
    problems
}
