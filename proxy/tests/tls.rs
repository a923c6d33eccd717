//! HTTPS at the proxy, with real handshakes: certificates made by the test (rcgen) and mounted
//! the way the kubelet mounts `kubernetes.io/tls` Secrets, a real TLS client (rustls) that
//! checks which certificate it was given, HTTP/1.1 and HTTP/2 (ALPN) over it, the plain
//! listener's redirect, certificate rotation under load, and clients that misbehave.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::https::{Https, mount_certificate, publish_certificate, tls_table};
use common::tables::{self, proxy, respond, upstream};
use common::tls::{Leaf, TestCa, handshake, https_get, negotiated, presented};
use common::{Upstream, raw_exchange, raw_status};
use gatehouse_api::route_table::{PathKind, RouteEntry, RouteTable, TlsVersion, UnknownServerName};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn hello() -> RouteEntry {
    respond("v1/hello", PathKind::Exact, "/v1/hello")
}

/// `/v1/hello` over HTTPS with the one certificate `api` for `api.shop.test`.
fn api_table(unknown_server_name: UnknownServerName, min_version: TlsVersion) -> RouteTable {
    tls_table(
        vec![hello()],
        &[("api", &["api.shop.test"])],
        unknown_server_name,
        min_version,
    )
}

/// Waits until a new handshake for `host` is given `leaf` (panics after many attempts: a hang
/// guard, not a timing assertion).
async fn wait_presented(ca: &TestCa, address: SocketAddr, host: &str, leaf: &Leaf) {
    let client = ca.http1_client();
    for _ in 0..3000 {
        if let Ok(stream) = handshake(&client, address, host).await
            && presented(&stream) == leaf.der
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{host} was never given the expected certificate");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_name_picks_the_certificate_exact_before_wildcard_and_the_first_is_the_default()
{
    let ca = TestCa::new();
    let wildcard = ca.leaf(&["*.shop.test"]);
    let api = ca.leaf(&["api.shop.test"]);
    let table = tls_table(
        vec![hello()],
        &[("wildcard", &["*.shop.test"]), ("api", &["api.shop.test"])],
        UnknownServerName::Default,
        TlsVersion::Tls12,
    );
    let https = Https::start("tls-sni", &table, &[("wildcard", &wildcard), ("api", &api)]).await;
    let client = ca.http1_client();

    let (status, body, certificate) = https_get(&client, https.tls, "api.shop.test", "/v1/hello")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "v1/hello"));
    assert!(certificate == api.der, "the exact name's certificate");
    let (_, _, certificate) = https_get(&client, https.tls, "www.shop.test", "/v1/hello")
        .await
        .unwrap();
    assert!(certificate == wildcard.der, "the wildcard's certificate");

    // No SNI at all: the first certificate (the client checks it against www.shop.test).
    let no_sni = ca.client(rustls::ALL_VERSIONS, &[b"http/1.1"], false);
    let stream = handshake(&no_sni, https.tls, "www.shop.test")
        .await
        .unwrap();
    assert!(presented(&stream) == wildcard.der);
    // An unknown name also gets the first certificate, which the client then refuses.
    let refused = handshake(&client, https.tls, "other.test").await;
    assert!(
        refused.unwrap_err().contains("certificate"),
        "a certificate for another name was presented"
    );

    // The plain listener keeps serving plain HTTP, and a TLS handshake there fails.
    assert_eq!(https.proxy.send(common::get("/v1/hello")).await.status, 200);
    assert!(
        handshake(&client, https.proxy.listen, "api.shop.test")
            .await
            .is_err()
    );
    https.wait_handshakes("done", 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_server_names_are_refused_when_the_table_says_so() {
    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let table = api_table(UnknownServerName::Refuse, TlsVersion::Tls12);
    let https = Https::start("tls-refuse", &table, &[("api", &api)]).await;
    let client = ca.http1_client();
    assert!(handshake(&client, https.tls, "api.shop.test").await.is_ok());
    assert!(
        handshake(&client, https.tls, "other.shop.test")
            .await
            .is_err()
    );
    let no_sni = ca.client(rustls::ALL_VERSIONS, &[b"http/1.1"], false);
    assert!(
        handshake(&no_sni, https.tls, "api.shop.test")
            .await
            .is_err()
    );
    https.wait_handshakes("failed", 2).await;
}

/// A TLS 1.1 ClientHello (TLS_RSA_WITH_AES_128_CBC_SHA, ECDHE-RSA-AES128-SHA) for `host`: what
/// no rustls client can send any more.
fn tls11_client_hello(host: &str) -> Vec<u8> {
    let mut sni = vec![0x00];
    sni.extend((host.len() as u16).to_be_bytes());
    sni.extend(host.as_bytes());
    let mut sni_list = (sni.len() as u16).to_be_bytes().to_vec();
    sni_list.extend(sni);
    let mut extensions = vec![0x00, 0x00];
    extensions.extend((sni_list.len() as u16).to_be_bytes());
    extensions.extend(sni_list);
    let mut body = vec![0x03, 0x02];
    body.extend([7u8; 32]);
    body.push(0);
    body.extend([0x00, 0x04, 0x00, 0x2f, 0xc0, 0x13]);
    body.extend([0x01, 0x00]);
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![0x01];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_1_2_and_1_3_by_default_1_3_only_when_asked_and_never_1_1() {
    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let table = |min| api_table(UnknownServerName::Default, min);
    let mut https = Https::start("tls-versions", &table(TlsVersion::Tls12), &[("api", &api)]).await;
    let tls12 = ca.client(&[&rustls::version::TLS12], &[b"http/1.1"], true);
    let tls13 = ca.client(&[&rustls::version::TLS13], &[b"http/1.1"], true);
    let stream = handshake(&tls12, https.tls, "api.shop.test").await.unwrap();
    assert_eq!(negotiated(&stream).0, rustls::ProtocolVersion::TLSv1_2);
    let stream = handshake(&tls13, https.tls, "api.shop.test").await.unwrap();
    assert_eq!(negotiated(&stream).0, rustls::ProtocolVersion::TLSv1_3);

    // TLS 1.1: a fatal alert (rustls says handshake_failure), never a ServerHello.
    let answer = raw_tls_exchange(https.tls, &tls11_client_hello("api.shop.test")).await;
    assert_eq!(answer.first(), Some(&0x15), "an alert record: {answer:?}");
    assert_eq!(answer.get(5), Some(&2), "a fatal alert: {answer:?}");

    let mut only13 = table(TlsVersion::Tls13);
    only13.source.generation = Some(2);
    https.publish(&only13, 2).await;
    assert!(handshake(&tls12, https.tls, "api.shop.test").await.is_err());
    let stream = handshake(&tls13, https.tls, "api.shop.test").await.unwrap();
    assert_eq!(negotiated(&stream).0, rustls::ProtocolVersion::TLSv1_3);
}

/// Writes `bytes` on a new connection and reads what comes back until the proxy closes it.
async fn raw_tls_exchange(address: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut read = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut read))
        .await
        .expect("the proxy neither answered nor closed the connection");
    read
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plain_listener_redirects_to_https_with_path_and_query_when_the_table_says_so() {
    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let mut table = api_table(UnknownServerName::Default, TlsVersion::Tls12);
    table.https_redirect_port = Some(8443);
    let mut https = Https::start("tls-redirect", &table, &[("api", &api)]).await;
    let redirect = |host: &str| {
        hyper::Request::get("/v1/hello?page=2&q=a%20b")
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let reply = https.proxy.send(redirect("api.shop.test:8080")).await;
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://api.shop.test:8443/v1/hello?page=2&q=a%20b")
    );
    // Any path, routed or not, is redirected.
    let reply = https.proxy.send(common::get("/no/such/route")).await;
    assert_eq!(reply.status, 308);
    // Over HTTPS the same request is served.
    let (status, body, _) = https_get(&ca.http1_client(), https.tls, "api.shop.test", "/v1/hello")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "v1/hello"));

    // The standard port is left out of the location.
    table.https_redirect_port = Some(443);
    table.source.generation = Some(2);
    https.publish(&table, 2).await;
    let reply = https.proxy.send(redirect("api.shop.test")).await;
    assert_eq!(
        reply.header("location"),
        Some("https://api.shop.test/v1/hello?page=2&q=a%20b")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_rotated_20_times_under_load_fails_no_request_and_the_newest_is_served() {
    let ca = TestCa::new();
    let first = ca.leaf(&["api.shop.test"]);
    let table = api_table(UnknownServerName::Default, TlsVersion::Tls12);
    let mut https = Https::start("tls-rotation", &table, &[("api", &first)]).await;
    let address = https.tls;

    // A kept-alive connection opened before the rotations.
    let kept = handshake(&ca.http1_client(), address, "api.shop.test")
        .await
        .unwrap();
    let (mut kept_sender, kept_connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(kept))
            .await
            .unwrap();
    tokio::spawn(kept_connection);

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut loops = Vec::new();
    for _ in 0..2 {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        let client = ca.http1_client();
        loops.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match https_get(&client, address, "api.shop.test", "/v1/hello").await {
                    Ok((200, _, _)) => served.fetch_add(1, Ordering::Relaxed),
                    other => {
                        errors.push(format!("{other:?}"));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        }));
    }
    let mut newest = first.clone();
    for _ in 0..20 {
        newest = ca.leaf(&["api.shop.test"]);
        publish_certificate(&mut https.mounts[0], &newest);
        wait_presented(&ca, address, "api.shop.test", &newest).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for handle in loops {
        errors.extend(handle.await.unwrap());
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{errors:?}");
    assert!(served.load(Ordering::Relaxed) > 20);
    wait_presented(&ca, address, "api.shop.test", &newest).await;

    let request = hyper::Request::get("/v1/hello")
        .header("host", "api.shop.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = kept_sender.send_request(request).await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "the established connection survived"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_or_missing_certificate_secret_keeps_the_last_good_certificate_and_the_routes_update()
 {
    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let other = ca.leaf(&["other.shop.test"]);
    let table = |generation, routes| {
        let mut table = tls_table(
            routes,
            &[
                ("api", &["api.shop.test"]),
                ("other", &["other.shop.test"]),
                ("never", &["never.shop.test"]),
            ],
            UnknownServerName::Refuse,
            TlsVersion::Tls12,
        );
        table.source.generation = Some(generation);
        table
    };
    // "never" is not mounted: its name is refused (the policy for unknown names), the others
    // serve.
    let mut https = Https::start(
        "tls-broken",
        &table(1, vec![hello()]),
        &[("api", &api), ("other", &other)],
    )
    .await;
    let client = ca.http1_client();
    assert!(
        handshake(&client, https.tls, "never.shop.test")
            .await
            .is_err()
    );
    let log = https.proxy.log_text();
    assert!(
        log.contains("TLS Secret \"never\" is missing"),
        "the missing Secret is named: {log}"
    );

    // A key that is not the certificate's, then a certificate that is not PEM: the last good
    // certificate keeps serving, the other Secret's too.
    let stranger = ca.leaf(&["api.shop.test"]);
    https.mounts[0].publish_files(&[
        ("tls.crt", api.cert_pem.as_bytes()),
        ("tls.key", stranger.key_pem.as_bytes()),
    ]);
    let routes = vec![hello(), respond("v1/added", PathKind::Exact, "/v1/added")];
    https.publish(&table(2, routes.clone()), 2).await;
    let (status, _, certificate) = https_get(&client, https.tls, "api.shop.test", "/v1/added")
        .await
        .unwrap();
    assert_eq!(status, 200, "the routes updated");
    assert!(certificate == api.der, "the last good certificate");
    let log = https.proxy.log_text();
    assert!(
        log.contains("TLS Secret \"api\": the private key in tls.key does not match"),
        "{log}"
    );
    assert!(!log.contains("PRIVATE KEY"), "no key material in the log");

    https.mounts[0].publish_files(&[
        ("tls.crt", b"not a certificate".as_slice()),
        ("tls.key", api.key_pem.as_bytes()),
    ]);
    https.publish(&table(3, routes), 3).await;
    let stream = handshake(&client, https.tls, "api.shop.test")
        .await
        .unwrap();
    assert!(presented(&stream) == api.der);
    let stream = handshake(&client, https.tls, "other.shop.test")
        .await
        .unwrap();
    assert!(presented(&stream) == other.der);
    assert!(
        https
            .proxy
            .log_text()
            .contains("TLS Secret \"api\": tls.crt holds no PEM certificate")
    );

    // Mounted at last, the missing Secret serves.
    let never = ca.leaf(&["never.shop.test"]);
    https
        .mounts
        .push(mount_certificate(&https.secrets, "never", &never));
    wait_presented(&ca, https.tls, "never.shop.test", &never).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_without_certificates_closes_tls_connections_and_a_silent_client_is_cut_off() {
    let ca = TestCa::new();
    let https = Https::start("tls-none", &tables::table(vec![hello()]), &[]).await;
    let client = ca.http1_client();
    assert!(
        handshake(&client, https.tls, "api.shop.test")
            .await
            .is_err()
    );
    assert_eq!(https.proxy.send(common::get("/v1/hello")).await.status, 200);

    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let table = api_table(UnknownServerName::Default, TlsVersion::Tls12);
    let https = Https::start_with(
        "tls-silent",
        &table,
        &[("api", &api)],
        &["--request-head-timeout", "1"],
    )
    .await;
    // A client that connects and sends nothing, or half a ClientHello, is closed.
    assert!(raw_tls_exchange(https.tls, b"").await.is_empty());
    let hello = tls11_client_hello("api.shop.test");
    assert!(raw_tls_exchange(https.tls, &hello[..20]).await.is_empty());
    // Plain HTTP sent to the HTTPS port gets no HTTP answer.
    let raw = raw_exchange(https.tls, b"GET /v1/hello HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(raw_status(&raw), 0, "{raw}");
    https.wait_handshakes("timed_out", 2).await;
}

/// An HTTP/2 connection over TLS (ALPN `h2`) to the proxy.
async fn h2_connection(
    ca: &TestCa,
    address: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = handshake(
        &ca.client(rustls::ALL_VERSIONS, &[b"h2", b"http/1.1"], true),
        address,
        "api.shop.test",
    )
    .await
    .unwrap();
    assert_eq!(negotiated(&stream).1.as_deref(), Some(&b"h2"[..]));
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

/// An HTTP/2 connection over TLS driven frame by frame (the `h2` crate): streams reset at
/// will, bodies sent in DATA frames of the test's choosing.
async fn h2_frames(
    ca: &TestCa,
    address: SocketAddr,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::Connection<tokio_rustls::client::TlsStream<TcpStream>, Bytes>,
) {
    let stream = handshake(
        &ca.client(rustls::ALL_VERSIONS, &[b"h2"], true),
        address,
        "api.shop.test",
    )
    .await
    .unwrap();
    h2::client::handshake(stream).await.unwrap()
}

fn h2_get(target: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::get(format!("https://api.shop.test{target}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn proxied_table(backend: &Upstream) -> RouteTable {
    tls_table(
        vec![
            hello(),
            proxy(
                "v1/orders",
                PathKind::Prefix,
                "/v1/orders",
                vec![upstream("orders", backend.port(), None, 1)],
            ),
        ],
        &[("api", &["api.shop.test"])],
        UnknownServerName::Default,
        TlsVersion::Tls12,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_by_alpn_serves_many_concurrent_streams_to_an_http1_upstream() {
    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let backend = Upstream::named("orders").await;
    let https = Https::start("tls-h2", &proxied_table(&backend), &[("api", &api)]).await;
    let sender = h2_connection(&ca, https.tls).await;
    // More streams than the connection allows at once (100): the client queues the rest.
    let requests = (0..300).map(|n| {
        let mut sender = sender.clone();
        async move {
            let response = sender
                .send_request(h2_get(&format!("/v1/orders/{n}?x=1")))
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let echoed = response
                .headers()
                .get("x-echo-target")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((status, echoed, body.to_bytes()))
        }
    });
    let results = futures_util::future::join_all(requests).await;
    for (n, result) in results.into_iter().enumerate() {
        let (status, echoed, body) = result.unwrap();
        assert_eq!(status, 200);
        // The contract's base path `/v1` is not the upstream's.
        assert_eq!(echoed.as_deref(), Some(format!("/orders/{n}?x=1").as_str()));
        assert_eq!(&body[..], b"orders");
    }
    let seen = backend.requests();
    assert_eq!(seen.len(), 300);
    assert!(
        seen.iter()
            .all(|r| r.header("x-forwarded-proto") == Some("https")),
        "the upstream learns that the client spoke TLS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rapid_reset_client_is_cut_off_while_other_clients_are_served() {
    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let backend = Upstream::named("orders").await;
    let https = Https::start(
        "tls-rapid-reset",
        &proxied_table(&backend),
        &[("api", &api)],
    )
    .await;

    let (mut client, connection) = h2_frames(&ca, https.tls).await;
    let connection = tokio::spawn(connection);
    let mut sent = 0;
    let attack = tokio::time::timeout(Duration::from_secs(60), async {
        while sent < 100_000 {
            let Ok(ready) = client.clone().ready().await else {
                return;
            };
            client = ready;
            let request = http::Request::get("https://api.shop.test/v1/orders/1")
                .body(())
                .unwrap();
            let Ok((_response, mut stream)) = client.send_request(request, true) else {
                return;
            };
            stream.send_reset(h2::Reason::CANCEL);
            sent += 1;
        }
    });
    attack
        .await
        .expect("the attacking connection was never closed");
    assert!(
        sent < 100_000,
        "the attacker was cut off after {sent} resets"
    );
    assert!(
        backend.requests().len() < sent,
        "reset streams are not all forwarded"
    );
    let ended = tokio::time::timeout(Duration::from_secs(30), connection)
        .await
        .expect("the connection ended");
    assert!(
        ended.unwrap().is_err(),
        "the server ended the connection with an error (GOAWAY)"
    );

    // Everyone else is served.
    let mut sender = h2_connection(&ca, https.tls).await;
    let response = sender.send_request(h2_get("/v1/hello")).await.unwrap();
    assert_eq!(response.status(), 200);
    let reply = https.proxy.send(common::get("/v1/hello")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_body_streamed_past_the_routes_limit_is_cut_off_with_413() {
    let ca = TestCa::new();
    let api = ca.leaf(&["api.shop.test"]);
    let backend = Upstream::counting().await;
    let mut table = proxied_table(&backend);
    for route in &mut table.routes {
        route.max_body_bytes = Some(1000);
    }
    let https = Https::start("tls-h2-body-limit", &table, &[("api", &api)]).await;
    let (client, connection) = h2_frames(&ca, https.tls).await;
    tokio::spawn(connection);
    // DATA frames without a content-length: under the limit, then past it, on one connection.
    for (chunks, status, body) in [(2, 200, Some("800")), (3, 413, None)] {
        let mut client = client.clone().ready().await.unwrap();
        let request = http::Request::post("https://api.shop.test/v1/orders/upload")
            .body(())
            .unwrap();
        let (response, mut upload) = client.send_request(request, false).unwrap();
        for n in 0..chunks {
            upload.reserve_capacity(400);
            upload
                .send_data(Bytes::from(vec![b'x'; 400]), n + 1 == chunks)
                .unwrap();
        }
        let response = tokio::time::timeout(Duration::from_secs(30), response)
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        let mut received = response.into_body();
        let mut text = Vec::new();
        while let Some(Ok(data)) = received.data().await {
            text.extend_from_slice(&data);
        }
        if let Some(body) = body {
            assert_eq!(String::from_utf8_lossy(&text), body);
        } else {
            assert!(String::from_utf8_lossy(&text).contains("Content too large"));
        }
    }
    assert!(
        backend.largest_body() <= 1000,
        "the backend received more than the limit"
    );
}
