//! Command-line interface of `gatehouse-proxy` (the contract with the operator: see the README).

use std::path::PathBuf;

use clap::{ArgGroup, Parser, ValueEnum};

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
#[command(group(ArgGroup::new("table").required(true).args(["routes", "from"])))]
pub struct Cli {
    /// Serve this RouteTable JSON file; it is re-read when it changes (hot reload).
    #[arg(long, value_name = "FILE")]
    pub routes: Option<PathBuf>,
    /// Standalone mode: compile the Gateway, EdgeService and Aggregator YAML files of DIR and
    /// serve them; the folder is re-read when a file changes.
    #[arg(long = "from", value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Address the proxy listens on.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: String,
    /// Address of the admin listener (/healthz, /readyz, /metrics, /config).
    #[arg(long, default_value = "0.0.0.0:9901", value_name = "ADDR")]
    pub admin: String,
    /// Send requests for upstream service NAME (or host NAME) to HOST:PORT. Repeatable.
    #[arg(long = "resolve", value_name = "NAME=HOST:PORT")]
    pub resolve: Vec<String>,
    /// On SIGTERM, stop accepting and give in-flight requests this many seconds to finish.
    #[arg(long, default_value_t = 20, value_name = "SECONDS")]
    pub shutdown_grace: u64,
    /// Log format.
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
}
