//! contracts: the Contracts and ContractGrants the Gateways and EdgeServices may expose, kept
//! in reflector stores by one watch each (no API call per reconcile), and which exposers a
//! change of either concerns.
//!
//! Each watch hands an object to its subscribers after its store holds the change, so a
//! reconcile that a change triggers compiles against the catalog with that change in it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, future};
use gatehouse_api::compile::ContractCache;
use gatehouse_api::crd::{Contract, ContractGrant, ProxyStatus};
use gatehouse_api::exposure::{self, Catalog};
use gatehouse_api::resource::Resource;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tracing::{debug, warn};

use super::scoped;

/// Changes one subscriber may hold back before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;

/// The Contracts and ContractGrants there are (of the watched namespace, or all of them).
#[derive(Clone)]
pub struct ContractStores {
    /// Every Contract.
    pub contracts: Store<Contract>,
    /// Every ContractGrant.
    pub grants: Store<ContractGrant>,
}

impl Default for ContractStores {
    /// Stores that hold nothing and are never filled (tests, and kinds that expose nothing).
    fn default() -> Self {
        Self {
            contracts: reflector::store().0,
            grants: reflector::store().0,
        }
    }
}

impl ContractStores {
    /// What the stores hold now, as the catalog a compile resolves `expose` against.
    pub fn catalog(&self) -> Arc<Catalog> {
        Arc::new(Catalog::new(self.contracts.state(), self.grants.state()))
    }

    /// Resolves once both stores hold their first list.
    pub async fn wait_until_ready(&self) {
        let (contracts, grants) = future::join(
            self.contracts.wait_until_ready(),
            self.grants.wait_until_ready(),
        )
        .await;
        if contracts.is_err() || grants.is_err() {
            warn!("a Contract or ContractGrant store was dropped before its first list");
        }
    }
}

/// One controller's subscription to the two watches: every Contract and ContractGrant created,
/// changed or deleted (as it was), each after the stores took the change in.
pub struct ContractSubscription {
    /// Contracts.
    pub contracts: mpsc::Receiver<Contract>,
    /// ContractGrants.
    pub grants: mpsc::Receiver<ContractGrant>,
}

/// The stores, `subscribers` subscriptions to them, the Contract status controller's stream of
/// Contracts, and the task that keeps them current (run it while the controllers run). Managed
/// fields are dropped: nothing reads them.
///
/// Not kube's shared reflector: its subscribers never see a deletion, and a deleted Contract
/// must leave the tables that serve it.
pub fn watch_contracts(
    client: &Client,
    namespace: Option<&str>,
    subscribers: usize,
) -> (
    ContractStores,
    Vec<ContractSubscription>,
    mpsc::Receiver<Contract>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (contracts, contract_writer) = reflector::store();
    let (grants, grant_writer) = reflector::store();
    // The Contract status controller's: Contracts only.
    let (status_sender, status_changes) = mpsc::channel(SUBSCRIBER_BUFFER);
    let (mut contract_senders, mut grant_senders) = (vec![status_sender], Vec::new());
    let mut handles = Vec::new();
    for _ in 0..subscribers {
        let (contract_sender, contracts) = mpsc::channel(SUBSCRIBER_BUFFER);
        let (grant_sender, grants) = mpsc::channel(SUBSCRIBER_BUFFER);
        contract_senders.push(contract_sender);
        grant_senders.push(grant_sender);
        handles.push(ContractSubscription { contracts, grants });
    }
    let contract_events = fan_out(
        watcher(scoped::<Contract>(client, namespace), Default::default()),
        contract_writer,
        contract_senders,
        "Contract",
    );
    let grant_events = fan_out(
        watcher(
            scoped::<ContractGrant>(client, namespace),
            Default::default(),
        ),
        grant_writer,
        grant_senders,
        "ContractGrant",
    );
    let task = async move {
        future::join(contract_events, grant_events).await;
    };
    (
        ContractStores { contracts, grants },
        handles,
        status_changes,
        task,
    )
}

/// Keeps `writer`'s store current from `events`, then hands each object touched to every
/// sender (which ends the watch only when the controllers are gone).
async fn fan_out<K>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    writer: reflector::store::Writer<K>,
    senders: Vec<mpsc::Sender<K>>,
    kind: &'static str,
) where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let events = events
        .default_backoff()
        .modify(|object| object.managed_fields_mut().clear())
        .reflect(writer);
    futures::pin_mut!(events);
    let mut senders = senders;
    // What each object's last change handed over was: a change of its status alone (the
    // Contract status controller's own writes) concerns nobody.
    let mut seen: HashMap<ObjectRef<K>, Shape> = HashMap::new();
    while let Some(event) = events.next().await {
        let object = match event {
            Ok(watcher::Event::Delete(object)) => {
                seen.remove(&ObjectRef::from_obj(&object));
                object
            }
            // A new list, too: whatever it changed may concern anyone.
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                let shape = Shape::of(object.meta());
                match seen.insert(ObjectRef::from_obj(&object), shape.clone()) {
                    Some(before) if before == shape => continue,
                    _ => object,
                }
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
            Err(error) => {
                warn!(%error, "{kind} watch");
                continue;
            }
        };
        for sender in &mut senders {
            if sender.send(object.clone()).await.is_err() {
                debug!("a controller stopped taking {kind} changes");
            }
        }
    }
}

