//! The routes of the Contract resources a Gateway or EdgeService exposes, and how each fared.
//!
//! Contracts claim requests in order: the resource's inline contracts first, then the exposed
//! Contracts oldest first. A Contract whose routes claim requests an earlier one serves is not
//! served (`Conflict`). A Contract that cannot be served as it is now (invalid, naming clients
//! the resource lacks, or in conflict) keeps the routes of its last good generation, taken
//! from the table being replaced or, without it, from what the last compile served (its
//! [`ContractCache`]), so one team's mistake never takes another team's routes or its own
//! working ones away.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::retire::{self, Retirements};
use super::{CompileContext, Scope};
use crate::crd::{ContractVersion, ExposedContract, ExposureState, RequestLimits};
use crate::exposure::{Exposer, Picked, Resolution};
use crate::route_table::{ContractSource, RouteEntry, RouteTable};
use crate::validate::{self, ExposerClients, Problem};
use crate::{path, usage, versioning};

/// Most problems one outcome message lists.
const MAX_LISTED_PROBLEMS: usize = 5;

/// The exposed Contracts' routes, what the table records of them, and each one's outcome.
#[derive(Default)]
pub(super) struct Served {
    /// Their routes.
    pub routes: Vec<RouteEntry>,
    /// The Contracts served, sorted by namespace and name.
    pub sources: Vec<ContractSource>,
    /// How each picked Contract fared, sorted by namespace and name.
    pub outcomes: Vec<ExposedContract>,
    /// What this compile made of each picked Contract, for the next compile to reuse.
    pub cache: ContractCache,
    /// Versions retired although in use, as their annotation allows ([`super::Compiled`]).
    pub retired_in_use: Vec<String>,
}

/// What compiling one exposer's Contracts made of each, with the inputs it came from, so that
/// the next compile of that exposer (one Contract changed, say) reuses instead of validating
/// and compiling every Contract again. Held by the caller between compiles (the operator, per
/// resource, in memory); compiles stay pure. It also keeps the resource's own inline routes
/// of published (deprecated, retired) versions: what the next compile may not break.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContractCache {
    /// By Contract namespace and name.
    entries: BTreeMap<(String, String), Cached>,
    /// The inline routes of versions that are not drafts.
    pub(super) promised_inline: Arc<[RouteEntry]>,
}

