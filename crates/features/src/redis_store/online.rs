//! The attribution state on Redis: a partition's two hashes (`keys`: `online_state`,
//! `online_lists`) share the partition's slot, are read in one script call and written
//! by the guarded-writes script against the `next` field read, so a step lands whole
//! or not at all, on one server and on a cluster alike.

use std::collections::BTreeMap;

use super::RedisStore;
use crate::checkpoint::Partition;
use crate::error::StoreError;
use crate::online::codec::{decode, decode_counters, next_field};
use crate::online::{CounterRow, Counters, OnlineNext, OnlineState, OnlineWrite, Step};

/// Both hashes of a partition, read at one point in time.
pub(super) const READ_BOTH: &str =
    "return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}";

/// A flat `HGETALL` answer as a map.
fn pairs(v: Vec<String>) -> BTreeMap<String, String> {
    let mut it = v.into_iter();
    let mut out = BTreeMap::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.insert(k, v);
    }
    out
}

impl RedisStore {
    pub(super) async fn online_load(
        &self,
        partition: Partition,
    ) -> Result<OnlineState, StoreError> {
        let mut conn = self.conn();
        let (state, lists): (Vec<String>, Vec<String>) = self
            .online_read_script
            .key(self.keys.online_state(partition))
            .key(self.keys.online_lists(partition))
            .invoke_async(&mut conn)
            .await?;
        decode(&pairs(state), &pairs(lists))
    }

    pub(super) async fn online_commit(
        &self,
        partition: Partition,
        expected: OnlineNext,
        state: &OnlineState,
        step: &Step,
    ) -> Result<bool, StoreError> {
        let w = OnlineWrite::of(state, step)?;
        let (state_key, lists_key) = (
            self.keys.online_state(partition),
            self.keys.online_lists(partition),
        );
        let mut cmds: Vec<Vec<String>> = Vec::new();
        let mut hset = vec!["HSET".to_owned(), state_key.clone()];
        for (f, v) in w.state_fields {
            hset.extend([f, v]);
        }
        cmds.push(hset);
        if !w.lists_set.is_empty() {
            let mut c = vec!["HSET".to_owned(), lists_key.clone()];
            for (f, v) in w.lists_set {
                c.extend([f, v]);
            }
            cmds.push(c);
        }
        if !w.lists_removed.is_empty() {
            let mut c = vec!["HDEL".to_owned(), lists_key];
            c.extend(w.lists_removed);
            cmds.push(c);
        }
        let mut inv = self.guarded_script.prepare_invoke();
        inv.key(&state_key).arg(next_field(expected)).arg("");
        for c in &cmds {
            inv.arg(c.len());
            for a in c {
                inv.arg(a);
            }
        }
        let mut conn = self.conn();
        let written: i64 = inv.invoke_async(&mut conn).await?;
        Ok(written == 1)
    }

    pub(super) async fn online_sum(&self) -> Result<Vec<CounterRow>, StoreError> {
        let mut keys = self
            .scan(&format!("{}o:*:state", self.keys.prefix()))
            .await?;
        keys.sort_unstable();
        keys.dedup();
        let cmds = keys
            .iter()
            .map(|k| {
                let mut c = redis::cmd("HGETALL");
                c.arg(k);
                c
            })
            .collect();
        let states: Vec<Vec<String>> = self.query_all(cmds).await?;
        let mut sum: BTreeMap<_, Counters> = BTreeMap::new();
        for s in states {
            for (k, c) in decode_counters(&pairs(s))? {
                sum.entry(k).or_default().add(&c);
            }
        }
        Ok(sum.into_iter().collect())
    }
}
