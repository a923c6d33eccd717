//! Running `helm` and `kubernetes-validate` for the chart tests, the golden cases and files, and
//! reading the chart's own files (Chart.yaml, values.schema.json).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Release name of every rendering.
pub const RELEASE: &str = "gatehouse";
/// Release namespace of every rendering.
pub const NAMESPACE: &str = "gatehouse-system";

/// One golden `helm template` case: its extra arguments and what they should produce.
pub struct Case {
    /// Golden file stem under charts/gatehouse/tests/golden/.
    pub name: &'static str,
    /// Extra `helm template` arguments, run from the chart directory.
    pub args: &'static [&'static str],
    /// The namespace the operator is limited to, if any.
    pub watch_namespace: Option<&'static str>,
    /// Whether the CRDs are rendered.
    pub crds_enabled: bool,
    /// Whether the CRDs carry the keep policy.
    pub crds_keep: bool,
    /// Whether leader election is on.
    pub leader_election: bool,
    /// Operator replicas.
    pub replicas: u64,
}

/// The golden cases: defaults, CRDs off, one namespace, a production values file, one replica.
pub const CASES: &[Case] = &[
    Case {
        name: "default",
        args: &[],
        watch_namespace: None,
        crds_enabled: true,
        crds_keep: true,
        leader_election: true,
        replicas: 2,
    },
    Case {
        name: "crds-disabled",
        args: &["--set", "crds.enabled=false"],
        watch_namespace: None,
        crds_enabled: false,
        crds_keep: true,
        leader_election: true,
        replicas: 2,
    },
    Case {
        name: "single-namespace",
        args: &["--set", "watchNamespace=shop"],
        watch_namespace: Some("shop"),
        crds_enabled: true,
        crds_keep: true,
        leader_election: true,
        replicas: 2,
    },
    Case {
        name: "custom-values",
        args: &["--values", "tests/values/custom.yaml"],
        watch_namespace: None,
        crds_enabled: true,
        crds_keep: false,
        leader_election: true,
        replicas: 3,
    },
    Case {
        name: "single-replica",
        args: &[
            "--set",
            "replicaCount=1",
            "--set",
            "leaderElection.enabled=false",
        ],
        watch_namespace: None,
        crds_enabled: true,
        crds_keep: true,
        leader_election: false,
        replicas: 1,
    },
];

/// The repository root (the parent of the tests crate).
pub fn repo_root() -> PathBuf {
    let tests_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_crate
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// charts/gatehouse in this repository.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/gatehouse")
}

/// Chart.yaml, parsed.
pub fn chart_metadata() -> Value {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml")).expect("Chart.yaml");
    serde_saphyr::from_str(&text).expect("Chart.yaml parses")
}

fn tool_required() -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("GATEHOUSE_REQUIRE_HELM")
}

/// A tool from its environment variable, else from PATH. When missing: panics under CI or
/// GATEHOUSE_REQUIRE_HELM=1, otherwise prints a skip notice and returns None.
pub fn find_tool(name: &str, variable: &str) -> Option<PathBuf> {
    let from_variable = std::env::var_os(variable)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let from_path = || {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    let found = from_variable.or_else(from_path);
    if found.is_none() {
        assert!(
            !tool_required(),
            "`{name}` is required (CI or GATEHOUSE_REQUIRE_HELM is set) but is neither in {variable} nor on PATH; \
             `bash charts/install-chart-tools.sh .tools/bin` installs helm, kubernetes-validate and hadolint"
        );
        eprintln!(
            "SKIPPED: `{name}` not found in {variable} or PATH (set GATEHOUSE_REQUIRE_HELM=1 to fail instead)"
        );
    }
    found
}

/// A real helm binary, run from the chart directory with its own empty config and cache homes.
pub struct Helm {
    program: PathBuf,
}

impl Helm {
    /// Finds helm (env HELM or PATH); None means skip.
    pub fn find() -> Option<Self> {
        find_tool("helm", "HELM").map(|program| Self { program })
    }

    /// Runs helm: (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
        let output = Command::new(&self.program)
            .args(args)
            .current_dir(chart_dir())
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.program.display()));
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("helm prints UTF-8");
        (
            output.status.success(),
            text(output.stdout),
            text(output.stderr),
        )
    }

    fn template(&self, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["template", RELEASE, ".", "--namespace", NAMESPACE];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Renders a case; panics when helm fails or prints anything on stderr (a warning).
    pub fn template_case(&self, case: &Case) -> String {
        let (ok, stdout, stderr) = self.template(case.args);
        assert!(
            ok && stderr.is_empty(),
            "helm template {:?}:\n{stderr}",
            case.args
        );
        stdout
    }

    /// Renders with values that must be refused; returns helm's error.
    pub fn template_error(&self, extra: &[&str]) -> String {
        let (ok, _, stderr) = self.template(extra);
        assert!(!ok, "helm template {extra:?} should have failed");
        stderr
    }
}

