//! `gatehouse-operator openapi -f PATH...`: offline, the OpenAPI 3.1 documents each Gateway and
//! EdgeService of some resource files serves on its proxy (`/.well-known/gatehouse/openapi.json`
//! and one document per published or deprecated contract version), by resource and path: what
//! a pull request's CI can lint or publish to a developer portal before anything is applied.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gatehouse_api::compile::CompileContext;
use gatehouse_api::naming::Kind;
use gatehouse_api::openapi::{self, INDEX_PATH};
use serde_json::Value;

use crate::render::{RenderError, input_files, read_bundle};

/// The documents, by resource (`KIND NAMESPACE/NAME`), then by the path its proxy serves them
/// at. Every resource must compile as `render` requires; Aggregators serve no contract.
pub fn documents_paths(
    paths: &[PathBuf],
    namespace: &str,
) -> Result<BTreeMap<String, BTreeMap<String, Value>>, RenderError> {
    let bundle = read_bundle(&input_files(paths)?, namespace)?;
    let context = CompileContext {
        catalog: bundle.catalog.clone(),
        ..CompileContext::default()
    };
    let mut problems = Vec::new();
    let mut documents = BTreeMap::new();
    for resource in bundle
        .resources
        .iter()
        .filter(|r| r.kind() != Kind::Aggregator)
    {
        let name = format!(
            "{} {}/{}",
            resource.kind().as_str(),
            resource.namespace(),
            resource.name()
        );
        match resource
            .compile_over(&context, None)
            .and_then(|compiled| compiled.strict())
        {
            Ok(table) => {
                let mut served: BTreeMap<String, Value> = openapi::documents(&table)
                    .into_iter()
                    .map(|(key, document)| (openapi::document_path(&key), document))
                    .collect();
                served.insert(INDEX_PATH.to_owned(), openapi::index(&table));
                documents.insert(name, served);
            }
            Err(found) => problems.extend(found.iter().map(|p| format!("{name}: {p}"))),
        }
    }
    if problems.is_empty() {
        Ok(documents)
    } else {
        Err(RenderError::Invalid(problems))
    }
}
