//! The classification on a table of change pairs: each rule with a breaking (or possibly
//! breaking) case and a passive one, on the routes compile makes of a published contract.

use super::*;
use crate::compile::contract_routes;
use crate::crd::{ContractVersion, HeaderCondition, HttpMethod, Lifecycle, PathType};

/// Two published versions: v1 with three routes, v2 with one.
fn base() -> Vec<ContractVersion> {
    let doc = serde_json::json!([
        {"version": "v1", "lifecycle": "Published", "routes": [
            {"name": "product", "match": {"path": "/products/{id}", "methods": ["GET", "PUT"]},
             "backend": {"service": "catalog"}},
            {"name": "search", "match": {"path": "/search",
                "headers": [{"name": "X-Tenant"}], "queryParams": [{"name": "q"}]},
             "backend": {"service": "search"}},
            {"name": "files", "match": {"path": "/files", "pathType": "Prefix",
                "host": "api.example.com"},
             "backend": {"service": "files"}, "limits": {"maxBodyBytes": 1000}}]},
        {"version": "v2", "lifecycle": "Published", "routes": [
            {"name": "product", "match": {"path": "/products/{id}"},
             "backend": {"service": "catalog"}}]}
    ]);
    serde_json::from_value(doc).expect("the base contract")
}

fn classified(edit: impl FnOnce(&mut Vec<ContractVersion>)) -> Vec<Change> {
    let old = base();
    let mut new = base();
    edit(&mut new);
    let (old, new) = (contract_routes("shop", &old), contract_routes("shop", &new));
    classify("spec.versions", &old, &new)
}

fn route<'a>(
    versions: &'a mut [ContractVersion],
    version: usize,
    name: &str,
) -> &'a mut crate::crd::Route {
    versions[version]
        .routes
        .iter_mut()
        .find(|r| r.name == name)
        .expect("the route")
}

/// Asserts the changes are exactly one of `class` at `path` whose message holds `says`.
#[track_caller]
fn assert_one(changes: &[Change], class: Class, path: &str, says: &str) {
    assert_eq!(changes.len(), 1, "{changes:#?}");
    let change = &changes[0];
    assert_eq!(
        (change.class, change.path.as_str()),
        (class, path),
        "{change:#?}"
    );
    assert!(change.message.contains(says), "{change:#?}");
}

const PRODUCT: &str = "spec.versions[version=v1].routes[name=product]";
const SEARCH: &str = "spec.versions[version=v1].routes[name=search]";
const FILES: &str = "spec.versions[version=v1].routes[name=files]";

#[test]
fn nothing_changed_is_no_change() {
    assert_eq!(classified(|_| {}), Vec::new());
}

#[test]
fn routes() {
    let removed = classified(|v| v[0].routes.retain(|r| r.name != "search"));
    assert_one(&removed, Class::Breaking, SEARCH, "route removed");
    let mut added = base()[0].routes[0].clone();
    added.name = "reviews".into();
    added.matches.path = "/products/{id}/reviews".into();
    let changes = classified(|v| v[0].routes.push(added));
    let at = "spec.versions[version=v1].routes[name=reviews]";
    assert_one(&changes, Class::Passive, at, "route added");
    // A deprecated route may go: its clients were told.
    let old = {
        let mut v = base();
        route(&mut v, 0, "search").deprecation = Some(
            serde_json::from_value(serde_json::json!({"since": "2027-01-01T00:00:00Z"}))
                .expect("a deprecation"),
        );
        v
    };
    let mut new = old.clone();
    new[0].routes.retain(|r| r.name != "search");
    let changes = classify(
        "spec.versions",
        &contract_routes("shop", &old),
        &contract_routes("shop", &new),
    );
    assert_one(
        &changes,
        Class::PossiblyBreaking,
        SEARCH,
        "deprecated route removed",
    );
}

#[test]
fn methods() {
    let removed = classified(|v| route(v, 0, "product").matches.methods = vec![HttpMethod::Get]);
    assert_one(
        &removed,
        Class::Breaking,
        &format!("{PRODUCT}.match.methods"),
        "method PUT removed",
    );
    let added = classified(|v| {
        route(v, 0, "product")
            .matches
            .methods
            .push(HttpMethod::Delete)
    });
    assert_one(
        &added,
        Class::Passive,
        &format!("{PRODUCT}.match.methods"),
        "method DELETE added",
    );
    let every = classified(|v| route(v, 0, "product").matches.methods.clear());
    assert_one(
        &every,
        Class::Passive,
        &format!("{PRODUCT}.match.methods"),
        "every method",
    );
    let narrowed = classified(|v| route(v, 0, "search").matches.methods = vec![HttpMethod::Get]);
    assert_one(
        &narrowed,
        Class::Breaking,
        &format!("{SEARCH}.match.methods"),
        "narrowed from every method to GET",
    );
}

