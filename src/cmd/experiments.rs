//! `newsrec experiments report`: `GET /experiments` of a running API as a table.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use newsrec_serve::experiments::stats::ExperimentReport;
use serde::Deserialize;

use crate::settings::Settings;

/// Experiment commands.
#[derive(Subcommand)]
pub enum ExperimentsCommand {
    /// Print each experiment's variants against control: lists served, hits, HR@K with
    /// its 95% interval, CTR, MRR, lift and p-value.
    Report(ReportArgs),
}

/// `experiments report` flags.
#[derive(Args)]
pub struct ReportArgs {
    /// The API's base URL (default: `[replay] api`, else the `[serve] addr` on loopback).
    #[arg(long)]
    api: Option<String>,
}

#[derive(Deserialize)]
struct Body {
    experiments: Vec<ExperimentReport>,
}

/// Runs an experiments command.
pub fn run(c: ExperimentsCommand, s: Settings) -> anyhow::Result<()> {
    let ExperimentsCommand::Report(a) = c;
    let api = a
        .api
        .or(s.replay.api.clone())
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", s.serve.addr.port()));
    let url = format!("{}/experiments", api.trim_end_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body: Body = rt.block_on(async {
        let resp = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("asking {url}"))?;
        let status = resp.status();
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        resp.json::<Body>()
            .await
            .with_context(|| format!("{url} did not answer an experiments report"))
    })?;
    print!("{}", table(&body.experiments));
    Ok(())
}

/// The reports as text: one block per experiment, a row per variant.
pub fn table(reports: &[ExperimentReport]) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str("no experiment is configured ([[serve.experiments]])\n");
    }
    for r in reports {
        let _ = writeln!(
            out,
            "experiment {} (layer {}), against {}",
            r.name, r.layer, r.control
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>6} {:>9} {:>7} {:>7} {:>17} {:>7} {:>7} {:>8} {:>9}",
            "variant",
            "weight",
            "served",
            "hits",
            "HR@K",
            "95% interval",
            "CTR",
            "MRR",
            "lift",
            "p-value"
        );
        for v in &r.variants {
            let lift = v
                .lift
                .map_or_else(|| "-".to_owned(), |l| format!("{:+.1}%", l * 100.0));
            let p = v
                .p_value
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.2e}"));
            let _ = writeln!(
                out,
                "  {:<16} {:>6} {:>9} {:>7} {:>7.4} {:>17} {:>7.4} {:>7.4} {:>8} {:>9}",
                v.name,
                v.weight,
                v.served,
                v.hits,
                v.hit_rate,
                format!("[{:.4}, {:.4}]", v.hit_rate_ci[0], v.hit_rate_ci[1]),
                v.ctr,
                v.mrr,
                lift,
                p
            );
        }
    }
    out
}
