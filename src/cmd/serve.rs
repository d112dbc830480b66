//! `newsrec serve` area.

use clap::Args;

/// `run` flags.
#[derive(Args)]
pub struct ServeArgs {}

/// Runs `run`.
pub fn run(_: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("run is not available in this build")
}

/// `bench` flags.
#[derive(Args)]
pub struct BenchArgs {}

/// Runs `bench`.
pub fn bench(_: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not available in this build")
}

