//! `gatehouse-operator`: the command line of the operator (`crds`, `render`, `run`).
#![forbid(unsafe_code)]

mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use gatehouse_api::crd::{RedisStore, RedisTls, SecretRef};
use gatehouse_operator::diff::FailOn;
use gatehouse_operator::settings::{DEFAULT_PROXY_IMAGE, NetworkPolicySettings, ProxySettings};

/// Gatehouse operator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How the proxy pods are run (shared by `render` and `run`).
#[derive(clap::Args, Clone, Debug)]
struct ProxyArgs {
    /// Proxy container image.
    #[arg(long, default_value = DEFAULT_PROXY_IMAGE)]
    proxy_image: String,
    /// Proxy image pull policy.
    #[arg(long, default_value = "IfNotPresent")]
    proxy_image_pull_policy: String,
    /// Cluster DNS domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Guard proxy pods with a NetworkPolicy unless their resource says otherwise
    /// (`spec.deployment.networkPolicy`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    proxy_network_policy: bool,
    /// The operator's namespace, allowed on the proxies' admin port (default: the pod's).
    #[arg(long, env = "POD_NAMESPACE", value_parser = namespace_name)]
    operator_namespace: Option<String>,
    /// A namespace allowed on the proxies' admin port to scrape metrics (repeatable).
    #[arg(long = "monitoring-namespace", value_parser = namespace_name)]
    monitoring_namespaces: Vec<String>,
    /// The Redis server (`host:port`) of global rate limits for resources without
    /// `spec.redis`.
    #[arg(long, value_name = "HOST:PORT", value_parser = redis_address)]
    redis_address: Option<String>,
    /// ACL user of `--redis-address`.
    #[arg(long, requires = "redis_address")]
    redis_username: Option<String>,
    /// Secret holding the password of `--redis-address` under `password`, looked up in each
    /// resource's namespace.
    #[arg(long, value_name = "NAME", requires = "redis_address", value_parser = namespace_name)]
    redis_password_secret: Option<String>,
    /// Speak TLS to `--redis-address`.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, requires = "redis_address")]
    redis_tls: bool,
    /// Secret holding `ca.crt`, the authorities of `--redis-address`'s certificate (in each
    /// resource's namespace; default: the web PKI roots).
    #[arg(long, value_name = "NAME", requires = "redis_tls", value_parser = namespace_name)]
    redis_ca_secret: Option<String>,
    /// How long a request waits for `--redis-address` (e.g. `5ms`).
    #[arg(long, requires = "redis_address")]
    redis_timeout: Option<String>,
    /// How recent a client's call of a contract version keeps the version from being retired
    /// or removed (e.g. `720h`, 30 days; `0s` never refuses). The annotation
    /// `gatehouse.dev/retire-in-use` retires a version anyway.
    #[arg(long, default_value = "720h", value_parser = gatehouse_api::duration::parse)]
    usage_window: std::time::Duration,
}

/// A namespace name (a DNS label), refused at start rather than in every NetworkPolicy.
fn namespace_name(text: &str) -> Result<String, String> {
    let valid = (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a namespace name (a DNS label)"))
    }
}

/// A Redis address with a usable port, refused at start rather than in every resource.
fn redis_address(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['/', '@', ' ']) {
        return Err(format!("{text:?} is not host:port"));
    }
    match gatehouse_api::rate_limits::address_problem(text) {
        Some(problem) => Err(problem),
        None => Ok(text.to_owned()),
    }
}

fn secret(name: String) -> SecretRef {
    SecretRef { name }
}

