//! `newsrec train`, `newsrec evaluate` and `newsrec pipeline`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use newsrec_data::refine::{self, ProcessConfig};
use newsrec_train::{
    EvaluationReport, Evaluator, PipelineConfig, Registry, Schedule, StepError, parse_interval,
};

use super::flags::set;
use crate::settings::Settings;

/// `newsrec train` flags. Training parameters are the `[train]` table of the settings
/// (`--config`, or variables such as `NEWSREC_TRAIN__ALS__FACTORS=64`).
#[derive(Args)]
pub struct TrainArgs {
    /// Refined data directory, output of `newsrec data process` (`[paths] data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Models directory, versions + `current` (`[paths] models`).
    #[arg(long)]
    models: Option<PathBuf>,
}

/// `newsrec evaluate` flags. The mixing weights are the API's (`[serve.mix]`), so the
/// evaluation scores what it serves.
#[derive(Args)]
pub struct EvaluateArgs {
    /// Refined data directory, training and validation files (`[paths] data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Models directory; the `current` version is evaluated (`[paths] models`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Cut-off of every ranking metric (`[evaluate] k`).
    #[arg(long)]
    k: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also compare the logged hybrid with its CF-only and content-only halves
    /// (table output only; not recorded in the history).
    #[arg(long)]
    ablation: bool,
}

/// `newsrec pipeline` flags.
#[derive(Args)]
pub struct PipelineArgs {
    /// Raw G1 directory (`[paths] raw`).
    #[arg(long)]
    raw: Option<PathBuf>,
    /// Refined data directory (`[paths] data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Models directory, also holding the pipeline's state and run log (`[paths] models`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Run again every DURATION (e.g. `30m`, `6h`, `1d`); once when absent.
    #[arg(long)]
    every: Option<String>,
    /// Stop after this many scheduled runs (with `--every`).
    #[arg(long)]
    runs: Option<usize>,
    /// Evaluation cut-off (`[evaluate] k`).
    #[arg(long)]
    k: Option<usize>,
}

/// Runs `train`.
pub fn train(a: TrainArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.data, a.data);
    set(&mut s.paths.models, a.models);
    let (data, models) = (&s.paths.data, &s.paths.models);
    let m = newsrec_train::train(data, models, &s.train)
        .with_context(|| format!("training on {}", data.display()))?;
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
        models.join(&m.version).display()
    );
    Ok(())
}

/// Runs `evaluate`.
pub fn evaluate(a: EvaluateArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.data, a.data);
    set(&mut s.paths.models, a.models);
    set(&mut s.evaluate.k, a.k);
    let (data, models, k, w) = (&s.paths.data, &s.paths.models, s.evaluate.k, &s.serve.mix);
    anyhow::ensure!(k > 0, "k must be at least 1");
    let started = Instant::now();
    let (record, rereads) = newsrec_train::evaluate(data, models, k, w)
        .with_context(|| format!("evaluating {} on {}", models.display(), data.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&record.report)?);
    } else {
        println!(
            "model {} at K={} ({} users with only re-reads left out), {:.1} s",
            record.version,
            k,
            rereads,
            started.elapsed().as_secs_f64()
        );
        print!("{}", record.report.table());
    }
    if a.ablation {
        let model = Registry::open(models)?.load_current()?;
        let evaluator = Evaluator::from_dir(data)?;
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
            let r: EvaluationReport = evaluator.run(&model, k, &weights);
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
pub fn pipeline(a: PipelineArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.raw, a.raw);
    set(&mut s.paths.data, a.data);
    set(&mut s.paths.models, a.models);
    set(&mut s.evaluate.k, a.k);
    anyhow::ensure!(s.evaluate.k > 0, "k must be at least 1");
    let config = PipelineConfig {
        params: s.train,
        raw: s.paths.raw,
        data: s.paths.data,
        models: s.paths.models,
        k: s.evaluate.k,
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
