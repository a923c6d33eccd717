//! Test harness: real upstream HTTP servers (hyper) and the real `gatehouse-proxy` binary as a
//! child process, all on loopback with ephemeral ports.
#![allow(dead_code, missing_docs)]

pub mod https;
pub mod redis;
pub mod tables;
pub mod tls;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Body type of upstream responses.
pub type UpBody = BoxBody<Bytes, Infallible>;
/// What an upstream handler returns.
pub type UpFuture = Pin<Box<dyn Future<Output = Response<UpBody>> + Send>>;
/// An upstream handler.
pub type Handler = Arc<dyn Fn(SeenRequest) -> UpFuture + Send + Sync>;

/// A request as an upstream saw it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Bytes,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// A full response.
pub fn full(status: u16, body: impl Into<Bytes>) -> Response<UpBody> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

/// A running upstream server; stops when dropped.
pub struct Upstream {
    pub address: SocketAddr,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    /// Serves `handler` on a new loopback port.
    pub async fn start(handler: Handler) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), handler).await
    }

    /// Serves `handler` on `address` (e.g. another loopback address, `127.0.0.2:PORT`, so two
    /// servers can share a port and differ by address only).
    pub async fn start_on(address: SocketAddr, handler: Handler) -> Self {
        let listener = TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let handler = handler.clone();
                        let record = record.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
                            for (name, value) in &parts.headers {
                                headers
                                    .entry(name.as_str().to_owned())
                                    .or_default()
                                    .push(value.to_str().unwrap_or_default().to_owned());
                            }
                            let seen = SeenRequest {
                                method: parts.method.to_string(),
                                target: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                headers,
                                body,
                            };
                            record.lock().unwrap().push(seen.clone());
                            Ok::<_, Infallible>(handler(seen).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            address,
            seen,
            task,
        }
    }

    /// Answers 200 with `name` as the body and echoes the request in `x-echo-*` headers.
    pub async fn named(name: &'static str) -> Self {
        Self::start(Arc::new(move |seen: SeenRequest| {
            Box::pin(async move {
                let mut response = full(200, name);
                let headers = response.headers_mut();
                headers.insert("x-echo-target", seen.target.parse().unwrap());
                headers.insert("x-echo-method", seen.method.parse().unwrap());
                headers.insert("x-powered-by", "test".parse().unwrap());
                response
            }) as UpFuture
        }))
        .await
    }

    /// Answers 200 with the number of body bytes it received.
    pub async fn counting() -> Self {
        Self::start(Arc::new(|seen: SeenRequest| {
            Box::pin(async move { full(200, seen.body.len().to_string()) }) as UpFuture
        }))
        .await
    }

    /// The largest body any request brought (0 when none came).
    pub fn largest_body(&self) -> usize {
        self.requests()
            .iter()
            .map(|seen| seen.body.len())
            .max()
            .unwrap_or(0)
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }
}

#[path = "../../../tests/src/ports.rs"]
mod ports;
pub use ports::{free_address, free_port};

/// A response as a client saw it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request over a new connection.
pub async fn send(address: SocketAddr, request: Request<Full<Bytes>>) -> Result<Reply, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    exchange(stream, request).await
}

/// Sends one request over a new connection from the loopback address `source` (any of
/// 127.0.0.0/8), so that one test can be several callers.
pub async fn send_from(
    source: std::net::IpAddr,
    address: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<Reply, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(address).await.map_err(|e| e.to_string())?;
    exchange(stream, request).await
}

