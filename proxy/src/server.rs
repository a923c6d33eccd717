//! Assembles and runs the Pingora server: the proxy listener, the admin listener, and a
//! graceful shutdown that ends as soon as in-flight requests are done (at the latest after
//! the grace period).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::apps::http_app::HttpServer;
use pingora::protocols::http::v2::server::H2Options;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::aggregate::AggregateRuntime;
use crate::bound::ReadyWhenBound;
use crate::gateway::{ClientPolicy, Gateway};
use crate::head_guard::{HeadBounds, HeadGuardApp};
use crate::metrics::ProxyMetrics;
use crate::reload::TableStore;
use crate::tls::listener::TlsApp;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Plain HTTP listen address.
    pub listen: String,
    /// HTTPS listen address, when the proxy terminates TLS.
    pub listen_tls: Option<String>,
    /// Admin listen address.
    pub admin: String,
    /// Proxy worker threads.
    pub threads: usize,
    /// Drain time on SIGTERM.
    pub shutdown_grace: Duration,
    /// Idle upstream connections kept.
    pub upstream_pool_size: usize,
    /// What clients may send and how long they may take.
    pub clients: ClientPolicy,
    /// Longest time to receive a whole request head.
    pub request_head_timeout: Duration,
    /// Longest wait for the next request on a kept-alive connection.
    pub keepalive_idle_timeout: Duration,
}

/// Everything the services share.
pub struct Shared {
    /// The served table.
    pub store: Arc<TableStore>,
    /// Metrics.
    pub metrics: Arc<ProxyMetrics>,
    /// Aggregation runtime.
    pub aggregate: Arc<AggregateRuntime>,
}

/// Runs until SIGTERM (graceful) or SIGINT (immediate).
pub fn run(options: &ServerOptions, shared: Shared) {
    let grace_seconds = options.shutdown_grace.as_secs();
    let conf = ServerConf {
        threads: options.threads.max(1),
        // Single-threaded runtimes per worker avoid cross-thread wakeups on the hot path.
        work_stealing: false,
        upstream_keepalive_pool_size: options.upstream_pool_size,
        grace_period_seconds: Some(grace_seconds),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let draining = Arc::new(AtomicBool::new(false));

    let gateway = Gateway::new(
        shared.store.clone(),
        shared.metrics.clone(),
        shared.aggregate.clone(),
        in_flight.clone(),
        options.clients,
    );
    let mut http = pingora::proxy::http_proxy(&server.configuration, gateway);
    http.h2_options = Some(h2_options(options));
    let mut server_options = HttpServerOptions::default();
    server_options.h2_idle_timeout = Some(options.keepalive_idle_timeout);
    http.server_options = Some(server_options);
    let guarded = HeadGuardApp::new(
        http,
        HeadBounds {
            time: options.request_head_timeout,
            idle: options.keepalive_idle_timeout,
            // Heads up to twice the limit are read whole and answered 431; beyond that the
            // connection is closed instead of buffering up to Pingora's 1 MiB.
            bytes: options
                .clients
                .head_limits
                .max_request_head_bytes
                .saturating_mul(2),
        },
    );
    let tls_port = options.listen_tls.as_deref().and_then(port_of);
    let app = TlsApp::new(
        guarded,
        shared.store.clone(),
        shared.metrics.clone(),
        tls_port,
        options.request_head_timeout,
    );
    let mut proxy = Service::new("gatehouse proxy".to_owned(), app);
    proxy.add_tcp(&options.listen);
    if let Some(listen_tls) = &options.listen_tls {
        proxy.add_tcp(listen_tls);
    }
    let proxy_handle = server.add_service(ReadyWhenBound::new(proxy));

    let admin = AdminApp::new(shared.store, shared.metrics, draining.clone());
    let mut admin_service = Service::new("gatehouse admin".to_owned(), HttpServer::new_app(admin));
    admin_service.threads = Some(1);
    admin_service.add_tcp(&options.admin);
    // The admin listener (and so /readyz) starts only once the traffic listeners accept
    // connections (`bound`): a pod is never reported ready before it can take traffic.
    let admin_handle = server.add_service(admin_service);
    admin_handle.add_dependency(&proxy_handle);

    server.run(RunArgs {
        shutdown_signal: Box::new(DrainOnTerm {
            draining,
            in_flight,
            grace: options.shutdown_grace,
        }),
    });
}

/// Most HTTP/2 streams a client may have open at once on one connection (as Pingora's and
/// nginx's defaults).
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// HTTP/2 limits: concurrent streams, the decoded header list (the HTTP/1 head limit), and
/// the h2 crate's guards against streams a client opens and resets at once (CVE-2023-44487).
fn h2_options(options: &ServerOptions) -> H2Options {
    let mut h2 = H2Options::default();
    let head = options.clients.head_limits.max_request_head_bytes;
    h2.max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(u32::try_from(head).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(Some(H2_MAX_LOCAL_RESETS));
    h2
}

/// Streams reset by the client before the server took them, per connection; more and the
/// connection gets GOAWAY (h2's default).
const H2_MAX_PENDING_RESETS: usize = 20;

/// Streams the server itself had to reset (malformed requests), per connection; more and the
/// connection gets GOAWAY.
const H2_MAX_LOCAL_RESETS: usize = 1024;

/// The port of a listen address (`HOST:PORT`, `[V6]:PORT`).
fn port_of(address: &str) -> Option<u16> {
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
}

/// Turns SIGTERM into a graceful shutdown that exits once nothing is in flight.
struct DrainOnTerm {
    draining: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
    grace: Duration,
}

/// How long the in-flight count must stay at zero before the process exits: covers a
/// connection accepted just before the listeners closed whose request is still being read.
const SETTLE: Duration = Duration::from_millis(200);

#[async_trait]
impl ShutdownSignalWatch for DrainOnTerm {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
        ) else {
            tracing::error!("cannot install signal handlers; waiting forever");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => return ShutdownSignal::FastShutdown,
            _ = term.recv() => {},
            _ = quit.recv() => {},
        }
        self.draining.store(true, Ordering::Release);
        tracing::info!(
            in_flight = self.in_flight.load(Ordering::Acquire),
            grace_seconds = self.grace.as_secs(),
            "shutdown requested: no new connections, draining in-flight requests"
        );
        let in_flight = self.in_flight.clone();
        let deadline = Instant::now() + self.grace;
        // Pingora sleeps the whole grace period after a graceful shutdown; exit as soon as
        // the last request finished instead.
        let spawned = std::thread::Builder::new()
            .name("drain-watch".to_owned())
            .spawn(move || {
                let mut idle_since: Option<Instant> = None;
                while Instant::now() < deadline {
                    if in_flight.load(Ordering::Acquire) == 0 {
                        let since = *idle_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= SETTLE {
                            tracing::info!("drained: exiting");
                            std::process::exit(0);
                        }
                    } else {
                        idle_since = None;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot watch the drain, waiting the full grace period: {e}");
        }
        ShutdownSignal::GracefulTerminate
    }
}
