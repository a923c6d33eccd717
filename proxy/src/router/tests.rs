//! Unit tests of matching and precedence.

use gatehouse_api::route_table::{
    Action, FORMAT, HeaderEdits, PathKind, RespondAction, RouteEntry, RouteTable, TableSource,
    ValueCondition,
};

use super::*;

fn route(id: &str, kind: PathKind, path: &str) -> RouteEntry {
    RouteEntry {
        id: id.to_owned(),
        contract: None,
        base_path: None,
        host: None,
        path_kind: kind,
        path: path.to_owned(),
        methods: Vec::new(),
        headers: Vec::new(),
        query: Vec::new(),
        action: Action::Respond(RespondAction {
            status: 200,
            content_type: "text/plain".to_owned(),
            body: Some(id.to_owned()),
        }),
        request_headers: HeaderEdits::default(),
        response_headers: HeaderEdits::default(),
        timeout_ms: 1000,
        tunnel_timeout_ms: None,
        clients: None,
        source_ranges: Vec::new(),
        max_body_bytes: None,
        max_in_flight: None,
        cors: None,
        state: None,
        deprecation: None,
        retries: None,
    }
}

fn table(routes: Vec<RouteEntry>) -> RouteTable {
    RouteTable {
        contracts: Vec::new(),
        tls: None,
        https_redirect_port: None,
        client_address: None,
        source_ranges: None,
        redis: None,
        format: FORMAT.to_owned(),
        source: TableSource {
            kind: "Gateway".to_owned(),
            namespace: "test".to_owned(),
            name: "test".to_owned(),
            generation: None,
        },
        edge_client: None,
        clients: Vec::new(),
        routes,
    }
}

struct Request<'a> {
    method: &'a str,
    host: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    headers: Vec<(&'a str, &'a str)>,
}

fn get(path: &str) -> Request<'_> {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    Request {
        method: "GET",
        host: None,
        path,
        query,
        headers: Vec::new(),
    }
}

/// Id of the route serving the request, and its params.
fn serve(
    router: &Router,
    table: &RouteTable,
    request: &Request<'_>,
) -> Option<(String, Vec<String>)> {
    let facts = RequestFacts {
        method: request.method,
        host: request.host,
        path: request.path,
        query: request.query,
        headers: request.headers.as_slice(),
    };
    router
        .lookup(&facts)
        .map(|m| (table.routes[m.route].id.clone(), m.params))
}

fn id_of(routes: Vec<RouteEntry>, request: Request<'_>) -> Option<String> {
    let table = table(routes);
    let router = Router::build(&table);
    serve(&router, &table, &request).map(|(id, _)| id)
}

#[test]
fn exact_matches_the_whole_path_only() {
    let routes = || vec![route("a", PathKind::Exact, "/v1/products")];
    assert_eq!(id_of(routes(), get("/v1/products")).as_deref(), Some("a"));
    assert_eq!(id_of(routes(), get("/v1/products/")).as_deref(), Some("a"));
    assert_eq!(id_of(routes(), get("/v1/products/1")), None);
    assert_eq!(id_of(routes(), get("/v1/product")), None);
    assert_eq!(id_of(routes(), get("/v1")), None);
}

#[test]
fn template_binds_params_in_pattern_order() {
    let t = table(vec![route(
        "t",
        PathKind::Template,
        "/v1/shops/{shop}/items/{id}",
    )]);
    let router = Router::build(&t);
    assert_eq!(
        serve(&router, &t, &get("/v1/shops/s1/items/42")),
        Some(("t".to_owned(), vec!["s1".to_owned(), "42".to_owned()]))
    );
    assert_eq!(router.param_names(0), ["shop", "id"]);
    assert_eq!(serve(&router, &t, &get("/v1/shops/s1/items")), None);
    assert_eq!(serve(&router, &t, &get("/v1/shops/s1/items/42/x")), None);
}

#[test]
fn prefix_matches_whole_segments_and_reports_the_rest() {
    let t = table(vec![route("p", PathKind::Prefix, "/v1/orders")]);
    let router = Router::build(&t);
    let facts = |path| RequestFacts {
        method: "GET",
        host: None,
        path,
        query: None,
        headers: &[][..],
    };
    let m = router.lookup(&facts("/v1/orders/7/lines")).unwrap();
    assert_eq!(&"/v1/orders/7/lines"[m.rest_offset..], "/7/lines");
    let m = router.lookup(&facts("/v1/orders")).unwrap();
    assert_eq!(&"/v1/orders"[m.rest_offset..], "");
    assert!(router.lookup(&facts("/v1/ordersx")).is_none());
    assert!(router.lookup(&facts("/v1")).is_none());
}

