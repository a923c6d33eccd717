//! The OpenAPI 3.1 documents of published contract versions: what they say, what they leave
//! out, and that every one of them — of a test gateway and of every example — is valid against
//! the official OpenAPI 3.1 schema.
//!
//! The schema is not copied here: it is the one of the `openapi-spec-validator` Python package
//! (`pip install openapi-spec-validator`), found by `OPENAPI_31_SCHEMA` (the path of its
//! `schema.json`), else where `charts/install-chart-tools.sh` links it
//! (`.tools/openapi-3.1-schema.json`, as `.ci/run` installs it), else by asking `python3` where
//! the package is. Without it the tests fail, unless `GATEHOUSE_SKIP_OPENAPI_SCHEMA=1`.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gatehouse_api::compile::CompileContext;
use gatehouse_api::openapi::{self, DocumentKey, INDEX_PATH};
use gatehouse_api::resource::{Bundle, Document, Resource};
use gatehouse_api::route_table::{ClientCertificateEntry, ClientEntry, RouteTable, VersionState};
use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::{Value, json};

// The schema, and proof that validating against it checks something.

/// Where the schema is: `OPENAPI_31_SCHEMA`, else the test tools', else the installed
/// `openapi-spec-validator`'s.
fn schema_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OPENAPI_31_SCHEMA") {
        return Some(PathBuf::from(path));
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/openapi-3.1-schema.json");
    if tools.is_file() {
        return Some(tools);
    }
    let script = "import openapi_spec_validator, pathlib; print(pathlib.Path(openapi_spec_validator.__file__).parent / 'resources' / 'schemas' / 'v3.1' / 'schema.json')";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && path.is_file()).then_some(path)
}

/// The schema's references are all inside it or to the 2020-12 meta-schemas the validator
/// carries: anything else is an error, never a download.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("{uri} is not retrieved: the OpenAPI 3.1 schema must be self-contained").into())
    }
}

/// The validator of the OpenAPI 3.1 schema; none when `GATEHOUSE_SKIP_OPENAPI_SCHEMA=1` and
/// the schema is missing.
fn validator() -> Option<&'static Validator> {
    static VALIDATOR: OnceLock<Option<Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let Some(path) = schema_path() else {
                assert!(
                    std::env::var("GATEHOUSE_SKIP_OPENAPI_SCHEMA").as_deref() == Ok("1"),
                    "the OpenAPI 3.1 schema was not found: run `pip install openapi-spec-validator`, \
                     or set OPENAPI_31_SCHEMA to the path of an OpenAPI 3.1 schema.json \
                     (GATEHOUSE_SKIP_OPENAPI_SCHEMA=1 skips the schema check)"
                );
                eprintln!("GATEHOUSE_SKIP_OPENAPI_SCHEMA=1: documents are not checked against the schema");
                return None;
            };
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let schema: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                schema["$id"].as_str().unwrap_or_default(),
                "https://spec.openapis.org/oas/3.1/schema/2022-10-07",
                "{} is not the OpenAPI 3.1 schema",
                path.display()
            );
            let validator = jsonschema::options()
                .with_draft(Draft::Draft202012)
                .should_validate_formats(true)
                .with_retriever(NoRetrieval)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Some(validator)
        })
        .as_ref()
}

/// Why `document` is not a valid OpenAPI 3.1 document; empty when it is (or is not checked).
fn schema_errors(document: &Value) -> Vec<String> {
    validator().map_or_else(Vec::new, |validator| {
        validator
            .iter_errors(document)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    })
}

/// Checks what the schema cannot: operationIds unique, path parameters declared.
fn check(what: &str, document: &Value) {
    let errors = schema_errors(document);
    assert!(
        errors.is_empty(),
        "{what}: {errors:#?}\n{}",
        serde_json::to_string_pretty(document).unwrap()
    );
    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for operation in item.as_object().unwrap().values() {
            let alternatives = operation["x-gatehouse-alternatives"].as_array();
            for operation in std::iter::once(operation).chain(alternatives.into_iter().flatten()) {
                let id = operation["operationId"].as_str().unwrap().to_owned();
                assert!(ids.insert(id.clone()), "{what}: operationId {id} twice");
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect();
                assert_eq!(declared, names, "{what}: {id} at {path}");
            }
        }
    }
}

