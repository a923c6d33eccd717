//! Global rate limits over real HTTP with a real `redis-server`: several proxy processes draw
//! from one budget, the budget's key expires, and when Redis dies or is slow each client's
//! `onRedisFailure` answers at once (its share locally, or 503) until Redis is back.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::redis::{Redis, delaying_relay};
use common::tables::*;
use common::tls::TestCa;
use common::*;
use gatehouse_api::route_table::{
    ClientEntry, GlobalLimitEntry, PathKind, RateLimitEntry, RedisEntry, RedisFailure,
    RedisTlsEntry, RouteTable,
};

/// `name`'s API-key client limited to `rate`/s with `burst`, in the global budget `budget`.
fn limited(name: &str, rate: u32, burst: u32, on_failure: RedisFailure) -> ClientEntry {
    ClientEntry {
        rate_limit: Some(RateLimitEntry {
            requests_per_second: rate,
            burst,
            global: Some(GlobalLimitEntry {
                budget: format!("test/{name}"),
                on_redis_failure: on_failure,
            }),
        }),
        ..keyed_client(name)
    }
}

fn orders(backend: &Upstream, clients: Vec<ClientEntry>) -> RouteTable {
    let mut table = table(vec![proxy(
        "v1/orders",
        PathKind::Exact,
        "/v1/orders",
        vec![upstream("orders", backend.port(), None, 1)],
    )]);
    table.clients = clients;
    table
}

/// The Redis timeout of the tests about budgets rather than timeouts: a loaded machine (CI on
/// two cores) can take longer than the default 5 ms for a request thread's first call, which
/// also connects.
const BUDGET_TESTS_TIMEOUT_MS: &str = "250";

/// `count` proxies on `table` using `redis`, for the tests about budgets (timeout
/// [`BUDGET_TESTS_TIMEOUT_MS`]).
async fn budget_proxies(name: &str, table: &RouteTable, count: usize, redis: &Redis) -> Vec<Proxy> {
    let url = redis.url();
    let flags = [
        "--redis",
        &url,
        "--redis-timeout-ms",
        BUDGET_TESTS_TIMEOUT_MS,
    ];
    proxies(name, table, count, &flags).await
}

/// `count` proxies on `table` given `redis` (`--redis URL` and further flags).
async fn proxies(name: &str, table: &RouteTable, count: usize, redis: &[&str]) -> Vec<Proxy> {
    let mut started = Vec::new();
    for n in 0..count {
        let dir = temp_dir(&format!("{name}-{n}"));
        for client in &table.clients {
            write_secret(
                &dir,
                &format!("{}-keys", client.name),
                &format!("{}-1", client.name),
            );
        }
        let routes = dir.join("routes.json");
        std::fs::write(&routes, table.to_bytes()).unwrap();
        let (routes, secrets) = (routes.to_str().unwrap(), dir.join("secrets"));
        let mut args = vec![
            "--routes",
            routes,
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ];
        args.extend_from_slice(redis);
        let proxy = Proxy::start(&args, &dir).await;
        proxy.wait_admin("/readyz", 200).await;
        started.push(proxy);
    }
    started
}

/// Statuses of `count` requests of client `name`, sent in turn to each proxy.
async fn statuses(proxies: &[Proxy], name: &str, count: usize) -> Vec<u16> {
    let key = format!("{name}-1");
    let mut seen = Vec::new();
    for n in 0..count {
        let reply = proxies[n % proxies.len()]
            .send(with_key("/v1/orders", &key))
            .await;
        if reply.status == 429 {
            let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
            assert!(wait >= 1, "{wait}");
        }
        seen.push(reply.status);
    }
    seen
}

