//! The `newsrec` command: thin wrappers over the workspace libraries.
//!
//! `settings.rs` is the one settings tree every command reads (one table per crate,
//! layered from defaults, `--config`, `NEWSREC_*` and flags). Each subcommand area lives
//! in `cmd/`: it lays its flags over the settings and calls the library; no logic lives
//! here.

mod cmd;
mod settings;

use std::io::IsTerminal;
use std::path::PathBuf;

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
    /// Settings file (TOML, the tables of `newsrec config show`); `NEWSREC_*`
    /// variables and flags override it.
    #[arg(long, global = true, env = "NEWSREC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
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
    /// Evaluate the current models (or another version) on the whole validation set.
    Evaluate(cmd::model::EvaluateArgs),
    /// Run process → train → evaluate → publish, skipping unchanged steps, optionally
    /// on a schedule.
    Pipeline(cmd::model::PipelineArgs),
    /// Make the candidate version current if it passes the publish gate (its NDCG
    /// against the current model's, overall and per tier).
    Publish(cmd::model::PublishArgs),
    /// Serve the recommendation API.
    Serve(cmd::serve::ServeArgs),
    /// Everything in one process on synthetic data: generate, process, train, replay,
    /// consume and serve.
    Demo(cmd::demo::DemoArgs),
    /// A/B experiments of a running API.
    #[command(subcommand)]
    Experiments(cmd::experiments::ExperimentsCommand),
    /// Benchmarks whose numbers go into BENCHMARKS.md.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// The settings every command reads.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let settings = settings::Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Data(c) => cmd::data::run(c, settings),
        Command::Replay(a) => cmd::stream::replay(a, settings),
        Command::Consume(a) => cmd::stream::consume(a, settings),
        Command::Train(a) => cmd::model::train(a, settings),
        Command::Evaluate(a) => cmd::model::evaluate(a, settings),
        Command::Pipeline(a) => cmd::model::pipeline(a, settings),
        Command::Publish(a) => cmd::model::publish(a, settings),
        Command::Serve(a) => cmd::serve::run(a, settings),
        Command::Demo(a) => cmd::demo::run(a, settings),
        Command::Experiments(c) => cmd::experiments::run(c, settings),
        Command::Bench(c) => cmd::bench::run(c, settings),
        Command::Config(c) => cmd::config::run(c, settings),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand's arguments are well formed (clap checks a subcommand only when
    /// it is parsed, so a clash would otherwise show first to whoever runs it).
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
