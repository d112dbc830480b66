//! What a batch writes, worked out in process: the commands that store a partition's
//! new state (only what the step [changed](Changes), as plain values: Redis does no
//! arithmetic), the idempotent writes beside it (first-seen times, the set of
//! partitions), and the new user records. Both commits (`single`, `cluster`) send
//! these; they differ only in how the writes are guarded.
//!
//! The partition's new state comes from the shared step ([`crate::partition`]) applied
//! to the held state, which is the stored state after the last applied offset (see
//! `load`). The users' new records come from the shared user rule
//! ([`crate::user_record`]), applied to the held records.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use newsrec_core::{PageId, UserId};
use redis::Cmd;

use super::codec::{list_value, score_value, session_value, user_value};
use super::{CachedUser, Held, RedisStore};
use crate::aggregate::BatchDelta;
use crate::checkpoint::Partition;
use crate::error::StoreError;
use crate::partition::{Changes, PartState, PartitionApply, top_n};
use crate::user_record::{Caps, UserApply, UserRecord};
use crate::values::{ApplyOutcome, PartitionBatch};

/// Fields (or members, or keys) per write command: scripts may unpack at most a few
/// thousand values at once.
const PER_CMD: usize = 1_000;

/// A user record to write.
pub(super) struct UserWrite {
    /// The user's hash.
    pub key: String,
    /// The record's JSON.
    pub value: String,
    /// The record's offset.
    pub offset: i64,
    /// Whether the key's TTL is (re)set with it.
    pub set_ttl: bool,
}

/// What the partition step of a batch writes.
pub(super) struct PartitionWrites {
    /// The partition's keys (one slot), ending with the meta hash's new `next` and
    /// `tok`.
    pub partition: Vec<Cmd>,
    /// Idempotent writes on other slots: first-seen times, the set of partitions.
    pub other: Vec<Cmd>,
    /// What the batch did.
    pub outcome: ApplyOutcome,
}

/// `cmd <head…> item item …` in commands of at most [`PER_CMD`] items. An item may be a
/// tuple (a field and its value, a score and its member): it is written as its parts.
fn chunked_cmds<T: redis::ToRedisArgs>(
    out: &mut Vec<Cmd>,
    cmd: &str,
    head: &[&str],
    items: impl IntoIterator<Item = T>,
) {
    let mut c: Option<Cmd> = None;
    let mut n = 0;
    for item in items {
        c.get_or_insert_with(|| {
            let mut c = redis::cmd(cmd);
            c.arg(head);
            c
        })
        .arg(item);
        n += 1;
        if n == PER_CMD {
            out.extend(c.take());
            n = 0;
        }
    }
    out.extend(c);
}

impl RedisStore {
    /// The writes that store `st` after a step that made `ch`, ending with the meta hash.
    fn partition_writes(
        &self,
        partition: Partition,
        st: &PartState,
        ch: &Changes,
        tok: &str,
    ) -> Vec<Cmd> {
        let k = &self.keys;
        let mut out = Vec::new();
        if st.events > 0 {
            self.bucket_writes(&mut out, partition, st, ch);
            self.top_and_trending_writes(&mut out, partition, st, ch);
            let sess = k.sessions(partition);
            chunked_cmds(
                &mut out,
                "HSET",
                &[&sess],
                ch.sessions_set.iter().filter_map(|u| {
                    let s = st.sessions.get(u)?;
                    Some((u.as_str(), session_value(s)))
                }),
            );
            chunked_cmds(
                &mut out,
                "HDEL",
                &[&sess],
                ch.sessions_removed.iter().map(UserId::as_str),
            );
            self.covisit_writes(&mut out, partition, st, ch);
        }
        let mut meta = redis::cmd("HSET");
        meta.arg(k.meta(partition))
            .arg("tok")
            .arg(tok)
            .arg("events")
            .arg(st.events);
        if let Some(next) = st.next {
            meta.arg("next").arg(next.0);
        }
        if let (Some(wm), Some(t0)) = (st.wm, st.t0) {
            meta.arg("wm").arg(wm).arg("t0").arg(t0);
        }
        out.push(meta);
        out
    }

