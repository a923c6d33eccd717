//! The pure build, from the outside: golden manifests for every example (a changed output is a
//! reviewed diff; `GATEHOUSE_BLESS=1` rewrites them), and the properties every proxy must have.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

use gatehouse_api::compile::CompileContext;
use gatehouse_api::resource::Resource;
use gatehouse_api::route_table::{FILE_NAME, RouteTable};
use gatehouse_api::table_file::COMPRESSED_FILE_NAME;
use gatehouse_operator::objects::{self, ProxyObjects};
use gatehouse_operator::render::{render_paths, render_resources};
use gatehouse_operator::settings::ProxySettings;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every example of the three patterns, sorted.
fn examples() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["gateway", "edge", "aggregator"] {
        for entry in std::fs::read_dir(repo().join("examples").join(dir)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files.sort();
    assert!(files.len() >= 3, "examples missing: {files:?}");
    files
}

fn read(path: &Path) -> Resource {
    let mut resources = Resource::from_yaml(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut resource = resources.remove(0);
    metadata_mut(&mut resource)
        .namespace
        .get_or_insert_with(|| "shop".to_owned());
    resource
}

fn metadata_mut(
    resource: &mut Resource,
) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    match resource {
        Resource::Gateway(r) => &mut r.metadata,
        Resource::EdgeService(r) => &mut r.metadata,
        Resource::Aggregator(r) => &mut r.metadata,
    }
}

fn objects(resource: &Resource) -> (RouteTable, ProxyObjects) {
    let table = resource.compile(&CompileContext::default()).unwrap();
    let objects = objects::render(resource, &table, &ProxySettings::default());
    (table, objects)
}

fn golden_path(example: &Path) -> PathBuf {
    let dir = example
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let name = example.file_name().unwrap().to_str().unwrap();
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{dir}-{name}"))
}

#[test]
fn every_example_renders_as_its_golden_file() {
    let bless = std::env::var("GATEHOUSE_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for example in examples() {
        let rendered = render_paths(
            std::slice::from_ref(&example),
            "shop",
            &ProxySettings::default(),
        )
        .unwrap()
        .to_string();
        let golden = golden_path(&example);
        if bless {
            std::fs::write(&golden, &rendered).unwrap();
        } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(rendered.as_str()) {
            stale.push(golden.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "rendered output differs from {stale:?}; review and rerun with GATEHOUSE_BLESS=1"
    );
}

/// The teams' Contracts of `examples/contracts`, rendered together with the Gateway and the
/// EdgeService that expose them: the objects of both proxies, their tables holding the
/// Contracts' routes.
#[test]
fn contracts_render_with_the_resources_that_expose_them() {
    let folder = repo().join("examples/contracts");
    let rendered = render_paths(
        std::slice::from_ref(&folder),
        "shop",
        &ProxySettings::default(),
    )
    .unwrap()
    .to_string();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/contracts.yaml");
    if std::env::var("GATEHOUSE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&golden, &rendered).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&golden).unwrap(),
        rendered,
        "review and rerun with GATEHOUSE_BLESS=1"
    );
    for id in [
        "shop/catalog/v2/product",
        "shop/orders/v1/orders",
        "payments/payments/v1/create-payment",
    ] {
        assert!(rendered.contains(id), "{id}");
    }
    // Without the grant, the payments Contract is not served: the render says so and prints
    // nothing.
    let dir =
        std::env::temp_dir().join(format!("gatehouse-render-contracts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["catalog.yaml", "orders.yaml", "gateway.yaml"] {
        std::fs::copy(folder.join(file), dir.join(file)).unwrap();
    }
    let payments = std::fs::read_to_string(folder.join("payments.yaml")).unwrap();
    let contract_only = payments.split("\n---\n").next().unwrap();
    std::fs::write(dir.join("payments.yaml"), contract_only).unwrap();
    let error = render_paths(
        std::slice::from_ref(&dir),
        "shop",
        &ProxySettings::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "Gateway shop/public-api: Contract payments/payments: RefNotPermitted: spec.expose[1]: \
         Contract payments/payments is in another namespace, and no ContractGrant there lets \
         Gateway shop/public-api expose it"
    );
    // An invalid Contract fails the render, naming the Contract and the field.
    std::fs::write(
        dir.join("broken.yaml"),
        std::fs::read_to_string(repo().join("examples/not-accepted/contract-shadowed-route.yaml"))
            .unwrap()
            .replace("name: catalog", "name: broken"),
    )
    .unwrap();
    let error = render_paths(
        std::slice::from_ref(&dir),
        "shop",
        &ProxySettings::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error
            .starts_with("Contract shop/broken spec.versions[1].routes[0].match: route v2/product"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_render_command_prints_the_golden_output_and_refuses_invalid_input() {
    let binary = env!("CARGO_BIN_EXE_gatehouse-operator");
    let example = repo().join("examples/aggregator/product-page.yaml");
    let output = std::process::Command::new(binary)
        .args(["render", "-n", "shop", "-f"])
        .arg(&example)
        // The operator's namespace comes from the pod's; outside one, none is allowed in.
        .env_remove("POD_NAMESPACE")
        .output()
        .unwrap();
    assert!(output.status.success());
    let golden = std::fs::read_to_string(golden_path(&example)).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), golden);

    let invalid = repo().join("examples/not-accepted");
    let output = std::process::Command::new(binary)
        .args(["render", "-f"])
        .arg(&example)
        .arg(&invalid)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        output.stdout.is_empty(),
        "nothing is printed when anything is invalid"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    let files = std::fs::read_dir(&invalid).unwrap().count();
    let reported = stderr
        .lines()
        .filter(|l| {
            l.starts_with("Aggregator ")
                || l.starts_with("Gateway ")
                || l.starts_with("EdgeService ")
                || l.starts_with("Contract ")
        })
        .count();
    assert!(
        reported >= files,
        "every refused resource is reported:\n{stderr}"
    );
    assert!(stderr.contains("cycle"), "{stderr}");
}

#[test]
fn rendered_config_map_carries_the_compiled_table_byte_for_byte() {
    for example in examples() {
        let resource = read(&example);
        let yaml = render_resources(vec![resource.clone()], &ProxySettings::default())
            .unwrap()
            .to_string();
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap();
        let config_map = documents.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        let text = config_map["data"][FILE_NAME].as_str().unwrap();
        let expected = resource.compile(&CompileContext::default()).unwrap();
        assert_eq!(
            text.as_bytes(),
            expected.to_bytes(),
            "{}",
            example.display()
        );
        let parsed = RouteTable::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(
            config_map["metadata"]["annotations"][objects::DIGEST_ANNOTATION],
            parsed.digest()
        );
    }
}

fn pod(objects: &ProxyObjects) -> PodSpec {
    objects
        .deployment
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
}

fn container(objects: &ProxyObjects) -> Container {
    pod(objects).containers[0].clone()
}

#[test]
fn every_proxy_is_hardened_probed_and_spread() {
    for example in examples() {
        let (_, objects) = objects(&read(&example));
        let pod = pod(&objects);
        let container = container(&objects);
        let security = container.security_context.clone().unwrap();
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.run_as_user, Some(65532));
        assert_eq!(
            security.capabilities.unwrap().drop,
            Some(vec!["ALL".to_owned()])
        );
        assert_eq!(security.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let pod_security = pod.security_context.clone().unwrap();
        assert_eq!(
            pod_security.seccomp_profile.unwrap().type_,
            "RuntimeDefault"
        );
        assert_eq!(pod.automount_service_account_token, Some(true));
        assert!(pod.termination_grace_period_seconds.unwrap() > 20);

        let liveness = container.liveness_probe.clone().unwrap().http_get.unwrap();
        let readiness = container.readiness_probe.clone().unwrap().http_get.unwrap();
        assert_eq!(liveness.path.as_deref(), Some("/healthz"));
        assert_eq!(readiness.path.as_deref(), Some("/readyz"));
        let admin = IntOrString::String("admin".to_owned());
        assert_eq!((&liveness.port, &readiness.port), (&admin, &admin));
        let ports = container.ports.clone().unwrap();
        let admin_port = ports.iter().find(|p| p.name.as_deref() == Some("admin"));
        assert_eq!(admin_port.unwrap().container_port, 9901);

        let resources = container.resources.clone().unwrap();
        assert_eq!(resources.requests.unwrap()["cpu"].0, "100m");
        assert_eq!(resources.limits.unwrap()["memory"].0, "256Mi");

        let keys: Vec<String> = pod
            .topology_spread_constraints
            .unwrap()
            .into_iter()
            .map(|c| {
                assert_eq!(c.when_unsatisfiable, "ScheduleAnyway");
                c.topology_key
            })
            .collect();
        assert_eq!(
            keys,
            ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        );

        let mounts = container.volume_mounts.unwrap();
        let routes = mounts
            .iter()
            .find(|m| m.mount_path == "/etc/gatehouse/routes")
            .unwrap();
        assert_eq!(routes.sub_path, None, "a subPath mount would never update");
        assert_eq!(
            container.args.unwrap()[..2],
            ["--routes", "/etc/gatehouse/routes"]
        );
    }
}

#[test]
fn client_secrets_are_mounted_read_only_by_name() {
    let (_, objects) = objects(&read(&repo().join("examples/gateway/public.yaml")));
    let mounts = container(&objects).volume_mounts.unwrap();
    for secret in ["web-api-keys", "partner-api-keys"] {
        let mount = mounts
            .iter()
            .find(|m| m.mount_path == format!("/etc/gatehouse/secrets/{secret}"))
            .unwrap_or_else(|| panic!("{secret} not mounted"));
        assert_eq!(mount.read_only, Some(true));
    }
}

/// A Gateway with one direct route and the clients `clients` (a YAML list).
fn gateway_with_clients(clients: &str) -> Resource {
    let yaml = format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: partners, namespace: shop}}\n\
         spec:\n  clients: {clients}\n  contracts:\n    - version: v1\n      routes:\n\
         \x20       - name: ping\n          match: {{path: /ping}}\n          respond: {{body: pong}}\n"
    );
    Resource::from_yaml(&yaml).unwrap().remove(0)
}

fn role_rules(objects: &ProxyObjects) -> serde_json::Value {
    serde_json::to_value(&objects.role).unwrap()["rules"].clone()
}

#[test]
fn without_client_secrets_the_proxy_may_read_only_its_config_map() {
    for resource in [
        read(&repo().join("examples/aggregator/product-page.yaml")),
        gateway_with_clients("[{name: anyone}]"),
    ] {
        let (_, objects) = objects(&resource);
        let name = objects.config_map.metadata.name.clone().unwrap();
        assert_eq!(objects.role.metadata.name.as_ref(), Some(&name));
        assert_eq!(
            role_rules(&objects),
            serde_json::json!([{
                "apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name],
                "verbs": ["get", "list", "watch"]
            }]),
            "no Secret rule at all: an empty resourceNames would grant every Secret"
        );
    }
}

#[test]
fn the_proxy_may_read_the_secrets_its_clients_name_sorted_and_unique() {
    let resource = gateway_with_clients(
        "[{name: web, apiKeys: {secretRef: {name: zeta-keys}}},\
          {name: mobile, jwt: {issuer: 'https://id.example', jwksSecretRef: {name: alpha-jwks}}},\
          {name: partner, apiKeys: {secretRef: {name: zeta-keys}, header: x-partner-key},\
           jwt: {issuer: 'https://partner.example', jwksSecretRef: {name: mid-jwks}}}]",
    );
    let (_, objects) = objects(&resource);
    assert_eq!(
        role_rules(&objects),
        serde_json::json!([
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["partners-gateway"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"],
             "resourceNames": ["alpha-jwks", "mid-jwks", "zeta-keys"],
             "verbs": ["get", "list", "watch"]}
        ])
    );
    // Exactly the Secrets the pods mount.
    let mounted: Vec<String> = pod(&objects)
        .volumes
        .unwrap()
        .into_iter()
        .filter_map(|v| v.secret?.secret_name)
        .collect();
    assert_eq!(mounted, ["alpha-jwks", "mid-jwks", "zeta-keys"]);
}

#[test]
fn the_role_is_bound_to_the_proxy_service_account_alone() {
    for example in examples() {
        let (_, objects) = objects(&read(&example));
        let name = objects.service_account.metadata.name.clone().unwrap();
        let binding = serde_json::to_value(&objects.role_binding).unwrap();
        assert_eq!(binding["metadata"]["name"], name.as_str());
        assert_eq!(
            binding["roleRef"],
            serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name})
        );
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": name, "namespace": "shop"}])
        );
    }
}

