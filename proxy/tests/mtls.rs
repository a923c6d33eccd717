//! Client certificates (mutual TLS) on the HTTPS listener, with real handshakes: certificates
//! made by the test's authorities, presented by a rustls client over HTTP/1.1 and HTTP/2. A
//! partner's certificate names its client (by DNS or URI SAN, or the subject's common name);
//! without one a client is recognised by its API key or refused with 401; a certificate no
//! authority signed fails the handshake; a CA Secret that breaks, or is replaced, applies to
//! the next handshake.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::https::{Https, tls_table};
use common::tables::{certified_client, edits, proxy, upstream};
use common::tls::{Leaf, TestCa, handshake, https_get};
use common::{ConfigMapDir, Upstream};
use gatehouse_api::route_table::{
    ApiKeyEntry, ClientEntry, PathKind, RouteTable, TlsVersion, UnknownServerName,
};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

const HOST: &str = "api.partners.test";

/// `/v1/orders` over HTTPS, telling the backend the client in `x-client`; partners recognised
/// by certificates of `partners-ca`, `web` by an API key.
fn partner_table(backend: &Upstream) -> RouteTable {
    let mut orders = proxy(
        "v1/orders",
        PathKind::Prefix,
        "/v1/orders",
        vec![upstream("orders", backend.port(), None, 1)],
    );
    orders.request_headers = edits(&[("x-client", "{client}")], &[], &[]);
    let mut table = tls_table(
        vec![orders],
        &[("api", &[HOST])],
        UnknownServerName::Default,
        TlsVersion::Tls12,
    );
    table.clients = vec![
        certified_client("acme", "partners-ca", &["gateway.acme.test"]),
        certified_client("billing", "partners-ca", &["spiffe://corp/billing"]),
        certified_client("ledger", "partners-ca", &["Ledger-Service"]),
        ClientEntry {
            name: "web".to_owned(),
            api_key: Some(ApiKeyEntry {
                secret: "web-keys".to_owned(),
                header: "x-api-key".to_owned(),
            }),
            jwt: None,
            certificate: None,
            max_in_flight: None,
            rate_limit: None,
        },
    ];
    table
}

/// Starts the proxy with the partner table, `partners` as the CA Secret's authority.
async fn start(name: &str, backend: &Upstream, server: &Leaf, partners: &TestCa) -> Https {
    let ca = partners.pem();
    Https::start_mounted(
        name,
        &partner_table(backend),
        &[("api", server)],
        &[
            ("partners-ca", &[("ca.crt", ca.as_bytes())]),
            ("web-keys", &[("primary", b"web-key-1")]),
        ],
        &[],
    )
    .await
}

/// The client the backend was told the last request came from.
fn last_client(backend: &Upstream) -> Option<String> {
    let seen = backend.requests();
    seen.last()?.header("x-client").map(str::to_owned)
}

