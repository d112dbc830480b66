//! Reading what a writer holds from Redis: a partition's whole state, the check before
//! each batch that the held copy is still the stored one, the records of users not held
//! yet, and the canonical dump of every key.
//!
//! A writer holds its copy of a partition tagged with the stored `next` offset and the
//! writer token (`tok`, new at every write) it was read or written with. Before each
//! batch it reads both again ([`RedisStore::check_held`]) and reads the whole state
//! ([`RedisStore::load_partition`]) whenever they differ from its copy: the first
//! write, another consumer wrote meanwhile, a failed write. A partition is read between
//! two reads of its token; a writer in between means reading again, so a loaded state is
//! always the state after one applied batch.
//!
//! The held user records (one per user of the partition, see
//! [`crate::user_record`]) are only ever written by whoever writes the partition, and are
//! dropped with the held partition: on one server a writer that changed a record also
//! changed `tok` in the same transaction, so a changed record is never used. On a
//! cluster a writer that failed after its user step may have moved records without
//! moving `tok`; those records are ahead of the held ones, and the forward-only write of
//! `cluster` keeps them.
//!
//! A writer also remembers the highest `next` it saw stored. When the store holds less
//! (the offset gone or lower, or the layout marker gone: a Redis restarted without its
//! data, a failover to an empty or lagging replica, a flush) it writes nothing and fails
//! with [`StoreError::StoreLost`]; the consumer then resets the partition and applies it
//! again from the start of the log.

use std::collections::{BTreeMap, HashMap};

use newsrec_core::UserId;
use redis::Value;
use redis::aio::ConnectionLike;

use super::codec::{from_value, number, page, parse_list, parse_session, parse_user};
use super::connection::Deployment;
use super::{CachedUser, Held, MAX_ATTEMPTS, RedisStore};
use crate::aggregate::BatchDelta;
use crate::checkpoint::{Offset, Partition};
use crate::error::StoreError;
use crate::partition::PartState;

/// The first read of a partition: its meta hash and the small keys that name the rest.
struct Head {
    meta: HashMap<String, String>,
    /// Bucket indexes (`bucket_index`).
    buckets: Vec<i64>,
    trending: HashMap<String, String>,
    sessions: HashMap<String, String>,
    /// Page → last pair time (`covisit_times`): the pages that have a "read next" list.
    covisit_times: HashMap<String, String>,
}

