//! TLS from the proxy to the upstreams that ask for it (`Upstream.tls`), without Pingora's TLS
//! backend (compiled in, it made every plain request dearer: see [`super::connection`]).
//!
//! Each such upstream's peer carries an [`Origination`] as its L4 connector: it connects TCP,
//! completes a rustls handshake (the upstream's server name by SNI, its certificate verified
//! against the CA Secret's authorities or the built-in web PKI roots, a client certificate
//! when the upstream asks and the table names one) and hands Pingora the encrypted stream as a
//! "virtual" socket, over which Pingora speaks HTTP/1.1 or HTTP/2 as over a plain one. Pingora
//! pools those connections like any other, apart from cleartext ones to the same address (the
//! peer's group key is the origination's).
//!
//! A table build makes an origination per distinct TLS setting, and keeps the previous table's
//! when its Secrets did not change, so that a reload does not drop the pooled connections. A
//! Secret that is missing or unusable keeps the previous origination of that setting, if any;
//! without one, connecting fails (the request gets 502), never falls back to cleartext. Either
//! way the build warns with the Secret's name.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use gatehouse_api::certificate::{certificate_authorities, certified_key, provider};
use gatehouse_api::route_table::{RouteTable, UpstreamProtocol, UpstreamTls};
use pingora::connectors::L4Connect;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::l4::stream::Stream;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::handoff::Handoff;
use crate::clients::SecretFiles;

/// One TLS setting of an upstream, as the route table states it and the HTTP version it
/// carries (`h2` by ALPN for HTTP/2).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OriginKey {
    tls: UpstreamTls,
    http2: bool,
}

impl OriginKey {
    /// The key of an upstream's `tls` spoken with `protocol`.
    pub fn new(tls: &UpstreamTls, protocol: UpstreamProtocol) -> Self {
        Self {
            tls: tls.clone(),
            http2: protocol == UpstreamProtocol::H2c,
        }
    }
}

/// The originations of a table, by setting.
pub type Originations = BTreeMap<OriginKey, Arc<Origination>>;

/// How to open TLS connections for one setting.
#[derive(Debug)]
pub struct Origination {
    /// Unique per origination: the peers' group key, so that pools never mix settings.
    id: u64,
    /// Digest of the Secrets' data it was made of: unchanged, the next build reuses it.
    fingerprint: [u8; 32],
    /// The server name, for log lines.
    name: String,
    http2: bool,
    /// The client configuration and the name it sends and checks, or why there is none
    /// (connecting then fails).
    connector: Result<(Arc<ClientConfig>, ServerName<'static>), String>,
}

/// Builds the originations `table` needs, reusing `previous` ones whose Secrets are unchanged
/// and keeping them when a Secret became unusable.
pub fn build(
    table: &RouteTable,
    secrets: &SecretFiles,
    previous: Option<&Originations>,
    warnings: &mut Vec<String>,
) -> Originations {
    let mut originations = Originations::new();
    let keys = table
        .proxied_upstreams()
        .filter_map(|u| Some(OriginKey::new(u.tls.as_ref()?, u.protocol)));
    for key in keys {
        if originations.contains_key(&key) {
            continue;
        }
        let kept = previous.and_then(|p| p.get(&key));
        let origination = origination(&key, secrets, kept, warnings);
        originations.insert(key, origination);
    }
    originations
}

fn origination(
    key: &OriginKey,
    secrets: &SecretFiles,
    kept: Option<&Arc<Origination>>,
    warnings: &mut Vec<String>,
) -> Arc<Origination> {
    let fingerprint = fingerprint(&key.tls, secrets);
    if let Some(kept) = kept.filter(|k| k.fingerprint == fingerprint) {
        return kept.clone();
    }
    let connector = ServerName::try_from(key.tls.server_name.clone())
        .map_err(|e| format!("{:?} is not a server name: {e}", key.tls.server_name))
        .and_then(|name| Ok((client_config(&key.tls, key.http2, secrets)?, name)));
    if let Err(reason) = &connector {
        let name = &key.tls.server_name;
        match kept {
            Some(kept) if kept.connector.is_ok() => {
                warnings.push(format!(
                    "TLS to upstream {name}: {reason}; still using its previous settings"
                ));
                return kept.clone();
            }
            _ => warnings.push(format!(
                "TLS to upstream {name}: {reason}; requests to it fail with 502 until it is fixed"
            )),
        }
    }
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    Arc::new(Origination {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        fingerprint,
        name: key.tls.server_name.clone(),
        http2: key.http2,
        connector,
    })
}

/// Digest of the data of the Secrets `tls` names (absent ones included as absent).
fn fingerprint(tls: &UpstreamTls, secrets: &SecretFiles) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for secret in [&tls.ca_secret, &tls.client_certificate] {
        match secret.as_ref().and_then(|name| secrets.get(name)) {
            Some(data) => {
                for (key, value) in data {
                    hasher.update((key.len() as u64).to_be_bytes());
                    hasher.update(key.as_bytes());
                    hasher.update((value.len() as u64).to_be_bytes());
                    hasher.update(value);
                }
            }
            None => hasher.update([0xff]),
        }
    }
    hasher.finalize().into()
}

