//! The HTTPS listener's first step: connections accepted on its port go through a TLS
//! handshake — bounded in time, with the certificates of the table served at that moment —
//! before HTTP; connections accepted on the plain listener go straight on.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::server::ShutdownWatch;

use pingora::protocols::GetSocketDigest;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::connection::TlsConnection;
use super::peers::{Authority, PeerCertificate, Registration};
use crate::metrics::{HandshakeOutcome, ProxyMetrics};
use crate::reload::TableStore;

/// Terminates TLS for the connections of one listening port, then hands them to `inner`.
pub struct TlsApp<A> {
    inner: Arc<A>,
    store: Arc<TableStore>,
    metrics: Arc<ProxyMetrics>,
    /// Connections accepted on this local port are TLS.
    tls_port: Option<u16>,
    /// Longest time from accept to the end of the handshake (slow clients are cut off, as a
    /// request head must arrive within its time).
    handshake_timeout: Duration,
}

impl<A> TlsApp<A> {
    /// Wraps `inner`; without `tls_port` every connection is plain.
    pub fn new(
        inner: A,
        store: Arc<TableStore>,
        metrics: Arc<ProxyMetrics>,
        tls_port: Option<u16>,
        handshake_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(inner),
            store,
            metrics,
            tls_port,
            handshake_timeout,
        }
    }

    fn accepted_on_tls_port(&self, stream: &Stream) -> bool {
        let Some(tls_port) = self.tls_port else {
            return false;
        };
        // A connection coming back for its next request is TLS already.
        if stream.get_ssl_digest().is_some() {
            return false;
        }
        let local_port = stream.get_socket_digest().and_then(|digest| {
            digest
                .local_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.port())
        });
        local_port == Some(tls_port)
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for TlsApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if !self.accepted_on_tls_port(&stream) {
            return self.inner.process_new(stream, shutdown).await;
        }
        let table = self.store.current();
        let Some(termination) = table.as_ref().and_then(|t| t.tls.as_ref()) else {
            self.metrics.handshake(HandshakeOutcome::NoCertificates);
            tracing::debug!("TLS connection closed: the served table has no certificates");
            return None;
        };
        // Pingora hands a plain listener's connections over as its TCP stream type, which is
        // what a TLS stream can wrap.
        let tcp = match stream.into_any().downcast::<L4Stream>() {
            Ok(tcp) => *tcp,
            Err(_) => {
                tracing::error!("TLS connection closed: not a TCP stream");
                return None;
            }
        };
        let acceptor = TlsAcceptor::from(termination.config.clone());
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.metrics.handshake(HandshakeOutcome::Done);
                let registration = client_certificate(&tls, &termination.authorities);
                let connection: Stream = Box::new(TlsConnection::new(tls, registration));
                self.inner.process_new(connection, shutdown).await
            }
            Ok(Err(error)) => {
                self.metrics.handshake(HandshakeOutcome::Failed);
                tracing::debug!("TLS handshake failed: {error}");
                None
            }
            Err(_) => {
                self.metrics.handshake(HandshakeOutcome::TimedOut);
                tracing::debug!("TLS handshake timed out");
                None
            }
        }
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// Records the client certificate `tls` presented, if any, with the authorities that vouch
/// for it.
fn client_certificate(
    tls: &TlsStream<L4Stream>,
    authorities: &[Authority],
) -> Option<Registration> {
    if authorities.is_empty() {
        return None;
    }
    let (tcp, session) = tls.get_ref();
    let peer = PeerCertificate::of(session.peer_certificates()?, authorities)?;
    Registration::new(tcp.get_socket_digest()?.as_ref(), peer)
}