fn admitted(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

/// The most a budget of `rate`/s with `burst` admits in `elapsed` (plus one for rounding).
fn at_most(rate: u32, burst: u32, elapsed: Duration) -> usize {
    burst as usize + (f64::from(rate) * elapsed.as_secs_f64()).ceil() as usize + 1
}

/// Waits until `accept` holds for the value `read` gives (a hang guard, not a timing
/// assertion).
async fn until<T: std::fmt::Debug>(read: impl Fn() -> T, accept: impl Fn(&T) -> bool) -> T {
    for _ in 0..1000 {
        let value = read();
        if accept(&value) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never reached the expected state; last: {:?}", read());
}

#[tokio::test(flavor = "multi_thread")]
async fn three_proxies_draw_from_one_budget_in_redis() {
    let redis = Redis::start(&temp_dir("redis-shared"));
    let backend = Upstream::named("orders").await;
    let table = orders(&backend, vec![limited("acme", 1, 6, RedisFailure::Refuse)]);
    let proxies = budget_proxies("shared", &table, 3, &redis).await;

    let started = Instant::now();
    let seen = statuses(&proxies, "acme", 18).await;
    let elapsed = started.elapsed();
    // One budget: the burst of 6 (and what refilled meanwhile) over all three, where three
    // budgets of their own would have admitted 18.
    let admitted = admitted(&seen);
    assert!(
        (6..=at_most(1, 6, elapsed)).contains(&admitted),
        "{admitted} admitted in {elapsed:?}: {seen:?}"
    );
    assert!(seen[..6].iter().all(|s| *s == 200), "{seen:?}");
    assert!(seen.iter().all(|s| *s == 200 || *s == 429), "{seen:?}");
    assert_eq!(backend.requests().len(), admitted);
    // Every proxy took part: the first six went two to each.
    for proxy in &proxies {
        assert!(proxy.metrics().await.contains(
            "gatehouse_refused_requests_total{route=\"v1/orders\",reason=\"rate_limited\"}"
        ));
    }

    // The budget is one key holding the theoretical arrival time, expiring when the budget is
    // full again: at most burst × interval away.
    let ttl: i64 = redis.query(&["PTTL", "gatehouse:rl:test/acme"]);
    assert!(ttl > 0 && ttl <= 6_000, "PTTL {ttl}");
    // The replicas announce themselves for the fallback share.
    let replicas: i64 = until(
        || redis.query::<i64>(&["ZCARD", "gatehouse:rl:test/acme:replicas"]),
        |n| *n == 3,
    )
    .await;
    assert_eq!(replicas, 3);
}

/// How many times Redis ran `EVALSHA` (rate-limit calls and heartbeats).
fn evalsha_calls(redis: &Redis) -> u64 {
    let stats: String = redis.query(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn far_from_the_limit_one_call_admits_several_requests_all_charged_in_redis() {
    let redis = Redis::start(&temp_dir("redis-lease"));
    let backend = Upstream::named("orders").await;
    let table = orders(
        &backend,
        vec![limited("acme", 1, 400, RedisFailure::Refuse)],
    );
    let proxies = budget_proxies("lease", &table, 1, &redis).await;

    let before = evalsha_calls(&redis);
    assert_eq!(statuses(&proxies, "acme", 40).await, [200; 40]);
    let calls = evalsha_calls(&redis) - before;
    assert!(
        calls <= 10,
        "{calls} calls for 40 requests far from the limit"
    );
    // Every admitted request was charged before it was admitted (plus what the lease still
    // holds, 16 at most): the budget's TAT is 40 to 56 intervals (1 s each) ahead.
    let ttl: i64 = redis.query(&["PTTL", "gatehouse:rl:test/acme"]);
    assert!((39_000..=56_000).contains(&ttl), "PTTL {ttl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_budget_is_refused_without_asking_redis_until_it_refills() {
    let redis = Redis::start(&temp_dir("redis-refused"));
    let backend = Upstream::named("orders").await;
    let table = orders(&backend, vec![limited("acme", 1, 2, RedisFailure::Refuse)]);
    let proxies = budget_proxies("refused", &table, 1, &redis).await;

    let before = evalsha_calls(&redis);
    let started = Instant::now();
    let seen = statuses(&proxies, "acme", 20).await;
    let elapsed = started.elapsed();
    assert_eq!(seen[..2], [200, 200]);
    assert!(
        admitted(&seen) <= at_most(1, 2, elapsed),
        "{seen:?} in {elapsed:?}"
    );
    // Two admissions and one refusal asked Redis; the other refusals knew the wait (plus a
    // heartbeat or two, and a call per second the requests took).
    let calls = evalsha_calls(&redis) - before;
    let allowed = 3 + 2 + 2 * elapsed.as_secs();
    assert!(calls <= allowed, "{calls} calls for 20 requests: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tables_redis_over_tls_with_its_password_and_authority_from_secrets() {
    let dir = temp_dir("redis-tls");
    let ca = TestCa::new();
    let leaf = ca.leaf(&["localhost"]);
    let (certificate, key) = (dir.join("redis.crt"), dir.join("redis.key"));
    std::fs::write(&certificate, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let redis = Redis::start_tls(&dir, &certificate, &key, "s3cret-redis");
    let backend = Upstream::named("orders").await;
    let mut table = orders(&backend, vec![limited("acme", 1, 2, RedisFailure::Refuse)]);
    table.redis = Some(RedisEntry {
        address: format!("localhost:{}", redis.port),
        username: None,
        password_secret: Some("redis-auth".to_owned()),
        tls: Some(RedisTlsEntry {
            ca_secret: Some("redis-ca".to_owned()),
        }),
        timeout_ms: 200,
    });
    for (secret, file, value) in [
        ("redis-auth", "password", "s3cret-redis".to_owned()),
        ("redis-ca", "ca.crt", ca.pem()),
        ("acme-keys", "key", "acme-1".to_owned()),
    ] {
        let folder = dir.join("secrets").join(secret);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(file), value).unwrap();
    }
    let proxy = serve_with_secrets(&dir, &table.to_bytes()).await;

    // Verified against the CA Secret, logged in with the password Secret: the budget decides
    // (a failed handshake or login would refuse every request with 503).
    let proxies = [proxy];
    assert_eq!(statuses(&proxies, "acme", 3).await, [200, 200, 429]);
    assert!(
        !proxies[0].log_text().contains("s3cret-redis"),
        "the password is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_key_expires_once_the_budget_is_full_again() {
    let redis = Redis::start(&temp_dir("redis-expiry"));
    let backend = Upstream::named("orders").await;
    let table = orders(&backend, vec![limited("acme", 20, 2, RedisFailure::Refuse)]);
    let proxies = budget_proxies("expiry", &table, 1, &redis).await;

    assert_eq!(statuses(&proxies, "acme", 2).await, [200, 200]);
    // Two requests at 20/s: the budget is full again 100 ms after the last one.
    let ttl: i64 = redis.query(&["PTTL", "gatehouse:rl:test/acme"]);
    assert!(ttl > 0 && ttl <= 100, "PTTL {ttl}");
    until(
        || redis.query::<i64>(&["EXISTS", "gatehouse:rl:test/acme"]),
        |n| *n == 0,
    )
    .await;
    // A new burst starts from a full budget.
    assert_eq!(statuses(&proxies, "acme", 2).await, [200, 200]);
}

/// The value of `gatehouse_rate_limit_fallbacks_total{reason=REASON}` on `proxy`.
async fn fallbacks(proxy: &Proxy, reason: &str) -> u64 {
    let metrics = proxy.metrics().await;
    let prefix = format!("gatehouse_rate_limit_fallbacks_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn when_redis_dies_each_client_falls_back_as_it_says_until_redis_is_back() {
    let mut redis = Redis::start(&temp_dir("redis-dies"));
    let backend = Upstream::named("orders").await;
    let table = orders(
        &backend,
        vec![
            limited("share", 30, 30, RedisFailure::LocalShare),
            limited("strict", 30, 30, RedisFailure::Refuse),
        ],
    );
    let proxies = budget_proxies("dies", &table, 3, &redis).await;
    assert_eq!(statuses(&proxies, "strict", 3).await, [200; 3]);
    until(
        || redis.query::<i64>(&["ZCARD", "gatehouse:rl:test/share:replicas"]),
        |n| *n == 3,
    )
    .await;
    // Each proxy reads the count at its own heartbeat, one a second: after the next one, all
    // three know they are three.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.kill();

    // `LocalShare`: each proxy enforces a third of the limit (burst 10) on its own.
    let started = Instant::now();
    let shared = statuses(&proxies[..1], "share", 30).await;
    let elapsed = started.elapsed();
    let admitted = admitted(&shared);
    assert!(
        (10..=at_most(10, 10, elapsed)).contains(&admitted),
        "{admitted} admitted in {elapsed:?}: {shared:?}"
    );
    // `Refuse`: 503 until Redis answers, with Retry-After: 1.
    let refused = proxies[1].send(with_key("/v1/orders", "strict-1")).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["title"], "Rate limit unavailable");
    let counted = fallbacks(&proxies[0], "error").await + fallbacks(&proxies[0], "down").await;
    assert!(counted >= 30, "{counted} fallbacks counted");
    assert!(
        proxies[0]
            .metrics()
            .await
            .contains("reason=\"rate_limit_unavailable\"")
            || proxies[1]
                .metrics()
                .await
                .contains("reason=\"rate_limit_unavailable\"")
    );
    let log = proxies[0].log_text();
    let warnings = log
        .matches("Redis cannot decide global rate limits")
        .count();
    assert!(warnings >= 1, "{log}");
    assert!(warnings <= 2, "rate-limited log lines: {log}");

    // Back: the proxies reconnect by themselves and share the budget again.
    redis.restart();
    let mut served = false;
    for _ in 0..300 {
        if proxies[1]
            .send(with_key("/v1/orders", "strict-1"))
            .await
            .status
            == 200
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        served,
        "Redis came back but the strict client is still refused"
    );
    assert!(proxies[1].log_text().contains("Redis answers again"));
    let key: i64 = redis.query(&["EXISTS", "gatehouse:rl:test/strict"]);
    assert_eq!(key, 1, "the budget lives in Redis again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_redis_never_holds_a_request_past_its_timeout() {
    let redis = Redis::start(&temp_dir("redis-slow"));
    let relay = delaying_relay(
        format!("127.0.0.1:{}", redis.port).parse().unwrap(),
        Duration::from_secs(3),
    )
    .await;
    let backend = Upstream::named("orders").await;
    let table = orders(
        &backend,
        vec![
            limited("share", 100, 100, RedisFailure::LocalShare),
            limited("strict", 100, 100, RedisFailure::Refuse),
        ],
    );
    let url = format!("redis://{relay}");
    let proxies = proxies(
        "slow",
        &table,
        1,
        &["--redis", &url, "--redis-timeout-ms", "20"],
    )
    .await;

    // Redis answers after 3 s; every request is answered long before (the timeout is 20 ms).
    for (key, status) in [
        ("strict-1", 503),
        ("share-1", 200),
        ("strict-1", 503),
        ("share-1", 200),
    ] {
        let started = Instant::now();
        let reply = proxies[0].send(with_key("/v1/orders", key)).await;
        assert_eq!(reply.status, status, "{key}: {}", reply.text());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{key} waited {:?} for a Redis that answers after 3 s",
            started.elapsed()
        );
    }
    assert!(fallbacks(&proxies[0], "timeout").await >= 1);
    assert!(
        fallbacks(&proxies[0], "down").await >= 1,
        "after a timeout Redis is not asked for a second"
    );
}
