//! gRPC through the gateway, with a real gRPC server and client (tonic) on both sides: the
//! client calls over HTTPS (HTTP/2 by ALPN), the proxy calls the backend over HTTP/2 cleartext.
//! Unary, server-streaming, client-streaming and bidirectional calls; statuses and trailers
//! from the backend; a call the client abandons is cancelled at the backend; and the gateway's
//! own failures reach the client as gRPC statuses (with a partner recognised by its client
//! certificate: UNAUTHENTICATED without one, RESOURCE_EXHAUSTED over its rate limit).
//!
//! Messages are raw bytes (a bytes codec): no protoc, nothing generated.

#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use common::free_port;
use common::https::{Https, tls_table};
use common::tables::{proxy, upstream, with_timeout};
use common::tls::{Leaf, TestCa};
use gatehouse_api::route_table::{
    PathKind, RouteEntry, RouteTable, TlsVersion, UnknownServerName, UpstreamProtocol,
};
use http::uri::PathAndQuery;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::{Stream, StreamExt};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status, Streaming};

const SERVICE: &str = "/gatehouse.test.Echo/";
const HOST: &str = "grpc.shop.test";

/// Messages are the bytes themselves.
#[derive(Clone, Copy, Default)]
struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

type Replies = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// What the backend saw: calls started, and calls whose handler was dropped before it ended
/// (a cancelled call).
#[derive(Default)]
struct Seen {
    started: AtomicUsize,
    cancelled: AtomicUsize,
    /// The `te` header of the last call (gRPC servers may insist on `trailers`).
    te: std::sync::Mutex<Option<String>>,
}

/// Counts a call as cancelled unless it is finished first.
struct CancelGuard(Arc<Seen>, bool);

impl CancelGuard {
    fn finish(mut self) {
        self.1 = true;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A gRPC backend speaking HTTP/2 cleartext, with the methods of `gatehouse.test.Echo`.
async fn start_backend() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = seen.clone();
    let service = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
        let seen = state.clone();
        async move {
            seen.started.fetch_add(1, Ordering::SeqCst);
            *seen.te.lock().unwrap() = request
                .headers()
                .get("te")
                .map(|v| v.to_str().unwrap().to_owned());
            let mut grpc = tonic::server::Grpc::new(BytesCodec);
            let method = request.uri().path().trim_start_matches(SERVICE).to_owned();
            let response = match method.as_str() {
                "Unary" => {
                    grpc.unary(
                        tower::service_fn(|r: Request<Bytes>| async move {
                            let mut reply = b"echo:".to_vec();
                            reply.extend_from_slice(r.get_ref());
                            Ok::<_, Status>(Response::new(Bytes::from(reply)))
                        }),
                        request,
                    )
                    .await
                }
                "Fail" => {
                    grpc.unary(
                        tower::service_fn(|_: Request<Bytes>| async move {
                            let mut status = Status::not_found("no such product");
                            status
                                .metadata_mut()
                                .insert("x-shop", "catalog".parse().unwrap());
                            Err::<Response<Bytes>, _>(status)
                        }),
                        request,
                    )
                    .await
                }
                "Count" => {
                    grpc.server_streaming(
                        tower::service_fn(|r: Request<Bytes>| async move {
                            let n: usize =
                                std::str::from_utf8(r.get_ref()).unwrap().parse().unwrap();
                            // `n` messages, then a status in the trailers after them.
                            let messages = (1..=n).map(|i| Ok(Bytes::from(i.to_string())));
                            let end = std::iter::once(Err(Status::aborted("counted")));
                            let replies: Replies =
                                Box::pin(tokio_stream::iter(messages.chain(end)));
                            Ok::<_, Status>(Response::new(replies))
                        }),
                        request,
                    )
                    .await
                }
                "Join" => {
                    grpc.client_streaming(
                        tower::service_fn(|r: Request<Streaming<Bytes>>| async move {
                            let mut parts = r.into_inner();
                            let mut joined = Vec::new();
                            while let Some(part) = parts.message().await? {
                                joined.extend_from_slice(&part);
                                joined.push(b'+');
                            }
                            Ok::<_, Status>(Response::new(Bytes::from(joined)))
                        }),
                        request,
                    )
                    .await
                }
                "Chat" => {
                    grpc.streaming(
                        tower::service_fn(|r: Request<Streaming<Bytes>>| async move {
                            let replies: Replies = Box::pin(r.into_inner().map(|m| {
                                m.map(|m| {
                                    let mut reply = b"re:".to_vec();
                                    reply.extend_from_slice(&m);
                                    Bytes::from(reply)
                                })
                            }));
                            Ok::<_, Status>(Response::new(replies))
                        }),
                        request,
                    )
                    .await
                }
                "Slow" => {
                    let seen = seen.clone();
                    grpc.unary(
                        tower::service_fn(move |_: Request<Bytes>| {
                            let guard = CancelGuard(seen.clone(), false);
                            async move {
                                tokio::time::sleep(Duration::from_secs(30)).await;
                                guard.finish();
                                Ok::<_, Status>(Response::new(Bytes::from_static(b"late")))
                            }
                        }),
                        request,
                    )
                    .await
                }
                _ => Status::unimplemented(method).into_http(),
            };
            Ok::<_, Infallible>(response)
        }
    });
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .serve_with_incoming(
                service,
                tonic::transport::server::TcpIncoming::from(listener),
            )
            .await
            .unwrap();
    });
    (address, seen)
}

