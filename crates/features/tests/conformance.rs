//! One conformance suite for both feature stores: every check runs against the
//! in-process store, against the real Redis (`NEWSREC_REDIS_URL`, default
//! redis://127.0.0.1:6379) and against a real Redis Cluster (`NEWSREC_TEST_REDIS_CLUSTER`, seed
//! nodes, default the three of `scripts/services.sh`), under a random key prefix.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::BTreeMap;
use std::sync::Arc;

use newsrec_core::time::{HOUR_MS, MIN_PLAUSIBLE_MS};
use newsrec_core::{ClickEvent, EventId, PageId, Tier, UserAggregates, UserId, UserType};
use newsrec_features::reference::{Reference, dump_diff};
use newsrec_features::{
    FeatureStore, MemoryStore, Offset, Partition, PartitionBatch, RedisStore, RedisTarget,
    StoreConfig, StoreError, Window,
};
use rand::{Rng, SeedableRng};

const T0: i64 = 1_656_644_400_000;
const MIN: i64 = 60_000;

fn cfg(prefix: &str) -> StoreConfig {
    StoreConfig {
        history_len: 3,
        covisit_ttl_hours: 24 * 365,
        ..StoreConfig::with_prefix(prefix)
    }
}

fn redis_url() -> String {
    std::env::var("NEWSREC_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn cluster_nodes() -> String {
    std::env::var("NEWSREC_TEST_REDIS_CLUSTER").unwrap_or_else(|_| {
        "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103".into()
    })
}

fn prefix() -> String {
    format!("test:{:016x}:", rand::rng().random::<u64>())
}

/// A store under test, cleaned up by `finish`.
enum Subject {
    Memory(Arc<MemoryStore>),
    Redis(Arc<RedisStore>),
}

impl Subject {
    async fn new(kind: &str, cfg: StoreConfig) -> Self {
        match kind {
            "memory" => Subject::Memory(Arc::new(MemoryStore::new(cfg).unwrap())),
            "cluster" => Subject::Redis(Arc::new(
                RedisStore::connect(&RedisTarget::parse(&cluster_nodes(), true), cfg)
                    .await
                    .expect("a Redis Cluster must be running (scripts/services.sh start)"),
            )),
            _ => Subject::Redis(Arc::new(
                RedisStore::connect(&RedisTarget::Single(redis_url()), cfg)
                    .await
                    .expect("Redis must be running (scripts/services.sh start)"),
            )),
        }
    }

    fn store(&self) -> &dyn FeatureStore {
        match self {
            Subject::Memory(s) => s.as_ref(),
            Subject::Redis(s) => s.as_ref(),
        }
    }

    async fn finish(self) {
        if let Subject::Redis(s) = self {
            s.delete_all().await.unwrap();
        }
    }
}

fn ev(user: &str, ty: UserType, page: &str, ts: i64, sid: Option<&str>) -> ClickEvent {
    ClickEvent {
        event_id: EventId::parse(&format!("{user}-{ts}")).unwrap(),
        user_id: UserId::parse(user).unwrap(),
        user_type: ty,
        page: PageId::parse(page).unwrap(),
        ts,
        session_id: sid.map(str::to_owned),
        clicks: Some((ts % 7) as u32),
        time_on_page_ms: Some(30_000 + (ts % 11) as u64 * 1000),
        scroll_pct: Some((ts % 97) as f64 + 0.25),
        page_visits: Some(1 + (ts % 2) as u32),
        rec_id: None,
    }
}

fn batch(partition: i32, start: i64, events: &[ClickEvent]) -> PartitionBatch {
    PartitionBatch::consecutive(partition, start, events.iter().cloned())
}

fn page(s: &str) -> PageId {
    PageId::parse(s).unwrap()
}

/// The store keeps sums in integer units (milliseconds, basis points, millionths of a
/// score): equal to the float definition up to that rounding.
fn assert_close(got: &UserAggregates, want: &UserAggregates) {
    assert_eq!(
        (got.interactions, got.first_ts, got.last_ts),
        (want.interactions, want.first_ts, want.last_ts)
    );
    let n = want.interactions as f64;
    for (g, w) in got.vector().iter().zip(want.vector()) {
        assert!(
            (g - w).abs() <= 1e-6 * n * (1.0 + w.abs()),
            "{got:?} vs {want:?}"
        );
    }
}

async fn user_features_and_tiers(s: &dyn FeatureStore) {
    let nl = UserType::NonLogged;
    let u = UserId::parse("reader").unwrap();
    assert_eq!(s.user(&u).await.unwrap(), None);
    let e1 = ev("reader", nl, "a", T0, None);
    s.apply(&batch(0, 0, std::slice::from_ref(&e1)))
        .await
        .unwrap();
    let st = s.user(&u).await.unwrap().unwrap();
    assert_eq!((st.tier, st.interactions()), (Tier::Anonymous, 1));
    let mut want = UserAggregates::default();
    want.add(&e1.engagement(), e1.ts);
    assert_close(&st.aggregates, &want);

    let more = [
        ev("reader", nl, "b", T0 + MIN, Some("s1")),
        ev("reader", nl, "c", T0 + 2 * MIN, Some("s1")),
        ev("reader", UserType::Logged, "d", T0 + 3 * MIN, Some("s2")),
    ];
    s.apply(&batch(0, 1, &more[..2])).await.unwrap();
    let st = s.user(&u).await.unwrap().unwrap();
    assert_eq!(st.tier, Tier::SemiLogged);
    assert_eq!(st.history, vec![page("c"), page("b"), page("a")]);
    assert_eq!(st.last_session.as_deref(), Some("s1"));
    s.apply(&batch(0, 3, &more[2..])).await.unwrap();
    let st = s.user(&u).await.unwrap().unwrap();
    assert_eq!((st.tier, st.user_type), (Tier::Logged, UserType::Logged));
    // Bounded history, newest first.
    assert_eq!(st.history, vec![page("d"), page("c"), page("b")]);
    assert_eq!(st.last_page, page("d"));
    assert_eq!((st.aggregates.first_ts, st.last_ts()), (T0, T0 + 3 * MIN));
    assert!(st.session_open(T0 + 20 * MIN, 30 * MIN));
    assert!(!st.session_open(T0 + 40 * MIN, 30 * MIN));
}

/// A user whose events arrive through two partitions (a producer not keyed by user) has
/// one record per partition, read back merged: sums over both; type, last page and
/// session of the latest event; that record's history first. The order the partitions
/// are applied in does not matter.
async fn users_on_two_partitions_merge(s: &dyn FeatureStore) {
    let (nl, lg) = (UserType::NonLogged, UserType::Logged);
    let a = [
        ev("both", nl, "a", T0, Some("s1")),
        ev("both", nl, "b", T0 + MIN, Some("s1")),
    ];
    let b = [ev("both", lg, "c", T0 + 2 * MIN, Some("s2"))];
    s.apply(&batch(1, 0, &b)).await.unwrap();
    s.apply(&batch(0, 0, &a)).await.unwrap();
    let st = s
        .user(&UserId::parse("both").unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut want = UserAggregates::default();
    for e in a.iter().chain(&b) {
        want.add(&e.engagement(), e.ts);
    }
    assert_eq!(st.interactions(), 3);
    assert_close(&st.aggregates, &want);
    assert_eq!(
        (st.aggregates.first_ts, st.aggregates.last_ts),
        (T0, T0 + 2 * MIN)
    );
    assert_eq!((st.user_type, st.tier), (lg, Tier::Logged));
    assert_eq!(st.last_page, page("c"));
    assert_eq!(st.last_session.as_deref(), Some("s2"));
    assert_eq!(st.history, vec![page("c"), page("b"), page("a")]);
}

async fn windows_slide_and_expire(s: &dyn FeatureStore) {
    let nl = UserType::NonLogged;
    let w1 = Window::hours(1);
    let w24 = Window::hours(24);
    let first = [
        ev("u1", nl, "old", T0, None),
        ev("u2", nl, "old", T0 + MIN, None),
        ev("u3", nl, "new", T0 + 2 * MIN, None),
    ];
    s.apply(&batch(0, 0, &first)).await.unwrap();
    let top = s.popular(w1, 10).await.unwrap();
    assert_eq!(top[0].page, page("old"));
    assert_eq!(top[0].score, 2.0);
    // Two hours later "old" has left the 1h window but not the 24h one.
    let later = [ev("u4", nl, "new", T0 + 2 * HOUR_MS, None)];
    s.apply(&batch(0, 3, &later)).await.unwrap();
    let top = s.popular(w1, 10).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!((top[0].page.as_str(), top[0].score), ("new", 1.0));
    let top = s.popular(w24, 10).await.unwrap();
    assert_eq!(top.iter().map(|p| p.score).sum::<f64>(), 4.0);
    // Two days later everything old is gone from every window.
    let much_later = [ev("u5", nl, "x", T0 + 50 * HOUR_MS, None)];
    s.apply(&batch(0, 4, &much_later)).await.unwrap();
    let top = s.popular(w24, 10).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].page, page("x"));
    assert_eq!(s.watermark().await.unwrap(), Some(T0 + 50 * HOUR_MS));
    assert!(s.popular(Window::hours(5), 10).await.unwrap().is_empty());
}

