//! Pre-aggregation of a partition batch: what is order-free about it, computed once.
//!
//! A batch splits into a per-partition delta (offsets, bucket counts: integer sums, so
//! any grouping of events gives the same counts) and one delta per user, made
//! idempotent by the offset range it covers (integer sums and ordered lists that merge
//! the same however the user's events were grouped). What depends on the order of
//! events (trending, sessions, "read next") is decided per event by the partition step.

use rustc_hash::FxHashMap;

use newsrec_core::{PageId, UserId, UserType, page_hash};

use crate::checkpoint::{Offset, OffsetRange};
use crate::config::StoreConfig;
use crate::user_record::Sums;
use crate::values::{BatchEvent, PartitionBatch};
use crate::window::bucket_of;

/// One user's part of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserDelta {
    pub user: UserId,
    /// Lowest and highest offset of the user's events in the batch.
    pub min_offset: Offset,
    pub max_offset: Offset,
    pub sums: Sums,
    /// Type, page and session of the user's last event (by offset).
    pub user_type: UserType,
    pub last_page: PageId,
    pub last_session: String,
    /// Pages read, newest first, at most `history_len`.
    pub history: Vec<PageId>,
    /// Hashes of every page read, newest first (the read set takes each once).
    pub reads: Vec<u32>,
}

impl UserDelta {
    /// The offsets the delta covers, `[min_offset, max_offset]` (the user's events are
    /// a sparse part of them).
    pub fn offsets(&self) -> OffsetRange {
        OffsetRange::inclusive(self.min_offset, self.max_offset)
    }
}

/// The partition's part of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartitionDelta {
    /// Offsets covered.
    pub range: OffsetRange,
    /// Events.
    pub events: u64,
    /// Latest event time (`-1` without events).
    pub max_ts: i64,
    /// Reads per bucket and page.
    pub bucket_counts: Vec<BucketCount>,
}

/// Reads of one page in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketCount {
    /// The bucket index ([`bucket_of`]).
    pub bucket: i64,
    pub page: PageId,
    pub count: u64,
}

/// Both parts of a batch, plus first-seen times.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchDelta {
    pub partition: PartitionDelta,
    pub users: Vec<UserDelta>,
    /// Earliest event time per page.
    pub first_seen: Vec<(PageId, i64)>,
}

/// Whether two consecutive reads of a user are one session.
pub(crate) fn same_session(ts_a: i64, sid_a: &str, ts_b: i64, sid_b: &str, gap_ms: i64) -> bool {
    sid_a == sid_b && (ts_b - ts_a).abs() <= gap_ms
}

impl BatchDelta {
    /// Aggregates `batch` (which must be valid).
    pub fn build(batch: &PartitionBatch, cfg: &StoreConfig) -> Self {
        let bucket_ms = cfg.bucket_ms();
        let mx = batch.events.iter().map(|e| e.event.ts).max().unwrap_or(-1);

        // Unordered maps with a fast hash: every value is an integer sum or a minimum.
        let mut buckets: FxHashMap<(i64, PageId), u64> = FxHashMap::default();
        let mut first_seen: FxHashMap<PageId, i64> = FxHashMap::default();
        // Events per user, offset order preserved; users in order of first appearance.
        let mut order: Vec<UserId> = Vec::new();
        let mut per_user: FxHashMap<UserId, Vec<&BatchEvent>> = FxHashMap::default();
        for be in &batch.events {
            let e = &be.event;
            *buckets
                .entry((bucket_of(e.ts, bucket_ms), e.page.clone()))
                .or_default() += 1;
            first_seen
                .entry(e.page.clone())
                .and_modify(|t| *t = (*t).min(e.ts))
                .or_insert(e.ts);
            per_user
                .entry(e.user_id.clone())
                .or_insert_with(|| {
                    order.push(e.user_id.clone());
                    Vec::new()
                })
                .push(be);
        }

        let mut users = Vec::with_capacity(order.len());
        for user in order {
            let Some(evs) = per_user.remove(&user) else {
                continue;
            };
            let (Some(first), Some(last)) = (evs.first(), evs.last()) else {
                continue;
            };
            let mut sums = Sums::default();
            for be in &evs {
                sums.add(&be.event.engagement(), be.event.ts);
            }
            let l = &last.event;
            users.push(UserDelta {
                user,
                min_offset: first.offset,
                max_offset: last.offset,
                sums,
                user_type: l.user_type,
                last_page: l.page.clone(),
                last_session: sid(&l.session_id).to_owned(),
                history: evs
                    .iter()
                    .rev()
                    .take(cfg.history_len)
                    .map(|e| e.event.page.clone())
                    .collect(),
                reads: evs.iter().rev().map(|e| page_hash(&e.event.page)).collect(),
            });
        }

        BatchDelta {
            partition: PartitionDelta {
                range: batch.range(),
                events: batch.events.len() as u64,
                max_ts: mx,
                bucket_counts: buckets
                    .into_iter()
                    .map(|((bucket, page), count)| BucketCount {
                        bucket,
                        page,
                        count,
                    })
                    .collect(),
            },
            users,
            first_seen: first_seen.into_iter().collect(),
        }
    }