    /// Bucket counts, the bucket index, and the buckets that expired.
    fn bucket_writes(
        &self,
        out: &mut Vec<Cmd>,
        partition: Partition,
        st: &PartState,
        ch: &Changes,
    ) {
        let k = &self.keys;
        let mut by_bucket: BTreeMap<i64, Vec<&PageId>> = BTreeMap::new();
        for (b, p) in &ch.bucket_counts {
            by_bucket.entry(*b).or_default().push(p);
        }
        for (b, pages) in &by_bucket {
            let counts = &st.buckets[b];
            chunked_cmds(
                out,
                "HSET",
                &[&k.bucket(partition, *b)],
                pages.iter().map(|p| (p.as_str(), counts[*p])),
            );
        }
        chunked_cmds(
            out,
            "ZADD",
            &[&k.bucket_index(partition)],
            by_bucket.keys().map(|b| (*b, *b)),
        );
        chunked_cmds(
            out,
            "UNLINK",
            &[],
            ch.expired_buckets.iter().map(|b| k.bucket(partition, *b)),
        );
        chunked_cmds(
            out,
            "ZREM",
            &[&k.bucket_index(partition)],
            ch.expired_buckets.iter(),
        );
    }

    /// The windows' top lists, the trending scores (all of them after a rebase) and the
    /// trending top list.
    fn top_and_trending_writes(
        &self,
        out: &mut Vec<Cmd>,
        partition: Partition,
        st: &PartState,
        ch: &Changes,
    ) {
        let k = &self.keys;
        let n = self.cfg.top_list_len;
        for (i, w) in self.windows.iter().enumerate() {
            let key = k.window_top(partition, &w.label());
            out.push(
                redis::cmd("SET")
                    .arg(key)
                    .arg(list_value(&st.top_window(i, n), true))
                    .to_owned(),
            );
        }
        let tr = k.trending(partition);
        if ch.rebased {
            out.push(redis::cmd("UNLINK").arg(&tr).to_owned());
            chunked_cmds(
                out,
                "HSET",
                &[&tr],
                st.trending
                    .iter()
                    .map(|(p, v)| (p.as_str(), score_value(*v))),
            );
        } else {
            chunked_cmds(
                out,
                "HSET",
                &[&tr],
                ch.trending_set
                    .iter()
                    .map(|p| (p.as_str(), score_value(st.trending[p]))),
            );
            chunked_cmds(
                out,
                "HDEL",
                &[&tr],
                ch.trending_removed.iter().map(PageId::as_str),
            );
        }
        out.push(
            redis::cmd("SET")
                .arg(k.trending_top(partition))
                .arg(list_value(&st.top_trending(n), false))
                .to_owned(),
        );
    }

    /// "Read next" lists and their last pair times, set and dropped.
    fn covisit_writes(
        &self,
        out: &mut Vec<Cmd>,
        partition: Partition,
        st: &PartState,
        ch: &Changes,
    ) {
        let k = &self.keys;
        let times = k.covisit_times(partition);
        for a in &ch.covisit_set {
            if let Some(next) = st.covisit.get(a) {
                let list = top_n(next.iter().map(|(b, c)| (b, *c as f64)), next.len());
                out.push(
                    redis::cmd("SET")
                        .arg(k.covisit(partition, a.as_str()))
                        .arg(list_value(&list, true))
                        .to_owned(),
                );
            }
        }
        chunked_cmds(
            out,
            "HSET",
            &[&times],
            ch.covisit_set
                .iter()
                .filter_map(|a| Some((a.as_str(), *st.covisit_last.get(a)?))),
        );
        chunked_cmds(
            out,
            "UNLINK",
            &[],
            ch.covisit_removed
                .iter()
                .map(|a| k.covisit(partition, a.as_str())),
        );
        chunked_cmds(
            out,
            "HDEL",
            &[&times],
            ch.covisit_removed.iter().map(PageId::as_str),
        );
    }

