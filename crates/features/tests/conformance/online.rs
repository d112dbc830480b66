//! The attribution state through a store: steps of randomly polled streams, committed
//! and now and then loaded again, end in the state one step over everything gives; a
//! commit against offsets that moved writes nothing.

use std::collections::BTreeMap;

use newsrec_core::{CONTROL, PageId, RecId, ServedList, Tier, UserId};
use newsrec_features::online::{
    AttrClick, ClickItem, Counters, OnlineConfig, OnlineState, ServedItem,
};
use newsrec_features::{FeatureStore, Offset, Partition};
use rand::{Rng, SeedableRng};

const MIN: i64 = 60_000;

type Streams = (Vec<(Offset, ClickItem)>, Vec<(Offset, ServedItem)>);

fn streams(seed: u64) -> Streams {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let pages: Vec<PageId> = (0..8)
        .map(|i| PageId::parse(&format!("p{i}")).unwrap())
        .collect();
    let (mut clicks, mut served) = (Vec::new(), Vec::new());
    let (mut t, mut n) = (1_656_644_400_000i64, 0u32);
    for _ in 0..400 {
        t += r.random_range(0..3 * MIN);
        let user = UserId::parse(&format!("u{}", r.random_range(0..6))).unwrap();
        match r.random_range(0..10) {
            0..=3 => {
                n += 1;
                let start = r.random_range(0..4);
                let tier = [Tier::Anonymous, Tier::SemiLogged, Tier::Logged][r.random_range(0..3)];
                served.push(ServedItem::List(Box::new(ServedList {
                    rec_id: RecId::parse(&format!("r{n}")).unwrap(),
                    user_id: Some(user),
                    page: None,
                    event_ts: Some(t - r.random_range(0..2 * MIN)),
                    wall_ts: 0,
                    tier: Some(tier),
                    variant: CONTROL.into(),
                    model_version: format!("v{}", r.random_range(1..3)),
                    pages: pages[start..start + 4].to_vec(),
                })));
            }
            4 => served.push(ServedItem::Tick(t)),
            _ => {
                let named = (n > 0 && r.random_bool(0.5))
                    .then(|| RecId::parse(&format!("r{}", r.random_range(1..=n))).unwrap());
                clicks.push(ClickItem::Click(AttrClick {
                    user,
                    page: pages[r.random_range(0..8)].clone(),
                    ts: t,
                    rec_id: named,
                }));
            }
        }
    }
    served.push(ServedItem::Tick(t + 1));
    let num = |i: usize| Offset(i as i64);
    (
        clicks
            .into_iter()
            .enumerate()
            .map(|(i, c)| (num(i), c))
            .collect(),
        served
            .into_iter()
            .enumerate()
            .map(|(i, s)| (num(i), s))
            .collect(),
    )
}

pub async fn online_steps_land_once(s: &dyn FeatureStore) {
    let cfg = OnlineConfig {
        window_ms: 10 * MIN,
        max_lists: 3,
        positions: 3,
    };
    let mut r = rand::rngs::StdRng::seed_from_u64(11);
    let mut want_sum: BTreeMap<_, Counters> = BTreeMap::new();
    for p in 0..2 {
        let part = Partition(p);
        let (clicks, served) = streams(p as u64);
        let mut whole = OnlineState::default();
        whole.step(&clicks, &served, &cfg);
        assert_eq!(whole.clicks_next, Some(Offset(clicks.len() as i64)));
        for (k, c) in &whole.counters {
            want_sum.entry(k.clone()).or_default().add(c);
        }

        let mut st = s.load_online(part).await.unwrap();
        assert_eq!(st, OnlineState::default());
        // The served stream is polled ahead of the merge, as the consumer's buffer is.
        let (mut ci, mut si, mut sn) = (0usize, 0usize, 0usize);
        while st.next() != whole.next() {
            sn = (sn.max(si) + r.random_range(0..9)).min(served.len());
            let cn = (ci + r.random_range(0..9)).min(clicks.len());
            let expected = st.next();
            let step = st.step(&clicks[ci..cn], &served[si..sn], &cfg);
            if step.moved() {
                assert!(s.commit_online(part, expected, &st, &step).await.unwrap());
                // The same write again: the offsets moved, nothing is written.
                let before = s.dump().await.unwrap();
                assert!(!s.commit_online(part, expected, &st, &step).await.unwrap());
                assert_eq!(s.dump().await.unwrap(), before);
            }
            (ci, si) = (ci + step.clicks_used, si + step.served_used);
            if r.random_bool(0.2) {
                st = s.load_online(part).await.unwrap();
            }
        }
        assert_eq!(s.load_online(part).await.unwrap(), whole, "partition {p}");
    }
    let got: BTreeMap<_, _> = s.online_counters().await.unwrap().into_iter().collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want_sum.keys().collect::<Vec<_>>()
    );
    for (k, c) in &want_sum {
        let g = &got[k];
        assert_eq!(
            (g.served, g.hits, g.clicks),
            (c.served, c.hits, c.clicks),
            "{k:?}"
        );
        assert_eq!(g.by_position, c.by_position);
        assert!((g.rr_sum - c.rr_sum).abs() < 1e-9);
        assert!(c.served > 0);
    }
    assert!(want_sum.values().any(|c| c.hits > 0));
}