/// Every document and the index of `table`, checked.
fn checked_documents(what: &str, table: &RouteTable) -> BTreeMap<DocumentKey, Value> {
    let documents = openapi::documents(table);
    for (key, document) in &documents {
        check(&format!("{what} {key:?}"), document);
    }
    let index = openapi::index(table);
    assert_eq!(
        index["documents"].as_array().unwrap().len(),
        documents.len()
    );
    documents
}

#[test]
fn the_schema_check_refuses_broken_documents() {
    if validator().is_none() {
        return;
    }
    let valid = json!({
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "v1"},
        "paths": {"/a/{id}": {"get": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"default": {"description": "d"}},
        }}},
    });
    assert_eq!(schema_errors(&valid), Vec::<String>::new());
    let broken = |edit: fn(&mut Value)| {
        let mut document = valid.clone();
        edit(&mut document);
        document
    };
    let cases = [
        (
            "no openapi",
            broken(|d| drop(d.as_object_mut().unwrap().remove("openapi"))),
        ),
        ("OpenAPI 3.0", broken(|d| d["openapi"] = "3.0.3".into())),
        (
            "path without /",
            broken(|d| {
                let item = d["paths"]["/a/{id}"].take();
                d["paths"] = json!({ "a/{id}": item });
            }),
        ),
        (
            "optional path parameter",
            broken(|d| {
                d["paths"]["/a/{id}"]["get"]["parameters"][0]["required"] = false.into();
            }),
        ),
        (
            "parameter without schema",
            broken(|d| {
                drop(
                    d["paths"]["/a/{id}"]["get"]["parameters"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("schema"),
                );
            }),
        ),
        (
            "schema neither object nor boolean",
            broken(|d| {
                d["paths"]["/a/{id}"]["get"]["parameters"][0]["schema"] = 5.into();
            }),
        ),
        (
            "unknown operation field",
            broken(|d| d["paths"]["/a/{id}"]["get"]["sunset"] = "x".into()),
        ),
        (
            "empty responses",
            broken(|d| d["paths"]["/a/{id}"]["get"]["responses"] = json!({})),
        ),
        (
            "server URL not a URI",
            broken(|d| d["servers"] = json!([{"url": "/a b\\c"}])),
        ),
    ];
    for (what, document) in cases {
        assert!(
            !schema_errors(&document).is_empty(),
            "{what} passed the schema"
        );
    }
}

// A gateway whose versions show what a document holds and what it leaves out.

const GATEWAY: &str = r#"
apiVersion: gatehouse.dev/v1alpha1
kind: Gateway
metadata: {name: shop-api, namespace: shop}
spec:
  clients:
    - name: web
      apiKeys: {secretRef: {name: web-keys}}
    - name: partner
      jwt: {issuer: "https://id.example.com", audiences: [shop], jwksSecretRef: {name: partner-jwks}}
    - name: mobile
      apiKeys: {secretRef: {name: mobile-keys}, header: x-mobile-key}
  contracts:
    - version: v1
      lifecycle: Published
      routes:
        - name: product
          match:
            path: "/products/{id}"
            methods: [GET, PUT]
            headers: [{name: X-Tenant, value: acme}, {name: Accept, value: application/json}]
            queryParams: [{name: view}]
          backend: {service: catalog}
          access: {clients: [web, partner]}
        - name: product-globex
          match: {path: "/products/{id}", methods: [GET], headers: [{name: X-Tenant, value: globex}]}
          backend: {service: globex}
        - name: create-item
          match: {path: "/products/{sku}", methods: [POST]}
          backend: {service: catalog}
        - name: anything
          match: {path: /anything}
          backend: {service: echo}
        - name: files
          match: {path: "/files/{bucket}", pathType: Prefix, methods: [GET], host: files.example.com}
          backend: {service: files}
        - name: status
          match: {path: /, methods: [GET]}
          respond: {status: 200, body: '{"ok":true}', contentType: application/json}
        - name: old-search
          match: {path: /search, methods: [GET]}
          backend: {service: search}
          deprecation: {since: "2027-03-01T00:00:00Z", link: "https://developer.example.com/search"}
    - version: v2
      lifecycle: Deprecated
      basePath: /shop/v2
      deprecation:
        since: "2027-01-01T00:00:00Z"
        sunset: "2027-07-01T00:00:00Z"
        link: "https://developer.example.com/v2-deprecation"
        sunsetLink: "https://developer.example.com/v2-sunset"
        successor: v3
        goneAfterSunset: true
      routes:
        - name: product
          match: {path: "/products/{id}", methods: [GET]}
          backend: {service: catalog}
          access: {clients: [mobile]}
        - name: cart
          match: {path: /cart, methods: [GET, POST]}
          redirect: {path: /v1/cart, statusCode: 308}
    - version: v3
      routes:
        - {name: product, match: {path: "/products/{id}"}, backend: {service: catalog}}
    - version: v4
      lifecycle: Retired
      deprecation: {since: "2026-01-01T00:00:00Z", successor: v1}
      routes:
        - {name: product, match: {path: "/products/{id}"}, backend: {service: catalog}}
    - version: v5
      lifecycle: Published
      basePath: "/{tenant}/v5"
      routes:
        - {name: orders, match: {path: "/orders/{order}", methods: [GET]}, backend: {service: orders}}