/// The rustls client configuration of one setting.
fn client_config(
    tls: &UpstreamTls,
    http2: bool,
    secrets: &SecretFiles,
) -> Result<Arc<ClientConfig>, String> {
    let roots = match &tls.ca_secret {
        Some(secret) => {
            certificate_authorities(secret, secrets.get(secret)).map_err(|e| e.to_string())?
        }
        None => {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec());
            roots
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match &tls.client_certificate {
        Some(secret) => {
            let key = certified_key(secret, secrets.get(secret)).map_err(|e| e.to_string())?;
            builder.with_client_cert_resolver(Arc::new(ClientCertificate(key)))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    Ok(Arc::new(config))
}

/// Presents one certificate whenever the upstream asks.
#[derive(Debug)]
struct ClientCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TCP connection to `address`, without Nagle's delay.
pub async fn connect_tcp(address: std::net::SocketAddr) -> pingora::Result<TcpStream> {
    let tcp = TcpStream::connect(address).await.map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ErrorType::ConnectRefused
        } else {
            ErrorType::ConnectError
        };
        Error::because(kind, format!("connecting to {address}"), e)
    })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

impl Origination {
    /// The TLS handshake over `tcp` (connected to `inet`): the server name by SNI, the
    /// certificate verified, and HTTP/2 agreed by ALPN when the upstream speaks it.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        inet: std::net::SocketAddr,
    ) -> pingora::Result<TlsStream<TcpStream>> {
        let (config, server_name) = self.connector.as_ref().map_err(|reason| {
            Error::explain(
                ErrorType::ConnectError,
                format!("no TLS settings to connect with: {reason}"),
            )
        })?;
        let tls = TlsConnector::from(config.clone())
            .connect(server_name.clone(), tcp)
            .await
            .map_err(|e| {
                tracing::warn!(
                    "TLS handshake with upstream {inet} ({}) failed: {e}",
                    self.name
                );
                Error::because(
                    ErrorType::TLSHandshakeFailure,
                    format!("TLS handshake with {inet}"),
                    e,
                )
            })?;
        if self.http2 && tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            tracing::warn!(
                "upstream {inet} ({}) does not speak HTTP/2 over TLS (ALPN h2)",
                self.name
            );
            return Error::e_explain(
                ErrorType::ConnectError,
                "the upstream did not agree to HTTP/2 (ALPN h2)",
            );
        }
        Ok(tls)
    }

    /// The peer that reaches `address` over this origination's TLS: Pingora connects through
    /// [`Dial`] and pools the connection under the [`Handoff`] listener's address, apart from
    /// other addresses and settings (the group key).
    pub fn peer(self: &Arc<Self>, address: std::net::SocketAddr) -> pingora::Result<HttpPeer> {
        let handoff = Handoff::get().map_err(|reason| {
            Error::explain(
                ErrorType::ConnectError,
                format!("cannot hand TLS connections to the proxy: {reason}"),
            )
        })?;
        let mut peer = HttpPeer::new(address, false, String::new());
        peer._address = handoff.address().clone();
        let mut hasher = std::hash::DefaultHasher::new();
        (self.id, address).hash(&mut hasher);
        peer.group_key = hasher.finish();
        peer.options.custom_l4 = Some(Arc::new(Dial {
            origination: self.clone(),
            address,
            handoff,
        }));
        Ok(peer)
    }
}

/// Connects one peer: TCP to its address, the TLS handshake, then the [`Handoff`].
#[derive(Debug)]
struct Dial {
    origination: Arc<Origination>,
    address: std::net::SocketAddr,
    handoff: &'static Handoff,
}

#[async_trait]
impl L4Connect for Dial {
    async fn connect(&self, _handoff_address: &SocketAddr) -> pingora::Result<Stream> {
        let tls = self
            .origination
            .handshake(connect_tcp(self.address).await?, self.address)
            .await?;
        let inet = self.address;
        let socket = self.handoff.hand_over(tls).await.map_err(|e| {
            Error::because(
                ErrorType::ConnectError,
                format!("handing the TLS connection to {inet} over"),
                e,
            )
        })?;
        Ok(Stream::from(socket))
    }
}
