//! Attribution of clicks to served lists by `newsrec consume`'s attribution consumer,
//! against the real broker and Redis: a click naming its list, one that does not, one
//! outside the window, one on a page no list held, one whose list was pushed out by
//! newer lists; the counters it stores and exports; and topics whose partition counts
//! differ refused at start.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::sync::Arc;
use std::time::{Duration, Instant};

use newsrec_core::{
    CONTROL, ClickEvent, EventId, PageId, RecId, ServedList, ServedRecord, Tier, UserId, UserType,
};
use newsrec_features::online::Counters;
use newsrec_features::{FeatureStore, Partition, RedisStore, RedisTarget, StoreConfig};
use newsrec_ingest::consumer::{Attribution, ConsumeError, ConsumerConfig};
use newsrec_ingest::{ConsumerStats, EventLog, KafkaConfig, KafkaLog, Record, replay};
use tokio::sync::watch;

use crate::support::{brokers, random_prefix, random_suffix, redis_url};

const T0: i64 = 1_656_644_400_000;
const MIN: i64 = 60_000;

fn served(rec: &str, user: &str, tier: Tier, ts: i64, pages: &[&str]) -> Record {
    let list = ServedList {
        rec_id: RecId::parse(rec).unwrap(),
        user_id: Some(UserId::parse(user).unwrap()),
        page: None,
        event_ts: Some(ts),
        wall_ts: 0,
        tier: Some(tier),
        variant: CONTROL.into(),
        model_version: "v1".into(),
        pages: pages.iter().map(|p| PageId::parse(p).unwrap()).collect(),
    };
    Record::new(user, ServedRecord::List(Box::new(list)).encode())
}

fn click(n: u32, user: &str, page: &str, ts: i64, rec: Option<&str>) -> ClickEvent {
    ClickEvent {
        event_id: EventId::parse(&format!("e{n}")).unwrap(),
        user_id: UserId::parse(user).unwrap(),
        user_type: UserType::Logged,
        page: PageId::parse(page).unwrap(),
        ts,
        session_id: None,
        clicks: None,
        time_on_page_ms: None,
        scroll_pct: None,
        page_visits: None,
        rec_id: rec.map(|r| RecId::parse(r).unwrap()),
    }
}

fn config(topic: &str) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(topic, format!("{topic}-group"));
    cfg.partitions = 2;
    cfg.attribution = Some(Attribution {
        served_topic: format!("{topic}.served"),
        online: newsrec_features::online::OnlineConfig {
            window_ms: 30 * MIN,
            max_lists: 2,
            positions: 5,
        },
    });
    cfg
}

