//! `newsrec replay`, `newsrec consume` and `newsrec bench stream`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use newsrec_core::load_config;
use newsrec_data::events;
use newsrec_features::{FeatureStore, RedisStore, RedisTarget, StoreConfig};
use newsrec_ingest::consumer::{self, ConsumerConfig};
use newsrec_ingest::replay::{self, ReplayConfig, Speed};
use newsrec_ingest::{
    ConsumerStats, EventLog, KafkaConfig, KafkaLog, MemoryLog, SnapshotSource,
    serve_consumer_metrics,
};
use tokio::sync::watch;
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

async fn connect_store(
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
        let stats = Arc::new(ConsumerStats::new());
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            super::shutdown_signal().await;
            info!("shutdown requested; finishing the current batch");
            let _ = stop.send(true);
        });
        let exporter = match a.metrics_addr {
            Some(addr) => {
                let source: SnapshotSource = {
                    let stats = Arc::clone(&stats);
                    Arc::new(move || stats.snapshot())
                };
                let mut until = stopped.clone();
                let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
                let task = tokio::spawn(async move {
                    serve_consumer_metrics(
                        &addr,
                        source,
                        move |a| {
                            let _ = bound_tx.send(a);
                        },
                        async move {
                            let _ = until.wait_for(|s| *s).await;
                        },
                    )
                    .await
                });
                if bound_rx.await.is_err() {
                    // The exporter ended before binding: report why, at start-up.
                    task.await??;
                    anyhow::bail!("metrics exporter stopped before listening");
                }
                Some(task)
            }
            None => None,
        };
        let summary = consumer::run(log, store, cfg, stats, stopped).await?;
        if let Some(task) = exporter {
            task.await??;
        }
        println!(
            "applied {} events ({} duplicates skipped, {} dead letters) in {} batches",
            summary.applied, summary.duplicates, summary.dead_letters, summary.batches
        );
        Ok(())
    })
}

/// `bench stream` flags.
#[derive(Args)]
pub struct BenchArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "NEWSREC_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Redis URL.
    #[arg(
        long,
        env = "NEWSREC_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// Events to replay and consume.
    #[arg(long, default_value_t = 500_000)]
    events: usize,
    /// Distinct readers in the event stream.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Distinct pages in the event stream.
    #[arg(long, default_value_t = 20_000)]
    pages: usize,
    /// Partitions of the benchmark topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Active users for the Redis memory measurement.
    #[arg(long, default_value_t = 100_000)]
    memory_users: usize,
    /// Most messages per consumer round (as `consume --batch-max`).
    #[arg(long, default_value_t = consumer::DEFAULT_BATCH_MAX)]
    batch_max: usize,
    /// Reads per user for the Redis memory measurement (each to another page, so each
    /// one lands in the user's read set).
    #[arg(long, default_value_t = 3)]
    memory_reads: usize,
    /// Single events timed on an otherwise idle stream (0: skip that phase).
    #[arg(long, default_value_t = 50)]
    quiet_events: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// librdkafka setting passed through (repeatable).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
}

fn rand_suffix() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// Consumes with `log` into `store` until caught up; returns events/s, timed from the
/// first applied batch (group join and start-up excluded, as for the raw drain).
async fn consume_all(
    log: Arc<dyn EventLog>,
    store: Arc<RedisStore>,
    topic: &str,
    batch_max: usize,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let ends = log.end_offsets(topic).await?;
    let parts: Vec<i32> = ends.iter().map(|e| e.0).collect();
    let (stop, stopped) = watch::channel(false);
    let mut cfg = ConsumerConfig::new(topic, format!("bench-{}", rand_suffix()));
    cfg.batch_max = batch_max;
    let stats = Arc::new(ConsumerStats::new());
    let task = tokio::spawn(consumer::run(
        log,
        Arc::clone(&store) as Arc<dyn FeatureStore>,
        cfg,
        stats,
        stopped,
    ));
    let deadline = Instant::now() + timeout;
    let applied = |got: Vec<Option<i64>>| got.into_iter().map(|o| o.unwrap_or(0)).sum::<i64>();
    let mut base = 0;
    while base == 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "consumer applied nothing in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        base = applied(store.next_offsets(&parts).await?);
    }
    let t = Instant::now();
    let done = consumer::caught_up(
        store.as_ref(),
        &ends,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await;
    let secs = t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    task.await??;
    done?;
    let total: i64 = ends.iter().map(|e| e.1).sum();
    Ok((total - base) as f64 / secs)
}