"#;

fn compile(yaml: &str, namespace: &str) -> Vec<(String, RouteTable)> {
    let documents = Document::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"));
    let bundle = Bundle::new(documents, namespace);
    assert!(
        bundle.contract_problems().is_empty(),
        "{:?}",
        bundle.contract_problems()
    );
    let context = CompileContext {
        catalog: bundle.catalog.clone(),
        ..CompileContext::default()
    };
    bundle
        .resources
        .iter()
        .map(|r| {
            let table = r.compile(&context).unwrap_or_else(|p| panic!("{p:?}"));
            (r.name().to_owned(), table)
        })
        .collect()
}

fn gateway() -> RouteTable {
    compile(GATEWAY, "shop").remove(0).1
}

fn inline(version: &str) -> DocumentKey {
    DocumentKey {
        contract: None,
        version: version.to_owned(),
    }
}

fn document(table: &RouteTable, key: &DocumentKey) -> Value {
    checked_documents("gateway", table)
        .remove(key)
        .unwrap_or_else(|| panic!("no document {key:?}"))
}

#[test]
fn only_published_and_deprecated_versions_get_a_document() {
    let table = gateway();
    let documents = checked_documents("gateway", &table);
    let keys: Vec<&str> = documents.keys().map(|k| k.version.as_str()).collect();
    assert_eq!(keys, ["v1", "v2", "v5"], "no draft v3, no retired v4");
    assert!(documents.keys().all(|k| k.contract.is_none()));
    // An Aggregator's endpoints belong to no contract version.
    let aggregator = examples_dir().join("aggregator/product-page.yaml");
    let text = std::fs::read_to_string(aggregator).unwrap();
    let table = Resource::from_yaml(&text).unwrap()[0]
        .compile(&CompileContext::default())
        .unwrap();
    assert!(table.routes.iter().all(|r| r.contract.is_none()));
    assert!(openapi::documents(&table).is_empty());
    assert_eq!(openapi::index(&table), json!({"documents": []}));
}

