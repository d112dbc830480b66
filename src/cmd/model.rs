//! `newsrec model` area.

use clap::Args;

/// `train` flags.
#[derive(Args)]
pub struct TrainArgs {}

/// Runs `train`.
pub fn train(_: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("train is not available in this build")
}

/// `evaluate` flags.
#[derive(Args)]
pub struct EvaluateArgs {}

/// Runs `evaluate`.
pub fn evaluate(_: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::bail!("evaluate is not available in this build")
}

/// `pipeline` flags.
#[derive(Args)]
pub struct PipelineArgs {}

/// Runs `pipeline`.
pub fn pipeline(_: PipelineArgs) -> anyhow::Result<()> {
    anyhow::bail!("pipeline is not available in this build")
}

/// `bench` flags.
#[derive(Args)]
pub struct BenchArgs {}

/// Runs `bench`.
pub fn bench(_: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not available in this build")
}

