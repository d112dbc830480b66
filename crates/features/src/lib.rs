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
//! - `redis_store`: [`RedisStore`], Redis or Redis Cluster, one atomic script per
//!   partition batch (scripts in `lua/`).
//! - `memory`: [`MemoryStore`], the same semantics in process, for the demo and unit
//!   tests.
//! - `keys`: every Redis key format ([`Keys`]), with prefix and hash tags.
//! - `window`: event-time window and decay arithmetic ([`Window`]).
//! - `reference`: the semantics computed naively from all events, the oracle tests
//!   compare stores with.
//! - `aggregate`: pre-aggregation of a batch into a partition delta and user deltas.
//! - `model`: batches in, states and scored lists out.
//! - `config`: [`StoreConfig`]; `error`: [`StoreError`].
//!
//! # Why a batch is applied exactly once
//! A [`PartitionBatch`] covers the offsets `[start, end)` of one partition. Applying it
//! starts with a read of the partition's stored next offset: a batch that starts after it
//! is refused (a gap: the consumer seeks back) before anything is written, one that ends
//! at or before it is skipped, and one that overlaps it is cut to the part after it. Then
//! two parts, in this order:
//! 1. **User deltas.** Each user's hash stores, per partition, the last offset applied
//!    to it (`o<n>`). A user delta covers the user's events in the batch, offsets
//!    `[min, max]`; the update script skips it when the stored offset is `>= max`,
//!    applies it and stores `max` when the stored offset is `< min`, and otherwise (a
//!    replay whose batch bounds differ from the first attempt) the delta is re-sent one
//!    event at a time, each checked the same way. A user's events are applied in offset
//!    order by whoever consumes the partition, so a stored offset `o` means every event of
//!    that user up to `o` is in; the check therefore applies each event once however often
//!    it is retried. Each user update is one script on the user's own slot, so it is
//!    atomic.
//! 2. **The partition delta** (window buckets, trending, "read next", open sessions) and
//!    the new next offset `end` are written by one script on the partition's slot,
//!    atomically. The script compares the stored next offset first: equal to `start` →
//!    apply; `>= end` → the whole batch is already in (skip); in between → only the tail
//!    from the stored offset is re-aggregated and applied; below `start` → error, the
//!    consumer seeks back.
//!
//! A crash between 1 and 2 leaves user deltas applied and the offset not advanced; the
//! consumer restarts from the stored offset (it seeks to what Redis holds, never to a
//! Kafka-committed offset), re-sends the users (skipped by their offsets) and applies the
//! partition delta once. A crash during either step loses nothing, as each script is
//! atomic. Two consumers briefly owning one partition during a rebalance are fenced
//! the same way: the offset check in step 2 and the per-user offsets make the loser's
//! writes no-ops. Derived state that is idempotent by nature (first-seen times: a
//! minimum) is written outside the scripts.
//!
//! The resulting counts are independent of how the stream was cut into batches, because
//! a window holds exactly the buckets inside it at the partition's watermark and a bucket
//! is only dropped once it is outside every window. Two bounded approximations depend on
//! batch bounds: per-list caps (`trending_max`, `covisit_max_next`) and the
//! "read next" TTL are enforced once per batch.
//!
//! # Reading
//! Per-partition lists (windows, trending, "read next") are merged by the reader: each
//! partition's top entries are fetched, then every candidate's exact total is read from
//! all partitions, in two pipelined round trips. A user is one hash, one round trip.

mod aggregate;
mod config;
mod error;
mod keys;
mod memory;
mod model;
mod partition;
mod redis_store;
pub mod reference;
mod store;
mod user_record;
mod window;

pub use config::StoreConfig;
pub use error::StoreError;
pub use keys::{Keys, slot};
pub use memory::MemoryStore;
pub use model::{
    ApplyOutcome, BatchEvent, PartitionBatch, PartitionSnapshot, ScoredPage, UserState,
};
pub use redis_store::{RedisStore, RedisTarget};
pub use store::FeatureStore;
pub use window::{
    REBASE_HALF_LIVES, TRENDING_MIN_SCORE, Window, bucket_of, decay_weight, in_window, lowest_out,
    trending_epoch,
};
