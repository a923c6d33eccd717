//! Names of the objects the operator creates, shared with `compile` so that an Aggregator
//! backend resolves to the Service the operator actually makes.

/// Labels and names use this for the kind of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `Gateway`.
    Gateway,
    /// `EdgeService`.
    EdgeService,
    /// `Aggregator`.
    Aggregator,
}

impl Kind {
    /// The kind as written in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gateway => "Gateway",
            Self::EdgeService => "EdgeService",
            Self::Aggregator => "Aggregator",
        }
    }

    /// Suffix of the objects made for a resource of this kind.
    fn suffix(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::EdgeService => "edge",
            Self::Aggregator => "aggregator",
        }
    }
}

/// Name of the Deployment, Service, ConfigMap, ServiceAccount, HPA and PDB made for a resource:
/// `NAME-gateway`, `NAME-edge`, `NAME-aggregator`. The CRDs cap resource names at 52
/// characters so this always fits a 63-character DNS label.
pub fn proxy_name(kind: Kind, name: &str) -> String {
    format!("{name}-{}", kind.suffix())
}

/// Port the proxy container listens on for traffic.
pub const PROXY_PORT: u16 = 8080;
/// Port the proxy container listens on for HTTPS, when the resource declares it.
pub const TLS_PORT: u16 = 8443;
/// Port the proxy container serves `/healthz`, `/readyz` and `/metrics` on.
pub const ADMIN_PORT: u16 = 9901;
