//! `gatehouse-operator run`: logging, admin server, leader election, controllers, shutdown.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use futures::channel::mpsc;
use futures::future;
use gatehouse_api::crd::{Aggregator, EdgeService, Gateway};
use gatehouse_operator::admin::{self, AdminState};
use gatehouse_operator::controller::context::{Clock, Context};
use gatehouse_operator::controller::contract_status::{ContractStatusContext, run_contract_status};
use gatehouse_operator::controller::contracts::watch_contracts;
use gatehouse_operator::controller::replicas::watch_endpoint_slices;
use gatehouse_operator::controller::{run_controller, usage};
use gatehouse_operator::leader::{ElectionSettings, LeaderElector};
use gatehouse_operator::metrics::Metrics;
use gatehouse_operator::settings::ProxySettings;
use kube::Client;
use kube::runtime::reflector;
use tokio::sync::watch;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// How long the controllers wait for the first lists of EndpointSlices, Contracts and grants.
const ENDPOINTS_WAIT: Duration = Duration::from_secs(30);
/// How long a stopping operator waits for the statuses it has not written yet.
const STATUS_FLUSH: Duration = Duration::from_secs(5);

/// What `run` was asked to do.
pub struct RunOptions {
    pub namespace: Option<String>,
    pub settings: ProxySettings,
    pub admin_listen: SocketAddr,
    pub leader_election: bool,
    pub lease_namespace: Option<String>,
    /// How often the proxy pods are asked who called which contract version.
    pub usage_interval: Duration,
}

/// JSON (or text) logs on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never into files, pipes or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// Resolves once SIGTERM or SIGINT arrives.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Resolves when `flag` becomes `value` (or its sender is gone).
async fn becomes(mut flag: watch::Receiver<bool>, value: bool) {
    let _ = flag.wait_for(|v| *v == value).await;
}

/// Runs until SIGTERM (clean exit) or lost leadership (error exit, to be restarted).
pub fn run(options: RunOptions) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(run_async(options))
}

