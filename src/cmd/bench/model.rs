//! `newsrec bench model`: `train` and `evaluate` (whole validation set) as child
//! processes, timed, with their peak memory.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use newsrec_train::Registry;

/// `newsrec bench model` flags.
#[derive(Args)]
pub struct ModelBenchArgs {
    /// Refined data to train on; generated at full G1 scale (synth + process) when
    /// absent.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Users to generate when `--data` is absent.
    #[arg(long, default_value_t = 578_000)]
    users: usize,
    /// Articles to generate when `--data` is absent.
    #[arg(long, default_value_t = 255_000)]
    items: usize,
    /// Working directory (generated data and models); a temporary one when absent.
    #[arg(long)]
    work: Option<PathBuf>,
}

/// Runs the model benchmark: `train` and `evaluate` (full validation set) as child
/// processes, with time and peak RSS of each.
pub fn run(a: ModelBenchArgs) -> anyhow::Result<()> {
    let (work, temporary) = match &a.work {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("newsrec-bench-model-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let data = match &a.data {
        Some(d) => d.clone(),
        None => {
            let (raw, refined) = (work.join("raw"), work.join("refined"));
            let (users, items) = (a.users.to_string(), a.items.to_string());
            let s = raw.to_string_lossy().into_owned();
            let (t, _) = super::timed_child(&[
                "data", "synth", "--out", &s, "--users", &users, "--items", &items,
            ])?;
            println!(
                "generated {users} users, {items} items in {:.1} s",
                t.as_secs_f64()
            );
            let r = refined.to_string_lossy().into_owned();
            let (t, _) = super::timed_child(&["data", "process", "--raw", &s, "--out", &r])?;
            println!("processed in {:.1} s", t.as_secs_f64());
            refined
        }
    };
    let models = work.join("models");
    let (d, m) = (
        data.to_string_lossy().into_owned(),
        models.to_string_lossy().into_owned(),
    );
    let (train_t, train_rss) = super::timed_child(&["train", "--data", &d, "--models", &m])?;
    let (eval_t, eval_rss) =
        super::timed_child(&["evaluate", "--data", &d, "--models", &m, "--k", "10"])?;
    let manifest = Registry::open(&models)?.load_current()?.manifest().clone();
    println!(
        "\nmodel benchmark on {} interactions, {} users, {} articles",
        manifest.rows.interactions, manifest.rows.users, manifest.rows.items
    );
    println!(
        "{:<10} {:>10} {:>14}   target",
        "phase", "seconds", "peak RSS (GB)"
    );
    println!(
        "{:<10} {:>10.1} {:>14.2}   ≤ 300 s",
        "train",
        train_t.as_secs_f64(),
        train_rss as f64 / 1e9
    );
    println!(
        "{:<10} {:>10.1} {:>14.2}   ≤ 60 s",
        "evaluate",
        eval_t.as_secs_f64(),
        eval_rss as f64 / 1e9
    );
    println!(
        "peak RSS overall {:.2} GB (target ≤ 8 GB)",
        train_rss.max(eval_rss) as f64 / 1e9
    );
    println!(
        "training stages (ms): {}",
        serde_json::to_string(&manifest.timings_ms)?
    );
    if temporary {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(())
}
