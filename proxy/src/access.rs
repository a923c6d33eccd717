//! Limit access by address: who the caller is when proxies stand in front of the gateway
//! (`X-Forwarded-For`, believed only as far as the table trusts it), and the source ranges a
//! table, a contract or a route serves. Pure; prepared with the table, off the request path.

use std::net::IpAddr;

use gatehouse_api::prepare::address_range;
use gatehouse_api::route_table::{ClientAddressEntry, SourceRangesEntry};
use http::HeaderMap;
use ipnet::IpNet;

/// The header proxies in front of the gateway append the address they received from to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Ranges a caller must be in (when `allow` lists any) and must not be in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl SourceRules {
    /// Prepares a table's ranges.
    pub fn prepare(entry: &SourceRangesEntry) -> Result<Self, String> {
        Ok(Self {
            allow: ranges(&entry.allow)?,
            deny: ranges(&entry.deny)?,
        })
    }

    /// True when a caller from `address` is served; an unknown address (`None`) never is.
    pub fn admits(&self, address: Option<IpAddr>) -> bool {
        let Some(address) = address.map(|a| a.to_canonical()) else {
            return false;
        };
        !self.deny.iter().any(|range| range.contains(&address))
            && (self.allow.is_empty() || self.allow.iter().any(|range| range.contains(&address)))
    }
}

fn ranges(texts: &[String]) -> Result<Vec<IpNet>, String> {
    texts.iter().map(|text| address_range(text)).collect()
}

/// How the caller's address is found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CallerAddress {
    /// The connection's peer; `X-Forwarded-For` is not believed.
    #[default]
    Peer,
    /// This many proxies in front each append to `X-Forwarded-For`.
    TrustedHops(usize),
    /// Proxies in these ranges are believed.
    TrustedProxies(Vec<IpNet>),
}

impl CallerAddress {
    /// Prepares a table's setting.
    pub fn prepare(entry: Option<&ClientAddressEntry>) -> Result<Self, String> {
        Ok(match entry {
            None => Self::Peer,
            Some(ClientAddressEntry::TrustedHops(0)) => Self::Peer,
            Some(ClientAddressEntry::TrustedHops(hops)) => {
                Self::TrustedHops(usize::try_from(*hops).unwrap_or(usize::MAX))
            }
            Some(ClientAddressEntry::TrustedProxies(texts)) => Self::TrustedProxies(ranges(texts)?),
        })
    }

    /// The caller of a request that came from `peer` with `headers`; `None` when the entry
    /// of `X-Forwarded-For` the setting points at is not an address (a proxy the table
    /// trusts wrote something else there): such a caller is never admitted by a range.
    pub fn caller(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        match self {
            Self::Peer => Some(peer),
            Self::TrustedHops(hops) => {
                // The peer is the first hop; each of the others appended one entry.
                let entries = forwarded_entries(headers);
                let Some(pick) = entries.len().checked_sub(*hops) else {
                    return entries.first().map_or(Some(peer), |e| forwarded_address(e));
                };
                entries
                    .get(pick)
                    .map_or(Some(peer), |e| forwarded_address(e))
            }
            Self::TrustedProxies(trusted) => {
                let mut caller = peer;
                for entry in forwarded_entries(headers).iter().rev() {
                    if !trusted.iter().any(|range| range.contains(&caller)) {
                        return Some(caller);
                    }
                    caller = forwarded_address(entry)?;
                }
                Some(caller)
            }
        }
    }
}