async fn run_async(options: RunOptions) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let admin_state = Arc::new(AdminState {
        metrics: metrics.clone(),
        ..AdminState::default()
    });
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        termination().await;
        info!("termination signal received, shutting down");
        shutdown_tx.send_replace(true);
    });
    let listener = tokio::net::TcpListener::bind(options.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.admin_listen))?;
    let admin = tokio::spawn(admin::serve(
        listener,
        admin_state.clone(),
        becomes(shutdown.clone(), true),
    ));

    let client = Client::try_default()
        .await
        .context("cannot configure the Kubernetes client")?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    info!(server = %version.git_version, namespace = options.namespace.as_deref().unwrap_or("*"), "connected");
    admin_state.ready.store(true, Ordering::Relaxed);

    let (leading_tx, leading) = watch::channel(!options.leader_election);
    // Without election the sender lives as long as `run`: a dropped sender would read as
    // "leadership lost" and stop the controllers.
    let (election, _always_leading) = if options.leader_election {
        let lease_namespace = options
            .lease_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("gatehouse-operator-{}", std::process::id()));
        info!(%identity, %lease_namespace, "campaigning for the leader lease");
        let elector = LeaderElector::new(
            client.clone(),
            &lease_namespace,
            ElectionSettings::new(identity),
        );
        let task = tokio::spawn(elector.run(leading_tx, becomes(shutdown.clone(), true)));
        (Some(task), None)
    } else {
        (None, Some(leading_tx))
    };

    tokio::select! {
        () = becomes(leading.clone(), true) => {}
        () = becomes(shutdown.clone(), true) => {}
    }
    if !*shutdown.borrow() {
        metrics.set_leader(true);
        // The controllers start once the proxies' EndpointSlices are known, or every resource
        // would briefly read as served by no replica; but not never (say the rights to list
        // them are missing): then resources read `Pending` until the list comes.
        let (endpoints, slices, watch) =
            watch_endpoint_slices(&client, options.namespace.as_deref(), 3);
        let [gateway_slices, edge_slices, aggregator_slices]: [_; 3] = slices
            .try_into()
            .unwrap_or_else(|_| unreachable!("a shared store gives every subscriber asked for"));
        let watch = tokio::spawn(watch);
        // Contracts too: a Gateway compiled before they are listed would drop the routes it
        // exposes until they are.
        let (contracts, subscriptions, contract_changes, contract_watch) =
            watch_contracts(&client, options.namespace.as_deref(), 2);
        let [gateway_contracts, edge_contracts]: [_; 2] = subscriptions
            .try_into()
            .unwrap_or_else(|_| unreachable!("a shared store gives every subscriber asked for"));
        let contract_watch = tokio::spawn(contract_watch);
        tokio::select! {
            _ = future::join(endpoints.wait_until_ready(), contracts.wait_until_ready()) => {}
            () = tokio::time::sleep(ENDPOINTS_WAIT) => warn!(
                waited_seconds = ENDPOINTS_WAIT.as_secs(),
                "EndpointSlices, Contracts or ContractGrants are not listed yet (can the \
                 operator list and watch endpointslices.discovery.k8s.io, contracts and \
                 contractgrants.gatehouse.dev?); starting without them"
            ),
            () = becomes(shutdown.clone(), true) => {}
            () = becomes(leading.clone(), false) => {}
        }
        let (nudge_sender, nudges) = mpsc::unbounded();
        let ctx = Arc::new(
            Context::new(
                client.clone(),
                options.settings.clone(),
                Clock::System,
                metrics.clone(),
                endpoints,
            )
            .with_contracts(contracts.clone(), Some(nudge_sender)),
        );
        let stop = || {
            let (shutdown, leading) = (shutdown.clone(), leading.clone());
            async move {
                tokio::select! {
                    () = becomes(shutdown, true) => {}
                    () = becomes(leading, false) => {}
                }
            }
        };
        let namespace = options.namespace.clone();
        let (gateways, gateway_writer) = reflector::store();
        let (edges, edge_writer) = reflector::store();
        let status_ctx = Arc::new(ContractStatusContext {
            client: client.clone(),
            clock: Clock::System,
            gateways: gateways.clone(),
            edges: edges.clone(),
        });
        tokio::join!(
            usage::gather(
                gateways.clone(),
                ctx.clone(),
                options.usage_interval,
                stop()
            ),
            usage::gather(edges.clone(), ctx.clone(), options.usage_interval, stop()),
            run_contract_status(
                contracts.contracts.clone(),
                contract_changes,
                nudges,
                status_ctx,
                stop()
            ),
            run_controller::<Gateway>(
                client.clone(),
                namespace.clone(),
                ctx.clone(),
                (gateways, gateway_writer),
                gateway_slices,
                Some(gateway_contracts),
                stop()
            ),
            run_controller::<EdgeService>(
                client.clone(),
                namespace.clone(),
                ctx.clone(),
                (edges, edge_writer),
                edge_slices,
                Some(edge_contracts),
                stop()
            ),
            run_controller::<Aggregator>(
                client.clone(),
                namespace,
                ctx.clone(),
                reflector::store(),
                aggregator_slices,
                None,
                stop()
            ),
        );
        // Stopping: the statuses handed over are written first (they are what the next leader
        // reads). Leadership lost: they are not, the new leader writes its own (and this
        // process exits).
        if *shutdown.borrow()
            && tokio::time::timeout(STATUS_FLUSH, ctx.status.flush())
                .await
                .is_err()
        {
            warn!(
                waited_seconds = STATUS_FLUSH.as_secs(),
                "some statuses were not written before stopping; the next leader writes them"
            );
        }
        watch.abort();
        contract_watch.abort();
        metrics.set_leader(false);
    }
    let lost = match election {
        Some(election) => election.await.context("leader election task failed")?.err(),
        None => None,
    };
    admin_state.ready.store(false, Ordering::Relaxed);
    admin.abort();
    match lost {
        Some(lost) => Err(lost.into()),
        None => {
            info!("stopped");
            Ok(())
        }
    }
}
