//! The proxy's listen addresses (`--listen`, `--listen-tls`, `--admin`), checked before
//! anything binds. Each must name one socket address with a port, and no two may overlap:
//! Pingora keys its listening sockets by address, so two listeners on one address would share
//! one socket (both closing it at shutdown), and two on one port of overlapping hosts would
//! only retry binding.

use std::net::{SocketAddr, ToSocketAddrs};

/// One listener's flag and the address it was given.
#[derive(Clone, Copy, Debug)]
pub struct ListenAddress<'a> {
    /// The command-line flag, e.g. `--listen`.
    pub flag: &'static str,
    /// The address as given (`HOST:PORT`).
    pub address: &'a str,
}

/// Checks every address and that no two overlap; the error names the flags and addresses.
pub fn check(addresses: &[ListenAddress<'_>]) -> Result<(), String> {
    let mut resolved: Vec<(ListenAddress<'_>, SocketAddr)> = Vec::with_capacity(addresses.len());
    for listener in addresses {
        let socket = resolve(listener)?;
        if let Some((other, _)) = resolved.iter().find(|(_, seen)| overlap(*seen, socket)) {
            return Err(format!(
                "{} {} overlaps {} {}: each listener needs a port of its own",
                listener.flag, listener.address, other.flag, other.address
            ));
        }
        resolved.push((*listener, socket));
    }
    Ok(())
}

/// The socket address the listener binds: the first the host resolves to, as Pingora binds.
fn resolve(listener: &ListenAddress<'_>) -> Result<SocketAddr, String> {
    let invalid = |why: String| {
        format!(
            "{} {}: {why} (expected HOST:PORT, e.g. 0.0.0.0:8080)",
            listener.flag, listener.address
        )
    };
    let socket = listener
        .address
        .to_socket_addrs()
        .map_err(|e| invalid(e.to_string()))?
        .next()
        .ok_or_else(|| invalid("the host resolves to no address".to_owned()))?;
    if socket.port() == 0 {
        return Err(invalid(
            "port 0 would be a random port no client knows".to_owned(),
        ));
    }
    Ok(socket)
}

/// Two sockets clash when they share a port and one host covers the other: the same address,
/// or a wildcard (`0.0.0.0`, `::`, which on Linux also takes IPv4) beside any address.
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addresses<'a>(listen: &'a str, tls: &'a str, admin: &'a str) -> Vec<ListenAddress<'a>> {
        vec![
            ListenAddress {
                flag: "--listen",
                address: listen,
            },
            ListenAddress {
                flag: "--listen-tls",
                address: tls,
            },
            ListenAddress {
                flag: "--admin",
                address: admin,
            },
        ]
    }

    #[test]
    fn distinct_ports_and_distinct_hosts_on_one_port_are_accepted() {
        check(&addresses("0.0.0.0:8080", "0.0.0.0:8443", "0.0.0.0:9901")).unwrap();
        check(&addresses("127.0.0.1:8080", "127.0.0.2:8080", "[::1]:8080")).unwrap();
        check(&addresses("localhost:8080", "[::]:8443", "127.0.0.1:9901")).unwrap();
    }

    #[test]
    fn the_same_address_twice_names_both_flags() {
        assert_eq!(
            check(&addresses(
                "127.0.0.1:8080",
                "127.0.0.1:8443",
                "127.0.0.1:8080"
            ))
            .unwrap_err(),
            "--admin 127.0.0.1:8080 overlaps --listen 127.0.0.1:8080: each listener needs a port \
             of its own"
        );
        assert_eq!(
            check(&addresses(
                "127.0.0.1:8080",
                "127.0.0.1:8080",
                "127.0.0.1:9901"
            ))
            .unwrap_err(),
            "--listen-tls 127.0.0.1:8080 overlaps --listen 127.0.0.1:8080: each listener needs a \
             port of its own"
        );
    }

    #[test]
    fn a_wildcard_overlaps_every_host_on_its_port() {
        for (listen, admin) in [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("127.0.0.1:8080", "[::]:8080"),
            ("[::]:8080", "0.0.0.0:8080"),
            ("localhost:8080", "0.0.0.0:8080"),
        ] {
            let error = check(&addresses(listen, "127.0.0.1:8443", admin)).unwrap_err();
            assert!(
                error.starts_with(&format!("--admin {admin} overlaps --listen {listen}")),
                "{error}"
            );
        }
    }

    #[test]
    fn an_address_without_a_usable_port_is_refused_with_the_flag() {
        let error = check(&addresses("8080", "127.0.0.1:8443", "127.0.0.1:9901")).unwrap_err();
        assert!(
            error.starts_with("--listen 8080: ")
                && error.ends_with("(expected HOST:PORT, e.g. 0.0.0.0:8080)"),
            "{error}"
        );
        assert_eq!(
            check(&addresses(
                "127.0.0.1:8080",
                "127.0.0.1:0",
                "127.0.0.1:9901"
            ))
            .unwrap_err(),
            "--listen-tls 127.0.0.1:0: port 0 would be a random port no client knows (expected \
             HOST:PORT, e.g. 0.0.0.0:8080)"
        );
    }
}
