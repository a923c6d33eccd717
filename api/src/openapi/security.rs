//! How a table's clients are recognised, as OpenAPI security schemes: an API key in a header,
//! a JWT as a bearer token, a client certificate (mutual TLS). Only header names and scheme
//! kinds: the Secrets holding keys, JWKS and authorities are not named, let alone read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::route_table::{ClientEntry, RouteEntry, RouteTable};

/// Scheme names by client, and the definition of every scheme.
pub(super) struct Security<'a> {
    by_client: BTreeMap<&'a str, Vec<String>>,
    schemes: BTreeMap<String, Value>,
}

impl<'a> Security<'a> {
    /// The schemes of `table`'s clients.
    pub(super) fn of(table: &'a RouteTable) -> Self {
        let mut security = Self {
            by_client: BTreeMap::new(),
            schemes: BTreeMap::new(),
        };
        for client in &table.clients {
            let schemes = schemes(client);
            let names = schemes.iter().map(|(name, _)| name.clone()).collect();
            security.by_client.insert(&client.name, names);
            security.schemes.extend(schemes);
        }
        security
    }

    /// The schemes any one of which recognises a client of `clients`, sorted: a route's
    /// security alternatives. Empty when none of them presents credentials (an EdgeService's
    /// one client).
    pub(super) fn requirement(&self, clients: &[String]) -> BTreeSet<&str> {
        clients
            .iter()
            .filter_map(|client| self.by_client.get(client.as_str()))
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// The definitions of the schemes `routes` require: a document's `securitySchemes`.
    pub(super) fn definitions<'r>(
        &self,
        routes: impl Iterator<Item = &'r RouteEntry>,
    ) -> Map<String, Value> {
        routes
            .filter_map(|route| route.clients.as_deref())
            .flat_map(|clients| self.requirement(clients))
            .filter_map(|name| Some((name.to_owned(), self.schemes.get(name)?.clone())))
            .collect()
    }
}

/// The schemes recognising `client`, by name.
fn schemes(client: &ClientEntry) -> Vec<(String, Value)> {
    let api_key = client.api_key.as_ref().map(|key| {
        (
            format!("apiKey-{}", component_name(&key.header)),
            json!({ "type": "apiKey", "in": "header", "name": key.header }),
        )
    });
    let jwt = client.jwt.as_ref().map(|_| {
        (
            "bearerJwt".to_owned(),
            json!({ "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }),
        )
    });
    let certificate = client
        .certificate
        .as_ref()
        .map(|_| ("mutualTLS".to_owned(), json!({ "type": "mutualTLS" })));
    api_key.into_iter().chain(jwt).chain(certificate).collect()
}

/// `text` in the characters a component name may have (`[A-Za-z0-9.-]`, and `_` that escapes
/// any other byte as `_XX`): different headers, different names.
fn component_name(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => char::from(b).to_string(),
            _ => format!("_{b:02x}"),
        })
        .collect()
}
