//! What a resource points at: the Services and Aggregators its routes and steps name, and the
//! Secrets it reads certificates from ([`SecretUse`]): its HTTPS listener's, its certificate
//! clients' authorities, its TLS backends' authorities and the certificate it presents to them,
//! and its Redis server's password and authorities.
//!
//! Read from the spec (not from the compiled table, which only knows host names), so that the
//! references are known before compiling — compile needs the referenced Aggregators' ports —
//! and even when the spec is invalid.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_api::crd::{
    Aggregation, BackendRef, Client, Contract, ContractVersion, Listeners, RedisStore,
};
use gatehouse_api::exposure::Catalog;
use gatehouse_api::rate_limits;
use gatehouse_api::resource::Resource;

/// Names referenced by one resource: in its own namespace, and the Services of the Contract
/// resources it exposes, in theirs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Service names.
    pub services: BTreeSet<String>,
    /// The Services its exposed Contracts name (the versions it exposes of those a grant lets
    /// it serve), by namespace and name, with the Contracts that name each.
    pub contract_services: BTreeMap<(String, String), BTreeSet<String>>,
    /// Aggregator names.
    pub aggregators: BTreeSet<String>,
    /// The Secrets it reads certificates from, by use.
    pub secrets: BTreeSet<(SecretUse, String)>,
}

/// What a resource reads a Secret for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SecretUse {
    /// A `kubernetes.io/tls` certificate its HTTPS listener serves.
    ListenerCertificate,
    /// CA certificates (`ca.crt`) its clients' certificates are checked against.
    ClientAuthorities,
    /// CA certificates (`ca.crt`) its TLS backends' certificates are checked against.
    BackendAuthorities,
    /// A `kubernetes.io/tls` certificate it presents to TLS backends that ask for one.
    BackendCertificate,
    /// The password (`password`) of the Redis server of its global rate limits.
    RedisPassword,
    /// CA certificates (`ca.crt`) the Redis server's certificate is checked against.
    RedisAuthorities,
}

impl SecretUse {
    /// True for a `kubernetes.io/tls` certificate and key; false for CA certificates.
    pub fn is_certificate(self) -> bool {
        matches!(self, Self::ListenerCertificate | Self::BackendCertificate)
    }

    /// What the proxies do while a Secret of this use is missing or unusable.
    pub fn consequence(self) -> &'static str {
        match self {
            Self::ListenerCertificate => {
                "the proxies keep serving the certificate they had from it, if any"
            }
            Self::ClientAuthorities => {
                "the client certificates it signs are refused with 401 until it is fixed"
            }
            Self::BackendAuthorities | Self::BackendCertificate => {
                "the proxies keep the TLS settings they had for its backends, if any; otherwise \
                 requests to them fail with 502 until it is fixed"
            }
            Self::RedisPassword | Self::RedisAuthorities => {
                "the proxies cannot use Redis: requests of clients with a global rate limit get \
                 their onRedisFailure answer until it is fixed (and new proxy pods wait for the \
                 Secret)"
            }
        }
    }
}

impl References {
    /// Every Service, Aggregator and Secret the resource names; `default_redis` is the
    /// operator's Redis for resources whose global rate limits name none.
    pub fn of(resource: &Resource, default_redis: Option<&RedisStore>) -> Self {
        let mut references = Self::default();
        match resource {
            Resource::Gateway(gateway) => {
                references.contracts(&gateway.spec.contracts);
                references.listeners(gateway.spec.listeners.as_ref());
                gateway
                    .spec
                    .clients
                    .iter()
                    .for_each(|c| references.client(c));
                references.redis(
                    &gateway.spec.clients,
                    gateway.spec.redis.as_ref(),
                    default_redis,
                );
            }
            Resource::EdgeService(edge) => {
                references.contracts(&edge.spec.contracts);
                references.listeners(edge.spec.listeners.as_ref());
                references.client(&edge.spec.client);
                references.redis([&edge.spec.client], edge.spec.redis.as_ref(), default_redis);
            }
            Resource::Aggregator(aggregator) => {
                for endpoint in &aggregator.spec.endpoints {
                    references.aggregation(&endpoint.aggregation);
                }
            }
        }
        references
    }

    /// Adds the Services of the Contracts `resource` exposes from `catalog`.
    pub fn with_exposed(mut self, resource: &Resource, catalog: &Catalog) -> Self {
        for pick in resource.exposure(catalog).picked {
            if !pick.permitted {
                continue;
            }
            for service in contract_services(&pick.contract, &pick.versions) {
                self.contract_services
                    .entry((pick.namespace().to_owned(), service))
                    .or_default()
                    .insert(pick.name().to_owned());
            }
        }
        self
    }

    /// True when the versions `versions` of `contract` route to the Service `name` (of the
    /// Contract's namespace).
    pub fn contract_names_service(contract: &Contract, versions: &[String], name: &str) -> bool {
        contract_services(contract, versions).contains(name)
    }

    /// True when the resource names the Service `name`.
    pub fn names_service(&self, name: &str) -> bool {
        self.services.contains(name)
    }

    /// True when the resource names the Aggregator `name`.
    pub fn names_aggregator(&self, name: &str) -> bool {
        self.aggregators.contains(name)
    }

    /// True when the resource reads the Secret `name` (certificates, authorities, a Redis
    /// password).
    pub fn names_secret(&self, name: &str) -> bool {
        self.secrets.iter().any(|(_, secret)| secret == name)
    }

    fn secret(&mut self, used: SecretUse, name: &str) {
        self.secrets.insert((used, name.to_owned()));
    }

    fn client(&mut self, client: &Client) {
        if let Some(certificate) = &client.client_certificate {
            self.secret(
                SecretUse::ClientAuthorities,
                &certificate.ca_secret_ref.name,
            );
        }
    }

