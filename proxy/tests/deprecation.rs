//! Deprecated and retired contract versions over real HTTP: every response of a deprecated
//! route carries `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and `Link` exactly as the RFCs
//! write them, the backend's answer and the gateway's own alike; after a sunset that says so,
//! and always for a retired version, the answer is `410 Gone` with a problem body naming the
//! successor. Routes that are not deprecated get none of it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::tables::*;
use common::*;
use gatehouse_api::route_table::{DeprecationEntry, PathKind, RouteEntry, VersionState};

fn deprecated(mut route: RouteEntry, state: VersionState, sunset: i64, gone: bool) -> RouteEntry {
    route.state = Some(state);
    route.deprecation = Some(Box::new(DeprecationEntry {
        since: 1_798_761_600,
        sunset: Some(sunset),
        link: Some("https://developer.example.com/v1-to-v2".into()),
        sunset_link: Some("https://developer.example.com/sunsets".into()),
        successor: Some("v2".into()),
        gone_after_sunset: gone,
    }));
    route
}

fn values<'a>(reply: &'a Reply, name: &str) -> Vec<&'a str> {
    reply
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

/// Contract, version and client of each call `/usage` reports.
fn callers(usage: &serde_json::Value) -> Vec<(Option<&str>, &str, Option<&str>)> {
    usage["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let version = c["version"].as_str().unwrap();
            (c["contract"].as_str(), version, c["client"].as_str())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deprecated_routes_announce_it_and_retired_or_sunset_ones_answer_410() {
    let backend = Upstream::named("catalog").await;
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    // 2100-01-01: the sunset is ahead, so the route serves even though it will be gone then.
    let ahead = 4_102_444_800;
    let product = proxy(
        "v1/product",
        PathKind::Exact,
        "/v1/product",
        vec![upstream("catalog", backend.port(), None, 1)],
    );
    let routes = vec![
        deprecated(product, VersionState::Deprecated, ahead, true),
        deprecated(
            respond("v1/legacy", PathKind::Exact, "/v1/legacy"),
            VersionState::Deprecated,
            now - 60,
            true,
        ),
        deprecated(
            respond("v1/kept", PathKind::Exact, "/v1/kept"),
            VersionState::Published,
            now - 60,
            false,
        ),
        {
            let mut retired = respond("v0/product", PathKind::Exact, "/v0/product");
            retired.state = Some(VersionState::Retired);
            retired
        },
        respond("v2/product", PathKind::Exact, "/v2/product"),
        {
            // A route of a Contract resource: counted under its Contract and version.
            let mut exposed = respond("shop/catalog/v3/item", PathKind::Exact, "/v3/item");
            exposed.contract = Some("v3".into());
            exposed
        },
    ];
    let (proxy, _dir) = serve_routes(routes, "deprecation", &[]).await;

    let served = proxy.send(get("/v1/product")).await;
    assert_eq!((served.status, served.text().as_str()), (200, "catalog"));
    assert_eq!(values(&served, "deprecation"), ["@1798761600"]);
    assert_eq!(values(&served, "sunset"), ["Fri, 01 Jan 2100 00:00:00 GMT"]);
    assert_eq!(
        values(&served, "link"),
        [
            "<https://developer.example.com/v1-to-v2>; rel=\"deprecation\"; type=\"text/html\"",
            "<https://developer.example.com/sunsets>; rel=\"sunset\"; type=\"text/html\"",
        ]
    );

    // Past its sunset, and told to go then: 410 with the successor, and the headers still.
    let gone = proxy.send(get("/v1/legacy")).await;
    assert_eq!(gone.status, 410);
    assert_eq!(
        gone.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(values(&gone, "deprecation"), ["@1798761600"]);
    let body = gone.json();
    assert_eq!(
        (body["status"].as_u64(), body["title"].as_str()),
        (Some(410), Some("Gone"))
    );
    assert_eq!(body["successor"], "v2");
    assert_eq!(body["route"], "v1/legacy");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("this route of version v1 was sunset on ")
            && detail.ends_with("; use version v2"),
        "{detail}"
    );

    // Past its sunset without goneAfterSunset: still served, with the headers.
    let kept = proxy.send(get("/v1/kept")).await;
    assert_eq!((kept.status, kept.text().as_str()), (200, "v1/kept"));
    assert_eq!(values(&kept, "deprecation"), ["@1798761600"]);

    let retired = proxy.send(get("/v0/product")).await;
    assert_eq!(retired.status, 410);
    assert_eq!(
        retired.json()["detail"],
        "version v0 of this API is retired"
    );
    assert!(retired.header("deprecation").is_none());

    let current = proxy.send(get("/v2/product")).await;
    assert_eq!(
        (current.status, current.text().as_str()),
        (200, "v2/product")
    );
    for name in ["deprecation", "sunset", "link"] {
        assert!(
            current.header(name).is_none(),
            "{name} on a route that is not deprecated"
        );
    }

    // Calls are counted per client, contract and version.
    assert_eq!(proxy.send(get("/v3/item")).await.status, 200);
    // A request is counted once its exchange is done, just after its answer went out.
    let series = r#"contract="shop/catalog",version="v3"} 1"#;
    let metrics = proxy
        .wait_for("/metrics", |r| r.text().contains(series))
        .await
        .text();
    for series in [
        r#"gatehouse_requests_total{route="shop/catalog/v3/item",status_class="2xx",client="anonymous",contract="shop/catalog",version="v3"} 1"#,
        r#"gatehouse_requests_total{route="v0/product",status_class="4xx",client="anonymous",contract="",version="v0"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} in\n{metrics}"
        );
    }
    // Anonymous calls of the deprecated and published versions are on record, under no
    // client; the retired version's and the draft's are not.
    let usage = proxy.wait_admin("/usage", 200).await.json();
    assert_eq!(callers(&usage), [(None, "v1", None)], "{usage}");
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_is_each_clients_last_call_of_each_published_or_deprecated_version() {
    let with_state = |mut route: RouteEntry, state: Option<VersionState>| {
        route.state = state;
        route
    };
    let mut exposed = respond("shop/catalog/v3/item", PathKind::Exact, "/v3/item");
    exposed.contract = Some("v3".into());
    let routes = vec![
        with_state(
            respond("v1/product", PathKind::Exact, "/v1/product"),
            Some(VersionState::Deprecated),
        ),
        with_state(
            respond("v2/product", PathKind::Exact, "/v2/product"),
            Some(VersionState::Published),
        ),
        // A draft's calls are nobody's business.
        respond("v9/product", PathKind::Exact, "/v9/product"),
        with_state(exposed, Some(VersionState::Published)),
    ];
    let mut table = table(routes);
    table.clients = vec![keyed_client("web")];
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        * 60;
    let proxy = serve_table("usage", &table, &[("web-keys", "web-secret")]).await;

    for path in ["/v1/product", "/v3/item", "/v9/product", "/v1/product"] {
        let reply = proxy.send(with_key(path, "web-secret")).await;
        assert_eq!(reply.status, 200, "{path}");
    }
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Recorded once each exchange is done, just after its answer went out.
    let usage = proxy
        .wait_for("/usage", |r| {
            r.json()["calls"].as_array().is_some_and(|c| c.len() >= 2)
        })
        .await
        .json();
    assert_eq!(
        callers(&usage),
        [
            (None, "v1", Some("web")),
            (Some("shop/catalog"), "v3", Some("web")),
        ],
        "{usage}"
    );
    for call in usage["calls"].as_array().unwrap() {
        let at: k8s_openapi::jiff::Timestamp = call["lastCall"].as_str().unwrap().parse().unwrap();
        let at = u64::try_from(at.as_second()).unwrap();
        assert!(at % 60 == 0 && (before..=after).contains(&at), "{call}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_contract_documents_of_promised_versions_are_on_the_admin_listener_only() {
    let ahead = 4_102_444_800;
    let routes = vec![
        deprecated(
            respond("v1/product", PathKind::Exact, "/v1/products/{id}"),
            VersionState::Deprecated,
            ahead,
            false,
        ),
        // A draft is not promised: no document.
        respond("v2/product", PathKind::Exact, "/v2/products/{id}"),
    ];
    let (proxy, _dir) = serve_routes(routes, "documents", &[]).await;
    let admin = |path: &str| send(proxy.admin, get(path));

    let index = admin("/.well-known/gatehouse/openapi.json").await.unwrap();
    assert_eq!(
        (index.status, index.header("content-type")),
        (200, Some("application/json"))
    );
    let listed = index.json()["documents"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["version"], "v1");
    assert_eq!(listed[0]["path"], "/.well-known/gatehouse/openapi/v1.json");

    let document = admin("/.well-known/gatehouse/openapi/v1.json")
        .await
        .unwrap();
    assert_eq!(
        (document.status, document.header("content-type")),
        (200, Some("application/vnd.oai.openapi+json;version=3.1"))
    );
    let document = document.json();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["servers"][0]["url"], "/v1");
    let get_product = &document["paths"]["/products/{id}"]["get"];
    assert_eq!(get_product["deprecated"], true, "{document}");
    assert_eq!(get_product["x-gatehouse-sunset"], "2100-01-01T00:00:00Z");

    for missing in [
        "/.well-known/gatehouse/openapi/v2.json",
        "/.well-known/gatehouse/openapi/v3.json",
    ] {
        assert_eq!(admin(missing).await.unwrap().status, 404, "{missing}");
    }
    // Not on the traffic listener: anyone could make the proxy build a document of megabytes
    // after every reload.
    let public = proxy.send(get("/.well-known/gatehouse/openapi.json")).await;
    assert_eq!(public.status, 404);
    assert_eq!(public.json()["title"], "No route");
}
