//! The `newsrec` command: thin wrappers over the workspace libraries.
//!
//! Each subcommand area lives in `cmd/`: it turns flags into the library's typed config
//! and calls the library; no logic lives here.

mod cmd;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the consumer and the API allocate many
/// small, short-lived objects per event and per request from several threads, where
/// glibc's malloc spent about a third of the consumer's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A streaming, event-driven news recommender.
#[derive(Parser)]
#[command(name = "newsrec", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// G1 data: download the zip, generate synthetic data, process into Parquet.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// Publish refined interactions to Kafka as click events, in event-time order.
    Replay(cmd::stream::ReplayArgs),
    /// Consume click events into the feature store, exactly once.
    Consume(cmd::stream::ConsumeArgs),
    /// Train the models of every tier into a new versioned model directory.
    Train(cmd::model::TrainArgs),
    /// Evaluate the current models on the whole validation set.
    Evaluate(cmd::model::EvaluateArgs),
    /// Run process → train → evaluate, skipping unchanged steps, optionally on a schedule.
    Pipeline(cmd::model::PipelineArgs),
    /// Serve the recommendation API.
    Serve(cmd::serve::ServeArgs),
    /// Everything in one process on synthetic data: generate, process, train, replay,
    /// consume and serve.
    Demo(cmd::demo::DemoArgs),
    /// Benchmarks whose numbers go into BENCHMARKS.md.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Data(c) => cmd::data::run(c),
        Command::Replay(a) => cmd::stream::replay(a),
        Command::Consume(a) => cmd::stream::consume(a),
        Command::Train(a) => cmd::model::train(a),
        Command::Evaluate(a) => cmd::model::evaluate(a),
        Command::Pipeline(a) => cmd::model::pipeline(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Bench(c) => cmd::bench::run(c),
    }
}