async fn replays_apply_once(s: &dyn FeatureStore) {
    let nl = UserType::NonLogged;
    let events: Vec<ClickEvent> = (0..20)
        .map(|i| {
            ev(
                &format!("u{}", i % 4),
                nl,
                &format!("p{}", i % 5),
                T0 + i * MIN,
                None,
            )
        })
        .collect();
    let first = s.apply(&batch(1, 0, &events[..10])).await.unwrap();
    assert_eq!(
        (first.applied, first.duplicates, first.next_offset),
        (10, 0, Offset(10))
    );
    let again = s.apply(&batch(1, 0, &events[..10])).await.unwrap();
    assert_eq!(
        (again.applied, again.duplicates, again.next_offset),
        (0, 10, Offset(10))
    );
    // Other bounds than the first attempt: only the new tail counts.
    let overlap = s.apply(&batch(1, 5, &events[5..15])).await.unwrap();
    assert_eq!(
        (overlap.applied, overlap.duplicates, overlap.next_offset),
        (5, 5, Offset(15))
    );
    let gap = s.apply(&batch(1, 17, &events[17..])).await;
    assert!(
        matches!(
            gap,
            Err(StoreError::OffsetGap {
                stored: Offset(15),
                start: Offset(17),
                ..
            })
        ),
        "{gap:?}"
    );
    s.apply(&batch(1, 15, &events[15..])).await.unwrap();
    let all: Vec<(i32, i64, ClickEvent)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (1, i as i64, e.clone()))
        .collect();
    let reference = Reference::build(s.config(), &all, &BTreeMap::from([(1, 20)]));
    assert_eq!(reference.diff(s).await.unwrap(), Vec::<String>::new());
    let (one, two) = (Partition(1), Partition(2));
    assert_eq!(
        s.next_offsets(&[one, two]).await.unwrap(),
        vec![Some(Offset(20)), None]
    );
    assert_eq!(
        s.next_offsets_blocking(&[one, two]).unwrap(),
        vec![Some(Offset(20)), None]
    );
}

