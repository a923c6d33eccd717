//! Clients over real HTTP: API keys from a kubelet-style Secret volume name the caller (and
//! refuse everyone else before any backend sees the request), rotated keys apply without a
//! restart, a JWT signed by the issuer of a client's JWKS names that client (and nothing else
//! does: expired, foreign, mis-addressed or forged tokens are refused), and a client's rate
//! limit answers 429 with `Retry-After`.
#![allow(clippy::unwrap_used)]

mod common;

use common::tables::*;
use common::*;
use gatehouse_api::route_table::{
    ApiKeyEntry, ClientEntry, JwtEntry, PathKind, RateLimitEntry, RouteTable,
};

fn keyed(name: &str, secret: &str, header: &str, limit: Option<(u32, u32)>) -> ClientEntry {
    ClientEntry {
        name: name.to_owned(),
        api_key: Some(ApiKeyEntry {
            secret: secret.to_owned(),
            header: header.to_owned(),
        }),
        jwt: None,
        certificate: None,
        max_in_flight: None,
        rate_limit: limit.map(|(requests_per_second, burst)| RateLimitEntry {
            requests_per_second,
            burst,
            global: None,
        }),
    }
}

/// A Gateway table with `clients` and one route that tells the backend who called.
fn orders(backend_port: u16, clients: Vec<ClientEntry>) -> RouteTable {
    let mut route = proxy(
        "v1/orders",
        PathKind::Exact,
        "/v1/orders",
        vec![upstream("orders", backend_port, None, 1)],
    );
    route.request_headers = edits(&[("x-client", "{client}")], &[], &[]);
    let mut table = table(vec![route]);
    table.clients = clients;
    table
}

/// The orders table with two keyed clients.
fn gateway(backend_port: u16) -> RouteTable {
    orders(
        backend_port,
        vec![
            keyed("partner", "partner-keys", "x-partner-key", Some((1, 2))),
            keyed("web", "web-keys", "x-api-key", None),
        ],
    )
}

/// Starts the proxy on `table` (published as a mounted ConfigMap under `dir`) with the Secrets
/// of `secrets`; the mount is returned so it outlives the proxy.
async fn serve(
    dir: &std::path::Path,
    table: &RouteTable,
    secrets: &std::path::Path,
) -> (Proxy, ConfigMapDir) {
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    mount.publish(&table.to_bytes());
    let proxy = Proxy::start_with_secrets(&mount.routes_path(), secrets, dir).await;
    (proxy, mount)
}

/// A Secret `name` mounted under `secrets` the way the kubelet does, holding one entry.
fn mounted_secret(
    secrets: &std::path::Path,
    name: &str,
    entry: &str,
    value: &[u8],
) -> ConfigMapDir {
    let mut secret = ConfigMapDir::new(&secrets.join(name));
    secret.publish_file(entry, value);
    secret
}

