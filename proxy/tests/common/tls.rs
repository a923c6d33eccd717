//! TLS for tests: a certificate authority made per test (rcgen), certificates it signs, and a
//! real TLS client (rustls) that reports what the server presented.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A certificate authority of one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM (as a `kubernetes.io/tls` Secret holds them) and DER.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// A new ECDSA P-256 certificate for `hosts`.
    pub fn leaf(&self, hosts: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// The CA's certificate, PEM (what a CA Secret's `ca.crt` holds).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A new client certificate with subject common name `common_name` and the DNS and URI
    /// subject alternative names given.
    pub fn client_leaf(&self, common_name: &str, dns: &[&str], uris: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(dns.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        for uri in uris {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client trusting this CA that presents `certificate`, offering `alpn`.
    pub fn client_presenting(&self, certificate: &Leaf, alpn: &[&[u8]]) -> TlsConnector {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).unwrap();
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .unwrap()
            .with_root_certificates(self.roots())
            .with_client_auth_cert(vec![certificate.der.clone()], key)
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }

    /// A trust store holding this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }

    /// A client trusting this CA, offering `versions` and `alpn`, sending SNI or not.
    pub fn client(
        &self,
        versions: &[&'static SupportedProtocolVersion],
        alpn: &[&[u8]],
        sni: bool,
    ) -> TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.enable_sni = sni;
        TlsConnector::from(Arc::new(config))
    }

    /// The usual client: TLS 1.2 and 1.3, HTTP/1.1, with SNI.
    pub fn http1_client(&self) -> TlsConnector {
        self.client(rustls::ALL_VERSIONS, &[b"http/1.1"], true)
    }
}

/// Connects and completes a handshake for `server_name` (also the name the certificate is
/// checked against).
pub async fn handshake(
    connector: &TlsConnector,
    address: SocketAddr,
    server_name: &str,
) -> Result<TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(server_name.to_owned()).map_err(|e| e.to_string())?;
    connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// The end-entity certificate the server presented.
pub fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// The negotiated TLS version and ALPN protocol.
pub fn negotiated(stream: &TlsStream<TcpStream>) -> (rustls::ProtocolVersion, Option<Vec<u8>>) {
    let connection = stream.get_ref().1;
    (
        connection.protocol_version().unwrap(),
        connection.alpn_protocol().map(<[u8]>::to_vec),
    )
}

/// One HTTP/1.1 `GET target` (with `Host: host`) on a new TLS connection: status, body and
/// the certificate presented.
pub async fn https_get(
    connector: &TlsConnector,
    address: SocketAddr,
    host: &str,
    target: &str,
) -> Result<(u16, String, CertificateDer<'static>), String> {
    let stream = handshake(connector, address, host).await?;
    let certificate = presented(&stream);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = Request::get(target)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        status,
        String::from_utf8_lossy(&body).into_owned(),
        certificate,
    ))
}
