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
//! write).
//!
//! A user has one record per partition (`user_record`; with producers keyed by user, as
//! the replay and the API publish, exactly one), written only by whoever writes that
//! partition, and storing the offset of the last event applied to it (`o`): it holds
//! the user's events of the partition up to `o` (since the record last expired, see
//! `user_ttl_days`). Users are updated by one
//! shared rule: a user delta covers the user's events in the batch, offsets `[min, max]`;
//! it is skipped when the record's offset is `>= max`, applied when it is `< min`, and
//! otherwise (a replay whose batch bounds differ from an earlier attempt) applied one
//! event at a time, each checked the same way. The writer keeps the records it read or
//! wrote with its copy of the partition, and drops them with it. On one server a record
//! another writer changed is never used, because that writer changed `tok` in the same
//! transaction. On a cluster a writer that failed after its user step may have moved
//! records without moving `tok`; those records are ahead of the held ones, and the
//! forward-only write below keeps them.
//!
//! How the result is written:
//! - **One Redis server:** `WATCH` the partition's meta hash, check `next` and `tok`, read
//!   the records of users not held yet, then one `MULTI` … `EXEC` with the changed user
//!   records, the partition's changed keys and the new `next` and `tok`. Anyone writing
//!   the partition since the `WATCH` makes the `EXEC` do nothing; otherwise it lands
//!   whole. Users and offsets move together.
//! - **Redis Cluster** (users have their own slots): users first, by a script per slot
//!   that writes a record only over one of a lower offset (never undoing a writer that
//!   is ahead; at an equal offset both hold the same events); then the partition's changed keys
//!   and new `next` and `tok` by one script on its slot that checks `next` and `tok`
//!   first. A crash between the two leaves users ahead of the offset: the consumer
//!   restarts from the stored offset, the records' offsets skip what they hold, and the
//!   partition's writes land once.
//!
//! The consumer always seeks to the offsets Redis holds, never to Kafka-committed ones.
//! Two consumers briefly owning one partition during a rebalance are fenced the same
//! way: whoever writes second finds `next`/`tok` changed, reads again, and finds the
//! batch already applied. Derived state that is idempotent by nature (first-seen times:
//! a minimum; the set of partitions) is written with the partition on one server, and
//! before it on a cluster.
//!
//! # Why the state is a function of the stream alone
//! Whatever the batch bounds, crashes and replays, the store ends in the same state, bit
//! for bit (the conformance suite cuts random streams anywhere and compares whole
//! dumps; the crash tests compare the whole key space with a clean run):
//! - sums are integers: window counts, and a user's engagement in milliseconds, basis
//!   points and millionths (`user_record::Sums`), so any grouping adds up the same;
//! - what depends on order is decided per event, in offset order, by the partition
//!   step: the trending epoch and its rebases, the trending trim, whether a read
//!   continues the reader's session (the previous read must be within the session gap
//!   of the partition's watermark at that event), whether a "read next" list has
//!   expired before a pair is added (`covisit_ttl`), and the list cap
//!   (`covisit_max_next`). What the watermark closes is also dropped at the end of a
//!   batch, which changes nothing later, since every later event treats it as gone;
//! - a user's history and read set are lists merged newest first, which gives the same
//!   list however the events were grouped;
//! - floats that are stored (trending scores) are written in their shortest exact form
//!   and read back bit for bit.
//!
//! # A store that lost its data
//! A writer remembers the highest offset it saw stored per partition. When the store
//! holds less (the partition's offset gone or lower, or the layout marker gone: a Redis
//! restarted without its data, a failover to an empty or lagging replica, a flush) it
//! writes nothing and fails with [`StoreError::StoreLost`]; the consumer then resets the
//! partition and applies it again from the start of the log.

//! # Reading
//! Per-partition lists are merged by the reader, in one pipelined round trip: each
//! partition publishes its window and trending top lists (`top_list_len` entries, so a
//! page outside a partition's list counts nothing from that partition) and its full
//! "read next" lists. A user is one hash, one round trip; several partitions' records
//! of one user are merged (sums over all; the record with the latest event first).

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
