//! Bounds on how a client sends a request head, against clients that trickle header bytes to
//! hold connections (Pingora's own timeouts apply to each read, so one byte every few seconds
//! would keep a connection for ever) or send endless heads (Pingora buffers up to 1 MiB).
//!
//! [`HeadGuardApp`] wraps the proxy's Pingora app and every accepted connection in a
//! [`HeadGuardStream`]. The clock of a request head starts when the connection is accepted
//! (first request) or when the first byte of the next request arrives (kept-alive connection);
//! a read while the head is still incomplete after the time limit fails, and so does a read
//! after more than the byte cap arrived without the head ending. Pingora then closes the
//! connection. The gateway stops the clock once the head is parsed ([`head_received`]) and
//! restarts it when the response is done ([`request_done`]). From then on the connection may
//! wait [`HeadBounds::idle`] for the next request's first byte; a read still waiting then fails
//! before any byte, which Pingora takes as the client closing a kept-alive connection.
//!
//! A head that arrives in one read costs one clock reading; a timer is made on the first read
//! that would wait (the idle wait, on a kept-alive connection) and then only reset, never
//! registered again — Pingora's own keep-alive timeout registered a new one per request.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::tls::{ALPN, SslDigest, TlsRef};
use pingora::protocols::{IO, Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType};
use pingora::proxy::Session;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::delegate::{delegate_digests, delegate_writes};

/// What a connection may take to deliver a request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadBounds {
    /// Longest time from the head's start to its end.
    pub time: Duration,
    /// Longest wait for the first byte of the next request on a kept-alive connection.
    pub idle: Duration,
    /// Most bytes read while the head is incomplete before reading stops (the head is then
    /// certainly over this size).
    pub bytes: usize,
}

/// A Pingora app whose connections must deliver each request head within `bounds`.
pub struct HeadGuardApp<A> {
    inner: Arc<A>,
    bounds: HeadBounds,
}

impl<A> HeadGuardApp<A> {
    /// Wraps `inner`.
    pub fn new(inner: A, bounds: HeadBounds) -> Self {
        Self {
            inner: Arc::new(inner),
            bounds,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for HeadGuardApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // HTTP/2 frames its own requests: its limits are the HTTP/2 settings and idle timeout.
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.inner.process_new(stream, shutdown).await;
        }
        let stream: Stream = Box::new(HeadGuardStream::new(stream, self.bounds));
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// Stops the head clock of the session's connection: its request head is complete.
pub fn head_received(session: &Session) {
    if let Some(stream) = guard_stream(session) {
        stream.awaiting_head.store(false, Ordering::Relaxed);
        stream.head_ended.store(true, Ordering::Relaxed);
    }
}

/// Restarts the head clock of the session's connection: the next bytes start a new request,
/// and the idle wait for them starts now.
pub fn request_done(session: &Session) {
    if let Some(stream) = guard_stream(session) {
        stream.awaiting_head.store(true, Ordering::Relaxed);
        stream.idle_started.store(true, Ordering::Relaxed);
    }
}

fn guard_stream(session: &Session) -> Option<&HeadGuardStream> {
    let stream: &dyn IO = &**session.downstream_session.stream()?;
    stream.as_any().downcast_ref::<HeadGuardStream>()
}

/// A connection whose request heads must arrive within bounds.
#[derive(Debug)]
pub struct HeadGuardStream {
    inner: Stream,
    bounds: HeadBounds,
    /// Bytes read since the head being received started.
    head_bytes: usize,
    /// Between a response and the end of the next request head. Set by the gateway through a
    /// shared reference, read by this connection's task (the same task: relaxed is enough).
    awaiting_head: AtomicBool,
    /// A head ended since the last read: its deadline and count are spent.
    head_ended: AtomicBool,
    /// A response ended since the last read: the idle wait for the next request starts.
    idle_started: AtomicBool,
    /// Waiting for the first byte of the next request (the deadline is the idle one).
    idle: bool,
    /// When the head being received must be complete (or, while `idle`, when the wait for it
    /// ends); `None` between a head and its response.
    deadline: Option<Instant>,
    /// Wakes a read that waits past the deadline; made on the first wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl HeadGuardStream {
    fn new(inner: Stream, bounds: HeadBounds) -> Self {
        Self {
            inner,
            bounds,
            head_bytes: 0,
            awaiting_head: AtomicBool::new(true),
            head_ended: AtomicBool::new(false),
            idle_started: AtomicBool::new(false),
            idle: false,
            deadline: Some(Instant::now() + bounds.time),
            timer: None,
        }
    }

    /// `Ready` once the head is overdue; otherwise the task is woken at the deadline.
    fn poll_overdue(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}

fn overdue() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request head did not arrive in time",
    )
}

fn endless() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the request head is larger than the gateway reads",
    )
}

impl AsyncRead for HeadGuardStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.head_ended.load(Ordering::Relaxed) {
            this.head_ended.store(false, Ordering::Relaxed);
            this.deadline = None;
            this.head_bytes = 0;
        }
        if this.idle_started.load(Ordering::Relaxed) {
            this.idle_started.store(false, Ordering::Relaxed);
            this.idle = true;
            this.deadline = Some(Instant::now() + this.bounds.idle);
        }
        if !this.awaiting_head.load(Ordering::Relaxed) {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.head_bytes > this.bounds.bytes {
            return Poll::Ready(Err(endless()));
        }
        if this.deadline.is_some_and(|d| Instant::now() >= d) {
            return Poll::Ready(Err(overdue()));
        }
        let filled = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - filled;
                if this.idle && read > 0 {
                    // The first byte of the next request: its head's clock starts.
                    this.idle = false;
                    this.deadline = Some(Instant::now() + this.bounds.time);
                }
                this.head_bytes = this.head_bytes.saturating_add(read);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.poll_overdue(cx) {
                Poll::Ready(()) => Poll::Ready(Err(overdue())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

delegate_writes!(HeadGuardStream);

#[async_trait]
impl Shutdown for HeadGuardStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for HeadGuardStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeadGuardStream {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

delegate_digests!(HeadGuardStream, |this| this.inner, this.inner);

#[async_trait]
impl Peek for HeadGuardStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}
