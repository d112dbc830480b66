//! The in-process store: the shared partition step and user rule over plain maps behind
//! one mutex, nothing persisted. For `newsrec demo` and fast tests; the conformance suite
//! holds it and [`crate::RedisStore`] to the same results.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use newsrec_core::{PageId, UserId};

use crate::aggregate::{BatchDelta, UserDelta};
use crate::checkpoint::{Offset, Partition};
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::online::{CounterRow, Counters, OnlineNext, OnlineState, Step};
use crate::partition::{PartState, PartitionApply, top_n, trim_lowest};
use crate::store::FeatureStore;
use crate::user_record::{Caps, UserApply, UserRecord, merged};
use crate::values::{
    ApplyOutcome, PartitionBatch, PartitionSnapshot, Pending, ScoredPage, UserState, merge_tops,
};
use crate::window::{Window, decay_weight};

#[derive(Debug, Default)]
struct State {
    parts: BTreeMap<Partition, PartState>,
    /// Per user, one record per partition.
    users: HashMap<UserId, BTreeMap<Partition, UserRecord>>,
    issued: HashMap<PageId, i64>,
    seen: HashMap<PageId, i64>,
    online: BTreeMap<Partition, OnlineState>,
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

    fn apply_user(&self, st: &mut State, partition: Partition, d: &UserDelta) -> UserApply {
        let recs = st.users.entry(d.user.clone()).or_default();
        let mut rec = recs.remove(&partition);
        let done = UserRecord::apply(&mut rec, d, Caps::of(&self.cfg));
        recs.extend(rec.map(|r| (partition, r)));
        done
    }
}

#[async_trait]
impl FeatureStore for MemoryStore {
    fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    async fn user(&self, user: &UserId) -> Result<Option<UserState>, StoreError> {
        let st = self.lock();
        Ok(st
            .users
            .get(user)
            .and_then(|recs| merged(user, recs.iter().map(|(p, r)| (*p, r)), Caps::of(&self.cfg))))
    }

    async fn popular(&self, window: Window, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let Some(i) = self.windows.iter().position(|w| *w == window) else {
            return Ok(Vec::new());
        };
        let st = self.lock();
        let n = self.cfg.top_list_len;
        Ok(merge_tops(
            st.parts.values().map(|p| (p.top_window(i, n), 1.0)),
            k,
        ))
    }

    async fn trending(&self, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let st = self.lock();
        let Some(wm) = st.parts.values().filter_map(|p| p.wm).max() else {
            return Ok(Vec::new());
        };
        let n = self.cfg.top_list_len;
        let hl = self.cfg.half_life_ms();
        Ok(merge_tops(
            st.parts.values().filter_map(|p| {
                let t0 = p.t0?;
                Some((p.top_trending(n), decay_weight(t0, wm, hl)))
            }),
            k,
        ))
    }

    async fn read_next(&self, page: &PageId, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let st = self.lock();
        Ok(merge_tops(
            st.parts.values().filter_map(|p| {
                let next = p.covisit.get(page)?;
                Some((
                    top_n(next.iter().map(|(b, c)| (b, *c as f64)), next.len()),
                    1.0,
                ))
            }),
            k,
        ))
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
        // Users are only touched for a batch that continues the partition (the position
        // rule, see `checkpoint`): never for a gap, and only for the part not applied yet.
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
        match part
            .apply(&delta.partition, &batch.events, &self.cfg, &self.windows)
            .0
        {
            PartitionApply::Applied => Ok(ApplyOutcome {
                applied: batch.events.len(),
                duplicates: total - batch.events.len(),
                next_offset: batch.end,
            }),
            // The offset was checked under the same lock.
            PartitionApply::Refused(at) => Err(StoreError::InvalidBatch(format!(
                "partition {} moved to {} while applying",
                batch.partition,
                at.stored().map_or(-1, i64::from)
            ))),
        }
    }

    async fn next_offsets(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<Option<Offset>>, StoreError> {
        let st = self.lock();
        Ok(partitions
            .iter()
            .map(|p| st.parts.get(p).and_then(|p| p.next))
            .collect())
    }

    fn next_offsets_blocking(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<Option<Offset>>, StoreError> {
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

    async fn partitions(&self) -> Result<Vec<Partition>, StoreError> {
        Ok(self.lock().parts.keys().copied().collect())
    }

    async fn reset_partition(&self, partition: Partition) -> Result<(), StoreError> {
        self.lock().parts.remove(&partition);
        Ok(())
    }

    async fn dump(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let st = self.lock();
        let mut out = BTreeMap::new();
        for (p, part) in &st.parts {
            out.insert(format!("p{p}"), part.canonical());
        }
        for (u, recs) in &st.users {
            let recs = serde_json::to_string(recs)
                .map_err(|e| StoreError::InvalidBatch(format!("user {u}: {e}")))?;
            out.insert(format!("u:{u}"), recs);
        }
        let sorted =
            |m: &HashMap<PageId, i64>| format!("{:?}", m.iter().collect::<BTreeMap<_, _>>());
        for (p, o) in &st.online {
            out.insert(format!("o{p}"), format!("{o:?}"));
        }
        out.insert("issued".into(), sorted(&st.issued));
        out.insert("seen".into(), sorted(&st.seen));
        Ok(out)
    }

    async fn load_online(&self, partition: Partition) -> Result<OnlineState, StoreError> {
        Ok(self
            .lock()
            .online
            .get(&partition)
            .cloned()
            .unwrap_or_default())
    }

    async fn commit_online(
        &self,
        partition: Partition,
        expected: OnlineNext,
        state: &OnlineState,
        _step: &Step,
    ) -> Result<bool, StoreError> {
        let mut st = self.lock();
        let stored = st
            .online
            .get(&partition)
            .map_or(OnlineNext::default(), OnlineState::next);
        if stored != expected {
            return Ok(false);
        }
        st.online.insert(partition, state.clone());
        Ok(true)
    }

    async fn online_counters(&self) -> Result<Vec<CounterRow>, StoreError> {
        let mut sum: BTreeMap<_, Counters> = BTreeMap::new();
        for o in self.lock().online.values() {
            for (k, c) in &o.counters {
                sum.entry(k.clone()).or_default().add(c);
            }
        }
        Ok(sum.into_iter().collect())
    }

    async fn snapshot(&self, partition: Partition) -> Result<PartitionSnapshot, StoreError> {
        let st = self.lock();
        Ok(match st.parts.get(&partition) {
            Some(part) => part.snapshot(partition, &self.cfg, &self.windows),
            None => PartitionSnapshot {
                partition,
                ..PartitionSnapshot::default()
            },
        })
    }
}
