//! The shop's examples rendered the way `gatehouse-operator render` renders them, and the route
//! tables taken out of the rendered route ConfigMaps.

use std::path::PathBuf;
use std::process::Command;

use gatehouse_api::naming::{Kind, proxy_name};
use gatehouse_api::route_table::{FILE_NAME, RouteTable};
use gatehouse_operator::objects::DIGEST_ANNOTATION;
use gatehouse_operator::render::render_paths;
use gatehouse_operator::settings::ProxySettings;
use serde_json::Value;

use gatehouse_tests::binaries;

/// Namespace the examples are rendered into (they name none).
pub const NAMESPACE: &str = "shop";

/// The example folders, in the order they are passed to `render -f`.
pub fn example_dirs() -> Vec<PathBuf> {
    ["gateway", "edge", "aggregator"]
        .iter()
        .map(|dir| binaries::workspace().join("examples").join(dir))
        .collect()
}

/// A rendered multi-document YAML stream.
pub struct Rendered {
    /// The YAML text as printed.
    pub yaml: String,
    /// Every document, as JSON.
    pub objects: Vec<Value>,
}

impl Rendered {
    /// Through the library: `gatehouse_operator::render::render_paths`, what `render` calls.
    pub fn by_library() -> Self {
        let yaml = render_paths(&example_dirs(), NAMESPACE, &ProxySettings::default())
            .unwrap_or_else(|e| panic!("the examples render: {e}"));
        Self::parse(yaml.to_string())
    }

    /// Through the real binary: `gatehouse-operator render -f DIR... -n shop`.
    pub fn by_binary() -> Self {
        let output = Command::new(binaries::operator())
            .arg("render")
            .arg("-f")
            .args(example_dirs())
            .args(["-n", NAMESPACE])
            .output()
            .expect("gatehouse-operator runs");
        assert!(
            output.status.success(),
            "gatehouse-operator render failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Self::parse(String::from_utf8(output.stdout).expect("render prints UTF-8"))
    }

    fn parse(yaml: String) -> Self {
        let objects: Vec<Value> =
            serde_saphyr::from_multiple(&yaml).expect("render prints a YAML stream");
        Self { yaml, objects }
    }

    /// The one object of `kind` named `name`.
    pub fn object(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .objects
            .iter()
            .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {kind} {name}, found {}",
            found.len()
        );
        found[0]
    }

    /// The route ConfigMap of a resource's proxy.
    pub fn route_config_map(&self, kind: Kind, name: &str) -> RouteConfigMap {
        let config_map = self.object("ConfigMap", &proxy_name(kind, name));
        let json = config_map["data"][FILE_NAME]
            .as_str()
            .unwrap_or_else(|| panic!("ConfigMap of {name} holds no {FILE_NAME}"))
            .to_owned();
        let digest = config_map["metadata"]["annotations"][DIGEST_ANNOTATION]
            .as_str()
            .expect("the route ConfigMap names its table digest")
            .to_owned();
        RouteConfigMap { json, digest }
    }
}

/// What a route ConfigMap carries.
pub struct RouteConfigMap {
    /// `routes.json` exactly as rendered.
    pub json: String,
    /// Its `gatehouse.dev/route-table-digest` annotation.
    pub digest: String,
}

impl RouteConfigMap {
    /// The table, parsed and checked as the proxy does.
    pub fn table(&self) -> RouteTable {
        RouteTable::from_bytes(self.json.as_bytes())
            .unwrap_or_else(|e| panic!("the rendered table loads: {e}"))
    }
}
