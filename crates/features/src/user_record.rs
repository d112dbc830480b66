//! One user's stored features and the rules that apply a user delta to them and read
//! them back, shared by both stores.
//!
//! A user has one record per partition their events arrived through (with keyed
//! producers, as the replay and the API publish, exactly one): whoever writes a
//! partition is the only writer of that partition's records, so it can keep them in
//! memory and write them with the partition's offset (in one transaction on one server,
//! just before it on a cluster). Readers merge the records ([`merged`]). The Redis store
//! keeps them in one hash per user, one JSON value per partition.
//!
//! # Why a user delta is applied exactly once
//! A record stores the offset of the last event applied to it (`o`): it holds the
//! user's events of its partition up to `o` (since the record last expired, see
//! `user_ttl_days`). A user delta covers the user's events in one batch, offsets
//! `[min, max]`. [`UserRecord::apply`] positions it against `o + 1` by the position
//! rule of [`crate::checkpoint`]: a duplicate (`o >= max`) is skipped; fresh or a gap
//! (`o < min`: the offsets between are other users') is applied whole; an overlap (a
//! replay whose batch bounds differ from an earlier attempt) is applied one event at a
//! time, each checked the same way. The sums are integers and the lists merge newest
//! first, so a record is a function of its partition's events up to its offset alone,
//! however they were grouped: of two records of one user and partition, the one with
//! the higher offset is always right (what the cluster's forward-only write relies on).

use newsrec_core::{Engagement, EngagementCaps, PageId, ReadSet, UserAggregates, UserId, UserType};
use serde::{Deserialize, Serialize};

use crate::aggregate::{UserDelta, merge_history};
use crate::checkpoint::{Offset, Partition, Position};
use crate::values::UserState;

/// A user's engagement sums in integer units (milliseconds, basis points, millionths),
/// so that adding the same events in any grouping gives the same bits; read as the
/// shared [`UserAggregates`]. Field names are short: this is stored JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Sums {
    #[serde(rename = "n")]
    pub interactions: u64,
    /// Clicks, clamped per interaction.
    #[serde(rename = "c")]
    pub clicks: u64,
    /// Milliseconds on page, clamped per interaction.
    #[serde(rename = "t")]
    pub time_ms: u64,
    /// Scroll in basis points of the page (10,000: all of it), clamped per interaction.
    #[serde(rename = "s")]
    pub scroll_bp: u64,
    /// Page visits, clamped per interaction.
    #[serde(rename = "v")]
    pub visits: u64,
    /// Engagement scores, in millionths.
    #[serde(rename = "e")]
    pub engagement_micros: u64,
    /// Earliest and latest event time; meaningless while `interactions == 0`.
    #[serde(rename = "f")]
    pub first_ts: i64,
    #[serde(rename = "l")]
    pub last_ts: i64,
}

impl Sums {
    /// Adds one interaction at event time `ts` (clamped as [`UserAggregates::add`] does).
    pub fn add(&mut self, e: &Engagement, ts: i64) {
        let c = e.clamped(&EngagementCaps::default());
        self.merge(&Sums {
            interactions: 1,
            clicks: u64::from(c.clicks),
            time_ms: c.time_on_page_ms,
            scroll_bp: (c.scroll_pct * 100.0).round() as u64,
            visits: u64::from(c.page_visits),
            engagement_micros: (e.score() * 1e6).round() as u64,
            first_ts: ts,
            last_ts: ts,
        });
    }

    /// Adds the sums of a disjoint set of interactions.
    pub fn merge(&mut self, o: &Sums) {
        if o.interactions == 0 {
            return;
        }
        if self.interactions == 0 {
            (self.first_ts, self.last_ts) = (o.first_ts, o.last_ts);
        } else {
            self.first_ts = self.first_ts.min(o.first_ts);
            self.last_ts = self.last_ts.max(o.last_ts);
        }
        self.interactions += o.interactions;
        self.clicks += o.clicks;
        self.time_ms += o.time_ms;
        self.scroll_bp += o.scroll_bp;
        self.visits += o.visits;
        self.engagement_micros += o.engagement_micros;
    }

    /// The sums in the units of the shared feature definition.
    pub fn aggregates(&self) -> UserAggregates {
        UserAggregates {
            interactions: self.interactions,
            clicks: self.clicks as f64,
            time_min: self.time_ms as f64 / 60_000.0,
            scroll: self.scroll_bp as f64 / 10_000.0,
            visits: self.visits as f64,
            engagement: self.engagement_micros as f64 / 1e6,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
        }
    }
}

