//! Where route tables come from: a RouteTable JSON file, plain or gzipped (`--routes FILE`), or
//! in Kubernetes the mounted route ConfigMap (`--routes DIR`: its `routes.json.gz`, else its
//! `routes.json`), or a folder of Gateway/EdgeService/Aggregator YAML, with the Contracts and
//! ContractGrants they expose, compiled here (`--from`).
//!
//! Files are always opened by path, so a kubelet update — which swaps the volume's `..data`
//! symlink to a new timestamped directory — is seen as new content at the same path.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use gatehouse_api::compile::CompileContext;
use gatehouse_api::naming::proxy_name;
use gatehouse_api::resource::{Bundle, Document, ReadError};
use gatehouse_api::route_table::{FILE_NAME, RouteTable, TableError, TableSource, digest_of};
use gatehouse_api::table_file::{COMPRESSED_FILE_NAME, UnpackError, unpack};
use gatehouse_api::validate::{Problem, check_table, join};

/// Where the proxy reads its table.
#[derive(Clone, Debug)]
pub enum TableOrigin {
    /// A RouteTable JSON file (gzipped or not), or a directory holding one (see
    /// [`table_file_in`]).
    File(PathBuf),
    /// A folder of resource YAML files (`*.yaml`, `*.yml`), compiled and merged.
    Folder(PathBuf),
}

/// The raw content of the origin at one moment; equal snapshots give equal tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    files: Vec<(PathBuf, Vec<u8>)>,
}

/// A cheap summary of the origin's files (identity, size, modification time) used to notice
/// changes without reading contents every poll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, u64, u64, u64, i64, i64)>);

/// Why a table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The table file is gzipped but does not unpack.
    #[error("{path}: {source}")]
    Unpack {
        /// The file.
        path: PathBuf,
        /// Why.
        source: UnpackError,
    },
    /// The table file was refused.
    #[error("{path}: {source}")]
    Table {
        /// The file.
        path: PathBuf,
        /// Why.
        source: TableError,
    },
    /// A resource file was refused.
    #[error("{path}: {source}")]
    Resource {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ReadError,
    },
    /// A resource does not compile.
    #[error("{resource} is not accepted: {}", join(.problems))]
    Compile {
        /// `Kind/name`.
        resource: String,
        /// What is wrong.
        problems: Vec<Problem>,
    },
    /// The merged table is inconsistent.
    #[error("merged table is inconsistent: {}", join(.0))]
    Merged(Vec<Problem>),
    /// A table delivered whole (the route ConfigMap read through the API) is not one.
    #[error("{0}")]
    Delivered(String),
    /// The folder holds no resource.
    #[error("{0} holds no Gateway, EdgeService or Aggregator (*.yaml, *.yml)")]
    Empty(PathBuf),
}