#[test]
fn only_the_proxy_pods_mount_a_token_and_they_watch_their_config_map() {
    for example in examples() {
        let (_, objects) = objects(&read(&example));
        let name = objects.config_map.metadata.name.clone().unwrap();
        assert_eq!(
            objects.service_account.automount_service_account_token,
            Some(false),
            "no token for other pods that would use the ServiceAccount"
        );
        let pod = pod(&objects);
        assert_eq!(pod.service_account_name.as_ref(), Some(&name));
        assert_eq!(pod.automount_service_account_token, Some(true));
        let args = container(&objects).args.unwrap();
        let value = |flag: &str| {
            let at = args.iter().position(|a| a == flag).unwrap();
            args[at + 1].clone()
        };
        assert_eq!(value("--config-map"), name);
        assert_eq!(value("--namespace"), "shop");
        assert_eq!(value("--routes"), "/etc/gatehouse/routes");
    }
}

#[test]
fn an_autoscaled_deployment_never_carries_replicas() {
    let mut autoscaled = 0;
    for example in examples() {
        let resource = read(&example);
        let (_, objects) = objects(&resource);
        let replicas = objects.deployment.spec.clone().unwrap().replicas;
        let settings = objects::runtime_settings(&resource).0;
        match &objects.autoscaler {
            Some(hpa) => {
                autoscaled += 1;
                assert_eq!(replicas, None, "{}", example.display());
                let spec = hpa.spec.clone().unwrap();
                let autoscaling = settings.autoscaling.clone().unwrap();
                assert_eq!(spec.max_replicas, autoscaling.max_replicas);
                assert_eq!(
                    spec.scale_target_ref.name,
                    objects.deployment.metadata.name.clone().unwrap()
                );
                let manifest = serde_json::to_value(&objects.deployment).unwrap();
                assert!(manifest["spec"].get("replicas").is_none());
            }
            None => {
                assert!(settings.autoscaling.is_none());
                assert_eq!(replicas, Some(settings.replicas.unwrap_or(2)));
            }
        }
    }
    assert!(
        autoscaled >= 2,
        "the gateway and the edge examples autoscale"
    );
}

