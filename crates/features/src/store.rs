//! The feature store interface, implemented by [`crate::RedisStore`] and
//! [`crate::MemoryStore`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use newsrec_core::{PageId, UserId};

use crate::checkpoint::{Offset, Partition};
use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::online::{CounterRow, OnlineNext, OnlineState, Step};
use crate::values::{ApplyOutcome, PartitionBatch, PartitionSnapshot, ScoredPage, UserState};
use crate::window::Window;

/// Live features: the consumer writes them ([`apply`](FeatureStore::apply)), the API
/// reads them. Object safe: the API holds an `Arc<dyn FeatureStore>`.
#[async_trait]
pub trait FeatureStore: Send + Sync {
    /// The settings the store was built with (windows, session gap, …).
    fn config(&self) -> &StoreConfig;

    // ---- read side (the API) ----

    /// One user's state, `None` when never seen. One round trip.
    async fn user(&self, user: &UserId) -> Result<Option<UserState>, StoreError>;

    /// The `k` most read pages in `window`, counts summed over partitions.
    async fn popular(&self, window: Window, k: usize) -> Result<Vec<ScoredPage>, StoreError>;

    /// The `k` pages with the highest decayed read score, at the global watermark.
    async fn trending(&self, k: usize) -> Result<Vec<ScoredPage>, StoreError>;

    /// The `k` pages most often read right after `page` in one session.
    async fn read_next(&self, page: &PageId, k: usize) -> Result<Vec<ScoredPage>, StoreError>;

    /// Each page's recency time (epoch ms): its `issued` time when known, else when it
    /// was first read; `None` for pages never seen. Same order as `pages`.
    async fn recency(&self, pages: &[PageId]) -> Result<Vec<Option<i64>>, StoreError>;

    /// The latest event time applied in any partition (`None` before the first event).
    async fn watermark(&self) -> Result<Option<i64>, StoreError>;

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    // ---- write side (the consumer) ----

    /// Applies one partition batch exactly once: atomically with its end offset, skipping
    /// whatever part the store already holds. Fails with [`StoreError::OffsetGap`] when the
    /// batch starts after the stored offset.
    async fn apply(&self, batch: &PartitionBatch) -> Result<ApplyOutcome, StoreError>;

    /// The next offset to consume for each partition (`None`: nothing applied yet, start
    /// from the beginning of the log). Same order as `partitions`.
    async fn next_offsets(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<Option<Offset>>, StoreError>;

    /// [`next_offsets`](FeatureStore::next_offsets) without async: for the log client's
    /// rebalance callback, which is synchronous and must position newly assigned
    /// partitions before their first fetch. Blocks the calling thread for one round trip.
    fn next_offsets_blocking(
        &self,
        partitions: &[Partition],
    ) -> Result<Vec<Option<Offset>>, StoreError>;

    /// Records articles' publication times (from the item catalogue).
    async fn set_issued(&self, items: &[(PageId, i64)]) -> Result<(), StoreError>;

    /// The partitions that have state.
    async fn partitions(&self) -> Result<Vec<Partition>, StoreError>;

    /// Everything stored for one partition.
    async fn snapshot(&self, partition: Partition) -> Result<PartitionSnapshot, StoreError>;

    /// Everything the store holds, as `key → value` text in one canonical form, for
    /// whole-state checks: two stores of one kind that applied the same stream, however
    /// it was cut into batches, crashed or replayed, hold equal dumps. Writer
    /// bookkeeping that says who wrote, not what (tokens, key lifetimes), is left out.
    async fn dump(&self) -> Result<BTreeMap<String, String>, StoreError>;

    /// Forgets everything about `partition`, held and stored (its keys; user records
    /// stay, and skip what they already hold by their offsets), and claims the layout
    /// again if its marker is gone: what a consumer does after
    /// [`StoreError::StoreLost`], before it applies the partition again from the start
    /// of the log.
    async fn reset_partition(&self, partition: Partition) -> Result<(), StoreError>;

    // ---- online quality (the attribution consumer, and the API's figures) ----

    /// A partition's attribution state (empty when none is stored).
    async fn load_online(&self, partition: Partition) -> Result<OnlineState, StoreError>;

    /// Stores `state`, the outcome of `step` on the state loaded at the `expected` next
    /// offsets, in one write, only if the stored offsets are still `expected`. `false`: they moved (another writer, or a store that lost its data)
    /// and nothing was written; the caller loads the state again.
    async fn commit_online(
        &self,
        partition: Partition,
        expected: OnlineNext,
        state: &OnlineState,
        step: &Step,
    ) -> Result<bool, StoreError>;

    /// Every partition's online counters, summed per key.
    async fn online_counters(&self) -> Result<Vec<CounterRow>, StoreError>;

    /// Forgets what this store holds in memory for writing partitions other than `owned`
    /// (a consumer calls it after a rebalance, so state of partitions it no longer owns
    /// does not stay in its memory). Nothing stored changes.
    fn release_others(&self, owned: &[Partition]) {
        let _ = owned;
    }
}
