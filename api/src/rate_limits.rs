//! Rate limits in the table's terms: a client's limit, where a global one keeps its budget in
//! Redis, and the Redis server itself. Pure, like [`crate::compile`], which calls it.

use crate::compile::CompileContext;
use crate::crd::{Client, RateLimitScope, RedisFailurePolicy, RedisStore};
use crate::duration;
use crate::route_table::{
    GlobalLimitEntry, RateLimitEntry, RedisEntry, RedisFailure, RedisTlsEntry,
};
use crate::validate::Problem;

/// How long a request waits for Redis when the resource sets no `redis.timeout`.
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 5;

/// Redis' own port.
const REDIS_PORT: u16 = 6379;

/// The resource a table is compiled from, which names its clients' own budgets.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    /// `Gateway` or `EdgeService`.
    pub kind: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
}

impl Owner<'_> {
    /// The budget of `client`'s global limit: the one it names, within the namespace (so a
    /// resource can never draw from another namespace's budget), else its own.
    fn budget(&self, client: &str, named: Option<&str>) -> String {
        match named {
            Some(budget) => format!("{}/{budget}", self.namespace),
            None => format!(
                "{}/{}/{}/{client}",
                self.kind.to_ascii_lowercase(),
                self.namespace,
                self.name
            ),
        }
    }
}

/// `client`'s rate limit, if it has one.
pub fn rate_limit_entry(client: &Client, owner: &Owner<'_>) -> Option<RateLimitEntry> {
    let limit = client.rate_limit.as_ref()?;
    let rps = u32::try_from(limit.requests_per_second).unwrap_or(1);
    let global = (limit.scope == Some(RateLimitScope::Global)).then(|| GlobalLimitEntry {
        budget: owner.budget(&client.name, limit.budget.as_deref()),
        on_redis_failure: match limit.on_redis_failure.unwrap_or_default() {
            RedisFailurePolicy::LocalShare => RedisFailure::LocalShare,
            RedisFailurePolicy::Refuse => RedisFailure::Refuse,
        },
    });
    Some(RateLimitEntry {
        requests_per_second: rps,
        burst: limit
            .burst
            .and_then(|b| u32::try_from(b).ok())
            .unwrap_or(rps),
        global,
    })
}

/// True when `client`'s limit is shared through Redis.
fn is_global(client: &Client) -> bool {
    client
        .rate_limit
        .as_ref()
        .is_some_and(|limit| limit.scope == Some(RateLimitScope::Global))
}

/// The table's Redis server: the resource's own, else the operator's default; none when no
/// client has a global limit (so other tables keep their bytes).
pub fn redis_entry<'a>(
    clients: impl IntoIterator<Item = &'a Client>,
    own: Option<&RedisStore>,
    default: Option<&RedisStore>,
) -> Option<RedisEntry> {
    if !clients.into_iter().any(is_global) {
        return None;
    }
    let store = own.or(default)?;
    Some(RedisEntry {
        address: with_port(&store.address),
        username: store.username.clone(),
        password_secret: store.password_secret_ref.as_ref().map(|s| s.name.clone()),
        tls: store.tls.as_ref().map(|tls| RedisTlsEntry {
            ca_secret: tls.ca_secret_ref.as_ref().map(|s| s.name.clone()),
        }),
        timeout_ms: store
            .timeout
            .as_deref()
            .and_then(|t| duration::parse_millis(t).ok())
            .unwrap_or(DEFAULT_REDIS_TIMEOUT_MS),
    })
}

/// Why `address` (`host[:port]`, `[v6]:port`) names no Redis server: a port that is not
/// 1–65535. The schema's pattern has checked the rest.
pub fn address_problem(address: &str) -> Option<String> {
    // The pattern allows a colon only before the port (inside brackets, an IPv6 address).
    let (_, port) = address.rsplit_once(':')?;
    if port.ends_with(']') {
        return None;
    }
    match port.parse::<u16>() {
        Ok(1..) => None,
        _ => Some(format!("{address:?}: {port} is not a port (1-65535)")),
    }
}

/// `host:port`, adding Redis' port when the address has none.
fn with_port(address: &str) -> String {
    let has_port = if address.starts_with('[') {
        address.contains("]:")
    } else {
        address.contains(':')
    };
    if has_port {
        address.to_owned()
    } else {
        format!("{address}:{REDIS_PORT}")
    }
}

/// What stops the global limits of `clients` (each with its field path) from working: no Redis
/// server named anywhere, or a timeout that does not parse.
pub fn check_redis<'a>(
    clients: impl IntoIterator<Item = (String, &'a Client)>,
    own: Option<&RedisStore>,
    context: &CompileContext,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(problem) = own.and_then(|store| address_problem(&store.address)) {
        problems.push(Problem::new("spec.redis.address", problem));
    }
    if let Some(timeout) = own.and_then(|store| store.timeout.as_deref())
        && let Err(e) = duration::parse_millis(timeout)
    {
        problems.push(Problem::new("spec.redis.timeout", e));
    }
    if own.or(context.redis.as_ref()).is_none() && !context.redis_from_proxy {
        problems.extend(clients.into_iter().filter(|(_, c)| is_global(c)).map(|(path, _)| {
            Problem::new(
                format!("{path}.rateLimit.scope"),
                "a Global rate limit keeps its budget in Redis, and none is set: set spec.redis, \
                 or the operator's default Redis (the chart's redis.address)",
            )
        }));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_redis_port_when_they_name_none() {
        assert_eq!(with_port("redis.cache.svc"), "redis.cache.svc:6379");
        assert_eq!(with_port("10.0.0.7:7000"), "10.0.0.7:7000");
        assert_eq!(with_port("[fd00::7]:6380"), "[fd00::7]:6380");
    }

    #[test]
    fn a_port_outside_1_to_65535_names_no_server() {
        assert_eq!(address_problem("redis.cache.svc"), None);
        assert_eq!(address_problem("redis:6379"), None);
        assert_eq!(address_problem("[fd00::7]:6380"), None);
        assert_eq!(
            address_problem("redis:99999").as_deref(),
            Some("\"redis:99999\": 99999 is not a port (1-65535)")
        );
        assert!(address_problem("redis:0").is_some());
    }

    #[test]
    fn a_named_budget_stays_in_its_namespace() {
        let owner = Owner {
            kind: "Gateway",
            namespace: "shop",
            name: "public",
        };
        assert_eq!(owner.budget("acme", None), "gateway/shop/public/acme");
        assert_eq!(owner.budget("acme", Some("partners")), "shop/partners");
    }
}
