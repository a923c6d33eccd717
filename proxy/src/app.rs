//! The proxy process: from a parsed command line to a serving gateway (logging, the first
//! table load, the file watcher and the Kubernetes feed, the upstream address refresher, the
//! Pingora server).
//! `gatehouse-proxy` and the quickstart demo both run it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::AggregateRuntime;
use crate::aggregate::transport::PooledTransport;
use crate::cli::{Cli, LogFormat};
use crate::cluster::ClusterFeed;
use crate::gateway::ClientPolicy;
use crate::global_limit::store::RedisTarget;
use crate::listen::{self, ListenAddress};
use crate::metrics::ProxyMetrics;
use crate::reload::{TableStore, Watcher};
use crate::request_head::HeadLimits;
use crate::runtime::Runtime;
use crate::runtime::redis::RedisBook;
use crate::runtime::resolver::Resolver;
use crate::server::{ServerOptions, Shared, run};
use crate::source::TableOrigin;
use tracing_subscriber::EnvFilter;

/// How long an idle step connection stays in the aggregation pool.
const STEP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the proxy until it is shut down (SIGTERM drains, SIGINT stops).
pub fn run_proxy(cli: Cli) -> ExitCode {
    init_logging(cli.log_format);
    if let Err(e) = listen::check(&listen_addresses(&cli)) {
        tracing::error!("{e}");
        return ExitCode::from(2);
    }
    let resolver = match Resolver::from_overrides(cli.resolve.iter().map(String::as_str)) {
        Ok(r) => r.with_hosts_file(cli.hosts_file.clone()),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let origin = match (&cli.routes, &cli.from) {
        (Some(file), _) => Some(TableOrigin::File(file.clone())),
        (None, Some(dir)) => Some(TableOrigin::Folder(dir.clone())),
        (None, None) => None,
    };
    let redis = match cli
        .redis
        .as_deref()
        .map(|url| RedisTarget::from_url(url, Duration::from_millis(cli.redis_timeout_ms)))
    {
        None => RedisBook::default(),
        Some(Ok(target)) => RedisBook::new(Some(target)),
        Some(Err(e)) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let metrics = Arc::new(ProxyMetrics::new());
    let runtime = Arc::new(Runtime::new(resolver).with_redis(redis));
    let store = Arc::new(TableStore::new(runtime.clone(), metrics.clone()));
    if let Some(origin) = origin {
        let mut watcher = Watcher::new(
            origin,
            cli.secrets_dir.clone(),
            store.clone(),
            Duration::from_millis(cli.reload_interval_ms.max(10)),
        );
        // First load before listening, so a good table is served from the first request.
        watcher.poll();
        if let Err(e) = watcher.spawn() {
            tracing::error!("cannot start the route table watcher: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(config_map) = &cli.config_map {
        let feed = ClusterFeed {
            config_map: config_map.clone(),
            namespace: cli.namespace.clone(),
            kubeconfig: cli.kubeconfig.clone(),
        };
        if let Err(e) = feed.spawn(store.clone()) {
            tracing::error!("cannot start the Kubernetes feed: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = runtime.spawn_refresher(Duration::from_millis(cli.resolve_interval_ms.max(10)))
    {
        tracing::error!("cannot start the upstream resolver: {e}");
        return ExitCode::FAILURE;
    }
    let aggregate = Arc::new(AggregateRuntime {
        transport: PooledTransport::new(cli.upstream_pool_size, STEP_IDLE_TIMEOUT),
    });
    run(
        &ServerOptions {
            listen: cli.listen.clone(),
            listen_tls: cli.listen_tls.clone(),
            admin: cli.admin.clone(),
            threads: cli.threads,
            shutdown_grace: Duration::from_secs(cli.shutdown_grace),
            upstream_pool_size: cli.upstream_pool_size,
            clients: ClientPolicy {
                head_limits: HeadLimits {
                    max_request_line_bytes: cli.max_request_line_bytes,
                    max_request_head_bytes: cli.max_request_head_bytes,
                },
            },
            request_head_timeout: Duration::from_secs(cli.request_head_timeout),
            keepalive_idle_timeout: Duration::from_secs(cli.keepalive_idle_timeout),
        },
        Shared {
            store,
            metrics,
            aggregate,
        },
    );
    ExitCode::SUCCESS
}

/// The listeners the command line asks for, each with its flag.
fn listen_addresses(cli: &Cli) -> Vec<ListenAddress<'_>> {
    let tls = cli.listen_tls.as_deref().map(|address| ListenAddress {
        flag: "--listen-tls",
        address,
    });
    [
        Some(ListenAddress {
            flag: "--listen",
            address: &cli.listen,
        }),
        tls,
        Some(ListenAddress {
            flag: "--admin",
            address: &cli.admin,
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never into files or pipes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
