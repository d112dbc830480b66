//! `newsrec train`, `newsrec evaluate` and `newsrec pipeline`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use newsrec_core::load_config;
use newsrec_data::refine::{self, ProcessConfig};
use newsrec_train::{
    EvaluationReport, Evaluator, MixWeights, PipelineConfig, Registry, Schedule, StepError,
    TrainParams, parse_interval,
};

/// `newsrec train` flags.
#[derive(Args)]
pub struct TrainArgs {
    /// Refined data directory (output of `newsrec data process`).
    #[arg(long, default_value = "data/refined")]
    data: PathBuf,
    /// Models directory (versions + `current`).
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// TOML file with training parameters (defaults, then this file, then
    /// `NEWSREC_*` variables, e.g. `NEWSREC_ALS__FACTORS=64`).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `newsrec evaluate` flags.
#[derive(Args)]
pub struct EvaluateArgs {
    /// Refined data directory (training and validation files).
    #[arg(long, default_value = "data/refined")]
    data: PathBuf,
    /// Models directory; the `current` version is evaluated.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Cut-off of every ranking metric.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// TOML file with mixing weights (the API's `[mix]` values, to evaluate what it serves).
    #[arg(long)]
    mix: Option<PathBuf>,
    /// Also compare the logged hybrid with its CF-only and content-only halves
    /// (table output only; not recorded in the history).
    #[arg(long)]
    ablation: bool,
}

/// `newsrec pipeline` flags.
#[derive(Args)]
pub struct PipelineArgs {
    /// Raw G1 directory.
    #[arg(long, default_value = "data/raw")]
    raw: PathBuf,
    /// Refined data directory.
    #[arg(long, default_value = "data/refined")]
    data: PathBuf,
    /// Models directory (also holds the pipeline's state and run log).
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Run again every DURATION (e.g. `30m`, `6h`, `1d`); once when absent.
    #[arg(long)]
    every: Option<String>,
    /// Stop after this many scheduled runs (with `--every`).
    #[arg(long)]
    runs: Option<usize>,
    /// Evaluation cut-off.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// TOML file with training parameters.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn train_params(config: Option<&Path>) -> anyhow::Result<TrainParams> {
    Ok(load_config::<TrainParams>(config)?)
}

/// Runs `train`.
pub fn train(a: TrainArgs) -> anyhow::Result<()> {
    let params = train_params(a.config.as_deref())?;
    let m = newsrec_train::train(&a.data, &a.models, &params)
        .with_context(|| format!("training on {}", a.data.display()))?;
    println!(
        "model {} trained on {} interactions ({} .. {}): {} logged users, {} semi-logged users in {} clusters, {} articles ({} with factors, pool {}), {:.1} MB, {:.1} s -> {}",
        m.version,
        m.rows.interactions,
        m.data.first,
        m.data.last,
        m.rows.logged_users,
        m.rows.semi_logged_users,
        m.rows.clusters,
        m.rows.items,
        m.rows.cf_items,
        m.rows.pool_items,
        m.rows.model_bytes as f64 / 1e6,
        m.timings_ms.get("total").copied().unwrap_or(0) as f64 / 1000.0,
        a.models.join(&m.version).display()
    );
    Ok(())
}

fn mix_weights(path: Option<&Path>) -> anyhow::Result<MixWeights> {
    Ok(load_config::<MixWeights>(path)?)
}

/// Runs `evaluate`.
pub fn evaluate(a: EvaluateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.k > 0, "--k must be at least 1");
    let w = mix_weights(a.mix.as_deref())?;
    let started = Instant::now();
    let (record, rereads) = newsrec_train::evaluate(&a.data, &a.models, a.k, &w)
        .with_context(|| format!("evaluating {} on {}", a.models.display(), a.data.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&record.report)?);
    } else {
        println!(
            "model {} at K={} ({} users with only re-reads left out), {:.1} s",
            record.version,
            a.k,
            rereads,
            started.elapsed().as_secs_f64()
        );
        print!("{}", record.report.table());
    }
    if a.ablation {
        let model = Registry::open(&a.models)?.load_current()?;
        let evaluator = Evaluator::from_dir(&a.data)?;
        println!("\nlogged tier: hybrid against its halves");
        println!(
            "{:<14} {:>8} {:>8} {:>8} {:>8}",
            "variant", "recall", "ndcg", "hr", "mrr"
        );
        for (name, weights) in [
            ("hybrid", w.clone()),
            ("cf-only", w.cf_only()),
            ("content-only", w.content_only()),
        ] {
            let r: EvaluationReport = evaluator.run(&model, a.k, &weights);
            let m = r.tiers.logged;
            println!(
                "{name:<14} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
                m.recall, m.ndcg, m.hr, m.mrr
            );
        }
    }
    Ok(())
}

/// Runs `pipeline`: process → train → evaluate, skipping steps whose inputs did not
/// change, once or on a schedule.
pub fn pipeline(a: PipelineArgs) -> anyhow::Result<()> {
    let config = PipelineConfig {
        params: train_params(a.config.as_deref())?,
        raw: a.raw,
        data: a.data,
        models: a.models,
        k: a.k,
    };
    let schedule = match a.every.as_deref() {
        None => Schedule::Once,
        Some(every) => Schedule::Every {
            every: parse_interval(every)?,
            runs: a.runs,
        },
    };
    let progress = std::io::stderr().is_terminal();
    let process = move |raw: &Path, out: &Path| -> Result<(), StepError> {
        let process_config = ProcessConfig {
            progress,
            ..ProcessConfig::new(raw, out)
        };
        refine::process(&process_config)?;
        Ok(())
    };
    config.run(schedule, process, |r| println!("{}", r.summary()))?;
    Ok(())
}
