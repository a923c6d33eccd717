//! The controllers: one `kube-runtime` Controller per kind, all running the same generic
//! [`reconcile::reconcile`], each owning the proxy objects and watching what its resources
//! reference.

pub mod agreement;
pub mod apply;
pub mod backoff;
pub mod context;
pub mod contract_status;
pub mod contracts;
pub mod dereference;
pub mod events;
pub mod own_writes;
pub mod ownership;
pub mod reconcile;
pub mod replicas;
pub mod status;
pub mod status_writer;
pub mod usage;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, future};
use gatehouse_api::crd::{Aggregator, Contract, ContractGrant, EdgeService, Gateway, ProxyStatus};
use gatehouse_api::resource::Resource;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, ReflectHandle, Store, store::Writer};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::runtime::{Predicate, predicates};
use kube::{Api, Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use gatehouse_api::naming::proxy_name;

use crate::objects::MANAGED_BY_SELECTOR;
use crate::references::References;
use context::Context;
use contracts::ContractSubscription;

/// What the generic controller needs from a Gatehouse kind.
pub trait ProxyResource:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// True when resources of this kind may route to Aggregators.
    const ROUTES_TO_AGGREGATORS: bool;
    /// True when resources of this kind may declare an HTTPS listener (certificate Secrets).
    const TERMINATES_TLS: bool;
    /// True when resources of this kind may expose Contract resources.
    const EXPOSES_CONTRACTS: bool;
    /// The resource as the API crate's [`Resource`].
    fn to_resource(&self) -> Resource;
    /// The current status.
    fn proxy_status(&self) -> Option<&ProxyStatus>;
}

impl ProxyResource for Gateway {
    const ROUTES_TO_AGGREGATORS: bool = true;
    const TERMINATES_TLS: bool = true;
    const EXPOSES_CONTRACTS: bool = true;
    fn to_resource(&self) -> Resource {
        Resource::Gateway(self.clone())
    }
    fn proxy_status(&self) -> Option<&ProxyStatus> {
        self.status.as_ref()
    }
}

impl ProxyResource for EdgeService {
    const ROUTES_TO_AGGREGATORS: bool = true;
    const TERMINATES_TLS: bool = true;
    const EXPOSES_CONTRACTS: bool = true;
    fn to_resource(&self) -> Resource {
        Resource::EdgeService(self.clone())
    }
    fn proxy_status(&self) -> Option<&ProxyStatus> {
        self.status.as_ref()
    }
}

impl ProxyResource for Aggregator {
    const ROUTES_TO_AGGREGATORS: bool = false;
    const TERMINATES_TLS: bool = false;
    const EXPOSES_CONTRACTS: bool = false;
    fn to_resource(&self) -> Resource {
        Resource::Aggregator(self.clone())
    }
    fn proxy_status(&self) -> Option<&ProxyStatus> {
        self.status.as_ref()
    }
}

/// An Api over one namespace, or all of them.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Every change of an object of kind `K` that `config` selects, as metadata.
fn metadata_changes<K>(
    client: &Client,
    namespace: Option<&str>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    watcher(scoped::<PartialObjectMeta<K>>(client, namespace), config)
        .default_backoff()
        .touched_objects()
}

