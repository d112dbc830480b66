//! Positions in the log: typed partitions and offsets, offset ranges, and the one
//! position rule that says how a range of offsets relates to what the store holds.
//!
//! Every step that makes applying something idempotent asks the same question: the
//! store holds a prefix of a log (up to, not including, an offset `stored`); here is a
//! range `[start, end)` of it; what of the range is new? The answer is a [`Position`]:
//!
//! | stored            | position                           | what is new       |
//! |-------------------|------------------------------------|-------------------|
//! | none, or `start`  | [`Fresh`](Position::Fresh)         | all of it         |
//! | `>= end`          | [`Duplicate`](Position::Duplicate) | nothing           |
//! | in `(start, end)` | [`Overlap`](Position::Overlap)     | `[stored, end)`   |
//! | `< start`         | [`Gap`](Position::Gap)             | unknown: refused  |
//!
//! It is asked in three places, with one answer each:
//! - a partition batch against the partition's stored `next` offset
//!   ([`PartitionBatch::pending`](crate::PartitionBatch), before anything is read or
//!   written): a gap is refused (the consumer seeks back), a duplicate skipped, an
//!   overlap cut to its tail;
//! - the partition step against the state it is applied to (`partition`): anything but
//!   fresh means the state moved under the caller;
//! - a user delta (the user's events of one batch, offsets `[min, max]`) against the
//!   user's record, which holds the user's events up to its offset `o` (so `stored` is
//!   `o + 1`, see `user_record`): a duplicate is skipped, fresh and gap are applied (a
//!   user's events are a sparse part of the partition, so the offsets between are other
//!   users'), and an overlap (a replay whose batch bounds differ from an earlier
//!   attempt) is applied one event at a time, each by the same rule.
//!
//! The Redis Cluster scripts state the same rule where they check offsets
//! (`lua/forward_users.lua`, `lua/guarded_writes.lua`).
//!
//! [`Partition`] and [`Offset`] serialize as the bare number, so stored values that hold
//! them are the same bytes as before they were typed.

use serde::{Deserialize, Serialize};

/// A log partition.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Partition(pub i32);

/// The bare number, as in logs and error messages before partitions were typed.
impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The bare number, like [`Partition`]'s.
impl std::fmt::Debug for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Redis takes both as their bare number (key names, script arguments).
impl redis::ToRedisArgs for Partition {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        self.0.write_redis_args(out);
    }
}

impl redis::ToRedisArgs for Offset {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        self.0.write_redis_args(out);
    }
}

impl redis::FromRedisValue for Partition {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        i32::from_redis_value(v).map(Partition)
    }
}

impl redis::FromRedisValue for Offset {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        i64::from_redis_value(v).map(Offset)
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i32> for Partition {
    fn from(p: i32) -> Self {
        Partition(p)
    }
}

/// An offset in one partition's log.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Offset(pub i64);

impl Offset {
    /// The offset after this one.
    pub fn next(self) -> Offset {
        Offset(self.0.saturating_add(1))
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for Offset {
    fn from(o: i64) -> Self {
        Offset(o)
    }
}

impl From<Offset> for i64 {
    fn from(o: Offset) -> Self {
        o.0
    }
}

/// The offsets `[start, end)` of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    /// The first offset in the range.
    pub start: Offset,
    /// One past the last offset in the range.
    pub end: Offset,
}

impl OffsetRange {
    /// `[start, end)`.
    pub fn new(start: impl Into<Offset>, end: impl Into<Offset>) -> Self {
        OffsetRange {
            start: start.into(),
            end: end.into(),
        }
    }

    /// `[first, last]`: the range of events at `first` up to and including `last`.
    pub fn inclusive(first: Offset, last: Offset) -> Self {
        OffsetRange {
            start: first,
            end: last.next(),
        }
    }

    /// The position rule: how this range relates to a store that holds the log up to,
    /// not including, `stored` (`None`: nothing yet).
    pub fn position(&self, stored: Option<Offset>) -> Position {
        match stored {
            None => Position::Fresh,
            Some(s) if s >= self.end => Position::Duplicate { stored: s },
            Some(s) if s < self.start => Position::Gap { stored: s },
            Some(s) if s > self.start => Position::Overlap { stored: s },
            Some(_) => Position::Fresh,
        }
    }
}

impl std::fmt::Display for OffsetRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

/// Where a range of offsets stands against what is stored ([`OffsetRange::position`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Nothing of it is stored, and it continues what is: all of it is new.
    Fresh,
    /// All of it is stored already.
    Duplicate {
        /// Where the stored log ends.
        stored: Offset,
    },
    /// Its head is stored: `[stored, end)` is new.
    Overlap {
        /// Where the stored log ends, inside the range.
        stored: Offset,
    },
    /// The stored log ends before the range starts: the offsets between are missing.
    Gap {
        /// Where the stored log ends.
        stored: Offset,
    },
}

impl Position {
    /// Where the stored log ends (`None` for [`Position::Fresh`]).
    pub fn stored(self) -> Option<Offset> {
        match self {
            Position::Fresh => None,
            Position::Duplicate { stored }
            | Position::Overlap { stored }
            | Position::Gap { stored } => Some(stored),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_rule() {
        let r = OffsetRange::new(10, 20);
        let at = |s: i64| r.position(Some(Offset(s)));
        assert_eq!(r.position(None), Position::Fresh);
        assert_eq!(at(10), Position::Fresh);
        assert_eq!(at(20), Position::Duplicate { stored: Offset(20) });
        assert_eq!(at(25), Position::Duplicate { stored: Offset(25) });
        assert_eq!(at(15), Position::Overlap { stored: Offset(15) });
        assert_eq!(at(9), Position::Gap { stored: Offset(9) });
        // An empty range is a duplicate once the store reached it.
        let empty = OffsetRange::new(5, 5);
        assert_eq!(
            empty.position(Some(Offset(5))),
            Position::Duplicate { stored: Offset(5) }
        );
        assert_eq!(
            empty.position(Some(Offset(4))),
            Position::Gap { stored: Offset(4) }
        );
        // A user record at offset 14 holds everything up to 14: events 15..=17 are
        // fresh, 14..=17 overlap, 12..=14 are in.
        let held = Some(Offset(14).next());
        assert_eq!(
            OffsetRange::inclusive(Offset(15), Offset(17)).position(held),
            Position::Fresh
        );
        assert_eq!(
            OffsetRange::inclusive(Offset(14), Offset(17)).position(held),
            Position::Overlap { stored: Offset(15) }
        );
        assert_eq!(
            OffsetRange::inclusive(Offset(12), Offset(14)).position(held),
            Position::Duplicate { stored: Offset(15) }
        );
        assert_eq!(
            OffsetRange::inclusive(Offset(20), Offset(20)).position(held),
            Position::Gap { stored: Offset(15) }
        );
    }

    #[test]
    fn serialized_as_bare_numbers() {
        assert_eq!(
            serde_json::to_string(&Offset(42)).ok().as_deref(),
            Some("42")
        );
        assert_eq!(
            serde_json::to_string(&Partition(3)).ok().as_deref(),
            Some("3")
        );
    }
}
