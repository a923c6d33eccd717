//! The contracts a table promises, as OpenAPI 3.1 documents (`gatehouse_api::openapi`): the
//! index at `/.well-known/gatehouse/openapi.json` and one document per published or deprecated
//! version, on the proxy listener, for GET and HEAD requests that no route claims. Made on the
//! first request for them, once per table: a table nobody asks about costs nothing.

use std::collections::HashMap;

use bytes::Bytes;
use gatehouse_api::openapi::{self, INDEX_PATH};
use gatehouse_api::route_table::RouteTable;

/// What every document path starts with.
pub const DOCUMENTS_PREFIX: &str = "/.well-known/gatehouse/openapi";

/// A table's documents, by path.
#[derive(Debug, Default)]
pub struct ContractDocuments {
    by_path: HashMap<String, Bytes>,
}

/// The media type of an OpenAPI document (as the OpenAPI Initiative registers it).
pub const OPENAPI_MEDIA_TYPE: &str = "application/vnd.oai.openapi+json;version=3.1";

impl ContractDocuments {
    /// The documents of `table`, and its index.
    pub fn of(table: &RouteTable) -> Self {
        let bytes = |value: &serde_json::Value| {
            let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
            body.push(b'\n');
            Bytes::from(body)
        };
        let mut by_path: HashMap<String, Bytes> = openapi::documents(table)
            .iter()
            .map(|(key, document)| (openapi::document_path(key), bytes(document)))
            .collect();
        by_path.insert(INDEX_PATH.to_owned(), bytes(&openapi::index(table)));
        Self { by_path }
    }

    /// The body and media type at `path`, if a document is there.
    pub fn get(&self, path: &str) -> Option<(Bytes, &'static str)> {
        let body = self.by_path.get(path)?.clone();
        let media_type = if path == INDEX_PATH {
            "application/json"
        } else {
            OPENAPI_MEDIA_TYPE
        };
        Some((body, media_type))
    }
}
