#![allow(clippy::unwrap_used)]

use newsrec_core::{CONTROL, Tier};

use super::*;

const MIN: i64 = 60_000;

fn page(p: &str) -> PageId {
    PageId::parse(p).unwrap()
}

fn list(rec: &str, user: &str, ts: i64, pages: &[&str]) -> ServedItem {
    ServedItem::List(Box::new(ServedList {
        rec_id: RecId::parse(rec).unwrap(),
        user_id: Some(UserId::parse(user).unwrap()),
        page: None,
        event_ts: Some(ts),
        wall_ts: 0,
        tier: Some(Tier::Logged),
        variant: CONTROL.into(),
        model_version: "v1".into(),
        pages: pages.iter().map(|p| page(p)).collect(),
    }))
}

fn click(user: &str, p: &str, ts: i64, rec: Option<&str>) -> ClickItem {
    ClickItem::Click(AttrClick {
        user: UserId::parse(user).unwrap(),
        page: page(p),
        ts,
        rec_id: rec.map(|r| RecId::parse(r).unwrap()),
    })
}

fn numbered<T>(items: Vec<T>) -> Vec<(Offset, T)> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, t)| (Offset(i as i64), t))
        .collect()
}

/// Runs both streams through one step; the served stream ends with a far mark so
/// every click is decided.
fn run(clicks: Vec<ClickItem>, mut served: Vec<ServedItem>, cfg: &OnlineConfig) -> OnlineState {
    served.push(ServedItem::Tick(i64::MAX / 2));
    let mut st = OnlineState::default();
    let (c, s) = (numbered(clicks), numbered(served));
    let step = st.step(&c, &s, cfg);
    assert_eq!(step.clicks_used, c.len());
    st
}

fn only(st: &OnlineState) -> Counters {
    assert_eq!(st.counters.len(), 1, "{:?}", st.counters);
    st.counters.values().next().unwrap().clone()
}

#[test]
fn a_named_list_gets_the_click_even_when_a_later_one_holds_the_page() {
    let cfg = OnlineConfig::default();
    let st = run(
        vec![click("u1", "c", 300, Some("r1"))],
        vec![
            list("r1", "u1", 100, &["a", "b", "c"]),
            list("r2", "u1", 200, &["c", "d"]),
        ],
        &cfg,
    );
    let c = only(&st);
    assert_eq!((c.served, c.hits, c.clicks), (2, 1, 1));
    assert_eq!(c.rr_sum, 1.0 / 3.0);
    assert_eq!(c.by_position[2], 1);
    assert_eq!(c.by_position.len(), cfg.positions + 1);
}

#[test]
fn without_a_name_the_latest_list_holding_the_page_gets_it() {
    let cfg = OnlineConfig::default();
    let st = run(
        vec![click("u1", "c", 300, None), click("u1", "a", 310, None)],
        vec![
            list("r1", "u1", 100, &["a", "b", "c"]),
            list("r2", "u1", 200, &["c", "d"]),
        ],
        &cfg,
    );
    let c = only(&st);
    // `c` goes to r2 (rank 1), `a` only r1 holds (rank 1): two hits.
    assert_eq!((c.served, c.hits, c.clicks), (2, 2, 2));
    assert_eq!(c.rr_sum, 2.0);
    let users = &st.users[&UserId::parse("u1").unwrap()];
    assert!(users.iter().all(|l| l.hit));
}

#[test]
fn clicks_outside_the_window_on_pages_no_list_holds_or_of_other_users_are_not_attributed() {
    let cfg = OnlineConfig::default();
    let st = run(
        vec![
            click("u1", "zz", 200, None),
            click("u2", "a", 300, None),
            click("u1", "a", 100 + 31 * MIN, Some("r1")),
        ],
        vec![list("r1", "u1", 100, &["a", "b"])],
        &cfg,
    );
    let c = only(&st);
    assert_eq!((c.served, c.hits, c.clicks), (1, 0, 0));
    // The aged list is gone.
    assert!(st.users.is_empty());
}

