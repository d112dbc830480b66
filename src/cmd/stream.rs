//! `newsrec replay` and `newsrec consume`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use newsrec_data::events;
use newsrec_features::{FeatureStore, RedisStore, StoreConfig};
use newsrec_ingest::consumer;
use newsrec_ingest::replay::{self, Speed};
use newsrec_ingest::{EventLog, KafkaLog};
use tracing::info;

use super::flags::{KafkaFlags, StoreFlags, set};
use crate::settings::Settings;

/// `replay` flags; each overrides its key of the settings (`newsrec config show`).
#[derive(Args)]
pub struct ReplayArgs {
    /// Refined data directory holding interactions.parquet (`[paths] data`).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    kafka: KafkaFlags,
    /// `max`, or a factor of real time (by event time), e.g. `1000` (`[replay] speed`).
    #[arg(long)]
    speed: Option<Speed>,
    /// Publish only the first N events.
    #[arg(long)]
    limit: Option<usize>,
    /// Partitions of the topic when it has to be created (`[kafka] partitions`).
    #[arg(long)]
    partitions: Option<i32>,
}

/// Runs `replay`.
pub fn replay(a: ReplayArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.data, a.data);
    set(&mut s.replay.speed, a.speed);
    set(&mut s.kafka.partitions, a.partitions);
    a.kafka.apply(&mut s.kafka)?;
    let client = s.kafka.required()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let log = KafkaLog::new(client)?;
        let (dir, limit) = (s.paths.data.clone(), a.limit);
        let (events, skipped) =
            tokio::task::spawn_blocking(move || events::load_events(&dir, limit)).await??;
        info!(events = events.len(), "loaded interactions");
        let cfg = s.replay.replay_config(&s.kafka);
        let r = replay::replay(&log, &events, &cfg).await?;
        println!(
            "published {} events to {} in {:.1} s ({:.0} events/s){}",
            r.events,
            cfg.topic,
            r.elapsed.as_secs_f64(),
            r.events_per_sec(),
            if skipped > 0 {
                format!(", {skipped} rows skipped")
            } else {
                String::new()
            }
        );
        Ok(())
    })
}

/// `consume` flags; each overrides its key of the settings (`newsrec config show`).
#[derive(Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    kafka: KafkaFlags,
    #[command(flatten)]
    store: StoreFlags,
    /// Consumer group (`[consume] group`).
    #[arg(long)]
    group: Option<String>,
    /// Dead-letter topic (`[consume] dead_letter_topic`; default `<topic>.dead-letter`).
    #[arg(long)]
    dead_letter_topic: Option<String>,
    /// Refined data directory whose items.parquet gives publication times
    /// (`[consume] items`).
    #[arg(long)]
    items: Option<PathBuf>,
    /// Most messages per round (`[consume] batch_max`).
    #[arg(long)]
    batch_max: Option<usize>,
    /// Partitions for topics the consumer creates (`[kafka] partitions`).
    #[arg(long)]
    partitions: Option<i32>,
    /// Serve the consumer's Prometheus metrics on this address (`/metrics`;
    /// `[consume] metrics_addr`).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
}

pub(crate) async fn connect_store(cfg: StoreConfig) -> anyhow::Result<Arc<RedisStore>> {
    let target = cfg.redis.clone();
    let store = RedisStore::connect(&target, cfg)
        .await
        .context("connecting to Redis")?;
    Ok(Arc::new(store))
}

/// Runs `consume`.
pub fn consume(a: ConsumeArgs, mut s: Settings) -> anyhow::Result<()> {
    a.kafka.apply(&mut s.kafka)?;
    a.store.apply(&mut s.store)?;
    set(&mut s.kafka.partitions, a.partitions);
    set(&mut s.consume.group, a.group);
    set(&mut s.consume.batch_max, a.batch_max);
    set(
        &mut s.consume.dead_letter_topic,
        a.dead_letter_topic.map(Some),
    );
    set(&mut s.consume.items, a.items.map(Some));
    set(&mut s.consume.metrics_addr, a.metrics_addr.map(Some));
    let client = s.kafka.required()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // First, so a stop request during start-up is a graceful one.
        let stop = super::shutdown_signal();
        let log: Arc<dyn EventLog> = Arc::new(KafkaLog::new(client)?);
        let store = connect_store(s.store.clone()).await?;
        if let Some(dir) = &s.consume.items {
            let items = events::load_issued(dir)?;
            store.set_issued(&items).await?;
            info!(items = items.len(), "publication times loaded");
        }
        let cfg = s.consume.consumer_config(&s.kafka);
        let summary = consumer::run_service(log, store, cfg, s.consume.metrics_addr, stop).await?;
        println!(
            "applied {} events ({} duplicates skipped, {} dead letters) in {} batches",
            summary.applied, summary.duplicates, summary.dead_letters, summary.batches
        );
        Ok(())
    })
}
