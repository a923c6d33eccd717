//! Which certificate answers a handshake: by its server name (SNI), an exact name before a
//! wildcard and a longer wildcard before a shorter one (Gateway API's listener rule); a client
//! that sends no name, or one no certificate lists, gets the first certificate or, when the
//! table says so, no handshake.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_api::route_table::UnknownServerName;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificates of a table, indexed by server name.
#[derive(Debug)]
pub struct ServerNames {
    /// Lower-case exact names → certificate.
    exact: HashMap<String, usize>,
    /// Wildcard suffixes (`.example.com` of `*.example.com`), longest first.
    wildcards: Vec<(String, usize)>,
    keys: Vec<Arc<CertifiedKey>>,
    /// What an unknown or absent name gets.
    fallback: Option<usize>,
}

impl ServerNames {
    /// The certificates in the table's order, each with its host names. When two certificates
    /// list the same name, the first keeps it.
    pub fn new<'a>(
        certificates: impl IntoIterator<Item = (&'a [String], Arc<CertifiedKey>)>,
        unknown: UnknownServerName,
    ) -> Self {
        let mut exact = HashMap::new();
        let mut wildcards: Vec<(String, usize)> = Vec::new();
        let mut keys = Vec::new();
        for (index, (hosts, key)) in certificates.into_iter().enumerate() {
            keys.push(key);
            for host in hosts {
                let host = host.to_ascii_lowercase();
                match host.strip_prefix('*') {
                    Some(suffix) => {
                        if !wildcards.iter().any(|(s, _)| s == suffix) {
                            wildcards.push((suffix.to_owned(), index));
                        }
                    }
                    None => {
                        exact.entry(host).or_insert(index);
                    }
                }
            }
        }
        // Stable: among equally long suffixes the first listed stays first.
        wildcards.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        let fallback = match unknown {
            UnknownServerName::Default if !keys.is_empty() => Some(0),
            _ => None,
        };
        Self {
            exact,
            wildcards,
            keys,
            fallback,
        }
    }

    /// The certificate for `server_name` (`None`: no SNI), or none: the handshake is refused.
    pub fn select(&self, server_name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let index = server_name
            .and_then(|name| self.lookup(name))
            .or(self.fallback)?;
        self.keys.get(index)
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        let lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(index) = self.exact.get(name) {
            return Some(*index);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
            .map(|(_, index)| *index)
    }
}

impl ResolvesServerCert for ServerNames {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.select(hello.server_name()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::sign::SigningKey;

    /// A certified key told apart by its (fake) certificate bytes; selection never looks
    /// inside.
    fn key(tag: u8) -> Arc<CertifiedKey> {
        #[derive(Debug)]
        struct NoKey;
        impl SigningKey for NoKey {
            fn choose_scheme(
                &self,
                _offered: &[rustls::SignatureScheme],
            ) -> Option<Box<dyn rustls::sign::Signer>> {
                None
            }
            fn algorithm(&self) -> rustls::SignatureAlgorithm {
                rustls::SignatureAlgorithm::ECDSA
            }
        }
        Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(vec![tag])],
            Arc::new(NoKey),
        ))
    }

    fn names(unknown: UnknownServerName) -> ServerNames {
        let hosts = [
            vec!["*.example.com".to_owned()],
            vec!["api.example.com".to_owned(), "Shop.Example".to_owned()],
            vec!["*.eu.example.com".to_owned(), "api.example.com".to_owned()],
        ];
        ServerNames::new(
            hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (h.as_slice(), key(i as u8))),
            unknown,
        )
    }

    fn chosen(names: &ServerNames, server_name: Option<&str>) -> Option<u8> {
        names.select(server_name).map(|k| k.cert[0].as_ref()[0])
    }

    #[test]
    fn an_exact_name_wins_over_a_wildcard_and_a_longer_wildcard_over_a_shorter() {
        let names = names(UnknownServerName::Refuse);
        assert_eq!(chosen(&names, Some("api.example.com")), Some(1));
        assert_eq!(chosen(&names, Some("API.example.COM.")), Some(1));
        assert_eq!(chosen(&names, Some("shop.example")), Some(1));
        assert_eq!(chosen(&names, Some("www.example.com")), Some(0));
        assert_eq!(chosen(&names, Some("a.b.example.com")), Some(0));
        assert_eq!(chosen(&names, Some("paris.eu.example.com")), Some(2));
    }

    #[test]
    fn a_wildcard_does_not_match_its_own_domain_and_unknown_names_follow_the_policy() {
        let refuse = names(UnknownServerName::Refuse);
        assert_eq!(chosen(&refuse, Some("example.com")), None);
        assert_eq!(chosen(&refuse, Some("evil.test")), None);
        assert_eq!(chosen(&refuse, None), None);
        let default = names(UnknownServerName::Default);
        assert_eq!(chosen(&default, Some("example.com")), Some(0));
        assert_eq!(chosen(&default, None), Some(0));
        assert_eq!(chosen(&default, Some("api.example.com")), Some(1));
    }
}
