//! openapi: the contract a client is promised, as OpenAPI 3.1 documents — one per Published or
//! Deprecated contract version of a table, generated from the same compiled routes the proxy
//! serves, so the document cannot drift from what is served. Drafts (free to change), retired
//! versions (answered `410 Gone`) and Aggregator endpoints (no contract) get none.
//!
//! What OpenAPI cannot say exactly is said in `x-gatehouse-*` extensions:
//!
//! - a `Prefix` route is the path of its prefix, with `x-gatehouse-match: prefix` on its
//!   operations (also requests below that path are served);
//! - a route's `host` is `x-gatehouse-host` (it may be a `*.` wildcard, which a server URL is
//!   not);
//! - header conditions on `Accept`, `Content-Type` or `Authorization`, which OpenAPI ignores as
//!   parameters, are `x-gatehouse-required-headers`;
//! - routes that share a path and a method (told apart by headers, query, host or match kind)
//!   share one operation: the first route's, the others under its `x-gatehouse-alternatives`;
//! - routes whose paths differ only in parameter names share the first one's path and names;
//! - the deprecation is `deprecated: true` with `x-gatehouse-deprecation` and
//!   `x-gatehouse-sunset` (RFC 3339), `x-gatehouse-successor`, `x-gatehouse-sunset-link`,
//!   `x-gatehouse-gone-after-sunset` and the deprecation page as `externalDocs`;
//! - how a route's clients are recognised is `security` (API-key headers, JWT bearer tokens,
//!   mutual TLS; never a secret, nor which clients there are: the documents are public).
//!
//! Paths are relative to the server URL, the version's base path; a base path with parameters
//! (`/{tenant}/v1`) stays in the paths (server `/`), as it would need server variables with
//! made-up defaults. Documents are `serde_json` values whose maps are sorted (its
//! `preserve_order` feature is off), so the same table gives the same bytes.

mod operation;
mod paths;
mod security;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::route_table::{DeprecationEntry, RouteEntry, RouteTable, VersionState};
use operation::Context;
use security::Security;

/// Where the proxy serves the index of a table's documents ([`index`]).
pub const INDEX_PATH: &str = "/.well-known/gatehouse/openapi.json";

/// The OpenAPI version the documents are written in.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// What the documents' paths ([`document_path`]) start with.
const DOCUMENTS_PATH: &str = "/.well-known/gatehouse/openapi";

/// Which contract version a document describes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocumentKey {
    /// `NAMESPACE/NAME` of a Contract resource; absent for the resource's inline contracts.
    pub contract: Option<String>,
    /// The contract version, e.g. `v1`.
    pub version: String,
}

/// Where the proxy serves the document of `key`:
/// `/.well-known/gatehouse/openapi/VERSION.json` for an inline contract,
/// `/.well-known/gatehouse/openapi/NAMESPACE/NAME/VERSION.json` for a Contract resource's.
pub fn document_path(key: &DocumentKey) -> String {
    match &key.contract {
        None => format!("{DOCUMENTS_PATH}/{}.json", key.version),
        Some(contract) => format!("{DOCUMENTS_PATH}/{contract}/{}.json", key.version),
    }
}

/// One OpenAPI 3.1 document per Published or Deprecated contract version of `table`.
pub fn documents(table: &RouteTable) -> BTreeMap<DocumentKey, Value> {
    let security = Security::of(table);
    versions(table)
        .into_iter()
        .map(|(key, version)| {
            let document = document(table, &security, &key, &version);
            (key, document)
        })
        .collect()
}

/// What the proxy serves at `path`: the index ([`INDEX_PATH`]) or the one document there
/// ([`document_path`]), made alone (a version of 10,000 routes is a document of megabytes).
pub fn document_at(table: &RouteTable, path: &str) -> Option<Value> {
    if path == INDEX_PATH {
        return Some(index(table));
    }
    let (key, version) = versions(table)
        .into_iter()
        .find(|(key, _)| document_path(key) == path)?;
    Some(document(table, &Security::of(table), &key, &version))
}

/// The index of `table`'s documents: for each, its contract (absent for an inline one),
/// version, state, path ([`document_path`]) and, when the whole version is deprecated, the
/// deprecation, sunset (RFC 3339) and successor.
pub fn index(table: &RouteTable) -> Value {
    let documents: Vec<Value> = versions(table)
        .iter()
        .map(|(key, version)| {
            let mut entry = Map::new();
            if let Some(contract) = &key.contract {
                entry.insert("contract".into(), contract.as_str().into());
            }
            entry.insert("version".into(), key.version.as_str().into());
            entry.insert("state".into(), state_name(version.state).into());
            entry.insert("path".into(), document_path(key).into());
            if let Some(deprecation) = version.deprecation() {
                insert_some(&mut entry, "deprecation", rfc3339(deprecation.since));
                insert_some(&mut entry, "sunset", deprecation.sunset.and_then(rfc3339));
                insert_some(&mut entry, "successor", deprecation.successor.clone());
            }
            Value::Object(entry)
        })
        .collect();
    json!({ "documents": documents })
}

