//! A real `redis-server` (Debian's package) on a loopback port, and a TCP relay that delays
//! what Redis answers, for tests of global rate limits. Self-contained: the e2e suite includes
//! it too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A `redis-server` child process without persistence; killed when dropped.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    password: Option<String>,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, None)
    }

    /// Starts a server that asks for `password` (`requirepass`), when given.
    pub fn start_with(dir: &Path, password: Option<&str>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            port,
            dir: dir.to_path_buf(),
            password: password.map(str::to_owned),
            child: None,
        };
        redis.restart();
        redis
    }

    /// Starts a server that speaks TLS only, with the certificate and key files given, asking
    /// for `password`; waits until its port accepts connections.
    pub fn start_tls(dir: &Path, certificate: &Path, key: &Path, password: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(certificate)
            .arg("--tls-key-file")
            .arg(key)
            .args(["--tls-auth-clients", "no", "--requirepass", password])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server; .ci/run installs it)");
        // Held before the wait, so a server that never listens is killed with it.
        let redis = Self {
            port,
            dir: dir.to_path_buf(),
            password: Some(password.to_owned()),
            child: Some(child),
        };
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server with TLS on port {port} never listened");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on its port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(
                self.password
                    .iter()
                    .flat_map(|p| ["--requirepass", p.as_str()]),
            )
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server; .ci/run installs it)");
        self.child = Some(child);
        for _ in 0..500 {
            if self.connection().is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server on port {} never answered", self.port);
    }

    /// Kills the server (its data is gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let url = match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(1))
    }

    /// Runs one command and returns its answer.
    pub fn query<T: redis::FromRedisValue>(&self, command: &[&str]) -> T {
        let mut connection = self.connection().unwrap();
        let mut cmd = redis::cmd(command[0]);
        for arg in &command[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut connection).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A relay to `target` that holds every answer for `delay` before passing it on (requests go
/// through at once): a Redis that is slow to answer. Returns the relay's address.
pub async fn delaying_relay(target: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                });
                let mut buffer = vec![0; 16 * 1024];
                while let Ok(n) = server_read.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                    tokio::time::sleep(delay).await;
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}
