//! `newsrec data …`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use newsrec_core::Paths;
use newsrec_data::download::{self, DownloadConfig, DownloadOutcome};
use newsrec_data::refine::{self, ProcessConfig};
use newsrec_data::synth::{self, SynthConfig, WorldKind};

use crate::settings::Settings;

/// Data commands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Download the G1 zip and install its files (all or nothing).
    Download(DownloadArgs),
    /// Generate synthetic data in the exact G1 raw format.
    Synth(SynthArgs),
    /// Parse the raw files into refined Parquet, summary.json and report.md.
    Process(ProcessArgs),
}

/// `newsrec data download` flags.
#[derive(Args)]
pub struct DownloadArgs {
    /// Zip URL.
    #[arg(long, default_value = download::DEFAULT_URL)]
    url: String,
    /// Raw data directory to install into (`[paths] raw`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seconds to wait for the connection.
    #[arg(long, default_value_t = 30)]
    connect_timeout_secs: u64,
    /// Seconds to wait for the response and for each read of the body.
    #[arg(long, default_value_t = 60)]
    read_timeout_secs: u64,
}

/// `newsrec data synth` flags.
#[derive(Args)]
pub struct SynthArgs {
    /// Raw output directory (`[paths] raw`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Training users.
    #[arg(long, default_value_t = 578_000)]
    users: usize,
    /// Articles.
    #[arg(long, default_value_t = 255_000)]
    items: usize,
    /// RNG seed (same seed and sizes: same bytes).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Kind of world: g1 (shaped after the real data), fast-news, focused or broad.
    #[arg(long, default_value_t = WorldKind::G1)]
    world: WorldKind,
    /// Also write the layout as a zip (the shape of the G1 download).
    #[arg(long)]
    zip: Option<PathBuf>,
}

/// `newsrec data process` flags.
#[derive(Args)]
pub struct ProcessArgs {
    /// Raw G1 directory (`[paths] raw`).
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Output directory for Parquet, summary.json and report.md (`[paths] data`).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs a data command.
pub fn run(c: DataCommand, s: Settings) -> anyhow::Result<()> {
    let progress = std::io::stderr().is_terminal();
    let Paths { raw, data, .. } = s.paths;
    match c {
        DataCommand::Download(mut a) => {
            let out = a.out.take().unwrap_or(raw);
            let config = DownloadConfig {
                connect_timeout: Duration::from_secs(a.connect_timeout_secs),
                read_timeout: Duration::from_secs(a.read_timeout_secs),
                progress,
                ..DownloadConfig::new(a.url, out.clone())
            };
            match download::download(&config)
                .with_context(|| format!("downloading G1 into {}", out.display()))?
            {
                DownloadOutcome::AlreadyComplete => {
                    println!(
                        "{} already holds the complete G1 data; nothing to do",
                        out.display()
                    )
                }
                DownloadOutcome::Installed { zip_bytes, files } => println!(
                    "installed {files} files from a {:.1} MB zip into {}",
                    zip_bytes as f64 / 1e6,
                    out.display()
                ),
            }
        }
        DataCommand::Synth(a) => {
            let out = a.out.unwrap_or(raw);
            let config = SynthConfig {
                out: out.clone(),
                users: a.users,
                items: a.items,
                seed: a.seed,
                world: a.world,
                zip: a.zip,
                progress,
            };
            let s = synth::generate(&config)
                .with_context(|| format!("generating synthetic G1 data into {}", out.display()))?;
            println!(
                "{} world: {} users ({} logged), {} interactions, {} items ({} unlisted), {} validation interactions of {} users -> {}",
                config.world,
                s.users,
                s.logged_users,
                s.interactions,
                s.items,
                s.unlisted_items,
                s.validation_interactions,
                s.validation_users,
                out.display()
            );
        }
        DataCommand::Process(a) => {
            let (raw, out) = (a.raw.unwrap_or(raw), a.out.unwrap_or(data));
            let config = ProcessConfig {
                progress,
                ..ProcessConfig::new(raw.clone(), out.clone())
            };
            let s = refine::process(&config)
                .with_context(|| format!("processing {}", raw.display()))?;
            println!(
                "{} interactions in: {} refined ({} with values capped), {} malformed; {} users, {} items, {} validation interactions -> {}",
                s.interactions_in,
                s.interactions_out,
                s.cleaning.capped,
                s.interactions_malformed,
                s.users_out,
                s.items_out,
                s.validation_out,
                out.display()
            );
        }
    }
    Ok(())
}
