//! `newsrec bench data`: `data synth` and `data process` as child processes, timed,
//! with their peak memory.

use std::path::{Path, PathBuf};

use clap::Args;

/// `newsrec bench data` flags.
#[derive(Args)]
pub struct DataBenchArgs {
    /// Training users.
    #[arg(long, default_value_t = 578_000)]
    users: usize,
    /// Articles.
    #[arg(long, default_value_t = 255_000)]
    items: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the generated data here (default: a temporary directory, removed after).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs the data benchmark: `data synth` then `data process` as child processes.
pub fn run(a: DataBenchArgs) -> anyhow::Result<()> {
    let (root, temporary) = match &a.out {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("newsrec-bench-data-{}", std::process::id())),
            true,
        ),
    };
    let raw = root.join("raw");
    let refined = root.join("refined");
    let s = |p: &Path| p.display().to_string();
    let synth_args: Vec<String> = [
        "data",
        "synth",
        "--out",
        &s(&raw),
        "--users",
        &a.users.to_string(),
        "--items",
        &a.items.to_string(),
        "--seed",
        &a.seed.to_string(),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let process_args: Vec<String> = ["data", "process", "--raw", &s(&raw), "--out", &s(&refined)]
        .iter()
        .map(|x| x.to_string())
        .collect();
    let result = (|| {
        let synth = super::timed_child(&synth_args)?;
        let process = super::timed_child(&process_args)?;
        anyhow::Ok((synth, process))
    })();
    if temporary {
        let _ = std::fs::remove_dir_all(&root);
    }
    let ((st, sm), (pt, pm)) = result?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\ndata bench: {} users, {} items, seed {}, {cores} cores",
        a.users, a.items, a.seed
    );
    println!("| step | wall time | peak RSS | target |");
    println!("|---|---:|---:|---|");
    println!(
        "| data synth | {:.1} s | {:.2} GB | ≤ 120 s |",
        st.as_secs_f64(),
        sm as f64 / 1e9
    );
    println!(
        "| data process | {:.1} s | {:.2} GB | ≤ 60 s, ≤ 6 GB |",
        pt.as_secs_f64(),
        pm as f64 / 1e9
    );
    Ok(())
}
