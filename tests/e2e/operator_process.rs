//! The operator under test: built with cargo, run as a child process, stopped with SIGTERM.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The namespace the operator says it runs in (it runs outside the cluster here).
pub const OPERATOR_NAMESPACE: &str = "gatehouse-system";
/// The monitoring namespace the operator is told about.
pub const MONITORING_NAMESPACE: &str = "monitoring";

/// Builds `gatehouse-operator` (or takes `GATEHOUSE_OPERATOR_BIN`) and returns its path.
pub fn operator_binary() -> PathBuf {
    gatehouse_tests::binaries::operator()
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running operator.
pub struct OperatorProcess {
    child: Child,
    /// Its admin address (`/healthz`, `/readyz`, `/metrics`).
    pub admin: String,
    /// Where its logs go.
    pub log: PathBuf,
}

impl OperatorProcess {
    /// Starts `gatehouse-operator run` for one namespace, with leader election on a Lease in
    /// that namespace, reaching the API with `kubeconfig`.
    pub fn start(binary: &Path, namespace: &str, kubeconfig: &Path) -> Self {
        // A free loopback port for the admin server.
        let admin = gatehouse_tests::ports::free_address().to_string();
        let log = std::env::temp_dir().join(format!("gatehouse-e2e-{namespace}.log"));
        let log_file = File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args([
                "run",
                "--namespace",
                namespace,
                "--lease-namespace",
                namespace,
            ])
            .args(["--admin-listen", &admin, "--leader-election", "true"])
            .args(["--log-format", "json"])
            // Who called which contract version: asked every second, not every minute.
            .args(["--usage-interval", "1s"])
            .args(["--operator-namespace", OPERATOR_NAMESPACE])
            .args(["--monitoring-namespace", MONITORING_NAMESPACE])
            .env("POD_NAME", format!("e2e-{}", std::process::id()))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,gatehouse_operator=debug")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("the operator starts");
        eprintln!("operator pid {} logs to {}", child.id(), log.display());
        Self { child, admin, log }
    }

    /// Waits until `/readyz` answers 200 (the operator reached the API server).
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                panic!(
                    "the operator exited early ({status}); see {}",
                    self.log.display()
                );
            }
            if http_status(&self.admin, "/readyz").await == Some(200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the operator never became ready; see {}",
                self.log.display()
            );
            // The admin server has no push signal for readiness; poll it.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The operator's `/metrics` text.
    pub async fn metrics(&self) -> String {
        http_get(&self.admin, "/metrics").await.unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        self.child.wait().expect("the operator exits")
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn http_get(address: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

async fn http_status(address: &str, path: &str) -> Option<u16> {
    let response = http_get(address, path).await?;
    response.split_whitespace().nth(1)?.parse().ok()
}
