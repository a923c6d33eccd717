//! status: the truth about one resource, computed from what reconcile saw. Pure.
//!
//! One small constructor per condition. A condition keeps its `lastTransitionTime` unless its
//! status flips, so a status recomputed from the same facts equals the previous one and no
//! patch is sent.

use std::collections::BTreeMap;

use gatehouse_api::crd::{ExposedContract, ExposureState, ProxyStatus, ServedContract};
use gatehouse_api::exposure::Unresolved;
use gatehouse_api::route_table::{RouteTable, digest_of};
use gatehouse_api::usage::VersionUsage;
use gatehouse_api::validate::{Problem, join, reason};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::agreement::{Agreement, Verdict, summarize};
use super::apply::Blocked;
use crate::plan::MissingRef;
use crate::references::SecretUse;

/// Condition types, in the order they are reported.
pub const ACCEPTED: &str = "Accepted";
/// Every referenced Service, Aggregator, Secret and Contract exists (and may be used).
pub const RESOLVED_REFS: &str = "ResolvedRefs";
/// Every ready proxy replica serves this generation's route table.
pub const PROGRAMMED: &str = "Programmed";
/// The proxy Deployment is available.
pub const READY: &str = "Ready";

/// Conditions' messages are capped by the API at 32768 bytes.
const MAX_MESSAGE: usize = 32 * 1024;

/// How the Contract resources a resource exposes fared in the table that was applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposure {
    /// Each Contract picked, by namespace and name.
    pub exposed: Vec<ExposedContract>,
    /// `expose` entries that resolve to no Contract.
    pub unresolved: Vec<Unresolved>,
}

impl Exposure {
    /// What does not resolve or is not served as it is now, one sentence each, and the most
    /// urgent reason among them: `RefNotPermitted`, `ContractNotFound`, then `InvalidContract`
    /// (invalid, naming clients the resource lacks, conflicting, or a version it lacks).
    fn problems(&self) -> Option<(&'static str, Vec<String>)> {
        let mut reason = None;
        let mut worse = |candidate: &'static str| {
            const ORDER: [&str; 3] = ["RefNotPermitted", "ContractNotFound", "InvalidContract"];
            let rank = |r: &str| ORDER.iter().position(|o| *o == r);
            if reason.is_none_or(|r| rank(candidate) < rank(r)) {
                reason = Some(candidate);
            }
        };
        let mut sentences = Vec::new();
        for unresolved in &self.unresolved {
            worse("ContractNotFound");
            sentences.push(format!("{}: {}", unresolved.at, unresolved.message));
        }
        for exposed in &self.exposed {
            let Some(why) = &exposed.reason else { continue };
            worse(if why == "RefNotPermitted" {
                "RefNotPermitted"
            } else {
                "InvalidContract"
            });
            let consequence = match (exposed.state, exposed.served_generation) {
                (ExposureState::Served, _) => "the rest of it is served".to_owned(),
                (ExposureState::LastGoodServed, Some(generation)) => {
                    format!("its routes of generation {generation} keep serving")
                }
                (ExposureState::LastGoodServed, None) => {
                    "the routes it had keep serving".to_owned()
                }
                (ExposureState::NotServed, _) => "its routes are not served".to_owned(),
            };
            sentences.push(format!(
                "Contract {}/{} ({why}): {}; {consequence}",
                exposed.namespace,
                exposed.name,
                exposed.message.as_deref().unwrap_or_default()
            ));
        }
        reason.map(|reason| (reason, sentences))
    }
}

/// What the status says of a route table the route ConfigMap holds: its digest (computed once:
/// serialising a 10,000-route table takes milliseconds), route count and contracts. The table
/// itself need not outlive the apply: at 10,000 routes it takes tens of MiB, and the replicas'
/// answers (up to 250 ms of polling) and the status write come after it.
#[derive(Clone, Debug, PartialEq)]
pub struct TableInPlace {
    /// Its digest, as the ConfigMap's annotation has it.
    pub digest: String,
    /// How many routes it holds.
    pub routes: usize,
    /// Digest and route count of each contract version it serves.
    pub contracts: Vec<ServedContract>,
}

impl TableInPlace {
    /// What the status says of `table`, whose digest is `digest` (computed when `None`).
    pub fn of(table: &RouteTable, digest: Option<String>) -> Self {
        Self {
            digest: digest.unwrap_or_else(|| table.digest()),
            routes: table.routes.len(),
            contracts: contract_statuses(table),
        }
    }
}

