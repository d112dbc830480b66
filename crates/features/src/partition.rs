//! One partition's live state and the step that applies a batch to it: the single
//! definition of the window, trending, session and "read next" rules. The in-process
//! store keeps one of these per partition (under one lock); the Redis store keeps one
//! per partition it writes (loaded from Redis when it starts writing the partition) and
//! stores what each step [changed](Changes).
//!
//! # Why a batch's partition state is applied exactly once
//! A [`PartState`] is the partition's state after the offsets before its `next`, and
//! [`PartState::apply`] only applies a delta that starts exactly there, or any delta to
//! a state that holds nothing yet (fresh, by the position rule of [`crate::checkpoint`]);
//! anything else means the state moved under the caller, who positioned the batch
//! against the stored `next` beforehand (`PartitionBatch::pending`). So a state is
//! always that of a prefix of the log.
//!
//! What depends on order is decided per event, in offset order: the trending epoch and
//! its rebases, the trending trim, whether a read continues the reader's session (the
//! previous read must be within the session gap of the partition's watermark at that
//! event), whether a "read next" list has expired before a pair is added
//! (`covisit_ttl`), and the list cap (`covisit_max_next`). What the watermark closes is
//! also dropped at the end of a batch, which changes nothing later, since every later
//! event treats it as gone. Counts are integer sums. So the state after an offset is the
//! same however the log before it was cut into batches.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use newsrec_core::{PageId, UserId};

use crate::aggregate::{BucketCount, PartitionDelta, same_session, sid};
use crate::checkpoint::{Offset, Partition, Position};
use crate::config::StoreConfig;
use crate::values::{BatchEvent, PartitionSnapshot, ScoredPage, top_k};
use crate::window::{TRENDING_MIN_SCORE, Window, bucket_of, decay_weight, trending_epoch};

/// What the partition step decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionApply {
    /// The delta was fresh and is applied.
    Applied,
    /// The delta did not start at the state's `next`: nothing changed.
    Refused(Position),
}

/// The last read of an open session.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SessionEnd {
    /// Event time of the read.
    pub ts: i64,
    /// The page read.
    pub page: PageId,
    /// Its session id (empty: none).
    pub session: String,
}

/// A partition's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PartState {
    /// The first offset not applied yet (`None`: nothing applied).
    pub next: Option<Offset>,
    pub wm: Option<i64>,
    /// Trending epoch: `trending` scores are relative to it.
    pub t0: Option<i64>,
    pub events: u64,
    pub buckets: BTreeMap<i64, HashMap<PageId, u64>>,
    /// One map per configured window, shortest first.
    pub windows: Vec<HashMap<PageId, u64>>,
    pub trending: HashMap<PageId, f64>,
    pub covisit: HashMap<PageId, HashMap<PageId, u64>>,
    pub covisit_last: HashMap<PageId, i64>,
    pub sessions: HashMap<UserId, SessionEnd>,
}

/// What one applied batch changed, so a store can write just that.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// `(bucket, page)` counts written (the new count is in the state).
    pub bucket_counts: Vec<(i64, PageId)>,
    /// Buckets that left every window.
    pub expired_buckets: Vec<i64>,
    /// The trending epoch moved: every stored score changed.
    pub rebased: bool,
    pub trending_set: HashSet<PageId>,
    pub trending_removed: HashSet<PageId>,
    pub sessions_set: Vec<UserId>,
    pub sessions_removed: Vec<UserId>,
    /// Pages whose "read next" list changed, and pages whose list was dropped.
    pub covisit_set: HashSet<PageId>,
    pub covisit_removed: Vec<PageId>,
}

impl PartState {
    /// Rebuilds the window counts from the buckets (after loading a stored state).
    pub fn derive_windows(&mut self, cfg: &StoreConfig, windows: &[Window]) {
        let b_ms = cfg.bucket_ms();
        self.windows = vec![HashMap::default(); windows.len()];
        let Some(wm) = self.wm else { return };
        let cur = bucket_of(wm, b_ms);
        for (i, w) in windows.iter().enumerate() {
            let lo = cur - w.duration_ms() / b_ms;
            for counts in self.buckets.range(lo + 1..=cur).map(|(_, c)| c) {
                for (page, c) in counts {
                    *self.windows[i].entry(page.clone()).or_default() += c;
                }
            }
        }
    }

