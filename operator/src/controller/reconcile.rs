//! reconcile: dereference → validate/compile → build → apply → status, for any of the kinds.
//!
//! A resource that exposes Contracts compiles against the Contract and grant stores in the
//! context, over the table its route ConfigMap holds: a Contract that cannot be served as it is
//! now keeps the routes that table serves of it.
//!
//! Only dereference, apply and status touch the client; the middle is [`crate::plan::plan`].
//! The status is handed to the [`super::status_writer`], which writes it in the background:
//! the next change of the resource does not wait for it.
//! An invalid spec is not an error: it is reported (`Accepted=False`) and waits for a change,
//! with nothing applied, so the last accepted table keeps serving. Neither is a child name taken
//! by an object this resource does not control (`Programmed=False`, `NameConflict`, nothing
//! applied, checked again every minute and whenever such a Service changes) nor a child the API
//! server refuses for good (`Programmed=False`, `ApplyFailed`, tried again when the resource
//! changes or after five minutes). Other API errors are errors: they are retried with a growing
//! delay.
//!
//! `Programmed` is the proxies' word: the ready replicas (from the EndpointSlice store, no API
//! call) are asked which table they serve. Until all of them serve the current one, the
//! resource is looked at again soon, with a growing delay; once they agree, only the long
//! resync (and watch events) bring it back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_api::naming::proxy_name;
use kube::ResourceExt;
use kube::api::ApiResource;
use kube::runtime::controller::Action;
use tracing::{debug, info, warn};

use super::ProxyResource;
use super::agreement::{Agreement, Verdict, summarize};
use super::apply::{ApplyError, Blocked, apply_objects, read_deployment};
use super::context::Context;
use super::dereference::{DereferenceError, dereference, served_table};
use super::events::{retired_in_use_events, transition_events};
use super::replicas::{Replica, ready_replicas};
use super::status::{Exposure, Observation, TableInPlace, compute_status};
use super::status_writer::Target;
use super::usage;
use crate::plan::{plan_over, service_address};
use crate::references::References;

/// A valid resource is reconciled again after this long even if nothing happened.
const RESYNC: Duration = Duration::from_secs(600);
/// A resource blocked by a name conflict looks again after this long (most objects in the way
/// are not watched: they do not carry the operator's label).
const CONFLICT_RECHECK: Duration = Duration::from_secs(60);
/// A resource whose child the API server refused tries again after this long, unless it
/// changes first: the same request would be refused again.
const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// While some ready replica serves another table or did not answer, it is asked again at least
/// this often (it is expected to catch up by itself). When none is ready, or the rest refused
/// the table, the delay keeps growing: a replica becoming ready is an EndpointSlice event.
const POLL_WHILE_LAGGING: Duration = Duration::from_secs(5);

/// Why a reconcile failed (and will be retried).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading the referenced objects failed.
    #[error(transparent)]
    Dereference(#[from] DereferenceError),
    /// Applying the built objects failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl ReconcileError {
    /// The step that failed, for metrics.
    pub fn step(&self) -> &'static str {
        match self {
            Self::Dereference(_) => "dereference",
            Self::Apply(_) => "apply",
        }
    }
}

/// `Kind/namespace/name`.
pub(super) fn object_key<K: ProxyResource>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Just after a new table was written, replicas that still serve the previous one are asked
/// again after these delays (250 ms in all) before the status says `Pending`: most catch up
/// within tens of milliseconds, and one status write instead of two (`Pending`, then
/// `Programmed`) spares the API server a rewrite of the whole resource.
const CATCH_UP: [Duration; 6] = [
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(30),
    Duration::from_millis(40),
    Duration::from_millis(50),
    Duration::from_millis(100),
];

/// What the ready `replicas` serve, against `digest`; when `just_written`, lagging replicas
/// get [`CATCH_UP`] to take it.
async fn agreement(
    ctx: &Context,
    replicas: &[Replica],
    digest: &str,
    just_written: bool,
) -> Agreement {
    let mut agreement = summarize(digest, &ctx.replicas.ask_all(replicas).await);
    if just_written {
        for delay in CATCH_UP {
            if agreement.verdict() != Verdict::Pending || !agreement.lagging() {
                break;
            }
            tokio::time::sleep(delay).await;
            agreement = summarize(digest, &ctx.replicas.ask_all(replicas).await);
        }
    }
    agreement
}

