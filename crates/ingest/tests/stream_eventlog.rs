//! One conformance suite for both event logs: the in-process log and Kafka (the real
//! broker at `NEWSREC_KAFKA_BROKERS`, default 127.0.0.1:9092, random topic names).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use newsrec_features::{Offset, Partition};
use newsrec_ingest::{
    EventLog, KafkaConfig, KafkaLog, LogConsumer, LogMessage, MemoryLog, Positioner, Record,
};
use rand::Rng;

fn brokers() -> String {
    std::env::var("NEWSREC_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn name(what: &str) -> String {
    format!("test-{what}-{:012x}", rand::rng().random::<u64>() >> 16)
}

fn make(kind: &str) -> Arc<dyn EventLog> {
    match kind {
        "memory" => Arc::new(MemoryLog::new()),
        _ => Arc::new(KafkaLog::new(KafkaConfig::new(brokers())).unwrap()),
    }
}

fn from_start() -> Positioner {
    Arc::new(|parts: &[Partition]| Ok(vec![None; parts.len()]))
}

fn records(n: usize, keys: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            partition: None,
            key: Some(format!("key{}", i % keys).into_bytes()),
            payload: format!("value-{i}").into_bytes(),
            headers: vec![("n".into(), i.to_string().into_bytes())],
        })
        .collect()
}

async fn drain(c: &mut dyn LogConsumer, n: usize, timeout: Duration) -> Vec<LogMessage> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < n && start.elapsed() < timeout {
        out.extend(
            c.poll(n - out.len(), Duration::from_millis(200))
                .await
                .unwrap(),
        );
    }
    out
}

async fn produce_and_consume_in_order(log: Arc<dyn EventLog>) {
    let topic = name("order");
    log.ensure_topic(&topic, 3).await.unwrap();
    // Creating again is fine.
    log.ensure_topic(&topic, 3).await.unwrap();
    let placed = log.produce(&topic, records(60, 6)).await.unwrap();
    assert_eq!(placed.len(), 60);
    let ends: i64 = log
        .end_offsets(&topic)
        .await
        .unwrap()
        .iter()
        .map(|e| e.1.0)
        .sum();
    assert_eq!(ends, 60);
    // Nothing was deleted: every partition still holds its start.
    let starts = log.start_offsets(&topic).await.unwrap();
    let (p0, p1, p2) = (Partition(0), Partition(1), Partition(2));
    assert_eq!(
        starts,
        vec![(p0, Offset(0)), (p1, Offset(0)), (p2, Offset(0))]
    );

    let mut c = log
        .subscribe(&topic, &name("g"), from_start())
        .await
        .unwrap();
    let got = drain(c.as_mut(), 60, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 60);
    let mut key_part: HashMap<Vec<u8>, Partition> = HashMap::new();
    let mut last: BTreeMap<Partition, Offset> = BTreeMap::new();
    let mut per_key: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for m in &got {
        let k = m.key.clone().unwrap();
        assert_eq!(
            *key_part.entry(k.clone()).or_insert(m.partition),
            m.partition,
            "a key stays in one partition"
        );
        let prev = last.insert(m.partition, m.offset);
        assert!(prev.is_none_or(|p| p < m.offset), "offsets increase");
        let payload = String::from_utf8(m.payload.clone().unwrap()).unwrap();
        let i: usize = payload.trim_start_matches("value-").parse().unwrap();
        assert_eq!(
            m.headers,
            vec![("n".to_string(), i.to_string().into_bytes())]
        );
        assert!(placed.contains(&(m.partition, m.offset)));
        per_key.entry(k).or_default().push(i);
    }
    for v in per_key.values() {
        assert!(
            v.windows(2).all(|w| w[0] < w[1]),
            "a key's records keep their order"
        );
    }
    assert_eq!(c.assignment().partitions, vec![p0, p1, p2]);
}

