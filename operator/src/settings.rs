//! Operator-wide settings that shape every proxy: image, pull policy, cluster domain, the
//! NetworkPolicy that guards the proxy pods, and the default Redis of global rate limits.

use std::collections::BTreeSet;
use std::time::Duration;

use gatehouse_api::crd::RedisStore;
use gatehouse_api::usage;

/// How proxies are run, from the operator's flags (or Helm values).
#[derive(Clone, Debug, PartialEq)]
pub struct ProxySettings {
    /// Proxy container image.
    pub image: String,
    /// `imagePullPolicy` of the proxy container.
    pub image_pull_policy: String,
    /// Cluster DNS domain, used for upstream hosts and the status address.
    pub cluster_domain: String,
    /// The NetworkPolicy of every proxy.
    pub network_policy: NetworkPolicySettings,
    /// The Redis server of global rate limits for resources without `spec.redis` (its Secrets
    /// are looked up in each resource's namespace).
    pub redis: Option<RedisStore>,
    /// How recent a client's call of a contract version keeps the version from being retired
    /// or removed (`--usage-window`).
    pub usage_window: Duration,
}

/// Whether proxies get a NetworkPolicy, and who may reach their admin port besides the
/// resource's own namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkPolicySettings {
    /// A NetworkPolicy for every proxy whose resource does not say otherwise
    /// (`spec.deployment.networkPolicy`).
    pub enabled: bool,
    /// Namespaces, besides the resource's own, allowed on the admin port: the operator's (it
    /// reads each proxy's `/config`) and the monitoring namespace (Prometheus scrapes
    /// `/metrics`).
    pub admin_namespaces: BTreeSet<String>,
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
            network_policy: NetworkPolicySettings {
                enabled: true,
                admin_namespaces: BTreeSet::new(),
            },
            redis: None,
            usage_window: usage::DEFAULT_WINDOW,
        }
    }
}
