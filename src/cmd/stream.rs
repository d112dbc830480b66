//! `newsrec stream` area.

use clap::Args;

/// `replay` flags.
#[derive(Args)]
pub struct ReplayArgs {}

/// Runs `replay`.
pub fn replay(_: ReplayArgs) -> anyhow::Result<()> {
    anyhow::bail!("replay is not available in this build")
}

/// `consume` flags.
#[derive(Args)]
pub struct ConsumeArgs {}

/// Runs `consume`.
pub fn consume(_: ConsumeArgs) -> anyhow::Result<()> {
    anyhow::bail!("consume is not available in this build")
}

/// `bench` flags.
#[derive(Args)]
pub struct BenchArgs {}

/// Runs `bench`.
pub fn bench(_: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not available in this build")
}

