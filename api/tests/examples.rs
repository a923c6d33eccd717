//! Every example compiles; every refused example is refused with the message it documents.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use gatehouse_api::compile::CompileContext;
use gatehouse_api::resource::{Bundle, Document, ReadError, Resource};
use gatehouse_api::route_table::RouteTable;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The `# expect: MESSAGE` line of a refused example.
fn expected_message(text: &str, file: &Path) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no '# expect:' line", file.display()))
        .to_owned()
}

#[test]
fn every_example_is_admitted_and_compiles_to_a_table_the_proxy_accepts() {
    let mut compiled = 0;
    for folder in ["gateway", "edge", "aggregator"] {
        for file in yaml_files(&examples_dir().join(folder)) {
            let text = fs::read_to_string(&file).unwrap();
            let resources =
                Resource::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(
                !resources.is_empty(),
                "{} holds no resource",
                file.display()
            );
            for resource in resources {
                let table = resource
                    .compile(&CompileContext::default())
                    .unwrap_or_else(|p| panic!("{}: {p:?}", file.display()));
                assert!(!table.routes.is_empty());
                // What the operator writes, the proxy must read back unchanged.
                let back = RouteTable::from_bytes(&table.to_bytes())
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert_eq!(back, table);
                compiled += 1;
            }
        }
    }
    assert_eq!(
        compiled, 7,
        "five Gateways (two over HTTPS, one for gRPC, one to TLS backends, one limiting \
         access), one EdgeService, one Aggregator"
    );
}

#[test]
fn compiling_twice_gives_identical_bytes() {
    for folder in ["gateway", "edge", "aggregator"] {
        for file in yaml_files(&examples_dir().join(folder)) {
            let text = fs::read_to_string(&file).unwrap();
            let first = Resource::from_yaml(&text).unwrap()[0]
                .compile(&CompileContext::default())
                .unwrap()
                .to_bytes();
            let second = Resource::from_yaml(&text).unwrap()[0]
                .compile(&CompileContext::default())
                .unwrap()
                .to_bytes();
            assert_eq!(first, second, "{}", file.display());
        }
    }
}

#[test]
fn every_invalid_example_is_refused_at_admission_with_its_message() {
    let files = yaml_files(&examples_dir().join("invalid"));
    assert!(files.len() >= 8);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let expected = expected_message(&text, &file);
        match Document::from_yaml(&text) {
            Err(ReadError::Rejected { problems, .. }) => {
                let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
                assert!(
                    shown.iter().any(|p| p.contains(&expected)),
                    "{}: expected {expected:?}, got {shown:#?}",
                    file.display()
                );
            }
            other => panic!("{}: expected rejection, got {other:?}", file.display()),
        }
    }
}

#[test]
fn every_not_accepted_example_passes_admission_and_fails_validation_with_its_message() {
    let files = yaml_files(&examples_dir().join("not-accepted"));
    assert!(files.len() >= 6);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let expected = expected_message(&text, &file);
        let documents = Document::from_yaml(&text)
            .unwrap_or_else(|e| panic!("{}: the API server would refuse it: {e}", file.display()));
        let bundle = Bundle::new(documents, "default");
        let mut problems = bundle.contract_problems();
        let context = CompileContext {
            catalog: bundle.catalog.clone(),
            ..CompileContext::default()
        };
        for resource in &bundle.resources {
            problems.extend(resource.compile(&context).err().unwrap_or_default());
        }
        assert!(!problems.is_empty(), "{} is accepted", file.display());
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            shown.iter().any(|p| p.contains(&expected)),
            "{}: expected {expected:?}, got {shown:#?}",
            file.display()
        );
    }
}