#[test]
fn a_disruption_budget_exists_only_when_more_than_one_replica_is_possible() {
    let mut resource = read(&repo().join("examples/aggregator/product-page.yaml"));
    let budget = objects(&resource).1.disruption_budget.unwrap();
    assert_eq!(
        budget.spec.unwrap().max_unavailable,
        Some(IntOrString::Int(1))
    );
    let Resource::Aggregator(aggregator) = &mut resource else {
        panic!("not an aggregator")
    };
    aggregator.spec.deployment.replicas = Some(1);
    assert!(objects(&resource).1.disruption_budget.is_none());
}

#[test]
fn a_route_change_rewrites_the_config_map_but_never_the_pod_template() {
    let before = read(&repo().join("examples/gateway/public.yaml"));
    let mut after = before.clone();
    let Resource::Gateway(gateway) = &mut after else {
        panic!("not a gateway")
    };
    gateway.spec.contracts[0].routes[0].timeout = Some("9s".to_owned());
    let (old, new) = (objects(&before).1, objects(&after).1);
    assert_ne!(old.config_map, new.config_map);
    assert_eq!(old.deployment, new.deployment);
}

#[test]
fn output_is_deterministic_and_independent_of_input_order() {
    let resources: Vec<Resource> = examples().iter().map(|e| read(e)).collect();
    let reversed: Vec<Resource> = resources.iter().rev().cloned().collect();
    let settings = ProxySettings::default();
    let forward = render_resources(resources.clone(), &settings)
        .unwrap()
        .to_string();
    let mut documents: Vec<String> = forward.split("---\n").map(str::to_owned).collect();
    let mut backward: Vec<String> = render_resources(reversed, &settings)
        .unwrap()
        .to_string()
        .split("---\n")
        .map(str::to_owned)
        .collect();
    documents.sort();
    backward.sort();
    assert_eq!(documents, backward);
    assert_eq!(
        forward,
        render_resources(resources, &settings).unwrap().to_string()
    );
}

