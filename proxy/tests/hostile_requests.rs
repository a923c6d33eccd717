//! Requests as an attacker sends them, through the real proxy to a real upstream: dot-segments
//! and their encoded forms, oversized heads, missing or doubled `Host`, heads trickled byte by
//! byte, idle kept-alive connections; and what the proxy writes to its log file.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::tables::*;
use common::*;
use gatehouse_api::route_table::{Action, PathKind, RespondAction, RouteEntry};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;

/// A Prefix route sending everything under `/VERSION` to `backend`.
fn catch_all(version: &str, backend: &Upstream) -> RouteEntry {
    proxy(
        &format!("{version}/all"),
        PathKind::Prefix,
        &format!("/{version}"),
        vec![upstream("backend", backend.port(), None, 1)],
    )
}

/// A route answering 403 itself, as an operator forbids part of an API.
fn forbid(id: &str, path: &str) -> RouteEntry {
    let mut route = respond(id, PathKind::Prefix, path);
    route.action = Action::Respond(RespondAction {
        status: 403,
        content_type: "text/plain".to_owned(),
        body: Some("forbidden".to_owned()),
    });
    route
}

fn assert_problem(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.json()["status"], status);
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_are_normalised_before_routing_and_upstream() {
    let backend = Upstream::named("backend").await;
    let (proxy, _dir) = serve_routes(
        vec![catch_all("v2", &backend), forbid("v2/admin", "/v2/admin")],
        "normalise",
        &[],
    )
    .await;

    // Every spelling of a way into /v2/admin meets the more specific route, not the catch-all.
    for path in [
        "/v2/public/../admin/users",
        "/v2/public/%2e%2e/admin/users",
        "/v2/public/.%2e/admin/users",
        "/v2/public/%2e./admin/users",
        "/v2/public/%2E%2E/admin/users",
        "/v2/public/%2e%2E/admin/users",
        "/v2/./admin/users",
        "/v2//admin/users",
        "/v2/%61dmin/users",
    ] {
        let reply = proxy.send(get(path)).await;
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (403, "forbidden"),
            "{path}"
        );
    }

    // Served ones reach the upstream normalised, the query as sent.
    for (path, upstream_target) in [
        (
            "/v2/public/./a//b/../c?x=/../%2e&y=1",
            "/public/a/c?x=/../%2e&y=1",
        ),
        ("/v2/public/files/", "/public/files/"),
        ("/v2/public/%7Euser/a%2db", "/public/~user/a-b"),
        ("/v2/public/caf%c3%a9", "/public/caf%C3%A9"),
    ] {
        let reply = proxy.send(get(path)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(
            reply.header("x-echo-target"),
            Some(upstream_target),
            "{path}"
        );
    }

    // Climbing above the root, encoded separators and broken escapes: 400, nothing upstream.
    for path in [
        "/v2/../../etc/passwd",
        "/v2/%2e%2e/%2e%2e/etc/passwd",
        "/..",
        "/v2/admin%2Fusers",
        "/v2/public%2f..%2fadmin",
        "/v2/public%5C..%5Cadmin",
        "/v2/a%zz",
        "/v2/public/..;/admin",
        "/v2/public/%2e%2e;x=1/admin",
        "/v2/file%00.json",
    ] {
        let reply = proxy.send(get(path)).await;
        assert_problem(&reply, 400);
    }
    let raw = raw_exchange(
        proxy.listen,
        b"GET /v2/public\\..\\admin HTTP/1.1\r\nHost: gateway.test\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&raw), 400, "{raw}");

    let seen: Vec<String> = backend.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        seen,
        [
            "/public/a/c?x=/../%2e&y=1",
            "/public/files/",
            "/public/~user/a-b",
            "/public/caf%C3%A9"
        ]
    );
}

