//! One user's stored features and the rule that applies a user delta to them, shared by
//! both stores. The Redis store keeps a record as one JSON string per user.

use std::collections::BTreeMap;

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

/// A user's record. Field names are short: this is the stored JSON.
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
    /// Per partition, the offset of the last event applied from it (what makes applying
    /// a delta idempotent).
    #[serde(rename = "o")]
    pub offsets: BTreeMap<i32, i64>,
}

impl UserRecord {
    /// Applies `d` (the user's events of one batch of `partition`) to `rec`, unless the
    /// record holds some of them already.
    pub fn apply(
        rec: &mut Option<UserRecord>,
        partition: i32,
        d: &UserDelta,
        cap: usize,
    ) -> UserApply {
        match rec
            .as_ref()
            .and_then(|u| u.offsets.get(&partition).copied())
        {
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
                u.offsets.insert(partition, d.max_offset);
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
                    offsets: BTreeMap::from([(partition, d.max_offset)]),
                });
            }
        }
        UserApply::Applied
    }

    /// The state the API reads.
    pub fn state(&self, user: &UserId) -> UserState {
        UserState::new(
            user.clone(),
            self.user_type,
            self.agg,
            self.history.clone(),
            self.last_page.clone(),
            Some(self.last_session.clone()).filter(|s| !s.is_empty()),
        )
    }
}
