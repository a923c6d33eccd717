#![allow(dead_code)] // each test file uses part of it

//! A scriptable HTTP/1.1 upstream on loopback for aggregation tests: each path answers with a
//! status, body and optional hold, and the server records what it saw — requests, concurrency,
//! accepted connections, and connections the client closed while a request was held.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How one path answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    pub hold: Hold,
}

/// When the answer is sent.
#[derive(Clone, Debug)]
pub enum Hold {
    /// At once.
    None,
    /// When this many requests are held at the same time (or after 10 s).
    UntilConcurrent(usize),
    /// Never (until the client goes away, or 30 s).
    Forever,
}

impl Reply {
    pub fn json(body: &str) -> Self {
        Self {
            status: 200,
            body: body.to_owned(),
            content_type: "application/json",
            hold: Hold::None,
        }
    }
    pub fn status(status: u16) -> Self {
        Self {
            status,
            body: "{}".to_owned(),
            content_type: "application/json",
            hold: Hold::None,
        }
    }
    pub fn held(mut self, hold: Hold) -> Self {
        self.hold = hold;
        self
    }
}

/// A request as seen: path and query, and lower-case headers.
pub type SeenRequest = (String, Vec<(String, String)>);

#[derive(Default)]
pub struct Seen {
    pub requests: Mutex<Vec<SeenRequest>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub connections: AtomicUsize,
    pub closed_while_held: AtomicUsize,
    changed: Notify,
}

impl Seen {
    pub fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
    pub fn header(&self, path: &str, name: &str) -> Option<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _)| p == path)?
            .1
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    /// Waits until `check` holds (the test fails after 10 s).
    pub async fn wait_for(&self, check: impl Fn(&Self) -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.changed.notified();
                if check(self) {
                    return;
                }
                notified.await;
            }
        })
        .await
        .expect("upstream never reached the expected state");
    }
}

pub struct Upstream {
    pub address: SocketAddr,
    pub seen: Arc<Seen>,
}

pub async fn start(routes: Vec<(&str, Reply)>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let routes: Arc<HashMap<String, Reply>> =
        Arc::new(routes.into_iter().map(|(p, r)| (p.to_owned(), r)).collect());
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            shared.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, routes.clone(), shared.clone()));
        }
    });
    Upstream { address, seen }
}

async fn serve(mut stream: TcpStream, routes: Arc<HashMap<String, Reply>>, seen: Arc<Seen>) {
    let mut buffer = Vec::new();
    loop {
        // Read one request head (and its body, by Content-Length).
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .unwrap_or_default()
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..head_end + length);
        let route_key = path.split('?').next().unwrap_or_default().to_owned();
        let reply = routes
            .get(&route_key)
            .cloned()
            .unwrap_or_else(|| Reply::status(404));
        seen.requests.lock().unwrap().push((path.clone(), headers));
        let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
        seen.changed.notify_waiters();

        let release = async {
            match reply.hold {
                Hold::None => {}
                Hold::UntilConcurrent(n) => {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        seen.wait_for(|s| s.max_in_flight.load(Ordering::SeqCst) >= n),
                    )
                    .await;
                }
                Hold::Forever => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        };
        // While the request is held, watch for the client closing the connection.
        let mut probe = [0u8; 1];
        let closed = tokio::select! {
            _ = release => false,
            read = stream.read(&mut probe) => matches!(read, Ok(0) | Err(_)),
        };
        seen.in_flight.fetch_sub(1, Ordering::SeqCst);
        if closed {
            seen.closed_while_held.fetch_add(1, Ordering::SeqCst);
            seen.changed.notify_waiters();
            return;
        }
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n{}",
            reply.status,
            reply.content_type,
            reply.body.len(),
            reply.body
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        seen.changed.notify_waiters();
    }
}
