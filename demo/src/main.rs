//! `gatehouse-demo`: the quickstart. Starts the demo shop's backends on loopback and a
//! standalone Gatehouse proxy serving `examples/quickstart/` in front of them — no cluster.
#![forbid(unsafe_code)]

mod shop;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use gatehouse_proxy::app::run_proxy;
use gatehouse_proxy::cli::Cli;

/// Gatehouse quickstart: a demo shop behind a standalone Gatehouse proxy.
#[derive(Parser)]
#[command(name = "gatehouse-demo", version, about)]
struct Args {
    /// Folder of Gateway, EdgeService and Aggregator resources to serve.
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/quickstart"))]
    from: PathBuf,
    /// Address the gateway listens on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: String,
    /// Address of the admin listener (/healthz, /readyz, /metrics, /config).
    #[arg(long, default_value = "127.0.0.1:9901", value_name = "ADDR")]
    admin: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The backends run on their own runtime thread; the proxy (Pingora) owns the main thread.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gatehouse-demo: cannot start the demo backends: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut resolve = Vec::new();
    for backend in shop::BACKENDS {
        match runtime.block_on(shop::start(backend)) {
            Ok(address) => resolve.push(format!("{}={address}", backend.service)),
            Err(e) => {
                eprintln!(
                    "gatehouse-demo: cannot start the {} backend: {e}",
                    backend.service
                );
                return ExitCode::FAILURE;
            }
        }
    }
    // The Gateway reaches the Aggregator through its Service; here that is this same proxy.
    resolve.push(format!("product-page-aggregator={}", args.listen));
    eprintln!(
        "gatehouse-demo: demo shop backends ({}) started; Gatehouse serves {} on http://{} (admin http://{})",
        resolve.join(", "),
        args.from.display(),
        args.listen,
        args.admin
    );
    let mut argv = vec![
        "gatehouse-proxy".to_owned(),
        "--from".to_owned(),
        args.from.display().to_string(),
        "--listen".to_owned(),
        args.listen,
        "--admin".to_owned(),
        args.admin,
        "--log-format".to_owned(),
        "text".to_owned(),
        "--shutdown-grace".to_owned(),
        "1".to_owned(),
    ];
    for r in resolve {
        argv.push("--resolve".to_owned());
        argv.push(r);
    }
    let code = run_proxy(Cli::parse_from(argv));
    drop(runtime);
    code
}
