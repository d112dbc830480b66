//! `newsrec bench …`: each area's benchmark, printing the numbers BENCHMARKS.md records.

use clap::Subcommand;

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// `data synth` and `data process` at a given scale: time and peak memory.
    Data(super::data::BenchArgs),
    /// Replay, consume, raw broker consume and the apply path; Redis memory per user.
    Stream(super::stream::BenchArgs),
    /// Training and evaluation at a given scale.
    Model(super::model::BenchArgs),
    /// Load test of the API on loopback at fixed rates and at peak.
    Serve(super::serve::BenchArgs),
}

/// Runs one benchmark.
pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        BenchCommand::Data(a) => super::data::bench(a),
        BenchCommand::Stream(a) => super::stream::bench(a),
        BenchCommand::Model(a) => super::model::bench(a),
        BenchCommand::Serve(a) => super::serve::bench(a),
    }
}
