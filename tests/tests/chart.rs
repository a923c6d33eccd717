//! The Helm chart `charts/gatehouse` rendered by a real `helm` binary: `helm lint --strict`, golden
//! `helm template` cases, and checks on the parsed objects (RBAC, images, pod security, CRDs, the
//! values schema), and the Dockerfiles of the images it deploys. `helm`, `kubernetes-validate` and
//! `hadolint` come from env HELM, KUBERNETES_VALIDATE, HADOLINT or PATH
//! (`charts/install-chart-tools.sh DIR` installs all three). A missing tool skips these tests,
//! unless CI or GATEHOUSE_REQUIRE_HELM=1 is set: then it fails them. GATEHOUSE_BLESS=1 rewrites the
//! goldens under charts/gatehouse/tests/golden/.
#![allow(clippy::unwrap_used)]

#[path = "chart/rbac.rs"]
mod rbac;
#[path = "chart/support.rs"]
mod support;

use rbac::{granted_rules, lease_rules, operator_rules};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::{
    CASES, Helm, NAMESPACE, chart_dir, find_tool, golden_text, kubernetes_validate_file,
    parse_yaml_stream,
};

fn objects_of<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn the_one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = objects_of(objects, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, got {}",
        found.len()
    );
    found[0]
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} named {name}"))
}

/// The operator's `run` arguments as flag → value (the chart always passes `--flag value` pairs).
fn operator_args(deployment: &Value) -> BTreeMap<String, String> {
    let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string argument"))
        .collect();
    assert_eq!(args[0], "run", "args {args:?}");
    let pairs = &args[1..];
    assert_eq!(pairs.len() % 2, 0, "flags without values in {args:?}");
    let map: BTreeMap<String, String> = pairs
        .chunks(2)
        .map(|p| (p[0].to_owned(), p[1].to_owned()))
        .collect();
    assert_eq!(map.len(), pairs.len() / 2, "a flag given twice in {args:?}");
    map
}

#[test]
fn lint_strict_reports_no_warning() {
    let Some(helm) = Helm::find() else { return };
    let variants: [&[&str]; 4] = [
        &[],
        &["--set", "watchNamespace=shop"],
        &["--set", "crds.enabled=false"],
        &["--values", "tests/values/custom.yaml"],
    ];
    for extra in variants {
        let mut args = vec!["lint", "--strict", "."];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = helm.run(&args);
        let all = format!("{stdout}{stderr}");
        assert!(ok, "helm lint {extra:?} failed:\n{all}");
        assert!(
            !all.contains("[WARNING]") && !all.contains("[ERROR]"),
            "helm lint {extra:?}:\n{all}"
        );
        assert!(
            all.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{all}"
        );
    }
}

#[test]
fn template_output_matches_the_goldens() {
    let Some(helm) = Helm::find() else { return };
    let golden_dir = chart_dir().join("tests/golden");
    for case in CASES {
        let rendered = helm.template_case(case);
        support::assert_golden(
            &golden_dir.join(format!("{}.yaml", case.name)),
            &golden_text(&rendered),
        );
    }
    let stale: Vec<String> = std::fs::read_dir(&golden_dir)
        .expect("golden dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|file| !CASES.iter().any(|c| format!("{}.yaml", c.name) == *file))
        .collect();
    assert!(stale.is_empty(), "goldens without a case: {stale:?}");
}

#[test]
fn cluster_wide_rbac_is_exactly_what_the_operator_uses() {
    let Some(helm) = Helm::find() else { return };
    for case in CASES.iter().filter(|c| c.watch_namespace.is_none()) {
        let objects = parse_yaml_stream(&helm.template_case(case));
        let cluster_role = the_one(&objects, "ClusterRole");
        assert_eq!(
            granted_rules(cluster_role),
            operator_rules(),
            "case {}",
            case.name
        );
        let binding = the_one(&objects, "ClusterRoleBinding");
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role["metadata"]["name"]})
        );
        assert_binds_operator_service_account(&objects, binding);

        let lease_roles = objects_of(&objects, "Role");
        if case.leader_election {
            assert_eq!(lease_roles.len(), 1, "case {}", case.name);
            assert_eq!(lease_roles[0]["metadata"]["namespace"], NAMESPACE);
            assert_eq!(granted_rules(lease_roles[0]), lease_rules());
            let lease_binding = the_one(&objects, "RoleBinding");
            assert_eq!(
                lease_binding["roleRef"]["name"],
                lease_roles[0]["metadata"]["name"]
            );
            assert_eq!(lease_binding["metadata"]["namespace"], NAMESPACE);
            assert_binds_operator_service_account(&objects, lease_binding);
        } else {
            assert!(lease_roles.is_empty() && objects_of(&objects, "RoleBinding").is_empty());
        }
        assert_secrets_are_only_read(&objects);
    }
}