#[test]
fn paths() {
    let at = format!("{PRODUCT}.match.path");
    let changed = classified(|v| route(v, 0, "product").matches.path = "/items/{id}".into());
    assert_one(
        &changed,
        Class::Breaking,
        &at,
        "path changed from /products/{id}",
    );
    let renamed = classified(|v| route(v, 0, "product").matches.path = "/products/{sku}".into());
    assert_one(
        &renamed,
        Class::Breaking,
        &at,
        "path parameter {id} renamed to {sku}",
    );
    let moved = classified(|v| route(v, 0, "product").matches.path = "/{id}/products".into());
    assert_one(&moved, Class::Breaking, &at, "path changed");
    let prefix = classified(|v| route(v, 0, "product").matches.path_type = PathType::Prefix);
    assert_one(&prefix, Class::Passive, &at, "match widened");
    let at = format!("{FILES}.match.path");
    let exact = classified(|v| route(v, 0, "files").matches.path_type = PathType::Exact);
    assert_one(
        &exact,
        Class::Breaking,
        &at,
        "path type narrowed from Prefix to Exact",
    );
    let shorter = classified(|v| route(v, 0, "files").matches.path = "/".into());
    assert_one(
        &shorter,
        Class::Passive,
        &at,
        "match widened from /files (Prefix) to / (Prefix)",
    );
    let longer = classified(|v| route(v, 0, "files").matches.path = "/files/public".into());
    assert_one(&longer, Class::Breaking, &at, "path changed");
    // A literal segment widened to a parameter takes every path it took.
    let param = classified(|v| route(v, 0, "search").matches.path = "/{anything}".into());
    assert_one(
        &param,
        Class::Passive,
        &format!("{SEARCH}.match.path"),
        "match widened",
    );
}

#[test]
fn base_path() {
    let changes = classified(|v| v[1].base_path = Some("/api/v2".into()));
    assert_one(
        &changes,
        Class::Breaking,
        "spec.versions[version=v2].basePath",
        "basePath changed from /v2 to /api/v2",
    );
    let same = classified(|v| v[1].base_path = Some("/v2".into()));
    assert_eq!(same, Vec::new(), "the default spelled out is no change");
}

#[test]
fn headers_and_query() {
    let at = format!("{SEARCH}.match.headers");
    let added = classified(|v| {
        route(v, 0, "search").matches.headers.push(HeaderCondition {
            name: "X-Client".into(),
            value: None,
        });
    });
    assert_one(&added, Class::Breaking, &at, "header x-client now required");
    let valued =
        classified(|v| route(v, 0, "search").matches.headers[0].value = Some("acme".into()));
    assert_one(
        &valued,
        Class::Breaking,
        &at,
        "header x-tenant must now be \"acme\"",
    );
    let dropped = classified(|v| route(v, 0, "search").matches.headers.clear());
    assert_one(
        &dropped,
        Class::Passive,
        &at,
        "header x-tenant no longer required",
    );
    let at = format!("{SEARCH}.match.queryParams");
    let dropped = classified(|v| route(v, 0, "search").matches.query_params.clear());
    assert_one(
        &dropped,
        Class::Passive,
        &at,
        "query parameter q no longer required",
    );
    let valued =
        classified(|v| route(v, 0, "search").matches.query_params[0].value = Some("x".into()));
    assert_one(
        &valued,
        Class::Breaking,
        &at,
        "query parameter q must now be",
    );
}

#[test]
fn hosts() {
    let at = format!("{FILES}.match.host");
    let wildcard = classified(|v| route(v, 0, "files").matches.host = Some("*.example.com".into()));
    assert_one(
        &wildcard,
        Class::Passive,
        &at,
        "match widened from host api.example.com to host *.example.com",
    );
    let any = classified(|v| route(v, 0, "files").matches.host = None);
    assert_one(&any, Class::Passive, &at, "to any host");
    let other =
        classified(|v| route(v, 0, "files").matches.host = Some("files.example.com".into()));
    assert_one(&other, Class::Breaking, &at, "narrowed");
    let pinned =
        classified(|v| route(v, 0, "product").matches.host = Some("api.example.com".into()));
    assert_one(
        &pinned,
        Class::Breaking,
        &format!("{PRODUCT}.match.host"),
        "from any host",
    );
}

#[test]
fn handling_and_callers() {
    let backend = classified(|v| {
        route(v, 0, "product")
            .backend
            .as_mut()
            .expect("a backend")
            .service = Some("catalog-v2".into())
    });
    assert_one(&backend, Class::Passive, PRODUCT, "backends changed");
    let timeout = classified(|v| route(v, 0, "product").timeout = Some("5s".into()));
    assert_one(&timeout, Class::Passive, PRODUCT, "timeouts changed");
    let respond = classified(|v| {
        let r = route(v, 0, "product");
        r.backend = None;
        r.respond =
            Some(serde_json::from_value(serde_json::json!({"status": 503})).expect("a response"));
    });
    assert_one(
        &respond,
        Class::PossiblyBreaking,
        PRODUCT,
        "responds directly instead of",
    );
    let stricter = classified(|v| {
        route(v, 0, "files")
            .limits
            .as_mut()
            .expect("limits")
            .max_body_bytes = Some(10)
    });
    assert_one(&stricter, Class::PossiblyBreaking, FILES, "max body size");
    let looser = classified(|v| route(v, 0, "files").limits = None);
    assert_one(&looser, Class::Passive, FILES, "max body size (wider)");
}