/// A GET whose request line is `line_len` bytes long and whose head is about `head_len` bytes.
fn sized_request(line_len: usize, head_len: usize) -> Vec<u8> {
    let fixed = "GET /v1/ HTTP/1.1".len();
    let path = format!("/v1/{}", "a".repeat(line_len - fixed));
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n");
    let mut n = 0;
    while head.len() + 2 < head_len {
        let room = head_len - head.len() - 2;
        // "X-Fill-NNNN: " + value + "\r\n"
        let value_len = room.saturating_sub(15).clamp(1, 1000);
        head.push_str(&format!("X-Fill-{n:04}: {}\r\n", "b".repeat(value_len)));
        n += 1;
    }
    head.push_str("\r\n");
    head.into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_heads_over_the_limits_are_refused() {
    let backend = Upstream::named("backend").await;
    let routes = || vec![catch_all("v1", &backend)];
    let (proxy, _dir) = serve_routes(routes(), "limits", &[]).await;

    let long_line = raw_exchange(proxy.listen, &sized_request(9 * 1024, 0)).await;
    assert_eq!(raw_status(&long_line), 414, "{long_line}");
    assert!(
        long_line.contains("application/problem+json"),
        "{long_line}"
    );
    let big_head = raw_exchange(proxy.listen, &sized_request(100, 70 * 1024)).await;
    assert_eq!(raw_status(&big_head), 431, "{big_head}");
    assert!(big_head.contains("application/problem+json"), "{big_head}");
    // A head still growing past twice the limit is not read (nor buffered) further: the
    // connection closes without an answer.
    let mut endless = b"GET /v1/x HTTP/1.1\r\nHost: gateway.test\r\n".to_vec();
    for n in 0..4 {
        endless.extend_from_slice(format!("X-Big-{n}: {}\r\n", "b".repeat(75_000)).as_bytes());
    }
    endless.extend_from_slice(b"\r\n");
    let reply = raw_exchange(proxy.listen, &endless).await;
    assert_eq!(raw_status(&reply), 0, "{}", &reply[..reply.len().min(300)]);
    assert!(backend.requests().is_empty());

    // Just under both limits (8 KiB line, 64 KiB head): served.
    let at_line_limit = sized_request(8 * 1024, 0);
    let reply = raw_exchange(proxy.listen, &at_line_limit).await;
    assert_eq!(raw_status(&reply), 200, "{reply}");
    let under_head_limit = sized_request(100, 64 * 1024 - 16);
    assert!(under_head_limit.len() <= 64 * 1024);
    let reply = raw_exchange(proxy.listen, &under_head_limit).await;
    assert_eq!(raw_status(&reply), 200, "{reply}");
    assert_eq!(backend.requests().len(), 2);

    // The limits are the flags'.
    let (strict, _dir) = serve_routes(
        routes(),
        "limits-flags",
        &[
            "--max-request-line-bytes",
            "64",
            "--max-request-head-bytes",
            "512",
        ],
    )
    .await;
    let reply = raw_exchange(strict.listen, &sized_request(65, 0)).await;
    assert_eq!(raw_status(&reply), 414, "{reply}");
    let reply = raw_exchange(strict.listen, &sized_request(40, 600)).await;
    assert_eq!(raw_status(&reply), 431, "{reply}");
    let reply = raw_exchange(strict.listen, &sized_request(64, 500)).await;
    assert_eq!(raw_status(&reply), 200, "{reply}");
    assert_eq!(backend.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_1_1_needs_exactly_one_valid_host() {
    let backend = Upstream::named("backend").await;
    let (proxy, _dir) = serve_routes(vec![catch_all("v1", &backend)], "host", &[]).await;
    for head in [
        "GET /v1/x HTTP/1.1\r\n\r\n",
        "GET /v1/x HTTP/1.1\r\nHost: a.test:http\r\n\r\n",
        "GET /v1/x HTTP/1.1\r\nHost: a.test/x\r\n\r\n",
        "GET /v1/x HTTP/1.1\r\nHost: \r\n\r\n",
        "GET /v1/x HTTP/1.0\r\nHost: \r\n\r\n",
    ] {
        let raw = raw_exchange(proxy.listen, head.as_bytes()).await;
        assert_eq!(raw_status(&raw), 400, "{head:?}: {raw}");
        assert!(raw.contains("application/problem+json"), "{raw}");
    }
    // Pingora itself refuses these (a bare 400) before the gateway sees them.
    for head in [
        "GET /v1/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        "GET /v1/x HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        "GET /v1/x HTTP/1.1\r\nHost: user@a.test\r\n\r\n",
    ] {
        let raw = raw_exchange(proxy.listen, head.as_bytes()).await;
        assert_eq!(raw_status(&raw), 400, "{head:?}: {raw}");
    }
    assert!(backend.requests().is_empty());
    // HTTP/1.0 may leave Host out.
    let raw = raw_exchange(proxy.listen, b"GET /v1/x HTTP/1.0\r\n\r\n").await;
    assert_eq!(raw_status(&raw), 200, "{raw}");
    assert_eq!(backend.requests().len(), 1);
}

/// Waits until the proxy closes the connection (EOF or reset); `false` after 20 s (a hang
/// guard).
async fn wait_closed(reader: &mut (impl AsyncRead + Unpin)) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    })
    .await
    .is_ok()
}

