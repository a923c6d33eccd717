//! The proxy's life: readiness, hot reload under load (kubelet-style symlink swap), refused
//! tables, metrics, standalone mode and graceful shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::tables::*;
use common::*;
use gatehouse_api::route_table::PathKind;

#[tokio::test(flavor = "multi_thread")]
async fn ready_only_after_a_table_is_loaded() {
    let dir = temp_dir("readiness");
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    let routes = mount.routes_path();
    let proxy = Proxy::start(&["--routes", routes.to_str().unwrap()], &dir).await;
    // Alive, not ready, and requests get a 503 problem.
    assert_eq!(send(proxy.admin, get("/readyz")).await.unwrap().status, 503);
    let reply = proxy.send(get("/v1/status")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["title"], "Not ready");
    assert_eq!(
        send(proxy.admin, get("/config")).await.unwrap().json()["loaded"],
        false
    );

    mount.publish(&bytes(vec![respond(
        "v1/status",
        PathKind::Exact,
        "/v1/status",
    )]));
    proxy.wait_admin("/readyz", 200).await;
    let reply = proxy.send(get("/v1/status")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "v1/status"));
    let config = send(proxy.admin, get("/config")).await.unwrap().json();
    assert_eq!(config["generation"], 1);
    let expected = table(vec![respond("v1/status", PathKind::Exact, "/v1/status")]).digest();
    assert_eq!(config["digest"], expected.as_str());
    assert_eq!(
        send(proxy.admin, get("/healthz")).await.unwrap().status,
        200
    );
}

