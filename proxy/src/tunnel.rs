//! The longest an upgraded connection (a WebSocket) may stay open: a route's
//! `tunnelTimeoutMs`.
//!
//! Pingora bounds a tunnel only by its idle timeout (the route's `timeout`, each read). A
//! request that asks for an upgrade on a route with a tunnel timeout is therefore connected by
//! [`TunnelConnect`], whose stream ends at the deadline: reads see the end of the stream and
//! writes fail, so Pingora ends the tunnel and closes the client's connection. An upgraded
//! connection is never reused, so this stream is one of Pingora's "virtual" sockets, pooled
//! apart from the route's other connections ([`TUNNEL_GROUP`]) and never taken from a pool.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use pingora::connectors::L4Connect;
use pingora::protocols::l4::socket::SocketAddr as PeerAddress;
use pingora::protocols::l4::stream::Stream;
use pingora::protocols::l4::virt::{VirtualSockOpt, VirtualSocket, VirtualSocketStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::tls::origination::{Origination, connect_tcp};

/// The group key of tunnel peers: their connections never meet the route's pooled ones.
pub const TUNNEL_GROUP: u64 = u64::MAX;

/// Connects one tunnel: TCP (and TLS when the upstream wants it), ending at `deadline`.
#[derive(Debug)]
pub struct TunnelConnect {
    /// Where to.
    pub address: SocketAddr,
    /// TLS to the upstream, when it wants it.
    pub tls: Option<Arc<Origination>>,
    /// When the tunnel ends.
    pub deadline: Instant,
}

#[async_trait]
impl L4Connect for TunnelConnect {
    async fn connect(&self, _address: &PeerAddress) -> pingora::Result<Stream> {
        let tcp = connect_tcp(self.address).await?;
        let socket: Box<dyn VirtualSocket> = match &self.tls {
            None => Box::new(Expiring::new(tcp, self.deadline)),
            Some(origination) => {
                let tls = origination.handshake(tcp, self.address).await?;
                Box::new(Expiring::new(tls, self.deadline))
            }
        };
        Ok(Stream::from(VirtualSocketStream::new(socket)))
    }
}

/// A connection that ends at a deadline.
#[derive(Debug)]
struct Expiring<S> {
    inner: S,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Expiring<S> {
    fn new(inner: S, deadline: Instant) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// True once the deadline passed; until then, wakes the task when it does.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn ended() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the route's tunnel timeout passed",
    )
}

impl<S: std::fmt::Debug + Send + Sync + Unpin> VirtualSocket for Expiring<S>
where
    S: AsyncRead + AsyncWrite,
{
    fn set_socket_option(&self, _option: VirtualSockOpt) -> std::io::Result<()> {
        // Set at connect (no delay); keep-alive does not matter to a bounded tunnel.
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Expiring<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.expired(cx) {
            // The end of the stream.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Expiring<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.expired(cx) {
            return Poll::Ready(Err(ended()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn bytes_pass_until_the_deadline_then_reads_end_and_writes_fail() {
        let (mut far, near) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tunnel = Expiring::new(near, deadline);

        far.write_all(b"ping").await.unwrap();
        let mut buffer = [0; 4];
        tunnel.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"ping");
        tunnel.write_all(b"pong").await.unwrap();
        far.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"pong");

        // A read waiting for the far side ends at the deadline, with nothing sent.
        let mut rest = Vec::new();
        tunnel.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(Instant::now() >= deadline);
        assert_eq!(
            tunnel.write_all(b"late").await.unwrap_err().kind(),
            std::io::ErrorKind::TimedOut
        );
    }
}