/// Sends one header byte every 300 ms until the connection breaks (at most 20 s).
fn trickle(mut writer: OwnedWriteHalf) -> JoinHandle<()> {
    tokio::spawn(async move {
        for _ in 0..66 {
            if writer.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Reads one response (head and `Content-Length` body) from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
            .await
            .expect("no response")
            .unwrap();
        assert!(n > 0, "closed before a whole response");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_heads_and_idle_connections_are_closed() {
    let (proxy, _dir) = serve_routes(
        vec![respond("v1/x", PathKind::Prefix, "/v1")],
        "slow",
        &[
            "--request-head-timeout",
            "2",
            "--keepalive-idle-timeout",
            "4",
        ],
    )
    .await;
    let limit = Duration::from_secs(2);
    let idle_limit = Duration::from_secs(4);
    // Generous: the bound is what matters, not the exact moment on a loaded machine.
    let margin = Duration::from_secs(8);

    // A first request trickled byte by byte: closed within the head limit of the connection
    // opening, while other clients of the same proxy are served meanwhile.
    let mut slow = TcpStream::connect(proxy.listen).await.unwrap();
    let opened = Instant::now();
    slow.write_all(b"GET /v1/x HTTP/1.1\r\nHost: gateway.test\r\nX-Slow: ")
        .await
        .unwrap();
    let (mut reader, writer) = slow.into_split();
    let trickler = trickle(writer);
    let others = async {
        let mut served = 0;
        while opened.elapsed() < limit {
            let reply = proxy.send(get("/v1/other")).await;
            assert_eq!(reply.status, 200);
            served += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        served
    };
    let watch = async {
        assert!(
            wait_closed(&mut reader).await,
            "a trickled head kept its connection for 20 s"
        );
        opened.elapsed()
    };
    let (served, took) = tokio::join!(others, watch);
    trickler.abort();
    assert!(served > 0);
    assert!(
        took >= limit - Duration::from_millis(100),
        "closed after {took:?}"
    );
    assert!(took <= limit + margin, "closed after {took:?}");

    // The next head on a kept-alive connection gets the same limit from its first byte.
    let mut kept = TcpStream::connect(proxy.listen).await.unwrap();
    kept.write_all(b"GET /v1/x HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    kept.write_all(b"GET /v1/x HTTP/1.1\r\nHost: gateway.test\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let (mut reader, writer) = kept.into_split();
    let trickler = trickle(writer);
    let closed = wait_closed(&mut reader).await;
    trickler.abort();
    assert!(
        closed,
        "a trickled second head kept its connection for 20 s"
    );
    let took = started.elapsed();
    assert!(
        took >= limit - Duration::from_millis(100) && took <= limit + margin,
        "{took:?}"
    );

    // An idle kept-alive connection is closed after the idle limit, not the head limit.
    let mut idle = TcpStream::connect(proxy.listen).await.unwrap();
    idle.write_all(b"GET /v1/x HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    assert!(
        wait_closed(&mut idle).await,
        "an idle connection stayed open for 20 s"
    );
    let took = answered.elapsed();
    assert!(
        took >= idle_limit - Duration::from_millis(100) && took <= idle_limit + margin,
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_carry_no_colour_codes_into_a_file() {
    // The harness runs the proxy with `--log-format text` and stderr into a file.
    let (proxy, _dir) = serve_routes(
        vec![respond("v1/x", PathKind::Prefix, "/v1")],
        "colour",
        &[],
    )
    .await;
    assert_eq!(proxy.send(get("/v1/x")).await.status, 200);
    let log = proxy.log_text();
    assert!(!log.trim().is_empty(), "the proxy logged nothing");
    assert!(
        !log.contains("\x1b["),
        "colour codes in the log file:\n{log:?}"
    );
}
