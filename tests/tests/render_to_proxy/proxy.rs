//! A real `gatehouse-proxy` child process serving one rendered `routes.json`, and an HTTP/1.1
//! client to talk to it over loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use gatehouse_tests::binaries;

/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after `label`.
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "gatehouse-render-to-proxy-{label}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

use gatehouse_tests::ports::free_address;

/// A running proxy; killed when dropped.
pub struct Proxy {
    /// Traffic listener.
    pub listen: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Writes `routes_json` to a temporary `routes.json`, starts
    /// `gatehouse-proxy --routes FILE --resolve ...` on it and waits for `/readyz`.
    pub async fn serve(label: &str, routes_json: &str, resolve: &[String]) -> Self {
        let dir = TempDir::new(label);
        let routes = dir.0.join(gatehouse_api::route_table::FILE_NAME);
        std::fs::write(&routes, routes_json).expect("routes.json written");
        // Laid out as the Deployment mounts them: SECRETS_DIR/SECRET/KEY.
        let secrets = dir.0.join("secrets");
        for secret in EXAMPLE_SECRETS {
            std::fs::create_dir_all(secrets.join(secret)).expect("secret folder");
            std::fs::write(secrets.join(secret).join("key"), API_KEY).expect("secret written");
        }
        let (listen, admin) = (free_address(), free_address());
        let log = dir.0.join("proxy.log");
        let mut command = Command::new(binaries::proxy());
        command
            .arg("--routes")
            .arg(&routes)
            .arg("--secrets-dir")
            .arg(&secrets)
            .args([
                "--listen",
                &listen.to_string(),
                "--admin",
                &admin.to_string(),
            ])
            .args(["--log-format", "text", "--shutdown-grace", "1"]);
        for rule in resolve {
            command.args(["--resolve", rule]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("gatehouse-proxy starts");
        let mut proxy = Self {
            listen,
            admin,
            child,
            log,
            _dir: dir,
        };
        proxy.await_ready().await;
        proxy
    }

    /// Polls until `/readyz` answers 200 and the traffic listener accepts connections (a hang
    /// guard of ~60 s, not a timing assertion). Both are needed: Pingora starts the admin and
    /// the traffic listener independently, so `/readyz` can answer before traffic is accepted.
    async fn await_ready(&mut self) {
        for _ in 0..6000 {
            if let Ok(reply) = send_once(self.admin, get("/readyz")).await
                && reply.status == 200
                && TcpStream::connect(self.listen).await.is_ok()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gatehouse-proxy exited with {status}:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("gatehouse-proxy never became ready:\n{}", self.log_text());
    }

    /// The proxy's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends one request on a new connection to the traffic listener.
    pub async fn send(&self, request: Request<Empty<Bytes>>) -> Reply {
        send_once(self.listen, request)
            .await
            .unwrap_or_else(|e| panic!("proxy answers: {e}\n{}", self.log_text()))
    }

    /// Sends one request to the admin listener.
    pub async fn admin(&self, path: &str) -> Reply {
        send_once(self.admin, get(path))
            .await
            .unwrap_or_else(|e| panic!("admin answers: {e}"))
    }

    /// The value of the counter `gatehouse_requests_total` summed over the series of `route`.
    pub async fn requests_of_route(&self, route: &str) -> u64 {
        let metrics = self.admin("/metrics").await.text();
        let label = format!("route=\"{route}\"");
        metrics
            .lines()
            .filter(|line| line.starts_with("gatehouse_requests_total{") && line.contains(&label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|value| value as u64)
            .sum()
    }

    /// `requests_of_route` once it reached `expected`, or what it is after ~10 s (a hang guard).
    /// The proxy counts a request after its response went out, so a client that has its reply
    /// may read the counter a moment before it moves.
    pub async fn counted_requests_of_route(&self, route: &str, expected: u64) -> u64 {
        let mut count = 0;
        for _ in 0..1000 {
            count = self.requests_of_route(route).await;
            if count >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        count
    }

    /// A keepalive connection to the traffic listener.
    pub async fn connect(&self) -> Connection {
        Connection::open(self.listen).await.expect("proxy accepts")
    }
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An HTTP/1.1 connection that sends requests one after the other.
pub struct Connection(SendRequest<Empty<Bytes>>);

impl Connection {
    async fn open(address: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Self(sender))
    }

    /// Sends a request and reads the whole response.
    pub async fn send(&mut self, request: Request<Empty<Bytes>>) -> Result<Reply, String> {
        self.0.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .0
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

async fn send_once(address: SocketAddr, request: Request<Empty<Bytes>>) -> Result<Reply, String> {
    Connection::open(address).await?.send(request).await
}

/// Host the tests address the shop as.
pub const HOST: &str = "shop.test";

/// The API key every request carries: the proxy's Secrets hold it for the examples' `web`
/// (Gateway) and `mobile` (EdgeService) clients, which both read the `x-api-key` header.
pub const API_KEY: &str = "render-to-proxy-key";

/// The Secrets the examples' clients reference.
const EXAMPLE_SECRETS: [&str; 3] = ["web-api-keys", "partner-api-keys", "mobile-api-keys"];

/// A request builder with the shop's `Host`.
pub fn request(method: &str, target: &str) -> hyper::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(target)
        .header("host", HOST)
        .header("x-api-key", API_KEY)
}

/// A bodiless GET.
pub fn get(target: &str) -> Request<Empty<Bytes>> {
    request("GET", target)
        .body(Empty::new())
        .expect("a valid request")
}

/// Where a `--resolve` rule for `host_or_service` points.
pub fn resolve(host_or_service: &str, address: SocketAddr) -> String {
    format!("{host_or_service}={address}")
}