    /// Applies one partition delta and the batch's `events` it was built from, when it
    /// is fresh (see the module doc).
    pub fn apply(
        &mut self,
        d: &PartitionDelta,
        events: &[BatchEvent],
        cfg: &StoreConfig,
        windows: &[Window],
    ) -> (PartitionApply, Changes) {
        let mut ch = Changes::default();
        match d.range.position(self.next) {
            Position::Fresh => {}
            refused => return (PartitionApply::Refused(refused), ch),
        }
        if d.events == 0 {
            self.next = Some(d.range.end);
            return (PartitionApply::Applied, ch);
        }
        let wm = self.wm.map_or(d.max_ts, |w| w.max(d.max_ts));
        self.count_buckets(d, wm, cfg, windows, &mut ch);
        let touched = self.apply_events(events, cfg, &mut ch);
        self.close(wm, touched, cfg, &mut ch);

        // 5. Offsets and watermark.
        self.next = Some(d.range.end);
        self.wm = Some(wm);
        self.events += d.events;
        (PartitionApply::Applied, ch)
    }

    /// Steps 1 and 2 of [`apply`](Self::apply), up to the new watermark `wm` (the state's
    /// own is still the old one): what slid out of each window, then the delta's counts.
    fn count_buckets(
        &mut self,
        d: &PartitionDelta,
        wm: i64,
        cfg: &StoreConfig,
        windows: &[Window],
        ch: &mut Changes,
    ) {
        let b_ms = cfg.bucket_ms();
        if self.windows.len() != windows.len() {
            self.windows = vec![HashMap::default(); windows.len()];
        }
        let cur = bucket_of(wm, b_ms);
        let spans: Vec<i64> = windows.iter().map(|w| w.duration_ms() / b_ms).collect();
        let longest = spans.last().copied().unwrap_or(1);

        // 1. Buckets that slid out of each window since the last batch.
        if let Some(wm_old) = self.wm {
            let cur_old = bucket_of(wm_old, b_ms);
            if cur > cur_old {
                for (i, span) in spans.iter().enumerate() {
                    let (lo_old, lo_new) = (cur_old - span, cur - span);
                    for counts in self.buckets.range(lo_old + 1..=lo_new).map(|(_, c)| c) {
                        for (page, c) in counts {
                            let left = self.windows[i].get(page).copied().unwrap_or(0);
                            if left <= *c {
                                self.windows[i].remove(page);
                            } else {
                                self.windows[i].insert(page.clone(), left - c);
                            }
                        }
                    }
                }
            }
        }
        let lo_max = cur - longest;
        let kept = self.buckets.split_off(&(lo_max + 1));
        ch.expired_buckets = std::mem::replace(&mut self.buckets, kept)
            .into_keys()
            .collect();

        // 2. This batch's counts.
        for BucketCount {
            bucket: idx,
            page,
            count: c,
        } in &d.bucket_counts
        {
            if *idx > lo_max {
                *self
                    .buckets
                    .entry(*idx)
                    .or_default()
                    .entry(page.clone())
                    .or_default() += c;
                ch.bucket_counts.push((*idx, page.clone()));
                for (i, span) in spans.iter().enumerate() {
                    if *idx > cur - span {
                        *self.windows[i].entry(page.clone()).or_default() += c;
                    }
                }
            }
        }
    }

    /// Step 3 of [`apply`](Self::apply): the events one at a time; the users whose
    /// session moved.
    fn apply_events(
        &mut self,
        events: &[BatchEvent],
        cfg: &StoreConfig,
        ch: &mut Changes,
    ) -> HashSet<UserId> {
        // 3. Trending, sessions and "read next", one event at a time in offset order:
        // every decision (rebase, trims, session continuity, list expiry) depends only
        // on the events before it, never on where the batch was cut.
        let gap = cfg.session_gap_ms();
        let mut running = self.wm;
        let mut touched: HashSet<UserId> = HashSet::default();
        for be in events {
            let e = &be.event;
            let now = running.map_or(e.ts, |w| w.max(e.ts));
            running = Some(now);
            let t0 = self.rebase_trending(now, cfg, ch);
            *self.trending.entry(e.page.clone()).or_default() +=
                decay_weight(e.ts, t0, cfg.half_life_ms());
            ch.trending_removed.remove(&e.page);
            ch.trending_set.insert(e.page.clone());
            // Trimmed in steps (a quarter of the cap over it), so it is not sorted
            // every event once full.
            if self.trending.len() > cfg.trending_max + cfg.trending_max / 4 {
                for p in trim_lowest(&mut self.trending, cfg.trending_max, |v| *v) {
                    ch.trending_set.remove(&p);
                    ch.trending_removed.insert(p);
                }
            }

            let sid = sid(&e.session_id);
            if let Some(prev) = self.sessions.get(&e.user_id)
                && prev.ts >= now - gap
                && same_session(prev.ts, &prev.session, e.ts, sid, gap)
                && prev.page != e.page
            {
                let from = prev.page.clone();
                self.add_pair(from, &e.page, e.ts, now, cfg, ch);
            }
            self.sessions.insert(
                e.user_id.clone(),
                SessionEnd {
                    ts: e.ts,
                    page: e.page.clone(),
                    session: sid.to_owned(),
                },
            );
            touched.insert(e.user_id.clone());
        }
        touched
    }

