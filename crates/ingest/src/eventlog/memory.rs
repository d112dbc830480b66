//! The in-process log: partitions as vectors, consumer groups with round-robin
//! assignment that changes as members come and go. For `newsrec demo` and fast tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use newsrec_features::{Offset, Partition};

use super::{Assignment, EventLog, LogConsumer, LogError, LogMessage, Positioner, Record};

#[derive(Debug, Clone)]
struct Stored {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct Group {
    /// Member ids in join order; partition `p` goes to member `p % len`.
    members: Vec<u64>,
    generation: u64,
}

#[derive(Debug, Default)]
struct State {
    topics: HashMap<String, Vec<Vec<Stored>>>,
    groups: HashMap<(String, String), Group>,
    next_member: u64,
    round_robin: u64,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    /// Woken on every produce and membership change.
    changed: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An event log in process memory. Clones share the same log.
#[derive(Debug, Clone, Default)]
pub struct MemoryLog {
    inner: Arc<Inner>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

/// FNV-1a: a stable key → partition mapping.
fn hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn ensure_topic(&self, topic: &str, partitions: i32) -> Result<(), LogError> {
        if partitions < 1 {
            return Err(LogError::Config(format!("{partitions} partitions")));
        }
        let mut st = self.inner.lock();
        st.topics
            .entry(topic.to_owned())
            .or_insert_with(|| vec![Vec::new(); partitions as usize]);
        Ok(())
    }

    async fn produce(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> Result<Vec<(Partition, Offset)>, LogError> {
        let mut out = Vec::with_capacity(records.len());
        {
            let mut st = self.inner.lock();
            let mut rr = st.round_robin;
            let parts = st
                .topics
                .get_mut(topic)
                .ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?;
            let n = parts.len() as u64;
            for r in records {
                let p = match (&r.partition, &r.key) {
                    (Some(p), _) if (p.0 as u64) < n => p.0 as u64,
                    (Some(p), _) => {
                        return Err(LogError::Config(format!("{topic} has no partition {p}")));
                    }
                    (None, Some(k)) => hash(k) % n,
                    (None, None) => {
                        rr += 1;
                        rr % n
                    }
                } as usize;
                parts[p].push(Stored {
                    key: r.key,
                    payload: Some(r.payload),
                    headers: r.headers,
                });
                out.push((Partition(p as i32), Offset(parts[p].len() as i64 - 1)));
            }
            st.round_robin = rr;
        }
        self.inner.changed.notify_waiters();
        Ok(out)
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<(Partition, Offset)>, LogError> {
        let st = self.inner.lock();
        let parts = st
            .topics
            .get(topic)
            .ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?;
        Ok(parts
            .iter()
            .enumerate()
            .map(|(p, v)| (Partition(p as i32), Offset(v.len() as i64)))
            .collect())
    }

    async fn start_offsets(&self, topic: &str) -> Result<Vec<(Partition, Offset)>, LogError> {
        // Nothing is ever deleted from the in-process log.
        Ok(self
            .end_offsets(topic)
            .await?
            .into_iter()
            .map(|(p, _)| (p, Offset(0)))
            .collect())
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        positioner: Positioner,
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        let member = {
            let mut st = self.inner.lock();
            if !st.topics.contains_key(topic) {
                return Err(LogError::UnknownTopic(topic.to_owned()));
            }
            st.next_member += 1;
            let id = st.next_member;
            let g = st
                .groups
                .entry((topic.to_owned(), group.to_owned()))
                .or_default();
            g.members.push(id);
            g.generation += 1;
            id
        };
        self.inner.changed.notify_waiters();
        Ok(Box::new(MemoryConsumer {
            inner: Arc::clone(&self.inner),
            topic: topic.to_owned(),
            group: group.to_owned(),
            member,
            positioner,
            group_generation: 0,
            assignment: Assignment::default(),
            positions: BTreeMap::new(),
            start: 0,
        }))
    }

    async fn assign(
        &self,
        topic: &str,
        starts: &[(Partition, Option<Offset>)],
    ) -> Result<Box<dyn LogConsumer>, LogError> {
        let n = {
            let st = self.inner.lock();
            st.topics
                .get(topic)
                .ok_or_else(|| LogError::UnknownTopic(topic.to_owned()))?
                .len()
        };
        if let Some((p, _)) = starts.iter().find(|(p, _)| p.0 < 0 || p.0 as usize >= n) {
            return Err(LogError::Config(format!("{topic} has no partition {p}")));
        }
        let positions: BTreeMap<Partition, i64> = starts
            .iter()
            .map(|(p, o)| (*p, o.map_or(0, |o| o.0.max(0))))
            .collect();
        Ok(Box::new(MemoryConsumer {
            inner: Arc::clone(&self.inner),
            topic: topic.to_owned(),
            // No group has this name: the assignment never changes.
            group: String::new(),
            member: 0,
            positioner: Arc::new(|parts: &[Partition]| Ok(vec![None; parts.len()])),
            group_generation: 0,
            assignment: Assignment {
                generation: 1,
                partitions: positions.keys().copied().collect(),
            },
            positions,
            start: 0,
        }))
    }
}

/// A member of an in-process consumer group.
struct MemoryConsumer {
    inner: Arc<Inner>,
    topic: String,
    group: String,
    member: u64,
    positioner: Positioner,
    /// The group generation the assignment was computed for.
    group_generation: u64,
    assignment: Assignment,
    positions: BTreeMap<Partition, i64>,
    /// Rotates the partition read first, so one busy partition cannot starve others.
    start: usize,
}

impl MemoryConsumer {
    /// Recomputes the assignment when the group changed; positions new partitions.
    fn rebalance(&mut self) {
        let (generation, mine) = {
            let st = self.inner.lock();
            let key = (self.topic.clone(), self.group.clone());
            let Some(g) = st.groups.get(&key) else {
                return;
            };
            if g.generation == self.group_generation {
                return;
            }
            let n_parts = st.topics.get(&self.topic).map_or(0, Vec::len);
            let idx = g.members.iter().position(|m| *m == self.member);
            let mine: Vec<Partition> = match idx {
                Some(i) => (0..n_parts)
                    .filter(|p| p % g.members.len() == i)
                    .map(|p| Partition(p as i32))
                    .collect(),
                None => Vec::new(),
            };
            (g.generation, mine)
        };
        self.group_generation = generation;
        let new: Vec<Partition> = mine
            .iter()
            .copied()
            .filter(|p| !self.positions.contains_key(p))
            .collect();
        self.positions.retain(|p, _| mine.contains(p));
        let starts = (self.positioner)(&new).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "positioner failed; reading new partitions from the start");
            vec![None; new.len()]
        });
        for (p, o) in new.iter().zip(starts) {
            self.positions.insert(*p, o.map_or(0, |o| o.0.max(0)));
        }
        if mine != self.assignment.partitions {
            self.assignment = Assignment {
                generation: self.assignment.generation + 1,
                partitions: mine,
            };
        }
    }

