//! What compile produces, and what a proxy refuses to load.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use gatehouse_api::compile::CompileContext;
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::{Action, PathKind, RouteTable, TableError};

fn compile_example(file: &str, context: &CompileContext) -> RouteTable {
    let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    Resource::from_yaml(&text).unwrap()[0]
        .compile(context)
        .unwrap()
}

fn route<'a>(table: &'a RouteTable, id: &str) -> &'a gatehouse_api::route_table::RouteEntry {
    table
        .routes
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no route {id}"))
}

#[test]
fn gateway_routes_resolve_to_cluster_services_and_aggregators() {
    let context = CompileContext {
        cluster_domain: "corp.internal".into(),
        aggregator_ports: BTreeMap::from([("product-page".to_owned(), 8081)]),
        ..CompileContext::default()
    };
    let table = compile_example("gateway/public.yaml", &context);
    assert_eq!(table.source.kind, "Gateway");
    assert_eq!(table.source.namespace, "default");

    let product = route(&table, "v1/product");
    assert_eq!(product.path, "/v1/products/{id}");
    assert_eq!(product.base_path.as_deref(), Some("/v1"));
    assert_eq!(product.path_kind, PathKind::Template);
    assert_eq!(product.methods, ["GET"]);
    assert_eq!(product.timeout_ms, 2000);
    assert_eq!(product.retries.as_ref().unwrap().statuses, [502, 503, 504]);
    assert_eq!(product.request_headers.set["x-client"], "{client}");
    assert_eq!(product.response_headers.remove, ["x-powered-by"]);
    let Action::Proxy { upstreams } = &product.action else {
        panic!("{:?}", product.action)
    };
    assert_eq!(upstreams[0].host, "catalog.default.svc.corp.internal");
    assert_eq!(upstreams[0].port, 8080);
    assert_eq!(upstreams[0].path.as_deref(), Some("/items/{id}"));

    let page = route(&table, "v1/product-page");
    let Action::Proxy { upstreams } = &page.action else {
        panic!()
    };
    assert_eq!(upstreams[0].service, "product-page-aggregator");
    assert_eq!(
        upstreams[0].host,
        "product-page-aggregator.default.svc.corp.internal"
    );
    assert_eq!(upstreams[0].port, 8081);

    let orders = route(&table, "v1/orders");
    assert_eq!(orders.path_kind, PathKind::Prefix);
    let Action::Proxy { upstreams } = &orders.action else {
        panic!()
    };
    let weights: Vec<u32> = upstreams.iter().map(|u| u.weight).collect();
    assert_eq!(weights, [90, 10]);

    assert_eq!(route(&table, "v1/cart").path_kind, PathKind::Exact);
    assert!(matches!(route(&table, "v1/cart").action, Action::Redirect(ref r) if r.status == 308));
    assert!(matches!(route(&table, "v1/status").action, Action::Respond(ref r) if r.status == 200));
    // A route without a timeout gets the default.
    assert_eq!(route(&table, "v1/cart").timeout_ms, 30_000);

    let ids: Vec<&str> = table.routes.iter().map(|r| r.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "routes are sorted by id");
}

#[test]
fn clients_are_referenced_by_secret_name_never_by_content() {
    let table = compile_example("gateway/public.yaml", &CompileContext::default());
    let names: Vec<&str> = table.clients.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["partner", "web"]);
    let partner = &table.clients[0];
    let key = partner.api_key.as_ref().unwrap();
    assert_eq!(
        (key.secret.as_str(), key.header.as_str()),
        ("partner-api-keys", "x-partner-key")
    );
    let limit = partner.rate_limit.as_ref().unwrap();
    assert_eq!((limit.requests_per_second, limit.burst), (50, 50));
}

#[test]
fn edge_service_knows_its_client_and_aggregates_inline() {
    let table = compile_example("edge/mobile.yaml", &CompileContext::default());
    assert_eq!(table.edge_client.as_deref(), Some("mobile"));
    let card = route(&table, "v1/product-card");
    let Action::Aggregate(plan) = &card.action else {
        panic!()
    };
    assert_eq!(
        plan.steps[0].upstream.host,
        "catalog.default.svc.cluster.local"
    );
    assert_eq!(
        plan.steps[0].filter.as_deref(),
        Some("{id, title, price, image: .images[0]}")
    );
    assert_eq!(plan.timeout_ms, 1000);
    assert_eq!(
        card.timeout_ms, 1000,
        "an aggregate route's timeout is its deadline"
    );
}

