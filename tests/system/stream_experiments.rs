//! An A/B experiment end to end on the real broker and Redis: `newsrec serve` splits
//! its readers 50/50 between the default ranking (`control`) and a popularity-only
//! variant, and in an independent layer between two identical variants (A/A);
//! `newsrec consume` applies the clicks and attributes them to the served lists; a
//! prequential replay of the validation days drives both. `GET /experiments` must then
//! show control ahead of popularity only with p < 0.01, the A/A pair without a
//! significant difference, and `newsrec experiments report` print the same.
//!
//! It runs on a world of its own, larger than the shared fixture's: a few hundred
//! validation clicks cannot tell the rankings apart.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use newsrec_features::{FeatureStore, RedisStore, RedisTarget, StoreConfig};
use newsrec_ingest::{EventLog, KafkaConfig, KafkaLog};
use serde_json::Value;

use crate::api_served_log::Serve;
use crate::stream_prequential::replay_prequential;
use crate::support::api::{ModelFixture, build_world};
use crate::support::{BIN, brokers, random_prefix, random_suffix, redis_url};

/// Validation clicks replayed against the API (the world has about 2,000).
const CLICKS: usize = 4_000;

/// The world: readers, articles and seed of `data synth`.
const WORLD: (usize, usize, u64) = (6_000, 1_500, 21);

/// The experiments under test: control against popularity only, and an A/A layer.
const SETTINGS: &str = r#"
[[serve.experiments]]
name = "ranker"
salt = "ab-2026-12"
[[serve.experiments.variants]]
name = "control"
weight = 50
[[serve.experiments.variants]]
name = "popular-only"
weight = 50
mix = { cf = 0.0, content = 0.0, cluster = 0.0, read_next = 0.0 }

[[serve.experiments]]
name = "aa"
salt = "aa-2026-12"
layer = "aa"
[[serve.experiments.variants]]
name = "a"
weight = 50
[[serve.experiments.variants]]
name = "b"
weight = 50
"#;