    fn take(&mut self, max: usize) -> Vec<LogMessage> {
        let st = self.inner.lock();
        let Some(parts) = st.topics.get(&self.topic) else {
            return Vec::new();
        };
        let owned: Vec<Partition> = self.positions.keys().copied().collect();
        let mut out = Vec::new();
        if owned.is_empty() {
            return out;
        }
        self.start = (self.start + 1) % owned.len();
        for i in 0..owned.len() {
            let p = owned[(self.start + i) % owned.len()];
            let Some(pos) = self.positions.get_mut(&p) else {
                continue;
            };
            let log = &parts[p.0 as usize];
            while (*pos as usize) < log.len() && out.len() < max {
                let m = &log[*pos as usize];
                out.push(LogMessage {
                    partition: p,
                    offset: Offset(*pos),
                    key: m.key.clone(),
                    payload: m.payload.clone(),
                    headers: m.headers.clone(),
                });
                *pos += 1;
            }
        }
        out
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        {
            let mut st = self.inner.lock();
            if let Some(g) = st.groups.get_mut(&(self.topic.clone(), self.group.clone())) {
                g.members.retain(|m| *m != self.member);
                g.generation += 1;
            }
        }
        self.inner.changed.notify_waiters();
    }
}

#[async_trait]
impl LogConsumer for MemoryConsumer {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LogMessage>, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let inner = Arc::clone(&self.inner);
            let notified = inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.rebalance();
            let got = self.take(max);
            if !got.is_empty() {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    fn assignment(&self) -> Assignment {
        self.assignment.clone()
    }

    async fn seek(&mut self, partition: Partition, offset: Offset) -> Result<(), LogError> {
        match self.positions.get_mut(&partition) {
            Some(pos) => {
                *pos = offset.0.max(0);
                Ok(())
            }
            None => Err(LogError::Config(format!(
                "partition {partition} is not assigned"
            ))),
        }
    }
}