async fn exchange(stream: TcpStream, request: Request<Full<Bytes>>) -> Result<Reply, String> {
    let response = request_over(stream, request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Sends one request and returns the response with its body still streaming.
pub async fn open(
    address: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, String> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    request_over(stream, request).await
}

async fn request_over(
    stream: TcpStream,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

/// A request builder with a `Host`.
pub fn request(method: &str, target: &str) -> hyper::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(target)
        .header("host", "gateway.test")
}

/// A GET with an empty body.
pub fn get(target: &str) -> Request<Full<Bytes>> {
    request("GET", target)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The proxy binary running as a child process; killed when dropped.
pub struct Proxy {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    child: Child,
    pub log: PathBuf,
}

impl Proxy {
    /// Starts `gatehouse-proxy ARGS --listen … --admin …` and waits until `/healthz` answers.
    pub async fn start(args: &[&str], log_dir: &Path) -> Self {
        let (listen, admin) = (free_address(), free_address());
        let log = log_dir.join("proxy.log");
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse-proxy"))
            .args(args)
            .args([
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .args(["--log-format", "text", "--reload-interval-ms", "100"])
            .args(["--shutdown-grace", "30"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let proxy = Self {
            listen,
            admin,
            child,
            log,
        };
        proxy.wait_admin("/healthz", 200).await;
        // The admin listener starts only once the traffic listener accepts.
        assert!(
            TcpStream::connect(proxy.listen).await.is_ok(),
            "the admin listener answered before the traffic listener:\n{}",
            proxy.log_text()
        );
        proxy
    }

    /// Starts the proxy on the table at `routes` (a file or a mounted folder) with the Secrets
    /// under `secrets`.
    pub async fn start_with_secrets(routes: &Path, secrets: &Path, log_dir: &Path) -> Self {
        Self::start(
            &[
                "--routes",
                routes.to_str().unwrap(),
                "--secrets-dir",
                secrets.to_str().unwrap(),
            ],
            log_dir,
        )
        .await
    }

    /// Polls an admin path until it answers `status`.
    pub async fn wait_admin(&self, path: &str, status: u16) -> Reply {
        self.wait_for(path, |r| r.status == status).await
    }

    /// Polls an admin path until `accept` holds (panics after many attempts: a hang guard,
    /// not a timing assertion).
    pub async fn wait_for(&self, path: &str, accept: impl Fn(&Reply) -> bool) -> Reply {
        for _ in 0..3000 {
            if let Ok(reply) = send(self.admin, get(path)).await
                && accept(&reply)
            {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "admin {path} never reached the expected state; proxy log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Waits for the table of `generation` to be served.
    pub async fn wait_generation(&self, generation: u64) {
        self.wait_for("/config", |r| r.json()["generation"] == generation)
            .await;
    }

    /// `/metrics` text.
    pub async fn metrics(&self) -> String {
        send(self.admin, get("/metrics")).await.unwrap().text()
    }

    /// Sends a request to the proxy listener.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        send(self.listen, request).await.unwrap()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..6000 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("proxy did not exit");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder laid out the way the kubelet mounts a ConfigMap: `routes.json` →
/// `..data/routes.json`, `..data` → a timestamped directory, swapped atomically on update.
pub struct ConfigMapDir {
    pub root: PathBuf,
    version: u32,
}

impl ConfigMapDir {
    pub fn new(root: &Path) -> Self {
        std::fs::create_dir_all(root).unwrap();
        Self {
            root: root.to_path_buf(),
            version: 0,
        }
    }

    /// The path the proxy is given.
    pub fn routes_path(&self) -> PathBuf {
        self.root.join("routes.json")
    }

    /// Publishes new content with the kubelet's symlink swap.
    pub fn publish(&mut self, content: &[u8]) {
        self.publish_file("routes.json", content);
    }

    /// Publishes one file (a ConfigMap or Secret data key) with the kubelet's symlink swap.
    pub fn publish_file(&mut self, file: &str, content: &[u8]) {
        self.publish_files(&[(file, content)]);
    }

    /// Publishes several files at once (a Secret's `tls.crt` and `tls.key`): one swap.
    pub fn publish_files(&mut self, files: &[(&str, &[u8])]) {
        self.version += 1;
        let name = format!("..2026_11_29_{:04}", self.version);
        let dir = self.root.join(&name);
        std::fs::create_dir(&dir).unwrap();
        for (file, content) in files {
            std::fs::write(dir.join(file), content).unwrap();
        }
        let tmp = self.root.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        let previous = std::fs::read_link(self.root.join("..data")).ok();
        std::fs::rename(&tmp, self.root.join("..data")).unwrap();
        for (file, _) in files {
            let link = self.root.join(file);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{file}"), &link).unwrap();
            }
        }
        if let Some(previous) = previous {
            std::fs::remove_dir_all(self.root.join(previous)).unwrap();
        }
    }
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-proxy-test-{name}-{}-{}",
        std::process::id(),
        fastrand::u32(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the proxy on `table` (written to `dir/routes.json`) with the Secrets of
/// `dir/secrets`, and waits until it is ready.
pub async fn serve_with_secrets(dir: &Path, table: &[u8]) -> Proxy {
    let file = dir.join("routes.json");
    std::fs::write(&file, table).unwrap();
    let proxy = Proxy::start_with_secrets(&file, &dir.join("secrets"), dir).await;
    proxy.wait_admin("/readyz", 200).await;
    proxy
}

/// Writes a Secret of one entry, `key`, under `dir/secrets` (plain files: the proxy reads a
/// folder per Secret).
pub fn write_secret(dir: &Path, secret: &str, value: &str) {
    let folder = dir.join("secrets").join(secret);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("key"), value).unwrap();
}

/// Starts the proxy on `table` with `secrets` (Secret name, its one key), and waits until
/// ready.
pub async fn serve_table(
    name: &str,
    table: &gatehouse_api::route_table::RouteTable,
    secrets: &[(&str, &str)],
) -> Proxy {
    let dir = temp_dir(name);
    for (secret, value) in secrets {
        write_secret(&dir, secret, value);
    }
    serve_with_secrets(&dir, &table.to_bytes()).await
}

/// A GET with the API key `key` in `x-api-key`.
pub fn with_key(path: &str, key: &str) -> Request<Full<Bytes>> {
    get_with(path, "x-api-key", key)
}

/// A GET with one header.
pub fn get_with(target: &str, header: &str, value: &str) -> Request<Full<Bytes>> {
    request("GET", target)
        .header(header, value)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Starts the proxy on a table of `routes` (with extra `flags`) and waits until it is ready.
pub async fn serve_routes(
    routes: Vec<gatehouse_api::route_table::RouteEntry>,
    name: &str,
    flags: &[&str],
) -> (Proxy, PathBuf) {
    let dir = temp_dir(name);
    let file = dir.join("routes.json");
    std::fs::write(&file, tables::bytes(routes)).unwrap();
    let mut args = vec!["--routes", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    let proxy = Proxy::start(&args, &dir).await;
    proxy.wait_admin("/readyz", 200).await;
    (proxy, dir)
}

/// Writes `bytes` on a new connection and reads until the proxy closes it (panics after 30 s:
/// a hang guard, not a timing assertion). Returns everything read.
pub async fn raw_exchange(address: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(address).await.unwrap();
    // The proxy may answer and close before it read everything: a failed write is fine.
    let _ = stream.write_all(bytes).await;
    let mut read = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut read))
        .await
        .expect("the proxy neither answered nor closed the connection");
    String::from_utf8_lossy(&read).into_owned()
}

/// The status of the first response in `raw` (0 when there is none).
pub fn raw_status(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
