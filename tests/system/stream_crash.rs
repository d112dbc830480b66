//! Crash and store-loss safety of `newsrec consume` (features and the attribution of
//! clicks to served lists) against the real broker and Redis.
//! The consumer process is killed with SIGKILL at random moments while it applies a
//! replayed stream in small rounds, restarted each time, and finally stopped with
//! SIGTERM; or the store is emptied under it mid-stream. Either way every key Redis
//! holds afterwards must equal, value for value, what one clean run (default rounds)
//! leaves for the same topic.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use newsrec_core::{CONTROL, ClickEvent, PageId, RecId, ServedList, ServedRecord, Tier};
use newsrec_features::reference::dump_diff;
use newsrec_features::{FeatureStore, Offset, Partition, RedisStore, RedisTarget, StoreConfig};
use newsrec_ingest::replay;
use newsrec_ingest::{EventLog, KafkaConfig, KafkaLog, Record};

use crate::support::{BIN, brokers, redis_url};

/// A small xorshift generator seeded from the clock: each run kills at other moments.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self(nanos | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Each restart joins a group of its own: the broker used here (Tansu 0.6) keeps a
/// member that died without leaving in its group indefinitely, so a restart in the same
/// group would never be assigned partitions. Offsets come from Redis, not from the group,
/// so the group id does not change what a restart resumes from.
/// A consumer process with its metrics endpoint, killed and reaped when dropped so that
/// no early return of the test leaves it running.
struct ConsumerProcess {
    child: Child,
    /// Where its Prometheus metrics answer once it is up.
    metrics: String,
}

