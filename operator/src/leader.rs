//! Leader election on a `coordination.k8s.io/v1` Lease, so that two operator replicas never
//! reconcile at once.
//!
//! Semantics (those of client-go's leaderelection): every `retry_period` a candidate reads the
//! Lease. The holder renews it by writing `renewTime`; anyone else takes it when it has no
//! holder, or when its record has not changed for `leaseDurationSeconds` as measured on the
//! candidate's own monotonic clock (never by comparing timestamps across machines). Every
//! write is a create or an update guarded by `resourceVersion`, so of two racing candidates
//! exactly one wins. A leader that cannot renew within `renew_deadline`, or sees the Lease
//! taken, has lost: the caller stops reconciling (the operator exits and is restarted as a
//! candidate). On shutdown the leader releases the Lease so a successor need not wait.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

/// Name of the operator's Lease.
pub const LEASE_NAME: &str = "gatehouse-operator";

/// Timing and identity of an election.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    /// Lease name.
    pub lease_name: String,
    /// This candidate's identity (the pod name).
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// A leader that has not renewed for this long steps down.
    pub renew_deadline: Duration,
    /// How often candidates and the leader try.
    pub retry_period: Duration,
}

impl ElectionSettings {
    /// client-go's defaults: 15s lease, 10s renew deadline, 2s retry period.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            lease_name: LEASE_NAME.to_owned(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Leadership was lost: stop reconciling now.
#[derive(Debug, thiserror::Error)]
#[error("lost the leader lease {0}")]
pub struct LeadershipLost(String);

/// The Lease record last seen, and when (on the local clock) it last changed.
#[derive(Debug)]
struct Observed {
    record: (Option<String>, Option<String>, Option<i32>),
    since: Instant,
}

/// One candidate.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: ElectionSettings,
    observed: Option<Observed>,
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

impl LeaderElector {
    /// A candidate for the Lease in `namespace`.
    pub fn new(client: Client, namespace: &str, settings: ElectionSettings) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            settings,
            observed: None,
        }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Notes the record; returns true when it has not changed for its lease duration.
    fn observe_expired(&mut self, spec: &LeaseSpec) -> bool {
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
            spec.lease_transitions,
        );
        let now = Instant::now();
        let since = match &self.observed {
            Some(observed) if observed.record == record => observed.since,
            _ => now,
        };
        self.observed = Some(Observed { record, since });
        let seconds = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.settings.lease_duration, Duration::from_secs);
        now.duration_since(since) >= seconds
    }

    /// One round: acquires or renews the Lease. `Ok(true)` while this candidate leads.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.settings.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(self.lease_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(error) if is_conflict(&error) => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.settings.identity.as_str());
        let expired = self.observe_expired(&spec);
        if holder.is_some() && !mine && !expired {
            return Ok(false);
        }
        let mut next = spec.clone();
        next.holder_identity = Some(self.settings.identity.clone());
        next.lease_duration_seconds = Some(self.lease_seconds());
        next.renew_time = Some(now.clone());
        if !mine {
            next.acquire_time = Some(now);
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        lease.spec = Some(next);
        match self
            .api
            .replace(&self.settings.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Gives the Lease up, if held, so that another candidate can take it at once.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.lease_name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.spec = Some(spec);
        self.api
            .replace(&self.settings.lease_name, &PostParams::default(), &lease)
            .await
            .map(drop)
    }

    /// Campaigns until `shutdown` resolves (then releases the Lease and returns `Ok`), keeping
    /// `leading` up to date. Returns `Err` as soon as leadership, once held, is lost.
    pub async fn run(
        mut self,
        leading: watch::Sender<bool>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), LeadershipLost> {
        tokio::pin!(shutdown);
        let mut is_leader = false;
        let mut last_renewal = Instant::now();
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    last_renewal = Instant::now();
                    if !is_leader {
                        is_leader = true;
                        info!(identity = %self.settings.identity, "became the leader");
                        leading.send_replace(true);
                    }
                }
                Ok(false) if is_leader => {
                    leading.send_replace(false);
                    return Err(LeadershipLost(self.settings.lease_name.clone()));
                }
                Ok(false) => {}
                Err(error) => {
                    warn!(%error, "cannot read or write the leader lease");
                    if is_leader && last_renewal.elapsed() >= self.settings.renew_deadline {
                        leading.send_replace(false);
                        return Err(LeadershipLost(self.settings.lease_name.clone()));
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.retry_period) => {}
                () = &mut shutdown => {
                    if is_leader {
                        leading.send_replace(false);
                        if let Err(error) = self.release().await {
                            warn!(%error, "cannot release the leader lease");
                        }
                    }
                    return Ok(());
                }
            }
        }
    }
}