impl ProxyArgs {
    fn settings(&self) -> ProxySettings {
        ProxySettings {
            image: self.proxy_image.clone(),
            image_pull_policy: self.proxy_image_pull_policy.clone(),
            cluster_domain: self.cluster_domain.clone(),
            network_policy: NetworkPolicySettings {
                enabled: self.proxy_network_policy,
                admin_namespaces: self
                    .operator_namespace
                    .iter()
                    .chain(&self.monitoring_namespaces)
                    .cloned()
                    .collect(),
            },
            redis: self.redis_address.as_ref().map(|address| RedisStore {
                address: address.clone(),
                username: self.redis_username.clone(),
                password_secret_ref: self.redis_password_secret.clone().map(secret),
                tls: self.redis_tls.then(|| RedisTls {
                    ca_secret_ref: self.redis_ca_secret.clone().map(secret),
                }),
                timeout: self.redis_timeout.clone(),
            }),
            usage_window: self.usage_window,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML (what `crds/` holds).
    Crds,
    /// Print, offline, every manifest the operator would apply for these resources.
    Render {
        /// Resource files or directories of `*.yaml` files.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Namespace of resources that name none.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        #[command(flatten)]
        proxy: ProxyArgs,
    },
    /// Print every change between two versions of resource files to the contract versions
    /// they publish, each with its class (breaking, possibly breaking, passive); exit 1 when
    /// one is breaking (or, with `--fail-on possibly-breaking`, possibly breaking).
    Diff {
        /// The files before: a resource file or a directory of `*.yaml` files.
        old: PathBuf,
        /// The files after.
        new: PathBuf,
        /// Namespace of resources that name none.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// The class of change that fails.
        #[arg(long, value_enum, default_value_t = FailOn::Breaking)]
        fail_on: FailOn,
    },
    /// Print, offline, the OpenAPI 3.1 documents each Gateway and EdgeService of these
    /// resources serves (one per published or deprecated contract version, and their index),
    /// as JSON by resource and by the path its proxy serves them at.
    Openapi {
        /// Resource files or directories of `*.yaml` files (with the Contracts they expose).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Namespace of resources that name none.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Run the controllers.
    Run {
        /// Watch only this namespace (default: all).
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        proxy: ProxyArgs,
        /// Address of /healthz, /readyz and /metrics.
        #[arg(long, default_value = "0.0.0.0:8080")]
        admin_listen: SocketAddr,
        /// Elect a leader among replicas through a Lease.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        leader_election: bool,
        /// Namespace of the leader Lease (default: the pod's namespace).
        #[arg(long, env = "POD_NAMESPACE")]
        lease_namespace: Option<String>,
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Json)]
        log_format: LogFormat,
        /// How often the proxy pods are asked who called which contract version (at least 1s).
        #[arg(long, default_value = "60s", value_parser = gatehouse_api::duration::parse)]
        usage_interval: std::time::Duration,
    },
}

fn main() -> ExitCode {
    // A reconcile of a 10,000-route table allocates and frees tens of MiB; with lazily committed
    // arenas what it freed leaves the RSS (bench/RESULTS.md, "Operator memory").
    gatehouse_allocator::restart_with_lazy_arenas("gatehouse-operator");
    match Cli::parse().command {
        Command::Crds => match gatehouse_api::crd::definitions_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Diff {
            old,
            new,
            namespace,
            fail_on,
        } => match gatehouse_operator::diff::diff_paths(&[old], &[new], &namespace) {
            Ok(diff) => {
                print!("{}", diff.report());
                if diff.fails(fail_on) {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(error) => {
                eprintln!("error: cannot compare:\n{error}");
                ExitCode::from(2)
            }
        },
        Command::Openapi { paths, namespace } => {
            match gatehouse_operator::openapi::documents_paths(&paths, &namespace) {
                Ok(documents) => match serde_json::to_string_pretty(&documents) {
                    Ok(json) => {
                        println!("{json}");
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        eprintln!("error: {error}");
                        ExitCode::FAILURE
                    }
                },
                Err(error) => {
                    eprintln!("error: no documents:\n{error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Render {
            paths,
            namespace,
            proxy,
        } => {
            match gatehouse_operator::render::render_paths(&paths, &namespace, &proxy.settings()) {
                Ok(rendered) => {
                    let stdout = std::io::stdout();
                    match rendered.write_to(&mut std::io::BufWriter::new(stdout.lock())) {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(error) => {
                            eprintln!("error: cannot write the rendered manifests: {error}");
                            ExitCode::FAILURE
                        }
                    }
                }
                Err(error) => {
                    eprintln!("error: nothing rendered:\n{error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run {
            namespace,
            proxy,
            admin_listen,
            leader_election,
            lease_namespace,
            log_format,
            usage_interval,
        } => {
            run::init_logging(log_format == LogFormat::Json);
            let options = run::RunOptions {
                namespace,
                settings: proxy.settings(),
                admin_listen,
                leader_election,
                lease_namespace,
                usage_interval,
            };
            match run::run(options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "operator stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
