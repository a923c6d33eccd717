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
fn body_and_concurrency_limits_are_above_zero() {
    for at in [
        "/spec/limits",
        "/spec/contracts/0/limits",
        "/spec/contracts/0/routes/0/limits",
    ] {
        for field in ["maxBodyBytes", "maxInFlight"] {
            refused(with(gateway(), at, json!({field: 0})), field);
            accepted(with(gateway(), at, json!({field: 1})));
        }
    }
    refused(
        with(gateway(), "/spec/clients/0/maxInFlight", json!(0)),
        "spec.clients[0].maxInFlight",
    );
    accepted(with(gateway(), "/spec/clients/0/maxInFlight", json!(10)));
}

const CONTRACT_CORS: &str = "/spec/contracts/0/cors";

#[test]
fn cors_origins_are_origins_and_credentials_never_go_with_a_wildcard() {
    let policy = |extra: Value| {
        let mut cors = json!({"allowOrigins": ["https://shop.example.com"]});
        cors.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        with(gateway(), CONTRACT_CORS, cors)
    };
    accepted(policy(json!({})));
    accepted(policy(json!({
        "allowMethods": ["GET", "POST"], "allowHeaders": ["content-type", "*"],
        "exposeHeaders": ["x-request-id"], "maxAge": "10m"
    })));
    accepted(with(
        gateway(),
        "/spec/contracts/0/routes/0/cors",
        json!({"allowOrigins": ["*", "https://*.example.com", "http://localhost:3000"]}),
    ));
    for bad in [
        "shop.example.com",
        "https://shop.example.com/",
        "https://a.*.example.com",
        "null",
    ] {
        refused(
            with(gateway(), CONTRACT_CORS, json!({"allowOrigins": [bad]})),
            "spec.contracts[0].cors.allowOrigins[0]",
        );
    }
    refused(
        with(
            gateway(),
            CONTRACT_CORS,
            json!({"allowOrigins": ["https://shop.example.com:99999"]}),
        ),
        "spec.contracts[0].cors.allowOrigins[0]: \"https://shop.example.com:99999\" is not an origin",
    );
    refused(
        with(gateway(), CONTRACT_CORS, json!({"allowOrigins": []})),
        "allowOrigins",
    );
    for wildcard in [
        json!({"allowOrigins": ["*"], "allowCredentials": true}),
        json!({"allowOrigins": ["https://a.example"], "allowHeaders": ["*"], "allowCredentials": true}),
        json!({"allowOrigins": ["https://a.example"], "exposeHeaders": ["*"], "allowCredentials": true}),
    ] {
        refused(
            with(gateway(), CONTRACT_CORS, wildcard),
            "allowCredentials cannot go with '*'",
        );
    }
    refused(policy(json!({"maxAge": "10 minutes"})), "maxAge");
}

#[test]
fn an_external_traffic_policy_needs_a_service_reachable_from_outside() {
    for kind in ["LoadBalancer", "NodePort"] {
        accepted(with(
            gateway(),
            "/spec/service",
            json!({"type": kind, "externalTrafficPolicy": "Local"}),
        ));
    }
    refused(
        with(
            gateway(),
            "/spec/service",
            json!({"externalTrafficPolicy": "Local"}),
        ),
        "externalTrafficPolicy applies to NodePort and LoadBalancer Services",
    );
}
