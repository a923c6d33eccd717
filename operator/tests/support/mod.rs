//! An in-memory Kubernetes API behind kube's mock service layer (`tower-test`): it answers
//! GET (object or list), server-side apply PATCH (object or `/status`), POST, PUT and DELETE
//! the way the API server would for these tests, and records every request so that a test can
//! assert the exact conversation.
#![allow(dead_code, missing_docs)]

pub mod pods;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the API server saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/api/v1/namespaces/shop/configmaps/x?&force=true&fieldManager=...`.
    pub uri: String,
    pub body: Option<Value>,
}

impl Recorded {
    /// `METHOD URI`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.uri)
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    log: Vec<Recorded>,
    failures: BTreeMap<String, u16>,
    refusals: BTreeMap<String, (u16, String)>,
    interfere: BTreeMap<String, Value>,
    version: u64,
}

/// The fake API server.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

/// Resource plural → collection path for the kinds the tests use.
pub fn collection(namespace: &str, plural: &str) -> String {
    let prefix = match plural {
        "services" | "configmaps" | "serviceaccounts" | "secrets" => "/api/v1".to_owned(),
        "deployments" => "/apis/apps/v1".to_owned(),
        "horizontalpodautoscalers" => "/apis/autoscaling/v2".to_owned(),
        "poddisruptionbudgets" => "/apis/policy/v1".to_owned(),
        "networkpolicies" => "/apis/networking.k8s.io/v1".to_owned(),
        "roles" | "rolebindings" => "/apis/rbac.authorization.k8s.io/v1".to_owned(),
        "leases" => "/apis/coordination.k8s.io/v1".to_owned(),
        "events" => "/apis/events.k8s.io/v1".to_owned(),
        _ => "/apis/gatehouse.dev/v1alpha1".to_owned(),
    };
    format!("{prefix}/namespaces/{namespace}/{plural}")
}

impl FakeApi {
    /// A client whose every request goes to this fake.
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = fake.answer(request).await;
                send.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    /// Stores an object at `collection/name`.
    pub fn put(&self, namespace: &str, plural: &str, object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let path = format!("{}/{name}", collection(namespace, plural));
        self.state.lock().unwrap().objects.insert(path, object);
    }

    /// The object at `collection/name`.
    pub fn get(&self, namespace: &str, plural: &str, name: &str) -> Option<Value> {
        let path = format!("{}/{name}", collection(namespace, plural));
        self.state.lock().unwrap().objects.get(&path).cloned()
    }

    /// Removes a stored object, as its owner deleting it would.
    pub fn delete(&self, namespace: &str, plural: &str, name: &str) {
        let path = format!("{}/{name}", collection(namespace, plural));
        self.state.lock().unwrap().objects.remove(&path);
    }

    /// Changes a stored object in place.
    pub fn edit(&self, namespace: &str, plural: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let path = format!("{}/{name}", collection(namespace, plural));
        change(self.state.lock().unwrap().objects.get_mut(&path).unwrap());
    }

    /// Makes every request to `path` (without query) answer `code`.
    pub fn fail(&self, path: &str, code: u16) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(path.to_owned(), code);
    }

    /// Makes every write (any method but GET) to `path` answer `code` with a Status carrying
    /// `message`, the way the API server refuses an object it finds invalid; reads still work.
    pub fn refuse_writes(&self, path: &str, code: u16, message: &str) {
        self.state
            .lock()
            .unwrap()
            .refusals
            .insert(path.to_owned(), (code, message.to_owned()));
    }

    /// Lets writes to `path` through again.
    pub fn accept_writes(&self, path: &str) {
        self.state.lock().unwrap().refusals.remove(path);
    }

    /// After the next GET of `path`, another writer replaces the object's `spec` with `spec`
    /// (and so its resourceVersion): a race the reader cannot see.
    pub fn interfere_after_get(&self, path: &str, spec: Value) {
        self.state
            .lock()
            .unwrap()
            .interfere
            .insert(path.to_owned(), spec);
    }

    /// Takes the requests recorded so far.
    pub fn take_log(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.state.lock().unwrap().log)
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let method = request.method().to_string();
        let uri = request.uri().to_string();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Option<Value> = if bytes.is_empty() {
            None
        } else {
            Some(serde_json::from_slice(&bytes).unwrap())
        };
        let path = uri.split('?').next().unwrap().to_owned();
        let mut state = self.state.lock().unwrap();
        state.log.push(Recorded {
            method: method.clone(),
            uri: uri.clone(),
            body: body.clone(),
        });
        if let Some(code) = state.failures.get(&path) {
            return status_response(*code, "injected failure");
        }
        if let Some((code, message)) = state.refusals.get(&path).filter(|_| method != "GET") {
            return status_response(*code, message);
        }
        state.version += 1;
        let version = state.version.to_string();
        match method.as_str() {
            "GET" => {
                if let Some(object) = state.objects.get(&path).cloned() {
                    if let Some(spec) = state.interfere.remove(&path) {
                        let concurrent = state.objects.get_mut(&path).unwrap();
                        concurrent["spec"] = spec;
                        concurrent["metadata"]["resourceVersion"] =
                            json!(format!("{version}-other"));
                    }
                    return json_response(StatusCode::OK, &object);
                }
                let plural = path.rsplit('/').next().unwrap();
                if matches!(
                    plural,
                    "services" | "aggregators" | "gateways" | "edgeservices"
                ) {
                    let prefix = format!("{path}/");
                    let items: Vec<Value> = state
                        .objects
                        .iter()
                        .filter(|(key, _)| {
                            key.strip_prefix(&prefix)
                                .is_some_and(|rest| !rest.contains('/'))
                        })
                        .map(|(_, object)| object.clone())
                        .collect();
                    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": version}, "items": items});
                    return json_response(StatusCode::OK, &list);
                }
                status_response(404, "not found")
            }
            "PATCH" => {
                let body = body.unwrap();
                if let Some(object_path) = path.strip_suffix("/status") {
                    let Some(object) = state.objects.get_mut(object_path) else {
                        return status_response(404, "not found");
                    };
                    object["status"] = body["status"].clone();
                    object["metadata"]["resourceVersion"] = json!(version);
                    return json_response(StatusCode::OK, &object.clone());
                }
                let mut object = body;
                object["metadata"]["resourceVersion"] = json!(version);
                state.objects.insert(path, object.clone());
                json_response(StatusCode::OK, &object)
            }
            "POST" => {
                let mut object = body.unwrap();
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("generated")
                    .to_owned();
                let object_path = format!("{path}/{name}");
                if state.objects.contains_key(&object_path) {
                    return status_response(409, "already exists");
                }
                object["metadata"]["resourceVersion"] = json!(version);
                state.objects.insert(object_path, object.clone());
                json_response(StatusCode::CREATED, &object)
            }
            "PUT" => {
                let mut object = body.unwrap();
                let Some(live) = state.objects.get(&path) else {
                    return status_response(404, "not found");
                };
                if live["metadata"]["resourceVersion"] != object["metadata"]["resourceVersion"] {
                    return status_response(409, "the object has been modified");
                }
                object["metadata"]["resourceVersion"] = json!(version);
                state.objects.insert(path, object.clone());
                json_response(StatusCode::OK, &object)
            }
            "DELETE" => match state.objects.remove(&path) {
                Some(_) => json_response(
                    StatusCode::OK,
                    &json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}),
                ),
                None => status_response(404, "not found"),
            },
            _ => status_response(405, "method not allowed"),
        }
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

fn status_response(code: u16, message: &str) -> Response<Body> {
    let reason = match code {
        400 => "BadRequest",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        _ => "InternalError",
    };
    let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "message": message, "reason": reason, "code": code});
    json_response(StatusCode::from_u16(code).unwrap(), &status)
}
