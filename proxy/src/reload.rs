//! Hot reload: the store every request reads its table from, and the watcher that polls the
//! origin, builds a new table off the request path and swaps it in with one atomic store.
//!
//! A request takes an `Arc` of the table when it starts and keeps it to the end, so in-flight
//! requests finish on the table they started with. A table that fails to read, parse, check
//! or build is refused — a log line, `gatehouse_route_table_reloads_total{result="failed"}` and
//! `refused` in `/config` — and the previous one keeps serving. What must outlive a table
//! (rate-limit buckets, upstream addresses and health) is the store's [`Runtime`], shared by
//! every table it builds.
//!
//! Tables reach the store by two feeds ([`Feed`]): the files (polled by [`Watcher`]) and, in a
//! cluster, the Kubernetes API ([`crate::cluster`]). Once the API has delivered a table it is
//! the truth: a mounted copy lags it by a minute or more, so a file table is then installed
//! only when it is of a newer generation of the resource (the API went away while the kubelet
//! still updates the volume); until then, the files serve (start-up, API unreachable).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use gatehouse_api::route_table::RouteTable;
use serde::Serialize;

use crate::clients::{SecretFiles, read_secrets};
use crate::metrics::{ProxyMetrics, TableLabels};
use crate::runtime::Runtime;
use crate::source::{Fingerprint, LoadError, Snapshot, TableOrigin};
use crate::table::{BuildContext, BuildError, LoadedTable, SharedTable};

/// Polls between full re-reads even when the fingerprint did not change (guards against a
/// rewrite that keeps size and modification time).
const FULL_READ_EVERY: u32 = 10;

/// Where a table offered to the store comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Feed {
    /// The route table file or resource folder (in a cluster: the mounted ConfigMap).
    Files,
    /// The route ConfigMap and client Secrets read through the Kubernetes API.
    Kubernetes,
}

/// The newest table the store was offered and refused, until a later one loads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// `sha256:…` of the refused table as offered (the route ConfigMap's digest), when it came
    /// as one serialised table.
    pub digest: Option<String>,
    /// Why it was refused.
    pub error: String,
}

/// What the store installed last, and what it refused since.
#[derive(Debug, Default)]
struct Installs {
    /// The feed of the table being served.
    serving: Option<Feed>,
    /// True once the Kubernetes feed delivered a table that loaded.
    kubernetes_delivered: bool,
    /// The last refusal, cleared by a table that loads.
    refused: Option<Refused>,
}

/// A table offered to the store: parsed (or why not), and the digest of its bytes as offered.
pub struct Offer {
    /// Where it comes from.
    pub feed: Feed,
    /// The parsed and checked table, or why it is not one.
    pub table: Result<RouteTable, LoadError>,
    /// `sha256:…` of the serialised table as delivered, when it was delivered as one.
    pub digest: Option<String>,
}