#[test]
fn versions_and_their_lifecycle() {
    let removed = classified(|v| {
        v.remove(1);
    });
    assert_one(
        &removed,
        Class::Breaking,
        "spec.versions[version=v2]",
        "published version removed",
    );
    let draft = classified(|v| v[1].lifecycle = Lifecycle::Draft);
    assert_one(
        &draft,
        Class::Breaking,
        "spec.versions[version=v2].lifecycle",
        "became a Draft again",
    );
    let retired = classified(|v| v[1].lifecycle = Lifecycle::Retired);
    assert_one(
        &retired,
        Class::Breaking,
        "spec.versions[version=v2].lifecycle",
        "without being Deprecated first",
    );
    let deprecation = || {
        serde_json::from_value(
            serde_json::json!({"since": "2027-01-01T00:00:00Z", "sunset": "2027-07-01T00:00:00Z"}),
        )
        .expect("a deprecation")
    };
    let deprecated = classified(|v| {
        v[0].lifecycle = Lifecycle::Deprecated;
        v[0].deprecation = Some(deprecation());
    });
    let shown: Vec<_> = deprecated
        .iter()
        .map(|c| (c.class, c.path.as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            (Class::Passive, "spec.versions[version=v1].deprecation"),
            (Class::Passive, "spec.versions[version=v1].lifecycle"),
        ],
        "one deprecation for the version, not one per route: {deprecated:#?}"
    );
    // From deprecated on: retiring or removing is possibly breaking (the usage check's to decide).
    let mut old = base();
    old[0].lifecycle = Lifecycle::Deprecated;
    old[0].deprecation = Some(deprecation());
    let mut new = old.clone();
    new[0].lifecycle = Lifecycle::Retired;
    let of = |v: &[ContractVersion]| contract_routes("shop", v);
    let changes = classify("spec.versions", &of(&old), &of(&new));
    assert_one(
        &changes,
        Class::PossiblyBreaking,
        "spec.versions[version=v1].lifecycle",
        "answers 410 Gone",
    );
    new.remove(0);
    let changes = classify("spec.versions", &of(&old), &of(&new));
    assert_one(
        &changes,
        Class::PossiblyBreaking,
        "spec.versions[version=v1]",
        "deprecated version removed",
    );
    // A sunset moved earlier may catch clients out.
    let mut earlier = old.clone();
    earlier[0]
        .deprecation
        .as_mut()
        .expect("a deprecation")
        .sunset = Some("2027-03-01T00:00:00Z".into());
    let changes = classify("spec.versions", &of(&old), &of(&earlier));
    assert_one(
        &changes,
        Class::PossiblyBreaking,
        "spec.versions[version=v1].deprecation",
        "sunset moved earlier",
    );
}

#[test]
fn drafts_are_free_to_change() {
    let mut old = base();
    old[1].lifecycle = Lifecycle::Draft;
    let mut new = old.clone();
    new[1].routes[0].matches.path = "/items/{sku}".into();
    let of = |v: &[ContractVersion]| contract_routes("shop", v);
    let changes = classify("spec.versions", &of(&old), &of(&new));
    assert_one(
        &changes,
        Class::Passive,
        "spec.versions[version=v2]",
        "draft changed",
    );
    new.remove(1);
    let changes = classify("spec.versions", &of(&old), &of(&new));
    assert_one(
        &changes,
        Class::Passive,
        "spec.versions[version=v2]",
        "draft version removed",
    );
    let published = classify("spec.versions", &of(&old), &of(&base()));
    assert_one(
        &published,
        Class::Passive,
        "spec.versions[version=v2].lifecycle",
        "Draft became Published",
    );
}

#[test]
fn every_break_is_listed() {
    let changes = classified(|v| {
        route(v, 0, "product").matches.methods = vec![HttpMethod::Get];
        route(v, 0, "product").matches.path = "/products/{sku}".into();
        v[0].routes.retain(|r| r.name != "files");
        v.remove(1);
    });
    let breaking: Vec<&str> = changes
        .iter()
        .filter(|c| c.class == Class::Breaking)
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(
        breaking,
        [
            "spec.versions[version=v1].routes[name=files]",
            "spec.versions[version=v1].routes[name=product].match.methods",
            "spec.versions[version=v1].routes[name=product].match.path",
            "spec.versions[version=v2]",
        ]
    );
    assert!(breaks(&changes));
}
