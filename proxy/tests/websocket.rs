//! WebSockets through the gateway, with a real WebSocket server and client (tokio-tungstenite)
//! over the plain and the HTTPS listener: the upgrade reaches the backend below the contract's
//! base path with the forwarding headers, messages flow both ways (text, binary, large, pings),
//! a close from either side reaches the other, a backend that vanishes ends the client's
//! connection, the route's timeout closes a tunnel only when it has been idle that long, and
//! its tunnel timeout closes one however busy.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::https::{Https, tls_table};
use common::tables::{proxy, upstream, with_timeout};
use common::tls::TestCa;
use futures_util::{SinkExt, StreamExt};
use gatehouse_api::route_table::{PathKind, RouteTable, TlsVersion, UnknownServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const HOST: &str = "chat.shop.test";
/// The chat's URL over plain HTTP.
const URL: &str = "ws://chat.shop.test/v1/chat/room-1?user=ada";

/// Hang guard for one step of a test (not a timing assertion).
const STEP: Duration = Duration::from_secs(10);

/// What the backend saw.
#[derive(Default)]
struct Seen {
    /// Request target and headers of each upgrade.
    upgrades: Mutex<Vec<(String, BTreeMap<String, String>)>>,
    /// Connections whose WebSocket ended (closed, reset or timed out).
    ended: AtomicUsize,
}

/// A WebSocket backend: greets with `hello TARGET`, echoes text and binary messages, answers
/// `close-me` with a close frame (4000, "bye") and `vanish` by dropping the connection.
async fn backend() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let seen = shared.clone();
            tokio::spawn(async move {
                // The callback's error type is tungstenite's.
                #[allow(clippy::result_large_err)]
                let record = |request: &Request, response: Response| {
                    let headers = request
                        .headers()
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                        .collect();
                    seen.upgrades
                        .lock()
                        .unwrap()
                        .push((request.uri().to_string(), headers));
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, record).await else {
                    return;
                };
                let target = seen.upgrades.lock().unwrap().last().unwrap().0.clone();
                let _ = ws.send(Message::text(format!("hello {target}"))).await;
                while let Some(Ok(message)) = ws.next().await {
                    match message {
                        Message::Text(text) if text.as_str() == "close-me" => {
                            let bye = CloseFrame {
                                code: CloseCode::Library(4000),
                                reason: "bye".into(),
                            };
                            let _ = ws.close(Some(bye)).await;
                        }
                        Message::Text(text) if text.as_str() == "vanish" => break,
                        Message::Text(_) | Message::Binary(_) => {
                            let Ok(()) = ws.send(message).await else {
                                break;
                            };
                        }
                        _ => {}
                    }
                }
                seen.ended.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (address, seen)
}

/// `/v1/chat` proxied to the backend at `backend`, over plain HTTP and HTTPS, with a route
/// timeout of `timeout_ms`.
fn chat_table(backend: SocketAddr, timeout_ms: u64) -> RouteTable {
    tls_table(
        vec![with_timeout(
            proxy(
                "v1/chat",
                PathKind::Prefix,
                "/v1/chat",
                vec![upstream("chat", backend.port(), None, 1)],
            ),
            timeout_ms,
        )],
        &[("chat", &[HOST])],
        UnknownServerName::Default,
        TlsVersion::Tls12,
    )
}

/// The chat backend and a proxy in front of it (route timeout `timeout_ms`), with the CA its
/// HTTPS certificate comes from.
async fn start(name: &str, timeout_ms: u64) -> (Https, Arc<Seen>, TestCa) {
    let ca = TestCa::new();
    let certificate = ca.leaf(&[HOST]);
    let (address, seen) = backend().await;
    let table = chat_table(address, timeout_ms);
    let https = Https::start(name, &table, &[("chat", &certificate)]).await;
    (https, seen, ca)
}

/// A WebSocket to the chat over the plain listener.
async fn open_plain(https: &Https) -> WebSocketStream<TcpStream> {
    open(URL, TcpStream::connect(https.proxy.listen).await.unwrap()).await
}

/// Opens a WebSocket to `url` over `stream` and reads the backend's greeting.
async fn open<S: AsyncRead + AsyncWrite + Unpin>(url: &str, stream: S) -> WebSocketStream<S> {
    let (mut ws, response) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert_eq!(response.status(), 101);
    assert!(
        response.headers().contains_key("x-request-id"),
        "the 101 carries the request id"
    );
    let greeting = next(&mut ws).await.unwrap();
    assert_eq!(greeting, Message::text("hello /chat/room-1?user=ada"));
    ws
}

/// The next data or close message (pings and pongs are skipped); `None` once the stream ended.
async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Option<Message> {
    loop {
        match tokio::time::timeout(STEP, ws.next())
            .await
            .expect("the WebSocket neither answered nor ended")
        {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(message)) => return Some(message),
            Some(Err(_)) | None => return None,
        }
    }
}

/// Sends text, binary and large messages and pings; each comes back unchanged.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    for n in 0..50 {
        let text = Message::text(format!("message {n}"));
        ws.send(text.clone()).await.unwrap();
        assert_eq!(next(ws).await.unwrap(), text);
        let binary = Message::binary(vec![n; 1 + usize::from(n) * 7]);
        ws.send(binary.clone()).await.unwrap();
        assert_eq!(next(ws).await.unwrap(), binary);
    }
    // Larger than any buffer on the way, in one frame.
    let large = Message::binary((0..4 << 20).map(|i: u32| i as u8).collect::<Vec<u8>>());
    ws.send(large.clone()).await.unwrap();
    assert_eq!(next(ws).await.unwrap(), large);
    ws.send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(STEP, ws.next()).await.unwrap();
    assert_eq!(
        pong.unwrap().unwrap(),
        Message::Pong("are you there".into())
    );
}

