//! The commit on one Redis server: `WATCH` the partition's meta hash, check `next` and
//! `tok`, read the records of users not held yet, then one `MULTI` … `EXEC` with the
//! changed user records, the partition's changed keys, the idempotent writes beside
//! them and the new `next` and `tok`.
//!
//! Why that applies a batch exactly once: the batch was positioned against the `next`
//! read under the `WATCH` (the position rule of [`crate::checkpoint`]); anyone writing
//! the partition since the `WATCH` changes the meta hash, which makes the `EXEC` do
//! nothing, and the attempt reads again. Otherwise the transaction lands whole: users
//! and offsets move together, so a crash leaves either all of the batch or none of it.

use redis::Value;
use redis::aio::MultiplexedConnection;
use tracing::debug;

use super::writes::PartitionWrites;
use super::{Attempt, Held, RedisStore};
use crate::aggregate::BatchDelta;
use crate::checkpoint::Offset;
use crate::error::StoreError;
use crate::values::{PartitionBatch, Pending};

/// A server reply that is an error, anywhere in a transaction's results.
fn first_error(v: &Value) -> Option<StoreError> {
    match v {
        Value::ServerError(e) => Some(StoreError::Redis(e.clone().into())),
        Value::Array(items) => items.iter().find_map(first_error),
        _ => None,
    }
}

impl RedisStore {
    /// One attempt on a single server: `WATCH` the partition's meta, read what this
    /// store does not hold yet, then write the users' records, the partition's changes
    /// and its new offset and token in one `MULTI`, which does nothing if anyone wrote
    /// the partition since the `WATCH`.
    pub(super) async fn attempt_single(
        &self,
        conn: &mut MultiplexedConnection,
        held: &mut Option<Held>,
        seen: Option<Offset>,
        batch: &PartitionBatch,
    ) -> Result<Attempt, StoreError> {
        let p = batch.partition;
        let Some(next) = self.check_held(conn, held, p, seen, true).await? else {
            return Ok(Attempt::Again);
        };
        let pending = match batch.pending(next) {
            Ok(p) => p,
            Err(e) => {
                // A gap: nothing was read or changed, the state stays good.
                let _ = redis::cmd("UNWATCH").exec_async(conn).await;
                return Err(e);
            }
        };
        let (b, Some(h)) = (pending, held.as_mut()) else {
            redis::cmd("UNWATCH").exec_async(conn).await?;
            return Ok(Attempt::Again);
        };
        let b = match b {
            Pending::Done(outcome) => {
                redis::cmd("UNWATCH").exec_async(conn).await?;
                return Ok(Attempt::Done(outcome));
            }
            Pending::Apply(b) => b,
        };
        let delta = BatchDelta::build(b.as_ref(), &self.cfg);
        // Read on the shared connection: a writer that changes them changes the token
        // too, which the `WATCH` above catches.
        self.hold_missing_users(h, &delta, p).await?;
        let new_tok = self.next_token();
        let stepped = self.user_updates(b.as_ref(), &delta, h).and_then(|users| {
            let writes =
                self.partition_step(b.as_ref(), batch.events.len(), h, &delta, &new_tok)?;
            Ok((users, writes))
        });
        let (
            users,
            PartitionWrites {
                partition,
                other,
                outcome,
            },
        ) = match stepped {
            Ok(x) => x,
            Err(e) => {
                *held = None;
                let _ = redis::cmd("UNWATCH").exec_async(conn).await;
                return Err(e);
            }
        };
        h.tok = Some(new_tok);
        let ttl = self.cfg.user_ttl_ms();
        let mut tx = redis::pipe();
        tx.atomic();
        for u in &users {
            tx.cmd("HSET").arg(&u.key).arg(p).arg(&u.value).ignore();
            if u.set_ttl {
                tx.cmd("PEXPIRE").arg(&u.key).arg(ttl).ignore();
            }
        }
        for c in partition.into_iter().chain(other) {
            tx.add_command(c);
        }
        let reply: Value = tx.query_async(conn).await?;
        if matches!(reply, Value::Nil) {
            debug!(
                partition = %p,
                "the partition changed meanwhile; reading again"
            );
            *held = None;
            return Ok(Attempt::Again);
        }
        if let Some(e) = first_error(&reply) {
            *held = None;
            return Err(e);
        }
        self.trim_users(h);
        Ok(Attempt::Done(outcome))
    }
}