    /// Step 4 of [`apply`](Self::apply), at the new watermark `wm`.
    fn close(&mut self, wm: i64, touched: HashSet<UserId>, cfg: &StoreConfig, ch: &mut Changes) {
        let gap = cfg.session_gap_ms();
        // 4. What the watermark closed: sessions, and "read next" lists with no pair for
        // `covisit_ttl` (each event above treats these as gone already, so dropping them
        // here rather than there changes nothing later).
        let cut = wm - gap;
        self.sessions.retain(|u, s| {
            let keep = s.ts >= cut;
            if !keep {
                ch.sessions_removed.push(u.clone());
            }
            keep
        });
        ch.sessions_set = touched
            .into_iter()
            .filter(|u| self.sessions.contains_key(u))
            .collect();
        let cv_cut = wm - cfg.covisit_ttl_ms();
        let stale: Vec<PageId> = self
            .covisit_last
            .iter()
            .filter(|(_, ts)| **ts < cv_cut)
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            self.covisit_last.remove(&p);
            self.covisit.remove(&p);
            ch.covisit_set.remove(&p);
            ch.covisit_removed.push(p);
        }
    }

    /// The trending epoch at watermark `now`; when it moves, every stored score is
    /// rescaled to it and the negligible ones dropped.
    fn rebase_trending(&mut self, now: i64, cfg: &StoreConfig, ch: &mut Changes) -> i64 {
        let hl = cfg.half_life_ms();
        let t0 = trending_epoch(now, hl);
        match self.t0 {
            Some(old) if t0 <= old => return old,
            Some(old) => {
                let scale = decay_weight(old, t0, hl);
                for v in self.trending.values_mut() {
                    *v *= scale;
                }
                self.trending.retain(|p, v| {
                    let keep = *v >= TRENDING_MIN_SCORE;
                    if !keep {
                        ch.trending_removed.insert(p.clone());
                        ch.trending_set.remove(p);
                    }
                    keep
                });
                ch.rebased = true;
            }
            None => {}
        }
        self.t0 = Some(t0);
        t0
    }

    /// Counts one "read next" pair `from → to` seen at `ts` with the partition's
    /// watermark at `now`: a list with no pair for `covisit_ttl` starts over, and a full
    /// list drops its least read entry.
    fn add_pair(
        &mut self,
        from: PageId,
        to: &PageId,
        ts: i64,
        now: i64,
        cfg: &StoreConfig,
        ch: &mut Changes,
    ) {
        if self
            .covisit_last
            .get(&from)
            .is_some_and(|last| *last < now - cfg.covisit_ttl_ms())
        {
            self.covisit.remove(&from);
            self.covisit_last.remove(&from);
        }
        let next = self.covisit.entry(from.clone()).or_default();
        *next.entry(to.clone()).or_default() += 1;
        if next.len() > cfg.covisit_max_next {
            trim_lowest(next, cfg.covisit_max_next, |c| *c as f64);
        }
        let last = self.covisit_last.entry(from.clone()).or_insert(ts);
        *last = (*last).max(ts);
        ch.covisit_set.insert(from);
    }

    /// The whole state as one canonical text (maps sorted, floats exact), for
    /// whole-state comparisons.
    pub fn canonical(&self) -> String {
        fn sorted<K: Ord + std::fmt::Debug, V: std::fmt::Debug>(
            m: impl Iterator<Item = (K, V)>,
        ) -> String {
            let m: BTreeMap<K, V> = m.collect();
            format!("{m:?}")
        }
        let buckets = sorted(self.buckets.iter().map(|(b, c)| (b, sorted(c.iter()))));
        let windows: Vec<String> = self.windows.iter().map(|w| sorted(w.iter())).collect();
        let covisit = sorted(self.covisit.iter().map(|(a, n)| (a, sorted(n.iter()))));
        format!(
            "next={:?} wm={:?} t0={:?} events={} buckets={buckets} windows={windows:?} \
             trending={} covisit={covisit} covisit_last={} sessions={}",
            self.next.map(i64::from),
            self.wm,
            self.t0,
            self.events,
            sorted(self.trending.iter()),
            sorted(self.covisit_last.iter()),
            // As tuples: the text of the canonical form stays the same.
            sorted(
                self.sessions
                    .iter()
                    .map(|(u, s)| (u, (s.ts, &s.page, &s.session)))
            ),
        )
    }

    /// Trending scores decayed to `wm`.
    pub fn decayed_trending(
        &self,
        cfg: &StoreConfig,
        wm: i64,
    ) -> impl Iterator<Item = (&PageId, f64)> {
        let hl = cfg.half_life_ms() as f64;
        let f = 2f64.powf((self.t0.unwrap_or(wm) - wm) as f64 / hl);
        self.trending.iter().map(move |(p, v)| (p, v * f))
    }

    /// The `n` most read pages of window `i` (by count, ties by page).
    pub fn top_window(&self, i: usize, n: usize) -> Vec<ScoredPage> {
        let Some(w) = self.windows.get(i) else {
            return Vec::new();
        };
        top_n(w.iter().map(|(p, c)| (p, *c as f64)), n)
    }

    /// The `n` highest trending scores, relative to the epoch `t0`.
    pub fn top_trending(&self, n: usize) -> Vec<ScoredPage> {
        top_n(self.trending.iter().map(|(p, v)| (p, *v)), n)
    }

    /// Everything, as the snapshot readers compare.
    pub fn snapshot(
        &self,
        partition: Partition,
        cfg: &StoreConfig,
        windows: &[Window],
    ) -> PartitionSnapshot {
        let windows = windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let counts = self
                    .windows
                    .get(i)
                    .map(|m| m.iter().map(|(p, c)| (p.clone(), *c)).collect())
                    .unwrap_or_default();
                (*w, counts)
            })
            .collect();
        let trending = match self.wm {
            Some(wm) => self
                .decayed_trending(cfg, wm)
                .map(|(p, v)| (p.clone(), v))
                .collect(),
            None => BTreeMap::new(),
        };
        let covisit = self
            .covisit
            .iter()
            .filter(|(_, next)| !next.is_empty())
            .map(|(a, next)| {
                (
                    a.clone(),
                    next.iter().map(|(b, c)| (b.clone(), *c)).collect(),
                )
            })
            .collect();
        PartitionSnapshot {
            partition,
            next_offset: self.next,
            watermark: self.wm,
            events: self.events,
            windows,
            trending,
            covisit,
        }
    }
}