/// Closes from the client: the backend's close comes back, then the connection ends.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    ws.close(None).await.unwrap();
    assert_eq!(next(ws).await, Some(Message::Close(None)), "close answered");
    assert_eq!(next(ws).await, None, "then the connection ends");
}

/// Waits until the backend saw `count` WebSockets end.
async fn wait_ended(seen: &Seen, count: usize) {
    tokio::time::timeout(STEP, async {
        while seen.ended.load(Ordering::SeqCst) < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the backend's WebSocket did not end");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_flow_both_ways_over_plain_http_and_https_and_a_client_close_reaches_the_backend()
{
    let (https, seen, ca) = start("ws-both", 5_000).await;

    let mut plain = open_plain(&https).await;
    let tls = common::tls::handshake(&ca.http1_client(), https.tls, HOST)
        .await
        .unwrap();
    let mut secure = open(&URL.replace("ws://", "wss://"), tls).await;

    exchange(&mut plain).await;
    exchange(&mut secure).await;

    close(&mut plain).await;
    close(&mut secure).await;
    wait_ended(&seen, 2).await;

    let upgrades = seen.upgrades.lock().unwrap().clone();
    assert_eq!(upgrades.len(), 2);
    for ((target, headers), proto) in upgrades.iter().zip(["http", "https"]) {
        assert_eq!(
            target, "/chat/room-1?user=ada",
            "below the contract's base path"
        );
        assert_eq!(headers["upgrade"].to_ascii_lowercase(), "websocket");
        assert!(
            headers["connection"]
                .to_ascii_lowercase()
                .contains("upgrade")
        );
        assert!(headers.contains_key("sec-websocket-key"));
        assert_eq!(headers["x-forwarded-proto"], proto);
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
        assert!(headers.contains_key("x-request-id"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_close_reaches_the_client_and_a_vanished_backend_ends_its_connection() {
    let (https, seen, _) = start("ws-close", 5_000).await;

    let mut ws = open_plain(&https).await;
    ws.send(Message::text("close-me")).await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        Some(Message::Close(Some(CloseFrame {
            code: CloseCode::Library(4000),
            reason: "bye".into(),
        }))),
        "the backend's close code and reason"
    );
    assert_eq!(next(&mut ws).await, None);
    wait_ended(&seen, 1).await;

    // The backend drops its connection without a close frame: the client's ends too.
    let mut ws = open_plain(&https).await;
    ws.send(Message::text("vanish")).await.unwrap();
    assert_eq!(next(&mut ws).await, None);
    wait_ended(&seen, 2).await;

    // Nothing of either is left behind: a new WebSocket works.
    let mut ws = open_plain(&https).await;
    exchange(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_route_timeout_closes_an_idle_websocket_but_not_a_busy_one() {
    let (https, seen, _) = start("ws-idle", 800).await;
    let mut ws = open_plain(&https).await;

    // Busy for three times the timeout: it stays open.
    for n in 0..12 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let text = Message::text(format!("still here {n}"));
        ws.send(text.clone()).await.unwrap();
        assert_eq!(next(&mut ws).await.unwrap(), text);
    }
    assert_eq!(seen.ended.load(Ordering::SeqCst), 0);

    // Idle: the proxy closes both sides.
    assert!(matches!(
        next(&mut ws).await,
        None | Some(Message::Close(_))
    ));
    wait_ended(&seen, 1).await;
}

/// Sends a message every 100 ms and reads its echo until the connection ends; returns how
/// many came back. Panics after 100 (10 s: ten times the test's tunnel timeout).
async fn busy_until_closed<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> u32 {
    for n in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = Message::text(format!("busy {n}"));
        if ws.send(text.clone()).await.is_err() {
            return n;
        }
        match next(ws).await {
            Some(echo) if echo == text => {}
            None | Some(Message::Close(_)) => return n,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    panic!("the tunnel outlived its timeout by far");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tunnel_timeout_closes_a_busy_websocket_over_both_listeners() {
    let ca = TestCa::new();
    let certificate = ca.leaf(&[HOST]);
    let (address, seen) = backend().await;
    let mut table = chat_table(address, 10_000);
    table.routes[0].tunnel_timeout_ms = Some(1_000);
    let https = Https::start("ws-tunnel", &table, &[("chat", &certificate)]).await;

    let mut plain = open_plain(&https).await;
    let tls = common::tls::handshake(&ca.http1_client(), https.tls, HOST)
        .await
        .unwrap();
    let mut secure = open(&URL.replace("ws://", "wss://"), tls).await;
    let (plain_echoes, secure_echoes) = tokio::join!(
        busy_until_closed(&mut plain),
        busy_until_closed(&mut secure)
    );
    // Both served until their tunnel timeout, well before the idle one (10 s) could end them.
    assert!(plain_echoes > 0 && secure_echoes > 0);
    wait_ended(&seen, 2).await;

    // Nothing else on the route is bounded by it: a new WebSocket works as before.
    let mut ws = open_plain(&https).await;
    exchange(&mut ws).await;
}