#[test]
fn single_namespace_gets_a_role_there_instead_of_a_cluster_role() {
    let Some(helm) = Helm::find() else { return };
    let case = CASES
        .iter()
        .find(|c| c.watch_namespace.is_some())
        .expect("a single-namespace case");
    let watched = case.watch_namespace.unwrap();
    let objects = parse_yaml_stream(&helm.template_case(case));
    assert!(objects_of(&objects, "ClusterRole").is_empty());
    assert!(objects_of(&objects, "ClusterRoleBinding").is_empty());

    let roles = objects_of(&objects, "Role");
    let operator_role = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == watched)
        .expect("Role in the watched namespace");
    assert_eq!(granted_rules(operator_role), operator_rules());
    let lease_role = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == NAMESPACE)
        .expect("lease Role in the release namespace");
    assert_eq!(granted_rules(lease_role), lease_rules());
    assert_eq!(roles.len(), 2);

    for binding in objects_of(&objects, "RoleBinding") {
        let role = roles.iter().find(|r| {
            r["metadata"]["name"] == binding["roleRef"]["name"]
                && r["metadata"]["namespace"] == binding["metadata"]["namespace"]
        });
        assert!(
            role.is_some(),
            "RoleBinding {} points at no Role of its namespace",
            binding["metadata"]["name"]
        );
        assert_binds_operator_service_account(&objects, binding);
    }
    assert_eq!(objects_of(&objects, "RoleBinding").len(), 2);
    let args = operator_args(the_one(&objects, "Deployment"));
    assert_eq!(args.get("--namespace").map(String::as_str), Some(watched));
    assert_secrets_are_only_read(&objects);
}

fn assert_binds_operator_service_account(objects: &[Value], binding: &Value) {
    let service_account = the_one(objects, "ServiceAccount");
    let deployment = the_one(objects, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        service_account["metadata"]["name"]
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": service_account["metadata"]["name"], "namespace": NAMESPACE}]),
        "binding {}",
        binding["metadata"]["name"]
    );
}

/// No Role or ClusterRole of the chart may write a Secret: the operator reads them (it cannot
/// otherwise grant a proxy read access to its clients' Secrets) and never writes one.
fn assert_secrets_are_only_read(objects: &[Value]) {
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
    {
        for ((group, resource), verbs) in granted_rules(role) {
            if group.is_empty() && resource == "secrets" {
                let read: std::collections::BTreeSet<String> =
                    ["get", "list", "watch"].map(str::to_owned).into();
                assert_eq!(verbs, read, "secrets in {role}");
            }
        }
    }
}

