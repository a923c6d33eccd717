//! Access rules: address ranges, client names, the trust of `X-Forwarded-For`, body limits.

use serde_json::{Value, json};

use super::{accepted, gateway, refused, with};

/// The base gateway with its client `web` recognised by API key, and a second client.
fn with_keyed_clients() -> Value {
    with(
        gateway(),
        "/spec/clients",
        json!([
            {"name": "web", "apiKeys": {"secretRef": {"name": "web-keys"}}},
            {"name": "partner", "jwt": {"issuer": "https://id.example.com",
                                        "jwksSecretRef": {"name": "partner-jwks"}}},
            {"name": "anonymous"}
        ]),
    )
}

const ROUTE_ACCESS: &str = "/spec/contracts/0/routes/0/access";
const CONTRACT_ACCESS: &str = "/spec/contracts/0/access";

#[test]
fn address_ranges_must_be_ranges() {
    for good in [
        "10.0.0.0/8",
        "192.0.2.7",
        "2001:db8::/32",
        "::1",
        "10.1.2.3/8",
    ] {
        accepted(with(
            gateway(),
            ROUTE_ACCESS,
            json!({"sourceRanges": {"allow": [good]}}),
        ));
    }
    // The schema refuses what is plainly no address; the operator, what only looks like one.
    refused(
        with(
            gateway(),
            ROUTE_ACCESS,
            json!({"sourceRanges": {"deny": ["office"]}}),
        ),
        "spec.contracts[0].routes[0].access.sourceRanges.deny[0]",
    );
    for bad in [
        "10.0.0.0/33",
        "300.1.1.1",
        "10.0.0/8",
        "2001:db8::/129",
        "::ffff:10.0.0.0/104",
    ] {
        refused(
            with(
                gateway(),
                ROUTE_ACCESS,
                json!({"sourceRanges": {"allow": ["10.0.0.0/8", bad]}}),
            ),
            "spec.contracts[0].routes[0].access.sourceRanges.allow[1]",
        );
    }
    refused(
        with(
            gateway(),
            "/spec/access",
            json!({"sourceRanges": {"allow": ["10.0.0.0/40"]}}),
        ),
        "spec.access.sourceRanges.allow[0]: \"10.0.0.0/40\" is not an address range",
    );
    refused(
        with(gateway(), CONTRACT_ACCESS, json!({"sourceRanges": {}})),
        "sourceRanges needs allow or deny ranges",
    );
}

#[test]
fn client_names_name_recognisable_clients_the_contract_lets_in() {
    accepted(with(
        with_keyed_clients(),
        ROUTE_ACCESS,
        json!({"clients": ["web", "partner"]}),
    ));
    refused(
        with(
            with_keyed_clients(),
            ROUTE_ACCESS,
            json!({"clients": ["mobile"]}),
        ),
        "spec.contracts[0].routes[0].access.clients[0]: spec.clients has no client named mobile",
    );
    refused(
        with(
            with_keyed_clients(),
            CONTRACT_ACCESS,
            json!({"clients": ["web", "anonymous"]}),
        ),
        "spec.contracts[0].access.clients[1]: client anonymous has no apiKeys, jwt or clientCertificate",
    );
    // A route narrows its contract's list; it cannot add to it.
    let contract_web_only = with(
        with_keyed_clients(),
        CONTRACT_ACCESS,
        json!({"clients": ["web"]}),
    );
    accepted(with(
        contract_web_only.clone(),
        ROUTE_ACCESS,
        json!({"clients": ["web"]}),
    ));
    refused(
        with(
            contract_web_only,
            ROUTE_ACCESS,
            json!({"clients": ["partner"]}),
        ),
        "spec.contracts[0].routes[0].access.clients[0]: contract v1 lets only the clients of spec.contracts[0].access.clients call",
    );
    refused(
        with(
            with_keyed_clients(),
            "/spec/access",
            json!({"clients": ["web"]}),
        ),
        "access.clients is set on contracts and routes",
    );
}

#[test]
fn an_edge_service_names_only_its_own_client() {
    let edge = json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "EdgeService",
        "metadata": {"name": "mobile", "namespace": "shop"},
        "spec": {
            "client": {"name": "mobile"},
            "contracts": [{"version": "v1", "routes": [
                {"name": "status", "match": {"path": "/status"}, "respond": {"body": "ok"}}
            ]}]
        }
    });
    accepted(with(
        edge.clone(),
        ROUTE_ACCESS,
        json!({"clients": ["mobile"]}),
    ));
    refused(
        with(edge, ROUTE_ACCESS, json!({"clients": ["web"]})),
        "this EdgeService serves client mobile only, not web",
    );
}

#[test]
fn the_trust_of_x_forwarded_for_is_one_of_hops_or_proxies() {
    accepted(with(
        gateway(),
        "/spec/clientAddress",
        json!({"trustedHops": 2}),
    ));
    accepted(with(
        gateway(),
        "/spec/clientAddress",
        json!({"trustedProxies": ["10.0.0.0/8", "fd00::/8"]}),
    ));
    refused(
        with(
            gateway(),
            "/spec/clientAddress",
            json!({"trustedHops": 1, "trustedProxies": ["10.0.0.0/8"]}),
        ),
        "set trustedHops or trustedProxies, not both",
    );
    refused(
        with(gateway(), "/spec/clientAddress", json!({"trustedHops": 0})),
        "spec.clientAddress.trustedHops",
    );
    refused(
        with(
            gateway(),
            "/spec/clientAddress",
            json!({"trustedProxies": ["10.0.0.0/99"]}),
        ),
        "spec.clientAddress.trustedProxies[0]",
    );
}

#[test]
fn body_limits_are_above_zero() {
    for at in [
        "/spec/limits",
        "/spec/contracts/0/limits",
        "/spec/contracts/0/routes/0/limits",
    ] {
        refused(
            with(gateway(), at, json!({"maxBodyBytes": 0})),
            "maxBodyBytes",
        );
        accepted(with(gateway(), at, json!({"maxBodyBytes": 1})));
    }
}