/// What reconcile learnt, the input of [`compute_status`].
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// `metadata.generation` of the resource.
    pub generation: Option<i64>,
    /// The validation problems; empty when the spec is valid.
    pub problems: &'a [Problem],
    /// References that do not resolve.
    pub missing: &'a [MissingRef],
    /// The table now in the route ConfigMap, when this generation's table was applied.
    pub table: Option<&'a TableInPlace>,
    /// Why not every object of a valid spec could be applied.
    pub blocked: Option<&'a Blocked>,
    /// How the exposed Contracts fared, when this generation's table was applied.
    pub exposure: Option<&'a Exposure>,
    /// What the ready proxy replicas serve, against the digest the status reports (this
    /// generation's table, or the last accepted one); `None` when there is no digest to ask
    /// about.
    pub serving: Option<&'a Agreement>,
    /// The live proxy Deployment, if any.
    pub deployment: Option<&'a Deployment>,
    /// `host:port` of the proxy Service.
    pub address: &'a str,
    /// What `status.usage` says now ([`super::usage::for_status`]).
    pub usage: &'a [VersionUsage],
}

/// A condition with no transition time yet (see [`compute_status`]).
pub(crate) fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    let mut message = message;
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    Condition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

fn accepted(seen: &Observation<'_>) -> Condition {
    if seen.problems.is_empty() {
        condition(
            ACCEPTED,
            true,
            "Accepted",
            "the spec is valid".to_owned(),
            seen.generation,
        )
    } else {
        condition(
            ACCEPTED,
            false,
            reason(seen.problems),
            join(seen.problems),
            seen.generation,
        )
    }
}

fn resolved_refs(seen: &Observation<'_>) -> Condition {
    let contracts = seen.exposure.and_then(Exposure::problems);
    if seen.missing.is_empty() && contracts.is_none() {
        let exposes = seen.exposure.is_some_and(|e| !e.exposed.is_empty());
        let contract = if exposes { " Contract," } else { "" };
        return condition(
            RESOLVED_REFS,
            true,
            "ResolvedRefs",
            format!(
                "every referenced Service, Aggregator,{contract} TLS, CA and Redis Secret resolves"
            ),
            seen.generation,
        );
    }
    let (certificates, backends): (Vec<&MissingRef>, Vec<&MissingRef>) = seen
        .missing
        .iter()
        .partition(|m| matches!(m, MissingRef::Certificate(..)));
    let mut parts = Vec::new();
    if !backends.is_empty() {
        let names: Vec<String> = backends.iter().map(ToString::to_string).collect();
        parts.push(format!(
            "{}; requests to these backends fail until they exist",
            names.join("; ")
        ));
    }
    // One sentence per consequence, in the order of the uses (missing is sorted by use).
    let mut by_consequence: Vec<(&str, Vec<String>)> = Vec::new();
    for missing in &certificates {
        if let MissingRef::Certificate(used, problem) = missing {
            let consequence = used.consequence();
            match by_consequence.last_mut() {
                Some((last, problems)) if *last == consequence => {
                    problems.push(problem.to_string());
                }
                _ => by_consequence.push((consequence, vec![problem.to_string()])),
            }
        }
    }
    for (consequence, problems) in by_consequence {
        parts.push(format!("{}; {consequence}", problems.join("; ")));
    }
    let contract_reason = contracts.map(|(reason, sentences)| {
        parts.extend(sentences);
        reason
    });
    // Gateway API's reasons (and ours for the Redis Secrets and Contracts); a broken
    // certificate is the most urgent to name, then a Contract, then a backend.
    let redis_only = certificates.iter().all(|m| {
        matches!(
            m,
            MissingRef::Certificate(SecretUse::RedisPassword | SecretUse::RedisAuthorities, _)
        )
    });
    let reason = match (certificates.is_empty(), contract_reason) {
        (false, _) if !redis_only => "InvalidCertificateRef",
        (_, Some(reason)) => reason,
        (true, None) => "BackendNotFound",
        (false, None) => "InvalidRedisSecretRef",
    };
    condition(
        RESOLVED_REFS,
        false,
        reason,
        parts.join("; "),
        seen.generation,
    )
}