/// `Echo` proxied to the backend at `port` over HTTP/2 cleartext, with route `id` serving
/// `path` (a prefix).
fn grpc_route(id: &str, path: &str, port: u16) -> RouteEntry {
    let mut backend = upstream("echo", port, None, 1);
    backend.protocol = UpstreamProtocol::H2c;
    proxy(id, PathKind::Prefix, path, vec![backend])
}

/// The Echo service over HTTPS, its `Slow` method with a timeout of `slow_ms`, and
/// `gatehouse.test.Down` pointing at a closed port.
fn grpc_table(backend: SocketAddr, slow_ms: u64) -> RouteTable {
    tls_table(
        vec![
            grpc_route("echo", "/gatehouse.test.Echo", backend.port()),
            with_timeout(
                grpc_route("slow", "/gatehouse.test.Echo/Slow", backend.port()),
                slow_ms,
            ),
            grpc_route("down", "/gatehouse.test.Down", free_port()),
        ],
        &[("grpc", &[HOST])],
        UnknownServerName::Default,
        TlsVersion::Tls12,
    )
}

/// A gRPC channel to the proxy's HTTPS listener (HTTP/2 by ALPN), trusting `ca`.
async fn channel(ca: &TestCa, address: SocketAddr) -> Channel {
    channel_over(ca.client(rustls::ALL_VERSIONS, &[b"h2"], true), address).await
}

