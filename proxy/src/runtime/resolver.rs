//! How an upstream name becomes an address: `--resolve` overrides first (by service name or
//! host), then the `--hosts-file` (by host), then the system resolver (DNS, by host and port).
//! Every lookup blocks: only table builds and the background refresher call it, never requests.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use super::addresses::UpstreamKey;
use super::hosts::HostsFile;

/// Maps upstream names to addresses; see the module doc.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    overrides: HashMap<String, SocketAddr>,
    hosts_file: Option<PathBuf>,
}

/// A `--resolve NAME=HOST:PORT` that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No `=`.
    #[error("--resolve {0:?}: expected NAME=HOST:PORT")]
    Shape(String),
    /// The target does not resolve.
    #[error("--resolve {text:?}: {reason}")]
    Target {
        /// The argument.
        text: String,
        /// Why.
        reason: String,
    },
}

impl Resolver {
    /// Builds a resolver from `NAME=HOST:PORT` overrides; `NAME` matches an upstream's service
    /// name or its host. Targets are resolved once, here.
    pub fn from_overrides<'a>(
        specs: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, ResolveError> {
        let mut overrides = HashMap::new();
        for spec in specs {
            let (name, target) = spec
                .split_once('=')
                .ok_or_else(|| ResolveError::Shape(spec.to_owned()))?;
            let address = target
                .to_socket_addrs()
                .map_err(|e| ResolveError::Target {
                    text: spec.to_owned(),
                    reason: e.to_string(),
                })?
                .next()
                .ok_or_else(|| ResolveError::Target {
                    text: spec.to_owned(),
                    reason: "resolves to no address".to_owned(),
                })?;
            overrides.insert(name.to_ascii_lowercase(), address);
        }
        Ok(Self {
            overrides,
            hosts_file: None,
        })
    }

    /// Also consults the hosts(5) file at `path`, re-read at every [`Resolver::round`].
    pub fn with_hosts_file(mut self, path: Option<PathBuf>) -> Self {
        self.hosts_file = path;
        self
    }

    /// Starts a round of lookups (a table build, a background refresh): reads the hosts file
    /// once for all of them.
    pub fn round(&self) -> LookupRound<'_> {
        let hosts = self.hosts_file.as_ref().map(|path| {
            HostsFile::read(path)
                .map_err(|e| format!("hosts file {} cannot be read: {e}", path.display()))
        });
        LookupRound {
            overrides: &self.overrides,
            hosts,
        }
    }
}

/// Lookups that share one reading of the hosts file.
#[derive(Debug)]
pub struct LookupRound<'a> {
    overrides: &'a HashMap<String, SocketAddr>,
    hosts: Option<Result<HostsFile, String>>,
}

impl LookupRound<'_> {
    /// The address of the upstream `key`, or why there is none. A hosts file that cannot be read
    /// fails every lookup it could have answered (so the last good addresses are kept), rather
    /// than sending its names to DNS.
    pub fn lookup(&self, key: &UpstreamKey) -> Result<SocketAddr, String> {
        for name in [&key.service, &key.host] {
            if let Some(address) = self.overrides.get(&name.to_ascii_lowercase()) {
                return Ok(*address);
            }
        }
        match &self.hosts {
            Some(Ok(hosts)) => {
                if let Some(ip) = hosts.lookup(&key.host) {
                    return Ok(SocketAddr::new(ip, key.port));
                }
            }
            Some(Err(reason)) => return Err(reason.clone()),
            None => {}
        }
        (key.host.as_str(), key.port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| "resolves to no address".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str, host: &str) -> UpstreamKey {
        UpstreamKey {
            service: service.to_owned(),
            host: host.to_owned(),
            port: 8080,
        }
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("gatehouse-resolver-{name}-{}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn overrides_match_service_or_host() {
        let resolver = Resolver::from_overrides(["catalog=127.0.0.1:9000"]).unwrap();
        let round = resolver.round();
        let expected: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(
            round.lookup(&key("catalog", "catalog.shop.svc")),
            Ok(expected)
        );
        assert_eq!(round.lookup(&key("other", "Catalog")), Ok(expected));
        assert!(Resolver::from_overrides(["nope"]).is_err());
    }

    #[test]
    fn overrides_then_the_hosts_file_then_the_system() {
        let path = temp_file("order", "10.1.2.3 orders.shop.svc catalog.shop.svc\n");
        let resolver = Resolver::from_overrides(["catalog=127.0.0.1:9000"])
            .unwrap()
            .with_hosts_file(Some(path.clone()));
        let round = resolver.round();
        assert_eq!(
            round.lookup(&key("catalog", "catalog.shop.svc")),
            Ok("127.0.0.1:9000".parse().unwrap()),
            "an override beats the hosts file"
        );
        assert_eq!(
            round.lookup(&key("orders", "orders.shop.svc")),
            Ok("10.1.2.3:8080".parse().unwrap()),
            "the hosts file gives the address, the upstream the port"
        );
        assert_eq!(
            round.lookup(&key("local", "127.0.0.1")),
            Ok("127.0.0.1:8080".parse().unwrap()),
            "names not in the file go to the system resolver"
        );
        std::fs::remove_file(&path).unwrap();
        let round = resolver.round();
        let error = round.lookup(&key("orders", "orders.shop.svc")).unwrap_err();
        assert!(error.contains("cannot be read"), "{error}");
        assert_eq!(
            round.lookup(&key("catalog", "x")),
            Ok("127.0.0.1:9000".parse().unwrap()),
            "overrides need no file"
        );
    }
}