#[test]
fn every_object_is_labelled_and_controlled_by_its_resource() {
    for example in examples() {
        let mut resource = read(&example);
        metadata_mut(&mut resource).uid = Some("uid-1".to_owned());
        let (_, objects) = objects(&resource);
        for manifest in objects.manifests().unwrap() {
            let owners = manifest["metadata"]["ownerReferences"].as_array().unwrap();
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0]["uid"], "uid-1");
            assert_eq!(owners[0]["controller"], true);
            assert_eq!(owners[0]["kind"], resource.kind().as_str());
            let labels = &manifest["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/name"], "gatehouse-proxy");
            assert_eq!(labels["app.kubernetes.io/instance"], resource.name());
            assert_eq!(labels["app.kubernetes.io/managed-by"], "gatehouse-operator");
            assert_eq!(
                labels["app.kubernetes.io/component"],
                objects::component(resource.kind())
            );
        }
    }
}

#[test]
fn the_autoscaler_follows_cpu_requests_per_second_or_both() {
    let mut resource = read(&repo().join("examples/gateway/public.yaml"));
    let set = |resource: &mut Resource, cpu: Option<i32>, rps: Option<i32>| {
        let Resource::Gateway(gateway) = resource else {
            panic!("not a gateway")
        };
        let autoscaling = gateway.spec.deployment.autoscaling.as_mut().unwrap();
        autoscaling.target_cpu_utilization_percentage = cpu;
        autoscaling.target_requests_per_second = rps;
    };
    let metrics = |resource: &Resource| -> Vec<serde_json::Value> {
        let hpa = objects(resource).1.autoscaler.unwrap();
        let spec = serde_json::to_value(hpa.spec.unwrap()).unwrap();
        spec["metrics"].as_array().unwrap().clone()
    };
    set(&mut resource, None, None);
    let only_cpu = metrics(&resource);
    assert_eq!(only_cpu.len(), 1);
    assert_eq!(only_cpu[0]["resource"]["target"]["averageUtilization"], 70);

    set(&mut resource, None, Some(250));
    let only_rps = metrics(&resource);
    assert_eq!(only_rps.len(), 1);
    assert_eq!(only_rps[0]["type"], "Pods");
    assert_eq!(
        only_rps[0]["pods"]["metric"]["name"],
        "gatehouse_requests_per_second"
    );
    assert_eq!(only_rps[0]["pods"]["target"]["averageValue"], "250");

    set(&mut resource, Some(60), Some(250));
    let both: Vec<String> = metrics(&resource)
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(both, ["Resource", "Pods"]);
}

