//! Any one of the three resources, read from YAML the way `kubectl apply` would read it.

use serde::Deserialize;

use crate::compile::{CompileContext, compile_aggregator, compile_edge_service, compile_gateway};
use crate::crd::{Aggregator, EdgeService, Gateway};
use crate::naming::Kind;
use crate::route_table::RouteTable;
use crate::validate::Problem;

/// API group and version of every Gatehouse resource.
pub const API_VERSION: &str = "gatehouse.dev/v1alpha1";

/// A Gateway, EdgeService or Aggregator.
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
        "document {index} is {api_version} {kind}, not a Gatehouse resource ({API_VERSION} Gateway, EdgeService or Aggregator)"
    )]
    NotGatehouse {
        /// Position in the stream, from 0.
        index: usize,
        /// Its `apiVersion`.
        api_version: String,
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

    /// Validates (see [`crate::validate`]) and compiles the resource.
    pub fn compile(&self, context: &CompileContext) -> Result<RouteTable, Vec<Problem>> {
        match self {
            Self::Gateway(r) => compile_gateway(r, context),
            Self::EdgeService(r) => compile_edge_service(r, context),
            Self::Aggregator(r) => compile_aggregator(r, context),
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
        let known = match kind.as_str() {
            "Gateway" => Some(Kind::Gateway),
            "EdgeService" => Some(Kind::EdgeService),
            "Aggregator" => Some(Kind::Aggregator),
            _ => None,
        };
        let Some(known) = known.filter(|_| api_version == API_VERSION) else {
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
            Kind::Gateway => Gateway::deserialize(&value).map(Self::Gateway),
            Kind::EdgeService => EdgeService::deserialize(&value).map(Self::EdgeService),
            Kind::Aggregator => Aggregator::deserialize(&value).map(Self::Aggregator),
        };
        parsed.map_err(|e| rejected(vec![Problem::new("", e.to_string())]))
    }

    /// Reads every document of a YAML stream (`---`-separated). Empty documents are skipped.
    pub fn from_yaml(text: &str) -> Result<Vec<Self>, ReadError> {
        let documents = crate::yaml::documents(text).map_err(ReadError::Yaml)?;
        documents
            .into_iter()
            .filter(|d| !d.is_null())
            .enumerate()
            .map(|(index, value)| Self::from_value(index, value))
            .collect()
    }
}
