//! The store's semantics computed the slow, obvious way from the full list of events:
//! the oracle that tests compare a store against after any sequence of batches, crashes
//! and rebalances.
//!
//! Exact for counts, offsets, user sums, histories, read sets and "read next" when each
//! partition's events are in event-time order (as a replay publishes them) and the
//! list caps and "read next" TTL are not reached; trending scores are compared with a
//! relative and an absolute tolerance (stores drop negligible scores at each rebase and
//! add in another order than this sum).

use std::collections::{BTreeMap, HashMap};

use newsrec_core::{ClickEvent, PageId, ReadSet, UserAggregates, UserId, route_tier};

use crate::aggregate::same_session;
use crate::checkpoint::{Offset, Partition};
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::store::FeatureStore;
use crate::user_record::Sums;
use crate::window::{TRENDING_MIN_SCORE, bucket_of, in_window};

/// Expected state of one partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferencePartition {
    /// Next offset.
    pub next_offset: Offset,
    /// Latest event time.
    pub watermark: Option<i64>,
    /// Window label → page → count.
    pub windows: BTreeMap<String, BTreeMap<PageId, u64>>,
    /// Page → decayed score at the watermark.
    pub trending: BTreeMap<PageId, f64>,
    /// Page → next page → count.
    pub covisit: BTreeMap<PageId, BTreeMap<PageId, u64>>,
}

/// Expected state of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceUser {
    /// Sums.
    pub aggregates: UserAggregates,
    /// The last event (offset order).
    pub last: ClickEvent,
    /// Newest first.
    pub history: Vec<PageId>,
    /// Every page read, capped.
    pub read: ReadSet,
}

/// The expected state of a store after applying every event of every partition.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    /// Per partition.
    pub partitions: BTreeMap<Partition, ReferencePartition>,
    /// Per user.
    pub users: HashMap<UserId, ReferenceUser>,
}

