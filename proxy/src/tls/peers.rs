//! Client certificates (mutual TLS): what a verified certificate says about its client, and
//! which open connection presented which.
//!
//! The handshake verifies a presented certificate against every authority of the table's
//! certificate clients at once (a certificate no authority signed fails the handshake), then
//! against each authority alone, so that a request knows which authorities vouch for its
//! connection; with the certificate's names, that is what [`crate::clients`] recognises a
//! client by. Pingora hands a request its connection's digests only, so the finding is kept
//! here, by the connection's addresses, for as long as the connection is open.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use pingora::protocols::SocketDigest;
use pingora::protocols::l4::socket::SocketAddr;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A verified client certificate.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    /// Its DNS, URI and email subject alternative names and its subject's common names, ASCII
    /// lower case.
    pub names: Vec<String>,
    /// The CA Secrets whose authorities verify it.
    pub authorities: Vec<String>,
}

/// The authorities of one CA Secret, as a verifier.
#[derive(Debug)]
pub struct Authority {
    /// The CA Secret.
    pub secret: String,
    /// Verifies a client certificate against its authorities only.
    pub verifier: Arc<dyn ClientCertVerifier>,
}

impl PeerCertificate {
    /// What `chain` (leaf first, as the client sent it; the handshake verified it) says: its
    /// names, and which of `authorities` verify it. `None` for a leaf that does not parse.
    pub fn of(chain: &[CertificateDer<'_>], authorities: &[Authority]) -> Option<Self> {
        let (leaf, intermediates) = chain.split_first()?;
        let names = certificate_names(leaf)?;
        let now = UnixTime::now();
        let authorities = authorities
            .iter()
            .filter(|a| {
                a.verifier
                    .verify_client_cert(leaf, intermediates, now)
                    .is_ok()
            })
            .map(|a| a.secret.clone())
            .collect();
        Some(Self { names, authorities })
    }
}

/// The names a certificate carries: DNS, URI and email SANs and the subject's common names.
fn certificate_names(der: &CertificateDer<'_>) -> Option<Vec<String>> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let mut names: Vec<String> = certificate
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase)
        .collect();
    if let Ok(Some(sans)) = certificate.subject_alternative_name() {
        for name in &sans.value.general_names {
            match name {
                GeneralName::DNSName(n) | GeneralName::URI(n) | GeneralName::RFC822Name(n) => {
                    names.push(n.to_ascii_lowercase());
                }
                _ => {}
            }
        }
    }
    Some(names)
}

/// A connection: its client's address and its own.
type ConnectionKey = (SocketAddr, SocketAddr);

/// The client certificates of open connections.
static OPEN: LazyLock<Mutex<HashMap<ConnectionKey, Arc<PeerCertificate>>>> =
    LazyLock::new(Default::default);

fn open() -> std::sync::MutexGuard<'static, HashMap<ConnectionKey, Arc<PeerCertificate>>> {
    OPEN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key(socket: &SocketDigest) -> Option<ConnectionKey> {
    Some((socket.peer_addr()?.clone(), socket.local_addr()?.clone()))
}

/// A connection's certificate, known while the registration lives (the connection holds it).
#[derive(Debug)]
pub struct Registration {
    key: ConnectionKey,
}

impl Registration {
    /// Records `peer` for the connection of `socket`.
    pub fn new(socket: &SocketDigest, peer: PeerCertificate) -> Option<Self> {
        let key = key(socket)?;
        open().insert(key.clone(), Arc::new(peer));
        Some(Self { key })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        open().remove(&self.key);
    }
}

/// The client certificate the connection of `socket` presented, if it presented one.
pub fn of(socket: &SocketDigest) -> Option<Arc<PeerCertificate>> {
    open().get(&key(socket)?).cloned()
}