#[test]
fn images_are_pinned_and_never_latest() {
    let Some(helm) = Helm::find() else { return };
    let app_version = support::chart_metadata()["appVersion"]
        .as_str()
        .expect("appVersion")
        .to_owned();
    for case in CASES {
        let objects = parse_yaml_stream(&helm.template_case(case));
        let deployment = the_one(&objects, "Deployment");
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let operator_image = container["image"].as_str().expect("image");
        let args = operator_args(deployment);
        for image in [operator_image, args["--proxy-image"].as_str()] {
            let (name, tag) = image
                .split('@')
                .next()
                .unwrap()
                .rsplit_once(':')
                .expect("a tag");
            assert!(!name.is_empty() && !tag.contains('/'), "{image} has no tag");
            assert_ne!(tag.to_lowercase(), "latest", "{image}");
            if case.name == "custom-values" {
                assert_eq!(tag, "0.1.0-rc.1", "{image}");
                assert!(image.contains("@sha256:"), "{image} not pinned by digest");
            } else {
                assert_eq!(tag, app_version, "{image}: the tag defaults to appVersion");
            }
        }
    }
    for refused in ["image.operator.tag=latest", "image.proxy.tag=latest"] {
        let error = helm.template_error(&["--set", refused]);
        assert!(error.contains("tag"), "--set {refused}: {error}");
    }
}

#[test]
fn operator_pods_run_locked_down_with_probes_and_downward_api() {
    let Some(helm) = Helm::find() else { return };
    for case in CASES {
        let objects = parse_yaml_stream(&helm.template_case(case));
        let deployment = the_one(&objects, "Deployment");
        assert_eq!(
            deployment["spec"]["replicas"], case.replicas,
            "case {}",
            case.name
        );
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        assert_eq!(
            pod["securityContext"]["seccompProfile"],
            json!({"type": "RuntimeDefault"})
        );
        let containers = pod["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1);
        let container = &containers[0];
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );
        assert_eq!(
            container["ports"],
            json!([{"name": "admin", "containerPort": 8080, "protocol": "TCP"}])
        );
        assert_eq!(
            container["livenessProbe"]["httpGet"],
            json!({"path": "/healthz", "port": "admin"})
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"],
            json!({"path": "/readyz", "port": "admin"})
        );
        for (variable, field) in [
            ("POD_NAMESPACE", "metadata.namespace"),
            ("POD_NAME", "metadata.name"),
        ] {
            let env = container["env"].as_array().expect("env");
            let found = env
                .iter()
                .find(|e| e["name"] == variable)
                .unwrap_or_else(|| panic!("{variable}"));
            assert_eq!(
                found["valueFrom"],
                json!({"fieldRef": {"fieldPath": field}})
            );
        }
        assert!(container["resources"]["requests"]["memory"].is_string());
        assert!(container["resources"]["limits"]["memory"].is_string());

        let args = operator_args(deployment);
        assert_eq!(args["--admin-listen"], "0.0.0.0:8080");
        assert_eq!(args["--leader-election"], case.leader_election.to_string());
        let spread = pod["topologySpreadConstraints"]
            .as_array()
            .expect("topology spread");
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        // No case sets a labelSelector: the chart fills in the operator's selector labels.
        assert!(!spread.is_empty());
        for constraint in spread {
            assert_eq!(
                constraint["labelSelector"],
                json!({"matchLabels": selector})
            );
        }
        assert_selects_operator_pods(&objects, deployment);
    }
}

/// `proxyNetworkPolicy` reaches the operator as flags; an empty monitoring namespace passes none.
#[test]
fn proxy_network_policy_values_become_operator_flags() {
    let Some(helm) = Helm::find() else { return };
    for case in CASES {
        let objects = parse_yaml_stream(&helm.template_case(case));
        let args = operator_args(the_one(&objects, "Deployment"));
        let (enabled, monitoring) = if case.name == "custom-values" {
            ("false", "observability")
        } else {
            ("true", "monitoring")
        };
        assert_eq!(
            args["--proxy-network-policy"], enabled,
            "case {}",
            case.name
        );
        assert_eq!(
            args["--monitoring-namespace"], monitoring,
            "case {}",
            case.name
        );
    }
    let no_monitoring = support::Case {
        name: "no-monitoring-namespace",
        args: &["--set", "proxyNetworkPolicy.monitoringNamespace="],
        ..CASES[0]
    };
    let objects = parse_yaml_stream(&helm.template_case(&no_monitoring));
    let args = operator_args(the_one(&objects, "Deployment"));
    assert!(!args.contains_key("--monitoring-namespace"), "{args:?}");
    let error = helm.template_error(&[
        "--set",
        "proxyNetworkPolicy.monitoringNamespace=Not_A_Namespace",
    ]);
    assert!(error.contains("monitoringNamespace"), "{error}");
}

