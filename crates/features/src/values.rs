//! What goes into the store (partition batches) and what comes out (user state, scored
//! pages, snapshots).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use newsrec_core::{
    ClickEvent, PageId, ReadSet, Tier, UserAggregates, UserId, UserType, route_tier,
};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Offset, OffsetRange, Partition, Position};
use crate::error::StoreError;
use crate::window::Window;

/// A page with a score: a count, a decayed score or a co-visitation count, depending on
/// the list it comes from. Lists are sorted by score, highest first, ties by page id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPage {
    /// The article.
    pub page: PageId,
    /// Its score in this list.
    pub score: f64,
}

/// Everything the store knows about one user: what the API routes and ranks with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Who.
    pub user_id: UserId,
    /// The user type of their latest event (users sign in and out).
    pub user_type: UserType,
    /// Engagement sums, interaction count, first and last event time: the shared
    /// definition the semi-logged model is trained on.
    pub aggregates: UserAggregates,
    /// [`route_tier`] of the above.
    pub tier: Tier,
    /// Recently read pages, newest first, at most `history_len`.
    pub history: Vec<PageId>,
    /// Every page read (up to the store's `read_set_max`): never recommended again.
    pub read: ReadSet,
    /// The page of the latest event (the "read next" anchor).
    pub last_page: PageId,
    /// The `session_id` of the latest event, if it had one.
    pub last_session: Option<String>,
}

impl UserState {
    /// Interactions seen.
    pub fn interactions(&self) -> u64 {
        self.aggregates.interactions
    }

    /// Latest event time, epoch ms.
    pub fn last_ts(&self) -> i64 {
        self.aggregates.last_ts
    }

    /// Whether the latest read is recent enough, at watermark `watermark`, for a new read
    /// to continue its session (so "read next" from `last_page` applies).
    pub fn session_open(&self, watermark: i64, session_gap_ms: i64) -> bool {
        watermark - self.aggregates.last_ts <= session_gap_ms
    }

    /// Builds the state from its parts, deriving the tier.
    pub(crate) fn new(
        user_id: UserId,
        user_type: UserType,
        aggregates: UserAggregates,
        history: Vec<PageId>,
        read: ReadSet,
        last_page: PageId,
        last_session: Option<String>,
    ) -> Self {
        Self {
            tier: route_tier(Some(user_type), aggregates.interactions),
            user_id,
            user_type,
            aggregates,
            history,
            read,
            last_page,
            last_session,
        }
    }
}

/// One decoded event and the log offset it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEvent {
    /// Offset in its partition.
    pub offset: Offset,
    /// The event.
    pub event: ClickEvent,
}

/// A contiguous range of one partition's log, `[start, end)`, and the valid events in it
/// (dead-lettered messages take offsets but carry no event). The store applies it
/// atomically with `end` as the partition's next offset.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionBatch {
    /// Log partition.
    pub partition: Partition,
    /// First offset the batch covers.
    pub start: Offset,
    /// One past the last offset the batch covers.
    pub end: Offset,
    /// Valid events, in offset order, every offset in `[start, end)`.
    pub events: Vec<BatchEvent>,
}

