//! The pure core shared by `render` and the controllers: what was found → compile → build.
//!
//! `plan` never touches the cluster. The controllers feed it what dereference read from the API
//! server; `render` feeds it what the input files hold and assumes every other reference exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use gatehouse_api::certificate::CertificateError;
use gatehouse_api::compile::{CompileContext, ContractCache};
use gatehouse_api::crd::ExposedContract;
use gatehouse_api::exposure::{Catalog, Unresolved};
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::{MAX_TABLE_BYTES, RouteTable};
use gatehouse_api::usage::InUse;
use gatehouse_api::validate::Problem;

use crate::objects::{self, ProxyObjects};
use crate::references::{References, SecretUse};
use crate::settings::ProxySettings;

/// What exists in a resource's namespace, as far as its references go.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    /// Services that exist; `None` when unknown (offline): every Service reference resolves.
    pub services: Option<BTreeSet<String>>,
    /// Services that exist in the namespaces of the exposed Contracts; a namespace not listed
    /// is unknown (offline), and its Services resolve.
    pub contract_services: BTreeMap<String, BTreeSet<String>>,
    /// Aggregators known to exist, with their Service port.
    pub aggregators: BTreeMap<String, u16>,
    /// True when `aggregators` lists every Aggregator of the namespace; false offline, where an
    /// Aggregator missing from the input is assumed to exist with the default port.
    pub aggregators_complete: bool,
    /// Secrets that give no certificate for their use, with why; empty when unknown (offline).
    pub certificate_problems: BTreeMap<(SecretUse, String), CertificateError>,
    /// The Contracts and ContractGrants the resource may expose (of every namespace).
    pub catalog: Arc<Catalog>,
    /// What the last plan of this resource made of its Contracts ([`Plan::contracts`]).
    pub compiled: Option<Arc<ContractCache>>,
    /// Who called its contract versions lately; `None` offline (nothing is known in use).
    pub in_use: Option<Arc<InUse>>,
}

/// A reference to something that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MissingRef {
    /// A Service.
    Service(String),
    /// A Service of an exposed Contract, in the Contract's namespace.
    ContractService {
        /// The namespace (the Contracts').
        namespace: String,
        /// The Service.
        service: String,
        /// The Contracts that name it.
        contracts: Vec<String>,
    },
    /// An Aggregator.
    Aggregator(String),
    /// A certificate Secret that is missing or gives no certificate for its use.
    Certificate(SecretUse, CertificateError),
}

impl MissingRef {
    /// False for a Service of exposed Contracts none of which `exposed` says is served at its
    /// current generation: what they name now is not what is served (or nothing is).
    pub fn matters(&self, exposed: &[ExposedContract]) -> bool {
        let Self::ContractService {
            namespace,
            contracts,
            ..
        } = self
        else {
            return true;
        };
        exposed.iter().any(|e| {
            e.state == gatehouse_api::crd::ExposureState::Served
                && e.namespace == *namespace
                && contracts.contains(&e.name)
        })
    }
}

impl fmt::Display for MissingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Service(name) => write!(f, "Service {name:?} not found"),
            Self::ContractService {
                namespace,
                service,
                contracts,
            } => {
                let named: Vec<String> = contracts
                    .iter()
                    .map(|c| format!("{namespace}/{c}"))
                    .collect();
                let plural = if contracts.len() == 1 { "" } else { "s" };
                write!(
                    f,
                    "Service {service:?} of namespace {namespace} (named by Contract{plural} {}) not found",
                    named.join(", ")
                )
            }
            Self::Aggregator(name) => write!(f, "Aggregator {name:?} not found"),
            Self::Certificate(_, problem) => write!(f, "{problem}"),
        }
    }
}

/// Everything the operator wants in the cluster for one valid resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The compiled route table.
    pub table: RouteTable,
    /// The objects to apply.
    pub objects: ProxyObjects,
    /// How each Contract resource it exposes fared, by namespace and name.
    pub exposed: Vec<ExposedContract>,
    /// Its `expose` entries that resolve to no Contract.
    pub unresolved: Vec<Unresolved>,
    /// What it made of each exposed Contract, for the next plan ([`Found::compiled`]).
    pub contracts: ContractCache,
    /// Versions it retires although clients called them lately, as their annotation allows:
    /// each a Warning Event once the table is written.
    pub retired_in_use: Vec<String>,
}

