//! The commit on Redis Cluster, where one transaction cannot span slots (users have
//! slots of their own): users first, by a script per slot that writes a record only
//! over one of a lower offset (`lua/forward_users.lua`); then the idempotent writes on
//! other slots (first-seen times, the set of partitions); then the partition's changed
//! keys and new `next` and `tok` by one script on its slot that checks `next` and `tok`
//! first (`lua/guarded_writes.lua`).
//!
//! Why that applies a batch exactly once: a user record is a function of its
//! partition's events up to its offset, so the record further on is always right, and
//! the forward-only write never undoes a writer that is ahead (at an equal offset both
//! hold the same events; the position rule of [`crate::checkpoint`]). The guarded write
//! lands only over the `next` and `tok` the batch was positioned against, so the
//! partition's writes land once. A crash between the two leaves users ahead of the
//! offset: the consumer restarts from the stored offset, the records' offsets skip what
//! they hold, and the partition's writes land once. Derived state that is idempotent by
//! nature goes before the guarded write, so once that lands nothing of the batch can be
//! missing.

use std::collections::BTreeMap;

use redis::Value;

use super::writes::{PartitionWrites, UserWrite};
use super::{Attempt, Held, RedisStore};
use crate::aggregate::BatchDelta;
use crate::checkpoint::{Offset, Partition};
use crate::error::StoreError;
use crate::keys::slot;
use crate::values::{PartitionBatch, Pending};

/// The guarded write of a partition's keys (one slot).
pub(super) const GUARDED_WRITES: &str = include_str!("../lua/guarded_writes.lua");
/// The forward-only write of user records (one slot).
pub(super) const FORWARD_USERS: &str = include_str!("../lua/forward_users.lua");

/// Users per forward-only write script (one slot, cluster).
const USERS_PER_SCRIPT: usize = 500;

impl RedisStore {
    /// Loads both scripts into the script cache (again after a `NOSCRIPT`).
    pub(super) async fn load_scripts(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        for s in [&self.guarded_script, &self.forward_script] {
            s.prepare_invoke().load_async(&mut conn).await?;
        }
        Ok(())
    }

    /// One attempt on a cluster: users by writes that only ever move a record forward
    /// (one script per slot), then the partition's writes guarded by its offset and
    /// token.
    pub(super) async fn attempt_cluster(
        &self,
        held: &mut Option<Held>,
        seen: Option<Offset>,
        batch: &PartitionBatch,
    ) -> Result<Attempt, StoreError> {
        let p = batch.partition;
        let mut conn = self.conn();
        let Some(next) = self.check_held(&mut conn, held, p, seen, false).await? else {
            return Ok(Attempt::Again);
        };
        let b = match batch.pending(next)? {
            Pending::Done(outcome) => return Ok(Attempt::Done(outcome)),
            Pending::Apply(b) => b,
        };
        let Some(h) = held.as_mut() else {
            return Ok(Attempt::Again);
        };
        let delta = BatchDelta::build(b.as_ref(), &self.cfg);
        self.hold_missing_users(h, &delta, p).await?;
        let users = self.user_updates(b.as_ref(), &delta, h)?;
        self.forward_users(p, &users).await?;
        let expect = (h.state.next, h.tok.clone());
        let new_tok = self.next_token();
        let PartitionWrites {
            partition,
            other,
            outcome,
        } = self.partition_step(b.as_ref(), batch.events.len(), h, &delta, &new_tok)?;
        h.tok = Some(new_tok);
        // Idempotent writes on other slots go first: once the guarded write lands, a
        // crash must not be able to leave them out (a replay finds the batch applied).
        for c in other {
            let _: Value = c.query_async(&mut conn).await?;
        }
        let mut args: Vec<Vec<u8>> = vec![
            expect
                .0
                .map(|n| n.to_string())
                .unwrap_or_default()
                .into_bytes(),
            expect.1.unwrap_or_default().into_bytes(),
        ];
        for c in &partition {
            let parts: Vec<Vec<u8>> = c
                .args_iter()
                .filter_map(|a| match a {
                    redis::Arg::Simple(b) => Some(b.to_vec()),
                    _ => None,
                })
                .collect();
            args.push(parts.len().to_string().into_bytes());
            args.extend(parts);
        }
        let mut inv = self.guarded_script.prepare_invoke();
        inv.key(self.keys.meta(p));
        for a in &args {
            inv.arg(a.as_slice());
        }
        let written: i64 = inv.invoke_async(&mut conn).await?;
        if written == 0 {
            *held = None;
            return Ok(Attempt::Again);
        }
        self.trim_users(h);
        Ok(Attempt::Done(outcome))
    }

    /// Writes user records of `partition` on a cluster, grouped by slot: each only if it
    /// covers more of the partition than the stored one (a record is a function of the
    /// partition's events up to its offset, so the further one is always right). Each
    /// write sets the key's TTL.
    async fn forward_users(
        &self,
        partition: Partition,
        users: &[UserWrite],
    ) -> Result<(), StoreError> {
        let mut by_slot: BTreeMap<u16, Vec<&UserWrite>> = BTreeMap::new();
        for u in users {
            by_slot.entry(slot(&u.key)).or_default().push(u);
        }
        let mut cmds = Vec::new();
        for group in by_slot.into_values() {
            for chunk in group.chunks(USERS_PER_SCRIPT) {
                let mut c = redis::cmd("EVALSHA");
                c.arg(self.forward_script.get_hash()).arg(chunk.len());
                for u in chunk {
                    c.arg(&u.key);
                }
                c.arg(self.cfg.user_ttl_ms()).arg(partition);
                for u in chunk {
                    c.arg(u.offset).arg(&u.value);
                }
                cmds.push(c);
            }
        }
        let _: Vec<Value> = self.query_all(cmds).await?;
        Ok(())
    }
}
