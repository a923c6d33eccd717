//! How a step's HTTP call reaches its upstream: through Pingora's pooled connector, so calls to
//! the same upstream reuse kept-alive connections across requests.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::connectors::ConnectorOptions;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

/// A step's request, fully rendered.
#[derive(Debug)]
pub struct StepRequest {
    /// Upstream address.
    pub address: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Method.
    pub method: http::Method,
    /// Path and query.
    pub path_and_query: String,
    /// Headers.
    pub headers: Vec<(http::HeaderName, String)>,
    /// Body.
    pub body: Option<Bytes>,
    /// Upper bound for connect + request + response.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_body: usize,
}

/// A step's response.
#[derive(Debug)]
pub struct StepResponse {
    /// Status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body, at most `max_body` bytes.
    pub body: Bytes,
}

/// Why a call produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The upstream could not be reached.
    Connect(String),
    /// The call took longer than its timeout.
    Timeout,
    /// The body was larger than allowed.
    TooLarge(usize),
    /// The upstream broke the HTTP exchange.
    Protocol(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::Timeout => f.write_str("timed out"),
            Self::TooLarge(limit) => write!(f, "response larger than {limit} bytes"),
            Self::Protocol(e) => write!(f, "broken response: {e}"),
        }
    }
}

/// Sends step requests.
#[async_trait]
pub trait StepTransport: Send + Sync {
    /// Sends one request and reads its whole (bounded) response.
    async fn send(&self, request: StepRequest) -> Result<StepResponse, CallError>;
}

/// The production transport: Pingora's HTTP/1.1 connector with its connection pool.
pub struct PooledTransport {
    connector: Connector,
    idle_timeout: Duration,
}

impl PooledTransport {
    /// A transport keeping up to `pool_size` idle upstream connections, each open for
    /// `idle_timeout`. Size the pool for the steps in flight at peak (calls × steps): a smaller
    /// pool closes connections that the next calls must open again.
    pub fn new(pool_size: usize, idle_timeout: Duration) -> Self {
        Self {
            connector: Connector::new(Some(ConnectorOptions::new(pool_size))),
            idle_timeout,
        }
    }

    async fn exchange(&self, request: StepRequest) -> Result<StepResponse, CallError> {
        let mut peer = HttpPeer::new(request.address, false, String::new());
        peer.options.connection_timeout = Some(request.timeout);
        let (mut session, _reused) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|e| CallError::Connect(e.etype().as_str().to_owned()))?;
        let mut header =
            RequestHeader::build(request.method, request.path_and_query.as_bytes(), None)
                .map_err(|e| CallError::Protocol(e.to_string()))?;
        let protocol = |e: Box<pingora::Error>| CallError::Protocol(e.etype().as_str().to_owned());
        header
            .insert_header(http::header::HOST, &request.host)
            .map_err(protocol)?;
        for (name, value) in &request.headers {
            header
                .insert_header(name.clone(), value)
                .map_err(protocol)?;
        }
        if let Some(body) = &request.body {
            header
                .insert_header(http::header::CONTENT_LENGTH, body.len().to_string())
                .map_err(protocol)?;
        }
        session
            .write_request_header(Box::new(header))
            .await
            .map_err(protocol)?;
        if let Some(body) = request.body {
            session
                .write_request_body(body, true)
                .await
                .map_err(protocol)?;
        }
        session.finish_request_body().await.map_err(protocol)?;
        session.read_response_header().await.map_err(protocol)?;
        let (status, headers) = {
            let response = session
                .response_header()
                .ok_or_else(|| CallError::Protocol("no response header".into()))?;
            let headers = response
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            (response.status.as_u16(), headers)
        };
        let mut body = BytesMut::new();
        while let Some(chunk) = session.read_response_body().await.map_err(protocol)? {
            if body.len() + chunk.len() > request.max_body {
                // Dropping the session closes the connection: the rest is never read.
                return Err(CallError::TooLarge(request.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        self.connector
            .release_http_session(session, &peer, Some(self.idle_timeout))
            .await;
        Ok(StepResponse {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

#[async_trait]
impl StepTransport for PooledTransport {
    async fn send(&self, request: StepRequest) -> Result<StepResponse, CallError> {
        let timeout = request.timeout;
        tokio::time::timeout(timeout, self.exchange(request))
            .await
            .unwrap_or(Err(CallError::Timeout))
    }
}