#[test]
fn the_usage_window_value_becomes_the_operator_flag() {
    let Some(helm) = Helm::find() else { return };
    let objects = parse_yaml_stream(&helm.template_case(&CASES[0]));
    let args = operator_args(the_one(&objects, "Deployment"));
    assert!(
        !args.contains_key("--usage-window"),
        "the default: {args:?}"
    );
    let ninety_days = support::Case {
        name: "usage-window",
        args: &["--set", "usageWindow=2160h"],
        ..CASES[0]
    };
    let objects = parse_yaml_stream(&helm.template_case(&ninety_days));
    let args = operator_args(the_one(&objects, "Deployment"));
    assert_eq!(args["--usage-window"], "2160h");
    let error = helm.template_error(&["--set", "usageWindow=30d"]);
    assert!(error.contains("usageWindow"), "{error}");
}

/// The metrics Service, the PodDisruptionBudget and the ServiceMonitor select the operator pods.
fn assert_selects_operator_pods(objects: &[Value], deployment: &Value) {
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap();
    let selectors = objects.iter().filter_map(|o| match o["kind"].as_str() {
        Some("Service") => Some(&o["spec"]["selector"]),
        Some("PodDisruptionBudget") => Some(&o["spec"]["selector"]["matchLabels"]),
        _ => None,
    });
    for selector in selectors.chain([&deployment["spec"]["selector"]["matchLabels"]]) {
        for (key, value) in selector.as_object().expect("selector") {
            assert_eq!(
                pod_labels.get(key),
                Some(value),
                "selector {selector} misses the pods"
            );
        }
    }
    for service in objects_of(objects, "Service") {
        assert_eq!(service["spec"]["ports"][0]["targetPort"], "admin");
    }
    for monitor in objects_of(objects, "ServiceMonitor") {
        let service = the_one(objects, "Service");
        let service_labels = service["metadata"]["labels"].as_object().unwrap();
        for (key, value) in monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap()
        {
            assert_eq!(service_labels.get(key), Some(value));
        }
        assert_eq!(
            monitor["spec"]["endpoints"][0]["port"],
            service["spec"]["ports"][0]["name"]
        );
    }
}

#[test]
fn crds_follow_crds_enabled_and_keep() {
    let Some(helm) = Helm::find() else { return };
    let generated = parse_yaml_stream(
        &std::fs::read_to_string(chart_dir().join("files/crds.yaml")).expect("files/crds.yaml"),
    );
    assert_eq!(
        generated.len(),
        gatehouse_api::crd::definitions().len(),
        "files/crds.yaml holds every CRD"
    );
    let version = support::chart_metadata()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let app_version = support::chart_metadata()["appVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    for case in CASES {
        let objects = parse_yaml_stream(&helm.template_case(case));
        let rendered = objects_of(&objects, "CustomResourceDefinition");
        if !case.crds_enabled {
            assert!(rendered.is_empty(), "case {}", case.name);
            continue;
        }
        assert_eq!(rendered.len(), generated.len(), "case {}", case.name);
        for source in &generated {
            let mut expected = source.clone();
            let metadata = expected["metadata"].as_object_mut().unwrap();
            let labels = metadata.entry("labels").or_insert_with(|| json!({}));
            for (key, value) in [
                ("helm.sh/chart", format!("gatehouse-{version}")),
                ("app.kubernetes.io/name", "gatehouse".to_owned()),
                ("app.kubernetes.io/instance", support::RELEASE.to_owned()),
                ("app.kubernetes.io/version", app_version.clone()),
                ("app.kubernetes.io/part-of", "gatehouse".to_owned()),
                ("app.kubernetes.io/managed-by", "Helm".to_owned()),
                ("app.kubernetes.io/component", "crds".to_owned()),
            ] {
                labels[key] = json!(value);
            }
            if case.crds_keep {
                let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
                annotations["helm.sh/resource-policy"] = json!("keep");
            }
            let name = &source["metadata"]["name"];
            let actual = named(&objects, "CustomResourceDefinition", name.as_str().unwrap());
            let difference = support::first_difference(&expected, actual, "");
            assert!(
                difference.is_none(),
                "case {}: CRD {name} is not files/crds.yaml + chart metadata: {difference:?}",
                case.name
            );
        }
    }
}

