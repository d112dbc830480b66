//! `newsrec replay` and `newsrec consume`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use newsrec_core::ClickEvent;
use newsrec_data::events;
use newsrec_features::{FeatureStore, RedisStore, StoreConfig};
use newsrec_ingest::consumer;
use newsrec_ingest::prequential::{self, PrequentialSummary};
use newsrec_ingest::replay::{self, Speed};
use newsrec_ingest::{EventLog, KafkaLog, ReplaySettings};
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
    /// Replay only the interactions at or after this event time (epoch ms). With
    /// `--prequential`, every interaction from then on instead of the validation clicks.
    #[arg(long, value_name = "TS")]
    from: Option<i64>,
    /// Ask the API for the user's recommendations before each click and pass the
    /// answer's `rec_id` on in clicks on its pages, as a portal's front end would. Replays
    /// the validation clicks unless `--from` is given.
    #[arg(long)]
    prequential: bool,
    #[command(flatten)]
    prequential_flags: PrequentialFlags,
}

/// The flags of `replay --prequential`, each overriding its key of `[replay]`.
#[derive(Args)]
pub struct PrequentialFlags {
    /// The API to ask, e.g. `http://127.0.0.1:8000` (`[replay] api`).
    #[arg(long, value_name = "URL")]
    api: Option<String>,
    /// Recommendations asked for per click (`[replay] k`).
    #[arg(long)]
    k: Option<usize>,
    /// Clicks in flight at once; one user's clicks stay in order (`[replay] concurrency`).
    #[arg(long)]
    concurrency: Option<usize>,
}

impl PrequentialFlags {
    /// Applies the flags given.
    pub fn apply(self, replay: &mut ReplaySettings) {
        set(&mut replay.api, self.api.map(Some));
        set(&mut replay.k, self.k);
        set(&mut replay.concurrency, self.concurrency);
    }
}

/// What `replay` publishes: the validation clicks (prequential without `--from`), or the
/// interactions from `from` on; the first `limit` of them.
fn load(
    dir: &Path,
    prequential: bool,
    from: Option<i64>,
    limit: Option<usize>,
) -> anyhow::Result<(Vec<ClickEvent>, u64)> {
    if prequential && from.is_none() {
        let loaded = events::load_validation_events(dir, limit)?;
        info!(events = loaded.0.len(), "loaded validation clicks");
        return Ok(loaded);
    }
    let (mut all, skipped) = events::load_events(dir, if from.is_some() { None } else { limit })?;
    if let Some(ts) = from {
        all.retain(|e| e.ts >= ts);
        all.truncate(limit.unwrap_or(usize::MAX));
    }
    info!(events = all.len(), "loaded interactions");
    Ok((all, skipped))
}

/// Runs `replay`.
pub fn replay(a: ReplayArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.paths.data, a.data);
    set(&mut s.replay.speed, a.speed);
    set(&mut s.kafka.partitions, a.partitions);
    a.kafka.apply(&mut s.kafka)?;
    a.prequential_flags.apply(&mut s.replay);
    let client = s.kafka.required()?;
    let against_api = a
        .prequential
        .then(|| s.replay.prequential_config(&s.kafka))
        .transpose()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let log = KafkaLog::new(client)?;
        let (dir, limit, from) = (s.paths.data.clone(), a.limit, a.from);
        let validation = a.prequential;
        let (events, skipped) =
            tokio::task::spawn_blocking(move || load(&dir, validation, from, limit)).await??;
        if let Some(cfg) = against_api {
            let r = prequential::prequential(&log, &events, &cfg).await?;
            println!("{}", prequential_report(&r, &cfg.topic));
            return Ok(());
        }
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

/// The summary of a prequential replay: what was published, how many clicks carried a
/// `rec_id`, the API errors, and each tier's answers and hits.
pub fn prequential_report(r: &PrequentialSummary, topic: &str) -> String {
    let mut out = format!(
        "published {} clicks to {topic} in {:.1} s ({:.0} clicks/s): {} carried a rec_id, {} API errors",
        r.clicks,
        r.elapsed.as_secs_f64(),
        r.clicks_per_sec(),
        r.with_rec_id,
        r.api_errors,
    );
    if let Some(e) = &r.first_api_error {
        out.push_str(&format!(" (first: {e})"));
    }
    for (tier, t) in &r.tiers {
        out.push_str(&format!(
            "\n  {tier:<12} {} answers, {} held the clicked page ({:.1}%)",
            t.lists,
            t.hits,
            100.0 * t.hit_rate()
        ));
    }
    out
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
