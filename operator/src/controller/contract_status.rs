//! contract_status: a Contract's own status — whether it is valid on its own (`Accepted`) and
//! which Gateways and EdgeServices expose it, with how each fared (`exposedBy`, copied from
//! their `status.exposedContracts`) — computed from the stores, written only when it changed.
//!
//! Its controller reconciles a Contract when its spec or labels change and when an exposer's
//! status that names it (now or before) changes: the exposer watches hand over every Gateway
//! and EdgeService they take in ([`nudges_for`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use gatehouse_api::crd::{
    Contract, ContractExposer, ContractStatus, EdgeService, ExposedContract, ExposureState,
    Gateway, ProxyStatus,
};
use gatehouse_api::usage::VersionUsage;
use gatehouse_api::validate::{join, validate_contract};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use super::context::Clock;
use super::status::{ACCEPTED, condition, with_transition_time};
use crate::FIELD_MANAGER;

/// The reason of a change that breaks a published version.
const BREAKING_CHANGE: &str = "BreakingChange";
/// The reason of a retirement of a version clients still call.
const VERSION_IN_USE: &str = "VersionInUse";

/// A Contract is looked at again after this long even if nothing happened.
const RESYNC: Duration = Duration::from_secs(600);
/// After a failed status write.
const RETRY: Duration = Duration::from_secs(5);

/// One exposer as the store holds it: its kind, metadata and status.
pub struct ExposerView<'a> {
    /// `Gateway` or `EdgeService`.
    pub kind: &'static str,
    /// Its metadata.
    pub metadata: &'a ObjectMeta,
    /// Its status, if written.
    pub status: Option<&'a ProxyStatus>,
}

