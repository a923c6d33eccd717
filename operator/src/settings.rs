//! Operator-wide settings that shape every proxy: image, pull policy, cluster domain.

/// How proxies are run, from the operator's flags (or Helm values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy container image.
    pub image: String,
    /// `imagePullPolicy` of the proxy container.
    pub image_pull_policy: String,
    /// Cluster DNS domain, used for upstream hosts and the status address.
    pub cluster_domain: String,
}

/// The proxy image of this release: `ghcr.io/gatehouse-dev/gatehouse-proxy:<version>`.
pub const DEFAULT_PROXY_IMAGE: &str = concat!(
    "ghcr.io/gatehouse-dev/gatehouse-proxy:",
    env!("CARGO_PKG_VERSION")
);

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            image: DEFAULT_PROXY_IMAGE.to_owned(),
            image_pull_policy: "IfNotPresent".to_owned(),
            cluster_domain: "cluster.local".to_owned(),
        }
    }
}