/// Runs `bench stream`.
pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(bench_async(a))
}

async fn bench_async(a: BenchArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(a.timeout_secs);
    let suffix = rand_suffix();
    let topic = format!("bench-clicks-{suffix}");
    println!(
        "stream benchmark: {} events, {} users, {} pages, {} partitions",
        a.events, a.users, a.pages, a.partitions
    );
    let events = replay::synthetic_events(a.events, a.users, a.pages, 1_656_644_400_000, 400, 42);

    // 1. Replay.
    let kafka = Arc::new(KafkaLog::new(
        KafkaConfig::new(&a.brokers).with_options(&a.kafka_options)?,
    )?);
    kafka.ensure_topic(&topic, a.partitions).await?;
    let pb = replay::progress_bar(events.len() as u64);
    let took = replay::publish(kafka.as_ref(), &topic, &events, Speed::Max, 20_000, &pb).await?;
    pb.finish_and_clear();
    let replay_rate = events.len() as f64 / took.as_secs_f64();
    println!("replay (idempotent producer):      {replay_rate:>10.0} events/s");

    // 2. Raw broker consume, then 3. the consumer end to end, same topic, same run.
    let drained = kafka
        .drain(
            &topic,
            &format!("bench-raw-{suffix}"),
            events.len(),
            timeout,
        )
        .await?;
    let raw = events.len() as f64 / drained.as_secs_f64();
    println!("broker raw consume (rdkafka only): {raw:>10.0} events/s");
    let e2e_store = connect_store(
        &a.redis,
        false,
        StoreConfig::with_prefix(format!("bench:{suffix}:e2e:")),
    )
    .await?;
    let e2e = consume_all(
        Arc::clone(&kafka) as Arc<dyn EventLog>,
        Arc::clone(&e2e_store),
        &topic,
        a.batch_max,
        timeout,
    )
    .await?;
    println!(
        "consume -> Redis end to end:       {e2e:>10.0} events/s ({:.0}% of raw)",
        100.0 * e2e / raw
    );
    e2e_store.delete_all().await?;

    // 4. The apply path alone: in-process log -> Redis.
    let apply = apply_path(&a, &events, &topic, &suffix, timeout).await?;
    println!("apply path (in-process log->Redis):{apply:>10.0} events/s");

    // 5. Memory per 100k active users: every user reads a few pages.
    let (per_100k, users, n_events) = memory_per_100k_users(&a, &topic, &suffix, timeout).await?;
    println!(
        "Redis memory: {:.1} MiB per 100k active users ({users} users, {n_events} events, all state included)",
        per_100k / (1024.0 * 1024.0),
    );

    // 6. Quiet stream: one event at a time, each after the stream idled.
    if a.quiet_events > 0 {
        let (p50, p99, max) = quiet_latency(&a, &kafka, &suffix, timeout).await?;
        println!(
            "quiet stream, produce -> in Redis:  p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms ({} events, 300 ms apart)",
            a.quiet_events
        );
    }
    Ok(())
}

/// `events` on an in-process topic of `a.partitions` partitions.
async fn memory_topic(
    topic: &str,
    partitions: i32,
    events: &[newsrec_core::ClickEvent],
) -> anyhow::Result<Arc<MemoryLog>> {
    let mem = Arc::new(MemoryLog::new());
    mem.ensure_topic(topic, partitions).await?;
    for chunk in events.chunks(50_000) {
        mem.produce(topic, chunk.iter().map(replay::event_record).collect())
            .await?;
    }
    Ok(mem)
}