#[test]
fn a_list_pushed_out_by_newer_ones_is_not_attributed() {
    let cfg = OnlineConfig {
        max_lists: 2,
        ..OnlineConfig::default()
    };
    let st = run(
        vec![click("u1", "a", 400, Some("r1"))],
        vec![
            list("r1", "u1", 100, &["a"]),
            list("r2", "u1", 200, &["b"]),
            list("r3", "u1", 300, &["c"]),
        ],
        &cfg,
    );
    let c = only(&st);
    assert_eq!((c.served, c.hits, c.clicks), (3, 0, 0));
}

#[test]
fn positions_past_the_counted_ones_share_a_bucket() {
    let cfg = OnlineConfig {
        positions: 2,
        ..OnlineConfig::default()
    };
    let st = run(
        vec![click("u1", "d", 300, Some("r1"))],
        vec![list("r1", "u1", 100, &["a", "b", "c", "d"])],
        &cfg,
    );
    assert_eq!(only(&st).by_position, vec![0, 0, 1]);
}

#[test]
fn a_click_waits_for_the_served_stream_to_pass_it() {
    let cfg = OnlineConfig::default();
    let mut st = OnlineState::default();
    let clicks = numbered(vec![click("u1", "a", 300, None)]);
    let served = numbered(vec![list("r1", "u1", 100, &["a"])]);
    let step = st.step(&clicks, &served, &cfg);
    assert_eq!((step.clicks_used, step.served_used), (0, 1));
    // A mark at the click's time lets it through (a click ranks before a mark).
    let step = st.step(
        &clicks,
        &[
            (Offset(1), ServedItem::Tick(300)),
            (Offset(2), ServedItem::Invalid),
        ],
        &cfg,
    );
    // The mark itself waits for a click to compare with.
    assert_eq!((step.clicks_used, step.served_used), (1, 0));
    assert_eq!(only(&st).hits, 1);
    assert_eq!(st.served_next, Some(Offset(1)));
    assert_eq!(st.clicks_next, Some(Offset(1)));
    // An invalid record at the head is skipped whatever the other stream holds.
    let step = st.step(
        &[],
        &[
            (Offset(1), ServedItem::Invalid),
            (Offset(2), ServedItem::Tick(400)),
        ],
        &cfg,
    );
    assert_eq!((step.clicks_used, step.served_used), (0, 1));
    assert_eq!(st.served_next, Some(Offset(2)));
}

#[test]
fn lists_are_counted_when_read_while_no_click_comes() {
    let cfg = OnlineConfig::default();
    let mut st = OnlineState::default();
    let served = numbered(vec![
        list("r1", "u1", 100, &["a"]),
        list("r2", "u2", 200, &["b"]),
        ServedItem::Tick(300),
    ]);
    let step = st.step(&[], &served, &cfg);
    assert!(step.moved());
    assert_eq!((step.served_used, step.counted), (0, 3));
    assert_eq!(only(&st).served, 2);
    assert_eq!(st.counted_next, Some(Offset(3)));
    assert_eq!(st.served_next, None);
    // Read again (a restart from the merge's offset): nothing is counted twice.
    let step = st.step(&[], &served, &cfg);
    assert!(!step.moved());
    // The clicks come: the held lists are attributed as before.
    let clicks = numbered(vec![click("u1", "a", 250, None)]);
    st.step(&clicks, &served, &cfg);
    let c = only(&st);
    assert_eq!((c.served, c.hits, c.clicks), (2, 1, 1));
    assert_eq!(st.clicks_next, Some(Offset(1)));
}

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

type Streams = (Vec<(Offset, ClickItem)>, Vec<(Offset, ServedItem)>);

