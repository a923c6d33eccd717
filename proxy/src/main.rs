//! `gatehouse-proxy`: parse the command line and run the proxy (see [`gatehouse_proxy::app`]).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use gatehouse_proxy::app::run_proxy;
use gatehouse_proxy::cli::Cli;

/// Pingora allocates and frees buffers per request; mimalloc does that far cheaper than glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if let Some(mut again) = gatehouse_proxy::allocator::with_lazy_arenas() {
        // Only returns when the process could not be replaced: then it runs as it is.
        let error = std::os::unix::process::CommandExt::exec(&mut again);
        eprintln!("gatehouse-proxy: could not restart with lazily committed arenas: {error}");
    }
    run_proxy(Cli::parse())
}