fn with_header(name: &str, value: &str) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    request("GET", "/v1/orders")
        .header(name, value)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_name_the_client_refuse_everyone_else_and_rotate_without_a_restart() {
    let backend = Upstream::named("orders").await;
    let dir = temp_dir("clients");
    let secrets = dir.join("secrets");
    let mut web_keys = mounted_secret(&secrets, "web-keys", "primary", b"web-key-1\n");
    let _partner_keys = mounted_secret(&secrets, "partner-keys", "key", b"partner-key-1");
    let (proxy, _mount) = serve(&dir, &gateway(backend.port()), &secrets).await;
    proxy.wait_admin("/readyz", 200).await;

    // No key, a wrong key, a key in the other client's header: 401, and no backend call.
    for request in [
        get("/v1/orders"),
        with_header("x-api-key", "web-key-2"),
        with_header("x-api-key", "partner-key-1"),
    ] {
        let reply = proxy.send(request).await;
        assert_eq!(reply.status, 401, "{}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()["title"], "Unauthorized");
        assert_eq!(reply.json()["route"], "v1/orders");
    }
    assert!(
        backend.requests().is_empty(),
        "refused requests never reach a backend"
    );

    // A valid key names its client; the key itself stays at the gateway.
    let reply = proxy.send(with_header("x-api-key", "web-key-1")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = backend.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-client"), Some("web"));
    assert_eq!(seen[0].header("x-api-key"), None);

    // The partner may send a burst of 2, then waits for its next token.
    for _ in 0..2 {
        let reply = proxy
            .send(with_header("x-partner-key", "partner-key-1"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let limited = proxy
        .send(with_header("x-partner-key", "partner-key-1"))
        .await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(limited.json()["title"], "Too many requests");
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(
        backend.requests().last().unwrap().header("x-client"),
        Some("partner")
    );
    assert_eq!(
        backend.requests().len(),
        3,
        "the limited call is not sent on"
    );
    // The web client has no limit of its own.
    for _ in 0..5 {
        assert_eq!(
            proxy
                .send(with_header("x-api-key", "web-key-1"))
                .await
                .status,
            200
        );
    }
    let metrics = proxy.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("client=\"partner\"") && l.contains("4xx")),
        "refusals are counted per client:\n{metrics}"
    );
    assert!(!metrics.contains("partner-key-1") && !proxy.log_text().contains("web-key-1"));

    // Rotation: the kubelet swaps the Secret volume; the new key works, the old one stops.
    web_keys.publish_file("primary", b"web-key-2\n");
    proxy.wait_generation(2).await;
    let reply = proxy.send(with_header("x-api-key", "web-key-2")).await;
    assert_eq!(
        reply.status,
        200,
        "the rotated key is accepted: {}",
        reply.text()
    );
    assert_eq!(
        proxy
            .send(with_header("x-api-key", "web-key-1"))
            .await
            .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_whose_secret_is_missing_or_deleted_is_refused_and_the_others_are_served() {
    let backend = Upstream::named("orders").await;
    let dir = temp_dir("clients-missing");
    let secrets = dir.join("secrets");
    let web_keys = mounted_secret(&secrets, "web-keys", "primary", b"web-key-1");
    let (proxy, _mount) = serve(&dir, &gateway(backend.port()), &secrets).await;
    proxy.wait_admin("/readyz", 200).await;
    assert!(
        proxy
            .log_text()
            .contains("client partner: Secret partner-keys does not exist"),
        "{}",
        proxy.log_text()
    );
    assert_eq!(
        proxy
            .send(with_header("x-partner-key", "anything"))
            .await
            .status,
        401,
        "nobody is the client whose Secret is missing"
    );
    assert_eq!(
        proxy
            .send(with_header("x-api-key", "web-key-1"))
            .await
            .status,
        200,
        "the table loads: the other clients are served"
    );

    // Deleting a client's Secret revokes its keys (the table is not refused, which would keep
    // the previous one, and the deleted keys, serving).
    drop(web_keys);
    std::fs::remove_dir_all(secrets.join("web-keys")).unwrap();
    proxy.wait_generation(2).await;
    assert_eq!(
        proxy
            .send(with_header("x-api-key", "web-key-1"))
            .await
            .status,
        401
    );
    assert_eq!(
        backend.requests().len(),
        1,
        "no refused request reached the backend"
    );
}

/// Test-only signing keys (P-256) and the JWKS of the first, in `tests/fixtures/jwt/`.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt")
            .join(name),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An ES256 token with `kid: issuer-key`, signed with `pem`.
fn token(pem: &str, claims: serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("issuer-key".to_owned());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&fixture(pem)).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwt_from_the_clients_issuer_names_it_and_every_other_token_is_refused() {
    let backend = Upstream::named("orders").await;
    let dir = temp_dir("clients-jwt");
    let secrets = dir.join("secrets");
    let _jwks = mounted_secret(&secrets, "issuer-jwks", "jwks.json", &fixture("jwks.json"));
    let _web_keys = mounted_secret(&secrets, "web-keys", "primary", b"web-key-1");
    let table = orders(
        backend.port(),
        vec![
            ClientEntry {
                name: "partner-app".to_owned(),
                api_key: None,
                jwt: Some(JwtEntry {
                    issuer: "https://issuer.test".to_owned(),
                    audiences: vec!["gatehouse".to_owned()],
                    jwks_secret: "issuer-jwks".to_owned(),
                }),
                certificate: None,
                max_in_flight: None,
                rate_limit: None,
            },
            keyed("web", "web-keys", "x-api-key", None),
        ],
    );
    let (proxy, _mount) = serve(&dir, &table, &secrets).await;
    proxy.wait_admin("/readyz", 200).await;

    let claims = |iss: &str, aud: &str, exp: u64| serde_json::json!({"iss": iss, "aud": aud, "exp": exp, "sub": "device-7"});
    let good = token(
        "issuer-test-only.pem",
        claims("https://issuer.test", "gatehouse", now() + 600),
    );
    let reply = proxy
        .send(with_header("authorization", &format!("Bearer {good}")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        backend.requests()[0].header("x-client"),
        Some("partner-app")
    );
    // API keys keep working beside tokens.
    assert_eq!(
        proxy
            .send(with_header("x-api-key", "web-key-1"))
            .await
            .status,
        200
    );

    let refused = [
        (
            "expired",
            token(
                "issuer-test-only.pem",
                claims("https://issuer.test", "gatehouse", now() - 3600),
            ),
        ),
        (
            "another issuer",
            token(
                "issuer-test-only.pem",
                claims("https://elsewhere.test", "gatehouse", now() + 600),
            ),
        ),
        (
            "another audience",
            token(
                "issuer-test-only.pem",
                claims("https://issuer.test", "billing", now() + 600),
            ),
        ),
        (
            "signed by a key not in the JWKS",
            token(
                "other-test-only.pem",
                claims("https://issuer.test", "gatehouse", now() + 600),
            ),
        ),
        ("not a token", "not.a.token".to_owned()),
        // The good token with its payload swapped: the signature no longer matches.
        ("tampered", {
            let parts: Vec<&str> = good.split('.').collect();
            let forged = token(
                "other-test-only.pem",
                claims("https://issuer.test", "gatehouse", now() + 9999),
            );
            format!(
                "{}.{}.{}",
                parts[0],
                forged.split('.').nth(1).unwrap(),
                parts[2]
            )
        }),
    ];
    for (case, bad) in refused {
        let reply = proxy
            .send(with_header("authorization", &format!("Bearer {bad}")))
            .await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text());
        assert_eq!(reply.json()["title"], "Unauthorized", "{case}");
    }
    assert_eq!(
        backend.requests().len(),
        2,
        "refused tokens never reach the backend"
    );
}

/// Sends `count` partner requests; how many were admitted (the others must be 429).
async fn partner_admitted(proxy: &Proxy, count: usize) -> u64 {
    let mut admitted = 0;
    for _ in 0..count {
        let reply = proxy
            .send(with_header("x-partner-key", "partner-key-1"))
            .await;
        match reply.status {
            200 => admitted += 1,
            429 => {}
            other => panic!("expected 200 or 429, got {other}: {}", reply.text()),
        }
    }
    admitted
}

/// Spends the partner's bucket: requests until one is refused.
async fn exhaust_partner(proxy: &Proxy) {
    for _ in 0..100 {
        if partner_admitted(proxy, 1).await == 0 {
            return;
        }
    }
    panic!("the partner was never limited");
}

/// Tokens a 1-per-second bucket, empty at the start, can have gained after `elapsed`: one per
/// whole second, plus the one that may have been due just after it emptied.
fn refilled_at_most(elapsed: std::time::Duration) -> u64 {
    elapsed.as_secs() + 1
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_do_not_refill_a_clients_bucket_but_a_changed_limit_gets_a_new_one() {
    const BURST: u32 = 5;
    let backend = Upstream::named("orders").await;
    let dir = temp_dir("clients-buckets");
    let secrets = dir.join("secrets");
    let mut web_keys = mounted_secret(&secrets, "web-keys", "primary", b"web-key-1");
    let _partner_keys = mounted_secret(&secrets, "partner-keys", "key", b"partner-key-1");
    let clients = |burst| {
        vec![
            keyed("partner", "partner-keys", "x-partner-key", Some((1, burst))),
            keyed("web", "web-keys", "x-api-key", None),
        ]
    };
    let mut table = orders(backend.port(), clients(BURST));
    let (proxy, mut mount) = serve(&dir, &table, &secrets).await;
    proxy.wait_generation(1).await;

    // A reload that changes another route, then one that rotates a Secret key: neither hands
    // the partner a new burst. (Before, every reload built new buckets: all BURST passed.)
    table
        .routes
        .push(respond("v1/status", PathKind::Exact, "/v1/status"));
    let reloads: [(u64, &mut dyn FnMut()); 2] = [
        (2, &mut || mount.publish(&table.to_bytes())),
        (3, &mut || web_keys.publish_file("primary", b"web-key-2")),
    ];
    for (generation, reload) in reloads {
        exhaust_partner(&proxy).await;
        let emptied = std::time::Instant::now();
        reload();
        proxy.wait_generation(generation).await;
        let next = proxy
            .send(with_header("x-partner-key", "partner-key-1"))
            .await;
        let admitted = u64::from(next.status == 200)
            + partner_admitted(&proxy, usize::try_from(BURST).unwrap() - 1).await;
        assert!(
            admitted <= refilled_at_most(emptied.elapsed()),
            "generation {generation}: {admitted} of {BURST} admitted right after the reload"
        );
        if next.status == 429 {
            assert!(next.header("retry-after").is_some());
        }
    }
    let status = request("GET", "/v1/status")
        .header("x-api-key", "web-key-2")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(
        proxy.send(status).await.text(),
        "v1/status",
        "the other route changed"
    );
    assert_eq!(
        proxy
            .send(with_header("x-api-key", "web-key-2"))
            .await
            .status,
        200,
        "the key rotated"
    );

    // A changed limit is a new bucket, full: its whole (new) burst passes at once.
    exhaust_partner(&proxy).await;
    table.clients = clients(BURST + 2);
    mount.publish(&table.to_bytes());
    proxy.wait_generation(4).await;
    assert_eq!(
        partner_admitted(&proxy, usize::try_from(BURST + 2).unwrap()).await,
        u64::from(BURST + 2)
    );
}