    /// Applies the partition's part of a batch to `held`: the partition's writes (new
    /// offset and token last), the idempotent writes elsewhere, and the outcome.
    pub(super) fn partition_step(
        &self,
        batch: &PartitionBatch,
        total: usize,
        held: &mut Held,
        delta: &BatchDelta,
        tok: &str,
    ) -> Result<PartitionWrites, StoreError> {
        let p = batch.partition;
        let (res, ch) = held
            .state
            .apply(&delta.partition, &batch.events, &self.cfg, &self.windows);
        if res != PartitionApply::Applied {
            return Err(StoreError::InvalidBatch(format!(
                "partition {p} moved while applying ({res:?})"
            )));
        }
        let partition = self.partition_writes(p, &held.state, &ch, tok);
        let mut other = Vec::new();
        if !delta.first_seen.is_empty() {
            let seen = self.keys.seen();
            // `ZADD key LT …`: first-seen times only go down.
            chunked_cmds(
                &mut other,
                "ZADD",
                &[&seen, "LT"],
                delta.first_seen.iter().map(|(pg, ts)| (*ts, pg.as_str())),
            );
            other.push(
                redis::cmd("ZREMRANGEBYRANK")
                    .arg(&seen)
                    .arg(0)
                    .arg(-(self.cfg.max_items as i64 + 1))
                    .to_owned(),
            );
        }
        other.push(
            redis::cmd("SADD")
                .arg(self.keys.partitions())
                .arg(p)
                .to_owned(),
        );
        let outcome = ApplyOutcome {
            applied: batch.events.len(),
            duplicates: total - batch.events.len(),
            next_offset: batch.end,
        };
        Ok(PartitionWrites {
            partition,
            other,
            outcome,
        })
    }

    /// The wall-clock user TTL, when there is one.
    pub(super) fn user_ttl(&self) -> Option<Duration> {
        let ms = self.cfg.user_ttl_ms();
        (ms > 0).then(|| Duration::from_millis(ms as u64))
    }

    /// Applies each user's delta to the record `held` has (by the offset rules: skipped,
    /// whole, or per event). The users that changed, each with its new record (JSON), its
    /// offset, and whether its key's TTL is to be set: on the first write after a read
    /// and then once per tenth of the TTL (an idle user's state lives 90 to 100 % of
    /// it), which spares a command per user and batch.
    pub(super) fn user_updates(
        &self,
        batch: &PartitionBatch,
        delta: &BatchDelta,
        held: &mut Held,
    ) -> Result<Vec<UserWrite>, StoreError> {
        let caps = Caps::of(&self.cfg);
        let ttl = self.user_ttl();
        let now = Instant::now();
        let mut out = Vec::with_capacity(delta.users.len());
        for d in &delta.users {
            let cached = held.users.entry(d.user.clone()).or_insert(CachedUser {
                rec: None,
                ttl_set: None,
            });
            let rec = &mut cached.rec;
            let changed = match UserRecord::apply(rec, d, caps) {
                UserApply::Applied => true,
                UserApply::Duplicate => false,
                UserApply::Partial => self.apply_per_event(rec, batch, &d.user),
            };
            let Some(r) = rec.as_ref().filter(|_| changed) else {
                if cached.ttl_set.is_none() {
                    // Read, not written: its TTL is unknown, so it is not kept.
                    held.users.remove(&d.user);
                }
                continue;
            };
            let set_ttl = ttl.is_some_and(|ttl| {
                cached
                    .ttl_set
                    .is_none_or(|at| now.duration_since(at) >= ttl / 10)
            });
            if set_ttl || ttl.is_none() {
                cached.ttl_set = Some(now);
            }
            out.push(UserWrite {
                key: self.keys.user(d.user.as_str()),
                value: user_value(r)?,
                offset: r.offset.0,
                set_ttl,
            });
        }
        Ok(out)
    }

    /// Applies `user`'s events of `batch` one at a time (each checked against the
    /// record's offset); whether any was new.
    fn apply_per_event(
        &self,
        rec: &mut Option<UserRecord>,
        batch: &PartitionBatch,
        user: &UserId,
    ) -> bool {
        let mut changed = false;
        for single in BatchDelta::per_event(batch, user, &self.cfg) {
            changed |= UserRecord::apply(rec, &single, Caps::of(&self.cfg)) == UserApply::Applied;
        }
        changed
    }

    /// Forgets held user records past `user_cache` (they are read again when needed).
    pub(super) fn trim_users(&self, held: &mut Held) {
        if held.users.len() > self.cfg.user_cache {
            held.users.clear();
        }
    }
}
