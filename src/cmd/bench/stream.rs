//! `newsrec bench stream`: replay, raw broker consume, the consumer end to end and the
//! apply path alone, Redis memory per active user, and quiet-stream latency, against the
//! real broker and Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use newsrec_features::{FeatureStore, Offset, Partition, RedisStore, RedisTarget, StoreConfig};
use newsrec_ingest::consumer::{self, ConsumerConfig};
use newsrec_ingest::replay::{self, Speed};
use newsrec_ingest::{ConsumerStats, EventLog, KafkaConfig, KafkaLog, MemoryLog};
use tokio::sync::watch;

use crate::cmd::stream::connect_store;
use crate::settings::Settings;

/// `bench stream` flags.
#[derive(Args)]
pub struct StreamBenchArgs {
    /// Kafka bootstrap servers (default: `[kafka] brokers`, else the local broker).
    #[arg(long)]
    brokers: Option<String>,
    /// Redis URL (default: `[store] redis`).
    #[arg(long)]
    redis: Option<String>,
    /// The Redis the run uses: `--redis` or the settings'.
    #[arg(skip)]
    target: RedisTarget,
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
    let parts: Vec<Partition> = ends.iter().map(|e| e.0).collect();
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
    let applied = |got: Vec<Option<Offset>>| {
        got.into_iter()
            .map(|o| o.unwrap_or_default().0)
            .sum::<i64>()
    };
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
    let total: i64 = ends.iter().map(|e| e.1.0).sum();
    Ok((total - base) as f64 / secs)
}

/// Runs `bench stream`.
pub fn run(mut a: StreamBenchArgs, s: &Settings) -> anyhow::Result<()> {
    a.target = match &a.redis {
        Some(url) => RedisTarget::parse(url, false),
        None => s.store.redis.clone(),
    };
    if a.brokers.is_none() {
        a.brokers.clone_from(&s.kafka.brokers);
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(bench_async(a))
}

async fn bench_async(a: StreamBenchArgs) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(a.timeout_secs);
    let suffix = rand_suffix();
    let topic = format!("bench-clicks-{suffix}");
    println!(
        "stream benchmark: {} events, {} users, {} pages, {} partitions",
        a.events, a.users, a.pages, a.partitions
    );
    let events = replay::synthetic_events(a.events, a.users, a.pages, 1_656_644_400_000, 400, 42);

    // 1. Replay.
    let brokers = a
        .brokers
        .clone()
        .unwrap_or_else(|| super::LOCAL_BROKERS.into());
    let kafka = Arc::new(KafkaLog::new(
        KafkaConfig::new(brokers).with_options(&a.kafka_options)?,
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
    let e2e_store = connect_store(StoreConfig {
        redis: a.target.clone(),
        ..StoreConfig::with_prefix(format!("bench:{suffix}:e2e:"))
    })
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

/// `events` on a new in-process topic of `partitions` partitions.
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
    a: &StreamBenchArgs,
    events: &[newsrec_core::ClickEvent],
    topic: &str,
    suffix: &str,
    timeout: Duration,
) -> anyhow::Result<f64> {
    let mem = memory_topic(topic, a.partitions, events).await?;
    let store = connect_store(StoreConfig {
        redis: a.target.clone(),
        ..StoreConfig::with_prefix(format!("bench:{suffix}:apply:"))
    })
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
    a: &StreamBenchArgs,
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
    let store = connect_store(StoreConfig {
        redis: a.target.clone(),
        ..StoreConfig::with_prefix(format!("bench:{suffix}:mem:"))
    })
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
    a: &StreamBenchArgs,
    kafka: &Arc<KafkaLog>,
    suffix: &str,
    timeout: Duration,
) -> anyhow::Result<(f64, f64, f64)> {
    let topic = format!("bench-quiet-{suffix}");
    kafka.ensure_topic(&topic, a.partitions).await?;
    let store = connect_store(StoreConfig {
        redis: a.target.clone(),
        ..StoreConfig::with_prefix(format!("bench:{suffix}:quiet:"))
    })
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
