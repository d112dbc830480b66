//! `newsrec bench …`: every benchmark, printing the numbers BENCHMARKS.md records; one
//! module per area (`data`, `stream`, `model`, `serve`).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;

use crate::settings::Settings;

mod data;
mod model;
mod serve;
mod stream;

/// The broker of a benchmark run when neither `--brokers` nor the settings name one:
/// benchmarks run on loopback.
const LOCAL_BROKERS: &str = "127.0.0.1:9092";

/// Benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// `data synth` and `data process` at a given scale: time and peak memory.
    Data(data::DataBenchArgs),
    /// Replay, consume, raw broker consume and the apply path; Redis memory per user.
    Stream(stream::StreamBenchArgs),
    /// Training and evaluation at a given scale.
    Model(model::ModelBenchArgs),
    /// Load test of the API on loopback at fixed rates and at peak.
    Serve(serve::ServeBenchArgs),
}

/// Runs one benchmark.
pub fn run(c: BenchCommand, s: Settings) -> anyhow::Result<()> {
    match c {
        BenchCommand::Data(a) => data::run(a),
        BenchCommand::Stream(a) => stream::run(a, &s),
        BenchCommand::Model(a) => model::run(a),
        BenchCommand::Serve(a) => serve::run(a, s),
    }
}

/// Peak resident memory (VmHWM) of process `pid`, in bytes, while it runs.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs this executable with `args` as a child, sampling its peak RSS until it exits;
/// returns the wall time and the peak in bytes.
pub fn timed_child<S: AsRef<str>>(args: &[S]) -> anyhow::Result<(Duration, u64)> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let exe = std::env::current_exe().context("locating the newsrec executable")?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(&args)
        .spawn()
        .with_context(|| format!("starting newsrec {}", args.join(" ")))?;
    let mut peak = 0;
    loop {
        // VmHWM only grows, so the last sample before exit is the peak up to then.
        if let Some(p) = peak_rss(child.id()) {
            peak = peak.max(p);
        }
        if let Some(status) = child.try_wait().context("waiting for the child")? {
            anyhow::ensure!(
                status.success(),
                "newsrec {} failed: {status}",
                args.join(" ")
            );
            return Ok((started.elapsed(), peak));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
