//! What every reconcile shares: the client, the settings, the clock, metrics, backoff, the
//! proxies' EndpointSlices with the client that asks their replicas, the Contracts and grants
//! that resources expose, and the status writer (which publishes the events).

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use gatehouse_api::crd::Contract;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};

use super::backoff::RetryBackoff;
use super::contracts::{ContractStores, LastCompiles};
use super::own_writes::OwnWrites;
use super::replicas::ReplicaClient;
use super::status_writer::StatusWriter;
use super::usage::UsageLedger;
use crate::metrics::Metrics;
use crate::settings::ProxySettings;

/// Where condition timestamps come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// Always this instant (tests).
    Fixed(Timestamp),
}

impl Clock {
    /// The current time.
    pub fn now(self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Fixed(at) => at,
        }
    }
}

/// Shared state of the controllers.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// How proxies are run.
    pub settings: ProxySettings,
    /// Condition timestamps.
    pub clock: Clock,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-object retry delays after errors.
    pub backoff: RetryBackoff,
    /// The proxies' EndpointSlices, kept current by a watch (see
    /// [`super::replicas::watch_endpoint_slices`]).
    pub endpoints: Store<EndpointSlice>,
    /// The Contracts and ContractGrants, kept current by a watch (see
    /// [`super::contracts::watch_contracts`]); empty until [`Context::with_contracts`].
    pub contracts: ContractStores,
    /// Where the exposers' watches send the Contracts whose status an exposer's change may
    /// change (see [`super::contract_status::nudges_for`]); none until [`Context::with_contracts`].
    pub contract_nudges: Option<mpsc::UnboundedSender<ObjectRef<Contract>>>,
    /// What the last compile of each exposing resource made of its Contracts.
    pub last_compiles: LastCompiles,
    /// Asks proxy replicas which table they serve.
    pub replicas: ReplicaClient,
    /// Per-object delays before asking replicas again while they do not all serve the current
    /// table: 200 ms doubling, up to 5 minutes (5 s while some replica may still catch up;
    /// see `reconcile`).
    pub poll: RetryBackoff,
    /// Writes statuses in the background, newest first.
    pub status: StatusWriter,
    /// The route ConfigMap versions the operator's own writes produced.
    pub own_writes: OwnWrites,
    /// Who called which contract version, as the replicas said since the operator started.
    pub usage: UsageLedger,
}

impl Context {
    /// A context whose events are reported as `gatehouse-operator` (instance: the pod name
    /// from `POD_NAME`, when set), finding proxy replicas in `endpoints`.
    pub fn new(
        client: Client,
        settings: ProxySettings,
        clock: Clock,
        metrics: Arc<Metrics>,
        endpoints: Store<EndpointSlice>,
    ) -> Self {
        let reporter = Reporter {
            controller: crate::FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            status: StatusWriter::new(client.clone(), recorder, metrics.clone()),
            client,
            settings,
            clock,
            metrics,
            backoff: RetryBackoff::default(),
            endpoints,
            contracts: ContractStores::default(),
            contract_nudges: None,
            last_compiles: LastCompiles::default(),
            replicas: ReplicaClient::default(),
            own_writes: OwnWrites::default(),
            usage: UsageLedger::default(),
            poll: RetryBackoff::new(Duration::from_millis(200), Duration::from_secs(300)),
        }
    }

    /// The context, resolving `expose` against the Contracts and ContractGrants of `contracts`,
    /// and telling the Contract status controller through `nudges` (when given) which Contracts
    /// an exposer's change concerns.
    pub fn with_contracts(
        self,
        contracts: ContractStores,
        nudges: Option<mpsc::UnboundedSender<ObjectRef<Contract>>>,
    ) -> Self {
        Self {
            contracts,
            contract_nudges: nudges,
            ..self
        }
    }
}