/// What a user delta did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserApply {
    Duplicate,
    Applied,
    /// Part of the delta's events are already in: re-send per event.
    Partial,
}

/// A user's record of one partition. Field names are short: this is the stored JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    #[serde(rename = "ty")]
    pub user_type: UserType,
    #[serde(rename = "a")]
    pub sums: Sums,
    /// Recent pages, newest first.
    #[serde(rename = "h")]
    pub history: Vec<PageId>,
    /// Every page read (up to the store's `read_set_max`), never recommended again.
    #[serde(rename = "r", default)]
    pub read: ReadSet,
    #[serde(rename = "lp")]
    pub last_page: PageId,
    /// Empty when the last event had no session id.
    #[serde(rename = "ls")]
    pub last_session: String,
    /// Offset of the last event applied (what makes applying a delta idempotent): the
    /// record holds the user's events of its partition up to it.
    #[serde(rename = "o")]
    pub offset: Offset,
}

impl UserRecord {
    /// Applies `d` (the user's events of one batch of the record's partition) to `rec`,
    /// unless the record holds some of them already (the position rule, see the module
    /// doc).
    pub fn apply(rec: &mut Option<UserRecord>, d: &UserDelta, caps: Caps) -> UserApply {
        // The record holds the log up to and including its offset.
        match d.offsets().position(rec.as_ref().map(|u| u.offset.next())) {
            Position::Duplicate { .. } => return UserApply::Duplicate,
            Position::Overlap { .. } => return UserApply::Partial,
            Position::Fresh | Position::Gap { .. } => {}
        }
        match rec {
            Some(u) => {
                u.sums.merge(&d.sums);
                u.user_type = d.user_type;
                u.history = merge_history(&d.history, &u.history, caps.history);
                u.read.put_newest_first(d.reads.iter().copied(), caps.read);
                u.last_page = d.last_page.clone();
                u.last_session = d.last_session.clone();
                u.offset = d.max_offset;
            }
            None => {
                let mut read = ReadSet::default();
                read.put_newest_first(d.reads.iter().copied(), caps.read);
                *rec = Some(UserRecord {
                    user_type: d.user_type,
                    sums: d.sums,
                    history: merge_history(&d.history, &[], caps.history),
                    read,
                    last_page: d.last_page.clone(),
                    last_session: d.last_session.clone(),
                    offset: d.max_offset,
                });
            }
        }
        UserApply::Applied
    }
}

/// The bounds of a user record's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// Recent history length.
    pub history: usize,
    /// Read set size.
    pub read: usize,
}

impl Caps {
    pub fn of(cfg: &crate::StoreConfig) -> Self {
        Caps {
            history: cfg.history_len,
            read: cfg.read_set_max,
        }
    }
}

/// The state the API reads, from a user's records of every partition: sums over all of
/// them; type, last page and session of the record with the latest event (ties: the
/// higher partition); history from that record first, then the others', newest records
/// first. With one record (keyed producers) it is that record.
pub(crate) fn merged<'a>(
    user: &UserId,
    records: impl IntoIterator<Item = (Partition, &'a UserRecord)>,
    caps: Caps,
) -> Option<UserState> {
    let mut recs: Vec<(Partition, &UserRecord)> = records.into_iter().collect();
    let mut sums = Sums::default();
    for (_, r) in &recs {
        sums.merge(&r.sums);
    }
    recs.sort_by(|(pa, a), (pb, b)| (b.sums.last_ts, pb).cmp(&(a.sums.last_ts, pa)));
    let (_, latest) = recs.first()?;
    let (history, read) = if recs.len() == 1 {
        (latest.history.clone(), latest.read.clone())
    } else {
        let mut read = ReadSet::default();
        for (_, r) in &recs {
            read.union(&r.read, caps.read);
        }
        let history = recs
            .iter()
            .flat_map(|(_, r)| r.history.iter())
            .take(caps.history)
            .cloned()
            .collect();
        (history, read)
    };
    Some(UserState::new(
        user.clone(),
        latest.user_type,
        sums.aggregates(),
        history,
        read,
        latest.last_page.clone(),
        Some(latest.last_session.clone()).filter(|s| !s.is_empty()),
    ))
}