impl ContractCache {
    /// How many Contracts it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One Contract as a compile left it.
#[derive(Clone, Debug, PartialEq)]
struct Cached {
    /// The inputs: the Contract's uid and generation, the versions exposed and the exposer's
    /// fingerprint ([`ExposerScope::fingerprint`]).
    key: String,
    /// Why it could not be served as it was, if it could not.
    refusal: Option<(&'static str, String)>,
    /// Its routes, when it could.
    current: Option<Candidate>,
    /// What the table of that compile served of it (this generation's routes or a last good
    /// generation's), so that the next compile finds its last good routes without the table.
    served: Option<Candidate>,
}

/// What one exposer brings to the compile of its Contracts.
pub(super) struct ExposerScope<'a> {
    /// The exposer.
    pub exposer: Exposer<'a>,
    /// Its clients, which Contracts' access rules may name.
    pub clients: ExposerClients<'a>,
    /// What the compile knows beyond the resources.
    pub context: &'a CompileContext,
    /// The exposer's own limits, for routes and contracts that set none.
    pub limits: Option<&'a RequestLimits>,
    /// The table being replaced, for last good generations; without it, what `cache` says
    /// that compile served.
    pub previous: Option<&'a RouteTable>,
    /// What an earlier compile of this exposer made of its Contracts.
    pub cache: Option<&'a ContractCache>,
    /// A digest of everything besides a Contract that its compile depends on: the exposer,
    /// its clients and limits, the compile context (see [`fingerprint`]).
    pub fingerprint: String,
}

/// The [`ExposerScope::fingerprint`] of an exposer.
pub(super) fn fingerprint(
    exposer: &Exposer<'_>,
    clients: ExposerClients<'_>,
    context: &CompileContext,
    limits: Option<&RequestLimits>,
) -> String {
    let clients = match clients {
        ExposerClients::Gateway(clients) => serde_json::to_value(clients),
        ExposerClients::Edge(client) => serde_json::to_value(client),
    };
    let inputs = serde_json::json!({
        "exposer": exposer.describe(),
        "clients": clients.ok(),
        "limits": limits,
        "clusterDomain": context.cluster_domain,
        "aggregatorPorts": context.aggregator_ports,
        "redis": context.redis,
        "redisFromProxy": context.redis_from_proxy,
    });
    crate::route_table::digest_of(inputs.to_string().as_bytes())
}

/// The cache key of `pick` for this exposer; `None` when the Contract has no generation (files),
/// which nothing could tell apart from another version of it.
fn cache_key(exposer: &ExposerScope<'_>, pick: &Picked) -> Option<String> {
    let meta = &pick.contract.metadata;
    let generation = meta.generation?;
    Some(format!(
        "{}@{generation}:{}:{}",
        meta.uid.as_deref().unwrap_or_default(),
        pick.versions.join(","),
        exposer.fingerprint
    ))
}

/// Serves the picked Contracts after the inline routes `inline`.
pub(super) fn serve(
    exposer: &ExposerScope<'_>,
    resolution: &Resolution,
    inline: &[RouteEntry],
) -> Served {
    let mut claims = Claims::default();
    claims.add("its inline contracts", inline);
    let mut served = Served::default();
    for pick in &resolution.picked {
        let outcome = serve_one(exposer, pick, &mut claims, &mut served);
        served.outcomes.push(outcome);
    }
    // Only the picked Contracts: a Contract no longer exposed leaves the cache.
    served.routes.sort_by(|a, b| a.id.cmp(&b.id));
    served
        .sources
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    served
        .outcomes
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    served
}

/// A contract's routes and the generation and versions they are of. The routes are shared
/// between the cache and the compiles that reuse them: a table of 10,000 routes is not kept
/// twice.
#[derive(Clone, Debug, PartialEq)]
struct Candidate {
    routes: Arc<[RouteEntry]>,
    generation: Option<i64>,
    versions: Vec<String>,
}

fn serve_one(
    exposer: &ExposerScope<'_>,
    pick: &Picked,
    claims: &mut Claims,
    served: &mut Served,
) -> ExposedContract {
    let owner = format!("Contract {}/{}", pick.namespace(), pick.name());
    let mut outcome = ExposedContract {
        namespace: pick.namespace().to_owned(),
        name: pick.name().to_owned(),
        versions: pick.versions.clone(),
        state: ExposureState::NotServed,
        reason: None,
        message: None,
        served_generation: None,
    };
    let refuse = |outcome: &mut ExposedContract, reason: &str, message: String| {
        outcome.reason = Some(reason.to_owned());
        outcome.message = Some(message);
    };
    if !pick.permitted {
        refuse(
            &mut outcome,
            "RefNotPermitted",
            format!(
                "{}: {owner} is in another namespace, and no ContractGrant there lets {} expose it",
                pick.at,
                exposer.exposer.describe()
            ),
        );
        return outcome;
    }
    if pick.versions.is_empty() {
        refuse(
            &mut outcome,
            "VersionNotFound",
            format!(
                "{}.versions: {owner} publishes none of {}",
                pick.at,
                pick.missing_versions.join(", ")
            ),
        );
        return outcome;
    }
    let cached = exposer.cache.and_then(|cache| {
        cache
            .entries
            .get(&(pick.namespace().to_owned(), pick.name().to_owned()))
    });
    let last_good = || match exposer.previous {
        Some(previous) => last_good(previous, pick),
        None => cached?.served.as_ref().and_then(|c| c.narrowed(pick)),
    };
    // Why this generation cannot be served, if it cannot; and its routes, if it can: from the
    // cache when the inputs are the same, else validated and compiled.
    let key = cache_key(exposer, pick);
    // A refusal for a version in use is not kept: its clients may have moved on since.
    let hit = key.as_ref().and_then(|key| {
        cached.filter(|cached| {
            cached.key == *key && cached.refusal.as_ref().is_none_or(|r| r.0 != IN_USE)
        })
    });
    let (refused, compiled) = match hit {
        Some(cached) => (cached.refusal.clone(), cached.current.clone()),
        None => {
            let mut refused = refusal(exposer, pick);
            let compiled = refused.is_none().then(|| current(exposer, pick));
            if let (None, Some(now)) = (&refused, &compiled) {
                refused = last_good().and_then(|before| {
                    breaks(pick, &before, now).or_else(|| {
                        let retirements = retirements(exposer, pick, &before, now);
                        served.retired_in_use.extend(retirements.anyway);
                        in_use(pick, now, &retirements.refused)
                    })
                });
            }
            (refused, compiled)
        }
    };
    let entry = key.map(|key| Cached {
        key,
        refusal: refused.clone(),
        current: compiled.clone(),
        served: None,
    });
    let (candidate, state) = match (&refused, compiled) {
        (None, Some(current)) => (current, ExposureState::Served),
        (None, None) => (current(exposer, pick), ExposureState::Served),
        (Some(_), _) => match last_good() {
            Some(kept) => (kept, ExposureState::LastGoodServed),
            None => {
                if let Some((reason, message)) = refused {
                    refuse(&mut outcome, reason, message);
                }
                remember(served, pick, entry, None);
                return outcome;
            }
        },
    };
    let (candidate, state) = match claims.conflict(&candidate.routes) {
        None => (candidate, state),
        Some(conflict) => {
            let message = format!("{}: {conflict}", pick.at);
            // This generation conflicts: its last good one may not.
            let kept = (state == ExposureState::Served)
                .then(last_good)
                .flatten()
                .filter(|kept| claims.conflict(&kept.routes).is_none());
            match kept {
                Some(kept) => {
                    refuse(&mut outcome, "Conflict", message);
                    (kept, ExposureState::LastGoodServed)
                }
                None => {
                    let (reason, message) = refused.unwrap_or(("Conflict", message));
                    refuse(&mut outcome, reason, message);
                    remember(served, pick, entry, None);
                    return outcome;
                }
            }
        }
    };
    if let Some((reason, message)) = refused {
        refuse(&mut outcome, reason, message);
    } else if !pick.missing_versions.is_empty() && state == ExposureState::Served {
        refuse(
            &mut outcome,
            "VersionNotFound",
            format!(
                "{}.versions: {owner} publishes no {}; {} served",
                pick.at,
                pick.missing_versions.join(", "),
                pick.versions.join(", ")
            ),
        );
    }
    claims.add(&owner, &candidate.routes);
    outcome.state = state;
    outcome.versions = candidate.versions.clone();
    outcome.served_generation = candidate.generation;
    served.sources.push(ContractSource {
        namespace: outcome.namespace.clone(),
        name: outcome.name.clone(),
        generation: candidate.generation,
        versions: candidate.versions.clone(),
    });
    served.routes.extend(candidate.routes.iter().cloned());
    remember(served, pick, entry, Some(candidate));
    outcome
}

/// Puts what this compile made of `pick` in the cache for the next, with what it served.
fn remember(served: &mut Served, pick: &Picked, entry: Option<Cached>, kept: Option<Candidate>) {
    if let Some(mut entry) = entry {
        entry.served = kept;
        served
            .cache
            .entries
            .insert((pick.namespace().to_owned(), pick.name().to_owned()), entry);
    }
}

/// Why the Contract as it is now cannot be served by this exposer: its own problems
/// (`Invalid`), or clients its exposed versions name that the exposer lacks (`UnknownClient`).
fn refusal(exposer: &ExposerScope<'_>, pick: &Picked) -> Option<(&'static str, String)> {
    let spec = &pick.contract.spec;
    let own = validate::validate_contract(spec);
    if !own.is_empty() {
        return Some(("Invalid", listed(&own)));
    }
    // Only the versions exposed here: a version this exposer leaves out may name clients it
    // does not have.
    let exposed: Vec<String> = spec
        .versions
        .iter()
        .enumerate()
        .filter(|(_, v)| pick.versions.contains(&v.version))
        .map(|(i, _)| format!("spec.versions[{i}]"))
        .collect();
    let unknown: Vec<Problem> = validate::validate_exposed_versions(spec, exposer.clients)
        .into_iter()
        .filter(|p| {
            exposed.iter().any(|at| {
                p.path
                    .strip_prefix(at.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
        })
        .collect();
    (!unknown.is_empty()).then(|| {
        (
            "UnknownClient",
            format!(
                "as exposed by {}: {}",
                exposer.exposer.describe(),
                listed(&unknown)
            ),
        )
    })
}

/// Why the Contract's generation `now` cannot replace the one served, `before`: it changes a
/// published version of it in a way that breaks its clients.
fn breaks(pick: &Picked, before: &Candidate, now: &Candidate) -> Option<(&'static str, String)> {
    if before.generation.is_some() && before.generation == now.generation {
        return None;
    }
    let changes = versioning::classify("spec.versions", before.routes.iter(), now.routes.iter());
    let breaking = versioning::breaking_problems(&changes);
    (!breaking.is_empty()).then(|| {
        let generation = |g: Option<i64>| g.map_or(String::new(), |g| format!(" generation {g}"));
        (
            "BreakingChange",
            format!(
                "{}: Contract {}/{}{} breaks what the served{} promises its clients ({}); publish the change as a new version",
                pick.at,
                pick.namespace(),
                pick.name(),
                generation(now.generation),
                generation(before.generation),
                listed(&breaking)
            ),
        )
    })
}

/// The reason of a Contract that retires a version clients still call.
const IN_USE: &str = "VersionInUse";

/// The versions `now` retires or removes of those `before` serves, against who calls them.
fn retirements(
    exposer: &ExposerScope<'_>,
    pick: &Picked,
    before: &Candidate,
    now: &Candidate,
) -> Retirements {
    let contract = format!("{}/{}", pick.namespace(), pick.name());
    let owner = format!("Contract {contract}");
    retire::check(
        "spec.versions",
        (Some(&contract), &owner),
        before.routes.iter(),
        now.routes.iter(),
        exposer.context.in_use.as_deref(),
        &usage::retire_anyway(pick.contract.metadata.annotations.as_ref()),
    )
}

/// The refusal of `now` for the retirements `refused`, if any.
fn in_use(pick: &Picked, now: &Candidate, refused: &[Problem]) -> Option<(&'static str, String)> {
    (!refused.is_empty()).then(|| {
        let generation = now
            .generation
            .map_or(String::new(), |g| format!(" generation {g}"));
        (
            IN_USE,
            format!(
                "{}: Contract {}/{}{} retires versions clients still call ({})",
                pick.at,
                pick.namespace(),
                pick.name(),
                generation,
                listed(refused)
            ),
        )
    })
}

/// The first problems, joined, and how many more there are.
fn listed(problems: &[Problem]) -> String {
    let shown = validate::join(&problems[..problems.len().min(MAX_LISTED_PROBLEMS)]);
    match problems.len().saturating_sub(MAX_LISTED_PROBLEMS) {
        0 => shown,
        more => format!("{shown}; and {more} more"),
    }
}

/// The routes of the Contract's exposed versions as it is now.
fn current(exposer: &ExposerScope<'_>, pick: &Picked) -> Candidate {
    // Service names are the Contract's namespace's: its team's Services.
    let scope = Scope {
        namespace: pick.namespace(),
        context: exposer.context,
        limits: exposer.limits,
    };
    let versions: Vec<&ContractVersion> = pick
        .contract
        .spec
        .versions
        .iter()
        .filter(|v| pick.versions.contains(&v.version))
        .collect();
    let prefix = format!("{}/{}/", pick.namespace(), pick.name());
    Candidate {
        routes: scope.contract_routes(&prefix, versions.into_iter()).into(),
        generation: pick.contract.metadata.generation,
        versions: pick.versions.clone(),
    }
}

/// The routes the table being replaced serves for the Contract, of the versions still exposed.
fn last_good(previous: &RouteTable, pick: &Picked) -> Option<Candidate> {
    let source = previous
        .contracts
        .iter()
        .find(|c| c.namespace == pick.namespace() && c.name == pick.name())?;
    exposed_part(
        &previous.routes,
        &source.id_prefix(),
        source.generation,
        &source.versions,
        pick,
    )
}

impl Candidate {
    /// Its routes of the versions `pick` exposes, if any (itself when it has no others).
    fn narrowed(&self, pick: &Picked) -> Option<Candidate> {
        if self.versions.iter().all(|v| pick.versions.contains(v)) {
            return Some(self.clone());
        }
        let prefix = format!("{}/{}/", pick.namespace(), pick.name());
        exposed_part(&self.routes, &prefix, self.generation, &self.versions, pick)
    }
}

/// Of `routes`, those of the Contract whose ids start with `prefix` (`NAMESPACE/NAME/`) and of
/// a version `pick` exposes, as a candidate of `generation`; `None` when there are none.
fn exposed_part(
    routes: &[RouteEntry],
    prefix: &str,
    generation: Option<i64>,
    versions: &[String],
    pick: &Picked,
) -> Option<Candidate> {
    let exposed = |id: &str| {
        id.strip_prefix(prefix)
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|version| pick.versions.iter().any(|v| v == version))
    };
    let routes: Vec<RouteEntry> = routes.iter().filter(|r| exposed(&r.id)).cloned().collect();
    (!routes.is_empty()).then(|| Candidate {
        routes: routes.into(),
        generation,
        versions: versions
            .iter()
            .filter(|v| pick.versions.contains(v))
            .cloned()
            .collect(),
    })
}

/// The requests claimed so far, by what tells requests apart other than the method.
#[derive(Default)]
struct Claims {
    by_key: BTreeMap<String, Vec<Claim>>,
}

/// One route's claim.
struct Claim {
    /// Its methods; empty: every method.
    methods: Vec<String>,
    /// Who claimed it: `Contract NAMESPACE/NAME` or `its inline contracts`.
    owner: String,
}

impl Claims {
    fn add(&mut self, owner: &str, routes: &[RouteEntry]) {
        for route in routes {
            self.by_key
                .entry(claim_key(route))
                .or_default()
                .push(Claim {
                    methods: route.methods.clone(),
                    owner: owner.to_owned(),
                });
        }
    }

    /// The first of `routes` that claims requests an earlier claim holds, described.
    fn conflict(&self, routes: &[RouteEntry]) -> Option<String> {
        routes.iter().find_map(|route| {
            let claims = self.by_key.get(&claim_key(route))?;
            let claim = claims.iter().find(|c| methods_overlap(&c.methods, &route.methods))?;
            let methods = if route.methods.is_empty() {
                "every method".to_owned()
            } else {
                route.methods.join(", ")
            };
            let host = route
                .host
                .as_deref()
                .map(|h| format!(" on host {h}"))
                .unwrap_or_default();
            Some(format!(
                "route {} claims {methods} {}{host}, which {} already serve here (the older claim wins)",
                route.id, route.path, claim.owner
            ))
        })
    }
}

/// What two routes must share to claim the same requests, their methods aside: the path's
/// kind and shape (parameter names do not matter), the host, header and query conditions.
fn claim_key(route: &RouteEntry) -> String {
    format!(
        "{:?} /{} {} {:?} {:?} {:?}",
        route.path_kind,
        path::shape(&route.path),
        route.path.ends_with('/') && route.path != "/",
        route.host,
        route.headers,
        route.query
    )
}

/// Whether two method lists (empty: every method) share one.
fn methods_overlap(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|m| b.contains(m))
}
