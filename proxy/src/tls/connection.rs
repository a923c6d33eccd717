//! A TLS connection accepted on the HTTPS listener, in the shape Pingora serves HTTP on.
//!
//! The handshake is rustls' own (tokio-rustls), not Pingora's TLS backend: compiling that
//! backend in makes every request's futures larger (its upstream TLS states live inside them),
//! which cost about 5% more instructions per plain request (bench/RESULTS.md).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::tls::{ALPN, SslDigest};
use pingora::protocols::{Peek, Shutdown, Ssl, UniqueID, UniqueIDType};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio_rustls::server::TlsStream;

use super::peers::Registration;
use crate::delegate::{delegate_digests, delegate_writes};

/// A TLS connection over Pingora's TCP stream, with what Pingora asks of it: the negotiated
/// protocol (ALPN decides HTTP/2 or HTTP/1.1) and its TLS digest (version, cipher).
#[derive(Debug)]
pub struct TlsConnection {
    /// The client certificate's record, dropped (forgotten) before the socket closes.
    _client_certificate: Option<Registration>,
    inner: TlsStream<TcpStream>,
    digest: Arc<SslDigest>,
    alpn: Option<ALPN>,
}

impl TlsConnection {
    /// The connection once its handshake is done, with the record of its client certificate.
    pub fn new(inner: TlsStream<TcpStream>, client_certificate: Option<Registration>) -> Self {
        let session = inner.get_ref().1;
        let version = session
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let cipher = session
            .negotiated_cipher_suite()
            .and_then(|suite| suite.suite().as_str())
            .unwrap_or_default();
        let alpn = match session.alpn_protocol() {
            Some(b"h2") => Some(ALPN::H2),
            Some(b"http/1.1") => Some(ALPN::H1),
            _ => None,
        };
        Self {
            _client_certificate: client_certificate,
            digest: Arc::new(SslDigest::new(cipher, version, None, None, Vec::new())),
            alpn,
            inner,
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

delegate_writes!(TlsConnection);

#[async_trait]
impl Shutdown for TlsConnection {
    /// Sends `close_notify`, then closes the TCP connection.
    async fn shutdown(&mut self) {
        let _ = AsyncWriteExt::shutdown(&mut self.inner).await;
    }
}

impl UniqueID for TlsConnection {
    fn id(&self) -> UniqueIDType {
        self.inner.get_ref().0.id()
    }
}

impl Ssl for TlsConnection {
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        Some(self.digest.clone())
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.alpn.clone()
    }
}

delegate_digests!(
    TlsConnection,
    |this| this.inner.get_ref().0,
    this.inner.get_mut().0
);

/// Decrypted bytes cannot be peeked at below TLS (nothing asks for it: HTTP/2 over TLS is
/// chosen by ALPN, not by its preface).
impl Peek for TlsConnection {}
