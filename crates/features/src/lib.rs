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
//! - `redis_store`: [`RedisStore`], Redis or Redis Cluster, one transaction per
//!   partition batch (the cluster's guard scripts in `lua/`).
//! - `partition`: a partition's state and the step that applies a batch to it;
//!   `user_record`: a user's record and the rule that applies a user delta.
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
//! at or before it is skipped, and one that overlaps it is cut to the part after it.
//!
//! The partition's state (buckets, windows, trending, open sessions, "read next") is
//! worked out in process by one shared step (`partition`), from the state as stored
//! after the last applied offset. The in-process store holds it under one lock. The
//! Redis store holds a copy per partition it writes, tagged with the stored `next`
//! offset and the writer token (`tok`, new at every write) it was read or written with;
//! before each batch it reads both again, and reads the whole state from Redis whenever
//! they differ from its copy (first write, another consumer wrote meanwhile, a failed
//! write). Users are updated by one shared rule (`user_record`): each user record stores,
//! per partition, the offset of the last event applied to it (`o`). A user delta covers
//! the user's events in the batch, offsets `[min, max]`; it is skipped when the stored
//! offset is `>= max`, applied when it is `< min`, and otherwise (a replay whose batch
//! bounds differ from the first attempt) applied one event at a time, each checked the
//! same way. A user's events are applied in offset order by whoever consumes the
//! partition, so a stored offset `o` means every event of that user up to `o` is in.
//!
//! How the result is written, in two steps, users first:
//! 1. **User records.** On one Redis server, in transactions of a few dozen users: `WATCH`
//!    their records, read them, work out the new values, `MULTI` … `EXEC`; on Redis
//!    Cluster (users have their own slots), by a compare-and-set script per slot that
//!    writes a record only if it still holds what was read. Either way a record another
//!    writer changed meanwhile is read again and reworked, so no update is lost, and
//!    the offsets in the record make the step idempotent.
//! 2. **The partition.** Its changed keys and the new `next` and `tok`, all on the
//!    partition's slot, written only if `next` and `tok` are still what the state was
//!    read with: on one server one `MULTI` … `EXEC` under `WATCH` of the meta hash, on a
//!    cluster one script that checks them first. It lands whole or not at all.
//!
//! A crash between the two steps leaves the users applied and the offset not advanced:
//! the consumer restarts from the stored offset, the users' offsets skip what they hold,
//! and the partition's writes land once. A crash during either step leaves each
//! transaction either whole or absent.
//!
//! The consumer always seeks to the offsets Redis holds, never to Kafka-committed ones.
//! Two consumers briefly owning one partition during a rebalance are fenced the same
//! way: whoever writes second finds `next`/`tok` (or a user record) changed, reads
//! again, and finds the batch already applied. Derived state that is idempotent by
//! nature (first-seen times: a minimum; the set of partitions) is written with the
//! partition on one server, and before it on a cluster.
//!
//! The resulting counts are independent of how the stream was cut into batches, because
//! a window holds exactly the buckets inside it at the partition's watermark and a bucket
//! is only dropped once it is outside every window. Two bounded approximations depend on
//! batch bounds: per-list caps (`trending_max`, `covisit_max_next`) and the
//! "read next" TTL are enforced once per batch.

//! # Reading
//! Per-partition lists are merged by the reader, in one pipelined round trip: each
//! partition publishes its window and trending top lists (`top_list_len` entries, so a
//! page outside a partition's list counts nothing from that partition) and its full
//! "read next" lists. A user is one string, one round trip.

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