#[test]
fn a_published_version_documents_its_paths_methods_and_parameters() {
    let table = gateway();
    let v1 = document(&table, &inline("v1"));
    assert_eq!(v1["openapi"], "3.1.0");
    assert_eq!(
        v1["info"],
        json!({
            "title": "shop-api v1",
            "version": "v1",
            "description": "Version v1 of the contracts of Gateway shop/shop-api.",
            "x-gatehouse-lifecycle": "Published",
        })
    );
    // Paths are relative to the base path, /v1 by default.
    assert_eq!(v1["servers"], json!([{"url": "/v1"}]));
    let paths = path_names(&v1);
    // Two routes' paths differ in the parameter's name only: the first route's (by id) it is.
    assert_eq!(
        paths,
        [
            "/",
            "/anything",
            "/files/{bucket}",
            "/products/{sku}",
            "/search"
        ]
    );

    // Several methods: one operation each, ids suffixed; conditions are required parameters
    // (Accept cannot be one: it is an extension).
    let product = &v1["paths"]["/products/{sku}"];
    let methods: Vec<&str> = product
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(methods, ["get", "post", "put"]);
    let get = &product["get"];
    assert_eq!(get["operationId"], "product_get");
    assert_eq!(product["put"]["operationId"], "product_put");
    assert_eq!(
        get["parameters"],
        json!([
            {"name": "sku", "in": "path", "required": true, "schema": {"type": "string"}},
            {"name": "x-tenant", "in": "header", "required": true, "schema": {"type": "string", "const": "acme"}},
            {"name": "view", "in": "query", "required": true, "schema": {"type": "string"}},
        ])
    );
    assert_eq!(
        get["x-gatehouse-required-headers"],
        json!([{"name": "accept", "value": "application/json"}])
    );
    assert_eq!(
        get["responses"],
        json!({"default": {"description": "The backend's answer."}})
    );
    // Who the partners are is nobody's business: only how to present credentials is said.
    assert_eq!(get.get("x-gatehouse-clients"), None);
    assert_eq!(
        get["security"],
        json!([{"apiKey-x-api-key": []}, {"bearerJwt": []}])
    );
    assert_eq!(get.get("deprecated"), None);
    // The same path and method, told apart by a header: an alternative of the first route.
    let alternatives = get["x-gatehouse-alternatives"].as_array().unwrap();
    assert_eq!(alternatives.len(), 1);
    assert_eq!(alternatives[0]["operationId"], "product-globex");
    assert_eq!(
        alternatives[0]["parameters"][1]["schema"]["const"],
        "globex"
    );
    let post = &product["post"];
    assert_eq!(post["operationId"], "create-item");
    assert_eq!(
        post["parameters"],
        json!([{"name": "sku", "in": "path", "required": true, "schema": {"type": "string"}}])
    );

    // No methods: every one OpenAPI has.
    let anything = v1["paths"]["/anything"].as_object().unwrap();
    let methods: Vec<&str> = anything.keys().map(String::as_str).collect();
    assert_eq!(
        methods,
        [
            "delete", "get", "head", "options", "patch", "post", "put", "trace"
        ]
    );
    assert_eq!(anything["trace"]["operationId"], "anything_trace");

    // A prefix: the prefix's path, said to be one; the host, as an extension.
    let files = &v1["paths"]["/files/{bucket}"]["get"];
    assert_eq!(files["operationId"], "files");
    assert_eq!(files["x-gatehouse-match"], "prefix");
    assert_eq!(files["x-gatehouse-host"], "files.example.com");
    assert_eq!(
        v1["paths"]["/anything"]["get"].get("x-gatehouse-match"),
        None
    );

    // A direct response: its status and content type.
    assert_eq!(
        v1["paths"]["/"]["get"]["responses"],
        json!({"200": {"description": "Answered by the gateway.", "content": {"application/json": {}}}})
    );

    // A deprecated route of a published version.
    let search = &v1["paths"]["/search"]["get"];
    assert_eq!(search["deprecated"], true);
    assert_eq!(search["x-gatehouse-deprecation"], "2027-03-01T00:00:00Z");
    assert_eq!(search.get("x-gatehouse-sunset"), None);
    assert_eq!(
        search["externalDocs"],
        json!({"description": "Deprecation", "url": "https://developer.example.com/search"})
    );
    // Only the version's own deprecation is the document's.
    assert_eq!(v1.get("externalDocs"), None);
}

#[test]
fn a_deprecated_version_carries_its_deprecation_sunset_links_and_successor() {
    let table = gateway();
    let v2 = document(&table, &inline("v2"));
    assert_eq!(v2["servers"], json!([{"url": "/shop/v2"}]));
    let extensions = json!({
        "x-gatehouse-deprecation": "2027-01-01T00:00:00Z",
        "x-gatehouse-sunset": "2027-07-01T00:00:00Z",
        "x-gatehouse-sunset-link": "https://developer.example.com/v2-sunset",
        "x-gatehouse-successor": "v3",
        "x-gatehouse-gone-after-sunset": true,
    });
    let docs = json!({"description": "Deprecation", "url": "https://developer.example.com/v2-deprecation"});
    let mut info = json!({
        "title": "shop-api v2",
        "version": "v2",
        "description": "Version v2 of the contracts of Gateway shop/shop-api.",
        "x-gatehouse-lifecycle": "Deprecated",
    });
    info.as_object_mut()
        .unwrap()
        .extend(extensions.as_object().unwrap().clone());
    assert_eq!(v2["info"], info);
    assert_eq!(v2["externalDocs"], docs);
    let operations = [
        &v2["paths"]["/products/{id}"]["get"],
        &v2["paths"]["/cart"]["get"],
        &v2["paths"]["/cart"]["post"],
    ];
    for operation in operations {
        assert_eq!(operation["deprecated"], true);
        assert_eq!(operation["externalDocs"], docs);
        for (name, value) in extensions.as_object().unwrap() {
            assert_eq!(&operation[name], value, "{name}");
        }
    }
    // A redirect answers its status with a Location.
    assert_eq!(v2["paths"]["/cart"]["post"]["operationId"], "cart_post");
    let redirect = &v2["paths"]["/cart"]["get"]["responses"]["308"];
    assert_eq!(redirect["headers"]["Location"]["required"], true);
    // The one client of the product route is recognised by its own key header.
    assert_eq!(
        v2["components"],
        json!({"securitySchemes": {"apiKey-x-mobile-key": {"type": "apiKey", "in": "header", "name": "x-mobile-key"}}})
    );
}