#[test]
fn root_prefix_matches_everything() {
    assert_eq!(
        id_of(vec![route("r", PathKind::Prefix, "/")], get("/")).as_deref(),
        Some("r")
    );
    assert_eq!(
        id_of(vec![route("r", PathKind::Prefix, "/")], get("/a/b")).as_deref(),
        Some("r")
    );
}

#[test]
fn exact_beats_template_beats_prefix() {
    let routes = || {
        vec![
            route("prefix", PathKind::Prefix, "/v1/products"),
            route("template", PathKind::Template, "/v1/products/{id}"),
            route("exact", PathKind::Exact, "/v1/products/new"),
        ]
    };
    assert_eq!(
        id_of(routes(), get("/v1/products/new")).as_deref(),
        Some("exact")
    );
    assert_eq!(
        id_of(routes(), get("/v1/products/42")).as_deref(),
        Some("template")
    );
    assert_eq!(
        id_of(routes(), get("/v1/products/42/x")).as_deref(),
        Some("prefix")
    );
}

#[test]
fn longer_prefix_beats_shorter() {
    let routes = || {
        vec![
            route("short", PathKind::Prefix, "/v1"),
            route("long", PathKind::Prefix, "/v1/orders"),
        ]
    };
    assert_eq!(
        id_of(routes(), get("/v1/orders/1")).as_deref(),
        Some("long")
    );
    assert_eq!(id_of(routes(), get("/v1/other")).as_deref(), Some("short"));
}

#[test]
fn literal_segment_beats_param_at_the_same_position() {
    let routes = || {
        vec![
            route("param-first", PathKind::Template, "/{a}/b"),
            route("literal-first", PathKind::Template, "/a/{b}"),
        ]
    };
    assert_eq!(
        id_of(routes(), get("/a/b")).as_deref(),
        Some("literal-first")
    );
    assert_eq!(id_of(routes(), get("/x/b")).as_deref(), Some("param-first"));
}

#[test]
fn more_conditions_beat_fewer_and_conditions_must_hold() {
    let mut with_header = route("header", PathKind::Exact, "/x");
    with_header.headers = vec![ValueCondition {
        name: "x-beta".to_owned(),
        value: Some("1".to_owned()),
    }];
    let mut with_method = route("method", PathKind::Exact, "/x");
    with_method.methods = vec!["POST".to_owned()];
    let plain = route("plain", PathKind::Exact, "/x");
    let routes = || vec![plain.clone(), with_header.clone(), with_method.clone()];
    let mut request = get("/x");
    request.headers = vec![("X-Beta", "1")];
    assert_eq!(id_of(routes(), request).as_deref(), Some("header"));
    let mut request = get("/x");
    request.headers = vec![("x-beta", "2")];
    assert_eq!(id_of(routes(), request).as_deref(), Some("plain"));
    let mut request = get("/x");
    request.method = "POST";
    assert_eq!(id_of(routes(), request).as_deref(), Some("method"));
}

#[test]
fn equal_routes_fall_back_to_route_id() {
    let routes = || {
        vec![
            route("b", PathKind::Template, "/{x}"),
            route("a", PathKind::Template, "/{y}"),
        ]
    };
    assert_eq!(id_of(routes(), get("/z")).as_deref(), Some("a"));
}

#[test]
fn query_conditions_decode_and_compare() {
    let mut q = route("q", PathKind::Exact, "/search");
    q.query = vec![
        ValueCondition {
            name: "lang".to_owned(),
            value: Some("en gb".to_owned()),
        },
        ValueCondition {
            name: "debug".to_owned(),
            value: None,
        },
    ];
    let routes = || vec![q.clone()];
    assert_eq!(
        id_of(routes(), get("/search?debug&lang=en+gb")).as_deref(),
        Some("q")
    );
    assert_eq!(
        id_of(routes(), get("/search?lang=en%20gb&debug=1")).as_deref(),
        Some("q")
    );
    assert_eq!(id_of(routes(), get("/search?lang=en%20gb")), None);
    assert_eq!(id_of(routes(), get("/search")), None);
}