/// Where the route table stands, for a message that explains a `Programmed=False`.
fn served_table(seen: &Observation<'_>, previous: Option<&ProxyStatus>) -> String {
    match (
        seen.table,
        previous.and_then(|p| p.route_table_digest.as_deref()),
    ) {
        (Some(table), _) => format!("the route ConfigMap holds route table {}", table.digest),
        (None, Some(digest)) => format!("the last route table {digest} keeps serving"),
        (None, None) => "no route table has been written".to_owned(),
    }
}

fn programmed(seen: &Observation<'_>, previous: Option<&ProxyStatus>) -> Condition {
    if seen.problems.is_empty()
        && let Some(blocked) = seen.blocked
    {
        let message = match blocked {
            Blocked::NameConflict(conflicts) => {
                let names: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
                format!(
                    "{}; nothing is applied while an object with a name this resource needs \
                         belongs to something else: delete or rename it, or rename this \
                         resource; {}",
                    names.join("; "),
                    served_table(seen, previous)
                )
            }
            Blocked::Refused(refusal) => format!(
                "{refusal}; it and the objects after it are tried again when the resource changes \
                 or in 5 minutes; {}",
                served_table(seen, previous)
            ),
        };
        return condition(
            PROGRAMMED,
            false,
            blocked.reason(),
            message,
            seen.generation,
        );
    }
    match seen.table {
        Some(table) => {
            // Not asked: as good as no replica being ready.
            let serving = seen
                .serving
                .cloned()
                .unwrap_or_else(|| summarize(&table.digest, &[]));
            let verdict = serving.verdict();
            condition(
                PROGRAMMED,
                verdict == Verdict::Serving,
                verdict.reason(),
                serving.message(table.routes),
                seen.generation,
            )
        }
        None => {
            let served = previous.and_then(|p| p.route_table_digest.as_deref());
            let message = match served {
                Some(digest) => format!(
                    "the spec is not accepted; the last accepted route table {digest} keeps serving"
                ),
                None => "the spec is not accepted; no route table has been written".to_owned(),
            };
            condition(PROGRAMMED, false, "NotAccepted", message, seen.generation)
        }
    }
}

fn ready(seen: &Observation<'_>) -> Condition {
    let Some(deployment) = seen.deployment else {
        return condition(
            READY,
            false,
            "DeploymentMissing",
            "the proxy Deployment does not exist".to_owned(),
            seen.generation,
        );
    };
    let status = deployment.status.clone().unwrap_or_default();
    let available = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Available" && c.status == "True");
    let counts = format!(
        "{}/{} proxy replicas ready",
        status.ready_replicas.unwrap_or(0),
        status.replicas.unwrap_or(0)
    );
    if available {
        condition(READY, true, "Available", counts, seen.generation)
    } else {
        condition(
            READY,
            false,
            "DeploymentUnavailable",
            format!("the proxy Deployment is not available: {counts}"),
            seen.generation,
        )
    }
}

/// Per-contract digest and route count of a table.
pub fn contract_statuses(table: &RouteTable) -> Vec<ServedContract> {
    let mut contracts: BTreeMap<&str, Vec<&gatehouse_api::route_table::RouteEntry>> =
        BTreeMap::new();
    for route in &table.routes {
        if let Some(version) = &route.contract {
            contracts.entry(version).or_default().push(route);
        }
    }
    contracts
        .into_iter()
        .map(|(version, routes)| ServedContract {
            version: version.to_owned(),
            digest: digest_of(&serde_json::to_vec(&routes).unwrap_or_default()),
            routes: i32::try_from(routes.len()).unwrap_or(i32::MAX),
        })
        .collect()
}

/// The status to report. Routes, digest and contracts describe the table being served: with an
/// invalid spec they stay those of the last accepted table.
pub fn compute_status(
    previous: Option<&ProxyStatus>,
    seen: &Observation<'_>,
    now: Timestamp,
) -> ProxyStatus {
    let conditions = [
        accepted(seen),
        resolved_refs(seen),
        programmed(seen, previous),
        ready(seen),
    ]
    .into_iter()
    .map(|c| {
        let before = previous
            .map(|p| p.conditions.as_slice())
            .unwrap_or_default();
        with_transition_time(c, before, now)
    })
    .collect();
    let deployment_status = seen.deployment.and_then(|d| d.status.as_ref());
    let (routes, route_table_digest, contracts) = match seen.table {
        Some(table) => (
            Some(i32::try_from(table.routes).unwrap_or(i32::MAX)),
            Some(table.digest.clone()),
            table.contracts.clone(),
        ),
        None => (
            previous.and_then(|p| p.routes),
            previous.and_then(|p| p.route_table_digest.clone()),
            previous.map(|p| p.contracts.clone()).unwrap_or_default(),
        ),
    };
    // Like the routes: those of the table being served.
    let exposed_contracts = match seen.exposure {
        Some(exposure) => exposure.exposed.clone(),
        None => previous
            .map(|p| p.exposed_contracts.clone())
            .unwrap_or_default(),
    };
    ProxyStatus {
        observed_generation: seen.generation,
        conditions,
        replicas: Some(deployment_status.and_then(|s| s.replicas).unwrap_or(0)),
        ready_replicas: Some(
            deployment_status
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
        ),
        address: Some(seen.address.to_owned()),
        routes,
        route_table_digest,
        contracts,
        exposed_contracts,
        proxies: seen.serving.map(|serving| serving.counts),
        usage: seen.usage.to_vec(),
    }
}

