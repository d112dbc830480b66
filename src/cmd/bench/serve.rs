//! `newsrec bench serve`: the API under load on loopback, at fixed rates and at peak.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use newsrec_features::RedisTarget;
use newsrec_ingest::KafkaConfig;
use newsrec_serve::{BenchOptions, ServedSink};

use crate::cmd::ServedLogSink;
use crate::settings::Settings;

/// `newsrec bench serve` flags.
#[derive(Args)]
pub struct ServeBenchArgs {
    /// Model registry with a `current` version (`[paths] models`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Refined data the model was trained on; its newest interactions become live state
    /// (`[paths] data`).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Redis URL (`[store] redis`); a random key prefix is used and deleted afterwards.
    #[arg(long)]
    redis: Option<String>,
    /// Fixed request rates, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "500,2000,5000")]
    rates: Vec<f64>,
    /// Seconds per fixed-rate run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of the peak run.
    #[arg(long, default_value_t = 10.0)]
    peak_seconds: f64,
    /// Connections of the fixed-rate runs.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Connections of the peak runs, comma-separated: one closed-loop run per count.
    #[arg(long, value_delimiter = ',', default_value = "32,64,128")]
    peak_connections: Vec<usize>,
    /// Newest training interactions applied to the store as live events.
    #[arg(long, default_value_t = 200_000)]
    live_events: usize,
    /// Worker threads of the API's runtime.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Most requests of any one run.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// Log every served list to a fresh topic on Kafka (`--brokers`, else `[kafka]
    /// brokers`, else the local broker), to measure the served-list log's cost.
    #[arg(long)]
    served_log: bool,
    /// Kafka bootstrap servers for `--served-log`.
    #[arg(long)]
    brokers: Option<String>,
}

/// Runs the load test and prints a Markdown table.
pub fn run(a: ServeBenchArgs, s: Settings) -> anyhow::Result<()> {
    let served: Option<Arc<dyn ServedSink>> = if a.served_log {
        let brokers = a
            .brokers
            .or(s.kafka.brokers.clone())
            .unwrap_or_else(|| super::LOCAL_BROKERS.into());
        let cfg = KafkaConfig {
            brokers,
            ..s.kafka.client().unwrap_or_else(|| KafkaConfig::new(""))
        };
        let topic = format!(
            "bench-served-{}",
            &newsrec_serve::new_rec_id().as_str()[..12]
        );
        println!("served lists logged to {topic}");
        Some(Arc::new(ServedLogSink::kafka(
            cfg,
            topic,
            s.kafka.partitions,
        )?))
    } else {
        None
    };
    let opts = BenchOptions {
        models_dir: a.models.unwrap_or(s.paths.models),
        data_dir: a.data.unwrap_or(s.paths.data),
        redis: a
            .redis
            .map_or(s.store.redis, |url| RedisTarget::parse(&url, false)),
        rates: a.rates,
        rate_seconds: a.seconds,
        peak_seconds: a.peak_seconds,
        connections: a.connections,
        peak_connections: a.peak_connections,
        live_events: a.live_events,
        k: 10,
        server_threads: a.server_threads,
        max_requests: a.max_requests,
        served,
        mix: s.serve.mix.clone(),
    };
    let r = newsrec_serve::bench(&opts)?;
    println!(
        "model {} · {} live events · users in the mix: {} logged, {} semi-logged, {} seen once, {} new · k = {}",
        r.model_version,
        r.live_events,
        r.mix.logged,
        r.mix.semi_logged,
        r.mix.seen_once,
        r.mix.new,
        opts.k
    );
    println!();
    println!(
        "| target req/s | connections | achieved req/s | requests | errors | degraded | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for run in &r.runs {
        let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
        println!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.target_rate
                .map_or("peak".to_string(), |t| format!("{t:.0}")),
            run.connections,
            run.throughput,
            run.requests,
            run.errors,
            run.degraded,
            ms(run.p50_us),
            ms(run.p90_us),
            ms(run.p99_us),
            ms(run.p999_us),
            ms(run.max_us),
        );
    }
    if let Some(c) = r.served_log {
        println!();
        println!(
            "served-list log: {} lists published, {} dropped",
            c.published, c.dropped
        );
    }
    Ok(())
}
