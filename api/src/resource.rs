//! Gatehouse objects read from YAML the way `kubectl apply` would read them: the three
//! resources that run proxies, and the Contracts and ContractGrants they expose.

use std::sync::Arc;

use serde::Deserialize;

use crate::compile::{
    CompileContext, Compiled, compile_aggregator, compile_edge_service, compile_edge_service_over,
    compile_gateway, compile_gateway_over,
};
use crate::crd::{Aggregator, Contract, ContractGrant, CrdKind, EdgeService, Gateway};
use crate::exposure::Catalog;
use crate::naming::Kind;
use crate::route_table::RouteTable;
use crate::validate::Problem;

/// API group and version of every Gatehouse resource.
pub const API_VERSION: &str = "gatehouse.dev/v1alpha1";

/// A Gateway, EdgeService or Aggregator.
// A resource is read once per reconcile or render, never held by the thousand: the Aggregator's
// smaller size is not worth a box in every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    /// A Gateway.
    Gateway(Gateway),
    /// An EdgeService.
    EdgeService(EdgeService),
    /// An Aggregator.
    Aggregator(Aggregator),
}

/// Why a YAML document could not be read as a resource.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not YAML.
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// A document of another kind or group.
    #[error(
        "document {index} is {api_version} {kind}, not a Gatehouse object ({API_VERSION} Gateway, EdgeService, Aggregator, Contract or ContractGrant)"
    )]
    NotGatehouse {
        /// Position in the stream, from 0.
        index: usize,
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
    },
    /// A Contract or ContractGrant where only resources that run proxies are read.
    #[error(
        "document {index} is a {kind}, which runs no proxy: read it with the Gateways and EdgeServices that expose it (Document::from_yaml)"
    )]
    NotAProxy {
        /// Position in the stream, from 0.
        index: usize,
        /// Its `kind`.
        kind: String,
    },
    /// Refused as the API server would refuse it (schema or CEL rule).
    #[error("{kind} {name} is invalid: {}", crate::validate::join(.problems))]
    Rejected {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// What is wrong.
        problems: Vec<Problem>,
    },
}