/// `newsrec consume` on `topic` under `prefix` (features and attribution).
fn consume(world: &ModelFixture, topic: &str, prefix: &str) -> Result<std::process::Child> {
    Command::new(BIN)
        .args(["consume", "--brokers", &brokers(), "--topic", topic])
        .args(["--group", &format!("ab-{}", random_suffix())])
        .args(["--redis", &redis_url(), "--prefix", prefix, "--items"])
        .arg(&world.data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting newsrec consume")
}

/// Waits until the attribution has read every click of `log`'s `topic`.
async fn attributed(store: &RedisStore, log: &KafkaLog, topic: &str) -> Result<()> {
    let ends = log.end_offsets(topic).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut behind = Vec::new();
        for (p, end) in &ends {
            let next = store.load_online(*p).await?.clicks_next.unwrap_or_default();
            if next < *end {
                behind.push((p.0, next.0, end.0));
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "attribution behind the clicks (partition, read, end): {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A variant of an experiment in the `/experiments` answer.
fn variant<'a>(body: &'a Value, experiment: &str, name: &str) -> Result<&'a Value> {
    body["experiments"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == experiment))
        .and_then(|e| e["variants"].as_array())
        .and_then(|vs| vs.iter().find(|v| v["name"] == name))
        .with_context(|| format!("no {experiment}/{name} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_splits_the_traffic_and_reports_its_variants() -> Result<()> {
    let _machine = crate::support::whole_stack().await;
    let started = Instant::now();
    let (users, items, seed) = WORLD;
    let world = tokio::task::spawn_blocking(move || build_world(users, items, seed)).await??;
    eprintln!("world built in {:.1} s", started.elapsed().as_secs_f64());
    let topic = format!("ab-{}", random_suffix());
    let prefix = random_prefix("ab");
    let dir = tempfile::tempdir()?;
    let settings = dir.path().join("newsrec.toml");
    std::fs::write(&settings, SETTINGS)?;

    // The training days through the broker into the store, as live state.
    let replay = Command::new(BIN)
        .args(["replay", "--data"])
        .arg(&world.data)
        .args(["--brokers", &brokers(), "--topic", &topic, "--speed", "max"])
        .env("RUST_LOG", "warn")
        .output()?;
    ensure!(replay.status.success(), "replay: {replay:?}");
    let mut consumer = consume(&world, &topic, &prefix)?;
    let store = RedisStore::connect(
        &RedisTarget::parse(&redis_url(), false),
        StoreConfig {
            prefix: prefix.clone(),
            ..Default::default()
        },
    )
    .await?;
    let log = KafkaLog::new(KafkaConfig::new(brokers()))?;
    let ends = log.end_offsets(&topic).await?;
    newsrec_ingest::consumer::caught_up(&store, &ends, Duration::from_secs(300)).await?;
    eprintln!(
        "training applied in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let path = settings.display().to_string();
    let env = [("NEWSREC_CONFIG", path.as_str())];
    let serve = Serve::start_on(&world.models, &brokers(), &topic, &prefix, &env).await?;
    let (clicks, with_rec_id, errors) =
        replay_prequential(&world.data, &topic, &serve.base, CLICKS)?;
    ensure!(errors == 0, "{errors} API errors");
    eprintln!("{clicks} validation clicks replayed, {with_rec_id} on a shown page");
    attributed(&store, &log, &topic).await?;
    if let Some(status) = consumer.try_wait()? {
        bail!("newsrec consume exited: {status}");
    }

    let body: Value = serve
        .http
        .get(format!("{}/experiments", serve.base))
        .send()
        .await?
        .json()
        .await?;
    eprintln!("{body:#}");
    let control = variant(&body, "ranker", "control")?;
    let popular = variant(&body, "ranker", "popular-only")?;
    let rate = |v: &Value| v["hit_rate"].as_f64().unwrap_or_default();
    let served = |v: &Value| v["served"].as_u64().unwrap_or_default();
    // Each half of the lists within a few points of half.
    let total = served(control) + served(popular);
    ensure!(
        total >= clicks * 9 / 10,
        "{total} lists counted of {clicks}"
    );
    let share = served(control) as f64 / total as f64;
    ensure!(
        (0.4..0.6).contains(&share),
        "control got {share:.3} of the lists"
    );
    for v in [control, popular] {
        ensure!(v["hits"].as_u64().unwrap_or_default() > 0, "no hits: {v}");
        let [lo, hi] = [0, 1].map(|i| v["hit_rate_ci"][i].as_f64().unwrap_or(-1.0));
        ensure!(
            lo <= rate(v) && rate(v) <= hi,
            "HR outside its interval: {v}"
        );
    }
    // The default ranking wins, and the test says so with confidence.
    let p = popular["p_value"].as_f64().context("no p_value")?;
    let lift = popular["lift"].as_f64().context("no lift")?;
    ensure!(
        rate(control) > rate(popular) && lift < 0.0 && p < 0.01,
        "control {:.4} against popular-only {:.4}: lift {lift:.3}, p = {p}",
        rate(control),
        rate(popular)
    );
    // A/A: the same ranking under two names.
    let aa = variant(&body, "aa", "b")?;
    let p_aa = aa["p_value"].as_f64().context("no A/A p_value")?;
    ensure!(p_aa > 0.01, "A/A differs significantly: p = {p_aa}");

    // The report command prints the same figures.
    let report = Command::new(BIN)
        .args(["experiments", "report", "--api", &serve.base])
        .output()?;
    let text = String::from_utf8_lossy(&report.stdout);
    ensure!(report.status.success(), "experiments report: {report:?}");
    eprintln!("{text}");
    ensure!(
        text.contains("experiment ranker (layer default), against control")
            && text.contains("popular-only")
            && text.contains(&format!("{}", served(control))),
        "report does not show the figures:\n{text}"
    );

    drop(serve);
    let _ = consumer.kill();
    let _ = consumer.wait();
    store.delete_all().await.ok();
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