async fn positioner_and_seek(log: Arc<dyn EventLog>) {
    let topic = name("seek");
    log.ensure_topic(&topic, 2).await.unwrap();
    // Without keys the records spread; give each partition at least 10.
    let mut placed = Vec::new();
    let (p0, p1) = (Partition(0), Partition(1));
    while [p0, p1]
        .iter()
        .any(|p| placed.iter().filter(|(q, _)| q == p).count() < 10)
    {
        let batch: Vec<Record> = (0..10)
            .map(|i| Record {
                partition: None,
                key: Some(format!("k{i}-{}", placed.len()).into_bytes()),
                payload: b"x".to_vec(),
                headers: vec![],
            })
            .collect();
        placed.extend(log.produce(&topic, batch).await.unwrap());
    }
    let total = placed.len();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let positioner: Positioner = Arc::new(move |parts: &[Partition]| {
        seen.lock().unwrap().extend_from_slice(parts);
        Ok(parts
            .iter()
            .map(|p| (*p == Partition(0)).then_some(Offset(5)))
            .collect())
    });
    let mut c = log.subscribe(&topic, &name("g"), positioner).await.unwrap();
    let got = drain(c.as_mut(), total - 5, Duration::from_secs(30)).await;
    assert_eq!(got.len(), total - 5);
    assert_eq!(
        got.iter()
            .filter(|m| m.partition == p0)
            .map(|m| m.offset)
            .min(),
        Some(Offset(5))
    );
    assert_eq!(
        got.iter()
            .filter(|m| m.partition == p1)
            .map(|m| m.offset)
            .min(),
        Some(Offset(0))
    );
    assert_eq!(
        asked
            .lock()
            .unwrap()
            .iter()
            .copied()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([p0, p1])
    );
    c.seek(p1, Offset(3)).await.unwrap();
    let again = drain(c.as_mut(), 1, Duration::from_secs(30)).await;
    assert_eq!((again[0].partition, again[0].offset), (p1, Offset(3)));
}

async fn group_members_split_partitions(log: Arc<dyn EventLog>) {
    let topic = name("group");
    let group = name("g");
    log.ensure_topic(&topic, 4).await.unwrap();
    let mut a = log.subscribe(&topic, &group, from_start()).await.unwrap();
    let mut b = log.subscribe(&topic, &group, from_start()).await.unwrap();
    // Let the group settle before anything is published.
    let start = Instant::now();
    loop {
        a.poll(10, Duration::from_millis(100)).await.unwrap();
        b.poll(10, Duration::from_millis(100)).await.unwrap();
        let (pa, pb) = (a.assignment().partitions, b.assignment().partitions);
        if !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 4 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "group did not settle: {pa:?} {pb:?}"
        );
    }
    let (pa, pb) = (a.assignment().partitions, b.assignment().partitions);
    assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} {pb:?}");
    log.produce(&topic, records(80, 16)).await.unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 80 && start.elapsed() < Duration::from_secs(30) {
        for m in a.poll(100, Duration::from_millis(100)).await.unwrap() {
            assert!(pa.contains(&m.partition));
            got.push((m.partition, m.offset));
        }
        for m in b.poll(100, Duration::from_millis(100)).await.unwrap() {
            assert!(pb.contains(&m.partition));
            got.push((m.partition, m.offset));
        }
    }
    let distinct: BTreeSet<_> = got.iter().collect();
    assert_eq!((got.len(), distinct.len()), (80, 80));
}

/// Assigned partitions read from the given offsets, outside any group; records written
/// to a given partition land there whatever their key.
async fn assigned_partitions_and_explicit_partitions(log: Arc<dyn EventLog>) {
    let topic = name("assign");
    log.ensure_topic(&topic, 3).await.unwrap();
    let placed = log
        .produce(
            &topic,
            (0..30)
                .map(|i| Record::to_partition(Partition(i % 3), format!("v{i}").into_bytes()))
                .collect(),
        )
        .await
        .unwrap();
    for (i, (p, _)) in placed.iter().enumerate() {
        assert_eq!(*p, Partition(i as i32 % 3));
    }
    // Partition 1 from offset 4 (its 10 records: 6 left), partition 2 from the start.
    let mut c = log
        .assign(
            &topic,
            &[(Partition(1), Some(Offset(4))), (Partition(2), None)],
        )
        .await
        .unwrap();
    assert_eq!(c.assignment().partitions, vec![Partition(1), Partition(2)]);
    let got = drain(c.as_mut(), 16, Duration::from_secs(20)).await;
    let mut per: BTreeMap<Partition, Vec<i64>> = BTreeMap::new();
    for m in &got {
        per.entry(m.partition).or_default().push(m.offset.0);
    }
    assert_eq!(per[&Partition(1)], (4..10).collect::<Vec<_>>());
    assert_eq!(per[&Partition(2)], (0..10).collect::<Vec<_>>());
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::make("memory")).await;
                }
            )*
        }
        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::make("kafka")).await;
                }
            )*
        }
    };
}

conformance!(
    produce_and_consume_in_order,
    positioner_and_seek,
    group_members_split_partitions,
    assigned_partitions_and_explicit_partitions
);