/// The status Contract `contract` should have, given every exposer there is. Pure.
pub fn contract_status<'a>(
    contract: &Contract,
    exposers: impl IntoIterator<Item = ExposerView<'a>>,
    now: Timestamp,
) -> ContractStatus {
    let namespace = contract.namespace().unwrap_or_default();
    let name = contract.name_any();
    let generation = contract.metadata.generation;
    let problems = validate_contract(&contract.spec);
    let accepted = if problems.is_empty() {
        condition(
            ACCEPTED,
            true,
            "Accepted",
            "the contract is valid".to_owned(),
            generation,
        )
    } else {
        condition(ACCEPTED, false, "Invalid", join(&problems), generation)
    };
    let before = contract
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let mut exposed_by: Vec<ContractExposer> = exposers
        .into_iter()
        .filter_map(|exposer| {
            let entry = exposer
                .status?
                .exposed_contracts
                .iter()
                .find(|e| e.namespace == namespace && e.name == name)?;
            let usage = exposer
                .status
                .map(|s| s.usage.as_slice())
                .unwrap_or_default();
            Some(exposer_entry(exposer.kind, exposer.metadata, entry, usage))
        })
        .collect();
    exposed_by
        .sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    // Valid on its own, it may still break what an exposer serves of it, or retire a version
    // its clients still call: that exposer keeps serving the last good generation and says why.
    let refusing = |reason: &'static str| {
        let by: Vec<String> = exposed_by
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| {
                format!(
                    "{} {}/{}: {}",
                    e.kind,
                    e.namespace,
                    e.name,
                    e.message.as_deref().unwrap_or_default()
                )
            })
            .collect();
        (!by.is_empty()).then(|| (reason, by.join("; ")))
    };
    let refused = refusing(BREAKING_CHANGE).or_else(|| refusing(VERSION_IN_USE));
    let accepted = match refused {
        Some((reason, message)) if problems.is_empty() => {
            condition(ACCEPTED, false, reason, message, generation)
        }
        _ => accepted,
    };
    let current = exposed_by
        .iter()
        .filter(|e| e.state == ExposureState::Served && e.served_generation == generation)
        .count();
    ContractStatus {
        observed_generation: generation,
        conditions: vec![with_transition_time(accepted, before, now)],
        exposed_by,
        exposed_count: Some(i32::try_from(current).unwrap_or(i32::MAX)),
        versions: Some(
            contract
                .spec
                .versions
                .iter()
                .map(|v| v.version.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    }
}

/// `exposer` as the Contract's status names it, with its clients' calls of the Contract (of
/// `usage`, the exposer's).
fn exposer_entry(
    kind: &str,
    metadata: &ObjectMeta,
    entry: &ExposedContract,
    usage: &[VersionUsage],
) -> ContractExposer {
    let contract = format!("{}/{}", entry.namespace, entry.name);
    ContractExposer {
        usage: usage
            .iter()
            .filter(|u| u.contract.as_deref() == Some(contract.as_str()))
            .map(|u| VersionUsage {
                contract: None,
                ..u.clone()
            })
            .collect(),
        kind: kind.to_owned(),
        namespace: metadata.namespace.clone().unwrap_or_default(),
        name: metadata.name.clone().unwrap_or_default(),
        versions: entry.versions.clone(),
        state: entry.state,
        reason: entry.reason.clone(),
        message: entry.message.clone(),
        served_generation: entry.served_generation,
    }
}

/// The Contracts whose status a change of an exposer (`kind`, `metadata`, `status`) may change:
/// those its status names, and those whose status names it.
pub fn nudges_for(
    kind: &str,
    metadata: &ObjectMeta,
    status: Option<&ProxyStatus>,
    contracts: &Store<Contract>,
) -> Vec<ObjectRef<Contract>> {
    let mut refs: Vec<ObjectRef<Contract>> = status
        .map(|s| s.exposed_contracts.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|e| ObjectRef::new(&e.name).within(&e.namespace))
        .collect();
    let namespace = metadata.namespace.as_deref().unwrap_or_default();
    let name = metadata.name.as_deref().unwrap_or_default();
    for contract in contracts.state() {
        let named = contract.status.as_ref().is_some_and(|s| {
            s.exposed_by
                .iter()
                .any(|e| e.kind == kind && e.namespace == namespace && e.name == name)
        });
        if named {
            refs.push(ObjectRef::from_obj(contract.as_ref()));
        }
    }
    refs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    refs.dedup();
    refs
}

/// What the Contract status controller reads.
pub struct ContractStatusContext {
    /// The API client.
    pub client: Client,
    /// Condition timestamps.
    pub clock: Clock,
    /// The Gateways there are.
    pub gateways: Store<Gateway>,
    /// The EdgeServices there are.
    pub edges: Store<EdgeService>,
}

/// The status the stores say `contract` should have.
fn desired(contract: &Contract, ctx: &ContractStatusContext) -> ContractStatus {
    let gateways = ctx.gateways.state();
    let edges = ctx.edges.state();
    let exposers = gateways
        .iter()
        .map(|g| ExposerView {
            kind: "Gateway",
            metadata: &g.metadata,
            status: g.status.as_ref(),
        })
        .chain(edges.iter().map(|e| ExposerView {
            kind: "EdgeService",
            metadata: &e.metadata,
            status: e.status.as_ref(),
        }));
    contract_status(contract, exposers, ctx.clock.now())
}

/// Writes the Contract's status when the stores say it differs from what it has.
pub async fn reconcile_contract(
    contract: Arc<Contract>,
    ctx: Arc<ContractStatusContext>,
) -> Result<Action, kube::Error> {
    let next = desired(&contract, &ctx);
    if contract.status.as_ref() == Some(&next) {
        return Ok(Action::requeue(RESYNC));
    }
    let namespace = contract.namespace().unwrap_or_default();
    let name = contract.name_any();
    let api: Api<Contract> = Api::namespaced(ctx.client.clone(), &namespace);
    let body = json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "Contract",
        "status": next,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    info!(
        contract = %format!("{namespace}/{name}"),
        exposed_by = next.exposed_by.len(),
        exposed_count = next.exposed_count.unwrap_or_default(),
        "Contract status written"
    );
    Ok(Action::requeue(RESYNC))
}

fn retry(contract: Arc<Contract>, error: &kube::Error, _: Arc<ContractStatusContext>) -> Action {
    warn!(contract = %contract.name_any(), %error, "Contract status write failed");
    Action::requeue(RETRY)
}

/// Runs the Contract status controller until `shutdown` resolves: `changes` are the Contracts
/// whose spec or labels changed (after `contracts` holds them), `nudges` the Contracts an
/// exposer's change concerns.
pub async fn run_contract_status(
    contracts: Store<Contract>,
    changes: mpsc::Receiver<Contract>,
    nudges: mpsc::UnboundedReceiver<ObjectRef<Contract>>,
    ctx: Arc<ContractStatusContext>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let changes = changes.map(Ok::<_, watcher::Error>);
    Controller::for_stream(changes, contracts)
        .reconcile_on(nudges)
        .graceful_shutdown_on(shutdown)
        .run(reconcile_contract, retry, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                debug!(%error, "Contract status controller");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(generation: i64) -> Contract {
        let yaml = format!(
            "apiVersion: gatehouse.dev/v1alpha1\nkind: Contract\nmetadata: {{name: orders, namespace: shop, generation: {generation}}}\nspec:\n  versions:\n    - version: v1\n      routes: [{{name: r, match: {{path: /r}}, backend: {{service: s, port: 80}}}}]\n    - version: v2beta1\n      routes: [{{name: r, match: {{path: /r}}, backend: {{service: s, port: 80}}}}]\n"
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    fn meta(namespace: &str, name: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(namespace.to_owned()),
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        }
    }

    fn exposing(state: ExposureState, generation: i64, reason: Option<&str>) -> ProxyStatus {
        ProxyStatus {
            exposed_contracts: vec![ExposedContract {
                namespace: "shop".to_owned(),
                name: "orders".to_owned(),
                versions: vec!["v1".to_owned()],
                state,
                reason: reason.map(str::to_owned),
                message: reason.map(|r| format!("{r}: details")),
                served_generation: Some(generation),
            }],
            ..ProxyStatus::default()
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn each_exposer_says_who_of_its_clients_called_which_version_of_the_contract() {
        let call = |contract: Option<&str>, version: &str, client: &str| VersionUsage {
            contract: contract.map(str::to_owned),
            version: version.to_owned(),
            client: Some(client.to_owned()),
            last_call: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(600)),
        };
        let mut status = exposing(ExposureState::Served, 1, None);
        status.usage = vec![
            call(Some("shop/orders"), "v1", "mobile"),
            call(Some("shop/catalog"), "v1", "mobile"),
            call(None, "v1", "web"),
        ];
        let web = meta("shop", "web");
        let view = ExposerView {
            kind: "Gateway",
            metadata: &web,
            status: Some(&status),
        };
        let contract_status = contract_status(&contract(1), [view], at(700));
        assert_eq!(
            contract_status.exposed_by[0].usage,
            [call(None, "v1", "mobile")],
            "only this Contract's calls, by the exposer's clients"
        );
    }

    #[test]
    fn exposers_are_listed_with_how_each_serves_the_contract() {
        let served = exposing(ExposureState::Served, 2, None);
        let kept = exposing(ExposureState::LastGoodServed, 1, Some("UnknownClient"));
        let other = ProxyStatus::default();
        let (web, mobile, public) = (
            meta("shop", "web"),
            meta("shop", "mobile"),
            meta("edge", "a"),
        );
        let status = contract_status(
            &contract(2),
            [
                ExposerView {
                    kind: "Gateway",
                    metadata: &web,
                    status: Some(&served),
                },
                ExposerView {
                    kind: "EdgeService",
                    metadata: &mobile,
                    status: Some(&kept),
                },
                ExposerView {
                    kind: "Gateway",
                    metadata: &public,
                    status: Some(&other),
                },
                ExposerView {
                    kind: "Gateway",
                    metadata: &public,
                    status: None,
                },
            ],
            at(1),
        );
        let listed: Vec<(&str, &str, ExposureState, Option<i64>)> = status
            .exposed_by
            .iter()
            .map(|e| {
                (
                    e.kind.as_str(),
                    e.name.as_str(),
                    e.state,
                    e.served_generation,
                )
            })
            .collect();
        assert_eq!(
            listed,
            [
                (
                    "EdgeService",
                    "mobile",
                    ExposureState::LastGoodServed,
                    Some(1)
                ),
                ("Gateway", "web", ExposureState::Served, Some(2)),
            ]
        );
        assert_eq!(
            status.exposed_by[0].reason.as_deref(),
            Some("UnknownClient")
        );
        // `kubectl get` shows every version, not only the first.
        assert_eq!(status.versions.as_deref(), Some("v1,v2beta1"));
        // Only the one serving this generation counts.
        assert_eq!(status.exposed_count, Some(1));
        assert_eq!(status.observed_generation, Some(2));
        let accepted = &status.conditions[0];
        assert_eq!(
            (accepted.type_.as_str(), accepted.status.as_str()),
            ("Accepted", "True")
        );
    }

    #[test]
    fn a_contract_that_breaks_what_an_exposer_serves_is_not_accepted_and_says_where() {
        let kept = exposing(ExposureState::LastGoodServed, 1, Some("BreakingChange"));
        let served = exposing(ExposureState::Served, 2, None);
        let (web, mobile) = (meta("shop", "web"), meta("shop", "mobile"));
        let view = |kind, metadata, status| ExposerView {
            kind,
            metadata,
            status: Some(status),
        };
        let status = contract_status(
            &contract(2),
            [
                view("Gateway", &web, &kept),
                view("EdgeService", &mobile, &served),
            ],
            at(1),
        );
        let accepted = &status.conditions[0];
        assert_eq!(
            (
                accepted.status.as_str(),
                accepted.reason.as_str(),
                accepted.message.as_str()
            ),
            (
                "False",
                "BreakingChange",
                "Gateway shop/web: BreakingChange: details"
            )
        );
        // Once no exposer reports a break, it is accepted again.
        let status = contract_status(&contract(2), [view("Gateway", &web, &served)], at(2));
        assert_eq!(status.conditions[0].reason, "Accepted");
    }

    #[test]
    fn an_invalid_contract_says_why_and_keeps_its_transition_time_while_it_stays_so() {
        let mut invalid: Contract = serde_saphyr::from_str(include_str!(
            "../../../examples/not-accepted/contract-shadowed-route.yaml"
        ))
        .unwrap();
        invalid.metadata.generation = Some(3);
        let first = contract_status(&invalid, [], at(1));
        let accepted = &first.conditions[0];
        assert_eq!(
            (accepted.status.as_str(), accepted.reason.as_str()),
            ("False", "Invalid")
        );
        assert_eq!(
            accepted.message,
            "spec.versions[1].routes[0].match: route v2/product matches exactly the same \
             requests as route v1/product, so it would never be served"
        );
        assert_eq!(first.exposed_count, Some(0));
        invalid.status = Some(first.clone());
        // The same facts later: the same status, so nothing is written.
        assert_eq!(contract_status(&invalid, [], at(50)), first);
    }

    #[test]
    fn an_exposer_s_change_nudges_the_contracts_it_names_now_and_before() {
        let (store, mut writer) = kube::runtime::reflector::store::<Contract>();
        let mut before = contract(1);
        before.status = Some(ContractStatus {
            exposed_by: vec![exposer_entry(
                "Gateway",
                &meta("shop", "web"),
                &exposing(ExposureState::Served, 1, None).exposed_contracts[0],
                &[],
            )],
            ..ContractStatus::default()
        });
        writer.apply_watcher_event(&watcher::Event::Apply(before));
        let names = |refs: Vec<ObjectRef<Contract>>| -> Vec<String> {
            refs.iter()
                .map(|r| format!("{}/{}", r.namespace.clone().unwrap_or_default(), r.name))
                .collect()
        };
        // It no longer lists orders, but orders still lists it.
        assert_eq!(
            names(nudges_for("Gateway", &meta("shop", "web"), None, &store)),
            ["shop/orders"]
        );
        // Another exposer listing it.
        let listing = exposing(ExposureState::Served, 1, None);
        assert_eq!(
            names(nudges_for(
                "EdgeService",
                &meta("shop", "web"),
                Some(&listing),
                &store
            )),
            ["shop/orders"]
        );
        assert!(nudges_for("EdgeService", &meta("shop", "web"), None, &store).is_empty());
    }
}
