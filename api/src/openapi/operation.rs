//! One route as OpenAPI operations, one per method: its parameters, its answers, its
//! deprecation and who may call it.

use serde_json::{Map, Value, json};

use super::security::Security;
use super::{Named, insert_some, rfc3339};
use crate::route_table::{Action, DeprecationEntry, PathKind, RouteEntry, ValueCondition};

/// The methods an OpenAPI path item has operations for, which a route of every method
/// (`methods` empty) gets all of.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Headers OpenAPI ignores as parameters (its parameter object says so): they are described by
/// other fields, so a route's conditions on them go to `x-gatehouse-required-headers`.
const RESERVED_HEADERS: [&str; 3] = ["accept", "content-type", "authorization"];

/// What the operations of a document share.
pub(super) struct Context<'a> {
    /// The version is Deprecated: every operation is.
    pub(super) deprecated_version: bool,
    /// How the table's clients are recognised.
    pub(super) security: &'a Security<'a>,
}

/// An operation without its `operationId`, and the id it asks for.
pub(super) struct Operation {
    /// Lower-case method, the path item's field.
    pub(super) method: &'static str,
    /// The route's name, suffixed `_METHOD` when the route has several methods.
    pub(super) id: String,
    /// The operation object.
    pub(super) object: Map<String, Value>,
}

/// The operations of `route`, whose path parameters are called `params` in the document.
pub(super) fn operations(
    context: &Context<'_>,
    route: &Named<'_>,
    params: &[String],
) -> Vec<Operation> {
    let methods = methods(route.entry);
    let object = operation(context, route.entry, params);
    let several = methods.len() > 1;
    methods
        .into_iter()
        .map(|method| Operation {
            method,
            id: if several {
                format!("{}_{method}", route.name)
            } else {
                route.name.to_owned()
            },
            object: object.clone(),
        })
        .collect()
}

/// The route's methods as path item fields; all of them when it lists none. A method OpenAPI
/// has no field for (`CONNECT`) cannot be described.
fn methods(route: &RouteEntry) -> Vec<&'static str> {
    if route.methods.is_empty() {
        return METHODS.to_vec();
    }
    METHODS
        .into_iter()
        .filter(|m| route.methods.iter().any(|r| r.eq_ignore_ascii_case(m)))
        .collect()
}

/// The operation object every method of `route` shares.
fn operation(context: &Context<'_>, route: &RouteEntry, params: &[String]) -> Map<String, Value> {
    let mut operation = Map::new();
    operation.insert("parameters".into(), parameters(route, params).into());
    operation.insert("responses".into(), responses(&route.action));
    let reserved: Vec<Value> = conditions(&route.headers, true)
        .map(|c| {
            let mut condition = Map::new();
            condition.insert("name".into(), c.name.as_str().into());
            insert_some(&mut condition, "value", c.value.clone());
            Value::Object(condition)
        })
        .collect();
    if !reserved.is_empty() {
        operation.insert("x-gatehouse-required-headers".into(), reserved.into());
    }
    if route.path_kind == PathKind::Prefix {
        operation.insert("x-gatehouse-match".into(), "prefix".into());
    }
    insert_some(&mut operation, "x-gatehouse-host", route.host.clone());
    // Which clients may call is not said: the documents are public, the list of a gateway's
    // partners is not. How to present credentials is.
    if let Some(clients) = &route.clients {
        let schemes = context.security.requirement(clients);
        if !schemes.is_empty() {
            let alternatives: Vec<Value> = schemes
                .into_iter()
                .map(|scheme| json!({ scheme: [] }))
                .collect();
            operation.insert("security".into(), alternatives.into());
        }
    }
    if context.deprecated_version || route.deprecation.is_some() {
        operation.insert("deprecated".into(), true.into());
    }
    if let Some(deprecation) = &route.deprecation {
        operation.extend(deprecation_extensions(deprecation));
        if let Some(link) = &deprecation.link {
            operation.insert("externalDocs".into(), deprecation_docs(link));
        }
    }
    operation
}

/// The path parameters, then the header and query conditions, all required.
fn parameters(route: &RouteEntry, params: &[String]) -> Vec<Value> {
    let path = params
        .iter()
        .map(|name| parameter(name, "path", json!({ "type": "string" })));
    let headers =
        conditions(&route.headers, false).map(|c| parameter(&c.name, "header", schema(c)));
    let query = route
        .query
        .iter()
        .map(|c| parameter(&c.name, "query", schema(c)));
    path.chain(headers).chain(query).collect()
}

fn parameter(name: &str, location: &str, schema: Value) -> Value {
    json!({ "name": name, "in": location, "required": true, "schema": schema })
}

/// The header conditions on reserved headers (`reserved`), or on the others.
fn conditions(headers: &[ValueCondition], reserved: bool) -> impl Iterator<Item = &ValueCondition> {
    headers.iter().filter(move |c| {
        RESERVED_HEADERS.contains(&c.name.to_ascii_lowercase().as_str()) == reserved
    })
}

/// Any string, or the one value the condition requires.
fn schema(condition: &ValueCondition) -> Value {
    match &condition.value {
        Some(value) => json!({ "type": "string", "const": value }),
        None => json!({ "type": "string" }),
    }
}

/// What the route answers: the backend's or the aggregation's answer, or the redirect or
/// direct response the gateway gives itself.
fn responses(action: &Action) -> Value {
    let (status, response) = match action {
        Action::Proxy { .. } => (None, json!({ "description": "The backend's answer." })),
        Action::Aggregate(_) => (None, json!({ "description": "The aggregated answer." })),
        Action::Redirect(redirect) => (
            Some(redirect.status),
            json!({
                "description": "A redirect, answered by the gateway.",
                "headers": { "Location": { "required": true, "schema": { "type": "string" } } },
            }),
        ),
        Action::Respond(respond) => {
            let mut response = json!({ "description": "Answered by the gateway." });
            if respond.body.is_some() {
                response["content"] = json!({ respond.content_type.as_str(): {} });
            }
            (Some(respond.status), response)
        }
    };
    let key = status
        .filter(|s| (100..600).contains(s))
        .map_or_else(|| "default".to_owned(), |s| s.to_string());
    json!({ key: response })
}

/// The deprecation's extensions (all but its page, which is `externalDocs`).
pub(super) fn deprecation_extensions(deprecation: &DeprecationEntry) -> Map<String, Value> {
    let mut extensions = Map::new();
    insert_some(
        &mut extensions,
        "x-gatehouse-deprecation",
        rfc3339(deprecation.since),
    );
    insert_some(
        &mut extensions,
        "x-gatehouse-sunset",
        deprecation.sunset.and_then(rfc3339),
    );
    insert_some(
        &mut extensions,
        "x-gatehouse-sunset-link",
        deprecation.sunset_link.clone(),
    );
    insert_some(
        &mut extensions,
        "x-gatehouse-successor",
        deprecation.successor.clone(),
    );
    if deprecation.gone_after_sunset {
        extensions.insert("x-gatehouse-gone-after-sunset".into(), true.into());
    }
    extensions
}

/// The deprecation page as an external documentation object.
pub(super) fn deprecation_docs(link: &str) -> Value {
    json!({ "description": "Deprecation", "url": link })
}
