//! Hot reload: the store every request reads its table from, and the watcher that polls the
//! origin, builds a new table off the request path and swaps it in with one atomic store.
//!
//! A request takes an `Arc` of the table when it starts and keeps it to the end, so in-flight
//! requests finish on the table they started with. A table that fails to read, parse, check
//! or build is refused — a log line and `gatehouse_route_table_reloads_total{result="failed"}`
//! — and the previous one keeps serving. What must outlive a table (rate-limit buckets,
//! upstream addresses and health) is the store's [`Runtime`], shared by every table it builds.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::clients::{SecretFiles, read_secrets};
use crate::metrics::{ProxyMetrics, TableLabels};
use crate::runtime::Runtime;
use crate::source::{Fingerprint, LoadError, Snapshot, TableOrigin};
use crate::table::{BuildContext, BuildError, LoadedTable, SharedTable};

/// Polls between full re-reads even when the fingerprint did not change (guards against a
/// rewrite that keeps size and modification time).
const FULL_READ_EVERY: u32 = 10;

/// The currently served table.
pub struct TableStore {
    current: ArcSwapOption<LoadedTable>,
    loads: AtomicU64,
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

    /// Reads, builds and installs the origin's table. On error nothing changes.
    pub fn load(
        &self,
        origin: &TableOrigin,
        snapshot: &Snapshot,
        secrets: &SecretFiles,
    ) -> Result<SharedTable, ReloadError> {
        let result = self.build(origin, snapshot, secrets);
        self.metrics.reload(result.is_ok());
        let table = result?;
        let table = Arc::new(table);
        self.current.store(Some(table.clone()));
        // Buckets and upstreams only the replaced table used go once its requests end; what is
        // already unused goes now.
        self.runtime.prune();
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
            "route table loaded"
        );
        Ok(table)
    }

    fn build(
        &self,
        origin: &TableOrigin,
        snapshot: &Snapshot,
        secrets: &SecretFiles,
    ) -> Result<LoadedTable, ReloadError> {
        let table = origin.table(snapshot)?;
        let mut unresolved = Vec::new();
        let context = BuildContext {
            runtime: &self.runtime,
            secrets,
        };
        let generation = self.loads.load(Ordering::Relaxed) + 1;
        let loaded = LoadedTable::build(table, generation, &context, &mut unresolved)?;
        for problem in unresolved {
            tracing::warn!(
                "{problem}; requests to it answer 503 until it resolves (looked up again every resolve interval)"
            );
        }
        self.loads.store(generation, Ordering::Relaxed);
        Ok(loaded)
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