/// The currently served table.
pub struct TableStore {
    current: ArcSwapOption<LoadedTable>,
    loads: AtomicU64,
    installs: Mutex<Installs>,
    runtime: Arc<Runtime>,
    metrics: Arc<ProxyMetrics>,
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Reading or parsing failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Preparing failed.
    #[error(transparent)]
    Build(#[from] BuildError),
}

impl TableStore {
    /// An empty store: nothing is served (503) until a table is installed. Its tables share
    /// `runtime`.
    pub fn new(runtime: Arc<Runtime>, metrics: Arc<ProxyMetrics>) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            loads: AtomicU64::new(0),
            installs: Mutex::new(Installs::default()),
            runtime,
            metrics,
        }
    }

    /// The table new requests use.
    pub fn current(&self) -> Option<SharedTable> {
        self.current.load_full()
    }

    /// The state shared by every table.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The feed of the table being served.
    pub fn serving_feed(&self) -> Option<Feed> {
        self.installs().serving
    }

    /// The newest refused table, unless a later one loaded.
    pub fn refused(&self) -> Option<Refused> {
        self.installs().refused.clone()
    }

    fn installs(&self) -> std::sync::MutexGuard<'_, Installs> {
        self.installs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads, builds and installs the origin's table (the files feed). On error nothing
    /// changes; `Ok(None)` when the table was not installed because the Kubernetes feed is the
    /// truth (see the module docs).
    pub fn load(
        &self,
        origin: &TableOrigin,
        snapshot: &Snapshot,
        secrets: &SecretFiles,
    ) -> Result<Option<SharedTable>, ReloadError> {
        let (table, digest) = origin.table(snapshot);
        self.offer(
            Offer {
                feed: Feed::Files,
                table,
                digest,
            },
            secrets,
        )
    }

    /// Builds and installs an offered table. On error nothing changes but the refusal, which
    /// `/config` reports. `Ok(None)` when a file table is not installed because the Kubernetes
    /// feed is the truth.
    pub fn offer(
        &self,
        offer: Offer,
        secrets: &SecretFiles,
    ) -> Result<Option<SharedTable>, ReloadError> {
        // One install at a time: the two feeds never interleave a build and its store.
        let mut installs = self.installs();
        if offer.feed == Feed::Files && installs.kubernetes_delivered {
            let newer = match (&offer.table, self.current()) {
                (Ok(table), Some(current)) => is_newer(table, &current),
                _ => false,
            };
            if !newer {
                return Ok(None);
            }
        }
        let started = std::time::Instant::now();
        let result = offer
            .table
            .map_err(ReloadError::from)
            .and_then(|table| self.build(table, offer.digest.clone(), secrets));
        let prepare_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.metrics.reload(result.is_ok());
        let table = match result {
            Ok(table) => Arc::new(table),
            Err(error) => {
                installs.refused = Some(Refused {
                    digest: offer.digest,
                    error: error.to_string(),
                });
                return Err(error);
            }
        };
        self.current.store(Some(table.clone()));
        installs.serving = Some(offer.feed);
        installs.refused = None;
        installs.kubernetes_delivered |= offer.feed == Feed::Kubernetes;
        drop(installs);
        // Buckets and upstreams only the replaced table used go once its requests end; what is
        // already unused goes now, and so do the pages of the replaced table.
        self.runtime.prune();
        gatehouse_allocator::release_freed();
        self.metrics.table_loaded(
            TableLabels {
                digest: table.digest.clone(),
                kind: table.source.kind.clone(),
                namespace: table.source.namespace.clone(),
                name: table.source.name.clone(),
            },
            table.generation,
            table.routes.len(),
        );
        tracing::info!(
            digest = %table.digest,
            generation = table.generation,
            routes = table.routes.len(),
            feed = ?offer.feed,
            prepare_ms = format_args!("{prepare_ms:.1}"),
            "route table loaded"
        );
        Ok(Some(table))
    }

    fn build(
        &self,
        table: RouteTable,
        digest: Option<String>,
        secrets: &SecretFiles,
    ) -> Result<LoadedTable, ReloadError> {
        let mut warnings = Vec::new();
        let previous = self.current();
        let context = BuildContext {
            runtime: &self.runtime,
            secrets,
            previous: previous.as_deref(),
        };
        let generation = self.loads.load(Ordering::Relaxed) + 1;
        let loaded = LoadedTable::build(table, digest, generation, &context, &mut warnings)?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        self.loads.store(generation, Ordering::Relaxed);
        Ok(loaded)
    }
}

/// True when `table` was compiled from a later generation of the resource than `current`.
fn is_newer(table: &RouteTable, current: &LoadedTable) -> bool {
    match (table.source.generation, current.source.generation) {
        (Some(offered), Some(serving)) => {
            offered > serving && table.source.name == current.source.name
        }
        _ => false,
    }
}

/// Polls an origin and reloads on change.
pub struct Watcher {
    origin: TableOrigin,
    secrets_dir: PathBuf,
    secrets: Option<SecretFiles>,
    store: Arc<TableStore>,
    interval: Duration,
    fingerprint: Option<Fingerprint>,
    seen: Option<Snapshot>,
    last_error: Option<String>,
    polls: u32,
}

impl Watcher {
    /// A watcher of `origin` (and of the client Secrets mounted under `secrets_dir`) feeding
    /// `store`, polling every `interval`.
    pub fn new(
        origin: TableOrigin,
        secrets_dir: PathBuf,
        store: Arc<TableStore>,
        interval: Duration,
    ) -> Self {
        Self {
            origin,
            secrets_dir,
            secrets: None,
            store,
            interval,
            fingerprint: None,
            seen: None,
            last_error: None,
            polls: 0,
        }
    }

    /// Checks the origin once; loads when its content changed since the last check.
    pub fn poll(&mut self) {
        self.polls = self.polls.wrapping_add(1);
        let fingerprint = match self.origin.fingerprint() {
            Ok(f) => f,
            Err(e) => return self.report(e.to_string(), false),
        };
        // Secrets are a few small files: read every poll, so a rotated key is served within
        // one interval of the kubelet updating the volume.
        let secrets = match read_secrets(&self.secrets_dir) {
            Ok(s) => s,
            Err(e) => {
                let dir = self.secrets_dir.display();
                return self.report(format!("cannot read the secrets in {dir}: {e}"), false);
            }
        };
        let secrets_changed = self.secrets.as_ref() != Some(&secrets);
        let changed = self.fingerprint.as_ref() != Some(&fingerprint) || secrets_changed;
        if !changed && !self.polls.is_multiple_of(FULL_READ_EVERY) {
            return;
        }
        let snapshot = match self.origin.snapshot() {
            Ok(s) => s,
            Err(e) => return self.report(e.to_string(), false),
        };
        self.fingerprint = Some(fingerprint);
        if self.seen.as_ref() == Some(&snapshot) && !secrets_changed {
            return;
        }
        let loaded = self.store.load(&self.origin, &snapshot, &secrets);
        self.secrets = Some(secrets);
        match loaded {
            Ok(_) => self.last_error = None,
            Err(e) => self.report(e.to_string(), true),
        }
        self.seen = Some(snapshot);
    }

