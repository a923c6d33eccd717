//! Command-line interface of `gatehouse-proxy` (the contract with the operator: see the README).

use std::path::PathBuf;

use clap::{ArgGroup, Parser, ValueEnum};

use crate::request_head::{DEFAULT_MAX_REQUEST_HEAD_BYTES, DEFAULT_MAX_REQUEST_LINE_BYTES};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Gatehouse data plane: serves a route table with Pingora.
#[derive(Clone, Debug, Parser)]
#[command(name = "gatehouse-proxy", version, about)]
#[command(group(ArgGroup::new("table").required(true).multiple(true)
    .args(["routes", "from", "config_map"])))]
pub struct Cli {
    /// Serve this RouteTable JSON file (gzipped or not), or the one in this directory (a
    /// mounted route ConfigMap: its `routes.json.gz`, else its `routes.json`); it is re-read
    /// when it changes (hot reload). With `--config-map`, the mounted copy of that ConfigMap:
    /// served at start-up and while the Kubernetes API has not delivered the table.
    #[arg(long, value_name = "FILE|DIR")]
    pub routes: Option<PathBuf>,
    /// Standalone mode: compile the Gateway, EdgeService and Aggregator YAML files of DIR and
    /// serve them; the folder is re-read when a file changes.
    #[arg(long = "from", value_name = "DIR", conflicts_with_all = ["routes", "config_map"])]
    pub from: Option<PathBuf>,
    /// In a cluster: watch this route ConfigMap (its table) and the client Secrets its
    /// table names through the Kubernetes API, serving each change within milliseconds.
    #[arg(long, value_name = "NAME")]
    pub config_map: Option<String>,
    /// Namespace of the `--config-map` and the Secrets (default: the client configuration's,
    /// in a pod its own).
    #[arg(long, value_name = "NS", requires = "config_map")]
    pub namespace: Option<String>,
    /// Reach the Kubernetes API with this kubeconfig (default: the pod's service account, or
    /// `KUBECONFIG`).
    #[arg(long, value_name = "FILE", requires = "config_map")]
    pub kubeconfig: Option<PathBuf>,
    /// Address the proxy listens on.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: String,
    /// Also listen for HTTPS on this address, terminating TLS with the certificates the route
    /// table names (HTTP/2 or HTTP/1.1 by ALPN).
    #[arg(long, value_name = "ADDR")]
    pub listen_tls: Option<String>,
    /// Address of the admin listener (/healthz, /readyz, /metrics, /config).
    #[arg(long, default_value = "0.0.0.0:9901", value_name = "ADDR")]
    pub admin: String,
    /// Send requests for upstream service NAME (or host NAME) to HOST:PORT. Repeatable.
    #[arg(long = "resolve", value_name = "NAME=HOST:PORT")]
    pub resolve: Vec<String>,
    /// Look upstream hosts up in this hosts(5) file before DNS (after `--resolve`); re-read at
    /// every resolve interval. Hosts not in it go to the system resolver.
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// How often every upstream in use is looked up again in the background, in milliseconds;
    /// a lookup that fails keeps the last good address.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub resolve_interval_ms: u64,
    /// On SIGTERM, stop accepting and give in-flight requests this many seconds to finish.
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    pub shutdown_grace: u64,
    /// Log format (text is coloured only when stderr is a terminal).
    #[arg(long, value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Worker threads of the proxy listener.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// How often the route table file (or folder) is checked for changes, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub reload_interval_ms: u64,
    /// Folder of mounted client Secrets (`DIR/SECRET/KEY`), where API keys are read from; re-read
    /// every reload interval, so rotated keys apply without a restart.
    #[arg(long, default_value = "/etc/gatehouse/secrets", value_name = "DIR")]
    pub secrets_dir: PathBuf,
    /// Idle upstream connections kept for reuse (keepalive pool size).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub upstream_pool_size: usize,
    /// Longest request line (method, target, version) accepted, in bytes; longer is refused
    /// with 414.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_LINE_BYTES, value_name = "BYTES",
          value_parser = at_least_one)]
    pub max_request_line_bytes: usize,
    /// Largest request head (request line and headers) accepted, in bytes; larger is refused
    /// with 431.
    #[arg(long, default_value_t = DEFAULT_MAX_REQUEST_HEAD_BYTES, value_name = "BYTES",
          value_parser = at_least_one)]
    pub max_request_head_bytes: usize,
    /// A request head must arrive whole within this many seconds of the connection opening
    /// (first request) or of its first byte (later requests); else the connection is closed.
    #[arg(long, default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_head_timeout: u64,
    /// A kept-alive connection waits this many seconds for the next request, then closes.
    #[arg(long, default_value_t = 75, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keepalive_idle_timeout: u64,
    /// The Redis server of global rate limits for tables that name none (standalone):
    /// `redis://[USER:PASSWORD@]HOST:PORT[/DB]` or `rediss://…` for TLS. Read from the
    /// environment variable `GATEHOUSE_REDIS_URL` too, which keeps a password off the command
    /// line.
    #[arg(
        long,
        env = "GATEHOUSE_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,
    /// How long a request waits for `--redis` before its client's `onRedisFailure` applies.
    #[arg(long, default_value_t = 5, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub redis_timeout_ms: u64,
}

/// A count of at least one.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}
