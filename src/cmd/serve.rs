//! `newsrec serve`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use newsrec_ingest::{KafkaConfig, KafkaLog};
use newsrec_serve::{Application, EventSink, ServeConfig};

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
        // First, so a stop request during start-up is a graceful one.
        let stop = shutdown_signal();
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
        app.run_until_stopped(stop).await?;
        Ok(())
    })
}
