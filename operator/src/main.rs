//! `gatehouse-operator`: the command line of the operator.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

/// Gatehouse operator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML (what `crds/` holds).
    Crds,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crds => print!("{}", gatehouse_api::crd::definitions_yaml()?),
    }
    Ok(())
}
