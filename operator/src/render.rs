//! `gatehouse-operator render`: every manifest the operator would apply for some resource files,
//! offline, through the same [`crate::plan::plan`] as the controllers.
//!
//! Offline there is no cluster to ask, so every Service reference is assumed to resolve and an
//! Aggregator's port is taken from the input when it is there (80 otherwise).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gatehouse_api::naming::Kind;
use gatehouse_api::resource::{Bundle, Document, Resource};
use rayon::prelude::*;

use crate::objects::runtime_settings;
use crate::plan::{Found, plan};
use crate::settings::ProxySettings;

/// Why nothing was rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A path could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Files that are not valid resources, or resources that do not validate; one line each.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// A manifest could not be written as YAML.
    #[error("cannot write YAML: {0}")]
    Yaml(String),
}

/// The YAML files named: files as given, directories' `*.yaml`/`*.yml` files sorted by name.
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RenderError> {
    let mut files = Vec::new();
    for path in paths {
        let read_error = |source| RenderError::Read {
            path: path.clone(),
            source,
        };
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_error)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_yaml(p))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Reads every object of the files: the resources, and the Contracts and ContractGrants they
/// expose; objects without a namespace get `namespace`. Files are read and admitted in
/// parallel; resources keep the order of the files.
pub fn read_bundle(files: &[PathBuf], namespace: &str) -> Result<Bundle, RenderError> {
    let read: Vec<Result<Vec<Document>, RenderError>> = files
        .par_iter()
        .map(|file| {
            let text = std::fs::read_to_string(file).map_err(|source| RenderError::Read {
                path: file.clone(),
                source,
            })?;
            Document::from_yaml(&text)
                .map_err(|error| RenderError::Invalid(vec![format!("{}: {error}", file.display())]))
        })
        .collect();
    let mut documents = Vec::new();
    let mut problems = Vec::new();
    for result in read {
        match result {
            Ok(read) => documents.extend(read),
            Err(RenderError::Invalid(found)) => problems.extend(found),
            Err(other) => return Err(other),
        }
    }
    if !problems.is_empty() {
        return Err(RenderError::Invalid(problems));
    }
    Ok(Bundle::new(documents, namespace))
}

/// Resources planned and printed together, then dropped.
const RENDER_BATCH: usize = 64;

/// What `render` prints: every resource's YAML documents, resources in input order. Kept as
/// one piece per resource (no single buffer of the whole stream, grown and copied as it fills)
/// and written out only once every resource rendered, so a failure prints nothing.
#[derive(Debug, Default)]
pub struct Rendered {
    pieces: Vec<String>,
}

impl Rendered {
    /// Writes the YAML stream.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for piece in &self.pieces {
            out.write_all(piece.as_bytes())?;
        }
        out.flush()
    }

    /// Size of the YAML stream in bytes.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(String::len).sum()
    }

    /// Whether nothing was rendered.
    pub fn is_empty(&self) -> bool {
        self.pieces.iter().all(String::is_empty)
    }
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.pieces.iter().try_for_each(|piece| f.write_str(piece))
    }
}

/// Renders every resource: a multi-document YAML stream, resources in input order, each
/// resource's objects in apply order. Any invalid resource fails the whole render. Resources are
/// planned and printed in parallel, and each is dropped once printed, so that the resources and
/// their YAML are not all held at once.
pub fn render_resources(
    resources: Vec<Resource>,
    settings: &ProxySettings,
) -> Result<Rendered, RenderError> {
    render_bundle(Bundle::of_resources(resources), settings)
}

/// Renders every resource of `bundle`, each exposing the bundle's Contracts (see
/// [`render_resources`]). An invalid Contract fails the render, as it would be reported
/// `Accepted=False` in a cluster, and so does a Contract a resource exposes but cannot serve.
pub fn render_bundle(bundle: Bundle, settings: &ProxySettings) -> Result<Rendered, RenderError> {
    let contract_problems: Vec<String> = bundle
        .contract_problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    let Bundle {
        resources, catalog, ..
    } = bundle;
    // What each namespace knows of its Aggregators, built once.
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    for resource in &resources {
        let entry = found
            .entry(resource.namespace().to_owned())
            .or_insert_with(|| Found {
                services: None,
                contract_services: BTreeMap::new(),
                aggregators: BTreeMap::new(),
                aggregators_complete: false,
                certificate_problems: BTreeMap::new(),
                catalog: catalog.clone(),
                compiled: None,
                in_use: None,
            });
        if resource.kind() == Kind::Aggregator {
            let port = u16::try_from(runtime_settings(resource).1.port).unwrap_or(80);
            entry.aggregators.insert(resource.name().to_owned(), port);
        }
    }
    let mut pieces = Vec::with_capacity(resources.len());
    let mut problems = contract_problems;
    // In batches: a batch's resources are dropped once printed. One rayon pass over all of them
    // was not reliably faster and peaked higher (84–97 MiB against 73–81 for 1,000 resources).
    let mut resources = resources.into_iter();
    loop {
        let batch: Vec<Resource> = resources.by_ref().take(RENDER_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        let rendered: Vec<Result<String, RenderError>> = batch
            .par_iter()
            .map(|resource| render_one(resource, &found[resource.namespace()], settings))
            .collect();
        for result in rendered {
            match result {
                Ok(yaml) => pieces.push(yaml),
                Err(RenderError::Invalid(found)) => problems.extend(found),
                Err(other) => return Err(other),
            }
        }
    }
    if problems.is_empty() {
        Ok(Rendered { pieces })
    } else {
        Err(RenderError::Invalid(problems))
    }
}

/// One resource's objects as YAML documents, or its problems (one line each).
fn render_one(
    resource: &Resource,
    found: &Found,
    settings: &ProxySettings,
) -> Result<String, RenderError> {
    let objects = plan(resource, found, settings)
        .map_err(|problems| {
            RenderError::Invalid(
                problems
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {}/{}: {p}",
                            resource.kind().as_str(),
                            resource.namespace(),
                            resource.name()
                        )
                    })
                    .collect(),
            )
        })?
        .objects;
    let mut out = String::new();
    for manifest in objects
        .manifests()
        .map_err(|e| RenderError::Yaml(e.to_string()))?
    {
        let yaml =
            serde_saphyr::to_string(&manifest).map_err(|e| RenderError::Yaml(e.to_string()))?;
        let _ = write!(out, "---\n{yaml}");
    }
    Ok(out)
}

/// `render -f PATH...`: reads, validates, compiles and renders.
pub fn render_paths(
    paths: &[PathBuf],
    namespace: &str,
    settings: &ProxySettings,
) -> Result<Rendered, RenderError> {
    let files = input_files(paths)?;
    render_bundle(read_bundle(&files, namespace)?, settings)
}