/// Every non-empty document of a YAML stream, as JSON values.
pub fn parse_yaml_stream(text: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).expect("valid YAML stream");
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

const CRD_SOURCE: &str = "# Source: gatehouse/templates/crds.yaml";

/// The golden form of a rendering: helm's output, except that each CRD keeps only its metadata
/// (its spec is files/crds.yaml, compared by `crds_follow_crds_enabled_and_keep`), so that a CRD
/// change is blessed once, in files/crds.yaml, and not in every golden.
pub fn golden_text(rendered: &str) -> String {
    let mut documents: Vec<String> = Vec::new();
    for line in rendered.split_inclusive('\n') {
        match documents.last_mut() {
            Some(document) if line != "---\n" => document.push_str(line),
            _ => documents.push(String::new()),
        }
    }
    let mut out = String::new();
    for document in documents {
        out.push_str("---\n");
        if document.starts_with(CRD_SOURCE) {
            let head = document
                .split("\nspec:\n")
                .next()
                .expect("split yields a head");
            out.push_str(head);
            out.push_str("\n# spec: as in files/crds.yaml (compared by tests/tests/chart.rs, not stored here)\n");
        } else {
            out.push_str(&document);
        }
    }
    out
}

/// Compares a golden file, or rewrites it under GATEHOUSE_BLESS=1.
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var("GATEHOUSE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (GATEHOUSE_BLESS=1 writes it)", path.display()));
    if expected == actual {
        return;
    }
    let mismatch = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a);
    let line = mismatch.unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    panic!(
        "{} differs from `helm template` at line {}:\n  golden:   {:?}\n  rendered: {:?}\n\
         (GATEHOUSE_BLESS=1 rewrites it: review the diff before committing)",
        path.display(),
        line + 1,
        expected.lines().nth(line),
        actual.lines().nth(line),
    );
}

/// The `--set` paths of every object in values.schema.json that refuses unknown keys (array items
/// as `[0]`); panics on an object that neither refuses unknown keys nor is a key-checked map.
pub fn strict_object_paths() -> Vec<String> {
    let text = std::fs::read_to_string(chart_dir().join("values.schema.json"))
        .expect("values.schema.json");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let mut paths = Vec::new();
    walk_schema(&schema, &schema, String::new(), &mut paths);
    paths
}

fn walk_schema(root: &Value, node: &Value, path: String, paths: &mut Vec<String>) {
    if let Some(reference) = node["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/definitions/")
            .expect("local definitions only");
        return walk_schema(root, &root["definitions"][name], path, paths);
    }
    for alternative in node["anyOf"].as_array().into_iter().flatten() {
        walk_schema(root, alternative, path.clone(), paths);
    }
    match node["type"].as_str() {
        Some("object") if node["additionalProperties"] == false => {
            for (key, child) in node["properties"].as_object().expect("properties") {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk_schema(root, child, child_path, paths);
            }
            paths.push(path);
        }
        Some("object") => assert!(
            node["additionalProperties"].is_object() && node.get("propertyNames").is_some(),
            "schema object at `{path}` accepts unknown keys"
        ),
        Some("array") => walk_schema(root, &node["items"], format!("{path}[0]"), paths),
        _ => {}
    }
}

/// Dotted paths of the leaves of a values tree (scalars, lists and empty maps).
pub fn leaf_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_paths(child, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// Validates a rendering against the Kubernetes 1.28 schemas, strictly (unknown fields refused):
/// (success, report).
pub fn kubernetes_validate_file(validator: &Path, case: &Case, rendered: &str) -> (bool, String) {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chart-{}.yaml", case.name));
    std::fs::write(&file, rendered).expect("write rendering");
    let output = Command::new(validator)
        .args(["--kubernetes-version", "1.28.0", "--strict"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", validator.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// The first JSON path where two values differ (numbers compared by value), with both sides.
pub fn first_difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = e.keys().chain(a.keys()).collect();
            keys.into_iter().find_map(|key| {
                let (left, right) = (
                    e.get(key).unwrap_or(&Value::Null),
                    a.get(key).unwrap_or(&Value::Null),
                );
                first_difference(left, right, &format!("{path}.{key}"))
            })
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]"))),
        // Helm's toYaml writes 1000000.0 as 1000000: the same number to the API server.
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => None,
        _ if expected == actual => None,
        _ => Some(format!("{path}: expected {expected}, rendered {actual}")),
    }
}
