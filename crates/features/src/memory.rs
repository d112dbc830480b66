//! The in-process store: the same semantics as the Redis scripts, step for step, over
//! plain maps behind one mutex. For `newsrec demo` and fast tests; the conformance suite
//! holds it and [`crate::RedisStore`] to the same results.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use newsrec_core::{PageId, UserAggregates, UserId, UserType};

use crate::aggregate::{BatchDelta, PartitionDelta, UserDelta, merge_history, same_session};
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::model::{
    ApplyOutcome, PartitionBatch, PartitionSnapshot, Pending, ScoredPage, UserState, top_k,
};
use crate::store::FeatureStore;
use crate::window::{TRENDING_MIN_SCORE, Window, bucket_of, trending_epoch};

/// What a user delta did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserApply {
    Duplicate,
    Applied,
    /// Part of the delta's events are already in: re-send per event.
    Partial,
}

/// What the partition step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionApply {
    Applied,
    Duplicate(i64),
    Partial(i64),
    Gap(i64),
}

#[derive(Debug, Clone)]
struct MemUser {
    user_type: UserType,
    agg: UserAggregates,
    history: Vec<PageId>,
    last_page: PageId,
    last_session: String,
    offsets: HashMap<i32, i64>,
}

#[derive(Debug, Default)]
struct Part {
    next: Option<i64>,
    wm: Option<i64>,
    t0: Option<i64>,
    events: u64,
    buckets: BTreeMap<i64, HashMap<PageId, u64>>,
    /// One map per configured window, shortest first.
    windows: Vec<HashMap<PageId, u64>>,
    trending: HashMap<PageId, f64>,
    covisit: HashMap<PageId, HashMap<PageId, u64>>,
    covisit_last: HashMap<PageId, i64>,
    sessions: HashMap<UserId, (i64, PageId, String)>,
}

#[derive(Debug, Default)]
struct State {
    parts: BTreeMap<i32, Part>,
    users: HashMap<UserId, MemUser>,
    issued: HashMap<PageId, i64>,
    seen: HashMap<PageId, i64>,
}