impl TableOrigin {
    /// The files the origin consists of now, sorted.
    fn files(&self) -> Result<Vec<PathBuf>, LoadError> {
        match self {
            Self::File(path) => Ok(vec![table_file_in(path)]),
            Self::Folder(dir) => {
                let entries = fs::read_dir(dir).map_err(|source| LoadError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let mut files: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
                        // Skips the kubelet's `..data`-style entries and editor temp files.
                        let hidden = p
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_none_or(|n| n.starts_with('.'));
                        yaml && !hidden && p.is_file()
                    })
                    .collect();
                files.sort();
                Ok(files)
            }
        }
    }

    /// Identity, size and modification time of each file (following symlinks).
    pub fn fingerprint(&self) -> Result<Fingerprint, LoadError> {
        let mut entries = Vec::new();
        for path in self.files()? {
            let meta = fs::metadata(&path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            entries.push((
                path,
                meta.dev(),
                meta.ino(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
            ));
        }
        Ok(Fingerprint(entries))
    }

    /// Reads every file.
    pub fn snapshot(&self) -> Result<Snapshot, LoadError> {
        let mut files = Vec::new();
        for path in self.files()? {
            let bytes = fs::read(&path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            files.push((path, bytes));
        }
        Ok(Snapshot { files })
    }

    /// Parses and checks a snapshot into a table, with the digest of a RouteTable file's JSON
    /// (however it is packed: what the operator reports as the digest of the table it wrote, and
    /// the name the proxy gives it); no digest for a folder, whose table is compiled here. A
    /// gzipped file is unpacked once for both.
    pub fn table(&self, snapshot: &Snapshot) -> (Result<RouteTable, LoadError>, Option<String>) {
        match self {
            Self::File(_) => {
                let (path, bytes) = snapshot
                    .files
                    .first()
                    .map_or((Path::new(""), &[][..]), |(p, b)| {
                        (p.as_path(), b.as_slice())
                    });
                let json = match unpack(bytes) {
                    Ok(json) => json,
                    Err(source) => {
                        let error = LoadError::Unpack {
                            path: path.to_path_buf(),
                            source,
                        };
                        return (Err(error), Some(digest_of(bytes)));
                    }
                };
                let table = RouteTable::from_bytes(&json).map_err(|source| LoadError::Table {
                    path: path.to_path_buf(),
                    source,
                });
                (table, Some(digest_of(&json)))
            }
            Self::Folder(dir) => (compile_folder(dir, snapshot), None),
        }
    }
}

/// The table file a `--routes` path names: the path itself, or for a directory (the mounted
/// route ConfigMap) its `routes.json.gz` when it holds one, else its `routes.json`. Looked up
/// at every read, since the operator switches between the two as the table grows or shrinks.
fn table_file_in(path: &Path) -> PathBuf {
    if !path.is_dir() {
        return path.to_path_buf();
    }
    let packed = path.join(COMPRESSED_FILE_NAME);
    if packed.is_file() {
        packed
    } else {
        path.join(FILE_NAME)
    }
}

/// Compiles every resource of the folder, each with the folder's Contracts and ContractGrants.
/// One resource: its table as the operator would write it. Several: one table serving all
/// their routes, each route id prefixed with the name of the proxy the operator would make for
/// its resource (`public-gateway/v1/product`). A Contract that is invalid, or that a resource
/// exposes but cannot serve, refuses the folder (the previous table keeps serving).
fn compile_folder(dir: &Path, snapshot: &Snapshot) -> Result<RouteTable, LoadError> {
    let mut documents = Vec::new();
    for (path, bytes) in &snapshot.files {
        let text = String::from_utf8_lossy(bytes);
        let read = Document::from_yaml(&text).map_err(|source| LoadError::Resource {
            path: path.clone(),
            source,
        })?;
        documents.extend(read);
    }
    let bundle = Bundle::new(documents, "default");
    let problems = bundle.contract_problems();
    if !problems.is_empty() {
        return Err(LoadError::Compile {
            resource: "a Contract".to_owned(),
            problems,
        });
    }
    // Global rate limits of standalone resources use the proxy's `--redis`.
    let context = CompileContext {
        redis_from_proxy: true,
        catalog: bundle.catalog.clone(),
        ..CompileContext::default()
    };
    let mut tables = Vec::new();
    for resource in &bundle.resources {
        let table = resource
            .compile(&context)
            .map_err(|problems| LoadError::Compile {
                resource: format!("{} {}", resource.kind().as_str(), resource.name()),
                problems,
            })?;
        tables.push((proxy_name(resource.kind(), resource.name()), table));
    }
    match tables.len() {
        0 => Err(LoadError::Empty(dir.to_path_buf())),
        1 => Ok(tables.remove(0).1),
        _ => merge_tables(dir, tables),
    }
}

fn merge_tables(dir: &Path, tables: Vec<(String, RouteTable)>) -> Result<RouteTable, LoadError> {
    // Route ids carry their proxy's name too, so no `NAMESPACE/NAME/` prefix names a
    // Contract's routes here: the merged table lists no `contracts`.
    let mut merged = RouteTable::empty(TableSource {
        kind: "Standalone".to_owned(),
        namespace: tables
            .first()
            .map(|(_, t)| t.source.namespace.clone())
            .unwrap_or_default(),
        name: dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("standalone")
            .to_owned(),
        generation: None,
    });
    for (prefix, table) in tables {
        merged.redis = merged.redis.or(table.redis);
        for client in table.clients {
            if !merged.clients.iter().any(|c| c.name == client.name) {
                merged.clients.push(client);
            }
        }
        for mut route in table.routes {
            route.id = format!("{prefix}/{}", route.id);
            merged.routes.push(route);
        }
    }
    merged.clients.sort_by(|a, b| a.name.cmp(&b.name));
    merged.routes.sort_by(|a, b| a.id.cmp(&b.id));
    check_table(&merged).map_err(LoadError::Merged)?;
    Ok(merged)
}