    /// The Secrets of the Redis server the clients' global limits use (none without one).
    fn redis<'a>(
        &mut self,
        clients: impl IntoIterator<Item = &'a Client>,
        own: Option<&RedisStore>,
        default: Option<&RedisStore>,
    ) {
        let Some(redis) = rate_limits::redis_entry(clients, own, default) else {
            return;
        };
        if let Some(password) = &redis.password_secret {
            self.secret(SecretUse::RedisPassword, password);
        }
        if let Some(authorities) = redis.tls.and_then(|tls| tls.ca_secret) {
            self.secret(SecretUse::RedisAuthorities, &authorities);
        }
    }

    fn listeners(&mut self, listeners: Option<&Listeners>) {
        let certificates = listeners
            .and_then(|l| l.https.as_ref())
            .map(|https| https.certificates.as_slice())
            .unwrap_or_default();
        for certificate in certificates {
            self.secret(SecretUse::ListenerCertificate, &certificate.secret_name);
        }
    }

    fn contracts<'a>(&mut self, contracts: impl IntoIterator<Item = &'a ContractVersion>) {
        for route in contracts.into_iter().flat_map(|c| &c.routes) {
            route.backend.iter().for_each(|b| self.backend(b));
            route
                .backends
                .iter()
                .flatten()
                .for_each(|b| self.backend(b));
            if let Some(aggregation) = &route.aggregate {
                self.aggregation(aggregation);
            }
        }
    }

    fn backend(&mut self, backend: &BackendRef) {
        if let Some(service) = &backend.service {
            self.services.insert(service.clone());
        }
        if let Some(aggregator) = &backend.aggregator {
            self.aggregators.insert(aggregator.clone());
        }
        if let Some(tls) = &backend.tls {
            if let Some(ca) = &tls.ca_secret_ref {
                self.secret(SecretUse::BackendAuthorities, &ca.name);
            }
            if let Some(certificate) = &tls.client_certificate_secret_ref {
                self.secret(SecretUse::BackendCertificate, &certificate.name);
            }
        }
    }

    fn aggregation(&mut self, aggregation: &Aggregation) {
        for step in &aggregation.steps {
            self.services.insert(step.call.service.clone());
        }
    }
}

/// The Services the versions `versions` of `contract` route to.
fn contract_services(contract: &Contract, versions: &[String]) -> BTreeSet<String> {
    let mut named = References::default();
    named.contracts(
        contract
            .spec
            .versions
            .iter()
            .filter(|v| versions.contains(&v.version)),
    );
    named.services
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(path: &str) -> Resource {
        let text =
            std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        Resource::from_yaml(&text).unwrap().remove(0)
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn gateway_references_services_of_backend_backends_and_an_aggregator() {
        let references = References::of(&example("examples/gateway/public.yaml"), None);
        assert_eq!(
            references.services,
            set(&["catalog", "orders", "orders-v2"])
        );
        assert_eq!(references.aggregators, set(&["product-page"]));
    }

    #[test]
    fn edge_references_inline_aggregation_steps() {
        let references = References::of(&example("examples/edge/mobile.yaml"), None);
        assert_eq!(references.services, set(&["catalog", "orders"]));
        assert_eq!(references.aggregators, set(&["product-page"]));
    }

    #[test]
    fn aggregator_references_its_step_services_only() {
        let references = References::of(&example("examples/aggregator/product-page.yaml"), None);
        assert_eq!(references.services, set(&["catalog", "reviews", "sellers"]));
        assert!(references.aggregators.is_empty());
    }

    #[test]
    fn tls_backends_reference_their_authorities_and_client_certificate() {
        let references = References::of(&example("examples/gateway/payments.yaml"), None);
        assert_eq!(
            references.secrets,
            BTreeSet::from([
                (SecretUse::BackendAuthorities, "platform-ca".to_owned()),
                (
                    SecretUse::BackendCertificate,
                    "payments-gateway-tls".to_owned()
                ),
            ])
        );
        assert!(references.names_secret("platform-ca"));
        assert!(references.names_secret("payments-gateway-tls"));
        assert!(!references.names_secret("ledger"));
    }

    #[test]
    fn global_rate_limits_reference_their_redis_secrets_their_own_or_the_operators() {
        let partners = example("examples/gateway/partners.yaml");
        let references = References::of(&partners, None);
        assert!(
            references
                .secrets
                .contains(&(SecretUse::RedisPassword, "redis-auth".to_owned()))
        );
        // The operator's default Redis counts for a resource whose global limits name none.
        let Resource::Gateway(mut gateway) = partners else {
            panic!("a Gateway")
        };
        gateway.spec.redis = None;
        let default: RedisStore = serde_json::from_value(serde_json::json!({
            "address": "redis:6379", "passwordSecretRef": {"name": "shared-redis"},
            "tls": {"caSecretRef": {"name": "redis-ca"}}
        }))
        .unwrap();
        let gateway = Resource::Gateway(gateway);
        assert_eq!(
            References::of(&gateway, Some(&default))
                .secrets
                .into_iter()
                .filter(|(used, _)| matches!(
                    used,
                    SecretUse::RedisPassword | SecretUse::RedisAuthorities
                ))
                .collect::<Vec<_>>(),
            [
                (SecretUse::RedisPassword, "shared-redis".to_owned()),
                (SecretUse::RedisAuthorities, "redis-ca".to_owned()),
            ]
        );
        // Without a global limit, no Redis at all.
        let public = References::of(&example("examples/gateway/public.yaml"), Some(&default));
        assert!(!public.names_secret("shared-redis"));
    }
}
