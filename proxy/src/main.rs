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
    gatehouse_allocator::restart_with_lazy_arenas("gatehouse-proxy");
    run_proxy(Cli::parse())
}