impl PartitionBatch {
    /// Checks ordering and ranges.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.partition.0 < 0 || self.start.0 < 0 || self.end < self.start {
            return Err(StoreError::InvalidBatch(format!(
                "partition {} range [{}, {})",
                self.partition, self.start, self.end
            )));
        }
        let mut prev = Offset(self.start.0 - 1);
        for e in &self.events {
            if e.offset <= prev || e.offset >= self.end {
                return Err(StoreError::InvalidBatch(format!(
                    "offset {} out of order or outside [{}, {})",
                    e.offset, self.start, self.end
                )));
            }
            prev = e.offset;
        }
        Ok(())
    }

    /// A batch of `events` at consecutive offsets from `start` (no dead letters in
    /// between): how a replay, a benchmark or a test feeds a store directly.
    pub fn consecutive(
        partition: impl Into<Partition>,
        start: impl Into<Offset>,
        events: impl IntoIterator<Item = ClickEvent>,
    ) -> Self {
        let start = start.into();
        let events: Vec<BatchEvent> = events
            .into_iter()
            .zip(start.0..)
            .map(|(event, offset)| BatchEvent {
                offset: Offset(offset),
                event,
            })
            .collect();
        PartitionBatch {
            partition: partition.into(),
            start,
            end: Offset(start.0 + events.len() as i64),
            events,
        }
    }

    /// The offsets the batch covers, `[start, end)`.
    pub fn range(&self) -> OffsetRange {
        OffsetRange::new(self.start, self.end)
    }

    /// What of this batch is left to apply when the store's next offset for the
    /// partition is `stored`, by the position rule of [`crate::checkpoint`] (both stores
    /// decide this the same way, before touching any user): nothing (a duplicate), the
    /// whole batch (fresh), or its tail (an overlap); an error for a gap.
    pub(crate) fn pending(&self, stored: Option<Offset>) -> Result<Pending<'_>, StoreError> {
        Ok(match self.range().position(stored) {
            Position::Duplicate { stored } => Pending::Done(ApplyOutcome {
                applied: 0,
                duplicates: self.events.len(),
                next_offset: stored,
            }),
            Position::Gap { stored } => {
                return Err(StoreError::OffsetGap {
                    partition: self.partition,
                    stored,
                    start: self.start,
                });
            }
            Position::Overlap { stored } => Pending::Apply(Cow::Owned(self.tail_from(stored))),
            Position::Fresh => Pending::Apply(Cow::Borrowed(self)),
        })
    }

    /// The part of the batch from offset `from` on (what is left to apply when the store
    /// already holds the offsets before it).
    pub fn tail_from(&self, from: Offset) -> PartitionBatch {
        PartitionBatch {
            partition: self.partition,
            start: from.max(self.start),
            end: self.end,
            events: self
                .events
                .iter()
                .filter(|e| e.offset >= from)
                .cloned()
                .collect(),
        }
    }
}

/// What [`PartitionBatch::pending`] found.
pub(crate) enum Pending<'a> {
    /// The store holds the whole batch already.
    Done(ApplyOutcome),
    /// Apply this (the batch itself, or the tail the store does not hold yet).
    Apply(Cow<'a, PartitionBatch>),
}

/// What applying one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApplyOutcome {
    /// Events newly applied.
    pub applied: usize,
    /// Events skipped because the store already held them (a replay after a crash or a
    /// rebalance).
    pub duplicates: usize,
    /// The partition's next offset after the batch.
    pub next_offset: Offset,
}

/// The whole stored state of one partition, for checks and diagnostics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    /// Log partition.
    pub partition: Partition,
    /// Next offset to apply (`None`: nothing applied yet).
    pub next_offset: Option<Offset>,
    /// Latest event time applied.
    pub watermark: Option<i64>,
    /// Events applied.
    pub events: u64,
    /// Count per page in each window (pages with a zero count are absent).
    pub windows: BTreeMap<Window, BTreeMap<PageId, u64>>,
    /// Trending score per page, decayed to this partition's watermark.
    pub trending: BTreeMap<PageId, f64>,
    /// "Read next" counts: page → following page → count.
    pub covisit: BTreeMap<PageId, BTreeMap<PageId, u64>>,
}

/// Sorts by score (highest first, ties by page) and keeps `k`.
pub(crate) fn top_k(mut v: Vec<ScoredPage>, k: usize) -> Vec<ScoredPage> {
    v.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.page.cmp(&b.page))
    });
    v.truncate(k);
    v
}

/// Sums per-partition top lists (each scaled by its factor) and keeps the best `k`: how
/// readers merge the partitions' lists.
pub(crate) fn merge_tops(
    lists: impl Iterator<Item = (Vec<ScoredPage>, f64)>,
    k: usize,
) -> Vec<ScoredPage> {
    let mut sum: HashMap<PageId, f64> = HashMap::new();
    for (list, factor) in lists {
        for s in list {
            *sum.entry(s.page).or_default() += s.score * factor;
        }
    }
    top_k(
        sum.into_iter()
            .filter(|(_, score)| *score > 0.0)
            .map(|(page, score)| ScoredPage { page, score })
            .collect(),
        k,
    )
}
