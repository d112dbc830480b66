//! The feature store: live popularity windows, trending scores, item recency, per-user
//! features and session co-visitation ("read next"), kept from the click stream and read
//! by the API.
//!
//! Everything is computed in event time: each Kafka partition has a watermark (the
//! latest event time applied from it), windows slide and old buckets expire by it, so a
//! replay at any speed produces the same state as real time.
//!
//! # Layout
//! - `store`: the [`FeatureStore`] trait (read side for the API, write side for the
//!   consumer).
//! - `checkpoint`: [`Partition`], [`Offset`], [`OffsetRange`] and the one position rule
//!   ([`Position`]) every exactly-once step uses.
//! - `redis_store/`: [`RedisStore`], Redis or Redis Cluster, one transaction per
//!   partition batch:
//!   - `mod.rs`: the store, its per-partition writers, and the steps of one apply;
//!   - `connection`: [`RedisTarget`] and the `Deployment` (one server or a cluster);
//!   - `codec`: how stored values are encoded and decoded;
//!   - `load`: reading a partition's state, the held-copy check, users' records, the
//!     dump;
//!   - `writes`: the commands a batch writes;
//!   - `single`: the commit on one server (`WATCH`/`MULTI`/`EXEC`);
//!   - `cluster`: the commit on a cluster (the guard scripts of `lua/`);
//!   - `read`: the read side used by the API;
//!   - `online`: the attribution state (`online/`), read and written whole per step.
//! - `lua/`: the cluster's guard scripts (`forward_users.lua`, `guarded_writes.lua`).
//! - `partition`: a partition's state and the step that applies a batch to it;
//!   `user_record`: a user's record and the rule that applies a user delta.
//! - `memory`: [`MemoryStore`], the same semantics in process, for the demo and unit
//!   tests.
//! - `keys`: every Redis key format ([`Keys`]), with prefix and hash tags.
//! - `window`: event-time window and decay arithmetic ([`Window`]).
//! - `reference`: the semantics computed naively from all events, the oracle tests
//!   compare stores with.
//! - `aggregate`: pre-aggregation of a batch into a partition delta and user deltas.
//! - `values`: what goes in (batches) and what comes out (user state, scored pages,
//!   snapshots).
//! - `online/`: attribution of clicks to served lists and the online counters
//!   ([`online::OnlineState`]), and how they are stored (`online::codec`).
//! - `config`: [`StoreConfig`]; `error`: [`StoreError`].
//!
//! # Why a batch is applied exactly once
//! A [`PartitionBatch`] covers the offsets `[start, end)` of one partition; the store
//! keeps each partition's next offset with its state, and every step positions what it
//! applies against what is stored by one rule (`checkpoint`): a gap is refused before
//! anything is written, a duplicate skipped, an overlap cut to the part not stored yet.
//! The partition's state is worked out by one shared step (`partition`), users' records
//! by one shared rule (`user_record`), and the Redis store writes both with the new
//! offset so that they land together (`redis_store`: `load`, `single`, `cluster`). The
//! consumer always seeks to the offsets the store holds. The argument is written next to
//! the code it is about, in those modules' docs.
//!
//! # Why the state is a function of the stream alone
//! Whatever the batch bounds, crashes and replays, the store ends in the same state, bit
//! for bit (the conformance suite cuts random streams anywhere and compares whole
//! dumps; the crash tests compare the whole key space with a clean run): sums are
//! integers (`user_record::Sums`); what depends on order is decided per event, in offset
//! order, by the partition step (`partition`); a user's history and read set are lists
//! merged newest first; floats that are stored (trending scores) are written in their
//! shortest exact form and read back bit for bit (`redis_store::codec`).
//!
//! # A store that lost its data
//! A writer that finds the store holding less than it saw (a Redis restarted without its
//! data, a failover to a lagging replica, a flush) writes nothing and fails with
//! [`StoreError::StoreLost`]; the consumer then resets the partition and applies it again
//! from the start of the log (`redis_store::load`).
//!
//! # Reading
//! Readers merge the partitions' published lists and a user's records per partition in
//! one round trip (`redis_store::read`).

mod aggregate;
mod checkpoint;
mod config;
mod error;
mod keys;
mod memory;
pub mod online;
mod partition;
mod redis_store;
pub mod reference;
mod store;
mod user_record;
mod values;
mod window;

pub use checkpoint::{Offset, OffsetRange, Partition, Position};
pub use config::StoreConfig;
pub use error::StoreError;
pub use keys::{Keys, slot};
pub use memory::MemoryStore;
pub use redis_store::{RedisStore, RedisTarget};
pub use store::FeatureStore;
pub use values::{
    ApplyOutcome, BatchEvent, PartitionBatch, PartitionSnapshot, ScoredPage, UserState,
};
pub use window::{
    REBASE_HALF_LIVES, TRENDING_MIN_SCORE, Window, bucket_of, decay_weight, in_window, lowest_out,
    trending_epoch,
};