#[test]
fn aggregator_endpoints_compile_to_aggregate_routes() {
    let table = compile_example("aggregator/product-page.yaml", &CompileContext::default());
    let page = route(&table, "product-page");
    assert_eq!(page.contract, None);
    assert_eq!(page.base_path, None);
    assert_eq!(
        page.path, "/products/{id}/page",
        "endpoints have no contract base path"
    );
    let Action::Aggregate(plan) = &page.action else {
        panic!()
    };
    let steps: Vec<(&str, bool, Option<u64>)> = plan
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.optional, s.timeout_ms))
        .collect();
    assert_eq!(
        steps,
        [
            ("product", false, Some(500)),
            ("reviews", true, Some(300)),
            ("seller", false, Some(500))
        ]
    );
    assert_eq!(plan.steps[2].after, ["product"]);
    assert_eq!(plan.timeout_ms, 2000);
    assert_eq!(plan.max_step_response_bytes, 1 << 20);
}

fn table_json() -> serde_json::Value {
    let table = compile_example("aggregator/product-page.yaml", &CompileContext::default());
    serde_json::from_slice(&table.to_bytes()).unwrap()
}

fn load(value: &serde_json::Value) -> Result<RouteTable, TableError> {
    RouteTable::from_bytes(&serde_json::to_vec(value).unwrap())
}

#[test]
fn a_proxy_refuses_tables_that_are_not_sound() {
    assert!(load(&table_json()).is_ok());
    assert!(matches!(
        RouteTable::from_bytes(b"{\"format\": "),
        Err(TableError::Parse(_))
    ));

    let mut other_format = table_json();
    other_format["format"] = "gatehouse.dev/route-table/v9".into();
    assert!(matches!(
        load(&other_format),
        Err(TableError::Format { .. })
    ));

    let mut unknown = table_json();
    unknown["routes"][0]["surprise"] = true.into();
    assert!(matches!(load(&unknown), Err(TableError::Parse(_))));

    let mut twice = table_json();
    let copy = twice["routes"][0].clone();
    twice["routes"].as_array_mut().unwrap().push(copy);
    assert!(
        load(&twice)
            .unwrap_err()
            .to_string()
            .contains("appears twice")
    );

    let mut bad_rule = table_json();
    bad_rule["routes"][0]["action"]["response"] = "{".into();
    assert!(
        load(&bad_rule)
            .unwrap_err()
            .to_string()
            .contains("jq syntax error")
    );

    let mut cycle = table_json();
    cycle["routes"][0]["action"]["steps"][0]["after"] = serde_json::json!(["seller"]);
    assert!(load(&cycle).unwrap_err().to_string().contains("cycle"));

    let mut certificate_without_tls = table_json();
    certificate_without_tls["clients"] = serde_json::json!([
        {"name": "acme", "certificate": {"caSecret": "partners-ca", "names": []}}
    ]);
    assert!(
        load(&certificate_without_tls)
            .unwrap_err()
            .to_string()
            .contains("clients[0].certificate: a client certificate needs the table's tls")
    );
}

#[test]
fn digest_changes_with_content_only() {
    let a = compile_example("gateway/public.yaml", &CompileContext::default());
    let b = compile_example("gateway/public.yaml", &CompileContext::default());
    assert_eq!(a.digest(), b.digest());
    assert!(a.digest().starts_with("sha256:") && a.digest().len() == 71);
    // Hashed as it is serialised, it names the bytes the ConfigMap stores (and `sha256sum`
    // of a rendered routes.json gives).
    assert_eq!(
        a.digest(),
        gatehouse_api::route_table::digest_of(&a.to_bytes())
    );
    let mut large = a.clone();
    while large.to_bytes().len() < 300 * 1024 {
        large.routes.extend(a.routes.iter().cloned());
    }
    assert_eq!(
        large.digest(),
        gatehouse_api::route_table::digest_of(&large.to_bytes())
    );
    let mut c = a.clone();
    c.routes.pop();
    assert_ne!(a.digest(), c.digest());
}