fn random_streams(seed: u64) -> Streams {
    let mut r = Lcg(seed);
    let pages = ["a", "b", "c", "d", "e", "f"];
    let (mut clicks, mut served) = (Vec::new(), Vec::new());
    let (mut t, mut n) = (0i64, 0);
    for _ in 0..300 {
        t += r.next(4 * MIN as u64) as i64;
        let user = format!("u{}", r.next(5));
        match r.next(10) {
            0..=3 => {
                n += 1;
                let k = 1 + r.next(4) as usize;
                let start = r.next(3) as usize;
                let ps: Vec<&str> = pages[start..start + k].to_vec();
                // Lists may come late in event time (a slower replica).
                let ts = t - r.next(3) as i64 * MIN;
                served.push(list(&format!("r{n}"), &user, ts, &ps));
            }
            4 => served.push(ServedItem::Tick(t)),
            5 => clicks.push(ClickItem::Invalid),
            _ => {
                let p = pages[r.next(6) as usize];
                let named = (n > 0 && r.next(2) == 0).then(|| format!("r{}", 1 + r.next(n)));
                clicks.push(click(&user, p, t, named.as_deref()));
            }
        }
    }
    (numbered(clicks), numbered(served))
}

#[test]
fn the_state_is_the_same_however_the_streams_are_cut() {
    let cfg = OnlineConfig {
        max_lists: 3,
        window_ms: 10 * MIN,
        ..OnlineConfig::default()
    };
    for seed in 0..20 {
        let (clicks, served) = random_streams(seed);
        let mut whole = OnlineState::default();
        whole.step(&clicks, &served, &cfg);
        assert!(whole.counters.values().any(|c| c.hits > 0), "seed {seed}");

        // Polled a random number of messages of each stream at a time, with a restart
        // from the stored state now and then.
        let mut r = Lcg(seed ^ 0xabcd);
        let mut st = OnlineState::default();
        let (mut ci, mut si) = (0usize, 0usize);
        let (mut cpoll, mut spoll) = (0usize, 0usize);
        while ci < clicks.len() || si < served.len() {
            cpoll = (cpoll + r.next(7) as usize).min(clicks.len());
            spoll = (spoll + r.next(7) as usize).min(served.len());
            let step = st.step(&clicks[ci..cpoll.max(ci)], &served[si..spoll.max(si)], &cfg);
            ci += step.clicks_used;
            si += step.served_used;
            if r.next(5) == 0 {
                // A restart: what was polled and not used is read again.
                (cpoll, spoll) = (ci, si);
            }
            if cpoll == clicks.len() && spoll == served.len() && !step.moved() {
                break;
            }
        }
        assert_eq!(st, whole, "seed {seed}");
    }
}

#[test]
fn stored_fields_read_back_to_the_same_state() {
    let (clicks, served) = random_streams(7);
    let mut st = OnlineState::default();
    st.step(&clicks, &served, &OnlineConfig::default());
    let w = OnlineWrite::whole(&st).unwrap();
    let state: BTreeMap<String, String> = w.state_fields.into_iter().collect();
    let lists: BTreeMap<String, String> = w.lists_set.into_iter().collect();
    assert_eq!(codec::decode(&state, &lists).unwrap(), st);
    assert_eq!(
        codec::decode(&BTreeMap::new(), &BTreeMap::new()).unwrap(),
        OnlineState::default()
    );
}

#[test]
fn a_list_served_before_any_event_is_counted_as_served_only() {
    let cfg = OnlineConfig::default();
    let mut early = list("r1", "u1", 0, &["a"]);
    if let ServedItem::List(l) = &mut early {
        l.event_ts = None;
    }
    let st = run(vec![click("u1", "a", 300, None)], vec![early], &cfg);
    // Its time is unknown: counted, never attributed (and no arithmetic overflows).
    let c = only(&st);
    assert_eq!((c.served, c.hits), (1, 0));
}

#[test]
fn the_next_field_has_one_spelling_per_state() {
    let at = |c: Option<i64>, s: Option<i64>, n: Option<i64>| OnlineNext {
        clicks: c.map(Offset),
        served: s.map(Offset),
        counted: n.map(Offset),
    };
    for (next, field) in [
        (at(None, None, None), ""),
        (at(Some(5), Some(7), Some(7)), "5/7"),
        (at(Some(5), Some(7), Some(9)), "5/7/9"),
        (at(None, None, Some(3)), "//3"),
        (at(Some(2), None, None), "2/"),
    ] {
        assert_eq!(codec::next_field(next), field);
        let state = BTreeMap::from([("next".to_owned(), field.to_owned())]);
        assert_eq!(
            codec::decode(&state, &BTreeMap::new()).unwrap().next(),
            next
        );
    }
}
