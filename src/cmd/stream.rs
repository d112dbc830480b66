//! `newsrec replay` and `newsrec consume`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use newsrec_core::load_config;
use newsrec_data::events;
use newsrec_features::{FeatureStore, RedisStore, RedisTarget, StoreConfig};
use newsrec_ingest::consumer::{self, ConsumerConfig};
use newsrec_ingest::replay::{self, ReplayConfig, Speed};
use newsrec_ingest::{EventLog, KafkaConfig, KafkaLog};
use tracing::info;

/// `replay` flags.
#[derive(Args)]
pub struct ReplayArgs {
    /// Refined data directory (holding interactions.parquet).
    #[arg(long, env = "NEWSREC_DATA_DIR", default_value = "data/refined")]
    data: PathBuf,
    /// Kafka bootstrap servers.
    #[arg(long, env = "NEWSREC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to publish to (created when missing).
    #[arg(long, default_value = "clicks")]
    topic: String,
    /// `max`, or a factor of real time (by event time), e.g. `1000`.
    #[arg(long, default_value = "max")]
    speed: Speed,
    /// Publish only the first N events.
    #[arg(long)]
    limit: Option<usize>,
    /// Partitions of the topic when it has to be created.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// librdkafka setting passed through (repeatable), e.g. `security.protocol=SASL_SSL`.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
}

/// Runs `replay`.
pub fn replay(a: ReplayArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let log = KafkaLog::new(KafkaConfig::new(&a.brokers).with_options(&a.kafka_options)?)?;
        let (dir, limit) = (a.data.clone(), a.limit);
        let (events, skipped) =
            tokio::task::spawn_blocking(move || events::load_events(&dir, limit)).await??;
        info!(events = events.len(), "loaded interactions");
        let cfg = ReplayConfig {
            speed: a.speed,
            partitions: a.partitions,
            ..ReplayConfig::new(&a.topic)
        };
        let s = replay::replay(&log, &events, &cfg).await?;
        println!(
            "published {} events to {} in {:.1} s ({:.0} events/s){}",
            s.events,
            a.topic,
            s.elapsed.as_secs_f64(),
            s.events_per_sec(),
            if skipped > 0 {
                format!(", {skipped} rows skipped")
            } else {
                String::new()
            }
        );
        Ok(())
    })
}

/// `consume` flags.
#[derive(Args)]
pub struct ConsumeArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "NEWSREC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic to read.
    #[arg(long, default_value = "clicks")]
    topic: String,
    /// Consumer group.
    #[arg(long, default_value = "newsrec-consumer")]
    group: String,
    /// Redis URL (`redis://[user:password@]host:port`, `rediss://` for TLS), or a
    /// comma-separated list of Redis Cluster nodes.
    #[arg(
        long,
        env = "NEWSREC_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// Treat a single `--redis` URL as a Redis Cluster seed.
    #[arg(long)]
    redis_cluster: bool,
    /// Redis key prefix (overrides the config file).
    #[arg(long)]
    prefix: Option<String>,
    /// Settings file (TOML): the feature store settings under `[store]`, the same file
    /// and table `serve` reads; `NEWSREC_STORE__*` env overrides it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Dead-letter topic (default `<topic>.dead-letter`).
    #[arg(long)]
    dead_letter_topic: Option<String>,
    /// Refined data directory whose items.parquet gives publication times (optional).
    #[arg(long)]
    items: Option<PathBuf>,
    /// Most messages per round.
    #[arg(long, default_value_t = consumer::DEFAULT_BATCH_MAX)]
    batch_max: usize,
    /// Partitions for topics the consumer creates.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// librdkafka setting passed through (repeatable), e.g. `sasl.mechanism=SCRAM-SHA-512`.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
    /// Serve the consumer's Prometheus metrics on this address (`/metrics`).
    #[arg(long)]
    metrics_addr: Option<String>,
}

pub(crate) async fn connect_store(
    redis: &str,
    cluster: bool,
    cfg: StoreConfig,
) -> anyhow::Result<Arc<RedisStore>> {
    let target = RedisTarget::parse(redis, cluster);
    let store = RedisStore::connect(&target, cfg)
        .await
        .context("connecting to Redis")?;
    Ok(Arc::new(store))
}

/// The part of the settings the consumer reads: the `[store]` table, shared with
/// `serve` so that one file and one set of `NEWSREC_STORE__*` variables configure both
/// (they must agree on windows, buckets and the key prefix).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct StoreSection {
    store: StoreConfig,
}

/// Runs `consume`.
pub fn consume(a: ConsumeArgs) -> anyhow::Result<()> {
    let StoreSection {
        store: mut store_cfg,
    } = load_config(a.config.as_deref())?;
    if let Some(p) = a.prefix {
        store_cfg.prefix = p;
    }
    store_cfg.validate()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // First, so a stop request during start-up is a graceful one.
        let stop = super::shutdown_signal();
        let log: Arc<dyn EventLog> = Arc::new(KafkaLog::new(
            KafkaConfig::new(&a.brokers).with_options(&a.kafka_options)?,
        )?);
        let store = connect_store(&a.redis, a.redis_cluster, store_cfg).await?;
        if let Some(dir) = &a.items {
            let items = events::load_issued(dir)?;
            store.set_issued(&items).await?;
            info!(items = items.len(), "publication times loaded");
        }
        let mut cfg = ConsumerConfig::new(&a.topic, &a.group);
        if let Some(d) = a.dead_letter_topic {
            cfg.dead_letter_topic = d;
        }
        cfg.batch_max = a.batch_max;
        cfg.partitions = a.partitions;
        let summary = consumer::run_service(log, store, cfg, a.metrics_addr, stop).await?;
        println!(
            "applied {} events ({} duplicates skipped, {} dead letters) in {} batches",
            summary.applied, summary.duplicates, summary.dead_letters, summary.batches
        );
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `consume --config` reads the `[store]` table of the file `serve` reads, so one
    /// file configures both.
    #[test]
    fn consume_reads_the_store_table_of_the_serve_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newsrec.toml");
        std::fs::write(
            &path,
            "addr = \"127.0.0.1:8080\"\n[store]\nprefix = \"portal:\"\nhistory_len = 7\n",
        )
        .unwrap();
        let StoreSection { store } = load_config(Some(&path)).unwrap();
        assert_eq!(store.prefix, "portal:");
        assert_eq!(store.history_len, 7);
        let serve: newsrec_serve::ServeConfig = load_config(Some(&path)).unwrap();
        assert_eq!(serve.store, store);
    }
}
