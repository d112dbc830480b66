//! Crash safety of `newsrec consume` against the real broker and Redis: the consumer
//! process is killed with SIGKILL at random moments while it applies a replayed stream,
//! restarted each time, and finally stopped with SIGTERM; the state in Redis must equal
//! the state computed directly from the same events, exactly.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use newsrec_features::reference::Reference;
use newsrec_features::{FeatureStore, RedisStore, RedisTarget, StoreConfig};
use newsrec_ingest::replay;
use newsrec_ingest::{EventLog, KafkaConfig, KafkaLog};

fn brokers() -> String {
    std::env::var("NEWSREC_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn redis_url() -> String {
    std::env::var("NEWSREC_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

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
/// A consumer process, killed and reaped when dropped so that no early return of the
/// test leaves it running.
struct ConsumerProcess(Child);

impl std::ops::Deref for ConsumerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ConsumerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_consumer(topic: &str, group: &str, prefix: &str) -> ConsumerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_newsrec"))
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
            "--batch-max",
            "400",
        ])
        .env("RUST_LOG", "warn")
        // The store config the reference assumes: no "read next" list reaches its cap
        // or its TTL within the test's week of event time.
        .env("NEWSREC_STORE__COVISIT_TTL_HOURS", "87600")
        .env("NEWSREC_STORE__COVISIT_MAX_NEXT", "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("newsrec binary runs");
    ConsumerProcess(child)
}

async fn offsets(store: &dyn FeatureStore, ends: &[(i32, i64)]) -> i64 {
    let parts: Vec<i32> = ends.iter().map(|e| e.0).collect();
    store
        .next_offsets(&parts)
        .await
        .expect("offsets readable")
        .into_iter()
        .map(|o| o.unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_consumer_resumes_exactly_once() -> anyhow::Result<()> {
    let mut rng = Rng::new();
    let tag = format!("{:x}", rng.next() >> 16);
    let topic = format!("test-crash-{tag}");
    let prefix = format!("test:crash:{tag}:");

    let log = KafkaLog::new(KafkaConfig::new(brokers()))?;
    log.ensure_topic(&topic, 4).await?;
    let events =
        replay::synthetic_events(40_000, 2_000, 300, 1_656_644_400_000, 15_000, rng.next());
    let mut placed = Vec::with_capacity(events.len());
    for chunk in events.chunks(10_000) {
        let at = log
            .produce(&topic, chunk.iter().map(replay::event_record).collect())
            .await?;
        placed.extend(
            at.into_iter()
                .zip(chunk.iter().cloned())
                .map(|((p, o), e)| (p, o, e)),
        );
    }
    let ends = log.end_offsets(&topic).await?;
    let total: i64 = ends.iter().map(|e| e.1).sum();

    let cfg = StoreConfig {
        covisit_ttl_hours: 87_600,
        covisit_max_next: 100_000,
        ..StoreConfig::with_prefix(&prefix)
    };
    let store = Arc::new(RedisStore::connect(&RedisTarget::Single(redis_url()), cfg).await?);

    // Kill at random moments, as long as there is work left.
    let mut kills = 0;
    let mut progress = Vec::new();
    for run in 0..5 {
        let before = offsets(store.as_ref(), &ends).await;
        let mut child = spawn_consumer(&topic, &format!("test-crash-{tag}-{run}"), &prefix);
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
    let mut child = spawn_consumer(&topic, &format!("test-crash-{tag}-last"), &prefix);
    let deadline = Instant::now() + Duration::from_secs(180);
    while offsets(store.as_ref(), &ends).await < total {
        anyhow::ensure!(Instant::now() < deadline, "consumer did not finish");
        anyhow::ensure!(child.try_wait()?.is_none(), "consumer exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
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

    let ends_map: BTreeMap<i32, i64> = ends.iter().copied().filter(|e| e.1 > 0).collect();
    let reference = Reference::build(store.config(), &placed, &ends_map);
    let diff = reference.diff(store.as_ref()).await?;
    store.delete_all().await?;
    assert_eq!(diff, Vec::<String>::new());
    assert!(
        progress.iter().any(|p| *p < total),
        "at least one kill hit before the end: {progress:?}"
    );
    Ok(())
}