impl Found {
    /// The references that do not resolve, sorted (Services, the exposed Contracts' Services,
    /// Aggregators, certificates).
    pub fn missing(&self, references: &References) -> Vec<MissingRef> {
        let services = references
            .services
            .iter()
            .filter(|name| self.services.as_ref().is_some_and(|s| !s.contains(*name)))
            .map(|name| MissingRef::Service(name.clone()));
        let contract_services = references
            .contract_services
            .iter()
            .filter(|((namespace, service), _)| {
                self.contract_services
                    .get(namespace)
                    .is_some_and(|s| !s.contains(service))
            })
            .map(
                |((namespace, service), contracts)| MissingRef::ContractService {
                    namespace: namespace.clone(),
                    service: service.clone(),
                    contracts: contracts.iter().cloned().collect(),
                },
            );
        let aggregators = references
            .aggregators
            .iter()
            .filter(|name| self.aggregators_complete && !self.aggregators.contains_key(*name))
            .map(|name| MissingRef::Aggregator(name.clone()));
        let certificates = references
            .secrets
            .iter()
            .filter_map(|key| Some((key.0, self.certificate_problems.get(key)?)))
            .map(|(used, problem)| MissingRef::Certificate(used, problem.clone()));
        services
            .chain(contract_services)
            .chain(aggregators)
            .chain(certificates)
            .collect()
    }

    /// What compile needs from the namespace.
    pub fn compile_context(&self, settings: &ProxySettings) -> CompileContext {
        CompileContext {
            cluster_domain: settings.cluster_domain.clone(),
            aggregator_ports: self.aggregators.clone(),
            redis: settings.redis.clone(),
            redis_from_proxy: false,
            catalog: self.catalog.clone(),
            compiled: self.compiled.clone(),
            in_use: self.in_use.clone(),
        }
    }
}

/// Compiles the resource and builds its objects; refuses an invalid spec with every problem,
/// and a spec whose route table is too big for its ConfigMap. Every Contract it exposes must
/// resolve and be served as it is now ([`gatehouse_api::compile::Compiled::strict`]): what `render` asks, where no
/// older table exists to keep a Contract's last good routes from.
/// Missing references do not stop it: those routes compile to Services that do not answer yet.
pub fn plan(
    resource: &Resource,
    found: &Found,
    settings: &ProxySettings,
) -> Result<Plan, Vec<Problem>> {
    let table = resource
        .compile_over(&found.compile_context(settings), None)?
        .strict()?;
    build(resource, table, Outcome::default(), settings)
}

/// [`plan`] for the table that replaces `previous` (what the route ConfigMap holds): an exposed
/// Contract that cannot be served as it is now keeps the routes `previous` serves of it, and
/// one that resolves to nothing leaves the rest served. Only the resource's own spec, or a
/// table too big, refuses it; how each Contract fared is in [`Plan::exposed`] and
/// [`Plan::unresolved`]. What the controllers apply.
pub fn plan_over(
    resource: &Resource,
    found: &Found,
    settings: &ProxySettings,
    previous: Option<&RouteTable>,
) -> Result<Plan, Vec<Problem>> {
    let compiled = resource.compile_over(&found.compile_context(settings), previous)?;
    let gatehouse_api::compile::Compiled {
        table,
        exposed,
        unresolved,
        contracts,
        retired_in_use,
    } = compiled;
    build(
        resource,
        table,
        Outcome {
            exposed,
            unresolved,
            contracts,
            retired_in_use,
        },
        settings,
    )
}

/// How a plan's Contracts fared: [`Plan`]'s fields of the same names.
#[derive(Default)]
struct Outcome {
    exposed: Vec<ExposedContract>,
    unresolved: Vec<Unresolved>,
    contracts: ContractCache,
    retired_in_use: Vec<String>,
}

/// The objects of a compiled table; refuses a table too big for its ConfigMap.
fn build(
    resource: &Resource,
    table: RouteTable,
    Outcome {
        exposed,
        unresolved,
        contracts,
        retired_in_use,
    }: Outcome,
    settings: &ProxySettings,
) -> Result<Plan, Vec<Problem>> {
    let objects = objects::render(resource, &table, settings);
    let config_map = &objects.config_map;
    let plain = config_map.data.iter().flatten().map(|(_, v)| v.len());
    let packed = config_map
        .binary_data
        .iter()
        .flatten()
        .map(|(_, v)| v.0.len());
    let size: usize = plain.chain(packed).sum();
    if size > MAX_TABLE_BYTES {
        // The API server would refuse the ConfigMap; say why here instead of failing every apply.
        let gzipped = if config_map.binary_data.is_some() {
            " gzipped"
        } else {
            ""
        };
        return Err(vec![Problem::new(
            "spec",
            format!(
                "the compiled route table takes {size} bytes{gzipped}, more than the \
                 {MAX_TABLE_BYTES} a ConfigMap can hold: split the routes across several resources"
            ),
        )]);
    }
    Ok(Plan {
        table,
        objects,
        exposed,
        unresolved,
        contracts,
        retired_in_use,
    })
}

/// `NAME-gateway.NS.svc.DOMAIN:PORT`: where clients in the cluster reach the proxy.
pub fn service_address(resource: &Resource, settings: &ProxySettings) -> String {
    let name = gatehouse_api::naming::proxy_name(resource.kind(), resource.name());
    let port = objects::runtime_settings(resource).1.port;
    format!(
        "{name}.{}.svc.{}:{port}",
        resource.namespace(),
        settings.cluster_domain
    )
}