/// Waits until the stored attribution state read every click of `topic`.
async fn attributed(store: &dyn FeatureStore, log: &KafkaLog, topic: &str) {
    let ends = log.end_offsets(topic).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = true;
        for (p, end) in &ends {
            let st = store.load_online(*p).await.unwrap();
            done &= st.clicks_next.unwrap_or_default() >= *end;
        }
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "attribution did not reach the log's end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the stored counters hold `n` lists served in `tier`.
async fn served_reaches(store: &dyn FeatureStore, tier: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = store.online_counters().await.unwrap();
        let got: u64 = rows
            .iter()
            .filter(|(k, _)| k.tier == tier)
            .map(|(_, c)| c.served)
            .sum();
        if got >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tier}: {got} lists counted, {n} expected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_are_attributed_to_the_lists_that_showed_them() {
    let topic = format!("test-attr-{}", random_suffix());
    let prefix = random_prefix("attr");
    let log = Arc::new(KafkaLog::new(KafkaConfig::new(brokers())).unwrap());
    for t in [topic.clone(), format!("{topic}.served")] {
        log.ensure_topic(&t, 2).await.unwrap();
    }
    let lists = vec![
        // u1: two lists; a click naming the older one, one naming none.
        served("a1", "u1", Tier::Logged, T0, &["p1", "p2", "p3"]),
        served("a2", "u1", Tier::Logged, T0 + MIN, &["p3", "p4"]),
        // u2: a list, then a click 31 minutes later, and one on a page it did not hold.
        served("b1", "u2", Tier::Anonymous, T0, &["p1", "p2"]),
        // u3: three lists with room for two: a click naming the first finds nothing.
        served("c1", "u3", Tier::SemiLogged, T0, &["p9"]),
        served("c2", "u3", Tier::SemiLogged, T0 + 1, &["p8"]),
        served("c3", "u3", Tier::SemiLogged, T0 + 2, &["p7"]),
    ];
    log.produce(&format!("{topic}.served"), lists)
        .await
        .unwrap();
    // In event-time order, as a portal's stream is (ages are judged by the latest
    // event time read).
    let clicks = [
        click(1, "u1", "p3", T0 + 2 * MIN, Some("a1")),
        click(2, "u2", "p5", T0 + 2 * MIN, None),
        click(3, "u1", "p4", T0 + 3 * MIN, None),
        click(4, "u3", "p9", T0 + 3 * MIN, Some("c1")),
        click(5, "u3", "p8", T0 + 4 * MIN, None),
        click(6, "u2", "p1", T0 + 31 * MIN, Some("b1")),
    ];
    log.produce(&topic, clicks.iter().map(replay::event_record).collect())
        .await
        .unwrap();
    // The API's marks, past every click.
    let marks = (0..2)
        .map(|p| {
            Record::to_partition(
                Partition(p),
                ServedRecord::Tick {
                    tick: T0 + 40 * MIN,
                }
                .encode(),
            )
        })
        .collect();
    log.produce(&format!("{topic}.served"), marks)
        .await
        .unwrap();

    let cfg_store = StoreConfig::with_prefix(&prefix);
    let store = Arc::new(
        RedisStore::connect(&RedisTarget::Single(redis_url()), cfg_store)
            .await
            .unwrap(),
    );
    let stats = Arc::new(ConsumerStats::new());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(newsrec_ingest::attribution::run(
        log.clone(),
        store.clone(),
        config(&topic),
        stats.clone(),
        stopped,
    ));
    attributed(store.as_ref(), &log, &topic).await;
    // Lists served after the last click, with no click ever coming: counted as served
    // all the same (only their attributions wait for clicks).
    let late = vec![
        served("d1", "u1", Tier::Logged, T0 + 50 * MIN, &["p1"]),
        served("d2", "u1", Tier::Logged, T0 + 51 * MIN, &["p2"]),
    ];
    log.produce(&format!("{topic}.served"), late).await.unwrap();
    served_reaches(store.as_ref(), "logged", 4).await;
    let _ = stop.send(true);
    task.await.unwrap().unwrap();

    let rows = store.online_counters().await.unwrap();
    let by_tier = |t: &str| -> Counters {
        rows.iter()
            .find(|(k, _)| k.tier == t)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    let logged = by_tier("logged");
    // p3 named a1 (rank 3); p4 only a2 holds (rank 2).
    assert_eq!((logged.served, logged.hits, logged.clicks), (4, 2, 2));
    assert_eq!(logged.rr_sum, 1.0 / 3.0 + 1.0 / 2.0);
    assert_eq!(logged.by_position, vec![0, 1, 1, 0, 0, 0]);
    let anonymous = by_tier("anonymous");
    assert_eq!(
        (anonymous.served, anonymous.hits, anonymous.clicks),
        (1, 0, 0)
    );
    let semi = by_tier("semi_logged");
    // c1 was pushed out; p8 is in c2 (rank 1).
    assert_eq!((semi.served, semi.hits, semi.clicks), (3, 1, 1));

    // The exporter shows the same.
    let text = newsrec_ingest::render_consumer(&stats.snapshot());
    assert!(
        text.contains(r#"newsrec_online_hits_total{tier="logged",variant="control"} 2"#),
        "{text}"
    );
    assert!(text.contains(
        r#"newsrec_online_clicks_total{tier="logged",variant="control",position="3"} 1"#
    ));
    assert!(
        text.contains(r#"newsrec_online_served_total{tier="semi_logged",variant="control"} 3"#)
    );
    store.delete_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_with_other_partition_counts_are_refused_at_start() {
    let topic = format!("test-attr-{}", random_suffix());
    let log = Arc::new(KafkaLog::new(KafkaConfig::new(brokers())).unwrap());
    log.ensure_topic(&topic, 2).await.unwrap();
    log.ensure_topic(&format!("{topic}.served"), 3)
        .await
        .unwrap();
    let store = Arc::new(
        RedisStore::connect(
            &RedisTarget::Single(redis_url()),
            StoreConfig::with_prefix(random_prefix("attr")),
        )
        .await
        .unwrap(),
    );
    let (_stop, stopped) = watch::channel(false);
    let err = newsrec_ingest::attribution::run(
        log,
        store,
        config(&topic),
        Arc::new(ConsumerStats::new()),
        stopped,
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        ConsumeError::PartitionMismatch {
            clicks: 2,
            served: 3,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("has 2 partitions but") && msg.contains("has 3"),
        "{msg}"
    );
}