#[test]
fn an_externally_scaled_deployment_has_no_replicas_and_no_autoscaler_but_a_budget() {
    let mut resource = read(&repo().join("examples/aggregator/product-page.yaml"));
    let Resource::Aggregator(aggregator) = &mut resource else {
        panic!("not an aggregator")
    };
    aggregator.spec.deployment.replicas = None;
    aggregator.spec.deployment.externally_scaled = true;
    let (_, objects) = objects(&resource);
    assert_eq!(objects.deployment.spec.unwrap().replicas, None);
    assert!(objects.autoscaler.is_none());
    assert!(objects.disruption_budget.is_some());
}

#[test]
fn the_proxy_runs_a_worker_thread_per_cpu_it_is_given() {
    let threads = |objects: &ProxyObjects| {
        let args = container(objects).args.unwrap();
        let at = args.iter().position(|a| a == "--threads").unwrap();
        args[at + 1].clone()
    };
    // The default resources (a 100m request, no CPU limit): one thread.
    let mut resource = read(&repo().join("examples/aggregator/product-page.yaml"));
    assert_eq!(threads(&objects(&resource).1), "1");

    let Resource::Aggregator(aggregator) = &mut resource else {
        panic!("not an aggregator")
    };
    let text = "{requests: {cpu: 500m, memory: 64Mi}, limits: {cpu: 2500m, memory: 256Mi}}";
    aggregator.spec.deployment.resources = Some(serde_saphyr::from_str(text).unwrap());
    assert_eq!(
        threads(&objects(&resource).1),
        "3",
        "the CPU limit, rounded up"
    );

    let Resource::Aggregator(aggregator) = &mut resource else {
        panic!("not an aggregator")
    };
    let text = "{requests: {cpu: '2', memory: 64Mi}}";
    aggregator.spec.deployment.resources = Some(serde_saphyr::from_str(text).unwrap());
    assert_eq!(threads(&objects(&resource).1), "2", "no limit: the request");
}

