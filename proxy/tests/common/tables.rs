//! Route tables for tests, built with the API crate's types.

use std::collections::BTreeMap;

use gatehouse_api::route_table::{
    Action, ApiKeyEntry, ClientCertificateEntry, ClientEntry, FORMAT, HeaderEdits, PathKind,
    RespondAction, Retries, RouteEntry, RouteTable, TableSource, Upstream, UpstreamProtocol,
};

pub fn table(routes: Vec<RouteEntry>) -> RouteTable {
    let mut routes = routes;
    routes.sort_by(|a, b| a.id.cmp(&b.id));
    RouteTable {
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
            generation: Some(1),
        },
        edge_client: None,
        clients: Vec::new(),
        routes,
        contracts: Vec::new(),
    }
}

/// A client recognised by an API key in `x-api-key`, from Secret `NAME-keys`.
pub fn keyed_client(name: &str) -> ClientEntry {
    ClientEntry {
        name: name.to_owned(),
        api_key: Some(ApiKeyEntry {
            secret: format!("{name}-keys"),
            header: "x-api-key".to_owned(),
        }),
        jwt: None,
        certificate: None,
        max_in_flight: None,
        rate_limit: None,
    }
}

pub fn bytes(routes: Vec<RouteEntry>) -> Vec<u8> {
    table(routes).to_bytes()
}

fn entry(id: &str, kind: PathKind, path: &str, action: Action) -> RouteEntry {
    RouteEntry {
        id: id.to_owned(),
        contract: id.split_once('/').map(|(c, _)| c.to_owned()),
        // What compile writes for a contract with the default base path `/VERSION`.
        base_path: id.split_once('/').map(|(c, _)| format!("/{c}")),
        host: None,
        path_kind: kind,
        path: path.to_owned(),
        methods: Vec::new(),
        headers: Vec::new(),
        query: Vec::new(),
        action,
        request_headers: HeaderEdits::default(),
        response_headers: HeaderEdits::default(),
        timeout_ms: 5_000,
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

/// A route answering 200 with its own id as the body.
pub fn respond(id: &str, kind: PathKind, path: &str) -> RouteEntry {
    entry(
        id,
        kind,
        path,
        Action::Respond(RespondAction {
            status: 200,
            content_type: "text/plain".to_owned(),
            body: Some(id.to_owned()),
        }),
    )
}

/// An upstream on a loopback port.
pub fn upstream(service: &str, port: u16, path: Option<&str>, weight: u32) -> Upstream {
    Upstream {
        service: service.to_owned(),
        host: "127.0.0.1".to_owned(),
        port,
        path: path.map(str::to_owned),
        weight,
        protocol: UpstreamProtocol::Http1,
        tls: None,
    }
}

/// A route proxying to `upstreams`.
pub fn proxy(id: &str, kind: PathKind, path: &str, upstreams: Vec<Upstream>) -> RouteEntry {
    entry(id, kind, path, Action::Proxy { upstreams })
}

pub fn with_retries(mut route: RouteEntry, attempts: u32, statuses: &[u16]) -> RouteEntry {
    route.retries = Some(Retries {
        attempts,
        statuses: statuses.to_vec(),
    });
    route
}

pub fn with_timeout(mut route: RouteEntry, timeout_ms: u64) -> RouteEntry {
    route.timeout_ms = timeout_ms;
    route
}

pub fn edits(set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]) -> HeaderEdits {
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    HeaderEdits {
        remove: remove.iter().map(|s| (*s).to_owned()).collect(),
        set: map(set),
        add: map(add),
    }
}

/// A client recognised by certificates the authorities of `ca_secret` signed, carrying one of
/// `names` (any when empty).
pub fn certified_client(name: &str, ca_secret: &str, names: &[&str]) -> ClientEntry {
    ClientEntry {
        name: name.to_owned(),
        api_key: None,
        jwt: None,
        certificate: Some(ClientCertificateEntry {
            ca_secret: ca_secret.to_owned(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }),
        max_in_flight: None,
        rate_limit: None,
    }
}