impl Resource {
    /// Kind of the resource.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Gateway(_) => Kind::Gateway,
            Self::EdgeService(_) => Kind::EdgeService,
            Self::Aggregator(_) => Kind::Aggregator,
        }
    }

    /// The resource's metadata, to change.
    pub fn metadata_mut(
        &mut self,
    ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Self::Gateway(r) => &mut r.metadata,
            Self::EdgeService(r) => &mut r.metadata,
            Self::Aggregator(r) => &mut r.metadata,
        }
    }

    /// The resource's metadata.
    pub fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        match self {
            Self::Gateway(r) => &r.metadata,
            Self::EdgeService(r) => &r.metadata,
            Self::Aggregator(r) => &r.metadata,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `metadata.namespace`, or `default`.
    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or("default")
    }

    /// Validates (see [`crate::validate`]) and compiles the resource; every Contract it
    /// exposes must be served as it is now ([`Compiled::strict`]).
    pub fn compile(&self, context: &CompileContext) -> Result<RouteTable, Vec<Problem>> {
        match self {
            Self::Gateway(r) => compile_gateway(r, context),
            Self::EdgeService(r) => compile_edge_service(r, context),
            Self::Aggregator(r) => compile_aggregator(r, context),
        }
    }

    /// Validates and compiles the resource as the replacement of the table `previous`: an
    /// exposed Contract that cannot be served as it is now keeps what `previous` serves of it
    /// (see [`crate::compile::compile_gateway_over`]).
    pub fn compile_over(
        &self,
        context: &CompileContext,
        previous: Option<&RouteTable>,
    ) -> Result<Compiled, Vec<Problem>> {
        match self {
            Self::Gateway(r) => compile_gateway_over(r, context, previous),
            Self::EdgeService(r) => compile_edge_service_over(r, context, previous),
            Self::Aggregator(r) => compile_aggregator(r, context).map(|table| Compiled {
                table,
                exposed: Vec::new(),
                unresolved: Vec::new(),
                contracts: Default::default(),
                retired_in_use: Vec::new(),
            }),
        }
    }

    /// The inline contracts of a Gateway or EdgeService (none for an Aggregator).
    pub fn contracts(&self) -> &[crate::crd::ContractVersion] {
        match self {
            Self::Gateway(r) => &r.spec.contracts,
            Self::EdgeService(r) => &r.spec.contracts,
            Self::Aggregator(_) => &[],
        }
    }

    /// Whether it publishes an inline contract version beyond a draft (its clients were
    /// promised it: a compile checks the change against what was served).
    pub fn publishes(&self) -> bool {
        self.contracts().iter().any(|c| !c.lifecycle.is_draft())
    }

    /// The `expose` entries of a Gateway or EdgeService (none for an Aggregator).
    pub fn expose(&self) -> &[crate::crd::ContractExposure] {
        match self {
            Self::Gateway(r) => &r.spec.expose,
            Self::EdgeService(r) => &r.spec.expose,
            Self::Aggregator(_) => &[],
        }
    }

    /// The Contracts its `expose` picks from `catalog`, oldest first, with the versions each
    /// exposes and whether a grant permits it (empty for an Aggregator).
    pub fn exposure(&self, catalog: &Catalog) -> crate::exposure::Resolution {
        let kind = match self {
            Self::Gateway(_) => crate::crd::ExposingKind::Gateway,
            Self::EdgeService(_) => crate::crd::ExposingKind::EdgeService,
            Self::Aggregator(_) => return crate::exposure::Resolution::default(),
        };
        let exposer = crate::exposure::Exposer {
            kind,
            namespace: self.namespace(),
            name: self.name(),
        };
        crate::exposure::resolve(&exposer, self.expose(), catalog)
    }

    /// Reads one document already parsed to JSON (see [`Document::from_value`]); a Contract
    /// or ContractGrant is refused.
    pub fn from_value(index: usize, value: serde_json::Value) -> Result<Self, ReadError> {
        match Document::from_value(index, value)? {
            Document::Resource(resource) => Ok(resource),
            other => Err(ReadError::NotAProxy {
                index,
                kind: other.kind().as_str().to_owned(),
            }),
        }
    }

    /// Reads every document of a YAML stream (`---`-separated), each a resource that runs a
    /// proxy. Empty documents are skipped.
    pub fn from_yaml(text: &str) -> Result<Vec<Self>, ReadError> {
        read_all(text, Self::from_value)
    }
}

/// Every non-empty document of a YAML stream, each read by `read` with its position.
fn read_all<T>(
    text: &str,
    read: impl Fn(usize, serde_json::Value) -> Result<T, ReadError>,
) -> Result<Vec<T>, ReadError> {
    let documents = crate::yaml::documents(text).map_err(ReadError::Yaml)?;
    documents
        .into_iter()
        .filter(|d| !d.is_null())
        .enumerate()
        .map(|(index, value)| read(index, value))
        .collect()
}

/// Any Gatehouse object.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Document {
    /// A Gateway, EdgeService or Aggregator.
    Resource(Resource),
    /// A Contract.
    Contract(Contract),
    /// A ContractGrant.
    ContractGrant(ContractGrant),
}

impl Document {
    /// Its kind.
    pub fn kind(&self) -> CrdKind {
        match self {
            Self::Resource(r) => r.kind().into(),
            Self::Contract(_) => CrdKind::Contract,
            Self::ContractGrant(_) => CrdKind::ContractGrant,
        }
    }