impl std::ops::Deref for ConsumerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for ConsumerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_consumer(topic: &str, group: &str, prefix: &str, extra: &[&str]) -> ConsumerProcess {
    let metrics = format!(
        "127.0.0.1:{}",
        crate::support::free_port().expect("a free port")
    );
    let child = Command::new(BIN)
        .args([
            "consume",
            "--brokers",
            &brokers(),
            "--topic",
            topic,
            "--group",
            group,
            "--redis",
            &redis_url(),
            "--prefix",
            prefix,
            "--metrics-addr",
            &metrics,
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("newsrec binary runs");
    ConsumerProcess { child, metrics }
}

/// Offsets the store holds over `ends`' partitions: the features' and the attribution
/// state's clicks offsets, summed (each reaches the log's end once it applied it all).
async fn offsets(store: &dyn FeatureStore, ends: &[(Partition, Offset)]) -> i64 {
    let parts: Vec<Partition> = ends.iter().map(|e| e.0).collect();
    let features: i64 = store
        .next_offsets(&parts)
        .await
        .expect("offsets readable")
        .into_iter()
        .map(|o| o.unwrap_or_default().0)
        .sum();
    let mut online = 0;
    for p in parts {
        let st = store
            .load_online(p)
            .await
            .expect("attribution state readable");
        online += st.clicks_next.unwrap_or_default().0;
    }
    features + online
}

/// Everything `offsets` reaches when both have applied the whole log.
fn whole(ends: &[(Partition, Offset)]) -> i64 {
    2 * ends.iter().map(|e| e.1.0).sum::<i64>()
}

/// Waits until the store holds `total` offsets while `child` runs.
async fn wait_for(
    store: &dyn FeatureStore,
    ends: &[(Partition, Offset)],
    total: i64,
    child: &mut ConsumerProcess,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    while offsets(store, ends).await < total {
        anyhow::ensure!(Instant::now() < deadline, "consumer did not finish");
        anyhow::ensure!(child.try_wait()?.is_none(), "consumer exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Stops `child` with SIGTERM once it is up (its metrics answer: a consumer that has not
/// started yet cannot stop gracefully) and checks it exits 0.
async fn stop(mut child: ConsumerProcess) -> anyhow::Result<()> {
    let up = Instant::now() + Duration::from_secs(60);
    while counter(&child.metrics, "newsrec_consumer_batches_total")
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < up, "consumer metrics never answered");
        anyhow::ensure!(child.try_wait()?.is_none(), "consumer exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    anyhow::ensure!(term.success(), "kill -TERM failed");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("consumer ignored SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    anyhow::ensure!(status.success(), "graceful shutdown exits 0, got {status}");
    Ok(())
}

/// A topic of its own with `events` synthetic clicks, and its served-list topic with a
/// list shown before every third click (holding the clicked page, at positions 1 to 5,
/// or not, one in seven) and a final watermark mark per partition; the clicks' end
/// offsets.
async fn topic_with(
    log: &KafkaLog,
    topic: &str,
    events: &[ClickEvent],
) -> anyhow::Result<Vec<(Partition, Offset)>> {
    log.ensure_topic(topic, 4).await?;
    let served = format!("{topic}.served");
    log.ensure_topic(&served, 4).await?;
    produce(log, topic, events).await?;
    let records: Vec<Record> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(i, e)| {
            let mut pages: Vec<PageId> = (0..5)
                .map(|j| PageId::parse(&format!("other-{}", (i + j) % 40)).unwrap())
                .collect();
            if i % 7 != 0 {
                pages[i % 5] = e.page.clone();
            }
            let list = ServedList {
                rec_id: RecId::parse(&format!("r{i}")).unwrap(),
                user_id: Some(e.user_id.clone()),
                page: None,
                event_ts: Some(e.ts - 1_000),
                wall_ts: 0,
                tier: Some([Tier::Anonymous, Tier::SemiLogged, Tier::Logged][i % 3]),
                variant: CONTROL.into(),
                model_version: "v1".into(),
                pages,
            };
            Record::new(
                e.user_id.as_str(),
                ServedRecord::List(Box::new(list)).encode(),
            )
        })
        .collect();
    for chunk in records.chunks(10_000) {
        log.produce(&served, chunk.to_vec()).await?;
    }
    mark(log, topic, events).await?;
    Ok(log.end_offsets(topic).await?)
}

/// A watermark mark on every served partition past `events`, as the API sends: the
/// attribution consumer can then decide every click.
async fn mark(log: &KafkaLog, topic: &str, events: &[ClickEvent]) -> anyhow::Result<()> {
    let last = events.iter().map(|e| e.ts).max().unwrap_or_default() + 1;
    let marks = (0..4)
        .map(|p| Record::to_partition(Partition(p), ServedRecord::Tick { tick: last }.encode()))
        .collect();
    log.produce(&format!("{topic}.served"), marks).await?;
    Ok(())
}

async fn produce(log: &KafkaLog, topic: &str, events: &[ClickEvent]) -> anyhow::Result<()> {
    for chunk in events.chunks(10_000) {
        log.produce(topic, chunk.iter().map(replay::event_record).collect())
            .await?;
    }
    Ok(())
}

async fn store(prefix: &str) -> anyhow::Result<Arc<RedisStore>> {
    Ok(Arc::new(
        RedisStore::connect(
            &RedisTarget::Single(redis_url()),
            StoreConfig::with_prefix(prefix),
        )
        .await?,
    ))
}

/// The whole key space a clean run of one consumer (default rounds, never stopped
/// early) leaves for `topic`, under a prefix of its own (deleted afterwards).
async fn clean_run(topic: &str, tag: &str, ends: &[(Partition, Offset)]) -> anyhow::Result<Dump> {
    let prefix = format!("test:clean:{tag}:");
    let clean = store(&prefix).await?;
    let total = whole(ends);
    let mut child = spawn_consumer(topic, &format!("test-clean-{tag}"), &prefix, &[]);
    wait_for(clean.as_ref(), ends, total, &mut child).await?;
    stop(child).await?;
    let dump = clean.dump().await?;
    clean.delete_all().await?;
    Ok(dump)
}

type Dump = BTreeMap<String, String>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_consumer_resumes_exactly_once() -> anyhow::Result<()> {
    let _machine = crate::support::whole_stack().await;
    let mut rng = Rng::new();
    let tag = format!("{:x}", rng.next() >> 16);
    let topic = format!("test-crash-{tag}");
    let prefix = format!("test:crash:{tag}:");

    let log = KafkaLog::new(KafkaConfig::new(brokers()))?;
    let events =
        replay::synthetic_events(40_000, 2_000, 300, 1_656_644_400_000, 15_000, rng.next());
    let ends = topic_with(&log, &topic, &events).await?;
    let total = whole(&ends);
    let store = store(&prefix).await?;

    // Kill at random moments, as long as there is work left; small rounds, so the
    // kills fall between many batches.
    let mut kills = 0;
    let mut progress = Vec::new();
    for run in 0..5 {
        let before = offsets(store.as_ref(), &ends).await;
        let mut child = spawn_consumer(
            &topic,
            &format!("test-crash-{tag}-{run}"),
            &prefix,
            &["--batch-max", "400"],
        );
        // Kill once it is applying: after its first batch, at a random moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        while offsets(store.as_ref(), &ends).await == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(0, 400))).await;
        child.kill()?;
        child.wait()?;
        kills += 1;
        let done = offsets(store.as_ref(), &ends).await;
        progress.push(done);
        if done >= total {
            break;
        }
    }
    eprintln!("offsets applied after each of {kills} kills: {progress:?} of {total}");

    // A last run to the end, stopped gracefully.
    let mut child = spawn_consumer(
        &topic,
        &format!("test-crash-{tag}-last"),
        &prefix,
        &["--batch-max", "400"],
    );
    wait_for(store.as_ref(), &ends, total, &mut child).await?;
    stop(child).await?;

    let crashed = store.dump().await?;
    let hits: u64 = store
        .online_counters()
        .await?
        .iter()
        .map(|(_, c)| c.hits)
        .sum();
    store.delete_all().await?;
    let clean = clean_run(&topic, &tag, &ends).await?;
    eprintln!("{} keys compared", clean.len());
    assert_eq!(dump_diff(&crashed, &clean), Vec::<String>::new());
    assert!(clean.len() > 1_000, "a whole state: {} keys", clean.len());
    assert!(hits > 1_000, "lists with an attributed click: {hits}");
    assert!(
        progress.iter().any(|p| *p < total),
        "at least one kill hit before the end: {progress:?}"
    );
    Ok(())
}

/// Reads one counter of the consumer's metrics endpoint.
async fn counter(addr: &str, name: &str) -> anyhow::Result<f64> {
    let body = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {name} in the metrics"))
}

/// Redis loses everything under the prefix while the consumer runs (as after a restart
/// without persistence, a failover to an empty replica or a flush): the consumer does
/// not write on top of the empty store; it rebuilds every partition from the start of
/// the log, counts it, and the whole state afterwards is a clean run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptied_store_is_rebuilt() -> anyhow::Result<()> {
    let _machine = crate::support::whole_stack().await;
    let mut rng = Rng::new();
    let tag = format!("{:x}", rng.next() >> 16);
    let topic = format!("test-emptied-{tag}");
    let prefix = format!("test:emptied:{tag}:");
    let log = KafkaLog::new(KafkaConfig::new(brokers()))?;
    let events = replay::synthetic_events(12_000, 800, 200, 1_656_644_400_000, 15_000, rng.next());
    let (first, later) = events.split_at(8_000);
    let ends = topic_with(&log, &topic, first).await?;
    let store = store(&prefix).await?;

    let mut child = spawn_consumer(&topic, &format!("test-emptied-{tag}"), &prefix, &[]);
    let addr = child.metrics.clone();
    let total = whole(&ends);
    wait_for(store.as_ref(), &ends, total, &mut child).await?;
    assert_eq!(
        counter(&addr, "newsrec_consumer_rebuilds_total").await?,
        0.0
    );

    let lost = store.delete_all().await?;
    anyhow::ensure!(lost > 100, "the store held {lost} keys");
    produce(&log, &topic, later).await?;
    mark(&log, &topic, later).await?;
    let ends = log.end_offsets(&topic).await?;
    let total = whole(&ends);
    wait_for(store.as_ref(), &ends, total, &mut child).await?;
    let rebuilds = counter(&addr, "newsrec_consumer_rebuilds_total").await?;
    stop(child).await?;

    let rebuilt = store.dump().await?;
    store.delete_all().await?;
    let clean = clean_run(&topic, &tag, &ends).await?;
    assert_eq!(dump_diff(&rebuilt, &clean), Vec::<String>::new());
    assert!(rebuilds >= 1.0, "rebuilds counted: {rebuilds}");
    Ok(())
}