/// A Gateway whose routes answer directly with bodies of 16,000 bytes (the most the CRD allows
/// is 16 KiB), `routes` of them.
/// 16,000 letters and digits that gzip does not shrink much (a fixed xorshift sequence).
fn noise(seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..16_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[usize::try_from(state % 62).unwrap()])
        })
        .collect()
}

fn gateway_with_big_answers(routes: usize) -> Resource {
    let mut yaml = String::from(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata: {name: big, namespace: shop}\n\
         spec:\n  contracts:\n    - version: v1\n      routes:\n",
    );
    for route in 0..routes {
        yaml.push_str(&format!(
            "        - name: r{route}\n          match: {{path: /r{route}}}\n          respond: {{body: {}}}\n",
            noise(route as u64)
        ));
    }
    let mut read = Resource::from_yaml(&yaml).unwrap();
    assert_eq!(read.len(), 1);
    read.remove(0)
}

#[test]
fn a_route_table_too_big_for_a_config_map_is_refused_with_the_reason() {
    let settings = ProxySettings::default();
    // Letters without repeats pack to no less than 6 bits a letter (log2 of 62), whatever the
    // compressor: 60 such routes (960 KB of JSON) fit in the 1 MiB a ConfigMap holds…
    let fits = render_resources(vec![gateway_with_big_answers(60)], &settings).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&fits.to_string()).unwrap();
    let config_map = documents.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert!(config_map.get("data").is_none(), "{config_map}");
    let packed = config_map["binaryData"][COMPRESSED_FILE_NAME]
        .as_str()
        .unwrap();
    let size = packed.len() / 4 * 3;
    assert!((600_000..1_048_576).contains(&size), "{size}");
    // …100 (1.6 MB, so at least 1.19 MB gzipped) do not: the API server would refuse the
    // ConfigMap, so nothing is planned.
    let error = render_resources(vec![gateway_with_big_answers(100)], &settings).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("Gateway shop/big: spec: the compiled route table takes 1")
            && message.ends_with(
                "bytes gzipped, more than the 1048576 a ConfigMap can hold: split the routes across \
                 several resources"
            ),
        "{message}"
    );
}

#[test]
fn the_operators_redis_serves_global_limits_of_resources_that_name_none() {
    let binary = env!("CARGO_BIN_EXE_gatehouse-operator");
    let example = repo().join("examples/not-accepted/global-limit-without-redis.yaml");
    let render = |flags: &[&str]| {
        std::process::Command::new(binary)
            .args(["render", "-n", "shop"])
            .args(flags)
            .arg("-f")
            .arg(&example)
            .env_remove("POD_NAMESPACE")
            .output()
            .unwrap()
    };
    let refused = render(&[]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            "spec.clients[0].rateLimit.scope: a Global rate limit keeps its budget in Redis"
        ),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let output = render(&[
        "--redis-address",
        "redis-master.cache.svc.cluster.local",
        "--redis-password-secret",
        "redis-auth",
        "--redis-tls",
        "true",
        "--redis-timeout",
        "10ms",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let objects: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&String::from_utf8(output.stdout).unwrap()).unwrap();
    let of_kind = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap();
    let table: RouteTable =
        serde_json::from_str(of_kind("ConfigMap")["data"][FILE_NAME].as_str().unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(table.redis).unwrap(),
        serde_json::json!({
            "address": "redis-master.cache.svc.cluster.local:6379",
            "passwordSecret": "redis-auth",
            "tls": {},
            "timeoutMs": 10
        })
    );
    assert_eq!(
        table.clients[0]
            .rate_limit
            .as_ref()
            .unwrap()
            .global
            .as_ref()
            .unwrap()
            .budget,
        "gateway/shop/global-limit-without-redis/acme"
    );
    // The password Secret is the resource's namespace's, readable by its proxies by name.
    assert_eq!(
        of_kind("Role")["rules"][1]["resourceNames"],
        serde_json::json!(["acme-keys", "redis-auth"])
    );
}

#[test]
fn the_network_policy_opens_the_traffic_port_to_all_and_the_admin_port_to_named_namespaces() {
    use gatehouse_operator::settings::NetworkPolicySettings;

    let mut resource = read(&repo().join("examples/gateway/public.yaml"));
    let table = resource.compile(&CompileContext::default()).unwrap();
    let settings = ProxySettings {
        network_policy: NetworkPolicySettings {
            enabled: true,
            admin_namespaces: ["gatehouse-system".to_owned(), "monitoring".to_owned()].into(),
        },
        ..ProxySettings::default()
    };
    let policy = objects::render(&resource, &table, &settings)
        .network_policy
        .unwrap();
    let policy = serde_json::to_value(&policy).unwrap();
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        serde_json::to_value(objects::selector_labels(resource.kind(), "public")).unwrap()
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress"])
    );
    assert_eq!(
        policy["spec"]["ingress"],
        serde_json::json!([
            {"ports": [{"port": 8080, "protocol": "TCP"}]},
            {"from": [{"namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "In",
                "values": ["gatehouse-system", "monitoring", "shop"]}]}}],
             "ports": [{"port": 9901, "protocol": "TCP"}]}
        ])
    );

    // The resource turns it off, or on when the operator's default is off.
    let Resource::Gateway(gateway) = &mut resource else {
        panic!("not a gateway")
    };
    gateway.spec.deployment.network_policy = Some(false);
    assert!(
        objects::render(&resource, &table, &settings)
            .network_policy
            .is_none()
    );
    let off = ProxySettings {
        network_policy: NetworkPolicySettings::default(),
        ..ProxySettings::default()
    };
    assert!(
        objects::render(&resource, &table, &off)
            .network_policy
            .is_none()
    );
    let Resource::Gateway(gateway) = &mut resource else {
        panic!("not a gateway")
    };
    gateway.spec.deployment.network_policy = Some(true);
    assert!(
        objects::render(&resource, &table, &off)
            .network_policy
            .is_some()
    );
}