/// The best `n` of `scores` (highest first, ties by page), selected without sorting the
/// rest.
pub(crate) fn top_n<'a>(
    scores: impl Iterator<Item = (&'a PageId, f64)>,
    n: usize,
) -> Vec<ScoredPage> {
    let mut v: Vec<(f64, &PageId)> = scores.map(|(p, s)| (s, p)).collect();
    let order =
        |a: &(f64, &PageId), b: &(f64, &PageId)| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1));
    if v.len() > n && n > 0 {
        v.select_nth_unstable_by(n - 1, order);
    }
    v.truncate(n);
    top_k(
        v.into_iter()
            .map(|(score, page)| ScoredPage {
                page: page.clone(),
                score,
            })
            .collect(),
        n,
    )
}

/// Drops the lowest entries (by value, then key, as a Redis sorted set ranks them) until
/// `max` remain; returns the dropped keys.
pub(crate) fn trim_lowest<V, S: std::hash::BuildHasher>(
    map: &mut std::collections::HashMap<PageId, V, S>,
    max: usize,
    score: impl Fn(&V) -> f64,
) -> Vec<PageId> {
    if map.len() <= max {
        return Vec::new();
    }
    let mut entries: Vec<(f64, PageId)> = map.iter().map(|(p, v)| (score(v), p.clone())).collect();
    entries.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let over = entries.len() - max;
    entries
        .into_iter()
        .take(over)
        .map(|(_, p)| {
            map.remove(&p);
            p
        })
        .collect()
}