/// One HTTP/2 `GET /v1/orders/7` presenting `certificate`: the status.
async fn h2_get(server_ca: &TestCa, address: SocketAddr, certificate: &Leaf) -> u16 {
    let connector = server_ca.client_presenting(certificate, &[b"h2"]);
    let stream = handshake(&connector, address, HOST).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("https://{HOST}/v1/orders/7"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    response.into_body().collect().await.unwrap();
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_certificate_names_its_client_and_other_callers_get_what_the_docs_say() {
    // The server's certificate and the partners' come from different authorities.
    let server_ca = TestCa::new();
    let server = server_ca.leaf(&[HOST]);
    let partners = TestCa::new();
    let backend = Upstream::named("orders").await;
    let https = start("mtls-recognise", &backend, &server, &partners).await;
    let get =
        |connector| async move { https_get(&connector, https.tls, HOST, "/v1/orders/7").await };

    // By DNS SAN, URI SAN and subject common name (ASCII case ignored).
    for (certificate, client) in [
        (
            partners.client_leaf("acme", &["gateway.acme.test"], &[]),
            "acme",
        ),
        (
            partners.client_leaf("x", &[], &["spiffe://corp/billing"]),
            "billing",
        ),
        (partners.client_leaf("ledger-service", &[], &[]), "ledger"),
    ] {
        let connector = server_ca.client_presenting(&certificate, &[b"http/1.1"]);
        let (status, _, _) = get(connector).await.unwrap();
        assert_eq!(status, 200, "{client}");
        assert_eq!(last_client(&backend).as_deref(), Some(client));
    }
    // Over HTTP/2 as well (gRPC partners).
    let acme = partners.client_leaf("acme", &["gateway.acme.test"], &[]);
    assert_eq!(h2_get(&server_ca, https.tls, &acme).await, 200);
    assert_eq!(last_client(&backend).as_deref(), Some("acme"));

    // Signed by the partners' authority, but no client's name: 401, never the backend.
    let stranger = partners.client_leaf("stranger", &["stranger.test"], &[]);
    let before = backend.requests().len();
    let (status, body, _) = get(server_ca.client_presenting(&stranger, &[b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(h2_get(&server_ca, https.tls, &stranger).await, 401);

    // No certificate: 401 without a key; with its API key, the web client.
    let (status, _, _) = get(server_ca.http1_client()).await.unwrap();
    assert_eq!(status, 401);
    assert_eq!(backend.requests().len(), before);
    let stream = handshake(&server_ca.http1_client(), https.tls, HOST)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/v1/orders/7")
        .header("host", HOST)
        .header("x-api-key", "web-key-1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
    assert_eq!(last_client(&backend).as_deref(), Some("web"));

    // A certificate of a foreign authority fails the handshake; no request gets through.
    let foreign = TestCa::new().client_leaf("acme", &["gateway.acme.test"], &[]);
    let refused = get(server_ca.client_presenting(&foreign, &[b"http/1.1"])).await;
    assert!(refused.is_err(), "{refused:?}");
    https.wait_handshakes("failed", 1).await;
    assert_eq!(backend.requests().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_secret_that_breaks_or_changes_applies_to_the_next_handshake() {
    let server_ca = TestCa::new();
    let server = server_ca.leaf(&[HOST]);
    let partners = TestCa::new();
    let backend = Upstream::named("orders").await;
    let mut https = start("mtls-rotate", &backend, &server, &partners).await;
    let acme = partners.client_leaf("acme", &["gateway.acme.test"], &[]);
    let status = |connector| async move {
        https_get(&connector, https.tls, HOST, "/v1/orders/7")
            .await
            .map(|(status, _, _)| status)
    };
    let presenting = |leaf: &Leaf| server_ca.client_presenting(leaf, &[b"http/1.1"]);
    assert_eq!(status(presenting(&acme)).await, Ok(200));

    // Broken: nobody is vouched for; the certificate is not asked for, the request is 401.
    let ca_mount: &mut ConfigMapDir = &mut https.mounts[1];
    ca_mount.publish_files(&[("ca.crt", b"not a certificate")]);
    https.proxy.wait_generation(2).await;
    assert_eq!(status(presenting(&acme)).await, Ok(401));
    let log = std::fs::read_to_string(&https.proxy.log).unwrap();
    assert!(
        log.contains("CA Secret \"partners-ca\": ca.crt holds no usable PEM certificate"),
        "{log}"
    );

    // A new authority: its certificates are recognised, the old one's fail the handshake.
    let renewed = TestCa::new();
    https.mounts[1].publish_files(&[("ca.crt", renewed.pem().as_bytes())]);
    https.proxy.wait_generation(3).await;
    let acme_renewed = renewed.client_leaf("acme", &["gateway.acme.test"], &[]);
    assert_eq!(status(presenting(&acme_renewed)).await, Ok(200));
    assert_eq!(last_client(&backend).as_deref(), Some("acme"));
    assert!(status(presenting(&acme)).await.is_err());
}