/// A table written by hand or by a buggy tool with values the proxy cannot send is refused
/// whole, naming the field.
#[test]
fn a_proxy_refuses_tables_with_values_it_cannot_send() {
    let gateway = || {
        let table = compile_example("gateway/public.yaml", &CompileContext::default());
        serde_json::from_slice::<serde_json::Value>(&table.to_bytes()).unwrap()
    };
    let route_where = |table: &serde_json::Value, kind: &str| {
        table["routes"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["action"]["type"] == kind)
            .unwrap()
    };
    let refused = |table: serde_json::Value, expected: &str| {
        let error = load(&table).unwrap_err().to_string();
        assert!(error.contains(expected), "{expected:?} not in {error}");
    };

    let mut header = gateway();
    header["routes"][0]["requestHeaders"] = serde_json::json!({"set": {"x-a": "1\r\nx-b: 2"}});
    refused(
        header,
        "requestHeaders[x-a]: a header value may not contain a carriage return",
    );

    let mut zero = gateway();
    zero["routes"][0]["timeoutMs"] = 0.into();
    refused(zero, "timeoutMs: a timeout must be above 0");
    let mut zero_tunnel = gateway();
    zero_tunnel["routes"][0]["tunnelTimeoutMs"] = 0.into();
    refused(zero_tunnel, "tunnelTimeoutMs: a timeout must be above 0");

    let mut content_type = gateway();
    let respond = route_where(&content_type, "respond");
    content_type["routes"][respond]["action"]["contentType"] = "text/html\n".into();
    refused(
        content_type,
        "contentType: a content type may not contain a line feed",
    );

    let mut step = table_json();
    step["routes"][0]["action"]["steps"][0]["headers"] = serde_json::json!({"x-a": "{id}\n"});
    refused(
        step,
        "steps[0].headers[x-a]: a header value may not contain a line feed",
    );

    let mut method = table_json();
    method["routes"][0]["action"]["steps"][0]["method"] = "BREW".into();
    refused(method, "steps[0].method");
}