/// `/config` names a table by the bytes it was delivered as (what the operator wrote and
/// compares with, what `sha256sum` of the file gives), not by a serialisation of its own: a
/// table written by another tool, with other spacing, is named by its file.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_is_named_by_the_digest_of_its_bytes_as_delivered() {
    let dir = temp_dir("digest");
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    let routes = vec![respond("v1/status", PathKind::Exact, "/v1/status")];
    let pretty = serde_json::to_vec_pretty(&table(routes.clone())).unwrap();
    assert_ne!(pretty, bytes(routes.clone()), "spaced otherwise");
    mount.publish(&pretty);
    let proxy = Proxy::start(&["--routes", mount.routes_path().to_str().unwrap()], &dir).await;
    proxy.wait_admin("/readyz", 200).await;
    let config = send(proxy.admin, get("/config")).await.unwrap().json();
    assert_eq!(
        config["digest"],
        gatehouse_api::route_table::digest_of(&pretty).as_str()
    );
    assert_ne!(config["digest"], table(routes).digest().as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_reload_under_load_and_refused_tables() {
    let backend = Upstream::named("backend").await;
    let dir = temp_dir("reload");
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    let first = vec![proxy(
        "v1/a",
        PathKind::Prefix,
        "/v1/a",
        vec![upstream("backend", backend.port(), None, 1)],
    )];
    mount.publish(&bytes(first.clone()));
    let proxy = Proxy::start(&["--routes", mount.routes_path().to_str().unwrap()], &dir).await;
    proxy.wait_generation(1).await;
    assert_eq!(proxy.send(get("/v1/b")).await.status, 404);

    // A client loop keeps sending to route a while tables are swapped underneath it.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, sent, failures, listen) =
            (stop.clone(), sent.clone(), failures.clone(), proxy.listen);
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                match send(listen, get("/v1/a/item")).await {
                    Ok(reply) if reply.status == 200 => {}
                    Ok(reply) => {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", reply.status, reply.text()))
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut second = first.clone();
    second.push(respond("v1/b", PathKind::Exact, "/v1/b"));
    mount.publish(&bytes(second.clone()));
    proxy.wait_generation(2).await;
    assert_eq!(proxy.send(get("/v1/b")).await.text(), "v1/b");

    // A corrupt table and an inconsistent one are refused; the old table keeps serving.
    mount.publish(b"{ this is not json");
    proxy
        .wait_for("/metrics", |r| {
            r.text()
                .contains(r#"gatehouse_route_table_reloads_total{result="failed"} 1"#)
        })
        .await;
    let mut inconsistent = second.clone();
    inconsistent.push(respond("v1/b", PathKind::Exact, "/v1/b-again"));
    mount.publish(&bytes(inconsistent));
    proxy
        .wait_for("/metrics", |r| {
            r.text()
                .contains(r#"gatehouse_route_table_reloads_total{result="failed"} 2"#)
        })
        .await;
    assert_eq!(proxy.send(get("/v1/b")).await.text(), "v1/b");
    let config = send(proxy.admin, get("/config")).await.unwrap().json();
    assert_eq!(config["generation"], 2);
    assert_eq!(config["digest"], table(second.clone()).digest().as_str());
    assert!(
        proxy.log_text().contains("route table refused"),
        "{}",
        proxy.log_text()
    );

    // Swap once more while the loop runs, then stop it.
    let mut third = second.clone();
    third.push(respond("v1/c", PathKind::Exact, "/v1/c"));
    mount.publish(&bytes(third));
    proxy.wait_generation(3).await;
    assert_eq!(proxy.send(get("/v1/c")).await.text(), "v1/c");
    stop.store(true, Ordering::Release);
    for client in clients {
        client.await.unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 0);
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());

    let metrics = proxy.metrics().await;
    for expected in [
        r#"gatehouse_route_table_reloads_total{result="ok"} 3"#,
        r#"gatehouse_route_table_generation 3"#,
        r#"gatehouse_requests_total{route="v1/a",status_class="2xx",client="anonymous",contract="",version="v1"}"#,
        r#"gatehouse_requests_total{route="none",status_class="4xx",client="anonymous",contract="",version=""} 1"#,
        r#"gatehouse_request_duration_seconds_bucket{le="#,
        r#"gatehouse_route_table_info{digest="sha256:"#,
        "gatehouse_in_flight_requests",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

/// The operator stores a large table gzipped (`routes.json.gz`) and a small one as it is
/// (`routes.json`); given the mounted directory, the proxy follows the table across both, under
/// the digest of its JSON either way, and refuses a gzip stream that does not unpack.
#[tokio::test(flavor = "multi_thread")]
async fn a_mounted_directory_serves_its_table_plain_or_gzipped() {
    use std::io::Write;
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let dir = temp_dir("mounted-dir");
    let mut mount = ConfigMapDir::new(&dir.join("routes"));
    let plain = bytes(vec![respond("v1/a", PathKind::Exact, "/v1/a")]);
    mount.publish(&plain);
    let proxy = Proxy::start(&["--routes", mount.root.to_str().unwrap()], &dir).await;
    proxy.wait_generation(1).await;
    assert_eq!(proxy.send(get("/v1/a")).await.text(), "v1/a");
    let digest = |json: &[u8]| gatehouse_api::route_table::digest_of(json);
    assert_eq!(
        proxy.wait_admin("/config", 200).await.json()["digest"],
        digest(&plain)
    );

    let grown = bytes(vec![
        respond("v1/a", PathKind::Exact, "/v1/a"),
        respond("v1/b", PathKind::Exact, "/v1/b"),
    ]);
    mount.publish_file("routes.json.gz", &gzip(&grown));
    proxy.wait_generation(2).await;
    assert_eq!(proxy.send(get("/v1/b")).await.text(), "v1/b");
    assert_eq!(
        proxy.wait_admin("/config", 200).await.json()["digest"],
        digest(&grown)
    );

    let mut broken = gzip(&plain);
    broken.truncate(broken.len() / 2);
    mount.publish_file("routes.json.gz", &broken);
    let refused = proxy
        .wait_for("/config", |r| !r.json()["refused"].is_null())
        .await
        .json();
    let error = refused["refused"]["error"].as_str().unwrap();
    assert!(
        error.contains("routes.json.gz does not decompress"),
        "{error}"
    );
    assert_eq!(
        refused["digest"],
        digest(&grown),
        "the last good table serves"
    );
    assert_eq!(proxy.send(get("/v1/b")).await.status, 200);

    // Shrunk again: back to routes.json (the kubelet drops the gzipped entry).
    mount.publish(&plain);
    proxy
        .wait_for("/config", |r| r.json()["digest"] == digest(&plain))
        .await;
    assert_eq!(proxy.send(get("/v1/b")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_finishes_the_slow_request() {
    let (arrived_tx, arrived_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let slow = Upstream::start(Arc::new(move |_seen: SeenRequest| {
        let arrived = arrived_tx.clone();
        let mut release = release_rx.clone();
        Box::pin(async move {
            arrived.send(()).await.ok();
            while !*release.borrow() {
                if release.changed().await.is_err() {
                    break;
                }
            }
            full(200, "finished")
        }) as UpFuture
    }))
    .await;
    let dir = temp_dir("shutdown");
    let file = dir.join("routes.json");
    std::fs::write(
        &file,
        bytes(vec![proxy(
            "v1/slow",
            PathKind::Prefix,
            "/v1/slow",
            vec![upstream("slow", slow.port(), None, 1)],
        )]),
    )
    .unwrap();
    let mut proxy = Proxy::start(&["--routes", file.to_str().unwrap()], &dir).await;
    proxy.wait_admin("/readyz", 200).await;

    let listen = proxy.listen;
    let in_flight = tokio::spawn(async move { send(listen, get("/v1/slow")).await });
    let mut arrived_rx = arrived_rx;
    arrived_rx.recv().await.unwrap();
    proxy.terminate();
    // The listener closes: new connections are refused while the slow request is in flight.
    let mut refused = false;
    for _ in 0..3000 {
        if tokio::net::TcpStream::connect(listen).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refused, "listener still accepting after SIGTERM");
    release_tx.send(true).unwrap();
    let reply = in_flight.await.unwrap().unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "finished"));
    let status = proxy.wait_exit().await;
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        proxy.log_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_serves_resource_folders() {
    let catalog = Upstream::named("catalog").await;
    let dir = temp_dir("standalone");
    let resources = dir.join("resources");
    std::fs::create_dir_all(&resources).unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    std::fs::copy(
        examples.join("gateway/public.yaml"),
        resources.join("public.yaml"),
    )
    .unwrap();
    // The example's clients are recognised by API keys from these Secrets.
    let secrets = dir.join("secrets");
    for secret in ["web-api-keys", "partner-api-keys"] {
        std::fs::create_dir_all(secrets.join(secret)).unwrap();
        std::fs::write(secrets.join(secret).join("key"), format!("{secret}-1")).unwrap();
    }
    let keyed = |path: &str| {
        request("GET", path)
            .header("x-api-key", "web-api-keys-1")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let resolve = format!("catalog=127.0.0.1:{}", catalog.port());
    let proxy = Proxy::start(
        &[
            "--from",
            resources.to_str().unwrap(),
            "--resolve",
            &resolve,
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
        &dir,
    )
    .await;
    proxy.wait_admin("/readyz", 200).await;
    assert_eq!(proxy.send(get("/v1/products/42")).await.status, 401);
    let reply = proxy.send(keyed("/v1/products/42")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "catalog"));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(catalog.requests().pop().unwrap().target, "/items/42");
    let config = send(proxy.admin, get("/config")).await.unwrap().json();
    assert_eq!(config["source"]["name"], "public");

    // A second resource in the folder: both are served, ids prefixed by their proxy name.
    std::fs::copy(
        examples.join("aggregator/product-page.yaml"),
        resources.join("product-page.yaml"),
    )
    .unwrap();
    proxy.wait_generation(2).await;
    let reply = proxy.send(keyed("/v1/status")).await;
    assert_eq!(reply.status, 200);
    // The aggregation runs: its sellers Service does not resolve here, so the required seller
    // step fails and the problem names it.
    let reply = proxy.send(keyed("/products/1/page")).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["step"], "seller");
    assert_eq!(
        reply.json()["route"],
        "product-page-aggregator/product-page"
    );
    let config = send(proxy.admin, get("/config")).await.unwrap().json();
    assert_eq!(config["source"]["kind"], "Standalone");

    // A resource that does not compile is refused; the merged table keeps serving.
    std::fs::write(
        resources.join("broken.yaml"),
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata: {name: broken}\nspec: {}\n",
    )
    .unwrap();
    proxy
        .wait_for("/metrics", |r| {
            r.text()
                .contains(r#"gatehouse_route_table_reloads_total{result="failed"}"#)
        })
        .await;
    assert_eq!(proxy.send(keyed("/v1/status")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_serves_the_contracts_a_folder_s_gateway_exposes() {
    let (catalog, payments) = (
        Upstream::named("catalog").await,
        Upstream::named("payments").await,
    );
    let dir = temp_dir("standalone-contracts");
    let resources = dir.join("resources");
    std::fs::create_dir_all(&resources).unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/contracts");
    for file in [
        "catalog.yaml",
        "orders.yaml",
        "payments.yaml",
        "gateway.yaml",
    ] {
        std::fs::copy(examples.join(file), resources.join(file)).unwrap();
    }
    let secrets = dir.join("secrets");
    for secret in ["web-api-keys", "partner-api-keys"] {
        std::fs::create_dir_all(secrets.join(secret)).unwrap();
        std::fs::write(secrets.join(secret).join("key"), format!("{secret}-1")).unwrap();
    }
    let keyed = |method: &str, path: &str| {
        request(method, path)
            .header("x-api-key", "web-api-keys-1")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    let resolve_catalog = format!("catalog=127.0.0.1:{}", catalog.port());
    let resolve_payments = format!("payments=127.0.0.1:{}", payments.port());
    let proxy = Proxy::start(
        &[
            "--from",
            resources.to_str().unwrap(),
            "--resolve",
            &resolve_catalog,
            "--resolve",
            &resolve_payments,
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ],
        &dir,
    )
    .await;
    proxy.wait_admin("/readyz", 200).await;
    let reply = proxy.send(keyed("GET", "/catalog/v2/products/7")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "catalog"));
    assert_eq!(reply.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(catalog.requests().pop().unwrap().target, "/v2/items/7");
    let reply = proxy.send(keyed("POST", "/payments/v1/payments")).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "payments"));
    let config = send(proxy.admin, get("/config")).await.unwrap().json();
    assert_eq!(config["source"]["name"], "public-api");
    assert_eq!(config["routes"], 6, "{config}");

    // A Contract that breaks refuses the folder: the table that serves keeps serving.
    let broken = std::fs::read_to_string(examples.join("catalog.yaml"))
        .unwrap()
        .replace("basePath: /catalog/v2", "basePath: /catalog/v1");
    std::fs::write(resources.join("catalog.yaml"), broken).unwrap();
    proxy
        .wait_for("/metrics", |r| {
            r.text()
                .contains(r#"gatehouse_route_table_reloads_total{result="failed"}"#)
        })
        .await;
    assert_eq!(
        proxy
            .send(keyed("GET", "/catalog/v2/products/7"))
            .await
            .status,
        200
    );
    let log = proxy.log_text();
    assert!(
        log.contains(
            "a Contract is not accepted: Contract shop/catalog spec.versions[1].routes[0].match"
        ),
        "{log}"
    );
    // So does a grant taken away: the Gateway may no longer serve the payments Contract.
    std::fs::copy(
        examples.join("catalog.yaml"),
        resources.join("catalog.yaml"),
    )
    .unwrap();
    proxy.wait_generation(2).await;
    let contract_only = std::fs::read_to_string(examples.join("payments.yaml")).unwrap();
    std::fs::write(
        resources.join("payments.yaml"),
        contract_only.split("\n---\n").next().unwrap(),
    )
    .unwrap();
    proxy
        .wait_for("/metrics", |r| {
            r.text()
                .contains(r#"gatehouse_route_table_reloads_total{result="failed"} 2"#)
        })
        .await;
    assert!(
        proxy.log_text().contains("RefNotPermitted"),
        "{}",
        proxy.log_text()
    );
    assert_eq!(
        proxy
            .send(keyed("POST", "/payments/v1/payments"))
            .await
            .status,
        200
    );
}

#[test]
fn listeners_that_would_share_a_socket_are_refused_before_anything_binds() {
    let dir = temp_dir("overlapping-listeners");
    let routes = dir.join("table.json");
    std::fs::write(&routes, tables::table(Vec::new()).to_bytes()).unwrap();
    let port = free_port();
    let exact = format!("127.0.0.1:{port}");
    let wildcard = format!("0.0.0.0:{port}");
    let other = format!("127.0.0.1:{}", free_port());
    for (args, error) in [
        (
            [
                "--listen",
                &exact,
                "--listen-tls",
                &exact,
                "--admin",
                &other,
            ],
            format!("--listen-tls {exact} overlaps --listen {exact}"),
        ),
        (
            [
                "--listen",
                &wildcard,
                "--listen-tls",
                &other,
                "--admin",
                &exact,
            ],
            format!("--admin {exact} overlaps --listen {wildcard}"),
        ),
        (
            [
                "--listen",
                &exact,
                "--listen-tls",
                &other,
                "--admin",
                "127.0.0.1",
            ],
            "--admin 127.0.0.1: ".to_owned(),
        ),
    ] {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse-proxy"))
            .args(["--routes", routes.to_str().unwrap(), "--log-format", "text"])
            .args(args)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {log}");
        assert!(log.contains(&error), "{args:?}: {log}");
        assert!(!log.contains("Server starting"), "{args:?}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn not_ready_while_another_process_holds_the_traffic_port() {
    let dir = temp_dir("traffic-port-in-use");
    let routes = dir.join("table.json");
    std::fs::write(
        &routes,
        bytes(vec![respond("v1/status", PathKind::Exact, "/v1/status")]),
    )
    .unwrap();
    let (listen, admin) = (free_address(), free_address());
    let squatter = std::net::TcpListener::bind(listen).unwrap();
    let log = dir.join("proxy.log");
    /// Kills the proxy however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _proxy = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse-proxy"))
            .args(["--routes", routes.to_str().unwrap(), "--log-format", "text"])
            .args([
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    // The proxy found the port taken twice (Pingora tries again each second).
    let mut retried = false;
    for _ in 0..3000 {
        if log_text().matches("is in use, will try again").count() >= 2 {
            retried = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(retried, "{}", log_text());
    // All that time nothing said it was ready: the admin listener waits for the traffic one.
    assert!(
        send(admin, get("/readyz")).await.is_err(),
        "admin answered while the traffic port was another's:\n{}",
        log_text()
    );

    drop(squatter);
    let mut ready = false;
    for _ in 0..3000 {
        if send(admin, get("/readyz"))
            .await
            .is_ok_and(|r| r.status == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(ready, "{}", log_text());
    // Ready means serving.
    let reply = send(listen, get("/v1/status")).await.unwrap();
    assert_eq!((reply.status, reply.text().as_str()), (200, "v1/status"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_serves_with_lazily_committed_arenas_as_the_process_it_was_started_as() {
    let routes = vec![respond("v1/ping", PathKind::Exact, "/v1/ping")];
    let (proxy, _dir) = serve_routes(routes, "arenas", &[]).await;
    assert_eq!(proxy.send(get("/v1/ping")).await.status, 200);
    // The process started is the one serving (same pid), now with the allocator's option set,
    // and under the name it was started by.
    let read = |file: &str| std::fs::read(format!("/proc/{}/{file}", proxy.pid())).unwrap();
    let environ = read("environ");
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"MIMALLOC_ARENA_EAGER_COMMIT=0"),
        "{}",
        String::from_utf8_lossy(&environ)
    );
    let cmdline = read("cmdline");
    let arg0 = cmdline.split(|b| *b == 0).next().unwrap();
    assert_eq!(arg0, env!("CARGO_BIN_EXE_gatehouse-proxy").as_bytes());
}
