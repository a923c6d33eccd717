//! A Pingora listening service that tells the services depending on it that it is ready only
//! once it has a listening socket on every address it serves.
//!
//! Pingora signals a plain listening service ready before it binds its sockets, and retries
//! a bind for as long as the address is in use: the admin listener (and `/readyz`) depending on
//! the traffic service would otherwise answer while no traffic socket exists, and a pod would be
//! sent traffic it refuses.

use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ListenFds, RuntimeOpts, ShutdownWatch};
use pingora::services::{Service, ServiceReadyNotifier, ServiceWithDependents};

/// How often the listening sockets are looked for while some are not bound yet.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// `inner`, ready for its dependents once each of its listen addresses has a listening socket.
pub struct ReadyWhenBound<S> {
    inner: S,
    addresses: Vec<String>,
}

impl<S: Service> ReadyWhenBound<S> {
    /// Wraps `inner`, whose listeners must all be added already.
    pub fn new(inner: S) -> Self {
        let addresses = Service::listen_addresses(&inner).unwrap_or_default();
        Self { inner, addresses }
    }
}

/// Resolves once the server's table of listening sockets `fds` holds one for each of
/// `addresses`: Pingora adds a socket there once it listens (or inherited it from the process
/// it replaces). A connection would not tell: whoever holds the port in our stead accepts it.
async fn bound(fds: &ListenFds, addresses: &[String]) {
    while !addresses.iter().all(|a| fds.lock().get(a).is_some()) {
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

#[async_trait]
impl<S: Service + 'static> ServiceWithDependents for ReadyWhenBound<S> {
    async fn start_service(
        &mut self,
        #[cfg(unix)] fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
        ready_notifier: ServiceReadyNotifier,
    ) {
        let addresses = self.addresses.clone();
        #[cfg(unix)]
        let table = fds.clone();
        let ready = async move {
            #[cfg(unix)]
            if let Some(table) = &table {
                bound(table, &addresses).await;
            }
            ready_notifier.notify_ready();
        };
        let serve = Service::start_service(
            &mut self.inner,
            #[cfg(unix)]
            fds,
            shutdown,
            listeners_per_fd,
        );
        // Serving ends at shutdown; readiness normally comes long before.
        tokio::select! {
            () = serve => {}
            () = async { ready.await; std::future::pending::<()>().await } => {}
        }
    }

    fn name(&self) -> &str {
        Service::name(&self.inner)
    }

    fn threads(&self) -> Option<usize> {
        Service::threads(&self.inner)
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        Service::runtime_opts_override(&self.inner, global)
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Service::listen_addresses(&self.inner)
    }
}