async fn read_next_follows_sessions(s: &dyn FeatureStore) {
    let nl = UserType::NonLogged;
    let a = [
        ev("x", nl, "home", T0, None),
        ev("x", nl, "story", T0 + 5 * MIN, None),
        ev("y", nl, "home", T0 + 6 * MIN, Some("s")),
    ];
    let b = [
        // Continues x's session across the batch boundary.
        ev("x", nl, "sport", T0 + 10 * MIN, None),
        // y switched sessions: no pair.
        ev("y", nl, "story", T0 + 7 * MIN, Some("t")),
        // x after a 40-minute gap: a new session.
        ev("x", nl, "home", T0 + 50 * MIN, None),
        ev("z", nl, "home", T0 + 51 * MIN, None),
        ev("z", nl, "story", T0 + 52 * MIN, None),
        ev("z", nl, "story", T0 + 53 * MIN, None),
    ];
    s.apply(&batch(0, 0, &a)).await.unwrap();
    s.apply(&batch(0, 3, &b)).await.unwrap();
    let next = s.read_next(&page("home"), 5).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!((next[0].page.as_str(), next[0].score), ("story", 2.0));
    let next = s.read_next(&page("story"), 5).await.unwrap();
    assert_eq!(
        next.iter().map(|p| p.page.as_str()).collect::<Vec<_>>(),
        vec!["sport"]
    );
    assert!(s.read_next(&page("sport"), 5).await.unwrap().is_empty());
}