#[test]
fn unknown_value_keys_are_refused_at_every_level() {
    let Some(helm) = Helm::find() else { return };
    let error = helm.template_error(&["--set", "nope=1"]);
    assert!(error.contains("nope"), "{error}");
    let paths = support::strict_object_paths();
    assert!(paths.len() > 30, "the schema walk found only {paths:?}");
    for path in paths {
        let probe = if path.is_empty() {
            "unknownKeyProbe=1".to_owned()
        } else {
            format!("{path}.unknownKeyProbe=1")
        };
        let error = helm.template_error(&["--set", &probe]);
        assert!(
            error.contains("unknownKeyProbe"),
            "--set {probe} failed for another reason: {error}"
        );
    }
    // Maps accept any well-formed key, but not a misspelt resource name.
    let error = helm.template_error(&["--set", "resources.requests.memroy=1Gi"]);
    assert!(error.contains("memroy"), "{error}");
}

#[test]
fn inconsistent_values_are_refused_with_a_reason() {
    let Some(helm) = Helm::find() else { return };
    let refused: [(&[&str], &str); 4] = [
        (
            &[
                "--set",
                "metrics.serviceMonitor.enabled=true",
                "--set",
                "metrics.service.enabled=false",
            ],
            "metrics.service.enabled",
        ),
        (
            &["--set", "serviceAccount.create=false"],
            "serviceAccount.name",
        ),
        (&["--set", "logFormat=yaml"], "logFormat"),
        (
            &["--set", "watchNamespace=Not_A_Namespace"],
            "watchNamespace",
        ),
    ];
    for (args, reason) in refused {
        let error = helm.template_error(args);
        assert!(error.contains(reason), "{args:?}: {error}");
    }
}

