//! Writes statuses in the background, latest first, so that a reconcile never waits for one.
//!
//! A status write rewrites the whole resource on the API server: for a Gateway of 2,000 routes
//! that costs it 0.6–1.2 s, while the route ConfigMap write that delivers a change takes 70 ms.
//! Were the reconcile to wait for the status, the next change's ConfigMap write would queue
//! behind it (`bench/RESULTS.md`, "Live configuration"). So a reconcile hands its status over
//! and goes on; per resource, one write is in flight at a time and only the newest status
//! waiting is written next (the ones it replaced are never sent). Events are published after
//! the status they describe is written, none is lost when statuses are folded together.
//!
//! Until the resource as watched shows what was handed over, [`StatusWriter::previous`] answers
//! with the status handed over, so a reconcile compares against what the API server has (or
//! soon will have) and no status is written twice.
//!
//! A failed write is tried again after a growing delay (200 ms doubling, to 30 s) unless a newer
//! status arrives meanwhile, which is then written instead; a resource that is gone (404) is
//! forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gatehouse_api::crd::ProxyStatus;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, Recorder};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::FIELD_MANAGER;
use crate::metrics::Metrics;

/// The first delay before a failed write is tried again; it doubles each time.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// The longest delay between two tries.
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Whose status to write.
#[derive(Clone, Debug)]
pub struct Target {
    /// The kind's group, version and plural.
    pub resource: ApiResource,
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// Where its events point.
    pub reference: ObjectReference,
}

/// One status to write and the events to publish once it is written.
struct Work {
    target: Target,
    status: ProxyStatus,
    events: Vec<Event>,
}

/// What the writer holds for one resource.
struct Slot {
    /// The last status handed over.
    latest: ProxyStatus,
    /// Handed over and not yet being written.
    waiting: Option<Work>,
    /// A task is writing this resource's status.
    busy: bool,
}

/// Writes statuses in the background, one resource at a time each, newest first.
#[derive(Clone)]
pub struct StatusWriter {
    client: Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    idle: Arc<Notify>,
}

impl StatusWriter {
    /// A writer that patches through `client` and publishes events through `recorder`.
    pub fn new(client: Client, recorder: Recorder, metrics: Arc<Metrics>) -> Self {
        Self {
            client,
            recorder,
            metrics,
            slots: Arc::default(),
            idle: Arc::default(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status to compare a new one against: the last one handed over for `key`, until the
    /// resource as watched (`observed`) shows it.
    pub fn previous(&self, key: &str, observed: Option<&ProxyStatus>) -> Option<ProxyStatus> {
        previous_in(&mut self.slots(), key, observed)
    }

    /// Hands over what `change` makes of the status to compare against ([`Self::previous`]),
    /// if it makes anything of it, with no other status handed over in between (the usage
    /// gatherer changes one field of a status a reconcile may be replacing). True when a
    /// status was handed over.
    pub fn update(
        &self,
        key: &str,
        observed: Option<&ProxyStatus>,
        target: Target,
        change: impl FnOnce(&ProxyStatus) -> Option<ProxyStatus>,
    ) -> bool {
        let mut slots = self.slots();
        let next = previous_in(&mut slots, key, observed).and_then(|previous| change(&previous));
        match next {
            Some(status) => {
                self.submit_in(&mut slots, key, target, status, Vec::new());
                true
            }
            None => false,
        }
    }

    /// Hands over `status` for the resource `key` (`Kind/namespace/name`), with the events to
    /// publish once it is written. Returns at once.
    pub fn submit(&self, key: &str, target: Target, status: ProxyStatus, events: Vec<Event>) {
        self.submit_in(&mut self.slots(), key, target, status, events);
    }

    fn submit_in(
        &self,
        slots: &mut HashMap<String, Slot>,
        key: &str,
        target: Target,
        status: ProxyStatus,
        events: Vec<Event>,
    ) {
        let slot = slots.entry(key.to_owned()).or_insert_with(|| Slot {
            latest: status.clone(),
            waiting: None,
            busy: false,
        });
        slot.latest = status.clone();
        match &mut slot.waiting {
            Some(waiting) => {
                waiting.target = target;
                waiting.status = status;
                waiting.events.extend(events);
            }
            None => {
                slot.waiting = Some(Work {
                    target,
                    status,
                    events,
                });
            }
        }
        if !slot.busy {
            slot.busy = true;
            tokio::spawn(self.clone().write_all(key.to_owned()));
        }
    }

    /// Resolves once no status is waiting or being written.
    pub async fn flush(&self) {
        loop {
            let notified = self.idle.notified();
            if !self.slots().values().any(|slot| slot.busy) {
                return;
            }
            notified.await;
        }
    }

    /// Writes `key`'s waiting statuses until none is left.
    async fn write_all(self, key: String) {
        let mut retry = FIRST_RETRY;
        loop {
            let work = {
                let mut slots = self.slots();
                let Some(slot) = slots.get_mut(&key) else {
                    break;
                };
                match slot.waiting.take() {
                    Some(work) => work,
                    None => {
                        slot.busy = false;
                        break;
                    }
                }
            };
            match self.write(&key, &work).await {
                Ok(()) => {
                    retry = FIRST_RETRY;
                    for event in &work.events {
                        if let Err(error) =
                            self.recorder.publish(event, &work.target.reference).await
                        {
                            warn!(%error, reason = %event.reason, "cannot publish event");
                        }
                    }
                }
                Err(kube::Error::Api(error)) if error.code == 404 => {
                    debug!(%key, "the resource is gone; its status is not written");
                    self.slots().remove(&key);
                    break;
                }
                Err(error) => {
                    self.metrics
                        .reconcile_failed(&work.target.resource.kind, "status");
                    warn!(%key, %error, retry_in_ms = retry.as_millis(), "cannot write the status");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LAST_RETRY);
                    let mut slots = self.slots();
                    if let Some(slot) = slots.get_mut(&key) {
                        match &mut slot.waiting {
                            // A newer status replaces this one; the events of both are news.
                            Some(newer) => {
                                let mut events = work.events;
                                events.append(&mut newer.events);
                                newer.events = events;
                            }
                            None => slot.waiting = Some(work),
                        }
                    }
                }
            }
        }
        self.idle.notify_waiters();
    }

    async fn write(&self, key: &str, work: &Work) -> Result<(), kube::Error> {
        let started = Instant::now();
        let target = &work.target;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &target.namespace, &target.resource);
        let body = json!({
            "apiVersion": target.resource.api_version,
            "kind": target.resource.kind,
            "status": work.status,
        });
        api.patch_status(
            &target.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        info!(%key, write_ms = started.elapsed().as_millis(), "status written");
        Ok(())
    }
}

/// [`StatusWriter::previous`], in `slots`.
fn previous_in(
    slots: &mut HashMap<String, Slot>,
    key: &str,
    observed: Option<&ProxyStatus>,
) -> Option<ProxyStatus> {
    let Some(slot) = slots.get(key) else {
        return observed.cloned();
    };
    if !slot.busy && slot.waiting.is_none() && observed == Some(&slot.latest) {
        slots.remove(key);
        return observed.cloned();
    }
    Some(slot.latest.clone())
}