async fn recency_prefers_issued(s: &dyn FeatureStore) {
    let nl = UserType::NonLogged;
    s.apply(&batch(
        0,
        0,
        &[
            ev("u", nl, "a", T0 + 10, None),
            ev("v", nl, "b", T0 + 20, None),
        ],
    ))
    .await
    .unwrap();
    s.apply(&batch(2, 0, &[ev("w", nl, "a", T0 + 5, None)]))
        .await
        .unwrap();
    s.set_issued(&[(page("b"), MIN_PLAUSIBLE_MS)])
        .await
        .unwrap();
    let r = s.recency(&[page("a"), page("b"), page("c")]).await.unwrap();
    assert_eq!(r, vec![Some(T0 + 5), Some(MIN_PLAUSIBLE_MS), None]);
    assert_eq!(
        s.partitions().await.unwrap(),
        vec![Partition(0), Partition(2)]
    );
}

async fn trending_decays_and_merges(s: &dyn FeatureStore) {
    let nl = UserType::NonLogged;
    let hl = s.config().half_life_ms();
    // "old": 3 reads one half-life before "fresh"'s 2 reads, in another partition.
    s.apply(&batch(
        0,
        0,
        &[
            ev("a", nl, "old", T0, None),
            ev("b", nl, "old", T0, None),
            ev("c", nl, "old", T0, None),
        ],
    ))
    .await
    .unwrap();
    s.apply(&batch(
        1,
        0,
        &[
            ev("d", nl, "fresh", T0 + 2 * hl, None),
            ev("e", nl, "fresh", T0 + 2 * hl, None),
        ],
    ))
    .await
    .unwrap();
    let t = s.trending(5).await.unwrap();
    assert_eq!(t[0].page, page("fresh"));
    assert!((t[0].score - 2.0).abs() < 1e-9);
    assert!((t[1].score - 0.75).abs() < 1e-9, "{t:?}");
    // Much later in one partition: the epoch moves, scores stay consistent.
    let later = T0 + 40 * hl;
    s.apply(&batch(1, 2, &[ev("f", nl, "late", later, None)]))
        .await
        .unwrap();
    let t = s.trending(5).await.unwrap();
    assert_eq!(t[0].page, page("late"));
    assert!((t[0].score - 1.0).abs() < 1e-9);
    let fresh = t.iter().find(|p| p.page == page("fresh")).map(|p| p.score);
    let want = 2.0 * (-38.0f64).exp2();
    assert!(fresh.is_none_or(|f| (f - want).abs() < 1e-12), "{t:?}");
}

async fn random_batches_match_reference(s: &dyn FeatureStore, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut all = Vec::new();
    let mut ends = BTreeMap::new();
    for p in 0..3i32 {
        let mut ts = T0;
        let events: Vec<ClickEvent> = (0..300)
            .map(|_| {
                ts += rng.random_range(0..20 * MIN);
                let u = rng.random_range(0..15);
                let ty = if u % 3 == 0 {
                    UserType::Logged
                } else {
                    UserType::NonLogged
                };
                let sid = (u % 2 == 0).then(|| format!("s{}", ts / (3 * HOUR_MS)));
                ev(
                    &format!("p{p}u{u}"),
                    ty,
                    &format!("pg{}", rng.random_range(0..12)),
                    ts,
                    sid.as_deref(),
                )
            })
            .collect();
        // Apply in random slices, sometimes replaying an earlier range (a restart).
        let mut at = 0usize;
        while at < events.len() {
            let n = rng.random_range(1..60).min(events.len() - at);
            if at > 0 && rng.random_bool(0.2) {
                let back = rng.random_range(0..at.min(40));
                let from = at - back;
                let out = s
                    .apply(&batch(p, from as i64, &events[from..at + n]))
                    .await
                    .unwrap();
                assert_eq!(out.applied, n);
            } else {
                s.apply(&batch(p, at as i64, &events[at..at + n]))
                    .await
                    .unwrap();
            }
            at += n;
        }
        all.extend(
            events
                .into_iter()
                .enumerate()
                .map(|(i, e)| (p, i as i64, e)),
        );
        ends.insert(p, 300);
    }
    let reference = Reference::build(s.config(), &all, &ends);
    assert_eq!(reference.diff(s).await.unwrap(), Vec::<String>::new());
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let s = Subject::new("memory", cfg(&prefix())).await;
                    super::$name(s.store()).await;
                    s.finish().await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = Subject::new("redis", cfg(&prefix())).await;
                    super::$name(s.store()).await;
                    s.finish().await;
                }
            )*
        }
        mod cluster {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = Subject::new("cluster", cfg(&prefix())).await;
                    super::$name(s.store()).await;
                    s.finish().await;
                }
            )*
        }
    };
}

