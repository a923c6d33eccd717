//! The Redis servers global rate limits use, kept across table reloads: a reload that names the
//! same server with the same credentials keeps its connection and its budgets' state; a
//! changed password or authority is another server and gets a new connection.

use std::sync::Arc;

use gatehouse_api::certificate::{AUTHORITIES_KEY, PASSWORD_KEY};
use gatehouse_api::route_table::RedisEntry;

use super::registry::Registry;
use crate::clients::SecretFiles;
use crate::global_limit::store::{RedisStore, RedisTarget};

/// Every Redis server in use, and the proxy's own (`--redis`).
#[derive(Debug, Default)]
pub struct RedisBook {
    stores: Registry<RedisTarget, RedisStore>,
    /// `--redis`: the server of tables that name none.
    standalone: Option<RedisTarget>,
}

impl RedisBook {
    /// A book whose tables without a server of their own use `standalone`.
    pub fn new(standalone: Option<RedisTarget>) -> Self {
        Self {
            stores: Registry::default(),
            standalone,
        }
    }

    /// The store of a table: its own server (password and authorities read from `secrets`),
    /// else `--redis`; `None` with neither. Refused when the table's Secrets cannot be read.
    pub fn store(
        &self,
        entry: Option<&RedisEntry>,
        secrets: &SecretFiles,
    ) -> Result<Option<Arc<RedisStore>>, String> {
        let target = match entry {
            Some(entry) => target(entry, secrets)?,
            None => match &self.standalone {
                Some(target) => target.clone(),
                None => {
                    return Err(
                        "the table names no Redis server and the proxy was given no --redis"
                            .to_owned(),
                    );
                }
            },
        };
        // Opened before the registry is asked, so a target that cannot be used is refused
        // without taking a place in it.
        let opened = RedisStore::open(&target)?;
        let (store, new) = self.stores.get_or_insert_with(&target, || opened);
        if new {
            store.spawn_heartbeats();
        }
        Ok(Some(store))
    }

    /// Forgets servers no table uses any more.
    pub fn prune(&self) {
        self.stores.prune();
    }
}

/// The server a table names, with its Secrets' contents.
fn target(entry: &RedisEntry, secrets: &SecretFiles) -> Result<RedisTarget, String> {
    let value = |secret: &str, key: &str| {
        secrets
            .get(secret)
            .and_then(|data| data.get(key))
            .cloned()
            .ok_or_else(|| format!("Secret {secret} has no {key}"))
    };
    let password = entry
        .password_secret
        .as_deref()
        .map(|secret| {
            String::from_utf8(value(secret, PASSWORD_KEY)?)
                .map_err(|_| format!("Secret {secret}: {PASSWORD_KEY} is not UTF-8"))
        })
        .transpose()?;
    let authorities = entry
        .tls
        .as_ref()
        .and_then(|tls| tls.ca_secret.as_deref())
        .map(|secret| value(secret, AUTHORITIES_KEY))
        .transpose()?;
    let scheme = if entry.tls.is_some() {
        "rediss"
    } else {
        "redis"
    };
    Ok(RedisTarget {
        url: format!("{scheme}://{}", entry.address),
        username: entry.username.clone(),
        password,
        authorities,
        timeout: std::time::Duration::from_millis(entry.timeout_ms.max(1)),
    })
}