    /// Logs a failure once per distinct message (the same broken file is not logged every
    /// second). `refused` failures were counted as failed reloads by the store.
    fn report(&mut self, message: String, refused: bool) {
        if self.store.serving_feed() == Some(Feed::Kubernetes) {
            // The API is the truth; the mounted copy only stands in for it.
            tracing::debug!("mounted route table not used: {message}");
            return;
        }
        if self.last_error.as_deref() != Some(message.as_str()) {
            let serving = self.store.current().map(|t| t.digest.clone());
            if refused {
                tracing::error!(serving = ?serving, "route table refused, previous table keeps serving: {message}");
            } else {
                tracing::warn!(serving = ?serving, "route table not readable: {message}");
            }
            self.last_error = Some(message);
        }
    }

    /// Polls forever on a thread of its own.
    pub fn spawn(mut self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("route-table-watcher".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(self.interval);
                    self.poll();
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_api::route_table::{FORMAT, TableSource};

    use super::*;
    use crate::runtime::resolver::Resolver;

    fn store() -> TableStore {
        let resolver = Resolver::from_overrides(std::iter::empty()).unwrap();
        TableStore::new(
            Arc::new(Runtime::new(resolver)),
            Arc::new(ProxyMetrics::new()),
        )
    }

    fn table(generation: i64) -> RouteTable {
        RouteTable {
            contracts: Vec::new(),
            tls: None,
            https_redirect_port: None,
            client_address: None,
            source_ranges: None,
            redis: None,
            format: FORMAT.to_owned(),
            source: TableSource {
                kind: "Gateway".to_owned(),
                namespace: "shop".to_owned(),
                name: "public".to_owned(),
                generation: Some(generation),
            },
            edge_client: None,
            clients: Vec::new(),
            routes: Vec::new(),
        }
    }

    fn offer(store: &TableStore, feed: Feed, generation: i64) -> Option<u64> {
        let offered = Offer {
            feed,
            table: Ok(table(generation)),
            digest: None,
        };
        let installed = store.offer(offered, &SecretFiles::new()).unwrap();
        installed.map(|t| t.generation)
    }

    #[test]
    fn files_serve_until_the_api_delivers_then_only_a_newer_generation_does() {
        let store = store();
        assert_eq!(
            offer(&store, Feed::Files, 3),
            Some(1),
            "files serve at start-up"
        );
        assert_eq!(store.serving_feed(), Some(Feed::Files));
        assert_eq!(
            offer(&store, Feed::Files, 3),
            Some(2),
            "and while the API has not delivered"
        );
        assert_eq!(offer(&store, Feed::Kubernetes, 4), Some(3));
        assert_eq!(store.serving_feed(), Some(Feed::Kubernetes));
        assert_eq!(
            offer(&store, Feed::Files, 3),
            None,
            "a lagging mounted copy is not served"
        );
        assert_eq!(
            offer(&store, Feed::Files, 4),
            None,
            "nor the same generation"
        );
        assert_eq!(store.current().unwrap().generation, 3);
        assert_eq!(
            offer(&store, Feed::Files, 5),
            Some(4),
            "a newer generation is (the API went away while the kubelet still updates)"
        );
        assert_eq!(offer(&store, Feed::Kubernetes, 5), Some(5));
    }

    #[test]
    fn a_refused_table_is_reported_with_its_digest_until_one_loads() {
        let store = store();
        offer(&store, Feed::Kubernetes, 1);
        let refused = Offer {
            feed: Feed::Kubernetes,
            table: Err(LoadError::Delivered(
                "ConfigMap gw-public holds no routes.json".to_owned(),
            )),
            digest: Some("sha256:abc".to_owned()),
        };
        assert!(store.offer(refused, &SecretFiles::new()).is_err());
        assert_eq!(
            store.refused(),
            Some(Refused {
                digest: Some("sha256:abc".to_owned()),
                error: "ConfigMap gw-public holds no routes.json".to_owned(),
            })
        );
        assert_eq!(
            store.current().unwrap().generation,
            1,
            "the last good table serves"
        );
        offer(&store, Feed::Kubernetes, 2);
        assert_eq!(store.refused(), None);
    }
}
