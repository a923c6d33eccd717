//! TLS from the proxy to upstreams, with real TLS backends (rustls + hyper) that the test
//! starts: the backend's certificate is verified against the CA Secret (or the built-in web
//! PKI roots), the server name goes by SNI and must match, connections are pooled, the proxy
//! presents its client certificate when the backend demands one, HTTP/2 goes by ALPN, and a
//! missing or wrong Secret fails the request with 502 rather than falling back to cleartext.

#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::https::SecretData;
use common::tables::{proxy, upstream};
use common::tls::{Leaf, TestCa};
use common::{ConfigMapDir, Proxy, serve_with_secrets, temp_dir};
use gatehouse_api::route_table::{PathKind, RouteEntry, UpstreamProtocol, UpstreamTls};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const NAME: &str = "orders.internal";

/// One TLS connection a backend accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Handshake {
    server_name: Option<String>,
    client_certificate: bool,
    alpn: Option<Vec<u8>>,
}

/// A TLS backend and what it saw.
struct TlsBackend {
    address: SocketAddr,
    handshakes: Arc<Mutex<Vec<Handshake>>>,
    /// HTTP version and target of each request.
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

/// A backend serving `leaf` over TLS (ALPN `h2` and `http/1.1`), demanding a client
/// certificate of `clients` when given; answers 200 `tls`.
async fn tls_backend(leaf: &Leaf, clients: Option<&TestCa>) -> TlsBackend {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match clients {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()), provider)
                .build()
                .unwrap(),
        ),
        None => builder.with_no_client_auth(),
    };
    let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = TlsBackend {
        address: listener.local_addr().unwrap(),
        handshakes: Arc::default(),
        requests: Arc::default(),
    };
    let (handshakes, requests) = (backend.handshakes.clone(), backend.requests.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, handshakes, requests) =
                (acceptor.clone(), handshakes.clone(), requests.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let session = tls.get_ref().1;
                let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
                handshakes.lock().unwrap().push(Handshake {
                    server_name: session.server_name().map(str::to_owned),
                    client_certificate: session.peer_certificates().is_some(),
                    alpn: alpn.clone(),
                });
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let requests = requests.clone();
                    async move {
                        requests.lock().unwrap().push((
                            format!("{:?}", request.version()),
                            request.uri().path_and_query().unwrap().to_string(),
                        ));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"tls"))))
                    }
                });
                let io = TokioIo::new(tls);
                if alpn.as_deref() == Some(b"h2") {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    backend
}

/// Route `id` proxying `/v1/ID` to `backend` over TLS as `tls` says, speaking `protocol`.
fn tls_route(
    id: &str,
    backend: &TlsBackend,
    tls: UpstreamTls,
    protocol: UpstreamProtocol,
) -> RouteEntry {
    let mut target = upstream("orders", backend.address.port(), None, 1);
    target.tls = Some(tls);
    target.protocol = protocol;
    proxy(
        &format!("v1/{id}"),
        PathKind::Prefix,
        &format!("/v1/{id}"),
        vec![target],
    )
}

fn tls_to(
    server_name: &str,
    ca_secret: Option<&str>,
    client_certificate: Option<&str>,
) -> UpstreamTls {
    UpstreamTls {
        server_name: server_name.to_owned(),
        ca_secret: ca_secret.map(str::to_owned),
        client_certificate: client_certificate.map(str::to_owned),
    }
}