impl Reference {
    /// Computes the state from `(partition, offset, event)` (any order) and each
    /// partition's end offset (one past the last message, dead letters included).
    /// Partitions and offsets may be given typed or as bare numbers.
    pub fn build<P, O>(
        cfg: &StoreConfig,
        events: &[(P, O, ClickEvent)],
        ends: &BTreeMap<P, O>,
    ) -> Self
    where
        P: Into<Partition> + Copy,
        O: Into<Offset> + Copy,
    {
        let mut sorted: Vec<(Partition, Offset, &ClickEvent)> = events
            .iter()
            .map(|(p, o, e)| ((*p).into(), (*o).into(), e))
            .collect();
        sorted.sort_by_key(|(p, o, _)| (*p, *o));
        let b = cfg.bucket_ms();
        let hl = cfg.half_life_ms() as f64;
        let gap = cfg.session_gap_ms();
        let mut parts: BTreeMap<Partition, ReferencePartition> = ends
            .iter()
            .map(|(p, e)| {
                (
                    (*p).into(),
                    ReferencePartition {
                        next_offset: (*e).into(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let mut by_part: BTreeMap<Partition, Vec<&ClickEvent>> = BTreeMap::new();
        for (p, _, e) in &sorted {
            by_part.entry(*p).or_default().push(e);
        }
        let mut users: HashMap<UserId, ReferenceUser> = HashMap::new();
        let mut sums: HashMap<UserId, Sums> = HashMap::new();
        let mut reads: HashMap<UserId, Vec<&PageId>> = HashMap::new();
        for (p, evs) in by_part {
            let part = parts.entry(p).or_default();
            let wm = evs.iter().map(|e| e.ts).max();
            part.watermark = wm;
            let Some(wm) = wm else { continue };
            for w in cfg.windows() {
                let counts = part.windows.entry(w.label()).or_default();
                for e in &evs {
                    if in_window(bucket_of(e.ts, b), wm, w.duration_ms(), b) {
                        *counts.entry(e.page.clone()).or_default() += 1;
                    }
                }
            }
            for e in &evs {
                *part.trending.entry(e.page.clone()).or_default() +=
                    ((e.ts - wm) as f64 / hl).exp2();
            }
            let mut last_by_user: HashMap<&UserId, &ClickEvent> = HashMap::new();
            for e in &evs {
                if let Some(prev) = last_by_user.insert(&e.user_id, e) {
                    let (sa, sb) = (
                        prev.session_id.as_deref().unwrap_or(""),
                        e.session_id.as_deref().unwrap_or(""),
                    );
                    if prev.page != e.page && same_session(prev.ts, sa, e.ts, sb, gap) {
                        *part
                            .covisit
                            .entry(prev.page.clone())
                            .or_default()
                            .entry(e.page.clone())
                            .or_default() += 1;
                    }
                }
                let u = users
                    .entry(e.user_id.clone())
                    .or_insert_with(|| ReferenceUser {
                        aggregates: UserAggregates::default(),
                        last: (*e).clone(),
                        history: Vec::new(),
                        read: ReadSet::default(),
                    });
                sums.entry(e.user_id.clone())
                    .or_default()
                    .add(&e.engagement(), e.ts);
                reads.entry(e.user_id.clone()).or_default().push(&e.page);
                u.last = (*e).clone();
                u.history.insert(0, e.page.clone());
                u.history.truncate(cfg.history_len);
            }
        }
        for (id, u) in users.iter_mut() {
            u.aggregates = sums.get(id).map(Sums::aggregates).unwrap_or_default();
            let read = reads.remove(id).unwrap_or_default();
            u.read = ReadSet::of(read.into_iter().rev(), cfg.read_set_max);
        }
        Self {
            partitions: parts,
            users,
        }
    }

    /// Compares `store` with the reference; returns every difference found (empty: equal).
    pub async fn diff(&self, store: &dyn FeatureStore) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let parts: Vec<Partition> = self.partitions.keys().copied().collect();
        let offsets = store.next_offsets(&parts).await?;
        for ((p, want), got) in self.partitions.iter().zip(offsets) {
            if got != Some(want.next_offset) {
                out.push(format!(
                    "partition {p}: next offset {got:?}, want {}",
                    want.next_offset
                ));
            }
            let snap = store.snapshot(*p).await?;
            if snap.watermark != want.watermark {
                out.push(format!(
                    "partition {p}: watermark {:?}, want {:?}",
                    snap.watermark, want.watermark
                ));
            }
            for (w, counts) in &snap.windows {
                let empty = BTreeMap::new();
                let expect = want.windows.get(&w.label()).unwrap_or(&empty);
                if counts != expect {
                    out.push(format!(
                        "partition {p}: window {w}: {} pages / {} reads, want {} / {}",
                        counts.len(),
                        counts.values().sum::<u64>(),
                        expect.len(),
                        expect.values().sum::<u64>()
                    ));
                }
            }
            if snap.covisit != want.covisit {
                out.push(format!(
                    "partition {p}: read-next lists differ ({} vs {} pages)",
                    snap.covisit.len(),
                    want.covisit.len()
                ));
            }
            let top = want.trending.values().fold(0.0f64, |a, b| a.max(*b));
            for (page, score) in &want.trending {
                if *score < 1e-3 * top {
                    continue;
                }
                let got = snap.trending.get(page).copied().unwrap_or(0.0);
                // Stores drop scores below `TRENDING_MIN_SCORE` (relative to the epoch) at
                // each rebase; a page read again later misses those crumbs, each worth
                // less than the threshold at the watermark, halving with every rebase.
                if (got - score).abs() > 1e-6 * score.abs() + 2.0 * TRENDING_MIN_SCORE {
                    out.push(format!(
                        "partition {p}: trending {page}: {got}, want {score}"
                    ));
                }
            }
        }
        let mut users: Vec<&UserId> = self.users.keys().collect();
        users.sort();
        for id in users {
            let want = &self.users[id];
            let Some(got) = store.user(id).await? else {
                out.push(format!("user {id}: missing"));
                continue;
            };
            let (a, b) = (&got.aggregates, &want.aggregates);
            if a != b {
                out.push(format!("user {id}: aggregates {a:?}, want {b:?}"));
            }
            if got.user_type != want.last.user_type
                || got.tier != route_tier(Some(want.last.user_type), b.interactions)
                || got.last_page != want.last.page
                || got.last_session != want.last.session_id.clone().filter(|s| !s.is_empty())
                || got.history != want.history
                || got.read != want.read
            {
                out.push(format!(
                    "user {id}: type/tier/last page/session/history/read set differ"
                ));
            }
        }
        Ok(out)
    }
}

/// What differs between two [`dump`](FeatureStore::dump)s: a line per key whose values
/// differ or that only one holds (at most 12, values cut at 300 characters); empty when
/// the states are equal.
pub fn dump_diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let short =
        |v: Option<&String>| v.map_or("(none)".to_owned(), |v| v.chars().take(300).collect());
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(12)
        .map(|k| format!("{k}: {} vs {}", short(a.get(k)), short(b.get(k))))
        .collect()
}