/// The resources in `store` of `namespace` for which `concerns` holds.
fn concerned<K: ProxyResource>(
    store: &Store<K>,
    namespace: Option<String>,
    concerns: impl Fn(&Resource) -> bool,
) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|object| object.namespace() == namespace)
        .filter(|object| concerns(&object.to_resource()))
        .map(|object| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

/// The resources in `store`, of any namespace, for which `concerns` holds.
fn concerned_anywhere<K: ProxyResource>(
    store: &Store<K>,
    concerns: impl Fn(&K) -> bool,
) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|object| concerns(object))
        .map(|object| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

/// True when the resource routes to the Service `name`, or its own Service would be called
/// `name` (a user's Service of that name blocks it until it goes away).
fn concerns_service(resource: &Resource, name: &str) -> bool {
    References::of(resource, None).names_service(name)
        || proxy_name(resource.kind(), resource.name()) == name
}

/// True when `status` says a Contract of `namespace` is served whose served versions route to
/// the Service `name` (its status names what the Service's coming or going changes).
fn serves_contract_naming(
    status: Option<&ProxyStatus>,
    contracts: &Store<Contract>,
    namespace: &Option<String>,
    name: &str,
) -> bool {
    let Some(namespace) = namespace else {
        return false;
    };
    status.is_some_and(|status| {
        status
            .exposed_contracts
            .iter()
            .filter(|e| e.namespace == *namespace)
            .any(|e| {
                contracts
                    .get(&ObjectRef::new(&e.name).within(namespace))
                    .is_some_and(|c| References::contract_names_service(&c, &e.versions, name))
            })
    })
}

/// Runs the controller of kind `K` until `shutdown` resolves, keeping the store of
/// `(reader, writer)` (which the Contract status controller reads too). `slices` yields each EndpointSlice
/// once the store in `ctx` holds it ([`replicas::watch_endpoint_slices`]); `exposing`, for kinds
/// that expose contracts, each Contract and ContractGrant once `ctx.contracts` holds it
/// ([`contracts::watch_contracts`]).
#[allow(clippy::too_many_arguments)]
pub async fn run_controller<K: ProxyResource>(
    client: Client,
    namespace: Option<String>,
    ctx: Arc<Context>,
    (reader, writer): (Store<K>, Writer<K>),
    slices: ReflectHandle<EndpointSlice>,
    exposing: Option<ContractSubscription>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = namespace.as_deref();
    // The children: what the operator made (by its label).
    let owned = || watcher::Config::default().labels(MANAGED_BY_SELECTOR);
    let echoes = ctx.own_writes.clone();
    // Every change of an exposer, its status too and its deletion, may change what the
    // Contracts it names say (once the store holds it).
    let nudges = ctx
        .contract_nudges
        .clone()
        .filter(|_| K::EXPOSES_CONTRACTS)
        .map(|sender| (sender, ctx.contracts.contracts.clone()));
    // A resource's own status writes do not bring it back: only a new generation (its spec),
    // labels or annotations do, besides its children, references and replicas below.
    // The store keeps them without their managedFields, which nothing here reads and which
    // for a server-side applied resource list every field of its spec once more.
    let resources = watcher(scoped::<K>(&client, ns), watcher::Config::default())
        .default_backoff()
        .modify(|object| object.managed_fields_mut().clear())
        .reflect(writer)
        .inspect(move |event| {
            let Some((sender, contracts)) = &nudges else {
                return;
            };
            if let Ok(watcher::Event::Apply(object) | watcher::Event::Delete(object)) = event {
                let kind = K::kind(&());
                for contract in contract_status::nudges_for(
                    &kind,
                    object.meta(),
                    object.proxy_status(),
                    contracts,
                ) {
                    // Unbounded: the status controller takes them as fast as they come.
                    let _ = sender.unbounded_send(contract);
                }
            }
        })
        .applied_objects()
        .predicate_filter(
            predicates::generation
                .combine(predicates::labels)
                .combine(predicates::annotations),
            Default::default(),
        );
    // The children's changes, as metadata: which resource owns the child is all a change of one
    // tells, and the reconcile reads what it needs. A route ConfigMap holds up to megabytes of
    // table, and each kind's controller watches all of them: in full, every table write came back
    // to the operator three times over, to be decoded and dropped.
    let controller = Controller::for_stream(resources, reader)
        .owns_stream(metadata_changes::<ServiceAccount>(&client, ns, owned()))
        .owns_stream(metadata_changes::<Role>(&client, ns, owned()))
        .owns_stream(metadata_changes::<RoleBinding>(&client, ns, owned()))
        // The echo of the operator's own table write is no news (`own_writes`). Each kind's
        // controller watches every route ConfigMap; only the one whose kind controls it may
        // take the echo as seen, or another kind's watch would take it first and this one
        // would let it through.
        .owns_stream(
            metadata_changes::<ConfigMap>(&client, ns, owned()).try_filter(move |config_map| {
                future::ready(!echoes.is_echo_for(&K::kind(&()), config_map))
            }),
        )
        .owns_stream(metadata_changes::<Service>(&client, ns, owned()))
        .owns_stream(metadata_changes::<Deployment>(&client, ns, owned()))
        .owns_stream(metadata_changes::<HorizontalPodAutoscaler>(
            &client,
            ns,
            owned(),
        ))
        .owns_stream(metadata_changes::<PodDisruptionBudget>(
            &client,
            ns,
            owned(),
        ))
        .owns_stream(metadata_changes::<NetworkPolicy>(&client, ns, owned()));
    let store = controller.store();
    let contracts = ctx.contracts.contracts.clone();
    // Any Service of the namespace (its name is what matters: a backend appears or goes away).
    let services = metadata_changes::<Service>(&client, ns, watcher::Config::default());
    let controller =
        controller.watches_stream(services, move |service: PartialObjectMeta<Service>| {
            let name = service.name_any();
            let namespace = service.namespace();
            let mut concerned_now =
                concerned(&store, namespace.clone(), |r| concerns_service(r, &name));
            if K::EXPOSES_CONTRACTS {
                concerned_now.extend(concerned_anywhere(&store, |object| {
                    serves_contract_naming(object.proxy_status(), &contracts, &namespace, &name)
                }));
            }
            concerned_now
        });
    // Replicas becoming ready or going away: ask them again (`replicas`).
    let store = controller.store();
    let controller = controller.watches_shared_stream(slices, move |slice: Arc<EndpointSlice>| {
        let service = replicas::service_of(&slice).unwrap_or_default().to_owned();
        concerned(&store, slice.namespace(), |r| {
            proxy_name(r.kind(), r.name()) == service
        })
    });
    let controller = if K::ROUTES_TO_AGGREGATORS {
        let store = controller.store();
        controller.watches(
            scoped::<Aggregator>(&client, ns),
            watcher::Config::default(),
            move |aggregator: Aggregator| {
                let name = aggregator.name_any();
                concerned(&store, aggregator.namespace(), |r| {
                    References::of(r, None).names_aggregator(&name)
                })
            },
        )
    } else {
        controller
    };
    // A Contract or a grant changed: the exposers it concerns compile again, wherever they are.
    let controller = match exposing.filter(|_| K::EXPOSES_CONTRACTS) {
        Some(ContractSubscription { contracts, grants }) => {
            let store = controller.store();
            let controller =
                controller.watches_stream(contracts.map(Ok), move |contract: Contract| {
                    concerned_anywhere(&store, |r| {
                        contracts::concerns_contract(&r.to_resource(), r.proxy_status(), &contract)
                    })
                });
            let store = controller.store();
            controller.watches_stream(grants.map(Ok), move |grant: ContractGrant| {
                let namespace = grant.namespace().unwrap_or_default();
                concerned_anywhere(&store, |r| {
                    contracts::concerns_grant(&r.to_resource(), &namespace)
                })
            })
        }
        None => controller,
    };
    // A certificate or Redis Secret created, renewed or broken: check it again for the status. Metadata
    // only: Secret contents are read by name, in the reconcile, and never cached.
    let controller = if K::TERMINATES_TLS {
        let store = controller.store();
        let secrets = metadata_changes::<Secret>(&client, ns, watcher::Config::default());
        let default_redis = ctx.settings.redis.clone();
        controller.watches_stream(secrets, move |secret: PartialObjectMeta<Secret>| {
            let name = secret.name_any();
            concerned(&store, secret.namespace(), |r| {
                References::of(r, default_redis.as_ref()).names_secret(&name)
            })
        })
    } else {
        controller
    };
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile::<K>, reconcile::error_policy::<K>, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(%object, "reconciled"),
                Err(error) => warn!(%error, "controller"),
            }
        })
        .await;
}
