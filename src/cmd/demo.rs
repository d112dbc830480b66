//! `newsrec demo`: the whole pipeline and the API in one process, on synthetic G1 data.
//!
//! Without `--brokers`/`--redis` the in-process event log and the in-memory feature
//! store stand in for Kafka and Redis (they implement the same traits); with them, the
//! real services are used and the demo is a one-command tour of a real deployment. Only
//! these flags choose the services (a `NEWSREC_REDIS_URL` meant for other commands does
//! not turn the demo's store into Redis); everything else comes from the settings tree.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use newsrec_core::{Paths, Tier, UserId, route_tier};
use newsrec_data::events;
use newsrec_data::refine::{self, ProcessConfig};
use newsrec_data::synth::{self, SynthConfig, WorldKind};
use newsrec_features::{FeatureStore, MemoryStore, RedisTarget};
use newsrec_ingest::consumer::{self, ConsumerConfig};
use newsrec_ingest::{ConsumerStats, EventLog, KafkaLog, MemoryLog};
use newsrec_ingest::{prequential, replay};
use newsrec_serve::{Application, Sinks};
use tokio::sync::watch;

use super::flags::set;
use super::{LogSink, ServedLogSink, shutdown_signal};
use crate::settings::Settings;

/// `demo` flags.
#[derive(Args)]
pub struct DemoArgs {
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Working directory for the raw data, refined data and models.
    #[arg(long, default_value = ".newsrec/demo")]
    dir: PathBuf,
    /// Synthetic training users.
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// Synthetic articles.
    #[arg(long, default_value_t = 6_000)]
    items: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Kind of synthetic world: g1, fast-news, focused or broad.
    #[arg(long, default_value_t = WorldKind::G1)]
    world: WorldKind,
    /// Kafka bootstrap servers; without, an in-process event log is used.
    #[arg(long)]
    brokers: Option<String>,
    /// Redis URL; without, an in-memory feature store is used.
    #[arg(long)]
    redis: Option<String>,
    /// Click topic (`[kafka] topic`).
    #[arg(long)]
    topic: Option<String>,
    /// Redis key prefix (with `--redis`), apart from the settings' so the demo never
    /// writes over a deployment's keys.
    #[arg(long, default_value = "newsrec:demo:")]
    prefix: String,
    /// Validation clicks replayed prequentially against the demo's own API once it
    /// answers (the first N by event time; 0 for none), so the online quality figures
    /// have moved when the demo opens. `[replay]` sets K and the concurrency.
    #[arg(long, default_value_t = 3_000)]
    prequential_clicks: usize,
}

/// Runs the demo until SIGTERM or Ctrl-C.
pub fn run(a: DemoArgs, mut s: Settings) -> anyhow::Result<()> {
    set(&mut s.kafka.topic, a.topic.clone());
    s.kafka.validate()?;
    let started = Instant::now();
    let raw = a.dir.join("raw");
    let refined = a.dir.join("refined");
    let models = a.dir.join("models");

    step("generating synthetic G1 data", || {
        if raw.exists() {
            std::fs::remove_dir_all(&raw).with_context(|| format!("clearing {}", raw.display()))?;
        }
        let s = synth::generate(&SynthConfig {
            out: raw.clone(),
            users: a.users,
            items: a.items,
            seed: a.seed,
            world: a.world,
            zip: None,
            progress: true,
        })?;
        Ok(format!(
            "{} users, {} interactions, {} articles",
            s.users, s.interactions, s.items
        ))
    })?;
    step("processing into Parquet", || {
        let s = refine::process(&ProcessConfig {
            progress: true,
            ..ProcessConfig::new(&raw, &refined)
        })?;
        Ok(format!("{} interactions kept", s.interactions_out))
    })?;
    step("training the tier models", || {
        let m = newsrec_train::train(&refined, &models, &s.train)?;
        Ok(format!("model {}", m.version))
    })?;

    let rt = tokio::runtime::Runtime::new()?;
    s.paths = Paths {
        raw,
        data: refined,
        models,
    };
    rt.block_on(serve_live(a, s, started))
}

