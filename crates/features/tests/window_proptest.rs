//! Window arithmetic against the naive reference: random event streams (with jumps that
//! push buckets out of every window) applied in random batches, some replayed, must give
//! exactly the counts a direct filter over the events gives. Many cases on the
//! in-process store, a few on the real Redis.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::BTreeMap;

use newsrec_core::{ClickEvent, EventId, PageId, UserId, UserType};
use newsrec_features::reference::Reference;
use newsrec_features::{
    FeatureStore, MemoryStore, PartitionBatch, RedisStore, RedisTarget, StoreConfig,
};
use proptest::prelude::*;
use rand::Rng;

const T0: i64 = 1_656_644_400_000;

/// `(user, page, ms since the previous event)`.
fn stream() -> impl Strategy<Value = Vec<(u8, u8, i64)>> {
    let step = prop_oneof![
        8 => 0i64..600_000,
        2 => 0i64..4 * 3_600_000,
        1 => 0i64..40 * 3_600_000,
    ];
    proptest::collection::vec((0u8..6, 0u8..8, step), 1..120)
}

fn events(raw: &[(u8, u8, i64)]) -> Vec<ClickEvent> {
    let mut ts = T0;
    raw.iter()
        .enumerate()
        .map(|(i, (u, p, dt))| {
            ts += dt;
            ClickEvent {
                event_id: EventId::parse(&format!("e{i}")).unwrap(),
                user_id: UserId::parse(&format!("u{u}")).unwrap(),
                user_type: if u % 2 == 0 {
                    UserType::Logged
                } else {
                    UserType::NonLogged
                },
                page: PageId::parse(&format!("p{p}")).unwrap(),
                ts,
                session_id: None,
                clicks: Some(u32::from(*p)),
                time_on_page_ms: Some(10_000 + *dt as u64 % 100_000),
                scroll_pct: Some(f64::from(*u) * 7.5),
                page_visits: Some(1),
                rec_id: None,
            }
        })
        .collect()
}

fn cfg(prefix: String) -> StoreConfig {
    StoreConfig {
        covisit_ttl_hours: 24 * 365,
        covisit_max_next: 1_000,
        ..StoreConfig::with_prefix(prefix)
    }
}

/// Applies `evs` to partition 0 in slices of `cuts`, replaying from `back` events before
/// the slice every third slice.
async fn apply_all(store: &dyn FeatureStore, evs: &[ClickEvent], cuts: &[usize], back: usize) {
    let mut at = 0usize;
    let mut i = 0usize;
    while at < evs.len() {
        let n = cuts[i % cuts.len()].min(evs.len() - at);
        let from = if i % 3 == 2 {
            at.saturating_sub(back)
        } else {
            at
        };
        let batch = PartitionBatch::consecutive(0, from as i64, evs[from..at + n].iter().cloned());
        let out = store.apply(&batch).await.unwrap();
        assert_eq!(out.applied, n);
        at += n;
        i += 1;
    }
}

async fn check(store: &dyn FeatureStore, evs: &[ClickEvent]) -> Vec<String> {
    let all: Vec<(i32, i64, ClickEvent)> = evs
        .iter()
        .enumerate()
        .map(|(o, e)| (0, o as i64, e.clone()))
        .collect();
    let reference = Reference::build(
        store.config(),
        &all,
        &BTreeMap::from([(0, evs.len() as i64)]),
    );
    reference.diff(store).await.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn memory_windows_match_the_naive_reference(
        raw in stream(),
        cuts in proptest::collection::vec(1usize..30, 1..8),
        back in 0usize..20,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let diff = rt.block_on(async {
            let store = MemoryStore::new(cfg("m:".into())).unwrap();
            let evs = events(&raw);
            apply_all(&store, &evs, &cuts, back).await;
            check(&store, &evs).await
        });
        prop_assert_eq!(diff, Vec::<String>::new());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn redis_windows_match_the_naive_reference(
        raw in stream(),
        cuts in proptest::collection::vec(1usize..30, 1..8),
        back in 0usize..20,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let diff = rt.block_on(async {
            let url = std::env::var("NEWSREC_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let prefix = format!("test:{:016x}:", rand::rng().random::<u64>());
            let store = RedisStore::connect(&RedisTarget::Single(url), cfg(prefix)).await.unwrap();
            let evs = events(&raw);
            apply_all(&store, &evs, &cuts, back).await;
            let diff = check(&store, &evs).await;
            store.delete_all().await.unwrap();
            diff
        });
        prop_assert_eq!(diff, Vec::<String>::new());
    }
}
