//! The Kubernetes feed: in a cluster the proxy watches, through the API, exactly its own route
//! ConfigMap and the client Secrets its table names, and offers the store each new table (or
//! Secret content) within milliseconds of the API server accepting it — a mounted volume would
//! take the kubelet's sync period, a minute or more.
//!
//! Each watch is a kube-runtime watcher with a `metadata.name` field selector, which is all a
//! Role with `resourceNames` permits (`get`, and `list`/`watch` of that one name). A watch that
//! fails is retried with a growing delay; meanwhile the last delivered table keeps serving, and
//! the files feed ([`crate::reload::Watcher`]) serves at start-up and while the API has never
//! answered. What is decided from what the watches saw is pure ([`view`]).

pub mod view;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use gatehouse_api::route_table::FILE_NAME;
use gatehouse_api::table_file::COMPRESSED_FILE_NAME;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::reload::{Feed, Offer, TableStore};
use crate::source::LoadError;
use view::{Change, ClusterView, SecretData, Seen};

/// Where the proxy's objects are and how to reach the API.
#[derive(Clone, Debug)]
pub struct ClusterFeed {
    /// The route ConfigMap's name.
    pub config_map: String,
    /// Its namespace (and the Secrets'); `None`: the client configuration's default namespace
    /// (in a pod: its own).
    pub namespace: Option<String>,
    /// A kubeconfig file; `None`: the in-cluster service account (or `KUBECONFIG`).
    pub kubeconfig: Option<PathBuf>,
}

/// Why the feed cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The kubeconfig file cannot be read.
    #[error("cannot read the kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// No client configuration could be found or used.
    #[error("no Kubernetes client configuration: {0}")]
    Config(String),
}

impl ClusterFeed {
    /// The API client and the namespace to watch.
    async fn client(&self) -> Result<(Client, String), FeedError> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    FeedError::Kubeconfig {
                        path: path.clone(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(|source| FeedError::Kubeconfig {
                        path: path.clone(),
                        source,
                    })?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| FeedError::Config(e.to_string()))?,
        };
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| FeedError::Config(e.to_string()))?;
        Ok((client, namespace))
    }

    /// Runs the feed on a thread of its own until the process ends. A feed that cannot start
    /// says why in the log and leaves the files feed serving.
    pub fn spawn(self, store: Arc<TableStore>) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("kubernetes-feed".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!("cannot start the Kubernetes feed: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    match self.client().await {
                        Ok((client, namespace)) => {
                            run(client, namespace, self.config_map, store).await;
                        }
                        Err(e) => {
                            tracing::error!("{e}; the route table is read from the files only")
                        }
                    }
                });
            })
    }
}

/// Watches the ConfigMap and the Secrets its table names, offering the store what changes.
async fn run(client: Client, namespace: String, config_map: String, store: Arc<TableStore>) {
    let (changes, mut received) = mpsc::unbounded_channel();
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let _config_watch = tokio::spawn(watch_one(
        configs,
        format!("ConfigMap {namespace}/{config_map}"),
        config_map.clone(),
        changes.clone(),
        |_, seen| Change::ConfigMap(seen.map(routes_of)),
    ));
    let secrets: Api<Secret> = Api::namespaced(client, &namespace);
    let mut secret_watches: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
    let mut view = ClusterView::new(&config_map);
    while let Some(change) = received.recv().await {
        view.apply(change);
        // Takes in everything already waiting, so a burst is offered as one table.
        while let Ok(change) = received.try_recv() {
            view.apply(change);
        }
        secret_watches.retain(|name, watch| {
            let keep = view.wanted().contains(name);
            if !keep {
                watch.abort();
            }
            keep
        });
        view.forget_unwanted();
        for name in view.wanted() {
            if !secret_watches.contains_key(name) {
                let watch = tokio::spawn(watch_one(
                    secrets.clone(),
                    format!("Secret {namespace}/{name}"),
                    name.clone(),
                    changes.clone(),
                    |name, seen| Change::Secret(name, seen.map(secret_data)),
                ));
                secret_watches.insert(name.clone(), watch);
            }
        }
        if let Some(delivery) = view.delivery() {
            let offer = Offer {
                feed: Feed::Kubernetes,
                table: delivery.table.map_err(LoadError::Delivered),
                digest: Some(delivery.digest),
            };
            if let Err(error) = store.offer(offer, &delivery.secrets) {
                let serving = store.current().map(|t| t.digest.clone());
                tracing::error!(serving = ?serving, "route table refused, previous table keeps serving: {error}");
            }
        }
    }
}

/// The table a ConfigMap holds, as stored: `routes.json.gz` when it has one (gzipped, see
/// [`gatehouse_api::table_file`]), else `routes.json`; empty when it has neither.
fn routes_of(config_map: ConfigMap) -> Vec<u8> {
    let packed = config_map
        .binary_data
        .and_then(|mut data| data.remove(COMPRESSED_FILE_NAME))
        .map(|bytes| bytes.0);
    packed
        .or_else(|| {
            config_map
                .data
                .and_then(|mut data| data.remove(FILE_NAME))
                .map(String::into_bytes)
        })
        .unwrap_or_default()
}

/// The data of a Secret.
fn secret_data(secret: Secret) -> SecretData {
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .collect()
}

/// Watches the one object `name` of `api`, sending what it sees through `changes` as
/// `change(name, seen)`: after each complete listing (present or absent), then every change.
async fn watch_one<K>(
    api: Api<K>,
    what: String,
    name: String,
    changes: mpsc::UnboundedSender<Change>,
    change: fn(String, Seen<K>) -> Change,
) where
    K: kube::Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut listing: Option<K> = None;
    let mut failing = false;
    while let Some(event) = events.next().await {
        let seen = match event {
            Ok(Event::Init) => {
                listing = None;
                continue;
            }
            Ok(Event::InitApply(object)) => {
                listing = Some(object);
                continue;
            }
            Ok(Event::InitDone) => {
                if failing {
                    tracing::info!("watching {what} again");
                    failing = false;
                }
                listing.take().map_or(Seen::Absent, Seen::Present)
            }
            Ok(Event::Apply(object)) => Seen::Present(object),
            Ok(Event::Delete(_)) => Seen::Absent,
            Err(error) => {
                if !failing {
                    tracing::warn!(
                        "cannot watch {what}: {error}; what it last delivered keeps serving, \
                         tried again with a growing delay"
                    );
                    failing = true;
                }
                continue;
            }
        };
        if changes.send(change(name.clone(), seen)).is_err() {
            return;
        }
    }
}