/// The Service ports (name, port, target) and the NetworkPolicy's open traffic ports.
fn exposed_ports(objects: &ProxyObjects) -> (Vec<(String, i32, i32)>, Vec<i32>) {
    let service = objects.service.spec.clone().unwrap().ports.unwrap();
    let service = service
        .into_iter()
        .map(|p| {
            let Some(IntOrString::Int(target)) = p.target_port else {
                panic!("numeric target port")
            };
            (p.name.unwrap(), p.port, target)
        })
        .collect();
    let policy = serde_json::to_value(objects.network_policy.as_ref().unwrap()).unwrap();
    let open = policy["spec"]["ingress"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap() as i32)
        .collect();
    (service, open)
}

#[test]
fn listeners_decide_the_service_ports_the_open_ports_and_the_tls_listener() {
    let storefront = read(&repo().join("examples/gateway/storefront.yaml"));
    let (_, rendered) = objects(&storefront);
    assert_eq!(
        exposed_ports(&rendered),
        (
            vec![
                ("http".to_owned(), 80, 8080),
                ("https".to_owned(), 443, 8443)
            ],
            vec![8080, 8443]
        )
    );
    let proxy = container(&rendered);
    let args = proxy.args.clone().unwrap();
    let tls = args.iter().position(|a| a == "--listen-tls").unwrap();
    assert_eq!(args[tls + 1], "0.0.0.0:8443");
    let ports: Vec<_> = proxy
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.container_port))
        .collect();
    assert!(ports.contains(&("https".to_owned(), 8443)));

    // HTTPS only, on another port: nothing plain is exposed or let in.
    let text = std::fs::read_to_string(repo().join("examples/gateway/storefront.yaml"))
        .unwrap()
        .replace("      port: 443\n", "      port: 8443\n")
        .replace(
            "    http:\n      port: 80\n      mode: RedirectToHTTPS\n",
            "",
        );
    let mut https_only = Resource::from_yaml(&text).unwrap().remove(0);
    metadata_mut(&mut https_only).namespace = Some("shop".to_owned());
    let (table, rendered) = objects(&https_only);
    assert_eq!(table.https_redirect_port, None);
    assert_eq!(
        exposed_ports(&rendered),
        (vec![("https".to_owned(), 8443, 8443)], vec![8443])
    );

    // Without listeners: plain HTTP on service.port, no TLS listener.
    let (_, rendered) = objects(&read(&repo().join("examples/gateway/public.yaml")));
    assert_eq!(exposed_ports(&rendered).1, vec![8080]);
    let args = container(&rendered).args.unwrap();
    assert!(!args.iter().any(|a| a == "--listen-tls"));
}

