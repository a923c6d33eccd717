//! TLS termination on the HTTPS listener.
//!
//! The certificates come with the table: its `tls` entry names `kubernetes.io/tls` Secrets, which
//! arrive like the clients' Secrets (mounted files, or the Kubernetes API in a cluster), and
//! every table build makes a new rustls [`ServerConfig`] of them ([`Termination::build`]). A
//! renewed certificate is therefore a new build: the next handshake uses it, established
//! connections keep theirs. A Secret that is missing or does not parse never stops a table
//! (its routes, or the other certificates): the certificate the proxy served from that Secret
//! keeps serving, and without one its host names are answered as unknown names; the build
//! warns with the Secret's name (the operator reports it in the resource's status).
//!
//! Policy (documented in the README): TLS 1.2 and 1.3 only (1.3 only when the table says so);
//! rustls' default cipher suites, all AEAD with forward secrecy (TLS 1.3: AES-256-GCM,
//! AES-128-GCM, ChaCha20-Poly1305; TLS 1.2: ECDHE-ECDSA/RSA with the same ciphers), in the
//! server's order of preference; no 0-RTT; ALPN `h2`, then `http/1.1`. Session tickets and the
//! session cache are shared by every build, so clients resume across certificate rotations.
//!
//! Client certificates: when the table's clients include certificate clients, every handshake
//! asks for a certificate signed by one of their authorities (CA Secrets, `ca.crt`); a client
//! may send none, one that no authority signed fails the handshake ([`peers`]). A CA Secret
//! that is missing or broken is said in `warnings` and vouches for nobody: its clients are
//! refused with 401 until it is fixed, as a revoked API key is.

pub mod connection;
pub mod handoff;
pub mod listener;
pub mod origination;
pub mod peers;
pub mod server_names;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use gatehouse_api::certificate::{certificate_authorities, certified_key, provider};
use gatehouse_api::route_table::{ClientEntry, TlsEntry, TlsVersion};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{
    ProducesTickets, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion, version};

use crate::clients::SecretFiles;
use peers::Authority;
use server_names::ServerNames;

/// Sessions the shared resumption cache holds (about 100 bytes each with rustls).
const SESSION_CACHE_ENTRIES: usize = 4096;

/// Why the TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The crypto provider cannot serve the versions asked for (not with ring's defaults).
    #[error("the TLS policy cannot be built: {0}")]
    Policy(String),
}

/// What the HTTPS listener hands out: the rustls configuration and the certificate each
/// Secret gave, kept for the next build.
#[derive(Debug)]
pub struct Termination {
    /// The configuration every handshake of this table uses.
    pub config: Arc<ServerConfig>,
    /// Secret name → its certificate, for the Secrets that gave (or kept) one.
    pub keys: BTreeMap<String, Arc<CertifiedKey>>,
    /// The certificate clients' authorities, one per usable CA Secret.
    pub authorities: Vec<Authority>,
}

impl Termination {
    /// The TLS configuration of a table: its certificates from `secrets`, and its `clients`'
    /// certificate authorities. A Secret that gives no usable certificate keeps the one
    /// `previous` served from it, if any; either way it is said in `warnings`.
    pub fn build(
        entry: &TlsEntry,
        clients: &[ClientEntry],
        secrets: &SecretFiles,
        previous: Option<&Termination>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, TlsError> {
        let provider = provider();
        let mut keys = BTreeMap::new();
        for certificate in &entry.certificates {
            let name = &certificate.secret;
            if keys.contains_key(name) {
                continue;
            }
            match certified_key(name, secrets.get(name)) {
                Ok(key) => {
                    keys.insert(name.clone(), key);
                }
                Err(error) => match previous.and_then(|p| p.keys.get(name)) {
                    Some(kept) => {
                        warnings.push(format!("{error}; still serving its previous certificate"));
                        keys.insert(name.clone(), kept.clone());
                    }
                    None => warnings.push(format!(
                        "{error}; its host names get no certificate of their own"
                    )),
                },
            }
        }
        let names = ServerNames::new(
            entry.certificates.iter().filter_map(|c| {
                let key = keys.get(&c.secret)?;
                Some((c.hosts.as_slice(), key.clone()))
            }),
            entry.unknown_server_name,
        );
        let versions: &[&'static SupportedProtocolVersion] = match entry.min_version {
            TlsVersion::Tls12 => &[&version::TLS13, &version::TLS12],
            TlsVersion::Tls13 => &[&version::TLS13],
        };
        let (authorities, client_verifier) = authorities(clients, secrets, warnings)?;
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| TlsError::Policy(e.to_string()))?;
        let builder = match client_verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(names));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.ignore_client_order = true;
        config.session_storage = session_cache();
        config.ticketer = ticketer();
        Ok(Self {
            config: Arc::new(config),
            keys,
            authorities,
        })
    }
}

/// A client-certificate verifier.
type Verifier = Arc<dyn ClientCertVerifier>;

/// The authorities of each usable CA Secret of `clients`, and the verifier a handshake uses:
/// all of them at once, a certificate optional. No verifier when no CA Secret is usable.
fn authorities(
    clients: &[ClientEntry],
    secrets: &SecretFiles,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Authority>, Option<Verifier>), TlsError> {
    let mut authorities: Vec<Authority> = Vec::new();
    let mut all = RootCertStore::empty();
    for client in clients {
        let Some(certificate) = &client.certificate else {
            continue;
        };
        let secret = &certificate.ca_secret;
        if authorities.iter().any(|a| &a.secret == secret) {
            continue;
        }
        match certificate_authorities(secret, secrets.get(secret)) {
            Ok(roots) => {
                all.roots.extend(roots.roots.iter().cloned());
                authorities.push(Authority {
                    secret: secret.clone(),
                    verifier: client_verifier(roots)?,
                });
            }
            Err(error) => warnings.push(format!(
                "{error}; the client certificates it signs are refused with 401 until it is fixed"
            )),
        }
    }
    if authorities.is_empty() {
        return Ok((authorities, None));
    }
    Ok((authorities, Some(client_verifier(all)?)))
}

/// Verifies client certificates against `roots`; a client may present none.
fn client_verifier(roots: RootCertStore) -> Result<Verifier, TlsError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError::Policy(e.to_string()))
}

fn session_cache() -> Arc<dyn StoresServerSessions> {
    static CACHE: OnceLock<Arc<ServerSessionMemoryCache>> = OnceLock::new();
    CACHE
        .get_or_init(|| ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES))
        .clone()
}

/// Rotating ticket keys (rustls' ring ticketer: a new key every 6 hours, the previous one
/// still accepted), made once; without it (it cannot fail with ring) no tickets are issued and
/// clients resume through the session cache only.
fn ticketer() -> Arc<dyn ProducesTickets> {
    static TICKETER: OnceLock<Option<Arc<dyn ProducesTickets>>> = OnceLock::new();
    TICKETER
        .get_or_init(|| rustls::crypto::ring::Ticketer::new().ok())
        .clone()
        .unwrap_or_else(|| Arc::new(NoTickets))
}

/// Issues no tickets.
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}