/// Starts the proxy on `routes` with `secrets` (name, files) mounted.
async fn start(
    name: &str,
    routes: Vec<RouteEntry>,
    secrets: &[(&str, SecretData<'_>)],
) -> (Proxy, Vec<ConfigMapDir>) {
    let dir = temp_dir(name);
    let mounted = secrets
        .iter()
        .map(|(secret, files)| {
            let mut mount = ConfigMapDir::new(&dir.join("secrets").join(secret));
            mount.publish_files(files);
            mount
        })
        .collect();
    let proxy = serve_with_secrets(&dir, &common::tables::bytes(routes)).await;
    (proxy, mounted)
}

/// Starts the proxy with the backend's authorities `ca` (PEM) as `orders-ca` and `client` as
/// its client certificate `gateway-tls`.
async fn start_mutual(
    name: &str,
    routes: Vec<RouteEntry>,
    ca: &str,
    client: &Leaf,
) -> (Proxy, Vec<ConfigMapDir>) {
    let certificate = [
        ("tls.crt", client.cert_pem.as_bytes()),
        ("tls.key", client.key_pem.as_bytes()),
    ];
    let secrets = [
        ("orders-ca", &[("ca.crt", ca.as_bytes())][..]),
        ("gateway-tls", &certificate[..]),
    ];
    start(name, routes, &secrets).await
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_upstreams_are_verified_by_authority_and_name_and_their_connections_pooled() {
    let authority = TestCa::new();
    let backend = tls_backend(&authority.leaf(&[NAME]), None).await;
    let ca = authority.pem();
    let routes = vec![
        tls_route(
            "verified",
            &backend,
            tls_to(NAME, Some("orders-ca"), None),
            UpstreamProtocol::Http1,
        ),
        tls_route(
            "misnamed",
            &backend,
            tls_to("other.internal", Some("orders-ca"), None),
            UpstreamProtocol::Http1,
        ),
        tls_route(
            "public-roots",
            &backend,
            tls_to(NAME, None, None),
            UpstreamProtocol::Http1,
        ),
        tls_route(
            "absent-ca",
            &backend,
            tls_to(NAME, Some("absent-ca"), None),
            UpstreamProtocol::Http1,
        ),
    ];
    let (proxy, _mounts) = start(
        "upstream-tls",
        routes,
        &[("orders-ca", &[("ca.crt", ca.as_bytes())])],
    )
    .await;

    for n in 0..20 {
        let reply = proxy.send(common::get(&format!("/v1/verified/{n}"))).await;
        assert_eq!((reply.status, reply.text()), (200, "tls".to_owned()), "{n}");
    }
    let handshakes = backend.handshakes.lock().unwrap().clone();
    assert_eq!(
        handshakes,
        [Handshake {
            server_name: Some(NAME.to_owned()),
            client_certificate: false,
            alpn: Some(b"http/1.1".to_vec()),
        }],
        "one pooled connection for 20 requests, named by SNI"
    );
    assert_eq!(
        backend.requests.lock().unwrap()[0],
        ("HTTP/1.1".to_owned(), "/verified/0".to_owned())
    );

    // A certificate for another name, one the web PKI never signed, no CA at all: 502, and
    // nothing is sent in cleartext.
    for route in ["misnamed", "public-roots", "absent-ca"] {
        let reply = proxy.send(common::get(&format!("/v1/{route}/1"))).await;
        assert_eq!(reply.status, 502, "{route}: {}", reply.text());
    }
    assert_eq!(backend.requests.lock().unwrap().len(), 20);
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(
        log.contains("TLS to upstream orders.internal: CA Secret \"absent-ca\" is missing"),
        "{log}"
    );
    assert!(
        log.contains("TLS handshake with upstream") && log.contains("(other.internal) failed"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_presents_its_client_certificate_and_speaks_http2_by_alpn() {
    let authority = TestCa::new();
    let gateways = TestCa::new();
    let backend = tls_backend(&authority.leaf(&[NAME]), Some(&gateways)).await;
    let ca = authority.pem();
    let client = gateways.client_leaf("gateway", &["gateway.shop.test"], &[]);
    let routes = vec![
        tls_route(
            "mutual",
            &backend,
            tls_to(NAME, Some("orders-ca"), Some("gateway-tls")),
            UpstreamProtocol::Http1,
        ),
        tls_route(
            "h2",
            &backend,
            tls_to(NAME, Some("orders-ca"), Some("gateway-tls")),
            UpstreamProtocol::H2c,
        ),
        tls_route(
            "anonymous",
            &backend,
            tls_to(NAME, Some("orders-ca"), None),
            UpstreamProtocol::Http1,
        ),
    ];
    let (proxy, _mounts) = start_mutual("upstream-mtls", routes, &ca, &client).await;

    assert_eq!(proxy.send(common::get("/v1/mutual/1")).await.status, 200);
    for _ in 0..10 {
        assert_eq!(proxy.send(common::get("/v1/h2/2")).await.status, 200);
    }
    // The backend refuses a connection without a client certificate.
    assert_eq!(proxy.send(common::get("/v1/anonymous/3")).await.status, 502);
    let requests = backend.requests.lock().unwrap().clone();
    let mut expected = vec![("HTTP/1.1".to_owned(), "/mutual/1".to_owned())];
    expected.extend(std::iter::repeat_n(
        ("HTTP/2.0".to_owned(), "/h2/2".to_owned()),
        10,
    ));
    assert_eq!(requests, expected);
    // One connection each for HTTP/1.1 and HTTP/2 (its 10 requests as streams of one), both
    // with the client certificate; the anonymous handshake failed.
    let handshakes = backend.handshakes.lock().unwrap().clone();
    let presented = |alpn: &[u8]| Handshake {
        server_name: Some(NAME.to_owned()),
        client_certificate: true,
        alpn: Some(alpn.to_vec()),
    };
    assert_eq!(handshakes, [presented(b"http/1.1"), presented(b"h2")]);
}

/// A TLS backend that answers one request per connection with keep-alive, as any, and then
/// closes the connection 100 ms later (its idle timeout); counts its handshakes.
async fn idle_closing_backend(leaf: &Leaf) -> (SocketAddr, Arc<Mutex<usize>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let handshakes = Arc::new(Mutex::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                *counted.lock().unwrap() += 1;
                let mut request = Vec::new();
                let mut buffer = [0; 4096];
                // The head and a body of the Content-Length the test sends (7 bytes).
                while !request.ends_with(b"\r\n\r\npayment") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let response = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntls";
                tls.write_all(response).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (address, handshakes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_connection_the_backend_closed_is_never_used() {
    let authority = TestCa::new();
    let (address, handshakes) = idle_closing_backend(&authority.leaf(&[NAME])).await;
    let mut target = upstream("orders", address.port(), None, 1);
    target.tls = Some(tls_to(NAME, Some("orders-ca"), None));
    let route = proxy("v1/pay", PathKind::Prefix, "/v1/pay", vec![target]);
    let ca = authority.pem();
    let (proxy, _mounts) = start(
        "upstream-tls-closed",
        vec![route],
        &[("orders-ca", &[("ca.crt", ca.as_bytes())])],
    )
    .await;
    // A POST is never retried: one sent on a connection the backend had closed would fail.
    for n in 0..5 {
        let post = common::request("POST", &format!("/v1/pay/{n}"))
            .body(Full::new(Bytes::from_static(b"payment")))
            .unwrap();
        let reply = proxy.send(post).await;
        assert_eq!((reply.status, reply.text()), (200, "tls".to_owned()), "{n}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert_eq!(*handshakes.lock().unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn renewed_secrets_apply_at_once_and_a_broken_one_keeps_the_last_good_settings() {
    let authority = TestCa::new();
    let gateways = TestCa::new();
    let backend = tls_backend(&authority.leaf(&[NAME]), Some(&gateways)).await;
    let client = gateways.client_leaf("gateway", &["gateway.shop.test"], &[]);
    let routes = vec![tls_route(
        "mutual",
        &backend,
        tls_to(NAME, Some("orders-ca"), Some("gateway-tls")),
        UpstreamProtocol::Http1,
    )];
    let ca = authority.pem();
    let (proxy, mut mounts) = start_mutual("upstream-tls-renewal", routes, &ca, &client).await;
    let status = || async { proxy.send(common::get("/v1/mutual/1")).await.status };
    assert_eq!(status().await, 200);

    // A broken client certificate: the proxy keeps the settings it had, and says so.
    mounts[1].publish_files(&[("tls.crt", b"not a certificate"), ("tls.key", b"")]);
    proxy.wait_generation(2).await;
    assert_eq!(status().await, 200);
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(
        log.contains("TLS to upstream orders.internal: TLS Secret \"gateway-tls\"")
            && log.contains("still using its previous settings"),
        "{log}"
    );

    // A renewed client certificate: a new connection presents it at once.
    let renewed = gateways.client_leaf("gateway-2027", &["gateway.shop.test"], &[]);
    mounts[1].publish_files(&[
        ("tls.crt", renewed.cert_pem.as_bytes()),
        ("tls.key", renewed.key_pem.as_bytes()),
    ]);
    proxy.wait_generation(3).await;
    assert_eq!(status().await, 200);
    assert_eq!(backend.handshakes.lock().unwrap().len(), 2);

    // An authority that did not sign the backend's certificate: the pooled connection is
    // not reused, the new one fails verification and nothing is sent.
    let stranger = TestCa::new();
    mounts[0].publish_files(&[("ca.crt", stranger.pem().as_bytes())]);
    proxy.wait_generation(4).await;
    assert_eq!(status().await, 502);

    // The right authority again.
    mounts[0].publish_files(&[("ca.crt", ca.as_bytes())]);
    proxy.wait_generation(5).await;
    assert_eq!(status().await, 200);
    let handshakes = backend.handshakes.lock().unwrap().clone();
    assert_eq!(handshakes.len(), 3, "{handshakes:?}");
    assert!(handshakes.iter().all(|h| h.client_certificate));
    assert_eq!(backend.requests.lock().unwrap().len(), 4);
}
