//! `newsrec train`, `newsrec evaluate`, `newsrec pipeline` and `newsrec publish`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use newsrec_data::refine::{self, ProcessConfig};
use newsrec_train::{
    EvaluationReport, PipelineConfig, PipelineStep, Registry, Schedule, StepError,
    ablation_variants, parse_interval,
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
    /// Install the new version as `candidate` and leave `current` alone (the publish
    /// gate, `newsrec publish`, decides whether it serves).
    #[arg(long)]
    candidate: bool,
}

/// `newsrec evaluate` flags. The mixing weights are the API's (`[serve.mix]`), so the
/// evaluation scores what it serves.
#[derive(Args)]
pub struct EvaluateArgs {
    /// Refined data directory, training and validation files (`[paths] data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Models directory; the `current` version is evaluated unless `--model-version`
    /// or `--candidate` names another (`[paths] models`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Evaluate this version instead of `current` (`--version` is newsrec's own).
    #[arg(long, value_name = "VERSION", conflicts_with = "candidate")]
    model_version: Option<String>,
    /// Evaluate the `candidate` version instead of `current`.
    #[arg(long)]
    candidate: bool,
    /// Cut-off of every ranking metric (`[evaluate] k`).
    #[arg(long)]
    k: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Also compare, per tier, the learned ranker with the hand-set weights and the
    /// logged hybrid's CF-only and content-only halves (under `ablation` with `--json`;
    /// not recorded in the history).
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
    /// Run only this step (repeatable; `process`, `train`, `evaluate`, `publish`), once:
    /// the steps before it count as of their last success. One task per step, as the
    /// Airflow DAG runs them.
    #[arg(long = "step", value_name = "STEP", conflicts_with = "every")]
    steps: Vec<PipelineStep>,
}

/// `newsrec publish` flags.
#[derive(Args)]
pub struct PublishArgs {
    /// Refined data directory, the evaluation's data (`[paths] data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Models directory with the `candidate` and `current` versions (`[paths] models`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Evaluation cut-off (`[evaluate] k`).
    #[arg(long)]
    k: Option<usize>,
    /// The most NDCG@K the candidate may lose against `current`, overall and in each
    /// tier (`[publish] tolerance`).
    #[arg(long, allow_hyphen_values = true)]
    tolerance: Option<f64>,
}

/// Runs `train`.
pub fn train(a: TrainArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.data, a.data);
    set(&mut s.paths.models, a.models);
    let (data, models) = (&s.paths.data, &s.paths.models);
    let train = if a.candidate {
        newsrec_train::train_candidate
    } else {
        newsrec_train::train
    };
    let m =
        train(data, models, &s.train).with_context(|| format!("training on {}", data.display()))?;
    println!(
        "{} {} trained on {} interactions ({} .. {}): {} logged users, {} semi-logged users in {} clusters, {} articles ({} with factors, pool {}), {:.1} MB, {:.1} s -> {}",
        if a.candidate { "candidate" } else { "model" },
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
    let registry = Registry::open(models)?;
    let version = match (a.model_version, a.candidate) {
        (Some(v), _) => v,
        (None, true) => registry
            .candidate_version()?
            .with_context(|| format!("no candidate version in {}", models.display()))?,
        (None, false) => registry
            .current_version()?
            .with_context(|| format!("no current model in {}", models.display()))?,
    };
    let variants = if a.ablation {
        ablation_variants(w)
    } else {
        Vec::new()
    };
    let (record, rereads, variants) =
        newsrec_train::evaluate_version_with(data, models, &version, k, w, &variants)
            .with_context(|| {
                format!(
                    "evaluating {version} in {} on {}",
                    models.display(),
                    data.display()
                )
            })?;
    if a.json {
        let mut out = serde_json::to_value(record.report)?;
        if a.ablation {
            out["ablation"] = serde_json::to_value(
                variants
                    .iter()
                    .map(|(n, r)| (*n, r))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )?;
        }
        println!("{out}");
    } else {
        println!(
            "model {} at K={} ({} users with only re-reads left out), {:.1} s",
            record.version,
            k,
            rereads,
            started.elapsed().as_secs_f64()
        );
        print!("{}", record.report.table());
        if a.ablation {
            print!("{}", ablation_table(&variants, k));
        }
    }
    Ok(())
}

/// NDCG@K per tier of each variant, with popular-24h for scale.
fn ablation_table(variants: &[(&str, EvaluationReport)], k: usize) -> String {
    let mut out = format!(
        "\nNDCG@{k} per tier by ranking\n{:<14} {:>8} {:>8} {:>8} {:>8}\n",
        "variant", "logged", "semi", "anon", "overall"
    );
    let mut row = |name: &str, m: &newsrec_train::SystemMetrics| {
        let t = &m.tiers;
        out += &format!(
            "{name:<14} {:>8.4} {:>8.4} {:>8.4} {:>8.4}\n",
            t.logged.ndcg, t.semi_logged.ndcg, t.anonymous.ndcg, m.overall.ndcg
        );
    };
    for (name, r) in variants {
        row(
            name,
            &newsrec_train::SystemMetrics {
                overall: r.overall,
                tiers: r.tiers,
            },
        );
    }
    if let Some((_, r)) = variants.first() {
        row("popular-24h", &r.baselines.popular_24h);
    }
    out
}

/// The pipeline's config from the settings.
fn pipeline_config(s: Settings) -> anyhow::Result<PipelineConfig> {
    anyhow::ensure!(s.evaluate.k > 0, "k must be at least 1");
    s.publish.validate()?;
    Ok(PipelineConfig {
        params: s.train,
        raw: s.paths.raw,
        data: s.paths.data,
        models: s.paths.models,
        k: s.evaluate.k,
        weights: s.serve.mix,
        publish: s.publish,
    })
}

/// The process step's work: `newsrec data process`.
fn process_step(raw: &Path, out: &Path) -> Result<(), StepError> {
    let process_config = ProcessConfig {
        progress: std::io::stderr().is_terminal(),
        ..ProcessConfig::new(raw, out)
    };
    refine::process(&process_config)?;
    Ok(())
}

/// Runs `pipeline`: process → train → evaluate → publish, skipping steps whose inputs
/// did not change, once or on a schedule, or only the steps given with `--step`.
pub fn pipeline(a: PipelineArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.raw, a.raw);
    set(&mut s.paths.data, a.data);
    set(&mut s.paths.models, a.models);
    set(&mut s.evaluate.k, a.k);
    let config = pipeline_config(s)?;
    let schedule = match a.every.as_deref() {
        None => Schedule::Once,
        Some(every) => Schedule::Every {
            every: parse_interval(every)?,
            runs: a.runs,
        },
    };
    config.run_steps(schedule, &a.steps, process_step, |r| {
        println!("{}", r.summary())
    })?;
    Ok(())
}

/// Runs `publish`: the pipeline's publish step (the gate) alone. The candidate becomes
/// current only if its NDCG@K, overall and per tier, is within the tolerance of the
/// current model's; otherwise the command fails with the figures.
pub fn publish(a: PublishArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.data, a.data);
    set(&mut s.paths.models, a.models);
    set(&mut s.evaluate.k, a.k);
    set(&mut s.publish.tolerance, a.tolerance);
    let config = pipeline_config(s)?;
    config.run_steps(
        Schedule::Once,
        &[PipelineStep::Publish],
        process_step,
        |r| println!("{}", r.summary()),
    )?;
    Ok(())
}