#[test]
fn hosts_exact_wildcard_and_any() {
    let mut exact = route("exact", PathKind::Prefix, "/");
    exact.host = Some("api.example.com".to_owned());
    let mut wildcard = route("wildcard", PathKind::Prefix, "/");
    wildcard.host = Some("*.example.com".to_owned());
    let any = route("any", PathKind::Prefix, "/");
    let routes = || vec![exact.clone(), wildcard.clone(), any.clone()];
    let on = |host| Request {
        host: Some(host),
        ..get("/a")
    };
    assert_eq!(
        id_of(routes(), on("API.example.com:8080")).as_deref(),
        Some("exact")
    );
    assert_eq!(
        id_of(routes(), on("shop.example.com")).as_deref(),
        Some("wildcard")
    );
    assert_eq!(
        id_of(routes(), on("a.b.example.com")).as_deref(),
        Some("any")
    );
    assert_eq!(id_of(routes(), on("example.com")).as_deref(), Some("any"));
    assert_eq!(id_of(routes(), get("/a")).as_deref(), Some("any"));
}

#[test]
fn empty_table_matches_nothing() {
    assert_eq!(id_of(Vec::new(), get("/")), None);
}

/// Ten routes per resource family, `families` families: `/v1/resN/{id}`, `/v1/resN` and so on.
fn big_table(families: usize) -> RouteTable {
    let mut routes = Vec::new();
    for n in 0..families {
        routes.push(route(
            &format!("list-{n}"),
            PathKind::Exact,
            &format!("/v1/res{n}"),
        ));
        routes.push(route(
            &format!("get-{n}"),
            PathKind::Template,
            &format!("/v1/res{n}/{{id}}"),
        ));
        routes.push(route(
            &format!("sub-{n}"),
            PathKind::Prefix,
            &format!("/v1/res{n}/{{id}}/sub"),
        ));
        for k in 0..7 {
            routes.push(route(
                &format!("leaf-{n}-{k}"),
                PathKind::Exact,
                &format!("/v1/res{n}/fixed/leaf{k}"),
            ));
        }
    }
    table(routes)
}

#[test]
fn ten_thousand_routes_are_indexed_not_scanned() {
    let small = big_table(1);
    let large = big_table(1000);
    assert_eq!(large.routes.len(), 10_000);
    let small_router = Router::build(&small);
    let large_router = Router::build(&large);
    for path in [
        "/v1/res0/17",
        "/v1/res0/17/sub/x",
        "/v1/res0/fixed/leaf3",
        "/v1/res0",
        "/v1/none",
    ] {
        let facts = RequestFacts {
            method: "GET",
            host: None,
            path,
            query: None,
            headers: &[][..],
        };
        let (small_match, small_cost) = small_router.lookup_with_cost(&facts);
        let (large_match, large_cost) = large_router.lookup_with_cost(&facts);
        assert_eq!(
            small_match.map(|m| small.routes[m.route].id.clone()),
            large_match.map(|m| large.routes[m.route].id.clone()),
            "{path}"
        );
        // The same work whatever the table's size: the walk only visits the request's branch.
        assert_eq!(small_cost, large_cost, "{path}");
    }
    let facts = RequestFacts {
        method: "GET",
        host: None,
        path: "/v1/res999/fixed/leaf6",
        query: None,
        headers: &[][..],
    };
    let found = large_router
        .lookup(&facts)
        .map(|m| large.routes[m.route].id.clone());
    assert_eq!(found.as_deref(), Some("leaf-999-6"));
}

#[test]
fn pattern_literals_compare_in_the_normal_form_of_requests() {
    // Requests reach the router normalised (`gatehouse_api::normalize`): `%7E` decoded, `%c3` upper-cased.
    let routes = || {
        vec![
            route("tilde", PathKind::Exact, "/v1/%7euser"),
            route("accent", PathKind::Exact, "/v1/caf%c3%a9"),
        ]
    };
    assert_eq!(id_of(routes(), get("/v1/~user")).as_deref(), Some("tilde"));
    assert_eq!(
        id_of(routes(), get("/v1/caf%C3%A9")).as_deref(),
        Some("accent")
    );
}