    /// Reads one document already parsed to JSON: checks it the way the API server would
    /// (schema, then CEL rules, see [`crate::admission`]) and deserialises it.
    pub fn from_value(index: usize, mut value: serde_json::Value) -> Result<Self, ReadError> {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        let name = value
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let Some(known) = CrdKind::parse(&kind).filter(|_| api_version == API_VERSION) else {
            return Err(ReadError::NotGatehouse {
                index,
                api_version,
                kind,
            });
        };
        let rejected = |problems| ReadError::Rejected {
            kind: kind.clone(),
            name: name.clone(),
            problems,
        };
        // Admitted as the server stores it: with the schema's defaults.
        crate::admission::admit(known, &mut value).map_err(rejected)?;
        let parsed = match known {
            CrdKind::Gateway => {
                Gateway::deserialize(&value).map(|r| Self::Resource(Resource::Gateway(r)))
            }
            CrdKind::EdgeService => {
                EdgeService::deserialize(&value).map(|r| Self::Resource(Resource::EdgeService(r)))
            }
            CrdKind::Aggregator => {
                Aggregator::deserialize(&value).map(|r| Self::Resource(Resource::Aggregator(r)))
            }
            CrdKind::Contract => Contract::deserialize(&value).map(Self::Contract),
            CrdKind::ContractGrant => ContractGrant::deserialize(&value).map(Self::ContractGrant),
        };
        parsed.map_err(|e| rejected(vec![Problem::new("", e.to_string())]))
    }

    /// Reads every document of a YAML stream (`---`-separated). Empty documents are skipped.
    pub fn from_yaml(text: &str) -> Result<Vec<Self>, ReadError> {
        read_all(text, Self::from_value)
    }
}

/// Objects read together (the files of `render` or of a standalone folder): the resources
/// that run proxies, and the catalog of Contracts and ContractGrants they may expose.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    /// Gateways, EdgeServices and Aggregators, in reading order.
    pub resources: Vec<Resource>,
    /// The Contracts and ContractGrants.
    pub catalog: Arc<Catalog>,
    /// Contracts and ContractGrants read more than once (namespace and name), which the
    /// cluster would store once.
    duplicates: Vec<String>,
}

impl Bundle {
    /// Sorts documents into resources and the catalog; `namespace` is given to objects that
    /// name none.
    pub fn new(documents: impl IntoIterator<Item = Document>, namespace: &str) -> Self {
        let mut resources = Vec::new();
        let (mut contracts, mut grants) = (Vec::new(), Vec::new());
        let mut seen = std::collections::BTreeSet::new();
        let mut duplicates = Vec::new();
        let mut note =
            |kind: &str, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
                let id = format!(
                    "{kind} {}/{}",
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default()
                );
                if !seen.insert(id.clone()) {
                    duplicates.push(id);
                }
            };
        for document in documents {
            match document {
                Document::Resource(mut resource) => {
                    default_namespace(resource.metadata_mut(), namespace);
                    resources.push(resource);
                }
                Document::Contract(mut contract) => {
                    default_namespace(&mut contract.metadata, namespace);
                    note("Contract", &contract.metadata);
                    contracts.push(Arc::new(contract));
                }
                Document::ContractGrant(mut grant) => {
                    default_namespace(&mut grant.metadata, namespace);
                    note("ContractGrant", &grant.metadata);
                    grants.push(Arc::new(grant));
                }
            }
        }
        Self {
            resources,
            catalog: Arc::new(Catalog::new(contracts, grants)),
            duplicates,
        }
    }

    /// Resources that expose no Contract of the bundle (an empty catalog).
    pub fn of_resources(resources: Vec<Resource>) -> Self {
        Self {
            resources,
            ..Self::default()
        }
    }

    /// Every Contract's own problems (the checks the schema cannot make), each line naming the
    /// Contract: a Contract that would be reported `Accepted=False` in a cluster.
    pub fn contract_problems(&self) -> Vec<Problem> {
        let duplicates = self.duplicates.iter().map(|id| {
            Problem::new(
                id.clone(),
                "read more than once: a namespace holds one object of a name",
            )
        });
        let invalid = self.catalog.contracts().flat_map(|contract| {
            let at = format!(
                "Contract {}/{}",
                contract.metadata.namespace.as_deref().unwrap_or("default"),
                contract.metadata.name.as_deref().unwrap_or_default()
            );
            crate::validate::validate_contract(&contract.spec)
                .into_iter()
                .map(move |p| Problem::new(format!("{at} {}", p.path), p.message))
        });
        duplicates.chain(invalid).collect()
    }
}

fn default_namespace(
    metadata: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    namespace: &str,
) {
    metadata
        .namespace
        .get_or_insert_with(|| namespace.to_owned());
}
