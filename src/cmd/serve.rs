//! `newsrec serve` and `newsrec bench serve`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use newsrec_ingest::{KafkaConfig, KafkaLog};
use newsrec_serve::{Application, BenchOptions, EventSink, ServeConfig};

use super::{LogSink, shutdown_signal};

/// `newsrec serve` flags; each overrides the config file and `NEWSREC_*` variables.
#[derive(Args)]
pub struct ServeArgs {
    /// Model registry directory (versioned models and `current`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Refined data directory. The models carry all item metadata the API shows, so it
    /// is only checked to exist (a typo in a deployment script shows up at start).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Redis URL, or comma-separated cluster seed nodes.
    #[arg(long)]
    redis: Option<String>,
    /// Treat a single --redis URL as a Redis Cluster seed.
    #[arg(long)]
    redis_cluster: bool,
    /// Feature store key prefix (must match the consumer's).
    #[arg(long)]
    prefix: Option<String>,
    /// Kafka bootstrap servers for `POST /events` (disabled without).
    #[arg(long)]
    brokers: Option<String>,
    /// Topic `POST /events` publishes to.
    #[arg(long)]
    topic: Option<String>,
    /// librdkafka setting for the `POST /events` producer, passed through (repeatable),
    /// e.g. `security.protocol=ssl`.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
    /// Listen address, e.g. 0.0.0.0:8080 (port 0: any free port).
    #[arg(long)]
    addr: Option<String>,
    /// TOML config file (see `ServeConfig`); the admin token belongs here or in
    /// `NEWSREC_ADMIN_TOKEN`, never on the command line.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Runs the API until SIGTERM or Ctrl-C.
pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let mut cfg: ServeConfig = newsrec_core::load_config(a.config.as_deref())?;
    if let Some(v) = a.models {
        cfg.models_dir = v;
    }
    if let Some(v) = a.redis {
        cfg.redis_url = v;
    }
    if a.redis_cluster {
        cfg.redis_cluster = true;
    }
    if let Some(v) = a.prefix {
        cfg.store.prefix = v;
    }
    if let Some(v) = a.brokers {
        cfg.brokers = v;
    }
    if let Some(v) = a.topic {
        cfg.topic = v;
    }
    if let Some(v) = a.addr {
        cfg.addr = v;
    }
    cfg.validate()?;
    if let Some(d) = &a.data
        && !d.is_dir()
    {
        anyhow::bail!("data directory {} does not exist", d.display());
    }
    let kafka_options = a.kafka_options;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let sink: Option<Arc<dyn EventSink>> = if cfg.brokers.trim().is_empty() {
            None
        } else {
            let log =
                KafkaLog::new(KafkaConfig::new(cfg.brokers.clone()).with_options(&kafka_options)?)
                    .context("creating the Kafka producer")?;
            let settings = format!("via {}", log.config().redacted());
            Some(Arc::new(LogSink::new(
                Arc::new(log),
                cfg.topic.clone(),
                "kafka",
                settings,
            )))
        };
        let app = Application::build(cfg, sink).await?;
        // Scripts and tests read the resolved address from this line.
        println!("listening on http://{}", app.local_addr());
        app.run_until_stopped(shutdown_signal()).await?;
        Ok(())
    })
}

/// `newsrec bench serve` flags.
#[derive(Args)]
pub struct BenchArgs {
    /// Model registry with a `current` version.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Refined data the model was trained on (its newest interactions become live state).
    #[arg(long, default_value = "data/refined")]
    data: PathBuf,
    /// Redis URL (a random key prefix is used and deleted afterwards).
    #[arg(
        long,
        env = "NEWSREC_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
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
}

/// Runs the load test and prints a Markdown table.
pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let opts = BenchOptions {
        models_dir: a.models,
        data_dir: a.data,
        redis_url: a.redis,
        rates: a.rates,
        rate_seconds: a.seconds,
        peak_seconds: a.peak_seconds,
        connections: a.connections,
        peak_connections: a.peak_connections,
        live_events: a.live_events,
        k: 10,
        server_threads: a.server_threads,
        max_requests: a.max_requests,
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
    Ok(())
}
