//! One user's stored features and the rules that apply a user delta to them and read
//! them back, shared by both stores.
//!
//! A user has one record per partition their events arrived through (with keyed
//! producers, one): whoever writes a partition is the only writer of that partition's
//! records, so it can keep them in memory and write them with the partition's offset
//! (in one transaction on one server, just before it on a cluster). Readers merge the records ([`merged`]). The Redis store keeps them in one
//! hash per user, one JSON value per partition.

use newsrec_core::{PageId, UserAggregates, UserId, UserType};
use serde::{Deserialize, Serialize};

use crate::aggregate::{UserDelta, merge_history};
use crate::model::UserState;

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
    pub agg: UserAggregates,
    /// Recent pages, newest first.
    #[serde(rename = "h")]
    pub history: Vec<PageId>,
    #[serde(rename = "lp")]
    pub last_page: PageId,
    /// Empty when the last event had no session id.
    #[serde(rename = "ls")]
    pub last_session: String,
    /// Offset of the last event applied (what makes applying a delta idempotent): the
    /// record holds the user's events of its partition up to it.
    #[serde(rename = "o")]
    pub offset: i64,
}

impl UserRecord {
    /// Applies `d` (the user's events of one batch of the record's partition) to `rec`,
    /// unless the record holds some of them already.
    pub fn apply(rec: &mut Option<UserRecord>, d: &UserDelta, cap: usize) -> UserApply {
        match rec.as_ref().map(|u| u.offset) {
            Some(o) if o >= d.max_offset => return UserApply::Duplicate,
            Some(o) if o >= d.min_offset => return UserApply::Partial,
            _ => {}
        }
        match rec {
            Some(u) => {
                u.agg.merge(&d.agg);
                u.user_type = d.user_type;
                u.history = merge_history(&d.history, &u.history, cap);
                u.last_page = d.last_page.clone();
                u.last_session = d.last_session.clone();
                u.offset = d.max_offset;
            }
            None => {
                let mut agg = UserAggregates::default();
                agg.merge(&d.agg);
                *rec = Some(UserRecord {
                    user_type: d.user_type,
                    agg,
                    history: merge_history(&d.history, &[], cap),
                    last_page: d.last_page.clone(),
                    last_session: d.last_session.clone(),
                    offset: d.max_offset,
                });
            }
        }
        UserApply::Applied
    }
}

/// The state the API reads, from a user's records of every partition: sums over all of
/// them; type, last page and session of the record with the latest event (ties: the
/// higher partition); history from that record first, then the others', newest records
/// first. With one record (keyed producers) it is that record.
pub(crate) fn merged<'a>(
    user: &UserId,
    records: impl IntoIterator<Item = (i32, &'a UserRecord)>,
    cap: usize,
) -> Option<UserState> {
    let mut recs: Vec<(i32, &UserRecord)> = records.into_iter().collect();
    // Sums in partition order, so every reader adds in the same order.
    recs.sort_by_key(|(p, _)| *p);
    let mut agg = UserAggregates::default();
    for (_, r) in &recs {
        agg.merge(&r.agg);
    }
    recs.sort_by(|(pa, a), (pb, b)| (b.agg.last_ts, pb).cmp(&(a.agg.last_ts, pa)));
    let (_, latest) = recs.first()?;
    let history = if recs.len() == 1 {
        latest.history.clone()
    } else {
        recs.iter()
            .flat_map(|(_, r)| r.history.iter())
            .take(cap)
            .cloned()
            .collect()
    };
    Some(UserState::new(
        user.clone(),
        latest.user_type,
        agg,
        history,
        latest.last_page.clone(),
        Some(latest.last_session.clone()).filter(|s| !s.is_empty()),
    ))
}