/// How long each step of a reconcile took, for the debug log (`dereference=3ms plan=12ms …`).
struct Steps {
    last: Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Steps {
    fn start() -> Self {
        Self {
            last: Instant::now(),
            done: Vec::new(),
        }
    }

    fn done(&mut self, step: &'static str) {
        let now = Instant::now();
        self.done.push((step, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (step, took)) in self.done.iter().enumerate() {
            let separator = if i == 0 { "" } else { " " };
            write!(f, "{separator}{step}={:.1}ms", took.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

/// Reconciles one Gateway, EdgeService or Aggregator.
pub async fn reconcile<K: ProxyResource>(
    object: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let _timer = ctx.metrics.reconcile_started(&K::kind(&()));
    let mut steps = Steps::start();
    let resource = object.to_resource();
    let namespace = resource.namespace().to_owned();
    let catalog = (!resource.expose().is_empty()).then(|| ctx.contracts.catalog());
    let mut references = References::of(&resource, ctx.settings.redis.as_ref());
    if let Some(catalog) = &catalog {
        references = references.with_exposed(&resource, catalog);
    }
    let mut found = dereference(&ctx.client, &namespace, &references).await?;
    let mut missing = found.missing(&references);
    let owner_uid = object.meta().uid.as_deref();
    let name = proxy_name(resource.kind(), resource.name());
    // Only a resource that exposes Contracts (their last good routes) or publishes contract
    // versions (what its clients were promised) compiles over the table it replaces: over its
    // last compile, whose table is the one in place; after a restart, over the table the
    // route ConfigMap holds (read, unpacked and parsed: at 10,000 routes the costliest step).
    let key = object_key(object.as_ref());
    let over_last = catalog.is_some() || resource.publishes();
    if let Some(catalog) = catalog {
        found.catalog = catalog;
    }
    // Who called what: the record in the status, and every call heard of since the start.
    let recorded = object.proxy_status().map(|s| s.usage.as_slice());
    let seen = ctx.usage.seen(&key);
    if over_last {
        found.in_use = Some(Arc::new(usage::in_use(
            recorded.unwrap_or_default(),
            &seen,
            ctx.clock.now(),
            ctx.settings.usage_window,
        )));
    }
    let previous = if over_last {
        found.compiled = ctx.last_compiles.contracts(&key);
        match found.compiled {
            Some(_) => None,
            None => served_table(&ctx.client, &namespace, &name, owner_uid).await?,
        }
    } else {
        None
    };
    steps.done("dereference");

    let mut retired_in_use = Vec::new();
    let (problems, table, deployment, table_written, blocked, exposure) =
        match plan_over(&resource, &found, &ctx.settings, previous.as_ref()) {
            Ok(plan) => {
                steps.done("plan");
                let crate::plan::Plan {
                    table,
                    objects,
                    exposed,
                    unresolved,
                    contracts,
                    retired_in_use: retiring,
                } = plan;
                if let Some(digest) = objects.table_digest() {
                    ctx.own_writes.expect(&namespace, &name, digest);
                }
                let applied = apply_objects(&ctx.client, &namespace, &objects, owner_uid).await;
                // Whatever the outcome, the write is no longer in flight.
                let version = applied.as_ref().ok().and_then(|a| a.table_version.clone());
                ctx.own_writes.record(&namespace, &name, version);
                // What the status needs of the table, once the proxies have their copy (the
                // contracts' digests take a walk over the whole table); the table goes before
                // the replicas are asked and the status written.
                let summary = TableInPlace::of(&table, objects.table_digest().map(str::to_owned));
                drop((table, objects));
                let applied = applied?;
                steps.done("apply");
                if applied.table_in_place && over_last {
                    ctx.last_compiles.remember(&key, contracts);
                }
                if applied.table_written {
                    retired_in_use = retiring;
                }
                let exposure = applied.table_in_place.then_some(Exposure {
                    exposed,
                    unresolved,
                });
                (
                    Vec::new(),
                    applied.table_in_place.then_some(summary),
                    applied.deployment,
                    applied.table_written,
                    applied.blocked,
                    exposure,
                )
            }
            Err(problems) => {
                let deployment = read_deployment(&ctx.client, &namespace, &name, owner_uid).await?;
                (problems, None, deployment, false, None, None)
            }
        };

    if let Some(exposure) = &exposure {
        missing.retain(|m| m.matters(&exposure.exposed));
    }

    let previous = ctx.status.previous(&key, object.proxy_status());
    let digest = match &table {
        Some(table) => Some(table.digest.clone()),
        None => previous.as_ref().and_then(|p| p.route_table_digest.clone()),
    };
    let serving = match digest {
        Some(digest) => {
            let replicas = ready_replicas(&ctx.endpoints.state(), &namespace, &name);
            Some(agreement(&ctx, &replicas, &digest, table_written).await)
        }
        None => None,
    };
    steps.done("replicas");

    let address = service_address(&resource, &ctx.settings);
    let now = ctx.clock.now();
    let usage = usage::for_status(
        previous
            .as_ref()
            .map(|p| p.usage.as_slice())
            .unwrap_or_default(),
        &seen,
        now,
        ctx.settings.usage_window,
    );
    let seen = Observation {
        generation: object.meta().generation,
        problems: &problems,
        missing: &missing,
        table: table.as_ref(),
        blocked: blocked.as_ref(),
        exposure: exposure.as_ref(),
        serving: serving.as_ref(),
        deployment: deployment.as_ref(),
        address: &address,
        usage: &usage,
    };
    let next = compute_status(previous.as_ref(), &seen, now);
    let changed = previous.as_ref() != Some(&next);
    if changed {
        info!(
            %key,
            accepted = problems.is_empty(),
            missing = missing.len(),
            blocked = blocked.as_ref().map(Blocked::reason).unwrap_or_default(),
            digest = next.route_table_digest.as_deref().unwrap_or_default(),
            programmed = serving.as_ref().map(|s| s.verdict().reason()).unwrap_or_default(),
            "status updated"
        );
        let mut events = transition_events(previous.as_ref(), &next, table_written);
        events.extend(retired_in_use_events(&retired_in_use));
        let target = Target {
            resource: ApiResource::erase::<K>(&()),
            namespace: namespace.clone(),
            name: object.name_any(),
            reference: object.object_ref(&()),
        };
        ctx.status.submit(&key, target, next, events);
    }
    debug!(%key, table_written, steps = %steps, "reconciled");
    ctx.backoff.reset(&key);
    Ok(match (problems.is_empty(), &blocked) {
        (false, _) => Action::await_change(),
        (true, Some(Blocked::NameConflict(_))) => Action::requeue(CONFLICT_RECHECK),
        (true, Some(Blocked::Refused(_))) => Action::requeue(REFUSED_RETRY),
        (true, None) => next_look(&ctx, &key, serving.as_ref(), changed),
    })
}

/// When to look at a programmed resource again: after the long resync once every ready replica
/// serves its table; sooner while they do not (200 ms, doubling; starting over whenever the
/// status changed, since things are moving).
fn next_look(ctx: &Context, key: &str, serving: Option<&Agreement>, changed: bool) -> Action {
    match serving {
        Some(serving) if serving.verdict() != Verdict::Serving => {
            if changed {
                ctx.poll.reset(key);
            }
            let delay = ctx.poll.next_delay(key);
            Action::requeue(if serving.lagging() {
                delay.min(POLL_WHILE_LAGGING)
            } else {
                delay
            })
        }
        _ => {
            ctx.poll.reset(key);
            Action::requeue(RESYNC)
        }
    }
}

/// Retries a failed reconcile after a growing delay.
pub fn error_policy<K: ProxyResource>(
    object: Arc<K>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let key = object_key(object.as_ref());
    ctx.metrics.reconcile_failed(&K::kind(&()), error.step());
    let delay = ctx.backoff.next_delay(&key);
    warn!(%key, %error, retry_in_seconds = delay.as_secs(), "reconcile failed");
    Action::requeue(delay)
}
