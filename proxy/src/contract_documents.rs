//! The contracts a table promises, as OpenAPI 3.1 documents (`gatehouse_api::openapi`), on the
//! admin listener: the index at `/.well-known/gatehouse/openapi.json` and one document per
//! published or deprecated version. Made per request, the one asked for alone, and not kept:
//! a version of 10,000 routes is a document of megabytes (20 MB when every route takes every
//! method), so neither the traffic listener (anyone could make the proxy build one after every
//! reload) nor a cache (held for the table's life) serves them.

use gatehouse_api::openapi::{self, INDEX_PATH};

use crate::table::LoadedTable;

/// What every document path starts with.
pub const DOCUMENTS_PREFIX: &str = "/.well-known/gatehouse/openapi";

/// The media type of an OpenAPI document (as the OpenAPI Initiative registers it).
pub const OPENAPI_MEDIA_TYPE: &str = "application/vnd.oai.openapi+json;version=3.1";

/// The body and media type of the document at `path` of `table`, if one is there.
pub fn document(table: &LoadedTable, path: &str) -> Option<(Vec<u8>, &'static str)> {
    let document = openapi::document_at(&table.route_table(), path)?;
    let mut body = serde_json::to_vec(&document).unwrap_or_default();
    body.push(b'\n');
    // The document's tree (ten times its bytes) is freed here, on the admin thread, which
    // allocates little: hand its pages back now rather than keep them.
    drop(document);
    gatehouse_allocator::release_freed();
    let media_type = if path == INDEX_PATH {
        "application/json"
    } else {
        OPENAPI_MEDIA_TYPE
    };
    Some((body, media_type))
}