/// A gRPC channel to the proxy's HTTPS listener through `connector`.
async fn channel_over(connector: tokio_rustls::TlsConnector, address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("https://{HOST}"))
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let connector = connector.clone();
            async move {
                let tcp = TcpStream::connect(address).await?;
                let tls = connector
                    .connect(ServerName::try_from(HOST).unwrap(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .unwrap()
}

fn method(name: &str) -> PathAndQuery {
    PathAndQuery::try_from(format!("{SERVICE}{name}")).unwrap()
}

/// A backend, a proxy serving [`grpc_table`] in front of it, and a client channel to it.
async fn start(name: &str, slow_ms: u64) -> (Https, Channel, Arc<Seen>) {
    let (backend, seen) = start_backend().await;
    let ca = TestCa::new();
    let leaf: Leaf = ca.leaf(&[HOST]);
    let https = Https::start(name, &grpc_table(backend, slow_ms), &[("grpc", &leaf)]).await;
    let channel = channel(&ca, https.tls).await;
    (https, channel, seen)
}

async fn unary(channel: &Channel, name: &str, message: &'static [u8]) -> Result<Bytes, Status> {
    unary_at(channel, method(name), message).await
}

/// A unary call of the method at `path`.
async fn unary_at(
    channel: &Channel,
    path: PathAndQuery,
    message: &'static [u8],
) -> Result<Bytes, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    client
        .unary(Request::new(Bytes::from_static(message)), path, BytesCodec)
        .await
        .map(Response::into_inner)
}

#[tokio::test(flavor = "multi_thread")]
async fn unary_and_streaming_calls_pass_through_with_their_statuses_and_trailers() {
    let (_https, channel, seen) = start("grpc-calls", 300).await;

    assert_eq!(
        unary(&channel, "Unary", b"walnut").await.unwrap(),
        "echo:walnut"
    );
    assert_eq!(seen.te.lock().unwrap().as_deref(), Some("trailers"));

    // A status the backend answers with, and its metadata, reach the client unchanged.
    let status = unary(&channel, "Fail", b"x").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no such product");
    assert_eq!(status.metadata().get("x-shop").unwrap(), "catalog");

    // Server streaming: every message, then the status from the trailers.
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.unwrap();
    let mut replies = client
        .server_streaming(
            Request::new(Bytes::from_static(b"5")),
            method("Count"),
            BytesCodec,
        )
        .await
        .unwrap()
        .into_inner();
    let mut counted = Vec::new();
    let end = loop {
        match replies.message().await {
            Ok(Some(m)) => counted.push(String::from_utf8(m.to_vec()).unwrap()),
            Ok(None) => panic!("the stream ended without the backend's status"),
            Err(status) => break status,
        }
    };
    assert_eq!(counted, ["1", "2", "3", "4", "5"]);
    assert_eq!((end.code(), end.message()), (Code::Aborted, "counted"));

    // Client streaming: the backend hears every part.
    client.ready().await.unwrap();
    let parts = tokio_stream::iter(["a", "b", "c"].map(|p| Bytes::from_static(p.as_bytes())));
    let joined = client
        .client_streaming(Request::new(parts), method("Join"), BytesCodec)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(joined, "a+b+c+");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bidirectional_stream_interleaves_messages_both_ways() {
    let (_https, channel, _seen) = start("grpc-chat", 300).await;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let (send, outgoing) = tokio::sync::mpsc::channel::<Bytes>(1);
    send.send(Bytes::from_static(b"hello")).await.unwrap();
    let mut replies = client
        .streaming(
            Request::new(tokio_stream::wrappers::ReceiverStream::new(outgoing)),
            method("Chat"),
            BytesCodec,
        )
        .await
        .unwrap()
        .into_inner();
    // Each reply arrives before the next message is sent: nothing waits for the stream's end.
    for word in ["hello", "are", "you", "there"] {
        if word != "hello" {
            send.send(Bytes::from(word)).await.unwrap();
        }
        let reply = replies.message().await.unwrap().unwrap();
        assert_eq!(reply, format!("re:{word}"));
    }
    drop(send);
    assert!(replies.message().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateways_own_failures_are_grpc_statuses() {
    let (https, channel, seen) = start("grpc-failures", 300).await;

    // The backend is down: UNAVAILABLE, which gRPC clients may retry.
    let down = unary_at(
        &channel,
        PathAndQuery::from_static("/gatehouse.test.Down/Get"),
        b"x",
    )
    .await
    .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert!(down.message().starts_with("Upstream failed"), "{down:?}");
    assert!(down.metadata().get("x-request-id").is_some());

    // No route: UNIMPLEMENTED.
    let unknown = unary_at(
        &channel,
        PathAndQuery::from_static("/gatehouse.test.Other/Get"),
        b"x",
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented, "{unknown:?}");

    // The route's 300 ms timeout passes: DEADLINE_EXCEEDED, and the backend's call ends.
    let late = unary(&channel, "Slow", b"x").await.unwrap_err();
    assert_eq!(late.code(), Code::DeadlineExceeded, "{late:?}");
    wait_until(|| seen.cancelled.load(Ordering::SeqCst) == 1).await;

    // Plain HTTP clients of the same gateway still get problem+json.
    let plain = https.proxy.send(common::get("/nowhere")).await;
    assert_eq!(plain.status, 404);
    assert_eq!(
        plain.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_the_client_abandons_is_cancelled_at_the_backend() {
    let (_https, channel, seen) = start("grpc-cancel", 30_000).await;
    // The client gives up after 200 ms (its own deadline), long before the route's timeout.
    let outcome =
        tokio::time::timeout(Duration::from_millis(200), unary(&channel, "Slow", b"x")).await;
    assert!(outcome.is_err(), "the slow call answered: {outcome:?}");
    wait_until(|| seen.cancelled.load(Ordering::SeqCst) == 1).await;
    assert_eq!(seen.started.load(Ordering::SeqCst), 1);
    // The connection is still good for the next call.
    assert_eq!(
        unary(&channel, "Unary", b"again").await.unwrap(),
        "echo:again"
    );
}

/// Waits until `done` holds (panics after many attempts: a hang guard, not a timing
/// assertion).
async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the condition never held");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_is_recognised_by_its_certificate_others_are_unauthenticated_and_limits_apply() {
    use common::tables::certified_client;
    use gatehouse_api::route_table::{ClientEntry, RateLimitEntry};
    let (backend, _seen) = start_backend().await;
    let ca = TestCa::new();
    let leaf: Leaf = ca.leaf(&[HOST]);
    let partners = TestCa::new();
    let mut table = grpc_table(backend, 1_000);
    table.clients = vec![ClientEntry {
        // One call, then one a second.
        max_in_flight: None,
        rate_limit: Some(RateLimitEntry {
            requests_per_second: 1,
            burst: 1,
            global: None,
        }),
        ..certified_client("acme", "partners-ca", &["gateway.acme.test"])
    }];
    let ca_pem = partners.pem();
    let https = Https::start_mounted(
        "grpc-partners",
        &table,
        &[("grpc", &leaf)],
        &[("partners-ca", &[("ca.crt", ca_pem.as_bytes())])],
        &[],
    )
    .await;

    let anonymous = unary(&channel(&ca, https.tls).await, "Unary", b"x")
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");

    let acme = partners.client_leaf("acme", &["gateway.acme.test"], &[]);
    let partner = channel_over(ca.client_presenting(&acme, &[b"h2"]), https.tls).await;
    assert_eq!(
        &unary(&partner, "Unary", b"hi").await.unwrap()[..],
        b"echo:hi"
    );
    let limited = unary(&partner, "Unary", b"again").await.unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
    assert!(
        limited.message().starts_with("Too many requests"),
        "{limited:?}"
    );
}
