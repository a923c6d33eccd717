//! Where a resource's global rate limits keep their budgets: a Redis server.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::client::SecretRef;
use super::patterns::*;

/// The Redis server that holds the budgets of the resource's `scope: Global` rate limits.
/// Every replica of the resource (and every resource naming the same server and budget) draws
/// from the same budget. Unset: the operator's default (the chart's `redis` values), if any.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisStore {
    /// `host:port` of the server, e.g. `redis.cache.svc.cluster.local:6379` or
    /// `10.0.0.7:6379`; without a port, 6379.
    #[schemars(length(min = 1, max = 261), pattern(REDIS_ADDRESS))]
    pub address: String,
    /// ACL user to authenticate as. Unset: the `default` user (plain `AUTH password`).
    #[schemars(length(min = 1, max = 128), pattern(HEADER_NAME))]
    pub username: Option<String>,
    /// Secret whose data key `password` holds the password. It is mounted into the proxy pods
    /// and watched like the clients' Secrets: a changed password applies without a restart.
    pub password_secret_ref: Option<SecretRef>,
    /// Speak TLS to the server (`rediss://`).
    pub tls: Option<RedisTls>,
    /// How long a request waits for the server's answer before the client's `onRedisFailure`
    /// applies, e.g. `5ms` (the default) or `20ms`. A server that misses it is not asked
    /// again for one second.
    #[schemars(length(max = 32), pattern(DURATION))]
    #[x_kube(validation = Rule::new(NONZERO_DURATION_RULE).message(NONZERO_DURATION_MESSAGE))]
    pub timeout: Option<String>,
}

/// TLS to the Redis server.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisTls {
    /// Secret whose `ca.crt` holds the PEM certificates of the authorities that sign the
    /// server's certificate. Unset: the web PKI roots.
    pub ca_secret_ref: Option<SecretRef>,
}