#[test]
fn an_https_listener_compiles_to_the_tables_tls_entry_and_its_redirect_port() {
    use gatehouse_api::route_table::{CertificateEntry, TlsEntry, TlsVersion, UnknownServerName};
    let table = compile_example("gateway/storefront.yaml", &CompileContext::default());
    assert_eq!(
        table.tls,
        Some(TlsEntry {
            certificates: vec![
                CertificateEntry {
                    secret: "storefront-tls".to_owned(),
                    hosts: vec![
                        "shop.example.com".to_owned(),
                        "www.shop.example.com".to_owned()
                    ],
                },
                CertificateEntry {
                    secret: "partners-tls".to_owned(),
                    hosts: vec!["*.partners.example.com".to_owned()],
                },
            ],
            unknown_server_name: UnknownServerName::Refuse,
            min_version: TlsVersion::Tls12,
        })
    );
    assert_eq!(table.https_redirect_port, Some(443));
    assert_eq!(
        table.secrets().into_iter().collect::<Vec<_>>(),
        ["partners-tls", "storefront-tls"],
        "the proxy reads the certificate Secrets"
    );

    // Without listeners the table has neither, and its bytes are what they were.
    let plain = compile_example("gateway/public.yaml", &CompileContext::default());
    assert_eq!((&plain.tls, plain.https_redirect_port), (&None, None));
    let bytes = String::from_utf8(plain.to_bytes()).unwrap();
    assert!(!bytes.contains("\"tls\"") && !bytes.contains("httpsRedirectPort"));

    // HTTPS beside a serving plain listener: no redirect; TLS 1.3 only when asked.
    let text = std::fs::read_to_string(format!(
        "{}/../examples/gateway/storefront.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("mode: RedirectToHTTPS", "mode: Serve")
    .replace("unknownServerName: Refuse", "minVersion: \"1.3\"");
    let table = Resource::from_yaml(&text).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    assert_eq!(table.https_redirect_port, None);
    let tls = table.tls.unwrap();
    assert_eq!(tls.min_version, TlsVersion::Tls13);
    assert_eq!(tls.unknown_server_name, UnknownServerName::Default);
}

#[test]
fn a_grpc_backend_compiles_to_an_h2c_upstream_and_others_stay_http1() {
    use gatehouse_api::route_table::UpstreamProtocol;
    let table = compile_example("gateway/partner-grpc.yaml", &CompileContext::default());
    let Action::Proxy { upstreams } = &route(&table, "v1/catalog").action else {
        panic!("catalog proxies");
    };
    assert_eq!(upstreams[0].protocol, UpstreamProtocol::H2c);
    // Partners by client certificate: the CA Secret is referenced, the proxy reads it.
    let acme = table.clients[0].certificate.as_ref().unwrap();
    assert_eq!(
        (acme.ca_secret.as_str(), acme.names.as_slice()),
        ("partners-ca", &["gateway.acme.example".to_owned()][..])
    );
    assert!(table.secrets().contains("partners-ca"));
    assert_eq!(
        (upstreams[0].host.as_str(), upstreams[0].port),
        ("catalog-grpc.default.svc.cluster.local", 50051)
    );
    assert!(
        String::from_utf8(table.to_bytes())
            .unwrap()
            .contains("\"protocol\":\"h2c\"")
    );

    // H2C is the same upstream protocol; without `protocol` nothing is written.
    let text = std::fs::read_to_string(format!(
        "{}/../examples/gateway/partner-grpc.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let h2c = Resource::from_yaml(&text.replace("protocol: GRPC", "protocol: H2C")).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    assert_eq!(h2c.routes, table.routes);
    let http1 = Resource::from_yaml(&text.replace(", protocol: GRPC", "")).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    let Action::Proxy { upstreams } = &route(&http1, "v1/catalog").action else {
        panic!("catalog proxies");
    };
    assert!(upstreams[0].protocol.is_http1());
    assert!(
        !String::from_utf8(http1.to_bytes())
            .unwrap()
            .contains("\"protocol\"")
    );
}

#[test]
fn a_tls_backend_compiles_to_an_upstream_with_its_server_name_and_secrets() {
    use gatehouse_api::route_table::{UpstreamProtocol, UpstreamTls};
    let table = compile_example("gateway/payments.yaml", &CompileContext::default());
    let upstream = |id| {
        let Action::Proxy { upstreams } = &route(&table, id).action else {
            panic!("{id} proxies");
        };
        upstreams[0].clone()
    };
    // The server name defaults to the Service's cluster name.
    let ledger = upstream("v1/ledger");
    assert_eq!(
        ledger.tls,
        Some(UpstreamTls {
            server_name: "ledger.default.svc.cluster.local".to_owned(),
            ca_secret: Some("platform-ca".to_owned()),
            client_certificate: Some("payments-gateway-tls".to_owned()),
        })
    );
    assert!(ledger.protocol.is_http1());
    // Web PKI roots, a name of its own, HTTP/2 by ALPN.
    let charges = upstream("v1/charges");
    assert_eq!(
        charges.tls,
        Some(UpstreamTls {
            server_name: "api.card-processor.example".to_owned(),
            ca_secret: None,
            client_certificate: None,
        })
    );
    assert_eq!(charges.protocol, UpstreamProtocol::H2c);
    assert_eq!(
        table.secrets(),
        ["payments-gateway-tls", "platform-ca"]
            .map(str::to_owned)
            .into()
    );
    assert!(gatehouse_api::validate::check_table(&table).is_ok());
}

#[test]
fn a_tunnel_timeout_compiles_to_milliseconds_and_is_absent_by_default() {
    let text = std::fs::read_to_string(format!(
        "{}/../examples/gateway/public.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let default = Resource::from_yaml(&text).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    assert!(default.routes.iter().all(|r| r.tunnel_timeout_ms.is_none()));
    assert!(
        !String::from_utf8(default.to_bytes())
            .unwrap()
            .contains("tunnelTimeoutMs")
    );
    let bounded = text.replacen(
        "timeout: 2s",
        "timeout: 2s\n          tunnelTimeout: 1h30m",
        1,
    );
    let table = Resource::from_yaml(&bounded).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    let list = route(&table, "v1/list-products");
    assert_eq!(
        (list.timeout_ms, list.tunnel_timeout_ms),
        (2_000, Some(5_400_000))
    );
    assert!(gatehouse_api::validate::check_table(&table).is_ok());
}

#[test]
fn access_rules_compile_to_each_route_with_contract_and_route_levels_combined() {
    use gatehouse_api::route_table::{ClientAddressEntry, SourceRangesEntry};
    let table = compile_example("gateway/partners.yaml", &CompileContext::default());
    assert_eq!(
        table.client_address,
        Some(ClientAddressEntry::TrustedHops(1))
    );
    assert_eq!(
        table.source_ranges,
        Some(SourceRangesEntry {
            allow: vec![],
            deny: vec!["203.0.113.0/24".to_owned()],
        })
    );
    // The contract's list, and within it the route's own.
    let orders = route(&table, "v1/orders");
    assert_eq!(
        orders.clients.as_deref(),
        Some(&["acme".to_owned(), "globex".to_owned()][..])
    );
    assert!(orders.source_ranges.is_empty());
    assert_eq!(
        orders.max_body_bytes,
        Some(1_048_576),
        "the gateway's limit"
    );
    let settlements = route(&table, "v1/settlements");
    assert_eq!(
        settlements.clients.as_deref(),
        Some(&["acme".to_owned()][..])
    );
    assert_eq!(
        settlements.source_ranges,
        [SourceRangesEntry {
            allow: vec!["198.51.100.0/24".to_owned(), "2001:db8:ac::/48".to_owned()],
            deny: vec![],
        }]
    );
    assert_eq!(
        settlements.max_body_bytes,
        Some(10_485_760),
        "the route's own"
    );
    // Contract v2 names no clients: every client.
    assert_eq!(route(&table, "v2/orders").clients, None);
    assert!(gatehouse_api::validate::check_table(&table).is_ok());

    // Ranges reach the table in normal form; without rules, the table says nothing of them.
    let text = std::fs::read_to_string(format!(
        "{}/../examples/gateway/partners.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("203.0.113.0/24", "203.0.113.9/24")
    .replace(
        "trustedHops: 1",
        "trustedProxies: [\"10.1.2.3/8\", \"fd00::1\"]",
    );
    let table = Resource::from_yaml(&text).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    assert_eq!(
        table.source_ranges.unwrap().deny,
        ["203.0.113.0/24".to_owned()]
    );
    assert_eq!(
        table.client_address,
        Some(ClientAddressEntry::TrustedProxies(vec![
            "10.0.0.0/8".to_owned(),
            "fd00::1/128".to_owned()
        ]))
    );
    let plain = compile_example("gateway/public.yaml", &CompileContext::default());
    let bytes = String::from_utf8(plain.to_bytes()).unwrap();
    for field in ["clientAddress", "sourceRanges", "maxBodyBytes"] {
        assert!(!bytes.contains(field), "{field} in {bytes}");
    }
    assert!(plain.routes.iter().all(|r| r.clients.is_none()));
}

#[test]
fn a_proxy_refuses_access_rules_it_could_not_apply() {
    let mut table = table_json();
    table["routes"][0]["clients"] = serde_json::json!(["nobody"]);
    table["routes"][0]["sourceRanges"] = serde_json::json!([{"allow": ["10.0.0.0/33"]}]);
    table["routes"][0]["maxBodyBytes"] = serde_json::json!(0);
    table["routes"][0]["maxInFlight"] = serde_json::json!(0);
    table["clientAddress"] = serde_json::json!({"trustedProxies": ["proxy"]});
    let Err(TableError::Invalid(problems)) = load(&table) else {
        panic!("expected the table to be refused")
    };
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    for expected in [
        "routes[0].clients: the table has no client named nobody",
        "routes[0].sourceRanges[0].allow[0]",
        "routes[0].maxBodyBytes: a body limit must be above 0",
        "routes[0].maxInFlight: a concurrency limit must be above 0",
        "clientAddress.trustedProxies[0]",
    ] {
        assert!(
            shown.iter().any(|p| p.contains(expected)),
            "{expected} not in {shown:#?}"
        );
    }
}

#[test]
fn a_cors_policy_compiles_to_each_route_of_its_contract_unless_the_route_has_its_own() {
    let table = compile_example("gateway/storefront.yaml", &CompileContext::default());
    let cors = route(&table, "v1/product").cors.as_ref().unwrap();
    assert_eq!(
        cors.allow_origins,
        [
            "https://*.preview.shop.example.com",
            "https://shop.example.com"
        ]
    );
    assert_eq!(cors.allow_methods, ["GET"], "the route's own methods");
    assert_eq!(cors.allow_headers, ["authorization", "content-type"]);
    assert_eq!(cors.expose_headers, ["x-request-id"]);
    assert!(cors.allow_credentials);
    assert_eq!(cors.max_age_seconds, Some(600));
    assert!(gatehouse_api::validate::check_table(&table).is_ok());

    let text = std::fs::read_to_string(format!(
        "{}/../examples/gateway/storefront.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace(
        "          timeout: 2s",
        "          timeout: 2s\n          cors: {allowOrigins: [\"HTTPS://Admin.Example.com\"]}",
    )
    .replace("methods: [GET]", "methods: []");
    let table = Resource::from_yaml(&text).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    let own = route(&table, "v1/product").cors.as_ref().unwrap();
    assert_eq!(own.allow_origins, ["https://admin.example.com"]);
    assert_eq!(
        own.allow_methods,
        ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        "a route of every method allows the usual ones"
    );
    assert!(!own.allow_credentials);
    assert_eq!(own.max_age_seconds, None);
}