async fn random_batches_seed_1(s: &dyn FeatureStore) {
    random_batches_match_reference(s, 1).await;
}

async fn random_batches_seed_2(s: &dyn FeatureStore) {
    random_batches_match_reference(s, 2).await;
}

/// Batches wider than one Redis call may take (thousands of pages, users and pairs in
/// one batch, windows sliding by many buckets at once) give the reference's state too.
async fn wide_batches_match_reference(s: &dyn FeatureStore) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut all = Vec::new();
    let mut ends = BTreeMap::new();
    for p in 0..2i32 {
        let mut ts = T0;
        let events: Vec<ClickEvent> = (0..12_000)
            .map(|_| {
                ts += rng.random_range(0..2_000);
                let u = rng.random_range(0..5_000);
                let sid = (u % 2 == 0).then(|| format!("s{}", ts / HOUR_MS));
                ev(
                    &format!("p{p}u{u}"),
                    UserType::NonLogged,
                    &format!("pg{}", rng.random_range(0..6_000)),
                    ts,
                    sid.as_deref(),
                )
            })
            .collect();
        for (i, chunk) in events.chunks(5_000).enumerate() {
            s.apply(&batch(p, (i * 5_000) as i64, chunk)).await.unwrap();
        }
        ends.insert(p, events.len() as i64);
        all.extend(
            events
                .into_iter()
                .enumerate()
                .map(|(i, e)| (p, i as i64, e)),
        );
    }
    let reference = Reference::build(s.config(), &all, &ends);
    assert_eq!(reference.diff(s).await.unwrap(), Vec::<String>::new());
}

/// A store nothing was applied to answers every read with "nothing", not an error.
async fn empty_store_reads_are_empty(s: &dyn FeatureStore) {
    assert_eq!(s.watermark().await.unwrap(), None);
    assert!(s.popular(Window::hours(1), 10).await.unwrap().is_empty());
    assert!(s.trending(10).await.unwrap().is_empty());
    assert!(s.read_next(&page("a"), 10).await.unwrap().is_empty());
    assert_eq!(
        s.user(&UserId::parse("nobody").unwrap()).await.unwrap(),
        None
    );
}

conformance!(
    empty_store_reads_are_empty,
    user_features_and_tiers,
    windows_slide_and_expire,
    replays_apply_once,
    read_next_follows_sessions,
    recency_prefers_issued,
    trending_decays_and_merges,
    users_on_two_partitions_merge,
    random_batches_seed_1,
    random_batches_seed_2,
    wide_batches_match_reference,
    online_steps_land_once,
);

#[path = "conformance/online.rs"]
mod online;
use online::online_steps_land_once;