/// The entries of every `X-Forwarded-For` header, in order (leftmost: the farthest hop).
fn forwarded_entries(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// An entry of `X-Forwarded-For`: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::7`,
/// `[2001:db8::7]` or `[2001:db8::7]:4711`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    if let Ok(address) = entry.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    let bracketed = entry.strip_prefix('[')?.strip_suffix(']')?;
    bracketed
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .map(|a| IpAddr::V6(a).to_canonical())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                X_FORWARDED_FOR,
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        headers
    }

    fn rules(allow: &[&str], deny: &[&str]) -> SourceRules {
        SourceRules::prepare(&SourceRangesEntry {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
        .expect("valid ranges")
    }

    #[test]
    fn deny_wins_over_allow_and_an_empty_allow_list_admits_the_rest() {
        let mixed = rules(&["10.0.0.0/8", "2001:db8::/32"], &["10.1.0.0/16"]);
        assert!(mixed.admits(Some(ip("10.2.3.4"))));
        assert!(!mixed.admits(Some(ip("10.1.3.4"))));
        assert!(!mixed.admits(Some(ip("192.0.2.1"))));
        assert!(mixed.admits(Some(ip("2001:db8::1"))));
        assert!(!mixed.admits(Some(ip("2001:db9::1"))));
        assert!(!mixed.admits(None), "an unknown caller is refused");
        let deny_only = rules(&[], &["192.0.2.0/24"]);
        assert!(deny_only.admits(Some(ip("198.51.100.1"))));
        assert!(!deny_only.admits(Some(ip("192.0.2.200"))));
    }

    #[test]
    fn an_ipv4_caller_on_a_dual_stack_socket_is_compared_as_ipv4() {
        let allowed = rules(&["192.0.2.0/24"], &[]);
        assert!(allowed.admits(Some(ip("::ffff:192.0.2.9"))));
    }

    #[test]
    fn without_trust_the_peer_is_the_caller_whatever_the_header_says() {
        let headers = forwarded(&["10.0.0.1"]);
        assert_eq!(
            CallerAddress::Peer.caller(Some(ip("203.0.113.5")), &headers),
            Some(ip("203.0.113.5"))
        );
    }

    #[test]
    fn trusted_hops_count_from_the_peer_leftwards() {
        let one = CallerAddress::TrustedHops(1);
        // A client wrote `10.0.0.1`; the load balancer appended the client's real address.
        let headers = forwarded(&["10.0.0.1, 198.51.100.7"]);
        assert_eq!(
            one.caller(Some(ip("10.9.9.9")), &headers),
            Some(ip("198.51.100.7"))
        );
        let two = CallerAddress::TrustedHops(2);
        let headers = forwarded(&["10.0.0.1", "198.51.100.7, 172.16.0.4"]);
        assert_eq!(
            two.caller(Some(ip("10.9.9.9")), &headers),
            Some(ip("198.51.100.7"))
        );
        // Fewer entries than hops: the leftmost; none at all: the peer.
        assert_eq!(
            two.caller(Some(ip("10.9.9.9")), &forwarded(&["198.51.100.7"])),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            one.caller(Some(ip("10.9.9.9")), &HeaderMap::new()),
            Some(ip("10.9.9.9"))
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_and_an_untrusted_peer_is_believed_on_nothing() {
        let trusted = CallerAddress::TrustedProxies(vec![address_range("10.0.0.0/8").unwrap()]);
        let headers = forwarded(&["192.0.2.66, 198.51.100.7, 10.1.1.1"]);
        assert_eq!(
            trusted.caller(Some(ip("10.2.2.2")), &headers),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            trusted.caller(Some(ip("203.0.113.5")), &headers),
            Some(ip("203.0.113.5")),
            "a peer outside the trusted ranges wrote the header itself"
        );
        // Everything trusted: the leftmost address.
        assert_eq!(
            trusted.caller(Some(ip("10.2.2.2")), &forwarded(&["10.3.3.3"])),
            Some(ip("10.3.3.3"))
        );
    }

    #[test]
    fn entries_with_ports_and_brackets_are_read_and_garbage_is_no_address() {
        let one = CallerAddress::TrustedHops(1);
        let peer = Some(ip("10.9.9.9"));
        for (entry, caller) in [
            ("198.51.100.7:4711", Some(ip("198.51.100.7"))),
            ("[2001:db8::7]:4711", Some(ip("2001:db8::7"))),
            ("[2001:db8::7]", Some(ip("2001:db8::7"))),
            ("2001:db8::7", Some(ip("2001:db8::7"))),
            ("unknown", None),
            ("198.51.100.7/24", None),
        ] {
            assert_eq!(one.caller(peer, &forwarded(&[entry])), caller, "{entry}");
        }
    }
}