#[test]
fn a_base_path_with_parameters_stays_in_the_paths() {
    let v5 = document(&gateway(), &inline("v5"));
    assert_eq!(v5["servers"], json!([{"url": "/"}]));
    let item = &v5["paths"]["/{tenant}/v5/orders/{order}"]["get"];
    let names: Vec<&Value> = item["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, ["tenant", "order"]);
}

#[test]
fn clients_become_security_schemes_without_their_secrets() {
    let mut table = gateway();
    table.clients.push(ClientEntry {
        name: "acme".into(),
        api_key: None,
        jwt: None,
        certificate: Some(ClientCertificateEntry {
            ca_secret: "acme-ca".into(),
            names: vec!["gateway.acme.example".into()],
        }),
        rate_limit: None,
        max_in_flight: None,
    });
    let product = table
        .routes
        .iter_mut()
        .find(|r| r.id == "v1/product")
        .unwrap();
    product.clients = Some(vec!["acme".into(), "partner".into(), "web".into()]);
    let v1 = document(&table, &inline("v1"));
    assert_eq!(
        v1["components"]["securitySchemes"],
        json!({
            "apiKey-x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "bearerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "mutualTLS": {"type": "mutualTLS"},
        })
    );
    assert_eq!(
        v1["paths"]["/products/{sku}"]["put"]["security"],
        json!([{"apiKey-x-api-key": []}, {"bearerJwt": []}, {"mutualTLS": []}])
    );
    // Routes open to every client require nothing.
    assert_eq!(v1["paths"]["/search"]["get"].get("security"), None);
    let text = serde_json::to_string(&openapi::documents(&table).into_values().collect::<Vec<_>>())
        .unwrap();
    for secret in table.secrets() {
        assert!(!text.contains(&secret), "{secret} named in a document");
    }
    assert!(
        !text.contains("id.example.com"),
        "the JWT issuer is the proxy's business"
    );
}

#[test]
fn documents_are_served_at_their_paths_and_listed_in_the_index() {
    assert_eq!(INDEX_PATH, "/.well-known/gatehouse/openapi.json");
    assert_eq!(
        openapi::document_path(&inline("v1")),
        "/.well-known/gatehouse/openapi/v1.json"
    );
    let key = DocumentKey {
        contract: Some("shop/catalog".into()),
        version: "v2".into(),
    };
    assert_eq!(
        openapi::document_path(&key),
        "/.well-known/gatehouse/openapi/shop/catalog/v2.json"
    );
    assert_eq!(
        openapi::index(&gateway()),
        json!({"documents": [
            {"version": "v1", "state": "Published", "path": "/.well-known/gatehouse/openapi/v1.json"},
            {
                "version": "v2", "state": "Deprecated", "path": "/.well-known/gatehouse/openapi/v2.json",
                "deprecation": "2027-01-01T00:00:00Z", "sunset": "2027-07-01T00:00:00Z", "successor": "v3",
            },
            {"version": "v5", "state": "Published", "path": "/.well-known/gatehouse/openapi/v5.json"},
        ]})
    );
}

#[test]
fn the_same_table_gives_the_same_bytes() {
    // serde_json keeps maps sorted (its preserve_order feature is off): documents do not
    // depend on the order they were built in.
    assert_eq!(
        serde_json::to_string(&json!({"b": 1, "a": 2})).unwrap(),
        r#"{"a":2,"b":1}"#
    );
    let bytes = |table: &RouteTable| {
        let documents: Vec<(String, String)> = openapi::documents(table)
            .iter()
            .map(|(key, d)| {
                (
                    openapi::document_path(key),
                    serde_json::to_string(d).unwrap(),
                )
            })
            .collect();
        (
            documents,
            serde_json::to_string(&openapi::index(table)).unwrap(),
        )
    };
    let first = bytes(&gateway());
    assert_eq!(first, bytes(&gateway()));
    assert_eq!(first.0.len(), 3);
}

// The examples.

/// The paths a document describes, sorted.
fn path_names(document: &Value) -> Vec<&str> {
    document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn yaml_in(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    texts.join("\n---\n")
}

/// A Gateway of namespace shop that serves every Contract there.
const EXPOSE_ALL: &str = "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata: {name: edge, namespace: shop}\nspec:\n  expose: [{selector: {}}]\n";

/// Every example's tables, by where they come from: each resource of the gateway, edge and
/// aggregator examples, the contract examples together, each versioning example's Contract in
/// a Gateway.
fn example_tables() -> Vec<(String, RouteTable)> {
    let mut tables = Vec::new();
    for folder in ["gateway", "edge", "aggregator"] {
        for entry in std::fs::read_dir(examples_dir().join(folder)).unwrap() {
            let file = entry.unwrap().path();
            let text = std::fs::read_to_string(&file).unwrap();
            for resource in Resource::from_yaml(&text).unwrap() {
                let table = resource.compile(&CompileContext::default()).unwrap();
                tables.push((format!("{}", file.display()), table));
            }
        }
    }
    for (name, table) in compile(&yaml_in(&examples_dir().join("contracts")), "default") {
        tables.push((format!("contracts {name}"), table));
    }
    for folder in ["versioning/before", "versioning/after"] {
        let yaml = format!(
            "{}\n---\n{EXPOSE_ALL}",
            yaml_in(&examples_dir().join(folder))
        );
        for (name, table) in compile(&yaml, "shop") {
            tables.push((format!("{folder} {name}"), table));
        }
    }
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    tables
}

#[test]
fn every_example_documents_valid_openapi_also_were_all_its_versions_published() {
    let mut published = 0;
    let mut promoted = 0;
    for (what, mut table) in example_tables() {
        published += checked_documents(&what, &table).len();
        // The examples' drafts, published: every shape of route they hold is documented.
        for route in table.routes.iter_mut().filter(|r| r.contract.is_some()) {
            route.state = Some(VersionState::Published);
        }
        promoted += checked_documents(&format!("{what}, published"), &table).len();
    }
    assert_eq!(
        published, 3,
        "versioning/before: catalog v1; after: catalog v1 and v2"
    );
    assert!(promoted > 10, "{promoted} documents");
}

#[test]
fn the_versioning_example_documents_the_deprecated_v1_and_the_published_v2() {
    let yaml = format!(
        "{}\n---\n{EXPOSE_ALL}",
        yaml_in(&examples_dir().join("versioning/after"))
    );
    let table = compile(&yaml, "shop").remove(0).1;
    let documents = checked_documents("versioning/after", &table);
    let key = |version: &str| DocumentKey {
        contract: Some("shop/catalog".into()),
        version: version.into(),
    };
    assert_eq!(
        documents.keys().cloned().collect::<Vec<_>>(),
        [key("v1"), key("v2")]
    );
    let v1 = &documents[&key("v1")];
    assert_eq!(v1["info"]["title"], "catalog v1");
    assert_eq!(v1["info"]["x-gatehouse-sunset"], "2027-07-01T00:00:00Z");
    assert_eq!(v1["servers"], json!([{"url": "/v1"}]));
    let paths = path_names(v1);
    assert_eq!(
        paths,
        ["/products/{id}", "/products/{id}/reviews", "/search"]
    );
    let search = &v1["paths"]["/search"]["get"];
    assert_eq!(search["operationId"], "search_get");
    assert_eq!(search["deprecated"], true);
    assert_eq!(search["x-gatehouse-successor"], "v2");
    assert_eq!(
        search["parameters"],
        json!([
            {"name": "x-tenant", "in": "header", "required": true, "schema": {"type": "string"}},
            {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}},
        ])
    );
    let v2 = &documents[&key("v2")];
    assert_eq!(v2["info"]["x-gatehouse-lifecycle"], "Published");
    assert_eq!(v2["paths"]["/products/{id}"]["get"].get("deprecated"), None);
    assert_eq!(
        openapi::index(&table)["documents"][0]["path"],
        "/.well-known/gatehouse/openapi/shop/catalog/v1.json"
    );
}