/// The consumer's rate from an in-process log into Redis (no broker), events/s.
async fn apply_path(
    a: &BenchArgs,
    events: &[newsrec_core::ClickEvent],
    topic: &str,
    suffix: &str,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let mem = memory_topic(topic, a.partitions, events).await?;
    let store = connect_store(
        &a.redis,
        false,
        StoreConfig::with_prefix(format!("bench:{suffix}:apply:")),
    )
    .await?;
    let rate = consume_all(
        mem as Arc<dyn EventLog>,
        Arc::clone(&store),
        topic,
        a.batch_max,
        timeout,
    )
    .await?;
    store.delete_all().await?;
    Ok(rate)
}

/// Redis memory per 100k active users when `a.memory_users` users each read
/// `a.memory_reads` pages (all state included): bytes, users, events.
async fn memory_per_100k_users(
    a: &BenchArgs,
    topic: &str,
    suffix: &str,
    timeout: Duration,
) -> anyhow::Result<(f64, usize, usize)> {
    let n_users = a.memory_users.max(1);
    let events = replay::synthetic_events(
        a.memory_reads.max(1) * n_users,
        n_users,
        a.pages,
        1_656_644_400_000,
        50,
        7,
    );
    let distinct: std::collections::HashSet<_> = events.iter().map(|e| e.user_id.clone()).collect();
    let mlog = memory_topic(topic, a.partitions, &events).await?;
    let store = connect_store(
        &a.redis,
        false,
        StoreConfig::with_prefix(format!("bench:{suffix}:mem:")),
    )
    .await?;
    let before = store.used_memory().await? as i64;
    consume_all(
        mlog as Arc<dyn EventLog>,
        Arc::clone(&store),
        topic,
        a.batch_max,
        timeout,
    )
    .await?;
    let after = store.used_memory().await? as i64;
    store.delete_all().await?;
    let per_100k = (after - before) as f64 * 100_000.0 / distinct.len() as f64;
    Ok((per_100k, distinct.len(), events.len()))
}

/// Times single events on an idle stream, from the producer's send to the store holding
/// the event's offset (a running consumer, real broker and Redis); p50, p99 and max, ms.
async fn quiet_latency(
    a: &BenchArgs,
    kafka: &Arc<KafkaLog>,
    suffix: &str,
    timeout: Duration,
) -> anyhow::Result<(f64, f64, f64)> {
    let topic = format!("bench-quiet-{suffix}");
    kafka.ensure_topic(&topic, a.partitions).await?;
    let store = connect_store(
        &a.redis,
        false,
        StoreConfig::with_prefix(format!("bench:{suffix}:quiet:")),
    )
    .await?;
    let mut cfg = ConsumerConfig::new(&topic, format!("bench-quiet-{suffix}"));
    cfg.partitions = a.partitions;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(consumer::run(
        Arc::clone(kafka) as Arc<dyn EventLog>,
        Arc::clone(&store) as Arc<dyn FeatureStore>,
        cfg,
        Arc::new(ConsumerStats::new()),
        stopped,
    ));
    let events = replay::synthetic_events(
        a.quiet_events + 1,
        a.quiet_events + 1,
        100,
        1_656_644_400_000,
        1_000,
        9,
    );
    let mut took = Vec::with_capacity(a.quiet_events);
    for (i, e) in events.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t = Instant::now();
        let (p, o) = kafka
            .produce(&topic, vec![replay::event_record(e)])
            .await?
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("the log placed nothing"))?;
        // The first event waits for the group to form: not timed.
        let deadline = t + if i == 0 {
            timeout
        } else {
            Duration::from_secs(5)
        };
        // Polled every millisecond (`caught_up` polls every 20).
        while store.next_offsets(&[p]).await?[0].is_none_or(|n| n <= o) {
            anyhow::ensure!(Instant::now() < deadline, "event {i} not applied in time");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i > 0 {
            took.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let _ = stop.send(true);
    task.await??;
    store.delete_all().await?;
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
    Ok((at(0.5), at(0.99), at(1.0)))
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