    /// One delta per event of `user` in `batch`: the fallback when the store already
    /// holds part of this user's events (a replay after a crash with other batch bounds).
    pub fn per_event(batch: &PartitionBatch, user: &UserId, cfg: &StoreConfig) -> Vec<UserDelta> {
        batch
            .events
            .iter()
            .filter(|e| &e.event.user_id == user)
            .flat_map(|be| {
                let single = PartitionBatch {
                    partition: batch.partition,
                    start: be.offset,
                    end: be.offset.next(),
                    events: vec![be.clone()],
                };
                BatchDelta::build(&single, cfg).users
            })
            .collect()
    }
}

/// A missing session id is the empty string (an empty id means none too).
pub(crate) fn sid(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// Merges `newer` (newest first) in front of `older` (newest first), keeping `cap`.
pub(crate) fn merge_history(newer: &[PageId], older: &[PageId], cap: usize) -> Vec<PageId> {
    newer.iter().chain(older).take(cap).cloned().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::checkpoint::Partition;
    use newsrec_core::{ClickEvent, EventId};

    fn ev(off: i64, user: &str, page: &str, ts: i64, sid: Option<&str>) -> BatchEvent {
        BatchEvent {
            offset: Offset(off),
            event: ClickEvent {
                event_id: EventId::parse(&format!("e{off}")).unwrap(),
                user_id: UserId::parse(user).unwrap(),
                user_type: UserType::NonLogged,
                page: PageId::parse(page).unwrap(),
                ts,
                session_id: sid.map(str::to_owned),
                clicks: Some(1),
                time_on_page_ms: Some(60_000),
                scroll_pct: Some(50.0),
                page_visits: Some(1),
                rec_id: None,
            },
        }
    }

    #[test]
    fn users_keep_offset_order() {
        let min = 60_000;
        let batch = PartitionBatch {
            partition: Partition(0),
            start: Offset(0),
            end: Offset(6),
            events: vec![
                ev(0, "u", "a", 0, None),
                ev(1, "v", "a", min, None),
                ev(2, "u", "b", 10 * min, None),
                ev(3, "u", "c", 50 * min, None),
                ev(4, "v", "b", 2 * min, Some("s1")),
                ev(5, "u", "c", 51 * min, None),
            ],
        };
        let d = BatchDelta::build(&batch, &StoreConfig::default());
        let u = &d.users[0];
        assert_eq!(u.user.as_str(), "u");
        assert_eq!(
            (u.min_offset, u.max_offset, u.sums.interactions),
            (Offset(0), Offset(5), 4)
        );
        let hist: Vec<_> = u.history.iter().map(|p| p.as_str()).collect();
        assert_eq!(hist, vec!["c", "c", "b", "a"]);
        assert_eq!(u.reads.len(), 4);
        assert_eq!(d.users[1].last_session, "s1");
        assert_eq!(d.first_seen.len(), 3);
        let counted: u64 = d.partition.bucket_counts.iter().map(|b| b.count).sum();
        assert_eq!(counted, 6);
    }
}
