//! The consumer against the real broker and Redis (random topics and key prefixes), and
//! against the in-process log: poison messages, consumer groups, replay from Parquet.
//! Every run ends with the store compared to the reference computed from the events.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsrec_core::ClickEvent;
use newsrec_data::events;
use newsrec_features::reference::Reference;
use newsrec_features::{
    FeatureStore, MemoryStore, Offset, Partition, RedisStore, RedisTarget, StoreConfig,
};
use newsrec_ingest::consumer::{self, ConsumeSummary, ConsumerConfig};
use newsrec_ingest::replay::{self, ReplayConfig};
use newsrec_ingest::{
    ConsumerStats, EventLog, KafkaConfig, KafkaLog, MemoryLog, Positioner, Record,
};
use rand::Rng;
use tokio::sync::watch;

const T0: i64 = 1_656_644_400_000;

fn brokers() -> String {
    std::env::var("NEWSREC_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn redis_url() -> String {
    std::env::var("NEWSREC_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn rand_name(what: &str) -> String {
    format!("test-{what}-{:012x}", rand::rng().random::<u64>() >> 16)
}

fn store_cfg() -> StoreConfig {
    StoreConfig {
        covisit_ttl_hours: 24 * 365,
        ..StoreConfig::with_prefix(format!("{}:", rand_name("store")))
    }
}

async fn redis_store() -> Arc<RedisStore> {
    Arc::new(
        RedisStore::connect(&RedisTarget::Single(redis_url()), store_cfg())
            .await
            .expect("Redis must be running (scripts/services.sh start)"),
    )
}

fn consumer_cfg(topic: &str, group: &str) -> ConsumerConfig {
    ConsumerConfig {
        batch_max: 700,
        batch_linger: Duration::from_millis(20),
        poll_wait: Duration::from_millis(200),
        lag_interval: Duration::from_millis(500),
        ..ConsumerConfig::new(topic, group)
    }
}

/// A consumer running in a task, stopped by `stop`.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<ConsumeSummary, consumer::ConsumeError>>,
    stats: Arc<ConsumerStats>,
}

fn start(log: Arc<dyn EventLog>, store: Arc<dyn FeatureStore>, cfg: ConsumerConfig) -> Running {
    let (stop, stopped) = watch::channel(false);
    let stats = Arc::new(ConsumerStats::new());
    let task = tokio::spawn(consumer::run(log, store, cfg, Arc::clone(&stats), stopped));
    Running { stop, task, stats }
}

impl Running {
    async fn stop(self) -> ConsumeSummary {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap()
    }
}

/// Publishes events and poison payloads mixed; returns the valid events with where
/// they landed, and the poison's expected reason codes.
async fn publish_mixed(
    log: &dyn EventLog,
    topic: &str,
    events: &[ClickEvent],
) -> (Vec<(Partition, Offset, ClickEvent)>, Vec<&'static str>) {
    let text = String::from_utf8(events[0].encode()).unwrap();
    let poison: Vec<(Vec<u8>, &'static str)> = vec![
        (b"not json at all".to_vec(), "not_json"),
        (
            br#"{"event_id":"e","user_id":"u","user_type":"Logged","ts":1656644400000}"#.to_vec(),
            "missing_field",
        ),
        (
            text.replace(&format!("\"ts\":{}", events[0].ts), "\"ts\":\"soon\"")
                .into_bytes(),
            "wrong_type",
        ),
        (
            text.replacen(events[0].user_id.as_str(), "bad user", 1)
                .into_bytes(),
            "bad_id",
        ),
        (
            text.replace(events[0].user_type.as_str(), "Robot")
                .into_bytes(),
            "unknown_user_type",
        ),
        (
            text.replace(&format!("\"ts\":{}", events[0].ts), "\"ts\":12")
                .into_bytes(),
            "absurd_timestamp",
        ),
        (
            text.replace("\"scroll_pct\":", "\"scroll_pct\":-")
                .into_bytes(),
            "bad_value",
        ),
        (vec![b' '; 17 * 1024], "oversized"),
    ];
    let mut records = Vec::new();
    let mut kinds = Vec::new();
    let mut codes = Vec::new();
    for (i, e) in events.iter().enumerate() {
        records.push(replay::event_record(e));
        kinds.push(Some(e.clone()));
        if i % 50 == 7 {
            let (payload, code) = &poison[(i / 50) % poison.len()];
            records.push(Record::new(e.user_id.as_str(), payload.clone()));
            kinds.push(None);
            codes.push(*code);
        }
    }
    let placed = log.produce(topic, records).await.unwrap();
    let applied = placed
        .into_iter()
        .zip(kinds)
        .filter_map(|((p, o), e)| e.map(|e| (p, o, e)))
        .collect();
    (applied, codes)
}

async fn check_reference(
    store: &dyn FeatureStore,
    events: &[(Partition, Offset, ClickEvent)],
    ends: &[(Partition, Offset)],
) {
    let ends: BTreeMap<Partition, Offset> = ends
        .iter()
        .copied()
        .filter(|(_, e)| *e > Offset(0))
        .collect();
    let reference = Reference::build(store.config(), events, &ends);
    assert_eq!(reference.diff(store).await.unwrap(), Vec::<String>::new());
}

fn from_start() -> Positioner {
    Arc::new(|parts: &[Partition]| Ok(vec![None; parts.len()]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_the_dead_letter_topic() {
    let log: Arc<dyn EventLog> = Arc::new(KafkaLog::new(KafkaConfig::new(brokers())).unwrap());
    let topic = rand_name("poison");
    log.ensure_topic(&topic, 3).await.unwrap();
    let events = replay::synthetic_events(800, 60, 40, T0, 30_000, 3);
    let (applied, codes) = publish_mixed(log.as_ref(), &topic, &events).await;
    let ends = log.end_offsets(&topic).await.unwrap();

    let store = redis_store().await;
    let run = start(
        Arc::clone(&log),
        store.clone(),
        consumer_cfg(&topic, &rand_name("g")),
    );
    consumer::caught_up(store.as_ref(), &ends, Duration::from_secs(120))
        .await
        .unwrap();
    let stats = Arc::clone(&run.stats);
    let summary = run.stop().await;
    assert_eq!(summary.applied, events.len() as u64);
    assert_eq!(summary.dead_letters, codes.len() as u64);
    let snap = stats.snapshot();
    for code in ["not_json", "oversized", "bad_id", "absurd_timestamp"] {
        let want = codes.iter().filter(|c| **c == code).count() as u64;
        assert_eq!(
            snap.dead_letters.iter().find(|d| d.0 == code).map(|d| d.1),
            Some(want),
            "{code}"
        );
    }
    assert!(snap.watermark_ms.is_some());
    check_reference(store.as_ref(), &applied, &ends).await;

    // The dead-letter topic holds every poison message with its reason and origin.
    let dlq = format!("{topic}.dead-letter");
    let mut c = log
        .subscribe(&dlq, &rand_name("g"), from_start())
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < codes.len() && Instant::now() < deadline {
        got.extend(c.poll(100, Duration::from_millis(200)).await.unwrap());
    }
    let mut reasons: Vec<String> = got
        .iter()
        .map(|m| {
            let h: HashMap<&str, &[u8]> = m
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            assert_eq!(h["source.topic"], topic.as_bytes());
            assert!(h.contains_key("source.offset") && h.contains_key("detail"));
            String::from_utf8(h["reason"].to_vec()).unwrap()
        })
        .collect();
    let mut want: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    reasons.sort();
    want.sort();
    assert_eq!(reasons, want);
    store.delete_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_partitions_and_together_match_the_reference() {
    let log: Arc<dyn EventLog> = Arc::new(KafkaLog::new(KafkaConfig::new(brokers())).unwrap());
    let topic = rand_name("group");
    log.ensure_topic(&topic, 4).await.unwrap();
    let store = redis_store().await;
    let group = rand_name("g");
    let a = start(
        Arc::clone(&log),
        store.clone(),
        consumer_cfg(&topic, &group),
    );
    let b = start(
        Arc::clone(&log),
        store.clone(),
        consumer_cfg(&topic, &group),
    );
    // Publish in waves while the group forms and settles.
    let events = replay::synthetic_events(4_000, 300, 80, T0, 20_000, 4);
    let mut placed = Vec::new();
    for wave in events.chunks(250) {
        let got = log
            .produce(&topic, wave.iter().map(replay::event_record).collect())
            .await
            .unwrap();
        placed.extend(
            got.into_iter()
                .zip(wave.iter().cloned())
                .map(|((p, o), e)| (p, o, e)),
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let ends = log.end_offsets(&topic).await.unwrap();
    consumer::caught_up(store.as_ref(), &ends, Duration::from_secs(120))
        .await
        .unwrap();
    let (sa, sb) = (a.stop().await, b.stop().await);
    assert_eq!(
        sa.applied + sb.applied,
        events.len() as u64,
        "{sa:?} {sb:?}"
    );
    assert!(
        sa.applied > 0 && sb.applied > 0,
        "both members worked: {sa:?} {sb:?}"
    );
    check_reference(store.as_ref(), &placed, &ends).await;
    store.delete_all().await.unwrap();
}

#[tokio::test]
async fn in_process_log_and_store_match_the_reference() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new());
    let topic = "clicks";
    log.ensure_topic(topic, 3).await.unwrap();
    let events = replay::synthetic_events(3_000, 200, 50, T0, 20_000, 5);
    let (applied, codes) = publish_mixed(log.as_ref(), topic, &events).await;
    let ends = log.end_offsets(topic).await.unwrap();
    let store: Arc<dyn FeatureStore> = Arc::new(MemoryStore::new(store_cfg()).unwrap());
    // Two runs with a stop in between: the second resumes from the stored offsets.
    let first = start(
        Arc::clone(&log),
        Arc::clone(&store),
        consumer_cfg(topic, "g"),
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    let s1 = first.stop().await;
    let second = start(
        Arc::clone(&log),
        Arc::clone(&store),
        consumer_cfg(topic, "g"),
    );
    consumer::caught_up(store.as_ref(), &ends, Duration::from_secs(120))
        .await
        .unwrap();
    let s2 = second.stop().await;
    assert_eq!(s1.applied + s2.applied, events.len() as u64);
    assert_eq!(s1.dead_letters + s2.dead_letters, codes.len() as u64);
    check_reference(store.as_ref(), &applied, &ends).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_publishes_parquet_in_event_time_order() {
    use polars::prelude::{ParquetWriter, df};
    let dir = tempfile::tempdir().unwrap();
    let events = replay::synthetic_events(500, 40, 30, T0, 10_000, 6);
    // Written out of order: replay sorts by event time.
    let mut rows: Vec<&ClickEvent> = events.iter().collect();
    rows.reverse();
    let mut df = df!(
        "user_id" => rows.iter().map(|e| e.user_id.to_string()).collect::<Vec<_>>(),
        "user_type" => rows.iter().map(|e| e.user_type.as_str()).collect::<Vec<_>>(),
        "page" => rows.iter().map(|e| e.page.to_string()).collect::<Vec<_>>(),
        "ts" => rows.iter().map(|e| e.ts).collect::<Vec<_>>(),
        "clicks" => rows.iter().map(|e| i64::from(e.clicks.unwrap_or(0))).collect::<Vec<_>>(),
        "time_on_page_ms" => rows.iter().map(|e| e.time_on_page_ms.unwrap_or(0) as i64).collect::<Vec<_>>(),
        "scroll_pct" => rows.iter().map(|e| e.scroll_pct.unwrap_or(0.0)).collect::<Vec<_>>(),
        "page_visits" => rows.iter().map(|e| i64::from(e.page_visits.unwrap_or(1))).collect::<Vec<_>>(),
        "engagement" => rows.iter().map(|e| e.engagement().score()).collect::<Vec<_>>(),
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("interactions.parquet")).unwrap();
    ParquetWriter::new(file).finish(&mut df).unwrap();

    let log = KafkaLog::new(KafkaConfig::new(brokers())).unwrap();
    let topic = rand_name("replay");
    let cfg = ReplayConfig {
        partitions: 2,
        ..ReplayConfig::new(&topic)
    };
    let (loaded, skipped) = events::load_events(dir.path(), Some(400)).unwrap();
    let summary = replay::replay(&log, &loaded, &cfg).await.unwrap();
    assert_eq!((summary.events, skipped), (400, 0));
    let mut c = log
        .subscribe(&topic, &rand_name("g"), from_start())
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 400 && Instant::now() < deadline {
        got.extend(c.poll(500, Duration::from_millis(200)).await.unwrap());
    }
    assert_eq!(got.len(), 400);
    let mut last_ts: HashMap<Partition, i64> = HashMap::new();
    let mut seen = Vec::new();
    for m in &got {
        let e = ClickEvent::decode(m.payload.as_deref().unwrap()).unwrap();
        assert_eq!(m.key.as_deref(), Some(e.user_id.as_str().as_bytes()));
        let prev = last_ts.insert(m.partition, e.ts);
        assert!(
            prev.is_none_or(|p| p <= e.ts),
            "event-time order per partition"
        );
        seen.push(e);
    }
    // The earliest 400 events, with the ids a re-run would give again.
    let (again, _) = events::load_events(dir.path(), Some(400)).unwrap();
    seen.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let mut again_sorted = again.clone();
    again_sorted.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(seen, again_sorted);
    assert!(again.iter().all(|e| e.ts <= events[399].ts));
}