impl RedisStore {
    /// Reads a partition's whole state. The meta hash is read first and last; a writer in
    /// between (its token changed) means reading again.
    pub(super) async fn load_partition<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        partition: Partition,
    ) -> Result<Held, StoreError> {
        let meta_key = self.keys.meta(partition);
        for _ in 0..MAX_ATTEMPTS {
            let head = self.read_head(conn, partition).await?;
            let get = |f: &str| -> Result<Option<i64>, StoreError> {
                head.meta.get(f).map(|v| number(&meta_key, v)).transpose()
            };
            let mut st = PartState {
                next: get("next")?.map(Offset),
                wm: get("wm")?,
                t0: get("t0")?,
                events: get("events")?.unwrap_or(0).max(0) as u64,
                ..PartState::default()
            };
            let tok = head.meta.get("tok").cloned();

            let cv_pages: Vec<&String> = head.covisit_times.keys().collect();
            let mut pipe = redis::pipe();
            for b in &head.buckets {
                pipe.cmd("HGETALL").arg(self.keys.bucket(partition, *b));
            }
            for p in &cv_pages {
                pipe.cmd("GET").arg(self.keys.covisit(partition, p));
            }
            pipe.cmd("HGET").arg(&meta_key).arg("tok");
            let mut vals: Vec<Value> = pipe.query_async(conn).await?;
            let tok_after: Option<String> = from_value(vals.pop().unwrap_or(Value::Nil))?;
            if tok_after != tok {
                continue;
            }
            self.decode_state(&mut st, partition, &head, &cv_pages, vals)?;
            st.derive_windows(&self.cfg, &self.windows);
            return Ok(Held {
                tok,
                state: st,
                users: HashMap::new(),
            });
        }
        Err(StoreError::InvalidBatch(format!(
            "partition {partition} kept changing while it was read"
        )))
    }

    /// The first round trip of [`load_partition`](Self::load_partition).
    async fn read_head<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        partition: Partition,
    ) -> Result<Head, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(self.keys.meta(partition));
        pipe.cmd("ZRANGE")
            .arg(self.keys.bucket_index(partition))
            .arg(0)
            .arg(-1);
        pipe.cmd("HGETALL").arg(self.keys.trending(partition));
        pipe.cmd("HGETALL").arg(self.keys.sessions(partition));
        pipe.cmd("HGETALL").arg(self.keys.covisit_times(partition));
        type Read = (
            HashMap<String, String>,
            Vec<i64>,
            HashMap<String, String>,
            HashMap<String, String>,
            HashMap<String, String>,
        );
        let (meta, buckets, trending, sessions, covisit_times): Read =
            pipe.query_async(conn).await?;
        Ok(Head {
            meta,
            buckets,
            trending,
            sessions,
            covisit_times,
        })
    }

    /// Decodes the buckets and "read next" lists read after `head` (`vals`, in the order
    /// they were asked for), and `head`'s trending scores and sessions, into `st`.
    fn decode_state(
        &self,
        st: &mut PartState,
        partition: Partition,
        head: &Head,
        cv_pages: &[&String],
        vals: Vec<Value>,
    ) -> Result<(), StoreError> {
        let mut vals = vals.into_iter();
        for b in &head.buckets {
            let key = self.keys.bucket(partition, *b);
            let h: HashMap<String, String> = from_value(vals.next().unwrap_or(Value::Nil))?;
            let counts = st.buckets.entry(*b).or_default();
            for (p, c) in h {
                counts.insert(page(&key, &p)?, number(&key, &c)?);
            }
        }
        for p in cv_pages {
            let key = self.keys.covisit(partition, p);
            let v: Option<String> = from_value(vals.next().unwrap_or(Value::Nil))?;
            let next = match v {
                Some(v) => parse_list(&key, &v)?
                    .into_iter()
                    .map(|s| (s.page, s.score as u64))
                    .collect(),
                None => Default::default(),
            };
            let a = page(&key, p)?;
            st.covisit_last
                .insert(a.clone(), number(&key, &head.covisit_times[*p])?);
            st.covisit.insert(a, next);
        }
        let key = self.keys.trending(partition);
        for (p, v) in &head.trending {
            st.trending.insert(page(&key, p)?, number(&key, v)?);
        }
        let key = self.keys.sessions(partition);
        for (u, v) in &head.sessions {
            let (user, session) = parse_session(&key, u, v)?;
            st.sessions.insert(user, session);
        }
        Ok(())
    }

    /// Reads the partition's `next` and `tok`, and its whole state if this store's copy
    /// is not of them. `None`: the copy was (re)loaded, try again.
    pub(super) async fn check_held<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        held: &mut Option<Held>,
        partition: Partition,
        seen: Option<Offset>,
        watch: bool,
    ) -> Result<Option<Option<Offset>>, StoreError> {
        let meta = self.keys.meta(partition);
        let mut pipe = redis::pipe();
        if watch {
            pipe.cmd("WATCH").arg(&meta).ignore();
        }
        pipe.cmd("HMGET").arg(&meta).arg("next").arg("tok");
        let exists = redis::cmd("EXISTS").arg(self.keys.layout()).to_owned();
        let ((next, tok), marker): ((Option<Offset>, Option<String>), bool) = match &self.deployment
        {
            // On a cluster the marker has a slot of its own: not in the pipeline.
            Deployment::Cluster { .. } => {
                let (head,): ((Option<Offset>, Option<String>),) = pipe.query_async(conn).await?;
                (head, exists.query_async(conn).await?)
            }
            Deployment::Single { .. } => {
                pipe.add_command(exists);
                pipe.query_async(conn).await?
            }
        };
        // `next` only ever grows, and the marker is claimed at connect: either gone means
        // the data went, and writing now would claim offsets the store does not hold.
        if !marker || seen.is_some_and(|s| next.is_none_or(|n| n < s)) {
            if watch {
                let _ = redis::cmd("UNWATCH").exec_async(conn).await;
            }
            return Err(StoreError::StoreLost {
                partition,
                seen,
                stored: next,
                marker_missing: !marker,
            });
        }
        if held
            .as_ref()
            .is_some_and(|h| h.state.next == next && h.tok == tok)
        {
            return Ok(Some(next));
        }
        if watch {
            redis::cmd("UNWATCH").exec_async(conn).await?;
        }
        *held = Some(self.load_partition(conn, partition).await?);
        Ok(None)
    }

    /// Reads the records of `delta`'s users that `held` does not have (or whose key's
    /// TTL this store set so long ago that Redis may have expired it), in one round trip
    /// on one server, and keeps them.
    pub(super) async fn hold_missing_users(
        &self,
        held: &mut Held,
        delta: &BatchDelta,
        partition: Partition,
    ) -> Result<(), StoreError> {
        let ttl = self.user_ttl();
        let missing: Vec<&UserId> = delta
            .users
            .iter()
            .map(|d| &d.user)
            .filter(|u| {
                held.users.get(*u).is_none_or(|c| {
                    ttl.zip(c.ttl_set)
                        .is_some_and(|(ttl, at)| at.elapsed() >= ttl.mul_f64(0.9))
                })
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let values: Vec<Option<String>> = self
            .query_all(
                missing
                    .iter()
                    .map(|u| {
                        redis::cmd("HGET")
                            .arg(self.keys.user(u.as_str()))
                            .arg(partition)
                            .to_owned()
                    })
                    .collect(),
            )
            .await?;
        for (u, v) in missing.into_iter().zip(values) {
            let rec = v
                .map(|v| parse_user(&self.keys.user(u.as_str()), &v))
                .transpose()?;
            held.users
                .insert(u.clone(), CachedUser { rec, ttl_set: None });
        }
        Ok(())
    }

    /// Every key under the prefix (the prefix cut off) with its value as text: strings
    /// as they are, hashes and sets sorted, sorted sets in rank order with their scores.
    /// Left out: the partition writers' tokens (`tok`), which name who wrote last, not
    /// what. Key lifetimes (the wall-clock user TTL) are not part of it.
    pub(super) async fn dump_keys(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let prefix = self.keys.prefix();
        let mut keys = self.scan(&format!("{prefix}*")).await?;
        keys.sort();
        keys.dedup();
        let types: Vec<String> = self
            .query_all(
                keys.iter()
                    .map(|k| redis::cmd("TYPE").arg(k).to_owned())
                    .collect(),
            )
            .await?;
        let reads = keys
            .iter()
            .zip(&types)
            .map(|(k, t)| match t.as_str() {
                "hash" => redis::cmd("HGETALL").arg(k).to_owned(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(k)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .to_owned(),
                "set" => redis::cmd("SMEMBERS").arg(k).to_owned(),
                _ => redis::cmd("GET").arg(k).to_owned(),
            })
            .collect();
        let values: Vec<Value> = self.query_all(reads).await?;
        let mut out = BTreeMap::new();
        for ((key, t), v) in keys.iter().zip(&types).zip(values) {
            out.insert(
                key[prefix.len()..].to_owned(),
                format!("{t}: {}", dump_text(t, v)?),
            );
        }
        Ok(out)
    }
}

/// One key's value in the dump, by its type `t`.
fn dump_text(t: &str, v: Value) -> Result<String, StoreError> {
    Ok(match t {
        "hash" => {
            let mut h: Vec<(String, String)> = from_value::<HashMap<String, String>>(v)?
                .into_iter()
                .filter(|(f, _)| f != "tok")
                .collect();
            h.sort();
            h.iter()
                .map(|(f, v)| format!("{f}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
        "set" => {
            let mut m: Vec<String> = from_value(v)?;
            m.sort();
            m.join(" ")
        }
        "zset" => {
            let m: Vec<(String, String)> = from_value(v)?;
            m.iter()
                .map(|(m, s)| format!("{m}={s}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => from_value::<Option<String>>(v)?.unwrap_or_default(),
    })
}