/// Keeps the previous `lastTransitionTime` when the status did not flip; `now` otherwise.
pub(crate) fn with_transition_time(
    mut condition: Condition,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let before = previous.iter().find(|c| c.type_ == condition.type_);
    condition.last_transition_time = match before {
        Some(before) if before.status == condition.status => before.last_transition_time.clone(),
        _ => Time(now),
    };
    condition
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(problems: &'a [Problem], missing: &'a [MissingRef]) -> Observation<'a> {
        Observation {
            generation: Some(3),
            problems,
            missing,
            table: None,
            blocked: None,
            exposure: None,
            serving: None,
            deployment: None,
            address: "public-gateway.shop.svc.cluster.local:80",
            usage: &[],
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn find<'a>(status: &'a ProxyStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn transition_time_is_kept_unless_the_status_flips() {
        let problems = [Problem::new("spec.contracts[0]", "broken")];
        let first = compute_status(None, &seen(&problems, &[]), at(100));
        assert_eq!(find(&first, ACCEPTED).last_transition_time, Time(at(100)));

        let same = compute_status(Some(&first), &seen(&problems, &[]), at(200));
        assert_eq!(same, first, "same facts, same status: nothing to patch");

        let fixed = compute_status(Some(&first), &seen(&[], &[]), at(300));
        assert_eq!(find(&fixed, ACCEPTED).status, "True");
        assert_eq!(find(&fixed, ACCEPTED).last_transition_time, Time(at(300)));
        assert_eq!(
            find(&fixed, READY).last_transition_time,
            Time(at(100)),
            "Ready stayed False"
        );
    }

    #[test]
    fn invalid_spec_reports_every_problem_and_keeps_the_served_table() {
        let previous = ProxyStatus {
            route_table_digest: Some("sha256:old".to_owned()),
            routes: Some(4),
            ..ProxyStatus::default()
        };
        let problems = [
            Problem::new("spec.a", "first"),
            Problem::new("spec.b", "second"),
        ];
        let status = compute_status(Some(&previous), &seen(&problems, &[]), at(1));
        let accepted = find(&status, ACCEPTED);
        assert_eq!(
            (accepted.status.as_str(), accepted.reason.as_str()),
            ("False", "Invalid")
        );
        assert_eq!(accepted.message, "spec.a: first; spec.b: second");
        assert_eq!(status.route_table_digest.as_deref(), Some("sha256:old"));
        assert_eq!(status.routes, Some(4));
        assert!(find(&status, PROGRAMMED).message.contains("sha256:old"));
    }

    #[test]
    fn missing_references_are_named() {
        let missing = [
            MissingRef::Service("catalog".to_owned()),
            MissingRef::Aggregator("product-page".to_owned()),
        ];
        let status = compute_status(None, &seen(&[], &missing), at(1));
        let resolved = find(&status, RESOLVED_REFS);
        assert_eq!(resolved.status, "False");
        assert!(resolved.message.contains("Service \"catalog\" not found"));
        assert!(
            resolved
                .message
                .contains("Aggregator \"product-page\" not found")
        );
    }

    #[test]
    fn a_blocked_apply_says_why_and_which_table_serves() {
        use crate::controller::apply::Refusal;
        use crate::controller::ownership::Conflict;

        let previous = ProxyStatus {
            route_table_digest: Some("sha256:old".to_owned()),
            ..ProxyStatus::default()
        };
        let conflict = Blocked::NameConflict(vec![Conflict {
            kind: "Service".to_owned(),
            namespace: "shop".to_owned(),
            name: "public-gateway".to_owned(),
            controller: None,
        }]);
        let blocked = Observation {
            blocked: Some(&conflict),
            ..seen(&[], &[])
        };
        let status = compute_status(Some(&previous), &blocked, at(1));
        let programmed = find(&status, PROGRAMMED);
        assert_eq!(
            (programmed.status.as_str(), programmed.reason.as_str()),
            ("False", "NameConflict")
        );
        assert!(
            programmed.message.starts_with(
                "Service shop/public-gateway already exists and no controller owns it; nothing is \
                 applied"
            ) && programmed
                .message
                .ends_with("the last route table sha256:old keeps serving"),
            "{}",
            programmed.message
        );
        assert_eq!(find(&status, ACCEPTED).status, "True");
        assert_eq!(status.route_table_digest.as_deref(), Some("sha256:old"));

        let refused = Blocked::Refused(Refusal {
            kind: "Deployment".to_owned(),
            namespace: "shop".to_owned(),
            name: "public-gateway".to_owned(),
            code: 422,
            reason: "Invalid".to_owned(),
            message: "spec.template: bad".to_owned(),
        });
        let status = compute_status(
            None,
            &Observation {
                blocked: Some(&refused),
                ..seen(&[], &[])
            },
            at(1),
        );
        let programmed = find(&status, PROGRAMMED);
        assert_eq!(programmed.reason, "ApplyFailed");
        assert_eq!(programmed.observed_generation, Some(3));
        assert!(
            programmed.message.starts_with(
                "the API server refused Deployment shop/public-gateway (422 Invalid): \
                 spec.template: bad;"
            ),
            "{}",
            programmed.message
        );

        // An invalid spec is reported as such, whatever else happened.
        let problems = [Problem::new("spec", "broken")];
        let status = compute_status(
            None,
            &Observation {
                blocked: Some(&refused),
                ..seen(&problems, &[])
            },
            at(1),
        );
        assert_eq!(find(&status, PROGRAMMED).reason, "NotAccepted");
    }

    #[test]
    fn programmed_is_what_the_ready_replicas_serve() {
        use crate::controller::agreement::{Answer, ConfigReport};

        let table = RouteTable::empty(gatehouse_api::route_table::TableSource {
            kind: "Gateway".to_owned(),
            namespace: "shop".to_owned(),
            name: "public".to_owned(),
            generation: Some(3),
        });
        let table = TableInPlace::of(&table, None);
        let digest = table.digest.clone();
        let answer = |replica: &str, serves: &str| Answer {
            replica: replica.to_owned(),
            report: Ok(ConfigReport {
                digest: Some(serves.to_owned()),
                refused: None,
            }),
        };
        let programmed_with = |previous, serving, seconds| {
            let seen = Observation {
                table: Some(&table),
                serving,
                ..seen(&[], &[])
            };
            compute_status(previous, &seen, at(seconds))
        };
        let lagging = summarize(&digest, &[answer("a", &digest), answer("b", "sha256:old")]);
        let status = programmed_with(None, Some(&lagging), 1);
        let programmed = find(&status, PROGRAMMED);
        assert_eq!(
            (programmed.status.as_str(), programmed.reason.as_str()),
            ("False", "Pending")
        );
        assert_eq!(
            programmed.message,
            format!(
                "1 of 2 ready replicas serves route table {digest} (0 routes); 1 still serves \
                 sha256:old"
            )
        );
        assert_eq!(status.proxies, Some(lagging.counts));

        let agreed = summarize(&digest, &[answer("a", &digest), answer("b", &digest)]);
        let status = programmed_with(Some(&status), Some(&agreed), 2);
        let programmed = find(&status, PROGRAMMED);
        assert_eq!(
            (programmed.status.as_str(), programmed.reason.as_str()),
            ("True", "Programmed")
        );
        assert_eq!(programmed.last_transition_time, Time(at(2)));

        // Nobody asked (no digest to ask about) reads as no replica ready.
        let status = programmed_with(None, None, 1);
        assert!(
            find(&status, PROGRAMMED)
                .message
                .ends_with("no ready replica serves it yet")
        );
        assert_eq!(status.proxies, None);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let problems = [Problem::new("spec", "é".repeat(40_000))];
        let status = compute_status(None, &seen(&problems, &[]), at(1));
        let message = &find(&status, ACCEPTED).message;
        assert!(message.len() <= MAX_MESSAGE && message.ends_with("..."));
    }
}
