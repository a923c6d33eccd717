//! The real `gatehouse-operator` and `gatehouse-proxy` executables. Cargo gives a test only the
//! binaries of its own package, so they are built here with the same cargo, profile and target
//! directory (a no-op when `cargo test --workspace` built them already), or taken from
//! `GATEHOUSE_OPERATOR_BIN` / `GATEHOUSE_PROXY_BIN`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

/// Path of `gatehouse-operator`.
pub fn operator() -> PathBuf {
    binary("GATEHOUSE_OPERATOR_BIN", "gatehouse-operator")
}

/// Path of `gatehouse-proxy`.
pub fn proxy() -> PathBuf {
    binary("GATEHOUSE_PROXY_BIN", "gatehouse-proxy")
}

/// Path of `gatehouse-demo` (the quickstart).
pub fn demo() -> PathBuf {
    binary("GATEHOUSE_DEMO_BIN", "gatehouse-demo")
}

fn binary(variable: &str, name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(variable) {
        return PathBuf::from(path);
    }
    built()
        .get(name)
        .unwrap_or_else(|| panic!("cargo did not report the {name} executable"))
        .clone()
}

/// Builds the binaries once per test process (in one cargo call) and returns their paths.
///
/// The call asks for what `cargo test --workspace` builds (every package, its binaries and its
/// tests), so that cargo resolves the same dependency features and finds everything built
/// already (but the demo's executable, which no test of its package needs): a call for the
/// binaries alone resolves them without the dev-dependencies' features and builds a
/// second copy of most dependencies. Nor does it inherit the variables cargo sets for this
/// test process (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`…): build scripts (ring's) rerun when
/// those change, which would rebuild everything above them.
fn built() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--workspace", "--bins", "--tests"])
            .args(["--message-format", "json-render-diagnostics"])
            .current_dir(workspace())
            .stderr(Stdio::inherit());
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_for_this_test) {
                command.env_remove(name);
            }
        }
        if built_in_release() {
            command.arg("--release");
        }
        let output = command.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo build of the binaries failed"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| {
                message["profile"]["test"] == false
                    && message["target"]["kind"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
            })
            .filter_map(|message| {
                let name = message["target"]["name"].as_str()?.to_owned();
                let executable = message["executable"].as_str()?;
                Some((name, PathBuf::from(executable)))
            })
            .collect()
    })
}

/// True for a variable cargo sets for a test process, not for cargo itself.
fn set_for_this_test(name: &str) -> bool {
    [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
        || ["OUT_DIR", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR"].contains(&name)
}

/// True when this test executable was built with `--release` (then so are the binaries).
fn built_in_release() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .is_some_and(|profile_dir| profile_dir.ends_with("release"))
}
