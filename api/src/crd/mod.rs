//! The custom resources users write (`gatehouse.dev/v1alpha1`): Gateway, EdgeService and
//! Aggregator, which run proxies, and Contract and ContractGrant, which publish APIs for them.

pub mod access;
pub mod aggregation;
pub mod aggregator;
pub mod client;
pub mod contract;
pub mod cors;
pub mod gateway;
pub mod lifecycle;
pub mod listeners;
pub mod method;
pub mod patterns;
pub mod redis;
pub mod route;
pub mod runtime;
pub mod status;
pub mod string_map;

pub use access::{Access, ClientAddress, RequestLimits, SourceRanges};
pub use aggregation::{Aggregation, FailurePolicy, Step, StepCall};
pub use aggregator::{Aggregator, AggregatorSpec, Endpoint};
pub use client::{
    ApiKeyAuth, Client, ClientCertificateAuth, JwtAuth, RateLimit, RateLimitScope,
    RedisFailurePolicy, SecretRef,
};
pub use contract::{
    Contract, ContractExposer, ContractExposure, ContractGrant, ContractGrantSpec, ContractSpec,
    ContractStatus, ContractVersion, ExposingKind, ExposureState, GrantFrom,
};
pub use cors::Cors;
pub use gateway::{EdgeService, EdgeServiceSpec, Gateway, GatewaySpec};
pub use lifecycle::{Deprecation, Lifecycle};
pub use listeners::{
    Certificate, HttpListener, HttpMode, HttpsListener, Listeners, MinTlsVersion,
    UnknownServerNamePolicy,
};
pub use method::HttpMethod;
pub use redis::{RedisStore, RedisTls};
pub use route::{
    BackendProtocol, BackendRef, BackendTls, DirectResponse, HeaderCondition, HeaderModifier,
    PathType, QueryCondition, Redirect, RetryPolicy, Route, RouteMatch, Scheme,
};
pub use runtime::{
    Autoscaling, DeploymentSettings, DisruptionBudget, ExternalTrafficPolicy, ServiceSettings,
    ServiceType,
};
pub use status::{ExposedContract, ProxiesStatus, ProxyStatus, ServedContract};
pub use string_map::StringMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The CustomResourceDefinitions, in a fixed order (that of [`CrdKind`]).
pub fn definitions() -> [CustomResourceDefinition; 5] {
    [
        Gateway::crd(),
        EdgeService::crd(),
        Aggregator::crd(),
        Contract::crd(),
        ContractGrant::crd(),
    ]
    .map(readable_descriptions)
}

/// The kind of a Gatehouse object, as its CRD defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrdKind {
    /// `Gateway`.
    Gateway,
    /// `EdgeService`.
    EdgeService,
    /// `Aggregator`.
    Aggregator,
    /// `Contract`.
    Contract,
    /// `ContractGrant`.
    ContractGrant,
}

impl CrdKind {
    /// Every kind, in the order of [`definitions`].
    pub const ALL: [Self; 5] = [
        Self::Gateway,
        Self::EdgeService,
        Self::Aggregator,
        Self::Contract,
        Self::ContractGrant,
    ];

    /// The kind as written in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "Gateway",
            Self::EdgeService => "EdgeService",
            Self::Aggregator => "Aggregator",
            Self::Contract => "Contract",
            Self::ContractGrant => "ContractGrant",
        }
    }

    /// The kind written `kind`, if it is one.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Position of its CRD in [`definitions`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<crate::naming::Kind> for CrdKind {
    fn from(kind: crate::naming::Kind) -> Self {
        match kind {
            crate::naming::Kind::Gateway => Self::Gateway,
            crate::naming::Kind::EdgeService => Self::EdgeService,
            crate::naming::Kind::Aggregator => Self::Aggregator,
        }
    }
}

/// The CRD with every field description as `kubectl explain` reads best: the lines a doc
/// comment wraps at 100 columns joined again (kubectl wraps to the terminal itself), blank
/// lines between paragraphs and lines that start a list item kept.
fn readable_descriptions(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    match inner {
                        serde_json::Value::String(text) if key == "description" => {
                            *text = unwrap_lines(text);
                        }
                        other => walk(other),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    walk(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

/// Joins wrapped lines with a space; keeps paragraph breaks and list items on their lines.
fn unwrap_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(next) = lines.peek() else {
            break;
        };
        let keeps_break = line.trim().is_empty()
            || next.trim().is_empty()
            || next.trim_start().starts_with("- ")
            || next.trim_start().starts_with("* ");
        out.push(if keeps_break { '\n' } else { ' ' });
    }
    out
}

/// The CustomResourceDefinitions as one multi-document YAML stream: what `crds/` holds and
/// what `gatehouse-operator crds` prints.
pub fn definitions_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::from(
        "# Generated by `gatehouse-operator crds`: edit api/src/crd, not this file.\n",
    );
    for crd in definitions() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_description_lines_are_joined_but_paragraphs_and_list_items_kept() {
        assert_eq!(
            unwrap_lines("One sentence\nwrapped twice\nhere.\n\nA paragraph:\n- one\n- two"),
            "One sentence wrapped twice here.\n\nA paragraph:\n- one\n- two"
        );
        assert_eq!(unwrap_lines("single"), "single");
    }

    #[test]
    fn generated_descriptions_are_unwrapped() {
        let [gateway, ..] = definitions();
        let schema = serde_json::to_value(&gateway.spec.versions[0].schema).unwrap_or_default();
        let route = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["contracts"]["items"]
            ["properties"]["routes"]["items"]["properties"];
        // A doc comment of several lines.
        let timeout = route["timeout"]["description"].as_str().unwrap_or_default();
        assert!(
            timeout.contains("to connect, for the response head"),
            "{timeout:?}"
        );
        assert!(!timeout.contains('\n'), "{timeout:?}");
    }
}
