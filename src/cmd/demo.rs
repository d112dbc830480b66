//! `newsrec demo` area.

use clap::Args;

/// `run` flags.
#[derive(Args)]
pub struct DemoArgs {}

/// Runs `run`.
pub fn run(_: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("run is not available in this build")
}