/// A route of a version and its name, the last segment of its id.
struct Named<'a> {
    name: &'a str,
    entry: &'a RouteEntry,
}

/// A promised version's routes, in the table's order (by id, so by name).
struct Version<'a> {
    state: VersionState,
    routes: Vec<Named<'a>>,
}

impl Version<'_> {
    /// The deprecation every route of the version announces: the version's own (a route's
    /// own cannot be told apart from it when it is the only route).
    fn deprecation(&self) -> Option<&DeprecationEntry> {
        let (first, rest) = self.routes.split_first()?;
        let shared = first.entry.deprecation.as_ref()?;
        rest.iter()
            .all(|route| route.entry.deprecation.as_ref() == Some(shared))
            .then_some(shared)
    }
}

/// The table's promised versions, by key.
fn versions(table: &RouteTable) -> BTreeMap<DocumentKey, Version<'_>> {
    let mut versions: BTreeMap<DocumentKey, Version<'_>> = BTreeMap::new();
    for route in &table.routes {
        let state = match route.state {
            Some(state @ (VersionState::Published | VersionState::Deprecated)) => state,
            _ => continue,
        };
        let Some((key, name)) = locate(route) else {
            continue;
        };
        versions
            .entry(key)
            .or_insert_with(|| Version {
                state,
                routes: Vec::new(),
            })
            .routes
            .push(Named { name, entry: route });
    }
    versions
}

/// The version a route is of and its name, from its id: `VERSION/ROUTE` (inline) or
/// `NAMESPACE/CONTRACT/VERSION/ROUTE`; none for an Aggregator endpoint.
fn locate(route: &RouteEntry) -> Option<(DocumentKey, &str)> {
    let version = route.contract.clone()?;
    let mut parts = route.id.rsplitn(3, '/');
    let name = parts.next()?;
    parts.next()?;
    let contract = parts.next().map(str::to_owned);
    Some((DocumentKey { contract, version }, name))
}

fn document(
    table: &RouteTable,
    security: &Security<'_>,
    key: &DocumentKey,
    version: &Version<'_>,
) -> Value {
    let base = paths::server_base(&version.routes);
    let context = Context {
        deprecated_version: version.state == VersionState::Deprecated,
        security,
    };
    let mut document = Map::new();
    document.insert("openapi".into(), OPENAPI_VERSION.into());
    document.insert("info".into(), info(table, key, version));
    document.insert(
        "servers".into(),
        json!([{ "url": paths::server_url(base) }]),
    );
    document.insert(
        "paths".into(),
        paths::paths(&version.routes, base, &context),
    );
    let schemes = security.definitions(version.routes.iter().map(|r| r.entry));
    if !schemes.is_empty() {
        document.insert(
            "components".into(),
            json!({ "securitySchemes": Value::Object(schemes) }),
        );
    }
    if let Some(link) = version.deprecation().and_then(|d| d.link.as_deref()) {
        document.insert("externalDocs".into(), operation::deprecation_docs(link));
    }
    Value::Object(document)
}

fn info(table: &RouteTable, key: &DocumentKey, version: &Version<'_>) -> Value {
    let source = &table.source;
    let served_by = format!("{} {}/{}", source.kind, source.namespace, source.name);
    let (title, description) = match &key.contract {
        Some(contract) => (
            contract.rsplit('/').next().unwrap_or(contract),
            format!(
                "Version {} of Contract {contract}, as {served_by} serves it.",
                key.version
            ),
        ),
        None => (
            source.name.as_str(),
            format!("Version {} of the contracts of {served_by}.", key.version),
        ),
    };
    let mut info = Map::new();
    info.insert("title".into(), format!("{title} {}", key.version).into());
    info.insert("description".into(), description.into());
    info.insert("version".into(), key.version.as_str().into());
    info.insert(
        "x-gatehouse-lifecycle".into(),
        state_name(version.state).into(),
    );
    if let Some(deprecation) = version.deprecation() {
        info.extend(operation::deprecation_extensions(deprecation));
    }
    Value::Object(info)
}

fn state_name(state: VersionState) -> &'static str {
    match state {
        VersionState::Published => "Published",
        VersionState::Deprecated => "Deprecated",
        VersionState::Retired => "Retired",
    }
}

/// Unix seconds as an RFC 3339 date-time (`2027-01-01T00:00:00Z`); none out of range.
fn rfc3339(seconds: i64) -> Option<String> {
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.to_string())
}

/// Inserts `value` under `key` when there is one.
fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.into());
    }
}