/// What a change must touch to concern anyone: the spec (its generation) or the labels.
#[derive(Clone, PartialEq)]
struct Shape {
    generation: Option<i64>,
    labels: Option<std::collections::BTreeMap<String, String>>,
}

impl Shape {
    fn of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Self {
        Self {
            generation: meta.generation,
            labels: meta.labels.clone(),
        }
    }
}

/// What the last compile of each exposing resource made of its Contracts, by resource key, so
/// that the next compile takes the unchanged ones from it ([`gatehouse_api::compile::ContractCache`]).
/// Memory only: after a restart the first compile of each resource does all the work.
#[derive(Default)]
pub struct LastCompiles {
    by_resource: std::sync::Mutex<HashMap<String, Arc<ContractCache>>>,
}

impl LastCompiles {
    /// What the last compile of `key` left, if any.
    pub fn contracts(&self, key: &str) -> Option<Arc<ContractCache>> {
        self.lock().get(key).cloned()
    }

    /// Keeps what the compile of `key` whose table was applied made of its Contracts.
    pub fn remember(&self, key: &str, contracts: ContractCache) {
        self.lock().insert(key.to_owned(), Arc::new(contracts));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ContractCache>>> {
        // A poisoned map is still a cache: a stale entry only costs a compile.
        self.by_resource
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a change of `contract` concerns `resource` (whose status is `status`): its `expose`
/// picks the Contract as it is now (a deleted Contract arrives as it was), or it serves the
/// Contract by an older pick (the labels that matched are gone).
pub fn concerns_contract(
    resource: &Resource,
    status: Option<&ProxyStatus>,
    contract: &Contract,
) -> bool {
    let namespace = contract.namespace().unwrap_or_default();
    let name = contract.name_any();
    exposure::picks(resource.expose(), resource.namespace(), &contract.metadata)
        || status.is_some_and(|status| {
            status
                .exposed_contracts
                .iter()
                .any(|e| e.namespace == namespace && e.name == name)
        })
}

/// Whether a change of a ContractGrant of `namespace` concerns `resource`: it exposes
/// Contracts of that namespace, another than its own.
pub fn concerns_grant(resource: &Resource, namespace: &str) -> bool {
    exposure::reaches_into(resource.expose(), resource.namespace(), namespace)
}

#[cfg(test)]
mod tests {
    use gatehouse_api::crd::{ExposedContract, ExposureState};

    use super::*;

    fn gateway(expose: &str) -> Resource {
        let yaml = format!(
            "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge, namespace: shop}}\nspec:\n  expose: {expose}\n"
        );
        Resource::from_yaml(&yaml).unwrap().remove(0)
    }

    fn contract(namespace: &str, name: &str, labels: &str) -> Contract {
        let yaml = format!(
            "apiVersion: gatehouse.dev/v1alpha1\nkind: Contract\nmetadata: {{name: {name}, namespace: {namespace}, labels: {labels}}}\nspec: {{versions: [{{version: v1, basePath: /v1, routes: [{{name: r, match: {{path: /r}}, backend: {{service: s, port: 80}}}}]}}]}}\n"
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    #[test]
    fn a_contract_concerns_who_picks_it_now_and_who_serves_it_from_an_older_pick() {
        let by_label = gateway("[{selector: {matchLabels: {audience: public}}}]");
        let public = contract("shop", "orders", "{audience: public}");
        let relabelled = contract("shop", "orders", "{audience: internal}");
        assert!(concerns_contract(&by_label, None, &public));
        assert!(!concerns_contract(&by_label, None, &relabelled));
        // Its labels no longer match, but the Gateway still serves it: it must drop it.
        let status = ProxyStatus {
            exposed_contracts: vec![ExposedContract {
                namespace: "shop".to_owned(),
                name: "orders".to_owned(),
                versions: vec!["v1".to_owned()],
                state: ExposureState::Served,
                reason: None,
                message: None,
                served_generation: Some(1),
            }],
            ..ProxyStatus::default()
        };
        assert!(concerns_contract(&by_label, Some(&status), &relabelled));
        assert!(!concerns_contract(
            &by_label,
            Some(&status),
            &contract("billing", "orders", "{}")
        ));

        let foreign = gateway("[{contract: payments, namespace: billing}]");
        assert!(concerns_grant(&foreign, "billing"));
        assert!(!concerns_grant(&foreign, "shop"));
        assert!(!concerns_grant(&by_label, "billing"));
    }
}