/// Runs one batch step with a heading and its duration.
fn step(what: &str, f: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<()> {
    eprintln!("==> {what}");
    let t = Instant::now();
    let detail = f()?;
    eprintln!("    {detail} ({:.1} s)", t.elapsed().as_secs_f64());
    Ok(())
}

async fn serve_live(a: DemoArgs, mut s: Settings, started: Instant) -> anyhow::Result<()> {
    let refined = s.paths.data.clone();
    let topic = s.kafka.topic.clone();
    let log: Arc<dyn EventLog> = match &a.brokers {
        Some(b) => {
            s.kafka.brokers = Some(b.clone());
            Arc::new(KafkaLog::new(s.kafka.required()?)?)
        }
        None => Arc::new(MemoryLog::new()),
    };
    s.store.prefix.clone_from(&a.prefix);
    let store: Arc<dyn FeatureStore> = match &a.redis {
        Some(url) => {
            s.store.redis = RedisTarget::parse(url, false);
            super::stream::connect_store(s.store.clone()).await?
        }
        None => Arc::new(MemoryStore::new(s.store.clone())?),
    };
    store.set_issued(&events::load_issued(&refined)?).await?;

    eprintln!("==> replaying the training clicks through the consumer");
    let t = Instant::now();
    let (clicks, _) = events::load_events(&refined, None)?;
    let summary = replay::replay(log.as_ref(), &clicks, &s.replay.replay_config(&s.kafka)).await?;
    let (stop, stopped) = watch::channel(false);
    let mut ccfg = ConsumerConfig::new(&topic, "newsrec-demo");
    ccfg.attribution = s.consume.consumer_config(&s.kafka).attribution;
    let stats = Arc::new(ConsumerStats::new());
    let attribution = tokio::spawn(newsrec_ingest::attribution::run(
        Arc::clone(&log),
        Arc::clone(&store),
        ccfg.clone(),
        Arc::clone(&stats),
        stopped.clone(),
    ));
    let consumer = tokio::spawn(consumer::run(
        Arc::clone(&log),
        Arc::clone(&store),
        ccfg,
        stats,
        stopped,
    ));
    let ends = log.end_offsets(&topic).await?;
    newsrec_ingest::consumer::caught_up(store.as_ref(), &ends, Duration::from_secs(600)).await?;
    eprintln!(
        "    {} events applied ({:.1} s)",
        summary.events,
        t.elapsed().as_secs_f64()
    );

    s.serve.addr = a.addr;
    let cfg = s.serve_config();
    let events = Arc::new(LogSink::new(
        Arc::clone(&log),
        topic.clone(),
        "event log",
        String::new(),
    ));
    let served = Arc::new(ServedLogSink::new(
        Arc::clone(&log),
        s.kafka.served_topic(),
        s.kafka.partitions,
    ));
    let sinks = Sinks {
        events: Some(events),
        served: Some(served),
    };
    let app = Application::build_with_store(cfg, Arc::clone(&store), sinks).await?;
    let base = format!("http://{}", app.local_addr());
    let server = tokio::spawn(app.run_until_stopped(shutdown_signal()));
    if a.prequential_clicks > 0 {
        s.replay.api = Some(base.clone());
        prequential_replay(&s, log.as_ref(), store.as_ref(), a.prequential_clicks).await?;
    }
    let examples = example_users(&refined, store.as_ref()).await?;
    print_tour(&base, &examples, started.elapsed());
    server.await??;
    let _ = stop.send(true);
    consumer.await??;
    attribution.await??;
    Ok(())
}

/// Waits (a few seconds at most: the API's watermark marks let the last clicks through)
/// for the attribution to read the clicks topic to `ends`, then prints the online hit
/// rate per tier.
async fn print_online(
    store: &dyn FeatureStore,
    ends: &[(newsrec_features::Partition, newsrec_features::Offset)],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut behind = false;
        for (p, end) in ends {
            behind |= store.load_online(*p).await?.clicks_next.unwrap_or_default() < *end;
        }
        if !behind || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut per_tier: std::collections::BTreeMap<String, newsrec_features::online::Counters> =
        Default::default();
    for (k, c) in store.online_counters().await? {
        per_tier.entry(k.tier).or_default().add(&c);
    }
    for (tier, c) in per_tier {
        let hr = c.hits as f64 / c.served.max(1) as f64;
        eprintln!(
            "    online {tier}: {} lists served, {} hits (HR {hr:.3}), {} attributed clicks",
            c.served, c.hits, c.clicks
        );
    }
    Ok(())
}

/// The first `clicks` validation clicks, replayed against the running API (`[replay]
/// api`) through the log, then applied by the consumer.
async fn prequential_replay(
    s: &Settings,
    log: &dyn EventLog,
    store: &dyn FeatureStore,
    clicks: usize,
) -> anyhow::Result<()> {
    eprintln!("==> replaying validation clicks against the API (prequential)");
    let t = Instant::now();
    let cfg = s.replay.prequential_config(&s.kafka)?;
    let (events, _) = events::load_validation_events(&s.paths.data, Some(clicks))?;
    let summary = prequential::prequential(log, &events, &cfg).await?;
    let ends = log.end_offsets(&cfg.topic).await?;
    newsrec_ingest::consumer::caught_up(store, &ends, Duration::from_secs(600)).await?;
    print_online(store, &ends).await?;
    let report = super::stream::prequential_report(&summary, &cfg.topic);
    let took = format!(" ({:.1} s)", t.elapsed().as_secs_f64());
    for (n, line) in report.lines().enumerate() {
        eprintln!("    {line}{}", if n == 0 { took.as_str() } else { "" });
    }
    Ok(())
}

/// A validation user of each personalised tier (logged, semi-logged), as the live store
/// routes them now.
async fn example_users(
    refined: &Path,
    store: &dyn FeatureStore,
) -> anyhow::Result<Vec<(Tier, UserId)>> {
    let rows = newsrec_train::read_validation(refined)?;
    let mut found: Vec<(Tier, UserId)> = Vec::new();
    for row in rows.iter().take(20_000) {
        let Some(u) = store.user(&row.user).await? else {
            continue;
        };
        let tier = route_tier(Some(u.user_type), u.interactions());
        if tier != Tier::Anonymous && !found.iter().any(|(t, _)| *t == tier) {
            found.push((tier, row.user.clone()));
            if found.len() == 2 {
                break;
            }
        }
    }
    found.sort();
    Ok(found)
}

fn print_tour(base: &str, examples: &[(Tier, UserId)], took: Duration) {
    println!();
    println!("newsrec demo ready in {:.0} s: {base}", took.as_secs_f64());
    println!();
    for (tier, user) in examples.iter().rev() {
        println!(
            "  {:<12} {base}/recommendations?user_id={user}&k=10",
            tier.as_str()
        );
    }
    println!(
        "  {:<12} {base}/recommendations?user_id=someone-new&k=10",
        "anonymous"
    );
    println!("  {:<12} {base}/popular?window=1h&k=10", "popular");
    println!("  {:<12} {base}/models/current", "model");
    println!("  {:<12} {base}/evaluation/metrics", "evaluation");
    println!("  {:<12} {base}/metrics", "prometheus");
    println!("  {:<12} {base}/docs", "api docs");
    println!();
    println!("Publish a click (the user moves up a tier as clicks arrive):");
    println!(
        "  curl -X POST {base}/events -H 'content-type: application/json' \\\n    -d '{{\"event_id\":\"e1\",\"user_id\":\"someone-new\",\"user_type\":\"Non-Logged\",\"page\":\"<page from /popular>\",\"ts\":1660500000000}}'"
    );
    println!();
    println!("Ctrl-C stops the demo.");
}