/// The feature store in process memory.
#[derive(Debug)]
pub struct MemoryStore {
    cfg: StoreConfig,
    windows: Vec<Window>,
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(cfg: StoreConfig) -> Result<Self, StoreError> {
        cfg.validate()?;
        Ok(Self {
            windows: cfg.windows(),
            cfg,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still valid maps; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn apply_user(&self, st: &mut State, partition: i32, d: &UserDelta) -> UserApply {
        let stored = st
            .users
            .get(&d.user)
            .and_then(|u| u.offsets.get(&partition).copied());
        match stored {
            Some(o) if o >= d.max_offset => return UserApply::Duplicate,
            Some(o) if o >= d.min_offset => return UserApply::Partial,
            _ => {}
        }
        let cap = self.cfg.history_len;
        match st.users.get_mut(&d.user) {
            Some(u) => {
                u.agg.merge(&d.agg);
                u.user_type = d.user_type;
                u.history = merge_history(&d.history, &u.history, cap);
                u.last_page = d.last_page.clone();
                u.last_session = d.last_session.clone();
                u.offsets.insert(partition, d.max_offset);
            }
            None => {
                let mut agg = UserAggregates::default();
                agg.merge(&d.agg);
                st.users.insert(
                    d.user.clone(),
                    MemUser {
                        user_type: d.user_type,
                        agg,
                        history: merge_history(&d.history, &[], cap),
                        last_page: d.last_page.clone(),
                        last_session: d.last_session.clone(),
                        offsets: HashMap::from([(partition, d.max_offset)]),
                    },
                );
            }
        }
        UserApply::Applied
    }

    fn apply_partition(&self, part: &mut Part, d: &PartitionDelta) -> PartitionApply {
        if let Some(stored) = part.next {
            if stored >= d.e {
                return PartitionApply::Duplicate(stored);
            }
            if stored > d.s {
                return PartitionApply::Partial(stored);
            }
            if stored < d.s {
                return PartitionApply::Gap(stored);
            }
        }
        if d.n == 0 {
            part.next = Some(d.e);
            return PartitionApply::Applied;
        }
        let cfg = &self.cfg;
        let b_ms = cfg.bucket_ms();
        if part.windows.len() != self.windows.len() {
            part.windows = vec![HashMap::new(); self.windows.len()];
        }
        let wm = part.wm.map_or(d.mx, |w| w.max(d.mx));
        let cur = bucket_of(wm, b_ms);
        let spans: Vec<i64> = self
            .windows
            .iter()
            .map(|w| w.duration_ms() / b_ms)
            .collect();
        let longest = spans.last().copied().unwrap_or(1);

        // 1. Buckets that slid out of each window since the last batch.
        if let Some(wm_old) = part.wm {
            let cur_old = bucket_of(wm_old, b_ms);
            if cur > cur_old {
                for (i, span) in spans.iter().enumerate() {
                    let (lo_old, lo_new) = (cur_old - span, cur - span);
                    for counts in part.buckets.range(lo_old + 1..=lo_new).map(|(_, c)| c) {
                        for (page, c) in counts {
                            let left = part.windows[i].get(page).copied().unwrap_or(0);
                            if left <= *c {
                                part.windows[i].remove(page);
                            } else {
                                part.windows[i].insert(page.clone(), left - c);
                            }
                        }
                    }
                }
            }
        }
        let lo_max = cur - longest;
        part.buckets = part.buckets.split_off(&(lo_max + 1));

        // 2. This batch's counts.
        for (idx, page, c) in &d.b {
            if *idx > lo_max {
                *part
                    .buckets
                    .entry(*idx)
                    .or_default()
                    .entry(page.clone())
                    .or_default() += c;
                for (i, span) in spans.iter().enumerate() {
                    if *idx > cur - span {
                        *part.windows[i].entry(page.clone()).or_default() += c;
                    }
                }
            }
        }

        // 3. Trending, rebased when the epoch moves.
        let hl = cfg.half_life_ms();
        let mut t0 = trending_epoch(wm, hl);
        if let Some(t0_old) = part.t0 {
            if t0 > t0_old {
                let scale = 2f64.powf((t0_old - t0) as f64 / hl as f64);
                for v in part.trending.values_mut() {
                    *v *= scale;
                }
                part.trending.retain(|_, v| *v >= TRENDING_MIN_SCORE);
            } else {
                t0 = t0_old;
            }
        }
        let f = 2f64.powf((d.mx - t0) as f64 / hl as f64);
        for (page, w) in &d.tr {
            *part.trending.entry(page.clone()).or_default() += w * f;
        }
        trim_lowest(&mut part.trending, cfg.trending_max, |v| *v);

        // 4. Sessions across the batch boundary, then pairs inside it.
        let gap = cfg.session_gap_ms();
        let mut touched: HashSet<PageId> = HashSet::new();
        let mut pair = |part: &mut Part, a: &PageId, b: &PageId, c: u64, ts: i64| {
            *part
                .covisit
                .entry(a.clone())
                .or_default()
                .entry(b.clone())
                .or_default() += c;
            let last = part.covisit_last.entry(a.clone()).or_insert(ts);
            *last = (*last).max(ts);
            touched.insert(a.clone());
        };
        for s in &d.sess {
            let (fts, fpage, fsid) = s.first();
            if let Some((pts, ppage, psid)) = part.sessions.get(s.user()).cloned()
                && same_session(pts, &psid, fts, fsid, gap)
                && &ppage != fpage
            {
                pair(part, &ppage, fpage, 1, fts);
            }
            let (lts, lpage, lsid) = s.last();
            part.sessions
                .insert(s.user().clone(), (lts, lpage.clone(), lsid.to_owned()));
        }
        for (a, b, c, ts) in &d.pairs {
            pair(part, a, b, *c, *ts);
        }
        for a in touched {
            if let Some(next) = part.covisit.get_mut(&a) {
                trim_lowest(next, cfg.covisit_max_next, |c| *c as f64);
            }
        }

        // 5. Closed sessions and stale "read next" lists.
        let cut = wm - gap;
        part.sessions.retain(|_, (ts, _, _)| *ts >= cut);
        let cv_cut = wm - cfg.covisit_ttl_ms();
        let stale: Vec<PageId> = part
            .covisit_last
            .iter()
            .filter(|(_, ts)| **ts < cv_cut)
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            part.covisit_last.remove(&p);
            part.covisit.remove(&p);
        }

        // 6. Offsets and watermark.
        part.next = Some(d.e);
        part.wm = Some(wm);
        part.t0 = Some(t0);
        part.events += d.n;
        PartitionApply::Applied
    }

    fn decayed_trending(&self, part: &Part, wm: i64) -> HashMap<PageId, f64> {
        let hl = self.cfg.half_life_ms() as f64;
        let t0 = part.t0.unwrap_or(wm);
        let f = 2f64.powf((t0 - wm) as f64 / hl);
        part.trending
            .iter()
            .map(|(p, v)| (p.clone(), v * f))
            .collect()
    }
}

/// Drops the lowest entries (by value, then key, as a Redis sorted set ranks them) until
/// `max` remain.
fn trim_lowest<V>(map: &mut HashMap<PageId, V>, max: usize, score: impl Fn(&V) -> f64) {
    if map.len() <= max {
        return;
    }
    let mut entries: Vec<(f64, PageId)> = map.iter().map(|(p, v)| (score(v), p.clone())).collect();
    entries.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let over = entries.len() - max;
    for (_, p) in entries.into_iter().take(over) {
        map.remove(&p);
    }
}

fn scored(map: HashMap<PageId, f64>, k: usize) -> Vec<ScoredPage> {
    top_k(
        map.into_iter()
            .map(|(page, score)| ScoredPage { page, score })
            .collect(),
        k,
    )
}

#[async_trait]
impl FeatureStore for MemoryStore {
    fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    async fn user(&self, user: &UserId) -> Result<Option<UserState>, StoreError> {
        let st = self.lock();
        Ok(st.users.get(user).map(|u| {
            UserState::new(
                user.clone(),
                u.user_type,
                u.agg,
                u.history.clone(),
                u.last_page.clone(),
                Some(u.last_session.clone()).filter(|s| !s.is_empty()),
            )
        }))
    }

    async fn popular(&self, window: Window, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let Some(i) = self.windows.iter().position(|w| *w == window) else {
            return Ok(Vec::new());
        };
        let st = self.lock();
        let mut sum: HashMap<PageId, f64> = HashMap::new();
        for part in st.parts.values() {
            if let Some(w) = part.windows.get(i) {
                for (p, c) in w {
                    *sum.entry(p.clone()).or_default() += *c as f64;
                }
            }
        }
        Ok(scored(sum, k))
    }

    async fn trending(&self, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let st = self.lock();
        let Some(wm) = st.parts.values().filter_map(|p| p.wm).max() else {
            return Ok(Vec::new());
        };
        let mut sum: HashMap<PageId, f64> = HashMap::new();
        for part in st.parts.values() {
            for (p, v) in self.decayed_trending(part, wm) {
                *sum.entry(p).or_default() += v;
            }
        }
        Ok(scored(sum, k))
    }

    async fn read_next(&self, page: &PageId, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let st = self.lock();
        let mut sum: HashMap<PageId, f64> = HashMap::new();
        for part in st.parts.values() {
            if let Some(next) = part.covisit.get(page) {
                for (p, c) in next {
                    *sum.entry(p.clone()).or_default() += *c as f64;
                }
            }
        }
        Ok(scored(sum, k))
    }

    async fn recency(&self, pages: &[PageId]) -> Result<Vec<Option<i64>>, StoreError> {
        let st = self.lock();
        Ok(pages
            .iter()
            .map(|p| st.issued.get(p).or_else(|| st.seen.get(p)).copied())
            .collect())
    }

    async fn watermark(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.lock().parts.values().filter_map(|p| p.wm).max())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn apply(&self, batch: &PartitionBatch) -> Result<ApplyOutcome, StoreError> {
        batch.validate()?;
        let total = batch.events.len();
        let mut st = self.lock();
        // Users are only touched for a batch that continues the partition (see the crate
        // doc): never for a gap, and only for the part not applied yet.
        let stored = st.parts.get(&batch.partition).and_then(|p| p.next);
        let batch = match batch.pending(stored)? {
            Pending::Done(outcome) => return Ok(outcome),
            Pending::Apply(b) => b,
        };
        let batch = batch.as_ref();
        let delta = BatchDelta::build(batch, &self.cfg);
        for u in &delta.users {
            if self.apply_user(&mut st, batch.partition, u) == UserApply::Partial {
                for single in BatchDelta::per_event(batch, &u.user, &self.cfg) {
                    self.apply_user(&mut st, batch.partition, &single);
                }
            }
        }
        for (page, ts) in &delta.first_seen {
            st.seen
                .entry(page.clone())
                .and_modify(|t| *t = (*t).min(*ts))
                .or_insert(*ts);
        }
        if st.seen.len() > self.cfg.max_items {
            trim_lowest(&mut st.seen, self.cfg.max_items, |t| *t as f64);
        }
        let part = st.parts.entry(batch.partition).or_default();
        match self.apply_partition(part, &delta.partition) {
            PartitionApply::Applied => Ok(ApplyOutcome {
                applied: batch.events.len(),
                duplicates: total - batch.events.len(),
                next_offset: batch.end,
            }),
            // The offset was checked under the same lock.
            PartitionApply::Duplicate(s) | PartitionApply::Partial(s) | PartitionApply::Gap(s) => {
                Err(StoreError::InvalidBatch(format!(
                    "partition {} moved to {s} while applying",
                    batch.partition
                )))
            }
        }
    }

    async fn next_offsets(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, StoreError> {
        let st = self.lock();
        Ok(partitions
            .iter()
            .map(|p| st.parts.get(p).and_then(|p| p.next))
            .collect())
    }

    fn next_offsets_blocking(&self, partitions: &[i32]) -> Result<Vec<Option<i64>>, StoreError> {
        let st = self.lock();
        Ok(partitions
            .iter()
            .map(|p| st.parts.get(p).and_then(|p| p.next))
            .collect())
    }

    async fn set_issued(&self, items: &[(PageId, i64)]) -> Result<(), StoreError> {
        let mut st = self.lock();
        for (p, ts) in items {
            st.issued.insert(p.clone(), *ts);
        }
        Ok(())
    }

    async fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        Ok(self.lock().parts.keys().copied().collect())
    }

    async fn snapshot(&self, partition: i32) -> Result<PartitionSnapshot, StoreError> {
        let st = self.lock();
        let Some(part) = st.parts.get(&partition) else {
            return Ok(PartitionSnapshot {
                partition,
                ..PartitionSnapshot::default()
            });
        };
        let windows = self
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let counts = part
                    .windows
                    .get(i)
                    .map(|m| m.iter().map(|(p, c)| (p.clone(), *c)).collect())
                    .unwrap_or_default();
                (*w, counts)
            })
            .collect();
        let trending = match part.wm {
            Some(wm) => self.decayed_trending(part, wm).into_iter().collect(),
            None => BTreeMap::new(),
        };
        let covisit = part
            .covisit
            .iter()
            .map(|(a, next)| {
                (
                    a.clone(),
                    next.iter().map(|(b, c)| (b.clone(), *c)).collect(),
                )
            })
            .collect();
        Ok(PartitionSnapshot {
            partition,
            next_offset: part.next,
            watermark: part.wm,
            events: part.events,
            windows,
            trending,
            covisit,
        })
    }
}
