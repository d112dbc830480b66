//! `newsrec data …` and `newsrec bench data`.

use clap::{Args, Subcommand};

/// Data commands.
#[derive(Subcommand)]
pub enum DataCommand {}

/// `newsrec bench data` flags.
#[derive(Args)]
pub struct BenchArgs {}

/// Runs a data command.
pub fn run(c: DataCommand) -> anyhow::Result<()> {
    match c {}
}

/// Runs the data benchmark.
pub fn bench(_: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the data benchmark is not available in this build")
}