#[test]
fn every_value_is_commented_and_documented() {
    let values_text =
        std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    let lines: Vec<&str> = values_text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let body = line.trim_start().trim_start_matches("- ");
        let is_key = body.split_once(':').is_some_and(|(key, _)| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !is_key || body.starts_with('#') {
            continue;
        }
        let above = lines[..index]
            .last()
            .map(|l| l.trim_start().trim_start_matches("- "))
            .unwrap_or("");
        assert!(
            above.starts_with('#'),
            "values.yaml line {}: `{}` has no comment above it",
            index + 1,
            line.trim()
        );
    }
    let readme =
        std::fs::read_to_string(chart_dir().join("README.md")).expect("charts/gatehouse/README.md");
    let values: Value = serde_saphyr::from_str(&values_text).expect("values.yaml parses");
    let mut leaves = Vec::new();
    support::leaf_paths(&values, "", &mut leaves);
    let undocumented: Vec<&String> = leaves
        .iter()
        .filter(|p| !readme.contains(&format!("| `{p}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "values missing from the README table: {undocumented:?}"
    );
}

#[test]
fn rendered_objects_pass_kubernetes_1_28_schemas() {
    let Some(helm) = Helm::find() else { return };
    let Some(validator) = find_tool("kubernetes-validate", "KUBERNETES_VALIDATE") else {
        return;
    };
    for case in CASES {
        let rendered = helm.template_case(case);
        let (ok, report) = kubernetes_validate_file(&validator, case, &rendered);
        assert!(
            ok && !report.contains("ERROR"),
            "case {}:\n{report}",
            case.name
        );
        let passed = report.lines().filter(|l| l.contains(" passed ")).count();
        let unknown: Vec<&str> = report
            .lines()
            .filter(|l| l.contains("Couldn't find schema"))
            .collect();
        // Only the ServiceMonitor (a Prometheus Operator CRD) has no schema in Kubernetes itself.
        assert!(
            unknown.iter().all(|l| l.contains("ServiceMonitor")),
            "{unknown:?}"
        );
        assert_eq!(
            passed + unknown.len(),
            parse_yaml_stream(&rendered).len(),
            "case {}:\n{report}",
            case.name
        );
    }
}

#[test]
fn chart_app_version_is_the_workspace_version() {
    let chart = support::chart_metadata();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["apiVersion"], "v2");
}

/// The images the chart deploys: each Dockerfile builds one binary from the locked workspace and
/// runs it as uid 65532 on distroless (no shell), exposing the ports of the contract; hadolint
/// (env HADOLINT or PATH) finds nothing to say.
#[test]
fn images_build_one_binary_and_run_it_as_non_root() {
    let images = support::repo_root().join("images");
    for (binary, ports) in [
        ("gatehouse-operator", "EXPOSE 8080"),
        ("gatehouse-proxy", "EXPOSE 8080 9901"),
    ] {
        let file = images
            .join(binary.trim_start_matches("gatehouse-"))
            .join("Dockerfile");
        let text = std::fs::read_to_string(&file).expect("Dockerfile");
        let instructions: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let froms: Vec<&&str> = instructions
            .iter()
            .filter(|l| l.starts_with("FROM "))
            .collect();
        assert_eq!(
            froms,
            [
                &"FROM rust:1.95-bookworm AS builder",
                &"FROM gcr.io/distroless/cc-debian12:nonroot"
            ],
            "{}",
            file.display()
        );
        let build = format!("cargo build --locked --release -p {binary} --bin {binary}");
        assert!(text.contains(&build), "{}: no `{build}`", file.display());
        let runtime = instructions
            .iter()
            .skip_while(|l| !l.starts_with("FROM gcr.io/distroless"))
            .copied()
            .collect::<Vec<_>>();
        assert!(runtime.contains(&"USER 65532:65532"), "{}", file.display());
        assert!(runtime.contains(&ports), "{}: {ports}", file.display());
        let entrypoint = format!("ENTRYPOINT [\"/usr/local/bin/{binary}\"]");
        assert!(runtime.contains(&entrypoint.as_str()), "{}", file.display());
        assert!(
            runtime.iter().all(|l| !l.starts_with("RUN ")),
            "{}: the runtime stage has no shell to RUN with",
            file.display()
        );
    }
    let Some(hadolint) = find_tool("hadolint", "HADOLINT") else {
        return;
    };
    let output = std::process::Command::new(hadolint)
        .arg("--no-color")
        .arg(images.join("operator/Dockerfile"))
        .arg(images.join("proxy/Dockerfile"))
        .output()
        .expect("run hadolint");
    assert!(
        output.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `deploy/gatehouse.yaml`, the raw manifest for installing with `kubectl apply`, is the chart
/// rendered with default values and CRDs disabled (the CRDs come from `crds/`): it is the
/// `crds-disabled` golden, byte for byte.
#[test]
fn the_raw_install_manifest_is_the_rendered_chart() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let golden =
        std::fs::read_to_string(root.join("charts/gatehouse/tests/golden/crds-disabled.yaml"))
            .unwrap();
    let manifest = root.join("deploy/gatehouse.yaml");
    if std::env::var("GATEHOUSE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&manifest, &golden).unwrap();
    }
    assert!(
        std::fs::read_to_string(&manifest).unwrap_or_default() == golden,
        "deploy/gatehouse.yaml differs from the chart's crds-disabled rendering; \
         regenerate with GATEHOUSE_BLESS=1 cargo test -p gatehouse-tests --test chart"
    );
}