#[test]
fn the_diff_command_classifies_every_change_and_fails_on_a_breaking_one() {
    let binary = env!("CARGO_BIN_EXE_gatehouse-operator");
    let examples = repo().join("examples/versioning");
    let diff = |old: &str, new: &str, flags: &[&str]| {
        std::process::Command::new(binary)
            .arg("diff")
            .args(flags)
            .arg(examples.join(old))
            .arg(examples.join(new))
            .output()
            .unwrap()
    };
    let output = diff("before", "after", &[]);
    assert_eq!(output.status.code(), Some(1), "a breaking change fails");
    let report = String::from_utf8(output.stdout).unwrap();
    let at = "spec.versions[version=v1].routes";
    let expected = [
        "Contract shop/catalog".to_owned(),
        format!("  breaking           {at}[name=product].match.methods: method PUT removed"),
        format!(
            "  breaking           {at}[name=search].match.headers: header x-tenant now required: requests without it are no longer served"
        ),
        format!(
            "  possibly breaking  {at}[name=search]: max body size: callers that were served may be refused"
        ),
        "  passive            spec.versions[version=v1].deprecation: deprecated".to_owned(),
        "  passive            spec.versions[version=v1].lifecycle: Published became Deprecated"
            .to_owned(),
        format!("  passive            {at}[name=product]: backends changed"),
        format!("  passive            {at}[name=reviews]: route added"),
        "  passive            spec.versions[version=v2].lifecycle: Draft became Published"
            .to_owned(),
        "2 breaking, 1 possibly breaking, 5 passive".to_owned(),
    ];
    assert_eq!(report.lines().collect::<Vec<_>>(), expected);
    // The other way round, v2 goes back to a draft (breaking) and a route of the deprecated v1
    // goes (possibly breaking: its clients were told).
    let back = diff("after", "before", &[]);
    assert_eq!(back.status.code(), Some(1));
    let report = String::from_utf8(back.stdout).unwrap();
    assert!(
        report.contains(&format!(
            "possibly breaking  {at}[name=reviews]: deprecated route removed"
        )),
        "{report}"
    );
    assert!(report.contains("breaking           spec.versions[version=v2].lifecycle: Published version became a Draft again"), "{report}");
    // No change: nothing to report, success; and the class to fail on is chosen.
    let same = diff("before", "before", &[]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(same.stdout).unwrap(),
        "0 breaking, 0 possibly breaking, 0 passive\n"
    );
    // Unreadable input is neither a pass nor a break.
    let missing = diff("before", "nowhere", &[]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[test]
fn the_openapi_command_prints_the_documents_each_gateway_serves() {
    let binary = env!("CARGO_BIN_EXE_gatehouse-operator");
    // As the README runs it.
    let gateway = repo().join("examples/versioning/storefront.yaml");
    let openapi = |files: &[PathBuf]| {
        let mut command = std::process::Command::new(binary);
        command.arg("openapi");
        for file in files {
            command.arg("-f").arg(file);
        }
        command.output().unwrap()
    };
    let output = openapi(&[repo().join("examples/versioning/after"), gateway.clone()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let served = printed["Gateway shop/storefront"].as_object().unwrap();
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        [
            "/.well-known/gatehouse/openapi.json",
            "/.well-known/gatehouse/openapi/shop/catalog/v1.json",
            "/.well-known/gatehouse/openapi/shop/catalog/v2.json",
        ]
    );
    let v1 = &served["/.well-known/gatehouse/openapi/shop/catalog/v1.json"];
    assert_eq!(v1["openapi"], "3.1.0");
    assert_eq!(v1["paths"]["/products/{id}"]["get"]["deprecated"], true);
    assert_eq!(
        v1["paths"]["/products/{id}"]["get"]["x-gatehouse-sunset"],
        "2027-07-01T00:00:00Z"
    );

    // A Gateway exposing a Contract that is not there: the problem, and nothing printed.
    let missing = openapi(&[gateway]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty());
    let error = String::from_utf8(missing.stderr).unwrap();
    assert!(error.contains("Gateway shop/storefront: "), "{error}");
}