/// A user record the store did not write (not JSON, missing fields, text where numbers
/// belong, an unknown type, a malformed page id) is reported as corrupt, not misread and
/// not a panic.
#[tokio::test]
async fn redis_corrupt_user_record_is_an_error() {
    let cfg = cfg(&prefix());
    let key = newsrec_features::Keys::new(&cfg.prefix).user("mangled");
    let s = RedisStore::connect(&RedisTarget::Single(redis_url()), cfg)
        .await
        .unwrap();
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let sums =
        r#"{"n":1,"c":1,"t":30000,"s":5000,"v":1,"e":1200000,"f":1656644400000,"l":1656644400000}"#;
    let good =
        format!(r#"{{"ty":"Non-Logged","a":{sums},"h":["a"],"r":[7],"lp":"a","ls":"","o":3}}"#);
    // The well-formed record reads back, so the bad ones below fail for their flaw.
    let _: () = ::redis::cmd("HSET")
        .arg(&key)
        .arg(0)
        .arg(&good)
        .query_async(&mut conn)
        .await
        .unwrap();
    let st = s.user(&UserId::parse("mangled").unwrap()).await.unwrap();
    assert_eq!(st.map(|u| u.interactions()), Some(1));
    let bad = [
        "not json".to_owned(),
        r#"{"ty":"Non-Logged"}"#.to_owned(),
        good.replace(r#""n":1"#, r#""n":"x""#),
        good.replace(r#""t":30000"#, r#""t":0.5"#),
        good.replace(r#""r":[7]"#, r#""r":["a"]"#),
        good.replace("Non-Logged", "Q"),
        good.replace(r#""lp":"a""#, r#""lp":"a b""#),
    ];
    for value in bad {
        let _: () = ::redis::cmd("HSET")
            .arg(&key)
            .arg(0)
            .arg(&value)
            .query_async(&mut conn)
            .await
            .unwrap();
        let got = s.user(&UserId::parse("mangled").unwrap()).await;
        assert!(
            matches!(got, Err(StoreError::Corrupt { .. })),
            "{value}: {got:?}"
        );
    }
    s.delete_all().await.unwrap();
}

fn reference_of(cfg: &StoreConfig, stream: &[(i32, Vec<ClickEvent>)]) -> Reference {
    let mut all = Vec::new();
    let mut ends = BTreeMap::new();
    for (p, events) in stream {
        ends.insert(*p, events.len() as i64);
        all.extend(
            events
                .iter()
                .enumerate()
                .map(|(i, e)| (*p, i as i64, e.clone())),
        );
    }
    Reference::build(cfg, &all, &ends)
}

async fn redis_store(cfg: &StoreConfig, cluster: bool) -> RedisStore {
    let target = if cluster {
        RedisTarget::parse(&cluster_nodes(), true)
    } else {
        RedisTarget::Single(redis_url())
    };
    RedisStore::connect(&target, cfg.clone()).await.unwrap()
}

/// Two stores on one prefix take turns at random (each holds the partition's state from
/// its last write, which the other's writes make stale), sometimes replaying a range:
/// the state is the reference's, each event counted once.
async fn writers_taking_turns_match_reference(cluster: bool) {
    let cfg = cfg(&prefix());
    let stores = [
        redis_store(&cfg, cluster).await,
        redis_store(&cfg, cluster).await,
    ];
    let stream = random_stream(11, 2, 400, 0.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for (p, events) in &stream {
        let mut at = 0usize;
        while at < events.len() {
            let n = rng.random_range(1..50).min(events.len() - at);
            let from = at - rng.random_range(0..=at.min(20));
            let s = &stores[rng.random_range(0..2usize)];
            if rng.random_bool(0.1) {
                // As after a rebalance that took the partition away: held state goes.
                s.release_others(&[]);
            }
            let out = s
                .apply(&batch(*p, from as i64, &events[from..at + n]))
                .await
                .unwrap();
            assert_eq!((out.applied, out.next_offset), (n, Offset((at + n) as i64)));
            at += n;
        }
    }
    let reference = reference_of(&cfg, &stream);
    for s in &stores {
        assert_eq!(reference.diff(s).await.unwrap(), Vec::<String>::new());
    }
    // A store that never wrote reads the same state.
    let third = redis_store(&cfg, cluster).await;
    assert_eq!(reference.diff(&third).await.unwrap(), Vec::<String>::new());
    third.delete_all().await.unwrap();
}

/// Two stores apply the same batches at the same time (two consumers owning one
/// partition during a rebalance): their transactions conflict, the loser reads again,
/// and every event is counted once.
async fn concurrent_writers_apply_once(cluster: bool) {
    let cfg = cfg(&prefix());
    let stores = Arc::new([
        redis_store(&cfg, cluster).await,
        redis_store(&cfg, cluster).await,
    ]);
    let stream = Arc::new(random_stream(21, 2, 300, 0.0));
    let run = |i: usize| {
        let (stores, stream) = (stores.clone(), stream.clone());
        tokio::spawn(async move {
            let mut applied = 0;
            for (p, events) in stream.iter() {
                for (c, chunk) in events.chunks(7 + 3 * i).enumerate() {
                    let b = batch(*p, (c * (7 + 3 * i)) as i64, chunk);
                    // Like the consumer: a failed apply is retried.
                    let mut tries = 0;
                    loop {
                        match stores[i].apply(&b).await {
                            Ok(out) => {
                                applied += out.applied;
                                break;
                            }
                            Err(StoreError::OffsetGap { .. }) => break,
                            Err(e) => {
                                tries += 1;
                                assert!(tries < 20, "{e}");
                            }
                        }
                    }
                }
            }
            applied
        })
    };
    let (a, b) = tokio::join!(run(0), run(1));
    assert_eq!(a.unwrap() + b.unwrap(), 600);
    let reference = reference_of(&cfg, &stream);
    assert_eq!(
        reference.diff(&stores[0]).await.unwrap(),
        Vec::<String>::new()
    );
    stores[0].delete_all().await.unwrap();
}

#[tokio::test]
async fn redis_writers_taking_turns_match_reference() {
    writers_taking_turns_match_reference(false).await;
}

#[tokio::test]
async fn cluster_writers_taking_turns_match_reference() {
    writers_taking_turns_match_reference(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_writers_apply_once() {
    concurrent_writers_apply_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_concurrent_writers_apply_once() {
    concurrent_writers_apply_once(true).await;
}

/// User keys carry the wall-clock TTL (`user_ttl_days`), none when it is 0.
#[tokio::test]
async fn redis_user_keys_expire_by_the_ttl() {
    for days in [90u32, 0] {
        let cfg = StoreConfig {
            user_ttl_days: days,
            ..cfg(&prefix())
        };
        let key = newsrec_features::Keys::new(&cfg.prefix).user("ttl");
        let s = redis_store(&cfg, false).await;
        let nl = UserType::NonLogged;
        s.apply(&batch(0, 0, &[ev("ttl", nl, "a", T0, None)]))
            .await
            .unwrap();
        s.apply(&batch(0, 1, &[ev("ttl", nl, "b", T0 + MIN, None)]))
            .await
            .unwrap();
        let client = ::redis::Client::open(redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let pttl: i64 = ::redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if days == 0 {
            assert_eq!(pttl, -1);
        } else {
            let full = i64::from(days) * 24 * 3_600_000;
            assert!(pttl > full - 60_000 && pttl <= full, "{pttl}");
        }
        s.delete_all().await.unwrap();
    }
}

/// State written by another key layout under the same prefix is refused at connect, not
/// half read; a fresh prefix is claimed for this layout.
#[tokio::test]
async fn redis_refuses_state_of_another_layout() {
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // An earlier layout (partitions with state, no layout key), and a layout this
    // build does not know.
    let old = cfg(&prefix());
    let other = cfg(&prefix());
    for (c, key, value) in [
        ("SADD", format!("{}parts", old.prefix), 0),
        ("SET", format!("{}layout", other.prefix), 99),
    ] {
        let _: () = ::redis::cmd(c)
            .arg(key)
            .arg(value)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    for c in [&old, &other] {
        let got = RedisStore::connect(&RedisTarget::Single(redis_url()), c.clone()).await;
        assert!(matches!(got, Err(StoreError::Config(_))), "{got:?}");
    }
    // A fresh prefix is claimed, and connects again.
    let fresh = cfg(&prefix());
    let s = redis_store(&fresh, false).await;
    let again = redis_store(&fresh, false).await;
    again.delete_all().await.unwrap();
    drop(s);
    for p in [&old.prefix, &other.prefix] {
        let _: () = ::redis::cmd("UNLINK")
            .arg(format!("{p}parts"))
            .arg(format!("{p}layout"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// A config whose list caps, expiries and trims a few hundred events reach.
fn tight_cfg(prefix: &str) -> StoreConfig {
    StoreConfig {
        history_len: 3,
        read_set_max: 6,
        covisit_max_next: 3,
        covisit_ttl_hours: 2,
        trending_max: 8,
        ..StoreConfig::with_prefix(prefix)
    }
}

/// Events of 25 readers per partition over 40 pages on partitions `0..parts`, a few
/// per hour-long session, reloads and readers who come back after their session closed;
/// a `late` share of them up to three hours behind the partition's latest (the
/// reference is exact only without those).
fn random_stream(seed: u64, parts: i32, per_part: usize, late: f64) -> Vec<(i32, Vec<ClickEvent>)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..parts)
        .map(|p| {
            let mut ts = T0;
            let events = (0..per_part)
                .map(|_| {
                    ts += rng.random_range(0..6 * MIN);
                    let at = if rng.random_bool(late) {
                        ts - rng.random_range(0..3 * HOUR_MS)
                    } else {
                        ts
                    };
                    let u = rng.random_range(0..25);
                    let sid = (u % 3 != 0).then(|| format!("s{}", at / HOUR_MS));
                    ev(
                        &format!("p{p}u{u}"),
                        if u % 4 == 0 {
                            UserType::Logged
                        } else {
                            UserType::NonLogged
                        },
                        &format!("pg{}", rng.random_range(0..40)),
                        at,
                        sid.as_deref(),
                    )
                })
                .collect();
            (p, events)
        })
        .collect()
}

/// The state is a function of the stream alone: one random stream applied whole, and
/// the same stream cut at random points, partitions interleaved, overlapping ranges
/// replayed, and (on Redis) the writer restarted with nothing held, give equal dumps of
/// everything the store holds.
async fn cut_stream_equals_whole(kind: &str, seed: u64) {
    let stream = random_stream(seed, 2, 600, 0.15);
    let whole = Subject::new(kind, tight_cfg(&prefix())).await;
    for (p, events) in &stream {
        whole.store().apply(&batch(*p, 0, events)).await.unwrap();
    }
    let cut_cfg = tight_cfg(&prefix());
    let mut cut = Subject::new(kind, cut_cfg.clone()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut at = vec![0usize; stream.len()];
    let mut restarts = 0;
    while let Some(i) = {
        let open: Vec<usize> = (0..stream.len())
            .filter(|i| at[*i] < stream[*i].1.len())
            .collect();
        (!open.is_empty()).then(|| open[rng.random_range(0..open.len())])
    } {
        let (p, events) = &stream[i];
        let n = rng.random_range(1..90).min(events.len() - at[i]);
        let from = if at[i] > 0 && rng.random_bool(0.25) {
            at[i] - rng.random_range(0..=at[i].min(60))
        } else {
            at[i]
        };
        let out = cut
            .store()
            .apply(&batch(*p, from as i64, &events[from..at[i] + n]))
            .await
            .unwrap();
        assert_eq!(out.applied, n);
        at[i] += n;
        if kind != "memory" && rng.random_bool(0.08) {
            // A restarted writer: the same prefix, nothing held in memory.
            cut = Subject::new(kind, cut_cfg.clone()).await;
            restarts += 1;
        }
    }
    let (a, b) = (
        whole.store().dump().await.unwrap(),
        cut.store().dump().await.unwrap(),
    );
    whole.finish().await;
    cut.finish().await;
    assert!(kind == "memory" || restarts > 0, "no restart was drawn");
    assert!(
        a.len() > 20,
        "a dump with {} keys is not a whole state",
        a.len()
    );
    assert_eq!(dump_diff(&a, &b), Vec::<String>::new());
}

mod cut_stream {
    use super::*;

    #[tokio::test]
    async fn memory() {
        for seed in 0..8 {
            cut_stream_equals_whole("memory", seed).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        for seed in 0..4 {
            cut_stream_equals_whole("redis", seed).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster() {
        for seed in 0..3 {
            cut_stream_equals_whole("cluster", seed).await;
        }
    }
}
